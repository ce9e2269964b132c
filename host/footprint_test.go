package host

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/decnet/ttp/dispatch"
	"github.com/decnet/ttp/internal/testkit"
	"github.com/decnet/ttp/rules"
	"github.com/decnet/ttp/wasm"
)

// TestFootprint measures, for the shipped plugins (plugins/*.wasm, built by make plugins):
// cold compile, warm start (module in the compilation cache: compile from cache, describe,
// two configured instances), and the process RSS with every plugin loaded with two instances
// each. It logs the figures for the issue note; the RSS of a real daemon is measured on
// `ttp serve` itself (this test binary also holds the cold compilations).
func TestFootprint(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("loads every shipped plugin (not under -short or -race)")
	}
	mods, _ := filepath.Glob("../plugins/*.wasm")
	if len(mods) == 0 {
		t.Skip("no plugins/*.wasm built (make plugins)")
	}
	all, err := rules.LoadDir("../rules/ttp")
	if err != nil {
		t.Fatal(err)
	}
	set, err := rules.NewRuleSet(all)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	dir := t.TempDir()
	cold, _ := NewCompiler(dir)
	for _, path := range mods {
		bin, _ := os.ReadFile(path)
		start := time.Now()
		m, err := cold.LoadWasm(ctx, path, bin, wasm.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%-22s %5.1f MB  cold compile+describe %v", filepath.Base(path), float64(len(bin))/1e6, time.Since(start).Round(time.Millisecond))
		m.Close(ctx)
	}
	cold.Close(ctx)
	runtime.GC()
	before := testkit.RSS(t)
	warm, _ := NewCompiler(dir)
	defer warm.Close(ctx)
	var pools []*wasm.Pool
	for _, path := range mods {
		bin, _ := os.ReadFile(path)
		start := time.Now()
		m, err := warm.LoadWasm(ctx, path, bin, wasm.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		loaded := time.Since(start)
		p, rej, err := wasm.NewPool(ctx, m, rules.PluginConfigs(owned(set, m.Manifest())), wasm.PoolConfig{Size: 2})
		if err != nil || len(rej) > 0 {
			t.Fatalf("%s: %v %v", path, err, rej)
		}
		pools = append(pools, p)
		t.Logf("%-22s warm start (cache, describe, 2 instances configured) %v, of which compile from the cache and describe %v",
			filepath.Base(path), time.Since(start).Round(time.Millisecond), loaded.Round(time.Millisecond))
	}
	runtime.GC()
	after := testkit.RSS(t)
	t.Logf("RSS with %d plugins x 2 instances: %d MiB (process before loading: %d MiB)", len(pools), after>>20, before>>20)
	for _, p := range pools {
		p.Retire(true)
	}
}

// TestSwapLatency measures item 6's two figures on a shipped plugin: how long after the
// write of its file a module already in the compilation cache is live, and how long a module
// new to the cache takes against its own cold compile. The two versions differ by a custom
// section only, so the second is new to the cache (keyed by the module's bytes) but compiles
// the same code. It proves the swap path uses the cache: the cached module goes live before a
// cold compile of the same code would finish. The figures are logged for the issue note.
func TestSwapLatency(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("compiles a shipped plugin twice (not under -short or -race)")
	}
	orig, err := os.ReadFile("../plugins/behavioral.wasm")
	if err != nil {
		t.Skip("no plugins/behavioral.wasm built (make plugins)")
	}
	all, err := rules.LoadDir("../rules/ttp")
	if err != nil {
		t.Fatal(err)
	}
	var changes []rules.Change
	for _, r := range all {
		changes = append(changes, rules.Change{Op: rules.RuleUpdated, ID: r.ID, Rule: r})
	}
	ctx := context.Background()
	compiler, err := NewCompiler(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer compiler.Close(ctx)
	cached, fresh := withNonce(orig, "cached"), withNonce(orig, "fresh")

	// The cold compile of this code, which also puts the first version in the cache.
	start := time.Now()
	m, err := compiler.LoadWasm(ctx, "behavioral.wasm", cached, wasm.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	cold := time.Since(start)
	m.Close(ctx)

	d := dispatch.New(dispatch.Config{})
	h := newHost(t, Config{Dispatcher: d, Compiler: compiler, PoolSize: 2, Logger: slog.New(slog.DiscardHandler)})
	defer h.Close()
	if err := h.ApplyRules(ctx, changes...); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go h.WatchPlugins(wctx, dir)
	time.Sleep(50 * time.Millisecond) // the watch is set

	live := func(bin []byte) time.Duration {
		sum := sha256.Sum256(bin)
		want := hex.EncodeToString(sum[:])
		start := time.Now()
		if err := os.WriteFile(filepath.Join(dir, "behavioral.wasm"), bin, 0o644); err != nil {
			t.Fatal(err)
		}
		for time.Since(start) < time.Minute {
			if h.loadedSum("behavioral.wasm") == want {
				return time.Since(start)
			}
			time.Sleep(time.Millisecond)
		}
		t.Fatalf("module %.12s never went live", want)
		return 0
	}
	warm := live(cached)
	fresh1 := live(fresh)
	if p := h.Plugins(); len(p) != 1 || p[0].Rules == 0 {
		t.Fatalf("after the swaps: %+v", p)
	}
	t.Logf("behavioral (%.1f MB): cold compile+describe %v; cached module live %v after the write; new module live %v after the write (%v over its cold compile); debounce %v",
		float64(len(orig))/1e6, cold.Round(time.Millisecond), warm.Round(time.Millisecond), fresh1.Round(time.Millisecond),
		(fresh1 - cold).Round(time.Millisecond), pluginDebounce)
	if warm >= cold {
		t.Errorf("the cached module took %v to go live, no faster than a cold compile (%v): the swap path missed the cache", warm, cold)
	}
}

// withNonce returns wasm with a custom section appended: the same code, other bytes.
func withNonce(bin []byte, nonce string) []byte {
	const name = "ttp-test-nonce"
	body := append([]byte{byte(len(name))}, name...)
	body = append(body, nonce...)
	out := append(append([]byte{}, bin...), 0, byte(len(body))) // section id 0 (custom), size < 128
	return append(out, body...)
}
