package host

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/decnet/ttp/abi"
	"github.com/decnet/ttp/dispatch"
	"github.com/decnet/ttp/rules"
	"github.com/decnet/ttp/wasm"
	"github.com/decnet/ttp/wasm/extism"
)

// Host keeps a Dispatcher's snapshot in step with the rules and the plugins: it is the only
// writer of the Dispatcher's pointer, which is the one home of the live rule state (the host
// keeps no copy: it reads back what it last published, under its own lock). Every change (a rule definition, a rule state, a plugin file) is prepared off the
// hot path (compile, instantiate, configure), then published as one new Snapshot.
//
//   - A definition change of plugin-owned rules builds new instances of the owning plugin
//     from its compiled module, configured with the new definitions (no recompile). Rules the
//     plugin rejects keep their previous definition live, reported with file and message.
//   - A state change only publishes a new snapshot: state is applied in Finish.
//   - A new or changed module is compiled and checked; one that fails leaves the previous
//     version live. A deleted file unloads its plugin. Old pools finish their in-flight
//     calls and close when drained.
type Host struct {
	d        *dispatch.Dispatcher
	compiler *wasm.Compiler
	log      *slog.Logger
	now      func() time.Time
	limits   func(name string) wasm.Limits
	poolSize int
	lazy     bool
	idleFor  time.Duration
	lock     map[string]string // file name -> sha256; nil when no lock file
	onNotice func(Notice)

	mu      sync.Mutex
	plugins map[string]*plugin // by file base name
	settled bool               // the initial load is over: report rules that lose their plugin
	orphans string             // the last reported RulesWithoutPlugin, as logged

	pluginRejections, ruleRejections atomic.Int64
}

type plugin struct {
	file   string
	module wasm.Module
	pool   *wasm.Pool
	rules  []*rules.Rule // the definitions pool is configured with, ordered by id
	health *wasm.Health
}

// Notice reports something the operator should know about, for logs, metrics and (in the
// daemon) the bus: a plugin loaded or rejected, a rule rejected by its plugin.
type Notice struct {
	Name    string // "plugin.loaded", "plugin.rejected", "plugin.unloaded", "rule.rejected"
	Plugin  string // file name
	Version string // name@version
	Rule    string
	Rules   int // rules the plugin owns
	Err     error
}

// Config is what a Host is made with. Dispatcher and Compiler are required; every other
// field's zero value is a working default.
type Config struct {
	// Dispatcher is the one the host publishes into; it becomes its only writer.
	Dispatcher *dispatch.Dispatcher
	// Compiler compiles the plugins (NewCompiler gives one with the Extism variant).
	Compiler *wasm.Compiler
	// Logger receives loads, rejections and rule changes; nil: slog.Default().
	Logger *slog.Logger
	// Clock is the time of quarantines; nil: time.Now.
	Clock func() time.Time
	// Limits gives a plugin's limits by its file name; nil: the runtime's defaults.
	Limits func(file string) wasm.Limits
	// PoolSize is the most instances per plugin when Limits sets none; 0: GOMAXPROCS.
	PoolSize int
	// Lazy makes every plugin hold no instance until an event of one of its kinds arrives
	// (its module is compiled and its rules checked at load all the same), as the daemon
	// runs; false keeps one instance of each from the load on.
	Lazy bool
	// IdleTimeout is how long a plugin instance may stay unused before it is closed (down to
	// one, or none when Lazy); 0: wasm.DefaultIdleTimeout; negative: never.
	IdleTimeout time.Duration
	// Lock, when not nil, approves modules by file name and sha256 (ReadLockFile reads it):
	// every other module is refused. An empty non-nil map refuses them all.
	Lock map[string]string
	// OnNotice, when set, sees every Notice after it is logged.
	OnNotice func(Notice)
}

