package dispatch

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/decnet/ttp/abi"
	"github.com/decnet/ttp/rules"
)

// Handler is one detector the Dispatcher runs on an event: the built-in engine, or a plugin
// (a wasm.Pool satisfies it). It is declared here, where it is used, and left open: a test,
// or a detector in Go, is a Handler too; what a Handler must not do is keep drafts of an
// event after Tag returns.
type Handler interface {
	// Producer names the handler in tags: "engine" or "name@version".
	Producer() string
	// Handles reports whether the handler takes events of this source kind.
	Handles(kind string) bool
	// Tag appends the handler's drafts for ev to out.
	Tag(ctx context.Context, ev *abi.Event, out []abi.TagDraft) ([]abi.TagDraft, error)
}

// engine is the built-in engine as a Handler, bound to the rule set of its snapshot.
type engine struct{ set *rules.RuleSet }

func (engine) Producer() string { return "engine" }

// Handles reports whether some pattern rule applies to kind.
func (e engine) Handles(kind string) bool { return e.set.Evaluates(kind) }

func (e engine) Tag(_ context.Context, ev *abi.Event, out []abi.TagDraft) ([]abi.TagDraft, error) {
	return e.set.Eval(ev, out), nil
}

// Stats are the Dispatcher's counters since it was made.
type Stats struct {
	Events           atomic.Int64 // upstream events
	Evaluated        atomic.Int64 // events after fan-out
	Tags             atomic.Int64
	HandlerErrors    atomic.Int64
	Disabled         atomic.Int64
	EvidenceStripped atomic.Int64
	Duplicates       atomic.Int64 // drafts folded into an earlier draft of the same tag_uuid
	UnknownKinds     atomic.Int64 // events of kinds abi does not know
	PayloadTypes     atomic.Int64 // events with a documented payload field of another JSON type
}

// Snapshot is everything one event is evaluated against: the rules with their states and
// the handlers (the built-in engine bound to those rules first, then one per plugin). It is
// immutable; a change of rules, state or plugins makes a new one (NewSnapshot), swapped in
// with one atomic store.
type Snapshot struct {
	Rules    *rules.Snapshot
	Handlers []Handler // Handlers[0] is the built-in engine

	// Reference count of the events evaluating on this snapshot, so that what it alone
	// holds (an old plugin pool) is retired only after the last of them finishes.
	refs      atomic.Int64
	out       atomic.Bool // swapped out: run onRelease once refs reaches zero
	mu        sync.Mutex
	onRelease []func()
	fired     sync.Once
}

// acquire takes a reference on the current snapshot. After the increment it checks the
// snapshot is still current: a snapshot swapped out in between may already have been
// released, so the event starts over on the new one.
func (d *Dispatcher) acquire() *Snapshot {
	for {
		s := d.cur.Load()
		s.refs.Add(1)
		if d.cur.Load() == s {
			return s
		}
		s.release()
	}
}

func (s *Snapshot) release() {
	if s.refs.Add(-1) == 0 && s.out.Load() {
		s.fire()
	}
}

func (s *Snapshot) fire() {
	s.fired.Do(func() {
		s.mu.Lock()
		fs := s.onRelease
		s.mu.Unlock()
		for _, f := range fs {
			f()
		}
	})
}

// AfterRelease marks s swapped out and runs fs once no event evaluates on it any more (at
// once when none does).
func (s *Snapshot) AfterRelease(fs ...func()) {
	s.mu.Lock()
	s.onRelease = append(s.onRelease, fs...)
	s.mu.Unlock()
	s.out.Store(true)
	if s.refs.Load() == 0 {
		s.fire()
	}
}

// Dispatcher runs every handler of an event's kind on one Snapshot and finishes the drafts
// into tags. It is safe for concurrent use; readers load the snapshot pointer once per event
// and never lock. Concurrency comes from many events in flight, not from running one event's
// handlers in parallel (a goroutine costs as much as the whole engine path).
type Dispatcher struct {
	cur     atomic.Pointer[Snapshot]
	now     func() time.Time
	log     *slog.Logger
	warned  sync.Map // source kind -> struct{}: once-per-kind log lines
	limiter warnLimiter
	tracer  Tracer // nil: tracing off (trace.go)
	Stats   Stats
}

