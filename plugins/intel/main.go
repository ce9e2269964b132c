// Command intel is the lifter of threat-intelligence verdicts on a source address (source kind
// intel, rules R0054-R0058). An enrichment producer asks AbuseIPDB, GreyNoise, Feodo Tracker
// and ThreatFox about an address and stores each answer as the provider returned it
// (abi/EVENTS.md, "intel"); a provider that was not asked, failed or is null is absent, and
// yields no tag and no error.
//
//   - lifter:intel_abuseipdb: the AbuseIPDB check's report categories (the flat
//     payload.abuseipdb_categories, since the record cannot nest lists) fanned out to techniques
//     through params.category_emits, one draft per emits entry, scaled by
//     abuseConfidenceScore/100;
//   - lifter:intel_greynoise: GreyNoise classifies the address as malicious (or sees it
//     scanning the internet with an unknown intent), unless it is a known business service;
//   - lifter:intel_feodo: the address is a botnet C2 server on the Feodo Tracker blocklist;
//   - lifter:intel_threatfox: ThreatFox IOCs for the address, per threat type, scaled by their
//     confidence_level/100;
//   - lifter:intel_agreement: two or more providers agree the address is malicious: its own tag,
//     with confidence min(1, highest provider confidence + params.bump), so that it can be
//     disabled or clipped like any rule.
//
// Each answer is read in every shape producers store it (read.go; abi/EVENTS.md, "Accepted
// shapes"): AbuseIPDB's data object or whole response, GreyNoise's community, enterprise v2 and
// v3 answers alone or in a GNQL list, ThreatFox's data list or whole response, Feodo Tracker's
// entry or list in JSON or CSV names, with numbers and booleans also as strings. An answer about
// another address than payload.ip (a stale or misfiled cache entry) is ignored.
// Evidence carries provider names, scores, category numbers and malware family names, never a
// report comment.
package main

import (
	"fmt"
	"math"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/decnet/ttp/abi"
	"github.com/decnet/ttp/sdk"
)

var (
	manifest = sdk.NewManifest("intel", "1.1.0", "lifter:intel_")

	intel = manifest.Source(abi.KindIntel)
	fIP   = intel.Field("payload.ip")

	// AbuseIPDB: the check's data object (abuseipdb.X), or the whole response (abuseipdb.data.X).
	abuseIP          = alt("payload.abuseipdb", "ipAddress")
	abuseScore       = alt("payload.abuseipdb", "abuseConfidenceScore")
	abuseWhitelisted = alt("payload.abuseipdb", "isWhitelisted")
	abuseReports     = alt("payload.abuseipdb", "totalReports")
	abuseUsers       = alt("payload.abuseipdb", "numDistinctUsers")
	fAbuseCategories = intel.Field("payload.abuseipdb_categories")

	// GreyNoise: community (/v3/community), enterprise v2 context (seen, actor), v3 IP lookup
	// (internet_scanner_intelligence, business_service_intelligence), each as one object or as
	// the data list of a GNQL or multi answer.
	gnOne  = greyFields("payload.greynoise.")
	gnList = greyFields("payload.greynoise.data[].")

	// Feodo Tracker: one blocklist entry, or a list of entries; JSON names or the CSV's.
	feodoOne  = feodoFields("payload.feodo.")
	feodoList = feodoFields("payload.feodo[].")

	// ThreatFox: the search_ioc data list, the whole response (threatfox.data[]), or one IOC
	// object (a producer that keeps only the match).
	foxList = foxFields("payload.threatfox[].")
	foxData = foxFields("payload.threatfox.data[].")
	foxOne  = foxFields("payload.threatfox.")

	kProvider       = manifest.Evidence("provider")
	kScore          = manifest.Evidence("abuse_confidence_score")
	kCategories     = manifest.Evidence("categories")
	kTotalReports   = manifest.Evidence("total_reports")
	kDistinctUsers  = manifest.Evidence("distinct_users")
	kClassification = manifest.Evidence("classification")
	kNoise          = manifest.Evidence("noise")
	kActor          = manifest.Evidence("actor")
	kMalware        = manifest.Evidence("malware")
	kStatus         = manifest.Evidence("status")
	kPort           = manifest.Evidence("port")
	kThreatType     = manifest.Evidence("threat_type")
	kFamilies       = manifest.Evidence("malware_families")
	kConfidence     = manifest.Evidence("confidence_level")
	kIOCCount       = manifest.Evidence("ioc_count")
	kProviders      = manifest.Evidence("providers")
	kProviderCount  = manifest.Evidence("provider_count")
	kHighest        = manifest.Evidence("highest_confidence")
)

