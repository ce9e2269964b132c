package main

import (
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/decnet/ttp/sdk"
)

// ---- R0031 automated session --------------------------------------------------------------

// automated fires on machine-speed sessions: the median gap between consecutive commands is at
// most max_median_gap_ms over at least min_commands commands, or the client banner starts with
// one of bot_clients (with at least min_client_commands commands).
type automated struct {
	minCommands, minClientCommands int64
	maxMedian                      float64
	clients, clientNames           []string
}

func newAutomated(c *conf) detector {
	a := &automated{
		minCommands:       c.intMin("min_commands", 5, 2),
		maxMedian:         c.floatRange("max_median_gap_ms", 400, 0, 1e9),
		minClientCommands: c.intMin("min_client_commands", 1, 1),
	}
	a.clientNames = c.r.Strings("bot_clients", nil)
	a.clients = c.lowerAll("bot_clients", a.clientNames)
	return a
}

func (a *automated) detect(s *session, r *sdk.Rule[params], out *sdk.Drafts) {
	n := len(s.cmds)
	var median float64
	haveMedian, timing := false, false
	if s.times != nil && int64(n) >= a.minCommands {
		gaps := s.nums[:0]
		for i := 1; i < n; i++ {
			gaps = append(gaps, s.times[i]-s.times[i-1])
		}
		slices.Sort(gaps)
		if m := len(gaps); m%2 == 1 {
			median = gaps[m/2]
		} else {
			median = (gaps[m/2-1] + gaps[m/2]) / 2
		}
		s.nums = gaps[:0]
		haveMedian, timing = true, median <= a.maxMedian
	}
	client := ""
	if int64(n) >= a.minClientCommands {
		for i, p := range a.clients {
			if hasPrefixFold(s.client, p) {
				client = a.clientNames[i]
				break
			}
		}
	}
	if !timing && client == "" {
		return
	}
	sig := s.strs[:0]
	if timing {
		sig = append(sig, "timing")
	}
	if client != "" {
		sig = append(sig, "client")
	}
	emit(r, out, allEmits, func(d *sdk.Draft) {
		d.Int(kCommands, int64(n))
		if haveMedian {
			d.Number(kMedianGap, median)
		}
		if client != "" {
			d.String(kBotClient, client)
		}
		d.Strings(kSignals, sig)
	})
	s.strs = sig[:0]
}

// ---- R0032 discovery burst ----------------------------------------------------------------

// discovery fires when at least min_distinct distinct discovery commands (a command word in
// verbs, or an argument naming one of paths) run within window_ms. Without command times, the
// whole session is the window when duration_ms fits in it.
type discovery struct {
	windowMs    float64
	minDistinct int64
	verbs       wordSet
	paths       keywords
}

func newDiscovery(c *conf) detector {
	d := &discovery{
		windowMs:    c.floatRange("window_ms", 60000, 1, 1e12),
		minDistinct: c.intMin("min_distinct", 5, 2),
		verbs:       c.words("verbs"),
		paths:       c.optKeywords("paths"),
	}
	if n := len(d.verbs.words) + len(d.paths.words); n < int(d.minDistinct) {
		c.fail("min_distinct %d is more than the %d verbs and paths listed", d.minDistinct, n)
	}
	return d
}

func (d *discovery) name(id int) string {
	if id < len(d.verbs.words) {
		return d.verbs.words[id]
	}
	return d.paths.words[id-len(d.verbs.words)]
}

func (d *discovery) detect(s *session, r *sdk.Rule[params], out *sdk.Drafts) {
	useTimes := s.times != nil
	if !useTimes && !(s.hasDuration && s.duration <= d.windowMs) || !s.anyVerb(&d.verbs) && !s.anyKeyword(&d.paths) {
		return
	}
	occ := s.occ[:0]
	for gi := range s.segs {
		g := &s.segs[gi]
		if s.verbIn(g, &d.verbs) {
			occ = append(occ, occurrence{g.cmd, s.verbIndex(g, &d.verbs)})
		}
		if !s.segmentHas(g, &d.paths) {
			continue
		}
		for m := g.m0; m < g.m1; m++ {
			if i := s.kwAt(g, m, &d.paths); i >= 0 {
				occ = append(occ, occurrence{g.cmd, len(d.verbs.words) + i})
			}
		}
	}
	s.occ = occ[:0]
	if len(occ) < int(d.minDistinct) {
		return
	}
	counts := s.count[:0]
	for range len(d.verbs.words) + len(d.paths.words) {
		counts = append(counts, 0)
	}
	s.count = counts[:0]
	best, bl, br, distinct, l := 0, 0, 0, 0, 0
	for i, o := range occ {
		if counts[o.id] == 0 {
			distinct++
		}
		counts[o.id]++
		for useTimes && s.times[o.cmd]-s.times[occ[l].cmd] > d.windowMs {
			if counts[occ[l].id]--; counts[occ[l].id] == 0 {
				distinct--
			}
			l++
		}
		if distinct > best {
			best, bl, br = distinct, l, i
		}
	}
	if int64(best) < d.minDistinct {
		return
	}
	names := s.strs[:0]
	for _, o := range occ[bl : br+1] {
		names = appendUnique(names, d.name(o.id))
	}
	span := 0.0
	if useTimes {
		span = s.times[occ[br].cmd] - s.times[occ[bl].cmd]
	}
	emit(r, out, allEmits, func(dr *sdk.Draft) {
		dr.Int(kDiscoveryCount, int64(best)).Strings(kDiscoveryCommands, names)
		if useTimes {
			dr.Number(kBurstSpan, span)
		}
	})
	s.strs = names[:0]
}

