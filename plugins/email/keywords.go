package main

import (
	"slices"
	"strings"
	"unicode/utf8"
	"unsafe"

	"github.com/decnet/ttp/sdk"
)

// kwSet is a keyword list prepared once at configure for a single pass over a text. The plain
// ASCII keywords are a literal set of the host (sdk.Literals, ASCII case folded): one host
// call finds every occurrence, and only those are checked for word boundaries. When the host
// refuses the set (or a text has more occurrences than one scan reports) they are indexed by
// their first byte and tried only where a word starts with that byte, on an
// ASCII-lower-cased copy of the text, which in a Go guest costs a termination check a byte
// (RATIONALE.md, "What a deadline costs a Go guest"). Keywords with other characters fold
// case with containsWordFold. Matching has containsWordFold's rules: whole words, case
// ignored, a plural s allowed.
type kwSet struct {
	words  []string // lower case, distinct, in list order
	ascii  []int    // indexes of the plain ASCII words, grouped by first byte
	first  [256]kwRange
	folded []int // indexes of words that are not plain ASCII

	lits     *sdk.Literals // the plain ASCII words, nil when the host refused them
	litWord  []int         // word index of each literal of lits
	litMatch []sdk.LiteralMatch
}

// kwRange is the span of kwSet.ascii holding the words that start with one byte.
type kwRange struct{ lo, hi uint16 }

// litSets keeps the host's literal sets by word list: a configuration that is loaded again
// reuses them, since an instance holds a bounded number of sets (wasm/hostfn).
var litSets = map[string]*sdk.Literals{}

func newKWSet(list []string) *kwSet {
	k := &kwSet{words: make([]string, 0, len(list))}
	for _, w := range list {
		if w != "" && !slices.Contains(k.words, w) {
			k.words = append(k.words, w)
		}
	}
	var count [256]int
	var lits []string
	for i, w := range k.words {
		if isASCII(w) {
			count[w[0]]++
			lits = append(lits, w)
			k.litWord = append(k.litWord, i)
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
	if len(lits) > 0 {
		key := strings.Join(lits, "\x00")
		if k.lits = litSets[key]; k.lits == nil {
			if l, err := sdk.NewLiterals(lits, true); err == nil {
				k.lits, litSets[key] = l, l
			}
		}
	}
	return k
}

// maxLitMatches is what one sdk.Literals scan reports at most: a scan that fills it may have
// missed occurrences, and the text is matched in the guest instead.
const maxLitMatches = 1 << 16

// match sets found[i] (len(found) >= len(k.words)) for every keyword i present in text and
// returns how many are; *scratch is the buffer for a lower-cased copy of text, when one is
// needed.
func (k *kwSet) match(text string, scratch *[]byte, found []bool) int {
	n := 0
	if k.lits != nil {
		k.litMatch = k.lits.Scan(text, k.litMatch[:0])
		if len(k.litMatch) < maxLitMatches {
			n = k.matchLits(text, found)
		} else {
			n = k.matchASCII(lowerInto(scratch, text), found)
		}
	} else if len(k.ascii) > 0 {
		n = k.matchASCII(lowerInto(scratch, text), found)
	}
	for _, w := range k.folded {
		if !found[w] && containsWordFold(text, k.words[w]) {
			found[w] = true
			n++
		}
	}
	return n
}

// matchLits checks the occurrences the host found for word boundaries. Lower-casing changes
// no byte's class, so text is read as the lower-cased copy matchASCII reads.
func (k *kwSet) matchLits(text string, found []bool) int {
	n := 0
	for _, m := range k.litMatch {
		w, i := k.litWord[m.Index], int(m.From)
		if found[w] || !wordStart(text, i) || !wordAt(text, i, int(m.To)) {
			continue
		}
		found[w] = true
		n++
	}
	return n
}

// wordStart reports whether no letter or digit comes right before s[i].
func wordStart(s string, i int) bool {
	if i == 0 {
		return true
	}
	if c := s[i-1]; c < utf8.RuneSelf {
		return byteClass[c]&(cUpper|cLower|cDigit) == 0
	}
	r, _ := utf8.DecodeLastRuneInString(s[:i])
	return !isWordRune(r)
}

// matchASCII is the guest's matcher of the plain ASCII words, on lower, the text's
// ASCII-lower-cased copy.
func (k *kwSet) matchASCII(lower string, found []bool) int {
	n := 0
	for i := 0; i < len(lower); i++ {
		r := k.first[lower[i]]
		if r.lo == r.hi || !wordStart(lower, i) {
			continue
		}
		for _, w := range k.ascii[r.lo:r.hi] {
			word := k.words[w]
			if !found[w] && strings.HasPrefix(lower[i:], word) && wordAt(lower, i, i+len(word)) {
				found[w] = true
				n++
			}
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
