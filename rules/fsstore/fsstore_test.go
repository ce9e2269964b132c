package fsstore

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/decnet/ttp/rules"
	"github.com/decnet/ttp/rules/storetest"
)

var quietLog = slog.New(slog.NewTextHandler(io.Discard, nil))

func open(t *testing.T, initial map[string][]byte) storetest.Harness {
	dir := t.TempDir()
	for id, content := range initial {
		if err := os.WriteFile(filepath.Join(dir, id+".yaml"), content, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s, err := Open(dir, Config{Logger: quietLog})
	if err != nil {
		t.Fatal(err)
	}
	return storetest.Harness{
		Store: s,
		Write: func(t *testing.T, id string, content []byte) {
			if err := os.WriteFile(filepath.Join(dir, id+".yaml"), content, 0o644); err != nil {
				t.Fatal(err)
			}
		},
		Delete: func(t *testing.T, id string) {
			if err := os.Remove(filepath.Join(dir, id+".yaml")); err != nil {
				t.Fatal(err)
			}
		},
	}
}

func TestConformance(t *testing.T) { storetest.Run(t, open) }

func nextChange(t *testing.T, sub *rules.Subscription) rules.Change {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := sub.Next(ctx)
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	return c
}

func noChange(t *testing.T, sub *rules.Subscription) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if c, err := sub.Next(ctx); err == nil {
		t.Fatalf("unexpected change %s %s (%v)", c.Op, c.ID, c.Err)
	}
}

// TestSaveStyles proves that each way an editor saves makes exactly one change.
func TestSaveStyles(t *testing.T) {
	styles := []struct {
		name string
		save func(t *testing.T, path string, content []byte)
	}{
		{"in-place write", func(t *testing.T, path string, content []byte) {
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0o644)
			if err != nil {
				t.Fatal(err)
			}
			// Two writes, as editors that stream a buffer do.
			half := len(content) / 2
			f.Write(content[:half])
			f.Sync()
			f.Write(content[half:])
			f.Close()
		}},
		{"rename-over", func(t *testing.T, path string, content []byte) {
			tmp := filepath.Join(filepath.Dir(path), ".R0001.yaml.tmp")
			if err := os.WriteFile(tmp, content, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(tmp, path); err != nil {
				t.Fatal(err)
			}
		}},
		{"delete and create", func(t *testing.T, path string, content []byte) {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, content, 0o644); err != nil {
				t.Fatal(err)
			}
		}},
		{"vim backup dance", func(t *testing.T, path string, content []byte) {
			dir := filepath.Dir(path)
			os.WriteFile(filepath.Join(dir, "4913"), nil, 0o644) // vim's writability probe
			os.Remove(filepath.Join(dir, "4913"))
			if err := os.Rename(path, path+"~"); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, content, 0o644); err != nil {
				t.Fatal(err)
			}
			os.Remove(path + "~")
		}},
	}
	for _, st := range styles {
		t.Run(st.name, func(t *testing.T) {
			h := open(t, map[string][]byte{"R0001": storetest.Rule("R0001", "before")})
			defer h.Store.Close()
			sub, _ := h.Store.Subscribe(context.Background())
			path := filepath.Join(h.Store.(*Store).dir, "R0001.yaml")
			after := storetest.Rule("R0001", "after")
			st.save(t, path, after)
			c := nextChange(t, sub)
			if c.Op != rules.RuleUpdated || c.ID != "R0001" || c.Rule.Match.Pattern != "(?i)after" {
				t.Fatalf("got %s %s (%v), want one update of R0001", c.Op, c.ID, c.Err)
			}
			noChange(t, sub)
			// Saving the same bytes again is no change at all.
			st.save(t, path, after)
			noChange(t, sub)
		})
	}
}

