package main

import (
	"math"
	"net/netip"
	"strconv"
	"strings"

	"github.com/decnet/ttp/abi"
	"github.com/decnet/ttp/sdk"
)

// This file reads the providers' answers in the shapes real producers store them
// (abi/EVENTS.md, "intel", "Accepted shapes"): each reader tries every place a member may be
// and takes numbers and booleans written as strings, so that a producer that keeps an answer
// as the provider returned it, or passes it through a JSON layer that stringifies scalars, is
// read the same. No reader fails or panics: what it cannot read is absent.

// view is what the lifter knows of one event, read once per Tag call and shared by the rules.
type view struct {
	ip    string
	abuse abuseView
	grey  greyView
	feodo feodoView
	fox   []foxEntry
	cats  []float64 // payload.abuseipdb_categories as numbers (NaN: not a number)
}

// abuseView is the AbuseIPDB check answer about the event's address.
type abuseView struct {
	present            bool // a score was read
	ip                 string
	score              int64
	whitelisted        bool
	reports, users     int64
	reportsOK, usersOK bool
}

// greyView is the GreyNoise answer about the event's address, whatever its API version.
type greyView struct {
	present     bool   // a classification was read
	class       string // malicious, suspicious, unknown, benign (canonical, lower case)
	actor       string
	noise, riot bool
}

// feodoView is the Feodo Tracker entry of the event's address.
type feodoView struct {
	listed          bool
	malware, status string
	online          bool
	port            int64
	portOK          bool
}

// foxEntry is one ThreatFox IOC of the event, its strings aliasing the record.
type foxEntry struct {
	ioc, iocType, threatType, malware string
	confidence                        float64
}

// Buffers of one Tag call; nothing in them survives it.
var (
	foxBuf = make([]foxEntry, 0, 8)
	catVal = make([]float64, 0, 24)
)

// read builds the event's view.
func read(ev *sdk.Event) *view {
	v := &theView
	*v = view{ip: ev.String(fIP)}
	v.abuse = readAbuse(ev, v.ip)
	v.grey = readGrey(ev, v.ip)
	v.feodo = readFeodo(ev, v.ip)
	v.fox = readFox(ev)
	cats := catVal[:0]
	for j, n := 0, ev.Len(fAbuseCategories); j < n; j++ {
		f, ok := numberAt(ev, fAbuseCategories, j)
		if !ok {
			f = math.NaN()
		}
		cats = append(cats, f)
	}
	v.cats, catVal = cats, cats[:0]
	return v
}

// theView is the one view a Tag call fills: Tag calls never overlap in an instance.
var theView view

func readAbuse(ev *sdk.Event, ip string) abuseView {
	for k := range abuseScore {
		score, ok := numberAt(ev, abuseScore[k], -1)
		if !ok {
			continue
		}
		a := abuseView{present: true, ip: strings.TrimSpace(ev.String(abuseIP[k])), score: int64(math.Round(score))}
		if !sameIP(ip, a.ip) {
			return abuseView{}
		}
		a.whitelisted, _ = boolAt(ev, abuseWhitelisted[k], -1)
		if n, ok := numberAt(ev, abuseReports[k], -1); ok {
			a.reports, a.reportsOK = int64(n), true
		}
		if n, ok := numberAt(ev, abuseUsers[k], -1); ok {
			a.users, a.usersOK = int64(n), true
		}
		return a
	}
	return abuseView{}
}

// greyClass returns the canonical form of a GreyNoise classification, "" for none or one the
// lifter does not know.
func greyClass(s string) string {
	s = strings.TrimSpace(s)
	for _, c := range [...]string{classMalicious, classSuspicious, classUnknown, classBenign} {
		if strings.EqualFold(s, c) {
			return c
		}
	}
	return ""
}

// GreyNoise classifications.
const (
	classMalicious  = "malicious"
	classSuspicious = "suspicious"
	classUnknown    = "unknown"
	classBenign     = "benign"
)

