package main

import (
	"strings"

	"github.com/decnet/ttp/sdk"
)

// The detectors' word lists are gathered into one dictionary per configuration, so that an
// event costs one pass over its text whatever the number of rules and keywords:
//
//   - every list of command names (wordSet) goes into one hash table, probed once per segment
//     for its command word; each entry says which lists hold the word;
//   - every list of substrings (keywords) goes into one Aho-Corasick automaton, run once over
//     each command line; each match says which lists hold the keyword.
//
// Go compiled to WebAssembly pays for every call and every loop iteration (the host also
// checks for a deadline in loops), so scanning a line once through a table beats testing each
// keyword in turn by a factor of the number of keywords.

// wordSet is a list of command names, identified in the dictionary by id.
type wordSet struct {
	id    int
	words []string
}

// keywords is a list of substrings, identified in the dictionary by id.
type keywords struct {
	id    int
	words []string
}

// ref says that a dictionary entry is entry idx of list.
type ref struct {
	list, idx int32
}

// match is a keyword found in a command line: its dictionary keyword (Index) and its byte
// offsets in the command line (From, To), as the host's literal scan reports it.
type match = sdk.LiteralMatch

// dictionary holds the lists the rules of one configuration registered, and, once built,
// the tables to look them up.
type dictionary struct {
	verbLists [][]string
	kwLists   [][]string
	built     bool

	// command names: an open-addressing table over the distinct names
	vwords []string
	vhash  []uint64
	vslots []int32 // index into vwords, -1 when empty
	vrefs  [][]ref
	vmask  []uint64 // lists with id < 64 holding the name, as bits

	// keywords
	kwords []string
	krefs  [][]ref
	kmask  []uint64      // lists with id < 64 holding the keyword, as bits
	lits   *sdk.Literals // the keywords as the host's literal set, nil when it refused them
	ac     automaton     // the same in the guest, built only when the host refused the set
}

// reset forgets every list: a new configuration starts.
func (d *dictionary) reset() { *d = dictionary{} }

func (d *dictionary) addVerbs(words []string) wordSet {
	d.built = false
	d.verbLists = append(d.verbLists, words)
	return wordSet{id: len(d.verbLists) - 1, words: words}
}

func (d *dictionary) addKeywords(words []string) keywords {
	d.built = false
	d.kwLists = append(d.kwLists, words)
	return keywords{id: len(d.kwLists) - 1, words: words}
}

// indexWords lists the distinct words of lists, each with where it occurs (list, position)
// and a mask of the first 64 lists holding it: the tables build makes for verbs and keywords.
func indexWords(lists [][]string) (words []string, refs [][]ref, mask []uint64) {
	ids := map[string]int{}
	for l, list := range lists {
		for i, w := range list {
			id, ok := ids[w]
			if !ok {
				id = len(words)
				ids[w] = id
				words = append(words, w)
				refs = append(refs, nil)
				mask = append(mask, 0)
			}
			refs[id] = append(refs[id], ref{int32(l), int32(i)})
			if l < 64 {
				mask[id] |= 1 << l
			}
		}
	}
	return words, refs, mask
}

// build makes the lookup tables from the lists.
func (d *dictionary) build() {
	d.vwords, d.vrefs, d.vmask = indexWords(d.verbLists)
	n := 16
	for n < 2*len(d.vwords) {
		n *= 2
	}
	d.vslots, d.vhash = make([]int32, n), make([]uint64, n)
	for i := range d.vslots {
		d.vslots[i] = -1
	}
	for i, w := range d.vwords {
		h := hashWord(w)
		j := int(h) & (n - 1)
		for d.vslots[j] >= 0 {
			j = (j + 1) & (n - 1)
		}
		d.vslots[j], d.vhash[j] = int32(i), h
	}

	d.kwords, d.krefs, d.kmask = indexWords(d.kwLists)
	// One host scan a line instead of a loop a byte in the guest (RATIONALE.md, "Host
	// functions for guests"); the guest's own automaton stays for a set over the host's bounds.
	var err error
	if d.lits, err = sdk.NewLiterals(d.kwords, false); err != nil {
		d.lits, d.ac = nil, buildAutomaton(d.kwords)
	}
	d.built = true
}

// verb returns the dictionary id of command name w, -1 when no list holds it.
func (d *dictionary) verb(w string) int32 {
	if len(d.vslots) == 0 {
		return -1
	}
	h := hashWord(w)
	mask := len(d.vslots) - 1
	for j := int(h) & mask; ; j = (j + 1) & mask {
		i := d.vslots[j]
		if i < 0 {
			return -1
		}
		if d.vhash[j] == h && d.vwords[i] == w {
			return i
		}
	}
}

// verbIndex returns the position of command name id vid in list, -1 when the list lacks it.
func (d *dictionary) verbIndex(vid int32, list int) int {
	if vid < 0 {
		return -1
	}
	if list < 64 && d.vmask[vid]&(1<<list) == 0 {
		return -1
	}
	for _, r := range d.vrefs[vid] {
		if int(r.list) == list {
			return int(r.idx)
		}
	}
	return -1
}

// kwIndex returns the position of dictionary keyword kw in list, -1 when the list lacks it.
func (d *dictionary) kwIndex(kw int32, list int) int {
	for _, r := range d.krefs[kw] {
		if int(r.list) == list {
			return int(r.idx)
		}
	}
	return -1
}

// hashWord is FNV-1a over w.
func hashWord(w string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(w); i++ {
		h ^= uint64(w[i])
		h *= 1099511628211
	}
	return h
}

