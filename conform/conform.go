// Package conform is the runner every plugin must pass before it ships (`ttp conform`): it
// loads a module the way the host does and checks, one named check at a time, the contract
// of abi/ABI.md: marker and exports, imports, manifest, golden vectors, empty payloads,
// determinism across instances and calls, error replies to malformed records, memory growth
// over 10,000 calls, latency against the deadline, and a benchmark figure.
package conform

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/decnet/ttp/abi"
	"github.com/decnet/ttp/host"
	"github.com/decnet/ttp/rules"
)

// Result is one named check.
type Result struct {
	Name     string
	Passed   bool
	Skipped  bool
	Detail   string // why it failed, or what it measured
	Duration time.Duration
}

// Report is the outcome of one run.
type Report struct {
	Module   string
	Producer string
	Results  []Result
	NsPerEv  float64
	Slowest  time.Duration // the slowest vector call, wall time
	// SlowestCPU is the slowest vector call in its own CPU time (0 where it cannot be
	// measured): what an Extism module, which has no percentile, is judged on.
	SlowestCPU time.Duration
	P99        time.Duration // of the calls' own CPU time where it can be measured, else wall time
	// Stalls counts the calls that timed out and passed on their retry, made once on a fresh
	// instance under a budget of the call's own CPU time, as the daemon's pool retries them:
	// a busy host's doing, not the plugin's. A guest that loops fails its retry too.
	Stalls int64
}

// Failed counts the failed checks.
func (r *Report) Failed() int {
	n := 0
	for _, c := range r.Results {
		if !c.Passed && !c.Skipped {
			n++
		}
	}
	return n
}

// Options says where the rules and vectors are and how hard to push.
type Options struct {
	RulesDir   string        // rule definitions the plugin is configured with (rules/ttp)
	VectorsDir string        // golden vectors; "" skips that check
	Calls      int           // calls of the memory check; default 10,000
	MemBound   uint32        // allowed linear-memory growth over those calls; default 1 MiB
	Deadline   time.Duration // the host's per-call deadline; default host.DefaultDeadline
	Compiler   *host.Compiler
	// DefaultVectors, when VectorsDir is empty, is a directory whose subdirectory named after
	// the plugin holds its vectors (testdata/vectors/behavioral).
	DefaultVectors string
}

// Vector is one golden vector: an event in, the exact drafts out.
type Vector struct {
	Name   string         `yaml:"name"`
	Event  map[string]any `yaml:"event"`
	Drafts []Draft        `yaml:"drafts"`
	file   string
}

// Draft is an expected draft, compared exactly (confidence to 1e-9, evidence as canonical
// JSON so 3 and 3.0 are equal).
type Draft struct {
	RuleID         string         `yaml:"rule_id"`
	TechniqueID    string         `yaml:"technique_id"`
	SubTechniqueID string         `yaml:"sub_technique_id"`
	Tactic         string         `yaml:"tactic"`
	Confidence     float64        `yaml:"confidence"`
	Evidence       map[string]any `yaml:"evidence"`
}

// LoadVectors reads every *.yaml of dir: each a list of vectors.
func LoadVectors(dir string) ([]Vector, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("conform: no *.yaml vectors in %s", dir)
	}
	sort.Strings(files)
	var out []Vector
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		dec := yaml.NewDecoder(strings.NewReader(string(data)))
		dec.KnownFields(true)
		var vs []Vector
		if err := dec.Decode(&vs); err != nil {
			return nil, fmt.Errorf("conform: %s: %w", f, err)
		}
		for i := range vs {
			vs[i].file = f
			if vs[i].Name == "" {
				vs[i].Name = fmt.Sprintf("%s#%d", filepath.Base(f), i)
			}
		}
		out = append(out, vs...)
	}
	return out, nil
}