// greyAt reads one GreyNoise answer from fs: the object (j < 0) or entry j of a data list.
// ok is false when it has no classification or is about another address.
func greyAt(ev *sdk.Event, fs *greyFieldSet, j int, ip string) (greyView, bool) {
	g := greyView{class: greyClass(stringAt(ev, fs.class, j))}
	v3 := false
	if g.class == "" {
		g.class, v3 = greyClass(stringAt(ev, fs.v3Class, j)), true
	}
	if g.class == "" || !sameIP(ip, strings.TrimSpace(stringAt(ev, fs.ip, j))) {
		return greyView{}, false
	}
	g.present = true
	var ok bool
	if g.noise, ok = boolAt(ev, fs.noise, j); !ok {
		if g.noise, ok = boolAt(ev, fs.seen, j); !ok && v3 {
			g.noise, _ = boolAt(ev, fs.v3Found, j)
		}
	}
	riot, _ := boolAt(ev, fs.riot, j)
	business, _ := boolAt(ev, fs.v3BusinessFound, j)
	g.riot = riot || business
	for _, f := range [...]sdk.Field{fs.name, fs.actor, fs.v3Actor} {
		if s := strings.TrimSpace(stringAt(ev, f, j)); s != "" {
			g.actor = s
			break
		}
	}
	return g, true
}

func readGrey(ev *sdk.Event, ip string) greyView {
	if g, ok := greyAt(ev, &gnOne, -1, ip); ok {
		return g
	}
	n := max(ev.Len(gnList.class), ev.Len(gnList.v3Class), ev.Len(gnList.ip))
	for j := 0; j < n; j++ {
		if g, ok := greyAt(ev, &gnList, j, ip); ok {
			return g
		}
	}
	return greyView{}
}

// feodoAt reads one Feodo Tracker entry: the object (j < 0) or entry j of a list. ok is false
// when it names neither an address nor a malware family, or is about another address.
func feodoAt(ev *sdk.Event, fs *feodoFieldSet, j int, ip string) (feodoView, bool) {
	entryIP := first(ev, fs.ip[:], j)
	f := feodoView{malware: strings.TrimSpace(stringAt(ev, fs.malware, j)), status: strings.TrimSpace(first(ev, fs.status[:], j))}
	if entryIP == "" && f.malware == "" || !sameIP(ip, entryIP) {
		return feodoView{}, false
	}
	f.listed = true
	for _, st := range [...]string{"online", "offline"} { // canonical case, without allocating
		if strings.EqualFold(f.status, st) {
			f.status, f.online = st, st == "online"
		}
	}
	for _, pf := range fs.port {
		if n, ok := numberAt(ev, pf, j); ok && n >= 0 && n <= 65535 && n == math.Trunc(n) {
			f.port, f.portOK = int64(n), true
			break
		}
	}
	return f, true
}

func readFeodo(ev *sdk.Event, ip string) feodoView {
	if f, ok := feodoAt(ev, &feodoOne, -1, ip); ok {
		return f
	}
	n := max(ev.Len(feodoList.ip[0]), ev.Len(feodoList.ip[1]), ev.Len(feodoList.malware))
	for j := 0; j < n; j++ {
		if f, ok := feodoAt(ev, &feodoList, j, ip); ok {
			return f
		}
	}
	return feodoView{}
}

