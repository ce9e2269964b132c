package abi

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"sort"
	"time"
)

// TagDraft is what a detector (the built-in engine or a plugin) returns for one event: the
// technique it saw, for which rule, how sure it is, and the evidence that made it fire.
type TagDraft struct {
	RuleID         string         `json:"rule_id"`
	TechniqueID    string         `json:"technique_id"`
	SubTechniqueID string         `json:"sub_technique_id,omitempty"`
	Tactic         string         `json:"tactic"`
	Confidence     float64        `json:"confidence"`
	Evidence       map[string]any `json:"evidence,omitempty"`
}

// Tag is what is stored and published: a draft after the host's Finish, with the identity of
// the event it belongs to and the exact rule version that produced it.
//
// AttackerUUID is a pointer so that it marshals as JSON null when absent, as it always is on
// identity tags (they belong to the identity, not to one attacker).
//
// ObservedAt is when the event happened (its observed_at) to the millisecond, and CreatedAt
// when it was tagged: reports and layers are about the first, the outbox about the second.
// ObservedAt is exactly what the tag_uuid's top 48 bits hold (TagUUIDTime), which is why the
// stores keep no column for it and a reader can recover it from any stored tag.
type Tag struct {
	TagUUID        string         `json:"tag_uuid"`
	RuleID         string         `json:"rule_id"`
	RuleVersion    string         `json:"rule_version"`
	TechniqueID    string         `json:"technique_id"`
	SubTechniqueID string         `json:"sub_technique_id,omitempty"`
	Tactic         string         `json:"tactic"`
	Confidence     float64        `json:"confidence"`
	Evidence       map[string]any `json:"evidence,omitempty"`
	SourceKind     string         `json:"source_kind"`
	SourceID       string         `json:"source_id"`
	AttackerUUID   *string        `json:"attacker_uuid"`
	IdentityUUID   string         `json:"identity_uuid,omitempty"`
	SessionID      string         `json:"session_id,omitempty"`
	DeckyID        string         `json:"decky_id,omitempty"`
	Producer       string         `json:"producer"`
	CreatedAt      time.Time      `json:"created_at"`
	ObservedAt     time.Time      `json:"observed_at,omitzero"`
}

// CanonicalJSON encodes a decoded document (maps, slices, strings, numbers, booleans, nil,
// time.Time) in the one form every reader of a rule agrees on: object keys sorted by their
// UTF-8 bytes, no insignificant whitespace, every number as a float64 in Go's shortest
// round-trip form (so 1 and 1.0 are the same), <, > and & not escaped, times as RFC 3339 in
// UTC. abi/ABI.md states it for implementers in other languages.
func CanonicalJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	if err := writeCanonical(&buf, v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func writeCanonical(buf *bytes.Buffer, v any) error {
	switch x := v.(type) {
	case nil:
		buf.WriteString("null")
	case bool:
		if x {
			buf.WriteString("true")
		} else {
			buf.WriteString("false")
		}
	case string:
		writeString(buf, x)
	case time.Time:
		writeString(buf, x.UTC().Format(time.RFC3339Nano))
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		buf.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				buf.WriteByte(',')
			}
			writeString(buf, k)
			buf.WriteByte(':')
			if err := writeCanonical(buf, x[k]); err != nil {
				return err
			}
		}
		buf.WriteByte('}')
	case []any:
		buf.WriteByte('[')
		for i, el := range x {
			if i > 0 {
				buf.WriteByte(',')
			}
			if err := writeCanonical(buf, el); err != nil {
				return err
			}
		}
		buf.WriteByte(']')
	default:
		rv := reflect.ValueOf(v)
		var f float64
		switch rv.Kind() {
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			f = float64(rv.Int())
		case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			f = float64(rv.Uint())
		case reflect.Float32, reflect.Float64:
			f = rv.Float()
		case reflect.Slice:
			items := make([]any, rv.Len())
			for i := range items {
				items[i] = rv.Index(i).Interface()
			}
			return writeCanonical(buf, items)
		case reflect.Map:
			if rv.Type().Key().Kind() != reflect.String {
				return fmt.Errorf("abi: canonical JSON: map key type %s", rv.Type().Key())
			}
			m := make(map[string]any, rv.Len())
			for it := rv.MapRange(); it.Next(); {
				m[it.Key().String()] = it.Value().Interface()
			}
			return writeCanonical(buf, m)
		default:
			return fmt.Errorf("abi: canonical JSON: unsupported type %T", v)
		}
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return fmt.Errorf("abi: canonical JSON: number %v has no JSON form", f)
		}
		b, _ := json.Marshal(f)
		buf.Write(b)
	}
	return nil
}

func writeString(buf *bytes.Buffer, s string) {
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	buf.Truncate(buf.Len() - 1)
}

// ObservedMillis is observedAt as a tag_uuid keeps it: UTC, truncated to the millisecond, and
// zero when it is zero or not after the Unix epoch (TagUUID then writes 0). Tag.ObservedAt is
// set to it so that a tag read back from a store, which recovers the time from the tag_uuid,
// equals the tag that was written.
func ObservedMillis(observedAt time.Time) time.Time {
	if observedAt.IsZero() || observedAt.UnixMilli() <= 0 {
		return time.Time{}
	}
	return time.UnixMilli(observedAt.UnixMilli() & (1<<48 - 1)).UTC()
}

// TagUUIDTime returns the observed_at a tag_uuid carries in its top 48 bits (see TagUUID): the
// zero time when those bits are 0 (the event had no observed_at), ok false when s is not a
// UUID in canonical form.
func TagUUIDTime(s string) (t time.Time, ok bool) {
	if len(s) != 36 || s[8] != '-' || s[13] != '-' {
		return time.Time{}, false
	}
	var b [8]byte
	if _, err := hex.Decode(b[2:6], []byte(s[0:8])); err != nil {
		return time.Time{}, false
	}
	if _, err := hex.Decode(b[6:8], []byte(s[9:13])); err != nil {
		return time.Time{}, false
	}
	ms := binary.BigEndian.Uint64(b[:])
	if ms == 0 {
		return time.Time{}, true
	}
	return time.UnixMilli(int64(ms)).UTC(), true
}
