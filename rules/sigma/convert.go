package sigma

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// License is what a converted rule and the attribution file say of the source rules' terms.
const License = "Detection Rule License (DRL) 1.1, https://github.com/SigmaHQ/Detection-Rule-License"

// Convert writes r as a ttp rule file with the given id (R followed by four digits). The
// detection is kept verbatim under `match: {kind: sigma}`, so an analyst reads the rule as
// its author wrote it and the engine compiles the same text; the attribution the DRL asks
// for (title, id, author, license) heads the file and ends the description.
func Convert(r *Rule, id string) ([]byte, error) {
	if r == nil || r.detection == nil || len(r.Emits) == 0 {
		return nil, errors.New("sigma: Convert needs a rule from Decode")
	}
	conf := Levels[r.Level]
	desc := strings.TrimSpace(r.Description)
	if desc == "" {
		desc = r.Title + "."
	}
	var b strings.Builder
	b.WriteString(desc)
	fmt.Fprintf(&b, "\n\nSigma rule %s %q", r.ID, r.Title)
	if r.Author != "" {
		fmt.Fprintf(&b, " by %s", r.Author)
	}
	fmt.Fprintf(&b, ", level %s", r.Level)
	if r.Status != "" {
		fmt.Fprintf(&b, ", status %s", r.Status)
	}
	fmt.Fprintf(&b, "; %s.", License)
	if r.URL != "" {
		fmt.Fprintf(&b, "\nSource: %s", r.URL)
	}
	if len(r.FalsePositives) > 0 {
		fmt.Fprintf(&b, "\nFalse positives (Sigma): %s.", strings.Join(r.FalsePositives, "; "))
	}
	emits := seq(true)
	for _, e := range r.Emits {
		m := mapping(true)
		add(m, "technique_id", scalar(e.TechniqueID))
		if e.SubTechniqueID != "" {
			add(m, "sub_technique_id", scalar(e.SubTechniqueID))
		}
		add(m, "tactic", scalar(e.Tactic))
		add(m, "confidence", &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!float", Value: strconv.FormatFloat(conf, 'f', -1, 64)})
		emits.Content = append(emits.Content, m)
	}
	match := mapping(false)
	add(match, "kind", scalar("sigma"))
	add(match, "sigma_id", scalar(r.ID))
	if r.Author != "" {
		add(match, "author", scalar(r.Author))
	}
	add(match, "detection", r.detection)
	root := mapping(false)
	root.HeadComment = fmt.Sprintf("Converted by `ttp rules import-sigma` from %s; re-run the import rather than edit.\nSigma rule %q, id %s, author %s.\nLicense: %s.", oneLine(filepath.ToSlash(r.File)), oneLine(r.Title), r.ID, oneLine(orUnknown(r.Author)), License)
	if len(r.Dropped) > 0 {
		root.HeadComment += "\nTags left out (not current in ttp's ATT&CK table): " + strings.Join(r.Dropped, ", ") + "."
	}
	if len(r.Mapped) > 0 {
		root.HeadComment += "\nATT&CK v19 tags emitted as their v18.1 ids: " + strings.Join(r.Mapped, ", ") + "."
	}
	add(root, "id", scalar(id))
	add(root, "name", scalar(r.Title))
	add(root, "description", &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Style: yaml.LiteralStyle, Value: b.String() + "\n"})
	applies := seq(true)
	applies.Content = append(applies.Content, scalar("command"))
	add(root, "applies_to", applies)
	add(root, "match", match)
	add(root, "emits", emits)
	add(root, "precision", scalar(Precision(r.Level)))
	ev := seq(true)
	// the DRL 1.1: messages based on a rule's matches keep its author (rules/sigmakind.go)
	ev.Content = append(ev.Content, scalar("command_text"), scalar("sigma_id"))
	if r.Author != "" {
		ev.Content = append(ev.Content, scalar("sigma_author"))
	}
	add(root, "evidence_fields", ev)
	var out bytes.Buffer
	enc := yaml.NewEncoder(&out)
	enc.SetIndent(2)
	if err := enc.Encode(&yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{root}}); err != nil {
		return nil, fmt.Errorf("sigma: %s: %w", r.File, err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("sigma: %s: %w", r.File, err)
	}
	if out.Len() > maxRuleFile {
		return nil, fmt.Errorf("sigma: %s: converted rule is %d bytes, a rule file holds at most %d", r.File, out.Len(), maxRuleFile)
	}
	return out.Bytes(), nil
}

