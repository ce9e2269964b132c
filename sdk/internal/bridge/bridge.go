// Package bridge connects the lifter registered with package sdk to whatever drives it: the
// wasm exports in a .wasm module, or package sdktest inside `go test`. Both go through these
// byte-level calls, so a lifter tested natively runs the code path it ships with, and package
// sdk's API stays what a lifter author needs and nothing else.
package bridge

// Plugin is a registered lifter behind the ABI's byte-level calls (abi/ABI.md). Each returns
// bytes that stay valid until the next call into the same Plugin; one call at a time.
type Plugin interface {
	// Describe returns the manifest as JSON (ttp_describe).
	Describe() []byte
	// Configure takes a configure request and returns the configure reply, both JSON
	// (ttp_configure).
	Configure(req []byte) []byte
	// Tag takes one record and returns a reply, both binary (ttp_tag).
	Tag(record []byte) []byte
}

// Registered is the lifter sdk.Register made current, nil until it is called. The wasm exports
// serve it; sdktest reads it right after calling sdk.Register under its own lock.
var Registered Plugin
