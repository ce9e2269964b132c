package sigma

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/decnet/ttp/rules/attack"
)

// MaxFileSize bounds a Sigma rule file; the largest SigmaHQ rule is a few KiB.
const MaxFileSize = 256 << 10

// Rule is a decoded Sigma rule that ttp can evaluate: Linux process creation, a detection
// over the fields a command line shows, and at least one current ATT&CK technique.
type Rule struct {
	File                           string
	Title, ID, Status, Description string
	Author, Date, Modified, Level  string
	References, FalsePositives     []string
	Tags                           []string
	Detection                      *Detection
	// URL links the rule's source, when the importer knows it (Options.SourceURL).
	URL string
	// Emits are the techniques its tags name, resolved against ATT&CK (see Decode).
	Emits []Emit
	// Dropped lists tags naming techniques that ATT&CK no longer has or never had, so that
	// an import can say what it left out of a rule it did convert.
	Dropped []string
	// Mapped lists the v19 technique tags emitted as their v18.1 ids (V19Compat).
	Mapped []string

	detection *yaml.Node // kept verbatim for the converted rule
}

// Emit is one technique a converted rule tags, with the tactic it serves in this rule.
type Emit struct {
	TechniqueID, SubTechniqueID, Tactic string
}

// Levels maps a Sigma level to the confidence of the converted rule's emits. Sigma's level
// is the author's view of how much an alert matters and how rarely it is wrong; ttp's
// confidence is how likely the technique is really shown. The scale keeps the order and
// leaves room above for rules written and measured for honeypot traffic (0.8 and up).
var Levels = map[string]float64{
	"informational": 0.3,
	"low":           0.5,
	"medium":        0.7,
	"high":          0.85,
	"critical":      0.95,
}

// DefaultLevel is the level of a rule that states none (Sigma makes level optional).
const DefaultLevel = "medium"

// Precision returns the precision band a converted rule claims: H (>= 0.95 on its corpus)
// for high and critical rules, whose authors promise few false positives, M otherwise.
func Precision(level string) string {
	if level == "high" || level == "critical" {
		return "H"
	}
	return "M"
}

// tacticAliases maps Sigma tactic tags that ttp's ATT&CK table names otherwise: ATT&CK v19
// split defense evasion into stealth and defense impairment, and old rules use underscores.
var tacticAliases = map[string]string{
	"stealth":            "defense-evasion",
	"defense-impairment": "defense-evasion",
}

// V19Compat maps the ATT&CK v19 techniques SigmaHQ retagged its rules with (the Defense
// Impairment tactic's new ids) to the v18.1 ids ttp's table has, so those rules still emit a
// technique. Each pair is how SigmaHQ itself retagged the same rules (commit 34c5d66c2,
// "Update mitre tags to use attack v19": e.g. 115 rules went from t1562.001 to t1685); a
// converted rule names the original tag in its head comment.
var V19Compat = map[string]string{
	"T1685":     "T1562.001", // Disable or Modify Tools
	"T1685.001": "T1562.002", // Disable Windows Event Logging
	"T1685.002": "T1562.008", // Disable or Modify Cloud Logs
	"T1685.004": "T1562.012", // Disable or Modify Linux Audit System
	"T1685.005": "T1070.001", // Clear Windows Event Logs
	"T1685.006": "T1070.002", // Clear Linux or Mac System Logs
	"T1686":     "T1562.004", // Disable or Modify System Firewall
	"T1686.001": "T1562.007", // Disable or Modify Cloud Firewall
	"T1686.003": "T1562.004", // Disable or Modify System Firewall
	"T1689":     "T1562.010", // Downgrade Attack
	"T1690":     "T1562.003", // Impair Command History Logging
}

var (
	techTagRE = regexp.MustCompile(`^attack\.t[0-9]{4}(\.[0-9]{3})?$`)
	yamlErrRE = regexp.MustCompile(`line ([0-9]+)`)
)

func fail(file string, n *yaml.Node, fieldName, reason string, err error, format string, args ...any) *Error {
	line := 0
	if n != nil {
		line = n.Line
	}
	return &Error{File: file, Line: line, Field: fieldName, Reason: reason, Err: fmt.Errorf("%w: "+format, append([]any{err}, args...)...)}
}

