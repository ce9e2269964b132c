package dispatch

import (
	"slices"
	"time"

	"github.com/decnet/ttp/abi"
	"github.com/decnet/ttp/rules"
)

// FinishStats counts what Finish dropped, for metrics: nothing it drops is an error.
type FinishStats struct {
	Disabled         int // drafts of disabled rules
	UnknownRule      int // drafts naming a rule the snapshot does not have (a race with a delete)
	EvidenceStripped int // evidence keys outside the rule's evidence_fields
	Duplicate        int // drafts that repeated an earlier draft's tag_uuid for the event
}

// Finish turns the drafts one producer returned for ev into tags, appended to out:
//   - the rule's state at now applies: disabled drops the draft, clipped caps the confidence
//     at confidence_max (no other ceiling exists);
//   - evidence keys outside the rule's evidence_fields are stripped and counted, never an
//     error, so an operator narrowing evidence_fields cannot break a plugin;
//   - tag_uuid, rule_version, producer, observed_at (to the millisecond, as the tag_uuid holds
//     it) and the event's identity are set; identity tags carry a
//     null attacker_uuid because they belong to the identity, not to one attacker;
//   - a draft that repeats an earlier one's rule, technique and tactic (so its tag_uuid) is
//     folded into it at the higher confidence and counted, so an event's tag_uuid is published
//     once however a plugin writes its reply.
//
// Drafts' evidence maps are never modified: a filtered copy is made when keys are stripped.
func Finish(snap *rules.Snapshot, ev *abi.Event, producer string, drafts []abi.TagDraft, now time.Time, out []abi.Tag, stats *FinishStats) []abi.Tag {
	start := len(out)
	for i := range drafts {
		d := &drafts[i]
		r, ok := snap.Set.Rule(d.RuleID)
		if !ok {
			stats.UnknownRule++
			continue
		}
		conf, keep := snap.State(d.RuleID, now).Apply(d.Confidence)
		if !keep {
			stats.Disabled++
			continue
		}
		t := abi.Tag{
			TagUUID:        abi.TagUUID(ev.ObservedAt, r.ID, r.Version, ev.SourceKind, ev.SourceID, d.TechniqueID, d.SubTechniqueID, d.Tactic),
			RuleID:         r.ID,
			RuleVersion:    r.Version,
			TechniqueID:    d.TechniqueID,
			SubTechniqueID: d.SubTechniqueID,
			Tactic:         d.Tactic,
			Confidence:     conf,
			Evidence:       keepEvidence(d.Evidence, r.EvidenceFields, stats),
			SourceKind:     ev.SourceKind,
			SourceID:       ev.SourceID,
			IdentityUUID:   ev.IdentityUUID,
			SessionID:      ev.SessionID,
			DeckyID:        ev.DeckyID,
			Producer:       producer,
			CreatedAt:      now.UTC(),
			ObservedAt:     abi.ObservedMillis(ev.ObservedAt),
		}
		if ev.AttackerUUID != "" && ev.SourceKind != abi.KindIdentity {
			a := ev.AttackerUUID
			t.AttackerUUID = &a
		}
		if j := sameUUID(out[start:], t.TagUUID); j >= 0 {
			stats.Duplicate++
			out[start+j].Confidence = max(out[start+j].Confidence, t.Confidence)
			continue
		}
		out = append(out, t)
	}
	return out
}

// sameUUID returns the index in tags of the tag with that tag_uuid, or -1; a reply holds a
// handful of drafts, so a scan beats a map.
func sameUUID(tags []abi.Tag, uuid string) int {
	for i := range tags {
		if tags[i].TagUUID == uuid {
			return i
		}
	}
	return -1
}

func keepEvidence(ev map[string]any, allowed []string, stats *FinishStats) map[string]any {
	strip := 0
	for k := range ev {
		if !slices.Contains(allowed, k) {
			strip++
		}
	}
	if strip == 0 {
		return ev
	}
	stats.EvidenceStripped += strip
	if strip == len(ev) {
		return nil
	}
	out := make(map[string]any, len(ev)-strip)
	for k, v := range ev {
		if slices.Contains(allowed, k) {
			out[k] = v
		}
	}
	return out
}
