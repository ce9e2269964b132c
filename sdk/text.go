package sdk

// The host's text primitives (abi/ABI.md, "Host functions"), wrapped for lifters. Built for
// wasip1 they call the host (module "ttp", text_wasip1.go): a Go guest pays a termination
// check of about 36 ns at nearly every taken branch, so a byte loop costs that per byte, and
// one host call replaces the loop. Built natively (go test) they run the very code the host
// runs, package wasm/hostfn (text_native.go), so a lifter has one code path. A lifter using
// any of them declares Manifest.HostFunctions.

// LiteralMatch is one occurrence of a literal of a Literals set in a text: the literal's
// position in the list NewLiterals was given, and its byte offsets in the text.
type LiteralMatch struct {
	Index    int32
	From, To int32
}

// maxScanMatches bounds the matches one Scan reports (hostfn.MaxMatches): a text with more
// reports the first ones.
const maxScanMatches = 1 << 16

// AppendLower appends s with ASCII letters lower-cased to dst and reports true; when s holds
// no upper-case ASCII letter it returns dst unchanged and false, so the caller keeps s.
func AppendLower(dst []byte, s string) ([]byte, bool) {
	if len(s) == 0 {
		return dst, false
	}
	return appendLower(dst, s)
}

// IndexFold returns the offset of the first occurrence of sub in s with ASCII letters
// compared case-insensitively, -1 when there is none (and for a sub longer than 256 bytes).
func IndexFold(s, sub string) int {
	if len(sub) == 0 {
		return 0
	}
	if len(sub) > len(s) {
		return -1
	}
	return indexFold(s, sub)
}

// ByteSet is a set of bytes (a 256-bit map, bit b%8 of byte b/8) for Span: the class of a
// token. Build it once, at package level or configure.
type ByteSet [32]byte

// Add puts every byte of chars in the set and returns it.
func (b *ByteSet) Add(chars string) *ByteSet {
	for i := 0; i < len(chars); i++ {
		b[chars[i]>>3] |= 1 << (chars[i] & 7)
	}
	return b
}

// AddRange puts the bytes lo..hi (inclusive) in the set and returns it.
func (b *ByteSet) AddRange(lo, hi byte) *ByteSet {
	for c := int(lo); c <= int(hi); c++ {
		b[c>>3] |= 1 << (c & 7)
	}
	return b
}

// Span returns the length of the longest prefix of s whose bytes are all in set: the token
// scan (a token of a class is s[:Span(s, class)]).
func Span(s string, set *ByteSet) int {
	if len(s) == 0 {
		return 0
	}
	return span(s, set)
}
