// Package navigator turns tags into an ATT&CK Navigator layer, the file most readers of
// ATT&CK results open first (https://mitre-attack.github.io/attack-navigator/, "Open Existing
// Layer"). The format is the Navigator's layer format 4.5, as its repository defines it in
// layers/spec/v4.5/layerformat.md (mitre-attack/attack-navigator).
//
// A layer has one entry per technique and tactic seen: a technique that serves two tactics
// (T1053.003 is persistence, execution and privilege escalation) is scored under the tactic
// the rule named, not under all three, because that is what the honeypot saw it do.
package navigator

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/decnet/ttp/rules/attack"
	"github.com/decnet/ttp/tagsource"
)

// The versions a layer states. The Navigator upgrades or refuses a layer by them, and shows
// the techniques of the ATT&CK release named in Versions.Attack.
const (
	// LayerVersion is the layer format written (layers/spec/v4.5).
	LayerVersion = "4.5"
	// NavigatorVersion is the Navigator release the format was checked against; the spec
	// asks for at least 4.9.0 with layer format 4.5.
	NavigatorVersion = "5.1.0"
	// Domain is the only ATT&CK domain ttp tags.
	Domain = "enterprise-attack"
)

// AttackVersion is the ATT&CK major version of the embedded technique table ("18" for
// v18.1), the form the Navigator's versions.attack takes.
var AttackVersion = strings.TrimPrefix(strings.SplitN(attack.Version, ".", 2)[0], "v")

// Score says what a technique's number in the layer is.
type Score string

const (
	// ScoreCount scores each technique and tactic by its number of tags: how often it was
	// seen, the default.
	ScoreCount Score = "count"
	// ScoreConfidence scores by the sum of the tags' confidence, so that a hundred weak
	// guesses do not outweigh twenty certain ones.
	ScoreConfidence Score = "confidence"
)

// ParseScore reads a --score value.
func ParseScore(s string) (Score, error) {
	switch Score(s) {
	case ScoreCount, ScoreConfidence:
		return Score(s), nil
	}
	return "", fmt.Errorf("score %q: want count or confidence", s)
}

// Layer is one Navigator layer (layer format 4.5). Only the fields ttp sets are declared;
// the Navigator's defaults apply to the rest.
type Layer struct {
	// Name is the layer's tab title in the Navigator (required).
	Name string `json:"name"`
	// Versions says which ATT&CK, Navigator and layer format the layer was made for.
	Versions Versions `json:"versions"`
	// Domain is always "enterprise-attack" (required).
	Domain string `json:"domain"`
	// Description says what the scores mean and the time range.
	Description string `json:"description"`
	// Sorting 3 orders each tactic's techniques by descending score.
	Sorting int `json:"sorting"`
	// Layout shows ids and names and sums sub-technique scores into their parents.
	Layout Layout `json:"layout"`
	// HideDisabled is false: ttp disables nothing.
	HideDisabled bool `json:"hideDisabled"`
	// Techniques are the entries, one per technique and tactic tagged, highest score first.
	Techniques []Technique `json:"techniques"`
	// Gradient colours the scores from 0 to the highest one.
	Gradient Gradient `json:"gradient"`
	// LegendItems explain the two ends of the gradient.
	LegendItems []LegendItem `json:"legendItems,omitempty"`
	// Metadata carries the source, sensors, time range and input counts.
	Metadata []Metadata `json:"metadata,omitempty"`
	// SelectTechniquesAcrossTactics is false because each entry is one technique under one
	// tactic: selecting T1053.003 under persistence should not select it under execution.
	SelectTechniquesAcrossTactics bool `json:"selectTechniquesAcrossTactics"`
	// SelectSubtechniquesWithParent is false for the same reason: a parent and its
	// sub-techniques are separate observations.
	SelectSubtechniquesWithParent bool `json:"selectSubtechniquesWithParent"`
}