// alt declares a provider member under both of the places a producer stores it: the object
// at base, or base's "data" object (the provider's whole response, envelope kept).
func alt(base, name string) [2]sdk.Field {
	return [2]sdk.Field{intel.Field(base + "." + name), intel.Field(base + ".data." + name)}
}

// greyFieldSet are the members of one GreyNoise answer shape, at one prefix.
type greyFieldSet struct {
	ip, class, noise, seen, riot, name, actor  sdk.Field
	v3Class, v3Found, v3Actor, v3BusinessFound sdk.Field
}

func greyFields(prefix string) greyFieldSet {
	isi, bsi := prefix+"internet_scanner_intelligence.", prefix+"business_service_intelligence."
	return greyFieldSet{
		ip:              intel.Field(prefix + "ip"),
		class:           intel.Field(prefix + "classification"),
		noise:           intel.Field(prefix + "noise"),
		seen:            intel.Field(prefix + "seen"),
		riot:            intel.Field(prefix + "riot"),
		name:            intel.Field(prefix + "name"),
		actor:           intel.Field(prefix + "actor"),
		v3Class:         intel.Field(isi + "classification"),
		v3Found:         intel.Field(isi + "found"),
		v3Actor:         intel.Field(isi + "actor"),
		v3BusinessFound: intel.Field(bsi + "found"),
	}
}

// feodoFieldSet are the members of a Feodo Tracker entry at one prefix; the second of each
// pair is the CSV export's column name (dst_ip, dst_port, c2_status).
type feodoFieldSet struct {
	ip, port, status [2]sdk.Field
	malware          sdk.Field
}

func feodoFields(prefix string) feodoFieldSet {
	two := func(a, b string) [2]sdk.Field { return [2]sdk.Field{intel.Field(prefix + a), intel.Field(prefix + b)} }
	return feodoFieldSet{
		ip:      two("ip_address", "dst_ip"),
		port:    two("port", "dst_port"),
		status:  two("status", "c2_status"),
		malware: intel.Field(prefix + "malware"),
	}
}

// foxFieldSet are the members of the ThreatFox IOCs at one prefix.
type foxFieldSet struct {
	ioc, iocType, threatType, malware, malwareName, confidence sdk.Field
}

func foxFields(prefix string) foxFieldSet {
	return foxFieldSet{
		ioc:         intel.Field(prefix + "ioc"),
		iocType:     intel.Field(prefix + "ioc_type"),
		threatType:  intel.Field(prefix + "threat_type"),
		malware:     intel.Field(prefix + "malware_printable"),
		malwareName: intel.Field(prefix + "malware"),
		confidence:  intel.Field(prefix + "confidence_level"),
	}
}

// The rule kinds the lifter knows.
const (
	kindAbuse     = "lifter:intel_abuseipdb"
	kindGrey      = "lifter:intel_greynoise"
	kindFeodo     = "lifter:intel_feodo"
	kindFox       = "lifter:intel_threatfox"
	kindAgreement = "lifter:intel_agreement"
)

// Provider names, as evidence carries them.
const (
	provAbuse = "abuseipdb"
	provGrey  = "greynoise"
	provFeodo = "feodo"
	provFox   = "threatfox"
)

// params is one rule's reading of its match.params: exactly one pointer is set, the one of the
// rule's kind.
type params struct {
	abuse     *abuseParams
	grey      *greyParams
	feodo     *feodoParams
	fox       *foxParams
	agreement *agreementParams
}

