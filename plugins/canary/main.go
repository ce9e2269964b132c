// Command canary is the lifter of canary-page browser fingerprints (source kind canary, rules
// R0049-R0053). A canary page's script measures the visitor's browser and posts the result;
// the collector adds the address it came from and that address's geo-IP (abi/EVENTS.md,
// "canary"). The lifter compares what the browser says about itself with what it cannot hide:
//
//   - lifter:canary_webdriver: navigator.webdriver is true, the flag WebDriver (Selenium,
//     Puppeteer and Playwright by default) sets on every page it drives;
//   - lifter:canary_automation: known automation signatures, strong (a canvas or audio hash that
//     a lab run of Puppeteer, Playwright, Selenium or a curl-impersonate replay produced on this
//     page, HeadlessChrome in the user agent, an automation global such as $cdc_ or
//     __webdriver_evaluate) or weak (a software renderer such as SwiftShader, no plugins on a
//     desktop browser), firing on one strong or enough weak ones;
//   - lifter:canary_webrtc_leak: a public address in the WebRTC candidates that is not the
//     address the fingerprint was posted from, nor in its network: the page went through a
//     proxy that does not carry the browser's UDP;
//   - lifter:canary_geo_mismatch: the browser's time zone (or, more weakly, its languages) does
//     not fit the country of the address it came from;
//   - lifter:canary_platform_mismatch: navigator.platform, the user agent and the WebGL
//     renderer name different operating systems (a Win32 platform with a Mac user agent, a
//     Linux platform with an Apple GPU): a spoofed fingerprint.
//
// Signals are read wherever real collectors put them (read.go; abi/EVENTS.md, "Accepted
// shapes"): the page's navigator object, FingerprintJS and BotD components, BotD's verdict,
// client hints, unmasked WebGL names, raw ICE candidate lines, MaxMind geo-IP records.
//
// Every marker, list and threshold lives in the rule's params; R0052's country and time-zone
// tables are built in (geo.go, see there why) and params override them key by key. Evidence
// carries the metric and the matched signature (a tool name, a marker, an OS family), never a
// raw hash, address, user agent or renderer string.
package main

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"

	"github.com/decnet/ttp/abi"
	"github.com/decnet/ttp/sdk"
)

var (
	manifest = sdk.NewManifest("canary", "1.1.0", "lifter:canary_")

	canary = manifest.Source(abi.KindCanary) // its fields are declared in read.go

	kWebdriver   = manifest.Evidence("webdriver")
	kSignals     = manifest.Evidence("signals")
	kStrong      = manifest.Evidence("strong_signals")
	kLeaked      = manifest.Evidence("leaked_count")
	kLeakFamily  = manifest.Evidence("leak_family")
	kBrowserTZ   = manifest.Evidence("browser_timezone")
	kGeoTZ       = manifest.Evidence("geo_timezone")
	kGeoCountry  = manifest.Evidence("geo_country")
	kBrowserLang = manifest.Evidence("browser_language")
	kMismatches  = manifest.Evidence("mismatches")
	kPlatformOS  = manifest.Evidence("platform_os")
	kUAOS        = manifest.Evidence("ua_os")
	kGPUOS       = manifest.Evidence("gpu_os")
)

// The rule kinds the lifter knows.
const (
	kindWebdriver  = "lifter:canary_webdriver"
	kindAutomation = "lifter:canary_automation"
	kindWebRTC     = "lifter:canary_webrtc_leak"
	kindGeo        = "lifter:canary_geo_mismatch"
	kindPlatform   = "lifter:canary_platform_mismatch"
)

// params is one rule's reading of its match.params: exactly one of the pointers is set, the
// one of the rule's kind.
type params struct {
	webdriver  *webdriverParams
	automation *automationParams
	webrtc     *webrtcParams
	geo        *geoParams
	platform   *platformParams
}

type canaryLifter struct{}

func (canaryLifter) Manifest() *sdk.Manifest { return manifest }

