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
	"github.com/decnet/ttp/rules"
	"github.com/decnet/ttp/wasm"
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
	Deadline   time.Duration // the host's per-call deadline; default wasm.DefaultDeadline
	Compiler   *wasm.Compiler
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

// Run checks the module at path: each check of checks in order, until one that later checks
// depend on fails.
func Run(ctx context.Context, path string, opt Options) (*Report, error) {
	if opt.Calls == 0 {
		opt.Calls = 10000
	}
	if opt.MemBound == 0 {
		opt.MemBound = 1 << 20
	}
	if opt.Deadline == 0 {
		opt.Deadline = wasm.DefaultDeadline
	}
	wasm, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	r := &runner{ctx: ctx, path: path, opt: opt, wasm: wasm, c: opt.Compiler, rep: &Report{Module: path}}
	defer r.close()
	for _, c := range checks {
		if !r.record(c.title(opt), c.run) && c.stop {
			break
		}
	}
	return r.rep, nil
}

// check is one named check of a run. A check whose failure leaves nothing for the later ones
// to check (no module, no manifest, no pool) stops the run.
type check struct {
	name  string
	named func(Options) string // the name, when it depends on the options
	run   func(*runner) (string, error)
	stop  bool
}

func (c check) title(opt Options) string {
	if c.named != nil {
		return c.named(opt)
	}
	return c.name
}

// checks are the checks of abi/ABI.md in the order they run: each may use what the ones
// before it found (the module, its manifest, the rules it owns, the pool, the vectors).
var checks = []check{
	{name: "module compiles", run: (*runner).compiles, stop: true},
	{name: "version marker and required exports", run: (*runner).exports},
	{name: "imports within the allowlist", run: (*runner).imports},
	{name: "manifest valid", run: (*runner).manifest, stop: true},
	{name: "owns rules", run: (*runner).ownsRules},
	{name: "configure accepts its rules", run: (*runner).configures, stop: true},
	{name: "golden vectors", run: (*runner).goldenVectors},
	{name: "empty payload yields no drafts and no error", run: (*runner).emptyPayload},
	{name: "deterministic across instances and calls", run: (*runner).deterministic},
	{name: "malformed records get an error reply, not a trap", run: (*runner).malformedRecords},
	{named: func(o Options) string {
		return fmt.Sprintf("%d calls without memory growth beyond %d KiB", o.Calls, o.MemBound>>10)
	}, run: (*runner).memoryGrowth},
	{name: "calls well inside the deadline", run: (*runner).deadline},
	{name: "benchmark", run: (*runner).benchmark},
}

// runner is the state of one run, which each check reads from the ones before it.
type runner struct {
	ctx  context.Context
	path string
	opt  Options
	wasm []byte
	c    *wasm.Compiler
	rep  *Report

	ins     *wasm.Inspection
	extism  bool // an Extism module, not a ttp-ABI one
	m       wasm.Module
	man     *abi.Manifest
	owned   []*rules.Rule
	pool    *wasm.Pool
	vectors []Vector

	// The instance of the raw checks (malformed records, memory, latency), started by the
	// first of them.
	rr    *rawRunner
	ierr  error // why it could not start
	isRaw bool  // it takes records as they are (wasm.RawTagger)

	wallP99, cpuP99 time.Duration
	closers         []func() // run in reverse order when the run ends
}

// record runs one check and appends its result; it reports whether the check passed.
func (r *runner) record(name string, f func(*runner) (string, error)) bool {
	start := time.Now()
	detail, err := f(r)
	res := Result{Name: name, Passed: err == nil, Detail: detail, Duration: time.Since(start)}
	if errors.Is(err, errSkip) {
		res.Passed, res.Skipped = false, true
		res.Detail = strings.TrimPrefix(err.Error(), errSkip.Error()+": ")
	} else if err != nil {
		res.Detail = err.Error()
	}
	r.rep.Results = append(r.rep.Results, res)
	return err == nil
}

func (r *runner) onClose(f func()) { r.closers = append(r.closers, f) }

func (r *runner) close() {
	for i := len(r.closers) - 1; i >= 0; i-- {
		r.closers[i]()
	}
}

func (r *runner) compiles() (string, error) {
	var err error
	r.ins, err = r.c.Inspect(r.ctx, r.wasm)
	if err == nil {
		r.extism = !slices.Contains(r.ins.Exports, "ttp_abi_v1") && slices.Contains(r.ins.Exports, "tag")
	}
	return fmt.Sprintf("%d bytes", len(r.wasm)), err
}

