// Package rules holds what ttp knows about its rules: the YAML schema and its strict decoder,
// the compiled RuleSet and the immutable Snapshot of rules and their states, rule
// State (enabled, disabled, clipped, with an optional expiry), the Store interface the daemon
// reads definitions and state through, and the built-in regex engine that evaluates every
// `match.kind: pattern` rule.
//
// A change never edits a Snapshot: Snapshot.Apply builds the next one off the hot path, and
// its one publisher (package host, into the dispatch.Dispatcher's atomic pointer) swaps it in,
// so in-flight evaluations finish on the snapshot they started with.
package rules
