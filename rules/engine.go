package rules

import (
	"math/bits"
	"regexp/syntax"
	"sync"

	"github.com/decnet/ttp/abi"
	"github.com/decnet/ttp/rules/internal/ahocorasick"
	"github.com/decnet/ttp/shell"
)

// The built-in engine evaluates every `match.kind: pattern` rule of an event's source kind.
//
// Running every regexp on every command is what a naive engine does, and it is slow (figures
// in RATIONALE.md, "A prefilter in front of the regex engine"); almost every command fires
// nothing. So each pattern's
// required literals are extracted from its syntax tree, one Aho-Corasick scan per field finds
// which literals occur, and only the rules whose literals occur (plus the few with no usable
// literal) run their regexp. The result is exactly that of the naive loop: the tests and a
// fuzz target compare the two.

// kindEngine is the prefiltered engine for one source kind.
type kindEngine struct {
	rules  []*Rule // pattern rules of this kind, ordered by id; bit i of a hit set is rules[i]
	fields []abi.Path
	field  []int // rules[i] reads fields[field[i]]
	groups []fieldGroup
	words  int
	// structure rules, per field index: the field is parsed once per event for all of them
	structs map[int]*structEngine
	// verdicts remembers what recent texts fired, when the kind's rules read one field
	verdicts *verdictCache
}

// firing is one rule an event fires: its index and the branches that matched (all ones for
// a pattern rule).
type firing struct {
	rule int32
	mask uint64
}

// evalState is the per-event scratch of the structure rules, pooled so that an evaluation
// allocates nothing in steady state.
type evalState struct {
	parser shell.Parser
	line   shell.Line
	masks  []uint64
	match  matchState
}

var evalStates = sync.Pool{New: func() any { return new(evalState) }}

// fieldGroup is the prefilter of the rules that read one field: one automaton over the literal
// sets of all their formulas.
type fieldGroup struct {
	m        *ahocorasick.Matcher // nil when no rule of the group has a formula
	setWords int                  // words of a set-hit bitset
	members  []member
	always   bool // some member has no formula: evaluate members even without a literal hit
}

// member is one rule of a field group and its prefilter formula, as set ids.
type member struct {
	rule  int
	dnf   [][]int // OR of clauses, each an AND of set ids; nil: the rule always runs
	risky bool    // also runs when the text has a non-ASCII byte
}

func newKindEngine(kind string, rules []*Rule) *kindEngine {
	e := &kindEngine{rules: rules, words: ahocorasick.Words(len(rules)), field: make([]int, len(rules))}
	fieldIdx := map[string]int{}
	type lits struct {
		patterns []string
		sets     []int
		nsets    int
	}
	var groupLits []lits
	structRules := map[int][]*Rule{}
	structIdx := map[int][]int{}
	for i, r := range rules {
		p := r.fields[kind]
		fi, ok := fieldIdx[p.String()]
		if !ok {
			fi = len(e.fields)
			fieldIdx[p.String()] = fi
			e.fields = append(e.fields, p)
			e.groups = append(e.groups, fieldGroup{})
			groupLits = append(groupLits, lits{})
		}
		e.field[i] = fi
		if r.IsStructure() {
			structRules[fi] = append(structRules[fi], r)
			structIdx[fi] = append(structIdx[fi], i)
			continue
		}
		g, gl := &e.groups[fi], &groupLits[fi]
		m := member{rule: i}
		if tree, err := syntax.Parse(r.Match.Pattern, syntax.Perl); err == nil {
			tree = tree.Simplify()
			m.risky = foldRisky(tree)
			for _, c := range requiredDNF(tree) {
				ids := make([]int, 0, len(c))
				for _, set := range c {
					for _, l := range set {
						gl.patterns = append(gl.patterns, l)
						gl.sets = append(gl.sets, gl.nsets)
					}
					ids = append(ids, gl.nsets)
					gl.nsets++
				}
				m.dnf = append(m.dnf, ids)
			}
		}
		if m.dnf == nil {
			g.always = true
		}
		g.members = append(g.members, m)
	}
	for fi, rs := range structRules {
		if e.structs == nil {
			e.structs = map[int]*structEngine{}
		}
		st := newStructEngine(rs)
		// branch refs index the group's rules; map them to the kind's rule indexes
		idx := structIdx[fi]
		for k, refs := range st.byProgram {
			for j := range refs {
				refs[j].rule = idx[refs[j].rule]
			}
			st.byProgram[k] = refs
		}
		for _, refs := range [][]branchRef{st.any, st.redirected, st.assigned} {
			for j := range refs {
				refs[j].rule = idx[refs[j].rule]
			}
		}
		e.structs[fi] = st
	}
	for fi := range e.groups {
		gl := groupLits[fi]
		e.groups[fi].setWords = ahocorasick.Words(gl.nsets)
		if gl.nsets > 0 {
			e.groups[fi].m = ahocorasick.New(gl.patterns, gl.sets, gl.nsets)
		}
	}
	if len(e.fields) == 1 {
		e.verdicts = newVerdictCache()
	}
	return e
}

