package main

import (
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/decnet/ttp/abi"
	"github.com/decnet/ttp/rules"
	"github.com/decnet/ttp/sdk/sdktest"
)

var ruleFiles = []string{
	"../../rules/ttp/R0059.yaml",
	"../../rules/ttp/R0060.yaml",
	"../../rules/ttp/R0062.yaml",
	"../../rules/ttp/R0063.yaml",
	"../../rules/ttp/R0064.yaml",
}

func newPlugin(t testing.TB) *sdktest.Plugin {
	t.Helper()
	rs, err := sdktest.ReadRules(ruleFiles...)
	if err != nil {
		t.Fatal(err)
	}
	p, err := sdktest.New(lifter{}, rs...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// payload builds an auth payload from key, value pairs; numbers are float64 as from JSON.
func payload(kv ...any) map[string]any {
	m := map[string]any{}
	for i := 0; i+1 < len(kv); i += 2 {
		v := kv[i+1]
		if n, ok := v.(int); ok {
			v = float64(n)
		}
		m[kv[i].(string)] = v
	}
	return m
}

type want struct {
	rule       string
	confidence float64
	evidence   map[string]any
}

func check(t *testing.T, p *sdktest.Plugin, payload map[string]any, wants []want) {
	t.Helper()
	ds, err := p.Tag(abi.Event{SourceKind: abi.KindAuth, SourceID: "cowrie-77b0-login-3", Payload: payload})
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != len(wants) {
		t.Fatalf("got %d drafts %+v, want %d", len(ds), ds, len(wants))
	}
	for i, w := range wants {
		d := ds[i]
		if d.RuleID != w.rule || math.Abs(d.Confidence-w.confidence) > 1e-9 {
			t.Errorf("draft %d: %s %v, want %s %v", i, d.RuleID, d.Confidence, w.rule, w.confidence)
		}
		if !reflect.DeepEqual(d.Evidence, w.evidence) {
			t.Errorf("draft %d (%s): evidence %#v, want %#v", i, d.RuleID, d.Evidence, w.evidence)
		}
	}
}

func TestCredential(t *testing.T) {
	p := newPlugin(t)
	for _, tc := range []struct {
		name    string
		payload map[string]any
		want    []want
	}{
		{"empty", map[string]any{}, nil},
		{"null counts", payload("username", "root", "failures_before", nil, "success", nil), nil},
		{"events-md example: all five", payload("username", "root", "password", "xc3511", "success", true, "protocol", "ssh",
			"window_s", 3600, "failures_before", 41, "distinct_usernames", 3, "distinct_passwords", 38, "pair_seen_from_other_sources", 12), []want{
			{"R0059", 0.8, map[string]any{"failures_before": int64(41), "distinct_usernames": int64(3), "distinct_passwords": int64(38), "window_s": int64(3600), "protocol": "ssh"}},
			{"R0060", 0.8, map[string]any{"distinct_passwords": int64(38), "distinct_usernames": int64(3), "failures_before": int64(41), "window_s": int64(3600), "protocol": "ssh"}},
			{"R0062", 0.6, map[string]any{"pair_seen_from_other_sources": int64(12), "distinct_usernames": int64(3), "distinct_passwords": int64(38), "window_s": int64(3600), "protocol": "ssh"}},
			{"R0063", 0.85, map[string]any{"failures_before": int64(41), "window_s": int64(3600), "protocol": "ssh"}},
			{"R0064", 0.9, map[string]any{"username": "root", "default_pair": "mirai", "success": true, "protocol": "ssh"}},
		}},
		{"brute force over many usernames", payload("username", "oracle", "password", "oracle123", "success", false, "protocol", "ssh",
			"window_s", 3600, "failures_before", 57, "distinct_usernames", 31, "distinct_passwords", 44, "pair_seen_from_other_sources", 0), []want{
			{"R0059", 0.8, map[string]any{"failures_before": int64(57), "distinct_usernames": int64(31), "distinct_passwords": int64(44), "window_s": int64(3600), "protocol": "ssh"}},
		}},
		{"brute force at threshold, counts only", payload("failures_before", 10, "distinct_passwords", 3), []want{
			{"R0059", 0.8, map[string]any{"failures_before": int64(10), "distinct_passwords": int64(3)}},
		}},
		{"below min failures", payload("failures_before", 9, "distinct_usernames", 4, "distinct_passwords", 9, "window_s", 3600), nil},
		{"one stale credential retried", payload("username", "backup", "password", "S3cure!2023", "success", false, "protocol", "ftp",
			"window_s", 3600, "failures_before", 12, "distinct_usernames", 1, "distinct_passwords", 1), nil},
		{"window longer than max", payload("failures_before", 15, "distinct_usernames", 2, "distinct_passwords", 6, "window_s", 604800), nil},
		{"guessing without brute-force volume", payload("username", "admin", "password", "Passw0rd", "success", false, "protocol", "http",
			"window_s", 1800, "failures_before", 8, "distinct_usernames", 1, "distinct_passwords", 9), []want{
			{"R0060", 0.8, map[string]any{"distinct_passwords": int64(9), "distinct_usernames": int64(1), "failures_before": int64(8), "window_s": int64(1800), "protocol": "http"}},
		}},
		{"too many usernames to be guessing", payload("failures_before", 9, "distinct_usernames", 4, "distinct_passwords", 9), nil},
		{"guessing needs a username count", payload("failures_before", 9, "distinct_passwords", 9), nil},
		{"stuffing", payload("username", "jsmith", "password", "Summer2019!", "success", false, "protocol", "imap",
			"window_s", 3600, "failures_before", 2, "distinct_usernames", 3, "distinct_passwords", 3, "pair_seen_from_other_sources", 3), []want{
			{"R0062", 0.6, map[string]any{"pair_seen_from_other_sources": int64(3), "distinct_usernames": int64(3), "distinct_passwords": int64(3), "window_s": int64(3600), "protocol": "imap"}},
		}},
		{"pair seen by too few", payload("pair_seen_from_other_sources", 2), nil},
		{"valid after failures", payload("username", "deploy", "password", "deploy2024", "success", true, "protocol", "ssh",
			"window_s", 600, "failures_before", 6, "distinct_usernames", 1, "distinct_passwords", 2), []want{
			{"R0063", 0.85, map[string]any{"failures_before": int64(6), "window_s": int64(600), "protocol": "ssh"}},
		}},
		{"success after a typo", payload("success", true, "failures_before", 2, "distinct_passwords", 2, "distinct_usernames", 1), nil},
		{"failed after failures is not valid use", payload("success", false, "failures_before", 6, "distinct_passwords", 2, "distinct_usernames", 1), nil},
		{"default pair failed", payload("username", "pi", "password", "raspberry", "success", false, "protocol", "ssh",
			"window_s", 3600, "failures_before", 0, "distinct_usernames", 1, "distinct_passwords", 1), []want{
			{"R0064", 0.9 * 0.7, map[string]any{"username": "pi", "default_pair": "raspberry_pi", "success": false, "protocol": "ssh"}},
		}},
		{"default pair with empty password", payload("username", "root", "password", "", "protocol", "telnet"), []want{
			{"R0064", 0.9 * 0.7, map[string]any{"username": "root", "default_pair": "mirai", "protocol": "telnet"}},
		}},
		{"default pair is case sensitive", payload("username", "Root", "password", "root", "success", true), nil},
		{"near default pair", payload("username", "pi", "password", "raspberry1", "success", false), nil},
		{"no password", payload("username", "root", "success", false), nil},
		{"numeric password", payload("username", "root", "password", 123456, "success", false), nil},
		{"long protocol left out", payload("username", "ubnt", "password", "ubnt", "success", true, "protocol", strings.Repeat("x", 40)), []want{
			{"R0064", 0.9, map[string]any{"username": "ubnt", "default_pair": "mirai", "success": true}},
		}},
		{"negative counts ignored", payload("failures_before", -20, "success", true, "pair_seen_from_other_sources", -5, "distinct_passwords", -9, "distinct_usernames", -1), nil},
	} {
		t.Run(tc.name, func(t *testing.T) { check(t, p, tc.payload, tc.want) })
	}
}

func TestDefaultListPrecedence(t *testing.T) {
	p, err := sdktest.New(lifter{})
	if err != nil {
		t.Fatal(err)
	}
	rejected, err := p.Configure(abi.RuleConfig{
		ID: "R0964", Kind: kindDefaultPair, AppliesTo: []string{abi.KindAuth},
		Params: map[string]any{"pairs": map[string]any{"zyxel": []any{"admin:1234"}, "mirai": []any{"admin:1234", "root:"}}},
		Emits:  []abi.EmitConfig{{TechniqueID: "T1078", SubTechniqueID: "T1078.001", Tactic: "initial-access", Confidence: 0.5}},
	})
	if err != nil || len(rejected) != 0 {
		t.Fatal(rejected, err)
	}
	check(t, p, payload("username", "admin", "password", "1234", "success", true), []want{
		{"R0964", 0.5, map[string]any{"username": "admin", "default_pair": "mirai", "success": true}},
	})
}

func TestRejectsBadParams(t *testing.T) {
	p, err := sdktest.New(lifter{})
	if err != nil {
		t.Fatal(err)
	}
	emits := []abi.EmitConfig{{TechniqueID: "T1110", Tactic: "credential-access", Confidence: 0.5}}
	for _, tc := range []struct {
		kind   string
		params map[string]any
		msg    string
	}{
		{kindBruteForce, map[string]any{"min_failures": 0.0}, "min_failures must be at least 1, got 0"},
		{kindBruteForce, map[string]any{"max_window_s": -1.0}, "max_window_s must be 0 (any window) or positive, got -1"},
		{kindBruteForce, map[string]any{"min_failures": "10"}, `params.min_failures: want an integer, got "10"`},
		{kindBruteForce, map[string]any{"min_failure": 10.0}, "params.min_failure: unknown to this lifter"},
		{kindGuessing, map[string]any{"min_distinct_passwords": 1.0}, "min_distinct_passwords must be at least 2, got 1"},
		{kindGuessing, map[string]any{"max_distinct_usernames": 0.0}, "max_distinct_usernames must be at least 1, got 0"},
		{kindStuffing, map[string]any{"min_other_sources": 0.0}, "min_other_sources must be at least 1, got 0"},
		{kindValidAfter, map[string]any{"min_failures": 2.5}, "params.min_failures: want an integer, got 2.5"},
		{kindDefaultPair, map[string]any{}, "pairs is required"},
		{kindDefaultPair, map[string]any{"pairs": []any{"root:root"}}, "pairs must be a non-empty mapping"},
		{kindDefaultPair, map[string]any{"pairs": map[string]any{"Mirai": []any{"root:root"}}}, `list name "Mirai"`},
		{kindDefaultPair, map[string]any{"pairs": map[string]any{"mirai": []any{}}}, "pairs.mirai must be a non-empty list"},
		{kindDefaultPair, map[string]any{"pairs": map[string]any{"mirai": []any{"rootroot"}}}, "pairs.mirai[0]: want a username:password string, got rootroot"},
		{kindDefaultPair, map[string]any{"pairs": map[string]any{"mirai": []any{":root"}}}, "pairs.mirai[0]: want a username:password string"},
		{kindDefaultPair, map[string]any{"pairs": map[string]any{"mirai": []any{"root:root"}}, "failed_scale": 1.5}, "failed_scale must be within [0, 1], got 1.5"},
		{"lifter:credential_spraying", nil, `unknown rule kind "lifter:credential_spraying"`},
	} {
		rejected, err := p.Configure(abi.RuleConfig{ID: "R0999", Kind: tc.kind, AppliesTo: []string{abi.KindAuth}, Params: tc.params, Emits: emits})
		if err != nil {
			t.Fatal(err)
		}
		if len(rejected) != 1 || !strings.Contains(rejected[0].Message, tc.msg) {
			t.Errorf("%s %v: rejected %+v, want a message containing %q", tc.kind, tc.params, rejected, tc.msg)
		}
	}
}

// TestEvidenceFields checks that every rule's evidence_fields lists exactly the keys its
// drafts can carry, on an event that fires every rule with every field present.
func TestEvidenceFields(t *testing.T) {
	rs, err := sdktest.ReadRules(ruleFiles...)
	if err != nil {
		t.Fatal(err)
	}
	p := newPlugin(t)
	ds, err := p.Tag(abi.Event{SourceKind: abi.KindAuth, SourceID: "x", Payload: payload("username", "root", "password", "xc3511",
		"success", true, "protocol", "telnet", "window_s", 3600, "failures_before", 30, "distinct_usernames", 2,
		"distinct_passwords", 25, "pair_seen_from_other_sources", 40)})
	if err != nil || len(ds) != len(rs) {
		t.Fatalf("%d drafts %v, want %d", len(ds), err, len(rs))
	}
	fields := map[string][]string{}
	for _, f := range ruleFiles {
		r, err := rules.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		fields[r.ID] = r.EvidenceFields
	}
	for _, d := range ds {
		var keys []string
		for k := range d.Evidence {
			keys = append(keys, k)
		}
		if !sameSet(keys, fields[d.RuleID]) {
			t.Errorf("%s: evidence keys %v, evidence_fields %v", d.RuleID, keys, fields[d.RuleID])
		}
		for k, v := range d.Evidence { // the password differs from the username: any trace of it is a leak
			if strings.Contains(fmt.Sprint(v), "xc3511") {
				t.Errorf("%s carries the password in %s: %v", d.RuleID, k, v)
			}
		}
	}
}

func BenchmarkTag(b *testing.B) {
	p := newPlugin(b)
	ev := abi.Event{SourceKind: abi.KindAuth, SourceID: "cowrie-77b0-login-3", AttackerUUID: "0c5e9b7a-51d4-4a0e-8f3a-7d2b94c1e777",
		Payload: payload("username", "root", "password", "xc3511", "success", true, "protocol", "ssh", "window_s", 3600,
			"failures_before", 41, "distinct_usernames", 3, "distinct_passwords", 38, "pair_seen_from_other_sources", 12)}
	if ds, err := p.Tag(ev); err != nil || len(ds) != 5 {
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

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	seen := map[string]bool{}
	for _, x := range a {
		seen[x] = true
	}
	for _, x := range b {
		if !seen[x] {
			return false
		}
	}
	return true
}
