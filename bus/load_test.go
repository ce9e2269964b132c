package bus

// The load tool: the real worker (NewWorker over dispatch.Dispatcher with the shipped rules and,
// when built, the plugins of ../plugins) on an in-process JetStream server and a real tag store,
// end to end: publish N events, tag, store, publish envelopes, ack. It is a test, skipped unless
// TTP_LOAD=1, because one run takes seconds to minutes and its figures depend on the machine:
//
//	TTP_LOAD=1 TTP_TEST_POSTGRES_URL='postgres://postgres@127.0.0.1:5432/test?sslmode=disable' \
//	    go test -count=1 -v -timeout 60m -run '^TestLoad$' ./bus
//
// Each configuration runs twice: flat out (events/s from the first publish to the last ack,
// the publisher running alongside the worker as an upstream producer does) and paced at half
// that rate, where every event's latency is measured from the moment it was published to the
// moment the worker's ack reached the server (the test watches $JS.ACK.<stream>.<durable>.>
// and matches the ack's stream sequence with the publish's PubAck). Knobs, all optional:
//
//	TTP_LOAD_EVENTS=100000        events per flat-out run (paced runs: 10 s worth, at most this)
//	TTP_LOAD_MIXES=realistic,worst
//	TTP_LOAD_STORES=sqlite,postgres   postgres needs TTP_TEST_POSTGRES_URL (a schema per run)
//	TTP_LOAD_SYNC=normal          normal, always (JetStream SyncAlways + SQLite synchronous=FULL,
//	                              what `ttp serve --sync always` sets) or both
//	TTP_LOAD_MODE=e2e             e2e (publisher alongside the worker), drain (the N events are
//	                              published first, the clock starts when the worker does), or both
//	TTP_LOAD_RATE=0               paced rate in events/s; 0 is half the flat-out rate just
//	                              measured; -1 skips the paced run
//	TTP_LOAD_PLUGINS=../plugins   "" or "none": the built-in engine only
//	TTP_LOAD_BATCH, TTP_LOAD_INFLIGHT   the worker's Config.Batch and InFlight (daemon defaults)
//	TTP_LOAD_LINGER=2ms           the worker's Config.Linger (a Go duration; negative: no wait)
//	TTP_LOAD_DEADLINE_MS=0        per plugin call, as the daemon's --deadline (0: its default, 50 ms)
//
// For profiles set TTP_LOAD_PROFILE=DIR: each run writes DIR/<mix>-<store>-<sync>-<mode>.pprof
// covering its timed part only (go test -cpuprofile would add the plugins' compilation and the
// workload's preparation). A profile covers the worker, the NATS server, the store driver and
// the publisher, which share the process as in `ttp serve` with its embedded server; read it
// with go tool pprof -top DIR/<run>.pprof. TTP_LOAD_TRACE=DIR writes an execution trace of the
// same part, DIR/<run>.trace (go tool trace), which shows which goroutine holds a core when.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"runtime/trace"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/decnet/ttp/abi"
	"github.com/decnet/ttp/dispatch"
	"github.com/decnet/ttp/host"
	"github.com/decnet/ttp/internal/workload"
	"github.com/decnet/ttp/rules"
	"github.com/decnet/ttp/store"
	"github.com/decnet/ttp/store/storetest"
	"github.com/decnet/ttp/wasm"
)

