package rules

import (
	"fmt"
	"regexp/syntax"
)

// maxFastProgram is the largest compiled regexp program Go's regexp runs with its
// backtracker; larger programs fall back to the NFA simulation, several times slower.
const maxFastProgram = 500

// Warnings returns what is legal but costly about a rule: a pattern that the prefilter cannot
// select (it runs on every event of its kinds) or that compiles past the backtracker's limit.
func (r *Rule) Warnings() []string {
	if !r.IsPattern() {
		return nil
	}
	var out []string
	for _, p := range []struct{ field, src string }{{"match.pattern", r.Match.Pattern}, {"match.exclude", r.Match.Exclude}} {
		if p.src == "" {
			continue
		}
		tree, err := syntax.Parse(p.src, syntax.Perl)
		if err != nil {
			continue
		}
		tree = tree.Simplify()
		if prog, err := syntax.Compile(tree); err == nil && len(prog.Inst) > maxFastProgram {
			out = append(out, fmt.Sprintf("%s: %s: compiles to %d instructions (over %d, Go's regexp falls back to its slower NFA)", r.File, p.field, len(prog.Inst), maxFastProgram))
		}
		if p.field == "match.pattern" && requiredDNF(tree) == nil {
			out = append(out, fmt.Sprintf("%s: %s: no required literal of %d+ bytes: the regexp runs on every event", r.File, p.field, minLiteral))
		}
	}
	return out
}
