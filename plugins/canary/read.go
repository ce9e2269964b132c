package main

import (
	"math"
	"net/netip"
	"strconv"
	"strings"

	"github.com/decnet/ttp/abi"
	"github.com/decnet/ttp/sdk"
)

// This file reads a fingerprint wherever real collectors put its signals (abi/EVENTS.md,
// "canary", "Accepted shapes"): the page's own navigator object, a raw navigator dump at the
// top of the payload, FingerprintJS's and BotD's components ({"value": ..., "duration": ...}
// or {"state": ..., "value": ...} under payload.components), BotD's verdict (payload.botd),
// WebGL's unmasked renderer under its several names, raw ICE candidate lines, and a geo-IP
// block in the collector's or MaxMind's naming. Each signal is read from the first place
// that has it; booleans and numbers written as strings are read too. Nothing here fails or
// panics: what cannot be read is absent.

var (
	fWebdriver = fields("payload.navigator.webdriver", "payload.webdriver", "payload.components.webDriver.value")
	fUserAgent = fields("payload.navigator.userAgent", "payload.userAgent", "payload.user_agent",
		"payload.components.userAgent.value")
	fBrands = fields("payload.navigator.userAgentData.brands[].brand", "payload.userAgentData.brands[].brand",
		"payload.components.userAgentData.value.brands[].brand")
	// navigator.appVersion repeats the user agent after "Mozilla/" (BotD reads it too).
	fAppVersion = fields("payload.navigator.appVersion", "payload.appVersion", "payload.components.appVersion.value")
	fPlatform   = fields("payload.navigator.platform", "payload.platform", "payload.components.platform.value",
		"payload.navigator.userAgentData.platform", "payload.userAgentData.platform")
	fLanguages = fields("payload.navigator.languages", "payload.languages")
	fLanguage  = fields("payload.language", "payload.navigator.language", "payload.components.dateTimeLocale.value")
	// A count, or the plugin list itself (names or objects): its length is the count.
	fPlugins = fields("payload.navigator.plugins_count", "payload.plugins_count", "payload.components.pluginsLength.value",
		"payload.navigator.plugins", "payload.plugins", "payload.components.plugins.value")
	fGlobals   = fields("payload.globals")
	fBotdBot   = canary.Field("payload.botd.bot")
	fBotdKind  = canary.Field("payload.botd.botKind")
	fBotdProps = canary.Field("payload.components.distinctiveProps.value.*")
	fRenderer  = fields("payload.webgl.unmaskedRenderer", "payload.webgl.rendererUnmasked", "payload.webgl.unmasked_renderer",
		"payload.webgl.renderer", "payload.components.webGlBasics.value.rendererUnmasked", "payload.components.webGL.value.renderer",
		"payload.components.webGlBasics.value.renderer")
	fCanvasHash = fields("payload.canvas_hash")
	fAudioHash  = fields("payload.audio_hash")
	fWebRTC     = fields("payload.webrtc_ips", "payload.webrtc_candidates", "payload.webrtc.candidates", "payload.webrtc.ips")
	fTimezone   = fields("payload.timezone", "payload.timeZone", "payload.components.timezone.value")
	fSrcIP      = fields("payload.src_ip", "payload.client_ip", "payload.remote_addr", "payload.ip")
	fGeoCountry = fields("payload.geo.country", "payload.geo.country_code", "payload.geo.country.iso_code")
	fGeoTZ      = fields("payload.geo.timezone", "payload.geo.time_zone", "payload.geo.location.time_zone")
)

func fields(paths ...string) []sdk.Field {
	out := make([]sdk.Field, len(paths))
	for i, p := range paths {
		out[i] = canary.Field(p)
	}
	return out
}