func TestLoad(t *testing.T) {
	if os.Getenv("TTP_LOAD") != "1" {
		t.Skip("the load tool: set TTP_LOAD=1 (see load_test.go for the knobs)")
	}
	n := envInt("TTP_LOAD_EVENTS", 100_000)
	rate := envInt("TTP_LOAD_RATE", 0)
	cfg := Config{Batch: envInt("TTP_LOAD_BATCH", 0), InFlight: envInt("TTP_LOAD_INFLIGHT", 0), Name: "load"}
	if v := os.Getenv("TTP_LOAD_LINGER"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("TTP_LOAD_LINGER: %v", err)
		}
		cfg.Linger = d
	}
	pluginDir := envStr("TTP_LOAD_PLUGINS", "../plugins")
	if pluginDir == "none" {
		pluginDir = ""
	}
	d, plugins := loadDispatcher(t, pluginDir)
	t.Logf("rules from ../rules/ttp; plugins: %v; worker batch %d, linger %v, inflight %d; GOMAXPROCS %d",
		plugins, cfg.withDefaults().Batch, cfg.withDefaults().Linger, cfg.withDefaults().InFlight, runtime.GOMAXPROCS(0))

	mixes := map[string]func(*testing.T, *dispatch.Dispatcher, int) *prepared{"realistic": realisticMix, "worst": worstMix}
	var results []loadResult
	for _, mix := range envList("TTP_LOAD_MIXES", "realistic,worst") {
		gen, ok := mixes[mix]
		if !ok {
			t.Fatalf("TTP_LOAD_MIXES: unknown mix %q", mix)
		}
		wl := gen(t, d, n)
		t.Logf("mix %s: %d events, %d tags expected (%.3f a event), %d sessions, %d events with no tag",
			mix, len(wl.data), wl.tags, float64(wl.tags)/float64(len(wl.data)), wl.sessions, wl.untagged)
		for _, st := range envList("TTP_LOAD_STORES", "sqlite,postgres") {
			for _, sync := range syncModes() {
				for _, mode := range modes() {
					name := fmt.Sprintf("%s/%s/sync=%s/%s", mix, st, sync, mode)
					var flat float64
					t.Run(name, func(t *testing.T) {
						r := runLoad(t, loadRun{d: d, wl: wl, store: st, sync: sync == "always", drain: mode == "drain", cfg: cfg})
						r.mix, r.storeName, r.sync, r.mode = mix, st, sync, mode
						t.Log(r.String())
						results = append(results, r)
						flat = r.eventsPerSec
					})
					if rate < 0 || mode == "drain" || (flat == 0 && rate == 0) {
						continue
					}
					t.Run(name+"/paced", func(t *testing.T) {
						pr := rate
						if pr == 0 {
							pr = int(flat / 2)
						}
						pn := min(len(wl.data), pr*10)
						p := runLoad(t, loadRun{d: d, wl: wl.head(pn), store: st, sync: sync == "always", cfg: cfg, rate: float64(pr)})
						p.mix, p.storeName, p.sync, p.mode = mix, st, sync, fmt.Sprintf("paced %d/s", pr)
						t.Log(p.String())
						results = append(results, p)
					})
				}
			}
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n%-9s %-8s %-6s %-15s %8s %8s %7s %9s %9s %9s %9s %8s %5s %6s %6s\n", "mix", "store", "sync", "mode",
		"events", "tags", "secs", "events/s", "p50", "p99", "max", "cpuµs/ev", "cores", "others", "load1")
	// cpuµs/ev is the CPU time of the whole process (worker, NATS server, store driver,
	// publisher) over the run, per event; cores is that CPU time over the run's wall time, and
	// others the cores the rest of the machine used meanwhile (from /proc/stat), which tells a
	// run held back by its own pipeline from one that other processes crowded; load1 is the higher of the one-minute load averages
	// at the start and the end of the run, which counts the run itself.
	for _, r := range results {
		lat := func(d time.Duration) string {
			if r.lat == nil {
				return "-"
			}
			return d.Round(10 * time.Microsecond).String()
		}
		fmt.Fprintf(&b, "%-9s %-8s %-6s %-15s %8d %8d %7.2f %9.0f %9s %9s %9s %8.1f %5.2f %6.2f %6.2f\n", r.mix, r.storeName, r.sync, r.mode,
			r.events, r.tags, r.elapsed.Seconds(), r.eventsPerSec, lat(r.p(0.50)), lat(r.p(0.99)), lat(r.p(1)),
			r.cpu.Seconds()*1e6/float64(r.events), r.cores(), r.others, r.load1)
	}
	t.Log(b.String())
}

