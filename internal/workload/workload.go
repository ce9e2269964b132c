// Package workload generates the stream of shell commands that the project's performance
// tools feed the tagger: rules' engine benchmarks (BenchmarkEnginePrefiltered and its
// neighbours, TestEngineEqualsNaive) and bus's load tool (TestLoad under TTP_LOAD=1).
//
// It exists so that both draw the same command mix from one definition, and draw it
// deterministically: a seed fixes the stream, every run and every process alike, so two
// benchmark runs measure the same commands in the same order and benchstat compares like with
// like. Nothing here iterates a map; templates and placeholder values are filled in the fixed
// order of the slices below.
//
// The mix: each command is, with probability MaliciousPercent/100, an attacker command drawn
// uniformly from the positives of the precision corpora (testdata/corpus, read by
// AttackerCommands), and otherwise a benign administration command made from one of about 100
// templates whose placeholders (directories, files, logs, services, packages, hosts) are
// filled at random.
//
// The two copies this package replaces (rules/engine_test.go and bus/load_test.go) had the
// same templates, values and 15% share; they differed in that the engine's filled placeholders
// in map order (so its stream changed from run to run) while the load tool's filled them in a
// fixed order and drew from a caller's random source, interleaved with its own draws. This
// package keeps the load tool's form, the richer one: a Generator over a caller's *rand.Rand
// (math/rand, whose seeded streams Go keeps stable), with the same draws in the same order, so
// the load tool's realistic mix is byte for byte the one behind the figures in bus/SUBJECTS.md.
//
// Attacker commands are read from the corpora line by line, as both copies did: a quoted
// item loses every quote at either end and its escapes stay as written, so a few differ from
// what the YAML says. They are attacker-like text either way, which is all a workload needs.
package workload

import (
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
)

// Seed is the seed the engine benchmarks and the load tool use, so that their streams are the
// same from one run to the next; a tool that wants another stream passes its own.
const Seed = 42

// MaliciousPercent is the share, in percent, of generated commands drawn from the attacker
// commands rather than made from benign templates: roughly what a busy SSH honeypot records,
// where most sessions are scanners and administrators' look-alikes and a minority act.
const MaliciousPercent = 15

// Generator makes commands one at a time, for callers (the load tool) that interleave their
// own random draws with the commands' and so need the stream rather than a slice. It is not
// safe for concurrent use, as the *rand.Rand it draws from is not.
type Generator struct {
	rng     *rand.Rand
	attacks []string
}

// New returns a Generator drawing from rng and choosing attacker commands from attacks
// (typically AttackerCommands' result). With no attacks every command is benign. The caller
// owns rng's seed, and with it the stream.
func New(rng *rand.Rand, attacks []string) *Generator {
	return &Generator{rng: rng, attacks: attacks}
}

// Next returns the next command: an attacker command MaliciousPercent times in a hundred, a
// filled benign template otherwise.
func (g *Generator) Next() string {
	cmd, _ := g.next()
	return cmd
}

// next is Next that also says whether the command is an attacker's, for the share test.
func (g *Generator) next() (string, bool) {
	if len(g.attacks) > 0 && g.rng.Intn(100) < MaliciousPercent {
		return g.attacks[g.rng.Intn(len(g.attacks))], true
	}
	tpl := benignTemplates[g.rng.Intn(len(benignTemplates))]
	for _, f := range fills {
		for strings.Contains(tpl, f.key) {
			tpl = strings.Replace(tpl, f.key, f.values[g.rng.Intn(len(f.values))], 1)
		}
	}
	return tpl, false
}

// Commands returns the first n commands of the stream that seed makes: the whole workload at
// once, for callers (the engine benchmarks) that draw nothing else. The same seed and attacks
// give the same slice.
func Commands(seed int64, n int, attacks []string) []string {
	g := New(rand.New(rand.NewSource(seed)), attacks)
	out := make([]string, n)
	for i := range out {
		out[i] = g.Next()
	}
	return out
}

// AttackerCommands reads the positives of the precision corpora in dir (the repository's
// testdata/corpus: one YAML file a rule, with a positives: list), in file-name order, so the
// attacker side of the mix is the commands the rules are meant to catch. It fails if dir
// cannot be read or holds no positives, rather than let a benchmark silently run on benign
// commands alone.
func AttackerCommands(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir) // sorted by name
	if err != nil {
		return nil, fmt.Errorf("workload: attacker commands: %w", err)
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("workload: attacker commands: %w", err)
		}
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
	if len(out) == 0 {
		return nil, fmt.Errorf("workload: no positives in %s", dir)
	}
	return out, nil
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

// fills are the templates' placeholders and their values, in the order they are filled: a
// slice, not a map, so that a seed makes the same stream every run.
var fills = []struct {
	key    string
	values []string
}{
	{"{dir}", []string{"/var/www/html", "/home/deploy/app", "/opt/app", "/srv/data", "~/projects/api", "/etc/nginx/sites-available", "."}},
	{"{file}", []string{"config.yaml", "app.py", "README.md", "docker-compose.yml", ".env.example", "main.go", "index.html", "nginx.conf"}},
	{"{log}", []string{"/var/log/nginx/access.log", "/var/log/syslog", "app.log", "/var/log/nginx/error.log"}},
	{"{n}", []string{"5", "10", "20", "50", "100"}},
	{"{word}", []string{"api", "billing", "staging", "release", "users", "cache", "worker", "frontend"}},
	{"{svc}", []string{"nginx", "postgresql", "redis", "app", "worker", "docker"}},
	{"{pkg}", []string{"htop", "jq", "git", "build-essential", "requests", "curl", "tmux", "nodejs"}},
	{"{host}", []string{"example.com", "10.0.0.12", "db.internal", "api.example.org"}},
}
