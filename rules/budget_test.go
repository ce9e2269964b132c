package rules

import (
	"fmt"
	"testing"
)

// Budget of the rewrite on structure (issue 12): the text of the match sections of R0001-R0030
// plus the shared lists they use was 22,269 characters of regular expression; it must be at
// most a third of that, and no single string may exceed 200 characters.
const (
	matchBudget  = 7423
	maxMatchText = 200
)

// matchText counts what an author writes in a match section as the 22,269 figure counted
// it: every string value (kind included), not the keys. It also returns the length of the
// branch names (keys of match.when), which the test reports beside the figure, and the
// longest string.
func matchText(def map[string]any) (n, names int, longest string) {
	var walk func(v any, branchNames bool)
	walk = func(v any, branchNames bool) {
		switch x := v.(type) {
		case string:
			n += len(x)
			if len(x) > len(longest) {
				longest = x
			}
		case []any:
			for _, e := range x {
				walk(e, false)
			}
		case map[string]any:
			for k, e := range x {
				if branchNames {
					names += len(k)
				}
				walk(e, k == "when")
			}
		}
	}
	walk(def["match"], false)
	return n, names, longest
}

func TestMatchBudget(t *testing.T) {
	used := map[string]bool{}
	total, names := 0, 0
	for i := 1; i <= 30; i++ {
		id := fmt.Sprintf("R%04d", i)
		r, err := ReadFile("ttp/" + id + ".yaml")
		if err != nil {
			t.Fatal(err)
		}
		n, nn, longest := matchText(r.Definition)
		total += n
		names += nn
		if len(longest) > maxMatchText {
			t.Errorf("%s: a string of %d characters (at most %d): %.60q...", id, len(longest), maxMatchText, longest)
		}
		for l := range r.lists {
			used[l] = true
		}
	}
	lists := 0
	for name := range used {
		lists += len(Macros()[name])
		for _, s := range Lists()[name] {
			lists += len(s)
			if len(s) > maxMatchText {
				t.Errorf("list %s: an entry of %d characters", name, len(s))
			}
		}
	}
	t.Logf("R0001-R0030: %d characters of match text + %d of the %d shared lists and macros they use = %d (budget %d, was 22,269); branch names add %d", total, lists, len(used), total+lists, matchBudget, names)
	if total+lists > matchBudget {
		t.Errorf("%d characters, budget %d", total+lists, matchBudget)
	}
}