// prepared is a run's events: their JSON and subjects, made before the clock starts.
type prepared struct {
	data               [][]byte
	subjects           []string
	tags               int64 // tags the dispatcher makes of them (checked against the store)
	sessions, untagged int
	perEvent           []int32 // tags of each event, for head
}

// head returns the first n events of w.
func (w *prepared) head(n int) *prepared {
	h := &prepared{data: w.data[:n], subjects: w.subjects[:n], perEvent: w.perEvent[:n]}
	for _, k := range h.perEvent {
		h.tags += int64(k)
		if k == 0 {
			h.untagged++
		}
	}
	return h
}

type loadRun struct {
	d     *dispatch.Dispatcher
	wl    *prepared
	store string
	sync  bool
	drain bool
	rate  float64 // events/s; 0 is flat out
	cfg   Config
}

type loadResult struct {
	mix, storeName, sync, mode string
	events, tags               int64
	elapsed                    time.Duration
	eventsPerSec               float64
	cpu                        time.Duration
	load1                      float64
	others                     float64 // cores the rest of the machine used during the run
	commits                    int64
	insert, mark               []time.Duration // the store calls' durations, sorted
	gcPauses                   []float64       // runtime/metrics' GC pause histogram over the run
	lat                        []time.Duration // sorted; nil unless paced
}

func (r loadResult) p(q float64) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	return r.lat[min(len(r.lat)-1, int(q*float64(len(r.lat))))]
}

// cores is the CPU the process used over the run's wall time, in cores.
func (r loadResult) cores() float64 { return r.cpu.Seconds() / r.elapsed.Seconds() }

func (r loadResult) String() string {
	s := fmt.Sprintf("%d events, %d tags in %.2fs: %.0f events/s; %.1f µs CPU an event (all of the process, %.2f cores; others %.2f cores); %d store commits (%.0f events a commit); load %.2f",
		r.events, r.tags, r.elapsed.Seconds(), r.eventsPerSec, r.cpu.Seconds()*1e6/float64(r.events), r.cores(), r.others, r.commits,
		float64(r.events)/float64(max(r.commits, 1)), r.load1)
	q := func(d []time.Duration, f float64) time.Duration {
		if len(d) == 0 {
			return 0
		}
		return d[min(len(d)-1, int(f*float64(len(d))))].Round(time.Microsecond)
	}
	s += fmt.Sprintf("; store insert p50 %v p99 %v max %v, mark p50 %v p99 %v max %v; GC %s",
		q(r.insert, 0.5), q(r.insert, 0.99), q(r.insert, 1), q(r.mark, 0.5), q(r.mark, 0.99), q(r.mark, 1), gcSummary(r.gcPauses))
	if r.lat != nil {
		s += fmt.Sprintf("; latency publish->ack p50 %v p90 %v p99 %v max %v", r.p(0.5), r.p(0.9), r.p(0.99), r.p(1))
	}
	return s
}

