package bus

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/decnet/ttp/abi"
	"github.com/decnet/ttp/rules"
)

// Envelope is the one ttp.tagged message per upstream event: the tags of the event not yet
// published (on a first delivery the newly inserted ones; after a crash, whatever the crash
// left unpublished).
type Envelope struct {
	SourceKind   string    `json:"source_kind"`
	SourceID     string    `json:"source_id"`
	AttackerUUID string    `json:"attacker_uuid,omitempty"`
	IdentityUUID string    `json:"identity_uuid,omitempty"`
	SessionID    string    `json:"session_id,omitempty"`
	DeckyID      string    `json:"decky_id,omitempty"`
	ObservedAt   time.Time `json:"observed_at,omitzero"`
	Tags         []abi.Tag `json:"tags"`
}

// Fired is one ttp.rule.fired.<technique> message: the upstream event's tags of one technique.
type Fired struct {
	Technique  string    `json:"technique"`
	SourceKind string    `json:"source_kind"`
	SourceID   string    `json:"source_id"`
	Tags       []abi.Tag `json:"tags"`
}

// DeadLetter is what ttp.deadletter carries for input that cannot be tagged.
type DeadLetter struct {
	Reason  string    `json:"reason"`
	Subject string    `json:"subject"`
	Size    int       `json:"size"`
	SHA256  string    `json:"sha256"`
	Head    []byte    `json:"head"` // the first 4 KiB, base64 in JSON
	At      time.Time `json:"at"`
	Stream  uint64    `json:"stream_seq,omitempty"`
}

// StateRequest is the body of a ttp.control.rule.state request (`ttp rules state`): read the
// effective state of a rule (Get) or set one. It lives beside the other envelopes because it is
// part of the bus contract (bus/SUBJECTS.md): the client and every worker must agree on it.
type StateRequest struct {
	Rule  string      `json:"rule"`
	Get   bool        `json:"get,omitempty"`
	State rules.State `json:"state"`
}

// StateReply is the answer to a StateRequest, from the one worker of the queue group
// ttp-control that took it: the state read or written, or why not (Error).
type StateReply struct {
	Rule  string      `json:"rule"`
	State rules.State `json:"state"`
	Error string      `json:"error,omitempty"`
}

// appendTagged appends to dst the JSON of head, an *Envelope or *Fired whose Tags is nil, as
// if Tags held the tags whose JSON is in tags: json.Marshal writes Tags, the last field, as
// "tags":null}, and the already encoded tags take the place of that null. The worker encodes a
// tag once for the envelope and the rule.fired message that both carry it; TestAppendTagged
// checks that the result is byte for byte json.Marshal's of the whole message.
func appendTagged(dst []byte, head any, tags [][]byte) ([]byte, error) {
	b, err := json.Marshal(head)
	if err != nil {
		return dst, fmt.Errorf("bus: encode: %w", err)
	}
	const null = `null}`
	if !bytes.HasSuffix(b, []byte(`"tags":`+null)) {
		return dst, fmt.Errorf("bus: encode: %T does not end in its tags", head)
	}
	dst = append(dst, b[:len(b)-len(null)]...)
	dst = append(dst, '[')
	for i, t := range tags {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, t...)
	}
	return append(dst, ']', '}'), nil
}

// msgID is the Nats-Msg-Id of an envelope ("tagged") or a fired message ("fired" plus its
// technique): sha256 over the kind of message, the upstream event and the sorted tag_uuids,
// so a republish after a crash is the same message and JetStream drops the duplicate.
func msgID(what, kind, id, technique string, tags []abi.Tag) string {
	uuids := make([]string, len(tags))
	for i := range tags {
		uuids[i] = tags[i].TagUUID
	}
	sort.Strings(uuids)
	h := sha256.New()
	for _, s := range append([]string{what, kind, id, technique}, uuids...) {
		h.Write([]byte(s))
		h.Write([]byte{0x1f})
	}
	return hex.EncodeToString(h.Sum(nil))
}
