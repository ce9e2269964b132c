//go:build race

package wasm

// raceEnabled: real Go plugins are compiled and run outside the race detector (its overhead
// makes multi-megabyte modules take minutes); race tests use the small WAT modules.
const raceEnabled = true