// runLoad runs one configuration on a fresh server and store.
func runLoad(t *testing.T, lr loadRun) loadResult {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv := startServer(t, lr.sync)
	connect := func(name string) (*nats.Conn, jetstream.JetStream) {
		nc, err := nats.Connect(srv.ClientURL(), nats.Name(name))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		js, err := NewJetStream(nc, lr.cfg) // as ttp serve
		if err != nil {
			t.Fatal(err)
		}
		return nc, js
	}
	_, wjs := connect("ttp worker")
	_, pjs := connect("upstream publisher")
	cfg := lr.cfg
	if err := Streams(ctx, wjs, cfg); err != nil {
		t.Fatal(err)
	}
	var url string
	switch lr.store {
	case "sqlite":
		url = "sqlite://" + filepath.Join(t.TempDir(), "ttp.db")
		if lr.sync {
			url += "?sync=always" // what serve --sync always does
		}
	case "postgres":
		url = storetest.PostgresURL(t) // skips without TTP_TEST_POSTGRES_URL
	default:
		t.Fatalf("unknown store %q", lr.store)
	}
	st, err := store.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()

	n := len(lr.wl.data)
	// Latency: the publish time of each event by stream sequence, and its ack time as the
	// server saw it go by (a core subscription on the ack subjects of the durable).
	var sent, acked []int64
	var ackCount atomic.Int64
	if lr.rate > 0 {
		sent = make([]int64, n+1)
		acked = make([]int64, n+1)
		mnc, _ := connect("ack monitor")
		sub, err := mnc.Subscribe("$JS.ACK."+DefaultInStream+"."+DefaultDurable+".>", func(m *nats.Msg) {
			now := time.Now().UnixNano()
			if seq := ackStreamSeq(m.Subject); seq > 0 && seq <= uint64(n) && acked[seq] == 0 {
				acked[seq] = now
				ackCount.Add(1)
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		sub.SetPendingLimits(-1, -1)
		if err := mnc.Flush(); err != nil {
			t.Fatal(err)
		}
	}

	ts := &timedStore{TagStore: storeAdapter{st}}
	cfg.Logger = quiet
	w := NewWorker(wjs, lr.d, ts, cfg)
	wctx, wstop := context.WithCancel(ctx)
	done := make(chan struct{})
	startWorker := func() {
		go func() { w.Run(wctx); close(done) }()
		for start := time.Now(); ; time.Sleep(time.Millisecond) { // Run creates the durable
			if _, err := wjs.Consumer(ctx, cfg.withDefaults().InStream, cfg.withDefaults().Durable); err == nil {
				return
			}
			if time.Since(start) > 10*time.Second {
				t.Fatal("the worker made no consumer")
			}
		}
	}
	defer func() { wstop(); <-done }()

	profile := func() {} // starts the run's CPU profile, if asked for, with the clock
	stopProfile := func() {}
	if dir := os.Getenv("TTP_LOAD_PROFILE"); dir != "" {
		name := strings.NewReplacer("/", "-", " ", "", "=", "").Replace(strings.TrimPrefix(t.Name(), "TestLoad/"))
		f, err := os.Create(filepath.Join(dir, name+".pprof"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		profile = func() {
			if err := pprof.StartCPUProfile(f); err != nil {
				t.Fatal(err)
			}
			stopProfile = pprof.StopCPUProfile
		}
		defer func() { stopProfile() }()
	}
	if dir := os.Getenv("TTP_LOAD_TRACE"); dir != "" {
		name := strings.NewReplacer("/", "-", " ", "", "=", "").Replace(strings.TrimPrefix(t.Name(), "TestLoad/"))
		f, err := os.Create(filepath.Join(dir, name+".trace"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		prof := profile
		profile = func() {
			prof()
			if err := trace.Start(f); err != nil {
				t.Fatal(err)
			}
			stopCPU := stopProfile
			stopProfile = func() { stopCPU(); trace.Stop() }
		}
		defer func() { stopProfile() }() // runs first, so the trace is stopped on a failure too
	}
	var t0 time.Time
	var ru0 syscall.Rusage
	perr := make(chan error, 1)
	load := readLoad()
	var busy0 time.Duration
	var gc0 []float64
	if lr.drain {
		if err := publish(ctx, pjs, lr.wl, 0, nil); err != nil {
			t.Fatal(err)
		}
		perr <- nil
		profile()
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
		busy0 = machineBusy()
		gc0 = gcPauses()
		ts.reset()
		t0 = time.Now()
		startWorker()
	} else {
		startWorker()
		profile()
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
		busy0 = machineBusy()
		gc0 = gcPauses()
		ts.reset()
		t0 = time.Now()
		go func() { perr <- publish(ctx, pjs, lr.wl, lr.rate, sent) }()
	}
	var t1 time.Time
	deadline := time.Now().Add(time.Duration(n)*time.Millisecond + 60*time.Second) // 1,000 events/s at least
	for {
		if w.Stats.Acked.Load() >= int64(n) && (lr.rate == 0 || ackCount.Load() >= int64(n)) {
			t1 = time.Now()
			stopProfile()
			stopProfile = func() {}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("acked %d of %d (errors %d)", w.Stats.Acked.Load(), n, w.Stats.Errors.Load())
		}
		time.Sleep(time.Millisecond)
	}
	var ru1 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	busy := machineBusy() - busy0
	if err := <-perr; err != nil { // the publisher is done with sent
		t.Fatal(err)
	}
	load = max(load, readLoad())
	el := t1.Sub(t0)
	r := loadResult{events: int64(n), elapsed: el, eventsPerSec: float64(n) / el.Seconds(),
		cpu:   time.Duration(syscall.TimevalToNsec(ru1.Utime) + syscall.TimevalToNsec(ru1.Stime) - syscall.TimevalToNsec(ru0.Utime) - syscall.TimevalToNsec(ru0.Stime)),
		load1: load, commits: w.Stats.Commits.Load()}
	r.others = max(0, (busy-r.cpu).Seconds()/el.Seconds())
	r.insert, r.mark = ts.sorted()
	r.gcPauses = gcPauses()
	for i := range min(len(gc0), len(r.gcPauses)) {
		r.gcPauses[i] -= gc0[i]
	}
	if w.Stats.Errors.Load() > 0 || w.Stats.DeadLettered.Load() > 0 {
		t.Errorf("batch errors %d, dead letters %d", w.Stats.Errors.Load(), w.Stats.DeadLettered.Load())
	}
	got, err := st.Count(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r.tags = got
	if got != lr.wl.tags {
		t.Errorf("store holds %d tags, the dispatcher makes %d of these events", got, lr.wl.tags)
	}
	if env, want := w.Stats.Envelopes.Load(), int64(n-lr.wl.untagged); env != want {
		t.Errorf("%d envelopes published, want one per tagged event (%d)", env, want)
	}
	if lr.rate > 0 {
		r.lat = make([]time.Duration, 0, n)
		for seq := 1; seq <= n; seq++ {
			if sent[seq] == 0 || acked[seq] == 0 {
				t.Errorf("event of stream sequence %d: sent %d, acked %d", seq, sent[seq], acked[seq])
				continue
			}
			r.lat = append(r.lat, time.Duration(acked[seq]-sent[seq]))
		}
		slices.Sort(r.lat)
	}
	return r
}

// publish sends the workload on js as an upstream producer does (async, a bounded window of
// unacknowledged publishes), flat out or at rate events/s; with sent, it records each event's
// publish time under the stream sequence its PubAck returns.
func publish(ctx context.Context, js jetstream.JetStream, wl *prepared, rate float64, sent []int64) error {
	type pending struct {
		f  jetstream.PubAckFuture
		at int64
	}
	const window = 2048
	var mu sync.Mutex
	var q []pending
	wait := func(ps []pending) error {
		for _, p := range ps {
			select {
			case a := <-p.f.Ok():
				if sent != nil && a.Sequence < uint64(len(sent)) {
					mu.Lock()
					sent[a.Sequence] = p.at
					mu.Unlock()
				}
			case err := <-p.f.Err():
				return fmt.Errorf("publish: %w", err)
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	}
	start := time.Now()
	for i := range wl.data {
		if rate > 0 {
			for due := int(rate * time.Since(start).Seconds()); i >= due; due = int(rate * time.Since(start).Seconds()) {
				time.Sleep(time.Millisecond)
			}
		}
		at := time.Now().UnixNano()
		f, err := js.PublishMsgAsync(&nats.Msg{Subject: wl.subjects[i], Data: wl.data[i]})
		if errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
			<-js.PublishAsyncComplete()
			f, err = js.PublishMsgAsync(&nats.Msg{Subject: wl.subjects[i], Data: wl.data[i]})
		}
		if err != nil {
			return fmt.Errorf("publish %d: %w", i, err)
		}
		q = append(q, pending{f, at})
		if len(q) >= 2*window {
			if err := wait(q[:window]); err != nil {
				return err
			}
			q = append(q[:0], q[window:]...)
		}
	}
	return wait(q)
}

// ackStreamSeq reads the stream sequence out of an ack subject:
// $JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<time>.<pending>, or the
// form with domain and account hash ($JS.ACK.<domain>.<hash>.<stream>...).
func ackStreamSeq(subject string) uint64 {
	tok := strings.Split(subject, ".")
	i := 5
	if len(tok) >= 11 {
		i = 7
	}
	if len(tok) <= i {
		return 0
	}
	seq, _ := strconv.ParseUint(tok[i], 10, 64)
	return seq
}

// startServer is natstest.Start with SyncAlways settable, as ttp serve's embedded server.
func startServer(t *testing.T, syncAlways bool) *server.Server {
	t.Helper()
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(),
		NoLog: true, NoSigs: true, SyncAlways: syncAlways, MaxPayload: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	t.Cleanup(s.Shutdown)
	return s
}

// loadDispatcher is the daemon's host: the shipped rules and, when dir holds built modules,
// the plugins, loaded as ttp serve loads them (rules first, then the plugin directory).
func loadDispatcher(t *testing.T, dir string) (*dispatch.Dispatcher, []string) {
	ctx := context.Background()
	d := dispatch.New(dispatch.Config{Logger: quiet})
	compiler, err := host.NewCompiler(filepath.Join(t.TempDir(), "wazero-cache"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { compiler.Close(context.Background()) })
	// The per-call deadline is the daemon's (--deadline, wasm.DefaultDeadline) unless
	// TTP_LOAD_DEADLINE_MS says otherwise; load-time calls get the host's own floor.
	lim := wasm.Limits{Deadline: time.Duration(envInt("TTP_LOAD_DEADLINE_MS", 0)) * time.Millisecond}
	h, err := host.New(host.Config{Dispatcher: d, Compiler: compiler, Logger: quiet, Limits: func(string) wasm.Limits { return lim }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	loaded, err := rules.LoadDir("../rules/ttp")
	if err != nil {
		t.Fatal(err)
	}
	changes := make([]rules.Change, len(loaded))
	for i, r := range loaded {
		changes[i] = rules.Change{Op: rules.RuleUpdated, ID: r.ID, Rule: r}
	}
	if err := h.ApplyRules(ctx, changes...); err != nil {
		t.Fatal(err)
	}
	var names []string
	if wasm, _ := filepath.Glob(filepath.Join(dir, "*.wasm")); dir != "" && len(wasm) > 0 {
		if err := h.LoadPluginDir(ctx, dir); err != nil {
			t.Logf("plugins not loaded (ttp serve goes on without them too): %v", err)
		}
		for _, p := range h.Plugins() {
			names = append(names, fmt.Sprintf("%s (%d rules)", p.Producer, p.Rules))
		}
	}
	return d, names
}

// loadEvent is the JSON an upstream producer sends.
type loadEvent struct {
	SourceKind   string         `json:"source_kind"`
	SourceID     string         `json:"source_id"`
	AttackerUUID string         `json:"attacker_uuid,omitempty"`
	SessionID    string         `json:"session_id,omitempty"`
	DeckyID      string         `json:"decky_id,omitempty"`
	ObservedAt   time.Time      `json:"observed_at"`
	Payload      map[string]any `json:"payload"`
}

// build encodes events and counts the tags the dispatcher makes of each.
func build(t *testing.T, d *dispatch.Dispatcher, evs []loadEvent) *prepared {
	wl := &prepared{data: make([][]byte, len(evs)), subjects: make([]string, len(evs)), perEvent: make([]int32, len(evs))}
	var tags []abi.Tag
	for i, e := range evs {
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		wl.data[i], wl.subjects[i] = b, SubjectFor(DefaultPrefix, e.SourceKind)
		ev, err := abi.DecodeEvent(b)
		if err != nil {
			t.Fatal(err)
		}
		if tags, err = d.Tag(context.Background(), ev, tags[:0]); err != nil {
			t.Fatal(err)
		}
		wl.perEvent[i] = int32(len(tags))
		wl.tags += int64(len(tags))
		if len(tags) == 0 {
			wl.untagged++
		}
		if e.SourceKind == abi.KindSession {
			wl.sessions++
		}
	}
	return wl
}

var loadEpoch = time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)

// realisticMix: commands of the shared workload (internal/workload: about 85% benign
// administration, 15% attacker commands from the corpora's positives), each its own event,
// from 500 attackers in 2,000 sessions, and one event in 50 a session.ended of 4 to 12 commands
// of the same stream (which the behavioral plugin reads, and whose commands fan out).
func realisticMix(t *testing.T, d *dispatch.Dispatcher, n int) *prepared {
	rng := rand.New(rand.NewSource(workload.Seed)) // the workload's draws and the mix's, interleaved
	gen := workload.New(rng, attackerCommands(t))
	evs := make([]loadEvent, n)
	for i := range evs {
		at := loadEpoch.Add(time.Duration(i) * time.Millisecond)
		sess := rng.Intn(2000)
		e := loadEvent{SourceID: fmt.Sprintf("load-%08d", i), AttackerUUID: fmt.Sprintf("6f1c2d0e-1b7a-4f2e-9a51-%012d", sess%500),
			SessionID: fmt.Sprintf("s%05d", sess), DeckyID: fmt.Sprintf("ssh-%02d", sess%16), ObservedAt: at}
		if rng.Intn(50) == 0 {
			k := 4 + rng.Intn(9)
			cmds, times := make([]any, k), make([]any, k)
			for j := range cmds {
				cmds[j], times[j] = gen.Next(), j*(100+rng.Intn(2000))
			}
			e.SourceKind = abi.KindSession
			e.Payload = map[string]any{"commands": cmds, "command_times_ms": times, "duration_ms": k * 1500,
				"login_failures": rng.Intn(4), "login_success": true, "usernames": []string{"root"}, "client_version": "SSH-2.0-Go"}
		} else {
			e.SourceKind = abi.KindCommand
			e.Payload = map[string]any{"command_text": gen.Next()}
		}
		evs[i] = e
	}
	return build(t, d, evs)
}

// worstMix: every event a command that one rule with two emits fires and nothing else does,
// each with its own source_id, so every event makes two tags, one envelope and two rule.fired
// messages.
func worstMix(t *testing.T, d *dispatch.Dispatcher, n int) *prepared {
	var two []string
	for _, c := range attackerCommands(t) {
		ev := abi.Event{SourceKind: abi.KindCommand, SourceID: "probe", ObservedAt: loadEpoch, Payload: map[string]any{"command_text": c}}
		tags, err := d.Tag(context.Background(), ev, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(tags) == 2 && tags[0].RuleID == tags[1].RuleID {
			two = append(two, c)
		}
	}
	if len(two) == 0 {
		t.Fatal("no corpus command fires exactly one rule with two emits")
	}
	evs := make([]loadEvent, n)
	for i := range evs {
		evs[i] = loadEvent{SourceKind: abi.KindCommand, SourceID: fmt.Sprintf("worst-%08d", i),
			AttackerUUID: "0c5e9b7a-51d4-4a0e-8f3a-7d2b94c1e777", SessionID: fmt.Sprintf("w%05d", i/20), DeckyID: "ssh-ams-02",
			ObservedAt: loadEpoch.Add(time.Duration(i) * time.Millisecond), Payload: map[string]any{"command_text": two[i%len(two)]}}
	}
	wl := build(t, d, evs)
	if wl.tags != 2*int64(n) {
		t.Fatalf("worst mix makes %d tags of %d events, want two each", wl.tags, n)
	}
	return wl
}

// attackerCommands is the workload's attacker side, the positives of ../testdata/corpus.
func attackerCommands(t *testing.T) []string {
	t.Helper()
	attacks, err := workload.AttackerCommands("../testdata/corpus")
	if err != nil {
		t.Fatal(err)
	}
	return attacks
}

func syncModes() []string {
	switch s := envStr("TTP_LOAD_SYNC", "normal"); s {
	case "both":
		return []string{"normal", "always"}
	case "normal", "always":
		return []string{s}
	default:
		panic("TTP_LOAD_SYNC: want normal, always or both, not " + s)
	}
}

func modes() []string {
	switch s := envStr("TTP_LOAD_MODE", "e2e"); s {
	case "both":
		return []string{"e2e", "drain"}
	case "e2e", "drain":
		return []string{s}
	default:
		panic("TTP_LOAD_MODE: want e2e, drain or both, not " + s)
	}
}

func envStr(k, def string) string {
	if v, ok := os.LookupEnv(k); ok {
		if v == "" {
			return "none"
		}
		return v
	}
	return def
}

func envInt(k string, def int) int {
	v := os.Getenv(k)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		panic(k + ": " + err.Error())
	}
	return n
}

func envList(k, def string) []string {
	return strings.Split(envStr(k, def), ",")
}

// timedStore times the worker's store calls, to tell a slow commit from the other causes of
// a late ack.
type timedStore struct {
	TagStore
	mu           sync.Mutex
	insert, mark []time.Duration
}

func (s *timedStore) Insert(ctx context.Context, ups []Upstream) ([][]abi.Tag, error) {
	t := time.Now()
	in, err := s.TagStore.Insert(ctx, ups)
	s.record(&s.insert, time.Since(t))
	return in, err
}

func (s *timedStore) MarkPublished(ctx context.Context, ids []string) error {
	t := time.Now()
	err := s.TagStore.MarkPublished(ctx, ids)
	s.record(&s.mark, time.Since(t))
	return err
}

func (s *timedStore) record(to *[]time.Duration, d time.Duration) {
	s.mu.Lock()
	*to = append(*to, d)
	s.mu.Unlock()
}

func (s *timedStore) reset() {
	s.mu.Lock()
	s.insert, s.mark = nil, nil
	s.mu.Unlock()
}

func (s *timedStore) sorted() (insert, mark []time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	insert, mark = slices.Clone(s.insert), slices.Clone(s.mark)
	slices.Sort(insert)
	slices.Sort(mark)
	return insert, mark
}

// gcMetric is the runtime's histogram of stop-the-world GC pauses.
const gcMetric = "/sched/pauses/total/gc:seconds"

// gcPauses returns the counts of gcMetric's buckets so far.
func gcPauses() []float64 {
	m := []metrics.Sample{{Name: gcMetric}}
	metrics.Read(m)
	if m[0].Value.Kind() != metrics.KindFloat64Histogram {
		return nil
	}
	h := m[0].Value.Float64Histogram()
	out := make([]float64, len(h.Counts))
	for i, c := range h.Counts {
		out[i] = float64(c)
	}
	return out
}

// gcSummary is how many GC pauses counts holds and the upper bound of the longest.
func gcSummary(counts []float64) string {
	m := []metrics.Sample{{Name: gcMetric}}
	metrics.Read(m)
	if m[0].Value.Kind() != metrics.KindFloat64Histogram {
		return "-"
	}
	buckets := m[0].Value.Float64Histogram().Buckets
	var n float64
	longest := 0.0
	for i, c := range counts {
		if c > 0 && i+1 < len(buckets) {
			n += c
			longest = buckets[i+1]
		}
	}
	return fmt.Sprintf("%.0f pauses, longest < %v", n, time.Duration(longest*1e9).Round(time.Microsecond))
}

// machineBusy is the CPU time every core of the machine spent not idle since boot (the user,
// nice, system, irq and softirq columns of /proc/stat's first line; 0 if unreadable).
func machineBusy() time.Duration {
	b, _ := os.ReadFile("/proc/stat")
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	var ticks int64
	for i, col := range f {
		if i == 0 || i == 4 || i == 5 || i > 7 { // the name, idle, iowait, steal and guests
			continue
		}
		n, _ := strconv.ParseInt(col, 10, 64)
		ticks += n
	}
	return time.Duration(ticks) * (time.Second / 100) // USER_HZ is 100 on Linux
}

// readLoad returns the one-minute load average (0 if unreadable).
func readLoad() float64 {
	b, _ := os.ReadFile("/proc/loadavg")
	f, _ := strconv.ParseFloat(strings.Fields(string(b) + " 0")[0], 64)
	return f
}
