// Package ahocorasick finds, in one pass over a text, which of a set of literal byte strings
// occur in it, ASCII case-insensitively. It exists for the rule engine's prefilter: a regexp
// runs only when one of its required literals occurs.
//
// Why not a module: the maintained Go implementations report leftmost non-overlapping matches
// or allocate a slice of matches per scan; a prefilter needs every literal that occurs
// (overlaps included) and the per-event path must not allocate. Here each automaton state
// carries the union of its outputs as a bitset of groups (rules), so a scan is one table
// lookup per byte and an OR when a literal ends.
package ahocorasick

// Matcher is an immutable Aho-Corasick automaton; it is safe for concurrent use.
type Matcher struct {
	class  [256]uint8 // byte -> input class; 'A'-'Z' share the class of 'a'-'z'
	nclass int
	delta  []int32  // state*nclass + class -> next state (complete DFA)
	out    []uint64 // state*words .. +words: groups whose literal ends at state
	hasOut []bool
	words  int
}

// Words is the number of uint64 words a hits bitset needs for ngroups groups.
func Words(ngroups int) int { return (ngroups + 63) / 64 }

func lower(b byte) byte {
	if 'A' <= b && b <= 'Z' {
		return b + 'a' - 'A'
	}
	return b
}

// New builds a matcher for patterns; groups[i] is the group (0 <= g < ngroups) that pattern i
// reports. Empty patterns are ignored.
func New(patterns []string, groups []int, ngroups int) *Matcher {
	m := &Matcher{words: Words(ngroups)}
	// Input classes: one per distinct (lower-cased) byte of any pattern, 0 for all others.
	var seen [256]uint8
	n := 1
	for _, p := range patterns {
		for i := 0; i < len(p); i++ {
			b := lower(p[i])
			if seen[b] == 0 {
				seen[b] = uint8(n)
				n++
				if n > 255 {
					n = 255 // more than 254 distinct bytes: fold the rest together below
				}
			}
		}
	}
	for b := 0; b < 256; b++ {
		m.class[b] = seen[lower(byte(b))]
	}
	if n >= 255 {
		// Too many distinct bytes for uint8 classes: use the identity mapping (with folding).
		n = 256
		for b := 0; b < 256; b++ {
			m.class[b] = uint8(lower(byte(b)))
		}
	}
	m.nclass = n

	// Trie.
	trie := []int32{}
	newState := func() int32 {
		s := int32(len(trie) / m.nclass)
		for c := 0; c < m.nclass; c++ {
			trie = append(trie, -1)
		}
		m.out = append(m.out, make([]uint64, m.words)...)
		m.hasOut = append(m.hasOut, false)
		return s
	}
	newState()
	for i, p := range patterns {
		if p == "" {
			continue
		}
		s := int32(0)
		for j := 0; j < len(p); j++ {
			c := int(m.class[p[j]])
			next := trie[int(s)*m.nclass+c]
			if next < 0 {
				next = newState()
				trie[int(s)*m.nclass+c] = next
			}
			s = next
		}
		g := groups[i]
		m.out[int(s)*m.words+g/64] |= 1 << (g % 64)
		m.hasOut[s] = true
	}

	// Breadth-first: failure links, complete transitions, inherited outputs.
	nstates := len(trie) / m.nclass
	m.delta = make([]int32, len(trie))
	fail := make([]int32, nstates)
	queue := make([]int32, 0, nstates)
	for c := 0; c < m.nclass; c++ {
		next := trie[c]
		if next < 0 {
			m.delta[c] = 0
			continue
		}
		m.delta[c] = next
		fail[next] = 0
		queue = append(queue, next)
	}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		f := fail[s]
		if m.hasOut[f] {
			for w := 0; w < m.words; w++ {
				m.out[int(s)*m.words+w] |= m.out[int(f)*m.words+w]
			}
			m.hasOut[s] = true
		}
		for c := 0; c < m.nclass; c++ {
			next := trie[int(s)*m.nclass+c]
			if next < 0 {
				m.delta[int(s)*m.nclass+c] = m.delta[int(f)*m.nclass+c]
				continue
			}
			m.delta[int(s)*m.nclass+c] = next
			fail[next] = m.delta[int(f)*m.nclass+c]
			queue = append(queue, next)
		}
	}
	return m
}

// Scan ORs into hits (at least Words(ngroups) long) the group of every pattern that occurs in
// text. It does not allocate.
func (m *Matcher) Scan(text string, hits []uint64) {
	s := int32(0)
	nclass, words := m.nclass, m.words
	for i := 0; i < len(text); i++ {
		s = m.delta[int(s)*nclass+int(m.class[text[i]])]
		if m.hasOut[s] {
			o := m.out[int(s)*words : int(s)*words+words]
			for w, x := range o {
				hits[w] |= x
			}
		}
	}
}
