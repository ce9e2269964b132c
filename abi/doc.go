// Package abi is the stable contract between the parts of ttp and its plugins: the Event a
// producer sends, the TagDraft a detector returns, the Tag that is stored and published, field
// paths, the canonical rule version and the deterministic tag UUID.
//
// It depends on nothing beyond the standard library so that a plugin built against it (through
// package sdk) never drags the host's runtime into its .wasm.
package abi
