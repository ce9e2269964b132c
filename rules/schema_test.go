package rules

import (
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
)

const goodRule = `id: R0013
name: SSH authorized_keys injection
applies_to: [command]
match: {kind: pattern, pattern: '(?i)authorized_keys', field: payload.command_text}
emits:
  - {technique_id: T1098, sub_technique_id: T1098.004, tactic: persistence, confidence: 0.9}
precision: H
evidence_fields: [command_text]
`

func TestParseGood(t *testing.T) {
	r, err := Parse("rules/ttp/R0013.yaml", []byte(goodRule))
	if err != nil {
		t.Fatal(err)
	}
	if r.ID != "R0013" || len(r.Emits) != 1 || r.Emits[0].SubTechniqueID != "T1098.004" || r.Emits[0].Confidence != 0.9 || !r.IsPattern() {
		t.Errorf("parsed %+v", r)
	}
	if len(r.Version) != 16 {
		t.Errorf("version %q", r.Version)
	}
	// Comments, key order and flow/block style are not a new version.
	reordered := "# comment\nprecision: H\nevidence_fields:\n  - command_text\nid: R0013\nname: SSH authorized_keys injection\napplies_to: [command]\nemits:\n  - technique_id: T1098\n    tactic: persistence\n    sub_technique_id: T1098.004\n    confidence: 0.90\nmatch:\n  field: payload.command_text\n  pattern: '(?i)authorized_keys'\n  kind: pattern\n"
	r2, err := Parse("R0013.yaml", []byte(reordered))
	if err != nil {
		t.Fatal(err)
	}
	if r2.Version != r.Version {
		t.Errorf("reordered version %s != %s", r2.Version, r.Version)
	}
	r3, _ := Parse("R0013.yaml", []byte(strings.Replace(goodRule, "0.9", "0.8", 1)))
	if r3.Version == r.Version {
		t.Error("a confidence change kept the version")
	}
}

// TestRuleVersionGolden checks the YAML path against the vectors abi pins.
func TestRuleVersionGolden(t *testing.T) {
	data, err := os.ReadFile("../abi/testdata/rule_version.json")
	if err != nil {
		t.Fatal(err)
	}
	var cases []struct {
		File        string `json:"file"`
		YAML        string `json:"yaml"`
		RuleVersion string `json:"rule_version"`
	}
	if err := json.Unmarshal(data, &cases); err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		r, err := Parse(c.File, []byte(c.YAML))
		if err != nil {
			t.Fatalf("%s: %v", c.File, err)
		}
		if r.Version != c.RuleVersion {
			t.Errorf("%s: version %s, want %s", c.File, r.Version, c.RuleVersion)
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name    string
		file    string
		yaml    string
		want    error
		line    int
		field   string
		message string // substring of the message
	}{
		{"unknown key", "R0013.yaml", goodRule + "severity: high\n", ErrUnknownKey, 9, "severity", "known keys"},
		{"unknown match key", "R0013.yaml", strings.Replace(goodRule, "field: payload", "feild: payload", 1), ErrUnknownKey, 4, "match.feild", ""},
		{"unknown emits key", "R0013.yaml", strings.Replace(goodRule, "tactic: persistence", "tactics: persistence", 1), ErrUnknownKey, 6, "emits[0].tactics", ""},
		{"wrong type", "R0013.yaml", strings.Replace(goodRule, "applies_to: [command]", "applies_to: command", 1), ErrType, 3, "applies_to", "list"},
		{"confidence type", "R0013.yaml", strings.Replace(goodRule, "0.9", "high", 1), ErrType, 6, "emits[0].confidence", ""},
		{"duplicate key", "R0013.yaml", goodRule + "name: again\n", ErrDuplicateKey, 9, "name", ""},
		{"file name", "R0014.yaml", goodRule, ErrFileName, 1, "id", "R0013.yaml"},
		{"bad id", "R13.yaml", strings.Replace(goodRule, "R0013", "R13", 1), ErrBadValue, 1, "id", ""},
		{"bad regex", "R0013.yaml", strings.Replace(goodRule, "(?i)authorized_keys", "(?i)authorized_keys(", 1), ErrBadRegex, 4, "match.pattern", "missing closing )"},
		{"lookahead", "R0013.yaml", strings.Replace(goodRule, "(?i)authorized_keys", "(?=x)", 1), ErrBadRegex, 4, "match.pattern", ""},
		{"missing tactic", "R0013.yaml", strings.Replace(goodRule, ", tactic: persistence", "", 1), ErrMissing, 6, "emits[0].tactic", ""},
		{"missing confidence", "R0013.yaml", strings.Replace(goodRule, ", confidence: 0.9", "", 1), ErrMissing, 6, "emits[0].confidence", ""},
		{"confidence range", "R0013.yaml", strings.Replace(goodRule, "0.9", "1.5", 1), ErrRange, 6, "emits[0].confidence", "0..1"},
		{"negative confidence", "R0013.yaml", strings.Replace(goodRule, "0.9", "-0.1", 1), ErrRange, 6, "emits[0].confidence", ""},
		{"unknown technique", "R0013.yaml", strings.Replace(strings.Replace(goodRule, "T1098, ", "T1999, ", 1), "sub_technique_id: T1098.004, ", "", 1), ErrUnknownTechnique, 6, "emits[0].technique_id", "T1999"},
		{"deprecated technique", "R0013.yaml", strings.Replace(strings.Replace(goodRule, "T1098, ", "T1086, ", 1), "sub_technique_id: T1098.004, ", "", 1), ErrDeprecated, 6, "emits[0].technique_id", ""},
		{"unknown tactic", "R0013.yaml", strings.Replace(goodRule, "tactic: persistence", "tactic: persistance", 1), ErrUnknownTactic, 6, "emits[0].tactic", ""},
		{"tactic mismatch", "R0013.yaml", strings.Replace(goodRule, "tactic: persistence", "tactic: discovery", 1), ErrTacticMismatch, 6, "emits[0].tactic", "persistence"},
		{"parent mismatch", "R0013.yaml", strings.Replace(goodRule, "T1098.004", "T1059.004", 1), ErrParentMismatch, 6, "emits[0].sub_technique_id", "T1059"},
		{"sub in technique_id", "R0013.yaml", strings.Replace(strings.Replace(goodRule, "T1098, ", "T1098.004, ", 1), "sub_technique_id: T1098.004, ", "", 1), ErrBadValue, 6, "emits[0].technique_id", "sub-technique"},
		{"unknown kind", "R0013.yaml", strings.Replace(goodRule, "[command]", "[comand]", 1), ErrUnknownSourceKind, 3, "applies_to[0]", ""},
		{"bad precision", "R0013.yaml", strings.Replace(goodRule, "precision: H", "precision: high", 1), ErrBadValue, 7, "precision", ""},
		{"bad match kind", "R0013.yaml", strings.Replace(goodRule, "kind: pattern", "kind: regex", 1), ErrBadValue, 4, "match.kind", ""},
		{"params on pattern", "R0013.yaml", strings.Replace(goodRule, "field: payload.command_text", "params: {x: 1}", 1), ErrBadValue, 4, "match.params", ""},
		{"bad field path", "R0013.yaml", strings.Replace(goodRule, "payload.command_text", "command_text", 1), ErrBadValue, 4, "match.field", ""},
		{"empty emits", "R0013.yaml", strings.Replace(goodRule, "emits:\n  - {technique_id: T1098, sub_technique_id: T1098.004, tactic: persistence, confidence: 0.9}", "emits: []", 1), ErrType, 5, "emits", ""},
		{"syntax", "R0013.yaml", "id: R0013\nname: [unclosed\n", ErrSyntax, 1, "", ""},
		{"missing id", "R0013.yaml", strings.Replace(goodRule, "id: R0013\n", "", 1), ErrMissing, 1, "id", ""},
		{"too large", "R0013.yaml", goodRule + "# " + strings.Repeat("x", MaxFileSize) + "\n", ErrTooLarge, 0, "", ""},
		{"bad evidence name", "R0013.yaml", strings.Replace(goodRule, "[command_text]", "[payload.command_text]", 1), ErrBadValue, 8, "evidence_fields[0]", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.file, []byte(tt.yaml))
			if err == nil {
				t.Fatal("accepted")
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("error %v, want %v", err, tt.want)
			}
			var found *Error
			for _, e := range err.(ErrorList) {
				if errors.Is(e, tt.want) {
					found = e
					break
				}
			}
			if found.File != tt.file || found.Line != tt.line || found.Field != tt.field {
				t.Errorf("located at %s:%d field %q, want %s:%d field %q (%v)", found.File, found.Line, found.Field, tt.file, tt.line, tt.field, found)
			}
			if !strings.Contains(found.Error(), tt.message) || !strings.HasPrefix(found.Error(), "rules: "+tt.file) {
				t.Errorf("message %q lacks %q or the file", found.Error(), tt.message)
			}
		})
	}
}

