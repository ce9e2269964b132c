package main

import (
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/decnet/ttp/abi"
	"github.com/decnet/ttp/sdk/sdktest"
)

func newPlugin(t testing.TB) *sdktest.Plugin {
	t.Helper()
	rs, err := sdktest.ReadRules("../../rules/ttp/R0061.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p, err := sdktest.New(lifter{}, rs...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// names returns n distinct usernames as a JSON list.
func names(n int) []any {
	base := []string{"admin", "alice", "bob", "carol", "dave", "erin", "frank", "grace", "oracle", "postgres", "test", "ubuntu"}
	out := make([]any, n)
	for i := range out {
		if i < len(base) {
			out[i] = base[i]
		} else {
			out[i] = fmt.Sprintf("user%02d", i)
		}
	}
	return out
}

func ips(n int) []any {
	out := make([]any, n)
	for i := range out {
		out[i] = fmt.Sprintf("198.51.100.%d", 7+i)
	}
	return out
}

func summary(users, passwords, attempts, members, window any) map[string]any {
	m := map[string]any{}
	for k, v := range map[string]any{"usernames": users, "distinct_passwords": passwords, "attempts": attempts, "member_ips": members, "window_s": window} {
		if n, ok := v.(int); ok {
			v = float64(n)
		}
		if v != nil {
			m[k] = v
		}
	}
	return m
}

func event(payload map[string]any) abi.Event {
	return abi.Event{SourceKind: abi.KindIdentity, SourceID: "ident-3b8f1e22-20261127T05",
		IdentityUUID: "3b8f1e22-7c4d-4e9a-b1f0-5a6c7d8e9f01", ObservedAt: time.Date(2026, 11, 27, 5, 0, 0, 0, time.UTC), Payload: payload}
}

func TestSpraying(t *testing.T) {
	p := newPlugin(t)
	for _, tc := range []struct {
		name     string
		payload  map[string]any
		evidence map[string]any // nil: no draft
	}{
		{"empty", map[string]any{}, nil},
		{"events-md example", summary(names(12), 2, 96, ips(4), 86400),
			map[string]any{"username_count": int64(12), "distinct_passwords": int64(2), "attempts": int64(96), "member_count": int64(4), "window_s": int64(86400)}},
		{"at thresholds", summary(names(10), 3, 30, ips(1), 3600),
			map[string]any{"username_count": int64(10), "distinct_passwords": int64(3), "attempts": int64(30), "member_count": int64(1), "window_s": int64(3600)}},
		{"counts only", summary(names(40), 1, nil, nil, 21600),
			map[string]any{"username_count": int64(40), "distinct_passwords": int64(1), "window_s": int64(21600)}},
		{"too few usernames", summary(names(9), 1, 9, ips(3), 86400), nil},
		{"too many passwords", summary(names(25), 4, 100, ips(3), 86400), nil},
		{"brute force, not spraying", summary(names(12), 340, 2100, ips(6), 86400), nil},
		{"window too short", summary(names(30), 1, 30, ips(2), 600), nil},
		{"no window", summary(names(30), 1, 30, ips(2), nil), nil},
		{"no password tried", summary(names(30), 0, 60, ips(2), 86400), nil},
		{"no password count", summary(names(30), nil, 60, ips(2), 86400), nil},
		{"no usernames", summary(nil, 1, 60, ips(2), 86400), nil},
		{"usernames not a list", summary("admin", 1, 60, ips(2), 86400), nil},
		{"numeric usernames count too", summary([]any{"admin", 1000.0, "root", "test", "guest", "oracle", "ftp", "www", "mysql", "pi"}, 2, 20, nil, 7200),
			map[string]any{"username_count": int64(10), "distinct_passwords": int64(2), "attempts": int64(20), "window_s": int64(7200)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ds, err := p.Tag(event(tc.payload))
			if err != nil {
				t.Fatal(err)
			}
			if tc.evidence == nil {
				if len(ds) != 0 {
					t.Fatalf("drafts %+v, want none", ds)
				}
				return
			}
			if len(ds) != 1 {
				t.Fatalf("drafts %+v, want one", ds)
			}
			d := ds[0]
			if d.RuleID != "R0061" || d.TechniqueID != "T1110" || d.SubTechniqueID != "T1110.003" || d.Tactic != "credential-access" ||
				math.Abs(d.Confidence-0.75) > 1e-9 || !reflect.DeepEqual(d.Evidence, tc.evidence) {
				t.Errorf("draft %+v, want evidence %v", d, tc.evidence)
			}
		})
	}
}

// TestEnvelopeIgnored: identity tags belong to the identity (the host nulls attacker_uuid in
// Finish), so the drafts must not depend on any envelope field.
func TestEnvelopeIgnored(t *testing.T) {
	p := newPlugin(t)
	pl := summary(names(12), 2, 96, ips(4), 86400)
	bare := abi.Event{SourceKind: abi.KindIdentity, SourceID: "ident-1", Payload: pl}
	withIdentity := event(pl)
	withAttacker := event(pl)
	withAttacker.AttackerUUID = "0c5e9b7a-51d4-4a0e-8f3a-7d2b94c1e777"
	var first []abi.TagDraft
	for i, ev := range []abi.Event{bare, withIdentity, withAttacker} {
		ds, err := p.Tag(ev)
		if err != nil || len(ds) != 1 {
			t.Fatalf("event %d: %+v %v", i, ds, err)
		}
		if i == 0 {
			first = ds
		} else if !reflect.DeepEqual(ds, first) {
			t.Errorf("event %d: drafts %+v differ from %+v", i, ds, first)
		}
	}
}

func TestRejectsBadParams(t *testing.T) {
	p, err := sdktest.New(lifter{})
	if err != nil {
		t.Fatal(err)
	}
	emits := []abi.EmitConfig{{TechniqueID: "T1110", SubTechniqueID: "T1110.003", Tactic: "credential-access", Confidence: 0.5}}
	for _, tc := range []struct {
		kind   string
		params map[string]any
		msg    string
	}{
		{kindSpraying, map[string]any{"min_usernames": 1.0}, "min_usernames must be at least 2, got 1"},
		{kindSpraying, map[string]any{"max_distinct_passwords": 0.0}, "max_distinct_passwords must be at least 1, got 0"},
		{kindSpraying, map[string]any{"min_usernames": 5.0, "max_distinct_passwords": 5.0}, "must be below min_usernames"},
		{kindSpraying, map[string]any{"min_window_s": -60.0}, "min_window_s must be 0 (any window) or positive, got -60"},
		{kindSpraying, map[string]any{"min_window": 3600.0}, "params.min_window: unknown to this lifter"},
		{kindSpraying, map[string]any{"min_usernames": "ten"}, `params.min_usernames: want an integer, got "ten"`},
		{"lifter:identity_brute_force", nil, `unknown rule kind "lifter:identity_brute_force"`},
	} {
		rejected, err := p.Configure(abi.RuleConfig{ID: "R0961", Kind: tc.kind, AppliesTo: []string{abi.KindIdentity}, Params: tc.params, Emits: emits})
		if err != nil {
			t.Fatal(err)
		}
		if len(rejected) != 1 || !strings.Contains(rejected[0].Message, tc.msg) {
			t.Errorf("%v: rejected %+v, want a message containing %q", tc.params, rejected, tc.msg)
		}
	}
}

func BenchmarkTag(b *testing.B) {
	p := newPlugin(b)
	ev := event(summary(names(12), 2, 96, ips(4), 86400))
	if ds, err := p.Tag(ev); err != nil || len(ds) != 1 {
		b.Fatalf("%v %v", ds, err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := p.Tag(ev); err != nil {
			b.Fatal(err)
		}
	}
}
