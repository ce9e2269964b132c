//go:build race

package rules

// raceEnabled: under the race detector sync.Pool drops items on purpose, so the engine's
// pooled per-event state is allocated again now and then and allocation counts say nothing.
const raceEnabled = true
