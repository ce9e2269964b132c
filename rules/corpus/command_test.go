package corpus_test

import (
	"context"
	"testing"

	"github.com/decnet/ttp/abi"
	"github.com/decnet/ttp/rules"
	"github.com/decnet/ttp/rules/corpus"
)

// TestCommandCorpora scores every built-in (pattern and structure) rule on its corpus through
// the engine alone, without building plugins: the quick loop for rule authors. `ttp rules
// test` scores the same corpora through the host, plugins included.
func TestCommandCorpora(t *testing.T) {
	all, err := rules.LoadDir("../ttp")
	if err != nil {
		t.Fatal(err)
	}
	set, err := rules.NewRuleSet(all)
	if err != nil {
		t.Fatal(err)
	}
	corpora, err := corpus.LoadDir("../../testdata/corpus")
	if err != nil {
		t.Fatal(err)
	}
	var builtin []*rules.Rule
	keep := map[string]bool{}
	for _, r := range all {
		if r.IsPattern() {
			builtin = append(builtin, r)
			keep[r.ID] = true
		}
	}
	var cs []*corpus.Corpus
	for _, c := range corpora {
		if keep[c.Rule] {
			cs = append(cs, c)
		}
	}
	var drafts []abi.TagDraft
	eval := func(_ context.Context, ev abi.Event) (map[string]bool, error) {
		drafts = set.Eval(&ev, drafts[:0])
		fired := map[string]bool{}
		for _, d := range drafts {
			fired[d.RuleID] = true
		}
		return fired, nil
	}
	scores, err := corpus.Run(context.Background(), builtin, cs, eval)
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]*rules.Rule{}
	for _, r := range builtin {
		byID[r.ID] = r
	}
	structure := 0
	for _, r := range builtin {
		if r.IsStructure() {
			structure++
		}
	}
	t.Logf("%d built-in rules (%d on structure) scored on %d corpora", len(builtin), structure, len(cs))
	for _, s := range scores {
		if s.Pass() {
			continue
		}
		t.Errorf("%s: precision %.3f recall %.3f (band %s): %v", s.Rule, s.Precision, s.Recall, s.Band, s.Failures)
		mis, _ := corpus.Misfires(context.Background(), byID[s.Rule], cs, eval)
		for _, m := range mis {
			t.Logf("%s:   %s", s.Rule, m)
		}
	}
}
