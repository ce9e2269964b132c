package sdk

import (
	"iter"

	"github.com/decnet/ttp/abi"
)

// Event is the event a Tag call is about, as the host projected it: exactly the fields the
// manifest declared for its source kind, read by Field handle without parsing or allocating.
//
// An Event and every string read from it are valid only during the Tag call: they alias the
// input buffer, which the next call overwrites. Copy a string (strings.Clone) to keep it,
// although a lifter should keep nothing between calls.
type Event struct {
	rec abi.Record
	m   *Manifest
}

// index returns f's position in the record, or -1 when f belongs to another source kind or
// manifest; abi.Record treats -1 as an absent field.
func (e *Event) index(f Field) int {
	if f.m != e.m || f.source != e.rec.KindIndex() || f.index >= e.rec.Fields {
		return -1
	}
	return f.index
}

// Kind returns the event's source kind ("auth", "session", ...).
func (e *Event) Kind() string {
	if k := e.rec.KindIndex(); k < len(e.m.sources) {
		return e.m.sources[k].kind
	}
	return ""
}

// Type returns the type tag of field f (abi.TypeNull when the field is absent, null, or of a
// shape the record cannot carry). Use it when a field may come as a number or a string.
func (e *Event) Type(f Field) byte { return e.rec.Type(e.index(f)) }

// Has reports whether field f is present (not null).
func (e *Event) Has(f Field) bool { return e.Type(f) != abi.TypeNull }

// String returns field f if it is a string, else "" (use Has or Type to tell an empty string
// from an absent one).
func (e *Event) String(f Field) string { return e.rec.String(e.index(f)) }

// Int returns field f as an integer (a float is truncated) and whether it is a number.
func (e *Event) Int(f Field) (int64, bool) { return e.rec.Int(e.index(f)) }

// Float returns field f as a float64 and whether it is a number (integers included).
func (e *Event) Float(f Field) (float64, bool) {
	i := e.index(f)
	switch e.rec.Type(i) {
	case abi.TypeInt, abi.TypeFloat:
		return e.rec.Float(i), true
	}
	return 0, false
}

// Bool returns field f as a bool and whether it is one.
func (e *Event) Bool(f Field) (v, ok bool) { return e.rec.Bool(e.index(f)) }

// Len returns the number of entries of a list or pairs field (0 otherwise).
func (e *Event) Len(f Field) int { return e.rec.Len(e.index(f)) }

// stringList returns a cursor over field f when it has type tag t, else an empty one. The
// iterators below call it inside their closures, which keeps them small enough to inline,
// so a range over them allocates nothing.
func (e *Event) stringList(f Field, t byte) abi.StringList {
	if i := e.index(f); e.rec.Type(i) == t {
		return e.rec.StringList(i)
	}
	return abi.StringList{}
}

// Strings iterates over a string list field ("payload.usernames", "payload.commands[].text"):
// index and entry, in order. Other types yield nothing. An array with any string element is
// a string list (numbers in shortest decimal form); an element lacking a "[]" path's field
// gives "", so lists over the same array stay aligned.
func (e *Event) Strings(f Field) iter.Seq2[int, string] {
	return func(yield func(int, string) bool) {
		for j, l := 0, e.stringList(f, abi.TypeStringList); ; j++ {
			s, ok := l.Next()
			if !ok || !yield(j, s) {
				return
			}
		}
	}
}

// StringAt returns entry j of a string list field ("" when out of range). It walks the list
// from the start: use Strings to visit every entry.
func (e *Event) StringAt(f Field, j int) string {
	i := e.index(f)
	if e.rec.Type(i) != abi.TypeStringList {
		return ""
	}
	return e.rec.StringAt(i, j)
}

// Numbers iterates over a number list field ("payload.command_times_ms"): index and entry,
// in order; NaN stands for an element that is not a number (or lacks a "[]" path's field).
// Other types yield nothing.
func (e *Event) Numbers(f Field) iter.Seq2[int, float64] {
	return func(yield func(int, float64) bool) {
		for j, l := 0, e.rec.NumberList(e.index(f)); ; j++ {
			n, ok := l.Next()
			if !ok || !yield(j, n) {
				return
			}
		}
	}
}

// NumberAt returns entry j of a number list field (NaN when out of range or absent).
func (e *Event) NumberAt(f Field, j int) float64 { return e.rec.NumberAt(e.index(f), j) }

// Pairs iterates over an object field read with a ".*" path ("payload.headers.*"): key and
// value, keys in byte order, values as strings. Other types yield nothing.
func (e *Event) Pairs(f Field) iter.Seq2[string, string] {
	return func(yield func(string, string) bool) {
		for l := e.stringList(f, abi.TypePairs); ; {
			k, ok := l.Next()
			v, _ := l.Next()
			if !ok || !yield(k, v) {
				return
			}
		}
	}
}