// Versions is the layer's versions object.
type Versions struct {
	Attack    string `json:"attack"`    // ATT&CK major version, AttackVersion
	Navigator string `json:"navigator"` // NavigatorVersion
	Layer     string `json:"layer"`     // LayerVersion
}

// Layout is the layer's layout object. Sub-techniques are where honeypot activity lands
// (T1059.004, T1053.003), so they are expanded when annotated and their scores summed into
// the parent's.
type Layout struct {
	Layout                string `json:"layout"`                // "side": tactic columns
	ShowID                bool   `json:"showID"`                // ids beside names
	ShowName              bool   `json:"showName"`              // names shown
	ShowAggregateScores   bool   `json:"showAggregateScores"`   // parents show their sub-techniques' sum
	CountUnscored         bool   `json:"countUnscored"`         // unscored sub-techniques do not dilute it
	AggregateFunction     string `json:"aggregateFunction"`     // "sum"
	ExpandedSubtechniques string `json:"expandedSubtechniques"` // "annotated": open where tagged
}

// Technique is one technique (or sub-technique) under one tactic.
type Technique struct {
	// TechniqueID is "T1082", or "T1059.004" for a sub-technique: the tag's
	// sub_technique_id when it has one, else its technique_id.
	TechniqueID string `json:"techniqueID"`
	// Tactic is the tactic's shortname ("credential-access"), the tag's tactic.
	Tactic string `json:"tactic"`
	// Score is the number of tags, or their summed confidence (Options.Score).
	Score float64 `json:"score"`
	// Comment names the top rules and sessions behind the score.
	Comment string `json:"comment"`
	// Enabled is always true.
	Enabled bool `json:"enabled"`
	// Metadata holds the numbers behind the score (tags, summed confidence, first and last
	// seen), shown in the Navigator's tooltip.
	Metadata []Metadata `json:"metadata,omitempty"`
	// ShowSubtechniques is false: Layout.ExpandedSubtechniques opens the tagged ones.
	ShowSubtechniques bool `json:"showSubtechniques"`
}

// Gradient is the layer's colour scale, from minValue to maxValue.
type Gradient struct {
	Colors   []string `json:"colors"`   // #rrggbb, low to high, at least two
	MinValue float64  `json:"minValue"` // 0
	MaxValue float64  `json:"maxValue"` // the highest score, at least 1 (must exceed MinValue)
}

// LegendItem is one entry of the layer's legend.
type LegendItem struct {
	Label string `json:"label"` // what the colour stands for
	Color string `json:"color"` // #rrggbb
}

// Metadata is one name and value pair, or a divider when Divider is set.
type Metadata struct {
	Name    string `json:"name,omitempty"`    // "sensors"
	Value   string `json:"value,omitempty"`   // "ssh-fra-01, ssh-ams-02"
	Divider bool   `json:"divider,omitempty"` // a separator line instead of a pair
}

// gradient runs from a pale to a dark red: a reader's eye goes to the techniques seen most,
// and it stays legible printed in grey.
var gradient = []string{"#fee5d9", "#fb6a4a", "#a50f15"}

// Options say how Build scores and annotates a layer. The zero value scores by count and
// names rules by id alone.
type Options struct {
	// Score is ScoreCount (the default when empty) or ScoreConfidence.
	Score Score
	// Name is the layer's name; empty means one made from the sensors.
	Name string
	// RuleNames maps rule ids to their names (from the rule files) for the comments; a rule
	// not in it is named by its id.
	RuleNames map[string]string
	// Top is how many rules and sessions a technique's comment names (default 3).
	Top int
}