// readFox reads the ThreatFox IOCs of both shapes into foxBuf.
func readFox(ev *sdk.Event) []foxEntry {
	es := foxBuf[:0]
	for _, fs := range [...]*foxFieldSet{&foxList, &foxData, &foxOne} {
		first, n := 0, max(ev.Len(fs.threatType), ev.Len(fs.ioc))
		if fs == &foxOne {
			if ev.String(fs.threatType) == "" && ev.String(fs.ioc) == "" {
				continue
			}
			first, n = -1, 0 // one plain object: j = -1 reads its members
		}
		for j := first; j < n; j++ {
			e := foxEntry{
				ioc:        strings.TrimSpace(stringAt(ev, fs.ioc, j)),
				iocType:    strings.TrimSpace(stringAt(ev, fs.iocType, j)),
				threatType: strings.TrimSpace(stringAt(ev, fs.threatType, j)),
				malware:    strings.TrimSpace(stringAt(ev, fs.malware, j)),
				confidence: math.NaN(),
			}
			if c, ok := numberAt(ev, fs.confidence, j); ok {
				e.confidence = c
			}
			if e.malware == "" {
				e.malware = strings.TrimSpace(stringAt(ev, fs.malwareName, j))
			}
			if e.iocType == "" && isAddrPort(e.ioc) {
				e.iocType = "ip:port" // the only type an address search returns
			}
			es = append(es, e)
		}
	}
	foxBuf = es[:0]
	return es
}

// isAddrPort reports whether s is an address, with or without a port.
func isAddrPort(s string) bool {
	if _, err := netip.ParseAddrPort(s); err == nil {
		return true
	}
	_, err := netip.ParseAddr(s)
	return err == nil
}

// ---- tolerant readers: j < 0 reads a plain field, j >= 0 entry j of a list field ----

// first returns the first non-empty string among fields fs.
func first(ev *sdk.Event, fs []sdk.Field, j int) string {
	for _, f := range fs {
		if s := strings.TrimSpace(stringAt(ev, f, j)); s != "" {
			return s
		}
	}
	return ""
}

func stringAt(ev *sdk.Event, f sdk.Field, j int) string {
	if j < 0 {
		return ev.String(f)
	}
	return ev.StringAt(f, j)
}

// numberAt reads a number, or a string holding one ("75", " 100 "); ok is false otherwise
// (absent, null, NaN, not numeric).
func numberAt(ev *sdk.Event, f sdk.Field, j int) (float64, bool) {
	switch t := ev.Type(f); {
	case j < 0 && (t == abi.TypeInt || t == abi.TypeFloat):
		return ev.Float(f)
	case j < 0 && t == abi.TypeString:
		return parseNumber(ev.String(f))
	case j >= 0 && t == abi.TypeStringList:
		return parseNumber(ev.StringAt(f, j))
	case j >= 0 && t == abi.TypeNumberList:
		n := ev.NumberAt(f, j)
		return n, !math.IsNaN(n)
	}
	return 0, false
}

// parseNumber reads a decimal number written as a string; ok is false for anything else,
// infinities and NaN included.
func parseNumber(s string) (float64, bool) {
	n, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsNaN(n) || math.IsInf(n, 0) {
		return 0, false
	}
	return n, true
}

// boolAt reads a boolean, a string "true"/"false" (any case, also 1/0, yes/no) or a number
// (non-zero is true); ok is false otherwise.
func boolAt(ev *sdk.Event, f sdk.Field, j int) (v, ok bool) {
	switch t := ev.Type(f); {
	case j < 0 && t == abi.TypeBool:
		return ev.Bool(f)
	case j < 0 && t == abi.TypeString:
		return parseBool(ev.String(f))
	case j < 0 && (t == abi.TypeInt || t == abi.TypeFloat):
		n, _ := ev.Float(f)
		return n != 0, true
	case j >= 0 && t == abi.TypeStringList:
		return parseBool(ev.StringAt(f, j))
	case j >= 0 && t == abi.TypeNumberList: // a list of booleans is a number list of 0 and 1
		n := ev.NumberAt(f, j)
		return n != 0 && !math.IsNaN(n), !math.IsNaN(n)
	}
	return false, false
}

func parseBool(s string) (v, ok bool) {
	s = strings.TrimSpace(s)
	for _, t := range [...]string{"true", "1", "yes"} {
		if strings.EqualFold(s, t) {
			return true, true
		}
	}
	for _, f := range [...]string{"false", "0", "no"} {
		if strings.EqualFold(s, f) {
			return false, true
		}
	}
	return false, false
}
