// Package dispatch runs the detectors of ttp on events: the Dispatcher takes one upstream
// event, fans it out (abi.Expand), runs every handler of each event's source kind (the
// built-in engine bound to its rules, then the plugins) on one Snapshot, and Finish turns
// their drafts into tags (rule state, evidence filtering, tag_uuid, rule_version, producer).
// The offline `ttp tag`, `ttp rules test` and the daemon share this one path.
//
// A Snapshot is immutable and the Dispatcher's atomic pointer to it is the only place the
// live rule state is published (package host is its one writer); readers load it once an
// event and never lock. The package knows no WebAssembly runtime (a plugin is a Handler) and
// no metrics or tracing library (Stats are atomics read at scrape time; a Tracer is an
// interface).
package dispatch
