package abi

import (
	"errors"
	"fmt"
	"strings"
)

// Path is a parsed absolute field path such as "payload.command_text", "session_id",
// "payload.downloads[].url" or "payload.headers.*". Paths are absolute everywhere (rules'
// match.field, plugin manifests) so that a reader never has to guess which object a name is
// relative to.
//
// A segment ending in "[]" collects across an array: the rest of the path is read from every
// element, giving one entry per element in order (nil where an element lacks it), so that
// "payload.downloads[].url" and "payload.downloads[].sha256" stay aligned. A final ".*" reads
// an object of scalars as a whole.
type Path struct {
	raw  string
	segs []pathSeg
	star bool
	list bool
}

type pathSeg struct {
	name string
	each bool // the value at this segment is an array to collect across
}

// ErrBadPath is wrapped by ParsePath for every malformed path.
var ErrBadPath = errors.New("bad field path")

// topFields are the Event fields a path may start with.
var topFields = map[string]bool{
	"source_kind": true, "source_id": true, "attacker_uuid": true, "identity_uuid": true,
	"session_id": true, "decky_id": true, "observed_at": true, "payload": true,
}

// ParsePath parses an absolute field path.
func ParsePath(s string) (Path, error) {
	if s == "" {
		return Path{}, fmt.Errorf("%w: empty", ErrBadPath)
	}
	p := Path{raw: s}
	parts := strings.Split(s, ".")
	for i, part := range parts {
		if part == "*" {
			if i != len(parts)-1 || i < 2 {
				return Path{}, fmt.Errorf("%w: %q: \"*\" may only end a path inside payload", ErrBadPath, s)
			}
			p.star = true
			break
		}
		sg := pathSeg{name: part}
		if strings.HasSuffix(part, "[]") {
			sg.name, sg.each = strings.TrimSuffix(part, "[]"), true
			p.list = true
		}
		if sg.name == "" || strings.ContainsAny(sg.name, "[]*") {
			return Path{}, fmt.Errorf("%w: %q: bad segment %q", ErrBadPath, s, part)
		}
		p.segs = append(p.segs, sg)
	}
	if !topFields[p.segs[0].name] {
		return Path{}, fmt.Errorf("%w: %q: must start with an event field (payload, session_id, ...)", ErrBadPath, s)
	}
	if p.segs[0].each || (p.segs[0].name != "payload" && (len(p.segs) > 1 || p.star)) {
		return Path{}, fmt.Errorf("%w: %q: only payload has inner fields", ErrBadPath, s)
	}
	if p.segs[0].name == "payload" && len(p.segs) == 1 && !p.star {
		return Path{}, fmt.Errorf("%w: %q: name a field inside payload", ErrBadPath, s)
	}
	return p, nil
}

// MustParsePath is ParsePath for constants; it panics on a malformed path.
func MustParsePath(s string) Path {
	p, err := ParsePath(s)
	if err != nil {
		panic(err)
	}
	return p
}

// String returns the path as written.
func (p Path) String() string { return p.raw }

// IsList reports whether the path collects across an array ("[]").
func (p Path) IsList() bool { return p.list }

// IsObject reports whether the path ends in ".*".
func (p Path) IsObject() bool { return p.star }

// Key is the evidence key the built-in engine uses for a value read through this path: the
// last named segment ("command_text" for "payload.command_text").
func (p Path) Key() string { return p.segs[len(p.segs)-1].name }

// Lookup reads the path from ev. A plain path yields the value (string, float64, bool, nil,
// map[string]any or []any as decoded); a "[]" path yields []any with one entry per element;
// a ".*" path yields the object. ok is false when the value is absent.
func (p Path) Lookup(ev *Event) (v any, ok bool) {
	switch p.segs[0].name {
	case "source_kind":
		return ev.SourceKind, true
	case "source_id":
		return ev.SourceID, true
	case "attacker_uuid":
		return ev.AttackerUUID, ev.AttackerUUID != ""
	case "identity_uuid":
		return ev.IdentityUUID, ev.IdentityUUID != ""
	case "session_id":
		return ev.SessionID, ev.SessionID != ""
	case "decky_id":
		return ev.DeckyID, ev.DeckyID != ""
	case "observed_at":
		if ev.ObservedAt.IsZero() {
			return nil, false
		}
		return ev.ObservedAt.UTC().Format("2006-01-02T15:04:05.999999999Z07:00"), true
	}
	if ev.Payload == nil {
		return nil, false
	}
	return lookupIn(ev.Payload, p.segs[1:])
}

// LookupString reads a string-valued path without allocating; ok is false when the value is
// absent or not a string.
func (p Path) LookupString(ev *Event) (string, bool) {
	if p.list || p.star {
		return "", false
	}
	v, ok := p.Lookup(ev)
	if !ok {
		return "", false
	}
	s, ok := v.(string)
	return s, ok
}

// lookupEach reads a "[]" path up to its first "[]" segment: the array there and the segments
// to read from each element. ok is false exactly when Lookup's is.
func (p Path) lookupEach(ev *Event) (arr []any, rest []pathSeg, ok bool) {
	if ev.Payload == nil {
		return nil, nil, false
	}
	v, each, rest, ok := walk(ev.Payload, p.segs[1:])
	if !ok || !each {
		return nil, nil, false
	}
	return v.([]any), rest, true
}

// walk follows segs through the objects from obj and stops after the first "[]" segment
// (each true, v the array there, rest the segments after it) or at the end of segs.
func walk(obj map[string]any, segs []pathSeg) (v any, each bool, rest []pathSeg, ok bool) {
	var cur any = obj
	for i, sg := range segs {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false, nil, false
		}
		if cur, ok = m[sg.name]; !ok {
			return nil, false, nil, false
		}
		if sg.each {
			if _, ok := cur.([]any); !ok {
				return nil, false, nil, false
			}
			return cur, true, segs[i+1:], true
		}
	}
	return cur, false, nil, true
}

// project reads the rest of a "[]" path from one element of its array: the element itself
// when nothing is left, nil when the element lacks it.
func project(el any, rest []pathSeg) any {
	if len(rest) == 0 {
		return el
	}
	em, ok := el.(map[string]any)
	if !ok {
		return nil
	}
	v, _ := lookupIn(em, rest)
	return v
}

// lookupIn reads segs from obj; a "[]" segment collects the rest of the path across its
// array, one entry per element.
func lookupIn(obj map[string]any, segs []pathSeg) (any, bool) {
	v, each, rest, ok := walk(obj, segs)
	if !ok || !each {
		return v, ok
	}
	arr := v.([]any)
	out := make([]any, len(arr))
	for j, el := range arr {
		out[j] = project(el, rest)
	}
	return out, true
}