type intelLifter struct{}

func (intelLifter) Manifest() *sdk.Manifest { return manifest }

func (intelLifter) Configure(r *sdk.Rule[params]) error {
	var err error
	switch r.Kind {
	case kindAbuse:
		r.Params.abuse, err = configureAbuse(r)
	case kindGrey:
		r.Params.grey, err = configureGrey(r)
	case kindFeodo:
		r.Params.feodo, err = configureFeodo(r)
	case kindFox:
		r.Params.fox, err = configureFox(r)
	case kindAgreement:
		r.Params.agreement, err = configureAgreement(r)
	default:
		return fmt.Errorf("unknown rule kind %q (this lifter knows %s, %s, %s, %s, %s)",
			r.Kind, kindAbuse, kindGrey, kindFeodo, kindFox, kindAgreement)
	}
	return err
}

func (intelLifter) Tag(ev *sdk.Event, rules []*sdk.Rule[params], out *sdk.Drafts) {
	v := read(ev)
	for _, r := range rules {
		switch p := r.Params; {
		case p.abuse != nil:
			p.abuse.tag(v, r.Index, out)
		case p.grey != nil:
			p.grey.tag(v, r.Index, out)
		case p.feodo != nil:
			p.feodo.tag(v, r.Index, out)
		case p.fox != nil:
			p.fox.tag(v, r.Index, out)
		case p.agreement != nil:
			p.agreement.tag(v, r.Index, out)
		}
	}
}

func init() { sdk.Register(intelLifter{}) }

func main() {}

// ---- R0054: AbuseIPDB ----

type abuseParams struct {
	minScore        int64
	skipWhitelisted bool
	emitOf          []int    // by category id: emits index, -1 when the category maps to none
	label           []string // by category id: its decimal form, for evidence
	emits           int
}

func configureAbuse(r *sdk.Rule[params]) (*abuseParams, error) {
	p := &abuseParams{
		minScore:        r.Int("min_score", 25),
		skipWhitelisted: r.Bool("skip_whitelisted", true),
		emits:           len(r.Emits),
	}
	if p.minScore < 0 || p.minScore > 100 {
		return nil, fmt.Errorf("min_score must be in 0..100, got %d", p.minScore)
	}
	m, err := stringMap(r, "category_emits")
	if err != nil {
		return nil, err
	}
	if len(m) == 0 {
		return nil, fmt.Errorf("params.category_emits: want at least one category: emits entry")
	}
	for k, v := range m {
		c, err := strconv.Atoi(k)
		if err != nil || c < 1 || c > maxCategory || strconv.Itoa(c) != k {
			return nil, fmt.Errorf("params.category_emits: %q is not an AbuseIPDB category id (an integer in 1..%d)", k, maxCategory)
		}
		e, err := emitIndex(r, v)
		if err != nil {
			return nil, fmt.Errorf("params.category_emits.%s: %w", k, err)
		}
		for len(p.emitOf) <= c {
			p.emitOf, p.label = append(p.emitOf, -1), append(p.label, "")
		}
		p.emitOf[c], p.label[c] = e, k
	}
	return p, nil
}

// maxCategory bounds the category ids a rule may map (AbuseIPDB's go to 23).
const maxCategory = 255

// catBuf holds the category labels of one draft and emitBuf the emits index of each reported
// category; nothing in them survives the call.
var (
	catBuf  = make([]string, 0, 24)
	emitBuf = make([]int, 0, 24)
)