// New returns a Host publishing into cfg.Dispatcher, with no plugins yet and the rules the
// Dispatcher holds.
func New(cfg Config) (*Host, error) {
	if cfg.Dispatcher == nil || cfg.Compiler == nil {
		return nil, errors.New("host: Config needs a Dispatcher and a Compiler")
	}
	h := &Host{d: cfg.Dispatcher, compiler: cfg.Compiler, log: cfg.Logger, now: cfg.Clock, limits: cfg.Limits,
		poolSize: cfg.PoolSize, lazy: cfg.Lazy, idleFor: cfg.IdleTimeout, lock: cfg.Lock, onNotice: cfg.OnNotice, plugins: map[string]*plugin{}}
	if h.log == nil {
		h.log = slog.Default()
	}
	if h.now == nil {
		h.now = time.Now
	}
	if h.limits == nil {
		h.limits = func(string) wasm.Limits { return wasm.Limits{} }
	}
	h.publishLocked(h.Rules())
	return h, nil
}

// NewCompiler returns the runtime's Compiler with the Extism variant wired in, caching
// compiled code in cacheDir ("" keeps it in memory): the one every command uses.
func NewCompiler(cacheDir string) (*wasm.Compiler, error) {
	return wasm.NewCompiler(wasm.CompilerConfig{CacheDir: cacheDir, Variants: []wasm.Variant{extism.Variant{}}})
}

// ReadLockFile reads a lock file: one "sha256  name" line per approved module.
func ReadLockFile(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) != 2 || len(fields[0]) != 64 {
			return nil, fmt.Errorf("host: %s:%d: want \"sha256  name\"", path, n)
		}
		out[filepath.Base(strings.TrimPrefix(fields[1], "*"))] = strings.ToLower(fields[0])
	}
	return out, sc.Err()
}

// Rejections are the plugins and the rule definitions rejected at load since the host was
// made (the previous version of each stayed live).
func (h *Host) Rejections() (plugins, rules int64) {
	return h.pluginRejections.Load(), h.ruleRejections.Load()
}

// Rules returns the rules and states live now: the Dispatcher's snapshot's, the one place
// they are kept. The host is their only writer, so under h.mu it is also its own view.
func (h *Host) Rules() *rules.Snapshot { return h.d.Load().Rules }

func (h *Host) emit(e Notice) {
	switch e.Name {
	case "plugin.rejected":
		h.pluginRejections.Add(1)
	case "rule.rejected":
		h.ruleRejections.Add(1)
	}
	switch e.Name {
	case "plugin.rejected", "rule.rejected":
		h.log.Error("rejected; the previous version stays live", "event", e.Name, "plugin", e.Plugin, "rule", e.Rule, "err", e.Err)
	case "plugin.loaded":
		if e.Rules == 0 {
			h.log.Warn("PLUGIN LOADED WITH ZERO RULES: it is idle until a rule of its kinds appears", "plugin", e.Plugin, "version", e.Version)
		} else {
			h.log.Info("plugin loaded", "plugin", e.Plugin, "version", e.Version, "rules", e.Rules)
		}
	case "plugin.unloaded":
		h.log.Info("plugin unloaded", "plugin", e.Plugin, "version", e.Version)
	}
	if h.onNotice != nil {
		h.onNotice(e)
	}
}

// publishLocked swaps in a snapshot of rs and the current pools; retire runs once no event
// evaluates on the snapshot it replaced (old pools finish their in-flight calls).
func (h *Host) publishLocked(rs *rules.Snapshot, retire ...func()) {
	names := make([]string, 0, len(h.plugins))
	for n := range h.plugins {
		names = append(names, n)
	}
	sort.Strings(names)
	handlers := make([]dispatch.Handler, 0, len(names))
	for _, n := range names {
		handlers = append(handlers, h.plugins[n].pool)
	}
	old := h.d.Swap(dispatch.NewSnapshot(rs, handlers...))
	h.reportOrphansLocked()
	if old != nil {
		old.AfterRelease(retire...)
	} else {
		for _, f := range retire {
			f()
		}
	}
}

