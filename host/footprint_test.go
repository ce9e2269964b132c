package host

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/decnet/ttp/rules"
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
		wasm, _ := os.ReadFile(path)
		start := time.Now()
		m, err := cold.LoadWasm(ctx, path, wasm, Limits{})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%-22s %5.1f MB  cold compile+describe %v", filepath.Base(path), float64(len(wasm))/1e6, time.Since(start).Round(time.Millisecond))
		m.Close(ctx)
	}
	cold.Close(ctx)
	runtime.GC()
	before := rss(t)
	warm, _ := NewCompiler(dir)
	defer warm.Close(ctx)
	var pools []*Pool
	for _, path := range mods {
		wasm, _ := os.ReadFile(path)
		start := time.Now()
		m, err := warm.LoadWasm(ctx, path, wasm, Limits{})
		if err != nil {
			t.Fatal(err)
		}
		loaded := time.Since(start)
		p, rej, err := NewPool(ctx, m, owned(set, m.Manifest()), PoolConfig{Size: 2})
		if err != nil || len(rej) > 0 {
			t.Fatalf("%s: %v %v", path, err, rej)
		}
		pools = append(pools, p)
		t.Logf("%-22s warm start (cache, describe, 2 instances configured) %v, of which compile from the cache and describe %v",
			filepath.Base(path), time.Since(start).Round(time.Millisecond), loaded.Round(time.Millisecond))
	}
	runtime.GC()
	after := rss(t)
	t.Logf("RSS with %d plugins x 2 instances: %d MiB (process before loading: %d MiB)", len(pools), after>>20, before>>20)
	for _, p := range pools {
		p.Retire(true)
	}
}

func rss(t *testing.T) int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip("no /proc/self/status")
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			var kb int64
			for _, f := range strings.Fields(line)[1:2] {
				for _, c := range f {
					kb = kb*10 + int64(c-'0')
				}
			}
			return kb << 10
		}
	}
	return 0
}