// automaton is an Aho-Corasick automaton over bytes: a transition table over byte classes
// (the bytes the keywords use, plus one class for all others). Building it costs one pass over
// the keywords (the trie and its failure links); the transitions a state lacks in the trie are
// filled in the first time a scan reaches the state, so a configuration costs little up front
// and every call after the first few runs on a plain table.
type automaton struct {
	class  [256]uint8
	nclass int32
	delta  []int32   // state*nclass + class -> state; in the trie, 0 means "no child"
	flags  []uint8   // per state: rowDone, hasOut
	fail   []int32   // per state: the longest proper suffix that is a trie state
	out    [][]int32 // per state: the keywords ending there, suffixes included
	lens   []int32   // per keyword
}

func buildAutomaton(words []string) automaton {
	var a automaton
	a.nclass = 1
	for _, w := range words {
		for i := 0; i < len(w); i++ {
			if a.class[w[i]] == 0 && a.nclass < 255 {
				a.class[w[i]] = uint8(a.nclass)
				a.nclass++
			}
		}
	}
	nc := a.nclass
	maxStates := 1
	for _, w := range words {
		maxStates += len(w)
	}
	a.delta = make([]int32, maxStates*int(nc))
	a.out = make([][]int32, 1, maxStates)
	a.lens = make([]int32, len(words))
	// the trie's edges, to visit children without scanning whole rows
	firstChild := make([]int32, maxStates)
	nextSibling := make([]int32, maxStates)
	edgeClass := make([]int32, maxStates)
	for id, w := range words {
		a.lens[id] = int32(len(w))
		st := int32(0)
		for i := 0; i < len(w); i++ {
			c := int32(a.class[w[i]])
			e := st*nc + c
			if a.delta[e] == 0 { // no edge of a trie leads back to the root
				child := int32(len(a.out))
				a.delta[e] = child
				a.out = append(a.out, nil)
				edgeClass[child], nextSibling[child], firstChild[st] = c, firstChild[st], child
			}
			st = a.delta[e]
		}
		a.out[st] = append(a.out[st], int32(id))
	}
	n := len(a.out)
	a.delta = a.delta[:n*int(nc)]
	a.fail = make([]int32, n)
	a.flags = make([]uint8, n)
	a.flags[0] = rowDone // the root's missing children are the root itself, 0
	queue := make([]int32, 0, n)
	for child := firstChild[0]; child != 0; child = nextSibling[child] {
		queue = append(queue, child)
	}
	for head := 0; head < len(queue); head++ {
		st := queue[head]
		for next := firstChild[st]; next != 0; next = nextSibling[next] {
			c := edgeClass[next]
			f := a.fail[st]
			for f != 0 && a.delta[f*nc+c] == 0 {
				f = a.fail[f]
			}
			a.fail[next] = a.delta[f*nc+c] // the root's row is complete
			if via := a.fail[next]; len(a.out[via]) > 0 {
				a.out[next] = append(a.out[next][:len(a.out[next]):len(a.out[next])], a.out[via]...)
			}
			queue = append(queue, next)
		}
	}
	for st := range a.out {
		if len(a.out[st]) > 0 {
			a.flags[st] |= hasOut
		}
	}
	return a
}

// automaton.flags
const (
	rowDone uint8 = 1 << iota // the state's row is complete
	hasOut                    // keywords end at the state
)

// complete fills in the transitions state st lacks in the trie, from its failure state's.
func (a *automaton) complete(st int32) {
	f := a.fail[st]
	if a.flags[f]&rowDone == 0 {
		a.complete(f) // shallower, so this ends
	}
	nc := a.nclass
	row, frow := a.delta[st*nc:(st+1)*nc], a.delta[f*nc:(f+1)*nc]
	for c := range row {
		if row[c] == 0 {
			row[c] = frow[c]
		}
	}
	a.flags[st] |= rowDone
}

// scan appends every keyword occurrence in text to dst.
func (a *automaton) scan(text string, dst []match) []match {
	if len(a.out) <= 1 {
		return dst
	}
	delta, flags, class, nc := a.delta, a.flags, &a.class, a.nclass
	st := int32(0)
	for i := 0; i < len(text); i++ {
		f := flags[st]
		if f&rowDone == 0 {
			a.complete(st)
		}
		st = delta[st*nc+int32(class[text[i]])]
		if flags[st]&hasOut != 0 {
			for _, kw := range a.out[st] {
				dst = append(dst, match{Index: kw, From: int32(i+1) - a.lens[kw], To: int32(i + 1)})
			}
		}
	}
	return dst
}

// kwIn returns the position in kw of an entry that occurs inside t, a part of segment g's
// text, -1 when none does.
func (s *session) kwIn(g *segment, kw *keywords, t string) int {
	from, to, ok := s.span(g, t)
	for i := g.m0; i < g.m1; i++ {
		m := &s.matches[i]
		if idx := s.dict.kwIndex(m.Index, kw.id); idx >= 0 {
			if ok && m.From >= from && m.To <= to || !ok && strings.Contains(t, kw.words[idx]) {
				return idx
			}
		}
	}
	return -1
}

// span returns the offsets of t in g's command line, ok false when t is not a part of it.
func (s *session) span(g *segment, t string) (from, to int32, ok bool) {
	off := offset(s.cmds[g.cmd], t)
	if off < 0 {
		return 0, 0, false
	}
	return int32(off), int32(off + len(t)), true
}

// segmentHas reports whether some entry of kw occurs in segment g.
func (s *session) segmentHas(g *segment, kw *keywords) bool {
	if kw.id < 64 {
		return g.kl&(1<<kw.id) != 0
	}
	for i := g.m0; i < g.m1; i++ {
		if s.kwAt(g, i, kw) >= 0 {
			return true
		}
	}
	return false
}