// warnLimiter lets through one failure log line per producer per second, and tells how many
// it held back since, so a plugin failing on every event cannot flood the log.
type warnLimiter struct {
	mu   sync.Mutex
	last map[string]time.Time
	held map[string]int
}

func (l *warnLimiter) allow(producer string, now time.Time) (suppressed int, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last == nil {
		l.last, l.held = map[string]time.Time{}, map[string]int{}
	}
	if t, seen := l.last[producer]; seen && now.Sub(t) < time.Second {
		l.held[producer]++
		return 0, false
	}
	l.last[producer] = now
	n := l.held[producer]
	l.held[producer] = 0
	return n, true
}

// Config is what a Dispatcher is made with. Its zero value is a Dispatcher with no rules and
// no plugins, on the wall clock, logging to slog.Default, tracing off.
type Config struct {
	// Snapshot is what events evaluate on until Swap replaces it; nil: no rules, the engine
	// alone.
	Snapshot *Snapshot
	// Clock is the time of rule state expiry and of created_at; nil: time.Now.
	Clock func() time.Time
	// Logger receives the rate-limited failure lines; nil: slog.Default().
	Logger *slog.Logger
	// Tracer, when set, sees every event and plugin call (package telemetry adapts
	// OpenTelemetry); nil makes no tracing call at all on the path.
	Tracer Tracer
}

// New returns a Dispatcher made with cfg. Nothing in a Config can be invalid, so New
// returns no error (RATIONALE.md, "One configuration style").
func New(cfg Config) *Dispatcher {
	d := &Dispatcher{now: cfg.Clock, log: cfg.Logger, tracer: cfg.Tracer}
	if d.now == nil {
		d.now = time.Now
	}
	if d.log == nil {
		d.log = slog.Default()
	}
	snap := cfg.Snapshot
	if snap == nil {
		snap = NewSnapshot(rules.EmptySnapshot())
	}
	d.cur.Store(snap)
	return d
}

// NewSnapshot is the snapshot of rs with the built-in engine bound to its rules, then the
// given handlers (one per plugin), in that order.
func NewSnapshot(rs *rules.Snapshot, handlers ...Handler) *Snapshot {
	return &Snapshot{Rules: rs, Handlers: append([]Handler{engine{set: rs.Set}}, handlers...)}
}

// Swap makes snap the snapshot of every event that starts from now on and returns the
// previous one; events in flight finish on the snapshot they started with.
func (d *Dispatcher) Swap(snap *Snapshot) *Snapshot { return d.cur.Swap(snap) }

// Load returns the current snapshot.
func (d *Dispatcher) Load() *Snapshot { return d.cur.Load() }

// Tag evaluates one upstream event: it fans it out, runs the handlers of every resulting
// event's kind and appends the finished tags to out. A handler's error costs only that
// handler's drafts for that event (it is logged and counted); a cancelled context is returned.
// With a Config.Tracer, the event, its plugin calls and its tags are traced (trace.go).
func (d *Dispatcher) Tag(ctx context.Context, ev abi.Event, out []abi.Tag) ([]abi.Tag, error) {
	d.Stats.Events.Add(1)
	snap := d.acquire()
	defer snap.release()
	p := evalPass{ctx: ctx, snap: snap, now: d.now()}
	d.checkPayload(&ev, p.now)
	if d.tracer != nil { // p.tr nil when tracing is off: then nothing below calls a tracer
		p.tr = &evalTrace{t: d.tracer.Event(ctx, ev.SourceKind, ev.SourceID), first: len(out)}
	}
	var err error
	if abi.Expands(ev.SourceKind) {
		// A session fans out (abi.Expand): it and each of its commands are evaluated in turn,
		// in place in the slice Expand returns; an intel event gains its derived fields.
		evs := abi.Expand(ev)
		for i := range evs {
			if out, err = d.eval(&p, &evs[i], out); err != nil {
				break
			}
		}
	} else {
		// Every other event is evaluated alone, as Expand would return it, without the
		// one-element slice Expand allocates for it: most events are commands and take this path.
		out, err = d.evalAlone(&p, ev, out)
	}
	if err != nil { // the context ended the event early
		if p.tr != nil {
			p.tr.end(ctx, out)
		}
		return out, err
	}
	d.Stats.Disabled.Add(int64(p.stats.Disabled))
	d.Stats.EvidenceStripped.Add(int64(p.stats.EvidenceStripped))
	d.Stats.Duplicates.Add(int64(p.stats.Duplicate))
	if p.tr != nil {
		p.tr.end(ctx, out)
	}
	return out, ctx.Err()
}

