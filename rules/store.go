package rules

import (
	"context"
	"errors"
	"sync"
	"time"
)

// ChangeOp says what a Change does. (A "kind" in ttp is an event's source kind or a rule's
// match kind; a change has an operation.)
type ChangeOp int

// The operations a Store publishes.
const (
	RuleUpdated  ChangeOp = iota + 1 // a new or edited definition (Rule set)
	RuleDeleted                      // the definition is gone
	RuleRejected                     // a new version failed to load (Err set); the previous one stays live
	StateChanged                     // an operator or an expiry changed the rule's State
)

func (k ChangeOp) String() string {
	switch k {
	case RuleUpdated:
		return "updated"
	case RuleDeleted:
		return "deleted"
	case RuleRejected:
		return "rejected"
	case StateChanged:
		return "state"
	}
	return "unknown"
}

// Change is one rule's definition or state changing.
type Change struct {
	Op    ChangeOp
	ID    string
	Rule  *Rule // RuleUpdated
	State State // StateChanged
	Err   error // RuleRejected: what is wrong, with file and line
	File  string
	Rev   uint64 // the store's revision of the change, when it has one (KV); 0 otherwise
}

// Store is where the daemon reads rule definitions and state from: a directory (fsstore) or a
// NATS KV bucket shared by a swarm. Both publish per-rule changes and pass the same
// conformance suite (rules/storetest).
type Store interface {
	// Subscribe returns the current rules and states and every change after them: nothing
	// made between the call and the first Next is missed.
	Subscribe(ctx context.Context) (*Subscription, error)
	// SetState records an operator's state for a rule and publishes it. A state with an
	// ExpiresAt is reverted to enabled by the store when it passes.
	SetState(ctx context.Context, id string, st State) error
	// Close stops watching; open subscriptions end with ErrClosed.
	Close() error
}

// ErrClosed ends a Subscription whose store or subscription was closed.
var ErrClosed = errors.New("rules: store closed")

// Clock is the time source of a Feed's expiry reverts, injectable in tests.
type Clock interface {
	Now() time.Time
	AfterFunc(d time.Duration, f func()) (stop func() bool)
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }
func (realClock) AfterFunc(d time.Duration, f func()) func() bool {
	return time.AfterFunc(d, f).Stop
}

// RealClock is the wall clock.
var RealClock Clock = realClock{}

// Feed is the part every Store shares: the current rules and states, and an unbounded queue
// per subscriber, updated under one lock so that a subscriber's snapshot and its queue never
// miss or repeat a change. A slow subscriber never blocks the store.
type Feed struct {
	// OnExpire, when set, replaces the local revert at a state's expires_at: a shared store
	// (KV) deletes the state in the bucket once and every worker sees the change.
	OnExpire func(id string, st State)

	mu     sync.Mutex
	clock  Clock
	rules  map[string]*Rule
	states map[string]State
	timers map[string]func() bool
	subs   map[*Subscription]bool
	closed bool
}

// NewFeed returns an empty Feed whose expiry reverts use clock (RealClock when nil).
func NewFeed(clock Clock) *Feed {
	if clock == nil {
		clock = RealClock
	}
	return &Feed{clock: clock, rules: map[string]*Rule{}, states: map[string]State{}, timers: map[string]func() bool{}, subs: map[*Subscription]bool{}}
}

// Rule returns the live definition of id.
func (f *Feed) Rule(id string) (*Rule, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.rules[id]
	return r, ok
}

// Publish applies a change to the current view (rejections leave it as it was) and queues it
// for every subscriber.
func (f *Feed) Publish(c Change) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.publishLocked(c)
}

func (f *Feed) publishLocked(c Change) {
	if f.closed {
		return
	}
	switch c.Op {
	case RuleUpdated:
		f.rules[c.ID] = c.Rule
	case RuleDeleted:
		delete(f.rules, c.ID)
	case StateChanged:
		f.setStateLocked(c.ID, c.State)
	}
	for s := range f.subs {
		s.push(c)
	}
}

// SetState records st for id and publishes it; with an ExpiresAt it schedules the revert.
// rev is the store's revision of the change (0 when it has none).
func (f *Feed) SetState(id string, st State, rev ...uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := Change{Op: StateChanged, ID: id, State: st}
	if len(rev) > 0 {
		c.Rev = rev[0]
	}
	f.publishLocked(c)
}

func (f *Feed) setStateLocked(id string, st State) {
	if stop := f.timers[id]; stop != nil {
		stop()
		delete(f.timers, id)
	}
	if st.Mode == "" || (st.Mode == Enabled && st.ExpiresAt.IsZero()) {
		delete(f.states, id)
		return
	}
	f.states[id] = st
	if st.ExpiresAt.IsZero() {
		return
	}
	expires := st.ExpiresAt
	f.timers[id] = f.clock.AfterFunc(expires.Sub(f.clock.Now()), func() {
		if f.OnExpire != nil {
			f.OnExpire(id, st)
			return
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		if cur, ok := f.states[id]; ok && cur.ExpiresAt.Equal(expires) {
			delete(f.timers, id)
			f.publishLocked(Change{Op: StateChanged, ID: id, State: State{Mode: Enabled, Reason: "expired"}})
		}
	})
}

// Subscribe returns a subscription starting from the current view.
func (f *Feed) Subscribe() *Subscription {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := &Subscription{feed: f, ready: make(chan struct{}, 1), rules: make([]*Rule, 0, len(f.rules)), states: make(map[string]State, len(f.states))}
	for _, id := range SortedIDs(f.rules) {
		s.rules = append(s.rules, f.rules[id])
	}
	for k, v := range f.states {
		s.states[k] = v
	}
	if f.closed {
		s.closed = true
	} else {
		f.subs[s] = true
	}
	return s
}

// Close ends every subscription and stops pending expiry timers.
func (f *Feed) Close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return
	}
	f.closed = true
	for _, stop := range f.timers {
		stop()
	}
	for s := range f.subs {
		s.close()
	}
	f.subs = nil
}

// Subscription is one reader's view of a Store: the rules and states when it was made, then
// every change in order.
type Subscription struct {
	feed   *Feed
	rules  []*Rule
	states map[string]State

	mu     sync.Mutex
	queue  []Change
	closed bool
	ready  chan struct{}
}

// Initial returns the rules (ordered by id) and states at subscription time.
func (s *Subscription) Initial() ([]*Rule, map[string]State) { return s.rules, s.states }

func (s *Subscription) push(c Change) {
	s.mu.Lock()
	s.queue = append(s.queue, c)
	s.mu.Unlock()
	select {
	case s.ready <- struct{}{}:
	default:
	}
}

func (s *Subscription) close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	select {
	case s.ready <- struct{}{}:
	default:
	}
}

// Next returns the next change, waiting for one; it returns ErrClosed once the store or the
// subscription is closed and its queue drained, or the context's error.
func (s *Subscription) Next(ctx context.Context) (Change, error) {
	for {
		s.mu.Lock()
		if len(s.queue) > 0 {
			c := s.queue[0]
			s.queue[0] = Change{}
			s.queue = s.queue[1:]
			s.mu.Unlock()
			return c, nil
		}
		closed := s.closed
		s.mu.Unlock()
		if closed {
			return Change{}, ErrClosed
		}
		select {
		case <-s.ready:
		case <-ctx.Done():
			return Change{}, ctx.Err()
		}
	}
}

// Close detaches the subscription from its store.
func (s *Subscription) Close() {
	s.feed.mu.Lock()
	delete(s.feed.subs, s)
	s.feed.mu.Unlock()
	s.close()
}
