package main

import (
	"strings"
	"unsafe"

	"github.com/decnet/ttp/sdk"
	"unicode"
	"unicode/utf8"
)

// Text helpers. They work on strings that alias the event record and avoid allocating: a
// result is a substring of the input (lower-cased by the caller when it goes into evidence).

// validHost reports whether s looks like a DNS name: dot-separated non-empty labels of
// letters, digits and hyphens (non-ASCII letters allowed, for IDNs written in Unicode), at
// least two labels, at most 253 bytes. Whatever is not a host name never reaches evidence.
func validHost(s string) bool {
	ok, _ := validHostASCII(s)
	return ok
}

// hostBytes are the ASCII bytes of a host name, for the host's span (sdk.Span): one call
// instead of a loop a byte in the guest.
var hostBytes = (&sdk.ByteSet{}).AddRange('a', 'z').AddRange('A', 'Z').AddRange('0', '9').Add(".-")

// validHostASCII is validHost that also reports whether s is ASCII only (so that lower-casing
// it needs no Unicode tables).
func validHostASCII(s string) (valid, ascii bool) {
	if len(s) == 0 || len(s) > 253 || strings.IndexByte(s, '.') < 0 {
		return false, false
	}
	if sdk.Span(s, hostBytes) == len(s) { // labels of letters, digits and hyphens: none empty
		return s[0] != '.' && s[len(s)-1] != '.' && !strings.Contains(s, ".."), true
	}
	label := 0
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '.':
			if label == 0 {
				return false, false
			}
			label = 0
			i++
			continue
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-':
			i++
		case c >= utf8.RuneSelf:
			r, w := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError || !(unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r)) {
				return false, false
			}
			i += w
		default:
			return false, false
		}
		label++
	}
	return label > 0, false
}

// addrDomain returns the lower-cased domain of a mail address ("Name <user@Example.COM>",
// "user@example.com"), or "" when s holds no address with a valid domain.
func addrDomain(s string) string {
	var buf []byte
	return addrDomainInto(&buf, s)
}

// addrDomainInto is addrDomain writing a lower-cased copy, when one is needed, to the end of
// *buf (what *buf held stays valid): the lifter's calls reuse one buffer per event instead of
// allocating.
func addrDomainInto(buf *[]byte, s string) string {
	s = strings.TrimSpace(s)
	if i := lastIndexByte(s, '<'); i >= 0 {
		s = s[i+1:]
		if j := strings.IndexByte(s, '>'); j >= 0 {
			s = s[:j]
		}
	}
	at := lastIndexByte(s, '@')
	if at < 0 {
		return ""
	}
	d := strings.TrimRight(strings.TrimSpace(s[at+1:]), ".")
	valid, ascii := validHostASCII(d)
	if !valid {
		return ""
	}
	if ascii { // the host lower-cases it, a copy only when it holds upper case
		n := len(*buf)
		b, changed := sdk.AppendLower(*buf, d)
		*buf = b // dst[:n] when unchanged: the capacity grown stays
		if changed {
			return unsafe.String(&b[n], len(d))
		}
		return d
	}
	return strings.ToLower(d)
}

// displayDomain returns the lower-cased domain of an address written inside the display name
// of a From header value (`"ceo@corp.example" <x@freemail.example>`), or "".
func displayDomain(v string) string {
	if i := strings.IndexByte(v, '\n'); i >= 0 {
		v = v[:i] // several From headers: the first
	}
	lt := lastIndexByte(v, '<')
	if lt < 0 {
		return ""
	}
	name := v[:lt]
	at := lastIndexByte(name, '@')
	if at < 0 {
		return ""
	}
	d := name[at+1:]
	end := 0
	for end < len(d) {
		c := d[end]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' {
			end++
			continue
		}
		break
	}
	d = strings.TrimRight(d[:end], ".")
	if !validHost(d) {
		return ""
	}
	return strings.ToLower(d)
}

// inDomains reports whether domain d (lower case) is one of list or a subdomain of one.
func inDomains(d string, list []string) bool {
	for _, x := range list {
		if d == x || (len(d) > len(x) && strings.HasSuffix(d, x) && d[len(d)-len(x)-1] == '.') {
			return true
		}
	}
	return false
}