// candidates marks in hits the members whose formula holds for text.
func (g *fieldGroup) candidates(text string, hits []uint64) {
	var buf [8]uint64
	sets := buf[:0]
	if g.setWords <= len(buf) {
		sets = buf[:g.setWords]
	} else {
		sets = make([]uint64, g.setWords)
	}
	any := false
	if g.m != nil {
		g.m.Scan(text, sets)
		for _, w := range sets {
			any = any || w != 0
		}
	}
	nonASCII := !isASCII(text)
	if !any && !g.always && !nonASCII {
		return // the common case: no literal of any rule occurs
	}
	for _, m := range g.members {
		if m.dnf == nil || (nonASCII && m.risky) || holds(m.dnf, sets) {
			hits[m.rule/64] |= 1 << (m.rule % 64)
		}
	}
}

func holds(dnf [][]int, sets []uint64) bool {
	for _, c := range dnf {
		ok := true
		for _, id := range c {
			if sets[id/64]&(1<<(id%64)) == 0 {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

// maxStackFields bounds the per-event field texts kept on the stack.
const maxStackFields = 8

// Evaluates reports whether the built-in engine has rules for events of kind: when it has
// none, Eval appends nothing for them.
func (s *RuleSet) Evaluates(kind string) bool { return s.engines[kind] != nil }

// Eval appends to out one draft per emits entry of every pattern rule that fires on ev, in
// rule id order. It does not allocate when nothing fires (and the kind has at most 256
// pattern rules reading at most 8 fields).
func (s *RuleSet) Eval(ev *abi.Event, out []abi.TagDraft) []abi.TagDraft {
	e := s.engines[ev.SourceKind]
	if e == nil {
		return out
	}
	var firedBuf [16]firing
	if e.verdicts != nil {
		text, ok := e.fields[0].LookupString(ev)
		if !ok {
			return out
		}
		v, h := e.verdicts.lookup(text)
		if v != nil {
			return e.emit(v.fired, e.fields[0], text, out)
		}
		fired := e.decide(ev, firedBuf[:0])
		e.verdicts.store(h, text, fired)
		return e.emit(fired, e.fields[0], text, out)
	}
	fired := e.decide(ev, firedBuf[:0])
	for _, f := range fired {
		fi := e.field[f.rule]
		text, _ := e.fields[fi].LookupString(ev)
		out = e.rules[f.rule].emitDrafts(e.fields[fi], text, f.mask, out)
	}
	return out
}

// emit appends the drafts of the firings, all of one field's text.
func (e *kindEngine) emit(fired []firing, field abi.Path, text string, out []abi.TagDraft) []abi.TagDraft {
	for _, f := range fired {
		out = e.rules[f.rule].emitDrafts(field, text, f.mask, out)
	}
	return out
}

// decide appends to fired, in rule order, the rules the event fires and which of their
// branches matched: all the work of an evaluation but the drafts.
func (e *kindEngine) decide(ev *abi.Event, fired []firing) []firing {
	var hitBuf [4]uint64
	var hits []uint64
	if e.words <= len(hitBuf) {
		hits = hitBuf[:e.words]
	} else {
		hits = make([]uint64, e.words)
	}
	var textBuf [maxStackFields]string
	texts := textBuf[:0]
	if len(e.fields) > maxStackFields {
		texts = make([]string, 0, len(e.fields))
	}
	var st *evalState
	for fi, p := range e.fields {
		text, ok := p.LookupString(ev)
		texts = append(texts, text)
		if !ok {
			continue
		}
		e.groups[fi].candidates(text, hits)
		if se := e.structs[fi]; se != nil {
			if st == nil {
				st = evalStates.Get().(*evalState)
				st.masks = zeroed(st.masks, len(e.rules))
			}
			st.line = st.parser.Parse(text)
			se.match(&st.line, st.masks, &st.match)
		}
	}
	if st != nil {
		for i, m := range st.masks {
			if m != 0 {
				hits[i/64] |= 1 << (i % 64)
			}
		}
	}
	for w, word := range hits {
		for word != 0 {
			i := w*64 + bits.TrailingZeros64(word)
			word &= word - 1
			text := texts[e.field[i]]
			r := e.rules[i]
			mask := ^uint64(0)
			if r.IsStructure() {
				mask = st.masks[i]
			}
			if r.holds(text, mask) {
				fired = append(fired, firing{rule: int32(i), mask: mask})
			}
		}
	}
	if st != nil {
		evalStates.Put(st)
	}
	return fired
}

// zeroed returns s resized to n words, all zero.
func zeroed(s []uint64, n int) []uint64 {
	if cap(s) < n {
		return make([]uint64, n)
	}
	s = s[:n]
	clear(s)
	return s
}

// evalNaive is the reference the prefiltered Eval must equal: every pattern rule of the kind,
// in id order, runs its regexp.
func (s *RuleSet) evalNaive(ev *abi.Event, out []abi.TagDraft) []abi.TagDraft {
	e := s.engines[ev.SourceKind]
	if e == nil {
		return out
	}
	for i, r := range e.rules {
		p := e.fields[e.field[i]]
		text, ok := p.LookupString(ev)
		if !ok {
			continue
		}
		if r.IsStructure() {
			masks := make([]uint64, 1)
			matchNaive([]*Rule{r}, shell.Parse(text), masks)
			out = r.fireStructure(p, text, masks[0], out)
			continue
		}
		out = r.fire(p, text, out)
	}
	return out
}

// fire runs the rule on text and appends its drafts when it fires: the naive path.
func (r *Rule) fire(field abi.Path, text string, out []abi.TagDraft) []abi.TagDraft {
	if !r.holds(text, ^uint64(0)) {
		return out
	}
	return r.emitDrafts(field, text, ^uint64(0), out)
}

// holds reports whether the rule fires on text: a pattern rule's regexp matches, or (for a
// structure rule) some branch matched (mask), and the exclude does not match.
func (r *Rule) holds(text string, mask uint64) bool {
	if r.IsStructure() {
		if mask == 0 {
			return false
		}
	} else if !r.re.MatchString(text) {
		return false
	}
	return r.exclude == nil || !r.exclude.MatchString(text)
}

// emitDrafts appends the drafts of the rule's emits that mask selects (an emit without
// `when` is always selected).
func (r *Rule) emitDrafts(field abi.Path, text string, mask uint64, out []abi.TagDraft) []abi.TagDraft {
	start := len(out)
	for _, em := range r.Emits {
		if em.whenMask != 0 && em.whenMask&mask == 0 {
			continue
		}
		if i := sameTag(out[start:], em); i >= 0 {
			// Two emits of one technique and tactic (a strong and a weak branch both held)
			// would be one tag_uuid twice: keep one, at the higher confidence.
			out[start+i].Confidence = max(out[start+i].Confidence, em.Confidence)
			continue
		}
		out = append(out, abi.TagDraft{
			RuleID:         r.ID,
			TechniqueID:    em.TechniqueID,
			SubTechniqueID: em.SubTechniqueID,
			Tactic:         em.Tactic,
			Confidence:     em.Confidence,
			Evidence:       r.evidence(field, text), // sigmakind.go
		})
	}
	return out
}

// sameTag returns the index in drafts of the draft em would duplicate (same technique,
// sub-technique and tactic, hence the same tag_uuid), or -1.
func sameTag(drafts []abi.TagDraft, em Emit) int {
	for i := range drafts {
		d := &drafts[i]
		if d.TechniqueID == em.TechniqueID && d.SubTechniqueID == em.SubTechniqueID && d.Tactic == em.Tactic {
			return i
		}
	}
	return -1
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