// Build makes the layer of a set of tags. Tags whose technique is not in the embedded
// ATT&CK table, or whose tactic is not one of the technique's, cannot be placed in the
// Navigator's matrix; they are left out and counted in the layer's metadata ("not shown"),
// never silently.
func Build(set *tagsource.Set, opts Options) *Layer {
	if opts.Score == "" {
		opts.Score = ScoreCount
	}
	if opts.Top <= 0 {
		opts.Top = 3
	}
	cells, skipped := aggregate(set)
	l := &Layer{
		Name:     opts.Name,
		Versions: Versions{Attack: AttackVersion, Navigator: NavigatorVersion, Layer: LayerVersion},
		Domain:   Domain,
		Sorting:  3, // descending by score: what was seen most comes first in each tactic
		Layout: Layout{Layout: "side", ShowID: true, ShowName: true, ShowAggregateScores: true,
			AggregateFunction: "sum", ExpandedSubtechniques: "annotated"},
		Techniques: []Technique{},
	}
	maxScore := l.addTechniques(cells, opts)
	// maxValue must be above minValue; a layer of one tag still gets a scale.
	l.Gradient = Gradient{Colors: gradient, MinValue: 0, MaxValue: max(maxScore, 1)}
	unit := "tags"
	if opts.Score == ScoreConfidence {
		unit = "summed confidence"
	}
	l.LegendItems = []LegendItem{
		{Label: "low " + unit, Color: gradient[0]},
		{Label: fmt.Sprintf("%s %s (highest)", strconv.FormatFloat(l.Gradient.MaxValue, 'f', -1, 64), unit), Color: gradient[2]},
	}
	l.describe(set, opts, unit, skipped)
	return l
}

// cell is one technique under one tactic of the layer.
type cell struct{ id, tactic string }

// cellTags sums the tags of one cell.
type cellTags struct {
	tags        int
	confidence  float64
	first, last time.Time
	rules       map[string]int
	sessions    map[string]int
}

// aggregate sums set's tags by cell; skipped counts the tags whose technique and tactic are
// not a pair of the bundled ATT&CK.
func aggregate(set *tagsource.Set) (cells map[cell]*cellTags, skipped int) {
	cells = map[cell]*cellTags{}
	for _, t := range set.Tags {
		id := tagsource.TechniqueID(t)
		if tech, ok := attack.Lookup(id); !ok || !tech.HasTactic(t.Tactic) {
			skipped++
			continue
		}
		k := cell{id, t.Tactic}
		a := cells[k]
		if a == nil {
			a = &cellTags{rules: map[string]int{}, sessions: map[string]int{}}
			cells[k] = a
		}
		at := tagsource.Time(t)
		if a.tags == 0 || at.Before(a.first) {
			a.first = at
		}
		if at.After(a.last) {
			a.last = at
		}
		a.tags++
		a.confidence += t.Confidence
		a.rules[t.RuleID]++
		if t.SessionID != "" {
			a.sessions[t.SessionID]++
		}
	}
	return cells, skipped
}

// addTechniques adds a scored technique per cell, highest score first, and returns the
// highest score.
func (l *Layer) addTechniques(cells map[cell]*cellTags, opts Options) (maxScore float64) {
	for k, a := range cells {
		score := float64(a.tags)
		if opts.Score == ScoreConfidence {
			score = round(a.confidence)
		}
		maxScore = max(maxScore, score)
		l.Techniques = append(l.Techniques, Technique{
			TechniqueID: k.id,
			Tactic:      k.tactic,
			Score:       score,
			Comment:     comment(a.tags, a.rules, a.sessions, opts),
			Enabled:     true,
			Metadata: []Metadata{
				{Name: "tags", Value: strconv.Itoa(a.tags)},
				{Name: "confidence (sum)", Value: strconv.FormatFloat(round(a.confidence), 'f', -1, 64)},
				{Name: "first seen", Value: stamp(a.first)},
				{Name: "last seen", Value: stamp(a.last)},
			},
		})
	}
	slices.SortFunc(l.Techniques, func(a, b Technique) int {
		return cmp.Or(cmp.Compare(b.Score, a.Score), strings.Compare(a.TechniqueID, b.TechniqueID), strings.Compare(a.Tactic, b.Tactic))
	})
	return maxScore
}