// view is what the lifter knows of one fingerprint, read once per Tag call.
type view struct {
	ev                   *sdk.Event
	webdriver            bool
	ua, platform         string
	appVersion           string
	renderer             string
	canvasHash           string
	audioHash            string
	timezone, language   string
	srcIP                string
	country, geoTimezone string
	brands               sdk.Field // the first brands list present (zero: none)
	languages            sdk.Field // the first languages list present (zero: none)
	languagesText        string    // languages written as one comma-separated string
	languagesEmpty       bool      // a languages field is present and empty
	plugins              int64
	pluginsOK            bool
	botd                 []string // BotD bot kinds, as labels
}

// theView is the one view a Tag call fills: Tag calls never overlap in an instance.
var (
	theView view
	botdBuf = make([]string, 0, 4)
)

func read(ev *sdk.Event) *view {
	v := &theView
	*v = view{ev: ev}
	for _, f := range fWebdriver {
		if b, ok := boolOf(ev, f); ok {
			v.webdriver = b
			break
		}
	}
	v.ua = firstString(ev, fUserAgent)
	v.platform = firstString(ev, fPlatform)
	v.appVersion = firstString(ev, fAppVersion)
	v.renderer = firstString(ev, fRenderer)
	v.canvasHash = strings.ToLower(firstString(ev, fCanvasHash))
	v.audioHash = strings.ToLower(firstString(ev, fAudioHash))
	v.timezone = firstString(ev, fTimezone)
	v.language = firstString(ev, fLanguage)
	v.srcIP = firstString(ev, fSrcIP)
	v.country = strings.ToUpper(firstString(ev, fGeoCountry))
	v.geoTimezone = firstString(ev, fGeoTZ)
	for _, f := range fBrands {
		if ev.Len(f) > 0 {
			v.brands = f
			break
		}
	}
	for _, f := range fLanguages {
		switch t := ev.Type(f); t {
		case abi.TypeStringList, abi.TypeNumberList:
			v.languages, v.languagesEmpty = f, ev.Len(f) == 0
		case abi.TypeString: // "en-US,en" from a form post; old headless Chrome reported ""
			v.languagesText = strings.TrimSpace(ev.String(f))
			v.languagesEmpty = v.languagesText == ""
		default:
			continue
		}
		break
	}
	for _, f := range fPlugins {
		switch ev.Type(f) {
		case abi.TypeInt, abi.TypeFloat, abi.TypeString:
			if n, ok := numberOf(ev, f); ok && n >= 0 {
				v.plugins, v.pluginsOK = int64(n), true
			}
		case abi.TypeStringList, abi.TypeNumberList:
			v.plugins, v.pluginsOK = int64(ev.Len(f)), true
		}
		if v.pluginsOK {
			break
		}
	}
	kinds := botdBuf[:0]
	if bot, _ := boolOf(ev, fBotdBot); bot {
		kinds = append(kinds, botdLabel(ev.String(fBotdKind)))
	}
	for k, val := range ev.Pairs(fBotdProps) {
		if b, ok := parseBool(val); ok && b {
			if l := botdLabel(k); !containsString(kinds, l) {
				kinds = append(kinds, l)
			}
		}
	}
	v.botd, botdBuf = kinds, kinds[:0]
	return v
}

// botdKinds are BotD's bot kinds (its BotKind enum): evidence names one of them, never a
// string the page was sent.
var botdKinds = []string{"awesomium", "cef", "cefsharp", "coachjs", "electron", "fminer", "geb", "nightmarejs",
	"phantomas", "phantomjs", "rhino", "selenium", "sequentum", "slimerjs", "webdriverio", "webdriver", "headless_chrome"}

var botdLabels = labels("botd:", append(botdKinds, "unknown"))

