package wasm

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/decnet/ttp/abi"
	"github.com/decnet/ttp/wasm/hostfn"
)

// TestHostFunctionsCapability loads modules that import the host's text functions: declared
// in the manifest, they load and their calls reach the functions (which answer a pointer
// outside memory with -2, not a trap: the fixture traps otherwise); undeclared, or importing a
// function the host does not offer, they are refused at load with an error naming the import.
// A module importing none (ABI v1 as before) is unaffected.
func TestHostFunctionsCapability(t *testing.T) {
	ctx := context.Background()
	c, err := NewCompiler(CompilerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	for _, tc := range []struct {
		module string
		err    error
		msg    string
	}{
		{"hostfn_declared", nil, ""},
		{"tiny_v1", nil, ""},
		{"hostfn_undeclared", hostfn.ErrUndeclared, "ttp.lower"},
		{"hostfn_unknown", ErrForbiddenImport, "ttp.nope (this host offers ttp.index, lits_new"},
	} {
		t.Run(tc.module, func(t *testing.T) {
			bin, err := os.ReadFile(wat(tc.module))
			if err != nil {
				t.Fatal(err)
			}
			m, err := c.LoadWasm(ctx, tc.module, bin, Limits{})
			if tc.err != nil {
				if !errors.Is(err, tc.err) || !strings.Contains(err.Error(), tc.msg) {
					t.Fatalf("load error %v, want %v mentioning %q", err, tc.err, tc.msg)
				}
				return
			}
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			defer m.Close(ctx)
			inst, err := m.NewInstance(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer inst.Close(ctx)
			req := &abi.ConfigureRequest{Rules: []abi.RuleConfig{{ID: "R9001", Kind: "lifter:tiny_marker", AppliesTo: []string{"command"},
				Emits: []abi.EmitConfig{{TechniqueID: "T1059", Tactic: "execution", Confidence: 0.5}}}}}
			if _, err := inst.Configure(ctx, req); err != nil {
				t.Fatal(err)
			}
			ev := &abi.Event{SourceKind: "command", SourceID: "s", Payload: map[string]any{"command_text": "UNAME -A"}}
			for i := 0; i < 3; i++ {
				drafts, err := inst.Tag(ctx, 0, ev, abi.ReplyLimits{Emits: []int{1}, EvidenceKeys: 1}, nil)
				if err != nil || len(drafts) != 1 {
					t.Fatalf("tag %d: %v, %v", i, drafts, err)
				}
			}
		})
	}
}
