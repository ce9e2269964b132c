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
	"github.com/decnet/ttp/rules"
)

// Host keeps a Dispatcher's snapshot in step with the rules and the plugins: it is the only
// writer. Every change (a rule definition, a rule state, a plugin file) is prepared off the
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
	d        *Dispatcher
	compiler *Compiler
	index    *rules.Index
	log      *slog.Logger
	now      func() time.Time
	limits   func(name string) Limits
	poolSize int
	lock     map[string]string // file name -> sha256; nil when no lock file
	onEvent  func(Event)

	mu      sync.Mutex
	plugins map[string]*plugin // by file base name
	settled bool               // the initial load is over: report rules that lose their plugin
	orphans string             // the last reported RulesWithoutPlugin, as logged

	pluginRejections, ruleRejections atomic.Int64
}

type plugin struct {
	file   string
	module Module
	pool   *Pool
	health *Health
}

// Event reports something the operator should know about, for logs, metrics and (in the
// daemon) the bus: a plugin loaded or rejected, a rule rejected by its plugin.
type Event struct {
	Kind    string // "plugin.loaded", "plugin.rejected", "plugin.unloaded", "rule.rejected"
	Plugin  string // file name
	Version string // name@version
	Rule    string
	Rules   int // rules the plugin owns
	Err     error
}

// HostOption configures a Host.
type HostOption func(*Host)

// WithHostLogger sets the logger.
func WithHostLogger(l *slog.Logger) HostOption { return func(h *Host) { h.log = l } }

// WithHostClock sets the clock of quarantines and rule state.
func WithHostClock(now func() time.Time) HostOption { return func(h *Host) { h.now = now } }

// WithLimits sets per-plugin limits (deadline, memory, pool size) by plugin file name.
func WithLimits(f func(name string) Limits) HostOption { return func(h *Host) { h.limits = f } }

// WithPoolSize sets the number of instances per plugin (default GOMAXPROCS).
func WithPoolSize(n int) HostOption { return func(h *Host) { h.poolSize = n } }

// WithEvents sets a callback for every Event.
func WithEvents(f func(Event)) HostOption { return func(h *Host) { h.onEvent = f } }

// WithLockFile makes the host refuse every module whose file name and sha256 are not listed
// in path (lines "sha256  name", as sha256sum prints them).
func WithLockFile(path string) HostOption {
	return func(h *Host) {
		lock, err := ReadLockFile(path)
		if err != nil {
			h.log.Error("lock file unreadable: every module will be refused", "file", path, "err", err)
			lock = map[string]string{}
		}
		h.lock = lock
	}
}

