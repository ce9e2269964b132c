package main

import (
	"slices"
	"strings"
	"unicode/utf8"
	"unsafe"

	"github.com/decnet/ttp/sdk"
)

// kwSet is a keyword list prepared once at configure for a single pass over a text: ASCII
// keywords are indexed by their first byte and tried only where a word starts with that
// byte, on an ASCII-lower-cased copy of the text; keywords with other characters fold case
// with containsWordFold. Matching has containsWordFold's rules: whole words, case ignored, a
// plural s allowed.
type kwSet struct {
	words  []string // lower case, distinct, in list order
	ascii  []int    // indexes of the plain ASCII words, grouped by first byte
	first  [256]kwRange
	folded []int // indexes of words that are not plain ASCII
}

// kwRange is the span of kwSet.ascii holding the words that start with one byte.
type kwRange struct{ lo, hi uint16 }

func newKWSet(list []string) *kwSet {
	k := &kwSet{words: make([]string, 0, len(list))}
	for _, w := range list {
		if w != "" && !slices.Contains(k.words, w) {
			k.words = append(k.words, w)
		}
	}
	var count [256]int
	for i, w := range k.words {
		if isASCII(w) {
			count[w[0]]++
		} else {
			k.folded = append(k.folded, i)
		}
	}
	n := 0
	for c := range count {
		k.first[c] = kwRange{uint16(n), uint16(n)}
		n += count[c]
	}
	k.ascii = make([]int, n)
	for i, w := range k.words {
		if isASCII(w) {
			r := &k.first[w[0]]
			k.ascii[r.hi] = i
			r.hi++
		}
	}
	return k
}

// match sets found[i] (len(found) >= len(k.words)) for every keyword i present in text, whose
// ASCII-lower-cased copy is lower, and returns how many are.
func (k *kwSet) match(text, lower string, found []bool) int {
	n := 0
	for i := 0; i < len(lower); i++ {
		r := k.first[lower[i]]
		if r.lo == r.hi {
			continue
		}
		if i > 0 {
			if c := lower[i-1]; c < utf8.RuneSelf {
				if byteClass[c]&(cUpper|cLower|cDigit) != 0 {
					continue
				}
			} else if r, _ := utf8.DecodeLastRuneInString(lower[:i]); isWordRune(r) {
				continue
			}
		}
		for _, w := range k.ascii[r.lo:r.hi] {
			word := k.words[w]
			if !found[w] && strings.HasPrefix(lower[i:], word) && wordAt(lower, i, i+len(word)) {
				found[w] = true
				n++
			}
		}
	}
	for _, w := range k.folded {
		if !found[w] && containsWordFold(text, k.words[w]) {
			found[w] = true
			n++
		}
	}
	return n
}

// lowerInto returns s with ASCII letters lower-cased, written into *buf: byte offsets are
// those of s, and the result is valid until *buf is next written (within one Tag call).
func lowerInto(buf *[]byte, s string) string {
	b, changed := sdk.AppendLower((*buf)[:0], s) // by the host: one call, not a loop a byte
	if !changed {
		*buf = b
		return s
	}
	*buf = b
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}
