// Command behavioral is the lifter of rules R0031-R0040, R0100 and R0101 (files that landed): it looks at a whole honeypot
// session (payload.commands[].text, command_times_ms, duration_ms, downloads, client_version;
// see abi/EVENTS.md) and tags behaviour that no single command shows: machine-speed sessions,
// discovery bursts, a download that is then run, several persistence mechanisms, a history
// wipe after activity, compute hijacking, outbound scanning, credential dumping, eviction of
// rival malware and periodic callbacks; and at the SSH port forwarding a session asked for (the
// forward kind, R0100: the honeypot as a relay or tunnel).
//
// Each command line is read once per event into shell segments and words (quote-aware,
// lower-cased, with `sh -c` arguments parsed too), and every detector works from that, so the
// plugin parses no JSON and allocates nothing per event in steady state. The rules' word lists
// are gathered into one dictionary per configuration (dict.go): one hash probe per segment for
// its command name, one Aho-Corasick pass per line for every keyword of every rule, and a rule
// whose lists do not occur in the session returns at once. The work per event is bounded
// whatever its size (maxCommands, maxText, maxSegments in shell.go).
//
// Every threshold and keyword list is a rule param (rules/ttp/R0031.yaml ...); bad params
// reject the rule with a message naming them. The plugin computes from the session's raw
// aggregates only; it does not read login_failures, login_success or usernames, which no
// rule needs.
//
// Built with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o plugins/behavioral.wasm ./plugins/behavioral
package main

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"

	"github.com/decnet/ttp/abi"
	"github.com/decnet/ttp/sdk"
)

const kindPrefix = "lifter:behavioral_"

var (
	manifest = sdk.NewManifest("behavioral", "1.2.0", kindPrefix).HostFunctions()

	sessionKind = manifest.Source(abi.KindSession)
	fCommands   = sessionKind.Field("payload.commands[].text")
	fTimes      = sessionKind.Field("payload.command_times_ms")
	fDuration   = sessionKind.Field("payload.duration_ms")
	fURLs       = sessionKind.Field("payload.downloads[].url")
	fSHA        = sessionKind.Field("payload.downloads[].sha256")
	fClient     = sessionKind.Field("payload.client_version")

	// R0031
	kCommands  = manifest.Evidence("commands")
	kMedianGap = manifest.Evidence("median_gap_ms")
	kBotClient = manifest.Evidence("bot_client")
	kSignals   = manifest.Evidence("signals") // R0031, R0036, R0037, R0040
	// R0032
	kDiscoveryCount    = manifest.Evidence("discovery_count")
	kDiscoveryCommands = manifest.Evidence("discovery_commands")
	kBurstSpan         = manifest.Evidence("burst_span_ms")
	// R0033
	kExecutedFiles = manifest.Evidence("executed_files")
	kPiped         = manifest.Evidence("piped")
	kURLHosts      = manifest.Evidence("url_hosts")
	kDownloadSHA   = manifest.Evidence("download_sha256")
	// R0034
	kMechanisms     = manifest.Evidence("mechanisms")
	kMechanismCount = manifest.Evidence("mechanism_count")
	// R0035
	kPriorCommands = manifest.Evidence("prior_commands")
	kWipeMethods   = manifest.Evidence("wipe_methods")
	// R0036
	kMiners    = manifest.Evidence("miners")
	kPoolHosts = manifest.Evidence("pool_hosts")
	kCPUProbe  = manifest.Evidence("cpu_probe")
	// R0037
	kScanners = manifest.Evidence("scanners")
	kTargets  = manifest.Evidence("targets")
	// R0038
	kCredentialSources = manifest.Evidence("credential_sources")
	kCredentialReads   = manifest.Evidence("credential_reads")
	kDumpTools         = manifest.Evidence("dump_tools")
	// R0039
	kRivals   = manifest.Evidence("rivals")
	kRemovals = manifest.Evidence("removals")
	// R0040
	kBeaconHosts = manifest.Evidence("beacon_hosts")
	kIntervalMs  = manifest.Evidence("interval_ms")
	kRepeats     = manifest.Evidence("repeats")
	// R0101 (also kURLHosts, kDownloadSHA)
	kFiles = manifest.Evidence("files")
)

// params is one rule's reading of its params: the detector its kind names, configured.
type params struct {
	d detector
}

// detector is one rule kind's logic.
type detector interface {
	detect(s *session, r *sdk.Rule[params], out *sdk.Drafts)
}

// kinds maps a rule kind (after the lifter:behavioral_ prefix) to its detector's constructor.
var kinds = map[string]func(c *conf) detector{
	"automated":          newAutomated,
	"discovery_burst":    newDiscovery,
	"download_execute":   newDownloadExec,
	"persistence_combo":  newPersistence,
	"history_wipe":       newHistoryWipe,
	"resource_hijack":    newHijack,
	"outbound_scan":      newScan,
	"credential_dump":    newCredDump,
	"competitor_removal": newCompetitor,
	"c2_beacon":          newBeacon,
	"ssh_forward":        newSSHForward,
	"ingress_transfer":   newIngressTransfer,
}

