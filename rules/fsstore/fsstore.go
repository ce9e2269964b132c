// Package fsstore is the rule Store of a directory (rules/ttp by default): it loads every
// rule file, watches the directory with fsnotify and publishes one change per rule per save,
// whatever the editor does.
//
// The order of work for an event on a file: the name is checked against the allowlist
// (R[0-9]{4}.yaml) before anything is read, so swap and backup files cost nothing; events are
// debounced per file (an in-place write arrives as truncate plus write, a delete-and-create as
// two events); then the content hash decides whether anything changed at all, so a save that
// rewrites the same bytes is no change. Parsing and compiling happen on the store's goroutine,
// never on the evaluation path. A file that fails to load is published as a rejection and the
// previous version stays live. State is kept in memory (the daemon's KV store keeps it in a
// bucket).
package fsstore

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/decnet/ttp/rules"
)

// DefaultDebounce is how long a file must be quiet before it is read. Editors finish a save
// within a millisecond or two; 20 ms keeps a reload well under the 100 ms target.
const DefaultDebounce = 20 * time.Millisecond

// Store watches one directory of rule files. It implements rules.Store.
type Store struct {
	dir      string
	feed     *rules.Feed
	log      *slog.Logger
	debounce time.Duration

	watcher *fsnotify.Watcher
	due     chan string // file names whose debounce ran out
	stop    chan struct{}
	done    chan struct{}

	mu      sync.Mutex // guards timers (touched by the loop and by AfterFunc callbacks)
	timers  map[string]*time.Timer
	hashes  map[string][sha256.Size]byte // name -> hash of the content last seen (loaded or rejected)
	broken  map[string]bool              // names whose last content was rejected (the live rule is older)
	watched bool
}

// Config is what a Store is opened with; its zero value is the defaults.
type Config struct {
	// Logger receives loads and rejections; nil: slog.Default().
	Logger *slog.Logger
	// Debounce is the quiet time a file needs before it is read; 0: DefaultDebounce.
	Debounce time.Duration
	// Clock is the clock of state expiry reverts; nil: the wall clock.
	Clock rules.Clock
}

// Open loads dir and starts watching it. The watch is set before the first read, so no save
// made during loading is missed.
func Open(dir string, cfg Config) (*Store, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Debounce <= 0 {
		cfg.Debounce = DefaultDebounce
	}
	s := &Store{
		dir:      dir,
		feed:     rules.NewFeed(cfg.Clock),
		log:      cfg.Logger,
		debounce: cfg.Debounce,
		due:      make(chan string, 64),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
		timers:   map[string]*time.Timer{},
		hashes:   map[string][sha256.Size]byte{},
		broken:   map[string]bool{},
	}
	if st, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("fsstore: %w", err)
	} else if !st.IsDir() {
		return nil, fmt.Errorf("fsstore: %s is not a directory", dir)
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("fsstore: %w", err)
	}
	s.watcher = w
	if err := w.Add(dir); err != nil {
		w.Close()
		return nil, fmt.Errorf("fsstore: watch %s: %w", dir, err)
	}
	s.watched = true
	s.rescan()
	go s.loop()
	return s, nil
}

// Subscribe implements rules.Store.
func (s *Store) Subscribe(context.Context) (*rules.Subscription, error) {
	return s.feed.Subscribe(), nil
}

// SetState implements rules.Store: states live in memory.
func (s *Store) SetState(_ context.Context, id string, st rules.State) error {
	if err := st.Validate(); err != nil {
		return fmt.Errorf("fsstore: %s: %w", id, err)
	}
	s.feed.SetState(id, st)
	return nil
}

// Close implements rules.Store.
func (s *Store) Close() error {
	select {
	case <-s.stop:
		return nil
	default:
	}
	close(s.stop)
	<-s.done
	s.feed.Close()
	return s.watcher.Close()
}

