package abi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Source kinds known to this version of the contract. Events of other kinds are accepted
// (and counted by the host) so that a new producer never loses data while its detectors are
// still being written.
const (
	KindCommand  = "command"
	KindSession  = "session"
	KindAuth     = "auth"
	KindIdentity = "identity"
	KindEmail    = "email"
	KindCanary   = "canary"
	KindIntel    = "intel"
	KindHTTP     = "http"
	// KindForward is SSH port forwarding (direct-tcpip) asked of a honeypot, summed per
	// session: relay bots open thousands of channels, which as events of their own would drown
	// everything else.
	KindForward = "forward"
)

// KnownKinds lists the source kinds abi/EVENTS.md describes, in a stable order.
var KnownKinds = []string{KindCommand, KindSession, KindAuth, KindIdentity, KindEmail, KindCanary, KindIntel, KindHTTP, KindForward}

// IsKnownKind reports whether kind is one of KnownKinds.
func IsKnownKind(kind string) bool {
	for _, k := range KnownKinds {
		if k == kind {
			return true
		}
	}
	return false
}

// Event is what producers send: one observation of the deception network. JSON field names
// are the wire names. Payload holds the kind-specific fields (abi/EVENTS.md) as decoded JSON:
// objects are map[string]any, arrays []any, numbers float64.
type Event struct {
	SourceKind   string         `json:"source_kind"`
	SourceID     string         `json:"source_id"`
	AttackerUUID string         `json:"attacker_uuid,omitempty"`
	IdentityUUID string         `json:"identity_uuid,omitempty"`
	SessionID    string         `json:"session_id,omitempty"`
	DeckyID      string         `json:"decky_id,omitempty"`
	ObservedAt   time.Time      `json:"observed_at,omitzero"`
	Payload      map[string]any `json:"payload"`
}

// ErrMissingField is wrapped by DecodeEvent when a required field is absent or empty.
var ErrMissingField = errors.New("missing required field")

// ErrInvalidUTF8 is wrapped by DecodeEvent when an identity field holds bytes that are not
// UTF-8: ids are compared as text, so such an id could not be kept apart from another.
var ErrInvalidUTF8 = errors.New("not valid UTF-8 (an id must be text; encode binary ids, e.g. in hex)")

// FieldError names the event field that made an event invalid.
type FieldError struct {
	Field string
	Err   error
}

func (e *FieldError) Error() string { return fmt.Sprintf("abi: event: field %q: %v", e.Field, e.Err) }
func (e *FieldError) Unwrap() error { return e.Err }

// DecodeEvent decodes one JSON event and checks what every path relies on: source_kind and
// source_id are present and non-empty, observed_at (when present) is RFC 3339, payload (when
// present) is an object. Unknown top-level fields are ignored so producers can add metadata.
func DecodeEvent(data []byte) (Event, error) {
	var w struct {
		SourceKind   *string        `json:"source_kind"`
		SourceID     *string        `json:"source_id"`
		AttackerUUID string         `json:"attacker_uuid"`
		IdentityUUID string         `json:"identity_uuid"`
		SessionID    string         `json:"session_id"`
		DeckyID      string         `json:"decky_id"`
		ObservedAt   string         `json:"observed_at"`
		Payload      map[string]any `json:"payload"`
	}
	// One pass: the payload is decoded with the rest (null leaves it nil). Decoding it from a
	// json.RawMessage in a second Unmarshal validated and scanned its bytes twice more, which
	// was a third of the daemon's decoding cost.
	if err := json.Unmarshal(data, &w); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && strings.HasPrefix(te.Value, "number ") {
			// A number no float64 holds (1e400): name where it is, not "want an object".
			return Event{}, &FieldError{Field: numberOutOfRange(data), Err: fmt.Errorf("%s is out of range of a double", te.Value)}
		}
		if errors.As(err, &te) && te.Field == "payload" {
			return Event{}, &FieldError{Field: "payload", Err: fmt.Errorf("want a JSON object, got JSON %s", te.Value)}
		}
		if errors.As(err, &te) && te.Field != "" {
			return Event{}, &FieldError{Field: te.Field, Err: fmt.Errorf("want %s, got JSON %s", te.Type, te.Value)}
		}
		return Event{}, fmt.Errorf("abi: event: %w", err)
	}
	if w.SourceKind == nil || *w.SourceKind == "" {
		return Event{}, &FieldError{Field: "source_kind", Err: ErrMissingField}
	}
	if w.SourceID == nil || *w.SourceID == "" {
		return Event{}, &FieldError{Field: "source_id", Err: ErrMissingField}
	}
	// encoding/json turns invalid UTF-8 into U+FFFD: two events whose ids differ only in
	// invalid bytes would get one identity and the second's tags would be dropped as a
	// replay. Such an event is refused (dead-lettered with this reason), never merged.
	for _, f := range [...]struct{ name, v string }{{"source_id", *w.SourceID}, {"attacker_uuid", w.AttackerUUID},
		{"identity_uuid", w.IdentityUUID}, {"session_id", w.SessionID}, {"decky_id", w.DeckyID}} {
		if strings.ContainsRune(f.v, utf8.RuneError) && !utf8.Valid(data) {
			return Event{}, &FieldError{Field: f.name, Err: ErrInvalidUTF8}
		}
	}
	ev := Event{
		SourceKind:   *w.SourceKind,
		SourceID:     *w.SourceID,
		AttackerUUID: w.AttackerUUID,
		IdentityUUID: w.IdentityUUID,
		SessionID:    w.SessionID,
		DeckyID:      w.DeckyID,
	}
	if w.ObservedAt != "" {
		t, err := time.Parse(time.RFC3339Nano, w.ObservedAt)
		if err != nil {
			return Event{}, &FieldError{Field: "observed_at", Err: fmt.Errorf("not RFC 3339: %q", w.ObservedAt)}
		}
		ev.ObservedAt = t
	}
	ev.Payload = w.Payload
	return ev, nil
}

// numberOutOfRange returns the path of the first number in data that a float64 cannot hold
// ("payload.size"), or "payload" when it cannot tell. Only a refused event pays for it.
func numberOutOfRange(data []byte) string {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	type frame struct {
		key    string
		object bool
		index  int
		expect bool // in an object, the next string token is a key
	}
	var stack []frame
	path := func(last string) string {
		parts := make([]string, 0, len(stack)+1)
		for _, f := range stack[1:] {
			parts = append(parts, f.key)
		}
		if last != "" {
			parts = append(parts, last)
		}
		return strings.Join(parts, ".")
	}
	key := ""
	for {
		tok, err := dec.Token()
		if err != nil {
			return "payload"
		}
		top := len(stack) - 1
		if top >= 0 && stack[top].object && stack[top].expect {
			if k, ok := tok.(string); ok {
				key, stack[top].expect = k, false
				continue
			}
		}
		here := key
		if top >= 0 && !stack[top].object {
			here = fmt.Sprint(stack[top].index)
			stack[top].index++
		}
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{', '[':
				stack = append(stack, frame{key: here, object: t == '{', expect: t == '{'})
				continue
			default:
				stack = stack[:len(stack)-1]
			}
		case json.Number:
			if _, err := strconv.ParseFloat(string(t), 64); err != nil {
				return path(here)
			}
		}
		if n := len(stack) - 1; n >= 0 && stack[n].object {
			stack[n].expect = true
		}
	}
}
