// Package host runs the detectors of ttp on events: the Dispatcher takes one upstream event,
// fans it out (abi.Expand), runs every handler of each event's source kind on one rules
// snapshot, and Finish turns their drafts into tags (rule state, evidence filtering,
// tag_uuid, rule_version, producer). The offline `ttp tag`, `ttp rules test` and the daemon
// share this one path.
package host
