package rules

import (
	"fmt"
	"sort"
	"time"
)

// RuleSet is an immutable, compiled set of rule definitions: by id, by source kind, and the
// built-in engine's prefilter for every kind. Building one costs milliseconds and happens off
// the hot path; evaluation only reads it.
type RuleSet struct {
	byID    map[string]*Rule
	byKind  map[string][]*Rule
	engines map[string]*kindEngine
}

// NewRuleSet compiles rules into a RuleSet. Duplicate ids are an error.
func NewRuleSet(rules []*Rule) (*RuleSet, error) {
	s := &RuleSet{byID: make(map[string]*Rule, len(rules)), byKind: map[string][]*Rule{}, engines: map[string]*kindEngine{}}
	for _, r := range rules {
		if prev, dup := s.byID[r.ID]; dup {
			return nil, &Error{File: r.File, Field: "id", Err: fmt.Errorf("%w: %s also in %s", ErrDuplicateID, r.ID, prev.File)}
		}
		s.byID[r.ID] = r
	}
	ids := SortedIDs(s.byID)
	patterns := map[string][]*Rule{}
	for _, id := range ids {
		r := s.byID[id]
		for _, k := range r.AppliesTo {
			s.byKind[k] = append(s.byKind[k], r)
			if r.IsPattern() {
				patterns[k] = append(patterns[k], r)
			}
		}
	}
	for k, rs := range patterns {
		s.engines[k] = newKindEngine(k, rs)
	}
	return s, nil
}

// Rule returns the rule with the given id.
func (s *RuleSet) Rule(id string) (*Rule, bool) {
	r, ok := s.byID[id]
	return r, ok
}

// Rules returns every rule, ordered by id.
func (s *RuleSet) Rules() []*Rule {
	out := make([]*Rule, 0, len(s.byID))
	for _, id := range SortedIDs(s.byID) {
		out = append(out, s.byID[id])
	}
	return out
}

// ForKind returns the rules that apply to a source kind, ordered by id.
func (s *RuleSet) ForKind(kind string) []*Rule { return s.byKind[kind] }

// Snapshot is what one evaluation reads: a RuleSet and the rule states beside it. It is
// immutable; a change makes a new one.
type Snapshot struct {
	Set    *RuleSet
	states map[string]State
}

// State returns a rule's state as evaluated at now (enabled when none is set or it expired).
func (s *Snapshot) State(id string, now time.Time) State {
	return s.states[id].Effective(now)
}

// States returns a copy of the states set on rules, expired ones included.
func (s *Snapshot) States() map[string]State {
	out := make(map[string]State, len(s.states))
	for k, v := range s.states {
		out[k] = v
	}
	return out
}

var emptySet, _ = NewRuleSet(nil)

// EmptySnapshot is the snapshot of no rules and no states: where a host starts before its
// rule store has been read.
func EmptySnapshot() *Snapshot { return &Snapshot{Set: emptySet, states: map[string]State{}} }

// NewSnapshot compiles rules into a snapshot with the given states (copied). Duplicate ids are
// an error.
func NewSnapshot(rules []*Rule, states map[string]State) (*Snapshot, error) {
	set, err := NewRuleSet(rules)
	if err != nil {
		return nil, err
	}
	st := make(map[string]State, len(states))
	for k, v := range states {
		st[k] = v
	}
	return &Snapshot{Set: set, states: st}, nil
}

// Apply returns the snapshot with store changes folded in; s itself is unchanged, so an
// evaluation that holds it keeps reading what it started with. RuleRejected changes are
// ignored (the previous definition stays live). The rule set is recompiled only when a
// definition changed; a state change copies the small state map and reuses the compiled set.
// A failure (two rules of one id) returns s unchanged with the error.
func (s *Snapshot) Apply(changes ...Change) (*Snapshot, error) {
	set, states := s.Set, s.states
	var defs map[string]*Rule
	copied := false
	for _, c := range changes {
		switch c.Op {
		case RuleUpdated, RuleDeleted:
			if defs == nil {
				defs = make(map[string]*Rule, len(set.byID))
				for k, v := range set.byID {
					defs[k] = v
				}
			}
			if c.Op == RuleUpdated {
				defs[c.ID] = c.Rule
			} else {
				delete(defs, c.ID)
			}
		case StateChanged:
			if !copied {
				copied = true
				states = make(map[string]State, len(s.states)+1)
				for k, v := range s.states {
					states[k] = v
				}
			}
			if c.State.Mode == "" || (c.State.Mode == Enabled && c.State.ExpiresAt.IsZero()) {
				delete(states, c.ID)
			} else {
				states[c.ID] = c.State
			}
		}
	}
	if defs != nil {
		rules := make([]*Rule, 0, len(defs))
		for _, r := range defs {
			rules = append(rules, r)
		}
		sort.Slice(rules, func(i, j int) bool { return rules[i].ID < rules[j].ID })
		ns, err := NewRuleSet(rules)
		if err != nil {
			return s, err
		}
		set = ns
	}
	return &Snapshot{Set: set, states: states}, nil
}
