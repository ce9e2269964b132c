package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/decnet/ttp/abi"
	"github.com/decnet/ttp/bus"
	"github.com/decnet/ttp/dispatch"
	"github.com/decnet/ttp/host"
	"github.com/decnet/ttp/rules"
	"github.com/decnet/ttp/rules/fsstore"
	"github.com/decnet/ttp/rules/kvstore"
	"github.com/decnet/ttp/store"
	"github.com/decnet/ttp/telemetry"
	"github.com/decnet/ttp/wasm"
)

// DefaultNATSAddr is where the embedded server listens: 4223, so it never collides with a NATS
// already on 4222; `ttp publish` and `ttp rules state` look for it there by default.
const DefaultNATSAddr = "127.0.0.1:4223"

type serveFlags struct {
	config, data, natsURL, listen, storeURL, rulesSrc, plugins, metrics, sync, prefix string
	lock, name, logFormat, logLevel, replay, otlp, cache                              string
	batch, inflight, poolSize, maxMessage, replicas                                   int
	drain, deadline, retry, instanceIdle, linger                                      time.Duration
	print                                                                             bool
	auth                                                                              natsAuth // --nats-creds, --nats-user...: natsauth.go
	ingest                                                                            ingestSpecs
}

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f serveFlags
	fs.StringVar(&f.config, "config", "", "optional YAML file of settings (keys are these flag names)")
	fs.StringVar(&f.data, "data", "var", "data directory: embedded NATS (JetStream) and the SQLite tag store")
	fs.StringVar(&f.natsURL, "nats", "", "join an existing NATS (with JetStream) at this URL instead of running one")
	fs.StringVar(&f.listen, "listen", DefaultNATSAddr, "address of the embedded NATS server")
	fs.StringVar(&f.storeURL, "store", "", "tag store: a SQLite path or postgres://... (default DATA/ttp.db)")
	fs.StringVar(&f.rulesSrc, "rules", "rules/ttp", `rule definitions: a directory, or "kv" for the shared KV bucket`)
	fs.StringVar(&f.plugins, "plugins", "plugins", "directory of plugin modules, watched")
	fs.StringVar(&f.cache, "cache", "", "compilation cache of plugin modules, shared by restarts and by ttp tag and conform (default: the user cache directory's ttp/wazero, as for every command; DATA/wazero-cache when there is none; a module in it loads in about 0.15 s instead of 1.5-2 s)")
	fs.StringVar(&f.metrics, "metrics", "127.0.0.1:9464", `address of /metrics, /healthz and /readyz ("" to disable)`)
	fs.StringVar(&f.sync, "sync", "normal", "durability: normal (JetStream and SQLite sync on their interval) or always (fsync every write: about 1.5 fsyncs an event, so the disk sets the cost; see bus/SUBJECTS.md)")
	fs.StringVar(&f.prefix, "prefix", bus.DefaultPrefix, "input subject prefix")
	fs.StringVar(&f.lock, "lock", "", "lock file of approved plugin modules (sha256  name per line)")
	fs.StringVar(&f.name, "name", "", "worker name in heartbeats, plugin and rule events and traces (default hostname-pid)")
	fs.StringVar(&f.logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&f.replay, "replay", "", "after start, publish this JSONL file of events (the demo of make run)")
	fs.Var(&f.ingest, "ingest", "follow this live log and publish its events (repeatable): cowrie:PATH (Cowrie's cowrie.json; rotation and truncation followed, the offset kept in DATA/ingest)")
	fs.BoolVar(&f.print, "print", false, "print every published tag on stdout as a table row")
	fs.StringVar(&f.otlp, "otlp", "", "export OpenTelemetry spans to this OTLP/HTTP endpoint (http://collector:4318, or host:port for plain HTTP)")
	fs.IntVar(&f.batch, "batch", 256, "messages per store commit at most")
	fs.DurationVar(&f.linger, "batch-linger", bus.DefaultLinger, "longest a batch waits to fill to --batch before its commit (0: no wait)")
	fs.IntVar(&f.inflight, "inflight", 2048, "messages buffered ahead of processing (back-pressure bound)")
	fs.IntVar(&f.maxMessage, "max-message", defaultMaxMessage, "largest input message in bytes, 1024 to 64 MiB; a larger one is dead-lettered")
	registerReplicas(fs, &f.replicas)
	fs.IntVar(&f.poolSize, "pool", 0, "the most instances per plugin; a plugin makes its first when an event of its kinds arrives, more under concurrent load (default GOMAXPROCS)")
	fs.DurationVar(&f.instanceIdle, "instance-idle", wasm.DefaultIdleTimeout, "close a plugin instance left unused this long (a plugin keeps none once idle: the next event makes one); negative: never")
	fs.DurationVar(&f.drain, "drain-timeout", 10*time.Second, "on SIGTERM, time allowed to finish in-flight events")
	fs.DurationVar(&f.deadline, "deadline", wasm.DefaultDeadline, "per-call deadline of every plugin")
	f.auth.register(fs)
	fs.DurationVar(&f.retry, "deadline-retry", 0, "wall-clock ceiling of the one retry a timed-out call gets, on a fresh instance, under --deadline of its own CPU time (default max(20 x --deadline, 1s))")
	if done, err := parseFlags(fs, args); done {
		return err
	}
	if f.config == "" {
		f.config = os.Getenv("TTP_CONFIG") // read before the others: it names where they come from
	}
	if err := applyConfig(fs, f.config); err != nil {
		return err
	}
	if err := checkMaxMessage(f.maxMessage); err != nil {
		return err
	}
	if err := checkReplicas("serve", f.replicas); err != nil {
		return err
	}
	if f.replicas > 1 && f.natsURL == "" {
		return fmt.Errorf("serve: --replicas %d needs a clustered JetStream to join with --nats: the embedded server is one node, which keeps one replica", f.replicas)
	}
	log, err := newLogger(stderr, f.logFormat, f.logLevel)
	if err != nil {
		return err
	}
	warnSecretFlags(fs, log)
	return serve(ctx, f, stdout, log)
}

