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
	"../../rules/ttp/R0049.yaml",
	"../../rules/ttp/R0050.yaml",
	"../../rules/ttp/R0051.yaml",
	"../../rules/ttp/R0052.yaml",
	"../../rules/ttp/R0053.yaml",
}

func newPlugin(t testing.TB) *sdktest.Plugin {
	t.Helper()
	rs, err := sdktest.ReadRules(ruleFiles...)
	if err != nil {
		t.Fatal(err)
	}
	p, err := sdktest.New(canaryLifter{}, rs...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// A real desktop Chrome on Windows in the Netherlands: no rule fires on it.
const (
	uaChromeWin   = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
	uaHeadless    = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 Safari/537.36"
	uaSafariMac   = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15"
	uaChromeAndr  = "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36"
	uaLighthouse  = "Mozilla/5.0 (Linux; Android 11; moto g power (2022)) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36 Chrome-Lighthouse"
	rendD3D       = "ANGLE (NVIDIA, NVIDIA GeForce RTX 3060 (0x00002503) Direct3D11 vs_5_0 ps_5_0, D3D11)"
	rendSwift     = "ANGLE (Google, Vulkan 1.3.0 (SwiftShader Device (Subzero) (0x0000C0DE)), SwiftShader driver)"
	rendAppleM2   = "ANGLE (Apple, ANGLE Metal Renderer: Apple M2, Unspecified Version)"
	rendAdreno    = "ANGLE (Qualcomm, Adreno (TM) 650, OpenGL ES 3.2)"
	puppeteerHash = "a457e8f04aa796dc50770f109d184aaa9b389b8429eda73d49bd7dfdb199aa9c"
)

func benign() map[string]any {
	return map[string]any{
		"navigator": map[string]any{
			"webdriver": false, "userAgent": uaChromeWin, "platform": "Win32",
			"languages": []any{"nl-NL", "nl", "en-US", "en"}, "plugins_count": 5.0, "hardwareConcurrency": 8.0,
		},
		"globals":     []any{},
		"webgl":       map[string]any{"vendor": "Google Inc. (NVIDIA)", "renderer": rendD3D},
		"canvas_hash": "6199490fe5806bc82b1f136195d4bff0780bf75fd350c3ca3d10c005a35335e7",
		"audio_hash":  "454931a6ef6471cebea3964db7e2ea939b5876d3755d967166fdad97e729e7ad",
		"webrtc_ips":  []any{"192.168.1.23", "198.51.100.23"},
		"timezone":    "Europe/Amsterdam",
		"language":    "nl-NL",
		"src_ip":      "198.51.100.23",
		"geo":         map[string]any{"country": "NL", "timezone": "Europe/Amsterdam"},
	}
}

// with returns benign() with the dotted paths set (nil deletes).
func with(kv ...any) map[string]any {
	p := benign()
	for i := 0; i+1 < len(kv); i += 2 {
		path := strings.Split(kv[i].(string), ".")
		m := p
		for _, k := range path[:len(path)-1] {
			m = m[k].(map[string]any)
		}
		if kv[i+1] == nil {
			delete(m, path[len(path)-1])
		} else {
			m[path[len(path)-1]] = kv[i+1]
		}
	}
	return p
}

type want struct {
	rule       string
	confidence float64
	evidence   map[string]any
}

func TestCanary(t *testing.T) {
	p := newPlugin(t)
	for _, tc := range []struct {
		name    string
		payload map[string]any
		want    []want
	}{
		{"benign desktop chrome", benign(), nil},
		{"empty payload", map[string]any{}, nil},
		{"webdriver", with("navigator.webdriver", true), []want{
			{"R0049", 0.7, map[string]any{"webdriver": true}}}},
		{"webdriver from lighthouse is exempt", with("navigator.webdriver", true, "navigator.userAgent", uaLighthouse, "navigator.platform", "Linux armv8l", "webgl.renderer", rendAdreno, "navigator.plugins_count", 0.0), nil},
		{"webdriver as a string (a form-encoded post)", with("navigator.webdriver", "true"), []want{
			{"R0049", 0.7, map[string]any{"webdriver": true}}}},
		{"webdriver undefined as a string is not the flag", with("navigator.webdriver", "undefined"), nil},
		{"webdriver false as a string", with("navigator.webdriver", "false"), nil},
		{"puppeteer canvas hash", with("canvas_hash", puppeteerHash), []want{
			{"R0050", 0.75, map[string]any{"signals": []any{"canvas:puppeteer"}, "strong_signals": int64(1)}}}},
		{"chromedriver global", with("globals", []any{"cdc_adoQpoasnfa76pfcZLmcfl_Array", "cdc_adoQpoasnfa76pfcZLmcfl_Promise"}), []want{
			{"R0050", 0.75, map[string]any{"signals": []any{"global:cdc_"}, "strong_signals": int64(1)}}}},
		{"headless chrome on linux", with("navigator.userAgent", uaHeadless, "navigator.platform", "Linux x86_64", "navigator.plugins_count", 0.0, "webgl.renderer", rendSwift), []want{
			{"R0050", 0.75, map[string]any{"signals": []any{"ua:HeadlessChrome", "renderer:SwiftShader", "plugins:0"}, "strong_signals": int64(1)}}}},
		{"two weak signals", with("navigator.plugins_count", 0.0, "webgl.renderer", rendSwift), []want{
			{"R0050", 0.75 * 0.8, map[string]any{"signals": []any{"renderer:SwiftShader", "plugins:0"}, "strong_signals": int64(0)}}}},
		{"one weak signal", with("webgl.renderer", rendSwift), nil},
		{"no plugins on mobile is normal", with("navigator.userAgent", uaChromeAndr, "navigator.platform", "Linux armv8l", "navigator.plugins_count", 0.0, "webgl.renderer", rendAdreno), nil},
		{"webrtc leak", with("webrtc_ips", []any{"192.168.1.23", "203.0.113.9"}), []want{
			{"R0051", 0.6, map[string]any{"leaked_count": int64(1), "leak_family": "ipv4"}}}},
		{"webrtc leak repeated per ICE component counts once", with("webrtc_ips", []any{"203.0.113.9", "192.168.1.23", "203.0.113.9"}), []want{
			{"R0051", 0.6, map[string]any{"leaked_count": int64(1), "leak_family": "ipv4"}}}},
		{"webrtc same /24", with("webrtc_ips", []any{"198.51.100.77"}), nil},
		{"webrtc dual stack", with("webrtc_ips", []any{"2001:db8:1234::5"}), nil},
		{"webrtc mdns", with("webrtc_ips", []any{"3f4e9a0c-1b2d-4c5e-8f70-112233445566.local"}), nil},
		{"webrtc private source", with("src_ip", "10.20.0.5", "webrtc_ips", []any{"10.20.0.5", "203.0.113.9"}), nil},
		{"timezone abroad", with("timezone", "America/New_York", "language", "en-US", "navigator.languages", []any{"en-US", "en"}), []want{
			{"R0052", 0.5 * 0.8, map[string]any{"mismatches": []any{"timezone"}, "browser_timezone": "America/New_York", "geo_timezone": "Europe/Amsterdam", "geo_country": "NL", "browser_language": "en-US"}}}},
		{"berlin clock in amsterdam", with("timezone", "Europe/Berlin"), nil},
		{"timezone and language abroad", with("timezone", "Asia/Shanghai", "language", "zh-CN", "navigator.languages", []any{"zh-CN", "zh"}), []want{
			{"R0052", 0.5, map[string]any{"mismatches": []any{"timezone", "language"}, "browser_timezone": "Asia/Shanghai", "geo_timezone": "Europe/Amsterdam", "geo_country": "NL", "browser_language": "zh-CN"}}}},
		{"language alone", with("language", "ru-RU", "navigator.languages", []any{"ru-RU", "ru"}), []want{
			{"R0052", 0.25, map[string]any{"mismatches": []any{"language"}, "browser_timezone": "Europe/Amsterdam", "geo_timezone": "Europe/Amsterdam", "geo_country": "NL", "browser_language": "ru-RU"}}}},
		{"unknown country, same region", with("geo", map[string]any{"country": "MT", "timezone": "Europe/Malta"}, "timezone", "Europe/Lisbon"), nil},
		{"unknown country, other region", with("geo", map[string]any{"country": "MT", "timezone": "Europe/Malta"}, "timezone", "America/Chicago", "language", "en-US"), []want{
			{"R0052", 0.4, map[string]any{"mismatches": []any{"timezone"}, "browser_timezone": "America/Chicago", "geo_timezone": "Europe/Malta", "geo_country": "MT", "browser_language": "en-US"}}}},
		{"us zone pattern", with("geo", map[string]any{"country": "US", "timezone": "America/New_York"}, "timezone", "America/Indiana/Indianapolis", "language", "en-US"), nil},
		{"win32 platform with mac ua", with("navigator.userAgent", uaSafariMac), []want{
			{"R0053", 0.7, map[string]any{"mismatches": []any{"platform/ua", "gpu/ua"}, "platform_os": "windows", "ua_os": "mac", "gpu_os": "windows"}}}},
		{"linux platform with apple gpu", with("navigator.userAgent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", "navigator.platform", "Linux x86_64", "webgl.renderer", rendAppleM2), []want{
			{"R0053", 0.7 * 0.8, map[string]any{"mismatches": []any{"gpu/platform", "gpu/ua"}, "platform_os": "linux", "ua_os": "linux", "gpu_os": "apple"}}}},
		{"asahi linux apple gpu through mesa", with("navigator.userAgent", "Mozilla/5.0 (X11; Linux aarch64; rv:133.0) Gecko/20100101 Firefox/133.0", "navigator.platform", "Linux aarch64", "webgl.renderer", "ANGLE (Mesa, Apple M2 (G14G B1), OpenGL ES 3.1 Mesa 24.2.0-asahi)"), nil},
		{"android desktop mode", with("navigator.userAgent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", "navigator.platform", "Linux armv8l", "webgl.renderer", rendAdreno), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev := abi.Event{SourceKind: abi.KindCanary, SourceID: "c1", Payload: tc.payload}
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

func sameEvidence(a, b map[string]any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	var x, y any
	_ = json.Unmarshal(ja, &x)
	_ = json.Unmarshal(jb, &y)
	return reflect.DeepEqual(x, y)
}

func show(ws []want) string {
	b, _ := json.Marshal(func() []map[string]any {
		var out []map[string]any
		for _, w := range ws {
			out = append(out, map[string]any{"rule": w.rule, "confidence": w.confidence, "evidence": w.evidence})
		}
		return out
	}())
	return string(b)
}

func TestRejectsBadParams(t *testing.T) {
	p := newPlugin(t)
	emits := []abi.EmitConfig{{TechniqueID: "T1594", Tactic: "reconnaissance", Confidence: 0.5}}
	for _, tc := range []struct {
		kind   string
		params map[string]any
		msg    string
	}{
		{kindAutomation, map[string]any{"weak_scale": 2.0}, "weak_scale must be in [0, 1]"},
		{kindAutomation, map[string]any{"canvas_hashes": map[string]any{"puppeteer": []any{"ABC"}}}, "not a lower-case hex SHA-256"},
		{kindAutomation, map[string]any{"ua_markers": []any{""}}, "empty marker"},
		{kindWebRTC, map[string]any{"same_network_v4_bits": 40.0}, "same_network_v4_bits"},
		{kindGeo, map[string]any{"country_timezones": map[string]any{"nl": []any{"Europe/Amsterdam"}}}, "ISO 3166-1"},
		{kindGeo, map[string]any{"country_languages": "MT mt\nXK"}, "line 2: want KEY followed by values"},
		{kindGeo, map[string]any{"timezone_groups": "CET Europe/Malta\nEET Europe/Malta"}, "is in both"},
		{kindPlatform, map[string]any{"platform_os": []any{"Win32"}}, "want family:marker"},
		{kindWebdriver, map[string]any{"min_score": 1.0}, "unknown to this lifter"},
		{"lifter:canary_nope", nil, "unknown rule kind"},
	} {
		rejected, err := p.Configure(abi.RuleConfig{ID: "R0999", Kind: tc.kind, AppliesTo: []string{abi.KindCanary}, Params: tc.params, Emits: emits})
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
	ev := abi.Event{SourceKind: abi.KindCanary, SourceID: "cnr-fra-03-8f2e61", Payload: with(
		"navigator.webdriver", true, "navigator.userAgent", uaHeadless, "navigator.platform", "Linux x86_64",
		"navigator.plugins_count", 0.0, "webgl.renderer", rendSwift, "canvas_hash", puppeteerHash,
		"globals", []any{"cdc_adoQpoasnfa76pfcZLmcfl_Array"}, "webrtc_ips", []any{"10.13.0.7", "203.0.113.9"},
		"timezone", "America/New_York")}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := p.Tag(ev); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkConfigure measures configuring the lifter with its five rules, which the host does
// under the per-call deadline on every fresh instance.
func BenchmarkConfigure(b *testing.B) {
	p := newPlugin(b)
	rs, err := sdktest.ReadRules(ruleFiles...)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := p.Configure(rs...); err != nil {
			b.Fatal(err)
		}
	}
}

// TestGeoOverrides checks that params entries replace or add to the built-in tables key by key.
func TestGeoOverrides(t *testing.T) {
	p := newPlugin(t)
	ev := abi.Event{SourceKind: abi.KindCanary, SourceID: "c2", Payload: with(
		"geo", map[string]any{"country": "MT", "timezone": "Europe/Malta"}, "timezone", "Europe/Rome",
		"language", "it-IT", "navigator.languages", []any{"it-IT", "it"})}
	fired := func() bool {
		drafts, err := p.Tag(ev)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range drafts {
			if d.RuleID == "R0999" {
				return true
			}
		}
		return false
	}
	configure := func(params map[string]any) {
		rejected, err := p.Configure(abi.RuleConfig{ID: "R0999", Kind: kindGeo, AppliesTo: []string{abi.KindCanary}, Params: params,
			Emits: []abi.EmitConfig{{TechniqueID: "T1090", Tactic: "command-and-control", Confidence: 0.5}}})
		if err != nil || len(rejected) > 0 {
			t.Fatalf("configure: %v %+v", err, rejected)
		}
	}
	configure(map[string]any{})
	if fired() {
		t.Fatal("Malta is not in the built-in tables and Rome keeps its clock: no mismatch expected")
	}
	configure(map[string]any{"country_languages": "MT mt en"})
	if !fired() {
		t.Fatal("with MT speaking only mt and en, an Italian-only browser should disagree on language")
	}
	configure(map[string]any{"timezone_groups": "CET Europe/Amsterdam", "country_timezones": "MT Europe/Malta"})
	if !fired() {
		t.Fatal("with Rome out of the CET group and MT on Europe/Malta only, Rome's clock should disagree")
	}
}
