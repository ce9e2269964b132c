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
	pw := &pluginWatch{h: h, ctx: ctx, dir: dir, w: w, sums: map[string][sha256.Size]byte{},
		timers: map[string]*time.Timer{}, due: make(chan string, 16), retry: time.NewTimer(time.Hour), backoff: time.Second}
	pw.retry.Stop()
	defer pw.stopTimers()
	pw.rescan()
	return pw.run()
}

// pluginWatch is the state of one WatchPlugins: the content hash of every file it loaded,
// the debounce timer of every file being written, and the back-off of a directory that went
// away.
type pluginWatch struct {
	h       *Host
	ctx     context.Context
	dir     string
	w       *fsnotify.Watcher
	sums    map[string][sha256.Size]byte
	timers  map[string]*time.Timer
	due     chan string // file names whose debounce ended
	retry   *time.Timer // re-adding a directory that went away
	backoff time.Duration
}

// run handles the watcher's events until ctx ends or the watcher closes.
func (pw *pluginWatch) run() error {
	for {
		select {
		case <-pw.ctx.Done():
			return pw.ctx.Err()
		case ev, ok := <-pw.w.Events:
			if !ok {
				return nil
			}
			pw.event(ev)
		case name := <-pw.due:
			delete(pw.timers, name)
			pw.load(name)
		case err, ok := <-pw.w.Errors:
			if !ok {
				return nil
			}
			pw.h.log.Warn("plugins watcher error; rescanning", "dir", pw.dir, "err", err)
			pw.rescan()
		case <-pw.retry.C:
			if err := pw.w.Add(pw.dir); err != nil {
				pw.backoff = min(2*pw.backoff, 30*time.Second)
				pw.retry.Reset(pw.backoff)
				continue
			}
			pw.backoff = time.Second
			pw.rescan()
		}
	}
}

// event debounces a change of a module file, and notices the directory itself going away.
func (pw *pluginWatch) event(ev fsnotify.Event) {
	if filepath.Clean(ev.Name) == filepath.Clean(pw.dir) {
		if ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename) {
			pw.h.log.Error("plugins directory gone; loaded plugins stay live, retrying", "dir", pw.dir)
			pw.retry.Reset(pw.backoff)
		}
		return
	}
	name := filepath.Base(ev.Name)
	if !strings.HasSuffix(name, ".wasm") || strings.HasPrefix(name, ".") {
		return
	}
	if t, ok := pw.timers[name]; ok {
		t.Reset(pluginDebounce)
		return
	}
	pw.timers[name] = time.AfterFunc(pluginDebounce, func() {
		select {
		case pw.due <- name:
		case <-pw.ctx.Done():
		}
	})
}

// rescan loads every module file of the directory that changed.
func (pw *pluginWatch) rescan() {
	entries, _ := os.ReadDir(pw.dir)
	for _, e := range entries {
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".wasm") {
			pw.load(e.Name())
		}
	}
}

// load loads the module file name when its content changed, and unloads it when it is gone
// (but not when the whole directory is: then what is loaded stays).
func (pw *pluginWatch) load(name string) {
	path := filepath.Join(pw.dir, name)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		if _, derr := os.Stat(pw.dir); derr != nil {
			return // the directory is gone: keep what is loaded
		}
		if _, had := pw.sums[name]; had {
			delete(pw.sums, name)
			pw.h.UnloadPlugin(path)
		}
		return
	}
	if err != nil {
		pw.h.log.Warn("plugin unreadable", "file", path, "err", err)
		return
	}
	sum := sha256.Sum256(data)
	if prev, ok := pw.sums[name]; ok && prev == sum {
		return
	}
	pw.sums[name] = sum
	if pw.h.loadedSum(name) == hex.EncodeToString(sum[:]) {
		return // already loaded (LoadPluginDir at start-up): nothing changed
	}
	pw.h.LoadPlugin(pw.ctx, path) // failures are reported by LoadPlugin; the old version stays
}

func (pw *pluginWatch) stopTimers() {
	for _, t := range pw.timers {
		t.Stop()
	}
}
