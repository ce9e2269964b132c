// Command email is the ttp lifter for messages a decoy mail server accepted (source kind
// email, abi/EVENTS.md). It owns the rules whose match.kind starts with lifter:email_
// (R0041-R0048):
//
//	lifter:email_open_relay            R0041 many recipients outside the decoy's domains, foreign From
//	lifter:email_mass_phishing         R0042 many recipients and a body seen many times (simhash)
//	lifter:email_kit_mailer            R0043 phishing-kit or mass-mailer X-Mailer, PHP script headers
//	lifter:email_idn_url               R0044 URL host whose IDN label mixes scripts (homograph)
//	lifter:email_sender_masquerade     R0045 From disagrees with Return-Path, DKIM, SPF or display name
//	lifter:email_malicious_attachment  R0046 macro document, shortcut, disk image... or a listed sha256
//	lifter:email_bec                   R0047 urgent-payment subject and body (business email compromise)
//	lifter:email_encoded_payload       R0048 long base64 or hex run in the body
//
// Every threshold and list is a rule param. Evidence never carries a raw address, a header
// value, the subject, the body, a full URL or anything decoded from the body: only
// body_sha256, counts, domains (of recipients, of the sender, of URL hosts), header names,
// attachment sha256s and discriminators taken from the rule's own params (the matched kit,
// keyword or extension) or from fixed vocabularies (script names, DKIM/SPF results).
//
// Built with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o plugins/email.wasm ./plugins/email
package main

import (
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"strings"
	"unicode"

	"github.com/decnet/ttp/abi"
	"github.com/decnet/ttp/sdk"
)

var (
	manifest = sdk.NewManifest("email", "1.0.0", "lifter:email_").HostFunctions()

	mail        = manifest.Source(abi.KindEmail)
	fFrom       = mail.Field("payload.from")
	fReturnPath = mail.Field("payload.return_path")
	fRcpt       = mail.Field("payload.rcpt")
	fSubject    = mail.Field("payload.subject")
	fHeaders    = mail.Field("payload.headers.*")
	fBody       = mail.Field("payload.body_text")
	fBodySHA    = mail.Field("payload.body_sha256")
	fSeen       = mail.Field("payload.simhash_seen_count")
	fURLs       = mail.Field("payload.urls")
	fAttName    = mail.Field("payload.attachments[].filename")
	fAttType    = mail.Field("payload.attachments[].content_type")
	fAttSHA     = mail.Field("payload.attachments[].sha256")
	fDKIM       = mail.Field("payload.dkim")
	fSPF        = mail.Field("payload.spf")

	kBodySHA       = manifest.Evidence("body_sha256")
	kRcptCount     = manifest.Evidence("rcpt_count")
	kRcptDomains   = manifest.Evidence("rcpt_domains")
	kRelayedCount  = manifest.Evidence("relayed_count")
	kFromDomain    = manifest.Evidence("from_domain")
	kSeenCount     = manifest.Evidence("simhash_seen_count")
	kMailerKit     = manifest.Evidence("mailer_kit")
	kHeaderNames   = manifest.Evidence("header_names")
	kURLHosts      = manifest.Evidence("url_hosts")
	kScripts       = manifest.Evidence("scripts")
	kReturnDomain  = manifest.Evidence("return_path_domain")
	kDisplayDomain = manifest.Evidence("display_domain")
	kDKIM          = manifest.Evidence("dkim")
	kSPF           = manifest.Evidence("spf")
	kMasquerade    = manifest.Evidence("masquerade")
	kAttSHAs       = manifest.Evidence("attachment_sha256s")
	kAttMatch      = manifest.Evidence("attachment_match")
	kKeywords      = manifest.Evidence("keywords")
	kEncoding      = manifest.Evidence("encoding")
	kRunLength     = manifest.Evidence("run_length")
)

// maxList caps every list an evidence entry carries (distinct domains, hosts, hashes).
const maxList = 20

