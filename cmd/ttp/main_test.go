package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/decnet/ttp/abi"
	"github.com/decnet/ttp/ingest"
)

func ttp(t *testing.T, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(context.Background(), args, strings.NewReader(stdin), &out, &errb)
	var ee exitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = int(ee)
	default:
		errb.WriteString(err.Error())
		code = 1
	}
	return out.String(), errb.String(), code
}

const rulesDir = "../../rules/ttp"

func TestTagBadLinesGoOn(t *testing.T) {
	in := strings.Join([]string{
		`{"source_kind":"command","source_id":"a","payload":{"command_text":"uname -a"}}`,
		`{not json`,
		`{"source_kind":"command","payload":{"command_text":"uname -a"}}`,
		``,
		`{"source_kind":"command","source_id":"b","payload":{"command_text":"cat /etc/shadow"}}`,
		`{"source_kind":"command","source_id":"c","payload":{"command_text":"` + strings.Repeat("x", maxLine+10) + `"}}`,
		`{"source_kind":"command","source_id":"d","payload":{"command_text":"uname -a"}}`,
	}, "\n")
	stdout, stderr, code := ttp(t, in, "tag", "--rules", rulesDir)
	if code != 1 {
		t.Fatalf("exit %d, want 1 (bad lines)", code)
	}
	for _, want := range []string{"stdin:2:", "stdin:3:", `"source_id"`, "stdin:6: line longer", "3 bad line(s) of 6"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	ids := map[string]bool{}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	var sum ingest.SummaryLine
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &sum); err != nil || sum.Ingest == nil {
		t.Fatalf("last line %q is not the summary line (%v)", lines[len(lines)-1], err)
	}
	if c := sum.Ingest; c.Input != "jsonl" || c.Lines != 7 || c.Events != 3 || c.Malformed != 3 || c.Skipped != 1 || len(c.Files) != 1 || c.Files[0] != "-" {
		t.Errorf("summary %+v, want jsonl, 7 lines, 3 events, 3 malformed, 1 skipped, files [-]", *c)
	}
	for _, line := range lines[:len(lines)-1] {
		var tag abi.Tag
		if err := json.Unmarshal([]byte(line), &tag); err != nil {
			t.Fatalf("output line %q: %v", line, err)
		}
		ids[tag.SourceID] = true
		if tag.TagUUID == "" || tag.RuleVersion == "" || tag.Producer != "engine" {
			t.Errorf("incomplete tag %+v", tag)
		}
	}
	if !ids["a"] || !ids["b"] || !ids["d"] {
		t.Errorf("tags for %v, want a, b and d (the run goes on after bad lines)", ids)
	}
}

func TestTagSampleTable(t *testing.T) {
	stdout, stderr, code := ttp(t, "", "tag", "--rules", rulesDir, "--format", "table", "../../testdata/events/sample.jsonl")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"TECHNIQUE", "TACTIC", "RULE", "CONFIDENCE", "SOURCE", "T1098.004", "persistence", "R0013", "command:cowrie-9c2e#4", "events (0 bad lines)"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("table lacks %q", want)
		}
	}
}

func TestTagState(t *testing.T) {
	state := filepath.Join(t.TempDir(), "state.yaml")
	os.WriteFile(state, []byte("R0001: {state: disabled, reason: test}\nR0024: {state: clipped, confidence_max: 0.25}\n"), 0o644)
	in := `{"source_kind":"command","source_id":"a","payload":{"command_text":"uname -a; cat /etc/shadow"}}`
	stdout, stderr, code := ttp(t, in, "tag", "--rules", rulesDir, "--state", state)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if strings.Contains(stdout, `"rule_id":"R0001"`) {
		t.Error("disabled rule tagged")
	}
	if !strings.Contains(stdout, `"rule_id":"R0024"`) || !strings.Contains(stdout, `"confidence":0.25`) {
		t.Errorf("clipped rule not capped:\n%s", stdout)
	}
	os.WriteFile(state, []byte("R0001: {state: off}\n"), 0o644)
	if _, stderr, code := ttp(t, in, "tag", "--rules", rulesDir, "--state", state); code == 0 || !strings.Contains(stderr, "state.yaml") {
		t.Errorf("bad state file accepted (exit %d): %s", code, stderr)
	}
}

func TestRulesLint(t *testing.T) {
	stdout, _, code := ttp(t, "", "rules", "lint", rulesDir)
	if code != 0 || !strings.Contains(stdout, "rules OK, 0 warning(s)") {
		t.Fatalf("shipped rules: exit %d: %s", code, stdout)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "R0100.yaml"), []byte("id: R0100\nname: x\napplies_to: [command]\nmatch: {kind: pattern, pattern: 'a('}\nemits: [{technique_id: T1082, tactic: persistence, confidence: 2}]\nprecision: H\nevidence_fields: [command_text]\n"), 0o644)
	_, stderr, code := ttp(t, "", "rules", "lint", dir)
	if code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	for _, want := range []string{"R0100.yaml:4: match.pattern", "R0100.yaml:5: emits[0].tactic", "R0100.yaml:5: emits[0].confidence"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("lint output lacks %q:\n%s", want, stderr)
		}
	}
}

