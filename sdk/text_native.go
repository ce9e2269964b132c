//go:build !wasip1

package sdk

import (
	"fmt"
	"slices"
	"unsafe"

	"github.com/decnet/ttp/wasm/hostfn"
)

func bytesOf(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

func appendLower(dst []byte, s string) ([]byte, bool) {
	n := len(dst)
	dst = slices.Grow(dst, len(s))[:n+len(s)]
	if !hostfn.Lower(dst[n:], bytesOf(s)) {
		return dst[:n], false
	}
	return dst, true
}

func indexFold(s, sub string) int { return hostfn.Index(bytesOf(s), bytesOf(sub), true) }

// Literals is a set of literals prepared once (at configure) and matched in one pass over a
// text, overlaps included: an Aho-Corasick automaton held by the host.
type Literals struct {
	l   *hostfn.Literals
	buf []hostfn.Match
}

// NewLiterals prepares the set of words (at most 4096, 64 KiB in all); fold matches ASCII
// letters case-insensitively. An empty word never matches.
func NewLiterals(words []string, fold bool) (*Literals, error) {
	bs := make([][]byte, len(words))
	for i, w := range words {
		bs[i] = []byte(w)
	}
	l, err := hostfn.NewLiterals(bs, fold, hostfn.MaxCells)
	if err != nil {
		return nil, fmt.Errorf("sdk: literals: %w", err)
	}
	return &Literals{l: l, buf: make([]hostfn.Match, 64)}, nil
}

// Scan appends every occurrence of a literal in text to dst, in order of where they end
// (longest first among those ending at the same byte), at most 65,536.
func (l *Literals) Scan(text string, dst []LiteralMatch) []LiteralMatch {
	for {
		n, full := l.l.Scan(bytesOf(text), l.buf)
		if full && len(l.buf) < maxScanMatches {
			l.buf = make([]hostfn.Match, min(4*len(l.buf), maxScanMatches))
			continue
		}
		for _, m := range l.buf[:n] {
			dst = append(dst, LiteralMatch{Index: int32(m.Index), From: int32(m.From), To: int32(m.To)})
		}
		return dst
	}
}

func span(s string, set *ByteSet) int { return hostfn.Span(bytesOf(s), (*hostfn.ByteSet)(set)) }
