// Package telemetry is the edge where ttp meets its metrics and tracing libraries: a
// Prometheus Collector that reads, at scrape time, the counters the Dispatcher and the
// plugins' Health already keep (so metrics cost nothing per event), and a Tracer that gives
// dispatch.Tracer to OpenTelemetry. Nothing else in the tagging path imports prometheus or
// otel; dispatch declares the Tracer interface it is called through.
package telemetry