// ---- R0033 download then execute ----------------------------------------------------------

// downloadExec fires when a file fetched by one of downloaders (its URL's file name, its -O/-o
// or redirection target, its other operands) is later run by path (./x, /tmp/x) or through one
// of interpreters (sh x.sh), or when a download is piped into an interpreter.
type downloadExec struct {
	downloaders, interpreters wordSet
}

func newDownloadExec(c *conf) detector {
	return &downloadExec{downloaders: c.words("downloaders"), interpreters: c.words("interpreters")}
}

func (d *downloadExec) detect(s *session, r *sdk.Rule[params], out *sdk.Drafts) {
	if !s.anyVerb(&d.downloaders) {
		return
	}
	names := s.strs2[:0] // candidate file names, with the segment that fetched each in nameSeg
	nameSeg := s.count[:0]
	marks := s.count2[:0] // per segment: 1 when it fetched something that ran
	for range s.segs {
		marks = append(marks, 0)
	}
	executed := s.strs[:0]
	piped := false
	for gi := range s.segs {
		g := &s.segs[gi]
		if s.verb(g) == "" {
			continue
		}
		if s.verbIn(g, &d.downloaders) {
			names, nameSeg = downloadedNames(s, gi, names, nameSeg)
			if d.pipedToInterpreter(s, gi) {
				piped = true
				marks[gi] = 1
			}
			continue
		}
		target := d.executedFile(s, g)
		if target == "" {
			continue
		}
		for k, n := range names {
			if n == target {
				executed = appendUnique(executed, target)
				marks[nameSeg[k]] = 1
			}
		}
	}
	s.count = nameSeg[:0]
	if len(executed) == 0 && !piped {
		s.strs2, s.count2, s.strs = names[:0], marks[:0], executed[:0]
		return
	}
	hosts, shas := downloadSources(s, marks, executed, s.strs3[:0], s.files[:0])
	emit(r, out, allEmits, func(dr *sdk.Draft) {
		if len(executed) > 0 {
			dr.Strings(kExecutedFiles, executed)
		}
		if piped {
			dr.Bool(kPiped, true)
		}
		if len(hosts) > 0 {
			dr.Strings(kURLHosts, hosts)
		}
		if len(shas) > 0 {
			dr.Strings(kDownloadSHA, shas)
		}
	})
	s.strs2, s.count2, s.strs, s.strs3, s.files = names[:0], marks[:0], executed[:0], hosts[:0], shas[:0]
}

// downloadedNames appends to names the file names the download of segment gi may have
// written (its URL's file name, its -O/-o/-r or redirection target, its other operands), and
// gi to nameSeg for each; both are bounded by 2*maxDistinct.
func downloadedNames(s *session, gi int, names []string, nameSeg []int) ([]string, []int) {
	g := &s.segs[gi]
	for _, a := range s.args(g) {
		name := downloadedName(a)
		if name != "" && name != "-" && name != "null" && len(names) < 2*maxDistinct {
			names = append(names, name)
			nameSeg = append(nameSeg, gi)
		}
	}
	files := s.redirects(g, true, s.files[:0])
	for _, f := range files {
		if b := base(f); b != "" && b != "null" && len(names) < 2*maxDistinct {
			names = append(names, b)
			nameSeg = append(nameSeg, gi)
		}
	}
	s.files = files[:0]
	return names, nameSeg
}

// downloadedName is the file name one argument of a downloader names, or "".
func downloadedName(a string) string {
	switch {
	case urlFile(a) != "":
		return urlFile(a)
	case urlHost(a) != "":
	case strings.HasPrefix(a, "--"):
		if i := strings.IndexByte(a, '='); i > 0 {
			return base(a[i+1:])
		}
	case len(a) > 2 && a[0] == '-' && (a[1] == 'O' || a[1] == 'o' || a[1] == 'r'):
		return base(a[2:])
	case isFlag(a):
	default:
		if op, t := redirection(a); op == 0 {
			return base(a)
		} else if t != "" && t != "-" && op == '>' {
			return base(t)
		}
	}
	return ""
}

// pipedToInterpreter reports whether the download of segment gi is piped, in the same
// command, into one of interpreters.
func (d *downloadExec) pipedToInterpreter(s *session, gi int) bool {
	g := &s.segs[gi]
	for j := gi + 1; j < len(s.segs) && s.segs[j].sep == '|' && s.segs[j].cmd == g.cmd; j++ {
		if s.verbIn(&s.segs[j], &d.interpreters) {
			return true
		}
	}
	return false
}