// owned returns the rules of set that the manifest's rule_kinds claim, ordered by id.
func owned(set *rules.RuleSet, m *abi.Manifest) []*rules.Rule {
	var out []*rules.Rule
	for _, r := range set.Rules() {
		if !r.IsPattern() && m.Owns(r.Match.Kind) {
			out = append(out, r)
		}
	}
	return out
}

// buildPool configures a pool of m with want, the rules it owns; rejected rules are taken
// out (their previous definitions, in prev, are used instead when there are some) and the
// pool is built again. It returns the pool and the rules actually configured.
func (h *Host) buildPool(ctx context.Context, file string, m wasm.Module, want []*rules.Rule, prev map[string]*rules.Rule, health *wasm.Health) (*wasm.Pool, []*rules.Rule, error) {
	lim := h.limits(file)
	size := lim.PoolSize
	if size == 0 {
		size = h.poolSize
	}
	cfg := wasm.PoolConfig{Size: size, Lazy: h.lazy, IdleTimeout: h.idleFor, Health: health, Log: h.log}
	for attempt := 0; attempt < 3; attempt++ {
		pool, rejected, err := wasm.NewPool(ctx, m, rules.PluginConfigs(want), cfg)
		if err != nil {
			return nil, nil, err
		}
		if len(rejected) == 0 {
			return pool, want, nil
		}
		pool.Retire(false)
		bad := map[string]string{}
		for _, r := range rejected {
			bad[r.Rule] = r.Message
		}
		var next []*rules.Rule
		for _, r := range want {
			msg, rej := bad[r.ID]
			if !rej {
				next = append(next, r)
				continue
			}
			h.emit(Notice{Name: "rule.rejected", Plugin: file, Version: m.Manifest().Producer(), Rule: r.ID,
				Err: fmt.Errorf("%s: %s", r.File, msg)})
			if p, ok := prev[r.ID]; ok && p != r {
				next = append(next, p)
			}
		}
		want = next
	}
	return nil, nil, fmt.Errorf("%w: %s keeps rejecting its rules", wasm.ErrConfigure, file)
}