func (canaryLifter) Configure(r *sdk.Rule[params]) error {
	var err error
	switch r.Kind {
	case kindWebdriver:
		r.Params.webdriver, err = configureWebdriver(r)
	case kindAutomation:
		r.Params.automation, err = configureAutomation(r)
	case kindWebRTC:
		r.Params.webrtc, err = configureWebRTC(r)
	case kindGeo:
		r.Params.geo, err = configureGeo(r)
	case kindPlatform:
		r.Params.platform, err = configurePlatform(r)
	default:
		return fmt.Errorf("unknown rule kind %q (this lifter knows %s, %s, %s, %s, %s)",
			r.Kind, kindWebdriver, kindAutomation, kindWebRTC, kindGeo, kindPlatform)
	}
	return err
}

func (canaryLifter) Tag(ev *sdk.Event, rules []*sdk.Rule[params], out *sdk.Drafts) {
	v := read(ev)
	for _, r := range rules {
		switch p := r.Params; {
		case p.webdriver != nil:
			p.webdriver.tag(v, r.Index, out)
		case p.automation != nil:
			p.automation.tag(v, r.Index, out)
		case p.webrtc != nil:
			p.webrtc.tag(v, r.Index, out)
		case p.geo != nil:
			p.geo.tag(v, r.Index, out)
		case p.platform != nil:
			p.platform.tag(v, r.Index, out)
		}
	}
}

func init() { sdk.Register(canaryLifter{}) }

func main() {}

// ---- R0049: navigator.webdriver ----

type webdriverParams struct {
	exempt *markerSet // user-agent markers of self-declared audit tools
}

func configureWebdriver(r *sdk.Rule[params]) (*webdriverParams, error) {
	exempt := r.Strings("exempt_ua_markers", nil)
	if err := nonEmpty("exempt_ua_markers", exempt); err != nil {
		return nil, err
	}
	return &webdriverParams{exempt: newMarkerSet(exempt)}, nil
}

func (p *webdriverParams) tag(v *view, rule int, out *sdk.Drafts) {
	if !v.webdriver {
		return
	}
	if p.exempt.first(v.ua) >= 0 {
		return
	}
	out.Add(rule, 0, 1).Bool(kWebdriver, true)
}

// ---- R0050: automation signatures ----

type automationParams struct {
	uaMarkers        *markerSet
	globalMarkers    *markerSet
	rendererMarks    *markerSet
	mobileMarkers    *markerSet
	exempt           *markerSet
	desktopNoPlug    bool
	emptyLanguages   bool // an empty navigator.languages is a weak signal
	botd             bool // BotD's verdict and distinctive properties are strong signals
	minStrong        int
	minWeak          int
	weakScale        float64
	canvasTool       map[string]int // canvas digest -> index of the first tool listing it
	audioTool        map[string]int // audio digest -> index of the first tool listing it
	canvasSig        []string       // "canvas:<tool>", per tool
	audioSig         []string       // "audio:<tool>", per tool
	uaSig            []string       // "ua:<marker>"
	globalSig        []string       // "global:<marker>"
	rendererSig      []string       // "renderer:<marker>"
	noPluginsLabel   string
	noLanguagesLabel string
}

// toolHashes are one tool's digests, while configuring.
type toolHashes struct {
	name   string
	canvas map[string]bool
	audio  map[string]bool
}

// toolOf returns the index (in tools) of the first tool, by name, listing digest h in its
// canvas or audio list, -1 for none.
func toolOf(byHash map[string]int, h string) int {
	if i, ok := byHash[h]; ok && h != "" {
		return i
	}
	return -1
}

