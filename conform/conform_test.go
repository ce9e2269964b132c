package conform

import (
	"bytes"
	"context"
	"encoding/xml"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/decnet/ttp/host"
	"github.com/decnet/ttp/wasm"
)

var compiler *wasm.Compiler

func TestMain(m *testing.M) {
	dir, _ := os.MkdirTemp("", "ttp-conform-cache-")
	compiler, _ = host.NewCompiler(dir)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func run(t *testing.T, module string) *Report {
	t.Helper()
	rep, err := Run(context.Background(), module, Options{RulesDir: "testdata/tiny/rules", VectorsDir: "testdata/tiny/vectors", Calls: 2000, Compiler: compiler})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func result(rep *Report, prefix string) Result {
	for _, r := range rep.Results {
		if strings.HasPrefix(r.Name, prefix) {
			return r
		}
	}
	return Result{Name: "missing: " + prefix}
}

// tiny_v1 ignores its input: it passes the vectors, determinism and memory checks, and fails
// exactly the two checks that need a plugin to read its record.
func TestTinyFailsWhatItShould(t *testing.T) {
	rep := run(t, "../wasm/testdata/wat/tiny_v1.wasm")
	for _, c := range []string{"version marker", "imports", "manifest", "golden vectors", "deterministic", "10000", "calls well inside", "benchmark"} {
		if c == "10000" {
			c = "2000 calls"
		}
		if r := result(rep, c); !r.Passed {
			t.Errorf("%s: %+v", c, r)
		}
	}
	for _, c := range []string{"empty payload", "malformed records"} {
		if r := result(rep, c); r.Passed || r.Skipped {
			t.Errorf("%s should fail: %+v", c, r)
		}
	}
	if rep.Failed() != 2 || rep.NsPerEv <= 0 {
		t.Errorf("failed %d, ns/event %v", rep.Failed(), rep.NsPerEv)
	}
	var text, junit bytes.Buffer
	rep.WriteText(&text)
	if !strings.Contains(text.String(), "FAIL  empty payload") || !strings.Contains(text.String(), "ns/event") {
		t.Errorf("report:\n%s", text.String())
	}
	if err := rep.WriteJUnit(&junit); err != nil {
		t.Fatal(err)
	}
	var suite struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
	}
	if err := xml.Unmarshal(junit.Bytes(), &suite); err != nil || suite.Tests != len(rep.Results) || suite.Failures != 2 {
		t.Errorf("JUnit: %v %+v\n%s", err, suite, junit.String())
	}
}

func TestHostileModulesFail(t *testing.T) {
	tests := []struct{ module, check string }{
		{"forbidden_import", "imports within the allowlist"},
		{"wrong_marker", "version marker"},
		{"garbage", "golden vectors"},
		{"scale_above_one", "golden vectors"},
		// A looping guest times out, and so does its retry on a fresh instance.
		{"loop", "golden vectors"},
		{"loop", "2000 calls"},
	}
	for _, tt := range tests {
		t.Run(tt.module+"/"+tt.check, func(t *testing.T) {
			rep := run(t, "../wasm/testdata/wat/"+tt.module+".wasm")
			if r := result(rep, tt.check); r.Passed {
				t.Errorf("%s passed %q", tt.module, tt.check)
			} else if tt.module == "loop" && (!strings.Contains(r.Detail, "exceeded its deadline") || !strings.Contains(r.Detail, "retry")) {
				t.Errorf("%s: %q failed with %q, want its retry's timeout", tt.module, tt.check, r.Detail)
			}
			if tt.module == "loop" && rep.Stalls != 0 {
				t.Errorf("a looping guest's timeouts counted as %d stalls", rep.Stalls)
			}
			if rep.Failed() == 0 {
				t.Error("no check failed")
			}
		})
	}
}

func TestLoadVectors(t *testing.T) {
	vs, err := LoadVectors("testdata/tiny/vectors")
	if err != nil || len(vs) != 2 || vs[0].Name != "command" || vs[0].Drafts[0].Evidence["marker"] != "v1" {
		t.Fatalf("%v %+v", err, vs)
	}
	dir := t.TempDir()
	os.WriteFile(dir+"/bad.yaml", []byte("- name: x\n  evnt: {}\n"), 0o644)
	if _, err := LoadVectors(dir); err == nil || !strings.Contains(err.Error(), "bad.yaml") {
		t.Errorf("unknown key: %v", err)
	}
}

// TestExtismJudgedOnVectorCalls: an Extism module has no percentile (its memory, and so the
// memory check's calls, cannot be observed), so the deadline check judges its slowest vector
// call rather than passing on an unmeasured percentile of zero.
func TestExtismJudgedOnVectorCalls(t *testing.T) {
	rep := run(t, "../wasm/testdata/extism/tinyx.wasm")
	r := result(rep, "calls well inside")
	if !r.Passed || !strings.HasPrefix(r.Detail, "slowest vector call") || rep.Slowest <= 0 {
		t.Errorf("deadline check on an Extism module: %+v (slowest %v)", r, rep.Slowest)
	}
}

// TestConformOnStarvedHost: conform passes a healthy plugin whose calls take about a
// millisecond of CPU while the process is starved (8×GOMAXPROCS goroutines spinning, each on
// a thread of its own): every call the starvation times out passes on its retry and is
// reported as a stall (measured on the loaded 2-core machine: 165 stalls in 300 calls, all
// passed, in 75 s). tiny_busy fails only what tiny_v1 fails (it ignores its record).
func TestConformOnStarvedHost(t *testing.T) {
	if testing.Short() {
		t.Skip("starves the process for tens of seconds")
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 8 * runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			for x := 0; ; x++ {
				select {
				case <-stop:
					return
				default:
				}
			}
		}()
	}
	rep, err := Run(context.Background(), "../wasm/testdata/wat/tiny_busy.wasm", Options{RulesDir: "testdata/tiny/rules", VectorsDir: "testdata/tiny/vectors", Calls: 200, Compiler: compiler})
	close(stop)
	if err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	var text bytes.Buffer
	rep.WriteText(&text)
	t.Logf("%d stalls\n%s", rep.Stalls, text.String())
	for _, c := range []string{"golden vectors", "deterministic", "200 calls", "calls well inside"} {
		if r := result(rep, c); !r.Passed {
			t.Errorf("%s: %+v", c, r)
		}
	}
	if rep.Failed() != 2 {
		t.Errorf("failed %d checks, want the 2 tiny_v1 fails", rep.Failed())
	}
	if rep.Stalls > 0 && !strings.Contains(text.String(), "stalls: ") {
		t.Errorf("%d stalls not in the report", rep.Stalls)
	}
}