// Bounds of --max-message. Below 1 KiB ordinary events would be dead-lettered; above 64 MiB
// a worker buffering --inflight such messages could hold more memory than any host has, and
// NATS itself refuses far smaller payloads (the embedded server 8 MiB, nats-server 1 MiB by
// default).
const (
	defaultMaxMessage = bus.DefaultMaxMessage
	minMaxMessage     = 1 << 10
	maxMaxMessage     = 64 << 20
)

// registerReplicas adds --replicas to a subcommand that creates streams or KV buckets (serve,
// publish, rules push), with one help text, so that every one of them creates the same.
func registerReplicas(fs *flag.FlagSet, p *int) {
	fs.IntVar(p, "replicas", 1, fmt.Sprintf("replicas of the streams and KV buckets ttp creates when they are missing, 1 to %d: 3 on a three-node JetStream cluster (existing ones keep their own; TTP_REPLICAS)", bus.MaxReplicas))
}

// checkReplicas rejects a --replicas out of JetStream's bounds at start-up, naming the flag,
// rather than leaving the server to refuse the first stream it is asked to create.
func checkReplicas(cmd string, n int) error {
	if n < 1 || n > bus.MaxReplicas {
		return fmt.Errorf("%s: --replicas %d: want 1 to %d (a stream or bucket keeps at most %d copies, one per JetStream node)", cmd, n, bus.MaxReplicas, bus.MaxReplicas)
	}
	return nil
}

// checkMaxMessage rejects a --max-message (flag, TTP_MAX_MESSAGE or config file) out of
// bounds at start-up, naming the flag, rather than leaving the worker to dead-letter every
// event or to buffer unbounded ones.
func checkMaxMessage(n int) error {
	if n < minMaxMessage || n > maxMaxMessage {
		return fmt.Errorf("serve: --max-message %d: want %d (1 KiB) to %d (64 MiB) bytes", n, minMaxMessage, maxMaxMessage)
	}
	return nil
}

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: %w", level, err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}

