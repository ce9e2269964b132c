package abi

import (
	"regexp"
	"testing"
)

// The plain name checks of manifest.go against the regular expressions they replace.
var nameChecks = []struct {
	re    *regexp.Regexp
	check func(string) bool
}{
	{regexp.MustCompile(`^[a-z][a-z0-9_-]{0,62}$`), func(s string) bool { return isName(s, true) }},
	{regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`), func(s string) bool { return isName(s, false) }},
	{regexp.MustCompile(`^[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.-]+)?$`), isVersion},
	{regexp.MustCompile(`^lifter:[a-z][a-z0-9_]*$`), isRuleKind},
}

func TestNameChecks(t *testing.T) {
	long := "a123456789012345678901234567890123456789012345678901234567890bc"
	for _, s := range []string{
		"", "a", "A", "1a", "ab-c", "ab_c", "ab.c", "a\n", long, long + "d", "behavioral", "x-",
		"1.2.0", "1.2", "1.2.0-rc.1", "1.2.0+build", "1.2.0-", "01.2.3", "1..2", "1.2.3.4", "v1.2.3", "1.2.3-é",
		"lifter:", "lifter:a", "lifter:behavioral_", "lifter:Bad", "lifter:a-b", "lifter:" + long + long, "LIFTER:a",
	} {
		for i, c := range nameChecks {
			if got, want := c.check(s), c.re.MatchString(s); got != want {
				t.Errorf("check %d (%s) on %q: %v, the expression says %v", i, c.re, s, got, want)
			}
		}
	}
}

func FuzzNameChecks(f *testing.F) {
	for _, s := range []string{"a", "1.2.3-x", "lifter:x_"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for i, c := range nameChecks {
			if got, want := c.check(s), c.re.MatchString(s); got != want {
				t.Fatalf("check %d (%s) on %q: %v, the expression says %v", i, c.re, s, got, want)
			}
		}
	})
}
