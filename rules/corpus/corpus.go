// Package corpus scores rules against labelled precision corpora (testdata/corpus/<id>.yaml):
// every rule's recall on its positives, and its precision against its own negatives and every
// other rule's positives, which count as its negatives unless the overlap is documented.
package corpus

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/decnet/ttp/abi"
	"github.com/decnet/ttp/rules"
)

// Minimum corpus sizes: a precision figure on fewer samples says nothing.
const (
	MinPositives  = 10
	MinNegatives  = 20 // negatives and lookalikes together
	MinLookalikes = 5
)

// Corpus is the labelled samples of one rule.
type Corpus struct {
	Rule       string
	Kind       string // source kind of the samples; default: the rule's first applies_to
	File       string
	Positives  []Sample
	Negatives  []Sample
	Lookalikes []Sample
}

// Sample is one labelled input: a command line (Text) or a payload, with the other rules that
// fire on it by design (Also).
type Sample struct {
	Text    string
	Payload map[string]any
	Also    []string
	Line    int
}

// Event builds the event a sample stands for.
func (s Sample) Event(kind, id string) abi.Event {
	ev := abi.Event{SourceKind: kind, SourceID: id, Payload: s.Payload}
	if s.Payload == nil {
		field := "command_text"
		if f, ok := rules.DefaultFields[kind]; ok {
			field = abi.MustParsePath(f).Key()
		}
		ev.Payload = map[string]any{field: s.Text}
	}
	return ev
}

// LoadDir reads every <id>.yaml corpus in dir.
func LoadDir(dir string) ([]*Corpus, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("corpus: %w", err)
	}
	var out []*Corpus
	var errs []error
	for _, e := range entries {
		if e.IsDir() || !rules.ValidFileName(e.Name()) {
			continue
		}
		c, err := ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, c)
	}
	return out, errors.Join(errs...)
}

// ReadFile reads one corpus file.
func ReadFile(path string) (*Corpus, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("corpus: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("corpus: %s: %w", path, err)
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("corpus: %s: want a mapping", path)
	}
	c := &Corpus{File: path}
	root := doc.Content[0]
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		var err error
		switch k.Value {
		case "rule":
			err = v.Decode(&c.Rule)
		case "kind":
			err = v.Decode(&c.Kind)
		case "positives":
			c.Positives, err = samples(v)
		case "negatives":
			c.Negatives, err = samples(v)
		case "lookalikes":
			c.Lookalikes, err = samples(v)
		default:
			err = fmt.Errorf("unknown key %q (known: rule, kind, positives, negatives, lookalikes)", k.Value)
		}
		if err != nil {
			return nil, fmt.Errorf("corpus: %s:%d: %s: %w", path, k.Line, k.Value, err)
		}
	}
	if want := strings.TrimSuffix(filepath.Base(path), ".yaml"); c.Rule != want {
		return nil, fmt.Errorf("corpus: %s: rule %q must equal the file name %s", path, c.Rule, want)
	}
	return c, nil
}

func samples(n *yaml.Node) ([]Sample, error) {
	if n.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("line %d: want a list", n.Line)
	}
	out := make([]Sample, 0, len(n.Content))
	for _, item := range n.Content {
		s := Sample{Line: item.Line}
		switch item.Kind {
		case yaml.ScalarNode:
			s.Text = item.Value
		case yaml.MappingNode:
			for i := 0; i+1 < len(item.Content); i += 2 {
				k, v := item.Content[i], item.Content[i+1]
				var err error
				switch k.Value {
				case "text":
					err = v.Decode(&s.Text)
				case "payload":
					err = v.Decode(&s.Payload)
				case "also":
					err = v.Decode(&s.Also)
				case "note":
				default:
					err = fmt.Errorf("unknown key %q (known: text, payload, also, note)", k.Value)
				}
				if err != nil {
					return nil, fmt.Errorf("line %d: %w", k.Line, err)
				}
			}
			if s.Payload != nil {
				s.Payload = jsonShape(s.Payload).(map[string]any)
			}
		default:
			return nil, fmt.Errorf("line %d: want a string or a mapping", item.Line)
		}
		out = append(out, s)
	}
	return out, nil
}

