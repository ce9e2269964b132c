package hostfn

import (
	"fmt"
	"regexp"
)

// NewRegexp compiles a regular expression of Go's RE2 syntax (at most MaxPattern bytes).
// RE2 matches in time linear in the text, which is why a guest may hand one to the host.
func NewRegexp(pattern []byte) (*regexp.Regexp, error) {
	if len(pattern) > MaxPattern {
		return nil, fmt.Errorf("%w: pattern of %d bytes, at most %d", ErrLimit, len(pattern), MaxPattern)
	}
	re, err := regexp.Compile(string(pattern))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrPattern, err)
	}
	return re, nil
}

// Find returns the offsets of the leftmost match of re in text, ok false when none.
func Find(re *regexp.Regexp, text []byte) (from, to int, ok bool) {
	loc := re.FindIndex(text)
	if loc == nil {
		return 0, 0, false
	}
	return loc[0], loc[1], true
}
