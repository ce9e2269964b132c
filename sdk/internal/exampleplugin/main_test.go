package main

import (
	"testing"

	"github.com/decnet/ttp/abi"
	"github.com/decnet/ttp/rules"
	"github.com/decnet/ttp/sdk/sdktest"
)

const rule = `
id: R0901
name: Password guessing from one source
applies_to: [auth]
match:
  kind: lifter:example_bruteforce
  params: {min_failures: 5, max_window_s: 60}
emits:
  - {technique_id: T1110, sub_technique_id: T1110.001, tactic: credential-access, confidence: 0.7}
precision: M
evidence_fields: [failures_before, window_s]
`

func TestBruteForce(t *testing.T) {
	r, err := rules.Parse("R0901.yaml", []byte(rule))
	if err != nil {
		t.Fatal(err)
	}
	p, err := sdktest.New(bruteForce{}, sdktest.FromRules(r)...)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		payload map[string]any
		fires   bool
	}{
		{"at threshold", map[string]any{"failures_before": 5.0, "window_s": 30.0}, true},
		{"below threshold", map[string]any{"failures_before": 4.0, "window_s": 30.0}, false},
		{"window too long", map[string]any{"failures_before": 50.0, "window_s": 600.0}, false},
		{"no window", map[string]any{"failures_before": 50.0}, false},
		{"no count", map[string]any{"username": "root"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			drafts, err := p.Tag(abi.Event{SourceKind: abi.KindAuth, SourceID: "a1", Payload: tc.payload})
			if err != nil {
				t.Fatal(err)
			}
			if got := len(drafts) == 1; got != tc.fires {
				t.Fatalf("drafts %+v, want fired=%v", drafts, tc.fires)
			}
			if tc.fires {
				d := drafts[0]
				if d.RuleID != "R0901" || d.SubTechniqueID != "T1110.001" || d.Confidence != 0.7 ||
					d.Evidence["failures_before"] != int64(5) || d.Evidence["window_s"] != int64(30) {
					t.Errorf("draft %+v", d)
				}
			}
		})
	}
}

func TestBruteForceRejectsBadParams(t *testing.T) {
	p, err := sdktest.New(bruteForce{})
	if err != nil {
		t.Fatal(err)
	}
	rejected, err := p.Configure(abi.RuleConfig{
		ID: "R0902", Kind: "lifter:example_bruteforce", AppliesTo: []string{abi.KindAuth},
		Params: map[string]any{"min_failures": 0},
		Emits:  []abi.EmitConfig{{TechniqueID: "T1110", Tactic: "credential-access", Confidence: 0.5}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(rejected) != 1 || rejected[0].Message != "min_failures must be at least 1, got 0" {
		t.Fatalf("rejected %+v", rejected)
	}
}
