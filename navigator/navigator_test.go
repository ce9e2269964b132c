package navigator_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/decnet/ttp/abi"
	"github.com/decnet/ttp/ingest"
	"github.com/decnet/ttp/navigator"
	"github.com/decnet/ttp/tagsource"
)

var update = flag.Bool("update", false, "rewrite testdata/navigator/*.golden from the current output")

const fixture = "../testdata/report/tags.jsonl"

// TestGolden builds the layer of the fixed tags file under each score, validates it, checks
// it against the raw tags (every technique and tactic pair present, scores adding up) and
// compares it byte for byte with its golden file.
func TestGolden(t *testing.T) {
	set, err := tagsource.ReadFile(fixture)
	if err != nil {
		t.Fatal(err)
	}
	if set.Ingest == nil {
		t.Fatal("the fixture has no summary line")
	}
	names := map[string]string{"R0001": "System information discovery", "R0008": "Ingress tool transfer"}
	for _, tt := range []struct {
		score  navigator.Score
		golden string
	}{
		{navigator.ScoreCount, "layer-count.golden"},
		{navigator.ScoreConfidence, "layer-confidence.golden"},
	} {
		t.Run(string(tt.score), func(t *testing.T) {
			l := navigator.Build(set, navigator.Options{Score: tt.score, RuleNames: names})
			if err := navigator.Validate(l); err != nil {
				t.Fatal(err)
			}
			want := map[[2]string]float64{}
			for _, tag := range set.Tags {
				k := [2]string{tagsource.TechniqueID(tag), tag.Tactic}
				if tt.score == navigator.ScoreCount {
					want[k]++
				} else {
					want[k] += tag.Confidence
				}
			}
			if len(l.Techniques) != len(want) {
				t.Errorf("%d entries, want one per technique and tactic: %d", len(l.Techniques), len(want))
			}
			for _, e := range l.Techniques {
				w, ok := want[[2]string{e.TechniqueID, e.Tactic}]
				if !ok || abs(e.Score-w) > 0.001 {
					t.Errorf("%s/%s: score %v, want %v (present %v)", e.TechniqueID, e.Tactic, e.Score, w, ok)
				}
				if !strings.Contains(e.Comment, "Rules: R") {
					t.Errorf("%s/%s: comment %q names no rule", e.TechniqueID, e.Tactic, e.Comment)
				}
			}
			var buf bytes.Buffer
			if err := navigator.Write(&buf, l); err != nil {
				t.Fatal(err)
			}
			// What is written decodes back to the same layer: no field is lost on the way.
			var back navigator.Layer
			if err := json.Unmarshal(buf.Bytes(), &back); err != nil {
				t.Fatal(err)
			}
			if err := navigator.Validate(&back); err != nil {
				t.Fatalf("written layer: %v", err)
			}
			path := filepath.Join("..", "testdata", "navigator", tt.golden)
			if *update {
				if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			golden, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./navigator -update)", err)
			}
			if !bytes.Equal(buf.Bytes(), golden) {
				t.Errorf("layer differs from %s (go test ./navigator -update rewrites it):\n%s", path, firstDiff(buf.String(), string(golden)))
			}
		})
	}
}

// TestBuild covers the placements one tag at a time.
func TestBuild(t *testing.T) {
	at := time.Date(2026, 11, 27, 4, 0, 0, 0, time.UTC)
	tag := func(rule, tech, sub, tactic string, conf float64, session string) abi.Tag {
		return abi.Tag{TagUUID: abi.TagUUID(at, rule, "v", "command", rule+session, tech, sub, tactic), RuleID: rule,
			TechniqueID: tech, SubTechniqueID: sub, Tactic: tactic, Confidence: conf, SessionID: session, ObservedAt: at}
	}
	tests := []struct {
		name     string
		score    navigator.Score
		tags     []abi.Tag
		want     map[string]float64 // "T1059.004/execution" -> score
		maxValue float64
		notShown bool
	}{
		{"sub-technique keyed by its full id", navigator.ScoreCount,
			[]abi.Tag{tag("R1", "T1059", "T1059.004", "execution", 0.9, "s1"), tag("R2", "T1059", "T1059.004", "execution", 0.5, "s2")},
			map[string]float64{"T1059.004/execution": 2}, 2, false},
		{"one technique under two tactics is two entries", navigator.ScoreCount,
			[]abi.Tag{tag("R1", "T1053", "T1053.003", "persistence", 0.9, "s1"), tag("R2", "T1053", "T1053.003", "execution", 0.9, "s1")},
			map[string]float64{"T1053.003/persistence": 1, "T1053.003/execution": 1}, 1, false},
		{"confidence sums", navigator.ScoreConfidence,
			[]abi.Tag{tag("R1", "T1082", "", "discovery", 0.8, "s1"), tag("R2", "T1082", "", "discovery", 0.7, "s1"), tag("R3", "T1082", "", "discovery", 0.9, "s2")},
			map[string]float64{"T1082/discovery": 2.4}, 2.4, false},
		{"a tactic the technique does not serve is not shown", navigator.ScoreCount,
			[]abi.Tag{tag("R1", "T1082", "", "impact", 0.8, "s1"), tag("R1", "T1082", "", "discovery", 0.8, "s1")},
			map[string]float64{"T1082/discovery": 1}, 1, true},
		{"an unknown technique is not shown", navigator.ScoreCount,
			[]abi.Tag{tag("R1", "T9999", "", "discovery", 0.8, "s1")},
			map[string]float64{}, 1, true},
		{"no tags still makes a valid layer", navigator.ScoreCount, nil, map[string]float64{}, 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := navigator.Build(&tagsource.Set{Tags: tt.tags, Source: "test"}, navigator.Options{Score: tt.score})
			if err := navigator.Validate(l); err != nil {
				t.Fatal(err)
			}
			got := map[string]float64{}
			for _, e := range l.Techniques {
				got[e.TechniqueID+"/"+e.Tactic] = e.Score
			}
			if len(got) != len(tt.want) {
				t.Errorf("entries %v, want %v", got, tt.want)
			}
			for k, w := range tt.want {
				if abs(got[k]-w) > 1e-9 {
					t.Errorf("%s: %v, want %v", k, got[k], w)
				}
			}
			if l.Gradient.MaxValue != tt.maxValue {
				t.Errorf("gradient maxValue %v, want %v", l.Gradient.MaxValue, tt.maxValue)
			}
			notShown := false
			for _, m := range l.Metadata {
				notShown = notShown || m.Name == "not shown"
			}
			if notShown != tt.notShown {
				t.Errorf("\"not shown\" metadata %v, want %v", notShown, tt.notShown)
			}
		})
	}
}

