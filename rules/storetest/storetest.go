// Package storetest is the conformance suite every rules.Store passes: the filesystem store
// here, the NATS KV store of the daemon, and any store written later. A store's test provides
// an Open function; Run checks loading, per-rule change fan-out, deletion, the state round
// trip, expiry revert and that a definition that fails to load keeps the previous one live.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/decnet/ttp/rules"
)

// Harness is one store under test with the means to change its definitions the way its users
// do (files in a directory, keys in a bucket).
type Harness struct {
	Store rules.Store
	// Write creates or replaces the definition of rule id with content.
	Write func(t *testing.T, id string, content []byte)
	// Delete removes the definition of rule id.
	Delete func(t *testing.T, id string)
}

// Open makes a fresh store holding initial (rule id -> file content) before it starts. The
// test closes the store.
type Open func(t *testing.T, initial map[string][]byte) Harness

// Rule returns a valid command rule whose pattern contains marker, so that each edit is a new
// definition.
func Rule(id, marker string) []byte {
	return []byte(fmt.Sprintf(`id: %s
name: conformance rule %s
applies_to: [command]
match: {kind: pattern, pattern: '(?i)%s'}
emits:
  - {technique_id: T1059, sub_technique_id: T1059.004, tactic: execution, confidence: 0.5}
precision: M
evidence_fields: [command_text]
`, id, id, marker))
}

// wait bounds every wait of the suite; a conforming store answers in milliseconds.
const wait = 10 * time.Second

// quiet is how long the suite listens for changes that must not come.
const quiet = 300 * time.Millisecond

// Run runs the conformance suite against the store open makes.
func Run(t *testing.T, open Open) {
	t.Run("Load", func(t *testing.T) { testLoad(t, open) })
	t.Run("ChangeFanOut", func(t *testing.T) { testFanOut(t, open) })
	t.Run("Delete", func(t *testing.T) { testDelete(t, open) })
	t.Run("ChangeBeforeFirstRead", func(t *testing.T) { testBeforeFirstRead(t, open) })
	t.Run("StateRoundTrip", func(t *testing.T) { testState(t, open) })
	t.Run("ExpiryRevert", func(t *testing.T) { testExpiry(t, open) })
	t.Run("FailureKeepsPrevious", func(t *testing.T) { testFailure(t, open) })
}

func start(t *testing.T, open Open, initial map[string][]byte) Harness {
	t.Helper()
	h := open(t, initial)
	t.Cleanup(func() { h.Store.Close() })
	return h
}

func subscribe(t *testing.T, h Harness) *rules.Subscription {
	t.Helper()
	sub, err := h.Store.Subscribe(context.Background())
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	t.Cleanup(sub.Close)
	return sub
}

// next returns the next change that is not a state change of another test's making.
func next(t *testing.T, sub *rules.Subscription) rules.Change {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	c, err := sub.Next(ctx)
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	return c
}

func expectNone(t *testing.T, sub *rules.Subscription) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), quiet)
	defer cancel()
	if c, err := sub.Next(ctx); err == nil {
		t.Fatalf("unexpected change %s %s", c.Op, c.ID)
	} else if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next: %v", err)
	}
}

func versionOf(t *testing.T, content []byte, id string) string {
	t.Helper()
	r, err := rules.Parse(id+".yaml", content)
	if err != nil {
		t.Fatalf("fixture: %v", err)
	}
	return r.Version
}

func testLoad(t *testing.T, open Open) {
	initial := map[string][]byte{"R9001": Rule("R9001", "alpha"), "R9002": Rule("R9002", "beta"), "R9003": Rule("R9003", "gamma")}
	h := start(t, open, initial)
	got, _ := subscribe(t, h).Initial()
	if len(got) != len(initial) {
		t.Fatalf("loaded %d rules, want %d", len(got), len(initial))
	}
	for i, r := range got {
		if want := fmt.Sprintf("R900%d", i+1); r.ID != want {
			t.Errorf("rule %d is %s, want %s (ordered by id)", i, r.ID, want)
		}
		if want := versionOf(t, initial[r.ID], r.ID); r.Version != want {
			t.Errorf("%s version %s, want %s", r.ID, r.Version, want)
		}
	}
}

func testFanOut(t *testing.T, open Open) {
	h := start(t, open, map[string][]byte{"R9001": Rule("R9001", "alpha"), "R9002": Rule("R9002", "beta")})
	a, b := subscribe(t, h), subscribe(t, h)
	edited := Rule("R9001", "alpha2")
	h.Write(t, "R9001", edited)
	for _, sub := range []*rules.Subscription{a, b} {
		c := next(t, sub)
		if c.Op != rules.RuleUpdated || c.ID != "R9001" || c.Rule.Version != versionOf(t, edited, "R9001") {
			t.Fatalf("got %s %s, want one update of R9001 to the new version", c.Op, c.ID)
		}
		expectNone(t, sub)
	}
	// A new rule is one change too.
	h.Write(t, "R9004", Rule("R9004", "delta"))
	if c := next(t, a); c.Op != rules.RuleUpdated || c.ID != "R9004" {
		t.Fatalf("got %s %s, want update of R9004", c.Op, c.ID)
	}
}

