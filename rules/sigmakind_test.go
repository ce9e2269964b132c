package rules

import (
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/decnet/ttp/abi"
)

// loadWithSigma is the shipped rules plus the converted Sigma rules of dir (rules/sigmahq, or
// $TTP_SIGMA_DIR: a full import, e.g. of SigmaHQ's linux process_creation set).
func loadWithSigma(tb testing.TB) (*RuleSet, int) {
	tb.Helper()
	dir := "sigmahq"
	if d := os.Getenv("TTP_SIGMA_DIR"); d != "" {
		dir = d
	}
	own, err := LoadDir("ttp")
	if err != nil {
		tb.Fatal(err)
	}
	sig, err := LoadDir(dir)
	if err != nil {
		tb.Fatalf("%s: %v", dir, err)
	}
	set, err := NewRuleSet(append(own, sig...))
	if err != nil {
		tb.Fatal(err)
	}
	return set, len(sig)
}

// TestSigmaEngineEqualsNaive: with Sigma rules loaded beside the structure and regexp rules,
// the indexed engine (by program name, lower-cased name and peeled wrappers) still equals the
// naive loop, and the tags of a Sigma rule carry its id and author.
func TestSigmaEngineEqualsNaive(t *testing.T) {
	set, n := loadWithSigma(t)
	if n == 0 {
		t.Fatal("no Sigma rules loaded")
	}
	cmds := append(corpusCommands(t), benchCommands(t, 2000)...)
	cmds = append(cmds, "SUDO -u x NICE /BIN/SH", "nice /bin/sh", "env /bin/bash", "WGET http://a -O /tmp/x", "Chmod 777 /tmp/x")
	fired := 0
	for _, c := range cmds {
		ev := commandEvent(c)
		got, want := set.Eval(ev, nil), set.evalNaive(ev, nil)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: prefiltered %v, naive %v", c, ids(got), ids(want))
		}
		for _, d := range got {
			if r, _ := set.Rule(d.RuleID); r.Match.Kind == KindSigma {
				fired++
				if d.Evidence["sigma_id"] == nil || d.Evidence["sigma_author"] == nil {
					t.Fatalf("%s on %q: evidence %v lacks the Sigma attribution", d.RuleID, c, d.Evidence)
				}
			}
		}
	}
	if fired == 0 {
		t.Fatal("no Sigma rule fired: the comparison proves nothing")
	}
	indexed := 0
	for _, r := range set.Rules() {
		if r.Match.Kind == KindSigma && len(r.branches[0].Program) > 0 {
			indexed++
		}
	}
	t.Logf("%d Sigma rules, %d indexed by program; %d commands, %d Sigma tags", n, indexed, len(cmds), fired)
}

// TestSigmaRuleErrors: a bad detection in a rule file is reported at its line and field.
func TestSigmaRuleErrors(t *testing.T) {
	src := `id: R5000
name: x
applies_to: [command]
match:
  kind: sigma
  sigma_id: 11111111-2222-3333-4444-555555555555
  detection:
    sel:
      User: root
    condition: sel
emits:
  - {technique_id: T1059, tactic: execution, confidence: 0.5}
precision: M
evidence_fields: [command_text]
`
	_, err := Parse("R5000.yaml", []byte(src))
	var el ErrorList
	if !errors.As(err, &el) || len(el) != 1 {
		t.Fatalf("got %v", err)
	}
	if e := el[0]; e.Line != 9 || e.Field != "match.detection.sel.User" || !errors.Is(e, ErrBadValue) || !strings.Contains(e.Error(), "R5000.yaml:9") {
		t.Errorf("got %v (line %d field %q)", e, e.Line, e.Field)
	}
	_, err = Parse("R5000.yaml", []byte(strings.Replace(src, "applies_to: [command]", "applies_to: [command, http]", 1)))
	if err == nil || !strings.Contains(err.Error(), "applies_to: bad value: a sigma rule reads command lines") {
		t.Errorf("applies_to http: %v", err)
	}
	bad := strings.Replace(src, "  sigma_id: 11111111-2222-3333-4444-555555555555\n", "  pattern: x\n", 1)
	_, err = Parse("R5000.yaml", []byte(bad))
	if err == nil || !strings.Contains(err.Error(), "match.pattern: unknown key") || !strings.Contains(err.Error(), "match.sigma_id: required") {
		t.Errorf("got %v", err)
	}
}

// BenchmarkEngineWithSigma is the per-command cost of the shipped rules plus the Sigma rules
// (TTP_SIGMA_DIR for a full import) on the realistic command mix; compare with
// BenchmarkEnginePrefiltered.
func BenchmarkEngineWithSigma(b *testing.B) {
	set, _ := loadWithSigma(b)
	cmds := benchCommands(b, 10000)
	evs := make([]*abi.Event, len(cmds))
	for i, c := range cmds {
		evs[i] = commandEvent(c)
	}
	out := make([]abi.TagDraft, 0, 64)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		out = set.Eval(evs[i%len(evs)], out[:0])
	}
}
