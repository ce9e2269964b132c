package main

import (
	"compress/gzip"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/decnet/ttp/abi"
	"github.com/decnet/ttp/ingest"
)

// tagLines splits `ttp tag` JSONL into its tags and its summary line (which must be last).
func tagLines(t *testing.T, stdout string) ([]abi.Tag, *ingest.Counts) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	var sum ingest.SummaryLine
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &sum); err != nil || sum.Ingest == nil {
		t.Fatalf("last line is not the summary: %q", lines[len(lines)-1])
	}
	var tags []abi.Tag
	for _, l := range lines[:len(lines)-1] {
		var tg abi.Tag
		if err := json.Unmarshal([]byte(l), &tg); err != nil || tg.TagUUID == "" {
			t.Fatalf("not a tag: %q", l)
		}
		tags = append(tags, tg)
	}
	return tags, sum.Ingest
}

// TestTagCowrieSample tags the bundled Cowrie sample with the shipped rules and plugins and
// checks the techniques of each of its sessions.
func TestTagCowrieSample(t *testing.T) {
	if w, _ := filepath.Glob("../../plugins/*.wasm"); len(w) == 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("no plugins/*.wasm: run make plugins (make test does)")
		}
		t.Skip("no plugins/*.wasm built (make plugins)")
	}
	stdout, stderr, code := ttp(t, "", "tag", "--input", "cowrie", "--rules", rulesDir, "--plugins", "../../plugins", "../../testdata/cowrie/sample.json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	tags, c := tagLines(t, stdout)
	if c.Input != "cowrie" || c.Lines != 233 || c.Malformed != 0 || c.Unknown["cowrie.virustotal.scanfile"] != 1 ||
		!slices.Equal(c.Sensors, []string{"cowrie-fra-01"}) || c.First.IsZero() || !strings.Contains(stderr, "ttp tag: cowrie: 233 lines") {
		t.Errorf("summary %+v; stderr %s", *c, stderr)
	}
	bySession := map[string]map[string]bool{}
	seen := map[string]bool{}
	for _, tg := range tags {
		if seen[tg.TagUUID] {
			t.Errorf("tag %s (%s on %s) written twice", tg.TagUUID, tg.RuleID, tg.SourceID)
		}
		seen[tg.TagUUID] = true
		tech := tg.TechniqueID
		if tg.SubTechniqueID != "" {
			tech = tg.SubTechniqueID
		}
		if bySession[tg.SessionID] == nil {
			bySession[tg.SessionID] = map[string]bool{}
		}
		bySession[tg.SessionID][tech] = true
	}
	for _, tc := range []struct {
		name, session string
		want          []string
	}{
		{"Mirai-style busybox probe over telnet", "a3f19c0e77d1", []string{"T1078.001", "T1105"}},
		{"miner dropper, cron, history wiped", "5be0d2aa41c7", []string{"T1105", "T1496.001", "T1053.003", "T1070.003", "T1489", "T1059.004"}},
		{"authorized_keys implant", "e81c4b9f02d3", []string{"T1098.004", "T1082", "T1222.002"}},
		{"credential spray, the fourth source", "c0e110005cd0", []string{"T1110", "T1110.004", "T1078.001"}},
		{"port-forwarding relay", "7d40aa19c3e2", []string{"T1090", "T1572"}},
		{"recon-only visit", "0b9e66f1d4a8", []string{"T1082", "T1033"}},
	} {
		for _, w := range tc.want {
			if !bySession[tc.session][w] {
				t.Errorf("%s (session %s): no %s; has %v", tc.name, tc.session, w, bySession[tc.session])
			}
		}
	}
	// The recon visit persists nothing, evades nothing, fetches nothing.
	for tech := range bySession["0b9e66f1d4a8"] {
		if strings.HasPrefix(tech, "T1105") || strings.HasPrefix(tech, "T1098") || strings.HasPrefix(tech, "T1070") || strings.HasPrefix(tech, "T1053") {
			t.Errorf("recon-only visit tagged %s", tech)
		}
	}
}

