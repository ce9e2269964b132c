package wasm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/decnet/ttp/abi"
)

// Pool is one plugin configured with one set of rule definitions: a fixed number of
// instances made ahead, each serving one call at a time. It is what the dispatcher calls for
// a plugin (it satisfies dispatch.Handler without this package knowing of it). A definition change makes a new Pool from the same compiled Module (no recompile);
// the old one finishes its in-flight calls and closes when drained.
type Pool struct {
	module   Module
	man      *abi.Manifest
	producer string                // man.Producer(), built once: the Dispatcher asks for it on every call
	req      *abi.ConfigureRequest // the configured rules; a reply's rule index points into req.Rules
	lim      abi.ReplyLimits
	size     int
	health   *Health
	log      *slog.Logger

	idle     chan *slot
	inflight atomic.Int64
	retired  atomic.Bool
	done     chan struct{}
	drained  sync.Once
	closeMod bool
}

// slot is a pooled instance with its reusable decode buffer.
type slot struct {
	inst   Instance
	drafts []abi.ReplyDraft
}

// PoolConfig is what NewPool needs beyond the module and its rules.
type PoolConfig struct {
	Size   int     // instances; default GOMAXPROCS
	Health *Health // shared by every pool of one plugin; a new one when nil
	Log    *slog.Logger
}

// NewPool makes the pool's instances and configures each with owned, the definitions of the
// rules the plugin owns (their match.kind under its rule_kinds). It returns the plugin's
// rejections: a caller keeps the previous definition of each rejected rule live and builds
// the pool again.
func NewPool(ctx context.Context, m Module, owned []abi.RuleConfig, cfg PoolConfig) (*Pool, []abi.RuleRejection, error) {
	if cfg.Size <= 0 {
		cfg.Size = runtime.GOMAXPROCS(0)
	}
	if cfg.Health == nil {
		cfg.Health = NewHealth(time.Now)
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	p := &Pool{module: m, man: m.Manifest(), producer: m.Manifest().Producer(), size: cfg.Size, health: cfg.Health, log: cfg.Log,
		idle: make(chan *slot, cfg.Size), done: make(chan struct{})}
	p.req = &abi.ConfigureRequest{Rules: owned}
	p.lim = abi.ReplyLimits{Emits: make([]int, len(owned)), EvidenceKeys: len(p.man.EvidenceKeys)}
	for i, r := range owned {
		p.lim.Emits[i] = len(r.Emits)
	}
	// The instances are made and configured side by side: each is independent, and a Go
	// guest spends most of a warm load starting its runtime and parsing its configuration.
	insts := make([]Instance, cfg.Size)
	rejs := make([][]abi.RuleRejection, cfg.Size)
	errs := make([]error, cfg.Size)
	var wg sync.WaitGroup
	for n := range insts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			insts[n], rejs[n], errs[n] = p.newInstance(ctx)
		}()
	}
	wg.Wait()
	if i := slices.IndexFunc(errs, func(e error) bool { return e != nil }); i >= 0 {
		for _, inst := range insts {
			if inst != nil {
				inst.Close(ctx)
			}
		}
		return nil, nil, errs[i]
	}
	for _, inst := range insts {
		p.idle <- &slot{inst: inst}
	}
	return p, rejs[0], nil
}

func (p *Pool) newInstance(ctx context.Context) (Instance, []abi.RuleRejection, error) {
	inst, err := p.module.NewInstance(ctx)
	if err != nil {
		return nil, nil, err
	}
	reply, err := inst.Configure(ctx, p.req)
	if err != nil {
		inst.Close(ctx)
		return nil, nil, fmt.Errorf("%w: %s: %w", ErrConfigure, p.man.Producer(), err)
	}
	if reply.Error != "" {
		inst.Close(ctx)
		return nil, nil, fmt.Errorf("%w: %s: %s", ErrConfigure, p.man.Producer(), reply.Error)
	}
	return inst, reply.Rejected, nil
}

// Producer names the plugin in tags: name@version.
func (p *Pool) Producer() string { return p.producer }

// Manifest returns the plugin's manifest.
func (p *Pool) Manifest() *abi.Manifest { return p.man }

// Health returns the plugin's failure record, which its successive pools share.
func (p *Pool) Health() *Health { return p.health }

// Module returns the compiled module the pool's instances come from.
func (p *Pool) Module() Module { return p.module }

// Rules returns the rule definitions the pool is configured with.
func (p *Pool) Rules() []abi.RuleConfig { return p.req.Rules }

// Handles reports whether the pool takes events of kind: one its manifest declares, when the
// plugin owns a rule.
func (p *Pool) Handles(kind string) bool { return len(p.req.Rules) > 0 && p.man.KindIndex(kind) >= 0 }

// ErrQuarantined is returned (and not counted as a new failure) while a plugin is quarantined.
var ErrQuarantined = errors.New("plugin quarantined")