// executedFile is the base name of the file segment g runs: its verb when given by path
// (./x, /tmp/x), or the first operand of one of interpreters (sh x.sh); else "".
func (d *downloadExec) executedFile(s *session, g *segment) string {
	if w := s.words[g.verb]; strings.IndexByte(w, '/') >= 0 {
		return base(w)
	}
	if !s.verbIn(g, &d.interpreters) {
		return ""
	}
	target := ""
	ops := s.operands(g, s.files[:0])
	if len(ops) > 0 {
		target = base(ops[0])
	}
	s.files = ops[:0]
	return target
}

// downloadSources appends to hosts and shas the URL hosts and recorded SHA-256 digests of
// the downloads that ran: those of the marked segments, and every URL whose file name was
// executed.
func downloadSources(s *session, marks []int, executed, hosts, shas []string) ([]string, []string) {
	for gi := range s.segs {
		if marks[gi] == 0 {
			continue
		}
		for _, a := range s.args(&s.segs[gi]) {
			h := urlHost(a)
			if h == "" {
				continue
			}
			hosts = appendUnique(hosts, h)
			for k, u := range s.urls {
				if u == a || urlHost(u) == h && urlFile(u) == urlFile(a) {
					if sha := s.sha(k); sha != "" {
						shas = appendUnique(shas, sha)
					}
				}
			}
		}
	}
	for k, u := range s.urls {
		if f := urlFile(u); f != "" && slices.Contains(executed, f) {
			if h := urlHost(u); h != "" {
				hosts = appendUnique(hosts, h)
			}
			if sha := s.sha(k); sha != "" {
				shas = appendUnique(shas, sha)
			}
		}
	}
	return hosts, shas
}

// ---- R0034 persistence combination --------------------------------------------------------

// persistence fires when at least min_mechanisms of mechanisms are installed in one session: a
// mechanism is installed when a command writes one of its paths (redirection, tee, cp, sed -i,
// ...) or runs one of its commands. Each mechanism names its technique; the rule tags the
// emits entries of the mechanisms found.
type persistence struct {
	minMechanisms int64
	mechs         []category
	vmask, kmask  uint64 // masks(), computed at configure
	exact         bool
}

func newPersistence(c *conf) detector {
	p := &persistence{
		minMechanisms: c.intMin("min_mechanisms", 2, 1),
		mechs:         c.categories("mechanisms", "paths", "commands"),
	}
	p.vmask, p.kmask, p.exact = p.masks()
	return p
}

func (p *persistence) detect(s *session, r *sdk.Rule[params], out *sdk.Drafts) {
	possible := 0
	for mi := range p.mechs {
		if m := &p.mechs[mi]; s.anyKeyword(&m.paths) || s.anyVerb(&m.commands.first) {
			possible++
		}
	}
	if int64(possible) < p.minMechanisms {
		return
	}
	var found, set uint64
	names := s.strs[:0]
	for gi := range s.segs {
		g := &s.segs[gi]
		if p.exact && g.vl&p.vmask == 0 && g.kl&p.kmask == 0 {
			continue // no mechanism's command runs here, and none of its paths occurs
		}
		files, written := s.files[:0], false
		for mi := range p.mechs {
			m := &p.mechs[mi]
			if found&(1<<mi) != 0 {
				continue
			}
			hit := m.commands.matches(s, g)
			if !hit && s.segmentHas(g, &m.paths) {
				if !written {
					files, written = s.writes(g, files), true
				}
				for _, f := range files {
					if s.kwIn(g, &m.paths, f) >= 0 {
						hit = true
						break
					}
				}
			}
			if hit {
				found |= 1 << mi
				set |= m.emits
				names = append(names, m.name)
			}
		}
		s.files = files[:0]
	}
	if int64(len(names)) >= p.minMechanisms {
		emit(r, out, set, func(d *sdk.Draft) {
			d.Strings(kMechanisms, names).Int(kMechanismCount, int64(len(names)))
		})
	}
	s.strs = names[:0]
}

// masks returns the bits of the mechanisms' command lists and path lists in segment.vl and
// segment.kl, and whether they are exact (every list id below 64): then a segment with none
// of them set is skipped without a call a mechanism.
func (p *persistence) masks() (vmask, kmask uint64, exact bool) {
	for mi := range p.mechs {
		m := &p.mechs[mi]
		if m.commands.first.id >= 64 || m.paths.id >= 64 {
			return 0, 0, false
		}
		vmask |= 1 << m.commands.first.id
		kmask |= 1 << m.paths.id
	}
	return vmask, kmask, true
}

// ---- R0035 history wipe after activity ----------------------------------------------------

// historyWipe fires when the shell history is cleared (a segment containing one of markers, or
// writing, truncating or deleting one of files) after at least min_prior_commands other
// commands.
type historyWipe struct {
	minPrior       int64
	markers, files keywords
}

func newHistoryWipe(c *conf) detector {
	return &historyWipe{
		minPrior: c.intMin("min_prior_commands", 3, 1),
		markers:  c.keywords("markers"),
		files:    c.keywords("files"),
	}
}

