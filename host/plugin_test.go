package host

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/decnet/ttp/abi"
	"github.com/decnet/ttp/dispatch"
	"github.com/decnet/ttp/internal/testkit"
	"github.com/decnet/ttp/rules"
	"github.com/decnet/ttp/wasm"
)

// One on-disk compilation cache per test binary: modules compile once.
var testCompiler *wasm.Compiler

func TestMain(m *testing.M) {
	testkit.RunInCacheDir(m, func(dir string) (func(), error) {
		var err error
		testCompiler, err = NewCompiler(dir)
		return func() { testCompiler.Close(context.Background()) }, err
	})
}

var (
	wat        = testkit.Wat
	tinyRule   = testkit.TinyRule
	mustRule   = testkit.MustRule
	byProducer = testkit.ByProducer
	unameEvent = testkit.UnameEvent
)

const ruleR0001 = testkit.RuleR0001

// tinyx is the Extism-variant twin of tiny_v1 (wasm/testdata/extism).
var tinyx = filepath.Join("..", "wasm", "testdata", "extism", "tinyx.wasm")

// newHost is New, failing the test on an error; the host closes with the test.
func newHost(t testing.TB, cfg Config) *Host {
	t.Helper()
	h, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// mustLock reads a lock file, failing the test on an error.
func mustLock(t testing.TB, path string) map[string]string {
	t.Helper()
	lock, err := ReadLockFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return lock
}

type harness struct {
	d    *dispatch.Dispatcher
	h    *Host
	logs *testkit.SyncBuffer
	now  *testkit.Clock
}

func newHarness(t *testing.T, rs ...*rules.Rule) *harness {
	t.Helper()
	logs := &testkit.SyncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	clock := testkit.NewClock(time.Date(2026, 11, 27, 5, 0, 0, 0, time.UTC))
	d := dispatch.New(dispatch.Config{Logger: log, Clock: clock.Now})
	h := newHost(t, Config{Dispatcher: d, Compiler: testCompiler, Logger: log, Clock: clock.Now, PoolSize: 2})
	t.Cleanup(h.Close)
	changes := []rules.Change{}
	for _, r := range rs {
		changes = append(changes, rules.Change{Op: rules.RuleUpdated, ID: r.ID, Rule: r})
	}
	if err := h.ApplyRules(context.Background(), changes...); err != nil {
		t.Fatal(err)
	}
	return &harness{d: d, h: h, logs: logs, now: clock}
}

func (hs *harness) tag(t *testing.T, ev abi.Event) []abi.Tag {
	t.Helper()
	tags, err := hs.d.Tag(context.Background(), ev, nil)
	if err != nil {
		t.Fatalf("Tag: %v", err)
	}
	return tags
}

func TestTinyPlugin(t *testing.T) {
	hs := newHarness(t, tinyRule(t, "R9001", 0.8, "marker"), mustRule(t, "R0001", ruleR0001))
	if err := hs.h.LoadPlugin(context.Background(), wat("tiny_v1")); err != nil {
		t.Fatal(err)
	}
	got := byProducer(hs.tag(t, unameEvent))
	if len(got["engine"]) != 1 || len(got["tiny@1.0.0"]) != 1 {
		t.Fatalf("tags by producer: %v", got)
	}
	tiny := got["tiny@1.0.0"][0]
	if tiny.RuleID != "R9001" || tiny.Confidence != 0.8 || tiny.Evidence["marker"] != "v1" || tiny.SubTechniqueID != "T1059.004" {
		t.Errorf("tiny tag %+v", tiny)
	}
	st := hs.h.Plugins()
	if len(st) != 1 || st[0].Rules != 1 || st[0].Producer != "tiny@1.0.0" {
		t.Errorf("plugins %+v", st)
	}
}

// TestHostile proves, for each hostile module, that the host survives, that the engine's and
// another plugin's tags for the same event are intact, and that the failure is logged and
// counted; modules that must not load are refused with a typed error.
func TestHostile(t *testing.T) {
	tests := []struct {
		module  string
		loadErr error // refused at load
		callErr error // each call fails with
	}{
		{"loop", nil, wasm.ErrTimeout},
		{"membomb", nil, nil}, // stopped by the memory cap: it traps or runs into its deadline
		{"trap_first", nil, wasm.ErrTrap},
		{"garbage", nil, wasm.ErrBadReply},
		{"oversized", nil, wasm.ErrOutputCap},
		{"bad_rule_index", nil, wasm.ErrBadReply},
		{"bad_evidence_key", nil, wasm.ErrBadReply},
		{"scale_above_one", nil, wasm.ErrBadReply},
		{"error_reply", nil, abi.ErrGuest},
		{"forbidden_import", wasm.ErrForbiddenImport, nil},
		{"wrong_marker", wasm.ErrABIVersion, nil},
	}
	for _, tt := range tests {
		t.Run(tt.module, func(t *testing.T) {
			hs := newHarness(t, tinyRule(t, "R9001", 0.8, "marker"), mustRule(t, "R0001", ruleR0001))
			ctx := context.Background()
			if err := hs.h.LoadPlugin(ctx, wat("tiny_v1")); err != nil {
				t.Fatal(err)
			}
			err := hs.h.LoadPlugin(ctx, wat(tt.module))
			if tt.loadErr != nil {
				if !errors.Is(err, tt.loadErr) {
					t.Fatalf("load error %v, want %v", err, tt.loadErr)
				}
				if !strings.Contains(hs.logs.String(), "rejected") {
					t.Error("refusal not logged")
				}
				if got := byProducer(hs.tag(t, unameEvent)); len(got["engine"]) != 1 || len(got["tiny@1.0.0"]) != 1 {
					t.Errorf("tags after a refused module: %v", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			var hostile PluginStatus
			for _, p := range hs.h.Plugins() {
				if strings.HasPrefix(p.File, tt.module) {
					hostile = p
				}
			}
			for i := 0; i < 3; i++ {
				got := byProducer(hs.tag(t, unameEvent))
				if len(got["engine"]) != 1 || len(got["tiny@1.0.0"]) != 1 {
					t.Fatalf("call %d: other handlers' tags lost: %v", i, got)
				}
				for p := range got {
					if p != "engine" && p != "tiny@1.0.0" {
						t.Fatalf("hostile plugin produced tags: %v", got[p])
					}
				}
			}
			if f := hostile.Health.Failures.Load(); f != 3 {
				t.Errorf("failures counted %d, want 3", f)
			}
			_, _, last := hostile.Health.Quarantined()
			if tt.callErr == nil && !errors.Is(last, wasm.ErrTrap) && !errors.Is(last, wasm.ErrTimeout) {
				t.Errorf("failure %v, want a trap or a timeout", last)
			} else if tt.callErr != nil && !errors.Is(last, tt.callErr) {
				t.Errorf("failure %v, want %v", last, tt.callErr)
			}
			if !strings.Contains(hs.logs.String(), "handler failed") {
				t.Error("failure not logged")
			}
		})
	}
}

func TestQuarantine(t *testing.T) {
	hs := newHarness(t, tinyRule(t, "R9001", 0.8, "marker"))
	if err := hs.h.LoadPlugin(context.Background(), wat("trap_first")); err != nil {
		t.Fatal(err)
	}
	health := hs.h.Plugins()[0].Health
	for i := 0; i < wasm.QuarantineAfter; i++ {
		hs.tag(t, unameEvent)
	}
	if q, until, _ := health.Quarantined(); !q || !until.Equal(hs.now.Now().Add(time.Second)) {
		t.Fatalf("after %d failures: quarantined=%v until %v", wasm.QuarantineAfter, q, until)
	}
	hs.tag(t, unameEvent)
	if health.Skipped.Load() != 1 || health.Failures.Load() != wasm.QuarantineAfter {
		t.Errorf("quarantined plugin was called: skipped=%d failures=%d", health.Skipped.Load(), health.Failures.Load())
	}
	hs.now.Advance(time.Second)
	for i := 0; i < wasm.QuarantineAfter; i++ {
		hs.tag(t, unameEvent)
	}
	if q, until, _ := health.Quarantined(); !q || !until.Equal(hs.now.Now().Add(2*time.Second)) {
		t.Fatalf("second quarantine: %v until %v, want back-off doubled to 2s", q, until)
	}
	if health.Quarantines.Load() != 2 {
		t.Errorf("quarantines %d", health.Quarantines.Load())
	}
	// The back-off is capped at 5 minutes.
	for i := 0; i < 20; i++ {
		hs.now.Advance(10 * time.Minute)
		for j := 0; j < wasm.QuarantineAfter; j++ {
			hs.tag(t, unameEvent)
		}
	}
	if _, until, _ := health.Quarantined(); until.Sub(hs.now.Now()) != 5*time.Minute {
		t.Errorf("back-off %v, want the 5 min cap", until.Sub(hs.now.Now()))
	}
}

// TestCancellationNotSwallowed: shutting down during a call returns the context's error and
// is not a plugin failure.
func TestCancellationNotSwallowed(t *testing.T) {
	hs := newHarness(t, tinyRule(t, "R9001", 0.8, "marker"))
	if err := hs.h.LoadPlugin(context.Background(), wat("loop")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(10 * time.Millisecond); cancel() }()
	_, err := hs.d.Tag(ctx, unameEvent, nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
	if f := hs.h.Plugins()[0].Health.Failures.Load(); f != 0 {
		t.Errorf("cancellation counted as %d failures", f)
	}
}

// TestDefinitionChangeReconfigures: a definition change builds new instances configured with
// the new definition (seen in the confidence the plugin's draft resolves to); a state change
// reaches the plugin-owned rule at once.
func TestDefinitionAndStateChange(t *testing.T) {
	hs := newHarness(t, tinyRule(t, "R9001", 0.8, "marker"))
	ctx := context.Background()
	if err := hs.h.LoadPlugin(ctx, wat("tiny_v1")); err != nil {
		t.Fatal(err)
	}
	old := hs.h.Plugins()[0].Health
	edited := tinyRule(t, "R9001", 0.6, "marker")
	if err := hs.h.ApplyRules(ctx, rules.Change{Op: rules.RuleUpdated, ID: "R9001", Rule: edited}); err != nil {
		t.Fatal(err)
	}
	tags := hs.tag(t, unameEvent)
	if len(tags) != 1 || tags[0].Confidence != 0.6 || tags[0].RuleVersion != edited.Version {
		t.Fatalf("after the definition change: %+v", tags)
	}
	if hs.h.Plugins()[0].Health != old {
		t.Error("a definition change replaced the plugin's health record")
	}
	// Narrowing evidence_fields strips the key, never fails the plugin.
	narrow := tinyRule(t, "R9001", 0.6, "other")
	hs.h.ApplyRules(ctx, rules.Change{Op: rules.RuleUpdated, ID: "R9001", Rule: narrow})
	tags = hs.tag(t, unameEvent)
	if len(tags) != 1 || tags[0].Evidence != nil || hs.d.Stats.EvidenceStripped.Load() != 1 {
		t.Fatalf("evidence not stripped: %+v (stripped %d)", tags, hs.d.Stats.EvidenceStripped.Load())
	}
	for _, st := range []rules.State{{Mode: rules.Disabled}, {Mode: rules.Clipped, ConfidenceMax: 0.2}, {Mode: rules.Disabled, ExpiresAt: hs.now.Now().Add(time.Minute)}} {
		hs.h.ApplyRules(ctx, rules.Change{Op: rules.StateChanged, ID: "R9001", State: st})
		tags = hs.tag(t, unameEvent)
		switch st.Mode {
		case rules.Disabled:
			if len(tags) != 0 {
				t.Errorf("disabled plugin rule tagged: %+v", tags)
			}
		case rules.Clipped:
			if len(tags) != 1 || tags[0].Confidence != 0.2 {
				t.Errorf("clipped plugin rule: %+v", tags)
			}
		}
	}
	hs.now.Advance(2 * time.Minute) // the disable expires: evaluated as enabled at once
	if tags = hs.tag(t, unameEvent); len(tags) != 1 {
		t.Errorf("expired disable still applies: %+v", tags)
	}
}

// TestPluginRejectsDefinition: a rule its plugin rejects does not go live (tiny_reject
// rejects the first rule of every request), and the rejection names the rule file and the
// plugin's message.
func TestPluginRejectsDefinition(t *testing.T) {
	hs := newHarness(t, mustRule(t, "R0001", ruleR0001))
	ctx := context.Background()
	if err := hs.h.LoadPlugin(ctx, wat("tiny_reject")); err != nil {
		t.Fatal(err)
	}
	bad := tinyRule(t, "R9999", 0.5, "marker")
	hs.h.ApplyRules(ctx, rules.Change{Op: rules.RuleUpdated, ID: "R9999", Rule: bad})
	if _, ok := hs.d.Load().Rules.Set.Rule("R9999"); ok {
		t.Error("a rule the plugin rejected went live")
	}
	if !strings.Contains(hs.logs.String(), "threshold missing") || !strings.Contains(hs.logs.String(), "R9999.yaml") {
		t.Errorf("rejection not reported with file and message:\n%s", hs.logs.String())
	}
	if tags := hs.tag(t, unameEvent); len(tags) != 1 || tags[0].RuleID != "R0001" {
		t.Errorf("tags %+v", tags)
	}
	// A plugin loaded over rules it rejects leaves them out of the index too.
	hs2 := newHarness(t, tinyRule(t, "R9001", 0.5, "marker"))
	hs2.h.LoadPlugin(ctx, wat("tiny_reject"))
	if _, ok := hs2.d.Load().Rules.Set.Rule("R9001"); ok {
		t.Error("rule rejected at plugin load is live")
	}
}

func TestZeroRulesPluginWarns(t *testing.T) {
	hs := newHarness(t, tinyRule(t, "R9001", 0.8, "marker"))
	if err := hs.h.LoadPlugin(context.Background(), wat("tiny_norules")); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(hs.logs.String(), "ZERO RULES") || !strings.Contains(hs.logs.String(), "level=WARN") {
		t.Errorf("no loud warning:\n%s", hs.logs.String())
	}
	if st := hs.h.Plugins(); st[0].Rules != 0 {
		t.Errorf("status %+v", st)
	}
}

func TestLockFile(t *testing.T) {
	dir := t.TempDir()
	lock := filepath.Join(dir, "plugins.lock")
	data, _ := os.ReadFile(wat("tiny_v1"))
	os.WriteFile(filepath.Join(dir, "tiny_v1.wasm"), data, 0o644)
	os.WriteFile(filepath.Join(dir, "tiny_v2.wasm"), data, 0o644)
	os.WriteFile(lock, []byte(fmt.Sprintf("# approved\n%s  tiny_v1.wasm\n", sha256hex(data))), 0o644)
	logs := &testkit.SyncBuffer{}
	d := dispatch.New(dispatch.Config{})
	h := newHost(t, Config{Dispatcher: d, Compiler: testCompiler, Logger: slog.New(slog.NewTextHandler(logs, nil)), Lock: mustLock(t, lock), PoolSize: 1})
	defer h.Close()
	if err := h.LoadPlugin(context.Background(), filepath.Join(dir, "tiny_v1.wasm")); err != nil {
		t.Fatalf("listed module refused: %v", err)
	}
	if err := h.LoadPlugin(context.Background(), filepath.Join(dir, "tiny_v2.wasm")); !errors.Is(err, wasm.ErrNotLocked) {
		t.Fatalf("unlisted module: %v", err)
	}
}

// TestHotSwapWatch replaces a module by one that differs in version and behaviour while
// events flow: every event is tagged exactly once, by v1 or v2, and after the swap by v2.
func TestHotSwapWatch(t *testing.T) {
	dir := t.TempDir()
	v1, _ := os.ReadFile(wat("tiny_v1"))
	v2, _ := os.ReadFile(wat("tiny_v2"))
	os.WriteFile(filepath.Join(dir, "tiny.wasm"), v1, 0o644)
	hs := newHarness(t, tinyRule(t, "R9001", 0.8, "marker"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go hs.h.WatchPlugins(ctx, dir)
	waitProducer := func(want string) time.Duration {
		start := time.Now()
		for time.Since(start) < 20*time.Second {
			tags := hs.tag(t, unameEvent)
			if len(tags) == 1 && tags[0].Producer == want {
				return time.Since(start)
			}
			time.Sleep(2 * time.Millisecond)
		}
		t.Fatalf("%s never went live", want)
		return 0
	}
	waitProducer("tiny@1.0.0")
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var mu sync.Mutex
	counts := map[string]int{}
	for g := 0; g < 2; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				tags, err := hs.d.Tag(context.Background(), unameEvent, nil)
				mu.Lock()
				if err != nil || len(tags) != 1 {
					counts[fmt.Sprintf("bad:%d:%v", len(tags), err)]++
				} else {
					counts[tags[0].Producer+"/"+fmt.Sprint(tags[0].Evidence["marker"])]++
				}
				mu.Unlock()
			}
		}()
	}
	time.Sleep(20 * time.Millisecond)
	start := time.Now()
	os.WriteFile(filepath.Join(dir, "tiny.wasm"), v2, 0o644)
	live := waitProducer("tiny@2.0.0")
	for start := time.Now(); time.Since(start) < 5*time.Second; time.Sleep(time.Millisecond) {
		mu.Lock()
		seen := counts["tiny@2.0.0/v2"]
		mu.Unlock()
		if seen > 0 {
			break
		}
	}
	close(stop)
	wg.Wait()
	t.Logf("cached module live %v after the write (debounce %v); events by producer: %v", time.Since(start), pluginDebounce, counts)
	_ = live
	for k := range counts {
		if k != "tiny@1.0.0/v1" && k != "tiny@2.0.0/v2" {
			t.Errorf("event tagged wrongly: %s x%d", k, counts[k])
		}
	}
	if counts["tiny@2.0.0/v2"] == 0 || counts["tiny@1.0.0/v1"] == 0 {
		t.Errorf("swap not observed under load: %v", counts)
	}
	// Deleting the file unloads the plugin.
	os.Remove(filepath.Join(dir, "tiny.wasm"))
	for start := time.Now(); time.Since(start) < 10*time.Second; time.Sleep(5 * time.Millisecond) {
		if len(hs.h.Plugins()) == 0 {
			return
		}
	}
	t.Fatal("deleted module still loaded")
}

func sha256hex(b []byte) string { return fmt.Sprintf("%x", sha256.Sum256(b)) }

// TestOversizedEventNotAFailure: an event whose projection is over abi.MaxRecord is not sent
// to the plugin, and however many come in a row they neither count as failures nor quarantine
// it (the daemon may accept larger messages than a record); the engine still tags them.
func TestOversizedEventNotAFailure(t *testing.T) {
	hs := newHarness(t, tinyRule(t, "R9001", 0.8, "marker"), mustRule(t, "R0001", ruleR0001))
	if err := hs.h.LoadPlugin(context.Background(), wat("tiny_v1")); err != nil {
		t.Fatal(err)
	}
	big := abi.Event{SourceKind: "command", SourceID: "big", Payload: map[string]any{"command_text": "uname -a " + strings.Repeat("x", abi.MaxRecord)}}
	for i := 0; i < 2*wasm.QuarantineAfter; i++ {
		if got := byProducer(hs.tag(t, big)); len(got["engine"]) != 1 || len(got["tiny@1.0.0"]) != 0 {
			t.Fatalf("oversized event: tags by producer %v", got)
		}
	}
	health := hs.h.Plugins()[0].Health
	if q, _, _ := health.Quarantined(); q || health.Failures.Load() != 0 || health.Oversized.Load() != 2*wasm.QuarantineAfter {
		t.Fatalf("quarantined=%v failures=%d oversized=%d", q, health.Failures.Load(), health.Oversized.Load())
	}
	if got := byProducer(hs.tag(t, unameEvent)); len(got["tiny@1.0.0"]) != 1 {
		t.Fatalf("after oversized events the plugin does not tag: %v", got)
	}
}

// TestPayloadTypeCounted: a documented field of the wrong JSON type (command_text: 12345)
// tags nothing, but it is counted and logged with the field's name, once per kind and
// window however many arrive, and the event is still evaluated.
func TestPayloadTypeCounted(t *testing.T) {
	hs := newHarness(t, mustRule(t, "R0001", ruleR0001))
	bad := abi.Event{SourceKind: "command", SourceID: "c2", Payload: map[string]any{"command_text": float64(12345)}}
	for range 3 {
		if tags := hs.tag(t, bad); len(tags) != 0 {
			t.Fatalf("tags from a number: %v", tags)
		}
	}
	if n := hs.d.Stats.PayloadTypes.Load(); n != 3 {
		t.Errorf("counted %d, want 3", n)
	}
	if logs := hs.logs.String(); strings.Count(logs, "payload.command_text") != 1 {
		t.Errorf("want one rate-limited line naming payload.command_text:\n%s", logs)
	}
	if tags := hs.tag(t, unameEvent); len(tags) == 0 || hs.d.Stats.PayloadTypes.Load() != 3 {
		t.Errorf("a good event: %d tags, counted %d", len(tags), hs.d.Stats.PayloadTypes.Load())
	}
}

// TestLogState: a state without expiry says "never" (not year 1), and a state for a rule
// that does not exist is flagged.
func TestLogState(t *testing.T) {
	hs := newHarness(t, mustRule(t, "R0001", ruleR0001))
	hs.h.logState("R0001", rules.State{Mode: rules.Disabled})
	hs.h.logState("R9999", rules.State{Mode: rules.Clipped, ConfidenceMax: 0.4})
	logs := hs.logs.String()
	for _, want := range []string{"rule=R0001 state=disabled expires=never", "does not exist", "rule=R9999", "clip=0.4"} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %q:\n%s", want, logs)
		}
	}
	if strings.Contains(logs, "0001-01-01") {
		t.Errorf("zero time printed:\n%s", logs)
	}
}

// TestCloseQuiet: closing the host unloads its plugins without warning that rules lost them.
func TestCloseQuiet(t *testing.T) {
	hs := newHarness(t, tinyRule(t, "R9001", 0.8, "marker"))
	if err := hs.h.LoadPlugin(context.Background(), wat("tiny_v1")); err != nil {
		t.Fatal(err)
	}
	hs.h.Settle()
	hs.h.Close()
	if strings.Contains(hs.logs.String(), "rules without a plugin") {
		t.Errorf("close warned of rules without a plugin:\n%s", hs.logs.String())
	}
}

// TestExtismPluginInHost is TestTinyPlugin for the Extism twin: loaded by the Host from its
// file, its tag sits beside the engine's.
func TestExtismPluginInHost(t *testing.T) {
	hs := newHarness(t, tinyRule(t, "R9001", 0.8, "marker"), mustRule(t, "R0001", ruleR0001))
	if err := hs.h.LoadPlugin(context.Background(), tinyx); err != nil {
		t.Fatal(err)
	}
	got := byProducer(hs.tag(t, unameEvent))
	if len(got["engine"]) != 1 || len(got["tinyx@1.0.0"]) != 1 {
		t.Fatalf("tags by producer: %v", got)
	}
	tag := got["tinyx@1.0.0"][0]
	if tag.RuleID != "R9001" || tag.Confidence != 0.8 || tag.Evidence["marker"] != "v1" || tag.SubTechniqueID != "T1059.004" {
		t.Errorf("tinyx tag %+v", tag)
	}
	if st := hs.h.Plugins(); len(st) != 1 || st[0].Rules != 1 || st[0].Producer != "tinyx@1.0.0" {
		t.Errorf("plugins %+v", st)
	}
}

// TestLazyPlugin: a lazy host loads a plugin (compiled, its rules checked) without keeping an
// instance; the first event of its kinds makes one, and /readyz's status says so.
func TestLazyPlugin(t *testing.T) {
	logs := &testkit.SyncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	d := dispatch.New(dispatch.Config{Logger: log})
	h := newHost(t, Config{Dispatcher: d, Compiler: testCompiler, Logger: log, PoolSize: 2, Lazy: true, IdleTimeout: -1})
	t.Cleanup(h.Close)
	if err := h.ApplyRules(context.Background(), rules.Change{Op: rules.RuleUpdated, ID: "R9001", Rule: tinyRule(t, "R9001", 0.8, "marker")}); err != nil {
		t.Fatal(err)
	}
	if err := h.LoadPlugin(context.Background(), wat("tiny_v1")); err != nil {
		t.Fatal(err)
	}
	if st := h.Plugins(); len(st) != 1 || st[0].Instances != 0 || st[0].MaxInstances != 2 || st[0].Rules != 1 {
		t.Fatalf("after load: %+v, want one plugin with no instance yet", st)
	}
	tags, err := d.Tag(context.Background(), abi.Event{SourceKind: "auth", SourceID: "a1", Payload: map[string]any{"username": "root"}}, nil)
	if err != nil || len(byProducer(tags)["tiny@1.0.0"]) != 1 {
		t.Fatalf("first event of its kinds: tags %v, err %v", tags, err)
	}
	if st := h.Plugins(); st[0].Instances != 1 {
		t.Errorf("after one event: %d instances, want 1", st[0].Instances)
	}
}
