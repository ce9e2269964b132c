package rules

import (
	"fmt"
	"math/rand"
	"os"
	"reflect"
	"regexp/syntax"
	"sort"
	"strings"
	"testing"

	"github.com/decnet/ttp/abi"
)

func loadShipped(tb testing.TB) *RuleSet {
	tb.Helper()
	rs, err := LoadDir("ttp")
	if err != nil {
		tb.Fatalf("shipped rules: %v", err)
	}
	set, err := NewRuleSet(rs)
	if err != nil {
		tb.Fatal(err)
	}
	return set
}

func commandEvent(text string) *abi.Event {
	return &abi.Event{SourceKind: abi.KindCommand, SourceID: "x", Payload: map[string]any{"command_text": text}}
}

// corpusCommands returns every command of the precision corpora.
func corpusCommands(tb testing.TB) []string {
	tb.Helper()
	entries, err := os.ReadDir("../testdata/corpus")
	if err != nil {
		tb.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		data, err := os.ReadFile("../testdata/corpus/" + e.Name())
		if err != nil {
			tb.Fatal(err)
		}
		for _, line := range strings.Split(string(data), "\n") {
			line = strings.TrimSpace(line)
			line = strings.TrimPrefix(line, "- text:")
			line = strings.TrimPrefix(line, "-")
			line = strings.TrimSpace(line)
			if len(line) > 2 && (line[0] == '\'' || line[0] == '"') {
				out = append(out, strings.Trim(line, `'"`))
			}
		}
	}
	return out
}

func TestEngineEqualsNaive(t *testing.T) {
	set := loadShipped(t)
	cmds := append(corpusCommands(t), benchCommands(2000)...)
	if len(cmds) < 1000 {
		t.Fatalf("only %d commands to compare", len(cmds))
	}
	fired := 0
	for _, c := range cmds {
		ev := commandEvent(c)
		got := set.Eval(ev, nil)
		want := set.evalNaive(ev, nil)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: prefiltered %v, naive %v", c, ids(got), ids(want))
		}
		if len(got) > 0 {
			fired++
		}
	}
	if fired == 0 {
		t.Fatal("nothing fired: the comparison proves nothing")
	}
	t.Logf("%d commands, %d fired", len(cmds), fired)
}

func ids(ds []abi.TagDraft) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.RuleID)
	}
	return out
}

func FuzzEngineEqualsNaive(f *testing.F) {
	set := loadShipped(f)
	for _, c := range corpusCommands(f)[:min(50, len(corpusCommands(f)))] {
		f.Add(c)
	}
	f.Add("cat /etc/\u212aey")
	f.Add("\xff\xfe wget")
	f.Fuzz(func(t *testing.T, text string) {
		ev := commandEvent(text)
		got, want := set.Eval(ev, nil), set.evalNaive(ev, nil)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: prefiltered %v, naive %v", text, ids(got), ids(want))
		}
	})
}

// FuzzPrefilterPattern checks literal extraction itself on random patterns: whatever the
// pattern, the prefiltered engine must agree with running it.
func FuzzPrefilterPattern(f *testing.F) {
	for _, s := range [][2]string{
		{`(?i)authorized_keys`, "echo k >> AUTHORIZED_KEYS"},
		{`\b(wget|curl)\s+-\w*O`, "curl -sO http://x"},
		{`(?i)kill`, "\u212aILL"},
		{`s[a-c]{2}t`, "sbbt"},
		{`(ab|cd)+x?(ef)*`, "cdab"},
		{`^$`, ""},
		{`é+`, "éé"},
		{`\x{FFFD}x`, "\xffx"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, text string) {
		if _, err := syntax.Parse(pattern, syntax.Perl); err != nil || len(pattern) > 200 {
			return
		}
		yaml := fmt.Sprintf("id: R0001\nname: f\napplies_to: [command]\nmatch: {kind: pattern, pattern: %q}\nemits: [{technique_id: T1082, tactic: discovery, confidence: 0.5}]\nprecision: M\nevidence_fields: [command_text]\n", pattern)
		r, err := Parse("R0001.yaml", []byte(yaml))
		if err != nil {
			return // a pattern YAML cannot carry as written; not what this target tests
		}
		set, err := NewRuleSet([]*Rule{r})
		if err != nil {
			t.Fatal(err)
		}
		ev := commandEvent(text)
		got, want := set.Eval(ev, nil), set.evalNaive(ev, nil)
		if len(got) != len(want) {
			t.Fatalf("pattern %q text %q: prefiltered %d drafts, naive %d (literals %q)", pattern, text, len(got), len(want), literalsOf(pattern))
		}
	})
}

func literalsOf(pattern string) [][][]string {
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return nil
	}
	var out [][][]string
	for _, c := range requiredDNF(re.Simplify()) {
		var cl [][]string
		for _, set := range c {
			s := append([]string(nil), set...)
			sort.Strings(s)
			cl = append(cl, s)
		}
		out = append(out, cl)
	}
	return out
}