func (p *abuseParams) tag(v *view, rule int, out *sdk.Drafts) {
	a := &v.abuse
	if !a.present || a.score < p.minScore || (a.whitelisted && p.skipWhitelisted) {
		return
	}
	scale := clamp01(float64(a.score) / 100)
	// The emits index of each reported category (-1: unmapped, NaN, fractional, out of range).
	emitsOf := emitBuf[:0]
	mapped := false
	for _, f := range v.cats {
		e := -1
		if c := int(f); float64(c) == f && c >= 0 && c < len(p.emitOf) {
			e = p.emitOf[c]
		}
		emitsOf = append(emitsOf, e)
		mapped = mapped || e >= 0
	}
	emitBuf = emitsOf[:0]
	if !mapped {
		return
	}
	for e := 0; e < p.emits; e++ {
		cats := catBuf[:0]
		for j, ej := range emitsOf {
			if ej == e {
				if l := p.label[int(v.cats[j])]; !slices.Contains(cats, l) {
					cats = append(cats, l)
				}
			}
		}
		catBuf = cats[:0]
		if len(cats) == 0 {
			continue
		}
		d := out.Add(rule, e, scale).String(kProvider, provAbuse).Int(kScore, a.score).Strings(kCategories, cats)
		if a.reportsOK {
			d.Int(kTotalReports, a.reports)
		}
		if a.usersOK {
			d.Int(kDistinctUsers, a.users)
		}
	}
}

// ---- R0055: GreyNoise ----

type greyParams struct {
	skipRiot        bool
	quietScale      float64 // malicious but not seen scanning
	unknownScale    float64 // unknown intent, seen scanning; 0 disables
	suspiciousScale float64 // suspicious (GreyNoise v3), seen scanning; 0 disables
}

func configureGrey(r *sdk.Rule[params]) (*greyParams, error) {
	p := &greyParams{
		skipRiot:        r.Bool("skip_riot", true),
		quietScale:      r.Float("quiet_scale", 0.7),
		unknownScale:    r.Float("unknown_noise_scale", 0.5),
		suspiciousScale: r.Float("suspicious_noise_scale", 0.6),
	}
	return p, scales(map[string]float64{"quiet_scale": p.quietScale, "unknown_noise_scale": p.unknownScale,
		"suspicious_noise_scale": p.suspiciousScale})
}

func (p *greyParams) tag(v *view, rule int, out *sdk.Drafts) {
	g := &v.grey
	if !g.present || (g.riot && p.skipRiot) {
		return
	}
	var scale float64
	switch {
	case g.class == classMalicious && g.noise:
		scale = 1
	case g.class == classMalicious:
		scale = p.quietScale
	case g.class == classSuspicious && g.noise:
		scale = p.suspiciousScale
	case g.class == classUnknown && g.noise:
		scale = p.unknownScale
	}
	if scale == 0 {
		return
	}
	d := out.Add(rule, 0, scale).String(kProvider, provGrey).String(kClassification, g.class).Bool(kNoise, g.noise)
	if g.actor != "" {
		d.String(kActor, g.actor)
	}
}

// ---- R0056: Feodo Tracker ----

type feodoParams struct {
	offlineScale float64
}

func configureFeodo(r *sdk.Rule[params]) (*feodoParams, error) {
	p := &feodoParams{offlineScale: r.Float("offline_scale", 0.7)}
	return p, scales(map[string]float64{"offline_scale": p.offlineScale})
}

func (p *feodoParams) tag(v *view, rule int, out *sdk.Drafts) {
	f := &v.feodo
	if !f.listed {
		return
	}
	scale := p.offlineScale
	if f.online {
		scale = 1
	}
	if scale == 0 {
		return
	}
	d := out.Add(rule, 0, scale).String(kProvider, provFeodo)
	if f.malware != "" {
		d.String(kMalware, f.malware)
	}
	if f.status != "" {
		d.String(kStatus, f.status)
	}
	if f.portOK {
		d.Int(kPort, f.port)
	}
}

// ---- R0057: ThreatFox ----

type foxParams struct {
	emitOf        map[string]int // threat_type -> emits index
	iocTypes      []string
	minConfidence float64
	emits         int
}