type behavioral struct {
	s    session
	dict dictionary
}

func (*behavioral) Manifest() *sdk.Manifest { return manifest }

func (b *behavioral) Configure(r *sdk.Rule[params]) error {
	if r.Index == 0 { // a new configuration: the lists of the previous one are gone
		b.dict.reset()
	}
	name := strings.TrimPrefix(r.Kind, kindPrefix)
	mk, ok := kinds[name]
	if !ok {
		known := make([]string, 0, len(kinds))
		for k := range kinds {
			known = append(known, kindPrefix+k)
		}
		sort.Strings(known)
		return fmt.Errorf("unknown rule kind %s (this lifter knows %s)", r.Kind, strings.Join(known, ", "))
	}
	if len(r.Emits) == 0 {
		return fmt.Errorf("the rule has no emits entry")
	}
	c := &conf{r: r, dict: &b.dict}
	d := mk(c)
	if len(c.errs) > 0 {
		return fmt.Errorf("%s", strings.Join(c.errs, "; "))
	}
	r.Params.d = d
	return nil
}

func (b *behavioral) Tag(ev *sdk.Event, rules []*sdk.Rule[params], out *sdk.Drafts) {
	if len(rules) == 0 {
		return
	}
	if ev.Kind() == abi.KindForward {
		b.s.fwd.load(ev)
		for _, r := range rules {
			r.Params.d.detect(&b.s, r, out)
		}
		return
	}
	if ev.Len(fCommands) == 0 && ev.Len(fURLs) == 0 { // a file pushed with nothing typed still counts (R0101)
		return
	}
	if !b.dict.built {
		b.dict.build()
	}
	b.s.dict = &b.dict
	b.s.load(ev)
	for _, r := range rules {
		r.Params.d.detect(&b.s, r, out)
	}
}

func init() { sdk.Register[params](&behavioral{}) }

func main() {}

// conf reads one rule's params, collecting every problem so that an operator fixes them all in
// one edit.
type conf struct {
	r    *sdk.Rule[params]
	dict *dictionary
	errs []string
}

func (c *conf) fail(format string, args ...any) {
	c.errs = append(c.errs, fmt.Sprintf(format, args...))
}

// intMin reads an integer param that must be at least lo.
func (c *conf) intMin(name string, def, lo int64) int64 {
	v := c.r.Int(name, def)
	if v < lo {
		c.fail("params.%s must be at least %d, got %d", name, lo, v)
	}
	return v
}

// floatRange reads a number param that must lie in [lo, hi].
func (c *conf) floatRange(name string, def, lo, hi float64) float64 {
	v := c.r.Float(name, def)
	if !(v >= lo && v <= hi) {
		c.fail("params.%s must be between %v and %v, got %v", name, lo, hi, v)
	}
	return v
}

// list reads a required, non-empty list of non-empty strings, lower-cased (command lines are
// matched lower-cased).
func (c *conf) list(name string) []string {
	if !c.r.Has(name) {
		c.fail("params.%s: required list of strings is missing", name)
		return nil
	}
	l := c.r.Strings(name, nil)
	if len(l) == 0 {
		c.fail("params.%s must not be empty", name)
	}
	return c.lowerAll(name, l)
}

// optList reads an optional list (empty when absent), lower-cased.
func (c *conf) optList(name string) []string {
	return c.lowerAll(name, c.r.Strings(name, nil))
}

func (c *conf) lowerAll(name string, l []string) []string {
	out := make([]string, len(l))
	for i, s := range l {
		s = strings.ToLower(strings.TrimSpace(s))
		if s == "" {
			c.fail("params.%s[%d] is empty", name, i)
		}
		out[i] = s
	}
	return out
}

// words reads a required list of command names into the dictionary.
func (c *conf) words(name string) wordSet { return c.dict.addVerbs(c.list(name)) }

// optWords reads an optional list of command names into the dictionary.
func (c *conf) optWords(name string) wordSet { return c.dict.addVerbs(c.optList(name)) }

// keywords reads a required list of substrings into the dictionary.
func (c *conf) keywords(name string) keywords { return c.dict.addKeywords(c.list(name)) }

// optKeywords reads an optional list of substrings into the dictionary.
func (c *conf) optKeywords(name string) keywords { return c.dict.addKeywords(c.optList(name)) }

// phrases is a list of command phrases ("systemctl enable", "crontab *"): a command name,
// then words that must follow it, "*" standing for any operand.
type phrases struct {
	first wordSet // the phrases' command names, in the dictionary
	list  [][]string
}