// TestShippedCorpora runs `ttp rules test` on the shipped rules, lifter rules through the
// built plugins: every rule holds its band.
func TestShippedCorpora(t *testing.T) {
	if w, _ := filepath.Glob("../../plugins/*.wasm"); len(w) == 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("no plugins/*.wasm: run make plugins (make test does)")
		}
		t.Skip("no plugins/*.wasm built (make plugins)")
	}
	stdout, _, code := ttp(t, "", "rules", "test", "--corpus", "../../testdata/corpus", "--plugins", "../../plugins", rulesDir)
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, stdout)
	}
	if !strings.Contains(stdout, " passed, 0 failed") {
		t.Errorf("summary:\n%s", stdout)
	}
}

func TestRulesTestFailsBelowBand(t *testing.T) {
	rdir, cdir := t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(rdir, "R0100.yaml"), []byte("id: R0100\nname: x\napplies_to: [command]\nmatch: {kind: pattern, pattern: 'wget'}\nemits: [{technique_id: T1105, tactic: command-and-control, confidence: 0.8}]\nprecision: H\nevidence_fields: [command_text]\n"), 0o644)
	var c strings.Builder
	c.WriteString("rule: R0100\npositives:\n")
	for i := 0; i < 10; i++ {
		c.WriteString("  - 'wget http://x/" + string(rune('a'+i)) + "'\n")
	}
	c.WriteString("negatives:\n")
	for i := 0; i < 15; i++ {
		c.WriteString("  - 'ls " + string(rune('a'+i)) + "'\n")
	}
	c.WriteString("lookalikes:\n  - 'apt install wget'\n  - 'man wget'\n  - 'which wget'\n  - 'wget --version'\n  - 'grep wget log'\n")
	os.WriteFile(filepath.Join(cdir, "R0100.yaml"), []byte(c.String()), 0o644)
	stdout, _, code := ttp(t, "", "rules", "test", "--corpus", cdir, rdir)
	if code != 1 || !strings.Contains(stdout, "FAIL") || !strings.Contains(stdout, "precision 0.667 below band H") || !strings.Contains(stdout, "false positive: man wget") {
		t.Fatalf("exit %d:\n%s", code, stdout)
	}
}

func TestUsage(t *testing.T) {
	if _, stderr, code := ttp(t, "", "frobnicate"); code != 2 || !strings.Contains(stderr, "unknown command") {
		t.Errorf("exit %d: %s", code, stderr)
	}
	if stdout, _, code := ttp(t, "", "version"); code != 0 || !strings.HasPrefix(stdout, "ttp ") {
		t.Errorf("version: %d %s", code, stdout)
	}
}

// TestTagBuiltinRules runs `ttp tag` where no rules/ttp exists (this package's directory), as
// an installed binary runs on a sensor: it tags with the rules built in, says so, and tags as
// the checkout's directory does.
func TestTagBuiltinRules(t *testing.T) {
	if _, err := os.Stat("rules/ttp"); err == nil {
		t.Fatal("test assumes no rules/ttp beside the package")
	}
	const in = `{"source_kind":"command","source_id":"b-1","attacker_uuid":"6f1c2d0e-1b7a-4f2e-9a51-3c0de1a2b001","session_id":"s","decky_id":"d","observed_at":"2026-11-27T04:12:01Z","payload":{"command_text":"curl -s http://169.254.169.254/latest/meta-data/iam/security-credentials/"}}` + "\n"
	builtin, stderr, code := ttp(t, in, "tag", "--plugins", "none", "-")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stderr, "rules built into this binary") {
		t.Errorf("stderr does not say the built-in rules are used: %s", stderr)
	}
	if !strings.Contains(builtin, `"R0110"`) || !strings.Contains(builtin, "T1552.005") {
		t.Errorf("built-in rules did not tag the metadata fetch: %s", builtin)
	}
	fromDir, stderr, code := ttp(t, in, "tag", "--rules", rulesDir, "--plugins", "none", "-")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	createdAt := regexp.MustCompile(`"created_at":"[^"]*"`)
	if createdAt.ReplaceAllString(fromDir, "") != createdAt.ReplaceAllString(builtin, "") {
		t.Errorf("built-in and directory tags differ:\n%s\n%s", builtin, fromDir)
	}
	if _, stderr, code := ttp(t, in, "tag", "--rules", "rules/none", "-"); code == 0 || !strings.Contains(stderr, "rules/none") {
		t.Errorf("a named missing directory: exit %d, stderr %q; want an error naming it", code, stderr)
	}
}