// embeddedNATS starts the in-process server with JetStream under dir. Its max_payload is the
// input stream's max message size (bus.InputMaxMsgSize), so what the server takes the stream
// takes too. configure sets the rest (natsAuth.embedded: the user it requires).
func embeddedNATS(listen, dir string, syncAlways bool, maxPayload int32, configure ...func(*server.Options)) (*server.Server, error) {
	h, p, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, fmt.Errorf("--listen %q: %w", listen, err)
	}
	var port int
	fmt.Sscanf(p, "%d", &port)
	opts := &server.Options{Host: h, Port: port, JetStream: true, StoreDir: dir, NoSigs: true, NoLog: true, SyncAlways: syncAlways, MaxPayload: maxPayload}
	for _, c := range configure {
		c(opts)
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("nats: %w", err)
	}
	go s.Start()
	if !s.ReadyForConnections(15 * time.Second) {
		s.Shutdown()
		return nil, fmt.Errorf("nats: embedded server on %s did not start (port taken?)", listen)
	}
	return s, nil
}

// tagStore adapts store.Store to what the worker needs.
type tagStore struct{ store.Store }

func (s tagStore) Insert(ctx context.Context, ups []bus.Upstream) ([][]abi.Tag, error) {
	b := make([]store.Batch, len(ups))
	for i, u := range ups {
		b[i] = store.Batch{UpstreamKind: u.Kind, UpstreamID: u.ID, Tags: u.Tags}
	}
	return s.InsertBatch(ctx, b)
}

// workerName returns the name this worker goes by: --name, else bus.DefaultWorkerName().
// serve resolves it once, before anything uses it, so that heartbeats, plugin and rule events
// and trace resources all carry the same name and none carries an empty one.
func workerName(flagValue string) string {
	if flagValue != "" {
		return flagValue
	}
	return bus.DefaultWorkerName()
}

// serve runs the daemon: its wiring steps in order, each undone in reverse at the end (the
// defers), then the worker until ctx ends and the drain.
func serve(ctx context.Context, f serveFlags, stdout io.Writer, log *slog.Logger) error {
	s := &daemonRun{f: f, log: log, started: time.Now()}
	s.f.name = workerName(f.name)
	closeBus, err := s.connectBus(ctx)
	if err != nil {
		return err
	}
	defer closeBus()
	closeStore, err := s.openStore(ctx)
	if err != nil {
		return err
	}
	defer closeStore()
	closeHost, err := s.startHost(ctx)
	if err != nil {
		return err
	}
	defer closeHost()
	runCtx, stop := context.WithCancel(ctx)
	s.runCtx = runCtx
	closeRules, err := s.followRules(ctx)
	if err != nil {
		stop()
		return err
	}
	defer closeRules()
	defer stop() // before the rule stores close, as the followers stop first
	s.loadPlugins()
	s.h.Settle()

	// Control: rule state through request/reply, one answer per request (queue group).
	ctl, err := s.nc.QueueSubscribe(bus.SubjectControl, "ttp-control", func(m *nats.Msg) { controlRuleState(runCtx, m, s.stateStore, s.h) })
	if err != nil {
		return err
	}
	defer ctl.Unsubscribe()
	s.bcfg.Logger = log
	s.w = bus.NewWorker(s.js, s.d, tagStore{s.st}, s.bcfg)
	closeOps, err := s.serveOps()
	if err != nil {
		return err
	}
	defer closeOps()
	s.bg.Add(1)
	go func() { // heartbeats
		defer s.bg.Done()
		bus.Heartbeats(runCtx, s.nc, s.w, s.d, 10*time.Second)
	}()
	_, status := s.ready()
	log.Info("ttp serve running", "worker", s.f.name, "nats", s.natsWhere, "store", redact(s.storeURL), "rules", f.rulesSrc, "plugins", f.plugins,
		"metrics", f.metrics, "sync", f.sync, "startup", time.Since(s.started).Round(time.Millisecond))
	for _, line := range strings.Split(strings.TrimSpace(status), "\n") {
		log.Info("ready: " + line)
	}
	if f.print {
		sub, err := s.nc.Subscribe(bus.SubjectTagged, func(m *nats.Msg) { printEnvelope(stdout, m.Data) })
		if err != nil {
			return err
		}
		defer sub.Unsubscribe()
		fmt.Fprintf(stdout, "%-10s %-20s %-6s %-5s %-20s %s\n", "TECHNIQUE", "TACTIC", "RULE", "CONF", "PRODUCER", "SOURCE")
	}
	if f.replay != "" {
		n, bad, err := publishFile(ctx, s.js, f.replay, f.prefix, io.Discard)
		if err != nil {
			return err
		}
		log.Info("replayed", "file", f.replay, "events", n, "bad_lines", bad)
	}
	return s.run(ctx, stop)
}