func (r *runner) exports() (string, error) {
	if r.extism {
		for _, e := range []string{"describe", "configure", "tag"} {
			if !slices.Contains(r.ins.Exports, e) {
				return "", fmt.Errorf("Extism module without %s", e)
			}
		}
		return "Extism variant: describe, configure, tag", nil
	}
	var missing []string
	for _, e := range []string{"ttp_abi_v1", "ttp_alloc", "ttp_describe", "ttp_configure", "ttp_tag"} {
		if !slices.Contains(r.ins.Exports, e) {
			missing = append(missing, e)
		}
	}
	if len(missing) > 0 {
		return "", fmt.Errorf("missing %s (exports: %s)", strings.Join(missing, ", "), strings.Join(r.ins.Exports, ", "))
	}
	return "ttp_abi_v1, ttp_alloc, ttp_describe, ttp_configure, ttp_tag", nil
}

func (r *runner) imports() (string, error) {
	var bad []string
	for _, imp := range r.ins.Imports {
		mod, name, _ := strings.Cut(imp, ".")
		if !wasm.AllowedImport(mod, name) && !(r.extism && mod == "extism:host/env") {
			bad = append(bad, imp)
		}
	}
	if len(bad) > 0 {
		return "", fmt.Errorf("forbidden: %s", strings.Join(bad, ", "))
	}
	return fmt.Sprintf("%d imports", len(r.ins.Imports)), nil
}

func (r *runner) manifest() (string, error) {
	m, err := r.c.Load(r.ctx, r.path, r.wasm, wasm.Limits{Deadline: r.opt.Deadline})
	if err != nil {
		return "", err
	}
	r.m, r.man = m, m.Manifest()
	r.onClose(func() { m.Close(r.ctx) })
	r.rep.Producer = r.man.Producer()
	return fmt.Sprintf("%s, rule_kinds %v, %d kinds, %d evidence keys", r.man.Producer(), r.man.RuleKinds, len(r.man.Kinds), len(r.man.EvidenceKeys)), nil
}

func (r *runner) ownsRules() (string, error) {
	if r.opt.RulesDir == "" {
		return "", fmt.Errorf("%w: no rules directory", errSkip)
	}
	all, err := rules.LoadDir(r.opt.RulesDir)
	if err != nil {
		return "", err
	}
	var ids []string
	for _, rule := range all {
		if !rule.IsPattern() && r.man.Owns(rule.Match.Kind) {
			r.owned = append(r.owned, rule)
			ids = append(ids, rule.ID)
		}
	}
	if len(r.owned) == 0 {
		return "", fmt.Errorf("no rule of %s matches rule_kinds %v", r.opt.RulesDir, r.man.RuleKinds)
	}
	return strings.Join(ids, " "), nil
}

// configures starts the pool the vector checks call through. It retries a timed-out call as
// the daemon does (wasm.Pool.Tag); its stalls are reported with the checks' own.
func (r *runner) configures() (string, error) {
	health := wasm.NewHealth(time.Now)
	r.onClose(func() { r.rep.Stalls += health.Stalls.Load() })
	pool, rejected, err := wasm.NewPool(r.ctx, r.m, rules.PluginConfigs(r.owned), wasm.PoolConfig{Size: 2, Health: health, Log: discardLog})
	if err != nil {
		return "", err
	}
	r.onClose(func() { pool.Retire(false) })
	if len(rejected) > 0 {
		return "", fmt.Errorf("rejected %+v", rejected)
	}
	r.pool = pool
	return fmt.Sprintf("%d rules", len(r.owned)), nil
}