func TestTagCowrieFiles(t *testing.T) {
	dir := t.TempDir()
	sample, err := os.ReadFile("../../testdata/cowrie/sample.json")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(sample), "\n")
	// Rotated oldest first, given in any order; the oldest gzipped without a suffix.
	parts := map[string]string{
		"cowrie.json.2026-12-04": strings.Join(lines[:80], ""),
		"cowrie.json.2026-12-05": strings.Join(lines[80:160], ""),
		"cowrie.json":            strings.Join(lines[160:], ""),
	}
	for name, text := range parts {
		f, _ := os.Create(filepath.Join(dir, name))
		if name == "cowrie.json.2026-12-04" {
			zw := gzip.NewWriter(f)
			zw.Write([]byte(text))
			zw.Close()
		} else {
			f.WriteString(text)
		}
		f.Close()
	}
	whole, _, code := ttp(t, "", "tag", "--input", "cowrie", "--rules", rulesDir, "--plugins", "", "../../testdata/cowrie/sample.json")
	if code != 0 {
		t.Fatal("whole sample: exit", code)
	}
	split, stderr, code := ttp(t, "", "tag", "--input", "cowrie", "--rules", rulesDir, "--plugins", "",
		filepath.Join(dir, "cowrie.json"), filepath.Join(dir, "cowrie.json.2026-12-05"), filepath.Join(dir, "cowrie.json.2026-12-04"))
	if code != 0 {
		t.Fatalf("split: exit %d: %s", code, stderr)
	}
	a, ca := tagLines(t, whole)
	b, cb := tagLines(t, split)
	uuids := func(tags []abi.Tag) []string {
		var out []string
		for _, tg := range tags {
			out = append(out, tg.TagUUID)
		}
		slices.Sort(out)
		return out
	}
	if !slices.Equal(uuids(a), uuids(b)) || ca.Events != cb.Events || cb.Lines != ca.Lines {
		t.Errorf("the rotated files make %d tags and %d events, the whole log %d and %d", len(b), cb.Events, len(a), ca.Events)
	}
	if want := []string{"cowrie.json.2026-12-04", "cowrie.json.2026-12-05", "cowrie.json"}; len(cb.Files) != 3 || filepath.Base(cb.Files[0]) != want[0] || filepath.Base(cb.Files[2]) != want[2] {
		t.Errorf("files read in the order %v, want %v", cb.Files, want)
	}
	// Standard input.
	stdin, _, code := ttp(t, string(sample), "tag", "--input", "cowrie", "--rules", rulesDir, "--plugins", "", "-")
	if c, _ := tagLines(t, stdin); code != 0 || len(c) != len(a) {
		t.Errorf("stdin: exit %d, %d tags, want %d", code, len(c), len(a))
	}
}

func TestTagInputMismatch(t *testing.T) {
	_, stderr, code := ttp(t, "", "tag", "--rules", rulesDir, "--plugins", "", "../../testdata/cowrie/sample.json")
	if code == 0 || !strings.Contains(stderr, "use --input cowrie") {
		t.Errorf("a Cowrie log read as events: exit %d: %s", code, stderr)
	}
	_, stderr, code = ttp(t, "", "tag", "--input", "cowrie", "--rules", rulesDir, "--plugins", "", "../../testdata/events/sample.jsonl")
	if code == 0 || !strings.Contains(stderr, "use --input jsonl") {
		t.Errorf("events read as a Cowrie log: exit %d: %s", code, stderr)
	}
	if _, stderr, code := ttp(t, "", "tag", "--input", "syslog"); code == 0 || !strings.Contains(stderr, "want jsonl or cowrie") {
		t.Errorf("--input syslog: exit %d: %s", code, stderr)
	}
	if _, stderr, code := ttp(t, "", "tag", "--help"); code != 0 || !strings.Contains(stderr, "--input") {
		t.Errorf("tag --help: exit %d: %s", code, stderr)
	}
	if _, stderr, code := ttp(t, "", "serve", "--help"); code != 0 || !strings.Contains(stderr, "cowrie:PATH") {
		t.Errorf("serve --help: exit %d: %s", code, stderr)
	}
	if _, stderr, code := ttp(t, "", "serve", "--ingest", "syslog:/var/log/x"); code != 2 || !strings.Contains(stderr, "want cowrie:PATH") {
		t.Errorf("serve --ingest syslog:...: exit %d: %s", code, stderr)
	}
}