func configureAutomation(r *sdk.Rule[params]) (*automationParams, error) {
	uaMarkers := r.Strings("ua_markers", nil)
	globalMarkers := r.Strings("automation_globals", nil)
	rendererMarks := r.Strings("renderer_markers", nil)
	mobileMarkers := r.Strings("mobile_ua_markers", nil)
	exempt := r.Strings("exempt_ua_markers", nil)
	p := &automationParams{
		uaMarkers:        newMarkerSet(uaMarkers),
		globalMarkers:    newMarkerSet(globalMarkers),
		rendererMarks:    newMarkerSet(rendererMarks),
		mobileMarkers:    newMarkerSet(mobileMarkers),
		exempt:           newMarkerSet(exempt),
		desktopNoPlug:    r.Bool("desktop_no_plugins", true),
		emptyLanguages:   r.Bool("empty_languages", true),
		botd:             r.Bool("botd_verdict", true),
		minStrong:        int(r.Int("min_strong_signals", 1)),
		minWeak:          int(r.Int("min_weak_signals", 2)),
		weakScale:        r.Float("weak_scale", 0.8),
		noPluginsLabel:   "plugins:0",
		noLanguagesLabel: "languages:0",
	}
	canvas, err := stringListMap(r, "canvas_hashes")
	if err != nil {
		return nil, err
	}
	audio, err := stringListMap(r, "audio_hashes")
	if err != nil {
		return nil, err
	}
	var tools []toolHashes // sorted by name
	names := map[string]bool{}
	for n := range canvas {
		names[n] = true
	}
	for n := range audio {
		names[n] = true
	}
	for n := range names {
		t := toolHashes{name: n, canvas: map[string]bool{}, audio: map[string]bool{}}
		for _, h := range canvas[n] {
			if !isHexDigest(h) {
				return nil, fmt.Errorf("params.canvas_hashes.%s: %q is not a lower-case hex SHA-256", n, h)
			}
			t.canvas[h] = true
		}
		for _, h := range audio[n] {
			if !isHexDigest(h) {
				return nil, fmt.Errorf("params.audio_hashes.%s: %q is not a lower-case hex SHA-256", n, h)
			}
			t.audio[h] = true
		}
		tools = append(tools, t)
	}
	sort.Slice(tools, func(i, j int) bool { return tools[i].name < tools[j].name })
	p.canvasTool, p.audioTool = map[string]int{}, map[string]int{}
	for i := len(tools) - 1; i >= 0; i-- { // backwards: the first tool by name wins
		for h := range tools[i].canvas {
			p.canvasTool[h] = i
		}
		for h := range tools[i].audio {
			p.audioTool[h] = i
		}
	}
	for _, t := range tools {
		p.canvasSig = append(p.canvasSig, "canvas:"+t.name)
		p.audioSig = append(p.audioSig, "audio:"+t.name)
	}
	p.uaSig = labels("ua:", uaMarkers)
	p.globalSig = labels("global:", globalMarkers)
	p.rendererSig = labels("renderer:", rendererMarks)
	for _, l := range []struct {
		name string
		list []string
	}{{"ua_markers", uaMarkers}, {"automation_globals", globalMarkers}, {"renderer_markers", rendererMarks}, {"mobile_ua_markers", mobileMarkers}, {"exempt_ua_markers", exempt}} {
		if err := nonEmpty(l.name, l.list); err != nil {
			return nil, err
		}
	}
	switch {
	case p.minStrong < 1:
		return nil, fmt.Errorf("min_strong_signals must be at least 1, got %d", p.minStrong)
	case p.minWeak < 1:
		return nil, fmt.Errorf("min_weak_signals must be at least 1, got %d", p.minWeak)
	case !(p.weakScale >= 0 && p.weakScale <= 1):
		return nil, fmt.Errorf("weak_scale must be in [0, 1], got %v", p.weakScale)
	}
	return p, nil
}

// signalBuf holds the signals of the event being tagged; a Tag call never runs concurrently
// with another in one instance, and nothing in it survives the call.
var signalBuf = make([]string, 0, 16)

