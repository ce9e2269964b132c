// Package report renders tags as one self-contained HTML file: the ATT&CK matrix as a heatmap,
// a timeline, the busiest sessions with their commands, the rules that fired and the input
// counts. It is what a honeypot operator mails to a colleague or prints for a meeting, so it
// has no script, fetches nothing (inline CSS, inline SVG, system fonts), opens offline and
// prints in page-sized sections.
//
// Everything an attacker typed is hostile input: commands, usernames, URLs reach the page
// only through html/template's contextual escaping, never as template.HTML.
package report

import (
	"cmp"
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/decnet/ttp/abi"
	"github.com/decnet/ttp/rules/attack"
	"github.com/decnet/ttp/tagsource"
)

//go:embed report.html.tmpl
var pageTemplate string

var page = template.Must(template.New("report").Funcs(template.FuncMap{
	"stamp": stamp,
	"clock": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("15:04:05")
	},
}).Parse(pageTemplate))

// Tactics are the Enterprise tactics in the order of the ATT&CK matrix, left to right, with
// their display names: the columns of the report's heatmap.
var Tactics = []Tactic{
	{"reconnaissance", "Reconnaissance"},
	{"resource-development", "Resource Development"},
	{"initial-access", "Initial Access"},
	{"execution", "Execution"},
	{"persistence", "Persistence"},
	{"privilege-escalation", "Privilege Escalation"},
	{"defense-evasion", "Defense Evasion"},
	{"credential-access", "Credential Access"},
	{"discovery", "Discovery"},
	{"lateral-movement", "Lateral Movement"},
	{"collection", "Collection"},
	{"command-and-control", "Command and Control"},
	{"exfiltration", "Exfiltration"},
	{"impact", "Impact"},
}

// Tactic is one column of the matrix: its shortname (as tags and the Navigator spell it) and
// the name the ATT&CK matrix shows.
type Tactic struct {
	Shortname string // "credential-access", as tags and the Navigator spell it
	Name      string // "Credential Access", as the matrix shows it
}

// Options say what a report shows. The zero value is a complete report.
type Options struct {
	// Title heads the page; empty means "ttp report" and the sensors.
	Title string
	// RuleNames maps rule ids to names (from the rule files, see cmd/ttp --rules); a rule
	// not in it is shown by id alone.
	RuleNames map[string]string
	// Sessions is how many sessions the report details, the busiest first (default 10).
	Sessions int
	// Commands is how many commands a session shows before "and N more" (default 40), so
	// that one scripted session of 5,000 commands does not make the report a book.
	Commands int
	// Generated, when set, is printed as the report's creation time. It is an option, not
	// the clock, so that the same tags make the same file.
	Generated time.Time
	// Version is the ttp version printed in the footer.
	Version string
}

// Write renders the report of set to w.
func Write(w io.Writer, set *tagsource.Set, opts Options) error {
	return page.Execute(w, build(set, opts))
}

// view is everything the template reads; the template only formats.
type view struct {
	Title, Source, Version, AttackVersion string
	Generated                             time.Time
	First, Last                           time.Time
	Tags, Techniques, SessionCount        int
	Sensors                               []string
	Columns                               []column
	Unplaced                              []cell
	Timeline                              timeline
	Sessions                              []session
	MoreSessions                          int
	Rules                                 []rule
	Ingest                                *ingestView
}

type column struct {
	Tactic
	Tags  int
	Cells []cell
}

// cell is one technique under one tactic.
type cell struct {
	ID, Name, Tactic string
	Count            int
	Confidence       float64
	Heat             int // 1..5, the shade; relative to the busiest cell
}

type timeline struct {
	Bucket      string // "hour" or "day"
	Bars        []bar
	Max         int
	Width       int
	Height      int
	BarWidth    float64
	Empty       bool
	FirstLabel  string
	LastLabel   string
	MiddleLabel string
	MiddleX     float64
}

type bar struct {
	X, Y, H float64
	Count   int
	Label   string
}

type session struct {
	ID, Decky, Attacker string
	First, Last         time.Time
	Tags                int
	Techniques          []cell
	Rules               []string
	Commands            []command
	MoreCommands        int
}

type command struct {
	At         time.Time // for ordering
	Shown      time.Time // printed; zero when the command's own time is not known
	Text       string
	Techniques []string
	seq        int  // place in its session, when known
	fanned     bool // from a session event: At is the session's time
}