// Decode reads one Sigma rule file. A rule ttp cannot evaluate is an *Error saying why, with
// the line and field at fault; Reason groups such errors ("field User", "logsource").
func Decode(file string, data []byte) (*Rule, error) {
	k, err := readKeys(file, data)
	if err != nil {
		return nil, err
	}
	r := &Rule{File: file}
	if err := k.metadata(r); err != nil {
		return nil, err
	}
	if err := k.checkMetadata(r); err != nil {
		return nil, err
	}
	if err := checkLogsource(file, k.root, k.keys["logsource"]); err != nil {
		return nil, err
	}
	if n := k.keys["correlation"]; n != nil {
		return nil, fail(file, n, "correlation", "correlation", ErrUnsupported, "a correlation rule relates several events")
	}
	r.detection = k.keys["detection"]
	if r.detection == nil {
		return nil, fail(file, k.root, "detection", "missing detection", ErrInvalid, "required")
	}
	d, err := CompileDetection(file, r.detection)
	if err != nil {
		return nil, err
	}
	r.Detection = d
	if err := r.resolveTags(k.keys["tags"]); err != nil {
		return nil, err
	}
	return r, nil
}

// ruleKeys is a rule file's top-level mapping, each key's value node by name.
type ruleKeys struct {
	file string
	root *yaml.Node
	keys map[string]*yaml.Node
}

// readKeys parses data as one YAML mapping with no key twice.
func readKeys(file string, data []byte) (*ruleKeys, error) {
	if len(data) > MaxFileSize {
		return nil, fail(file, nil, "", "file too large", ErrInvalid, "%d bytes, at most %d", len(data), MaxFileSize)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		line := 0
		if m := yamlErrRE.FindStringSubmatch(err.Error()); m != nil {
			line, _ = strconv.Atoi(m[1])
		}
		return nil, &Error{File: file, Line: line, Reason: "YAML syntax", Err: fmt.Errorf("%w: %s", ErrInvalid, strings.TrimPrefix(err.Error(), "yaml: "))}
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, fail(file, &doc, "", "not a mapping", ErrInvalid, "want a mapping of rule keys")
	}
	root := doc.Content[0]
	keys := map[string]*yaml.Node{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k := root.Content[i]
		if _, dup := keys[k.Value]; dup {
			return nil, fail(file, k, k.Value, "duplicate key", ErrInvalid, "key %q twice", k.Value)
		}
		keys[k.Value] = root.Content[i+1]
	}
	return &ruleKeys{file: file, root: root, keys: keys}, nil
}

// str is the string value of key; "" when absent and not required.
func (k *ruleKeys) str(key string, required bool) (string, error) {
	n := k.keys[key]
	if n == nil {
		if required {
			return "", fail(k.file, k.root, key, "missing "+key, ErrInvalid, "required")
		}
		return "", nil
	}
	if n.Kind != yaml.ScalarNode {
		return "", fail(k.file, n, key, "bad "+key, ErrInvalid, "want a string")
	}
	return n.Value, nil
}

// list is the list of strings of key; a single string is a list of one.
func (k *ruleKeys) list(key string) ([]string, error) {
	n := k.keys[key]
	if n == nil {
		return nil, nil
	}
	if n.Kind == yaml.ScalarNode {
		return []string{n.Value}, nil
	}
	if n.Kind != yaml.SequenceNode {
		return nil, fail(k.file, n, key, "bad "+key, ErrInvalid, "want a list of strings")
	}
	var out []string
	for i, c := range n.Content {
		if c.Kind != yaml.ScalarNode {
			return nil, fail(k.file, c, fmt.Sprintf("%s[%d]", key, i), "bad "+key, ErrInvalid, "want a string")
		}
		out = append(out, c.Value)
	}
	return out, nil
}

// metadata reads the rule's descriptive keys: title, id, status and the others.
func (k *ruleKeys) metadata(r *Rule) error {
	var err error
	for _, s := range []struct {
		key      string
		dst      *string
		required bool
	}{{"title", &r.Title, true}, {"id", &r.ID, true}, {"status", &r.Status, false}, {"description", &r.Description, false},
		{"author", &r.Author, false}, {"date", &r.Date, false}, {"modified", &r.Modified, false}, {"level", &r.Level, false}} {
		if *s.dst, err = k.str(s.key, s.required); err != nil {
			return err
		}
	}
	if r.References, err = k.list("references"); err != nil {
		return err
	}
	if r.FalsePositives, err = k.list("falsepositives"); err != nil {
		return err
	}
	if r.Tags, err = k.list("tags"); err != nil {
		return err
	}
	return nil
}

