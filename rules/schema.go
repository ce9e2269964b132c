package rules

import (
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/decnet/ttp/abi"
	"github.com/decnet/ttp/rules/attack"
)

// MaxFileSize is the largest rule file accepted. A rule is a few hundred bytes; anything near
// this limit is a mistake or an attack on the loader.
const MaxFileSize = 64 << 10

// Sentinel errors, wrapped in *Error so callers can test with errors.Is.
var (
	ErrTooLarge          = errors.New("file larger than 64 KiB")
	ErrSyntax            = errors.New("YAML syntax error")
	ErrUnknownKey        = errors.New("unknown key")
	ErrDuplicateKey      = errors.New("duplicate key")
	ErrMissing           = errors.New("required")
	ErrType              = errors.New("wrong type")
	ErrBadValue          = errors.New("bad value")
	ErrFileName          = errors.New("file name differs from id")
	ErrDuplicateID       = errors.New("duplicate rule id")
	ErrBadRegex          = errors.New("regex does not compile")
	ErrRange             = errors.New("out of range")
	ErrUnknownTechnique  = errors.New("technique not in ATT&CK " + attack.Version)
	ErrDeprecated        = errors.New("technique deprecated or revoked in ATT&CK " + attack.Version)
	ErrUnknownTactic     = errors.New("tactic not in ATT&CK")
	ErrTacticMismatch    = errors.New("tactic not served by this technique")
	ErrParentMismatch    = errors.New("sub-technique belongs to another technique")
	ErrUnknownSourceKind = errors.New("unknown source kind")
)

// Error is one problem in one rule file, located by file, line and field ("emits[1].tactic").
type Error struct {
	File  string
	Line  int
	Field string
	Err   error
}

