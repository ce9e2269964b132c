package telemetry

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/decnet/ttp/abi"
	"github.com/decnet/ttp/dispatch"
	"github.com/decnet/ttp/host"
	"github.com/decnet/ttp/rules"
)

// tracedHarness is newHarness with a Dispatcher that records its spans in memory.
func tracedHarness(t *testing.T, rs ...*rules.Rule) (*harness, *tracetest.InMemoryExporter) {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	return newHarness(t, NewTracer(tp), rs...), exp
}

// attrs returns a span's attributes by key.
func attrs(s tracetest.SpanStub) map[attribute.Key]attribute.Value {
	m := map[attribute.Key]attribute.Value{}
	for _, kv := range s.Attributes {
		m[kv.Key] = kv.Value
	}
	return m
}

func spansNamed(ss tracetest.SpanStubs, name string) []tracetest.SpanStub {
	var out []tracetest.SpanStub
	for _, s := range ss {
		if s.Name == name {
			out = append(out, s)
		}
	}
	return out
}

// checkAttrs reports the attributes of s that differ from want (a string, float64 or int).
func checkAttrs(t *testing.T, s tracetest.SpanStub, want map[string]any) {
	t.Helper()
	got := attrs(s)
	for k, w := range want {
		v, ok := got[attribute.Key(k)]
		if !ok {
			t.Errorf("%s: no attribute %s (have %v)", s.Name, k, s.Attributes)
			continue
		}
		var g any
		switch w.(type) {
		case string:
			g = v.AsString()
		case float64:
			g = v.AsFloat64()
		case int:
			g = int(v.AsInt64())
		}
		if g != w {
			t.Errorf("%s: %s = %v, want %v", s.Name, k, v.Emit(), w)
		}
	}
}

// TestTraceSpans tags one event with the engine, a plugin that tags (tiny_v1) and a plugin
// that traps (trap_first): one ttp.eval span, its two ttp.plugin.call children (ok and
// error; the engine has none) and a ttp.rule.fire child per tag.
func TestTraceSpans(t *testing.T) {
	hs, exp := tracedHarness(t, tinyRule(t, "R9001", 0.8, "marker"), mustRule(t, "R0001", ruleR0001))
	ctx := context.Background()
	for _, p := range []string{"tiny_v1", "trap_first"} {
		if err := hs.h.LoadPlugin(ctx, wat(p)); err != nil {
			t.Fatal(err)
		}
	}
	tags := hs.tag(t, unameEvent)
	if len(tags) != 2 {
		t.Fatalf("tags %+v, want the engine's and tiny's", tags)
	}
	ss := exp.GetSpans()

	evals := spansNamed(ss, "ttp.eval")
	if len(evals) != 1 {
		t.Fatalf("%d ttp.eval spans, want 1", len(evals))
	}
	eval := evals[0]
	checkAttrs(t, eval, map[string]any{"source_kind": "command", "source_id": "c1", "tags": 2})
	if eval.Parent.IsValid() {
		t.Errorf("ttp.eval has a parent %v", eval.Parent)
	}
	if eval.Status.Code == codes.Error {
		t.Errorf("ttp.eval status %v: a plugin's failure is not the event's", eval.Status)
	}
	child := func(s tracetest.SpanStub) {
		t.Helper()
		if s.Parent.SpanID() != eval.SpanContext.SpanID() || s.SpanContext.TraceID() != eval.SpanContext.TraceID() {
			t.Errorf("%s %v: parent %v, want ttp.eval %v", s.Name, s.Attributes, s.Parent.SpanID(), eval.SpanContext.SpanID())
		}
	}

	calls := map[string]tracetest.SpanStub{}
	for _, s := range spansNamed(ss, "ttp.plugin.call") {
		child(s)
		calls[attrs(s)["producer"].AsString()] = s
	}
	if len(calls) != 2 {
		t.Fatalf("ttp.plugin.call spans by producer: %v, want tiny and trap_first (and none for the engine)", calls)
	}
	ok := calls["tiny@1.0.0"]
	checkAttrs(t, ok, map[string]any{"source_kind": "command", "outcome": "ok"})
	if _, has := attrs(ok)["error"]; has || ok.Status.Code == codes.Error {
		t.Errorf("ok call has an error: %v %v", ok.Attributes, ok.Status)
	}
	bad := calls["hostile-trap-first@1.0.0"]
	checkAttrs(t, bad, map[string]any{"source_kind": "command", "outcome": "error"})
	if msg := attrs(bad)["error"].AsString(); msg == "" || bad.Status.Code != codes.Error || bad.Status.Description != msg {
		t.Errorf("failed call: error %q, status %v", msg, bad.Status)
	}

	fires := map[string]tracetest.SpanStub{}
	for _, s := range spansNamed(ss, "ttp.rule.fire") {
		child(s)
		fires[attrs(s)["rule_id"].AsString()] = s
	}
	if len(fires) != 2 {
		t.Fatalf("ttp.rule.fire spans by rule: %v, want R0001 and R9001", fires)
	}
	checkAttrs(t, fires["R0001"], map[string]any{"technique_id": "T1082", "sub_technique_id": "", "tactic": "discovery", "confidence": 0.8, "producer": "engine"})
	checkAttrs(t, fires["R9001"], map[string]any{"technique_id": "T1059", "sub_technique_id": "T1059.004", "tactic": "execution", "confidence": 0.8, "producer": "tiny@1.0.0"})
	if len(ss) != 5 {
		t.Errorf("%d spans, want 5: %v", len(ss), ss)
	}
}

