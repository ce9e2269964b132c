package wasm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/decnet/ttp/abi"
	"github.com/decnet/ttp/internal/testkit"
	"github.com/decnet/ttp/wasm/internal/budget"
	"github.com/decnet/ttp/wasm/internal/seal"
)

// spinSink keeps the spinners' loops from being optimised away.
var spinSink atomic.Int64

// starve occupies the process until the test ends: n goroutines, each locked to an OS thread
// of its own, spinning. With 8×GOMAXPROCS of them a call the Go scheduler preempts (at a
// termination check, where a guest's code calls into the host's Go) waits its turn behind
// them, about eight 10 ms time slices: longer than a 50 ms deadline, shorter than a second.
func starve(t *testing.T, n int) {
	t.Helper()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			x := int64(0)
			for {
				select {
				case <-stop:
					spinSink.Add(x)
					return
				default:
				}
				for i := range int64(100_000) {
					x += i
				}
			}
		}()
	}
	t.Cleanup(func() { close(stop); wg.Wait() })
}

// TestStarvedPool runs a plugin while the process is starved of CPU. A healthy plugin whose
// calls take about a millisecond of CPU loses no tag and is not quarantined: each call the
// starvation times out is retried on a fresh instance under a budget of its own running time,
// and counts as a stall. A looping plugin is still stopped on every event (its retry runs
// out of CPU budget) and quarantined after QuarantineAfter events.
func TestStarvedPool(t *testing.T) {
	tests := []struct {
		name     string
		module   string
		producer string
		events   int
		looping  bool
	}{
		{"healthy plugin keeps every tag", "tiny_busy", "tiny-busy@1.0.0", 200, false},
		{"looping plugin is stopped and quarantined", "loop", "hostile-loop@1.0.0", QuarantineAfter + 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logs := &testkit.SyncBuffer{}
			lim := Limits{Deadline: DefaultDeadline}
			health := NewHealth(time.Now)
			pool := loadPool(t, wat(tt.module), lim, 2, health, tinyRule(t, "R9001", 0.8, "marker"))
			pool.log = slog.New(slog.NewTextHandler(logs, nil))
			ctx := context.Background()

			var retries []budget.Result
			var retriesMu sync.Mutex
			observe := func(r budget.Result) {
				retriesMu.Lock()
				retries = append(retries, r)
				retriesMu.Unlock()
			}
			budget.Observed.Store(&observe)
			t.Cleanup(func() { budget.Observed.Store(nil) })

			starve(t, 8*runtime.GOMAXPROCS(0))
			// Each event ends within the deadline, the retry's ceiling and the making of an
			// instance; the bound asserted is loose (seconds), the figures are logged.
			bound := lim.Deadline + lim.RetryCeiling() + 10*time.Second
			var slowest time.Duration
			start := time.Now()
			for i := range tt.events {
				ev := abi.Event{SourceKind: "command", SourceID: fmt.Sprintf("starve-%d", i), Payload: map[string]any{"command_text": "uname -a"}}
				t0 := time.Now()
				got, err := pool.Tag(ctx, &ev, nil)
				took := time.Since(t0)
				slowest = max(slowest, took)
				if err != nil && !tt.looping {
					t.Fatalf("event %d: %v", i, err)
				}
				if took > bound {
					t.Errorf("event %d took %v, over deadline + retry ceiling (+10 s) %v", i, took, bound)
				}
				if tt.looping {
					if len(got) != 0 {
						t.Fatalf("event %d: a looping plugin tagged: %+v", i, got)
					}
					continue
				}
				if len(got) != 1 || got[0].RuleID != "R9001" || got[0].Evidence["marker"] != "v1" || pool.Producer() != tt.producer {
					t.Fatalf("event %d: tag lost: %+v (stalls so far %d, last failure %v)", i, got, health.Stalls.Load(), lastErr(health))
				}
			}
			q, _, last := health.Quarantined()
			t.Logf("%d events in %v (slowest %v) beside %d spinners: calls %d, stalls %d, timeouts %d, failures %d, quarantines %d, skipped %d",
				tt.events, time.Since(start).Round(time.Millisecond), slowest.Round(time.Millisecond), 8*runtime.GOMAXPROCS(0),
				health.Calls.Load(), health.Stalls.Load(), health.Timeouts.Load(), health.Failures.Load(), health.Quarantines.Load(), health.Skipped.Load())
			retriesMu.Lock()
			t.Logf("retries: %s", summarize(retries))
			retriesMu.Unlock()
			if tt.looping {
				if !q || health.Quarantines.Load() != 1 || health.Timeouts.Load() != QuarantineAfter || health.Skipped.Load() != 1 {
					t.Errorf("looping plugin: quarantined %v, quarantines %d, timeouts %d, skipped %d; want quarantined after %d timeouts, then skipped",
						q, health.Quarantines.Load(), health.Timeouts.Load(), health.Skipped.Load(), QuarantineAfter)
				}
				// Its retry ends on its CPU budget, or, when the starved process gives the loop
				// less than that in a second of wall time (measured: 19 ms of CPU in 1 s beside
				// 16 spinners on 2 cores), on the retry's ceiling: a timeout either way.
				if !errors.Is(last, ErrTimeout) || !strings.Contains(last.Error(), "retry") {
					t.Errorf("last failure %v, want its retry's timeout", last)
				}
				if health.Stalls.Load() != 0 {
					t.Errorf("a looping plugin's timeouts counted as %d stalls", health.Stalls.Load())
				}
				return
			}
			if q || health.Failures.Load() != 0 || health.Quarantines.Load() != 0 {
				t.Errorf("healthy plugin: quarantined %v, failures %d (last %v), quarantines %d", q, health.Failures.Load(), last, health.Quarantines.Load())
			}
			if n := health.Stalls.Load(); n > 0 && !strings.Contains(logs.String(), "plugin call stalled") {
				t.Errorf("%d stalls, none logged", n)
			}
		})
	}
}

