package abi

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// validManifest is ABI.md's example manifest; each case of TestDecodeManifest changes one
// thing in it.
const validManifest = `{
  "abi": 1,
  "name": "behavioral",
  "version": "1.0.0",
  "rule_kinds": ["lifter:behavioral_"],
  "kinds": [
    {"source_kind": "session",
     "fields": ["payload.commands[].text", "payload.command_times_ms", "payload.duration_ms"]}
  ],
  "evidence_keys": ["median_gap_ms", "commands"]
}`

// manifestWith returns validManifest with key set to value (a JSON text), or removed when
// value is "".
func manifestWith(key, value string) string {
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(validManifest), &m); err != nil {
		panic(err)
	}
	if value == "" {
		delete(m, key)
	} else {
		m[key] = json.RawMessage(value)
	}
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// jsonList is a JSON array of n strings made by f.
func jsonList(n int, f func(i int) string) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = fmt.Sprintf("%q", f(i))
	}
	return "[" + strings.Join(parts, ",") + "]"
}

var manifestTests = []struct {
	name string
	json string
	want string // a substring of the error; "" when the manifest is valid
}{
	{"valid", validManifest, ""},
	{"several kinds and prefixes", manifestWith("kinds", `[{"source_kind":"session","fields":["payload.duration_ms"]},{"source_kind":"email","fields":["payload.headers.*","payload.attachments[].sha256"]},{"source_kind":"intel","fields":[]}]`), ""},
	{"no evidence keys", manifestWith("evidence_keys", ""), ""},
	{"pre-release version", manifestWith("version", `"1.2.3-rc.1"`), ""},
	{"version with build metadata", manifestWith("version", `"1.2.3+build.5"`), ""},
	{"longest name", manifestWith("name", `"a`+strings.Repeat("b", 62)+`"`), ""},
	{"name with digits, dash, underscore", manifestWith("name", `"intel-v2_x"`), ""},
	{"rule kind without underscore", manifestWith("rule_kinds", `["lifter:intel","lifter:canary_"]`), ""},
	{"most fields", manifestWith("kinds", `[{"source_kind":"auth","fields":`+jsonList(MaxFieldsPerKind, func(i int) string { return fmt.Sprintf("payload.f%d", i) })+`}]`), ""},
	{"most evidence keys", manifestWith("evidence_keys", jsonList(MaxEvidenceKeys, func(i int) string { return fmt.Sprintf("k%d", i) })), ""},

	{"not JSON", `{"abi":1,`, "unexpected EOF"},
	{"not an object", `[1]`, "cannot unmarshal"},
	{"wrong type", manifestWith("abi", `"1"`), "cannot unmarshal"},
	{"unknown key", manifestWith("extra", `true`), `unknown field "extra"`},
	{"unknown key in a kind", manifestWith("kinds", `[{"source_kind":"session","fields":[],"filter":"x"}]`), `unknown field "filter"`},
	{"abi 2", manifestWith("abi", `2`), "abi 2"},
	{"abi missing", manifestWith("abi", ""), "abi 0"},
	{"name upper case", manifestWith("name", `"Behavioral"`), "name"},
	{"name empty", manifestWith("name", `""`), "name"},
	{"name starts with a digit", manifestWith("name", `"1st"`), "name"},
	{"name with a dot", manifestWith("name", `"be.havioral"`), "name"},
	{"name too long", manifestWith("name", `"a`+strings.Repeat("b", 63)+`"`), "name"},
	{"version two parts", manifestWith("version", `"1.0"`), "version"},
	{"version with v", manifestWith("version", `"v1.0.0"`), "version"},
	{"version empty pre-release", manifestWith("version", `"1.0.0-"`), "version"},
	{"rule_kinds empty", manifestWith("rule_kinds", `[]`), "rule_kinds is empty"},
	{"rule_kinds missing", manifestWith("rule_kinds", ""), "rule_kinds is empty"},
	{"rule kind not a lifter", manifestWith("rule_kinds", `["pattern"]`), "rule_kinds entry"},
	{"rule kind bare lifter", manifestWith("rule_kinds", `["lifter:"]`), "rule_kinds entry"},
	{"rule kind upper case", manifestWith("rule_kinds", `["lifter:Behavioral_"]`), "rule_kinds entry"},
	{"rule kind without lifter", manifestWith("rule_kinds", `["lifter:email_","behavioral_"]`), "rule_kinds entry"},
	{"kinds empty", manifestWith("kinds", `[]`), "kinds is empty"},
	{"unknown source kind", manifestWith("kinds", `[{"source_kind":"smtp","fields":[]}]`), `source kind "smtp"`},
	{"source kind empty", manifestWith("kinds", `[{"fields":["payload.x"]}]`), `source kind ""`},
	{"duplicate source kind", manifestWith("kinds", `[{"source_kind":"session","fields":[]},{"source_kind":"email","fields":[]},{"source_kind":"session","fields":["payload.x"]}]`), "listed twice"},
	{"field path relative", manifestWith("kinds", `[{"source_kind":"session","fields":["commands"]}]`), "bad field path"},
	{"field path payload alone", manifestWith("kinds", `[{"source_kind":"session","fields":["payload"]}]`), "bad field path"},
	{"field path star on payload", manifestWith("kinds", `[{"source_kind":"email","fields":["payload.*"]}]`), "bad field path"},
	{"field path empty", manifestWith("kinds", `[{"source_kind":"email","fields":["payload.subject",""]}]`), "bad field path"},
	{"too many fields", manifestWith("kinds", `[{"source_kind":"auth","fields":`+jsonList(MaxFieldsPerKind+1, func(i int) string { return fmt.Sprintf("payload.f%d", i) })+`}]`), "256 fields"},
	{"evidence key upper case", manifestWith("evidence_keys", `["Median"]`), "evidence key"},
	{"evidence key with dash", manifestWith("evidence_keys", `["median-gap"]`), "evidence key"},
	{"evidence key with a dot", manifestWith("evidence_keys", `["payload.x"]`), "evidence key"},
	{"evidence key empty", manifestWith("evidence_keys", `[""]`), "evidence key"},
	{"evidence key too long", manifestWith("evidence_keys", `["k`+strings.Repeat("x", 63)+`"]`), "evidence key"},
	{"too many evidence keys", manifestWith("evidence_keys", jsonList(MaxEvidenceKeys+1, func(i int) string { return fmt.Sprintf("k%d", i) })), "256 evidence keys"},
	{"duplicate evidence key", manifestWith("evidence_keys", `["commands","median_gap_ms","commands"]`), "listed twice"},
	{"host capability", manifestWith("capabilities", `["ttp_host_v1"]`), ""},
	{"no capability", manifestWith("capabilities", `[]`), ""},
	{"unknown capability", manifestWith("capabilities", `["ttp_host_v9"]`), "capability \"ttp_host_v9\""},
	{"duplicate capability", manifestWith("capabilities", `["ttp_host_v1","ttp_host_v1"]`), "listed twice"},
}

