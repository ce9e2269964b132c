package rules

import (
	"regexp/syntax"
	"sort"
	"unicode"
)

// Required-literal extraction for the engine's prefilter.
//
// A rule's prefilter is a formula over literal strings in disjunctive normal form: the rule's
// regexp can only match when, for at least one clause, every set of the clause has one of its
// strings in the text. A top-level alternation gives one clause per branch; a concatenation
// gives one clause that ANDs the literals of its parts, so `nc\s+-e\s+/bin/sh` needs both "nc"
// and "/bin/sh", and a short, common literal no longer selects the regexp on its own. Strings
// are ASCII lower-cased: the scan is case-insensitive, which only ever adds candidates.

const (
	minLiteral    = 2  // shortest usable literal, in bytes
	maxExact      = 32 // largest finite set of exact strings tracked for one node
	maxClauses    = 64 // clauses kept for one rule before they are merged into one
	maxClauseSets = 4  // sets kept in one clause (the most selective)
)

// clause is an AND of sets; each set is an OR of strings.
type clause [][]string

// litInfo describes what a syntax node can match: exact, when non-nil, is every string the node
// can match (a finite set, which may hold ""); dnf, when non-nil, is an OR of clauses one of
// which every match satisfies.
type litInfo struct {
	exact []string
	dnf   []clause
}

// requiredDNF returns the prefilter formula of a parsed, simplified regexp, or nil when it has
// none (the rule then runs on every text).
func requiredDNF(re *syntax.Regexp) []clause {
	return analyze(re).req()
}

// req is the node's formula: its exact strings as a one-set clause when usable, else its dnf.
func (l litInfo) req() []clause {
	if l.exact != nil {
		if usable(l.exact) {
			return []clause{{l.exact}}
		}
		return nil
	}
	return l.dnf
}

func usable(set []string) bool {
	if len(set) == 0 {
		return false
	}
	for _, s := range set {
		if len(s) < minLiteral {
			return false
		}
	}
	return true
}

// selectivity orders sets: a longer shortest string first, then fewer strings.
func moreSelective(a, b []string) bool {
	ma, mb := minLen(a), minLen(b)
	if ma != mb {
		return ma > mb
	}
	return len(a) < len(b)
}

func minLen(set []string) int {
	m := -1
	for _, s := range set {
		if m < 0 || len(s) < m {
			m = len(s)
		}
	}
	return m
}

