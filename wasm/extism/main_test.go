package extism

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/decnet/ttp/internal/testkit"
	"github.com/decnet/ttp/wasm"
)

// One on-disk compilation cache per test binary, with this variant wired in as the daemon
// wires it.
var testCompiler *wasm.Compiler

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ttp-extism-cache-")
	if err != nil {
		panic(err)
	}
	testCompiler, err = wasm.NewCompiler(wasm.CompilerConfig{CacheDir: dir, Variants: []wasm.Variant{Variant{}}})
	if err != nil {
		panic(err)
	}
	code := m.Run()
	testCompiler.Close(context.Background())
	os.RemoveAll(dir)
	os.Exit(code)
}

// wat is a module of the runtime's test modules (wasm/testdata/wat).
func wat(name string) string { return filepath.Join("..", "testdata", "wat", name+".wasm") }

var (
	tinyRule   = testkit.TinyRule
	unameEvent = testkit.UnameEvent
)
