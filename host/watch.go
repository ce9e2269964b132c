package host

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

// pluginDebounce is how long a module file must be quiet before it is loaded: a copy of a
// multi-megabyte module arrives as many writes.
const pluginDebounce = 100 * time.Millisecond

// WatchPlugins loads every module of dir, then watches it until ctx ends: a new or changed
// .wasm is compiled and checked off the hot path and swapped in; a deleted one is unloaded;
// a file whose content did not change (same sha256) is left alone. If the directory goes
// away the loaded plugins stay live and the watch is retried with back-off.
func (h *Host) WatchPlugins(ctx context.Context, dir string) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	defer w.Close()
	if err := w.Add(dir); err != nil {
		return err
	}
	sums := map[string][sha256.Size]byte{}
	load := func(name string) {
		path := filepath.Join(dir, name)
		data, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			if _, derr := os.Stat(dir); derr != nil {
				return // the directory is gone: keep what is loaded
			}
			if _, had := sums[name]; had {
				delete(sums, name)
				h.UnloadPlugin(path)
			}
			return
		}
		if err != nil {
			h.log.Warn("plugin unreadable", "file", path, "err", err)
			return
		}
		sum := sha256.Sum256(data)
		if prev, ok := sums[name]; ok && prev == sum {
			return
		}
		sums[name] = sum
		if h.loadedSum(name) == hex.EncodeToString(sum[:]) {
			return // already loaded (LoadPluginDir at start-up): nothing changed
		}
		h.LoadPlugin(ctx, path) // failures are reported by LoadPlugin; the old version stays
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".wasm") {
			load(e.Name())
		}
	}
	timers := map[string]*time.Timer{}
	due := make(chan string, 16)
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	backoff := time.Second
	for {
		select {
		case <-ctx.Done():
			for _, t := range timers {
				t.Stop()
			}
			return ctx.Err()
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			if filepath.Clean(ev.Name) == filepath.Clean(dir) {
				if ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename) {
					h.log.Error("plugins directory gone; loaded plugins stay live, retrying", "dir", dir)
					retry.Reset(backoff)
				}
				continue
			}
			name := filepath.Base(ev.Name)
			if !strings.HasSuffix(name, ".wasm") || strings.HasPrefix(name, ".") {
				continue
			}
			if t, ok := timers[name]; ok {
				t.Reset(pluginDebounce)
				continue
			}
			timers[name] = time.AfterFunc(pluginDebounce, func() {
				select {
				case due <- name:
				case <-ctx.Done():
				}
			})
		case name := <-due:
			delete(timers, name)
			load(name)
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			h.log.Warn("plugins watcher error; rescanning", "dir", dir, "err", err)
			entries, _ := os.ReadDir(dir)
			for _, e := range entries {
				if strings.HasSuffix(e.Name(), ".wasm") {
					load(e.Name())
				}
			}
		case <-retry.C:
			if err := w.Add(dir); err != nil {
				backoff = min(2*backoff, 30*time.Second)
				retry.Reset(backoff)
				continue
			}
			backoff = time.Second
			entries, _ := os.ReadDir(dir)
			for _, e := range entries {
				if strings.HasSuffix(e.Name(), ".wasm") {
					load(e.Name())
				}
			}
		}
	}
}