// maxKeywords caps each keyword list of a BEC rule.
const maxKeywords = 1000

// ruleKind is what a rule's match.kind asks the lifter to look for.
type ruleKind int

const (
	kindOpenRelay ruleKind = iota + 1
	kindMassPhishing
	kindKitMailer
	kindIDNURL
	kindMasquerade
	kindAttachment
	kindBEC
	kindEncoded
)

var ruleKinds = map[string]ruleKind{
	"lifter:email_open_relay":           kindOpenRelay,
	"lifter:email_mass_phishing":        kindMassPhishing,
	"lifter:email_kit_mailer":           kindKitMailer,
	"lifter:email_idn_url":              kindIDNURL,
	"lifter:email_sender_masquerade":    kindMasquerade,
	"lifter:email_malicious_attachment": kindAttachment,
	"lifter:email_bec":                  kindBEC,
	"lifter:email_encoded_payload":      kindEncoded,
}

// params is one rule's reading of its match.params; only the members of its kind are set.
type params struct {
	kind ruleKind

	// open relay, mass phishing
	minRecipients int64
	decoyDomains  []string // lower case
	minSeen       int64
	bulkHeaders   []string // lower case

	// kit mailer
	mailerHeaders []string // lower case
	mailerKits    []string // as written, longest first
	kitHost       []bool   // aligned with mailerKits: the host can look for it (kitByHost)
	scriptHeaders []string // lower case

	// IDN URL
	scripts     []*unicode.RangeTable
	scriptNames []string // lower case, aligned with scripts

	// masquerade
	spfFail  []string
	dkimFail []string

	// attachment
	extensions   []string // lower case, with the dot
	contentTypes []string // lower case
	sha256s      []string // lower case

	// BEC
	subjectKeywords *kwSet
	bodyKeywords    *kwSet
	minBodyKeywords int64

	// encoded payload
	minBase64 int64
	minHex    int64
	skipArmor bool
}

// lifter keeps scratch slices reused across calls so that a call allocates little; each is
// reset before use and read only within the call that filled it, so answers never depend on
// earlier events.
type lifter struct {
	list    []string
	list2   []string
	runes   []rune
	scratch []byte
	found   []bool

	// The event's recipients, their domains ("" when unparsable) and headers, read once per
	// call (they alias the record).
	rcpt, rcptDom    []string
	hdrKeys, hdrVals []string

	// body_sha256 lower-cased ("" when not a SHA-256), read on the event's first draft
	sha     string
	shaRead bool
	shaBuf  []byte
	attBuf  []byte // the attachments' sha256s, lower-cased

	from     string // addrDomain of payload.from, read by the first rule that needs it
	fromRead bool
	domBuf   []byte // the event's lower-cased address domains
}

// fromDomain returns addrDomain of the event's From, computed once per event.
func (l *lifter) fromDomain(ev *sdk.Event) string {
	if !l.fromRead {
		l.from, l.fromRead = addrDomainInto(&l.domBuf, ev.String(fFrom)), true
	}
	return l.from
}

func (*lifter) Manifest() *sdk.Manifest { return manifest }

var (
	spfResults  = []string{"pass", "fail", "softfail", "neutral", "none", "temperror", "permerror"}
	dkimResults = []string{"pass", "fail", "none", "neutral", "policy", "temperror", "permerror"}
)

// Configure reads one rule's params by its kind (the read* functions below) and reports
// every problem found together, so an author fixes a rule in one pass.
func (*lifter) Configure(r *sdk.Rule[params]) error {
	kind, ok := ruleKinds[r.Kind]
	if !ok {
		known := make([]string, 0, len(ruleKinds))
		for k := range ruleKinds {
			known = append(known, k)
		}
		slices.Sort(known)
		return fmt.Errorf("match.kind %q is not one of %s", r.Kind, strings.Join(known, ", "))
	}
	p := &r.Params
	p.kind = kind
	var e problems
	switch kind {
	case kindOpenRelay:
		readOpenRelay(r, p, &e)
	case kindMassPhishing:
		readMassPhishing(r, p, &e)
	case kindKitMailer:
		readKitMailer(r, p, &e)
	case kindIDNURL:
		readIDNURL(r, p, &e)
	case kindMasquerade:
		readMasquerade(r, p, &e)
	case kindAttachment:
		readAttachment(r, p, &e)
	case kindBEC:
		readBEC(r, p, &e)
	case kindEncoded:
		readEncoded(r, p, &e)
	}
	return errors.Join(e...)
}

