//go:build wasip1

package sdk

import (
	"encoding/binary"
	"fmt"
	"slices"
	"unsafe"
)

// The host's functions (module "ttp"); each answers a negative result instead of trapping
// (wasm/hostfn ResRange, ResLimit, ...). The linker imports only the ones a lifter reaches,
// so a lifter that calls none imports none and stays plain ABI v1.

//go:wasmimport ttp lower
func hostLower(src unsafe.Pointer, n int32, dst unsafe.Pointer) int32

//go:wasmimport ttp span
func hostSpan(text unsafe.Pointer, n int32, set unsafe.Pointer) int32

//go:wasmimport ttp index
func hostIndex(hay unsafe.Pointer, n int32, needle unsafe.Pointer, m int32, fold int32) int32

//go:wasmimport ttp lits_new
func hostLitsNew(list unsafe.Pointer, n int32, fold int32) int32

//go:wasmimport ttp lits_scan
func hostLitsScan(set int32, text unsafe.Pointer, n int32, out unsafe.Pointer, capacity int32) int32

const (
	resLimit = -3 // hostfn.ResLimit
)

func appendLower(dst []byte, s string) ([]byte, bool) {
	n := len(dst)
	dst = slices.Grow(dst, len(s))[:n+len(s)]
	r := hostLower(unsafe.Pointer(unsafe.StringData(s)), int32(len(s)), unsafe.Pointer(&dst[n]))
	switch {
	case r == int32(len(s)):
		return dst, true
	case r == -1:
		return dst[:n], false
	}
	panic(fmt.Sprintf("sdk: host lower: result %d", r))
}

func indexFold(s, sub string) int {
	r := hostIndex(unsafe.Pointer(unsafe.StringData(s)), int32(len(s)), unsafe.Pointer(unsafe.StringData(sub)), int32(len(sub)), 1)
	if r < -1 {
		panic(fmt.Sprintf("sdk: host index: result %d", r))
	}
	return int(r)
}

// Literals is a set of literals prepared once (at configure) and matched in one pass over a
// text, overlaps included: an Aho-Corasick automaton held by the host.
type Literals struct {
	set int32
	buf []uint32 // matches as written by the host: index, from, to
}

// NewLiterals prepares the set of words (at most 4096, 64 KiB in all); fold matches ASCII
// letters case-insensitively. An empty word never matches.
func NewLiterals(words []string, fold bool) (*Literals, error) {
	var list []byte
	for _, w := range words {
		list = binary.LittleEndian.AppendUint32(list, uint32(len(w)))
		list = append(list, w...)
	}
	f := int32(0)
	if fold {
		f = 1
	}
	var p unsafe.Pointer
	if len(list) > 0 {
		p = unsafe.Pointer(&list[0])
	}
	h := hostLitsNew(p, int32(len(list)), f)
	if h < 0 {
		return nil, fmt.Errorf("sdk: literals: the host refused the set (result %d: over a limit or malformed)", h)
	}
	return &Literals{set: h, buf: make([]uint32, 3*64)}, nil
}

// Scan appends every occurrence of a literal in text to dst, in order of where they end
// (longest first among those ending at the same byte), at most 65,536.
func (l *Literals) Scan(text string, dst []LiteralMatch) []LiteralMatch {
	if len(text) == 0 {
		return dst
	}
	for {
		n := hostLitsScan(l.set, unsafe.Pointer(unsafe.StringData(text)), int32(len(text)), unsafe.Pointer(&l.buf[0]), int32(len(l.buf)/3))
		if n == resLimit && len(l.buf)/3 < maxScanMatches {
			l.buf = make([]uint32, 3*min(4*len(l.buf)/3, maxScanMatches))
			continue
		}
		if n < 0 {
			if n == resLimit {
				n = int32(len(l.buf) / 3) // the cap: the first matches are kept
				// the host wrote them before it ran out of room
			} else {
				panic(fmt.Sprintf("sdk: host lits_scan: result %d", n))
			}
		}
		b := l.buf[:3*n]
		for i := 0; i+2 < len(b); i += 3 {
			dst = append(dst, LiteralMatch{Index: int32(b[i]), From: int32(b[i+1]), To: int32(b[i+2])})
		}
		return dst
	}
}

func span(s string, set *ByteSet) int {
	r := hostSpan(unsafe.Pointer(unsafe.StringData(s)), int32(len(s)), unsafe.Pointer(set))
	if r < 0 {
		panic(fmt.Sprintf("sdk: host span: result %d", r))
	}
	return int(r)
}
