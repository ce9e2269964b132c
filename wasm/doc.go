// Package wasm is the plugin runtime: it compiles lifter modules (through a compilation cache
// that survives restarts), checks their exports, imports and manifest, makes instances, and
// runs every call under a deadline, a memory cap and an output cap, with one retry on a
// fresh instance under a budget of the call's own CPU time. A Pool is one plugin configured
// with its rules; its Health is the failure record that quarantines it.
//
// The package knows nothing of rule files, rule state, metrics or tracing: it speaks the
// contract of package abi only (a plugin is configured with abi.RuleConfig and answers
// abi.TagDraft), and its Module and Instance interfaces are sealed, so every implementation
// is the runtime's own (this package's ttp-ABI loader and the Extism variant of package
// wasm/extism). Package dispatch runs pools beside the built-in engine; package host keeps the
// set of loaded plugins; package telemetry reads Health at scrape time.
package wasm
