package cowrie

import (
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// fast decodes a line the way json.Unmarshal(b, l) does, for the lines it can read without
// doubt, and reports whether it did; on false, l is in any state and the caller decodes the
// line with encoding/json (which also words the error of a bad line).
//
// Why: encoding/json validates a line in one pass and decodes it by reflection in another,
// which was two thirds of the per-line cost (BenchmarkDecode). This reads the top-level
// object once, keeps the attributes of line and steps over the others (Cowrie's kex lines
// carry long algorithm lists). It hands back to encoding/json every case where the two could
// differ: escapes or invalid UTF-8 in a key, a string with an escape or bad UTF-8 (decoded by
// json.Unmarshal alone), a value of the wrong type, a key that matches a field only
// case-insensitively, anything after the object. One leniency remains: inside a value it
// steps over (an attribute nobody reads), it checks the brackets and strings, not every comma
// and literal. FuzzFastDecode holds it to encoding/json on every line encoding/json accepts.
func (l *line) fast(b []byte) bool {
	i := skipWS(b, 0)
	if i >= len(b) || b[i] != '{' {
		return false
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		return skipWS(b, i+1) == len(b)
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return false
		}
		key, j, esc, hi := scanString(b, i)
		if j < 0 || esc || hi {
			return false
		}
		i = skipWS(b, j)
		if i >= len(b) || b[i] != ':' {
			return false
		}
		i = skipWS(b, i+1)
		if i >= len(b) {
			return false
		}
		if i = l.field(key, b, i); i < 0 {
			return false
		}
		i = skipWS(b, i)
		if i >= len(b) {
			return false
		}
		switch b[i] {
		case ',':
			i = skipWS(b, i+1)
		case '}':
			return skipWS(b, i+1) == len(b)
		default:
			return false
		}
	}
}

// field reads the value at b[i] into the field named key, or steps over it, and returns the
// index after it (-1: let encoding/json decide).
func (l *line) field(key []byte, b []byte, i int) int {
	switch string(key) {
	case "eventid":
		return str(b, i, &l.EventID)
	case "session":
		return str(b, i, &l.Session)
	case "src_ip":
		return str(b, i, &l.SrcIP)
	case "timestamp":
		return str(b, i, &l.Timestamp)
	case "sensor":
		return str(b, i, &l.Sensor)
	case "src_port":
		return num(b, i, &l.SrcPort)
	case "dst_ip":
		return str(b, i, &l.DstIP)
	case "dst_port":
		return num(b, i, &l.DstPort)
	case "protocol":
		return str(b, i, &l.Protocol)
	case "version":
		return str(b, i, &l.Version)
	case "hassh":
		return str(b, i, &l.HASSH)
	case "fingerprint":
		return str(b, i, &l.Fingerprint)
	case "name":
		return str(b, i, &l.Name)
	case "value":
		return str(b, i, &l.Value)
	case "width":
		return num(b, i, &l.Width)
	case "height":
		return num(b, i, &l.Height)
	case "username":
		return strPtr(b, i, &l.Username)
	case "password":
		return strPtr(b, i, &l.Password)
	case "input":
		return strPtr(b, i, &l.Input)
	case "realm":
		return str(b, i, &l.Realm)
	case "url":
		return str(b, i, &l.URL)
	case "shasum":
		return str(b, i, &l.SHASum)
	case "outfile":
		return str(b, i, &l.Outfile)
	case "destfile":
		return str(b, i, &l.Destfile)
	case "filename":
		return str(b, i, &l.Filename)
	case "data":
		return str(b, i, &l.Data)
	case "duration_ms":
		return num(b, i, &l.DurationMS)
	case "duration":
		return num(b, i, &l.Duration)
	}
	if foldsToField(key) {
		return -1 // encoding/json matches keys case-insensitively
	}
	return skipValue(b, i, 0)
}

// fieldNames are the JSON names of line's fields, for foldsToField.
var fieldNames = map[string]bool{}

func init() {
	for _, k := range []string{"eventid", "session", "src_ip", "timestamp", "sensor", "src_port", "dst_ip", "dst_port", "protocol",
		"version", "hassh", "fingerprint", "name", "value", "width", "height", "username", "password", "input", "realm", "url",
		"shasum", "outfile", "destfile", "filename", "data", "duration_ms", "duration"} {
		fieldNames[k] = true
	}
}

// foldsToField reports whether key (ASCII, not a field name) has upper-case letters and is a
// field name once lower-cased.
func foldsToField(key []byte) bool {
	var buf [16]byte
	if len(key) > len(buf) {
		return false
	}
	upper := false
	for j, c := range key {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
			upper = true
		}
		buf[j] = c
	}
	return upper && fieldNames[string(buf[:len(key)])]
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// scanString scans the JSON string at b[i] (b[i] is '"') and returns its raw content, the
// index after its closing quote (-1 when it is not a valid string), whether it holds an escape
// and whether it holds bytes above 0x7f.
func scanString(b []byte, i int) (content []byte, end int, esc, hi bool) {
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			return b[i+1 : j], j + 1, esc, hi
		case c == '\\':
			esc = true
			j++
		case c < 0x20:
			return nil, -1, false, false
		case c >= 0x80:
			hi = true
		}
	}
	return nil, -1, false, false
}