// TestTraceFanOut: a session with commands is one ttp.eval (the upstream event); the plugin
// call is on the command it fans out to, and the tag counts carry over calls.
func TestTraceFanOut(t *testing.T) {
	hs, exp := tracedHarness(t, tinyRule(t, "R9001", 0.8, "marker"), mustRule(t, "R0001", ruleR0001))
	if err := hs.h.LoadPlugin(context.Background(), wat("tiny_v1")); err != nil {
		t.Fatal(err)
	}
	prior := []abi.Tag{{RuleID: "earlier"}}
	session := abi.Event{SourceKind: "session", SourceID: "s1", Payload: map[string]any{"commands": []any{"uname -a"}}}
	tags, err := hs.d.Tag(context.Background(), session, prior)
	if err != nil || len(tags) != 3 {
		t.Fatalf("tags %+v, %v", tags, err)
	}
	ss := exp.GetSpans()
	evals := spansNamed(ss, "ttp.eval")
	if len(evals) != 1 {
		t.Fatalf("%d ttp.eval spans, want 1 per upstream event", len(evals))
	}
	checkAttrs(t, evals[0], map[string]any{"source_kind": "session", "source_id": "s1", "tags": 2})
	calls := spansNamed(ss, "ttp.plugin.call")
	if len(calls) != 1 {
		t.Fatalf("%d plugin calls, want 1 (tiny handles command, not session)", len(calls))
	}
	checkAttrs(t, calls[0], map[string]any{"source_kind": "command", "outcome": "ok", "producer": "tiny@1.0.0"})
	if n := len(spansNamed(ss, "ttp.rule.fire")); n != 2 {
		t.Errorf("%d ttp.rule.fire spans, want 2 (the earlier tag in out is not this event's)", n)
	}
}