func (p *automationParams) tag(v *view, rule int, out *sdk.Drafts) {
	ua := v.ua
	if p.exempt.first(ua) >= 0 {
		return
	}
	sig := signalBuf[:0]
	strong := 0
	if i := toolOf(p.canvasTool, v.canvasHash); i >= 0 {
		sig = append(sig, p.canvasSig[i])
		strong++
	}
	if i := toolOf(p.audioTool, v.audioHash); i >= 0 {
		sig = append(sig, p.audioSig[i])
		strong++
	}
	if i := p.uaMarkers.first(ua); i >= 0 {
		sig = append(sig, p.uaSig[i])
		strong++
	}
	// navigator.appVersion and the User-Agent Client Hints: the old headless mode names
	// itself there too, and a user-agent override may forget them.
	if i := p.uaMarkers.first(v.appVersion); i >= 0 && !slices.Contains(sig, p.uaSig[i]) {
		sig = append(sig, p.uaSig[i])
		strong++
	}
	for _, b := range v.ev.Strings(v.brands) {
		if i := p.uaMarkers.first(b); i >= 0 && !slices.Contains(sig, p.uaSig[i]) {
			sig = append(sig, p.uaSig[i])
			strong++
		}
	}
	for _, fg := range fGlobals {
		for _, g := range v.ev.Strings(fg) {
			if i := p.globalMarkers.first(g); i >= 0 && !slices.Contains(sig, p.globalSig[i]) {
				sig = append(sig, p.globalSig[i])
				strong++
			}
		}
	}
	if p.botd {
		for _, l := range v.botd {
			if !slices.Contains(sig, l) {
				sig = append(sig, l)
				strong++
			}
		}
	}
	weak := 0
	if i := p.rendererMarks.first(v.renderer); i >= 0 {
		sig = append(sig, p.rendererSig[i])
		weak++
	}
	desktop := ua != "" && p.mobileMarkers.first(ua) < 0
	if v.pluginsOK && v.plugins == 0 && p.desktopNoPlug && desktop {
		sig = append(sig, p.noPluginsLabel)
		weak++
	}
	if v.languagesEmpty && p.emptyLanguages && ua != "" {
		sig = append(sig, p.noLanguagesLabel)
		weak++
	}
	signalBuf = sig[:0]
	scale := 1.0
	switch {
	case strong >= p.minStrong:
	case weak >= p.minWeak:
		scale = p.weakScale
	default:
		return
	}
	out.Add(rule, 0, scale).Strings(kSignals, sig).Int(kStrong, int64(strong))
}

// ---- R0051: WebRTC address leak ----

type webrtcParams struct {
	includePrivate bool
	crossFamily    bool
	v4Bits, v6Bits int
}

func configureWebRTC(r *sdk.Rule[params]) (*webrtcParams, error) {
	p := &webrtcParams{
		includePrivate: r.Bool("include_private", false),
		crossFamily:    r.Bool("cross_family", false),
		v4Bits:         int(r.Int("same_network_v4_bits", 24)),
		v6Bits:         int(r.Int("same_network_v6_bits", 48)),
	}
	if p.v4Bits < 0 || p.v4Bits > 32 {
		return nil, fmt.Errorf("same_network_v4_bits must be in 0..32, got %d", p.v4Bits)
	}
	if p.v6Bits < 0 || p.v6Bits > 128 {
		return nil, fmt.Errorf("same_network_v6_bits must be in 0..128, got %d", p.v6Bits)
	}
	return p, nil
}

// cgnat is the shared address space of carrier-grade NAT (RFC 6598), private in all but name.
var cgnat = netip.MustParsePrefix("100.64.0.0/10")

// public reports whether a is an address the internet routes to a host: not private
// (RFC 1918, ULA), shared (RFC 6598), loopback, link-local, multicast or unspecified.
func public(a netip.Addr) bool {
	return !(a.IsPrivate() || a.IsLoopback() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() ||
		a.IsMulticast() || a.IsUnspecified() || a.IsInterfaceLocalMulticast() || cgnat.Contains(a))
}

func (p *webrtcParams) tag(v *view, rule int, out *sdk.Drafts) {
	src, ok := hostAddr(v.srcIP)
	if !ok {
		return
	}
	if !p.includePrivate && !public(src) {
		return // a private source (an internal canary) says nothing about the browser's public address
	}
	count, v4, v6 := 0, false, false
	var seen [16]netip.Addr // leaked addresses counted so far: ICE repeats one per component
	var addrs [2]netip.Addr
	for _, fw := range fWebRTC {
		for _, s := range v.ev.Strings(fw) {
			// mDNS candidates (<uuid>.local) are not addresses: iceAddrs skips them.
			for _, a := range addrs[:iceAddrs(s, &addrs)] {
				if a == src || (!p.includePrivate && !public(a)) {
					continue
				}
				if a.Is4() != src.Is4() {
					if !p.crossFamily {
						continue // dual stack: an IPv6 candidate beside an IPv4 source is the same host
					}
				} else if bits := p.bits(a); bits > 0 {
					if net, err := a.Prefix(bits); err == nil && net.Contains(src) {
						continue // the same network's other egress address
					}
				}
				if slices.Contains(seen[:min(count, len(seen))], a) {
					continue
				}
				if count < len(seen) {
					seen[count] = a
				}
				count++
				if a.Is4() {
					v4 = true
				} else {
					v6 = true
				}
			}
		}
	}
	if count == 0 {
		return
	}
	family := "ipv4"
	switch {
	case v4 && v6:
		family = "ipv4+ipv6"
	case v6:
		family = "ipv6"
	}
	out.Add(rule, 0, 1).Int(kLeaked, int64(count)).String(kLeakFamily, family)
}

