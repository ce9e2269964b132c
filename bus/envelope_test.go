package bus

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/decnet/ttp/abi"
)

// TestAppendTagged: a message made of its head and tags encoded apart is byte for byte what
// json.Marshal makes of the whole message, for envelopes and rule.fired messages, with the
// optional fields present and absent, one tag or several, evidence that needs escaping.
func TestAppendTagged(t *testing.T) {
	attacker := "6f1c2d0e-1b7a-4f2e-9a51-000000000001"
	tags := []abi.Tag{
		{TagUUID: "0190b2c4-0000-7000-8000-000000000001", RuleID: "r1", RuleVersion: "v1", TechniqueID: "T1059",
			SubTechniqueID: "T1059.004", Tactic: "execution", Confidence: 0.7, SourceKind: "command", SourceID: "e1",
			AttackerUUID: &attacker, Producer: "rules", CreatedAt: time.Date(2026, 12, 7, 1, 2, 3, 456789000, time.UTC),
			Evidence: map[string]any{"matched": "<script>&\u2028", "n": 3.5, "list": []any{"a", true, nil}}},
		{TagUUID: "0190b2c4-0000-7000-8000-000000000002", RuleID: "r2", TechniqueID: "T1082", Tactic: "discovery",
			SourceKind: "command", SourceID: "e1", Producer: "behavioral@1.2.0", ObservedAt: time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)},
	}
	cases := []struct {
		name string
		head any // with Tags nil
		full any // the same with tags
		tags []abi.Tag
	}{
		{"envelope, every field", &Envelope{SourceKind: "session", SourceID: "s1", AttackerUUID: attacker, IdentityUUID: "id", SessionID: "s",
			DeckyID: "d", ObservedAt: time.Date(2026, 12, 7, 0, 0, 0, 1, time.UTC)},
			&Envelope{SourceKind: "session", SourceID: "s1", AttackerUUID: attacker, IdentityUUID: "id", SessionID: "s",
				DeckyID: "d", ObservedAt: time.Date(2026, 12, 7, 0, 0, 0, 1, time.UTC), Tags: tags}, tags},
		{"envelope, bare, one tag", &Envelope{SourceKind: "command", SourceID: "e1"}, &Envelope{SourceKind: "command", SourceID: "e1", Tags: tags[1:]}, tags[1:]},
		{"fired", &Fired{Technique: "T1059.004", SourceKind: "command", SourceID: "e1"},
			&Fired{Technique: "T1059.004", SourceKind: "command", SourceID: "e1", Tags: tags[:1]}, tags[:1]},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			enc := make([][]byte, len(c.tags))
			for i := range c.tags {
				b, err := json.Marshal(&c.tags[i])
				if err != nil {
					t.Fatal(err)
				}
				enc[i] = b
			}
			got, err := appendTagged(nil, c.head, enc)
			if err != nil {
				t.Fatal(err)
			}
			want, err := json.Marshal(c.full)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("appendTagged:\n%s\njson.Marshal:\n%s", got, want)
			}
		})
	}
	if _, err := appendTagged(nil, &DeadLetter{Reason: "x"}, nil); err == nil {
		t.Error("appendTagged took a message that does not end in its tags")
	}
}