func configureFox(r *sdk.Rule[params]) (*foxParams, error) {
	p := &foxParams{
		emitOf:        map[string]int{},
		iocTypes:      r.Strings("ioc_types", []string{"ip:port"}),
		minConfidence: float64(r.Int("min_confidence", 50)),
		emits:         len(r.Emits),
	}
	if p.minConfidence < 0 || p.minConfidence > 100 {
		return nil, fmt.Errorf("min_confidence must be in 0..100, got %v", p.minConfidence)
	}
	m, err := stringMap(r, "threat_type_emits")
	if err != nil {
		return nil, err
	}
	if len(m) == 0 {
		return nil, fmt.Errorf("params.threat_type_emits: want at least one threat_type: emits entry")
	}
	for k, v := range m {
		e, err := emitIndex(r, v)
		if err != nil {
			return nil, fmt.Errorf("params.threat_type_emits.%s: %w", k, err)
		}
		p.emitOf[k] = e
	}
	return p, nil
}

// famBuf holds one draft's families; nothing survives the call.
var famBuf = make([]string, 0, 8)

// about reports whether IOC ioc ("203.0.113.77:443", "[2001:db8::1]:443") names address ip;
// an unknown side agrees.
func about(ioc, ip string) bool {
	if ioc == "" || ip == "" {
		return true
	}
	if host, ok := strings.CutPrefix(ioc, "["); ok {
		if i := strings.IndexByte(host, ']'); i >= 0 {
			return sameIP(ip, host[:i])
		}
	}
	host := ioc
	if strings.Count(ioc, ":") == 1 {
		host = ioc[:strings.IndexByte(ioc, ':')]
	}
	return sameIP(ip, host)
}

func (p *foxParams) tag(v *view, rule int, out *sdk.Drafts) {
	es, ip := v.fox, v.ip
	if len(es) == 0 {
		return
	}
	for e := 0; e < p.emits; e++ {
		fams := famBuf[:0]
		best, count, threat := -1.0, 0, ""
		for _, x := range es {
			ei, ok := p.emitOf[x.threatType]
			if !ok || ei != e || !(x.confidence >= p.minConfidence) || !slices.Contains(p.iocTypes, x.iocType) || !about(x.ioc, ip) {
				continue
			}
			count++
			if x.confidence > best {
				best, threat = x.confidence, x.threatType
			}
			if x.malware != "" && !slices.Contains(fams, x.malware) {
				fams = append(fams, x.malware)
			}
		}
		famBuf = fams[:0]
		if count == 0 {
			continue
		}
		d := out.Add(rule, e, clamp01(best/100)).String(kProvider, provFox).String(kThreatType, threat).
			Number(kConfidence, best).Int(kIOCCount, int64(count))
		if len(fams) > 0 {
			d.Strings(kFamilies, fams)
		}
	}
}

// ---- R0058: agreement across providers ----

type agreementParams struct {
	minProviders     int
	bump             float64
	abuseMinScore    int64
	skipWhitelisted  bool
	greyConfidence   float64
	feodoOnline      float64
	feodoOffline     float64
	foxMinConfidence float64
	providerNames    [4]string
}

func configureAgreement(r *sdk.Rule[params]) (*agreementParams, error) {
	p := &agreementParams{
		minProviders:     int(r.Int("min_providers", 2)),
		bump:             r.Float("bump", 0.1),
		abuseMinScore:    r.Int("abuseipdb_min_score", 50),
		skipWhitelisted:  r.Bool("skip_whitelisted", true),
		greyConfidence:   r.Float("greynoise_confidence", 0.8),
		feodoOnline:      r.Float("feodo_online_confidence", 0.95),
		feodoOffline:     r.Float("feodo_offline_confidence", 0.7),
		foxMinConfidence: float64(r.Int("threatfox_min_confidence", 50)),
		providerNames:    [4]string{provAbuse, provGrey, provFeodo, provFox},
	}
	switch {
	case p.minProviders < 2 || p.minProviders > 4:
		return nil, fmt.Errorf("min_providers must be in 2..4 (agreement needs two providers; there are four), got %d", p.minProviders)
	case p.abuseMinScore < 0 || p.abuseMinScore > 100:
		return nil, fmt.Errorf("abuseipdb_min_score must be in 0..100, got %d", p.abuseMinScore)
	case p.foxMinConfidence < 0 || p.foxMinConfidence > 100:
		return nil, fmt.Errorf("threatfox_min_confidence must be in 0..100, got %v", p.foxMinConfidence)
	}
	return p, scales(map[string]float64{"bump": p.bump, "greynoise_confidence": p.greyConfidence,
		"feodo_online_confidence": p.feodoOnline, "feodo_offline_confidence": p.feodoOffline})
}