func (p *webrtcParams) bits(a netip.Addr) int {
	if a.Is4() {
		return p.v4Bits
	}
	return p.v6Bits
}

// ---- R0052: time zone and language against geo-IP ----

type geoParams struct {
	*geoTables
	lingua      []string
	tzOnlyScale float64
	langScale   float64
}

// geoTables are the country and time-zone tables R0052 compares against.
type geoTables struct {
	groups       map[string][]string // group name -> zones or "Region/*" patterns
	countryZones map[string][]string // country -> zones or "Region/*" patterns
	countryLangs map[string][]string // country -> primary language subtags, lower case
	zoneGroup    map[string]int      // zone -> index of its equivalence group
	groupPattern []zonePattern       // "Region/*" patterns of the groups
}

type zonePattern struct {
	prefix string
	group  int
}

// builtinGeo is built from geo.go's tables once, when the module is initialised (outside any
// call deadline), so that configuring R0052 with the built-in tables costs nothing.
var builtinGeo = func() *geoTables {
	t, err := buildGeo(mustTable(builtinTimezoneGroups), mustTable(builtinCountryTimezones), mustTable(builtinCountryLanguages))
	if err != nil {
		panic("canary: built-in geo tables: " + err.Error())
	}
	return t
}()

func mustTable(text string) map[string][]string {
	t, err := parseTable("built-in", text)
	if err != nil {
		panic("canary: " + err.Error())
	}
	return t
}

// buildGeo checks the tables and indexes the zone groups.
func buildGeo(groups, zones, langs map[string][]string) (*geoTables, error) {
	t := &geoTables{groups: groups, countryZones: zones, countryLangs: langs}
	if len(zones) == 0 {
		return nil, fmt.Errorf("country_timezones: want at least one country")
	}
	for _, m := range []map[string][]string{zones, langs} {
		for c := range m {
			if len(c) != 2 || strings.ToUpper(c) != c {
				return nil, fmt.Errorf("country %q: want an ISO 3166-1 alpha-2 code in upper case", c)
			}
		}
	}
	for c, list := range langs {
		for i, l := range list {
			langs[c][i] = strings.ToLower(l)
		}
	}
	names, n := make([]string, 0, len(groups)), 0
	for name, zs := range groups {
		names, n = append(names, name), n+len(zs)
	}
	sort.Strings(names)
	t.zoneGroup = make(map[string]int, n)
	for gi, name := range names {
		for _, z := range groups[name] {
			if prefix, ok := strings.CutSuffix(z, "*"); ok {
				t.groupPattern = append(t.groupPattern, zonePattern{prefix, gi})
				continue
			}
			if prev, dup := t.zoneGroup[z]; dup && prev != gi {
				return nil, fmt.Errorf("timezone_groups: %s is in both %s and %s", z, names[prev], name)
			}
			t.zoneGroup[z] = gi
		}
	}
	return t, nil
}

func configureGeo(r *sdk.Rule[params]) (*geoParams, error) {
	p := &geoParams{
		geoTables:   builtinGeo,
		lingua:      r.Strings("lingua_franca", nil),
		tzOnlyScale: r.Float("timezone_only_scale", 0.8),
		langScale:   r.Float("language_only_scale", 0.5),
	}
	for i, l := range p.lingua {
		p.lingua[i] = strings.ToLower(l)
	}
	for _, s := range []struct {
		name string
		v    float64
	}{{"timezone_only_scale", p.tzOnlyScale}, {"language_only_scale", p.langScale}} {
		if !(s.v >= 0 && s.v <= 1) {
			return nil, fmt.Errorf("%s must be in [0, 1], got %v", s.name, s.v)
		}
	}
	// Entries in params replace or add to the built-in ones, key by key.
	var over [3]map[string][]string
	changed := false
	for i, name := range []string{"timezone_groups", "country_timezones", "country_languages"} {
		t, err := table(r, name)
		if err != nil {
			return nil, err
		}
		over[i], changed = t, changed || len(t) > 0
	}
	if !changed {
		return p, nil
	}
	merged := func(base, o map[string][]string) map[string][]string {
		m := make(map[string][]string, len(base)+len(o))
		for k, v := range base {
			m[k] = append([]string(nil), v...)
		}
		for k, v := range o {
			m[k] = v
		}
		return m
	}
	t, err := buildGeo(merged(builtinGeo.groups, over[0]), merged(builtinGeo.countryZones, over[1]), merged(builtinGeo.countryLangs, over[2]))
	if err != nil {
		return nil, fmt.Errorf("params.%w", err)
	}
	p.geoTables = t
	return p, nil
}