// problems collects what is wrong with one rule's params.
type problems []error

func (e *problems) add(err error) { *e = append(*e, err) }

func (e *problems) positive(name string, v int64) {
	if v < 1 {
		e.add(fmt.Errorf("params.%s must be at least 1, got %d", name, v))
	}
}

func readOpenRelay(r *sdk.Rule[params], p *params, e *problems) {
	p.minRecipients = r.Int("min_recipients", 5)
	e.positive("min_recipients", p.minRecipients)
	p.decoyDomains = lowerList(r.Strings("decoy_domains", nil))
	if len(p.decoyDomains) == 0 {
		e.add(errors.New("params.decoy_domains must list the decoy's own mail domains"))
	}
	for _, d := range p.decoyDomains {
		if !validHost(d) {
			e.add(fmt.Errorf("params.decoy_domains: %q is not a domain name", d))
		}
	}
}

func readMassPhishing(r *sdk.Rule[params], p *params, e *problems) {
	p.minRecipients = r.Int("min_recipients", 3)
	e.positive("min_recipients", p.minRecipients)
	p.minSeen = r.Int("min_seen_count", 20)
	e.positive("min_seen_count", p.minSeen)
	p.bulkHeaders = lowerList(r.Strings("signed_bulk_headers", nil))
}

func readKitMailer(r *sdk.Rule[params], p *params, e *problems) {
	p.mailerHeaders = lowerList(r.Strings("mailer_headers", []string{"x-mailer"}))
	p.mailerKits = slices.Clone(r.Strings("mailer_kits", nil))
	p.scriptHeaders = lowerList(r.Strings("script_headers", nil))
	if len(p.mailerKits) == 0 && len(p.scriptHeaders) == 0 {
		e.add(errors.New("params: set mailer_kits or script_headers (or both)"))
	}
	if len(p.mailerKits) > 0 && len(p.mailerHeaders) == 0 {
		e.add(errors.New("params.mailer_headers must name at least one header when mailer_kits is set"))
	}
	for _, k := range p.mailerKits {
		if strings.TrimSpace(k) == "" {
			e.add(errors.New("params.mailer_kits: empty entry"))
		}
	}
	// The most specific kit wins: "Leaf PHPMailer" before "PHPMailer".
	slices.SortStableFunc(p.mailerKits, func(a, b string) int { return len(b) - len(a) })
	for _, k := range p.mailerKits {
		p.kitHost = append(p.kitHost, kitByHost(k))
	}
}

func readIDNURL(r *sdk.Rule[params], p *params, e *problems) {
	names := r.Strings("confusable_scripts", []string{"Cyrillic", "Greek", "Armenian"})
	if len(names) == 0 || len(names) > 64 {
		e.add(fmt.Errorf("params.confusable_scripts must list 1 to 64 Unicode script names, got %d", len(names)))
	}
	for _, n := range names {
		tab, canon := unicodeScript(n)
		switch {
		case tab == nil:
			e.add(fmt.Errorf("params.confusable_scripts: %q is not a Unicode script name (such as Cyrillic, Greek)", n))
		case canon == "Latin":
			e.add(errors.New("params.confusable_scripts: Latin is the script the others are compared with; leave it out"))
		default:
			p.scripts = append(p.scripts, tab)
			p.scriptNames = append(p.scriptNames, strings.ToLower(canon))
		}
	}
}