func (s *Store) loop() {
	defer close(s.done)
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	backoff := time.Second
	for {
		select {
		case <-s.stop:
			s.mu.Lock()
			for _, t := range s.timers {
				t.Stop()
			}
			s.mu.Unlock()
			return
		case ev, ok := <-s.watcher.Events:
			if !ok {
				return
			}
			if filepath.Clean(ev.Name) == filepath.Clean(s.dir) {
				if ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename) {
					s.log.Error("rules directory gone; last good rules stay live, retrying", "dir", s.dir)
					s.watched = false
					backoff = time.Second
					retry.Reset(backoff)
				}
				continue
			}
			name := filepath.Base(ev.Name)
			if !rules.ValidFileName(name) {
				continue
			}
			s.schedule(name)
		case err, ok := <-s.watcher.Errors:
			if !ok {
				return
			}
			s.log.Warn("rules watcher error; rescanning", "dir", s.dir, "err", err)
			s.rescan()
		case name := <-s.due:
			s.mu.Lock()
			delete(s.timers, name)
			s.mu.Unlock()
			s.reload(name)
		case <-retry.C:
			if err := s.watcher.Add(s.dir); err != nil {
				backoff = min(backoff*2, 30*time.Second)
				s.log.Warn("rules directory still unavailable", "dir", s.dir, "err", err, "retry_in", backoff)
				retry.Reset(backoff)
				continue
			}
			s.watched = true
			s.log.Info("rules directory back; rescanning", "dir", s.dir)
			s.rescan()
		}
	}
}

// schedule (re)starts the debounce timer of one file.
func (s *Store) schedule(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t, ok := s.timers[name]; ok {
		t.Reset(s.debounce)
		return
	}
	s.timers[name] = time.AfterFunc(s.debounce, func() {
		select {
		case s.due <- name:
		case <-s.stop:
		}
	})
}

// rescan reloads every rule file and deletes rules whose file is gone.
func (s *Store) rescan() {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		s.log.Error("rules directory unreadable; last good rules stay live", "dir", s.dir, "err", err)
		return
	}
	present := map[string]bool{}
	for _, e := range entries {
		if !e.IsDir() && rules.ValidFileName(e.Name()) {
			present[e.Name()] = true
			s.reload(e.Name())
		}
	}
	for name := range s.hashes {
		if !present[name] {
			s.reload(name)
		}
	}
}

// reload reads one file and publishes what changed: nothing when the content hash is the one
// last seen, a deletion when the file is gone, else the new rule or its rejection.
func (s *Store) reload(name string) {
	path := filepath.Join(s.dir, name)
	id := name[:len(name)-len(".yaml")]
	data, err := readLimited(path)
	if errors.Is(err, fs.ErrNotExist) {
		if _, derr := os.Stat(s.dir); derr != nil {
			return // the directory itself is gone: keep the last good rules until it returns
		}
		if _, had := s.hashes[name]; had {
			delete(s.hashes, name)
			if _, live := s.feed.Rule(id); live {
				s.feed.Publish(rules.Change{Op: rules.RuleDeleted, ID: id, File: path})
			}
		}
		return
	}
	if err != nil {
		s.broken[name] = true
		s.feed.Publish(rules.Change{Op: rules.RuleRejected, ID: id, File: path, Err: err})
		return
	}
	sum := sha256.Sum256(data)
	if prev, ok := s.hashes[name]; ok && prev == sum {
		return
	}
	s.hashes[name] = sum
	r, err := rules.Parse(path, data)
	if err != nil {
		s.broken[name] = true
		s.feed.Publish(rules.Change{Op: rules.RuleRejected, ID: id, File: path, Err: err})
		return
	}
	wasBroken := s.broken[name]
	delete(s.broken, name)
	if prev, live := s.feed.Rule(id); live && prev.Version == r.Version {
		// A comment or whitespace edit: same definition, no change. After a rejection it is
		// the file put back as the live rule is: say so, or the operator who fixed it hears
		// nothing after the ERROR of the rejection.
		if wasBroken {
			s.log.Info("rule file restored: it matches the live version again", "rule", id, "file", path, "version", r.Version)
		}
		return
	}
	s.feed.Publish(rules.Change{Op: rules.RuleUpdated, ID: id, Rule: r, File: path})
}

func readLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, rules.MaxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > rules.MaxFileSize {
		return nil, &rules.Error{File: path, Err: rules.ErrTooLarge}
	}
	return data, nil
}
