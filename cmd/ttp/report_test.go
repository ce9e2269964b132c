package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/decnet/ttp/abi"
	"github.com/decnet/ttp/navigator"
	"github.com/decnet/ttp/store"
	"github.com/decnet/ttp/tagsource"
)

const reportFixture = "../../testdata/report/tags.jsonl"

func TestNavigatorReportHelp(t *testing.T) {
	for _, args := range [][]string{{"navigator", "--help"}, {"navigator", "-h"}, {"report", "--help"}, {"report", "-h"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			_, stderr, code := ttp(t, "", args...)
			if code != 0 || !strings.Contains(stderr, "usage: ttp "+args[0]) {
				t.Errorf("exit %d, stderr %q", code, stderr)
			}
		})
	}
}

func TestNavigatorReportErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
		code int
	}{
		{"no source", []string{"navigator"}, "--tags FILE", 1},
		{"two sources", []string{"report", "--tags", reportFixture, "--store", "x.db"}, "give one", 1},
		{"bad score", []string{"navigator", "--tags", reportFixture, "--score", "sum"}, "want count or confidence", 1},
		{"bad since", []string{"report", "--tags", reportFixture, "--since", "last week"}, "--since", 1},
		{"an events file", []string{"navigator", "--tags", "../../testdata/events/sample.jsonl"}, "ttp tag FILE", 1},
		{"missing store file", []string{"report", "--store", filepath.Join(t.TempDir(), "none.db")}, "none.db", 1},
		{"named rules dir missing", []string{"report", "--tags", reportFixture, "--rules", filepath.Join(t.TempDir(), "none")}, "--rules", 1},
		{"stray argument", []string{"navigator", "tags.jsonl"}, "unexpected argument", 2},
		{"unknown flag", []string{"report", "--colour"}, "flag provided but not defined", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, stderr, code := ttp(t, "", tt.args...)
			if code != tt.code || !strings.Contains(stderr, tt.want) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, stderr, tt.code, tt.want)
			}
		})
	}
}

// TestNavigatorAndReportFromTagsAndStore: the same tags read from the JSONL file, from
// standard input and from a SQLite store make the same layer entries; the report is written
// to the file named, whole.
func TestNavigatorAndReportFromTagsAndStore(t *testing.T) {
	dir := t.TempDir()
	set, err := tagsource.ReadFile(reportFixture)
	if err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(dir, "ttp.db")
	st, err := store.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	for _, tag := range set.Tags {
		if _, err := st.InsertTags(context.Background(), tag.SourceKind, tag.SourceID, []abi.Tag{tag}); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()
	fixture, err := os.ReadFile(reportFixture)
	if err != nil {
		t.Fatal(err)
	}

	entries := func(t *testing.T, layerJSON []byte) map[string]float64 {
		t.Helper()
		var l navigator.Layer
		if err := json.Unmarshal(layerJSON, &l); err != nil {
			t.Fatal(err)
		}
		if err := navigator.Validate(&l); err != nil {
			t.Fatal(err)
		}
		m := map[string]float64{}
		for _, e := range l.Techniques {
			m[e.TechniqueID+"/"+e.Tactic] = e.Score
		}
		return m
	}
	sources := []struct {
		name  string
		stdin string
		args  []string
	}{
		{"file", "", []string{"--tags", reportFixture}},
		{"stdin", string(fixture), []string{"--tags", "-"}},
		{"sqlite store", "", []string{"--store", db}},
		{"sqlite store URL", "", []string{"--store", "sqlite://" + db}},
	}
	var first map[string]float64
	for _, s := range sources {
		t.Run(s.name, func(t *testing.T) {
			out := filepath.Join(dir, s.name+".json")
			_, stderr, code := ttp(t, s.stdin, append([]string{"navigator", "--rules", rulesDir, "-o", out}, s.args...)...)
			if code != 0 {
				t.Fatalf("navigator: exit %d: %s", code, stderr)
			}
			b, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			got := entries(t, b)
			if first == nil {
				first = got
			} else if len(got) != len(first) {
				t.Errorf("%d entries, the file gave %d", len(got), len(first))
			}
			for k, v := range first {
				if got[k] != v {
					t.Errorf("%s: %v, the file gave %v", k, got[k], v)
				}
			}
			if !strings.Contains(string(b), "System information discovery") {
				t.Error("the layer's comments do not name rules from --rules")
			}

			html := filepath.Join(dir, s.name+".html")
			stdout, stderr, code := ttp(t, s.stdin, append([]string{"report", "--rules", rulesDir, "-o", html}, s.args...)...)
			if code != 0 || stdout != "" {
				t.Fatalf("report: exit %d, stdout %d bytes: %s", code, len(stdout), stderr)
			}
			page, err := os.ReadFile(html)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasSuffix(strings.TrimSpace(string(page)), "</html>") || !strings.Contains(string(page), `data-technique="T1059.004"`) {
				t.Error("report incomplete")
			}
			// Only the file reader has the summary line.
			if hasCounts := strings.Contains(string(page), `data-count="lines"`); hasCounts != (s.name == "file" || s.name == "stdin") {
				t.Errorf("ingest counts shown: %v", hasCounts)
			}
		})
	}

	t.Run("since", func(t *testing.T) {
		for _, src := range [][]string{{"--tags", reportFixture}, {"--store", db}} {
			stdout, stderr, code := ttp(t, "", append([]string{"navigator", "--since", "2026-11-27T09:00:00Z"}, src...)...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			got := entries(t, []byte(stdout))
			if len(got) == 0 || len(got) >= len(first) {
				t.Errorf("%v: --since kept %d of %d entries", src, len(got), len(first))
			}
			if _, ok := got["T1594/reconnaissance"]; ok {
				t.Errorf("%v: --since kept a technique only seen before 09:00", src)
			}
		}
		// A --since past every event says why the output is empty.
		_, stderr, code := ttp(t, "", "report", "--tags", reportFixture, "--since", "1h", "-o", filepath.Join(dir, "empty.html"))
		if code != 0 || !strings.Contains(stderr, "keeps none of the 141 tags: the newest event is at 2026-11-27T11:58:51Z") {
			t.Errorf("exit %d, stderr %q", code, stderr)
		}
	})
}

// TestTagThenNavigator runs the README's pipeline on events: what ttp tag writes (with or
// without its summary line) is what ttp navigator and ttp report read.
func TestTagThenNavigator(t *testing.T) {
	tags, stderr, code := ttp(t, "", "tag", "--rules", rulesDir, "--plugins", t.TempDir(), "../../testdata/report/events.jsonl")
	if code != 0 {
		t.Fatalf("tag: exit %d: %s", code, stderr)
	}
	stdout, stderr, code := ttp(t, tags, "navigator", "--tags", "-")
	if code != 0 {
		t.Fatalf("navigator: exit %d: %s", code, stderr)
	}
	var l navigator.Layer
	if err := json.Unmarshal([]byte(stdout), &l); err != nil {
		t.Fatal(err)
	}
	if err := navigator.Validate(&l); err != nil {
		t.Fatal(err)
	}
	if len(l.Techniques) < 10 {
		t.Errorf("%d techniques from the engine's tags of the sample", len(l.Techniques))
	}
	if _, stderr, code := ttp(t, tags, "report", "--tags", "-", "-o", filepath.Join(t.TempDir(), "r.html")); code != 0 {
		t.Fatalf("report: exit %d: %s", code, stderr)
	}
}