// NewHost returns a Host publishing into d (whose dispatcher it becomes the only writer of),
// compiling through compiler.
func NewHost(d *Dispatcher, compiler *Compiler, opts ...HostOption) *Host {
	h := &Host{d: d, compiler: compiler, index: rules.NewIndex(), log: slog.Default(), now: time.Now,
		limits: func(string) Limits { return Limits{} }, plugins: map[string]*plugin{}}
	for _, o := range opts {
		o(h)
	}
	h.publishLocked()
	return h
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

// Index returns the rules index the host maintains (accepted definitions and states).
func (h *Host) Index() *rules.Index { return h.index }

func (h *Host) emit(e Event) {
	switch e.Kind {
	case "plugin.rejected":
		h.pluginRejections.Add(1)
	case "rule.rejected":
		h.ruleRejections.Add(1)
	}
	switch e.Kind {
	case "plugin.rejected", "rule.rejected":
		h.log.Error("rejected; the previous version stays live", "event", e.Kind, "plugin", e.Plugin, "rule", e.Rule, "err", e.Err)
	case "plugin.loaded":
		if e.Rules == 0 {
			h.log.Warn("PLUGIN LOADED WITH ZERO RULES: it is idle until a rule of its kinds appears", "plugin", e.Plugin, "version", e.Version)
		} else {
			h.log.Info("plugin loaded", "plugin", e.Plugin, "version", e.Version, "rules", e.Rules)
		}
	case "plugin.unloaded":
		h.log.Info("plugin unloaded", "plugin", e.Plugin, "version", e.Version)
	}
	if h.onEvent != nil {
		h.onEvent(e)
	}
}

// publishLocked swaps in a snapshot of the current index and pools; retire runs once no
// event evaluates on the snapshot it replaced (old pools finish their in-flight calls).
func (h *Host) publishLocked(retire ...func()) {
	names := make([]string, 0, len(h.plugins))
	for n := range h.plugins {
		names = append(names, n)
	}
	sort.Strings(names)
	handlers := make([]Handler, 0, len(names))
	for _, n := range names {
		handlers = append(handlers, h.plugins[n].pool)
	}
	old := h.d.Swap(StaticSnapshot(h.index.Load(), handlers...))
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

// buildPool configures a pool of m with the rules it owns in set; rejected rules are taken
// out (their previous definitions, in prev, are used instead when there are some) and the
// pool is built again. It returns the pool and the rules actually configured.
func (h *Host) buildPool(ctx context.Context, file string, m Module, want []*rules.Rule, prev map[string]*rules.Rule, health *Health) (*Pool, error) {
	lim := h.limits(file)
	size := lim.PoolSize
	if size == 0 {
		size = h.poolSize
	}
	cfg := PoolConfig{Size: size, Health: health, Log: h.log}
	for attempt := 0; attempt < 3; attempt++ {
		pool, rejected, err := NewPool(ctx, m, want, cfg)
		if err != nil {
			return nil, err
		}
		if len(rejected) == 0 {
			return pool, nil
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
			h.emit(Event{Kind: "rule.rejected", Plugin: file, Version: m.Manifest().Producer(), Rule: r.ID,
				Err: fmt.Errorf("%s: %s", r.File, msg)})
			if p, ok := prev[r.ID]; ok && p != r {
				next = append(next, p)
			}
		}
		want = next
	}
	return nil, fmt.Errorf("%w: %s keeps rejecting its rules", ErrConfigure, file)
}

// LoadPlugin compiles the module at path and swaps it in (replacing an earlier version of the
// same file). On any failure the previous version stays live and the error is returned.
func (h *Host) LoadPlugin(ctx context.Context, path string) error {
	file := filepath.Base(path)
	wasm, err := os.ReadFile(path)
	if err != nil {
		h.emit(Event{Kind: "plugin.rejected", Plugin: file, Err: err})
		return err
	}
	if h.lock != nil {
		sum := sha256.Sum256(wasm)
		if want, ok := h.lock[file]; !ok || want != hex.EncodeToString(sum[:]) {
			err := fmt.Errorf("host: %s: %w (sha256 %x)", path, ErrNotLocked, sum)
			h.emit(Event{Kind: "plugin.rejected", Plugin: file, Err: err})
			return err
		}
	}
	m, err := h.compile(ctx, path, wasm)
	if err != nil {
		h.emit(Event{Kind: "plugin.rejected", Plugin: file, Err: err})
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	old := h.plugins[file]
	for other, p := range h.plugins {
		if other != file && p.module.Manifest().Name == m.Manifest().Name {
			m.Close(ctx)
			err := fmt.Errorf("host: %s: %w: %s is loaded from %s", path, ErrDuplicateName, m.Manifest().Producer(), other)
			h.emit(Event{Kind: "plugin.rejected", Plugin: file, Err: err})
			return err
		}
	}
	health := NewHealth(h.now)
	var prev map[string]*rules.Rule
	if old != nil && old.module.Manifest().Name == m.Manifest().Name {
		health = old.health // a new version of the same plugin inherits its record
		prev = rulesByID(old.pool.Rules())
	}
	pool, err := h.buildPool(ctx, file, m, owned(h.index.Load().Set, m.Manifest()), prev, health)
	if err != nil {
		m.Close(ctx)
		h.emit(Event{Kind: "plugin.rejected", Plugin: file, Err: err})
		return err
	}
	if reverts := reconcile(owned(h.index.Load().Set, m.Manifest()), pool, prev); len(reverts) > 0 {
		if err := h.index.Apply(reverts...); err != nil {
			h.log.Error("rules: revert after rejection", "err", err)
		}
	}
	h.plugins[file] = &plugin{file: file, module: m, pool: pool, health: health}
	if old != nil {
		h.publishLocked(func() { old.pool.Retire(true) })
	} else {
		h.publishLocked()
	}
	h.emit(Event{Kind: "plugin.loaded", Plugin: file, Version: m.Manifest().Producer(), Rules: len(pool.Rules())})
	return nil
}

// compile picks the loader by what the module exports: the ttp ABI, else Extism.
func (h *Host) compile(ctx context.Context, path string, wasm []byte) (Module, error) {
	return h.compiler.Load(ctx, path, wasm, h.limits(filepath.Base(path)))
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
	h.publishLocked(func() { old.pool.Retire(true) })
	h.emit(Event{Kind: "plugin.unloaded", Plugin: file, Version: old.module.Manifest().Producer()})
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
	before := h.index.Load().Set
	if err := h.index.Apply(changes...); err != nil {
		return err
	}
	after := h.index.Load().Set
	defsChanged := false
	for _, c := range changes {
		if c.Kind == rules.RuleUpdated || c.Kind == rules.RuleDeleted {
			defsChanged = true
		}
	}
	if !defsChanged {
		h.publishLocked() // a state change: nothing to reconfigure
		return nil
	}
	var retire []*Pool
	var reverts []rules.Change
	for _, p := range h.plugins {
		want := owned(after, p.module.Manifest())
		if slices.Equal(want, p.pool.Rules()) {
			continue
		}
		pool, err := h.buildPool(ctx, p.file, p.module, want, rulesByID(owned(before, p.module.Manifest())), p.health)
		if err != nil {
			h.emit(Event{Kind: "plugin.rejected", Plugin: p.file, Err: err})
			continue
		}
		reverts = append(reverts, reconcile(want, pool, rulesByID(owned(before, p.module.Manifest())))...)
		retire = append(retire, p.pool)
		p.pool = pool
	}
	if len(reverts) > 0 {
		if err := h.index.Apply(reverts...); err != nil {
			return err
		}
	}
	fs := make([]func(), len(retire))
	for i, p := range retire {
		fs[i] = func() { p.Retire(false) }
	}
	h.publishLocked(fs...)
	return nil
}

// reconcile returns the index changes that make the index agree with what pool was actually
// configured with: a wanted rule the plugin rejected goes back to its previous definition
// (from prev) or, when it had none, out of the index.
func reconcile(want []*rules.Rule, pool *Pool, prev map[string]*rules.Rule) []rules.Change {
	configured := rulesByID(pool.Rules())
	var out []rules.Change
	for _, r := range want {
		if c, ok := configured[r.ID]; ok && c == r {
			continue
		}
		if p, had := prev[r.ID]; had && configured[r.ID] == p {
			out = append(out, rules.Change{Kind: rules.RuleUpdated, ID: r.ID, Rule: p})
		} else {
			out = append(out, rules.Change{Kind: rules.RuleDeleted, ID: r.ID})
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
		changes = append(changes, rules.Change{Kind: rules.RuleUpdated, ID: r.ID, Rule: r})
	}
	for id, st := range states {
		changes = append(changes, rules.Change{Kind: rules.StateChanged, ID: id, State: st})
	}
	if err := h.ApplyRules(ctx, changes...); err != nil {
		h.log.Error("rules: initial load", "err", err)
	}
	for id, st := range states {
		if _, ok := h.index.Load().Set.Rule(id); !ok {
			h.logState(id, st)
		}
	}
	if observe != nil {
		for id, st := range states {
			observe(rules.Change{Kind: rules.StateChanged, ID: id, State: st}, true)
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
		switch c.Kind {
		case rules.RuleRejected:
			// emit logs it (once, at ERROR) with the file in the error.
			h.emit(Event{Kind: "rule.rejected", Rule: c.ID, Err: fmt.Errorf("%s: %w", c.File, c.Err)})
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
	Quarantined    bool
	Health         *Health
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
		out = append(out, PluginStatus{File: p.file, Producer: p.pool.Producer(), Kinds: kinds, Rules: len(p.pool.Rules()), Quarantined: q, Health: p.health})
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
	h.publishLocked(fs...)
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
	for _, r := range h.index.Load().Set.Rules() {
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
	if _, ok := h.index.Load().Set.Rule(id); !ok {
		h.log.Warn("state for a rule that does not exist: kept, it applies if the rule appears", args...)
		return
	}
	h.log.Info("rule state", args...)
}
