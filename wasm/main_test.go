package wasm

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/decnet/ttp/abi"
	"github.com/decnet/ttp/internal/testkit"
)

// One on-disk compilation cache per test binary: modules compile once.
var testCompiler *Compiler

func TestMain(m *testing.M) {
	testkit.RunInCacheDir(m, func(dir string) (func(), error) {
		var err error
		testCompiler, err = NewCompiler(CompilerConfig{CacheDir: dir})
		return func() { testCompiler.Close(context.Background()) }, err
	})
}

func wat(name string) string { return filepath.Join("testdata", "wat", name+".wasm") }

// tinyRule is the configuration of a rule the tiny test plugins own, as a host sends it.
func tinyRule(t testing.TB, id string, conf float64, evidence string) abi.RuleConfig {
	t.Helper()
	return testkit.TinyRule(t, id, conf, evidence).PluginConfig()
}

// loadPool loads the module at path and configures a pool of size instances with rs.
func loadPool(t testing.TB, path string, lim Limits, size int, health *Health, rs ...abi.RuleConfig) *Pool {
	t.Helper()
	bin, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m, err := testCompiler.Load(context.Background(), path, bin, lim)
	if err != nil {
		t.Fatal(err)
	}
	pool, rejected, err := NewPool(context.Background(), m, rs, PoolConfig{Size: size, Health: health})
	if err != nil || len(rejected) > 0 {
		t.Fatalf("pool: %v %v", err, rejected)
	}
	t.Cleanup(func() { pool.Retire(true) })
	return pool
}

var unameEvent = testkit.UnameEvent