// daemonRun is what the wiring steps of serve build and hand on to one another.
type daemonRun struct {
	f       serveFlags
	log     *slog.Logger
	started time.Time
	runCtx  context.Context // ends when the daemon stops; the background loops run under it
	bg      sync.WaitGroup  // the background loops, waited for at the stop

	ns        *server.Server // the embedded NATS, nil when joined
	nc        *nats.Conn
	js        jetstream.JetStream
	natsWhere string // for the start-up line
	bcfg      bus.Config

	st       store.Store
	storeURL string

	d          *dispatch.Dispatcher
	h          *host.Host
	pub        *events
	stateStore rules.Store // where rule states are written (the KV bucket)
	w          *bus.Worker
}

// connectBus checks the bus flags, runs the embedded NATS unless --nats joins one, connects,
// and makes sure the streams exist. The returned function closes what it opened.
func (s *daemonRun) connectBus(ctx context.Context) (func(), error) {
	f, log := &s.f, s.log
	syncAlways := f.sync == "always"
	if f.sync != "always" && f.sync != "normal" {
		return nil, fmt.Errorf("serve: --sync %q: want normal or always", f.sync)
	}
	if err := f.auth.check(f.natsURL); err != nil {
		return nil, fmt.Errorf("serve: %w", err)
	}
	var embeddedAuth func(*server.Options)
	if f.natsURL == "" {
		var err error
		if embeddedAuth, err = f.auth.embedded(f.listen); err != nil {
			return nil, err
		}
	}
	authOpts, err := f.auth.options()
	if err != nil {
		return nil, fmt.Errorf("serve: %w", err)
	}
	if err := os.MkdirAll(f.data, 0o755); err != nil {
		return nil, fmt.Errorf("serve: %w", err)
	}
	var undo []func()
	closeAll := func() {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
	}
	// The bus: joined, or run in process.
	natsURL := f.natsURL
	s.natsWhere = f.natsURL
	if natsURL == "" {
		if s.ns, err = embeddedNATS(f.listen, filepath.Join(f.data, "nats"), syncAlways, bus.InputMaxMsgSize(f.maxMessage), embeddedAuth); err != nil {
			return nil, err
		}
		undo = append(undo, s.ns.Shutdown)
		if h, _, _ := net.SplitHostPort(f.listen); !isLoopback(h) {
			log.Warn("the embedded NATS server serves no TLS: credentials and events cross the network in clear; for TLS run a nats-server and join it with --nats (bus/SUBJECTS.md#permissions)", "listen", f.listen)
		}
		natsURL = s.ns.ClientURL()
		s.natsWhere = "embedded " + natsURL + " (JetStream in " + filepath.Join(f.data, "nats") + ")"
	}
	s.nc, err = nats.Connect(natsURL, append([]nats.Option{nats.Name("ttp serve"), nats.MaxReconnects(-1), nats.ReconnectWait(time.Second),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil { // nil: our own drain at a clean stop, nothing to warn about
				log.Warn("nats disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) { log.Info("nats reconnected", "url", c.ConnectedUrl()) }),
		nats.ErrorHandler(asyncErrorLogger(log))}, authOpts...)...)
	if err != nil {
		closeAll()
		return nil, f.auth.connectError("serve", natsURL, err)
	}
	undo = append(undo, s.nc.Close)
	s.bcfg = bus.Config{Prefix: f.prefix, Batch: f.batch, Linger: lingerConfig(f.linger), InFlight: f.inflight, MaxMessage: f.maxMessage, Name: f.name, Replicas: f.replicas}
	if s.js, err = bus.NewJetStream(s.nc, s.bcfg); err != nil {
		closeAll()
		return nil, err
	}
	if err := bus.Streams(ctx, s.js, s.bcfg); err != nil {
		closeAll()
		return nil, err
	}
	return closeAll, nil
}

// openStore opens the tag store: --store, else DATA/ttp.db, synced on every write under
// --sync always.
func (s *daemonRun) openStore(ctx context.Context) (func(), error) {
	s.storeURL = s.f.storeURL
	if s.storeURL == "" {
		s.storeURL = filepath.Join(s.f.data, "ttp.db")
	}
	if s.f.sync == "always" && !strings.HasPrefix(s.storeURL, "postgres") {
		s.storeURL = "sqlite://" + strings.TrimPrefix(s.storeURL, "sqlite://") + "?sync=always"
	}
	st, err := store.Open(ctx, s.storeURL)
	if err != nil {
		return nil, fmt.Errorf("serve: %w", err)
	}
	s.st = st
	return func() { st.Close() }, nil
}

// startHost makes the plugin host: the compilation cache, tracing, the Dispatcher (no rules
// yet) and the Host that loads rules and plugins into it.
func (s *daemonRun) startHost(ctx context.Context) (func(), error) {
	f, log := &s.f, s.log
	// One default for every command (ttp tag, conform and serve share it), so the first plain
	// `serve` after `make run` or `ttp tag` does not compile every module again.
	cache := f.cache
	if cache == "" {
		cache = cacheDir()
	}
	if cache == "" { // no user cache directory (HOME unset): keep it with the data
		cache = filepath.Join(f.data, "wazero-cache")
	}
	var lock map[string]string // nil: no lock file, every module may load
	if f.lock != "" {
		var err error
		if lock, err = host.ReadLockFile(f.lock); err != nil {
			// A lock file that cannot be read refuses the start rather than every module
			// one by one: the operator asked for approved modules only and learns at once.
			return nil, fmt.Errorf("serve: --lock: %w", err)
		}
	}
	compiler, err := host.NewCompiler(cache)
	if err != nil {
		return nil, err
	}
	tr, err := newTracing(ctx, f.otlp, f.name, log)
	if err != nil {
		compiler.Close(context.Background())
		return nil, fmt.Errorf("serve: %w", err)
	}
	s.d = dispatch.New(dispatch.Config{Logger: log, Tracer: telemetry.NewTracer(tr.provider())})
	s.pub = &events{nc: s.nc, js: s.js, log: log, worker: f.name, trace: tr}
	s.h, err = host.New(host.Config{Dispatcher: s.d, Compiler: compiler, Logger: log, OnNotice: s.pub.host, PoolSize: f.poolSize, Lazy: true, IdleTimeout: f.instanceIdle, Lock: lock,
		Limits: func(string) wasm.Limits { return wasm.Limits{Deadline: f.deadline, Retry: f.retry} }})
	if err != nil {
		tr.shutdown()
		compiler.Close(context.Background())
		return nil, err
	}
	return func() {
		s.h.Close()
		tr.shutdown()
		compiler.Close(context.Background())
	}, nil
}

// followRules opens the rule stores (definitions from --rules, states from the KV bucket) and
// follows them into the host, then waits briefly for the first rules.
func (s *daemonRun) followRules(ctx context.Context) (func(), error) {
	f, log := &s.f, s.log
	var defStore rules.Store
	kvCfg := kvstore.Config{Logger: log, Replicas: f.replicas}
	if f.rulesSrc == "kv" {
		kv, err := kvstore.Open(ctx, s.js, kvCfg)
		if err != nil {
			return nil, err
		}
		defStore = kv
	} else {
		fsS, err := fsstore.Open(f.rulesSrc, fsstore.Config{Logger: log})
		if err != nil {
			return nil, fmt.Errorf("serve: rules: %w", err)
		}
		defStore = fsS
	}
	s.stateStore = defStore
	if f.rulesSrc != "kv" {
		statesCfg := kvCfg
		statesCfg.StatesOnly = true
		kv, err := kvstore.Open(ctx, s.js, statesCfg)
		if err != nil {
			defStore.Close()
			return nil, err
		}
		s.stateStore = kv
	}
	follow := func(st rules.Store) {
		s.bg.Add(1)
		go func() {
			defer s.bg.Done()
			if err := s.h.FollowRules(s.runCtx, st, func(c rules.Change, initial bool) { s.pub.ruleChange(s.runCtx, c, initial) }); err != nil && s.runCtx.Err() == nil {
				log.Error("rule follower stopped", "err", err)
			}
		}()
	}
	follow(defStore)
	if s.stateStore != defStore {
		follow(s.stateStore)
	}
	waitRules(s.runCtx, s.h, f.rulesSrc)
	return func() {
		if s.stateStore != defStore {
			s.stateStore.Close()
		}
		defStore.Close()
	}, nil
}

// loadPlugins loads the plugins directory and watches it, or warns that there is none.
func (s *daemonRun) loadPlugins() {
	f, log := &s.f, s.log
	if _, err := os.Stat(f.plugins); err != nil {
		log.Warn("no plugins directory; only the built-in engine runs", "dir", f.plugins)
		return
	}
	s.h.LoadPluginDir(s.runCtx, f.plugins)
	// Loading compiles or decodes megabytes of machine code: give the scratch memory back
	// to the OS once, so the daemon's resident size is what it keeps.
	debug.FreeOSMemory()
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		if err := s.h.WatchPlugins(s.runCtx, f.plugins); err != nil && s.runCtx.Err() == nil {
			log.Error("plugin watcher stopped; loaded plugins stay live", "err", err)
		}
	}()
}

// ready is the readiness of /readyz and the start-up lines: connected to NATS, and the rules
// and plugins with what is degraded.
func (s *daemonRun) ready() (bool, string) {
	var b strings.Builder
	ok := s.nc.IsConnected()
	fmt.Fprintf(&b, "nats: connected=%v\nrules: %d\n", s.nc.IsConnected(), len(s.h.Rules().Set.Rules()))
	// A rule without its plugin degrades its kind only; the worker stays ready because
	// failing readiness would take every other kind's tags down with it (README).
	for kind, ids := range s.h.RulesWithoutPlugin() {
		fmt.Fprintf(&b, "DEGRADED: kind %s: rules %s have no loaded plugin and tag nothing\n", kind, strings.Join(ids, " "))
	}
	for _, p := range s.h.Plugins() {
		fmt.Fprintf(&b, "plugin %s (%s): %d rules, %d of %d instances", p.File, p.Producer, p.Rules, p.Instances, p.MaxInstances)
		if p.Rules == 0 {
			b.WriteString(" IDLE: owns no rule")
		}
		if p.Quarantined {
			b.WriteString(" QUARANTINED")
		}
		b.WriteString("\n")
	}
	return ok, b.String()
}

// serveOps serves /metrics, /healthz and /readyz on --metrics, unless it is empty.
func (s *daemonRun) serveOps() (func(), error) {
	if s.f.metrics == "" {
		return func() {}, nil
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		telemetry.NewCollector(s.d, s.h), bus.NewCollector(s.w))
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(rw http.ResponseWriter, _ *http.Request) { io.WriteString(rw, "ok\n") })
	mux.HandleFunc("/readyz", func(rw http.ResponseWriter, _ *http.Request) {
		ok, text := s.ready()
		if !ok {
			rw.WriteHeader(http.StatusServiceUnavailable)
		}
		io.WriteString(rw, text)
	})
	ln, err := net.Listen("tcp", s.f.metrics)
	if err != nil {
		return nil, fmt.Errorf("serve: --metrics %s: %w", s.f.metrics, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	return func() { srv.Close() }, nil
}

// run runs the worker and the --ingest followers until ctx ends (SIGTERM, SIGINT), then
// drains within --drain-timeout, stops the background loops (stop) and drains the connection.
func (s *daemonRun) run(ctx context.Context, stop context.CancelFunc) error {
	f, log := &s.f, s.log
	werr := make(chan error, 1)
	wctx, wstop := context.WithCancel(context.Background())
	defer wstop()
	go func() { werr <- s.w.Run(wctx) }()
	for _, spec := range f.ingest {
		_, path, _ := strings.Cut(spec, ":")
		fl, err := newFollower(f.data, path, f.prefix, s.js, log)
		if err != nil {
			return fmt.Errorf("serve: --ingest %s: %w", spec, err)
		}
		s.bg.Add(1)
		go func() {
			defer s.bg.Done()
			log.Info("ingest: following", "log", spec, "state", fl.statePath)
			if err := fl.run(s.runCtx); err != nil && s.runCtx.Err() == nil {
				log.Error("ingest stopped", "log", spec, "err", err)
			}
		}()
	}
	select {
	case <-ctx.Done():
		log.Info("shutting down: draining in-flight events", "timeout", f.drain)
		wstop()
		select {
		case err := <-werr:
			if err != nil {
				log.Error("worker", "err", err)
			}
		case <-time.After(f.drain):
			log.Error("drain timeout: unacked events will be redelivered", "timeout", f.drain)
		}
	case err := <-werr:
		if err != nil {
			return err
		}
	}
	stop()
	s.bg.Wait()
	if err := s.nc.Drain(); err != nil {
		log.Warn("nats drain", "err", err)
	}
	log.Info("ttp serve stopped", "events", s.d.Stats.Events.Load(), "tags", s.d.Stats.Tags.Load(), "uptime", time.Since(s.started).Round(time.Second))
	return nil
}

func redact(url string) string {
	if i := strings.Index(url, "@"); i > 0 && strings.Contains(url, "://") {
		return url[:strings.Index(url, "://")+3] + "***" + url[i:]
	}
	return url
}

// waitRules waits briefly for the first rule load, so the start-up line reports the rules.
func waitRules(ctx context.Context, h *host.Host, src string) {
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if len(h.Rules().Set.Rules()) > 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// printEnvelope prints the tags of one ttp.tagged envelope as table rows.
func printEnvelope(w io.Writer, data []byte) {
	var env bus.Envelope
	if err := json.Unmarshal(data, &env); err != nil {
		return
	}
	for _, t := range env.Tags {
		tech := t.TechniqueID
		if t.SubTechniqueID != "" {
			tech = t.SubTechniqueID
		}
		// The source id, of any length, is the last column so that it never pushes the others.
		fmt.Fprintf(w, "%-10s %-20s %-6s %-5.2f %-20s %s\n", tech, t.Tactic, t.RuleID, t.Confidence, t.Producer, t.SourceKind+":"+t.SourceID)
	}
}

// publishFile replays a JSONL file of events onto the bus, each on its kind's subject, and
// returns how many it published and how many lines were bad (reported on errw).
func publishFile(ctx context.Context, js jetstream.JetStream, path, prefix string, errw io.Writer) (n, bad int, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, fmt.Errorf("publish: %w", err)
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 64<<10)
	var futures []jetstream.PubAckFuture
	for lineNo := 1; ; lineNo++ {
		line, rerr := readLine(r)
		if errors.Is(rerr, io.EOF) && len(line) == 0 {
			break
		}
		if errors.Is(rerr, errLineTooLong) {
			bad++
			fmt.Fprintf(errw, "%s:%d: line longer than %d bytes, skipped\n", path, lineNo, maxLine)
			continue
		}
		if len(strings.TrimSpace(string(line))) == 0 {
			continue
		}
		kind := "unknown"
		var head struct {
			SourceKind string `json:"source_kind"`
		}
		if json.Unmarshal(line, &head) == nil && head.SourceKind != "" {
			kind = head.SourceKind
		} else {
			bad++
			fmt.Fprintf(errw, "%s:%d: no source_kind; published anyway (the daemon dead-letters it)\n", path, lineNo)
		}
		fut, err := js.PublishMsgAsync(&nats.Msg{Subject: bus.SubjectFor(prefix, kind), Data: append([]byte(nil), line...)})
		if err != nil {
			return n, bad, fmt.Errorf("publish: %s:%d: %w", path, lineNo, err)
		}
		futures = append(futures, fut)
		n++
		if len(futures) >= 1024 {
			if err := waitAcks(ctx, futures); err != nil {
				return n, bad, err
			}
			futures = futures[:0]
		}
	}
	return n, bad, waitAcks(ctx, futures)
}

func waitAcks(ctx context.Context, fs []jetstream.PubAckFuture) error {
	for _, f := range fs {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return fmt.Errorf("publish: %w", err)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// events publishes the host's events and rule changes on the bus.
type events struct {
	nc     *nats.Conn
	js     jetstream.JetStream
	log    *slog.Logger
	worker string
	trace  *tracing // nil when tracing is off
}

func (e *events) host(ev host.Notice) {
	subject := ""
	switch ev.Name {
	case "plugin.loaded":
		subject = bus.SubjectPluginLoad
	case "plugin.rejected", "rule.rejected":
		subject = bus.SubjectPluginRej
		if ev.Name == "rule.rejected" {
			subject = bus.SubjectReloaded
		}
	default:
		return
	}
	msg := map[string]any{"event": ev.Name, "plugin": ev.Plugin, "version": ev.Version, "rule": ev.Rule, "rules": ev.Rules, "worker": e.worker, "at": time.Now().UTC()}
	if ev.Err != nil {
		msg["error"] = ev.Err.Error()
	}
	b, _ := json.Marshal(msg)
	e.nc.Publish(subject, b)
}

// ruleChange publishes a rule change on the bus: ttp.rule.reloaded for definitions, and
// ttp.rule.state (on the output stream, with a Nats-Msg-Id from the KV revision so that the
// one change every worker sees is one message) for states, each state change traced.
func (e *events) ruleChange(ctx context.Context, c rules.Change, initial bool) {
	if c.Op == rules.StateChanged {
		e.trace.ruleState(ctx, c.ID, c.State)
		if initial {
			return // loaded at start-up, not a change
		}
		b, _ := json.Marshal(map[string]any{"rule": c.ID, "state": c.State, "rev": c.Rev})
		id := fmt.Sprintf("state:%s:%d", c.ID, c.Rev)
		if c.Rev == 0 {
			id = fmt.Sprintf("state:%s:%s", c.ID, b)
		}
		if _, err := e.js.PublishMsgAsync(&nats.Msg{Subject: bus.SubjectRuleState, Data: b}, jetstream.WithMsgID(id)); err != nil {
			// The state itself is in the KV bucket and applied; only its notice is lost.
			e.log.Warn("ttp.rule.state not published", "rule", c.ID, "rev", c.Rev, "err", err)
		}
		return
	}
	msg := map[string]any{"rule": c.ID, "change": c.Op.String(), "file": c.File, "worker": e.worker, "at": time.Now().UTC()}
	if c.Op == rules.RuleUpdated {
		msg["version"] = c.Rule.Version
	}
	b, _ := json.Marshal(msg)
	e.nc.Publish(bus.SubjectReloaded, b)
}

func controlRuleState(ctx context.Context, m *nats.Msg, s rules.Store, h *host.Host) {
	var req bus.StateRequest
	reply := func(r bus.StateReply) {
		b, _ := json.Marshal(r)
		m.Respond(b)
	}
	if err := json.Unmarshal(m.Data, &req); err != nil {
		reply(bus.StateReply{Error: "bad request: " + err.Error()})
		return
	}
	snap := h.Rules()
	if _, ok := snap.Set.Rule(req.Rule); !ok {
		reply(bus.StateReply{Rule: req.Rule, Error: "no rule " + req.Rule})
		return
	}
	if !req.Get {
		if err := s.SetState(ctx, req.Rule, req.State); err != nil {
			reply(bus.StateReply{Rule: req.Rule, Error: err.Error()})
			return
		}
		reply(bus.StateReply{Rule: req.Rule, State: req.State})
		return
	}
	reply(bus.StateReply{Rule: req.Rule, State: snap.State(req.Rule, time.Now())})
}

// lingerConfig is --batch-linger as bus.Config.Linger says it: there 0 is the default and a
// negative wait none, where the flag's 0 is none.
func lingerConfig(d time.Duration) time.Duration {
	if d <= 0 {
		return -1
	}
	return d
}