// LoadPlugin compiles the module at path and swaps it in (replacing an earlier version of the
// same file). On any failure the previous version stays live and the error is returned.
func (h *Host) LoadPlugin(ctx context.Context, path string) error {
	file := filepath.Base(path)
	bin, err := os.ReadFile(path)
	if err != nil {
		h.emit(Notice{Name: "plugin.rejected", Plugin: file, Err: err})
		return err
	}
	if h.lock != nil {
		sum := sha256.Sum256(bin)
		if want, ok := h.lock[file]; !ok || want != hex.EncodeToString(sum[:]) {
			err := fmt.Errorf("host: %s: %w (sha256 %x)", path, wasm.ErrNotLocked, sum)
			h.emit(Notice{Name: "plugin.rejected", Plugin: file, Err: err})
			return err
		}
	}
	m, err := h.compiler.Load(ctx, path, bin, h.limits(file))
	if err != nil {
		h.emit(Notice{Name: "plugin.rejected", Plugin: file, Err: err})
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	old := h.plugins[file]
	for other, p := range h.plugins {
		if other != file && p.module.Manifest().Name == m.Manifest().Name {
			m.Close(ctx)
			err := fmt.Errorf("host: %s: %w: %s is loaded from %s", path, wasm.ErrDuplicateName, m.Manifest().Producer(), other)
			h.emit(Notice{Name: "plugin.rejected", Plugin: file, Err: err})
			return err
		}
	}
	health := wasm.NewHealth(h.now)
	var prev map[string]*rules.Rule
	if old != nil && old.module.Manifest().Name == m.Manifest().Name {
		health = old.health // a new version of the same plugin inherits its record
		prev = rulesByID(old.rules)
	}
	rs := h.Rules()
	want := owned(rs.Set, m.Manifest())
	pool, configured, err := h.buildPool(ctx, file, m, want, prev, health)
	if err != nil {
		m.Close(ctx)
		h.emit(Notice{Name: "plugin.rejected", Plugin: file, Err: err})
		return err
	}
	if reverts := reconcile(want, configured, prev); len(reverts) > 0 {
		if next, err := rs.Apply(reverts...); err != nil {
			h.log.Error("rules: revert after rejection", "err", err)
		} else {
			rs = next
		}
	}
	h.plugins[file] = &plugin{file: file, module: m, pool: pool, rules: configured, health: health}
	if old != nil {
		h.publishLocked(rs, func() { old.pool.Retire(true) })
	} else {
		h.publishLocked(rs)
	}
	h.emit(Notice{Name: "plugin.loaded", Plugin: file, Version: m.Manifest().Producer(), Rules: len(configured)})
	return nil
}

// loadedSum is the sha256 of the module loaded from file, or "".
func (h *Host) loadedSum(file string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if p := h.plugins[file]; p != nil {
		return p.module.SHA256()
	}
	return ""
}

// UnloadPlugin removes the plugin loaded from path (its file was deleted).
func (h *Host) UnloadPlugin(path string) {
	file := filepath.Base(path)
	h.mu.Lock()
	defer h.mu.Unlock()
	old := h.plugins[file]
	if old == nil {
		return
	}
	delete(h.plugins, file)
	h.publishLocked(h.Rules(), func() { old.pool.Retire(true) })
	h.emit(Notice{Name: "plugin.unloaded", Plugin: file, Version: old.module.Manifest().Producer()})
}

// LoadPluginDir loads every *.wasm of dir; failures are reported and the others load.
func (h *Host) LoadPluginDir(ctx context.Context, dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("host: plugins: %w", err)
	}
	// Up to GOMAXPROCS modules load at once: compiling (or reading from the cache) and
	// describing is CPU work that needs no lock, so a daemon with six plugins starts about
	// twice as fast on two cores. Pools are built and swapped in one at a time, under
	// LoadPlugin's lock.
	errs := make([]error, len(entries))
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for i, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".wasm") {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			errs[i] = h.LoadPlugin(ctx, filepath.Join(dir, e.Name()))
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func rulesByID(rs []*rules.Rule) map[string]*rules.Rule {
	out := make(map[string]*rules.Rule, len(rs))
	for _, r := range rs {
		out[r.ID] = r
	}
	return out
}

// ApplyRules folds rule changes in: definitions of plugin-owned rules are configured into new
// pools first (what a plugin rejects keeps its previous definition), then the index and the
// pools are published together in one snapshot.
func (h *Host) ApplyRules(ctx context.Context, changes ...rules.Change) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	cur := h.Rules()
	next, err := cur.Apply(changes...)
	if err != nil {
		return err
	}
	defsChanged := false
	for _, c := range changes {
		if c.Op == rules.RuleUpdated || c.Op == rules.RuleDeleted {
			defsChanged = true
		}
	}
	if !defsChanged {
		h.publishLocked(next) // a state change: nothing to reconfigure
		return nil
	}
	var retire []*wasm.Pool
	var reverts []rules.Change
	for _, p := range h.plugins {
		want := owned(next.Set, p.module.Manifest())
		if slices.Equal(want, p.rules) {
			continue
		}
		prev := rulesByID(owned(cur.Set, p.module.Manifest()))
		pool, configured, err := h.buildPool(ctx, p.file, p.module, want, prev, p.health)
		if err != nil {
			h.emit(Notice{Name: "plugin.rejected", Plugin: p.file, Err: err})
			continue
		}
		reverts = append(reverts, reconcile(want, configured, prev)...)
		retire = append(retire, p.pool)
		p.pool, p.rules = pool, configured
	}
	if len(reverts) > 0 {
		if next, err = next.Apply(reverts...); err != nil {
			return err
		}
	}
	fs := make([]func(), len(retire))
	for i, p := range retire {
		fs[i] = func() { p.Retire(false) }
	}
	h.publishLocked(next, fs...)
	return nil
}

