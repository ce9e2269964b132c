// Package ingest turns the logs of other tools (Cowrie's JSON log first) into ttp events.
//
// It knows package abi and nothing above it: a reader of a foreign log yields abi.Event values
// and counts what it read, and the commands above it (ttp tag, ttp serve --ingest) decide where
// the events go. Each foreign format lives in a package of its own below this one
// (ingest/cowrie); this package holds only what they share.
package ingest

import "time"

// Counts is what one ingest run read and made of it. `ttp tag` writes it as the last line of
// its JSONL output (see SummaryLine) so that `ttp navigator` and `ttp report`, which read only
// that file, can show how much input stood behind the tags.
type Counts struct {
	// Input names the log format ("cowrie" or "jsonl").
	Input string `json:"input"`
	// Files are the inputs in the order they were read ("-" for standard input).
	Files []string `json:"files,omitempty"`
	// Lines is every line read, blank ones included.
	Lines int64 `json:"lines"`
	// Events is how many events the lines became (a session event has no line of its own).
	Events int64 `json:"events"`
	// Skipped counts well-formed lines that make no event: event ids that are not known, or
	// that are known and carry nothing to tag.
	Skipped int64 `json:"skipped"`
	// Malformed counts lines that could not be decoded; each one was reported with its file
	// and line number.
	Malformed int64 `json:"malformed"`
	// Unknown counts the skipped lines by event id, for the ids the reader does not know.
	Unknown map[string]int64 `json:"unknown_eventids,omitempty"`
	// Sensors are the distinct sensor names seen, sorted.
	Sensors []string `json:"sensors,omitempty"`
	// First and Last are the earliest and latest event times seen (zero when none).
	First time.Time `json:"first,omitzero"`
	Last  time.Time `json:"last,omitzero"`
}

// SummaryKey is the one key of the summary line, chosen so that no tag can carry it.
const SummaryKey = "ttp_ingest"

// SummaryLine is the shape of the last line `ttp tag --format jsonl` writes:
// {"ttp_ingest": {...Counts...}}. A reader of tag JSONL recognises it by its only key and
// skips it when it wants tags alone.
type SummaryLine struct {
	Ingest *Counts `json:"ttp_ingest"`
}