type rule struct {
	ID, Name       string
	Count          int
	Techniques     []string
	Sessions       int
	First, Last    time.Time
	MeanConfidence float64
}

type ingestView struct {
	Input, Files                      string
	Lines, Events, Skipped, Malformed int64
	Unknown                           []unknownID
	Sensors                           string
	First, Last                       time.Time
}

type unknownID struct {
	ID    string
	Count int64
}

func build(set *tagsource.Set, opts Options) *view {
	opts.Sessions = cmp.Or(opts.Sessions, 10)
	opts.Commands = cmp.Or(opts.Commands, 40)
	v := &view{
		Title:         opts.Title,
		Source:        set.Source,
		Version:       cmp.Or(opts.Version, "dev"),
		AttackVersion: attack.Version,
		Generated:     opts.Generated,
		Tags:          len(set.Tags),
		Sensors:       set.Sensors(),
	}
	v.First, v.Last = set.Span()
	if v.Title == "" {
		v.Title = "ttp report"
	}

	// The matrix: one cell per technique and tactic.
	type key struct{ id, tactic string }
	cells := map[key]*cell{}
	techniques := map[string]bool{}
	for _, t := range set.Tags {
		k := key{tagsource.TechniqueID(t), t.Tactic}
		c := cells[k]
		if c == nil {
			c = &cell{ID: k.id, Name: techniqueName(k.id), Tactic: k.tactic}
			cells[k] = c
		}
		c.Count++
		c.Confidence += t.Confidence
		techniques[k.id] = true
	}
	v.Techniques = len(techniques)
	maxCount := 0
	for _, c := range cells {
		maxCount = max(maxCount, c.Count)
	}
	byTactic := map[string][]cell{}
	for _, c := range cells {
		c.Heat = heat(c.Count, maxCount)
		c.Confidence = math.Round(c.Confidence*100) / 100
		byTactic[c.Tactic] = append(byTactic[c.Tactic], *c)
	}
	placed := map[string]bool{}
	for _, tc := range Tactics {
		col := column{Tactic: tc, Cells: byTactic[tc.Shortname]}
		sortCells(col.Cells)
		for _, c := range col.Cells {
			col.Tags += c.Count
		}
		placed[tc.Shortname] = true
		v.Columns = append(v.Columns, col)
	}
	for tactic, cs := range byTactic {
		if !placed[tactic] {
			v.Unplaced = append(v.Unplaced, cs...)
		}
	}
	sortCells(v.Unplaced)

	v.Timeline = buildTimeline(set)
	v.Sessions, v.SessionCount = buildSessions(set, opts)
	v.MoreSessions = v.SessionCount - len(v.Sessions)
	v.Rules = buildRules(set, opts)
	if c := set.Ingest; c != nil {
		iv := &ingestView{Input: c.Input, Files: strings.Join(c.Files, ", "), Lines: c.Lines, Events: c.Events,
			Skipped: c.Skipped, Malformed: c.Malformed, Sensors: strings.Join(c.Sensors, ", "), First: c.First, Last: c.Last}
		for id, n := range c.Unknown {
			iv.Unknown = append(iv.Unknown, unknownID{id, n})
		}
		slices.SortFunc(iv.Unknown, func(a, b unknownID) int { return cmp.Or(cmp.Compare(b.Count, a.Count), strings.Compare(a.ID, b.ID)) })
		v.Ingest = iv
	}
	return v
}

// techniqueName is the name the matrix shows: "Unix Shell" under its parent's name, as ATT&CK
// writes sub-techniques ("Command and Scripting Interpreter: Unix Shell").
func techniqueName(id string) string {
	t, ok := attack.Lookup(id)
	if !ok {
		return "(not in ATT&CK " + attack.Version + ")"
	}
	if p, ok := attack.Lookup(t.Parent()); ok && t.IsSub() {
		return p.Name + ": " + t.Name
	}
	return t.Name
}

// heat maps a count to one of five shades, on a square-root scale: honeypot counts are
// skewed (one discovery technique seen 5,000 times, a persistence one 3 times), and on a
// linear scale everything but the top cell would be the palest shade.
func heat(n, maxN int) int {
	if n <= 0 || maxN <= 0 {
		return 0
	}
	return max(1, int(math.Ceil(5*math.Sqrt(float64(n))/math.Sqrt(float64(maxN)))))
}

