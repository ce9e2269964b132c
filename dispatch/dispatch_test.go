package dispatch

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/decnet/ttp/abi"
	"github.com/decnet/ttp/rules"
)

const ruleR0001 = `id: R0001
name: uname
applies_to: [command]
match: {kind: pattern, pattern: '\buname\b'}
emits:
  - {technique_id: T1082, tactic: discovery, confidence: 0.8}
precision: H
evidence_fields: [command_text]
`

const ruleR0061 = `id: R0061
name: spraying
applies_to: [identity]
match: {kind: lifter:identity_spray}
emits:
  - {technique_id: T1110, sub_technique_id: T1110.003, tactic: credential-access, confidence: 0.9}
precision: H
evidence_fields: [distinct_usernames]
`

func mustRule(t *testing.T, id, src string) *rules.Rule {
	t.Helper()
	r, err := rules.Parse(id+".yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func snapshot(t *testing.T, states map[string]rules.State, rs ...*rules.Rule) *rules.Snapshot {
	t.Helper()
	x, err := rules.NewSnapshot(rs, states)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

var now = time.Date(2026, 11, 27, 5, 0, 0, 0, time.UTC)

func TestFinish(t *testing.T) {
	r1, r61 := mustRule(t, "R0001", ruleR0001), mustRule(t, "R0061", ruleR0061)
	cmd := &abi.Event{SourceKind: "command", SourceID: "c1", AttackerUUID: "att", SessionID: "s", DeckyID: "d", ObservedAt: now}
	draft := abi.TagDraft{RuleID: "R0001", TechniqueID: "T1082", Tactic: "discovery", Confidence: 0.8, Evidence: map[string]any{"command_text": "uname -a", "secret": "x"}}
	tests := []struct {
		name     string
		states   map[string]rules.State
		ev       *abi.Event
		draft    abi.TagDraft
		wantTags int
		wantConf float64
		stats    FinishStats
	}{
		{"enabled", nil, cmd, draft, 1, 0.8, FinishStats{EvidenceStripped: 1}},
		{"disabled", map[string]rules.State{"R0001": {Mode: rules.Disabled}}, cmd, draft, 0, 0, FinishStats{Disabled: 1}},
		{"clipped", map[string]rules.State{"R0001": {Mode: rules.Clipped, ConfidenceMax: 0.4}}, cmd, draft, 1, 0.4, FinishStats{EvidenceStripped: 1}},
		{"clip above confidence", map[string]rules.State{"R0001": {Mode: rules.Clipped, ConfidenceMax: 0.95}}, cmd, draft, 1, 0.8, FinishStats{EvidenceStripped: 1}},
		{"expired disable", map[string]rules.State{"R0001": {Mode: rules.Disabled, ExpiresAt: now.Add(-time.Second)}}, cmd, draft, 1, 0.8, FinishStats{EvidenceStripped: 1}},
		{"unexpired disable", map[string]rules.State{"R0001": {Mode: rules.Disabled, ExpiresAt: now.Add(time.Second)}}, cmd, draft, 0, 0, FinishStats{Disabled: 1}},
		{"unknown rule", nil, cmd, abi.TagDraft{RuleID: "R0999"}, 0, 0, FinishStats{UnknownRule: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			snap := snapshot(t, tt.states, r1, r61)
			var stats FinishStats
			tags := Finish(snap, tt.ev, "engine", []abi.TagDraft{tt.draft}, now, nil, &stats)
			if len(tags) != tt.wantTags || stats != tt.stats {
				t.Fatalf("%d tags, stats %+v; want %d, %+v", len(tags), stats, tt.wantTags, tt.stats)
			}
			if len(tags) == 0 {
				return
			}
			tag := tags[0]
			if tag.Confidence != tt.wantConf || tag.RuleVersion != r1.Version || tag.Producer != "engine" || tag.SourceID != "c1" || tag.SessionID != "s" || tag.DeckyID != "d" {
				t.Errorf("tag %+v", tag)
			}
			if tag.AttackerUUID == nil || *tag.AttackerUUID != "att" {
				t.Errorf("attacker_uuid %v", tag.AttackerUUID)
			}
			if _, ok := tag.Evidence["secret"]; ok || tag.Evidence["command_text"] != "uname -a" {
				t.Errorf("evidence %v", tag.Evidence)
			}
			if want := abi.TagUUID(now, "R0001", r1.Version, "command", "c1", "T1082", "", "discovery"); tag.TagUUID != want {
				t.Errorf("tag_uuid %s, want %s", tag.TagUUID, want)
			}
			if at, _ := abi.TagUUIDTime(tag.TagUUID); !tag.ObservedAt.Equal(at) || !tag.ObservedAt.Equal(now.Truncate(time.Millisecond)) {
				t.Errorf("observed_at %v, want %v (the tag_uuid's)", tag.ObservedAt, at)
			}
		})
	}
	// The draft's evidence map is not modified by stripping.
	if _, ok := draft.Evidence["secret"]; !ok {
		t.Error("Finish modified the draft's evidence")
	}
	// Identity tags carry a null attacker_uuid.
	id := &abi.Event{SourceKind: "identity", SourceID: "i1", AttackerUUID: "att", IdentityUUID: "ident"}
	var stats FinishStats
	tags := Finish(snapshot(t, nil, r1, r61), id, "identity@1.0.0", []abi.TagDraft{{RuleID: "R0061", TechniqueID: "T1110", SubTechniqueID: "T1110.003", Tactic: "credential-access", Confidence: 0.9}}, now, nil, &stats)
	if len(tags) != 1 || tags[0].AttackerUUID != nil || tags[0].IdentityUUID != "ident" {
		t.Fatalf("identity tag %+v", tags)
	}
	// A draft repeated (same rule, technique, tactic: same tag_uuid) is one tag at the higher
	// confidence, counted; another tactic is another tag.
	stats = FinishStats{}
	ev := &abi.Event{SourceKind: "command", SourceID: "c9"}
	twice := []abi.TagDraft{
		{RuleID: "R0001", TechniqueID: "T1082", Tactic: "discovery", Confidence: 0.4},
		{RuleID: "R0001", TechniqueID: "T1082", Tactic: "discovery", Confidence: 0.7},
		{RuleID: "R0001", TechniqueID: "T1082", Tactic: "discovery", Confidence: 0.5},
	}
	tags = Finish(snapshot(t, nil, r1, r61), ev, "engine", twice, now, []abi.Tag{{TagUUID: "earlier"}}, &stats)
	if len(tags) != 2 || tags[1].Confidence != 0.7 || stats.Duplicate != 2 {
		t.Fatalf("repeated drafts gave %d tags (%+v), %d counted duplicate; want the earlier tag and one at 0.7, 2 counted", len(tags), tags, stats.Duplicate)
	}
}

// failing is a handler that always fails, to prove a failure costs only its own tags.
type failing struct{ err error }

func (failing) Producer() string    { return "broken@0.1.0" }
func (failing) Handles(string) bool { return true }
func (f failing) Tag(context.Context, *abi.Event, []abi.TagDraft) ([]abi.TagDraft, error) {
	return nil, f.err
}

func TestDispatcher(t *testing.T) {
	var logBuf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logBuf, nil))
	x := snapshot(t, nil, mustRule(t, "R0001", ruleR0001))
	d := New(Config{Snapshot: NewSnapshot(x, failing{errors.New("trap")}), Logger: log, Clock: func() time.Time { return now }})
	sess := abi.Event{SourceKind: "session", SourceID: "S1", Payload: map[string]any{"commands": []any{"ls", "uname -a", map[string]any{"id": "c-3", "text": "uname"}}}}
	tags, err := d.Tag(context.Background(), sess, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(tags) != 2 || tags[0].SourceID != "S1#1" || tags[1].SourceID != "c-3" {
		t.Fatalf("tags %+v", tags)
	}
	if d.Stats.HandlerErrors.Load() != 4 || d.Stats.Evaluated.Load() != 4 || d.Stats.Tags.Load() != 2 {
		t.Errorf("stats events=%d evaluated=%d errors=%d tags=%d", d.Stats.Events.Load(), d.Stats.Evaluated.Load(), d.Stats.HandlerErrors.Load(), d.Stats.Tags.Load())
	}
	if n := strings.Count(logBuf.String(), "handler failed"); n != 1 {
		t.Errorf("4 failures within a second logged %d times, want 1 (rate-limited)", n)
	}
	// Unknown kinds: accepted, counted, INFO once; known kinds nobody claims: WARNING once.
	logBuf.Reset()
	d = New(Config{Snapshot: NewSnapshot(x), Logger: log})
	for i := 0; i < 3; i++ {
		if _, err := d.Tag(context.Background(), abi.Event{SourceKind: "quantum", SourceID: "q"}, nil); err != nil {
			t.Fatal(err)
		}
		d.Tag(context.Background(), abi.Event{SourceKind: "email", SourceID: "e"}, nil)
	}
	out := logBuf.String()
	if strings.Count(out, "source_kind=quantum") != 1 || !strings.Contains(out, "level=INFO") {
		t.Errorf("unknown kind not logged once at INFO:\n%s", out)
	}
	if strings.Count(out, "source_kind=email") != 1 || !strings.Contains(out, "level=WARN") {
		t.Errorf("unclaimed kind not logged once at WARN:\n%s", out)
	}
	if d.Stats.UnknownKinds.Load() != 3 {
		t.Errorf("unknown kinds counted %d", d.Stats.UnknownKinds.Load())
	}
	// Cancellation is never swallowed.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := d.Tag(ctx, abi.Event{SourceKind: "command", SourceID: "x", Payload: map[string]any{"command_text": "uname"}}, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: %v", err)
	}
}

