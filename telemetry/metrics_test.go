package telemetry

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/decnet/ttp/wasm"
)

func TestCollector(t *testing.T) {
	hs := newHarness(t, nil, tinyRule(t, "R9001", 0.8, "marker"))
	ctx := context.Background()
	hs.h.LoadPlugin(ctx, wat("trap_first"))
	hs.h.LoadPlugin(ctx, wat("forbidden_import"))
	hs.tag(t, unameEvent)
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(NewCollector(hs.d, hs.h)); err != nil {
		t.Fatal(err)
	}
	got, err := testutil.GatherAndCount(reg)
	if err != nil || got == 0 {
		t.Fatalf("gather: %d, %v", got, err)
	}
	for _, want := range []string{"ttp_plugin_failures_total", "ttp_rejections_total", "ttp_events_total"} {
		if n, err := testutil.GatherAndCount(reg, want); err != nil || n == 0 {
			t.Errorf("%s: %d, %v", want, n, err)
		}
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP ttp_plugin_failures_total Plugin calls that trapped, timed out, exceeded a cap or replied undecodably.
# TYPE ttp_plugin_failures_total counter
ttp_plugin_failures_total{plugin="hostile-trap-first@1.0.0"} 1
# HELP ttp_rejections_total Plugins and rule definitions rejected at load (the previous version stayed live).
# TYPE ttp_rejections_total counter
ttp_rejections_total{kind="plugin"} 1
ttp_rejections_total{kind="rule"} 0
`), "ttp_plugin_failures_total", "ttp_rejections_total"); err != nil {
		t.Error(err)
	}
}

// TestDuplicateNameRefused: a copy of one plugin under another file name (cp canary.wasm
// credential.wasm) is refused like any invalid module, the first stays the only one of its
// name, the metrics still gather, and the rules a missing plugin leaves behind are reported.
func TestDuplicateNameRefused(t *testing.T) {
	hs := newHarness(t, nil, tinyRule(t, "R9001", 0.8, "marker"))
	hs.h.Settle()
	if got := hs.h.RulesWithoutPlugin(); len(got["lifter:tiny_marker"]) != 1 {
		t.Fatalf("before load: rules without plugin %v, want R9001", got)
	}
	if !strings.Contains(hs.logs.String(), "rules without a plugin") {
		t.Errorf("no log line for the rule without a plugin:\n%s", hs.logs.String())
	}
	ctx := context.Background()
	if err := hs.h.LoadPlugin(ctx, wat("tiny_v1")); err != nil {
		t.Fatal(err)
	}
	if got := hs.h.RulesWithoutPlugin(); len(got) != 0 {
		t.Fatalf("after load: rules without plugin %v, want none", got)
	}
	bin, err := os.ReadFile(wat("tiny_v1"))
	if err != nil {
		t.Fatal(err)
	}
	copyPath := filepath.Join(t.TempDir(), "zz-copy.wasm")
	if err := os.WriteFile(copyPath, bin, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := hs.h.LoadPlugin(ctx, copyPath); !errors.Is(err, wasm.ErrDuplicateName) {
		t.Fatalf("copy loaded: err %v, want wasm.ErrDuplicateName", err)
	}
	if ps := hs.h.Plugins(); len(ps) != 1 || ps[0].File != "tiny_v1.wasm" {
		t.Fatalf("plugins %+v, want tiny_v1.wasm alone", ps)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewCollector(hs.d, hs.h))
	if _, err := reg.Gather(); err != nil {
		t.Fatalf("gather: %v", err)
	}
	hs.h.UnloadPlugin(wat("tiny_v1"))
	if got := hs.h.RulesWithoutPlugin(); len(got["lifter:tiny_marker"]) != 1 {
		t.Fatalf("after unload: rules without plugin %v, want R9001", got)
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP ttp_rules_without_plugin Plugin-owned rules that no loaded plugin claims: they tag nothing.
# TYPE ttp_rules_without_plugin gauge
ttp_rules_without_plugin{kind="lifter:tiny_marker"} 1
`), "ttp_rules_without_plugin"); err != nil {
		t.Error(err)
	}
}

// TestStallsMetric: ttp_plugin_stalls_total is exported per plugin.
func TestStallsMetric(t *testing.T) {
	hs := newHarness(t, nil, tinyRule(t, "R9001", 0.8, "marker"))
	if err := hs.h.LoadPlugin(context.Background(), wat("tiny_v1")); err != nil {
		t.Fatal(err)
	}
	hs.h.Plugins()[0].Health.Stall()
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(NewCollector(hs.d, hs.h)); err != nil {
		t.Fatal(err)
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP ttp_plugin_stalls_total Plugin calls that exceeded their deadline but whose retry on a fresh instance, under a budget of its own CPU time, succeeded: the host was slow, not the plugin. Their tags are kept; not failures.
# TYPE ttp_plugin_stalls_total counter
ttp_plugin_stalls_total{plugin="tiny@1.0.0"} 1
`), "ttp_plugin_stalls_total"); err != nil {
		t.Error(err)
	}
}

// TestInstancesMetric: ttp_plugin_instances says what each plugin holds (one at load for a
// host that is not lazy).
func TestInstancesMetric(t *testing.T) {
	hs := newHarness(t, nil, tinyRule(t, "R9001", 0.8, "marker"))
	if err := hs.h.LoadPlugin(context.Background(), wat("tiny_v1")); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewCollector(hs.d, hs.h))
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP ttp_plugin_instances Instances the plugin holds now (0: loaded, none made yet: no event of its kinds since the last idle timeout).
# TYPE ttp_plugin_instances gauge
ttp_plugin_instances{plugin="tiny@1.0.0"} 1
`), "ttp_plugin_instances"); err != nil {
		t.Error(err)
	}
}
