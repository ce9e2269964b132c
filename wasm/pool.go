package wasm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/decnet/ttp/abi"
)

// Pool is one plugin configured with one set of rule definitions, and what the dispatcher
// calls for it (it satisfies dispatch.Handler without this package knowing of it). Each
// instance serves one call at a time; the pool grows on demand, up to PoolConfig.Size
// instances, when a call finds none idle, and shrinks back when instances stay idle
// (PoolConfig.IdleTimeout), so a plugin costs the memory of the concurrency it actually sees.
// A lazy pool holds no instance until its first call. A definition change makes a new Pool
// from the same compiled Module (no recompile); the old one finishes its in-flight calls and
// closes when drained.
type Pool struct {
	module   Module
	man      *abi.Manifest
	producer string                // man.Producer(), built once: the Dispatcher asks for it on every call
	req      *abi.ConfigureRequest // the configured rules; a reply's rule index points into req.Rules
	lim      abi.ReplyLimits
	size     int           // the most instances
	min      int           // instances kept when idle: 1, or 0 for a lazy pool
	idleFor  time.Duration // an idle instance above min is closed after this long unused
	health   *Health
	log      *slog.Logger

	idle     chan *slot
	live     atomic.Int64 // instances made and not closed (idle, in a call, or being made)
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
	used   time.Time // when its last call ended, for shrinking
}

// PoolConfig is what NewPool needs beyond the module and its rules. Its zero value is a pool
// of up to GOMAXPROCS instances that keeps one, made at once.
type PoolConfig struct {
	// Size is the most instances the pool grows to; 0: GOMAXPROCS.
	Size int
	// Lazy makes the pool close the instance it configured its rules on and hold none until
	// its first call (which then makes one, without waiting for a compile): a plugin whose
	// kinds never arrive costs its compiled code only.
	Lazy bool
	// IdleTimeout is how long an instance may stay unused before it is closed (down to one,
	// or to none when Lazy); 0: DefaultIdleTimeout; negative: never.
	IdleTimeout time.Duration
	// Health is shared by every pool of one plugin; a new one when nil.
	Health *Health
	// Log receives the stall and failure lines; nil: slog.Default().
	Log *slog.Logger
}

// DefaultIdleTimeout is PoolConfig.IdleTimeout's default: a burst's extra instances are kept
// for the next one for a minute, then given back.
const DefaultIdleTimeout = time.Minute

// NewPool configures one instance with owned, the definitions of the rules the plugin owns
// (their match.kind under its rule_kinds), and keeps it unless cfg.Lazy. It returns the
// plugin's rejections: a caller keeps the previous definition of each rejected rule live and
// builds the pool again.
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
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	p := &Pool{module: m, man: m.Manifest(), producer: m.Manifest().Producer(), size: cfg.Size, min: 1, idleFor: cfg.IdleTimeout,
		health: cfg.Health, log: cfg.Log, idle: make(chan *slot, cfg.Size), done: make(chan struct{})}
	if cfg.Lazy {
		p.min = 0
	}
	p.req = &abi.ConfigureRequest{Rules: owned}
	p.lim = abi.ReplyLimits{Emits: make([]int, len(owned)), EvidenceKeys: len(p.man.EvidenceKeys)}
	for i, r := range owned {
		p.lim.Emits[i] = len(r.Emits)
	}
	inst, rejected, err := p.newInstance(ctx)
	if err != nil {
		return nil, nil, err
	}
	if cfg.Lazy {
		inst.Close(ctx)
	} else {
		p.live.Add(1)
		p.idle <- &slot{inst: inst, used: time.Now()}
	}
	if p.idleFor > 0 {
		go p.shrink()
	}
	return p, rejected, nil
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

