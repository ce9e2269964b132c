package wasm

import (
	"context"
	"fmt"
	"sort"

	"github.com/tetratelabs/wazero"
)

// Inspection is what a module declares before it runs: its exported and imported functions.
type Inspection struct {
	Exports []string
	Imports []string // "module.name"
}

// Inspect compiles wasm (through the cache) and lists its exports and imports, for `ttp
// conform` to report each check on its own line.
func (c *Compiler) Inspect(ctx context.Context, wasm []byte) (*Inspection, error) {
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCompilationCache(c.cache))
	defer r.Close(ctx)
	compiled, err := r.CompileModule(ctx, wasm)
	if err != nil {
		return nil, fmt.Errorf("wasm: compile: %w", err)
	}
	in := &Inspection{}
	for name := range compiled.ExportedFunctions() {
		in.Exports = append(in.Exports, name)
	}
	sort.Strings(in.Exports)
	for _, f := range compiled.ImportedFunctions() {
		mod, name, _ := f.Import()
		in.Imports = append(in.Imports, mod+"."+name)
	}
	return in, nil
}

// RawTagger is implemented by ttp-ABI instances: it sends record bytes as they are, so
// `ttp conform` can check that a malformed record gets an error reply rather than a trap.
type RawTagger interface {
	TagRecord(ctx context.Context, record []byte) (reply []byte, err error)
	// RetryTagRecord is TagRecord as the retry of a call that timed out, on a fresh
	// instance, under the retry's budget of its own CPU time (Retrier).
	RetryTagRecord(ctx context.Context, record []byte) (reply []byte, err error)
	// MemoryBytes is the size of the instance's linear memory, to bound its growth.
	MemoryBytes() uint32
}

// TagRecord implements RawTagger.
func (i *wasmInstance) TagRecord(ctx context.Context, record []byte) ([]byte, error) {
	return i.tagRecord(ctx, false, record)
}

// RetryTagRecord implements RawTagger.
func (i *wasmInstance) RetryTagRecord(ctx context.Context, record []byte) ([]byte, error) {
	return i.tagRecord(ctx, true, record)
}

func (i *wasmInstance) tagRecord(ctx context.Context, retry bool, record []byte) ([]byte, error) {
	reply, err := i.callTag(ctx, retry, record)
	if err != nil {
		return nil, err
	}
	return append([]byte(nil), reply...), nil
}

// MemoryBytes implements RawTagger.
func (i *wasmInstance) MemoryBytes() uint32 { return i.mod.Memory().Size() }