// Run checks the module at path.
func Run(ctx context.Context, path string, opt Options) (*Report, error) {
	if opt.Calls == 0 {
		opt.Calls = 10000
	}
	if opt.MemBound == 0 {
		opt.MemBound = 1 << 20
	}
	if opt.Deadline == 0 {
		opt.Deadline = host.DefaultDeadline
	}
	rep := &Report{Module: path}
	check := func(name string, f func() (string, error)) bool {
		start := time.Now()
		detail, err := f()
		r := Result{Name: name, Passed: err == nil, Detail: detail, Duration: time.Since(start)}
		if errors.Is(err, errSkip) {
			r.Passed, r.Skipped = false, true
			r.Detail = strings.TrimPrefix(err.Error(), errSkip.Error()+": ")
		} else if err != nil {
			r.Detail = err.Error()
		}
		rep.Results = append(rep.Results, r)
		return err == nil
	}
	wasm, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c := opt.Compiler

	var ins *host.Inspection
	if !check("module compiles", func() (string, error) {
		ins, err = c.Inspect(ctx, wasm)
		return fmt.Sprintf("%d bytes", len(wasm)), err
	}) {
		return rep, nil
	}
	extism := !slices.Contains(ins.Exports, "ttp_abi_v1") && slices.Contains(ins.Exports, "tag")
	check("version marker and required exports", func() (string, error) {
		if extism {
			for _, e := range []string{"describe", "configure", "tag"} {
				if !slices.Contains(ins.Exports, e) {
					return "", fmt.Errorf("Extism module without %s", e)
				}
			}
			return "Extism variant: describe, configure, tag", nil
		}
		var missing []string
		for _, e := range []string{"ttp_abi_v1", "ttp_alloc", "ttp_describe", "ttp_configure", "ttp_tag"} {
			if !slices.Contains(ins.Exports, e) {
				missing = append(missing, e)
			}
		}
		if len(missing) > 0 {
			return "", fmt.Errorf("missing %s (exports: %s)", strings.Join(missing, ", "), strings.Join(ins.Exports, ", "))
		}
		return "ttp_abi_v1, ttp_alloc, ttp_describe, ttp_configure, ttp_tag", nil
	})
	check("imports within the allowlist", func() (string, error) {
		var bad []string
		for _, imp := range ins.Imports {
			mod, name, _ := strings.Cut(imp, ".")
			if !host.AllowedImport(mod, name) && !(extism && mod == "extism:host/env") {
				bad = append(bad, imp)
			}
		}
		if len(bad) > 0 {
			return "", fmt.Errorf("forbidden: %s", strings.Join(bad, ", "))
		}
		return fmt.Sprintf("%d imports", len(ins.Imports)), nil
	})
	var m host.Module
	if !check("manifest valid", func() (string, error) {
		m, err = c.Load(ctx, path, wasm, host.Limits{Deadline: opt.Deadline})
		if err != nil {
			return "", err
		}
		man := m.Manifest()
		return fmt.Sprintf("%s, rule_kinds %v, %d kinds, %d evidence keys", man.Producer(), man.RuleKinds, len(man.Kinds), len(man.EvidenceKeys)), nil
	}) {
		return rep, nil
	}
	defer m.Close(ctx)
	man := m.Manifest()
	rep.Producer = man.Producer()

	var owned []*rules.Rule
	check("owns rules", func() (string, error) {
		if opt.RulesDir == "" {
			return "", fmt.Errorf("%w: no rules directory", errSkip)
		}
		all, err := rules.LoadDir(opt.RulesDir)
		if err != nil {
			return "", err
		}
		var ids []string
		for _, r := range all {
			if !r.IsPattern() && man.Owns(r.Match.Kind) {
				owned = append(owned, r)
				ids = append(ids, r.ID)
			}
		}
		if len(owned) == 0 {
			return "", fmt.Errorf("no rule of %s matches rule_kinds %v", opt.RulesDir, man.RuleKinds)
		}
		return strings.Join(ids, " "), nil
	})
	// The pool retries a timed-out call as the daemon does (host.Pool.Tag); its stalls are
	// reported with the checks' own.
	health := host.NewHealth(time.Now)
	defer func() { rep.Stalls += health.Stalls.Load() }()
	pool, rejected, err := host.NewPool(ctx, m, owned, host.PoolConfig{Size: 2, Health: health, Log: discardLog})
	if !check("configure accepts its rules", func() (string, error) {
		if err != nil {
			return "", err
		}
		if len(rejected) > 0 {
			return "", fmt.Errorf("rejected %+v", rejected)
		}
		return fmt.Sprintf("%d rules", len(owned)), nil
	}) {
		return rep, nil
	}
	defer pool.Retire(false)

	run := func(ev abi.Event) ([]abi.TagDraft, error) {
		var out []abi.TagDraft
		for _, e := range abi.Expand(ev) {
			if !pool.Handles(e.SourceKind) {
				continue
			}
			var err error
			start := time.Now()
			cpu, _ := host.CallCPUTime(func() { out, err = pool.Tag(ctx, nil, &e, out) })
			rep.Slowest = max(rep.Slowest, time.Since(start))
			rep.SlowestCPU = max(rep.SlowestCPU, cpu)
			if err != nil {
				return out, err
			}
		}
		return out, nil
	}

	var vectors []Vector
	if opt.VectorsDir == "" && opt.DefaultVectors != "" {
		if d := filepath.Join(opt.DefaultVectors, man.Name); isDir(d) {
			opt.VectorsDir = d
		}
	}
	check("golden vectors", func() (string, error) {
		if opt.VectorsDir == "" {
			return "", fmt.Errorf("%w: no --vectors directory", errSkip)
		}
		if vectors, err = LoadVectors(opt.VectorsDir); err != nil {
			return "", err
		}
		kinds := map[string]int{}
		var fails []string
		for _, v := range vectors {
			ev, err := toEvent(v.Event)
			if err != nil {
				fails = append(fails, fmt.Sprintf("%s: %v", v.Name, err))
				continue
			}
			kinds[ev.SourceKind]++
			got, err := run(ev)
			if err != nil {
				fails = append(fails, fmt.Sprintf("%s: %v", v.Name, err))
				continue
			}
			if diff := compare(v.Drafts, got); diff != "" {
				fails = append(fails, fmt.Sprintf("%s (%s): %s", v.Name, filepath.Base(v.file), diff))
			}
		}
		for _, k := range man.Kinds {
			if kinds[k.SourceKind] == 0 {
				fails = append(fails, fmt.Sprintf("no vector for source kind %s", k.SourceKind))
			}
		}
		if len(fails) > 0 {
			return "", errors.New(strings.Join(fails, "\n"))
		}
		return fmt.Sprintf("%d vectors over %d kinds", len(vectors), len(kinds)), nil
	})
	check("empty payload yields no drafts and no error", func() (string, error) {
		for _, k := range man.Kinds {
			got, err := run(abi.Event{SourceKind: k.SourceKind, SourceID: "conform:empty", Payload: map[string]any{}})
			if err != nil {
				return "", fmt.Errorf("%s: %v", k.SourceKind, err)
			}
			if len(got) > 0 {
				return "", fmt.Errorf("%s: %d drafts from an empty payload: %+v", k.SourceKind, len(got), got)
			}
		}
		return fmt.Sprintf("%d kinds", len(man.Kinds)), nil
	})
	check("deterministic across instances and calls", func() (string, error) {
		if len(vectors) == 0 {
			return "", fmt.Errorf("%w: needs vectors", errSkip)
		}
		for _, v := range vectors {
			ev, err := toEvent(v.Event)
			if err != nil {
				continue
			}
			first, err := run(ev)
			if err != nil {
				return "", err
			}
			for i := 0; i < 6; i++ { // 2 pooled instances, 3 calls each
				again, err := run(ev)
				if err != nil {
					return "", err
				}
				if d := compareDrafts(first, again); d != "" {
					return "", fmt.Errorf("%s: call %d differs: %s", v.Name, i+2, d)
				}
			}
		}
		return fmt.Sprintf("%d vectors x 7 calls", len(vectors)), nil
	})
	// The raw checks run on an instance of their own; rawRunner retries a call of theirs that
	// times out as the pool does.
	newInst := func() (host.Instance, error) {
		i, err := m.NewInstance(ctx)
		if err != nil {
			return nil, err
		}
		if _, err := i.Configure(ctx, &abi.ConfigureRequest{Rules: configsOf(owned)}); err != nil {
			i.Close(ctx)
			return nil, fmt.Errorf("configure: %w", err)
		}
		return i, nil
	}
	inst, ierr := newInst()
	rr := &rawRunner{ctx: ctx, newInst: newInst, inst: inst, man: man,
		lim: abi.ReplyLimits{Emits: emitsOf(owned), EvidenceKeys: len(man.EvidenceKeys)}, evs: sampleEvents(vectors, man)}
	defer rr.close()
	raw, isRaw := inst.(host.RawTagger)
	rr.raw = raw
	check("malformed records get an error reply, not a trap", func() (string, error) {
		if ierr != nil {
			return "", ierr
		}
		if !isRaw {
			return "", fmt.Errorf("%w: the Extism variant receives JSON, not records", errSkip)
		}
		cases := map[string][]byte{
			"empty":             {},
			"wrong version":     {9, 0, 0, 0},
			"truncated":         {1, 0, 1, 0, 4, 10, 0, 0, 0, 'a'},
			"unknown tag":       {1, 0, 1, 0, 42},
			"kind out of range": {1, 200, 0, 0},
			"trailing bytes":    {1, 0, 0, 0, 7, 7},
		}
		names := make([]string, 0, len(cases))
		for n := range cases {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			reply, err := rr.tagRecord(cases[n])
			if err != nil {
				return "", fmt.Errorf("%s record: %v", n, err)
			}
			if _, err := abi.DecodeReply(reply, abi.ReplyLimits{}, nil); !errors.Is(err, abi.ErrGuest) {
				return "", fmt.Errorf("%s record: reply is not an error reply (%v)", n, err)
			}
		}
		return fmt.Sprintf("%d malformed records", len(cases)), nil
	})
	var wallP99, cpuP99 time.Duration
	check(fmt.Sprintf("%d calls without memory growth beyond %d KiB", opt.Calls, opt.MemBound>>10), func() (string, error) {
		if ierr != nil {
			return "", ierr
		}
		if !isRaw {
			return "", fmt.Errorf("%w: memory is not observable through the Extism loader", errSkip)
		}
		// Warm up, then measure.
		if err := rr.warm(warmCalls); err != nil {
			return "", err
		}
		first := rr.before
		durs := make([]time.Duration, opt.Calls)
		start := time.Now()
		for i := 0; i < opt.Calls; i++ {
			e := &rr.evs[i%len(rr.evs)]
			t0 := time.Now()
			if err := rr.tag(e); err != nil {
				return "", fmt.Errorf("call %d: %v", i, err)
			}
			durs[i] = time.Since(t0)
		}
		rep.NsPerEv = float64(time.Since(start).Nanoseconds()) / float64(opt.Calls)
		wallP99 = percentile99(durs)
		rep.P99 = wallP99
		// The latency the deadline check judges: each call's own CPU time, which a busy
		// host does not inflate (a wall-clock percentile of a starved run is the host's).
		// Measured apart, as reading a thread's clock costs system calls the benchmark
		// figure above must not include.
		cpus := make([]time.Duration, 0, min(opt.Calls, 1000))
		for i := 0; i < cap(cpus); i++ {
			var err error
			stalls := rr.stalls
			cpu, ok := host.CallCPUTime(func() { err = rr.tag(&rr.evs[i%len(rr.evs)]) })
			if err != nil {
				return "", fmt.Errorf("latency call %d: %v", i, err)
			}
			if !ok {
				break // no thread clock here: the wall-clock percentile is judged
			}
			if rr.stalls == stalls { // a stalled call's time is its retry's and a fresh instance's
				cpus = append(cpus, cpu)
			}
		}
		if len(cpus) > 0 {
			cpuP99 = percentile99(cpus)
			rep.P99 = cpuP99
		}
		after := rr.raw.MemoryBytes()
		if grown := rr.grown(); rr.stalls > 0 {
			detail := fmt.Sprintf("memory grew by %d bytes over %d instances (%d stalls, each retried on a fresh instance and passed)", grown, rr.stalls+1, rr.stalls)
			if grown > int64(opt.MemBound) {
				return "", errors.New(detail)
			}
			return detail, nil
		} else if grown > int64(opt.MemBound) {
			return "", fmt.Errorf("memory grew from %d to %d bytes", first, after)
		}
		return fmt.Sprintf("memory %d -> %d bytes", first, after), nil
	})
	defer func() { rep.Stalls += int64(rr.stalls) }()
	check("calls well inside the deadline", func() (string, error) {
		if rep.Slowest == 0 {
			return "", fmt.Errorf("%w: no call measured", errSkip)
		}
		if rep.P99 == 0 {
			// No percentile (the memory check's calls did not run: an Extism module, whose
			// memory is not observable): the slowest vector call is judged instead, in its
			// own CPU time where it can be measured (a busy host inflates wall time).
			if rep.SlowestCPU > 0 {
				if rep.SlowestCPU > opt.Deadline/2 {
					return "", fmt.Errorf("slowest vector call %v of CPU time (%v of wall time), over half the %v deadline", rep.SlowestCPU, rep.Slowest, opt.Deadline)
				}
				return fmt.Sprintf("slowest vector call %v of CPU time (%v of wall time), deadline %v", rep.SlowestCPU, rep.Slowest, opt.Deadline), nil
			}
			if rep.Slowest > opt.Deadline/2 {
				return "", fmt.Errorf("slowest vector call %v, over half the %v deadline", rep.Slowest, opt.Deadline)
			}
			return fmt.Sprintf("slowest vector call %v, deadline %v", rep.Slowest, opt.Deadline), nil
		}
		// The 99th percentile must stay under half the deadline; the slowest vector call is
		// reported, not judged: one call delayed by a busy machine's scheduler is not the
		// plugin's. For the same reason the percentile judged is of the calls' own CPU time
		// where it can be measured; the wall-clock one is reported beside it.
		what := "99th percentile of CPU time a call"
		if cpuP99 == 0 {
			what = "99th percentile of wall time a call"
		}
		if rep.P99 > opt.Deadline/2 {
			return "", fmt.Errorf("%s %v, over half the %v deadline (wall-clock p99 %v, slowest vector call %v)", what, rep.P99, opt.Deadline, wallP99, rep.Slowest)
		}
		return fmt.Sprintf("%s %v (wall-clock p99 %v), slowest vector call %v, deadline %v", what, rep.P99, wallP99, rep.Slowest, opt.Deadline), nil
	})
	check("benchmark", func() (string, error) {
		if rep.NsPerEv == 0 {
			return "", fmt.Errorf("%w: not measured", errSkip)
		}
		return fmt.Sprintf("%.0f ns/event", rep.NsPerEv), nil
	})
	return rep, nil
}