// provBuf holds the agreeing providers of one draft; nothing in it survives the call.
var provBuf = make([]string, 0, 4)

func (p *agreementParams) tag(v *view, rule int, out *sdk.Drafts) {
	var conf [4]float64 // per provider, 0 when it does not call the address malicious
	if a := &v.abuse; a.present && a.score >= p.abuseMinScore && !(a.whitelisted && p.skipWhitelisted) {
		conf[0] = clamp01(float64(a.score) / 100)
	}
	if g := &v.grey; g.present && g.class == classMalicious && !g.riot {
		conf[1] = p.greyConfidence
	}
	if f := &v.feodo; f.listed {
		conf[2] = p.feodoOffline
		if f.online {
			conf[2] = p.feodoOnline
		}
	}
	for _, x := range v.fox {
		if x.confidence >= p.foxMinConfidence && about(x.ioc, v.ip) {
			conf[3] = math.Max(conf[3], clamp01(x.confidence/100))
		}
	}
	provs, highest := provBuf[:0], 0.0
	for i, c := range conf {
		if c > 0 {
			provs = append(provs, p.providerNames[i])
			highest = math.Max(highest, c)
		}
	}
	provBuf = provs[:0]
	if len(provs) < p.minProviders {
		return
	}
	out.Add(rule, 0, math.Min(1, highest+p.bump)).Strings(kProviders, provs).
		Int(kProviderCount, int64(len(provs))).Number(kHighest, highest)
}

// ---- helpers ----

// sameIP reports whether two spellings name one address; an unknown side ("") agrees, so a
// provider answer without its own address field is taken as being about payload.ip.
func sameIP(a, b string) bool {
	if a == "" || b == "" || a == b {
		return true
	}
	x, err1 := netip.ParseAddr(a)
	y, err2 := netip.ParseAddr(b)
	if err1 != nil || err2 != nil {
		return false
	}
	return x.Unmap() == y.Unmap()
}

func clamp01(f float64) float64 {
	switch {
	case !(f > 0):
		return 0
	case f > 1:
		return 1
	}
	return f
}

// scales checks that every named value is in [0, 1], naming the first that is not (in name
// order, so the message is stable).
func scales(m map[string]float64) error {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if v := m[n]; !(v >= 0 && v <= 1) {
			return fmt.Errorf("%s must be in [0, 1], got %v", n, v)
		}
	}
	return nil
}

// emitIndex resolves an emits reference: a sub_technique_id or technique_id of the rule's
// emits, optionally followed by @tactic when the technique is emitted for several tactics.
func emitIndex(r *sdk.Rule[params], ref string) (int, error) {
	id, tactic, _ := strings.Cut(ref, "@")
	found := -1
	for i, e := range r.Emits {
		if e.SubTechniqueID != id && !(e.TechniqueID == id && e.SubTechniqueID == "") {
			continue
		}
		if tactic != "" && e.Tactic != tactic {
			continue
		}
		if found >= 0 {
			return 0, fmt.Errorf("%q names emits entries %d and %d: add @tactic", ref, found, i)
		}
		found = i
	}
	if found < 0 {
		return 0, fmt.Errorf("%q names no emits entry of the rule", ref)
	}
	return found, nil
}

// stringMap reads param name as a mapping of strings; an absent param is an empty map.
func stringMap(r *sdk.Rule[params], name string) (map[string]string, error) {
	v, ok := r.Value(name)
	if !ok {
		return map[string]string{}, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("params.%s: want a mapping of strings", name)
	}
	out := make(map[string]string, len(m))
	for k, x := range m {
		s, ok := x.(string)
		if !ok || s == "" {
			return nil, fmt.Errorf("params.%s.%s: want a non-empty string", name, k)
		}
		out[k] = s
	}
	return out, nil
}
