package store_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/decnet/ttp/abi"
	"github.com/decnet/ttp/store"
	"github.com/decnet/ttp/store/storetest"
)

// testTime is the observed_at of this file's events.
var testTime = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// sqliteURL is a fresh database file in the test's temporary directory.
func sqliteURL(t *testing.T) string {
	return "sqlite://" + filepath.Join(t.TempDir(), "ttp.db")
}

func TestSQLite(t *testing.T) {
	storetest.Run(t, sqliteURL)
}

func TestSQLiteWithoutReadPool(t *testing.T) {
	storetest.Run(t, func(t *testing.T) string { return sqliteURL(t) + "?readers=0&sync=always" })
}

func TestPostgres(t *testing.T) {
	storetest.PostgresURL(t) // skip (or, under CI, fail) before any subtest when there is no server
	storetest.Run(t, func(t *testing.T) string { return storetest.PostgresURL(t) })
}

func TestOpenURLs(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	cases := []struct {
		name    string
		url     string
		file    string // the database file the URL must create, relative to dir
		wantErr error
	}{
		{"sqlite absolute", "sqlite://" + filepath.Join(dir, "a.db"), "a.db", nil},
		{"sqlite absolute with options", "sqlite://" + filepath.Join(dir, "b.db") + "?sync=always&readers=2", "b.db", nil},
		{"sqlite path with awkward characters", "sqlite://" + filepath.Join(dir, "c%3F%23 d.db"), "c?# d.db", nil},
		{"plain path", filepath.Join(dir, "e.db"), "e.db", nil},
		{"plain path with a question mark", filepath.Join(dir, "f?.db"), "f?.db", nil},
		{"sqlite3 scheme", "sqlite3://" + filepath.Join(dir, "g.db"), "g.db", nil},
		{"unknown sqlite option", "sqlite://" + filepath.Join(dir, "x.db") + "?synch=always", "", store.ErrUnsupportedURL},
		{"bad sync value", "sqlite://" + filepath.Join(dir, "x.db") + "?sync=sometimes", "", store.ErrUnsupportedURL},
		{"bad readers value", "sqlite://" + filepath.Join(dir, "x.db") + "?readers=-1", "", store.ErrUnsupportedURL},
		{"no file", "sqlite://", "", store.ErrUnsupportedURL},
		{"unknown scheme", "mysql://root@localhost/ttp", "", store.ErrUnsupportedURL},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := store.Open(ctx, c.url)
			if c.wantErr != nil {
				if !errors.Is(err, c.wantErr) {
					t.Fatalf("Open(%q) error = %v, want %v", c.url, err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Open(%q): %v", c.url, err)
			}
			defer s.Close()
			if _, err := s.InsertTags(ctx, "command", "c1", []abi.Tag{storetest.Tag("command", "c1", "R0001", testTime)}); err != nil {
				t.Fatalf("InsertTags: %v", err)
			}
			if _, err := os.Stat(filepath.Join(dir, c.file)); err != nil {
				t.Errorf("database file: %v", err)
			}
		})
	}
}

// TestSQLitePragmas checks what the DSN promised: WAL, the synchronous level sync= chose and
// the busy timeout, read from a second connection on the same file.
func TestSQLitePragmas(t *testing.T) {
	cases := []struct {
		option string
		sync   int // PRAGMA synchronous: 1 NORMAL, 2 FULL
	}{
		{"", 1},
		{"?sync=normal", 1},
		{"?sync=always", 2},
	}
	for _, c := range cases {
		t.Run("sync"+c.option, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "ttp.db")
			s, err := store.Open(context.Background(), "sqlite://"+path+c.option)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			db, err := sql.Open("sqlite", path)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			var mode string
			if err := db.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil || !strings.EqualFold(mode, "wal") {
				t.Errorf("journal_mode = %q, %v; want wal", mode, err)
			}
			var version int
			if err := db.QueryRow(`SELECT version FROM schema_version`).Scan(&version); err != nil || version != 1 {
				t.Errorf("schema_version = %d, %v; want 1", version, err)
			}
			if got, err := store.Synchronous(s); err != nil || got != c.sync {
				t.Errorf("synchronous = %d, %v; want %d", got, err, c.sync)
			}
		})
	}
}

func TestSchemaTooNew(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ttp.db")
	s, err := store.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE schema_version SET version = 99`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := store.Open(context.Background(), path); !errors.Is(err, store.ErrSchemaTooNew) {
		t.Fatalf("Open of a newer schema: %v, want ErrSchemaTooNew", err)
	}
}