func (h *historyWipe) detect(s *session, r *sdk.Rule[params], out *sdk.Drafts) {
	if !s.anyKeyword(&h.markers) && !s.anyKeyword(&h.files) {
		return
	}
	prior, best := 0, -1
	methods := s.strs[:0]
	for gi := range s.segs {
		g := &s.segs[gi]
		wipe := false
		for m := g.m0; m < g.m1 && s.segmentHas(g, &h.markers); m++ {
			if i := s.kwAt(g, m, &h.markers); i >= 0 {
				methods = appendUnique(methods, h.markers.words[i])
				wipe = true
			}
		}
		if s.segmentHas(g, &h.files) {
			files := s.deletes(g, s.writes(g, s.files[:0]))
			for _, f := range files {
				if i := s.kwIn(g, &h.files, f); i >= 0 {
					methods = appendUnique(methods, h.files.words[i])
					wipe = true
				}
			}
			s.files = files[:0]
		}
		switch {
		case wipe:
			best = max(best, prior)
		case g.verb >= 0:
			prior++
		}
	}
	if int64(best) >= h.minPrior {
		emit(r, out, allEmits, func(d *sdk.Draft) {
			d.Int(kPriorCommands, int64(best)).Strings(kWipeMethods, methods)
		})
	}
	s.strs = methods[:0]
}

// ---- R0036 resource hijacking -------------------------------------------------------------

// hijack fires on a miner launched (command word in miners), a pool address (pool_markers
// such as stratum+tcp://, pool_domains), miner-only flags (miner_flags) or a Monero wallet
// address as an argument, in segments whose command is not one of ignore_verbs (grep, pkill:
// evicting a rival is not mining). cpu_probe says whether a CPU probe (probe_verbs,
// probe_paths) ran before the first mining signal.
type hijack struct {
	miners, ignoreVerbs, probeVerbs                  wordSet
	poolMarkers, poolDomains, minerFlags, probePaths keywords
	wallets                                          bool
}

func newHijack(c *conf) detector {
	return &hijack{
		miners:      c.words("miners"),
		poolMarkers: c.optKeywords("pool_markers"),
		poolDomains: c.optKeywords("pool_domains"),
		minerFlags:  c.optKeywords("miner_flags"),
		ignoreVerbs: c.optWords("ignore_verbs"),
		probeVerbs:  c.optWords("probe_verbs"),
		probePaths:  c.optKeywords("probe_paths"),
		wallets:     c.r.Bool("wallets", true),
	}
}

func (h *hijack) detect(s *session, r *sdk.Rule[params], out *sdk.Drafts) {
	if !s.anyVerb(&h.miners) && !s.anyKeyword(&h.poolMarkers) && !s.anyKeyword(&h.poolDomains) &&
		!s.anyKeyword(&h.minerFlags) && !(h.wallets && s.maxSeg >= 95) {
		return
	}
	sig, miners, pools := s.strs[:0], s.strs2[:0], s.strs3[:0]
	probed, probeBefore, signalled := false, false, false
	for gi := range s.segs {
		g := &s.segs[gi]
		v := s.verb(g)
		hit := false
		if s.verbIn(g, &h.miners) {
			miners = appendUnique(miners, v)
			sig = appendUnique(sig, "miner")
			hit = true
		}
		if !s.verbIn(g, &h.ignoreVerbs) {
			for m := g.m0; m < g.m1; m++ {
				if i := s.kwAt(g, m, &h.poolMarkers); i >= 0 {
					if host := urlHost(s.cmds[g.cmd][s.matches[m].From:]); host != "" {
						pools = appendUnique(pools, host)
					}
					sig = appendUnique(sig, "pool")
					hit = true
				}
			}
			for m := g.m0; m < g.m1; m++ {
				if i := s.kwAt(g, m, &h.poolDomains); i >= 0 {
					if dom := h.poolDomains.words[i]; !anyIn(dom, pools) && !anyContains(pools, dom) {
						pools = append(pools, dom)
					}
					sig = appendUnique(sig, "pool")
					hit = true
				}
				if s.kwAt(g, m, &h.minerFlags) >= 0 {
					sig = appendUnique(sig, "flags")
					hit = true
				}
			}
			if h.wallets && len(g.text) >= 95 {
				for _, a := range s.args(g) {
					if isWallet(a) {
						sig = appendUnique(sig, "wallet")
						hit = true
					}
				}
			}
		}
		if hit {
			if !signalled {
				signalled, probeBefore = true, probed
			}
			continue
		}
		if !signalled && (s.verbIn(g, &h.probeVerbs) || s.segmentHas(g, &h.probePaths)) {
			probed = true
		}
	}
	if len(sig) > 0 {
		emit(r, out, allEmits, func(d *sdk.Draft) {
			d.Strings(kSignals, sig)
			if len(miners) > 0 {
				d.Strings(kMiners, miners)
			}
			if len(pools) > 0 {
				d.Strings(kPoolHosts, pools)
			}
			d.Bool(kCPUProbe, probeBefore)
		})
	}
	s.strs, s.strs2, s.strs3 = sig[:0], miners[:0], pools[:0]
}

// anyContains reports whether some entry of list contains sub.
func anyContains(list []string, sub string) bool {
	for _, x := range list {
		if strings.Contains(x, sub) {
			return true
		}
	}
	return false
}

// anyIn reports whether s contains some entry of list.
func anyIn(s string, list []string) bool {
	for _, x := range list {
		if strings.Contains(s, x) {
			return true
		}
	}
	return false
}

