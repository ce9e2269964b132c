package main

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"testing"

	"github.com/decnet/ttp/abi"
)

// The providers' answers as their API documentation shows them, stored under the payload as
// the provider returned them (abi/EVENTS.md, "intel", "Accepted shapes").
const (
	abuseData = `"ipAddress": "203.0.113.77", "isPublic": true, "ipVersion": 4, "isWhitelisted": false,
		"abuseConfidenceScore": 100, "countryCode": "NL", "usageType": "Data Center/Web Hosting/Transit",
		"isp": "Example Hosting B.V.", "domain": "example-hosting.nl", "hostnames": [], "isTor": false,
		"totalReports": 1873, "numDistinctUsers": 412, "lastReportedAt": "2026-11-27T04:11:09+00:00"`
	abuseReportsJSON = `"reports": [
		{"reportedAt": "2026-11-27T04:11:09+00:00", "comment": "sshd: 200 failed logins", "categories": [18, 22],
		 "reporterId": 12345, "reporterCountryCode": "DE", "reporterCountryName": "Germany"},
		{"reportedAt": "2026-11-27T03:52:40+00:00", "comment": "port scan", "categories": [14],
		 "reporterId": 67890, "reporterCountryCode": "US", "reporterCountryName": "United States of America"}]`
	greyV2Malicious = `{"ip": "203.0.113.77", "first_seen": "2026-10-01", "last_seen": "2026-11-26", "seen": true,
		"tags": ["SSH Bruteforcer", "SSH Worm"], "actor": "unknown", "spoofable": false, "classification": "malicious",
		"cve": [], "bot": false, "vpn": false, "vpn_service": "",
		"metadata": {"asn": "AS64500", "city": "Amsterdam", "country": "Netherlands", "country_code": "NL",
		 "organization": "Example Hosting B.V.", "category": "hosting", "tor": false, "rdns": "", "os": "Linux 2.2-3.x"},
		"raw_data": {"scan": [{"port": 22, "protocol": "TCP"}, {"port": 2222, "protocol": "TCP"}],
		 "web": {}, "ja3": [], "hassh": [{"fingerprint": "92674389fa1e47a27ddd8d9b63ecd42b", "port": 22}]}}`
	greyV3 = `{"ip": "203.0.113.77",
		"business_service_intelligence": {"found": %s, "category": "", "name": "%s", "description": "", "explanation": "",
		 "last_updated": "", "reference": "", "trust_level": "%s"},
		"internet_scanner_intelligence": {"first_seen": "2026-10-01", "last_seen": "2026-11-26", "found": %s,
		 "tags": [{"id": "5b840bfd", "slug": "ssh-bruteforcer", "name": "SSH Bruteforcer", "category": "activity", "intention": "malicious"}],
		 "actor": "%s", "spoofable": false, "classification": "%s", "cves": [], "bot": false, "vpn": false, "vpn_service": "",
		 "tor": false, "metadata": {"asn": "AS64500", "source_country_code": "NL"}},
		"request_metadata": {"restricted_fields": []}}`
	foxOK = `{"query_status": "ok", "data": [{"id": "1352475", "ioc": "203.0.113.77:443", "threat_type": "botnet_cc",
		"threat_type_desc": "Indicator that identifies a botnet command&control server (C&C)", "ioc_type": "ip:port",
		"ioc_type_desc": "ip:port combination that is used for botnet Command&control (C&C)", "malware": "win.qakbot",
		"malware_printable": "QakBot", "malware_alias": "Oakboat,Pinkslipbot,Qbot,Quakbot",
		"malware_malpedia": "https://malpedia.caad.fkie.fraunhofer.de/details/win.qakbot", "confidence_level": %s,
		"first_seen": "2026-11-20 13:10:02 UTC", "last_seen": null, "reference": null, "reporter": "abuse_ch",
		"tags": ["QakBot", "TA570"]}]}`
	feodoEntry = `{"ip_address": "%s", "port": 443, "status": "online", "hostname": null, "as_number": 64500,
		"as_name": "EXAMPLE-AS", "country": "NL", "first_seen": "2026-11-20 13:05:11", "last_online": "2026-11-27",
		"malware": "%s"}`
)

// payload decodes a payload written as JSON, as the host decodes an event.
func payload(t testing.TB, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("bad test payload: %v\n%s", err, s)
	}
	return m
}