// Tag runs the plugin on ev and appends its drafts to out: one call on a pooled instance. A call that times out is retried
// once on a fresh instance (retry); a failure, the retry's included, discards the instance
// (a replacement is made in the background) and counts toward quarantine.
func (p *Pool) Tag(ctx context.Context, ev *abi.Event, out []abi.TagDraft) ([]abi.TagDraft, error) {
	k := p.man.KindIndex(ev.SourceKind)
	if k < 0 || len(p.req.Rules) == 0 {
		return out, nil
	}
	if !p.health.Allow() {
		return out, ErrQuarantined
	}
	p.inflight.Add(1)
	defer p.release()
	var s *slot
	select {
	case s = <-p.idle:
	case <-ctx.Done():
		return out, ctx.Err()
	}
	start := time.Now()
	drafts, err := s.inst.Tag(ctx, k, ev, p.lim, s.drafts[:0])
	if err != nil && errors.Is(err, ErrTimeout) && ctx.Err() == nil {
		s, drafts, err = p.retry(ctx, s, k, ev, err)
	}
	p.health.observe(time.Since(start))
	if err != nil {
		switch {
		case ctx.Err() != nil:
			go p.replace(s.inst) // the runtime closed the instance with the context
			return out, ctx.Err()
		case errors.Is(err, ErrRecordTooLarge):
			p.put(s) // never called: neither the instance nor the plugin failed
			p.health.Oversized.Add(1)
			return out, err
		case errors.Is(err, abi.ErrGuest):
			p.put(s) // the plugin answered with an error: a failure, but the instance is sound
		default:
			go p.replace(s.inst)
		}
		p.health.Failure(err)
		return out, err
	}
	p.health.Success()
	s.drafts = drafts
	for _, d := range drafts {
		r := &p.req.Rules[d.Rule]
		e := r.Emits[d.Emit]
		td := abi.TagDraft{RuleID: r.ID, TechniqueID: e.TechniqueID, SubTechniqueID: e.SubTechniqueID, Tactic: e.Tactic, Confidence: e.Confidence * d.Scale}
		if len(d.Evidence) > 0 {
			td.Evidence = make(map[string]any, len(d.Evidence))
			for _, ev := range d.Evidence {
				td.Evidence[p.man.EvidenceKeys[ev.Key]] = ev.Value
			}
		}
		out = append(out, td)
	}
	p.put(s)
	return out, nil
}

// retry makes a timed-out call again, once, on a fresh instance under the retry's budget of
// its own CPU time (Retrier), and returns the slot it used, which the caller handles as it
// does any call's. A success is a stall (Health.Stall, logged one a second at most): the host
// did not run the call in time, the plugin is not at fault, and the retry's tags are kept.
// The timed-out instance was closed by its deadline: an idle instance is taken (the dead
// one's replacement is made in the background), else one is made here in its place.
func (p *Pool) retry(ctx context.Context, dead *slot, k int, ev *abi.Event, first error) (*slot, []abi.ReplyDraft, error) {
	if _, ok := dead.inst.(Retrier); !ok {
		return dead, nil, first
	}
	var s *slot
	select {
	case s = <-p.idle:
		go p.replace(dead.inst)
	default:
		dead.inst.Close(ctx)
		inst, _, err := p.newInstance(ctx)
		if err != nil {
			// The caller replaces the dead instance (closing it again is harmless).
			return dead, nil, fmt.Errorf("%w; no fresh instance for its retry: %v", first, err)
		}
		s = &slot{inst: inst}
	}
	start := time.Now()
	drafts, err := s.inst.(Retrier).RetryTag(ctx, k, ev, p.lim, s.drafts[:0])
	if err != nil {
		return s, drafts, fmt.Errorf("retry of a call that timed out (%v) on a fresh instance: %w", first, err)
	}
	if logNow, held := p.health.Stall(); logNow {
		p.log.Warn("plugin call stalled: it timed out and its retry on a fresh instance succeeded, so the host was slow, not the plugin; its tags are kept and it is not counted as a failure",
			"plugin", p.Producer(), "first", first, "retry_took", time.Since(start).Round(time.Microsecond), "stalls_not_logged", held)
	}
	return s, drafts, nil
}

// put returns an instance to the pool. A retired pool still hands it to calls waiting for
// one; the last call to finish closes them all.
func (p *Pool) put(s *slot) {
	p.idle <- s
	if p.retired.Load() && p.inflight.Load() == 0 {
		p.closeIdle(context.Background())
	}
}

func (p *Pool) release() {
	if p.inflight.Add(-1) == 0 && p.retired.Load() {
		p.drain()
	}
}

// replace closes a failed instance and makes a new one, retrying with back-off until it
// succeeds or the pool is retired.
func (p *Pool) replace(old Instance) {
	ctx := context.Background()
	old.Close(ctx)
	backoff := 100 * time.Millisecond
	for !p.retired.Load() {
		inst, _, err := p.newInstance(ctx)
		if err == nil {
			p.put(&slot{inst: inst})
			return
		}
		p.log.Error("plugin instance could not be replaced; retrying", "plugin", p.Producer(), "err", err, "retry_in", backoff)
		select {
		case <-time.After(backoff):
		case <-p.done:
			return
		}
		backoff = min(backoff*2, 30*time.Second)
	}
}

// Retire takes the pool out of service: in-flight calls finish, then its instances close (and
// its module, when closeModule is set because no newer pool uses it). Retire returns at once.
func (p *Pool) Retire(closeModule bool) {
	p.closeMod = closeModule
	if p.retired.Swap(true) {
		return
	}
	if p.inflight.Load() == 0 {
		p.drain()
	}
}

// Drained is closed once a retired pool has closed its instances.
func (p *Pool) Drained() <-chan struct{} { return p.done }

func (p *Pool) drain() {
	p.drained.Do(func() {
		ctx := context.Background()
		p.closeIdle(ctx)
		if p.closeMod {
			p.module.Close(ctx)
		}
		close(p.done)
	})
}

func (p *Pool) closeIdle(ctx context.Context) {
	for {
		select {
		case s := <-p.idle:
			s.inst.Close(ctx)
		default:
			return
		}
	}
}