// isWallet reports whether an argument carries a Monero address (95 or 106 base58 characters
// starting with 4 or 8), alone or as --user=ADDR, ADDR.worker, ADDR+diff.
func isWallet(a string) bool {
	if i := strings.IndexByte(a, '='); i >= 0 {
		a = a[i+1:]
	}
	if i := strings.IndexAny(a, ".+/:"); i >= 0 {
		a = a[:i]
	}
	if len(a) != 95 && len(a) != 106 || a[0] != '4' && a[0] != '8' {
		return false
	}
	for i := 0; i < len(a); i++ { // base58, lower-cased
		if c := a[i]; !(c >= '1' && c <= '9' || c >= 'a' && c <= 'z') {
			return false
		}
	}
	return true
}

// ---- R0037 outbound scanning --------------------------------------------------------------

// scan fires on a scanner run (scanners, unless every argument is one of ignore_args such as
// --version), a zero-I/O netcat over a port range, a connect command (sweep_verbs) inside a
// loop (loop_verbs) with a variable target, or connect_verbs reaching at least min_targets
// distinct hosts.
type scan struct {
	scanners, connectVerbs, sweepVerbs, loopVerbs wordSet
	ignoreArgs                                    []string
	minTargets                                    int64
}

func newScan(c *conf) detector {
	return &scan{
		scanners:     c.words("scanners"),
		ignoreArgs:   c.optList("ignore_args"),
		connectVerbs: c.words("connect_verbs"),
		sweepVerbs:   c.words("sweep_verbs"),
		loopVerbs:    c.words("loop_verbs"),
		minTargets:   c.intMin("min_targets", 10, 2),
	}
}

func (sc *scan) detect(s *session, r *sdk.Rule[params], out *sdk.Drafts) {
	if !s.anyVerb(&sc.scanners) && !s.anyVerb(&sc.connectVerbs) && !s.anyVerb(&sc.sweepVerbs) {
		return
	}
	loopCmd := s.count[:0]
	for range s.cmds {
		loopCmd = append(loopCmd, 0)
	}
	for gi := 0; gi < len(s.segs) && s.anyVerb(&sc.loopVerbs); gi++ {
		if s.verbIn(&s.segs[gi], &sc.loopVerbs) {
			loopCmd[s.segs[gi].cmd] = 1
		}
	}
	sig, tools, targets := s.strs[:0], s.strs2[:0], s.strs3[:0]
	for gi := range s.segs {
		g := &s.segs[gi]
		v := s.verb(g)
		if v == "" {
			continue
		}
		if s.verbIn(g, &sc.scanners) {
			args := s.args(g)
			real := false
			for _, a := range args {
				if !slices.Contains(sc.ignoreArgs, a) {
					real = true
				}
			}
			if real {
				tools = appendUnique(tools, v)
				sig = appendUnique(sig, "tool")
			}
		}
		sweep, connect := s.verbIn(g, &sc.sweepVerbs), s.verbIn(g, &sc.connectVerbs)
		if !sweep && !connect {
			continue
		}
		zero := false
		for _, a := range s.args(g) {
			if len(a) > 1 && a[0] == '-' && a[1] != '-' && strings.IndexByte(a, 'z') > 0 {
				zero = true
			}
		}
		ops := s.operands(g, s.files[:0])
		for _, op := range ops {
			if zero && sweep && isPortRange(op) {
				sig = appendUnique(sig, "port_range")
			}
			if loopCmd[g.cmd] == 1 && strings.IndexByte(op, '$') >= 0 {
				if h := urlHost(op); strings.IndexByte(h, '$') >= 0 || h == "" && sweep {
					sig = appendUnique(sig, "loop_sweep")
				}
			}
			if !connect {
				continue
			}
			if h := hostArg(op); h != "" && strings.IndexByte(h, '$') < 0 {
				targets = appendUnique(targets, h)
			}
		}
		s.files = ops[:0]
	}
	if int64(len(targets)) >= sc.minTargets {
		sig = appendUnique(sig, "many_targets")
	}
	if len(sig) > 0 {
		n := len(targets)
		emit(r, out, allEmits, func(d *sdk.Draft) {
			d.Strings(kSignals, sig)
			if len(tools) > 0 {
				d.Strings(kScanners, tools)
			}
			d.Int(kTargets, int64(n))
		})
	}
	s.count, s.strs, s.strs2, s.strs3 = loopCmd[:0], sig[:0], tools[:0], targets[:0]
}

// isPortRange reports whether w is a port range such as 1-1024 or 20-25,80.
func isPortRange(w string) bool {
	dash := strings.IndexByte(w, '-')
	if dash <= 0 || dash == len(w)-1 {
		return false
	}
	for i := 0; i < len(w); i++ {
		if c := w[i]; !(c >= '0' && c <= '9' || c == '-' || c == ',') {
			return false
		}
	}
	return true
}

// ---- R0038 credential dumping -------------------------------------------------------------

