package abi

import (
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

// Golden vectors computed by an independent implementation (Python's hashlib and json), so a
// second implementation of the contract can check itself against the same files.

func TestTagUUIDGolden(t *testing.T) {
	data, err := os.ReadFile("testdata/tag_uuid.json")
	if err != nil {
		t.Fatal(err)
	}
	var cases []struct {
		ObservedAt     string `json:"observed_at"`
		RuleID         string `json:"rule_id"`
		RuleVersion    string `json:"rule_version"`
		SourceKind     string `json:"source_kind"`
		SourceID       string `json:"source_id"`
		TechniqueID    string `json:"technique_id"`
		SubTechniqueID string `json:"sub_technique_id"`
		Tactic         string `json:"tactic"`
		TagUUID        string `json:"tag_uuid"`
	}
	if err := json.Unmarshal(data, &cases); err != nil {
		t.Fatal(err)
	}
	if len(cases) < 3 {
		t.Fatalf("only %d vectors", len(cases))
	}
	for _, c := range cases {
		var at time.Time
		if c.ObservedAt != "" {
			if at, err = time.Parse(time.RFC3339Nano, c.ObservedAt); err != nil {
				t.Fatal(err)
			}
		}
		got := TagUUID(at, c.RuleID, c.RuleVersion, c.SourceKind, c.SourceID, c.TechniqueID, c.SubTechniqueID, c.Tactic)
		if got != c.TagUUID {
			t.Errorf("TagUUID(%+v) = %s, want %s", c, got, c.TagUUID)
		}
		if got[14] != '8' || !strings.ContainsRune("89ab", rune(got[19])) {
			t.Errorf("%s is not a UUIDv8 with the RFC 9562 variant", got)
		}
		// The time part reads back as ObservedMillis says the tag carries it.
		if back, ok := TagUUIDTime(got); !ok || !back.Equal(ObservedMillis(at)) {
			t.Errorf("TagUUIDTime(%s) = %v, %v; want %v", got, back, ok, ObservedMillis(at))
		}
	}
}

func TestTagUUIDTime(t *testing.T) {
	at := time.Date(2026, 11, 27, 4, 12, 1, 120_456_789, time.FixedZone("CET", 3600))
	tests := []struct {
		name   string
		uuid   string
		want   time.Time
		wantOK bool
	}{
		{"observed", TagUUID(at, "R1", "v", "k", "s", "T1", "", "t"), time.Date(2026, 11, 27, 3, 12, 1, 120_000_000, time.UTC), true},
		{"no observed_at", TagUUID(time.Time{}, "R1", "v", "k", "s", "T1", "", "t"), time.Time{}, true},
		{"before the epoch", TagUUID(time.Unix(-5, 0), "R1", "v", "k", "s", "T1", "", "t"), time.Time{}, true},
		{"not hex", "zzzzzzzz-0000-8000-8000-000000000000", time.Time{}, false},
		{"short", "0190", time.Time{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := TagUUIDTime(tt.uuid)
			if ok != tt.wantOK || !got.Equal(tt.want) || got.IsZero() != tt.want.IsZero() {
				t.Errorf("TagUUIDTime(%q) = %v, %v; want %v, %v", tt.uuid, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestTagUUIDProperties(t *testing.T) {
	at := time.Date(2026, 11, 27, 5, 0, 0, 0, time.UTC)
	base := TagUUID(at, "R0001", "v", "command", "s", "T1082", "", "discovery")
	if base != TagUUID(at, "R0001", "v", "command", "s", "T1082", "", "discovery") {
		t.Fatal("not deterministic")
	}
	// Every input changes the id; the 0x1F separator keeps ("ab","c") and ("a","bc") apart.
	others := []string{
		TagUUID(at, "R0002", "v", "command", "s", "T1082", "", "discovery"),
		TagUUID(at, "R0001", "w", "command", "s", "T1082", "", "discovery"),
		TagUUID(at, "R0001", "v", "session", "s", "T1082", "", "discovery"),
		TagUUID(at, "R0001", "v", "command", "t", "T1082", "", "discovery"),
		TagUUID(at, "R0001", "v", "command", "s", "T1083", "", "discovery"),
		TagUUID(at, "R0001", "v", "command", "s", "T1082", "x", "discovery"),
		TagUUID(at, "R0001", "v", "command", "s", "T1082", "", "collection"),
		TagUUID(at, "R0001", "v", "command", "sT1082", "", "", "discovery"),
	}
	for i, o := range others {
		if o == base {
			t.Errorf("variant %d collides", i)
		}
	}
	// Time-ordered: a later event sorts after an earlier one.
	later := TagUUID(at.Add(time.Millisecond), "R0001", "v", "command", "s", "T1082", "", "discovery")
	if !(later > base) {
		t.Errorf("%s does not sort after %s", later, base)
	}
}

func TestRuleVersionGolden(t *testing.T) {
	data, err := os.ReadFile("testdata/rule_version.json")
	if err != nil {
		t.Fatal(err)
	}
	var cases []struct {
		File        string         `json:"file"`
		Canonical   string         `json:"canonical"`
		RuleVersion string         `json:"rule_version"`
		Document    map[string]any `json:"document"`
	}
	if err := json.Unmarshal(data, &cases); err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		got, err := CanonicalJSON(c.Document)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != c.Canonical {
			t.Errorf("%s: canonical\n got %s\nwant %s", c.File, got, c.Canonical)
		}
		v, err := RuleVersion(c.Document)
		if err != nil || v != c.RuleVersion {
			t.Errorf("%s: RuleVersion = %s, %v; want %s", c.File, v, err, c.RuleVersion)
		}
	}
}

func TestCanonicalJSONNumbers(t *testing.T) {
	// 1 and 1.0 (an int from YAML, a float from JSON) are one number.
	a, _ := CanonicalJSON(map[string]any{"n": 1, "f": 0.5, "u": uint8(3)})
	b, _ := CanonicalJSON(map[string]any{"f": 0.5, "n": 1.0, "u": 3.0})
	if string(a) != string(b) || string(a) != `{"f":0.5,"n":1,"u":3}` {
		t.Errorf("got %s and %s", a, b)
	}
	if _, err := CanonicalJSON(map[string]any{"x": make(chan int)}); err == nil {
		t.Error("unsupported type accepted")
	}
}

func TestDecodeEvent(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		field string // field named by the error; "" when valid
	}{
		{"valid", `{"source_kind":"command","source_id":"a","observed_at":"2026-11-27T05:00:00Z","payload":{"command_text":"id"}}`, ""},
		{"unknown kind accepted", `{"source_kind":"quantum","source_id":"a"}`, ""},
		{"extra fields ignored", `{"source_kind":"command","source_id":"a","producer_meta":{"x":1}}`, ""},
		{"null payload", `{"source_kind":"command","source_id":"a","payload":null}`, ""},
		{"missing kind", `{"source_id":"a"}`, "source_kind"},
		{"empty kind", `{"source_kind":"","source_id":"a"}`, "source_kind"},
		{"missing id", `{"source_kind":"command"}`, "source_id"},
		{"bad time", `{"source_kind":"command","source_id":"a","observed_at":"yesterday"}`, "observed_at"},
		{"payload not object", `{"source_kind":"command","source_id":"a","payload":[1]}`, "payload"},
		{"kind not string", `{"source_kind":7,"source_id":"a"}`, "source_kind"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeEvent([]byte(tt.in))
			if tt.field == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tt.field {
				t.Fatalf("error %v, want one naming field %q", err, tt.field)
			}
			if !strings.Contains(err.Error(), tt.field) {
				t.Errorf("message %q does not name the field", err)
			}
		})
	}
	if _, err := DecodeEvent([]byte(`{not json`)); err == nil {
		t.Error("invalid JSON accepted")
	}
}

func TestPath(t *testing.T) {
	ev := &Event{
		SourceKind: "session", SourceID: "s1", SessionID: "sess",
		Payload: map[string]any{
			"command_text": "uname -a",
			"downloads":    []any{map[string]any{"url": "http://a", "sha256": "aa"}, map[string]any{"url": "http://b"}},
			"headers":      map[string]any{"x-mailer": "PHPMailer"},
			"geo":          map[string]any{"country": "NL"},
			"n":            3.0,
		},
	}
	tests := []struct {
		path string
		want any
		ok   bool
	}{
		{"payload.command_text", "uname -a", true},
		{"session_id", "sess", true},
		{"source_kind", "session", true},
		{"attacker_uuid", "", false},
		{"payload.geo.country", "NL", true},
		{"payload.geo.city", nil, false},
		{"payload.n", 3.0, true},
		{"payload.downloads[].url", []any{"http://a", "http://b"}, true},
		{"payload.downloads[].sha256", []any{"aa", nil}, true},
		{"payload.headers.*", map[string]any{"x-mailer": "PHPMailer"}, true},
		{"payload.missing[].x", nil, false},
	}
	for _, tt := range tests {
		p, err := ParsePath(tt.path)
		if err != nil {
			t.Fatalf("ParsePath(%q): %v", tt.path, err)
		}
		got, ok := p.Lookup(ev)
		if ok != tt.ok || (ok && !reflect.DeepEqual(got, tt.want)) {
			t.Errorf("%s: got %#v, %v; want %#v, %v", tt.path, got, ok, tt.want, tt.ok)
		}
	}
	if k := MustParsePath("payload.downloads[].url").Key(); k != "url" {
		t.Errorf("Key = %q", k)
	}
	for _, bad := range []string{"", "command_text", "payload", "payload.*", "session_id.x", "payload..x", "payload.a*b", "payload.*.x", "payload[].x"} {
		if _, err := ParsePath(bad); !errors.Is(err, ErrBadPath) {
			t.Errorf("ParsePath(%q) = %v, want ErrBadPath", bad, err)
		}
	}
	ct := MustParsePath("payload.command_text")
	if n := testing.AllocsPerRun(100, func() { ct.LookupString(ev) }); n != 0 {
		t.Errorf("lookup allocates %v", n)
	}
}

func TestExpand(t *testing.T) {
	at := time.Date(2026, 11, 27, 5, 0, 0, 0, time.UTC)
	sess := Event{
		SourceKind: "session", SourceID: "S1", AttackerUUID: "att", SessionID: "sess-1", DeckyID: "d1", ObservedAt: at,
		Payload: map[string]any{
			"commands":    []any{"uname -a", map[string]any{"id": "c-9", "text": "id"}, map[string]any{"command_id": "c-10", "text": "w"}, map[string]any{"text": "ls"}, 42.0},
			"duration_ms": 1200.0,
		},
	}
	out := Expand(sess)
	// 42 is neither a string nor an object: it keeps its place in the session's list but
	// makes no command event.
	if len(out) != 5 {
		t.Fatalf("got %d events, want 5", len(out))
	}
	if out[0].SourceKind != "session" || out[0].SourceID != "S1" {
		t.Fatalf("first event is not the session: %+v", out[0])
	}
	texts := MustParsePath("payload.commands[].text")
	got, _ := texts.Lookup(&out[0])
	if !reflect.DeepEqual(got, []any{"uname -a", "id", "w", "ls", ""}) {
		t.Errorf("normalised commands read %#v", got)
	}
	wantIDs := []string{"S1#0", "c-9", "c-10", "S1#3"}
	wantText := []string{"uname -a", "id", "w", "ls"}
	for i, e := range out[1:] {
		if e.SourceKind != "command" || e.SourceID != wantIDs[i] || e.Payload["command_text"] != wantText[i] {
			t.Errorf("command %d = %s %s %v", i, e.SourceKind, e.SourceID, e.Payload)
		}
		if e.AttackerUUID != "att" || e.SessionID != "sess-1" || e.DeckyID != "d1" || !e.ObservedAt.Equal(at) {
			t.Errorf("command %d lost the session's identity: %+v", i, e)
		}
	}
	// The input is not modified.
	if _, isStr := sess.Payload["commands"].([]any)[0].(string); !isStr {
		t.Error("Expand modified its input")
	}
	for _, ev := range []Event{{SourceKind: "command", SourceID: "x"}, {SourceKind: "session", SourceID: "y", Payload: map[string]any{"duration_ms": 1.0}}} {
		if out := Expand(ev); len(out) != 1 || out[0].SourceID != ev.SourceID {
			t.Errorf("Expand(%s) = %d events", ev.SourceKind, len(out))
		}
	}
}

func TestExpandIntel(t *testing.T) {
	report := func(cats any) map[string]any { return map[string]any{"comment": "x", "categories": cats} }
	for _, tc := range []struct {
		name    string
		payload map[string]any
		want    any // payload.abuseipdb_categories after Expand; nil: absent
	}{
		{"verbose data object", map[string]any{"abuseipdb": map[string]any{"reports": []any{
			report([]any{22.0, 18.0}), report([]any{14.0, 18.0})}}}, []any{14.0, 18.0, 22.0}},
		{"whole response", map[string]any{"abuseipdb": map[string]any{"data": map[string]any{"reports": []any{
			report([]any{"21", 15.0})}}}}, []any{15.0, 21.0}},
		{"comma string and junk", map[string]any{"abuseipdb": map[string]any{"reports": []any{
			report("18, 22"), report([]any{1.5, -3.0, 999.0, nil, true, "x"}), "not a report", nil}}}, []any{18.0, 22.0}},
		{"producer's field wins", map[string]any{"abuseipdb_categories": []any{4.0},
			"abuseipdb": map[string]any{"reports": []any{report([]any{18.0})}}}, []any{4.0}},
		{"null field is filled", map[string]any{"abuseipdb_categories": nil,
			"abuseipdb": map[string]any{"reports": []any{report([]any{18.0})}}}, []any{18.0}},
		{"producer's empty field wins", map[string]any{"abuseipdb_categories": []any{},
			"abuseipdb": map[string]any{"reports": []any{report([]any{22.0})}}}, []any{}},
		{"without verbose", map[string]any{"abuseipdb": map[string]any{"abuseConfidenceScore": 100.0}}, nil},
		{"no categories", map[string]any{"abuseipdb": map[string]any{"reports": []any{report([]any{})}}}, nil},
		{"abuseipdb not an object", map[string]any{"abuseipdb": "oops"}, nil},
	} {
		ev := Event{SourceKind: KindIntel, SourceID: "i", Payload: tc.payload}
		_, had := tc.payload["abuseipdb_categories"]
		out := Expand(ev)
		if len(out) != 1 || out[0].SourceID != "i" {
			t.Fatalf("%s: Expand gave %d events", tc.name, len(out))
		}
		got, ok := out[0].Payload["abuseipdb_categories"]
		if tc.want == nil && ok || tc.want != nil && !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: abuseipdb_categories = %#v, want %#v", tc.name, got, tc.want)
		}
		if _, has := tc.payload["abuseipdb_categories"]; has != had {
			t.Errorf("%s: Expand modified its input", tc.name)
		}
	}
}

func FuzzDecodeEvent(f *testing.F) {
	f.Add([]byte(`{"source_kind":"command","source_id":"a","payload":{"command_text":"id"}}`))
	f.Add([]byte(`{"source_kind":"session","source_id":"s","payload":{"commands":["a",{"id":"x","text":"b"}]}}`))
	f.Add([]byte(`{"source_kind":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, err := DecodeEvent(data)
		if err != nil {
			return
		}
		if ev.SourceKind == "" || ev.SourceID == "" {
			t.Fatalf("decoded an event without kind or id: %+v", ev)
		}
		// Every decoded event re-encodes and decodes to the same identity.
		b, err := json.Marshal(ev)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		ev2, err := DecodeEvent(b)
		if err != nil || ev2.SourceKind != ev.SourceKind || ev2.SourceID != ev.SourceID || !ev2.ObservedAt.Equal(ev.ObservedAt) {
			t.Fatalf("round trip: %v %+v", err, ev2)
		}
	})
}

func FuzzExpand(f *testing.F) {
	f.Add([]byte(`{"source_kind":"session","source_id":"s","payload":{"commands":["a",{"id":"x","text":"b"},null,{"uuid":7}]}}`))
	f.Add([]byte(`{"source_kind":"intel","source_id":"i","payload":{"abuseipdb":{"data":{"reports":[{"categories":[18,"22"]},{"categories":"14,15"},null]}}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, err := DecodeEvent(data)
		if err != nil {
			return
		}
		out := Expand(ev)
		if len(out) == 0 || out[0].SourceID != ev.SourceID || out[0].SourceKind != ev.SourceKind {
			t.Fatalf("first event is not the upstream one")
		}
		for _, e := range out[1:] {
			if e.SourceKind != KindCommand || e.SourceID == "" {
				t.Fatalf("bad fan-out event %+v", e)
			}
			if _, ok := e.Payload["command_text"].(string); !ok {
				t.Fatalf("command without text: %+v", e)
			}
		}
	})
}