var errSkip = errors.New("skipped")

func percentile99(ds []time.Duration) time.Duration {
	sort.Slice(ds, func(a, b int) bool { return ds[a] < ds[b] })
	return ds[len(ds)*99/100]
}

// discardLog silences the pool's log: conform reports stalls in its own output.
var discardLog = slog.New(slog.DiscardHandler)

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

func configsOf(rs []*rules.Rule) []abi.RuleConfig {
	out := make([]abi.RuleConfig, len(rs))
	for i, r := range rs {
		out[i] = abi.RuleConfig{ID: r.ID, Kind: r.Match.Kind, AppliesTo: r.AppliesTo, Params: r.Match.Params}
		for _, e := range r.Emits {
			out[i].Emits = append(out[i].Emits, abi.EmitConfig{TechniqueID: e.TechniqueID, SubTechniqueID: e.SubTechniqueID, Tactic: e.Tactic, Confidence: e.Confidence})
		}
	}
	return out
}

func emitsOf(rs []*rules.Rule) []int {
	out := make([]int, len(rs))
	for i, r := range rs {
		out[i] = len(r.Emits)
	}
	return out
}

// sampleEvents is what the memory and speed check replays: the vectors' events of kinds the
// plugin handles (the first of each fan-out), or one empty event per kind.
func sampleEvents(vs []Vector, man *abi.Manifest) []abi.Event {
	var out []abi.Event
	for _, v := range vs {
		if ev, err := toEvent(v.Event); err == nil {
			for _, e := range abi.Expand(ev) {
				if man.KindIndex(e.SourceKind) >= 0 {
					out = append(out, e)
				}
			}
		}
	}
	if len(out) == 0 {
		for _, k := range man.Kinds {
			out = append(out, abi.Event{SourceKind: k.SourceKind, SourceID: "conform", Payload: map[string]any{}})
		}
	}
	return out
}