func botdLabel(kind string) string {
	kind = strings.TrimSpace(kind)
	for i, k := range botdKinds {
		if strings.EqualFold(kind, k) {
			return botdLabels[i]
		}
	}
	return botdLabels[len(botdKinds)]
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// firstString returns the first non-empty string among fs, trimmed.
func firstString(ev *sdk.Event, fs []sdk.Field) string {
	for _, f := range fs {
		if s := strings.TrimSpace(ev.String(f)); s != "" {
			return s
		}
	}
	return ""
}

// eachString calls fn with every entry of every string list among fs, in order.
func eachString(ev *sdk.Event, fs []sdk.Field, fn func(string)) {
	for _, f := range fs {
		for _, s := range ev.Strings(f) {
			fn(s)
		}
	}
}

// boolOf reads a boolean, or a string "true"/"false" (any case, also 1/0); ok is false
// otherwise.
func boolOf(ev *sdk.Event, f sdk.Field) (v, ok bool) {
	switch ev.Type(f) {
	case abi.TypeBool:
		return ev.Bool(f)
	case abi.TypeString:
		return parseBool(ev.String(f))
	}
	return false, false
}

func parseBool(s string) (v, ok bool) {
	switch s = strings.TrimSpace(s); {
	case strings.EqualFold(s, "true") || s == "1":
		return true, true
	case strings.EqualFold(s, "false") || s == "0":
		return false, true
	}
	return false, false
}

// numberOf reads a number, or a string holding one; ok is false otherwise.
func numberOf(ev *sdk.Event, f sdk.Field) (float64, bool) {
	switch ev.Type(f) {
	case abi.TypeInt, abi.TypeFloat:
		return ev.Float(f)
	case abi.TypeString:
		n, err := strconv.ParseFloat(strings.TrimSpace(ev.String(f)), 64)
		return n, err == nil && !math.IsNaN(n) && !math.IsInf(n, 0)
	}
	return 0, false
}

// hostAddr reads an address written alone, with a port ("198.51.100.7:51234",
// "[2001:db8::1]:443") or in brackets; ok is false for anything else.
func hostAddr(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if !maybeAddr(s) {
		return netip.Addr{}, false // netip's errors allocate: skip what cannot be an address
	}
	if strings.Count(s, ":") == 1 || strings.Contains(s, "]:") { // a port: try that first (netip's errors allocate)
		if ap, err := netip.ParseAddrPort(s); err == nil {
			return ap.Addr().Unmap().WithZone(""), true
		}
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap().WithZone(""), true
	}
	if inner, ok := strings.CutPrefix(s, "["); ok {
		if inner, ok = strings.CutSuffix(inner, "]"); ok {
			if a, err := netip.ParseAddr(inner); err == nil {
				return a.Unmap().WithZone(""), true
			}
		}
	}
	return netip.Addr{}, false
}

// iceAddrs returns the addresses in one WebRTC entry: an address (with or without a port), or
// an ICE candidate line as RTCIceCandidate.candidate or SDP writes it ("candidate:842163049 1
// udp 1677729535 203.0.113.5 54321 typ srflx raddr 10.0.0.5 rport 54321", optionally after
// "a="), whose connection address and related address (raddr) both count. mDNS names
// (<uuid>.local) are not addresses and yield none.
func iceAddrs(s string, out *[2]netip.Addr) int {
	if a, ok := hostAddr(s); ok {
		out[0] = a
		return 1
	}
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(s, "a=")
	if len(s) < 10 || !strings.EqualFold(s[:10], "candidate:") {
		return 0
	}
	n, field := 0, 0
	raddr := false
	for rest := s[10:]; rest != "" && n < len(out); field++ {
		var tok string
		rest = strings.TrimLeft(rest, " ")
		if i := strings.IndexByte(rest, ' '); i >= 0 {
			tok, rest = rest[:i], rest[i+1:]
		} else {
			tok, rest = rest, ""
		}
		if field == 4 || raddr {
			if a, ok := hostAddr(tok); ok {
				out[n] = a
				n++
			}
		}
		raddr = tok == "raddr"
		if field > 64 {
			break
		}
	}
	return n
}

// maybeAddr reports whether s may be an address, with or without port, brackets and zone: it
// is short and, before any zone, holds only hex digits, dots, colons and brackets. It keeps
// mDNS names, candidate lines and words away from netip, whose errors allocate.
func maybeAddr(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '%':
			return i > 0
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f', c >= 'A' && c <= 'F', c == '.', c == ':', c == '[', c == ']':
		default:
			return false
		}
	}
	return true
}