// summarize gives the wall and CPU times of retries: median and slowest.
func summarize(rs []budget.Result) string {
	if len(rs) == 0 {
		return "none"
	}
	walls := make([]time.Duration, len(rs))
	cpus := make([]time.Duration, len(rs))
	for i, r := range rs {
		walls[i], cpus[i] = r.Wall, r.CPU
	}
	slices.Sort(walls)
	slices.Sort(cpus)
	return fmt.Sprintf("%d, wall median %v max %v, CPU median %v max %v", len(rs),
		walls[len(walls)/2].Round(time.Microsecond), walls[len(walls)-1].Round(time.Microsecond),
		cpus[len(cpus)/2].Round(time.Microsecond), cpus[len(cpus)-1].Round(time.Microsecond))
}

func lastErr(h *Health) error {
	_, _, err := h.Quarantined()
	return err
}

// TestStallLogRateLimited: stalls are logged one a second at most, with the count held back.
func TestStallLogRateLimited(t *testing.T) {
	clock := testkit.NewClock(time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC))
	h := NewHealth(clock.Now)
	steps := []struct {
		advance  time.Duration
		wantLog  bool
		wantHeld int
	}{
		{0, true, 0},
		{100 * time.Millisecond, false, 0},
		{100 * time.Millisecond, false, 0},
		{time.Second, true, 2},
		{time.Second, true, 0},
	}
	for i, s := range steps {
		clock.Advance(s.advance)
		if logNow, held := h.Stall(); logNow != s.wantLog || held != s.wantHeld {
			t.Errorf("stall %d: log %v held %d, want %v %d", i, logNow, held, s.wantLog, s.wantHeld)
		}
	}
	if h.Stalls.Load() != int64(len(steps)) || h.Failures.Load() != 0 {
		t.Errorf("stalls %d failures %d", h.Stalls.Load(), h.Failures.Load())
	}
}

// scriptedModule makes instances whose Tag and RetryTag answer as scripted, to test the
// pool's retry without a busy host.
type scriptedModule struct {
	seal.Type
	man             *abi.Manifest
	first, retryErr error
}

func (m *scriptedModule) Manifest() *abi.Manifest { return m.man }
func (m *scriptedModule) SHA256() string          { return "" }
func (m *scriptedModule) Close(context.Context) error {
	return nil
}
func (m *scriptedModule) NewInstance(context.Context) (Instance, error) {
	return &scriptedInstance{m: m}, nil
}

