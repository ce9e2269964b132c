// Package guestprof counts where a wasip1 plugin spends its termination checks on its conform
// vectors, by function, and times it with and without the checks. wazero compiles a check into
// every loop header of a guest when WithCloseOnContextDone is on (RATIONALE.md, "What a
// deadline costs a Go guest"), so the loop headers a call runs are what a deadline costs it:
// binaryen's wasm-opt --log-execution makes each loop header call env.log_execution(id), and
// this package maps the ids back to the functions of the disassembly. `make guestprof` runs it
// (guestprof.sh); only its test uses it.
package guestprof

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/decnet/ttp/abi"
	"github.com/decnet/ttp/conform"
	"github.com/decnet/ttp/rules"
	"github.com/decnet/ttp/wasm/hostfn"
)

// LoopHeaders maps the ids wasm-opt --log-execution gave loop headers to the function that
// holds each, read from the disassembly (wasm-dis) of the instrumented module.
func LoopHeaders(wat string) map[uint32]string {
	out := map[uint32]string{}
	lines := strings.Split(wat, "\n")
	fn := ""
	for i, l := range lines {
		if rest, ok := strings.CutPrefix(l, " (func $"); ok {
			fn, _, _ = strings.Cut(rest, " ")
		}
		if !strings.Contains(l, "(call $log_execution") || i == 0 || i+1 >= len(lines) || !strings.Contains(lines[i-1], "(loop") {
			continue
		}
		var id uint32
		if _, err := fmt.Sscanf(strings.TrimSpace(lines[i+1]), "(i32.const %d)", &id); err == nil {
			out[id] = fn
		}
	}
	return out
}

// Guest is one instance of a plugin, configured with the rules of a directory and holding the
// records of its conform vectors, ready to be called.
type Guest struct {
	rt      wazero.Runtime
	mod     api.Module
	in      uint32
	Records [][]byte // one per event the plugin owns, after expansion
}

// Open instantiates wasm in a fresh runtime (with termination checks when checked, and with
// env.log_execution calling logf when logf is non-nil), configures it with the plugin's rules
// from rulesDir and reads the vectors of vectorDir into records.
func Open(ctx context.Context, wasm []byte, checked bool, logf func(id uint32), rulesDir, vectorDir string) (*Guest, error) {
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCloseOnContextDone(checked))
	g := &Guest{rt: rt}
	if err := g.open(ctx, wasm, logf, rulesDir, vectorDir); err != nil {
		rt.Close(ctx)
		return nil, err
	}
	return g, nil
}

func (g *Guest) open(ctx context.Context, wasm []byte, logf func(id uint32), rulesDir, vectorDir string) error {
	wasi_snapshot_preview1.MustInstantiate(ctx, g.rt)
	if logf != nil {
		if _, err := g.rt.NewHostModuleBuilder("env").NewFunctionBuilder().WithFunc(logf).Export("log_execution").Instantiate(ctx); err != nil {
			return fmt.Errorf("env.log_execution: %w", err)
		}
	}
	fns, err := hostfn.Instantiate(ctx, g.rt)
	if err != nil {
		return fmt.Errorf("host functions: %w", err)
	}
	ictx, bind := fns.Instance(ctx)
	mod, err := g.rt.InstantiateWithConfig(ictx, wasm, wazero.NewModuleConfig().WithName("").WithStartFunctions("_initialize"))
	if err != nil {
		return fmt.Errorf("instantiate: %w", err)
	}
	bind(mod)
	g.mod = mod
	in, err := g.call(ctx, "ttp_alloc", 1<<20)
	if err != nil {
		return err
	}
	g.in = uint32(in)
	res, err := g.call(ctx, "ttp_describe")
	if err != nil {
		return err
	}
	man, err := abi.DecodeManifest(g.result(res))
	if err != nil {
		return fmt.Errorf("manifest: %w", err)
	}
	if err := g.configure(ctx, man, rulesDir); err != nil {
		return err
	}
	return g.load(man, vectorDir)
}