func TestIgnoresOtherFiles(t *testing.T) {
	h := open(t, nil)
	defer h.Store.Close()
	sub, _ := h.Store.Subscribe(context.Background())
	dir := h.Store.(*Store).dir
	for _, name := range []string{".R0001.yaml.swp", "R0001.yaml~", "r0001.yaml", "R001.yaml", "notes.txt", "R0001.yml"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("garbage: ["), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	noChange(t, sub)
}

func TestCommentEditIsNoChange(t *testing.T) {
	h := open(t, map[string][]byte{"R0001": storetest.Rule("R0001", "x")})
	defer h.Store.Close()
	sub, _ := h.Store.Subscribe(context.Background())
	h.Write(t, "R0001", append([]byte("# a comment\n"), storetest.Rule("R0001", "x")...))
	noChange(t, sub)
}

func TestTooLarge(t *testing.T) {
	big := append(storetest.Rule("R0001", "x"), []byte("# "+string(make([]byte, rules.MaxFileSize)))...)
	h := open(t, nil)
	defer h.Store.Close()
	sub, _ := h.Store.Subscribe(context.Background())
	h.Write(t, "R0001", big)
	if c := nextChange(t, sub); c.Op != rules.RuleRejected {
		t.Fatalf("got %s, want rejection of an oversized file", c.Op)
	}
}

// TestDirectoryRemoved: the last good rules stay live when the directory disappears.
func TestDirectoryRemoved(t *testing.T) {
	h := open(t, map[string][]byte{"R0001": storetest.Rule("R0001", "x")})
	defer h.Store.Close()
	dir := h.Store.(*Store).dir
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	sub, _ := h.Store.Subscribe(context.Background())
	if got, _ := sub.Initial(); len(got) != 1 {
		t.Fatalf("rules after directory removal: %d, want the last good 1", len(got))
	}
}

// TestHotReloadIntoSnapshot follows the store as the host does (its initial view, then every
// change folded in with Snapshot.Apply) and reports how long a write takes to answer there
// (asserted only loosely).
func TestHotReloadIntoSnapshot(t *testing.T) {
	h := open(t, map[string][]byte{"R0001": storetest.Rule("R0001", "before")})
	defer h.Store.Close()
	sub, err := h.Store.Subscribe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	initial, states := sub.Initial()
	first, err := rules.NewSnapshot(initial, states)
	if err != nil {
		t.Fatal(err)
	}
	var cur atomic.Pointer[rules.Snapshot]
	cur.Store(first)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for {
			c, err := sub.Next(ctx)
			if err != nil {
				return
			}
			if next, err := cur.Load().Apply(c); err == nil {
				cur.Store(next)
			}
		}
	}()
	waitFor := func(pattern string) time.Duration {
		start := time.Now()
		for time.Since(start) < 10*time.Second {
			if r, ok := cur.Load().Set.Rule("R0001"); ok && r.Match.Pattern == pattern {
				return time.Since(start)
			}
			time.Sleep(time.Millisecond)
		}
		t.Fatalf("snapshot never answered with %s", pattern)
		return 0
	}
	waitFor("(?i)before")
	var worst time.Duration
	for i := 0; i < 5; i++ {
		marker := "v" + string(rune('a'+i))
		start := time.Now()
		h.Write(t, "R0001", storetest.Rule("R0001", marker))
		waitFor("(?i)" + marker)
		if d := time.Since(start); d > worst {
			worst = d
		}
	}
	t.Logf("hot reload, write to snapshot answering: worst of 5 = %v", worst)
}

// lockedBuffer is a log sink the store's goroutine writes while the test reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestRestoredFileSaysSo: a file broken and then put back as the live rule is makes no change
// (the live rule never left) but is logged, so the operator who fixed it hears of it.
func TestRestoredFileSaysSo(t *testing.T) {
	dir := t.TempDir()
	good := storetest.Rule("R0001", "x")
	if err := os.WriteFile(filepath.Join(dir, "R0001.yaml"), good, 0o644); err != nil {
		t.Fatal(err)
	}
	var logs lockedBuffer
	s, err := Open(dir, Config{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	sub, _ := s.Subscribe(context.Background())
	if err := os.WriteFile(filepath.Join(dir, "R0001.yaml"), []byte("id: R0001\nname: [broken"), 0o644); err != nil {
		t.Fatal(err)
	}
	if c := nextChange(t, sub); c.Op != rules.RuleRejected {
		t.Fatalf("got %s, want the broken file rejected", c.Op)
	}
	if err := os.WriteFile(filepath.Join(dir, "R0001.yaml"), good, 0o644); err != nil {
		t.Fatal(err)
	}
	noChange(t, sub)
	if !strings.Contains(logs.String(), "rule file restored") {
		t.Errorf("no log line for the restored file:\n%s", logs.String())
	}
}
