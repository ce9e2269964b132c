package main

import "errors"

// Punycode (RFC 3492) decoding, for the xn-- labels of internationalized domain names.
// golang.org/x/net/idna is not a dependency of this module, and decoding is all the lifter
// needs: it only looks at which scripts a label's letters belong to, so no IDNA mapping or
// validation is done.

const (
	pcBase        = 36
	pcTMin        = 1
	pcTMax        = 26
	pcSkew        = 38
	pcDamp        = 700
	pcInitialBias = 72
	pcInitialN    = 128
	pcMaxInt      = 1<<31 - 1 // RFC 3492's 32-bit arithmetic: overflow is an error
	pcMaxInput    = 256       // a DNS label is at most 63 octets; anything far longer is not one
)

var errPunycode = errors.New("punycode: invalid input")

// decodePunycode decodes the punycode label s (without its xn-- prefix) into out[:0] and
// returns it; out is reused so that a caller's scratch buffer keeps decoding allocation-free.
func decodePunycode(s string, out []rune) ([]rune, error) {
	out = out[:0]
	if len(s) > pcMaxInput {
		return out, errPunycode
	}
	// Basic code points are everything before the last delimiter.
	pos := 0
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '-' {
			for j := 0; j < i; j++ {
				if s[j] >= 0x80 {
					return out, errPunycode
				}
				out = append(out, rune(s[j]))
			}
			pos = i + 1
			break
		}
	}
	n, i, bias := pcInitialN, 0, pcInitialBias
	for pos < len(s) {
		oldi, w := i, 1
		for k := pcBase; ; k += pcBase {
			if pos >= len(s) {
				return out, errPunycode
			}
			digit := decodeDigit(s[pos])
			pos++
			if digit >= pcBase {
				return out, errPunycode
			}
			if digit > (pcMaxInt-i)/w {
				return out, errPunycode
			}
			i += digit * w
			t := k - bias
			if t < pcTMin {
				t = pcTMin
			} else if t > pcTMax {
				t = pcTMax
			}
			if digit < t {
				break
			}
			if w > pcMaxInt/(pcBase-t) {
				return out, errPunycode
			}
			w *= pcBase - t
		}
		length := len(out) + 1
		bias = adapt(i-oldi, length, oldi == 0)
		if i/length > pcMaxInt-n {
			return out, errPunycode
		}
		n += i / length
		i %= length
		if n > 0x10FFFF || (n >= 0xD800 && n <= 0xDFFF) {
			return out, errPunycode
		}
		out = append(out, 0)
		copy(out[i+1:], out[i:])
		out[i] = rune(n)
		i++
	}
	return out, nil
}

// decodeDigit returns the value of a punycode digit (a-z, A-Z: 0-25; 0-9: 26-35), or
// pcBase for any other byte.
func decodeDigit(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c-'0') + 26
	case c >= 'a' && c <= 'z':
		return int(c - 'a')
	case c >= 'A' && c <= 'Z':
		return int(c - 'A')
	}
	return pcBase
}

// adapt is RFC 3492's bias adaptation function (section 6.1).
func adapt(delta, numPoints int, first bool) int {
	if first {
		delta /= pcDamp
	} else {
		delta /= 2
	}
	delta += delta / numPoints
	k := 0
	for delta > ((pcBase-pcTMin)*pcTMax)/2 {
		delta /= pcBase - pcTMin
		k += pcBase
	}
	return k + (pcBase-pcTMin+1)*delta/(delta+pcSkew)
}
