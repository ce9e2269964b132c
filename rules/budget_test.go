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

// matchText counts what an author writes in a match section: every string value (as the
// 22,269 figure counted them: kind included), the branch names, and every entry of the shared
// lists the rule uses. It returns the count and the longest string.
func matchText(r *Rule, def map[string]any) (n int, longest string) {
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
					n += len(k)
				}
				walk(e, k == "when")
			}
		}
	}
	walk(def["match"], false)
	return n, longest
}

func TestMatchBudget(t *testing.T) {
	used := map[string]bool{}
	total := 0
	for i := 1; i <= 30; i++ {
		id := fmt.Sprintf("R%04d", i)
		r, err := ReadFile("ttp/" + id + ".yaml")
		if err != nil {
			t.Fatal(err)
		}
		n, longest := matchText(r, r.Definition)
		total += n
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
	t.Logf("R0001-R0030: %d characters of match text + %d of the %d shared lists they use = %d (budget %d, was 22,269)", total, lists, len(used), total+lists, matchBudget)
	if total+lists > matchBudget {
		t.Errorf("%d characters, budget %d", total+lists, matchBudget)
	}
}