// checkMetadata checks what metadata read: a title, a UUID, a maintained status and a known
// level (DefaultLevel when absent).
func (k *ruleKeys) checkMetadata(r *Rule) error {
	file, keys := k.file, k.keys
	if r.Title == "" {
		return fail(file, keys["title"], "title", "missing title", ErrInvalid, "empty")
	}
	if !uuidRE.MatchString(r.ID) {
		return fail(file, keys["id"], "id", "bad id", ErrInvalid, "%q is not a UUID", r.ID)
	}
	switch r.Status {
	case "deprecated", "unsupported":
		return fail(file, keys["status"], "status", "status "+r.Status, ErrUnsupported, "status %s: SigmaHQ no longer maintains the rule", r.Status)
	}
	if r.Level == "" {
		r.Level = DefaultLevel
	}
	if _, ok := Levels[r.Level]; !ok {
		return fail(file, keys["level"], "level", "bad level", ErrInvalid, "%q: want informational, low, medium, high or critical", r.Level)
	}
	return nil
}

var uuidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

func checkLogsource(file string, root, n *yaml.Node) error {
	if n == nil {
		return fail(file, root, "logsource", "missing logsource", ErrInvalid, "required")
	}
	if n.Kind != yaml.MappingNode {
		return fail(file, n, "logsource", "bad logsource", ErrInvalid, "want a mapping")
	}
	var product, category, service string
	for i := 0; i+1 < len(n.Content); i += 2 {
		switch n.Content[i].Value {
		case "product":
			product = n.Content[i+1].Value
		case "category":
			category = n.Content[i+1].Value
		case "service":
			service = n.Content[i+1].Value
		}
	}
	if product != "linux" || category != "process_creation" || service != "" {
		return fail(file, n, "logsource", "logsource", ErrUnsupported, "product %q, category %q, service %q: ttp reads linux process_creation only", product, category, service)
	}
	return nil
}

// resolveTags turns attack.tNNNN[.NNN] tags into emits. A sub-technique brings its parent as
// technique_id; a parent also listed on its own is then redundant and dropped. The tactic is
// the first attack.<tactic> tag the technique serves, else the technique's first tactic in
// ttp's ATT&CK table.
func (r *Rule) resolveTags(n *yaml.Node) error {
	var tactics []string
	var ids []string
	for _, t := range r.Tags {
		t = strings.ToLower(t)
		switch {
		case techTagRE.MatchString(t):
			ids = append(ids, "T"+strings.TrimPrefix(t, "attack.t"))
		case strings.HasPrefix(t, "attack."):
			name := strings.ReplaceAll(strings.TrimPrefix(t, "attack."), "_", "-")
			if a, ok := tacticAliases[name]; ok {
				name = a
			}
			if attack.IsTactic(name) {
				tactics = append(tactics, name)
			}
		}
	}
	hasSub := map[string]bool{}
	for _, id := range ids {
		if i := strings.IndexByte(id, '.'); i > 0 {
			hasSub[id[:i]] = true
		}
	}
	seen := map[string]bool{}
	for _, id := range ids {
		if seen[id] || (!strings.Contains(id, ".") && hasSub[id]) {
			continue
		}
		seen[id] = true
		t, ok := attack.Lookup(id)
		if old, compat := V19Compat[id]; compat && (!ok || t.Deprecated) {
			if t, ok = attack.Lookup(old); ok && !seen[old] {
				seen[old] = true
				r.Mapped = append(r.Mapped, id+" as "+old)
			} else {
				continue
			}
		}
		if !ok || t.Deprecated {
			r.Dropped = append(r.Dropped, id)
			continue
		}
		e := Emit{TechniqueID: t.Parent()}
		if t.IsSub() {
			e.SubTechniqueID = t.ID
			if p, ok := attack.Lookup(t.Parent()); !ok || p.Deprecated {
				r.Dropped = append(r.Dropped, id)
				continue
			}
		}
		for _, tc := range tactics {
			if t.HasTactic(tc) {
				e.Tactic = tc
				break
			}
		}
		if e.Tactic == "" && len(t.Tactics) > 0 {
			e.Tactic = t.Tactics[0]
		}
		r.Emits = append(r.Emits, e)
	}
	if len(r.Emits) == 0 {
		if len(r.Dropped) > 0 {
			return fail(r.File, n, "tags", "technique not in ATT&CK "+attack.Version, ErrUnsupported, "%s not current in ATT&CK %s", strings.Join(r.Dropped, ", "), attack.Version)
		}
		return fail(r.File, n, "tags", "no technique in tags", ErrUnsupported, "no attack.tNNNN tag: a ttp rule must emit a technique")
	}
	return nil
}