// strValue decodes the string at b[i]; end -1 when it is not one encoding/json reads the same.
func strValue(b []byte, i int) (s string, end int) {
	content, end, esc, hi := scanString(b, i)
	if end < 0 {
		return "", -1
	}
	if esc || hi && !utf8.Valid(content) {
		if err := json.Unmarshal(b[i:end], &s); err != nil {
			return "", -1
		}
		return s, end
	}
	return string(content), end
}

func isNull(b []byte, i int) bool {
	return len(b)-i >= 4 && string(b[i:i+4]) == "null"
}

func str(b []byte, i int, dst *string) int {
	if isNull(b, i) {
		return i + 4 // null leaves a string as it was
	}
	if b[i] != '"' {
		return -1
	}
	s, end := strValue(b, i)
	if end >= 0 {
		*dst = s
	}
	return end
}

func strPtr(b []byte, i int, dst **string) int {
	if isNull(b, i) {
		*dst = nil
		return i + 4
	}
	if b[i] != '"' {
		return -1
	}
	s, end := strValue(b, i)
	if end >= 0 {
		*dst = &s
	}
	return end
}

// num reads a number, or a string holding one, as number.UnmarshalJSON does.
func num(b []byte, i int, dst *number) int {
	switch {
	case isNull(b, i):
		return i + 4
	case b[i] == '"':
		s, end := strValue(b, i)
		if end < 0 {
			return -1
		}
		if s == "" {
			return end
		}
		if s == "null" {
			return -1 // number.UnmarshalJSON's own corner; let it decide
		}
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return -1
		}
		*dst = number{V: v, Set: true}
		return end
	}
	end := scanNumber(b, i)
	if end < 0 {
		return -1
	}
	v, err := strconv.ParseFloat(string(b[i:end]), 64)
	if err != nil {
		return -1
	}
	*dst = number{V: v, Set: true}
	return end
}

// scanNumber returns the end of the JSON number at b[i], -1 when there is none.
func scanNumber(b []byte, i int) int {
	j := i
	if j < len(b) && b[j] == '-' {
		j++
	}
	switch {
	case j < len(b) && b[j] == '0':
		j++
	case j < len(b) && '1' <= b[j] && b[j] <= '9':
		for j < len(b) && '0' <= b[j] && b[j] <= '9' {
			j++
		}
	default:
		return -1
	}
	if j < len(b) && b[j] == '.' {
		j++
		k := j
		for j < len(b) && '0' <= b[j] && b[j] <= '9' {
			j++
		}
		if j == k {
			return -1
		}
	}
	if j < len(b) && (b[j] == 'e' || b[j] == 'E') {
		j++
		if j < len(b) && (b[j] == '+' || b[j] == '-') {
			j++
		}
		k := j
		for j < len(b) && '0' <= b[j] && b[j] <= '9' {
			j++
		}
		if j == k {
			return -1
		}
	}
	return j
}

// skipValue returns the index after the JSON value at b[i] (-1 when it is not one), checking
// strings, literals, numbers and brackets.
func skipValue(b []byte, i, depth int) int {
	if i >= len(b) || depth > 64 {
		return -1
	}
	switch c := b[i]; {
	case c == '"':
		_, end, _, _ := scanString(b, i)
		return end
	case c == '{' || c == '[':
		closer := byte('}')
		if c == '[' {
			closer = ']'
		}
		j := skipWS(b, i+1)
		if j < len(b) && b[j] == closer {
			return j + 1
		}
		for j < len(b) {
			if c == '{' {
				if b[j] != '"' {
					return -1
				}
				_, end, _, _ := scanString(b, j)
				if end < 0 {
					return -1
				}
				j = skipWS(b, end)
				if j >= len(b) || b[j] != ':' {
					return -1
				}
				j = skipWS(b, j+1)
			}
			if j = skipValue(b, j, depth+1); j < 0 {
				return -1
			}
			j = skipWS(b, j)
			if j < len(b) && b[j] == ',' {
				j = skipWS(b, j+1)
				continue
			}
			if j < len(b) && b[j] == closer {
				return j + 1
			}
			return -1
		}
		return -1
	case c == 't':
		if len(b)-i >= 4 && string(b[i:i+4]) == "true" {
			return i + 4
		}
	case c == 'f':
		if len(b)-i >= 5 && string(b[i:i+5]) == "false" {
			return i + 5
		}
	case c == 'n':
		if isNull(b, i) {
			return i + 4
		}
	case c == '-' || '0' <= c && c <= '9':
		return scanNumber(b, i)
	}
	return -1
}
