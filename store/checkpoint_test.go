package store_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/decnet/ttp/abi"
	"github.com/decnet/ttp/store"
	"github.com/decnet/ttp/store/storetest"
)

// TestCheckpointsInBackground: a file store's writer leaves the WAL checkpoints to the
// checkpointer (wal_autocheckpoint 0), which runs them after commits, so that the WAL is
// copied into the database file while the store is open, without a commit paying for it; an
// in-memory store, which has no WAL file, keeps SQLite's automatic checkpoints and no
// checkpointer.
func TestCheckpointsInBackground(t *testing.T) {
	cases := []struct {
		name       string
		file       bool
		autoCkpt   int
		background bool
	}{
		{"file", true, 0, true},
		{"memory", false, 1000, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			path := ":memory:"
			if c.file {
				path = filepath.Join(t.TempDir(), "ttp.db")
			}
			s, err := store.Open(ctx, "sqlite://"+path)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if n, err := store.AutoCheckpoint(s); err != nil || n != c.autoCkpt {
				t.Errorf("wal_autocheckpoint = %d, %v; want %d", n, err, c.autoCkpt)
			}
			at := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
			for i := range 20 { // 2,000 tags, some 1 MB
				var b []store.Batch
				for j := range 100 {
					id := fmt.Sprintf("ev-%d-%d", i, j)
					b = append(b, store.Batch{UpstreamKind: "command", UpstreamID: id,
						Tags: []abi.Tag{storetest.Tag("command", id, "R0001", at.Add(time.Duration(i*100+j)*time.Millisecond))}})
				}
				if _, err := s.InsertBatch(ctx, b); err != nil {
					t.Fatal(err)
				}
			}
			n0 := store.Checkpoints(s)
			if !c.background {
				if n0 != -1 {
					t.Errorf("checkpointer ran %d times, want none", n0)
				}
				return
			}
			// The last commit's kick brings a run that starts after it (one under way
			// meanwhile may not have seen it): two more runs cover every commit.
			for deadline := time.Now().Add(10 * time.Second); store.Checkpoints(s) < n0+2 && time.Now().Before(deadline); {
				time.Sleep(10 * time.Millisecond)
			}
			if n := store.Checkpoints(s); n < n0+2 {
				t.Fatalf("%d checkpoints 10 s after the commits, want %d", n, n0+2)
			}
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Size() < 500_000 {
				t.Errorf("database file of %d bytes with 2,000 tags committed: the WAL was not checkpointed into it", fi.Size())
			}
		})
	}
}
