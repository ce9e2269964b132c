// Package seal closes the runtime's interfaces to implementations from outside it, as
// wazero's internalapi.WazeroOnly closes its own: wasm.Module and wasm.Instance embed Sealed,
// which only a type embedding Type satisfies, and only the runtime and its loaders (packages
// under wasm/) can import this package. A caller can then rely on what the interfaces promise
// (a deadline on every call, memory bounded, the import allowlist checked), because every
// implementation is one of ours.
package seal

// Sealed is embedded in the runtime's public interfaces.
type Sealed interface{ sealed() }

// Type implements Sealed; the runtime's implementations embed it.
type Type struct{}

func (Type) sealed() {}