func TestRequiredLiterals(t *testing.T) {
	type dnf = [][][]string
	tests := []struct {
		pattern string
		want    dnf // nil: no usable literal, the rule always runs
	}{
		{`(?i)authorized_keys`, dnf{{{"authorized_keys"}}}},
		{`\b(wget|curl|tftp)\b`, dnf{{{"curl", "tftp", "wget"}}}},
		{`/etc/(passwd|shadow)`, dnf{{{"/etc/passwd", "/etc/shadow"}}}},
		{`chmod\s+\+x`, dnf{{{"chmod"}, {"+x"}}}},
		{`(?i)uname\s+-a`, dnf{{{"uname"}, {"-a"}}}},
		{`\bid\b`, dnf{{{"id"}}}},
		{`[Ss]hadow`, dnf{{{"shadow"}}}},
		{`nc\s+-e\s+/bin/sh|bash\s+-i`, dnf{{{"/bin/sh"}, {"nc"}, {"-e"}}, {{"bash"}, {"-i"}}}},
		{`(?:tmp|shm)/\.+\w`, dnf{{{"shm/.", "tmp/."}}}},
		{`x`, nil},
		{`.*`, nil},
		{`a*b*`, nil},
		{`(wget|.)`, nil},
		{`(foo)+bar?`, dnf{{{"fooba", "foobar"}, {"foo"}}}},
		{`history\s+-c|unset\s+HISTFILE`, dnf{{{"history"}, {"-c"}}, {{"histfile"}, {"unset"}}}},
		{`(?:ab){2}`, dnf{{{"abab"}}}},
	}
	for _, tt := range tests {
		if got := literalsOf(tt.pattern); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: formula %q, want %q", tt.pattern, got, tt.want)
		}
	}
}

func TestEvalAllocs(t *testing.T) {
	set := loadShipped(t)
	ev := commandEvent("cd /var/www/html && git pull origin main")
	if n := testing.AllocsPerRun(200, func() { set.Eval(ev, nil) }); n != 0 {
		t.Errorf("Eval allocates %v times on a command that fires nothing", n)
	}
	if out := set.Eval(ev, nil); len(out) != 0 {
		t.Errorf("benign command fired %v", ids(out))
	}
}

// benchCommands generates a deterministic stream of realistic honeypot commands: about 85%
// benign administration and about 15% attacker commands drawn from the shipped corpora'
// positives.
func benchCommands(n int) []string {
	rng := rand.New(rand.NewSource(42))
	attacks := attackerCommands()
	out := make([]string, 0, n)
	for len(out) < n {
		if len(attacks) > 0 && rng.Intn(100) < 15 {
			out = append(out, attacks[rng.Intn(len(attacks))])
			continue
		}
		tpl := benignTemplates[rng.Intn(len(benignTemplates))]
		out = append(out, fillTemplate(tpl, rng))
	}
	return out
}

func attackerCommands() []string {
	var out []string
	entries, _ := os.ReadDir("../testdata/corpus")
	for _, e := range entries {
		data, _ := os.ReadFile("../testdata/corpus/" + e.Name())
		in := false
		for _, line := range strings.Split(string(data), "\n") {
			switch {
			case strings.HasPrefix(line, "positives:"):
				in = true
				continue
			case len(line) > 0 && line[0] != ' ' && line[0] != '-' && line[0] != '#':
				in = false
			}
			l := strings.TrimSpace(line)
			l = strings.TrimPrefix(l, "- text:")
			l = strings.TrimPrefix(l, "-")
			l = strings.TrimSpace(l)
			if in && len(l) > 2 && (l[0] == '\'' || l[0] == '"') {
				out = append(out, strings.Trim(l, `'"`))
			}
		}
	}
	return out
}