// Tag runs the plugin on ev and appends its drafts to out: one call on an idle instance, or
// on one made for it when none is idle and the pool is under its size. A call that times out
// is retried once on a fresh instance (retry); a failure, the retry's included, discards the
// instance (the next call that needs one makes it) and counts toward quarantine.
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
	s, err := p.take(ctx)
	if err != nil {
		if ctx.Err() == nil {
			p.health.Failure(err) // a plugin that cannot be instantiated is quarantined like one that traps
		}
		return out, err
	}
	start := time.Now()
	drafts, err := s.inst.Tag(ctx, k, ev, p.lim, s.drafts[:0])
	if err != nil && errors.Is(err, ErrTimeout) && ctx.Err() == nil {
		s, drafts, err = p.retry(ctx, s, k, ev, err)
	}
	p.health.observe(time.Since(start))
	if err != nil && s == nil { // the retry found no instance to run on
		if ctx.Err() != nil {
			return out, ctx.Err()
		}
		p.health.Failure(err)
		return out, err
	}
	if err != nil {
		switch {
		case ctx.Err() != nil:
			p.discard(s.inst) // the runtime closed the instance with the context
			return out, ctx.Err()
		case errors.Is(err, ErrRecordTooLarge):
			p.put(s) // never called: neither the instance nor the plugin failed
			p.health.Oversized.Add(1)
			return out, err
		case errors.Is(err, abi.ErrGuest):
			p.put(s) // the plugin answered with an error: a failure, but the instance is sound
		default:
			p.discard(s.inst)
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
// The timed-out instance was closed by its deadline: it is discarded, and the retry takes an
// idle instance or makes one in its place.
func (p *Pool) retry(ctx context.Context, dead *slot, k int, ev *abi.Event, first error) (*slot, []abi.ReplyDraft, error) {
	if _, ok := dead.inst.(Retrier); !ok {
		return dead, nil, first
	}
	p.discard(dead.inst)
	s, err := p.take(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("%w; no fresh instance for its retry: %w", first, err)
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

// take returns an idle instance, or makes one when none is idle and the pool is under its
// size, or waits for one a call returns.
func (p *Pool) take(ctx context.Context) (*slot, error) {
	select {
	case s := <-p.idle:
		return s, nil
	default:
	}
	for {
		n := p.live.Load()
		if n >= int64(p.size) {
			break
		}
		if !p.live.CompareAndSwap(n, n+1) {
			continue
		}
		inst, _, err := p.newInstance(ctx)
		if err == nil {
			return &slot{inst: inst}, nil
		}
		p.live.Add(-1)
		if p.live.Load() == 0 {
			return nil, fmt.Errorf("no instance of %s could be made: %w", p.producer, err)
		}
		p.log.Error("plugin instance could not be made; waiting for one in use", "plugin", p.producer, "err", err)
		break
	}
	select {
	case s := <-p.idle:
		return s, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// discard closes an instance that failed (a call on it trapped or timed out) and takes it
// out of the count, so that the next call that finds none idle makes a new one.
func (p *Pool) discard(inst Instance) {
	inst.Close(context.Background())
	p.live.Add(-1)
}

// Size is the most instances the pool grows to.
func (p *Pool) Size() int { return p.size }

// Instances is the number of instances the pool holds now (idle or in a call).
func (p *Pool) Instances() int { return int(p.live.Load()) }

// put returns an instance to the pool. A retired pool still hands it to calls waiting for
// one; the last call to finish closes them all.
func (p *Pool) put(s *slot) {
	s.used = time.Now()
	p.requeue(s)
}

// requeue makes s idle again without touching its last use; a retired pool with no call in
// flight closes it at once.
func (p *Pool) requeue(s *slot) {
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

// shrink closes, every quarter of the idle timeout, the instances left unused for longer than
// it, down to the pool's minimum, until the pool is drained.
func (p *Pool) shrink() {
	t := time.NewTicker(max(p.idleFor/4, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-p.done:
			return
		case <-t.C:
		}
		for range len(p.idle) {
			if p.live.Load() <= int64(p.min) || p.retired.Load() {
				break
			}
			var s *slot
			select {
			case s = <-p.idle:
			default:
			}
			if s == nil {
				break
			}
			if time.Since(s.used) < p.idleFor {
				p.requeue(s) // as it was: its idle time goes on counting
				continue
			}
			s.inst.Close(context.Background())
			p.live.Add(-1)
		}
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
			p.live.Add(-1)
		default:
			return
		}
	}
}
