package abi_test

import (
	"fmt"
	"time"

	"github.com/decnet/ttp/abi"
)

// A session reported at its end becomes itself plus one command event per command, so the
// command rules see every command typed.
func ExampleExpand() {
	ev, err := abi.DecodeEvent([]byte(`{"source_kind":"session","source_id":"cowrie-9c2e",
		"payload":{"commands":["uname -a",{"id":"cmd-7","text":"cat /proc/cpuinfo"}]}}`))
	if err != nil {
		panic(err)
	}
	for _, e := range abi.Expand(ev) {
		fmt.Println(e.SourceKind, e.SourceID, e.Payload["command_text"])
	}
	// Output:
	// session cowrie-9c2e <nil>
	// command cowrie-9c2e#0 uname -a
	// command cmd-7 cat /proc/cpuinfo
}

// The same tag always gets the same id, and ids sort by the event's time.
func ExampleTagUUID() {
	at := time.Date(2026, 11, 27, 5, 10, 28, 123e6, time.UTC)
	fmt.Println(abi.TagUUID(at, "R0013", "9f2c1a7b3d4e5f60", "command", "cowrie-5f1e#3", "T1098", "T1098.004", "persistence"))
	// Output: 01a21b69-7e1b-8f7d-9cdd-86ab7f5087b4
}

// Decoding names the field that makes an event unusable.
func ExampleDecodeEvent() {
	_, err := abi.DecodeEvent([]byte(`{"source_kind":"command","payload":{"command_text":"id"}}`))
	fmt.Println(err)
	// Output: abi: event: field "source_id": missing required field
}