// toEvent turns a vector's YAML event into an Event exactly as the bus would decode it.
func toEvent(m map[string]any) (abi.Event, error) {
	b, err := abi.CanonicalJSON(m)
	if err != nil {
		return abi.Event{}, err
	}
	return abi.DecodeEvent(b)
}

func compare(want []Draft, got []abi.TagDraft) string {
	w := make([]abi.TagDraft, len(want))
	for i, d := range want {
		w[i] = abi.TagDraft{RuleID: d.RuleID, TechniqueID: d.TechniqueID, SubTechniqueID: d.SubTechniqueID, Tactic: d.Tactic, Confidence: d.Confidence, Evidence: d.Evidence}
	}
	return compareDrafts(w, got)
}

func compareDrafts(want, got []abi.TagDraft) string {
	key := func(d abi.TagDraft) string {
		ev, _ := abi.CanonicalJSON(map[string]any(d.Evidence))
		if d.Evidence == nil {
			ev = []byte("{}")
		}
		return fmt.Sprintf("%s %s %s %s %.9f %s", d.RuleID, d.TechniqueID, d.SubTechniqueID, d.Tactic, math.Round(d.Confidence*1e9)/1e9, ev)
	}
	ws, gs := make([]string, len(want)), make([]string, len(got))
	for i, d := range want {
		ws[i] = key(d)
	}
	for i, d := range got {
		gs[i] = key(d)
	}
	sort.Strings(ws)
	sort.Strings(gs)
	if strings.Join(ws, "\n") == strings.Join(gs, "\n") {
		return ""
	}
	return fmt.Sprintf("want drafts\n    %s\n  got\n    %s", strings.Join(ws, "\n    "), strings.Join(gs, "\n    "))
}