func sortCells(cs []cell) {
	slices.SortFunc(cs, func(a, b cell) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), strings.Compare(a.ID, b.ID), strings.Compare(a.Tactic, b.Tactic))
	})
}

// buckets are the timeline's bar widths, narrowest first: buildTimeline takes the narrowest
// that needs at most maxBars bars, so that an hour-long Cowrie log has a bar a minute and a
// month of logs a bar a day (a month of hourly bars is too thin to read or print).
var buckets = []struct {
	step time.Duration
	name string
}{
	{time.Minute, "minute"}, {5 * time.Minute, "5 minutes"}, {15 * time.Minute, "15 minutes"},
	{time.Hour, "hour"}, {6 * time.Hour, "6 hours"}, {24 * time.Hour, "day"}, {7 * 24 * time.Hour, "week"},
}

const maxBars = 96

// buildTimeline counts tags per bucket of time (buckets).
func buildTimeline(set *tagsource.Set) timeline {
	tl := timeline{Width: 720, Height: 120}
	first, last := set.Span()
	if len(set.Tags) == 0 || first.IsZero() {
		tl.Empty = true
		return tl
	}
	var step time.Duration
	var start time.Time
	var n int
	for _, b := range buckets {
		step, tl.Bucket = b.step, b.name
		start = first.UTC().Truncate(step)
		if n = int(last.UTC().Truncate(step).Sub(start)/step) + 1; n <= maxBars {
			break
		}
	}
	counts := make([]int, n)
	for _, t := range set.Tags {
		i := int(tagsource.Time(t).UTC().Truncate(step).Sub(start) / step)
		if i >= 0 && i < n {
			counts[i]++
		}
	}
	for _, c := range counts {
		tl.Max = max(tl.Max, c)
	}
	tl.BarWidth = float64(tl.Width) / float64(n)
	format := "2006-01-02 15:04"
	if step >= 24*time.Hour {
		format = "2006-01-02"
	}
	// 16 px above the bars for the scale, 20 below for the time labels.
	top, bottom := 16.0, float64(tl.Height-20)
	for i, c := range counts {
		h := (bottom - top) * float64(c) / float64(max(tl.Max, 1))
		tl.Bars = append(tl.Bars, bar{
			X: float64(i) * tl.BarWidth, Y: bottom - h, H: h, Count: c,
			Label: start.Add(time.Duration(i) * step).Format(format),
		})
	}
	tl.FirstLabel = tl.Bars[0].Label
	tl.LastLabel = tl.Bars[n-1].Label
	if n > 2 {
		tl.MiddleLabel = tl.Bars[n/2].Label
		tl.MiddleX = tl.Bars[n/2].X + tl.BarWidth/2
	}
	return tl
}

// buildSessions details the busiest sessions: their techniques, rules and commands. Commands
// come from the command_text evidence of command tags (one per command event) and, for tags
// of a whole session, from its "commands" evidence (the session's command list, which rules
// such as R0031 keep). A command no rule tagged is not in the tags and so not in the report.
func buildSessions(set *tagsource.Set, opts Options) ([]session, int) {
	type acc struct {
		session
		techniques map[string]*cell
		rules      map[string]bool
		commands   map[string]int // text -> index in Commands
		all        []command
	}
	by := map[string]*acc{}
	var order []string
	for _, t := range set.Tags {
		if t.SessionID == "" {
			continue
		}
		a := by[t.SessionID]
		at := tagsource.Time(t)
		if a == nil {
			a = &acc{session: session{ID: t.SessionID, First: at}, techniques: map[string]*cell{}, rules: map[string]bool{}, commands: map[string]int{}}
			by[t.SessionID] = a
			order = append(order, t.SessionID)
		}
		a.Tags++
		a.Decky = cmp.Or(a.Decky, t.DeckyID)
		if t.AttackerUUID != nil {
			a.Attacker = cmp.Or(a.Attacker, *t.AttackerUUID)
		}
		if at.Before(a.First) {
			a.First = at
		}
		if at.After(a.Last) {
			a.Last = at
		}
		id := tagsource.TechniqueID(t)
		c := a.techniques[id]
		if c == nil {
			c = &cell{ID: id, Name: techniqueName(id), Tactic: t.Tactic}
			a.techniques[id] = c
		}
		c.Count++
		a.rules[t.RuleID] = true
		for _, c := range commandsOf(t, at) {
			i, ok := a.commands[c.Text]
			if !ok {
				i = len(a.all)
				a.commands[c.Text] = i
				a.all = append(a.all, c)
			} else if c.At.Before(a.all[i].At) || c.At.Equal(a.all[i].At) && c.seq < a.all[i].seq {
				a.all[i].At, a.all[i].seq, a.all[i].fanned = c.At, c.seq, c.fanned
			}
			if !slices.Contains(a.all[i].Techniques, id) {
				a.all[i].Techniques = append(a.all[i].Techniques, id)
			}
		}
	}
	out := make([]session, 0, len(order))
	for _, id := range order {
		a := by[id]
		s := a.session
		for _, c := range a.techniques {
			s.Techniques = append(s.Techniques, *c)
		}
		sortCells(s.Techniques)
		for r := range a.rules {
			s.Rules = append(s.Rules, r)
		}
		slices.Sort(s.Rules)
		slices.SortStableFunc(a.all, func(x, y command) int { return cmp.Or(x.At.Compare(y.At), cmp.Compare(x.seq, y.seq)) })
		for i := range a.all {
			if a.all[i].fanned {
				a.all[i].Shown = time.Time{} // every command of a session event carries the session's time
			} else {
				a.all[i].Shown = a.all[i].At
			}
		}
		s.Commands = a.all[:min(len(a.all), opts.Commands)]
		s.MoreCommands = len(a.all) - len(s.Commands)
		out = append(out, s)
	}
	slices.SortStableFunc(out, func(a, b session) int {
		return cmp.Or(cmp.Compare(b.Tags, a.Tags), a.First.Compare(b.First), strings.Compare(a.ID, b.ID))
	})
	return out[:min(len(out), opts.Sessions)], len(out)
}