// reconcile returns the rule changes that make the rules agree with what a pool was actually
// configured with: a wanted rule the plugin rejected goes back to its previous definition
// (from prev) or, when it had none, out of the rules.
func reconcile(want, pool []*rules.Rule, prev map[string]*rules.Rule) []rules.Change {
	configured := rulesByID(pool)
	var out []rules.Change
	for _, r := range want {
		if c, ok := configured[r.ID]; ok && c == r {
			continue
		}
		if p, had := prev[r.ID]; had && configured[r.ID] == p {
			out = append(out, rules.Change{Op: rules.RuleUpdated, ID: r.ID, Rule: p})
		} else {
			out = append(out, rules.Change{Op: rules.RuleDeleted, ID: r.ID})
		}
	}
	return out
}

// FollowRules keeps the host in step with a rule store until ctx ends or the store closes.
// observe, when not nil, sees every change after it is applied, and the states the store
// held at start (initial true), so the daemon can publish and trace them.
func (h *Host) FollowRules(ctx context.Context, store rules.Store, observe func(c rules.Change, initial bool)) error {
	sub, err := store.Subscribe(ctx)
	if err != nil {
		return err
	}
	defer sub.Close()
	initial, states := sub.Initial()
	changes := make([]rules.Change, 0, len(initial)+len(states))
	for _, r := range initial {
		changes = append(changes, rules.Change{Op: rules.RuleUpdated, ID: r.ID, Rule: r})
	}
	for id, st := range states {
		changes = append(changes, rules.Change{Op: rules.StateChanged, ID: id, State: st})
	}
	if err := h.ApplyRules(ctx, changes...); err != nil {
		h.log.Error("rules: initial load", "err", err)
	}
	for id, st := range states {
		if _, ok := h.Rules().Set.Rule(id); !ok {
			h.logState(id, st)
		}
	}
	if observe != nil {
		for id, st := range states {
			observe(rules.Change{Op: rules.StateChanged, ID: id, State: st}, true)
		}
	}
	for {
		c, err := sub.Next(ctx)
		if err != nil {
			if errors.Is(err, rules.ErrClosed) {
				return nil
			}
			return err
		}
		switch c.Op {
		case rules.RuleRejected:
			// emit logs it (once, at ERROR) with the file in the error.
			h.emit(Notice{Name: "rule.rejected", Rule: c.ID, Err: fmt.Errorf("%s: %w", c.File, c.Err)})
			continue
		case rules.RuleUpdated:
			h.log.Info("rule loaded", "rule", c.ID, "version", c.Rule.Version, "file", c.File)
		case rules.RuleDeleted:
			h.log.Info("rule deleted", "rule", c.ID, "file", c.File)
		case rules.StateChanged:
			h.logState(c.ID, c.State)
		}
		if err := h.ApplyRules(ctx, c); err != nil {
			h.log.Error("rules: change not applied", "rule", c.ID, "err", err)
		}
		if observe != nil {
			observe(c, false)
		}
	}
}

// PluginStatus is what /readyz and `ttp serve` report per plugin.
type PluginStatus struct {
	File, Producer string
	Kinds          []string // the source kinds of its manifest, in its order
	Rules          int
	// Instances are the instances it holds now; MaxInstances the most it may grow to. A lazy
	// plugin no event of whose kinds has arrived holds none: its compiled code only.
	Instances, MaxInstances int
	Quarantined             bool
	Health                  *wasm.Health
}

