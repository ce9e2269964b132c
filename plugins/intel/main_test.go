package main

import (
	"encoding/json"
	"math"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/decnet/ttp/abi"
	"github.com/decnet/ttp/sdk/sdktest"
)

var ruleFiles = []string{
	"../../rules/ttp/R0054.yaml",
	"../../rules/ttp/R0055.yaml",
	"../../rules/ttp/R0056.yaml",
	"../../rules/ttp/R0057.yaml",
	"../../rules/ttp/R0058.yaml",
}

func newPlugin(t testing.TB) *sdktest.Plugin {
	t.Helper()
	rs, err := sdktest.ReadRules(ruleFiles...)
	if err != nil {
		t.Fatal(err)
	}
	p, err := sdktest.New(intelLifter{}, rs...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

const ip = "203.0.113.77"

func abuse(score float64, cats ...float64) map[string]any {
	c := make([]any, len(cats))
	for i, x := range cats {
		c[i] = x
	}
	return map[string]any{
		"ip": ip,
		"abuseipdb": map[string]any{
			"ipAddress": ip, "isPublic": true, "ipVersion": 4.0, "isWhitelisted": false,
			"abuseConfidenceScore": score, "countryCode": "NL", "usageType": "Data Center/Web Hosting/Transit",
			"isp": "Example Hosting B.V.", "domain": "example-hosting.nl", "totalReports": 1873.0,
			"numDistinctUsers": 412.0, "lastReportedAt": "2026-11-27T04:11:09+00:00",
			"reports": []any{map[string]any{"reportedAt": "2026-11-27T04:11:09+00:00", "comment": "SSH brute force",
				"categories": []any{18.0, 22.0}, "reporterId": 12345.0}},
		},
		"abuseipdb_categories": c,
	}
}

func merge(ms ...map[string]any) map[string]any {
	out := map[string]any{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

func grey(class string, noise, riot bool, name string) map[string]any {
	return map[string]any{"ip": ip, "greynoise": map[string]any{
		"ip": ip, "noise": noise, "riot": riot, "classification": class, "name": name,
		"link": "https://viz.greynoise.io/ip/" + ip, "last_seen": "2026-11-26", "message": "Success"}}
}

func feodo(status, malware string) map[string]any {
	return map[string]any{"ip": ip, "feodo": map[string]any{
		"ip_address": ip, "port": 443.0, "status": status, "hostname": nil, "as_number": 64500.0,
		"as_name": "EXAMPLE-AS", "country": "NL", "first_seen": "2026-11-20 13:05:11",
		"last_online": "2026-11-27", "malware": malware}}
}

func fox(entries ...map[string]any) map[string]any {
	l := make([]any, len(entries))
	for i, e := range entries {
		l[i] = e
	}
	return map[string]any{"ip": ip, "threatfox": l}
}

func ioc(threat, malware string, conf float64) map[string]any {
	return map[string]any{"ioc": ip + ":443", "threat_type": threat, "ioc_type": "ip:port",
		"malware": "win." + strings.ToLower(malware), "malware_printable": malware, "confidence_level": conf,
		"first_seen": "2026-11-20 13:10:02 UTC", "tags": []any{malware}}
}

type want struct {
	rule, technique string
	confidence      float64
	evidence        map[string]any
}

func TestIntel(t *testing.T) {
	p := newPlugin(t)
	for _, tc := range []struct {
		name    string
		payload map[string]any
		want    []want
	}{
		{"empty", map[string]any{}, nil},
		{"only the address", map[string]any{"ip": ip}, nil},
		{"providers null", map[string]any{"ip": ip, "abuseipdb": nil, "greynoise": nil, "feodo": nil, "threatfox": nil}, nil},
		{"abuseipdb ssh brute force and scan", abuse(100, 14, 18, 22), []want{
			{"R0054", "T1110", 0.8, map[string]any{"provider": "abuseipdb", "abuse_confidence_score": 100, "categories": []any{"18", "22"}, "total_reports": 1873, "distinct_users": 412}},
			{"R0054", "T1595", 0.7, map[string]any{"provider": "abuseipdb", "abuse_confidence_score": 100, "categories": []any{"14"}, "total_reports": 1873, "distinct_users": 412}},
		}},
		{"abuseipdb scaled", abuse(60, 21), []want{
			{"R0054", "T1190", 0.6 * 0.6, map[string]any{"provider": "abuseipdb", "abuse_confidence_score": 60, "categories": []any{"21"}, "total_reports": 1873, "distinct_users": 412}},
		}},
		{"abuseipdb below min score", abuse(10, 18), nil},
		{"abuseipdb unmapped categories", abuse(90, 10, 11), nil},
		{"abuseipdb whitelisted", func() map[string]any {
			m := abuse(80, 14)
			m["abuseipdb"].(map[string]any)["isWhitelisted"] = true
			return m
		}(), nil},
		{"abuseipdb about another address", func() map[string]any {
			m := abuse(100, 18)
			m["abuseipdb"].(map[string]any)["ipAddress"] = "198.51.100.9"
			return m
		}(), nil},
		{"greynoise malicious scanner", grey("malicious", true, false, "unknown"), []want{
			{"R0055", "T1595", 0.8, map[string]any{"provider": "greynoise", "classification": "malicious", "noise": true, "actor": "unknown"}}}},
		{"greynoise unknown scanner", grey("unknown", true, false, "unknown"), []want{
			{"R0055", "T1595", 0.4, map[string]any{"provider": "greynoise", "classification": "unknown", "noise": true, "actor": "unknown"}}}},
		{"greynoise benign scanner", grey("benign", true, false, "Censys"), nil},
		{"greynoise riot", grey("benign", false, true, "Google APIs"), nil},
		{"greynoise not observed", map[string]any{"ip": ip, "greynoise": map[string]any{"ip": ip, "noise": false, "riot": false, "message": "IP not observed scanning the internet or contained in RIOT data set."}}, nil},
		{"feodo online", feodo("online", "QakBot"), []want{
			{"R0056", "T1071", 0.9, map[string]any{"provider": "feodo", "malware": "QakBot", "status": "online", "port": 443}}}},
		{"feodo offline", feodo("offline", "Emotet"), []want{
			{"R0056", "T1071", 0.9 * 0.7, map[string]any{"provider": "feodo", "malware": "Emotet", "status": "offline", "port": 443}}}},
		{"threatfox c2", fox(ioc("botnet_cc", "QakBot", 100), ioc("botnet_cc", "QakBot", 75)), []want{
			{"R0057", "T1071", 0.8, map[string]any{"provider": "threatfox", "threat_type": "botnet_cc", "confidence_level": 100, "ioc_count": 2, "malware_families": []any{"QakBot"}}}}},
		{"threatfox payload delivery scaled", fox(ioc("payload_delivery", "Mozi", 75)), []want{
			{"R0057", "T1105", 0.7 * 0.75, map[string]any{"provider": "threatfox", "threat_type": "payload_delivery", "confidence_level": 75, "ioc_count": 1, "malware_families": []any{"Mozi"}}}}},
		{"threatfox low confidence", fox(ioc("botnet_cc", "Cobalt Strike", 25)), nil},
		{"threatfox empty", fox(), nil},
		{"agreement", merge(abuse(100, 18), grey("malicious", true, false, "unknown")), []want{
			{"R0054", "T1110", 0.8, map[string]any{"provider": "abuseipdb", "abuse_confidence_score": 100, "categories": []any{"18"}, "total_reports": 1873, "distinct_users": 412}},
			{"R0055", "T1595", 0.8, map[string]any{"provider": "greynoise", "classification": "malicious", "noise": true, "actor": "unknown"}},
			{"R0058", "T1584", 1, map[string]any{"providers": []any{"abuseipdb", "greynoise"}, "provider_count": 2, "highest_confidence": 1}},
		}},
		{"agreement bumped", merge(abuse(70), feodo("offline", "Dridex")), []want{
			{"R0056", "T1071", 0.63, map[string]any{"provider": "feodo", "malware": "Dridex", "status": "offline", "port": 443}},
			{"R0058", "T1584", 0.8, map[string]any{"providers": []any{"abuseipdb", "feodo"}, "provider_count": 2, "highest_confidence": 0.7}},
		}},
		{"one provider is no agreement", merge(abuse(30), grey("malicious", true, false, "Mirai")), []want{
			{"R0055", "T1595", 0.8, map[string]any{"provider": "greynoise", "classification": "malicious", "noise": true, "actor": "Mirai"}},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev := abi.Event{SourceKind: abi.KindIntel, SourceID: "i1", Payload: tc.payload}
			drafts, err := p.Tag(ev)
			if err != nil {
				t.Fatal(err)
			}
			if n := p.TagAllocs(ev, 20); n != 0 {
				t.Errorf("%v allocations per Tag call, want 0", n)
			}
			var got []want
			for _, d := range drafts {
				got = append(got, want{d.RuleID, d.TechniqueID, d.Confidence, d.Evidence})
			}
			key := func(ws []want) func(i, j int) bool {
				return func(i, j int) bool { return ws[i].rule+ws[i].technique < ws[j].rule+ws[j].technique }
			}
			sort.Slice(got, key(got))
			sort.Slice(tc.want, key(tc.want))
			if len(got) != len(tc.want) {
				t.Fatalf("got %s\nwant %s", show(got), show(tc.want))
			}
			for i := range got {
				if got[i].rule != tc.want[i].rule || got[i].technique != tc.want[i].technique ||
					math.Abs(got[i].confidence-tc.want[i].confidence) > 1e-9 || !sameEvidence(got[i].evidence, tc.want[i].evidence) {
					t.Fatalf("got %s\nwant %s", show(got), show(tc.want))
				}
			}
		})
	}
}

func sameEvidence(a, b map[string]any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	var x, y any
	_ = json.Unmarshal(ja, &x)
	_ = json.Unmarshal(jb, &y)
	return reflect.DeepEqual(x, y)
}

func show(ws []want) string {
	var out []map[string]any
	for _, w := range ws {
		out = append(out, map[string]any{"rule": w.rule, "technique": w.technique, "confidence": w.confidence, "evidence": w.evidence})
	}
	b, _ := json.Marshal(out)
	return string(b)
}

func TestAbout(t *testing.T) {
	for _, tc := range []struct {
		ioc, ip string
		want    bool
	}{
		{"203.0.113.77:443", "203.0.113.77", true},
		{"203.0.113.78:443", "203.0.113.77", false},
		{"203.0.113.7:443", "203.0.113.77", false},
		{"[2001:db8::1]:8443", "2001:db8::1", true},
		{"[2001:db8::2]:8443", "2001:db8::1", false},
		{"203.0.113.77", "203.0.113.77", true},
		{"", "203.0.113.77", true},
	} {
		if got := about(tc.ioc, tc.ip); got != tc.want {
			t.Errorf("about(%q, %q) = %v, want %v", tc.ioc, tc.ip, got, tc.want)
		}
	}
}

func TestRejectsBadParams(t *testing.T) {
	p := newPlugin(t)
	emits := []abi.EmitConfig{
		{TechniqueID: "T1110", Tactic: "credential-access", Confidence: 0.8},
		{TechniqueID: "T1595", Tactic: "reconnaissance", Confidence: 0.7},
	}
	for _, tc := range []struct {
		kind   string
		params map[string]any
		msg    string
	}{
		{kindAbuse, map[string]any{"category_emits": map[string]any{"18": "T1110", "x": "T1595"}}, "not an AbuseIPDB category id"},
		{kindAbuse, map[string]any{"category_emits": map[string]any{"18": "T1190"}}, "names no emits entry"},
		{kindAbuse, map[string]any{}, "want at least one category"},
		{kindAbuse, map[string]any{"category_emits": map[string]any{"18": "T1110"}, "min_score": 101.0}, "min_score must be in 0..100"},
		{kindGrey, map[string]any{"quiet_scale": 1.5}, "quiet_scale must be in [0, 1]"},
		{kindFeodo, map[string]any{"offline_scale": -1.0}, "offline_scale must be in [0, 1]"},
		{kindFox, map[string]any{"threat_type_emits": map[string]any{"botnet_cc": 3.0}}, "want a non-empty string"},
		{kindAgreement, map[string]any{"min_providers": 1.0}, "min_providers must be in 2..4"},
		{kindAgreement, map[string]any{"bump": 2.0}, "bump must be in [0, 1]"},
		{"lifter:intel_nope", nil, "unknown rule kind"},
	} {
		rejected, err := p.Configure(abi.RuleConfig{ID: "R0999", Kind: tc.kind, AppliesTo: []string{abi.KindIntel}, Params: tc.params, Emits: emits})
		if err != nil {
			t.Fatal(err)
		}
		if len(rejected) != 1 || !strings.Contains(rejected[0].Message, tc.msg) {
			t.Errorf("%s %v: rejected %+v, want a message with %q", tc.kind, tc.params, rejected, tc.msg)
		}
	}
}

func BenchmarkTag(b *testing.B) {
	p := newPlugin(b)
	ev := abi.Event{SourceKind: abi.KindIntel, SourceID: "intel-203.0.113.77-20261127T0435", Payload: merge(
		abuse(100, 14, 18, 22), grey("malicious", true, false, "unknown"), feodo("online", "QakBot"),
		fox(ioc("botnet_cc", "QakBot", 100)))}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := p.Tag(ev); err != nil {
			b.Fatal(err)
		}
	}
}
