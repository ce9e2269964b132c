package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"

	"github.com/decnet/ttp/abi"
)

// needPlugins skips (fails under CI=true) when the plugins are not built.
func needPlugins(t *testing.T) {
	t.Helper()
	if w, _ := filepath.Glob("../../plugins/*.wasm"); len(w) == 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("no plugins/*.wasm: run make plugins (make test does)")
		}
		t.Skip("no plugins/*.wasm built (make plugins)")
	}
}

// TestLazyPlugins checks that `ttp tag` loads a plugin only when an event of its kind comes:
// a first run, knowing no module, loads them all and keeps their kinds; a second loads none
// for command events, each when its kind arrives, and tags exactly as the eager run did.
func TestLazyPlugins(t *testing.T) {
	needPlugins(t)
	t.Setenv("TTP_CACHE", cacheWithoutKinds(t))
	ctx := context.Background()

	cold, _, err := loadOffline(ctx, rulesDir, "../../plugins", true, nil, discardLogger(), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	loadedCold := len(cold.h.Plugins())
	cold.Close()
	if loadedCold == 0 {
		t.Fatal("first run loaded no plugin")
	}
	kept, _ := filepath.Glob(filepath.Join(os.Getenv("TTP_CACHE"), "kinds", "*.json"))
	if len(kept) != loadedCold {
		t.Fatalf("kinds kept for %d modules, %d loaded", len(kept), loadedCold)
	}

	warm, _, err := loadOffline(ctx, rulesDir, "../../plugins", true, nil, discardLogger(), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer warm.Close()
	if n := len(warm.h.Plugins()); n != 0 {
		t.Fatalf("second run loaded %d plugins before any event", n)
	}
	warm.ensure(ctx, abi.KindCommand)
	if n := len(warm.h.Plugins()); n != 0 {
		t.Errorf("a command event loaded %d plugins; none reads commands", n)
	}
	if !slices.Contains(warm.lazy.waiting(), abi.KindSession) {
		t.Errorf("no plugin waits for sessions: %v", warm.lazy.waiting())
	}
	warm.ensure(ctx, abi.KindSession)
	var producers []string
	for _, p := range warm.h.Plugins() {
		if !slices.Contains(p.Kinds, abi.KindSession) && !slices.Contains(p.Kinds, abi.KindCommand) {
			t.Errorf("%s (kinds %v) loaded for a session", p.File, p.Kinds)
		}
		producers = append(producers, p.Producer)
	}
	if len(producers) == 0 || slices.Contains(warm.lazy.waiting(), abi.KindSession) {
		t.Fatalf("a session loaded %v; still waiting %v", producers, warm.lazy.waiting())
	}

	// Same tags, eager (a fresh cache) and lazy (the cache just filled), on every kind.
	createdAt := regexp.MustCompile(`"created_at":"[^"]*"`)
	run := func() string {
		out, stderr, code := ttp(t, "", "tag", "--rules", rulesDir, "--plugins", "../../plugins", "../../testdata/events/sample.jsonl")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		return createdAt.ReplaceAllString(out, "")
	}
	lazy := run()
	t.Setenv("TTP_CACHE", cacheWithoutKinds(t))
	if eager := run(); eager != lazy {
		t.Errorf("lazy and eager runs tag differently:\n%s\n---\n%s", lazy, eager)
	}
}

// cacheWithoutKinds returns a fresh cache directory that shares the compiled modules of the
// one every command uses (linked, so a test does not compile six plugins again) but keeps no
// plugin kinds.
func cacheWithoutKinds(t *testing.T) string {
	t.Helper()
	shared, dir := cacheDir(), t.TempDir()
	entries, _ := os.ReadDir(shared)
	for _, e := range entries {
		if e.Name() == "kinds" {
			continue
		}
		if err := os.Symlink(filepath.Join(shared, e.Name()), filepath.Join(dir, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}