// TestMetadata: the summary line's counts and the sensors reach the layer; without the line
// the sensors come from the tags.
func TestMetadata(t *testing.T) {
	at := time.Date(2026, 11, 27, 4, 0, 0, 0, time.UTC)
	tags := []abi.Tag{{TagUUID: abi.TagUUID(at, "R1", "v", "command", "c1", "T1082", "", "discovery"), RuleID: "R1",
		TechniqueID: "T1082", Tactic: "discovery", Confidence: 0.8, DeckyID: "ssh-fra-01", ObservedAt: at}}
	tests := []struct {
		name   string
		ingest *ingest.Counts
		want   map[string]string
	}{
		{"with summary", &ingest.Counts{Input: "cowrie", Files: []string{"cowrie.json"}, Lines: 120, Events: 100, Skipped: 15, Malformed: 5, Sensors: []string{"hp1", "hp2"}},
			map[string]string{"sensors": "hp1, hp2", "lines read": "120", "events": "100", "skipped": "15", "malformed": "5", "input": "cowrie cowrie.json", "first event": "2026-11-27T04:00:00Z"}},
		{"without summary", nil, map[string]string{"sensors": "ssh-fra-01", "tags": "1", "lines read": ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := navigator.Build(&tagsource.Set{Tags: tags, Ingest: tt.ingest, Source: "x"}, navigator.Options{})
			got := map[string]string{}
			for _, m := range l.Metadata {
				got[m.Name] = m.Value
			}
			for k, w := range tt.want {
				if got[k] != w {
					t.Errorf("metadata %q = %q, want %q", k, got[k], w)
				}
			}
		})
	}
}

func TestValidateRejects(t *testing.T) {
	good := func() *navigator.Layer {
		return navigator.Build(&tagsource.Set{Tags: []abi.Tag{{TagUUID: "x", RuleID: "R1", TechniqueID: "T1082", Tactic: "discovery", Confidence: 1}}}, navigator.Options{})
	}
	tests := []struct {
		name string
		edit func(*navigator.Layer)
		want string
	}{
		{"wrong domain", func(l *navigator.Layer) { l.Domain = "mobile-attack" }, "domain"},
		{"wrong layer version", func(l *navigator.Layer) { l.Versions.Layer = "4.4" }, "versions.layer"},
		{"no name", func(l *navigator.Layer) { l.Name = "" }, "name"},
		{"unknown technique", func(l *navigator.Layer) { l.Techniques[0].TechniqueID = "T0000" }, "not an ATT&CK"},
		{"tactic by display name", func(l *navigator.Layer) { l.Techniques[0].Tactic = "Discovery" }, "shortname"},
		{"tactic the technique does not serve", func(l *navigator.Layer) { l.Techniques[0].Tactic = "impact" }, "does not serve"},
		{"duplicate entry", func(l *navigator.Layer) { l.Techniques = append(l.Techniques, l.Techniques[0]) }, "second entry"},
		{"flat gradient", func(l *navigator.Layer) { l.Gradient.MaxValue = 0 }, "maxValue"},
		{"one colour", func(l *navigator.Layer) { l.Gradient.Colors = l.Gradient.Colors[:1] }, "colours"},
		{"score above the gradient", func(l *navigator.Layer) { l.Techniques[0].Score = 99 }, "outside the gradient"},
		{"metadata without a value", func(l *navigator.Layer) { l.Metadata[0].Value = "" }, "metadata[0]"},
		{"technique metadata without a name", func(l *navigator.Layer) { l.Techniques[0].Metadata[1].Name = "" }, "techniques[0].metadata[1]"},
	}
	if err := navigator.Validate(good()); err != nil {
		t.Fatalf("the base layer: %v", err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := good()
			tt.edit(l)
			err := navigator.Validate(l)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate = %v, want an error about %q", err, tt.want)
			}
		})
	}
}

func TestParseScore(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want navigator.Score
		ok   bool
	}{{"count", navigator.ScoreCount, true}, {"confidence", navigator.ScoreConfidence, true}, {"sum", "", false}, {"", "", false}} {
		got, err := navigator.ParseScore(tt.in)
		if got != tt.want || (err == nil) != tt.ok {
			t.Errorf("ParseScore(%q) = %q, %v", tt.in, got, err)
		}
	}
}

func abs(f float64) float64 {
	if f < 0 {
		return -f
	}
	return f
}

// firstDiff shows the first differing line of two texts, which is all a golden diff needs.
func firstDiff(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := 0; i < max(len(g), len(w)); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			return "line " + itoa(i+1) + ":\n got  " + gl + "\n want " + wl
		}
	}
	return ""
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }
