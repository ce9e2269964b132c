package main

import (
	"encoding/json"
	"fmt"
	"math"
	"net/netip"
	"sort"
	"testing"

	"github.com/decnet/ttp/abi"
)

// Fingerprints in the shapes real collectors post them (abi/EVENTS.md, "canary", "Accepted
// shapes"): FingerprintJS's getResult(), BotD's detect() and components, raw navigator dumps,
// User-Agent Client Hints, RTCIceCandidate lines, MaxMind geo-IP records.
const (
	fpjsHeadless = `{"visitorId": "8f1c2d0e1b7a4f2e9a513c0de1a2b001", "confidence": {"score": 0.4}, "version": "4.5.1",
	  "user_agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
	  "components": {
	    "platform": {"value": "Linux x86_64", "duration": 0},
	    "plugins": {"value": [], "duration": 0},
	    "timezone": {"value": "America/New_York", "duration": 0},
	    "languages": {"value": [["en-US"]], "duration": 0},
	    "dateTimeLocale": {"value": "en-US", "duration": 1},
	    "hardwareConcurrency": {"value": 2, "duration": 0},
	    "screenResolution": {"value": [800, 600], "duration": 0},
	    "webGlBasics": {"value": {"version": "WebGL 1.0 (OpenGL ES 2.0 Chromium)", "vendor": "WebKit",
	      "vendorUnmasked": "Google Inc. (Google)", "renderer": "WebKit WebGL",
	      "rendererUnmasked": "ANGLE (Google, Vulkan 1.3.0 (SwiftShader Device (Subzero) (0x0000C0DE)), SwiftShader driver)",
	      "shadingLanguageVersion": "WebGL GLSL ES 1.0 (OpenGL ES GLSL ES 1.0 Chromium)"}, "duration": 4}},
	  "src_ip": "198.51.100.23", "geo": {"country": "NL", "timezone": "Europe/Amsterdam"}}`
	fpjsPerson = `{"visitorId": "0b7a4f2e9a513c0de1a2b0018f1c2d0e", "confidence": {"score": 0.995}, "version": "4.5.1",
	  "user_agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
	  "components": {
	    "platform": {"value": "Win32", "duration": 0},
	    "plugins": {"value": [
	      {"name": "PDF Viewer", "description": "Portable Document Format", "mimeTypes": [{"type": "application/pdf", "suffixes": "pdf"}]},
	      {"name": "Chrome PDF Viewer", "description": "Portable Document Format", "mimeTypes": [{"type": "application/pdf", "suffixes": "pdf"}]}], "duration": 0},
	    "timezone": {"value": "Europe/Amsterdam", "duration": 0},
	    "languages": {"value": [["nl-NL"], ["nl-NL", "nl", "en-US", "en"]], "duration": 0},
	    "dateTimeLocale": {"value": "nl-NL", "duration": 1},
	    "webGlBasics": {"value": {"vendor": "WebKit", "vendorUnmasked": "Google Inc. (NVIDIA)", "renderer": "WebKit WebGL",
	      "rendererUnmasked": "ANGLE (NVIDIA, NVIDIA GeForce RTX 4060 Laptop GPU (0x000028A0) Direct3D11 vs_5_0 ps_5_0, D3D11)"}, "duration": 4}},
	  "src_ip": "198.51.100.23", "geo": {"country": "NL", "timezone": "Europe/Amsterdam"}}`
	navDump = `{"webdriver": %s, "userAgent": "%s", "platform": "Linux x86_64", "languages": %s, "plugins": %s,
	  "hardwareConcurrency": 4, "src_ip": "198.51.100.23", "geo": {"country": "NL", "timezone": "Europe/Amsterdam"},
	  "timezone": "Europe/Amsterdam", "language": "en-US"}`
	chromeLinux = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
	brandsJSON  = `{"navigator": {"webdriver": false, "userAgent": "` + chromeLinux + `", "platform": "Linux x86_64",
	  "languages": ["en-US", "en"], "plugins_count": 5,
	  "userAgentData": {"brands": [{"brand": "Not_A Brand", "version": "8"}, {"brand": "Chromium", "version": "131"}, {"brand": "%s", "version": "131"}],
	   "mobile": false, "platform": "Linux"}},
	  "src_ip": "198.51.100.23", "geo": {"country": "NL", "timezone": "Europe/Amsterdam"}, "timezone": "Europe/Amsterdam"}`
)

func TestRealShapes(t *testing.T) {
	p := newPlugin(t)
	r50 := func(conf float64, strong int64, sig ...any) want {
		return want{"R0050", conf, map[string]any{"signals": sig, "strong_signals": strong}}
	}
	r49 := want{"R0049", 0.7, map[string]any{"webdriver": true}}
	for _, tc := range []struct {
		name, payload string
		want          []want
	}{
		{"fingerprintjs headless linux", fpjsHeadless, []want{
			r50(0.6, 0, "renderer:SwiftShader", "plugins:0"),
			{"R0052", 0.4, map[string]any{"mismatches": []any{"timezone"}, "browser_timezone": "America/New_York", "geo_timezone": "Europe/Amsterdam", "geo_country": "NL", "browser_language": "en-US"}}}},
		{"fingerprintjs person", fpjsPerson, nil},
		{"botd verdict and webDriver component", `{"botd": {"bot": true, "botKind": "headless_chrome"},
			"components": {"webDriver": {"state": 0, "value": true}, "userAgent": {"state": 0, "value": "` + chromeLinux + `"}}}`,
			[]want{r49, r50(0.75, 1, "botd:headless_chrome")}},
		{"botd says human", `{"botd": {"bot": false}, "components": {"webDriver": {"state": 0, "value": false}}}`, nil},
		{"botd unknown kind is not echoed", `{"botd": {"bot": "true", "botKind": "<script>"}}`, []want{r50(0.75, 1, "botd:unknown")}},
		{"botd distinctive properties", `{"components": {"distinctiveProps": {"state": 0, "value": {"selenium": true, "nightmarejs": false, "awesomium": false}}}}`,
			[]want{r50(0.75, 1, "botd:selenium")}},
		{"botd distinctive properties all false", `{"components": {"distinctiveProps": {"state": 0, "value": {"selenium": false}}}}`, nil},
		{"raw navigator dump, old headless", fmtS(navDump, "true", uaHeadless, "[]", "[]"),
			[]want{r49, r50(0.75, 1, "ua:HeadlessChrome", "plugins:0", "languages:0")}},
		{"raw navigator dump, empty languages string and no plugins", fmtS(navDump, `"false"`, chromeLinux, `""`, "[]"),
			[]want{r50(0.6, 0, "plugins:0", "languages:0")}},
		{"raw navigator dump, person", fmtS(navDump, "false", chromeLinux, `["en-US", "en"]`, `["PDF Viewer", "Chrome PDF Viewer"]`), nil},
		{"client hints name headless chrome", fmtS(brandsJSON, "HeadlessChrome"), []want{r50(0.75, 1, "ua:HeadlessChrome")}},
		{"client hints of google chrome", fmtS(brandsJSON, "Google Chrome"), nil},
		{"botd appVersion names headless chrome under an overridden user agent", `{"components": {
			"userAgent": {"state": 0, "value": "` + chromeLinux + `"},
			"appVersion": {"state": 0, "value": "5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/119.0.0.0 Safari/537.36"}}}`,
			[]want{r50(0.75, 1, "ua:HeadlessChrome")}},
		{"appVersion of a person's chrome", `{"navigator": {"userAgent": "` + chromeLinux + `", "plugins_count": 5,
			"appVersion": "5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"}}`, nil},
		{"unmasked renderer under its own name", `{"navigator": {"webdriver": false, "userAgent": "` + chromeLinux + `", "platform": "Linux x86_64",
			"languages": ["en-US"], "plugins": []}, "webgl": {"vendor": "WebKit", "renderer": "WebKit WebGL", "unmaskedVendor": "Mesa",
			"unmaskedRenderer": "llvmpipe (LLVM 15.0.7, 256 bits)"}}`, []want{r50(0.6, 0, "renderer:llvmpipe", "plugins:0")}},
		{"masked renderer alone is no signal", `{"navigator": {"userAgent": "` + chromeLinux + `", "plugins": []}, "webgl": {"renderer": "WebKit WebGL"}}`, nil},
		{"ice candidate lines leak an address", `{"src_ip": "198.51.100.23", "webrtc_ips": [
			"candidate:842163049 1 udp 1677729535 203.0.113.9 54321 typ srflx raddr 0.0.0.0 rport 0 generation 0 ufrag 4ZcD network-cost 999",
			"candidate:1467250027 1 udp 2122260223 3f4e9a0c-1b2d-4c5e-8f70-112233445566.local 56143 typ host generation 0"]}`,
			[]want{{"R0051", 0.6, map[string]any{"leaked_count": int64(1), "leak_family": "ipv4"}}}},
		{"relay candidate's related address is the browser's", `{"src_ip": "198.51.100.23", "webrtc_candidates": [
			"a=candidate:3 1 udp 41885439 192.0.2.50 3478 typ relay raddr 203.0.113.9 rport 50000"]}`,
			[]want{{"R0051", 0.6, map[string]any{"leaked_count": int64(2), "leak_family": "ipv4"}}}},
		{"ice candidates of the source itself", `{"remote_addr": "198.51.100.23:51234", "webrtc_ips": [
			"candidate:842163049 1 udp 1677729535 198.51.100.23 54321 typ srflx raddr 192.168.1.5 rport 54321"]}`, nil},
		{"languages as one string, foreign", `{"timezone": "Europe/Amsterdam", "navigator": {"languages": "ru-RU,ru;q=0.9"},
			"geo": {"country": "NL", "timezone": "Europe/Amsterdam"}}`,
			[]want{{"R0052", 0.25, map[string]any{"mismatches": []any{"language"}, "browser_timezone": "Europe/Amsterdam", "geo_timezone": "Europe/Amsterdam", "geo_country": "NL", "browser_language": "ru-RU"}}}},
		{"languages as one string, local", `{"timezone": "Europe/Amsterdam", "navigator": {"languages": "ru-RU, nl-NL"},
			"geo": {"country": "NL", "timezone": "Europe/Amsterdam"}}`, nil},
		{"maxmind geo record", `{"timezone": "America/New_York", "language": "en-US", "navigator": {"languages": ["en-US"]},
			"geo": {"country": {"iso_code": "NL", "names": {"en": "Netherlands"}}, "location": {"time_zone": "Europe/Amsterdam", "accuracy_radius": 20}}}`,
			[]want{{"R0052", 0.4, map[string]any{"mismatches": []any{"timezone"}, "browser_timezone": "America/New_York", "geo_timezone": "Europe/Amsterdam", "geo_country": "NL", "browser_language": "en-US"}}}},
		{"lookalike globals", `{"navigator": {"userAgent": "` + chromeLinux + `", "plugins_count": 3}, "globals": ["cdcConfig", "playwrightDocs", "phantomMenace"]}`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var m map[string]any
			if err := json.Unmarshal([]byte(tc.payload), &m); err != nil {
				t.Fatalf("bad test payload: %v", err)
			}
			ev := abi.Event{SourceKind: abi.KindCanary, SourceID: "c1", Payload: m}
			drafts, err := p.Tag(ev)
			if err != nil {
				t.Fatal(err)
			}
			if n := p.TagAllocs(ev, 20); n != 0 {
				t.Errorf("%v allocations per Tag call, want 0", n)
			}
			var got []want
			for _, d := range drafts {
				got = append(got, want{d.RuleID, d.Confidence, d.Evidence})
			}
			sort.Slice(got, func(i, j int) bool { return got[i].rule < got[j].rule })
			if len(got) != len(tc.want) {
				t.Fatalf("got %s\nwant %s", show(got), show(tc.want))
			}
			for i := range got {
				if got[i].rule != tc.want[i].rule || math.Abs(got[i].confidence-tc.want[i].confidence) > 1e-9 ||
					!sameEvidence(got[i].evidence, tc.want[i].evidence) {
					t.Fatalf("got %s\nwant %s", show(got), show(tc.want))
				}
			}
		})
	}
}

func TestIceAddrs(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"203.0.113.9", []string{"203.0.113.9"}},
		{"203.0.113.9:54321", []string{"203.0.113.9"}},
		{"[2001:db8::7]:443", []string{"2001:db8::7"}},
		{"::ffff:203.0.113.9", []string{"203.0.113.9"}},
		{"fe80::1%en0", []string{"fe80::1"}},
		{"candidate:842163049 1 udp 1677729535 203.0.113.9 54321 typ srflx raddr 10.0.0.5 rport 54321", []string{"203.0.113.9", "10.0.0.5"}},
		{"a=candidate:1 1 UDP 2122252543 2001:db8::5 61665 typ host", []string{"2001:db8::5"}},
		{"candidate:1 1 udp 2122260223 3f4e9a0c-1b2d-4c5e-8f70-112233445566.local 56143 typ host", nil},
		{"candidate:", nil},
		{"", nil},
		{"not an address", nil},
	} {
		var out [2]netip.Addr
		n := iceAddrs(tc.in, &out)
		var got []string
		for _, a := range out[:n] {
			got = append(got, a.String())
		}
		if len(got) != len(tc.want) || (len(got) > 0 && !sameStrings(got, tc.want)) {
			t.Errorf("iceAddrs(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func sameStrings(a, b []string) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return len(a) == len(b)
}

// FuzzIceAddrs checks that the WebRTC entry reader never panics and only returns valid
// addresses without zones.
func FuzzIceAddrs(f *testing.F) {
	f.Add("candidate:842163049 1 udp 1677729535 203.0.113.9 54321 typ srflx raddr 10.0.0.5 rport 54321")
	f.Add("[2001:db8::7]:443")
	f.Add("a=candidate:  1 1  udp 1 ::1 1 typ host raddr raddr raddr")
	f.Fuzz(func(t *testing.T, s string) {
		var out [2]netip.Addr
		n := iceAddrs(s, &out)
		if n < 0 || n > 2 {
			t.Fatalf("n = %d", n)
		}
		for _, a := range out[:n] {
			if !a.IsValid() || a.Zone() != "" || a.Is4In6() {
				t.Fatalf("iceAddrs(%q) gave %v", s, a)
			}
		}
	})
}

// FuzzTag sends the lifter arbitrary payloads: it must never fail or panic, and must answer
// the same twice (sdktest checks both).
func FuzzTag(f *testing.F) {
	f.Add(fpjsHeadless)
	f.Add(fpjsPerson)
	f.Add(fmtS(navDump, "true", uaHeadless, "[]", "[]"))
	f.Add(fmtS(brandsJSON, "HeadlessChrome"))
	f.Add(`{"botd": {"bot": 1, "botKind": 7}, "components": {"distinctiveProps": {"value": {"": "true"}}}, "webrtc_ips": ["candidate:x x x x ::ffff:1.2.3.4"]}`)
	p := newPlugin(f)
	f.Fuzz(func(t *testing.T, s string) {
		var m map[string]any
		if json.Unmarshal([]byte(s), &m) != nil {
			return
		}
		if _, err := p.Tag(abi.Event{SourceKind: abi.KindCanary, SourceID: "f", Payload: m}); err != nil {
			t.Fatal(err)
		}
	})
}

// fmtS is fmt.Sprintf, short for the table above.
func fmtS(format string, args ...any) string { return fmt.Sprintf(format, args...) }