// commandsOf returns the commands a tag's evidence holds, each with the place it had in its
// session: a command event fanned out of a session event (source_id "S#3") or the fourth
// element of a session tag's command list both have sequence 3 at the session's time, so
// the two sources agree on the order and on which command is which.
func commandsOf(t abi.Tag, at time.Time) []command {
	var out []command
	if s, ok := t.Evidence["command_text"].(string); ok && s != "" {
		c := command{At: at, Text: s}
		if i := strings.LastIndexByte(t.SourceID, '#'); i >= 0 {
			if n, err := strconv.Atoi(t.SourceID[i+1:]); err == nil {
				c.seq, c.fanned = n, true
			}
		}
		out = append(out, c)
	}
	// "commands" is a session's whole command list; other *_commands lists (discovery_commands)
	// name programs, not command lines.
	if list, ok := t.Evidence["commands"].([]any); ok {
		for i, el := range list {
			text, _ := el.(string)
			if m, ok := el.(map[string]any); ok {
				text, _ = m["text"].(string)
			}
			if text == "" {
				continue
			}
			out = append(out, command{At: at, Text: text, seq: i, fanned: true})
		}
	}
	return out
}

func buildRules(set *tagsource.Set, opts Options) []rule {
	type acc struct {
		rule
		techniques map[string]bool
		sessions   map[string]bool
		confidence float64
	}
	by := map[string]*acc{}
	for _, t := range set.Tags {
		a := by[t.RuleID]
		at := tagsource.Time(t)
		if a == nil {
			a = &acc{rule: rule{ID: t.RuleID, Name: opts.RuleNames[t.RuleID], First: at}, techniques: map[string]bool{}, sessions: map[string]bool{}}
			by[t.RuleID] = a
		}
		a.Count++
		a.confidence += t.Confidence
		a.techniques[tagsource.TechniqueID(t)] = true
		if t.SessionID != "" {
			a.sessions[t.SessionID] = true
		}
		if at.Before(a.First) {
			a.First = at
		}
		if at.After(a.Last) {
			a.Last = at
		}
	}
	out := make([]rule, 0, len(by))
	for _, a := range by {
		r := a.rule
		for id := range a.techniques {
			r.Techniques = append(r.Techniques, id)
		}
		slices.Sort(r.Techniques)
		r.Sessions = len(a.sessions)
		r.MeanConfidence = math.Round(a.confidence/float64(r.Count)*100) / 100
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b rule) int { return cmp.Or(cmp.Compare(b.Count, a.Count), strings.Compare(a.ID, b.ID)) })
	return out
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "unknown"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

// String is for debugging a view in tests.
func (c cell) String() string { return fmt.Sprintf("%s/%s=%d", c.ID, c.Tactic, c.Count) }
