package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/decnet/ttp/host"
)

// lazyPlugins loads a plugin only when an event of a source kind it handles first arrives,
// so that `ttp tag` of command events never compiles or instantiates the six lifters, none
// of which reads commands (RATIONALE.md, "ttp tag loads a plugin when its kind arrives").
//
// Which kinds a module handles is in its manifest, which only a compiled and instantiated
// module can give. So the kinds are kept in the plugin cache, under the sha256 of the module
// file: a module seen before (the usual case: the same build, run after run) is left unloaded
// until its kind shows up; a module never seen is loaded at start, as before, and its kinds
// are written for the next run. A changed file has another hash, so stale kinds are never
// read.
type lazyPlugins struct {
	h      *host.Host
	dir    string // where the kinds are kept; "" keeps none (every plugin loads at start)
	stderr io.Writer

	mu      sync.Mutex
	pending map[string][]string // source kind -> module paths not loaded yet
	loaded  map[string]bool     // module paths loaded or refused
	failed  bool                // some module was refused
}

// newLazyPlugins lists the modules of pluginsDir, loads at once those whose kinds are not
// known, and keeps the rest for load.
func newLazyPlugins(ctx context.Context, h *host.Host, pluginsDir, kindsDir string, stderr io.Writer) (*lazyPlugins, error) {
	entries, err := os.ReadDir(pluginsDir)
	if err != nil {
		return nil, fmt.Errorf("plugins: %w", err)
	}
	l := &lazyPlugins{h: h, dir: kindsDir, stderr: stderr, pending: map[string][]string{}, loaded: map[string]bool{}}
	var now, sums []string
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".wasm") {
			continue
		}
		path := filepath.Join(pluginsDir, e.Name())
		sum, kinds, ok := l.knownKinds(path)
		if !ok {
			now, sums = append(now, path), append(sums, sum)
			continue
		}
		for _, k := range kinds {
			l.pending[k] = append(l.pending[k], path)
		}
	}
	l.load(ctx, now, sums)
	return l, nil
}

// load loads modules side by side, as Host.LoadPluginDir does (compiling is CPU work that
// needs no lock), then reports refusals and keeps the kinds of those that loaded under their
// sums ("" keeps nothing).
func (l *lazyPlugins) load(ctx context.Context, paths, sums []string) {
	errs := make([]error, len(paths))
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for i, path := range paths {
		l.loaded[path] = true
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			errs[i] = l.h.LoadPlugin(ctx, path)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			printErrors(l.stderr, err)
			l.failed = true
		} else if sums[i] != "" {
			l.keep(paths[i], sums[i])
		}
	}
}

// knownKinds returns the module's sha256 and the source kinds kept for it.
func (l *lazyPlugins) knownKinds(path string) (sum string, kinds []string, ok bool) {
	f, err := os.Open(path)
	if err != nil {
		return "", nil, false // loadNow reports it
	}
	h := sha256.New()
	_, err = io.Copy(h, f) // streamed: six 4 MB modules would be 24 MB of garbage
	f.Close()
	if err != nil {
		return "", nil, false
	}
	sum = hex.EncodeToString(h.Sum(nil))
	if l.dir == "" {
		return sum, nil, false
	}
	b, err := os.ReadFile(filepath.Join(l.dir, sum+".json"))
	if err != nil || json.Unmarshal(b, &kinds) != nil {
		return sum, nil, false
	}
	return sum, kinds, true
}

// keep writes the source kinds of the loaded module at path under sum, for the next run.
func (l *lazyPlugins) keep(path, sum string) {
	if l.dir == "" {
		return
	}
	for _, p := range l.h.Plugins() {
		if p.File != filepath.Base(path) {
			continue
		}
		b, _ := json.Marshal(p.Kinds) // a []string always marshals
		// A lost write costs the next run one eager load, so errors are not reported; a
		// temporary file renamed into place keeps a reader from seeing half of one.
		if os.MkdirAll(l.dir, 0o755) != nil {
			return
		}
		f, err := os.CreateTemp(l.dir, sum+".*.tmp")
		if err != nil {
			return
		}
		_, werr := f.Write(b)
		if cerr := f.Close(); werr == nil && cerr == nil {
			_ = os.Rename(f.Name(), filepath.Join(l.dir, sum+".json"))
		} else {
			_ = os.Remove(f.Name())
		}
	}
}

// ensure loads, once, every module kept for kind. It is cheap when nothing is pending: one
// map lookup under a lock no other goroutine holds in `ttp tag`.
func (l *lazyPlugins) ensure(ctx context.Context, kind string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	paths := l.pending[kind]
	if len(paths) == 0 {
		return
	}
	delete(l.pending, kind)
	var now, sums []string
	for _, path := range paths {
		if !l.loaded[path] {
			now, sums = append(now, path), append(sums, "") // its kinds are kept already
		}
	}
	l.load(ctx, now, sums)
}

// waiting returns the source kinds that still wait for a module, sorted (for tests).
func (l *lazyPlugins) waiting() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]string, 0, len(l.pending))
	for k := range l.pending {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
