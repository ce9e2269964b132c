package extism

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/decnet/ttp/internal/testkit"
	"github.com/decnet/ttp/wasm"
)

// One on-disk compilation cache per test binary, with this variant wired in as the daemon
// wires it.
var testCompiler *wasm.Compiler

func TestMain(m *testing.M) {
	testkit.RunInCacheDir(m, func(dir string) (func(), error) {
		var err error
		testCompiler, err = wasm.NewCompiler(wasm.CompilerConfig{CacheDir: dir, Variants: []wasm.Variant{Variant{}}})
		return func() { testCompiler.Close(context.Background()) }, err
	})
}

// wat is a module of the runtime's test modules (wasm/testdata/wat).
func wat(name string) string { return filepath.Join("..", "testdata", "wat", name+".wasm") }

var (
	tinyRule   = testkit.TinyRule
	unameEvent = testkit.UnameEvent
)
