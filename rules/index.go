package rules

import (
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
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

// Index holds the current Snapshot behind one atomic pointer. Readers call Load once per
// event and never lock; writers (the store follower, a state change) build a new snapshot and
// swap it in, serialised by a mutex that readers never touch.
type Index struct {
	cur atomic.Pointer[Snapshot]
	mu  sync.Mutex
}

var emptySet, _ = NewRuleSet(nil)

// NewIndex returns an Index holding an empty snapshot.
func NewIndex() *Index {
	x := &Index{}
	x.cur.Store(&Snapshot{Set: emptySet, states: map[string]State{}})
	return x
}

// Load returns the current snapshot.
func (x *Index) Load() *Snapshot { return x.cur.Load() }

// Replace swaps in a whole new set of rules and states.
func (x *Index) Replace(rules []*Rule, states map[string]State) error {
	set, err := NewRuleSet(rules)
	if err != nil {
		return err
	}
	st := make(map[string]State, len(states))
	for k, v := range states {
		st[k] = v
	}
	x.mu.Lock()
	x.cur.Store(&Snapshot{Set: set, states: st})
	x.mu.Unlock()
	return nil
}

// Apply folds store changes into a new snapshot and swaps it in. Rejected changes leave the
// previous definition live. The rule set is rebuilt only when a definition changed.
func (x *Index) Apply(changes ...Change) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	old := x.cur.Load()
	set := old.Set
	states := old.states
	var defs map[string]*Rule
	copied := false
	for _, c := range changes {
		switch c.Kind {
		case RuleUpdated, RuleDeleted:
			if defs == nil {
				defs = make(map[string]*Rule, len(set.byID))
				for k, v := range set.byID {
					defs[k] = v
				}
			}
			if c.Kind == RuleUpdated {
				defs[c.ID] = c.Rule
			} else {
				delete(defs, c.ID)
			}
		case StateChanged:
			if !copied {
				copied = true
				states = make(map[string]State, len(old.states)+1)
				for k, v := range old.states {
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
			return err
		}
		set = ns
	}
	x.cur.Store(&Snapshot{Set: set, states: states})
	return nil
}