func readMasquerade(r *sdk.Rule[params], p *params, e *problems) {
	p.spfFail = lowerList(r.Strings("spf_fail", []string{"fail", "softfail"}))
	p.dkimFail = lowerList(r.Strings("dkim_fail", []string{"fail"}))
	for _, v := range p.spfFail {
		if !slices.Contains(spfResults, v) || v == "pass" {
			e.add(fmt.Errorf("params.spf_fail: %q is not an SPF failure result (%s)", v, strings.Join(spfResults[1:], ", ")))
		}
	}
	for _, v := range p.dkimFail {
		if !slices.Contains(dkimResults, v) || v == "pass" {
			e.add(fmt.Errorf("params.dkim_fail: %q is not a DKIM failure result (%s)", v, strings.Join(dkimResults[1:], ", ")))
		}
	}
}

func readAttachment(r *sdk.Rule[params], p *params, e *problems) {
	p.extensions = lowerList(r.Strings("extensions", nil))
	p.contentTypes = lowerList(r.Strings("content_types", nil))
	p.sha256s = lowerList(r.Strings("sha256s", nil))
	if len(p.extensions)+len(p.contentTypes)+len(p.sha256s) == 0 {
		e.add(errors.New("params: set at least one of extensions, content_types, sha256s"))
	}
	for _, x := range p.extensions {
		if len(x) < 2 || x[0] != '.' {
			e.add(fmt.Errorf("params.extensions: %q must start with a dot, such as .docm", x))
		}
	}
	for _, h := range p.sha256s {
		if !isHex64(h) {
			e.add(fmt.Errorf("params.sha256s: %q is not 64 hex digits", h))
		}
	}
}

func readBEC(r *sdk.Rule[params], p *params, e *problems) {
	subject := lowerList(r.Strings("subject_keywords", nil))
	body := lowerList(r.Strings("body_keywords", nil))
	p.minBodyKeywords = r.Int("min_body_keywords", 1)
	e.positive("min_body_keywords", p.minBodyKeywords)
	if len(subject) == 0 || len(body) == 0 {
		e.add(errors.New("params.subject_keywords and params.body_keywords must both list keywords"))
	}
	if len(subject) > maxKeywords || len(body) > maxKeywords {
		e.add(fmt.Errorf("params.subject_keywords and params.body_keywords take at most %d keywords each", maxKeywords))
		subject, body = subject[:min(len(subject), maxKeywords)], body[:min(len(body), maxKeywords)]
	}
	if slices.Contains(subject, "") || slices.Contains(body, "") {
		e.add(errors.New("params: empty keyword"))
	}
	p.subjectKeywords, p.bodyKeywords = newKWSet(subject), newKWSet(body)
	if n := int64(len(p.bodyKeywords.words)); n > 0 && p.minBodyKeywords > n {
		e.add(fmt.Errorf("params.min_body_keywords %d is more than the %d body_keywords", p.minBodyKeywords, n))
	}
}

func readEncoded(r *sdk.Rule[params], p *params, e *problems) {
	p.minBase64 = r.Int("min_base64_run", 200)
	p.minHex = r.Int("min_hex_run", 200)
	if p.minBase64 < 16 || p.minHex < 16 {
		e.add(fmt.Errorf("params.min_base64_run and params.min_hex_run must be at least 16, got %d and %d", p.minBase64, p.minHex))
	}
	p.skipArmor = r.Bool("skip_armor", true)
}

// unicodeScript finds a Unicode script table by name, ignoring case.
func unicodeScript(name string) (*unicode.RangeTable, string) {
	if t, ok := unicode.Scripts[name]; ok {
		return t, name
	}
	for canon, t := range unicode.Scripts {
		if strings.EqualFold(canon, name) {
			return t, canon
		}
	}
	return nil, ""
}

func lowerList(in []string) []string {
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = strings.ToLower(strings.TrimSpace(s))
	}
	return out
}