// secondLevels are the second-level labels under which a two-letter country code registers
// names (example.co.uk, example.com.au): a small stand-in for the public suffix list, enough
// to compare the organizational domains of a message's senders.
var secondLevels = []string{"ac", "co", "com", "edu", "go", "gob", "gov", "ltd", "mil", "ne", "net", "nom", "or", "org", "plc"}

// orgDomain returns the registrable ("organizational") part of a lower-case domain:
// mail.example.com -> example.com, a.example.co.uk -> example.co.uk.
func orgDomain(d string) string {
	last := strings.LastIndexByte(d, '.')
	if last < 0 {
		return d
	}
	second := strings.LastIndexByte(d[:last], '.')
	if second < 0 {
		return d
	}
	if len(d)-last-1 == 2 {
		sld := d[second+1 : last]
		for _, s := range secondLevels {
			if sld == s {
				return d[strings.LastIndexByte(d[:second], '.')+1:]
			}
		}
	}
	return d[second+1:]
}

// urlHost returns the host of a URL as written ("https://user@Host.example:8443/p?q",
// "www.host.example/p"), without user info or port, or "" when there is no valid host name
// (mailto: links, IP literals in brackets, garbage).
func urlHost(u string) string {
	s := strings.TrimSpace(u)
	if i := strings.Index(s, "://"); i >= 0 {
		s = s[i+3:]
	} else if hasPrefixFold(s, "mailto:") {
		return ""
	}
	if j := strings.IndexAny(s, "/?#\\ \t"); j >= 0 {
		s = s[:j]
	}
	if j := lastIndexByte(s, '@'); j >= 0 {
		s = s[j+1:]
	}
	if strings.HasPrefix(s, "[") {
		return ""
	}
	if j := lastIndexByte(s, ':'); j >= 0 {
		s = s[:j]
	}
	s = strings.TrimSuffix(s, ".")
	if !validHost(s) {
		return ""
	}
	return s
}