// WriteText prints the readable report.
func (r *Report) WriteText(w io.Writer) {
	fmt.Fprintf(w, "ttp conform %s (%s)\n", r.Module, r.Producer)
	for _, c := range r.Results {
		status := "PASS"
		switch {
		case c.Skipped:
			status = "SKIP"
		case !c.Passed:
			status = "FAIL"
		}
		detail := strings.ReplaceAll(c.Detail, "\n", "\n        ")
		fmt.Fprintf(w, "  %s  %-50s %s\n", status, c.Name, detail)
	}
	if r.NsPerEv > 0 {
		fmt.Fprintf(w, "benchmark: %.0f ns/event, p99 %v, slowest vector call %v\n", r.NsPerEv, r.P99, r.Slowest)
	}
	if r.Stalls > 0 {
		fmt.Fprintf(w, "stalls: %d calls timed out and passed on their retry on a fresh instance, under a budget of their own CPU time: the host was busy, the plugin was not at fault\n", r.Stalls)
	}
	passed := 0
	skipped := 0
	for _, c := range r.Results {
		if c.Passed {
			passed++
		} else if c.Skipped {
			skipped++
		}
	}
	fmt.Fprintf(w, "%d checks: %d passed, %d failed, %d skipped\n", len(r.Results), passed, r.Failed(), skipped)
}

