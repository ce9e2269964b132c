// Package hostfn is the host's text primitives for guests (abi/ABI.md, "Host functions"): a
// few vetted functions a lifter would otherwise run byte by byte in WebAssembly, where a Go
// guest pays a termination check of about 36 ns at nearly every taken branch (RATIONALE.md,
// "What a deadline costs a Go guest"). They are ASCII lower-casing, a byte-class span (the
// token scan), a substring search, a set of literals matched in one pass (Aho-Corasick) and
// RE2 regular expressions, prepared once by index and run over guest memory.
//
// The functions themselves are pure Go over byte slices (this file, literals.go, regexp.go),
// so that the sdk's native fallback runs the very code the host runs; register.go offers
// them to guests as the WebAssembly module "ttp". Every call's cost is linear in its input,
// every prepared object is bounded in count and size, and a call allocates nothing that
// grows with its input.
package hostfn

import (
	"bytes"

	"github.com/decnet/ttp/abi"
)

// Module is the import module name guests use for these functions, and Capability the
// manifest capability a module importing any of them must declare (ABI.md): a host that
// does not know the capability refuses the module at load instead of failing on a call.
const (
	Module     = "ttp"
	Capability = abi.CapHost
)

// Bounds on what one call or one instance may ask for. MaxText matches abi.MaxRecord: no
// guest text handed to a primitive is longer than a record.
const (
	MaxText         = 1 << 20 // bytes of text one call reads
	MaxSets         = 64      // literal sets per instance
	MaxLiterals     = 4096    // literals per set
	MaxLiteralBytes = 64 << 10
	MaxCells        = 1 << 20 // automaton transitions per instance, all sets together (4 MiB)
	MaxRegexps      = 64      // regular expressions per instance
	MaxPattern      = 4096    // bytes of one regular expression
	MaxMatches      = 1 << 16 // matches one scan may write
	MaxNeedle       = 256     // bytes of a needle searched case-insensitively
)

// ByteSet is a set of bytes as a 256-bit map, the class Span reads: bit b%8 of byte b/8.
type ByteSet [32]byte

// Add puts every byte of s in the set and returns it, for building one in an expression.
func (s *ByteSet) Add(chars string) *ByteSet {
	for i := 0; i < len(chars); i++ {
		s[chars[i]>>3] |= 1 << (chars[i] & 7)
	}
	return s
}

// AddRange puts the bytes lo..hi (inclusive) in the set and returns it.
func (s *ByteSet) AddRange(lo, hi byte) *ByteSet {
	for c := int(lo); c <= int(hi); c++ {
		s[c>>3] |= 1 << (c & 7)
	}
	return s
}

// Has reports whether c is in the set.
func (s *ByteSet) Has(c byte) bool { return s[c>>3]&(1<<(c&7)) != 0 }

// Complement returns the set of the bytes not in s.
func (s *ByteSet) Complement() ByteSet {
	var out ByteSet
	for i := range s {
		out[i] = ^s[i]
	}
	return out
}

// Lower writes src with ASCII letters lower-cased into dst (len(dst) >= len(src); dst may be
// src) and reports true; when src holds no upper-case ASCII letter it writes nothing and
// reports false, so a caller keeps the original without a copy.
func Lower(dst, src []byte) bool {
	i := 0
	for i < len(src) && !(src[i] >= 'A' && src[i] <= 'Z') {
		i++
	}
	if i == len(src) {
		return false
	}
	copy(dst[:i], src[:i])
	for ; i < len(src); i++ {
		c := src[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst[i] = c
	}
	return true
}

// Span returns the length of the longest prefix of text whose bytes are all in set: a token
// of a class is text[:Span(text, class)], and the next separator is at Span(text, &notSep).
func Span(text []byte, set *ByteSet) int {
	for i, c := range text {
		if set[c>>3]&(1<<(c&7)) == 0 {
			return i
		}
	}
	return len(text)
}

// Index returns the offset of the first occurrence of needle in hay, -1 when there is none;
// fold compares ASCII letters case-insensitively. Its cost is linear in len(hay): an exact
// search is bytes.Index, a folded one at most MaxNeedle comparisons a byte (a longer folded
// needle finds nothing: -1, which a caller checks against MaxNeedle beforehand).
func Index(hay, needle []byte, fold bool) int {
	if !fold {
		return bytes.Index(hay, needle)
	}
	if len(needle) == 0 {
		return 0
	}
	if len(needle) > MaxNeedle {
		return -1
	}
	first := lowerByte(needle[0])
	for i := 0; i+len(needle) <= len(hay); i++ {
		if lowerByte(hay[i]) != first {
			continue
		}
		j := 1
		for j < len(needle) && lowerByte(hay[i+j]) == lowerByte(needle[j]) {
			j++
		}
		if j == len(needle) {
			return i
		}
	}
	return -1
}

func lowerByte(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}
