package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/decnet/ttp/rules"
)

// OpenTelemetry export for `ttp serve --otlp ENDPOINT`: the Dispatcher's spans (telemetry/trace.go)
// and a ttp.rule.state span per rule state change go through a batch span processor to an
// OTLP/HTTP exporter. The OTEL_* variables of the SDK apply (OTEL_TRACES_SAMPLER,
// OTEL_BSP_*, OTEL_RESOURCE_ATTRIBUTES, OTEL_EXPORTER_OTLP_HEADERS, ...); the endpoint is
// the flag's.
//
// A collector that is down, slow or wrong never holds up an event: a span ends into the batch
// processor's queue (2048 spans by default), which drops when full; exports run on the
// processor's goroutine with otlpExportTimeout per request; their failures are logged, at
// most one line a minute. At exit, queued spans get otlpShutdownTimeout to go out.

const (
	otlpExportTimeout   = 5 * time.Second
	otlpShutdownTimeout = 5 * time.Second
	otlpErrorInterval   = time.Minute
)

// tracing is the daemon's span export. A nil *tracing is tracing off: its methods do nothing
// and provider returns nil, which leaves the Dispatcher without a tracer.
type tracing struct {
	tp     *sdktrace.TracerProvider
	tracer trace.Tracer
	log    *slog.Logger
}

// newTracing sets up the export to endpoint, or returns nil when it is empty. It connects to
// nothing: a collector that cannot be reached shows only in the log, later.
func newTracing(ctx context.Context, endpoint, worker string, log *slog.Logger) (*tracing, error) {
	if endpoint == "" {
		return nil, nil
	}
	target, err := otlpURL(endpoint)
	if err != nil {
		return nil, fmt.Errorf("--otlp %q: %w", endpoint, err)
	}
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(target), otlptracehttp.WithTimeout(otlpExportTimeout))
	if err != nil {
		return nil, fmt.Errorf("--otlp %q: %w", endpoint, err)
	}
	attrs := []attribute.KeyValue{attribute.String("service.name", "ttp")}
	if worker != "" {
		attrs = append(attrs, attribute.String("service.instance.id", worker))
	}
	// The environment (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES) overrides these.
	res, err := resource.New(ctx, resource.WithAttributes(attrs...), resource.WithFromEnv(), resource.WithTelemetrySDK())
	if err != nil {
		log.Warn("otlp: resource attributes partly unreadable", "err", err) // res holds the rest
	}
	otel.SetErrorHandler(&otelErrors{log: log})
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	log.Info("tracing: exporting spans over OTLP/HTTP", "endpoint", target)
	return &tracing{tp: tp, tracer: tp.Tracer("github.com/decnet/ttp/cmd/ttp"), log: log}, nil
}

// otlpURL reads --otlp: a URL, http://collector:4318 or https://..., or a bare host:port,
// which is plain HTTP. A URL without a path gets the standard /v1/traces.
func otlpURL(endpoint string) (string, error) {
	if !strings.Contains(endpoint, "://") {
		endpoint = "http://" + endpoint
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		return "", err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("scheme %q: want http or https", u.Scheme)
	}
	if u.Host == "" {
		return "", errors.New("no host")
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/v1/traces"
	}
	return u.String(), nil
}

// provider is what the Dispatcher traces with: nil when tracing is off.
func (t *tracing) provider() trace.TracerProvider {
	if t == nil {
		return nil
	}
	return t.tp
}

// ruleState records a ttp.rule.state span for a rule state applied to the host.
func (t *tracing) ruleState(ctx context.Context, rule string, st rules.State) {
	if t == nil {
		return
	}
	expires := ""
	if !st.ExpiresAt.IsZero() {
		expires = st.ExpiresAt.UTC().Format(time.RFC3339Nano)
	}
	attrs := []attribute.KeyValue{
		attribute.String("rule", rule),
		attribute.String("state", string(st.Mode)),
		attribute.Float64("confidence_max", st.ConfidenceMax),
		attribute.String("expires_at", expires),
	}
	if st.Reason != "" {
		attrs = append(attrs, attribute.String("reason", st.Reason))
	}
	_, span := t.tracer.Start(ctx, "ttp.rule.state", trace.WithAttributes(attrs...))
	span.End()
}

// shutdown exports the queued spans, waiting at most otlpShutdownTimeout.
func (t *tracing) shutdown() {
	if t == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), otlpShutdownTimeout)
	defer cancel()
	if err := t.tp.Shutdown(ctx); err != nil {
		t.log.Warn("otlp: spans not exported at exit", "err", err)
	}
}

// otelErrors logs the SDK's errors (failed exports, mostly) as warnings: the first at once,
// then at most one per otlpErrorInterval with the number held back, so that a collector
// outage cannot flood the log.
type otelErrors struct {
	log  *slog.Logger
	mu   sync.Mutex
	last time.Time
	held int
}

// Handle implements otel.ErrorHandler.
func (h *otelErrors) Handle(err error) {
	h.mu.Lock()
	now := time.Now()
	if !h.last.IsZero() && now.Sub(h.last) < otlpErrorInterval {
		h.held++
		h.mu.Unlock()
		return
	}
	n := h.held
	h.last, h.held = now, 0
	h.mu.Unlock()
	h.log.Warn("otlp: span export failed; events are unaffected", "err", err, "suppressed", n)
}