// WriteJUnit writes the report as JUnit XML, one testcase per check.
func (r *Report) WriteJUnit(w io.Writer) error {
	type failure struct {
		Message string `xml:"message,attr"`
		Body    string `xml:",chardata"`
	}
	type testcase struct {
		Name    string    `xml:"name,attr"`
		Class   string    `xml:"classname,attr"`
		Time    float64   `xml:"time,attr"`
		Failure *failure  `xml:"failure,omitempty"`
		Skipped *struct{} `xml:"skipped,omitempty"`
		Output  string    `xml:"system-out,omitempty"`
	}
	type suite struct {
		XMLName  xml.Name   `xml:"testsuite"`
		Name     string     `xml:"name,attr"`
		Tests    int        `xml:"tests,attr"`
		Failures int        `xml:"failures,attr"`
		Skipped  int        `xml:"skipped,attr"`
		Cases    []testcase `xml:"testcase"`
	}
	s := suite{Name: "ttp conform " + r.Producer, Tests: len(r.Results), Failures: r.Failed()}
	for _, c := range r.Results {
		tc := testcase{Name: c.Name, Class: r.Producer, Time: c.Duration.Seconds(), Output: c.Detail}
		switch {
		case c.Skipped:
			tc.Skipped = &struct{}{}
			s.Skipped++
		case !c.Passed:
			tc.Failure = &failure{Message: firstLine(c.Detail), Body: c.Detail}
		}
		s.Cases = append(s.Cases, tc)
	}
	io.WriteString(w, xml.Header)
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(s); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
