package wasm_test

import (
	"context"
	"fmt"
	"os"

	"github.com/decnet/ttp/abi"
	"github.com/decnet/ttp/wasm"
)

// The runtime's whole cycle: compile a module (checked: its exports, imports and manifest),
// configure a pool of instances with the rules the plugin owns, and call it on an event
// under the deadline of its Limits.
func ExampleCompiler_Load() {
	ctx := context.Background()
	c, err := wasm.NewCompiler(wasm.CompilerConfig{}) // compiled code kept in memory
	if err != nil {
		panic(err)
	}
	defer c.Close(ctx)
	bin, err := os.ReadFile("testdata/wat/tiny_v1.wasm")
	if err != nil {
		panic(err)
	}
	m, err := c.Load(ctx, "tiny_v1.wasm", bin, wasm.Limits{}) // the default 50 ms deadline, 64 MiB
	if err != nil {
		panic(err)
	}
	owned := []abi.RuleConfig{{ID: "R9001", Kind: "lifter:tiny_marker", AppliesTo: []string{"command"},
		Emits: []abi.EmitConfig{{TechniqueID: "T1059", SubTechniqueID: "T1059.004", Tactic: "execution", Confidence: 0.8}}}}
	pool, rejected, err := wasm.NewPool(ctx, m, owned, wasm.PoolConfig{Size: 1})
	if err != nil || len(rejected) > 0 {
		panic(fmt.Sprint(err, rejected))
	}
	defer pool.Retire(true)
	ev := abi.Event{SourceKind: "command", SourceID: "c1", Payload: map[string]any{"command_text": "uname -a"}}
	drafts, err := pool.Tag(ctx, &ev, nil)
	if err != nil {
		panic(err)
	}
	fmt.Println(m.Manifest().Producer(), pool.Handles("command"))
	for _, d := range drafts {
		fmt.Println(d.RuleID, d.SubTechniqueID, d.Confidence, d.Evidence["marker"])
	}
	// Output:
	// tiny@1.0.0 true
	// R9001 T1059.004 0.8 v1
}