// maxRuleFile is rules.MaxFileSize, which this package cannot import.
const maxRuleFile = 64 << 10

// oneLine keeps a value on one comment line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

func scalar(s string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s} }

func mapping(flow bool) *yaml.Node {
	n := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	if flow {
		n.Style = yaml.FlowStyle
	}
	return n
}

func seq(flow bool) *yaml.Node {
	n := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
	if flow {
		n.Style = yaml.FlowStyle
	}
	return n
}

func add(m *yaml.Node, k string, v *yaml.Node) { m.Content = append(m.Content, scalar(k), v) }

// Options steer Import.
type Options struct {
	// FirstID is the number of the first new rule id (R5000 when zero). A Sigma rule already
	// converted into the output directory keeps its id, found by its sigma_id.
	FirstID int
	// SourceURL, when set, is the base URI of the source tree: each converted rule links
	// SourceURL/<path> (the DRL asks for a link to the rule where practicable).
	SourceURL string
	// Validate, when set, checks each converted file (the caller passes the rule linter, which
	// this package cannot import); a file it rejects is skipped with its error.
	Validate func(name string, data []byte) error
}

// Converted is one rule Import wrote.
type Converted struct {
	File, URL, ID, SigmaID, Title, Author string
}

// Report is what Import did: every rule file read is either converted or skipped, with its
// reason, so that nothing is dropped silently.
type Report struct {
	Read      int
	Converted []Converted
	Skipped   []*Error
	// Stale lists converted files already in the output directory whose Sigma rule this run
	// did not convert (gone from DIR, or no longer convertible). Import never deletes them:
	// the operator decides.
	Stale []string
}

// Reasons counts the skipped rules by Error.Reason.
func (r *Report) Reasons() map[string]int {
	out := map[string]int{}
	for _, e := range r.Skipped {
		out[e.Reason]++
	}
	return out
}

// Summary is the report's last line and the grouped reasons, most frequent first.
func (r *Report) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d Sigma rules read, %d converted, %d skipped", r.Read, len(r.Converted), len(r.Skipped))
	if len(r.Stale) > 0 {
		fmt.Fprintf(&b, ", %d stale file(s) left in place", len(r.Stale))
	}
	b.WriteByte('\n')
	type kv struct {
		k string
		n int
	}
	var l []kv
	for k, n := range r.Reasons() {
		l = append(l, kv{k, n})
	}
	sort.Slice(l, func(i, j int) bool { return l[i].n > l[j].n || l[i].n == l[j].n && l[i].k < l[j].k })
	for _, x := range l {
		fmt.Fprintf(&b, "  %4d  %s\n", x.n, x.k)
	}
	return b.String()
}

var ruleFileRE = regexp.MustCompile(`^R([0-9]{4})\.yaml$`)