func TestParseLifterRule(t *testing.T) {
	src := `id: R0032
name: Discovery burst
applies_to: [session]
match:
  kind: lifter:behavioral_recon_burst
  params: {min_commands: 5, window_ms: 30000}
emits:
  - {technique_id: T1082, tactic: discovery, confidence: 0.7}
precision: M
evidence_fields: [discovery_commands]
`
	r, err := Parse("R0032.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if r.IsPattern() || r.Match.Params["min_commands"] != 5 {
		t.Errorf("parsed %+v", r.Match)
	}
	bad := strings.Replace(src, "params:", "pattern: x\n  params:", 1)
	if _, err := Parse("R0032.yaml", []byte(bad)); !errors.Is(err, ErrBadValue) {
		t.Errorf("lifter rule with pattern: %v", err)
	}
}

func TestLoadDirDuplicateID(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(dir+"/R0013.yaml", []byte(goodRule), 0o644)
	os.WriteFile(dir+"/notes.md", []byte("ignored"), 0o644)
	os.WriteFile(dir+"/R0014.yaml", []byte("id: [\n"), 0o644)
	got, err := LoadDir(dir)
	if len(got) != 1 || got[0].ID != "R0013" {
		t.Fatalf("loaded %d rules", len(got))
	}
	if !errors.Is(err, ErrSyntax) {
		t.Errorf("error %v, want the syntax error of R0014", err)
	}
	if _, err := NewRuleSet([]*Rule{got[0], got[0]}); !errors.Is(err, ErrDuplicateID) {
		t.Errorf("duplicate ids: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(goodRule))
	f.Add([]byte("id: R0013\nmatch: {kind: lifter:x, params: {a: [1, {b: c}]}}\n"))
	f.Add([]byte("- a\n- b\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := Parse("R0013.yaml", data)
		if err != nil {
			if len(err.Error()) == 0 {
				t.Fatal("empty error message")
			}
			return
		}
		if r.ID != "R0013" || r.Version == "" || len(r.Emits) == 0 {
			t.Fatalf("accepted an incomplete rule: %+v", r)
		}
	})
}