// group returns the equivalence group of zone tz (same offset and daylight-saving rules), -1
// when it is in none.
func (p *geoParams) group(tz string) int {
	if g, ok := p.zoneGroup[tz]; ok {
		return g
	}
	for _, zp := range p.groupPattern {
		if strings.HasPrefix(tz, zp.prefix) {
			return zp.group
		}
	}
	return -1
}

// sameClock reports whether zones a and b keep the same time: equal, or in one group.
func (p *geoParams) sameClock(a, b string) bool {
	if a == b {
		return true
	}
	g := p.group(a)
	return g >= 0 && g == p.group(b)
}

func (p *geoParams) zoneFits(tz, country, geoTZ string) bool {
	if geoTZ != "" && p.sameClock(tz, geoTZ) {
		return true
	}
	zones, known := p.countryZones[country]
	if !known {
		// No table entry: only a different region (Europe/... against America/...) counts.
		return geoTZ == "" || region(tz) == region(geoTZ)
	}
	for _, z := range zones {
		if prefix, ok := strings.CutSuffix(z, "*"); ok {
			if strings.HasPrefix(tz, prefix) {
				return true
			}
		} else if p.sameClock(tz, z) {
			return true
		}
	}
	return false
}

// region returns the area of an IANA zone name ("Europe" of "Europe/Amsterdam"), "" for names
// without one ("UTC").
func region(tz string) string {
	if i := strings.IndexByte(tz, '/'); i > 0 {
		return tz[:i]
	}
	return ""
}

// languageFits reports whether one of the browser's languages is spoken in country (or is a
// lingua franca), and whether the browser reported any language at all.
func (p *geoParams) languageFits(v *view, country string) (fits, reported bool) {
	spoken, known := p.countryLangs[country]
	if !known {
		return true, false
	}
	check := func(tag string) bool {
		if tag == "" {
			return false
		}
		reported = true
		sub := primarySubtag(tag)
		return containsFold(spoken, sub) || containsFold(p.lingua, sub)
	}
	if check(v.language) {
		return true, true
	}
	for _, l := range v.ev.Strings(v.languages) {
		if check(strings.TrimSpace(l)) {
			return true, true
		}
	}
	for rest := v.languagesText; rest != ""; { // "en-US,en;q=0.9": a list flattened to text
		var l string
		l, rest, _ = strings.Cut(rest, ",")
		l, _, _ = strings.Cut(l, ";")
		if check(strings.TrimSpace(l)) {
			return true, true
		}
	}
	return false, reported
}

// primarySubtag returns the language subtag of a BCP 47 tag ("pt" of "pt-BR").
func primarySubtag(tag string) string {
	if i := strings.IndexAny(tag, "-_"); i >= 0 {
		return tag[:i]
	}
	return tag
}

var mismatchBuf = make([]string, 0, 3)