// credDump fires when at least min_reads segments read a credential source: one of a source's
// paths as an operand of read_verbs (cat, grep, cp, base64, tar, curl -F @...) or an input
// redirection, skipping exclude_suffixes (.pub), or run one of its tools (directly or through
// interpreters: python3 laZagne.py). Each source names its technique.
type credDump struct {
	readVerbs, interpreters wordSet
	excludeSuffixes         []string
	sources                 []category
	minReads                int64
}

func newCredDump(c *conf) detector {
	return &credDump{
		readVerbs:       c.words("read_verbs"),
		excludeSuffixes: c.optList("exclude_suffixes"),
		interpreters:    c.optWords("interpreters"),
		sources:         c.categories("sources", "paths", "tools"),
		minReads:        c.intMin("min_reads", 1, 1),
	}
}

// isTool reports whether a command name is tool (or tool.py, tool.sh ...).
func isTool(name, tool string) bool {
	return name == tool || len(name) > len(tool) && strings.HasPrefix(name, tool) && name[len(tool)] == '.'
}

func (cd *credDump) detect(s *session, r *sdk.Rule[params], out *sdk.Drafts) {
	possible := false
	for ci := range cd.sources {
		possible = possible || s.anyKeyword(&cd.sources[ci].paths) || s.anyKeyword(&cd.sources[ci].tools)
	}
	if !possible {
		return
	}
	var found, set uint64
	names, tools := s.strs[:0], s.strs2[:0]
	reads := 0
	for gi := range s.segs {
		g := &s.segs[gi]
		v := s.verb(g)
		files := s.files[:0]
		for ci := range cd.sources {
			if s.segmentHas(g, &cd.sources[ci].paths) {
				files = s.redirects(g, false, files)
				if s.verbIn(g, &cd.readVerbs) {
					n := len(files)
					files = s.operands(g, files)
					switch v {
					case "cp", "scp", "rsync": // the destination is written, not read
						if len(files)-n >= 2 {
							files = files[:len(files)-1]
						}
					}
				}
				break
			}
		}
		prog := v
		if s.verbIn(g, &cd.interpreters) {
			ops := s.operands(g, s.tmp[:0])
			if len(ops) > 0 {
				prog = base(ops[0])
			}
			s.tmp = ops[:0]
		}
		hit := false
		for ci := range cd.sources {
			c := &cd.sources[ci]
			if len(files) == 0 && !s.segmentHas(g, &c.tools) {
				continue
			}
			for _, t := range c.tools.words {
				if prog != "" && isTool(prog, t) {
					tools = appendUnique(tools, t)
					hit = true
					set |= c.emits
					if found&(1<<ci) == 0 {
						found |= 1 << ci
						names = append(names, c.name)
					}
				}
			}
			for _, f := range files {
				if s.kwIn(g, &c.paths, f) < 0 || endsWithAny(f, cd.excludeSuffixes) {
					continue
				}
				hit = true
				set |= c.emits
				if found&(1<<ci) == 0 {
					found |= 1 << ci
					names = append(names, c.name)
				}
			}
		}
		s.files = files[:0]
		if hit {
			reads++
		}
	}
	if reads > 0 && int64(reads) >= cd.minReads {
		emit(r, out, set, func(d *sdk.Draft) {
			d.Strings(kCredentialSources, names).Int(kCredentialReads, int64(reads))
			if len(tools) > 0 {
				d.Strings(kDumpTools, tools)
			}
		})
	}
	s.strs, s.strs2 = names[:0], tools[:0]
}

func endsWithAny(s string, suffixes []string) bool {
	for _, x := range suffixes {
		if strings.HasSuffix(s, x) {
			return true
		}
	}
	return false
}

// ---- R0039 competitor removal -------------------------------------------------------------

// competitor fires when at least min_rivals distinct rival malware names (rivals) are evicted:
// named in the arguments of an eviction command (actions: kill, pkill, rm, systemctl stop,
// ...), or of a lookup (lookups: pgrep, grep, pidof) in a command line that also evicts.
type competitor struct {
	rivals    keywords
	lookups   wordSet
	actions   phrases
	minRivals int64
}

func newCompetitor(c *conf) detector {
	return &competitor{
		rivals:    c.keywords("rivals"),
		lookups:   c.optWords("lookups"),
		actions:   c.phrases("actions", c.list("actions")),
		minRivals: c.intMin("min_rivals", 2, 1),
	}
}

func (cp *competitor) isAction(s *session, g *segment) bool { return cp.actions.matches(s, g) }

func (cp *competitor) detect(s *session, r *sdk.Rule[params], out *sdk.Drafts) {
	if !s.anyKeyword(&cp.rivals) || !s.anyVerb(&cp.actions.first) {
		return
	}
	evicts := s.count[:0] // per command line: 1 when it has an eviction command
	for range s.cmds {
		evicts = append(evicts, 0)
	}
	for gi := range s.segs {
		if cp.isAction(s, &s.segs[gi]) {
			evicts[s.segs[gi].cmd] = 1
		}
	}
	rivals := s.strs[:0]
	removals, lastCmd := 0, -1
	for gi := range s.segs {
		g := &s.segs[gi]
		if evicts[g.cmd] == 0 || !(s.verbIn(g, &cp.lookups) || cp.isAction(s, g)) {
			continue
		}
		hit := false
		for m := g.m0; m < g.m1; m++ {
			if i := s.kwAt(g, m, &cp.rivals); i >= 0 {
				rivals = appendUnique(rivals, cp.rivals.words[i])
				hit = true
			}
		}
		if hit && g.cmd != lastCmd {
			removals++
			lastCmd = g.cmd
		}
	}
	if int64(len(rivals)) >= cp.minRivals {
		emit(r, out, allEmits, func(d *sdk.Draft) {
			d.Strings(kRivals, rivals).Int(kRemovals, int64(removals))
		})
	}
	s.count, s.strs = evicts[:0], rivals[:0]
}