// jsonShape turns YAML-decoded values into the shapes JSON decoding gives (float64 numbers),
// so a corpus payload reaches the rules exactly as a bus event would.
func jsonShape(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = jsonShape(e)
		}
		return x
	case []any:
		for i, e := range x {
			x[i] = jsonShape(e)
		}
		return x
	case int:
		return float64(x)
	case int64:
		return float64(x)
	case uint64:
		return float64(x)
	}
	return v
}

// Evaluator returns the ids of the rules that fire on ev, through the same path production
// uses (the Dispatcher: built-in engine and plugins).
type Evaluator func(ctx context.Context, ev abi.Event) (map[string]bool, error)

// Score is one rule's result.
type Score struct {
	Rule       string
	Band       string // H or M
	Positives  int    // samples the rule must fire on (its own and documented overlaps)
	Negatives  int    // samples it must not fire on
	TP, FP, FN int
	Precision  float64
	Recall     float64
	Failures   []string // why the rule fails; empty when it passes
}

// Pass reports whether the rule holds its band.
func (s Score) Pass() bool { return len(s.Failures) == 0 }

// Bands: the precision an H or M rule must hold, and the recall every rule must hold.
const (
	BandH     = 0.95
	BandM     = 0.80
	MinRecall = 0.90
)

// Run evaluates every sample once and scores every rule of set. A rule without a corpus
// fails; a corpus for an unknown rule is an error.
func Run(ctx context.Context, set []*rules.Rule, corpora []*Corpus, eval Evaluator) ([]Score, error) {
	byID := map[string]*rules.Rule{}
	for _, r := range set {
		byID[r.ID] = r
	}
	var results []sampleResult
	for _, c := range corpora {
		var err error
		if results, err = evaluate(ctx, c, byID, eval, results); err != nil {
			return nil, err
		}
	}
	have := map[string]*Corpus{}
	for _, c := range corpora {
		have[c.Rule] = c
	}
	var scores []Score
	for _, r := range set {
		s := Score{Rule: r.ID, Band: r.Precision}
		c := have[r.ID]
		if c == nil {
			s.Failures = append(s.Failures, "no corpus")
			scores = append(scores, s)
			continue
		}
		s.count(r.ID, results)
		s.judge(r, c)
		scores = append(scores, s)
	}
	sort.Slice(scores, func(i, j int) bool { return scores[i].Rule < scores[j].Rule })
	return scores, nil
}

// sampleResult is which rules fired on one sample of a corpus.
type sampleResult struct {
	corpus *Corpus
	sample Sample
	own    string // "pos", "neg"
	fired  map[string]bool
}

// evaluate runs every sample of corpus c through eval, appending the results.
func evaluate(ctx context.Context, c *Corpus, byID map[string]*rules.Rule, eval Evaluator, results []sampleResult) ([]sampleResult, error) {
	r, ok := byID[c.Rule]
	if !ok {
		return nil, fmt.Errorf("corpus: %s: no rule %s", c.File, c.Rule)
	}
	kind := c.Kind
	if kind == "" && len(r.AppliesTo) > 0 {
		kind = r.AppliesTo[0]
	}
	for _, l := range []struct {
		list     []Sample
		own, tag string
	}{{c.Positives, "pos", "p"}, {c.Negatives, "neg", "n"}, {c.Lookalikes, "neg", "l"}} {
		for i, s := range l.list {
			for _, a := range s.Also {
				if _, ok := byID[a]; !ok {
					return nil, fmt.Errorf("corpus: %s:%d: also names unknown rule %s", c.File, s.Line, a)
				}
			}
			fired, err := eval(ctx, s.Event(kind, fmt.Sprintf("corpus:%s:%s%d", c.Rule, l.tag, i)))
			if err != nil {
				return nil, fmt.Errorf("corpus: %s:%d: %w", c.File, s.Line, err)
			}
			results = append(results, sampleResult{corpus: c, sample: s, own: l.own, fired: fired})
		}
	}
	return results, nil
}

