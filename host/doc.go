// Package host keeps the live set of plugins and rules of one process: it loads plugin
// modules through the runtime (package wasm), configures each with the rules it owns,
// follows a rule store, watches the plugin directory and hot-swaps what changes, publishing
// every change as one new dispatch.Snapshot into the Dispatcher it writes. It is where the
// runtime, the dispatcher and rule state meet; neither of those knows of it, and metrics and
// tracing read it from package telemetry.
package host