func (g *Guest) configure(ctx context.Context, man *abi.Manifest, rulesDir string) error {
	all, err := rules.LoadDir(rulesDir)
	if err != nil {
		return fmt.Errorf("rules: %w", err)
	}
	var cfgs []abi.RuleConfig
	for _, r := range all {
		if r.IsPattern() || !man.Owns(r.Match.Kind) {
			continue
		}
		c := abi.RuleConfig{ID: r.ID, Kind: r.Match.Kind, AppliesTo: r.AppliesTo, Params: r.Match.Params}
		for _, e := range r.Emits {
			c.Emits = append(c.Emits, abi.EmitConfig{TechniqueID: e.TechniqueID, SubTechniqueID: e.SubTechniqueID, Tactic: e.Tactic, Confidence: e.Confidence})
		}
		cfgs = append(cfgs, c)
	}
	req, err := json.Marshal(abi.ConfigureRequest{Rules: cfgs})
	if err != nil {
		return fmt.Errorf("configure request: %w", err)
	}
	if _, err := g.Tag(ctx, req, "ttp_configure"); err != nil {
		return err
	}
	return nil
}

func (g *Guest) load(man *abi.Manifest, vectorDir string) error {
	plans := make([][]abi.Path, len(man.Kinds))
	for i, k := range man.Kinds {
		for _, f := range k.Fields {
			p, err := abi.ParsePath(f)
			if err != nil {
				return fmt.Errorf("field %s: %w", f, err)
			}
			plans[i] = append(plans[i], p)
		}
	}
	vs, err := conform.LoadVectors(vectorDir)
	if err != nil {
		return fmt.Errorf("vectors: %w", err)
	}
	for _, v := range vs {
		bj, err := abi.CanonicalJSON(v.Event)
		if err != nil {
			continue
		}
		ev, err := abi.DecodeEvent(bj)
		if err != nil {
			continue // a vector about a malformed event
		}
		for _, e := range abi.Expand(ev) {
			if k := man.KindIndex(e.SourceKind); k >= 0 {
				g.Records = append(g.Records, abi.AppendRecord(nil, k, plans[k], &e))
			}
		}
	}
	return nil
}

func (g *Guest) call(ctx context.Context, fn string, args ...uint64) (uint64, error) {
	res, err := g.mod.ExportedFunction(fn).Call(ctx, args...)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", fn, err)
	}
	if len(res) == 0 {
		return 0, nil
	}
	return res[0], nil
}

func (g *Guest) result(res uint64) []byte {
	raw, _ := g.mod.Memory().Read(uint32(res>>32), uint32(res))
	return append([]byte(nil), raw...)
}

// Tag writes rec into the guest's input buffer and calls fn (ttp_tag, ttp_configure) on it,
// returning what the guest answered.
func (g *Guest) Tag(ctx context.Context, rec []byte, fn string) ([]byte, error) {
	if !g.mod.Memory().Write(g.in, rec) {
		return nil, fmt.Errorf("record of %d bytes does not fit", len(rec))
	}
	res, err := g.call(ctx, fn, uint64(g.in), uint64(len(rec)))
	if err != nil {
		return nil, err
	}
	return g.result(res), nil
}

// Close releases the guest's runtime.
func (g *Guest) Close(ctx context.Context) error { return g.rt.Close(ctx) }

// FuncCount is the loop headers one function ran.
type FuncCount struct {
	Func string
	N    int
}

// ByFunc sums counts (loop header id to times run) by function, most first.
func ByFunc(counts map[uint32]int, loops map[uint32]string) (fns []FuncCount, total int) {
	m := map[string]int{}
	for id, n := range counts {
		if fn, ok := loops[id]; ok {
			m[fn] += n
			total += n
		}
	}
	return Sorted(m), total
}

// Sorted lists sums by name, most first (ties by name).
func Sorted(m map[string]int) []FuncCount {
	out := make([]FuncCount, 0, len(m))
	for fn, n := range m {
		out = append(out, FuncCount{fn, n})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].N > out[j].N || out[i].N == out[j].N && out[i].Func < out[j].Func })
	return out
}

// Package returns the Go package of a function name of the disassembly, where wasm-opt
// spells / as _ ("github.com_decnet_ttp_shell.__lexer_.run" -> "github.com_decnet_ttp_shell").
func Package(fn string) string {
	rest, host := fn, ""
	if r, ok := strings.CutPrefix(fn, "github.com"); ok {
		rest, host = r, "github.com"
	}
	p, _, _ := strings.Cut(rest, ".")
	return host + p
}

// Dir joins the repository root to a path, for the test run from this directory.
func Dir(parts ...string) string { return filepath.Join(append([]string{"..", ".."}, parts...)...) }