// fmtS is fmt.Sprintf, short for the table below.
func fmtS(format string, args ...any) string { return fmt.Sprintf(format, args...) }

func TestRealShapes(t *testing.T) {
	p := newPlugin(t)
	grey := func(conf float64, class, actor string) want {
		noise := class != "malicious-quiet"
		return want{"R0055", "T1595", conf, map[string]any{"provider": "greynoise", "classification": class, "noise": noise, "actor": actor}}
	}
	abuse := func(conf float64, technique string, score int, cats ...string) want {
		c := make([]any, len(cats))
		for i, x := range cats {
			c[i] = x
		}
		return want{"R0054", technique, conf, map[string]any{"provider": "abuseipdb", "abuse_confidence_score": score,
			"categories": c, "total_reports": 1873, "distinct_users": 412}}
	}
	for _, tc := range []struct {
		name, payload string
		want          []want
	}{
		// AbuseIPDB /api/v2/check, the whole response.
		{"abuseipdb without verbose: no categories, no R0054", `{"ip": "203.0.113.77", "abuseipdb": {"data": {` + abuseData + `}}}`, nil},
		{"abuseipdb verbose whole response", `{"ip": "203.0.113.77", "abuseipdb": {"data": {` + abuseData + `, ` + abuseReportsJSON + `}}}`,
			[]want{abuse(0.8, "T1110", 100, "18", "22"), abuse(0.7, "T1595", 100, "14")}},
		{"abuseipdb verbose data object, no flat field", `{"ip": "203.0.113.77", "abuseipdb": {` + abuseData + `, ` + abuseReportsJSON + `}}`,
			[]want{abuse(0.8, "T1110", 100, "18", "22"), abuse(0.7, "T1595", 100, "14")}},
		{"abuseipdb numbers and booleans as strings", `{"ip": "203.0.113.77", "abuseipdb": {"data": {"ipAddress": "203.0.113.77",
			"isWhitelisted": "false", "abuseConfidenceScore": "50", "totalReports": "1873", "numDistinctUsers": "412",
			"reports": [{"categories": ["21"]}]}}}`, []want{abuse(0.3, "T1190", 50, "21")}},
		{"abuseipdb whitelisted, score 0, verbose", `{"ip": "203.0.113.77", "abuseipdb": {"data": {"ipAddress": "203.0.113.77",
			"isWhitelisted": true, "abuseConfidenceScore": 0, "totalReports": 4, "numDistinctUsers": 3,
			"reports": [{"categories": [14, 15]}]}}}`, nil},
		{"abuseipdb whitelisted as a string, high score", `{"ip": "203.0.113.77", "abuseipdb": {"ipAddress": "203.0.113.77",
			"isWhitelisted": "true", "abuseConfidenceScore": 90, "reports": [{"categories": [14]}]}}`, nil},
		{"abuseipdb score 0 with reports", `{"ip": "203.0.113.77", "abuseipdb": {"data": {"ipAddress": "203.0.113.77",
			"isWhitelisted": null, "abuseConfidenceScore": 0, "reports": [{"categories": [18]}]}}}`, nil},
		{"abuseipdb about another address", `{"ip": "203.0.113.77", "abuseipdb": {"data": {"ipAddress": "198.51.100.9",
			"abuseConfidenceScore": 100, "reports": [{"categories": [18]}]}}}`, nil},
		{"abuseipdb error answer", `{"ip": "203.0.113.77", "abuseipdb": {"errors": [{"detail": "Daily rate limit of 1000 requests exceeded for this endpoint.", "status": 429}]}}`, nil},

		// GreyNoise.
		{"greynoise enterprise v2 context, malicious", `{"ip": "203.0.113.77", "greynoise": ` + greyV2Malicious + `}`,
			[]want{grey(0.8, "malicious", "unknown")}},
		{"greynoise enterprise v2 context, benign Shodan", `{"ip": "203.0.113.77", "greynoise": {"ip": "203.0.113.77", "seen": true,
			"classification": "benign", "actor": "Shodan.io", "spoofable": false, "tags": ["Shodan.io"]}}`, nil},
		{"greynoise v2 context, not seen", `{"ip": "203.0.113.77", "greynoise": {"ip": "203.0.113.77", "seen": false}}`, nil},
		{"greynoise v2 GNQL data list", `{"ip": "203.0.113.77", "greynoise": {"complete": true, "count": 2, "message": "ok",
			"query": "ip:203.0.113.0/24", "data": [{"ip": "203.0.113.5", "seen": true, "classification": "benign", "actor": "Censys"}, ` +
			greyV2Malicious + `]}}`, []want{grey(0.8, "malicious", "unknown")}},
		{"greynoise v3 malicious", `{"ip": "203.0.113.77", "greynoise": ` + fmtS(greyV3, "false", "", "", "true", "unknown", "malicious") + `}`,
			[]want{grey(0.8, "malicious", "unknown")}},
		{"greynoise v3 suspicious", `{"ip": "203.0.113.77", "greynoise": ` + fmtS(greyV3, "false", "", "", "true", "unknown", "suspicious") + `}`,
			[]want{grey(0.8*0.6, "suspicious", "unknown")}},
		{"greynoise v3 benign", `{"ip": "203.0.113.77", "greynoise": ` + fmtS(greyV3, "false", "", "", "true", "Censys", "benign") + `}`, nil},
		{"greynoise v3 business service", `{"ip": "203.0.113.77", "greynoise": ` + fmtS(greyV3, "true", "Google Public DNS", "1", "false", "", "") + `}`, nil},
		{"greynoise v3 business service also scanning", `{"ip": "203.0.113.77", "greynoise": ` + fmtS(greyV3, "true", "Example CDN", "2", "true", "unknown", "malicious") + `}`, nil},
		{"greynoise v3 quick", `{"ip": "203.0.113.77", "greynoise": {"ip": "203.0.113.77",
			"business_service_intelligence": {"found": false, "trust_level": ""},
			"internet_scanner_intelligence": {"found": true, "classification": "malicious"}, "request_metadata": {"restricted_fields": []}}}`,
			[]want{{"R0055", "T1595", 0.8, map[string]any{"provider": "greynoise", "classification": "malicious", "noise": true}}}},
		{"greynoise v3 multi data list, other address only", `{"ip": "203.0.113.77", "greynoise": {"data": [{"ip": "198.51.100.9",
			"business_service_intelligence": {"found": false}, "internet_scanner_intelligence": {"found": true, "classification": "malicious"}}],
			"request_metadata": {"ips_not_found": ["203.0.113.77"]}}}`, nil},
		{"greynoise community as strings", `{"ip": "203.0.113.77", "greynoise": {"ip": "203.0.113.77", "noise": "true", "riot": "false",
			"classification": "Malicious", "name": "Mirai", "message": "Success"}}`, []want{grey(0.8, "malicious", "Mirai")}},
		{"greynoise community riot", `{"ip": "203.0.113.77", "greynoise": {"ip": "203.0.113.77", "noise": false, "riot": true,
			"classification": "benign", "name": "Microsoft 365", "message": "Success"}}`, nil},

		// ThreatFox search_ioc, the whole response.
		{"threatfox whole response", `{"ip": "203.0.113.77", "threatfox": ` + fmtS(foxOK, "100") + `}`,
			[]want{{"R0057", "T1071", 0.8, map[string]any{"provider": "threatfox", "threat_type": "botnet_cc", "confidence_level": 100, "ioc_count": 1, "malware_families": []any{"QakBot"}}}}},
		{"threatfox confidence as a string", `{"ip": "203.0.113.77", "threatfox": ` + fmtS(foxOK, `"75"`) + `}`,
			[]want{{"R0057", "T1071", 0.6, map[string]any{"provider": "threatfox", "threat_type": "botnet_cc", "confidence_level": 75, "ioc_count": 1, "malware_families": []any{"QakBot"}}}}},
		{"threatfox one IOC object", `{"ip": "203.0.113.77", "threatfox": {"ioc": "203.0.113.77:8080", "threat_type": "payload_delivery",
			"ioc_type": "ip:port", "malware": "elf.mozi", "malware_printable": "Mozi", "confidence_level": 100, "tags": null}}`,
			[]want{{"R0057", "T1105", 0.7, map[string]any{"provider": "threatfox", "threat_type": "payload_delivery", "confidence_level": 100, "ioc_count": 1, "malware_families": []any{"Mozi"}}}}},
		{"threatfox no_result", `{"ip": "203.0.113.77", "threatfox": {"query_status": "no_result", "data": "Your search did not yield any results"}}`, nil},
		{"threatfox illegal_search_term", `{"ip": "203.0.113.77", "threatfox": {"query_status": "illegal_search_term"}}`, nil},

		// Feodo Tracker.
		{"feodo blocklist entries, one ours", `{"ip": "203.0.113.77", "feodo": [` + fmtS(feodoEntry, "198.51.100.1", "Emotet") + `, ` +
			fmtS(feodoEntry, "203.0.113.77", "QakBot") + `]}`,
			[]want{{"R0056", "T1071", 0.9, map[string]any{"provider": "feodo", "malware": "QakBot", "status": "online", "port": 443}}}},
		{"feodo blocklist entries, none ours", `{"ip": "203.0.113.77", "feodo": [` + fmtS(feodoEntry, "198.51.100.1", "Emotet") + `]}`, nil},
		{"feodo empty list", `{"ip": "203.0.113.77", "feodo": []}`, nil},
		{"feodo CSV columns, strings", `{"ip": "203.0.113.77", "feodo": {"first_seen_utc": "2026-11-20 13:05:11", "dst_ip": "203.0.113.77",
			"dst_port": "8443", "c2_status": "Offline", "last_online": "2026-11-21", "malware": "Pikabot"}}`,
			[]want{{"R0056", "T1071", 0.63, map[string]any{"provider": "feodo", "malware": "Pikabot", "status": "offline", "port": 8443}}}},

		// Every provider at once, each in another of its shapes: they agree.
		{"all providers, whole responses", `{"ip": "203.0.113.77", "abuseipdb": {"data": {` + abuseData + `}},
			"greynoise": ` + greyV2Malicious + `, "threatfox": ` + fmtS(foxOK, "100") + `, "feodo": [` + fmtS(feodoEntry, "203.0.113.77", "QakBot") + `]}`,
			[]want{grey(0.8, "malicious", "unknown"),
				{"R0056", "T1071", 0.9, map[string]any{"provider": "feodo", "malware": "QakBot", "status": "online", "port": 443}},
				{"R0057", "T1071", 0.8, map[string]any{"provider": "threatfox", "threat_type": "botnet_cc", "confidence_level": 100, "ioc_count": 1, "malware_families": []any{"QakBot"}}},
				{"R0058", "T1584", 1, map[string]any{"providers": []any{"abuseipdb", "greynoise", "feodo", "threatfox"}, "provider_count": 4, "highest_confidence": 1}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev := abi.Event{SourceKind: abi.KindIntel, SourceID: "i1", Payload: payload(t, tc.payload)}
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

// FuzzTag sends the lifter arbitrary payloads (decoded as the host decodes them): it must
// never fail or panic, and must answer the same twice (sdktest checks both).
func FuzzTag(f *testing.F) {
	f.Add(`{"ip": "203.0.113.77", "abuseipdb": {"data": {` + abuseData + `, ` + abuseReportsJSON + `}}}`)
	f.Add(`{"ip": "203.0.113.77", "greynoise": ` + greyV2Malicious + `}`)
	f.Add(`{"ip": "203.0.113.77", "greynoise": {"data": [` + fmtS(greyV3, "false", "", "", "true", "unknown", "suspicious") + `]}}`)
	f.Add(`{"ip": "203.0.113.77", "threatfox": ` + fmtS(foxOK, `"75"`) + `}`)
	f.Add(`{"ip": "203.0.113.77", "feodo": [` + fmtS(feodoEntry, "203.0.113.77", "QakBot") + `, {"dst_ip": 7, "dst_port": "x"}]}`)
	f.Add(`{"ip": ["x"], "abuseipdb": {"abuseConfidenceScore": "1e400", "reports": [{"categories": "1,,x,-0"}]}, "abuseipdb_categories": ["a", 3]}`)
	p := newPlugin(f)
	f.Fuzz(func(t *testing.T, s string) {
		var m map[string]any
		if json.Unmarshal([]byte(s), &m) != nil {
			return
		}
		if _, err := p.Tag(abi.Event{SourceKind: abi.KindIntel, SourceID: "f", Payload: m}); err != nil {
			t.Fatal(err)
		}
	})
}