func TestDecodeManifest(t *testing.T) {
	for _, tt := range manifestTests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := DecodeManifest([]byte(tt.json))
			if tt.want == "" {
				if err != nil {
					t.Fatalf("DecodeManifest: %v", err)
				}
				if err := m.Validate(); err != nil {
					t.Fatalf("Validate of a decoded manifest: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrManifest) {
				t.Fatalf("DecodeManifest = %v, want ErrManifest", err)
			}
			if m != nil {
				t.Errorf("DecodeManifest returned a manifest with its error")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q", err, tt.want)
			}
		})
	}
}

func TestManifestValidate(t *testing.T) {
	m, err := DecodeManifest([]byte(validManifest))
	if err != nil {
		t.Fatal(err)
	}
	// Validate checks a manifest built in Go the same way.
	bad := *m
	bad.Kinds = append([]KindFields{{SourceKind: "session", Fields: []string{"payload.x"}}}, m.Kinds...)
	if err := bad.Validate(); !errors.Is(err, ErrManifest) {
		t.Errorf("duplicate kind: Validate = %v", err)
	}
	bad = *m
	bad.Kinds = []KindFields{{SourceKind: "session", Fields: []string{"payload.a[]b"}}}
	if err := bad.Validate(); !errors.Is(err, ErrManifest) || !strings.Contains(err.Error(), "bad field path") {
		t.Errorf("bad path: Validate = %v", err)
	}
}

func TestManifestAccessors(t *testing.T) {
	m, err := DecodeManifest([]byte(manifestWith("rule_kinds", `["lifter:behavioral_","lifter:email_"]`)))
	if err != nil {
		t.Fatal(err)
	}
	m.Kinds = append(m.Kinds, KindFields{SourceKind: "command"})
	if got := m.Producer(); got != "behavioral@1.0.0" {
		t.Errorf("Producer = %q", got)
	}
	for kind, want := range map[string]int{"session": 0, "command": 1, "auth": -1, "": -1, "Session": -1} {
		if got := m.KindIndex(kind); got != want {
			t.Errorf("KindIndex(%q) = %d, want %d", kind, got, want)
		}
	}
	owns := map[string]bool{
		"lifter:behavioral_automated": true,
		"lifter:behavioral_":          true,
		"lifter:email_phish_kit":      true,
		"lifter:behavioral":           false, // shorter than the prefix
		"lifter:emailx":               false,
		"lifter:intel_abuseipdb":      false,
		"pattern":                     false,
		"":                            false,
	}
	for kind, want := range owns {
		if got := m.Owns(kind); got != want {
			t.Errorf("Owns(%q) = %v, want %v", kind, got, want)
		}
	}
}

func FuzzDecodeManifest(f *testing.F) {
	for _, tt := range manifestTests {
		f.Add([]byte(tt.json))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := DecodeManifest(data)
		if err != nil {
			if !errors.Is(err, ErrManifest) {
				t.Fatalf("error %v does not wrap ErrManifest", err)
			}
			return
		}
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		m2, err := DecodeManifest(b)
		if err != nil {
			t.Fatalf("accepted manifest refused after a round trip: %v\n%s", err, b)
		}
		if !reflect.DeepEqual(m, m2) {
			t.Fatalf("round trip changed the manifest:\n%+v\n%+v", m, m2)
		}
	})
}
