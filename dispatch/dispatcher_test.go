package dispatch

import (
	"context"
	"io"
	"log/slog"
	"reflect"
	"testing"

	"github.com/decnet/ttp/abi"
)

// TestDispatcherTagAllocs pins what Tag allocates for an event that fires nothing, the
// common case (most commands a honeypot records are benign). Such an event costs one
// allocation: the heap copy the handlers' *abi.Event needs, as Handler.Tag is an interface
// call. It used to cost two, the second being abi.Expand's one-element slice, which Tag now
// skips for every kind but session; a session costs the slice and no copy, as its events are
// evaluated in place.
func TestDispatcherTagAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates on its own")
	}
	// Both kinds are claimed by a pattern rule, as they are in the shipped set: an unclaimed
	// kind costs noteKind's once-per-kind bookkeeping on top, which is not what this measures.
	const sessionRule = `id: R0002
name: long session
applies_to: [session]
match: {kind: pattern, field: payload.client_version, pattern: 'libssh'}
emits:
  - {technique_id: T1078, tactic: initial-access, confidence: 0.3}
precision: M
evidence_fields: [client_version]
`
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	x := snapshot(t, nil, mustRule(t, "R0001", ruleR0001), mustRule(t, "R0002", sessionRule))
	d := New(Config{Snapshot: NewSnapshot(x), Logger: log})
	tests := []struct {
		name string
		ev   abi.Event
		max  float64
	}{
		{"command firing nothing", abi.Event{SourceKind: abi.KindCommand, SourceID: "c2", Payload: map[string]any{"command_text": "ls -la /tmp"}}, 1},
		{"command with no payload", abi.Event{SourceKind: abi.KindCommand, SourceID: "c3"}, 1},
		{"session without commands", abi.Event{SourceKind: abi.KindSession, SourceID: "s2", Payload: map[string]any{"duration_ms": 10}}, 1},
	}
	ctx := context.Background()
	out := make([]abi.Tag, 0, 8)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			n := testing.AllocsPerRun(200, func() { out, err = d.Tag(ctx, tt.ev, out[:0]) })
			if err != nil || len(out) != 0 {
				t.Fatalf("tags %v, err %v: the case should fire nothing", out, err)
			}
			if n > tt.max {
				t.Errorf("Tag allocates %v times, want at most %v", n, tt.max)
			}
		})
	}
}

// TestExpandAloneOutsideSessions guards the premise of Tag's shortcut: abi.Expand returns
// every event but a session alone and unchanged, so Tag may evaluate it without calling
// Expand. If abi ever fans out another kind, this fails before Tag silently skips it.
func TestExpandAloneOutsideSessions(t *testing.T) {
	kinds := append([]string{"quantum"}, abi.KnownKinds...) // and a kind abi does not know
	for _, kind := range kinds {
		if kind == abi.KindSession {
			continue
		}
		ev := abi.Event{SourceKind: kind, SourceID: "x", Payload: map[string]any{"commands": []any{"ls", "id"}, "command_text": "ls"}}
		if got := abi.Expand(ev); len(got) != 1 || !reflect.DeepEqual(got[0], ev) {
			t.Errorf("kind %s: Expand returned %d events (%+v); Dispatcher.Tag evaluates it alone", kind, len(got), got)
		}
	}
}