// checkPayload counts and logs (rate-limited, per kind) an event whose payload has a
// documented field of the wrong JSON type: the rules reading that field see it as absent, so
// without a word here the producer could never learn why its events tag nothing. The event
// is still evaluated: its other fields may tag.
func (d *Dispatcher) checkPayload(ev *abi.Event, now time.Time) {
	err := abi.CheckPayload(ev.SourceKind, ev.Payload)
	if err == nil {
		return
	}
	d.Stats.PayloadTypes.Add(1)
	if n, ok := d.limiter.allow("payload type:"+ev.SourceKind, now); ok {
		d.log.Warn("payload field of the wrong type: rules read it as absent", "source_kind", ev.SourceKind, "source_id", ev.SourceID, "err", err, "suppressed", n)
	}
}

// evalPass is what the events of one upstream event (it and its fan-out) share while they are
// evaluated: the snapshot, the clock reading, the trace, the counts and the drafts buffer.
type evalPass struct {
	ctx    context.Context
	snap   *Snapshot
	now    time.Time
	tr     *evalTrace // nil when tracing is off
	stats  FinishStats
	drafts []abi.TagDraft // reused from handler to handler
}

// evalAlone is eval of an event that does not fan out. It takes the event by value so that
// only this path pays for the copy the handlers' pointer needs.
func (d *Dispatcher) evalAlone(p *evalPass, e abi.Event, out []abi.Tag) ([]abi.Tag, error) {
	return d.eval(p, &e, out)
}

// eval runs every handler of e's kind on e and appends the finished tags to out. It returns
// an error only when the context ended: a handler's own failure is logged, counted and
// skipped.
func (d *Dispatcher) eval(p *evalPass, e *abi.Event, out []abi.Tag) ([]abi.Tag, error) {
	d.Stats.Evaluated.Add(1)
	d.noteKind(p.snap, e.SourceKind)
	for i, h := range p.snap.Handlers {
		if !h.Handles(e.SourceKind) {
			continue
		}
		var err error
		if p.tr == nil || i == 0 { // the engine's time is the event's: no span of its own
			p.drafts, err = h.Tag(p.ctx, e, p.drafts[:0])
		} else {
			p.drafts, err = p.tr.call(h, e, p.drafts[:0])
		}
		if err != nil {
			if p.ctx.Err() != nil {
				return out, p.ctx.Err()
			}
			d.Stats.HandlerErrors.Add(1)
			if n, ok := d.limiter.allow(h.Producer(), p.now); ok {
				d.log.Warn("handler failed; its tags for this event are lost", "producer", h.Producer(), "source_kind", e.SourceKind, "source_id", e.SourceID, "err", err, "suppressed", n)
			}
			continue
		}
		n := len(out)
		out = Finish(p.snap.Rules, e, h.Producer(), p.drafts, p.now, out, &p.stats)
		d.Stats.Tags.Add(int64(len(out) - n))
	}
	return out, nil
}

// noteKind logs once per kind an event that nothing can tag: INFO for a kind abi does not
// know (accepted and counted), WARNING for a known kind no rule applies to.
func (d *Dispatcher) noteKind(snap *Snapshot, kind string) {
	known := abi.IsKnownKind(kind)
	if !known {
		d.Stats.UnknownKinds.Add(1)
	}
	if known && claimed(snap, kind) {
		return
	}
	if _, seen := d.warned.LoadOrStore(kind, struct{}{}); seen {
		return
	}
	if known {
		d.log.Warn("no rule claims this source kind; its events produce no tags", "source_kind", kind)
	} else {
		d.log.Info("unknown source kind accepted; no rule applies to it", "source_kind", kind)
	}
}

// claimed reports whether some handler takes the kind: the engine when a pattern rule applies
// to it, a plugin when it declares the kind and owns a rule.
func claimed(snap *Snapshot, kind string) bool {
	for _, h := range snap.Handlers {
		if h.Handles(kind) {
			return true
		}
	}
	return false
}
