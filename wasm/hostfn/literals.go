package hostfn

import (
	"errors"
	"fmt"
)

// Errors of preparing a literal set or a regular expression; the guest sees them as
// negative results (register.go).
var (
	ErrLimit   = errors.New("hostfn: over a limit")
	ErrPattern = errors.New("hostfn: invalid pattern")
)

// Match is one occurrence of a literal: its index in the set's list and its byte offsets.
type Match struct {
	Index, From, To uint32
}

// Literals is a set of literal byte strings prepared once (an Aho-Corasick automaton, every
// transition computed at build) so that a scan finds every occurrence, overlaps included, in
// one pass: one table lookup a byte and one write a match. It is immutable after NewLiterals.
type Literals struct {
	class  [256]uint8
	nclass int32
	delta  []int32 // state*nclass + class -> state
	out    [][]uint32
	lens   []uint32
	fold   bool
}

// Cells is the number of transitions the set holds, what MaxCells bounds per instance.
func (l *Literals) Cells() int { return len(l.delta) }

// Len is the number of literals of the set.
func (l *Literals) Len() int { return len(l.lens) }

// NewLiterals builds the set of words (at most MaxLiterals, MaxLiteralBytes in all, at most
// maxCells transitions); fold matches ASCII letters case-insensitively. An empty word never
// matches. Building costs O(total bytes x distinct bytes), bounded by maxCells.
func NewLiterals(words [][]byte, fold bool, maxCells int) (*Literals, error) {
	if len(words) > MaxLiterals {
		return nil, fmt.Errorf("%w: %d literals, at most %d", ErrLimit, len(words), MaxLiterals)
	}
	l := &Literals{fold: fold, nclass: 1, lens: make([]uint32, len(words))}
	total := 0
	for _, w := range words {
		total += len(w)
		for _, c := range w {
			if fold {
				c = lowerByte(c)
			}
			if l.class[c] == 0 && l.nclass < 256 {
				l.class[c] = uint8(l.nclass)
				l.nclass++
			}
		}
	}
	if total > MaxLiteralBytes {
		return nil, fmt.Errorf("%w: %d bytes of literals, at most %d", ErrLimit, total, MaxLiteralBytes)
	}
	if l.nclass == 256 { // every byte value occurs: class 0 is one of them, not "other"
		for c := range l.class {
			l.class[c] = uint8(c)
		}
	}
	if fold {
		for c := 'A'; c <= 'Z'; c++ {
			l.class[c] = l.class[c+'a'-'A']
		}
	}
	nc := int(l.nclass)
	if (total+1)*nc > maxCells {
		return nil, fmt.Errorf("%w: %d transitions, %d left in this instance", ErrLimit, (total+1)*nc, maxCells)
	}
	l.build(words, nc, total+1)
	return l, nil
}

// build makes the trie, then the failure links breadth first, completing every row from its
// failure state's (already complete: it is shallower).
func (l *Literals) build(words [][]byte, nc, maxStates int) {
	trie := make([]int32, maxStates*nc) // 0: no child (no trie edge leads to the root)
	l.out = make([][]uint32, 1, maxStates)
	for id, w := range words {
		l.lens[id] = uint32(len(w))
		if len(w) == 0 {
			continue
		}
		st := int32(0)
		for _, c := range w {
			e := int(st)*nc + int(l.class[c])
			if trie[e] == 0 {
				trie[e] = int32(len(l.out))
				l.out = append(l.out, nil)
			}
			st = trie[e]
		}
		l.out[st] = append(l.out[st], uint32(id))
	}
	n := len(l.out)
	l.delta = make([]int32, n*nc)
	fail := make([]int32, n)
	queue := make([]int32, 0, n)
	for c := 0; c < nc; c++ { // the root: missing children loop to it
		if child := trie[c]; child != 0 {
			l.delta[c] = child
			queue = append(queue, child)
		}
	}
	for head := 0; head < len(queue); head++ {
		st := queue[head]
		f := fail[st]
		if len(l.out[f]) > 0 {
			l.out[st] = append(l.out[st][:len(l.out[st]):len(l.out[st])], l.out[f]...)
		}
		row, frow := l.delta[int(st)*nc:int(st+1)*nc], l.delta[int(f)*nc:int(f+1)*nc]
		for c := 0; c < nc; c++ {
			child := trie[int(st)*nc+c]
			if child == 0 {
				row[c] = frow[c]
				continue
			}
			row[c] = child
			fail[child] = frow[c]
			queue = append(queue, child)
		}
	}
}

// Scan writes every occurrence of a literal in text into out, in order of where it ends
// (those ending at the same byte longest first), and returns how many it wrote; full is true
// when out had no room for one more and the scan stopped there. A scan is one pass:
// O(len(text) + matches).
func (l *Literals) Scan(text []byte, out []Match) (n int, full bool) {
	if len(l.out) <= 1 {
		return 0, false
	}
	delta, class, nc := l.delta, &l.class, l.nclass
	st := int32(0)
	for i, c := range text {
		st = delta[st*nc+int32(class[c])]
		if ids := l.out[st]; len(ids) > 0 {
			for _, id := range ids {
				if n == len(out) {
					return n, true
				}
				out[n] = Match{Index: id, From: uint32(i+1) - l.lens[id], To: uint32(i + 1)}
				n++
			}
		}
	}
	return n, false
}
