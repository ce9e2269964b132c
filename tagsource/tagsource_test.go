package tagsource

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/decnet/ttp/abi"
	"github.com/decnet/ttp/ingest"
	"github.com/decnet/ttp/store"
	"github.com/decnet/ttp/store/storetest"
)

var at = time.Date(2026, 11, 27, 4, 12, 1, 120_000_000, time.UTC)

func tagLine(rule string, observed time.Time, extra string) string {
	u := abi.TagUUID(observed, rule, "v", "command", "c-"+rule, "T1082", "", "discovery")
	return `{"tag_uuid":"` + u + `","rule_id":"` + rule + `","rule_version":"v","technique_id":"T1082","tactic":"discovery","confidence":0.8,` +
		`"source_kind":"command","source_id":"c-` + rule + `","attacker_uuid":null,"producer":"engine","created_at":"2026-12-01T00:00:00Z"` + extra + `}`
}

func TestReadJSONL(t *testing.T) {
	summary := `{"ttp_ingest":{"input":"cowrie","files":["a.json"],"lines":10,"events":8,"skipped":1,"malformed":1,"sensors":["hp1"],"first":"2026-11-27T04:00:00Z","last":"2026-11-27T05:00:00Z"}}`
	summary2 := `{"ttp_ingest":{"input":"cowrie","files":["b.json"],"lines":5,"events":5,"skipped":0,"malformed":0,"sensors":["hp0","hp1"],"first":"2026-11-27T03:00:00Z","last":"2026-11-27T04:30:00Z"}}`
	tests := []struct {
		name     string
		in       string
		tags     int
		ingest   *ingest.Counts
		err      error
		errLine  string
		firstRID string
	}{
		{"tags and a summary", tagLine("R2", at.Add(time.Second), "") + "\n" + tagLine("R1", at, "") + "\n" + summary + "\n", 2,
			&ingest.Counts{Input: "cowrie", Files: []string{"a.json"}, Lines: 10, Events: 8, Skipped: 1, Malformed: 1, Sensors: []string{"hp1"},
				First: time.Date(2026, 11, 27, 4, 0, 0, 0, time.UTC), Last: time.Date(2026, 11, 27, 5, 0, 0, 0, time.UTC)}, nil, "", "R1"},
		{"no summary line", tagLine("R1", at, "") + "\n", 1, nil, nil, "", "R1"},
		{"blank lines and CRLF", "\r\n" + tagLine("R1", at, "") + "\r\n\n", 1, nil, nil, "", "R1"},
		{"two summaries merge", summary + "\n" + tagLine("R1", at, "") + "\n" + summary2 + "\n", 1,
			&ingest.Counts{Input: "cowrie", Files: []string{"a.json", "b.json"}, Lines: 15, Events: 13, Skipped: 1, Malformed: 1, Sensors: []string{"hp0", "hp1"},
				First: time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC), Last: time.Date(2026, 11, 27, 5, 0, 0, 0, time.UTC)}, nil, "", "R1"},
		{"a tag that mentions the key is a tag", tagLine("R1", at, `,"evidence":{"command_text":"echo ttp_ingest"}`) + "\n", 1, nil, nil, "", "R1"},
		{"an events file", `{"source_kind":"command","source_id":"a","payload":{"command_text":"uname -a"}}` + "\n", 0, nil, ErrNotTags, "x.jsonl:1:", ""},
		{"bad JSON on line 2", tagLine("R1", at, "") + "\n{nope\n", 0, nil, ErrNotTags, "x.jsonl:2:", ""},
		{"bad summary", `{"ttp_ingest":{"lines":"many"}}` + "\n", 0, nil, nil, "x.jsonl:1: summary line", ""},
		{"empty input", "", 0, nil, nil, "", ""},
		{"a line over the limit", tagLine("R1", at, "") + "\n" + tagLine("R2", at, `,"evidence":{"command_text":"`+strings.Repeat("A", maxLine)+`"}`) + "\n", 0, nil, nil, "x.jsonl:2: bufio.Scanner: token too long", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set, err := ReadJSONL(strings.NewReader(tt.in), "x.jsonl")
			if tt.errLine != "" {
				if err == nil || !strings.Contains(err.Error(), tt.errLine) || tt.err != nil && !errors.Is(err, tt.err) {
					t.Fatalf("err %v, want one with %q (%v)", err, tt.errLine, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(set.Tags) != tt.tags {
				t.Fatalf("%d tags, want %d", len(set.Tags), tt.tags)
			}
			if tt.firstRID != "" && set.Tags[0].RuleID != tt.firstRID {
				t.Errorf("first tag %s, want %s (event-time order)", set.Tags[0].RuleID, tt.firstRID)
			}
			if (set.Ingest == nil) != (tt.ingest == nil) {
				t.Fatalf("ingest %+v, want %+v", set.Ingest, tt.ingest)
			}
			if tt.ingest != nil {
				g, w := *set.Ingest, *tt.ingest
				if g.Lines != w.Lines || g.Events != w.Events || g.Skipped != w.Skipped || g.Malformed != w.Malformed ||
					strings.Join(g.Files, ",") != strings.Join(w.Files, ",") || strings.Join(g.Sensors, ",") != strings.Join(w.Sensors, ",") ||
					!g.First.Equal(w.First) || !g.Last.Equal(w.Last) {
					t.Errorf("ingest %+v, want %+v", g, w)
				}
			}
		})
	}
}

func TestTime(t *testing.T) {
	created := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		tag  abi.Tag
		want time.Time
	}{
		{"observed_at", abi.Tag{ObservedAt: at, TagUUID: abi.TagUUID(at.Add(time.Hour), "R", "v", "k", "s", "T", "", "t"), CreatedAt: created}, at},
		{"from the tag_uuid", abi.Tag{TagUUID: abi.TagUUID(at, "R", "v", "k", "s", "T", "", "t"), CreatedAt: created}, at},
		{"tag_uuid without time: created_at", abi.Tag{TagUUID: abi.TagUUID(time.Time{}, "R", "v", "k", "s", "T", "", "t"), CreatedAt: created}, created},
		{"no tag_uuid: created_at", abi.Tag{CreatedAt: created}, created},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Time(tt.tag); !got.Equal(tt.want) {
				t.Errorf("Time = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"", time.Time{}, true},
		{"24h", now.Add(-24 * time.Hour), true},
		{"90m", now.Add(-90 * time.Minute), true},
		{"2026-11-27T04:00:00Z", time.Date(2026, 11, 27, 4, 0, 0, 0, time.UTC), true},
		{"-1h", time.Time{}, false},
		{"yesterday", time.Time{}, false},
	}
	for _, tt := range tests {
		got, err := ParseSince(tt.in, now)
		if (err == nil) != tt.ok || !got.Equal(tt.want) {
			t.Errorf("ParseSince(%q) = %v, %v; want %v, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestSince(t *testing.T) {
	set, err := ReadJSONL(strings.NewReader(tagLine("R1", at, "")+"\n"+tagLine("R2", at.Add(time.Hour), "")+"\n"), "x")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		since time.Time
		want  int
	}{{time.Time{}, 2}, {at, 2}, {at.Add(time.Millisecond), 1}, {at.Add(time.Hour), 1}, {at.Add(2 * time.Hour), 0}} {
		if got := len(set.Since(tt.since).Tags); got != tt.want {
			t.Errorf("Since(%v): %d tags, want %d", tt.since, got, tt.want)
		}
	}
}

func TestSQLitePath(t *testing.T) {
	for _, tt := range []struct {
		in, want string
		ok       bool
	}{
		{"var/ttp.db", "var/ttp.db", true},
		{"var/f?.db", "var/f?.db", true},
		{"sqlite:///abs/ttp.db?sync=always", "/abs/ttp.db", true},
		{"sqlite:rel/ttp.db", "rel/ttp.db", true},
		{"sqlite://var/ttp.db", "var/ttp.db", true},
		{"sqlite:///abs/c%3F.db", "/abs/c?.db", true},
		{"postgres://u:p@h/db", "", false},
		{"mysql://h/db", "mysql://h/db", false},
	} {
		got, ok := sqlitePath(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("sqlitePath(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

// TestReadStore reads the fixture's tags back from both stores: same tags, event times
// recovered from the tag_uuid, --since as a key range, no summary.
func TestReadStore(t *testing.T) {
	fixture, err := ReadFile("../testdata/report/tags.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	backends := []struct {
		name string
		url  func(t *testing.T) string
	}{
		{"sqlite", func(t *testing.T) string { return "sqlite://" + filepath.Join(t.TempDir(), "ttp.db") }},
		{"postgres", func(t *testing.T) string { return storetest.PostgresURL(t) }},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			u := b.url(t)
			ctx := context.Background()
			st, err := store.Open(ctx, u)
			if err != nil {
				t.Fatal(err)
			}
			// One upstream event per source, as the daemon stores them.
			byUp := map[string][]abi.Tag{}
			for _, tag := range fixture.Tags {
				up, _, _ := strings.Cut(tag.SourceID, "#")
				byUp[up] = append(byUp[up], tag)
			}
			for up, tags := range byUp {
				if _, err := st.InsertTags(ctx, "x", up, tags); err != nil {
					t.Fatal(err)
				}
			}
			st.Close()

			set, err := ReadStore(ctx, u, time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			if len(set.Tags) != len(fixture.Tags) || set.Ingest != nil {
				t.Fatalf("%d tags (ingest %v), want %d and none", len(set.Tags), set.Ingest, len(fixture.Tags))
			}
			for i, g := range set.Tags {
				w := fixture.Tags[i]
				if g.TagUUID != w.TagUUID || !g.ObservedAt.Equal(w.ObservedAt) || !Time(g).Equal(Time(w)) {
					t.Fatalf("tag %d: %s at %v, want %s at %v", i, g.TagUUID, g.ObservedAt, w.TagUUID, w.ObservedAt)
				}
			}
			since := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
			late, err := ReadStore(ctx, u, since)
			if err != nil {
				t.Fatal(err)
			}
			if want := len(fixture.Since(since).Tags); len(late.Tags) != want || want == 0 {
				t.Errorf("since %v: %d tags, want %d (as the file reader filters)", since, len(late.Tags), want)
			}
			if strings.Contains(set.Source, "password") {
				t.Errorf("source %q shows a password", set.Source)
			}
		})
	}
	t.Run("missing sqlite file", func(t *testing.T) {
		missing := filepath.Join(t.TempDir(), "typo.db")
		if _, err := ReadStore(context.Background(), missing, time.Time{}); err == nil {
			t.Fatal("a missing file read as an empty store")
		}
	})
}

func TestRedact(t *testing.T) {
	if got := redact("postgres://ttp:s3cret@db:5432/ttp"); strings.Contains(got, "s3cret") {
		t.Errorf("redact kept the password: %s", got)
	}
	if got := redact("var/ttp.db"); got != "var/ttp.db" {
		t.Errorf("redact(path) = %s", got)
	}
}