// describe names the layer (when opts did not) and writes its description and metadata:
// where the tags come from, their span, and what was left out.
func (l *Layer) describe(set *tagsource.Set, opts Options, unit string, skipped int) {
	first, last := set.Span()
	sensors := set.Sensors()
	if l.Name == "" {
		l.Name = "ttp: " + cmp.Or(strings.Join(sensors, ", "), "honeypot activity")
		if len(l.Name) > 80 {
			l.Name = fmt.Sprintf("ttp: %d sensors", len(sensors))
		}
	}
	l.Description = fmt.Sprintf("ATT&CK techniques tagged by ttp in %d tags, %s to %s. Score: %s per technique and tactic.",
		len(set.Tags)-skipped, stamp(first), stamp(last), unit)
	l.Metadata = []Metadata{
		{Name: "source", Value: cmp.Or(set.Source, "unknown")},
		{Name: "sensors", Value: cmp.Or(strings.Join(sensors, ", "), "unknown")},
		{Name: "first event", Value: stamp(first)},
		{Name: "last event", Value: stamp(last)},
		{Name: "tags", Value: strconv.Itoa(len(set.Tags) - skipped)},
		{Name: "score", Value: string(opts.Score)},
	}
	if skipped > 0 {
		l.Metadata = append(l.Metadata, Metadata{Name: "not shown", Value: fmt.Sprintf("%d tags whose technique and tactic are not in ATT&CK v%s", skipped, AttackVersion)})
	}
	if c := set.Ingest; c != nil {
		l.Metadata = append(l.Metadata, Metadata{Divider: true},
			Metadata{Name: "input", Value: strings.TrimSpace(cmp.Or(c.Input, "unknown") + " " + strings.Join(c.Files, ", "))},
			Metadata{Name: "lines read", Value: strconv.FormatInt(c.Lines, 10)},
			Metadata{Name: "events", Value: strconv.FormatInt(c.Events, 10)},
			Metadata{Name: "skipped", Value: strconv.FormatInt(c.Skipped, 10)},
			Metadata{Name: "malformed", Value: strconv.FormatInt(c.Malformed, 10)},
		)
	}
}

// comment names the rules and sessions behind a technique, most frequent first, so that a
// reader of the Navigator's tooltip knows where to look next.
func comment(tags int, rules, sessions map[string]int, opts Options) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d tags. Rules: ", tags)
	for i, r := range top(rules, opts.Top) {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(r.name)
		if n := opts.RuleNames[r.name]; n != "" {
			b.WriteString(" " + n)
		}
		fmt.Fprintf(&b, " (%d)", r.n)
	}
	if more := len(rules) - opts.Top; more > 0 {
		fmt.Fprintf(&b, " and %d more", more)
	}
	b.WriteString(".")
	if len(sessions) > 0 {
		b.WriteString(" Sessions: ")
		for i, s := range top(sessions, opts.Top) {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%s (%d)", s.name, s.n)
		}
		if more := len(sessions) - opts.Top; more > 0 {
			fmt.Fprintf(&b, " and %d more", more)
		}
		b.WriteString(".")
	}
	return b.String()
}

type counted struct {
	name string
	n    int
}

// top returns the n most frequent keys, ties broken by name so output is reproducible.
func top(m map[string]int, n int) []counted {
	out := make([]counted, 0, len(m))
	for k, v := range m {
		out = append(out, counted{k, v})
	}
	slices.SortFunc(out, func(a, b counted) int { return cmp.Or(cmp.Compare(b.n, a.n), strings.Compare(a.name, b.name)) })
	return out[:min(n, len(out))]
}

// round keeps three decimals: a sum of float confidences otherwise prints as 2.4000000000000004.
func round(f float64) float64 { return math.Round(f*1000) / 1000 }