func (l *lifter) Tag(ev *sdk.Event, rules []*sdk.Rule[params], out *sdk.Drafts) {
	l.sha, l.shaRead, l.shaBuf, l.attBuf = "", false, l.shaBuf[:0], l.attBuf[:0]
	l.from, l.fromRead, l.domBuf = "", false, l.domBuf[:0]
	l.rcpt, l.rcptDom = l.rcpt[:0], l.rcptDom[:0]
	for _, rc := range ev.Strings(fRcpt) {
		l.rcpt = append(l.rcpt, rc)
		l.rcptDom = append(l.rcptDom, addrDomainInto(&l.domBuf, rc))
	}
	l.hdrKeys, l.hdrVals = l.hdrKeys[:0], l.hdrVals[:0]
	for k, v := range ev.Pairs(fHeaders) {
		l.hdrKeys = append(l.hdrKeys, k)
		l.hdrVals = append(l.hdrVals, v)
	}
	for _, r := range rules {
		p := &r.Params
		switch p.kind {
		case kindOpenRelay:
			l.openRelay(ev, r, out)
		case kindMassPhishing:
			l.massPhishing(ev, r, out)
		case kindKitMailer:
			l.kitMailer(ev, r, out)
		case kindIDNURL:
			l.idnURL(ev, r, out)
		case kindMasquerade:
			l.masquerade(ev, r, out)
		case kindAttachment:
			l.attachment(ev, r, out)
		case kindBEC:
			l.bec(ev, r, out)
		case kindEncoded:
			l.encoded(ev, r, out)
		}
	}
}

// bodySHA adds body_sha256 when the producer sent a well-formed one (never anything else
// from that field). It is read and lower-cased once per event, not once per draft: the 64
// bytes cost a loop a byte in the guest (RATIONALE.md, "What a deadline costs a Go guest").
func (l *lifter) bodySHA(ev *sdk.Event, d *sdk.Draft) {
	if !l.shaRead {
		l.sha, l.shaRead = lowerHex64(&l.shaBuf, ev.String(fBodySHA)), true
	}
	if l.sha != "" {
		d.String(kBodySHA, l.sha)
	}
}

// rcptDomains collects the distinct recipient domains into l.list (at most maxList) and
// returns them with the number of recipients.
func (l *lifter) rcptDomains() ([]string, int) {
	l.list = l.list[:0]
	for _, d := range l.rcptDom {
		if d != "" && len(l.list) < maxList && !slices.Contains(l.list, d) {
			l.list = append(l.list, d)
		}
	}
	return l.list, len(l.rcpt)
}

// header returns the value of the header name (lower case) and whether the event has it.
func (l *lifter) header(name string) (string, bool) {
	for i, k := range l.hdrKeys {
		if k == name {
			return l.hdrVals[i], true
		}
	}
	return "", false
}

// R0041: an open relay relays for foreign senders to foreign recipients; a decoy that accepts
// many recipients outside its own domains from a sender outside them is being used as one.
func (l *lifter) openRelay(ev *sdk.Event, r *sdk.Rule[params], out *sdk.Drafts) {
	p := &r.Params
	from := l.fromDomain(ev)
	if from == "" || inDomains(from, p.decoyDomains) {
		return
	}
	relayed := int64(0)
	for _, d := range l.rcptDom {
		if d != "" && !inDomains(d, p.decoyDomains) {
			relayed++
		}
	}
	if relayed < p.minRecipients {
		return
	}
	doms, n := l.rcptDomains()
	d := out.Add(r.Index, 0, 1).Int(kRcptCount, int64(n)).Int(kRelayedCount, relayed).String(kFromDomain, from)
	if len(doms) > 0 {
		d.Strings(kRcptDomains, doms)
	}
	l.bodySHA(ev, d)
}