func dedup(set []string) []string {
	seen := make(map[string]bool, len(set))
	out := set[:0:0]
	for _, s := range set {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

func lowerASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// flatten turns a formula into one set implied by it: the most selective set of every clause,
// joined. Used when a formula is too large to keep whole.
func flatten(dnf []clause) []string {
	var out []string
	for _, c := range dnf {
		best := c[0]
		for _, s := range c[1:] {
			if moreSelective(s, best) {
				best = s
			}
		}
		out = append(out, best...)
	}
	return dedup(out)
}

func analyze(re *syntax.Regexp) litInfo {
	switch re.Op {
	case syntax.OpEmptyMatch, syntax.OpBeginLine, syntax.OpEndLine, syntax.OpBeginText,
		syntax.OpEndText, syntax.OpWordBoundary, syntax.OpNoWordBoundary:
		return litInfo{exact: []string{""}}
	case syntax.OpLiteral:
		return litInfo{exact: []string{lowerASCII(string(re.Rune))}}
	case syntax.OpCharClass:
		var set []string
		for i := 0; i+1 < len(re.Rune); i += 2 {
			lo, hi := re.Rune[i], re.Rune[i+1]
			if hi > unicode.MaxASCII || int(hi-lo)+1+len(set) > 4 {
				return litInfo{}
			}
			for r := lo; r <= hi; r++ {
				set = append(set, lowerASCII(string(r)))
			}
		}
		if len(set) == 0 {
			return litInfo{}
		}
		return litInfo{exact: dedup(set)}
	case syntax.OpCapture:
		return analyze(re.Sub[0])
	case syntax.OpQuest:
		sub := analyze(re.Sub[0])
		if sub.exact != nil && len(sub.exact) < maxExact {
			return litInfo{exact: dedup(append([]string{""}, sub.exact...))}
		}
		return litInfo{}
	case syntax.OpPlus:
		return litInfo{dnf: analyze(re.Sub[0]).req()}
	case syntax.OpRepeat:
		if re.Min >= 1 {
			return litInfo{dnf: analyze(re.Sub[0]).req()}
		}
		return litInfo{}
	case syntax.OpConcat:
		return analyzeConcat(re.Sub)
	case syntax.OpAlternate:
		var exact []string
		var dnf []clause
		allExact, reqOK := true, true
		for _, sub := range re.Sub {
			info := analyze(sub)
			if info.exact == nil {
				allExact = false
			} else {
				exact = append(exact, info.exact...)
			}
			if r := info.req(); r == nil {
				reqOK = false
			} else {
				dnf = append(dnf, r...)
			}
		}
		if allExact {
			if exact = dedup(exact); len(exact) <= maxExact {
				return litInfo{exact: exact}
			}
		}
		if !reqOK {
			return litInfo{}
		}
		if len(dnf) > maxClauses {
			return litInfo{dnf: []clause{{flatten(dnf)}}}
		}
		return litInfo{dnf: dnf}
	}
	// AnyChar, AnyCharNotNL, Star, NoMatch and anything new: no information.
	return litInfo{}
}

// analyzeConcat ANDs what the parts of a concatenation require. Runs of adjacent exact parts
// are joined by cross product ("chmod" "\s"? "+x" gives longer literals); a repeated exact part
// (`\.+`) extends the run once and then ends it.
func analyzeConcat(subs []*syntax.Regexp) litInfo {
	run := []string{""}
	allExact := true
	var sets [][]string
	flush := func() {
		if usable(run) {
			sets = append(sets, run)
		}
		run = []string{""}
	}
	extend := func(with []string) bool {
		if len(run)*len(with) > maxExact {
			return false
		}
		next := make([]string, 0, len(run)*len(with))
		for _, a := range run {
			for _, b := range with {
				next = append(next, a+b)
			}
		}
		run = dedup(next)
		return true
	}
	var multi [][]clause // parts whose formula has several clauses
	for _, sub := range subs {
		info := analyze(sub)
		if info.exact != nil {
			if !extend(info.exact) {
				allExact = false
				flush()
				run = info.exact
			}
			continue
		}
		allExact = false
		if sub.Op == syntax.OpPlus || (sub.Op == syntax.OpRepeat && sub.Min >= 1) {
			if x := analyze(sub.Sub[0]).exact; x != nil {
				// X+ is X followed by X*: the run goes on through one X and ends; any match
				// of X+ also ends with an X, which starts the next run.
				if !extend(x) {
					flush()
					run = x
				}
				flush()
				run = x
				continue
			}
		}
		flush()
		switch r := info.req(); len(r) {
		case 0:
		case 1:
			sets = append(sets, r[0]...)
		default:
			multi = append(multi, r)
		}
	}
	if allExact {
		return litInfo{exact: run}
	}
	flush()
	if len(sets) == 0 && len(multi) == 1 {
		return litInfo{dnf: multi[0]} // the only requirement: keep its clauses whole
	}
	for _, m := range multi {
		if f := flatten(m); usable(f) {
			sets = append(sets, f)
		}
	}
	if len(sets) == 0 {
		return litInfo{}
	}
	sort.SliceStable(sets, func(i, j int) bool { return moreSelective(sets[i], sets[j]) })
	if len(sets) > maxClauseSets {
		sets = sets[:maxClauseSets]
	}
	return litInfo{dnf: []clause{sets}}
}

// foldRisky reports whether the regexp may match non-ASCII input that the ASCII prefilter
// would not see as containing its literals: a case-folded literal whose letters fold to
// non-ASCII runes (k folds to the Kelvin sign, s to the long s) or any non-ASCII literal.
// Such rules run on every input that contains a byte >= 0x80.
func foldRisky(re *syntax.Regexp) bool {
	if re.Op == syntax.OpLiteral {
		for _, r := range re.Rune {
			if r > unicode.MaxASCII {
				return true
			}
			if re.Flags&syntax.FoldCase != 0 && foldsOutsideASCII(r) {
				return true
			}
		}
	}
	for _, sub := range re.Sub {
		if foldRisky(sub) {
			return true
		}
	}
	return false
}

func foldsOutsideASCII(r rune) bool {
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		if f > unicode.MaxASCII {
			return true
		}
	}
	return false
}