type scriptedInstance struct {
	seal.Type
	m *scriptedModule
}

func (i *scriptedInstance) Configure(context.Context, *abi.ConfigureRequest) (*abi.ConfigureReply, error) {
	return &abi.ConfigureReply{}, nil
}
func (i *scriptedInstance) Close(context.Context) error { return nil }
func (i *scriptedInstance) Tag(_ context.Context, _ int, _ *abi.Event, _ abi.ReplyLimits, out []abi.ReplyDraft) ([]abi.ReplyDraft, error) {
	if i.m.first != nil {
		return out, i.m.first
	}
	return append(out, abi.ReplyDraft{Scale: 1}), nil
}
func (i *scriptedInstance) RetryTag(_ context.Context, _ int, _ *abi.Event, _ abi.ReplyLimits, out []abi.ReplyDraft) ([]abi.ReplyDraft, error) {
	if i.m.retryErr != nil {
		return out, i.m.retryErr
	}
	return append(out, abi.ReplyDraft{Scale: 1}), nil
}

// TestPoolRetry: only a timeout is retried; a retry that passes is a stall with its tag kept,
// one that fails is the failure (a timeout counted as one only when the retry timed out too).
func TestPoolRetry(t *testing.T) {
	man, err := abi.DecodeManifest([]byte(`{"abi":1,"name":"scripted","version":"1.0.0","rule_kinds":["lifter:tiny_"],"kinds":[{"source_kind":"command","fields":["payload.command_text"]}],"evidence_keys":["marker"]}`))
	if err != nil {
		t.Fatal(err)
	}
	timeout := fmt.Errorf("%w (50ms)", ErrTimeout)
	tests := []struct {
		name            string
		first, retryErr error
		wantTag         bool
		wantErr         error
		stalls, timeout int64
	}{
		{"timeout resolved by its retry", timeout, nil, true, nil, 1, 0},
		{"timeout and its retry times out", timeout, timeout, false, ErrTimeout, 0, 1},
		{"timeout and its retry traps", timeout, ErrTrap, false, ErrTrap, 0, 0},
		{"trap is not retried", ErrTrap, nil, false, ErrTrap, 0, 0},
		{"success", nil, nil, true, nil, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := &scriptedModule{man: man, first: tt.first, retryErr: tt.retryErr}
			logs := &testkit.SyncBuffer{}
			health := NewHealth(time.Now)
			pool, _, err := NewPool(context.Background(), m, []abi.RuleConfig{tinyRule(t, "R9001", 0.8, "marker")},
				PoolConfig{Size: 2, Health: health, Log: slog.New(slog.NewTextHandler(logs, nil))})
			if err != nil {
				t.Fatal(err)
			}
			defer pool.Retire(true)
			tags, err := pool.Tag(context.Background(), &unameEvent, nil)
			if (tt.wantErr == nil) != (err == nil) || tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("err %v, want %v", err, tt.wantErr)
			}
			if got := len(tags) == 1 && tags[0].RuleID == "R9001"; got != tt.wantTag {
				t.Errorf("tags %+v, want a tag: %v", tags, tt.wantTag)
			}
			if health.Stalls.Load() != tt.stalls || health.Timeouts.Load() != tt.timeout {
				t.Errorf("stalls %d timeouts %d, want %d %d", health.Stalls.Load(), health.Timeouts.Load(), tt.stalls, tt.timeout)
			}
			if wantFail := int64(0); tt.wantErr != nil {
				wantFail = 1
				if health.Failures.Load() != wantFail {
					t.Errorf("failures %d, want %d", health.Failures.Load(), wantFail)
				}
			} else if health.Failures.Load() != 0 {
				t.Errorf("failures %d, want none", health.Failures.Load())
			}
			if tt.stalls > 0 && !strings.Contains(logs.String(), "plugin call stalled") {
				t.Errorf("stall not logged: %s", logs.String())
			}
			if tt.first != nil && strings.Contains(tt.name, "retry") && tt.wantErr != nil && !strings.Contains(err.Error(), "retry of a call that timed out") {
				t.Errorf("error %q does not name the retry", err)
			}
		})
	}
}