func (p *geoParams) tag(v *view, rule int, out *sdk.Drafts) {
	country, geoTZ := v.country, v.geoTimezone
	if country == "" && geoTZ == "" {
		return
	}
	tz := v.timezone
	tzOff := tz != "" && !p.zoneFits(tz, country, geoTZ)
	langFits, anyLang := p.languageFits(v, country)
	langOff := anyLang && !langFits
	scale := 1.0
	switch {
	case tzOff && langOff:
	case tzOff:
		scale = p.tzOnlyScale
	case langOff:
		scale = p.langScale
	default:
		return
	}
	if scale == 0 {
		return
	}
	mm := mismatchBuf[:0]
	if tzOff {
		mm = append(mm, "timezone")
	}
	if langOff {
		mm = append(mm, "language")
	}
	d := out.Add(rule, 0, scale).Strings(kMismatches, mm)
	if tz != "" {
		d.String(kBrowserTZ, tz)
	}
	if geoTZ != "" {
		d.String(kGeoTZ, geoTZ)
	}
	if country != "" {
		d.String(kGeoCountry, country)
	}
	lang := v.language
	if lang == "" {
		lang = strings.TrimSpace(v.ev.StringAt(v.languages, 0))
	}
	if lang == "" {
		lang, _, _ = strings.Cut(v.languagesText, ",")
		lang, _, _ = strings.Cut(lang, ";")
		lang = strings.TrimSpace(lang)
	}
	if lang != "" {
		d.String(kBrowserLang, lang)
	}
}

// ---- R0053: platform against user agent against WebGL renderer ----

type platformParams struct {
	families   []string  // family names, index = family id
	platformOS osMarkers // navigator.platform substring -> family
	uaOS       osMarkers // user-agent substring -> family, first listed that occurs
	gpuOS      osMarkers // renderer substring -> GPU family, first listed that occurs
	compatible [][]bool  // [platform family][ua family]
	gpuCompat  [][]bool  // [gpu family][os family]
	gpuScale   float64   // scale when only the renderer disagrees
	labels     [3]string // mismatch labels
}

// osMarkers maps substrings to OS families: the family of the first listed marker that occurs
// in a string is its family.
type osMarkers struct {
	set    *markerSet
	family []int // by marker index
}

// detect returns the family of the first listed marker that occurs in s, -1 when none does.
func (m osMarkers) detect(s string) int {
	if i := m.set.first(s); i >= 0 {
		return m.family[i]
	}
	return -1
}

func configurePlatform(r *sdk.Rule[params]) (*platformParams, error) {
	p := &platformParams{
		gpuScale: r.Float("gpu_only_scale", 0.8),
		labels:   [3]string{"platform/ua", "gpu/platform", "gpu/ua"},
	}
	index := map[string]int{}
	family := func(name string) int {
		if i, ok := index[name]; ok {
			return i
		}
		index[name] = len(p.families)
		p.families = append(p.families, name)
		return len(p.families) - 1
	}
	markers := func(name string) (osMarkers, error) {
		var out osMarkers
		var list []string
		for _, s := range r.Strings(name, nil) {
			f, m, ok := strings.Cut(s, ":")
			if !ok || f == "" || m == "" {
				return out, fmt.Errorf("params.%s: %q: want family:marker", name, s)
			}
			list = append(list, m)
			out.family = append(out.family, family(f))
		}
		if len(list) == 0 {
			return out, fmt.Errorf("params.%s: want a non-empty list of family:marker", name)
		}
		out.set = newMarkerSet(list)
		return out, nil
	}
	type pair struct{ a, b int }
	pairs := func(name string) ([]pair, error) {
		var out []pair
		for _, s := range r.Strings(name, nil) {
			a, b, ok := strings.Cut(s, ":")
			if !ok || a == "" || b == "" {
				return nil, fmt.Errorf("params.%s: %q: want family:family", name, s)
			}
			out = append(out, pair{family(a), family(b)})
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("params.%s: want a non-empty list of family:family", name)
		}
		return out, nil
	}
	var err error
	if p.platformOS, err = markers("platform_os"); err != nil {
		return nil, err
	}
	if p.uaOS, err = markers("ua_os"); err != nil {
		return nil, err
	}
	if p.gpuOS, err = markers("gpu_os"); err != nil {
		return nil, err
	}
	compatible, err := pairs("compatible")
	if err != nil {
		return nil, err
	}
	gpuCompat, err := pairs("gpu_compatible")
	if err != nil {
		return nil, err
	}
	n := len(p.families)
	p.compatible, p.gpuCompat = matrix(n), matrix(n)
	for _, c := range compatible {
		p.compatible[c.a][c.b] = true
	}
	for _, c := range gpuCompat {
		p.gpuCompat[c.a][c.b] = true
	}
	if !(p.gpuScale >= 0 && p.gpuScale <= 1) {
		return nil, fmt.Errorf("gpu_only_scale must be in [0, 1], got %v", p.gpuScale)
	}
	return p, nil
}

