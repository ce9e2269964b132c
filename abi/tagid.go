//go:build !wasip1

package abi

// The two identities the host computes and a guest never does. They are left out of wasip1
// builds so that crypto/sha256, whose FIPS module registers itself at init, stays out of every
// plugin: 0.5 MB of each module (RATIONALE.md, "What makes a plugin 4 MB").

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"time"
)

// RuleVersion is the first 16 hex digits of the SHA-256 of the rule definition in canonical
// JSON. A whitespace, comment or key-order edit is not a new version, and a rule read from a
// file or from a KV bucket has the same version.
func RuleVersion(definition any) (string, error) {
	b, err := CanonicalJSON(definition)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8]), nil
}

// TagUUID is the deterministic, time-ordered identity of a tag: a UUIDv8 (RFC 9562) whose top
// 48 bits are the event's observed_at in Unix milliseconds (0 when absent) and whose other
// bits come from SHA-256 over rule_id, rule_version, source_kind, source_id, technique_id,
// sub_technique_id and tactic joined by 0x1F. Replaying an event therefore never creates a
// second tag, and the store's unique index stays append-friendly (measured: modernc SQLite
// inserts about 37k rows/s with random keys, 120k with time-ordered ones).
//
// ObservedMillis and TagUUIDTime are its inverse for the time part.
func TagUUID(observedAt time.Time, ruleID, ruleVersion, sourceKind, sourceID, techniqueID, subTechniqueID, tactic string) string {
	h := sha256.New()
	for i, s := range [...]string{ruleID, ruleVersion, sourceKind, sourceID, techniqueID, subTechniqueID, tactic} {
		if i > 0 {
			h.Write([]byte{0x1f})
		}
		h.Write([]byte(s))
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	var u [16]byte
	var ms uint64
	if !observedAt.IsZero() && observedAt.UnixMilli() > 0 {
		ms = uint64(observedAt.UnixMilli()) & (1<<48 - 1)
	}
	var ts [8]byte
	binary.BigEndian.PutUint64(ts[:], ms)
	copy(u[0:6], ts[2:8])
	copy(u[6:16], sum[0:10])
	u[6] = u[6]&0x0f | 0x80 // version 8
	u[8] = u[8]&0x3f | 0x80 // variant 10
	var out [36]byte
	hex.Encode(out[0:8], u[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], u[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], u[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], u[8:10])
	out[23] = '-'
	hex.Encode(out[24:36], u[10:16])
	return string(out[:])
}
