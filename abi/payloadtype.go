package abi

import (
	_ "embed"
	"fmt"
	"strings"
	"sync"
)

// eventsDoc is EVENTS.md itself: the payload tables a producer reads are the ones
// CheckPayload enforces, so the document and the check cannot drift apart.
//
//go:embed EVENTS.md
var eventsDoc string

// fieldType is one documented payload field: its path below payload and its JSON type.
type fieldType struct {
	path []string // "navigator", "webdriver"
	name string   // "payload.navigator.webdriver", as documented
	want byte     // 's' string, 'n' number, 'b' boolean, 'a' array, 'o' object
}

var (
	payloadTypesOnce sync.Once
	payloadTypes     map[string][]fieldType // by source kind
)

// parsePayloadTypes reads the "path | JSON type" columns of every kind's table in EVENTS.md.
// Paths through lists (`[]`) or wildcards (`*`) are left to the lifters that declare them.
func parsePayloadTypes(doc string) map[string][]fieldType {
	out := map[string][]fieldType{}
	kind := ""
	for line := range strings.Lines(doc) {
		if h, ok := strings.CutPrefix(line, "## "); ok {
			kind = strings.TrimSpace(h)
			continue
		}
		cols := strings.Split(line, "|")
		if kind == "" || len(cols) < 4 {
			continue
		}
		name := strings.Trim(strings.TrimSpace(cols[1]), "`")
		rest, ok := strings.CutPrefix(name, "payload.")
		if !ok || strings.ContainsAny(rest, "[]*") {
			continue
		}
		var want byte
		switch first, _, _ := strings.Cut(strings.TrimSpace(cols[2]), " "); first {
		case "string":
			want = 's'
		case "integer", "number":
			want = 'n'
		case "boolean":
			want = 'b'
		case "array":
			want = 'a'
		case "object":
			want = 'o'
		default:
			continue
		}
		out[kind] = append(out[kind], fieldType{path: strings.Split(rest, "."), name: name, want: want})
	}
	return out
}

var typeNames = map[byte]string{'s': "a string", 'n': "a number", 'b': "a boolean", 'a': "an array", 'o': "an object"}

// CheckPayload reports the first documented field of ev's payload (abi/EVENTS.md) that holds
// a JSON value of another type than the one documented, as a *FieldError naming the field:
// `command_text: 12345` would otherwise match no rule and tag nothing, with no word to the
// producer. An absent or null field is fine (absent, not null). Kinds EVENTS.md does not
// document have nothing to check. It allocates only when it finds a wrong type.
func CheckPayload(kind string, payload map[string]any) error {
	payloadTypesOnce.Do(func() { payloadTypes = parsePayloadTypes(eventsDoc) })
	for _, f := range payloadTypes[kind] {
		var v any = payload
		for i, seg := range f.path {
			m, ok := v.(map[string]any)
			if !ok {
				if v == nil {
					break
				}
				return &FieldError{Field: "payload." + strings.Join(f.path[:i], "."),
					Err: fmt.Errorf("want an object (for %s), got %s", f.name, jsonType(v))}
			}
			v = m[seg]
		}
		if v == nil || matchesType(v, f.want) {
			continue
		}
		return &FieldError{Field: f.name, Err: fmt.Errorf("want %s, got %s", typeNames[f.want], jsonType(v))}
	}
	return nil
}

func matchesType(v any, want byte) bool {
	switch v.(type) {
	case string:
		return want == 's'
	case float64:
		return want == 'n'
	case bool:
		return want == 'b'
	case []any:
		return want == 'a'
	case map[string]any:
		return want == 'o'
	}
	return true // a type JSON decoding does not make (a caller's own value): not ours to judge
}

func jsonType(v any) string {
	switch x := v.(type) {
	case string:
		return fmt.Sprintf("a string %q", x)
	case float64:
		return fmt.Sprintf("the number %v", x)
	case bool:
		return fmt.Sprintf("the boolean %v", x)
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}