func (e *Error) Error() string {
	loc := e.File
	if e.Line > 0 {
		loc += ":" + strconv.Itoa(e.Line)
	}
	if e.Field == "" {
		return fmt.Sprintf("rules: %s: %v", loc, e.Err)
	}
	return fmt.Sprintf("rules: %s: %s: %v", loc, e.Field, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// ErrorList is every problem found in one file, in file order, so an author fixes them in one
// pass instead of one per run.
type ErrorList []*Error

func (l ErrorList) Error() string {
	msgs := make([]string, len(l))
	for i, e := range l {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

// Unwrap lets errors.Is and errors.As see every entry.
func (l ErrorList) Unwrap() []error {
	out := make([]error, len(l))
	for i, e := range l {
		out[i] = e
	}
	return out
}

// Rule is one rule definition as written in its file. Rule state (enabled, disabled, clipped)
// is not part of it: it lives in a State store, so a state change is never a new version.
type Rule struct {
	ID             string
	Name           string
	Description    string
	AppliesTo      []string
	Match          Match
	Emits          []Emit
	Precision      string // "H" (precision >= 0.95 on its corpus) or "M" (>= 0.80)
	EvidenceFields []string

	// Version is abi.RuleVersion of the definition: stable across comment, whitespace and
	// key-order edits, and equal whether the rule came from a file or a KV bucket.
	Version string
	// File is where the rule was read from (a file name or a KV key), for error messages.
	File string
	// Definition is the decoded document the version is computed from; plugins receive it.
	Definition map[string]any

	re, exclude *regexp.Regexp
	fields      map[string]abi.Path // source kind -> field the pattern reads
	branches    []*Branch           // match.when, in file order
	lists       map[string]bool     // shared lists the rule uses
	sigmaCredit map[string]any      // kind sigma: evidence naming the Sigma rule and author (sigmakind.go)
}

// Match says what evaluates a rule: the built-in engine (Kind "pattern") or the plugin whose
// rule_kinds prefix Kind ("lifter:behavioral_recon_burst"). A built-in rule has either a
// Pattern (a regexp on the field) or `when` branches on the parsed command line (structure.go).
type Match struct {
	Kind    string
	Pattern string
	Exclude string // optional: a pattern rule does not fire when this also matches
	Field   string // optional: the field a pattern reads; default per source kind
	Params  map[string]any
}

// Emit is one technique a rule tags when it fires; Confidence is in [0, 1].
type Emit struct {
	TechniqueID    string
	SubTechniqueID string
	Tactic         string
	Confidence     float64
	// When names the match.when branches this technique stands for; empty: any match.
	When []string

	whenMask uint64
}

// IsPattern reports whether the built-in engine evaluates r, by regexp or by structure.
func (r *Rule) IsPattern() bool { return r.Match.Kind == KindPattern || r.Match.Kind == KindSigma }

// KindPattern is the match kind of the built-in regex engine.
const KindPattern = "pattern"

// DefaultFields is the field a pattern rule reads when match.field is absent, per source kind.
var DefaultFields = map[string]string{
	abi.KindCommand: "payload.command_text",
	abi.KindEmail:   "payload.subject",
	abi.KindHTTP:    "payload.raw_url",
}

var (
	idRE        = regexp.MustCompile(`^R[0-9]{4}$`)
	fileNameRE  = regexp.MustCompile(`^R[0-9]{4}\.yaml$`)
	lifterRE    = regexp.MustCompile(`^lifter:[a-z][a-z0-9_]*$`)
	evidenceRE  = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	yamlLineRE  = regexp.MustCompile(`line ([0-9]+)`)
	techniqueRE = regexp.MustCompile(`^T[0-9]{4}(\.[0-9]{3})?$`)
)

// ValidFileName reports whether name (a base name) may hold a rule: R followed by four digits
// and ".yaml". Stores check it before reading anything, so editor swap and backup files never
// reach the decoder.
func ValidFileName(name string) bool { return fileNameRE.MatchString(name) }

// Parse decodes, validates and compiles one rule file. name is the file name or KV key (its
// base name must be "<id>.yaml"). Every problem is reported with file, line and field, all of
// them at once as an ErrorList.
func Parse(name string, data []byte) (*Rule, error) {
	p := &parser{file: name}
	r := p.parse(data)
	if len(p.errs) > 0 {
		return nil, p.errs
	}
	return r, nil
}

type parser struct {
	file string
	errs ErrorList
}

func (p *parser) errorf(n *yaml.Node, field string, err error, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	if format != "" {
		err = fmt.Errorf("%w: "+format, append([]any{err}, args...)...)
	}
	p.errs = append(p.errs, &Error{File: p.file, Line: line, Field: field, Err: err})
}

func (p *parser) parse(data []byte) *Rule {
	root := p.document(data)
	if root == nil {
		return nil
	}
	r := &Rule{File: p.file, lists: map[string]bool{}}
	keys := p.mapping(root, "", map[string]bool{
		"id": true, "name": true, "description": false, "applies_to": true, "match": true,
		"emits": true, "precision": true, "evidence_fields": true,
	})
	p.identity(keys, r)
	if v := keys["applies_to"]; v != nil {
		p.appliesTo(v, r)
	}
	if v := keys["match"]; v != nil && !p.sigmaMatch(v, r) { // sigmakind.go
		p.match(v, r)
	}
	if v := keys["emits"]; v != nil {
		p.emits(v, r)
	}
	if v := keys["precision"]; v != nil {
		r.Precision = p.str(v, "precision")
		if r.Precision != "" && r.Precision != "H" && r.Precision != "M" {
			p.errorf(v, "precision", ErrBadValue, "%q: want H or M", r.Precision)
		}
	}
	if v := keys["evidence_fields"]; v != nil {
		p.evidenceFields(v, r)
	}
	if r.IsPattern() && (r.re != nil || r.branches != nil) {
		p.patternFields(keys["match"], r)
	}
	if len(p.errs) > 0 {
		return nil
	}
	if !p.version(root, r) {
		return nil
	}
	return r
}

// document reads data as one YAML document whose root is a mapping, and returns that root;
// nil after recording why not.
func (p *parser) document(data []byte) *yaml.Node {
	if len(data) > MaxFileSize {
		p.errorf(nil, "", ErrTooLarge, "%d bytes", len(data))
		return nil
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		line := 0
		if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
			line, _ = strconv.Atoi(m[1])
		}
		p.errs = append(p.errs, &Error{File: p.file, Line: line, Err: fmt.Errorf("%w: %s", ErrSyntax, strings.TrimPrefix(err.Error(), "yaml: "))})
		return nil
	}
	if len(doc.Content) == 0 {
		p.errorf(nil, "", ErrMissing, "empty file")
		return nil
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		p.errorf(root, "", ErrType, "want a mapping of rule keys")
		return nil
	}
	return root
}

// identity reads id (which names the file), name and description.
func (p *parser) identity(keys map[string]*yaml.Node, r *Rule) {
	if v := keys["id"]; v != nil {
		r.ID = p.str(v, "id")
		if r.ID != "" && !idRE.MatchString(r.ID) {
			p.errorf(v, "id", ErrBadValue, "%q: want R followed by four digits", r.ID)
		}
		if r.ID != "" && filepath.Base(p.file) != r.ID+".yaml" {
			p.errorf(v, "id", ErrFileName, "id %s must live in %s.yaml", r.ID, r.ID)
		}
	}
	if v := keys["name"]; v != nil {
		r.Name = p.str(v, "name")
	}
	if v := keys["description"]; v != nil {
		r.Description = p.str(v, "description")
	}
}

// appliesTo reads applies_to: at least one known source kind.
func (p *parser) appliesTo(v *yaml.Node, r *Rule) {
	r.AppliesTo = p.strList(v, "applies_to")
	if len(r.AppliesTo) == 0 && v.Kind == yaml.SequenceNode {
		p.errorf(v, "applies_to", ErrMissing, "name at least one source kind")
	}
	for i, k := range r.AppliesTo {
		if !abi.IsKnownKind(k) {
			p.errorf(v.Content[i], fmt.Sprintf("applies_to[%d]", i), ErrUnknownSourceKind, "%q (known: %s)", k, strings.Join(abi.KnownKinds, ", "))
		}
	}
}

// evidenceFields reads evidence_fields: plain lower-case names.
func (p *parser) evidenceFields(v *yaml.Node, r *Rule) {
	r.EvidenceFields = p.strList(v, "evidence_fields")
	for i, f := range r.EvidenceFields {
		if !evidenceRE.MatchString(f) {
			p.errorf(v.Content[i], fmt.Sprintf("evidence_fields[%d]", i), ErrBadValue, "%q: want a plain lower-case name such as command_text", f)
		}
	}
}

// patternFields resolves, per source kind the pattern rule applies to, the field it reads:
// match.field, else the kind's default field.
func (p *parser) patternFields(match *yaml.Node, r *Rule) {
	r.fields = make(map[string]abi.Path, len(r.AppliesTo))
	for _, k := range r.AppliesTo {
		f := r.Match.Field
		if f == "" {
			f = DefaultFields[k]
		}
		if f == "" {
			p.errorf(match, "match.field", ErrMissing, "source kind %q has no default field for patterns", k)
			continue
		}
		path, err := abi.ParsePath(f)
		if err != nil {
			p.errorf(match, "match.field", ErrBadValue, "%v", err)
			continue
		}
		r.fields[k] = path
	}
}

// version decodes the definition and sets r.Version, the hash of what the rule means: the
// definition with the shared lists it uses (lists.go).
func (p *parser) version(root *yaml.Node, r *Rule) bool {
	if err := root.Decode(&r.Definition); err != nil {
		p.errorf(root, "", ErrType, "%v", err)
		return false
	}
	def := r.Definition
	if len(r.lists) > 0 {
		def = make(map[string]any, len(r.Definition)+1)
		for k, v := range r.Definition {
			def[k] = v
		}
		def["lists"] = usedLists(r.lists)
	}
	v, err := abi.RuleVersion(def)
	if err != nil {
		p.errorf(root, "", ErrBadValue, "%v", err)
		return false
	}
	r.Version = v
	return true
}

// mapping checks a mapping node's keys against known (true: required) and returns the value
// node of each key present.
func (p *parser) mapping(n *yaml.Node, prefix string, known map[string]bool) map[string]*yaml.Node {
	out := make(map[string]*yaml.Node, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		name := k.Value
		if _, ok := known[name]; !ok {
			p.errorf(k, prefix+name, ErrUnknownKey, "known keys: %s", strings.Join(sortedKeys(known), ", "))
			continue
		}
		if _, dup := out[name]; dup {
			p.errorf(k, prefix+name, ErrDuplicateKey, "")
			continue
		}
		out[name] = v
	}
	for name, required := range known {
		if required && out[name] == nil {
			p.errorf(n, prefix+name, ErrMissing, "")
		}
	}
	return out
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (p *parser) str(n *yaml.Node, field string) string {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!str" {
		p.errorf(n, field, ErrType, "want a string, got %s", describe(n))
		return ""
	}
	return n.Value
}

func (p *parser) strList(n *yaml.Node, field string) []string {
	if n.Kind != yaml.SequenceNode {
		p.errorf(n, field, ErrType, "want a list of strings, got %s", describe(n))
		return nil
	}
	out := make([]string, 0, len(n.Content))
	for i, c := range n.Content {
		out = append(out, p.str(c, fmt.Sprintf("%s[%d]", field, i)))
	}
	return out
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	}
	return fmt.Sprintf("%s %q", strings.TrimPrefix(n.Tag, "!!"), n.Value)
}

func (p *parser) match(n *yaml.Node, r *Rule) {
	if n.Kind != yaml.MappingNode {
		p.errorf(n, "match", ErrType, "want a mapping, got %s", describe(n))
		return
	}
	keys := p.mapping(n, "match.", map[string]bool{"kind": false, "pattern": false, "exclude": false, "field": false, "params": false, "when": false})
	switch v := keys["kind"]; {
	case v != nil:
		r.Match.Kind = p.str(v, "match.kind")
	case keys["when"] != nil:
		r.Match.Kind = KindPattern // when branches are the built-in engine's; kind may be left out
	default:
		p.errorf(n, "match.kind", ErrMissing, "")
	}
	switch {
	case r.Match.Kind == KindPattern:
		if keys["params"] != nil {
			p.errorf(keys["params"], "match.params", ErrBadValue, "pattern rules take no params")
		}
		v := keys["pattern"]
		switch w := keys["when"]; {
		case v == nil && w == nil:
			p.errorf(n, "match.pattern", ErrMissing, "a pattern rule needs a pattern or when branches")
			return
		case v != nil && w != nil:
			p.errorf(w, "match.when", ErrBadValue, "a rule has a pattern or when branches, not both")
			return
		case w != nil:
			p.structure(w, r, r.lists)
		default:
			r.Match.Pattern = p.str(v, "match.pattern")
			r.re = p.regex(v, "match.pattern", r.Match.Pattern)
		}
		if v := keys["exclude"]; v != nil {
			r.Match.Exclude = p.str(v, "match.exclude")
			exp, err := expandRegex(r.Match.Exclude, r.lists)
			if err != nil {
				p.errorf(v, "match.exclude", err, "")
			} else {
				r.exclude = p.regex(v, "match.exclude", exp)
			}
		}
		if v := keys["field"]; v != nil {
			r.Match.Field = p.str(v, "match.field")
		}
	case lifterRE.MatchString(r.Match.Kind):
		for _, k := range []string{"pattern", "exclude", "field", "when"} {
			if keys[k] != nil {
				p.errorf(keys[k], "match."+k, ErrBadValue, "only pattern rules take %s", k)
			}
		}
		if v := keys["params"]; v != nil {
			if v.Kind != yaml.MappingNode {
				p.errorf(v, "match.params", ErrType, "want a mapping, got %s", describe(v))
			} else if err := v.Decode(&r.Match.Params); err != nil {
				p.errorf(v, "match.params", ErrType, "%v", err)
			}
		}
	case r.Match.Kind != "":
		p.errorf(keys["kind"], "match.kind", ErrBadValue, "%q: want pattern or lifter:<name>", r.Match.Kind)
	}
}

func (p *parser) regex(n *yaml.Node, field, src string) *regexp.Regexp {
	if src == "" {
		p.errorf(n, field, ErrMissing, "empty pattern")
		return nil
	}
	re, err := regexp.Compile(src)
	if err != nil {
		p.errorf(n, field, ErrBadRegex, "%v", err)
		return nil
	}
	return re
}

func (p *parser) emits(n *yaml.Node, r *Rule) {
	if n.Kind != yaml.SequenceNode || len(n.Content) == 0 {
		p.errorf(n, "emits", ErrType, "want a non-empty list of techniques, got %s", describe(n))
		return
	}
	var nodes []*yaml.Node
	for i, en := range n.Content {
		field := fmt.Sprintf("emits[%d]", i)
		if en.Kind != yaml.MappingNode {
			p.errorf(en, field, ErrType, "want a mapping, got %s", describe(en))
			continue
		}
		keys := p.mapping(en, field+".", map[string]bool{"technique_id": true, "sub_technique_id": false, "tactic": true, "confidence": true, "when": false})
		var e Emit
		var tech attack.Technique
		techOK := false
		if v := keys["technique_id"]; v != nil {
			e.TechniqueID = p.str(v, field+".technique_id")
			tech, techOK = p.technique(v, field+".technique_id", e.TechniqueID, false)
		}
		if v := keys["sub_technique_id"]; v != nil {
			e.SubTechniqueID = p.str(v, field+".sub_technique_id")
			if sub, ok := p.technique(v, field+".sub_technique_id", e.SubTechniqueID, true); ok {
				if e.TechniqueID != "" && sub.Parent() != e.TechniqueID {
					p.errorf(v, field+".sub_technique_id", ErrParentMismatch, "%s is under %s, not %s", sub.ID, sub.Parent(), e.TechniqueID)
				}
				tech, techOK = sub, true
			} else {
				techOK = false
			}
		}
		if v := keys["tactic"]; v != nil {
			e.Tactic = p.str(v, field+".tactic")
			switch {
			case e.Tactic == "":
			case !attack.IsTactic(e.Tactic):
				p.errorf(v, field+".tactic", ErrUnknownTactic, "%q (tactics are kill-chain phase names such as defense-evasion)", e.Tactic)
			case techOK && !tech.HasTactic(e.Tactic):
				p.errorf(v, field+".tactic", ErrTacticMismatch, "%s (%s) serves %s, not %s", tech.ID, tech.Name, strings.Join(tech.Tactics, ", "), e.Tactic)
			}
		}
		if v := keys["confidence"]; v != nil {
			if v.Kind != yaml.ScalarNode || (v.Tag != "!!float" && v.Tag != "!!int") {
				p.errorf(v, field+".confidence", ErrType, "want a number, got %s", describe(v))
			} else if c, err := strconv.ParseFloat(v.Value, 64); err != nil {
				p.errorf(v, field+".confidence", ErrType, "%q is not a number", v.Value)
			} else if c < 0 || c > 1 || c != c {
				p.errorf(v, field+".confidence", ErrRange, "%v is outside 0..1", v.Value)
			} else {
				e.Confidence = c
			}
		}
		if v := keys["when"]; v != nil {
			if r.branches == nil {
				p.errorf(v, field+".when", ErrBadValue, "only a rule with match.when branches can tie an emit to them")
			}
			e.When = p.strList(v, field+".when")
		}
		r.Emits = append(r.Emits, e)
		nodes = append(nodes, en)
	}
	p.resolveWhen(r, nodes)
}

func (p *parser) technique(n *yaml.Node, field, id string, sub bool) (attack.Technique, bool) {
	if id == "" {
		return attack.Technique{}, false
	}
	if !techniqueRE.MatchString(id) {
		p.errorf(n, field, ErrBadValue, "%q: want T followed by four digits (and .NNN for a sub-technique)", id)
		return attack.Technique{}, false
	}
	t, ok := attack.Lookup(id)
	switch {
	case !ok:
		p.errorf(n, field, ErrUnknownTechnique, "%s", id)
		return t, false
	case t.Deprecated:
		p.errorf(n, field, ErrDeprecated, "%s (%s)", id, t.Name)
		return t, false
	case sub && !t.IsSub():
		p.errorf(n, field, ErrBadValue, "%s is a technique, not a sub-technique", id)
		return t, false
	case !sub && t.IsSub():
		p.errorf(n, field, ErrBadValue, "%s is a sub-technique: put %s in technique_id and %s in sub_technique_id", id, t.Parent(), id)
		return t, false
	}
	return t, true
}

// PluginConfig is the rule's definition as a plugin is configured with it (abi.RuleConfig):
// the owning plugin sees its id, kind, applies_to, params and emits, never its pattern or
// state.
func (r *Rule) PluginConfig() abi.RuleConfig {
	rc := abi.RuleConfig{ID: r.ID, Kind: r.Match.Kind, AppliesTo: r.AppliesTo, Params: r.Match.Params}
	for _, e := range r.Emits {
		rc.Emits = append(rc.Emits, abi.EmitConfig{TechniqueID: e.TechniqueID, SubTechniqueID: e.SubTechniqueID, Tactic: e.Tactic, Confidence: e.Confidence})
	}
	return rc
}

// PluginConfigs is PluginConfig of each rule, in order.
func PluginConfigs(rs []*Rule) []abi.RuleConfig {
	out := make([]abi.RuleConfig, len(rs))
	for i, r := range rs {
		out[i] = r.PluginConfig()
	}
	return out
}