var benignTemplates = []string{
	"ls -la {dir}", "ls", "ls -lh", "cd {dir}", "cd ..", "pwd", "cat {file}", "less {file}", "tail -n {n} {log}",
	"tail -f {log}", "head -{n} {file}", "vim {file}", "nano {file}", "grep -rn {word} {dir}", "grep -i error {log}",
	"git status", "git pull", "git log --oneline -{n}", "git diff HEAD~1", "git checkout -b feature/{word}",
	"git commit -am 'fix {word}'", "docker ps", "docker ps -a", "docker logs --tail {n} {svc}", "docker compose up -d",
	"docker images", "kubectl get pods -n {word}", "kubectl describe pod {svc}-{n}", "systemctl status {svc}",
	"systemctl restart {svc}", "journalctl -u {svc} --since today", "sudo apt update", "sudo apt install -y {pkg}",
	"apt list --upgradable", "yum install -y {pkg}", "pip install {pkg}", "npm install", "npm run build", "make",
	"make test", "go build ./...", "go test ./...", "python3 manage.py migrate", "python3 -m venv .venv",
	"source .venv/bin/activate", "df -h", "du -sh {dir}", "mkdir -p {dir}/{word}", "cp {file} {file}.bak",
	"mv {file} /tmp/{word}.txt", "rm -f /tmp/{word}.txt", "tar czf backup-{n}.tgz {dir}", "tar xzf {word}.tar.gz",
	"unzip {word}.zip", "echo $PATH", "echo hello", "export EDITOR=vim", "clear", "exit", "date", "uptime",
	"ssh deploy@{host}", "scp", "ping -c 3 {host}", "dig {host}", "nslookup {host}", "curl -I https://{host}/health",
	"mysql -u app -p {word}", "psql -U postgres -c 'select 1'", "redis-cli ping", "crontab -l", "sudo -i",
	"su - {word}", "chown -R www-data:www-data {dir}", "chmod 644 {file}", "openssl x509 -in cert.pem -noout -dates",
	"certbot renew --dry-run", "nginx -t", "htop", "free", "history", "which python3", "man {pkg}", "{pkg} --version",
	"sed -i 's/{word}/{word}2/g' {file}", "awk '{print $1}' {log} | sort | uniq -c | sort -rn | head",
	"find {dir} -name '*.log' -mtime +7", "wc -l {file}", "diff {file} {file}.bak", "ln -s {dir} current",
	"touch {file}", "stat {file}", "file {file}", "md5sum {file}", "sha256sum {word}.tar.gz", "env | grep -i lang",
	"alias ll='ls -la'", "screen -r", "tmux attach", "rsync -av {dir}/ backup:{dir}/", "zip -r {word}.zip {dir}",
	"ansible-playbook site.yml --check", "terraform plan", "helm list -A", "lsblk", "mount | grep {word}",
}

var fills = map[string][]string{
	"{dir}":  {"/var/www/html", "/home/deploy/app", "/opt/app", "/srv/data", "~/projects/api", "/etc/nginx/sites-available", "."},
	"{file}": {"config.yaml", "app.py", "README.md", "docker-compose.yml", ".env.example", "main.go", "index.html", "nginx.conf"},
	"{log}":  {"/var/log/nginx/access.log", "/var/log/syslog", "app.log", "/var/log/nginx/error.log"},
	"{n}":    {"5", "10", "20", "50", "100"},
	"{word}": {"api", "billing", "staging", "release", "users", "cache", "worker", "frontend"},
	"{svc}":  {"nginx", "postgresql", "redis", "app", "worker", "docker"},
	"{pkg}":  {"htop", "jq", "git", "build-essential", "requests", "curl", "tmux", "nodejs"},
	"{host}": {"example.com", "10.0.0.12", "db.internal", "api.example.org"},
}

func fillTemplate(tpl string, rng *rand.Rand) string {
	for k, vs := range fills {
		for strings.Contains(tpl, k) {
			tpl = strings.Replace(tpl, k, vs[rng.Intn(len(vs))], 1)
		}
	}
	return tpl
}

// The benchmarks the figure comes from: the prefiltered engine against the naive loop
// over the same compiled regexps, per command, on 10,000 realistic commands.
func benchEngine(b *testing.B, eval func(*RuleSet, *abi.Event, []abi.TagDraft) []abi.TagDraft) {
	set := loadShipped(b)
	cmds := benchCommands(10000)
	evs := make([]*abi.Event, len(cmds))
	for i, c := range cmds {
		evs[i] = commandEvent(c)
	}
	out := make([]abi.TagDraft, 0, 64)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		out = eval(set, evs[i%len(evs)], out[:0])
	}
}

func BenchmarkEnginePrefiltered(b *testing.B) { benchEngine(b, (*RuleSet).Eval) }
func BenchmarkEngineNaive(b *testing.B)       { benchEngine(b, (*RuleSet).evalNaive) }

// BenchmarkEngineNoFire is the allocation figure: a benign command through the prefiltered
// engine.
func BenchmarkEngineNoFire(b *testing.B) {
	set := loadShipped(b)
	ev := commandEvent("docker logs --tail 100 worker")
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		set.Eval(ev, nil)
	}
}

// BenchmarkRule measures each command rule's regexp on the commands its prefilter lets
// through (from the 10,000-command stream): the cost a rule adds to the engine. A rule whose
// compiled program exceeds 500 instructions loses Go's backtracker and costs several times more.
func BenchmarkRule(b *testing.B) {
	set := loadShipped(b)
	e := set.engines[abi.KindCommand]
	cmds := benchCommands(10000)
	cands := make([][]string, len(e.rules))
	for _, c := range cmds {
		hits := make([]uint64, e.words)
		e.groups[e.field[0]].candidates(c, hits)
		for i := range e.rules {
			if hits[i/64]&(1<<(i%64)) != 0 {
				cands[i] = append(cands[i], c)
			}
		}
	}
	for i, r := range e.rules {
		if len(cands[i]) == 0 {
			continue
		}
		b.Run(r.ID, func(b *testing.B) {
			for n := 0; n < b.N; n++ {
				r.re.MatchString(cands[i][n%len(cands[i])])
			}
			b.ReportMetric(float64(len(cands[i]))/float64(len(cmds)), "candidates/cmd")
		})
	}
}