// Import converts every *.yml / *.yaml Sigma rule under src (recursively, in path order) into
// out/R<NNNN>.yaml and writes out/ATTRIBUTION.md, the notice the DRL asks for. Ids are
// stable across runs: a rule whose sigma_id already has a file in out keeps that file's id.
func Import(src, out string, opt Options) (*Report, error) {
	if opt.FirstID == 0 {
		opt.FirstID = 5000
	}
	var files []string
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && (strings.HasSuffix(p, ".yml") || strings.HasSuffix(p, ".yaml")) {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sigma: %w", err)
	}
	sort.Strings(files)
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, fmt.Errorf("sigma: %w", err)
	}
	ids, used, prev, err := existingIDs(out)
	if err != nil {
		return nil, err
	}
	next := opt.FirstID
	rep := &Report{}
	seen := map[string]string{}
	for _, p := range files {
		rep.Read++
		rel, _ := filepath.Rel(src, p)
		data, err := os.ReadFile(p)
		if err != nil {
			rep.Skipped = append(rep.Skipped, &Error{File: rel, Reason: "unreadable", Err: err})
			continue
		}
		r, err := Decode(rel, data)
		if err != nil {
			var se *Error
			if !errors.As(err, &se) {
				se = &Error{File: rel, Reason: "other", Err: err}
			}
			rep.Skipped = append(rep.Skipped, se)
			continue
		}
		if prev, dup := seen[r.ID]; dup {
			rep.Skipped = append(rep.Skipped, &Error{File: rel, Field: "id", Reason: "duplicate Sigma id", Err: fmt.Errorf("%w: id %s also in %s", ErrInvalid, r.ID, prev)})
			continue
		}
		seen[r.ID] = rel
		id, ok := ids[r.ID]
		if !ok {
			for used[next] {
				next++
			}
			if next > 9999 {
				rep.Skipped = append(rep.Skipped, &Error{File: rel, Reason: "no free rule id", Err: fmt.Errorf("%w: ids up to R9999 are taken", ErrUnsupported)})
				continue
			}
			id = fmt.Sprintf("R%04d", next)
			used[next] = true
		}
		if opt.SourceURL != "" {
			r.URL = strings.TrimSuffix(opt.SourceURL, "/") + "/" + filepath.ToSlash(rel)
		}
		text, err := Convert(r, id)
		if err == nil && opt.Validate != nil {
			err = opt.Validate(id+".yaml", text)
		}
		if err != nil {
			rep.Skipped = append(rep.Skipped, &Error{File: rel, Reason: "converted rule does not lint", Err: err})
			continue
		}
		if err := os.WriteFile(filepath.Join(out, id+".yaml"), text, 0o644); err != nil {
			return rep, fmt.Errorf("sigma: %w", err)
		}
		rep.Converted = append(rep.Converted, Converted{File: rel, URL: r.URL, ID: id, SigmaID: r.ID, Title: r.Title, Author: r.Author})
	}
	done := map[string]bool{}
	for _, c := range rep.Converted {
		done[c.SigmaID] = true
	}
	var kept []Converted // stale files stay in out, so their attribution stays too
	for sid, id := range ids {
		if !done[sid] {
			rep.Stale = append(rep.Stale, fmt.Sprintf("%s.yaml (Sigma %s)", id, sid))
			kept = append(kept, prev[sid])
		}
	}
	sort.Strings(rep.Stale)
	sort.Slice(kept, func(i, j int) bool { return kept[i].ID < kept[j].ID })
	if err := os.WriteFile(filepath.Join(out, "ATTRIBUTION.md"), attribution(append(append([]Converted(nil), rep.Converted...), kept...)), 0o644); err != nil {
		return rep, fmt.Errorf("sigma: %w", err)
	}
	return rep, nil
}

// existingIDs maps the sigma_id of each converted rule already in dir to its rule id, and
// returns the rule numbers in use and what each file says of its Sigma rule.
func existingIDs(dir string) (map[string]string, map[int]bool, map[string]Converted, error) {
	ids := map[string]string{}
	prev := map[string]Converted{}
	used := map[int]bool{}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("sigma: %w", err)
	}
	for _, e := range entries {
		m := ruleFileRE.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		n, _ := strconv.Atoi(m[1])
		used[n] = true
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, nil, nil, fmt.Errorf("sigma: %w", err)
		}
		var doc struct {
			Name  string `yaml:"name"`
			Match struct {
				SigmaID string `yaml:"sigma_id"`
				Author  string `yaml:"author"`
			} `yaml:"match"`
		}
		if yaml.Unmarshal(data, &doc) == nil && doc.Match.SigmaID != "" {
			ids[doc.Match.SigmaID] = "R" + m[1]
			prev[doc.Match.SigmaID] = Converted{File: "(earlier import)", ID: "R" + m[1], SigmaID: doc.Match.SigmaID, Title: doc.Name, Author: doc.Match.Author}
		}
	}
	return ids, used, prev, nil
}

// attribution is the notice shipped beside converted rules: the DRL 1.1 requires that a
// redistribution credit each rule's author and name and link the license.
func attribution(rules []Converted) []byte {
	var b strings.Builder
	b.WriteString("# Attribution\n\n")
	b.WriteString("The rule files in this directory were converted by `ttp rules import-sigma` from Sigma rules\n")
	b.WriteString("of the SigmaHQ project (https://github.com/SigmaHQ/sigma), which are licensed under the\n")
	b.WriteString(License + ".\n")
	b.WriteString("The conversion keeps each rule's detection as written; title, id, author and license are also\n")
	b.WriteString("in the head comment and the description of each file.\n\n")
	b.WriteString("| ttp rule | Sigma title | Sigma id | Author | Source file |\n|---|---|---|---|---|\n")
	for _, c := range rules {
		src := filepath.ToSlash(c.File)
		if c.URL != "" {
			src = "[" + src + "](" + c.URL + ")"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", c.ID, mdCell(c.Title), c.SigmaID, mdCell(orUnknown(c.Author)), src)
	}
	return []byte(b.String())
}

func mdCell(s string) string { return strings.ReplaceAll(strings.ReplaceAll(s, "|", `\|`), "\n", " ") }
