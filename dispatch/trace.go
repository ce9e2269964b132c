package dispatch

import (
	"context"

	"github.com/decnet/ttp/abi"
)

// Tracer sees the evaluation of every upstream event: package telemetry adapts OpenTelemetry
// to it (one trace an event, a span a plugin call and a span a tag). It is declared here so
// that this package depends on no tracing library.
//
// Tracing is off when Config.Tracer is nil, and then the Dispatcher makes no call into a
// tracer at all: two nil checks an event and one a plugin call are all tracing adds to the
// path (telemetry/trace.go says why not otel's no-op tracer).
type Tracer interface {
	// Event begins the trace of one upstream event of the given source kind and id; ctx is
	// the caller's.
	Event(ctx context.Context, kind, id string) EventTrace
}

// EventTrace is the trace of one upstream event while it is evaluated.
type EventTrace interface {
	// Call begins the trace of one plugin call on an event of the given kind (after fan-out)
	// and returns the context to make the call with and the function that ends it with the
	// call's error. The built-in engine's calls are not traced: their time is the event's.
	Call(producer, kind string) (context.Context, func(error))
	// End records the event's tags and ends its trace; err is the context's error when it
	// cut the event short.
	End(tags []abi.Tag, err error)
}

// evalTrace is the tracing of one upstream event. Dispatcher.Tag has one only when a tracer
// is configured, and calls into it only then.
type evalTrace struct {
	t     EventTrace
	first int // the event's tags are out[first:]
}

// call runs h on e inside a traced plugin call.
func (t *evalTrace) call(h Handler, e *abi.Event, out []abi.TagDraft) ([]abi.TagDraft, error) {
	ctx, done := t.t.Call(h.Producer(), e.SourceKind)
	out, err := h.Tag(ctx, e, out)
	done(err)
	return out, err
}

// end ends the trace with the event's tags (out[t.first:]).
func (t *evalTrace) end(ctx context.Context, out []abi.Tag) { t.t.End(out[t.first:], ctx.Err()) }