// ---- R0040 C2 beaconing -------------------------------------------------------------------

// beacon fires on periodic callbacks: a host contacted by one of protocols' commands in at
// least min_repeats command lines whose times are regular (mean interval at least
// min_interval_ms, coefficient of variation at most max_jitter), or a loop (loop_verbs) that
// contacts a host and sleeps (sleep_verbs) at least min_loop_sleep_s each turn. protocols maps
// each command (or /dev/tcp for bash redirections) to its technique; the rule tags the emits
// entries of the protocols used.
type beacon struct {
	protocols               []category // name: the command; tools unused
	names                   wordSet    // the protocols' names, in the same order
	devKW                   keywords   // /dev/tcp/, /dev/udp/
	minRepeats              int64
	minIntervalMs, maxJiter float64
	loopVerbs, sleepVerbs   wordSet
	minLoopSleepS           float64
	devTCP                  int // index of the /dev/tcp protocol, -1 when not listed
}

func newBeacon(c *conf) detector {
	b := &beacon{
		devTCP:        -1,
		minRepeats:    c.intMin("min_repeats", 3, 2),
		minIntervalMs: c.floatRange("min_interval_ms", 5000, 0, 1e12),
		maxJiter:      c.floatRange("max_jitter", 0.25, 0, 10),
		loopVerbs:     c.words("loop_verbs"),
		sleepVerbs:    c.words("sleep_verbs"),
		minLoopSleepS: c.floatRange("min_loop_sleep_s", 5, 0, 1e9),
	}
	v, ok := c.r.Value("protocols")
	m, isMap := v.(map[string]any)
	if !ok || !isMap || len(m) == 0 || len(m) > 64 {
		c.fail("params.protocols must be a mapping of command name to technique id (1 to 64 entries)")
		return b
	}
	for name, t := range m {
		ts, ok := t.(string)
		if !ok {
			c.fail("params.protocols.%s must be a technique id", name)
			continue
		}
		b.protocols = append(b.protocols, category{name: strings.ToLower(name), emits: c.emitsOf("params.protocols."+name, ts)})
	}
	slices.SortFunc(b.protocols, func(x, y category) int { return strings.Compare(x.name, y.name) })
	names := make([]string, len(b.protocols))
	for i, p := range b.protocols {
		names[i] = p.name
		if p.name == "/dev/tcp" {
			b.devTCP = i
		}
	}
	b.names = c.dict.addVerbs(names)
	b.devKW = c.dict.addKeywords([]string{"/dev/tcp/", "/dev/udp/"})
	return b
}

// target returns the host g contacts and the index of its protocol, -1 when none.
func (b *beacon) target(s *session, g *segment) (host string, proto int) {
	proto = -1
	if b.devTCP >= 0 && s.segmentHas(g, &b.devKW) {
		targets := s.redirects(g, true, s.tmp[:0])
		for _, t := range targets {
			if strings.HasPrefix(t, "/dev/tcp/") || strings.HasPrefix(t, "/dev/udp/") {
				h := t[len("/dev/tcp/"):]
				if i := strings.IndexByte(h, '/'); i >= 0 {
					h = h[:i]
				}
				if h != "" {
					host, proto = h, b.devTCP
					break
				}
			}
		}
		s.tmp = targets[:0]
		if proto >= 0 {
			return host, proto
		}
	}
	if g.verb < 0 {
		return "", -1
	}
	p := s.verbIndex(g, &b.names)
	if p < 0 {
		return "", -1
	}
	ops := s.operands(g, s.tmp[:0])
	for _, a := range ops {
		if h := hostArg(a); h != "" {
			host, proto = h, p
			break
		}
	}
	s.tmp = ops[:0]
	return host, proto
}

