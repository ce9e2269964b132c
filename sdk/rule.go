package sdk

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/decnet/ttp/abi"
)

// Rule is one rule the lifter owns, as the host configured it, with the lifter's own reading
// of its params in Params. Configure fills Params once per configuration; Tag reads them on
// every event, so thresholds are parsed once and not per event.
//
// Rules are definitions only: whether a rule is disabled or clipped is the host's business,
// applied to the tags afterwards, so a state change never reconfigures a lifter.
type Rule[P any] struct {
	// Index is the rule's position in the configuration; Drafts.Add takes it to say which
	// rule a draft is for.
	Index int
	// ID is the rule's id ("R0031"), for messages.
	ID string
	// Kind is the rule's match.kind ("lifter:behavioral_automated"): a lifter owning several
	// kinds (through a prefix) tells them apart by it.
	Kind string
	// AppliesTo lists the source kinds the rule applies to; Tag is given only the rules that
	// apply to the event's kind.
	AppliesTo []string
	// Emits are the techniques the rule tags; a draft names one by index and may scale its
	// confidence down.
	Emits []abi.EmitConfig
	// Params is what Configure made of the rule's params.
	Params P

	raw      map[string]any
	read     []string
	problems []string
}

// param returns the raw value of param name and records that the lifter reads it.
func (r *Rule[P]) param(name string) (any, bool) {
	if !slices.Contains(r.read, name) {
		r.read = append(r.read, name)
	}
	v, ok := r.raw[name]
	return v, ok
}

// problem records that param name has an unusable value: the rule is rejected with every
// problem found, so an operator fixes them all in one edit.
func (r *Rule[P]) problem(name, want string, v any) {
	got, err := json.Marshal(v)
	if err != nil {
		got = []byte(fmt.Sprintf("%v", v))
	}
	r.problems = append(r.problems, fmt.Sprintf("params.%s: want %s, got %s", name, want, got))
}

// Has reports whether the rule sets param name (and marks it as one the lifter reads).
func (r *Rule[P]) Has(name string) bool {
	_, ok := r.param(name)
	return ok
}

// Value returns param name as decoded from JSON (float64, string, bool, nil, []any,
// map[string]any) and whether it is set, for params of a shape the typed helpers do not
// cover. It marks the param as one the lifter reads.
func (r *Rule[P]) Value(name string) (any, bool) { return r.param(name) }

// Int returns integer param name, or def when the rule does not set it. A value that is not
// an integer (2.5, "5", null) makes the rule rejected with a message naming the param, and
// def is returned so Configure can carry on and find further problems.
func (r *Rule[P]) Int(name string, def int64) int64 {
	v, ok := r.param(name)
	if !ok {
		return def
	}
	switch x := v.(type) {
	case float64:
		if x == math.Trunc(x) && math.Abs(x) <= 1<<53 {
			return int64(x)
		}
	case int:
		return int64(x)
	case int64:
		return x
	}
	r.problem(name, "an integer", v)
	return def
}

// Float returns number param name, or def when the rule does not set it; a value that is not
// a number makes the rule rejected (see Int).
func (r *Rule[P]) Float(name string, def float64) float64 {
	v, ok := r.param(name)
	if !ok {
		return def
	}
	switch x := v.(type) {
	case float64:
		return x
	case int:
		return float64(x)
	case int64:
		return float64(x)
	}
	r.problem(name, "a number", v)
	return def
}

// String returns string param name, or def when the rule does not set it; a value that is
// not a string makes the rule rejected (see Int).
func (r *Rule[P]) String(name, def string) string {
	v, ok := r.param(name)
	if !ok {
		return def
	}
	if s, ok := v.(string); ok {
		return s
	}
	r.problem(name, "a string", v)
	return def
}

// Bool returns boolean param name, or def when the rule does not set it; a value that is not
// true or false makes the rule rejected (see Int).
func (r *Rule[P]) Bool(name string, def bool) bool {
	v, ok := r.param(name)
	if !ok {
		return def
	}
	if b, ok := v.(bool); ok {
		return b
	}
	r.problem(name, "true or false", v)
	return def
}

// Strings returns string list param name, or def when the rule does not set it; a value that
// is not a list of strings makes the rule rejected (see Int).
func (r *Rule[P]) Strings(name string, def []string) []string {
	v, ok := r.param(name)
	if !ok {
		return def
	}
	switch x := v.(type) {
	case []string:
		return x
	case []any:
		out := make([]string, len(x))
		for i, el := range x {
			s, ok := el.(string)
			if !ok {
				r.problem(name, "a list of strings", v)
				return def
			}
			out[i] = s
		}
		return out
	}
	r.problem(name, "a list of strings", v)
	return def
}

// verdict is the rejection message of a configured rule ("" when usable): the params the
// helpers could not use, then err from Configure, then (when Configure accepted the rule)
// params the lifter never read, which are typos such as min_comands far more often than
// anything deliberate, and would otherwise silently leave a default in force.
func (r *Rule[P]) verdict(err error) string {
	msgs := r.problems
	if err != nil {
		msgs = append(msgs, err.Error())
	} else {
		var unknown []string
		for k := range r.raw {
			if !slices.Contains(r.read, k) {
				unknown = append(unknown, k)
			}
		}
		slices.Sort(unknown)
		known := "it reads no params"
		if len(r.read) > 0 {
			known = "it reads " + strings.Join(r.read, ", ")
		}
		for _, k := range unknown {
			msgs = append(msgs, fmt.Sprintf("params.%s: unknown to this lifter (%s)", k, known))
		}
	}
	return strings.Join(msgs, "; ")
}