// count scores rule id over every sample: its own corpus's, and the other corpora's
// positives, where it is expected to fire only when the sample names it in also.
func (s *Score) count(id string, results []sampleResult) {
	for _, res := range results {
		mine := res.corpus.Rule == id
		expected := (mine && res.own == "pos") || (res.own == "pos" && contains(res.sample.Also, id))
		fired := res.fired[id]
		switch {
		case expected && fired:
			s.TP++
		case expected && !fired:
			s.FN++
			if !mine {
				s.Failures = append(s.Failures, fmt.Sprintf("%s:%d: documented overlap did not fire: %s", res.corpus.File, res.sample.Line, label(res.sample)))
			}
		case fired && (mine || res.own == "pos"):
			s.FP++
		}
		if expected {
			s.Positives++
		} else if mine || res.own == "pos" {
			s.Negatives++
		}
	}
}

// judge computes precision and recall and records each way rule r or its corpus c falls
// short: precision below its band, recall below MinRecall, too few samples of a sort.
func (s *Score) judge(r *rules.Rule, c *Corpus) {
	s.Precision, s.Recall = 1, 0
	if s.TP+s.FP > 0 {
		s.Precision = float64(s.TP) / float64(s.TP+s.FP)
	}
	if s.TP+s.FN > 0 {
		s.Recall = float64(s.TP) / float64(s.TP+s.FN)
	}
	band := BandM
	if r.Precision == "H" {
		band = BandH
	}
	if s.Precision < band {
		s.Failures = append(s.Failures, fmt.Sprintf("precision %.3f below band %s (%.2f)", s.Precision, r.Precision, band))
	}
	if s.Recall < MinRecall {
		s.Failures = append(s.Failures, fmt.Sprintf("recall %.3f below %.2f", s.Recall, MinRecall))
	}
	if len(c.Positives) < MinPositives {
		s.Failures = append(s.Failures, fmt.Sprintf("%d positives, want at least %d", len(c.Positives), MinPositives))
	}
	if len(c.Negatives)+len(c.Lookalikes) < MinNegatives {
		s.Failures = append(s.Failures, fmt.Sprintf("%d negatives, want at least %d", len(c.Negatives)+len(c.Lookalikes), MinNegatives))
	}
	if len(c.Lookalikes) < MinLookalikes {
		s.Failures = append(s.Failures, fmt.Sprintf("%d lookalikes, want at least %d", len(c.Lookalikes), MinLookalikes))
	}
}

// Misfires lists, for a rule, the samples it got wrong (for the report's detail lines).
func Misfires(ctx context.Context, r *rules.Rule, corpora []*Corpus, eval Evaluator) ([]string, error) {
	var out []string
	for _, c := range corpora {
		kind := c.Kind
		if kind == "" && len(r.AppliesTo) > 0 {
			kind = r.AppliesTo[0]
		}
		check := func(list []Sample, pos bool) error {
			for _, s := range list {
				mine := c.Rule == r.ID
				want := (mine && pos) || (pos && contains(s.Also, r.ID))
				if !mine && !pos {
					continue
				}
				fired, err := eval(ctx, s.Event(kind, "corpus:misfire"))
				if err != nil {
					return err
				}
				if fired[r.ID] != want {
					verdict := "missed"
					if !want {
						verdict = "false positive"
					}
					out = append(out, fmt.Sprintf("%s:%d: %s: %s", c.File, s.Line, verdict, label(s)))
				}
			}
			return nil
		}
		if err := check(c.Positives, true); err != nil {
			return nil, err
		}
		if err := check(c.Negatives, false); err != nil {
			return nil, err
		}
		if err := check(c.Lookalikes, false); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func label(s Sample) string {
	if s.Text != "" {
		return s.Text
	}
	return fmt.Sprint(s.Payload)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
