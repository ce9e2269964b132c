// Package bus puts the host on NATS: it consumes upstream events from a JetStream durable
// consumer shared by every worker, tags them through the host's Dispatcher, stores the tags
// and publishes them, in the order that makes a crash lose nothing and add nothing; it also
// dead-letters bad input, answers rule state requests and sends heartbeats. Subjects and
// envelopes are written down in SUBJECTS.md.
package bus

import (
	"time"

	"github.com/decnet/ttp/abi"
)

// Default names. The input prefix is configurable because the deception network owns it.
const (
	DefaultPrefix    = "decnet."
	DefaultInStream  = "DECNET"
	DefaultOutStream = "TTP"
	DefaultDurable   = "ttp-workers"

	// DefaultInMaxAge and DefaultOutMaxAge bound the streams ttp creates, so that the
	// zero-configuration daemon does not fill its disk: an acked input event stays in a
	// limits-retention stream until its age runs out. A week of input covers any worker
	// outage one would wait out (an event older than that is gone before it is tagged); a
	// month of output covers consumers that replay it, while the tag store keeps every tag.
	// They apply only when ttp creates a stream; an existing stream keeps its own settings.
	DefaultInMaxAge  = 7 * 24 * time.Hour
	DefaultOutMaxAge = 30 * 24 * time.Hour

	// DefaultMaxMessage is the largest input message a worker tags when its configuration
	// says nothing (`ttp serve --max-message`); a larger one goes to the dead letters.
	DefaultMaxMessage = 256 << 10

	SubjectTagged      = "ttp.tagged"
	SubjectFiredPrefix = "ttp.rule.fired."
	SubjectReloaded    = "ttp.rule.reloaded"
	SubjectRuleState   = "ttp.rule.state"
	SubjectPluginLoad  = "ttp.plugin.loaded"
	SubjectPluginRej   = "ttp.plugin.rejected"
	SubjectHeartbeat   = "ttp.worker.heartbeat"
	SubjectDeadLetter  = "ttp.deadletter"
	SubjectControl     = "ttp.control.rule.state"
)

// inputSubjects maps an input subject (after the prefix) to the source kind its events carry.
var inputSubjects = map[string]string{
	"attacker.command":       abi.KindCommand,
	"attacker.session.ended": abi.KindSession,
	"auth.attempt":           abi.KindAuth,
	"identity.rollup":        abi.KindIdentity,
	"email.received":         abi.KindEmail,
	"canary.fingerprint":     abi.KindCanary,
	"intel.enriched":         abi.KindIntel,
	"http.request":           abi.KindHTTP,
	"attacker.forward":       abi.KindForward,
}

// SubjectFor returns the input subject an event of kind is published on (`ttp publish`):
// the documented subject for known kinds, "<prefix>other.<kind>" for others.
func SubjectFor(prefix, kind string) string {
	for s, k := range inputSubjects {
		if k == kind {
			return prefix + s
		}
	}
	return prefix + "other." + kind
}

// FiredSubject is the subject of a technique's rule.fired message: the sub-technique's dot
// makes one more token, so ttp.rule.fired.T1098.> selects every sub-technique of T1098.
func FiredSubject(t *abi.Tag) string {
	if t.SubTechniqueID != "" {
		return SubjectFiredPrefix + t.SubTechniqueID
	}
	return SubjectFiredPrefix + t.TechniqueID
}
