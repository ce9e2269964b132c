package report

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/decnet/ttp/abi"
	"github.com/decnet/ttp/ingest"
	"github.com/decnet/ttp/tagsource"
)

const fixture = "../testdata/report/tags.jsonl"

var t0 = time.Date(2026, 11, 27, 4, 0, 0, 0, time.UTC)

// mk is a tag of rule r for technique id (sub-technique when it has a dot) under tactic.
func mk(r, id, tactic, session string, at time.Time, evidence map[string]any) abi.Tag {
	tech, sub := id, ""
	if i := strings.IndexByte(id, '.'); i >= 0 {
		tech, sub = id[:i], id
	}
	src := r + session + at.String()
	return abi.Tag{TagUUID: abi.TagUUID(at, r, "v", "command", src, tech, sub, tactic), RuleID: r, TechniqueID: tech, SubTechniqueID: sub,
		Tactic: tactic, Confidence: 0.8, Evidence: evidence, SourceKind: "command", SourceID: src, SessionID: session, DeckyID: "hp1", ObservedAt: at}
}

func render(t *testing.T, set *tagsource.Set, opts Options) string {
	t.Helper()
	var buf bytes.Buffer
	if err := Write(&buf, set, opts); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

// TestHostileInputEscaped: what attackers typed reaches the page as text. The report has no
// script of its own, so any <script at all in the output is an injection.
func TestHostileInputEscaped(t *testing.T) {
	hostile := []struct {
		name, text, escaped string
	}{
		{"script element", `echo '<script>alert(document.cookie)</script>' >> index.html`, `&lt;script&gt;alert(document.cookie)&lt;/script&gt;`},
		{"attribute breakout", `wget "http://x/" onmouseover="alert(1)"><img src=x onerror=alert(2)>`, `&lt;img src=x onerror=alert(2)&gt;`},
		{"style breakout", `</style><svg onload=alert(3)>`, `&lt;/style&gt;&lt;svg onload=alert(3)&gt;`},
		{"comment breakout", `--><!--`, `--&gt;&lt;!--`},
	}
	for _, h := range hostile {
		t.Run(h.name, func(t *testing.T) {
			set := &tagsource.Set{Tags: []abi.Tag{mk("R0001", "T1082", "discovery", `s"><b>x1`, t0, map[string]any{"command_text": h.text})}, Source: "<i>src</i>"}
			out := render(t, set, Options{Title: "<b>title</b>", RuleNames: map[string]string{"R0001": "<u>name</u>"}})
			for _, bad := range []string{"<script", "<img", "<svg onload", "<b>x1", "<b>title", "<u>", "<i>src", `onmouseover="alert`} {
				if strings.Contains(out, bad) {
					t.Errorf("output contains %q unescaped", bad)
				}
			}
			if !strings.Contains(out, h.escaped) {
				t.Errorf("output lacks the escaped command %q", h.escaped)
			}
		})
	}
}

// TestSelfContained: nothing in the page makes a browser fetch or run anything.
func TestSelfContained(t *testing.T) {
	set, err := tagsource.ReadFile(fixture)
	if err != nil {
		t.Fatal(err)
	}
	out := render(t, set, Options{})
	for _, re := range []string{`<script`, `<link`, `<img`, `<iframe`, `<object`, `<embed`, `\ssrc=`, `\shref=`, `url\(`, `@import`, `@font-face`, `\son[a-z]+=`} {
		if m := regexp.MustCompile(`(?i)` + re).FindString(out); m != "" {
			t.Errorf("report contains %q", m)
		}
	}
	if !strings.Contains(out, "@media print") || !strings.Contains(out, "page-break-before") {
		t.Error("report has no print styles")
	}
}

func TestMatrix(t *testing.T) {
	tags := []abi.Tag{
		mk("R1", "T1082", "discovery", "s1", t0, nil),
		mk("R1", "T1082", "discovery", "s1", t0.Add(time.Minute), nil),
		mk("R2", "T1059.004", "execution", "s1", t0.Add(2*time.Minute), nil),
		mk("R3", "T1053.003", "persistence", "s2", t0.Add(3*time.Minute), nil),
		mk("R3", "T1053.003", "execution", "s2", t0.Add(3*time.Minute), nil),
		mk("R4", "T1082", "not-a-tactic", "s2", t0.Add(4*time.Minute), nil),
	}
	v := build(&tagsource.Set{Tags: tags}, Options{})
	if len(v.Columns) != 14 || v.Columns[0].Shortname != "reconnaissance" || v.Columns[13].Shortname != "impact" {
		t.Fatalf("columns %v: want the 14 Enterprise tactics in matrix order", v.Columns)
	}
	got := map[string]string{}
	for _, c := range v.Columns {
		for _, cell := range c.Cells {
			if cell.Tactic != c.Shortname {
				t.Errorf("cell %v in column %s", cell, c.Shortname)
			}
			got[cell.ID+"/"+cell.Tactic] = cell.String() + " " + cell.Name
		}
	}
	want := map[string]string{
		"T1082/discovery":       "T1082/discovery=2 System Information Discovery",
		"T1059.004/execution":   "T1059.004/execution=1 Command and Scripting Interpreter: Unix Shell",
		"T1053.003/persistence": "T1053.003/persistence=1 Scheduled Task/Job: Cron",
		"T1053.003/execution":   "T1053.003/execution=1 Scheduled Task/Job: Cron",
	}
	if len(got) != len(want) {
		t.Errorf("cells %v, want %v", got, want)
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s: %q, want %q", k, got[k], w)
		}
	}
	if len(v.Unplaced) != 1 || v.Unplaced[0].Tactic != "not-a-tactic" {
		t.Errorf("unplaced %v, want the tag under an unknown tactic", v.Unplaced)
	}
	if v.Techniques != 3 || v.Tags != 6 || v.SessionCount != 2 {
		t.Errorf("techniques %d tags %d sessions %d", v.Techniques, v.Tags, v.SessionCount)
	}
}