func (b *beacon) detect(s *session, r *sdk.Rule[params], out *sdk.Drafts) {
	if !s.anyVerb(&b.names) && !(b.devTCP >= 0 && s.anyKeyword(&b.devKW)) {
		return
	}
	hosts, occ, protoOf := b.contacts(s)
	sig, beaconHosts := s.strs[:0], s.strs3[:0]
	var set uint64
	interval, repeats := 0.0, 0
	// periodic callbacks
	if s.times != nil {
		for id, h := range hosts {
			n, mean, sd := callbackPeriod(s, occ, id)
			if int64(n) < b.minRepeats {
				continue
			}
			if mean < b.minIntervalMs || mean <= 0 || sd/mean > b.maxJiter {
				continue
			}
			sig = appendUnique(sig, "periodic")
			beaconHosts = appendUnique(beaconHosts, h)
			set |= b.emitsOfProtocols(protoOf[id])
			if interval == 0 {
				interval = math.Round(mean)
			}
			repeats = max(repeats, n)
		}
	}
	// loops that call out and sleep
	oi := 0 // occ is in command order
	for gi := 0; gi < len(s.segs); {
		c := s.segs[gi].cmd
		var loop bool
		var sleep float64
		gi, loop, sleep = b.loopSleep(s, gi)
		if !loop || sleep < b.minLoopSleepS || sleep <= 0 {
			continue
		}
		any := false
		for oi < len(occ) && occ[oi].cmd < c {
			oi++
		}
		for ; oi < len(occ) && occ[oi].cmd == c; oi++ {
			any = true
			beaconHosts = appendUnique(beaconHosts, hosts[occ[oi].id])
			set |= b.emitsOfProtocols(protoOf[occ[oi].id])
		}
		if any {
			sig = appendUnique(sig, "loop")
			if interval == 0 {
				interval = sleep * 1000
			}
		}
	}
	if len(sig) > 0 {
		emit(r, out, set, func(d *sdk.Draft) {
			d.Strings(kSignals, sig).Strings(kBeaconHosts, beaconHosts).Number(kIntervalMs, interval)
			if repeats > 0 {
				d.Int(kRepeats, int64(repeats))
			}
		})
	}
	s.strs, s.strs2, s.strs3, s.occ, s.count = sig[:0], hosts[:0], beaconHosts[:0], occ[:0], protoOf[:0]
}

// contacts lists the distinct hosts the session's commands contact (at most maxDistinct),
// each (command, host) once per command in occ, in command order, and per host the bit set
// of the protocols that reached it. The slices are the session's scratch s.strs2, s.occ and
// s.count, which the caller hands back.
func (b *beacon) contacts(s *session) (hosts []string, occ []occurrence, protoOf []int) {
	hosts = s.strs2[:0]
	occ = s.occ[:0]
	protoOf = s.count[:0]
	lastCmd := s.count2[:0] // per host: the last command line that contacted it
	for gi := range s.segs {
		g := &s.segs[gi]
		h, p := b.target(s, g)
		if p < 0 {
			continue
		}
		id := slices.Index(hosts, h)
		if id < 0 {
			if len(hosts) >= maxDistinct {
				continue
			}
			id = len(hosts)
			hosts = append(hosts, h)
			protoOf = append(protoOf, 0)
			lastCmd = append(lastCmd, -1)
		}
		protoOf[id] |= 1 << p
		if lastCmd[id] != g.cmd { // segments come in command order
			lastCmd[id] = g.cmd
			occ = append(occ, occurrence{g.cmd, id})
		}
	}
	s.count2 = lastCmd[:0]
	return hosts, occ, protoOf
}

// callbackPeriod is how many commands contacted host id, and the mean and standard
// deviation of the time between them, in the unit of s.times (ms).
func callbackPeriod(s *session, occ []occurrence, id int) (n int, mean, sd float64) {
	prev := -1.0
	sum, sumSq := 0.0, 0.0
	for _, o := range occ {
		if o.id != id {
			continue
		}
		t := s.times[o.cmd]
		if prev >= 0 {
			d := t - prev
			sum += d
			sumSq += d * d
		}
		prev = t
		n++
	}
	if n < 2 {
		return n, 0, 0
	}
	k := float64(n - 1)
	mean = sum / k
	sd = math.Sqrt(math.Max(0, sumSq/k-mean*mean))
	return n, mean, sd
}

// loopSleep reads the command whose first segment is gi: whether one of its segments is one
// of loopVerbs, and the longest sleep of its sleepVerbs, in seconds. next is the first
// segment of the following command.
func (b *beacon) loopSleep(s *session, gi int) (next int, loop bool, sleep float64) {
	c := s.segs[gi].cmd
	for ; gi < len(s.segs) && s.segs[gi].cmd == c; gi++ {
		g := &s.segs[gi]
		if s.verbIn(g, &b.loopVerbs) {
			loop = true
		}
		if s.verbIn(g, &b.sleepVerbs) {
			for _, a := range s.args(g) {
				if d, ok := seconds(a); ok {
					sleep = max(sleep, d)
				}
			}
		}
	}
	return gi, loop, sleep
}

func (b *beacon) emitsOfProtocols(protos int) uint64 {
	var set uint64
	for p := range b.protocols {
		if protos&(1<<p) != 0 {
			set |= b.protocols[p].emits
		}
	}
	return set
}

// seconds parses a sleep argument: 60, 0.5, 30s, 5m, 1h.
func seconds(a string) (float64, bool) {
	mult := 1.0
	switch {
	case strings.HasSuffix(a, "s"):
		a = a[:len(a)-1]
	case strings.HasSuffix(a, "m"):
		a, mult = a[:len(a)-1], 60
	case strings.HasSuffix(a, "h"):
		a, mult = a[:len(a)-1], 3600
	case strings.HasSuffix(a, "d"):
		a, mult = a[:len(a)-1], 86400
	}
	f, err := strconv.ParseFloat(a, 64)
	if err != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, false
	}
	return f * mult, true
}