// R0042: the same body (within a few simhash bits) seen many times by the producer, sent to
// several recipients at once. Signed bulk mail (DKIM pass and a list header) is exempt.
func (l *lifter) massPhishing(ev *sdk.Event, r *sdk.Rule[params], out *sdk.Drafts) {
	p := &r.Params
	seen, ok := ev.Int(fSeen)
	if !ok || seen < p.minSeen {
		return
	}
	doms, n := l.rcptDomains()
	if int64(n) < p.minRecipients {
		return
	}
	if len(p.bulkHeaders) > 0 && strings.EqualFold(strings.TrimSpace(ev.String(fDKIM)), "pass") {
		for _, h := range p.bulkHeaders {
			if _, ok := l.header(h); ok {
				return
			}
		}
	}
	d := out.Add(r.Index, 0, 1).Int(kRcptCount, int64(n)).Int(kSeenCount, seen)
	if len(doms) > 0 {
		d.Strings(kRcptDomains, doms)
	}
	l.bodySHA(ev, d)
}

// R0043: the mailer header names a phishing kit or mass mailer, or a PHP script header shows
// the message came from a script on a (usually compromised) web host.
func (l *lifter) kitMailer(ev *sdk.Event, r *sdk.Rule[params], out *sdk.Drafts) {
	p := &r.Params
	kit := ""
	l.list = l.list[:0]
	for i, k := range l.hdrKeys {
		v := l.hdrVals[i]
		switch {
		case slices.Contains(p.mailerHeaders, k):
			for j, want := range p.mailerKits {
				if kitIn(v, want, p.kitHost[j]) {
					if kit == "" || len(want) > len(kit) {
						kit = want
					}
					l.list = append(l.list, k)
					break
				}
			}
		case slices.Contains(p.scriptHeaders, k):
			l.list = append(l.list, k)
		}
	}
	if len(l.list) == 0 {
		return
	}
	d := out.Add(r.Index, 0, 1)
	if kit != "" {
		d.String(kMailerKit, kit)
	}
	d.Strings(kHeaderNames, l.list)
	l.bodySHA(ev, d)
}

// kitIn reports whether the header value v names kit, case ignored; byHost is
// kitByHost(kit), computed at configure.
func kitIn(v, kit string, byHost bool) bool {
	if byHost {
		return sdk.IndexFold(v, kit) >= 0
	}
	return containsFold(v, kit)
}

// kitByHost reports whether kitIn may look for kit by one host call (sdk.IndexFold) instead
// of a loop a byte in the guest: a non-empty ASCII kit short enough. A slice of a value with
// a byte that is not ASCII holds fewer runes than such a kit, so Unicode folding could not
// match it either.
func kitByHost(kit string) bool { return kit != "" && len(kit) <= maxIndexFold && isASCII(kit) }

// maxIndexFold is the longest needle sdk.IndexFold looks for.
const maxIndexFold = 256