func testDelete(t *testing.T, open Open) {
	h := start(t, open, map[string][]byte{"R9001": Rule("R9001", "alpha"), "R9002": Rule("R9002", "beta")})
	sub := subscribe(t, h)
	h.Delete(t, "R9002")
	if c := next(t, sub); c.Op != rules.RuleDeleted || c.ID != "R9002" {
		t.Fatalf("got %s %s, want deletion of R9002", c.Op, c.ID)
	}
	expectNone(t, sub)
	got, _ := subscribe(t, h).Initial()
	if len(got) != 1 || got[0].ID != "R9001" {
		t.Fatalf("after delete: %d rules", len(got))
	}
}

func testBeforeFirstRead(t *testing.T, open Open) {
	h := start(t, open, map[string][]byte{"R9001": Rule("R9001", "alpha")})
	sub := subscribe(t, h)
	h.Write(t, "R9001", Rule("R9001", "changed"))
	h.Delete(t, "R9001")
	// Both changes were made before the first read; neither may be lost. A store may fold a
	// write and delete that land within its debounce into the delete alone.
	c := next(t, sub)
	if c.Op == rules.RuleUpdated {
		c = next(t, sub)
	}
	if c.Op != rules.RuleDeleted || c.ID != "R9001" {
		t.Fatalf("got %s %s, want the deletion of R9001", c.Op, c.ID)
	}
}

func testState(t *testing.T, open Open) {
	h := start(t, open, map[string][]byte{"R9001": Rule("R9001", "alpha")})
	sub := subscribe(t, h)
	want := rules.State{Mode: rules.Clipped, ConfidenceMax: 0.4, Reason: "noisy"}
	if err := h.Store.SetState(context.Background(), "R9001", want); err != nil {
		t.Fatal(err)
	}
	c := next(t, sub)
	if c.Op != rules.StateChanged || c.ID != "R9001" || c.State.Mode != want.Mode || c.State.ConfidenceMax != want.ConfidenceMax || c.State.Reason != want.Reason {
		t.Fatalf("got %s %s %+v, want state %+v", c.Op, c.ID, c.State, want)
	}
	_, states := subscribe(t, h).Initial()
	if got := states["R9001"]; got.Mode != want.Mode || got.ConfidenceMax != want.ConfidenceMax {
		t.Fatalf("new subscriber sees %+v, want %+v", got, want)
	}
	if err := h.Store.SetState(context.Background(), "R9001", rules.State{Mode: "bogus"}); err == nil {
		t.Fatal("SetState accepted an invalid state")
	}
	if err := h.Store.SetState(context.Background(), "R9001", rules.State{Mode: rules.Enabled}); err != nil {
		t.Fatal(err)
	}
	if c := next(t, sub); c.Op != rules.StateChanged || c.State.Mode != rules.Enabled {
		t.Fatalf("got %s %+v, want enabled", c.Op, c.State)
	}
	if _, states := subscribe(t, h).Initial(); len(states) != 0 {
		t.Fatalf("enabled rule still has a state: %+v", states)
	}
}

func testExpiry(t *testing.T, open Open) {
	h := start(t, open, map[string][]byte{"R9001": Rule("R9001", "alpha")})
	sub := subscribe(t, h)
	st := rules.State{Mode: rules.Disabled, ExpiresAt: time.Now().Add(200 * time.Millisecond), Reason: "maintenance"}
	if err := h.Store.SetState(context.Background(), "R9001", st); err != nil {
		t.Fatal(err)
	}
	if c := next(t, sub); c.Op != rules.StateChanged || c.State.Mode != rules.Disabled {
		t.Fatalf("got %s %+v, want disabled", c.Op, c.State)
	}
	c := next(t, sub)
	if c.Op != rules.StateChanged || c.ID != "R9001" || c.State.Mode != rules.Enabled {
		t.Fatalf("got %s %s %+v, want the automatic revert to enabled", c.Op, c.ID, c.State)
	}
	if time.Now().Before(st.ExpiresAt) {
		t.Fatal("reverted before expires_at")
	}
	// Expiry is evaluated at use time too: an expired state reads as enabled.
	if got := st.Effective(st.ExpiresAt); got.Mode != rules.Enabled {
		t.Fatalf("Effective at expiry = %s, want enabled", got.Mode)
	}
}

func testFailure(t *testing.T, open Open) {
	good := Rule("R9001", "alpha")
	h := start(t, open, map[string][]byte{"R9001": good})
	sub := subscribe(t, h)
	h.Write(t, "R9001", []byte("id: R9001\nname: broken\napplies_to: [command]\nmatch: {kind: pattern, pattern: '(unclosed'}\nemits: []\nprecision: M\nevidence_fields: []\n"))
	c := next(t, sub)
	if c.Op != rules.RuleRejected || c.ID != "R9001" || c.Err == nil {
		t.Fatalf("got %s %s, want rejection of R9001", c.Op, c.ID)
	}
	var re *rules.Error
	if !errors.As(c.Err, &re) || re.Line == 0 || re.File == "" {
		t.Fatalf("rejection error %v does not name file and line", c.Err)
	}
	got, _ := subscribe(t, h).Initial()
	if len(got) != 1 || got[0].Version != versionOf(t, good, "R9001") {
		t.Fatalf("previous version not live after a bad edit")
	}
	// Fixing the file is one update again.
	h.Write(t, "R9001", Rule("R9001", "fixed"))
	if c := next(t, sub); c.Op != rules.RuleUpdated || c.ID != "R9001" {
		t.Fatalf("got %s %s, want update after the fix", c.Op, c.ID)
	}
}
