package telemetry

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/decnet/ttp/abi"
	"github.com/decnet/ttp/dispatch"
	"github.com/decnet/ttp/host"
	"github.com/decnet/ttp/internal/testkit"
	"github.com/decnet/ttp/rules"
	"github.com/decnet/ttp/wasm"
)

// One on-disk compilation cache per test binary: modules compile once.
var testCompiler *wasm.Compiler

func TestMain(m *testing.M) {
	testkit.RunInCacheDir(m, func(dir string) (func(), error) {
		var err error
		testCompiler, err = host.NewCompiler(dir)
		return func() { testCompiler.Close(context.Background()) }, err
	})
}

var (
	wat        = testkit.Wat
	tinyRule   = testkit.TinyRule
	unameEvent = testkit.UnameEvent
	byProducer = testkit.ByProducer
	mustRule   = testkit.MustRule
)

const ruleR0001 = testkit.RuleR0001

// harness is a Dispatcher and the Host that writes it, on a hand-moved clock, with the
// tracer given (nil: tracing off) and rs applied.
type harness struct {
	d    *dispatch.Dispatcher
	h    *host.Host
	logs *testkit.SyncBuffer
}

func newHarness(t *testing.T, tracer dispatch.Tracer, rs ...*rules.Rule) *harness {
	t.Helper()
	logs := &testkit.SyncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	clock := testkit.NewClock(time.Date(2026, 11, 27, 5, 0, 0, 0, time.UTC))
	d := dispatch.New(dispatch.Config{Logger: log, Clock: clock.Now, Tracer: tracer})
	h, err := host.New(host.Config{Dispatcher: d, Compiler: testCompiler, Logger: log, Clock: clock.Now, PoolSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	var changes []rules.Change
	for _, r := range rs {
		changes = append(changes, rules.Change{Op: rules.RuleUpdated, ID: r.ID, Rule: r})
	}
	if err := h.ApplyRules(context.Background(), changes...); err != nil {
		t.Fatal(err)
	}
	return &harness{d: d, h: h, logs: logs}
}

func (hs *harness) tag(t *testing.T, ev abi.Event) []abi.Tag {
	t.Helper()
	tags, err := hs.d.Tag(context.Background(), ev, nil)
	if err != nil {
		t.Fatalf("Tag: %v", err)
	}
	return tags
}
