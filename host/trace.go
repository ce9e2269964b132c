package host

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/decnet/ttp/abi"
	"github.com/decnet/ttp/rules"
)

// Tracing of the per-event path, with OpenTelemetry. Each upstream event the Dispatcher tags
// is one trace:
//
//	ttp.eval           source_kind, source_id, tags (the number of tags the event produced)
//	├─ ttp.plugin.call producer, source_kind, outcome ("ok" or "error"), error (its message)
//	└─ ttp.rule.fire   rule_id, technique_id, sub_technique_id, tactic, confidence, producer
//
// ttp.plugin.call is one plugin handler call (the built-in engine gets no span of its own: its
// time is the eval's); its source_kind is that of the event after fan-out, which a session's
// commands change. ttp.rule.fire is one finished tag, recorded when the event ends. The
// attribute keys are plain, like those of the log lines.
//
// # Why a nil check and not otel's no-op tracer?
//
// Tracing is off unless WithTracer is given a provider, and while it is off the Dispatcher
// makes no otel call at all: two nil checks per event and one per handler call (about a dozen instructions)
// are all that tracing adds to the path. Even otel's no-op tracer allocates a context per span
// and the attribute options, on a path where the engine spends about 2 µs and 8 allocations
// an event. BenchmarkDispatcherTracingOff measures it: the same allocations, and under
// callgrind the same instructions inside Dispatcher.Tag as before tracing existed (about
// 7,770 an event, within the ±50 of one run to the next).

// tracerName is the instrumentation scope of the Dispatcher's spans.
const tracerName = "github.com/decnet/ttp/host"

// WithTracer makes the Dispatcher record spans with tp. A nil tp, like no WithTracer, leaves
// tracing off.
func WithTracer(tp trace.TracerProvider) Option {
	return func(d *Dispatcher) {
		d.tracer = nil
		if tp != nil {
			d.tracer = tp.Tracer(tracerName)
		}
	}
}

// evalTrace is the tracing of one upstream event. Dispatcher.Tag has one only when a tracer
// is configured, and calls into it only then.
type evalTrace struct {
	tracer trace.Tracer
	ctx    context.Context // carries the ttp.eval span, the parent of the others
	span   trace.Span
	first  int // the event's tags are out[first:]
}

// startEval starts the ttp.eval span of an upstream event; first is len(out) on entry.
func (d *Dispatcher) startEval(ctx context.Context, kind, id string, first int) *evalTrace {
	ctx, span := d.tracer.Start(ctx, "ttp.eval", trace.WithAttributes(
		attribute.String("source_kind", kind),
		attribute.String("source_id", id)))
	return &evalTrace{tracer: d.tracer, ctx: ctx, span: span, first: first}
}

// call runs h on e as Dispatcher.Tag would, inside a ttp.plugin.call span when h is a plugin.
func (t *evalTrace) call(h Handler, set *rules.RuleSet, e *abi.Event, out []abi.TagDraft) ([]abi.TagDraft, error) {
	if _, engine := h.(Engine); engine {
		return h.Tag(t.ctx, set, e, out)
	}
	ctx, span := t.tracer.Start(t.ctx, "ttp.plugin.call", trace.WithAttributes(
		attribute.String("producer", h.Producer()),
		attribute.String("source_kind", e.SourceKind)))
	out, err := h.Tag(ctx, set, e, out)
	if err != nil {
		span.SetAttributes(attribute.String("outcome", "error"), attribute.String("error", err.Error()))
		span.SetStatus(codes.Error, err.Error())
	} else {
		span.SetAttributes(attribute.String("outcome", "ok"))
	}
	span.End()
	return out, err
}

// end records a ttp.rule.fire span per tag of the event (out[t.first:]) and ends the eval
// span, with an error status when the event's context ended it early.
func (t *evalTrace) end(out []abi.Tag) {
	tags := out[t.first:]
	for i := range tags {
		tg := &tags[i]
		_, span := t.tracer.Start(t.ctx, "ttp.rule.fire", trace.WithAttributes(
			attribute.String("rule_id", tg.RuleID),
			attribute.String("technique_id", tg.TechniqueID),
			attribute.String("sub_technique_id", tg.SubTechniqueID),
			attribute.String("tactic", tg.Tactic),
			attribute.Float64("confidence", tg.Confidence),
			attribute.String("producer", tg.Producer)))
		span.End()
	}
	t.span.SetAttributes(attribute.Int("tags", len(tags)))
	if err := t.ctx.Err(); err != nil {
		t.span.SetStatus(codes.Error, err.Error())
	}
	t.span.End()
}
