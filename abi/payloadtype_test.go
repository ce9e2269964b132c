package abi

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckPayload(t *testing.T) {
	for _, tc := range []struct {
		name, kind, payload, field string // field "" = no error
	}{
		{"command ok", "command", `{"command_text":"id"}`, ""},
		{"command number", "command", `{"command_text":12345}`, "payload.command_text"},
		{"null is absent", "command", `{"command_text":null}`, ""},
		{"absent", "command", `{}`, ""},
		{"session list as string", "session", `{"commands":"id"}`, "payload.commands"},
		{"auth bool as string", "auth", `{"username":"root","success":"yes"}`, "payload.success"},
		{"nested wrong", "canary", `{"navigator":{"webdriver":"true"}}`, "payload.navigator.webdriver"},
		{"nested parent wrong", "canary", `{"navigator":"Mozilla"}`, "payload.navigator"},
		{"undocumented kind", "martian", `{"command_text":1}`, ""},
		{"undocumented field", "command", `{"extra":1}`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev, err := DecodeEvent([]byte(`{"source_kind":"` + tc.kind + `","source_id":"a","payload":` + tc.payload + `}`))
			if err != nil {
				t.Fatal(err)
			}
			err = CheckPayload(ev.SourceKind, ev.Payload)
			var fe *FieldError
			switch {
			case tc.field == "" && err != nil:
				t.Fatalf("unexpected %v", err)
			case tc.field != "" && (!errors.As(err, &fe) || fe.Field != tc.field):
				t.Fatalf("got %v, want an error on %s", err, tc.field)
			}
		})
	}
}

// TestPayloadTypesCoverEveryKind: the table read from EVENTS.md has fields for every kind it
// documents, so a change of the document's layout cannot silently switch the check off.
func TestPayloadTypesCoverEveryKind(t *testing.T) {
	types := parsePayloadTypes(eventsDoc)
	for _, k := range KnownKinds {
		if len(types[k]) == 0 {
			t.Errorf("kind %s: no payload field read from EVENTS.md", k)
		}
	}
}

func TestCheckPayloadAllocs(t *testing.T) {
	p := map[string]any{"command_text": "uname -a"}
	if n := testing.AllocsPerRun(100, func() { _ = CheckPayload("command", p) }); n != 0 {
		t.Errorf("%v allocations per check of a good payload, want 0", n)
	}
}

func TestDecodeRefusals(t *testing.T) {
	for _, tc := range []struct{ name, in, field, msg string }{
		{"out of range", `{"source_kind":"command","source_id":"a","payload":{"n":{"x":[1,1e400]}}}`, "payload.n.x.1", "out of range"},
		{"out of range top", `{"source_kind":"command","source_id":"a","payload":{"size":-1e999}}`, "payload.size", "out of range"},
		{"invalid utf8 id", "{\"source_kind\":\"command\",\"source_id\":\"a\xff\",\"payload\":{}}", "source_id", "UTF-8"},
		{"invalid utf8 session", "{\"source_kind\":\"command\",\"source_id\":\"a\",\"session_id\":\"s\xfe\",\"payload\":{}}", "session_id", "UTF-8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeEvent([]byte(tc.in))
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tc.field || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("got %v, want field %s and %q", err, tc.field, tc.msg)
			}
		})
	}
	// An escaped U+FFFD in valid UTF-8 is an id like any other.
	if _, err := DecodeEvent([]byte(`{"source_kind":"command","source_id":"a\ufffd","payload":{}}`)); err != nil {
		t.Errorf("escaped U+FFFD refused: %v", err)
	}
}