// Plugins returns the loaded plugins, ordered by file name.
func (h *Host) Plugins() []PluginStatus {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []PluginStatus
	for _, p := range h.plugins {
		q, _, _ := p.health.Quarantined()
		kinds := make([]string, len(p.module.Manifest().Kinds))
		for i, k := range p.module.Manifest().Kinds {
			kinds[i] = k.SourceKind
		}
		out = append(out, PluginStatus{File: p.file, Producer: p.pool.Producer(), Kinds: kinds, Rules: len(p.rules),
			Instances: p.pool.Instances(), MaxInstances: p.pool.Size(), Quarantined: q, Health: p.health})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].File < out[j].File })
	return out
}

// Close retires every pool and closes every module.
func (h *Host) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.settled = false // the plugins leave because the host does: no rule lost its plugin
	var fs []func()
	for f, p := range h.plugins {
		fs = append(fs, func() { p.pool.Retire(true) })
		delete(h.plugins, f)
	}
	h.publishLocked(h.Rules(), fs...)
}

// RulesWithoutPlugin returns, by match kind, the ids of the plugin-owned rules that no loaded
// plugin claims: they are in the index but tag nothing. A plugin file deleted, refused (a
// duplicate name, a failed compile) or never built leaves its rules here; /readyz, the
// metrics and the log say so instead of the rules falling silent.
func (h *Host) RulesWithoutPlugin() map[string][]string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.orphansLocked()
}

func (h *Host) orphansLocked() map[string][]string {
	var out map[string][]string
	for _, r := range h.Rules().Set.Rules() {
		if r.IsPattern() {
			continue
		}
		claimed := false
		for _, p := range h.plugins {
			if p.module.Manifest().Owns(r.Match.Kind) {
				claimed = true
				break
			}
		}
		if !claimed {
			if out == nil {
				out = map[string][]string{}
			}
			out[r.Match.Kind] = append(out[r.Match.Kind], r.ID)
		}
	}
	return out
}

// Settle ends the initial load (rules first, then the plugin directory): from now on every
// change that leaves rules without a plugin, or gives them one back, is logged once. It logs
// the current state when rules are already without a plugin.
func (h *Host) Settle() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.settled = true
	h.orphans = ""
	h.reportOrphansLocked()
}

func (h *Host) reportOrphansLocked() {
	if !h.settled {
		return
	}
	text := formatOrphans(h.orphansLocked())
	if text == h.orphans {
		return
	}
	if text == "" {
		h.log.Info("every plugin-owned rule has its plugin again")
	} else {
		h.log.Warn("rules without a plugin tag nothing until one that claims their kind is loaded", "rules", text)
	}
	h.orphans = text
}

// formatOrphans writes RulesWithoutPlugin as "kind: R1 R2; kind2: R3", kinds sorted.
func formatOrphans(m map[string][]string) string {
	kinds := make([]string, 0, len(m))
	for k := range m {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	var b strings.Builder
	for i, k := range kinds {
		if i > 0 {
			b.WriteString("; ")
		}
		ids := slices.Clone(m[k])
		sort.Strings(ids)
		b.WriteString(k + ": " + strings.Join(ids, " "))
	}
	return b.String()
}

// logState logs a rule state change: "no expiry" when it has none, and a warning when the
// rule does not exist (a state put straight into the KV bucket for R9999). Such a state is
// kept, not refused, because rule definitions and states travel apart and a rule may arrive
// after its state; the warning is what makes a typo visible.
func (h *Host) logState(id string, st rules.State) {
	expires := "never"
	if !st.ExpiresAt.IsZero() {
		expires = st.ExpiresAt.Format(time.RFC3339)
	}
	args := []any{"rule", id, "state", st.Mode, "expires", expires}
	if st.Mode == rules.Clipped {
		args = append(args, "clip", st.ConfidenceMax)
	}
	if st.Reason != "" {
		args = append(args, "reason", st.Reason)
	}
	if _, ok := h.Rules().Set.Rule(id); !ok {
		h.log.Warn("state for a rule that does not exist: kept, it applies if the rule appears", args...)
		return
	}
	h.log.Info("rule state", args...)
}