func stamp(t time.Time) string {
	if t.IsZero() {
		return "unknown"
	}
	return t.UTC().Format(time.RFC3339)
}

// Write writes the layer as indented JSON, the form the Navigator opens and a reviewer can
// diff.
func Write(w io.Writer, l *Layer) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(l)
}

// Validate checks what the Navigator needs of a layer and what ttp promises of one: the
// required fields and versions, every technique a current ATT&CK id placed under one of its
// own tactics (by shortname), at most one entry per technique and tactic, scores within the
// gradient, a gradient of at least two colours with maxValue above minValue, and a name and
// value on every metadata entry that is not a divider. Tests run it
// on every layer they build; a user can run it on a layer edited by hand.
func Validate(l *Layer) error {
	var errs []string
	bad := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	if l.Name == "" {
		bad("name is empty")
	}
	if l.Domain != Domain {
		bad("domain %q, want %q", l.Domain, Domain)
	}
	if l.Versions.Layer != LayerVersion {
		bad("versions.layer %q, want %q", l.Versions.Layer, LayerVersion)
	}
	if l.Versions.Navigator == "" {
		bad("versions.navigator is empty")
	}
	if l.Versions.Attack == "" {
		bad("versions.attack is empty")
	}
	if len(l.Gradient.Colors) < 2 {
		bad("gradient has %d colours, want at least 2", len(l.Gradient.Colors))
	}
	if !(l.Gradient.MaxValue > l.Gradient.MinValue) {
		bad("gradient maxValue %v is not above minValue %v", l.Gradient.MaxValue, l.Gradient.MinValue)
	}
	for _, c := range append(slices.Clone(l.Gradient.Colors), func() (cs []string) {
		for _, li := range l.LegendItems {
			cs = append(cs, li.Color)
		}
		return cs
	}()...) {
		if !isColor(c) {
			bad("colour %q is not #rrggbb", c)
		}
	}
	checkMeta := func(where string, ms []Metadata) {
		for i, m := range ms {
			if !m.Divider && (m.Name == "" || m.Value == "") {
				bad("%smetadata[%d]: name and value are required (%q: %q)", where, i, m.Name, m.Value)
			}
		}
	}
	checkMeta("", l.Metadata)
	seen := map[[2]string]bool{}
	for i, t := range l.Techniques {
		checkMeta(fmt.Sprintf("techniques[%d].", i), t.Metadata)
		tech, ok := attack.Lookup(t.TechniqueID)
		switch {
		case !ok:
			bad("techniques[%d]: %q is not an ATT&CK %s technique", i, t.TechniqueID, attack.Version)
		case tech.Deprecated:
			bad("techniques[%d]: %s is deprecated or revoked", i, t.TechniqueID)
		case !attack.IsTactic(t.Tactic):
			bad("techniques[%d]: tactic %q is not an Enterprise tactic shortname", i, t.Tactic)
		case !tech.HasTactic(t.Tactic):
			bad("techniques[%d]: %s does not serve tactic %q (it serves %s)", i, t.TechniqueID, t.Tactic, strings.Join(tech.Tactics, ", "))
		}
		k := [2]string{t.TechniqueID, t.Tactic}
		if seen[k] {
			bad("techniques[%d]: a second entry for %s under %s", i, t.TechniqueID, t.Tactic)
		}
		seen[k] = true
		if t.Score < l.Gradient.MinValue || t.Score > l.Gradient.MaxValue {
			bad("techniques[%d]: score %v outside the gradient [%v, %v]", i, t.Score, l.Gradient.MinValue, l.Gradient.MaxValue)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("navigator: invalid layer: %s", strings.Join(errs, "; "))
	}
	return nil
}

func isColor(s string) bool {
	if len(s) != 7 || s[0] != '#' {
		return false
	}
	for _, c := range s[1:] {
		if !strings.ContainsRune("0123456789abcdefABCDEF", c) {
			return false
		}
	}
	return true
}