// tag calls the pool with every expansion of ev that it handles, keeping the slowest call.
func (r *runner) tag(ev abi.Event) ([]abi.TagDraft, error) {
	var out []abi.TagDraft
	for _, e := range abi.Expand(ev) {
		if !r.pool.Handles(e.SourceKind) {
			continue
		}
		var err error
		start := time.Now()
		cpu, _ := wasm.CallCPUTime(func() { out, err = r.pool.Tag(r.ctx, &e, out) })
		r.rep.Slowest = max(r.rep.Slowest, time.Since(start))
		r.rep.SlowestCPU = max(r.rep.SlowestCPU, cpu)
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

func (r *runner) goldenVectors() (string, error) {
	if r.opt.VectorsDir == "" && r.opt.DefaultVectors != "" {
		if d := filepath.Join(r.opt.DefaultVectors, r.man.Name); isDir(d) {
			r.opt.VectorsDir = d
		}
	}
	if r.opt.VectorsDir == "" {
		return "", fmt.Errorf("%w: no --vectors directory", errSkip)
	}
	var err error
	if r.vectors, err = LoadVectors(r.opt.VectorsDir); err != nil {
		return "", err
	}
	kinds := map[string]int{}
	var fails []string
	for _, v := range r.vectors {
		ev, err := toEvent(v.Event)
		if err != nil {
			fails = append(fails, fmt.Sprintf("%s: %v", v.Name, err))
			continue
		}
		kinds[ev.SourceKind]++
		got, err := r.tag(ev)
		if err != nil {
			fails = append(fails, fmt.Sprintf("%s: %v", v.Name, err))
			continue
		}
		if diff := compare(v.Drafts, got); diff != "" {
			fails = append(fails, fmt.Sprintf("%s (%s): %s", v.Name, filepath.Base(v.file), diff))
		}
	}
	for _, k := range r.man.Kinds {
		if kinds[k.SourceKind] == 0 {
			fails = append(fails, fmt.Sprintf("no vector for source kind %s", k.SourceKind))
		}
	}
	if len(fails) > 0 {
		return "", errors.New(strings.Join(fails, "\n"))
	}
	return fmt.Sprintf("%d vectors over %d kinds", len(r.vectors), len(kinds)), nil
}

func (r *runner) emptyPayload() (string, error) {
	for _, k := range r.man.Kinds {
		got, err := r.tag(abi.Event{SourceKind: k.SourceKind, SourceID: "conform:empty", Payload: map[string]any{}})
		if err != nil {
			return "", fmt.Errorf("%s: %v", k.SourceKind, err)
		}
		if len(got) > 0 {
			return "", fmt.Errorf("%s: %d drafts from an empty payload: %+v", k.SourceKind, len(got), got)
		}
	}
	return fmt.Sprintf("%d kinds", len(r.man.Kinds)), nil
}

func (r *runner) deterministic() (string, error) {
	if len(r.vectors) == 0 {
		return "", fmt.Errorf("%w: needs vectors", errSkip)
	}
	for _, v := range r.vectors {
		ev, err := toEvent(v.Event)
		if err != nil {
			continue
		}
		first, err := r.tag(ev)
		if err != nil {
			return "", err
		}
		for i := 0; i < 6; i++ { // 2 pooled instances, 3 calls each
			again, err := r.tag(ev)
			if err != nil {
				return "", err
			}
			if d := compareDrafts(first, again); d != "" {
				return "", fmt.Errorf("%s: call %d differs: %s", v.Name, i+2, d)
			}
		}
	}
	return fmt.Sprintf("%d vectors x 7 calls", len(r.vectors)), nil
}

// startRaw starts the instance the raw checks run on, apart from the pool; rawRunner retries
// a call of theirs that times out as the pool does.
func (r *runner) startRaw() {
	newInst := func() (wasm.Instance, error) {
		i, err := r.m.NewInstance(r.ctx)
		if err != nil {
			return nil, err
		}
		if _, err := i.Configure(r.ctx, &abi.ConfigureRequest{Rules: configsOf(r.owned)}); err != nil {
			i.Close(r.ctx)
			return nil, fmt.Errorf("configure: %w", err)
		}
		return i, nil
	}
	inst, err := newInst()
	r.ierr = err
	r.rr = &rawRunner{ctx: r.ctx, newInst: newInst, inst: inst, man: r.man,
		lim: abi.ReplyLimits{Emits: emitsOf(r.owned), EvidenceKeys: len(r.man.EvidenceKeys)}, evs: sampleEvents(r.vectors, r.man)}
	r.onClose(r.rr.close)
	r.onClose(func() { r.rep.Stalls += int64(r.rr.stalls) })
	r.rr.raw, r.isRaw = inst.(wasm.RawTagger)
}

func (r *runner) malformedRecords() (string, error) {
	r.startRaw()
	if r.ierr != nil {
		return "", r.ierr
	}
	if !r.isRaw {
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
		reply, err := r.rr.tagRecord(cases[n])
		if err != nil {
			return "", fmt.Errorf("%s record: %v", n, err)
		}
		if _, err := abi.DecodeReply(reply, abi.ReplyLimits{}, nil); !errors.Is(err, abi.ErrGuest) {
			return "", fmt.Errorf("%s record: reply is not an error reply (%v)", n, err)
		}
	}
	return fmt.Sprintf("%d malformed records", len(cases)), nil
}

// memoryGrowth makes opt.Calls calls after a warm-up, for the benchmark figure and the
// wall-clock percentile, then measures the calls' own CPU time apart (callCPUTimes), and
// judges how much the instance's memory grew.
func (r *runner) memoryGrowth() (string, error) {
	if r.ierr != nil {
		return "", r.ierr
	}
	if !r.isRaw {
		return "", fmt.Errorf("%w: memory is not observable through the Extism loader", errSkip)
	}
	rr := r.rr
	if err := rr.warm(warmCalls); err != nil {
		return "", err
	}
	first := rr.before
	durs := make([]time.Duration, r.opt.Calls)
	start := time.Now()
	for i := 0; i < r.opt.Calls; i++ {
		e := &rr.evs[i%len(rr.evs)]
		t0 := time.Now()
		if err := rr.tag(e); err != nil {
			return "", fmt.Errorf("call %d: %v", i, err)
		}
		durs[i] = time.Since(t0)
	}
	r.rep.NsPerEv = float64(time.Since(start).Nanoseconds()) / float64(r.opt.Calls)
	r.wallP99 = percentile99(durs)
	r.rep.P99 = r.wallP99
	cpus, err := r.callCPUTimes()
	if err != nil {
		return "", err
	}
	if len(cpus) > 0 {
		r.cpuP99 = percentile99(cpus)
		r.rep.P99 = r.cpuP99
	}
	after := rr.raw.MemoryBytes()
	if grown := rr.grown(); rr.stalls > 0 {
		detail := fmt.Sprintf("memory grew by %d bytes over %d instances (%d stalls, each retried on a fresh instance and passed)", grown, rr.stalls+1, rr.stalls)
		if grown > int64(r.opt.MemBound) {
			return "", errors.New(detail)
		}
		return detail, nil
	} else if grown > int64(r.opt.MemBound) {
		return "", fmt.Errorf("memory grew from %d to %d bytes", first, after)
	}
	return fmt.Sprintf("memory %d -> %d bytes", first, after), nil
}

// callCPUTimes is the latency the deadline check judges: each call's own CPU time, which a
// busy host does not inflate (a wall-clock percentile of a starved run is the host's).
// Measured apart, as reading a thread's clock costs system calls the benchmark figure must
// not include. It is empty where there is no thread clock.
func (r *runner) callCPUTimes() ([]time.Duration, error) {
	rr := r.rr
	cpus := make([]time.Duration, 0, min(r.opt.Calls, 1000))
	for i := 0; i < cap(cpus); i++ {
		var err error
		stalls := rr.stalls
		cpu, ok := wasm.CallCPUTime(func() { err = rr.tag(&rr.evs[i%len(rr.evs)]) })
		if err != nil {
			return nil, fmt.Errorf("latency call %d: %v", i, err)
		}
		if !ok {
			break // no thread clock here: the wall-clock percentile is judged
		}
		if rr.stalls == stalls { // a stalled call's time is its retry's and a fresh instance's
			cpus = append(cpus, cpu)
		}
	}
	return cpus, nil
}

// deadline judges the 99th percentile against half the deadline; the slowest vector call is
// reported, not judged: one call delayed by a busy machine's scheduler is not the plugin's.
// For the same reason the percentile judged is of the calls' own CPU time where it can be
// measured; the wall-clock one is reported beside it.
func (r *runner) deadline() (string, error) {
	rep, dl := r.rep, r.opt.Deadline
	if rep.Slowest == 0 {
		return "", fmt.Errorf("%w: no call measured", errSkip)
	}
	if rep.P99 == 0 {
		return r.slowestVectorCall()
	}
	what := "99th percentile of CPU time a call"
	if r.cpuP99 == 0 {
		what = "99th percentile of wall time a call"
	}
	if rep.P99 > dl/2 {
		return "", fmt.Errorf("%s %v, over half the %v deadline (wall-clock p99 %v, slowest vector call %v)", what, rep.P99, dl, r.wallP99, rep.Slowest)
	}
	return fmt.Sprintf("%s %v (wall-clock p99 %v), slowest vector call %v, deadline %v", what, rep.P99, r.wallP99, rep.Slowest, dl), nil
}

// slowestVectorCall is judged where there is no percentile (the memory check's calls did not
// run: an Extism module, whose memory is not observable), in its own CPU time where it can
// be measured (a busy host inflates wall time).
func (r *runner) slowestVectorCall() (string, error) {
	rep, dl := r.rep, r.opt.Deadline
	if rep.SlowestCPU > 0 {
		if rep.SlowestCPU > dl/2 {
			return "", fmt.Errorf("slowest vector call %v of CPU time (%v of wall time), over half the %v deadline", rep.SlowestCPU, rep.Slowest, dl)
		}
		return fmt.Sprintf("slowest vector call %v of CPU time (%v of wall time), deadline %v", rep.SlowestCPU, rep.Slowest, dl), nil
	}
	if rep.Slowest > dl/2 {
		return "", fmt.Errorf("slowest vector call %v, over half the %v deadline", rep.Slowest, dl)
	}
	return fmt.Sprintf("slowest vector call %v, deadline %v", rep.Slowest, dl), nil
}

func (r *runner) benchmark() (string, error) {
	if r.rep.NsPerEv == 0 {
		return "", fmt.Errorf("%w: not measured", errSkip)
	}
	return fmt.Sprintf("%.0f ns/event", r.rep.NsPerEv), nil
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