// phrases reads a list of command phrases.
func (c *conf) phrases(name string, l []string) phrases {
	p := phrases{list: make([][]string, len(l))}
	first := make([]string, 0, len(l))
	for i, s := range l {
		p.list[i] = strings.Fields(strings.ToLower(s))
		switch {
		case len(p.list[i]) == 0:
			c.fail("params.%s[%d] is empty", name, i)
		case p.list[i][0] == "*":
			c.fail("params.%s[%d] %q: a phrase starts with a command name", name, i, s)
		default:
			first = append(first, p.list[i][0])
		}
	}
	p.first = c.dict.addVerbs(first)
	return p
}

// matches reports whether g runs one of the phrases.
func (p *phrases) matches(s *session, g *segment) bool {
	if len(p.list) == 0 || !s.verbIn(g, &p.first) {
		return false
	}
	for _, ph := range p.list {
		if s.matchPhrase(g, ph) {
			return true
		}
	}
	return false
}

// emitsOf returns the bit set of the rule's emits entries that tag technique (a technique or
// sub-technique id), failing when there is none.
func (c *conf) emitsOf(where, technique string) uint64 {
	var set uint64
	for i, e := range c.r.Emits {
		if i < 64 && (e.SubTechniqueID == technique || e.SubTechniqueID == "" && e.TechniqueID == technique) {
			set |= 1 << i
		}
	}
	if set == 0 {
		c.fail("%s: technique %s is not among the rule's emits", where, technique)
	}
	return set
}

// category is one named group of discriminators that maps to one technique (a persistence
// mechanism, a credential source).
type category struct {
	name     string
	emits    uint64 // the emits entries it selects
	paths    keywords
	commands phrases
	tools    keywords
}

// categories reads a param that maps names to {technique, and lists among allowed}.
func (c *conf) categories(name string, allowed ...string) []category {
	v, ok := c.r.Value(name)
	if !ok {
		c.fail("params.%s: required mapping is missing", name)
		return nil
	}
	m, ok := v.(map[string]any)
	if !ok || len(m) == 0 {
		c.fail("params.%s must be a non-empty mapping of name to {technique, %s}", name, strings.Join(allowed, ", "))
		return nil
	}
	if len(m) > 64 {
		c.fail("params.%s: at most 64 entries, got %d", name, len(m))
		return nil
	}
	out := make([]category, 0, len(m))
	for _, n := range sortedKeys(m) {
		where := "params." + name + "." + n
		body, ok := m[n].(map[string]any)
		if !ok {
			c.fail("%s must be a mapping with technique and %s", where, strings.Join(allowed, ", "))
			continue
		}
		cat := category{name: n}
		hasList, hasPaths, hasCommands, hasTools := false, false, false, false
		for _, k := range sortedKeys(body) {
			val := body[k]
			if k == "technique" {
				t, ok := val.(string)
				if !ok || t == "" {
					c.fail("%s.technique must be a technique id", where)
					continue
				}
				cat.emits = c.emitsOf(where, t)
				continue
			}
			if !slices.Contains(allowed, k) {
				c.fail("%s.%s: unknown key (known: technique, %s)", where, k, strings.Join(allowed, ", "))
				continue
			}
			l, ok := stringList(val)
			if !ok {
				c.fail("%s.%s must be a list of strings", where, k)
				continue
			}
			l = c.lowerAll(where+"."+k, l)
			hasList = hasList || len(l) > 0
			switch k {
			case "paths":
				cat.paths, hasPaths = c.dict.addKeywords(l), true
			case "commands":
				cat.commands, hasCommands = c.phrases(where+"."+k, l), true
			case "tools":
				cat.tools, hasTools = c.dict.addKeywords(l), true
			}
		}
		if !hasPaths {
			cat.paths = c.dict.addKeywords(nil)
		}
		if !hasCommands {
			cat.commands = c.phrases(where+".commands", nil)
		}
		if !hasTools {
			cat.tools = c.dict.addKeywords(nil)
		}
		if cat.emits == 0 {
			if _, ok := body["technique"]; !ok {
				c.fail("%s.technique is missing", where)
			}
		}
		if !hasList {
			c.fail("%s: needs at least one of %s", where, strings.Join(allowed, ", "))
		}
		out = append(out, cat)
	}
	return out
}

func stringList(v any) ([]string, bool) {
	switch x := v.(type) {
	case []string:
		return x, true
	case []any:
		out := make([]string, len(x))
		for i, e := range x {
			s, ok := e.(string)
			if !ok {
				return nil, false
			}
			out[i] = s
		}
		return out, true
	}
	return nil, false
}

// emit adds one draft per emits entry in set (all entries when set has every bit), calling
// evidence to fill each.
func emit(r *sdk.Rule[params], out *sdk.Drafts, set uint64, evidence func(d *sdk.Draft)) {
	for e := range r.Emits {
		if e < 64 && set&(1<<e) == 0 {
			continue
		}
		evidence(out.Add(r.Index, e, 1))
	}
}

const allEmits = math.MaxUint64

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