func TestHeat(t *testing.T) {
	for _, tt := range []struct{ n, max, want int }{
		{0, 10, 0}, {1, 1, 5}, {1, 10000, 1}, {100, 10000, 1}, {2500, 10000, 3}, {10000, 10000, 5}, {3, 4, 5}, {1, 4, 3},
	} {
		if got := heat(tt.n, tt.max); got != tt.want {
			t.Errorf("heat(%d, %d) = %d, want %d", tt.n, tt.max, got, tt.want)
		}
	}
}

func TestTimeline(t *testing.T) {
	tests := []struct {
		name   string
		times  []time.Duration
		bucket string
		counts []int
	}{
		{"minutes within an hour", []time.Duration{0, 30 * time.Second, 3 * time.Minute}, "minute", []int{2, 0, 0, 1}},
		{"5 minutes past 96 minutes", []time.Duration{0, 4 * time.Minute, 100 * time.Minute}, "5 minutes", append(append([]int{2}, make([]int, 19)...), 1)},
		{"hours past a day", []time.Duration{0, 10 * time.Minute, 30 * time.Hour}, "hour", append(append([]int{2}, make([]int, 29)...), 1)},
		{"days past four days", []time.Duration{0, 30 * time.Hour, 5 * 24 * time.Hour}, "6 hours", nil},
		{"days past a month", []time.Duration{0, 30 * time.Hour, 40 * 24 * time.Hour}, "day", nil},
		{"weeks past three months", []time.Duration{0, 200 * 24 * time.Hour}, "week", nil},
		{"one tag", []time.Duration{0}, "minute", []int{1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var tags []abi.Tag
			for i, d := range tt.times {
				tags = append(tags, mk("R1", "T1082", "discovery", "s", t0.Add(d), map[string]any{"i": i}))
			}
			set := &tagsource.Set{Tags: tags}
			tl := buildTimeline(set)
			if tl.Bucket != tt.bucket || tt.counts != nil && len(tl.Bars) != len(tt.counts) || len(tl.Bars) > 96 {
				t.Fatalf("bucket %s with %d bars, want %s with %d (at most 96)", tl.Bucket, len(tl.Bars), tt.bucket, len(tt.counts))
			}
			sum := 0
			for i, b := range tl.Bars {
				sum += b.Count
				if tt.counts != nil && b.Count != tt.counts[i] {
					t.Errorf("bar %d: %d, want %d", i, b.Count, tt.counts[i])
				}
				if b.Y < 0 || b.Y+b.H > float64(tl.Height) {
					t.Errorf("bar %d outside the chart: y %v h %v", i, b.Y, b.H)
				}
			}
			if sum != len(tt.times) {
				t.Errorf("bars hold %d tags, want %d", sum, len(tt.times))
			}
		})
	}
	if !buildTimeline(&tagsource.Set{}).Empty {
		t.Error("no tags: the timeline is not empty")
	}
}