// TestTraceCancelled: an event cut short by its context ends its ttp.eval span with an error.
func TestTraceCancelled(t *testing.T) {
	hs, exp := tracedHarness(t, tinyRule(t, "R9001", 0.8, "marker"))
	if err := hs.h.LoadPlugin(context.Background(), wat("tiny_v1")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := hs.d.Tag(ctx, unameEvent, nil); err == nil {
		t.Fatal("no error from a cancelled context")
	}
	evals := spansNamed(exp.GetSpans(), "ttp.eval")
	if len(evals) != 1 || evals[0].Status.Code != codes.Error {
		t.Fatalf("ttp.eval spans %v, want one with an error status", evals)
	}
}

// TestTraceOff: without a tracer (NewTracer(nil), or none) the Dispatcher records nothing,
// not even through otel's global provider.
func TestTraceOff(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	defer tp.Shutdown(context.Background())
	prev := otel.GetTracerProvider()
	otel.SetTracerProvider(tp)
	defer otel.SetTracerProvider(prev)
	rs, err := rules.NewSnapshot([]*rules.Rule{mustRule(t, "R0001", ruleR0001)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if tr := NewTracer(nil); tr != nil {
		t.Fatalf("NewTracer(nil) = %v, want nil: a non-nil interface would turn tracing on", tr)
	}
	for _, tracer := range []dispatch.Tracer{NewTracer(nil), nil} {
		d := dispatch.New(dispatch.Config{Snapshot: dispatch.NewSnapshot(rs), Tracer: tracer})
		tags, err := d.Tag(context.Background(), unameEvent, nil)
		if err != nil || len(tags) != 1 {
			t.Fatalf("tags %v, %v", tags, err)
		}
	}
	if ss := exp.GetSpans(); len(ss) != 0 {
		t.Errorf("spans recorded with tracing off: %v", ss)
	}
}

// benchEvents are what the Dispatcher benchmarks tag, in turn: a command the engine and the
// plugin both tag, one only the plugin tags, an auth event, a session fanning out to two
// commands, and a kind nothing handles.
var benchEvents = []abi.Event{
	unameEvent,
	{SourceKind: "command", SourceID: "c2", Payload: map[string]any{"command_text": "ls -la /tmp"}},
	{SourceKind: "auth", SourceID: "a1", Payload: map[string]any{"username": "root"}},
	{SourceKind: "session", SourceID: "s1", Payload: map[string]any{"commands": []any{"uname -r", "id"}}},
	{SourceKind: "http", SourceID: "h1", Payload: map[string]any{"path": "/"}},
}

// benchmarkDispatcher tags benchEvents on a Dispatcher made with opts: "engine" with the
// built-in engine only, "plugin" with tiny_v1 loaded too (one instance).
func benchmarkDispatcher(b *testing.B, tracer dispatch.Tracer) {
	parse := func(id, src string) *rules.Rule {
		r, err := rules.Parse(id+".yaml", []byte(src))
		if err != nil {
			b.Fatal(err)
		}
		return r
	}
	tiny := `id: R9001
name: tiny
applies_to: [command, auth]
match: {kind: lifter:tiny_marker, params: {threshold: 3}}
emits:
  - {technique_id: T1059, sub_technique_id: T1059.004, tactic: execution, confidence: 0.8}
precision: M
evidence_fields: [marker]
`
	for _, plugin := range []bool{false, true} {
		name := "engine"
		if plugin {
			name = "plugin"
		}
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			log := slog.New(slog.NewTextHandler(io.Discard, nil))
			d := dispatch.New(dispatch.Config{Logger: log, Tracer: tracer})
			h, err := host.New(host.Config{Dispatcher: d, Compiler: testCompiler, Logger: log, PoolSize: 1})
			if err != nil {
				b.Fatal(err)
			}
			defer h.Close()
			rs := []rules.Change{{Op: rules.RuleUpdated, ID: "R0001", Rule: parse("R0001", ruleR0001)},
				{Op: rules.RuleUpdated, ID: "R9001", Rule: parse("R9001", tiny)}}
			if err := h.ApplyRules(ctx, rs...); err != nil {
				b.Fatal(err)
			}
			if plugin {
				if err := h.LoadPlugin(ctx, wat("tiny_v1")); err != nil {
					b.Fatal(err)
				}
			}
			var out []abi.Tag
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				var err error
				if out, err = d.Tag(ctx, benchEvents[i%len(benchEvents)], out[:0]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDispatcherTracingOff tags events with tracing off (no Tracer); BenchmarkDispatcherTracingOn is the cost of tracing on, with the
// SDK and a batch span processor in front of an exporter that drops the spans.
func BenchmarkDispatcherTracingOff(b *testing.B) { benchmarkDispatcher(b, nil) }

func BenchmarkDispatcherTracingOn(b *testing.B) {
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()))
	defer tp.Shutdown(context.Background())
	benchmarkDispatcher(b, NewTracer(tp))
}