// lastIndexByte is strings.LastIndexByte for a byte that occurs rarely (@, <, :): in a wasip1
// guest strings.IndexByte is assembly that tests four bytes a loop iteration, where
// LastIndexByte is a Go loop that pays a termination check a byte.
func lastIndexByte(s string, c byte) int {
	last := -1
	for {
		i := strings.IndexByte(s[last+1:], c)
		if i < 0 {
			return last
		}
		last += i + 1
	}
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

func isHexDigit(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// hexBytes are the hex digits, for sdk.Span.
var hexBytes = (&sdk.ByteSet{}).AddRange('0', '9').AddRange('a', 'f').AddRange('A', 'F')

// lowerHex64 returns s lower-cased when it is a SHA-256 in hex, "" otherwise: one host call
// checks the digits (sdk.Span) and, when s has upper case, one more lower-cases it into the
// end of *buf (what *buf held stays valid; the caller empties it once per event).
func lowerHex64(buf *[]byte, s string) string {
	if len(s) != 64 || sdk.Span(s, hexBytes) != 64 {
		return ""
	}
	n := len(*buf)
	b, changed := sdk.AppendLower(*buf, s)
	*buf = b // its capacity, grown or not
	if !changed {
		return s
	}
	return unsafe.String(&b[n], len(s))
}

// isHex64 reports whether s is a SHA-256 in hex.
func isHex64(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isHexDigit(s[i]) {
			return false
		}
	}
	return true
}

func lowerASCII(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// hasSuffixFold reports whether s ends with suffix, ignoring ASCII case.
func hasSuffixFold(s, suffix string) bool {
	if len(s) < len(suffix) {
		return false
	}
	t := s[len(s)-len(suffix):]
	for i := 0; i < len(t); i++ {
		if lowerASCII(t[i]) != lowerASCII(suffix[i]) {
			return false
		}
	}
	return true
}

// prefixFold reports whether s starts with needle (lower case) ignoring case, and how many
// bytes of s the match spans.
func prefixFold(s, needle string) (int, bool) {
	i, j := 0, 0
	for j < len(needle) {
		if i >= len(s) {
			return 0, false
		}
		nc, sc := needle[j], s[i]
		if nc < utf8.RuneSelf && sc < utf8.RuneSelf {
			if lowerASCII(sc) != nc {
				return 0, false
			}
			i++
			j++
			continue
		}
		nr, nw := utf8.DecodeRuneInString(needle[j:])
		sr, sw := utf8.DecodeRuneInString(s[i:])
		if unicode.ToLower(sr) != nr {
			return 0, false
		}
		i += sw
		j += nw
	}
	return i, true
}

// containsFold reports whether s contains needle, ignoring case (needle in any case).
func containsFold(s, needle string) bool {
	if needle == "" {
		return false
	}
	first := lowerASCII(needle[0])
	for i := 0; i <= len(s)-len(needle); i++ {
		if lowerASCII(s[i]) != first {
			continue
		}
		if strings.EqualFold(s[i:i+len(needle)], needle) {
			return true
		}
	}
	return false
}

// isWordRune reports whether r continues a word: a keyword must not start or end inside one.
func isWordRune(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }

// containsWordFold reports whether s contains needle (lower case) as whole words, ignoring
// case: "wire" matches "Wire transfer" and "wires", not "wireless". A plural s is allowed.
func containsWordFold(s, needle string) bool {
	if needle == "" {
		return false
	}
	first := needle[0]
	for i := 0; i < len(s); i++ {
		c := s[i]
		if first < utf8.RuneSelf && lowerASCII(c) != first {
			continue
		}
		if c >= 0x80 && c < 0xC0 {
			continue // inside a multi-byte rune
		}
		n, ok := prefixFold(s[i:], needle)
		if ok && wordAt(s, i, i+n) {
			return true
		}
	}
	return false
}

// wordAt reports whether s[i:end] stands as a word: no letter or digit just before it, and
// none just after it (or a plural s, then none).
func wordAt(s string, i, end int) bool {
	if i > 0 {
		if r, _ := utf8.DecodeLastRuneInString(s[:i]); isWordRune(r) {
			return false
		}
	}
	if end < len(s) && (s[end] == 's' || s[end] == 'S') {
		if end+1 >= len(s) {
			return true
		}
		if r, _ := utf8.DecodeRuneInString(s[end+1:]); !isWordRune(r) {
			return true
		}
	}
	if end >= len(s) {
		return true
	}
	r, _ := utf8.DecodeRuneInString(s[end:])
	return !isWordRune(r)
}

// Byte classes for the encoded-run scan.
const (
	cUpper = 1 << iota // A-Z
	cLower             // a-z
	cDigit             // 0-9
	cB64               // the base64 and base64url alphabet
	cHex               // 0-9 a-f A-F
	cSpace             // ' ', '\t', '\r'
	cLead              // punctuation trimmed before a token: quotes, brackets
	cTrail             // punctuation trimmed after a token
)

var byteClass = func() (t [256]uint8) {
	for c := 'A'; c <= 'Z'; c++ {
		t[c] |= cUpper | cB64
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] |= cLower | cB64
	}
	for c := '0'; c <= '9'; c++ {
		t[c] |= cDigit | cB64 | cHex
	}
	for _, c := range "abcdefABCDEF" {
		t[c] |= cHex
	}
	for _, c := range "+/-_" {
		t[c] |= cB64
	}
	for _, c := range " \t\r" {
		t[c] |= cSpace
	}
	for _, c := range "\"'([<{" {
		t[c] |= cLead
	}
	for _, c := range "\"')]>}.,;:!?=" {
		t[c] |= cTrail
	}
	return t
}()

// longestRuns returns the longest base64 (or base64url) run and the longest hex run of body.
// A base64 run is a maximal sequence of the alphabet inside a whitespace-delimited token; a
// line holding nothing but one such token (quotes, brackets, punctuation and padding aside)
// continues the run of the line before it when that line did too, so base64 wrapped at 64 or
// 76 columns is one run. A base64 run counts only when it mixes upper case, lower case and
// digits, and a hex run (a maximal sequence of hex digits, or of \xHH escapes) only when it
// mixes digits and letters, so that words, separators, numbers and hashes of one case never
// count. Tokens that are URLs (whose tracking tokens are base64 for legitimate reasons), SSH
// public keys and, with skipArmor, PEM/PGP armored blocks are skipped. Runs shorter than
// minRun may be missed: tokens shorter than that are not scanned unless they make a whole
// line (and may join the lines around them).
func longestRuns(body string, skipArmor bool, minRun int) (b64, hex int) {
	inArmor, prevWhole := false, false
	block := 0
	var cls uint8
	for body != "" {
		line := body
		if i := strings.IndexByte(body, '\n'); i >= 0 {
			line, body = body[:i], body[i+1:]
		} else {
			body = ""
		}
		// Trim the line's blanks.
		a, z := 0, len(line)
		for a < z && byteClass[line[a]]&cSpace != 0 {
			a++
		}
		for z > a && byteClass[line[z-1]]&cSpace != 0 {
			z--
		}
		line = line[a:z]
		if skipArmor && (inArmor || strings.HasPrefix(line, "-----")) {
			switch {
			case inArmor && strings.HasPrefix(line, "-----END "):
				inArmor = false
			case !inArmor && strings.HasPrefix(line, "-----BEGIN "):
				inArmor = true
			}
			if inArmor || strings.HasPrefix(line, "-----END ") {
				prevWhole = false
				continue
			}
		}
		whole := false
		skipNext := false
		for i := 0; i < len(line); {
			for i < len(line) && byteClass[line[i]]&cSpace != 0 {
				i++
			}
			j := i
			for j < len(line) && byteClass[line[j]]&cSpace == 0 {
				j++
			}
			tok := line[i:j]
			single := i == 0 && j == len(line)
			i = j
			if tok == "" {
				continue
			}
			skip := skipNext
			skipNext = strings.HasPrefix(tok, "ssh-") || strings.HasPrefix(tok, "ecdsa-sha2-") || strings.HasPrefix(tok, "sk-ssh-")
			if skip || (!single && len(tok) < minRun) || strings.Contains(tok, "://") || hasPrefixFold(tok, "www.") || hasPrefixFold(tok, "mailto:") {
				continue
			}
			tb, th, w, wc := scanToken(tok)
			hex = max(hex, th)
			if single && w > 0 {
				whole = true
				if prevWhole {
					block += w
					cls |= wc
				} else {
					block, cls = w, wc
				}
				if cls == cUpper|cLower|cDigit {
					b64 = max(b64, block)
				}
				continue
			}
			b64 = max(b64, tb)
		}
		prevWhole = whole
	}
	return b64, hex
}

// scanToken returns the longest base64 run of tok that mixes upper case, lower case and
// digits, the longest hex run (digits and letters mixed, or \xHH escapes), and, when tok is
// one base64 run between leading and trailing punctuation, that run's length and classes
// (else 0, 0).
func scanToken(tok string) (b64, hex, whole int, wholeCls uint8) {
	// The span of tok inside its punctuation, for the whole-token test.
	a, z := 0, len(tok)
	for a < z && byteClass[tok[a]]&cLead != 0 {
		a++
	}
	for z > a && byteClass[tok[z-1]]&cTrail != 0 {
		z--
	}
	run, hrun := 0, 0
	var rcls, hcls, all uint8
	inner := 0 // base64 characters inside [a, z)
	for i := 0; i < len(tok); i++ {
		f := byteClass[tok[i]]
		if f&cB64 != 0 {
			run++
			rcls |= f
			if i >= a && i < z {
				inner++
				all |= f
			}
		} else {
			if rcls&(cUpper|cLower|cDigit) == cUpper|cLower|cDigit {
				b64 = max(b64, run)
			}
			run, rcls = 0, 0
		}
		if f&cHex != 0 {
			hrun++
			hcls |= f
		} else {
			if hcls&cDigit != 0 && hcls&(cUpper|cLower) != 0 {
				hex = max(hex, hrun)
			}
			hrun, hcls = 0, 0
		}
	}
	if rcls&(cUpper|cLower|cDigit) == cUpper|cLower|cDigit {
		b64 = max(b64, run)
	}
	if hcls&cDigit != 0 && hcls&(cUpper|cLower) != 0 {
		hex = max(hex, hrun)
	}
	if z > a && inner == z-a {
		whole, wholeCls = inner, all&(cUpper|cLower|cDigit)
	}
	if strings.Contains(tok, `\x`) || strings.Contains(tok, `\X`) {
		hex = max(hex, escapeRun(tok))
	}
	return b64, hex, whole, wholeCls
}

// escapeRun returns the number of hex digits of the longest sequence of \xHH escapes in tok.
func escapeRun(tok string) int {
	best := 0
	for i := 0; i < len(tok); {
		j, n := i, 0
		for j+3 < len(tok) && tok[j] == '\\' && (tok[j+1] == 'x' || tok[j+1] == 'X') && isHexDigit(tok[j+2]) && isHexDigit(tok[j+3]) {
			n += 2
			j += 4
		}
		if n > 0 {
			best = max(best, n)
			i = j
			continue
		}
		i++
	}
	return best
}