// TestSessions: busiest first, commands in the order typed (a fanned-out command "S#3" and
// the fourth element of the session's command list being one command), capped.
func TestSessions(t *testing.T) {
	sess := mk("R0031", "T1059.004", "execution", "big", t0, map[string]any{"commands": []any{"uname -a", "id", "wget x", "history -c"}})
	sess.SourceKind, sess.SourceID = "session", "S"
	fan := func(i int, text, rule, id, tactic string) abi.Tag {
		tg := mk(rule, id, tactic, "big", t0, map[string]any{"command_text": text})
		tg.SourceID = "S#" + string(rune('0'+i))
		return tg
	}
	tags := []abi.Tag{
		fan(3, "history -c", "R0016", "T1070.003", "defense-evasion"),
		fan(0, "uname -a", "R0001", "T1082", "discovery"),
		sess,
		fan(2, "wget x", "R0008", "T1105", "command-and-control"),
		mk("R0001", "T1082", "discovery", "small", t0.Add(-time.Hour), map[string]any{"command_text": "uname"}),
	}
	set := &tagsource.Set{Tags: tags}
	v := build(set, Options{Commands: 3})
	if len(v.Sessions) != 2 || v.Sessions[0].ID != "big" || v.Sessions[1].ID != "small" {
		t.Fatalf("sessions %+v", v.Sessions)
	}
	big := v.Sessions[0]
	var texts []string
	for _, c := range big.Commands {
		texts = append(texts, c.Text)
		if !c.Shown.IsZero() {
			t.Errorf("command %q shows the session's time as its own", c.Text)
		}
	}
	if strings.Join(texts, "|") != "uname -a|id|wget x" || big.MoreCommands != 1 {
		t.Errorf("commands %q (+%d), want the first three in order and 1 more", texts, big.MoreCommands)
	}
	if got := big.Commands[0].Techniques; strings.Join(got, ",") != "T1082,T1059.004" && strings.Join(got, ",") != "T1059.004,T1082" {
		t.Errorf("uname -a techniques %v", got)
	}
	if small := v.Sessions[1]; len(small.Commands) != 1 || small.Commands[0].Shown.IsZero() {
		t.Errorf("a command event's own time is not shown: %+v", small.Commands)
	}
	if v := build(set, Options{Sessions: 1}); len(v.Sessions) != 1 || v.MoreSessions != 1 {
		t.Errorf("Sessions: 1 gives %d sessions, %d more", len(v.Sessions), v.MoreSessions)
	}
}

func TestRulesAndIngest(t *testing.T) {
	tags := []abi.Tag{
		mk("R0001", "T1082", "discovery", "s1", t0, nil),
		mk("R0001", "T1082", "discovery", "s2", t0.Add(time.Hour), nil),
		mk("R0008", "T1105", "command-and-control", "s1", t0, nil),
	}
	tests := []struct {
		name   string
		ingest *ingest.Counts
		want   []string
	}{
		{"with summary", &ingest.Counts{Input: "cowrie", Files: []string{"cowrie.json.gz"}, Lines: 1234, Events: 1000, Skipped: 200, Malformed: 34,
			Unknown: map[string]int64{"cowrie.log.closed": 150}},
			[]string{`data-count="lines">1234<`, `data-count="events">1000<`, `data-count="skipped">200<`, `data-count="malformed">34<`, "cowrie.log.closed: 150", "cowrie.json.gz"}},
		{"without summary", nil, []string{"carried no ingest summary"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := render(t, &tagsource.Set{Tags: tags, Ingest: tt.ingest}, Options{RuleNames: map[string]string{"R0001": "System information discovery"}})
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("report lacks %q", w)
				}
			}
			if !regexp.MustCompile(`<tr data-rule="R0001"><td><code>R0001</code></td><td>System information discovery</td><td class="num">2</td><td class="num">2</td>`).MatchString(out) {
				t.Error("rule row of R0001 (2 tags, 2 sessions, named) missing")
			}
		})
	}
}

// TestDeterministic: the same tags make the same file, so a report can be diffed or cached.
func TestDeterministic(t *testing.T) {
	set, err := tagsource.ReadFile(fixture)
	if err != nil {
		t.Fatal(err)
	}
	a, b := render(t, set, Options{}), render(t, set, Options{})
	if a != b {
		t.Error("two renders of the same tags differ")
	}
}

// TestEmpty: a run that tagged nothing still makes a whole report, saying so.
func TestEmpty(t *testing.T) {
	out := render(t, &tagsource.Set{Ingest: &ingest.Counts{Input: "cowrie", Lines: 5, Skipped: 5}}, Options{})
	for _, w := range []string{"No tags in the input.", "No tag names a session.", `data-count="skipped">5<`, "</html>"} {
		if !strings.Contains(out, w) {
			t.Errorf("empty report lacks %q", w)
		}
	}
}