// R0044: a URL host with a label that mixes Latin with a confusable script (or two
// confusable scripts), once its punycode (xn--) form is decoded: an IDN homograph.
func (l *lifter) idnURL(ev *sdk.Event, r *sdk.Rule[params], out *sdk.Drafts) {
	p := &r.Params
	hosts := l.list[:0]
	var latin bool
	var mask uint64
	for _, u := range ev.Strings(fURLs) {
		host := urlHost(u)
		if host == "" {
			continue
		}
		lat, m := l.mixedScripts(host, p)
		if !(lat && m != 0) && bits.OnesCount64(m) < 2 {
			continue
		}
		latin, mask = latin || lat, mask|m
		host = strings.ToLower(host)
		if len(hosts) < maxList && !slices.Contains(hosts, host) {
			hosts = append(hosts, host)
		}
	}
	l.list = hosts
	if len(hosts) == 0 {
		return
	}
	names := l.list2[:0]
	if latin {
		names = append(names, "latin")
	}
	for i, n := range p.scriptNames {
		if mask&(1<<i) != 0 && !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	l.list2 = names
	for e := range r.Emits {
		d := out.Add(r.Index, e, 1).Strings(kURLHosts, hosts).Strings(kScripts, names)
		l.bodySHA(ev, d)
	}
}

// mixedScripts decodes each label of host (punycode when it starts with xn--) and returns,
// for the first label mixing scripts, whether it has Latin letters and the mask of
// confusable scripts it has; zeros when no label mixes.
func (l *lifter) mixedScripts(host string, p *params) (bool, uint64) {
	for host != "" {
		label := host
		if i := strings.IndexByte(host, '.'); i >= 0 {
			label, host = host[:i], host[i+1:]
		} else {
			host = ""
		}
		var rs []rune
		switch {
		case len(label) > 4 && strings.EqualFold(label[:4], "xn--"):
			var err error
			if rs, err = decodePunycode(label[4:], l.runes[:0]); err != nil {
				continue
			}
			l.runes = rs
		case isASCII(label):
			continue // ASCII letters are all Latin
		default:
			rs = l.runes[:0]
			for _, c := range label {
				rs = append(rs, c)
			}
			l.runes = rs
		}
		latin := false
		var mask uint64
		for _, c := range rs {
			if !unicode.IsLetter(c) {
				continue
			}
			if unicode.Is(unicode.Latin, c) {
				latin = true
				continue
			}
			for i, t := range p.scripts {
				if unicode.Is(t, c) {
					mask |= 1 << i
					break
				}
			}
		}
		if (latin && mask != 0) || bits.OnesCount64(mask) >= 2 {
			return latin, mask
		}
	}
	return false, 0
}

// R0045: the From domain is not vouched for by DKIM or aligned SPF and something disagrees
// with it (the envelope sender's domain, an SPF or DKIM failure), or the display name carries
// an address of another domain.
func (l *lifter) masquerade(ev *sdk.Event, r *sdk.Rule[params], out *sdk.Drafts) {
	p := &r.Params
	from := l.fromDomain(ev)
	if from == "" {
		return
	}
	rp := addrDomainInto(&l.domBuf, ev.String(fReturnPath))
	dkim := knownResult(ev.String(fDKIM), dkimResults)
	spf := knownResult(ev.String(fSPF), spfResults)
	aligned := rp != "" && orgDomain(rp) == orgDomain(from)
	authenticated := dkim == "pass" || (spf == "pass" && aligned)
	reasons := l.list2[:0]
	if !authenticated {
		if (dkim != "" || spf != "") && rp != "" && !aligned {
			reasons = append(reasons, "return_path_mismatch")
		}
		if spf != "" && slices.Contains(p.spfFail, spf) {
			reasons = append(reasons, "spf_fail")
		}
		if dkim != "" && slices.Contains(p.dkimFail, dkim) {
			reasons = append(reasons, "dkim_fail")
		}
	}
	display := ""
	if v, ok := l.header("from"); ok {
		display = displayDomain(v)
	}
	if display != "" && orgDomain(display) != orgDomain(from) {
		reasons = append(reasons, "display_name_address")
	} else {
		display = ""
	}
	l.list2 = reasons
	if len(reasons) == 0 {
		return
	}
	d := out.Add(r.Index, 0, 1).String(kFromDomain, from)
	if rp != "" {
		d.String(kReturnDomain, rp)
	}
	if display != "" {
		d.String(kDisplayDomain, display)
	}
	if dkim != "" {
		d.String(kDKIM, dkim)
	}
	if spf != "" {
		d.String(kSPF, spf)
	}
	d.Strings(kMasquerade, reasons)
	l.bodySHA(ev, d)
}

// knownResult returns s lower-cased when it is one of results, else "".
func knownResult(s string, results []string) string {
	s = strings.TrimSpace(s)
	for _, r := range results {
		if strings.EqualFold(s, r) {
			return r
		}
	}
	return ""
}

// R0046: an attachment whose name ends with a dangerous extension (macro documents,
// shortcuts, disk images, scripts), whose declared type is a listed one, or whose sha256 is
// listed.
func (l *lifter) attachment(ev *sdk.Event, r *sdk.Rule[params], out *sdk.Drafts) {
	p := &r.Params
	n := max(ev.Len(fAttName), ev.Len(fAttType), ev.Len(fAttSHA))
	if n > 256 {
		n = 256
	}
	shas, matches := l.list[:0], l.list2[:0]
	for j := 0; j < n; j++ {
		match := ""
		name := strings.TrimRight(ev.StringAt(fAttName, j), " .\t")
		for _, e := range p.extensions {
			if hasSuffixFold(name, e) {
				match = e
				break
			}
		}
		if match == "" {
			ct := strings.TrimSpace(ev.StringAt(fAttType, j))
			for _, c := range p.contentTypes {
				if strings.EqualFold(ct, c) {
					match = c
					break
				}
			}
		}
		// the listed sha256s are 64 hex digits in lower case: only a sha256 matches one
		sha := lowerHex64(&l.attBuf, ev.StringAt(fAttSHA, j))
		if match == "" && sha != "" && slices.Contains(p.sha256s, sha) {
			match = "listed_sha256"
		}
		if match == "" {
			continue
		}
		if !slices.Contains(matches, match) && len(matches) < maxList {
			matches = append(matches, match)
		}
		if sha != "" && !slices.Contains(shas, sha) && len(shas) < maxList {
			shas = append(shas, sha)
		}
	}
	l.list, l.list2 = shas, matches
	if len(matches) == 0 {
		return
	}
	d := out.Add(r.Index, 0, 1)
	if len(shas) > 0 {
		d.Strings(kAttSHAs, shas)
	}
	d.Strings(kAttMatch, matches)
	l.bodySHA(ev, d)
}

// R0047: business email compromise: an urgent-payment subject and a body asking for a
// transfer, gift cards or new bank details.
func (l *lifter) bec(ev *sdk.Event, r *sdk.Rule[params], out *sdk.Drafts) {
	p := &r.Params
	subject := ev.String(fSubject)
	l.found = resetBools(l.found, len(p.subjectKeywords.words))
	if p.subjectKeywords.match(subject, &l.scratch, l.found) == 0 {
		return
	}
	kws := l.list[:0]
	for i, w := range p.subjectKeywords.words {
		if l.found[i] {
			kws = append(kws, w)
		}
	}
	body := ev.String(fBody)
	l.found = resetBools(l.found, len(p.bodyKeywords.words))
	n := p.bodyKeywords.match(body, &l.scratch, l.found)
	for i, w := range p.bodyKeywords.words {
		if l.found[i] && !slices.Contains(kws, w) {
			kws = append(kws, w)
		}
	}
	l.list = kws
	if int64(n) < p.minBodyKeywords {
		return
	}
	d := out.Add(r.Index, 0, 1).Strings(kKeywords, kws)
	l.bodySHA(ev, d)
}

func resetBools(b []bool, n int) []bool {
	if cap(b) < n {
		return make([]bool, n)
	}
	b = b[:n]
	clear(b)
	return b
}

// R0048: a long base64 (or base64url) or hex run in the body: an encoded script, command or
// binary handed to the reader (or to a macro) to decode.
func (l *lifter) encoded(ev *sdk.Event, r *sdk.Rule[params], out *sdk.Drafts) {
	p := &r.Params
	body := ev.String(fBody)
	minRun := int(min(p.minBase64, p.minHex))
	if len(body) < minRun {
		return
	}
	b64, hex := longestRuns(body, p.skipArmor, minRun)
	var d *sdk.Draft
	switch {
	case int64(hex) >= p.minHex:
		d = out.Add(r.Index, 0, 1).String(kEncoding, "hex").Int(kRunLength, int64(hex))
	case int64(b64) >= p.minBase64:
		d = out.Add(r.Index, 0, 1).String(kEncoding, "base64").Int(kRunLength, int64(b64))
	default:
		return
	}
	l.bodySHA(ev, d)
}

func init() { sdk.Register(&lifter{}) }

func main() {}
