// Package sdk is the guest side of the ttp plugin ABI v1 (abi/ABI.md) for Go: what a lifter
// author needs to write a detector that the ttp host runs as a sandboxed WebAssembly module.
//
// A lifter is a main package that declares a Manifest and its handles at package level,
// implements Lifter and registers it:
//
//	var (
//		manifest = sdk.NewManifest("bruteforce", "1.0.0", "lifter:bruteforce_")
//		auth     = manifest.Source(abi.KindAuth)
//		failures = auth.Field("payload.failures_before")
//		countKey = manifest.Evidence("failures_before")
//	)
//
//	type params struct{ minFailures int64 }
//
//	type bruteForce struct{}
//
//	func (bruteForce) Manifest() *sdk.Manifest { return manifest }
//
//	func (bruteForce) Configure(r *sdk.Rule[params]) error {
//		r.Params.minFailures = r.Int("min_failures", 10)
//		if r.Params.minFailures < 1 {
//			return fmt.Errorf("min_failures must be at least 1, got %d", r.Params.minFailures)
//		}
//		return nil
//	}
//
//	func (bruteForce) Tag(ev *sdk.Event, rules []*sdk.Rule[params], out *sdk.Drafts) {
//		n, ok := ev.Int(failures)
//		for _, r := range rules {
//			if ok && n >= r.Params.minFailures {
//				out.Add(r.Index, 0, 1).Int(countKey, n)
//			}
//		}
//	}
//
//	func init() { sdk.Register(bruteForce{}) }
//
//	func main() {}
//
// and is built with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o bruteforce.wasm .
//	go run ./internal/wasmdata/wasmpack bruteforce.wasm
//
// (the second step, run in this repository and optional, packs the linker's 40,000 data segments into one, which saves
// the host about 1 MiB of heap per instance and 2 MiB per module: RATIONALE.md, "What an
// instance holds"; `make plugins` does both).
//
// The same code compiles natively (the wasm exports sit in a wasip1-only file), and package
// sdk/sdktest runs it inside `go test` through the same encoding and decoding the host uses.
//
// # Why it looks like this
//
// A lifter that decodes the event as JSON inside the guest costs more than twenty times the
// same lifter reading the host's record (figures in RATIONALE.md, "The ABI: a record read by
// index, not JSON"; wasm/reference_test.go measures them). So the guest parses nothing: the host writes a record of exactly the declared fields, Event
// reads them by Field handle (an index), and Drafts writes the binary reply into a buffer
// reused across calls. In steady state a Tag call allocates nothing unless the lifter does.
// JSON is used only where it is paid once: the manifest at load, the rules at configure.
//
// # What costs time in a guest
//
// The host enforces each call's deadline with wazero's termination checks: a check at every
// loop header, each an exit from the compiled code into the host (about 37 ns here). The Go
// compiler's wasm back end routes every taken branch (a loop iteration, a skipped if, a
// break) through a loop header at the top of its function, so a Go guest pays a check at
// nearly every taken branch (RATIONALE.md, "What a deadline costs a Go guest"). The sdk's
// own share is about 24 checks a call plus a few per declared field and list entry. A lifter
// is fast when it branches little per event: read a field once, range over Strings and
// Numbers once (their cursors inline), test the cheapest predicates first, and prefer a count
// to a sort. A substring search costs checks in proportion to the bytes it scans (Go's wasm
// memchr takes four bytes an iteration). `make guestchecks` counts, function by function,
// the checks one call of the reference lifter runs, `make guestprof` those of a built plugin
// over its conform vectors; `ttp conform` reports what a call costs.
//
// Package sdk imports only package abi and the standard library, so a plugin never drags the
// host's runtime into its .wasm.
package sdk