// repeating is a handler that answers one draft twice, as a careless plugin might.
type repeating struct{}

func (repeating) Producer() string    { return "echo@0.1.0" }
func (repeating) Handles(string) bool { return true }
func (repeating) Tag(_ context.Context, _ *abi.Event, out []abi.TagDraft) ([]abi.TagDraft, error) {
	d := abi.TagDraft{RuleID: "R0001", TechniqueID: "T1082", Tactic: "discovery", Confidence: 0.5}
	return append(out, d, d), nil
}

// TestDispatcherCountsDuplicates checks that a repeated draft is one tag and reaches the
// Dispatcher's stats (and so ttp_duplicate_drafts_total).
func TestDispatcherCountsDuplicates(t *testing.T) {
	x := snapshot(t, nil, mustRule(t, "R0001", ruleR0001))
	d := New(Config{Snapshot: NewSnapshot(x, repeating{}), Clock: func() time.Time { return now }})
	tags, err := d.Tag(context.Background(), abi.Event{SourceKind: "email", SourceID: "e1"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(tags) != 1 || d.Stats.Duplicates.Load() != 1 {
		t.Fatalf("%d tags, %d duplicates counted; want 1 and 1", len(tags), d.Stats.Duplicates.Load())
	}
}

// TestDispatcherSwapRace evaluates on many goroutines while rules and states are swapped:
// readers never lock and always see a whole snapshot (run with -race).
func TestDispatcherSwapRace(t *testing.T) {
	r := mustRule(t, "R0001", ruleR0001)
	x := snapshot(t, nil, r)
	d := New(Config{Snapshot: NewSnapshot(x), Logger: slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil))})
	ctx := context.Background()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var tags []abi.Tag
			for {
				select {
				case <-stop:
					return
				default:
				}
				tags, _ = d.Tag(ctx, abi.Event{SourceKind: "command", SourceID: "x", Payload: map[string]any{"command_text": "uname -a"}}, tags[:0])
				for _, tg := range tags {
					if tg.Confidence != 0.8 && tg.Confidence != 0.3 {
						t.Errorf("confidence %v from a torn snapshot", tg.Confidence)
					}
				}
			}
		}()
	}
	for i := 0; i < 200; i++ {
		st := rules.State{Mode: rules.Clipped, ConfidenceMax: 0.3}
		if i%2 == 0 {
			st = rules.State{Mode: rules.Enabled}
		}
		next, err := x.Apply(rules.Change{Op: rules.StateChanged, ID: "R0001", State: st}, rules.Change{Op: rules.RuleUpdated, ID: "R0001", Rule: r})
		if err != nil {
			t.Fatal(err)
		}
		x = next
		d.Swap(NewSnapshot(x))
	}
	close(stop)
	wg.Wait()
}