func matrix(n int) [][]bool {
	m := make([][]bool, n)
	for i := range m {
		m[i] = make([]bool, n)
	}
	return m
}

func (p *platformParams) name(f int) string {
	if f < 0 {
		return "unknown"
	}
	return p.families[f]
}

func (p *platformParams) tag(v *view, rule int, out *sdk.Drafts) {
	pf := p.platformOS.detect(v.platform)
	uf := p.uaOS.detect(v.ua)
	gf := p.gpuOS.detect(v.renderer)
	mm := mismatchBuf[:0]
	if pf >= 0 && uf >= 0 && !p.compatible[pf][uf] {
		mm = append(mm, p.labels[0])
	}
	if gf >= 0 && pf >= 0 && !p.gpuCompat[gf][pf] {
		mm = append(mm, p.labels[1])
	}
	if gf >= 0 && uf >= 0 && !p.gpuCompat[gf][uf] {
		mm = append(mm, p.labels[2])
	}
	if len(mm) == 0 {
		return
	}
	scale := p.gpuScale
	if mm[0] == p.labels[0] {
		scale = 1
	}
	out.Add(rule, 0, scale).Strings(kMismatches, mm).
		String(kPlatformOS, p.name(pf)).String(kUAOS, p.name(uf)).String(kGPUOS, p.name(gf))
}

// ---- helpers ----

// markerSet is a list of substrings, of which first finds the first listed that occurs in a
// string. (Measured: one strings.Contains per marker beats a hand-written single pass in
// WebAssembly, where IndexByte is the runtime's assembly and a Go byte loop pays bounds checks.)
type markerSet struct {
	markers []string
}

// newMarkerSet wraps markers, none of which may be empty.
func newMarkerSet(markers []string) *markerSet { return &markerSet{markers: markers} }

// first returns the index of the first listed marker that occurs in s, -1 when none does (or s
// is empty).
func (m *markerSet) first(s string) int {
	if s == "" {
		return -1
	}
	for i, x := range m.markers {
		if strings.Contains(s, x) {
			return i
		}
	}
	return -1
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

func labels(prefix string, list []string) []string {
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = prefix + s
	}
	return out
}

func nonEmpty(name string, list []string) error {
	for _, s := range list {
		if s == "" {
			return fmt.Errorf("params.%s: an empty marker matches everything", name)
		}
	}
	return nil
}

func isHexDigest(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// table reads param name as a table of string lists: a block of lines "KEY value value ..."
// (blank lines and lines starting with # ignored), or a mapping of string lists. An absent
// param is an empty table.
func table(r *sdk.Rule[params], name string) (map[string][]string, error) {
	v, ok := r.Value(name)
	if !ok {
		return map[string][]string{}, nil
	}
	if text, ok := v.(string); ok {
		return parseTable("params."+name, text)
	}
	return stringListMap(r, name)
}

// parseTable reads a block of lines "KEY value value ...".
func parseTable(name, text string) (map[string][]string, error) {
	out := map[string][]string{}
	for n, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		if len(f) < 2 {
			return nil, fmt.Errorf("%s: line %d: want KEY followed by values, got %q", name, n+1, line)
		}
		if _, dup := out[f[0]]; dup {
			return nil, fmt.Errorf("%s: line %d: %s listed twice", name, n+1, f[0])
		}
		out[f[0]] = f[1:]
	}
	return out, nil
}

// stringListMap reads param name as a mapping of string lists ({puppeteer: [..], ...}); an
// absent param is an empty map.
func stringListMap(r *sdk.Rule[params], name string) (map[string][]string, error) {
	v, ok := r.Value(name)
	if !ok {
		return map[string][]string{}, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("params.%s: want a mapping of string lists", name)
	}
	out := make(map[string][]string, len(m))
	for k, lv := range m {
		list, ok := lv.([]any)
		if !ok {
			return nil, fmt.Errorf("params.%s.%s: want a list of strings", name, k)
		}
		for _, e := range list {
			s, ok := e.(string)
			if !ok || s == "" {
				return nil, fmt.Errorf("params.%s.%s: want a list of non-empty strings", name, k)
			}
			out[k] = append(out[k], s)
		}
	}
	return out, nil
}
