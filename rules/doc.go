// Package rules holds what ttp knows about its rules: the YAML schema and its strict decoder,
// the compiled RuleSet and the Index that swaps it whole through one atomic pointer, rule
// State (enabled, disabled, clipped, with an optional expiry), the Store interface the daemon
// reads definitions and state through, and the built-in regex engine that evaluates every
// `match.kind: pattern` rule.
//
// Readers of the Index never lock: a change builds a new immutable Snapshot off the hot path
// and publishes it with one atomic store, and in-flight evaluations finish on the snapshot they
// started with.
package rules
