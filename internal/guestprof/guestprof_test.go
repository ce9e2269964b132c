package guestprof

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

func TestLoopHeaders(t *testing.T) {
	wat := ` (func $main.f (param $0 i32)
  (loop $label$1
   (call $log_execution
    (i32.const 7)
   )
  )
  (call $log_execution
   (i32.const 8)
  )
 )
 (func $shell.word (param $0 i32)
  (loop $label$2
   (call $log_execution
    (i32.const 9)
   )
  )
 )
`
	got := LoopHeaders(wat)
	want := map[uint32]string{7: "main.f", 9: "shell.word"}
	if len(got) != len(want) {
		t.Fatalf("LoopHeaders = %v, want %v", got, want)
	}
	for id, fn := range want {
		if got[id] != fn {
			t.Errorf("id %d: %q, want %q", id, got[id], fn)
		}
	}
}

func TestPackage(t *testing.T) {
	for _, c := range []struct{ fn, want string }{
		{"github.com_decnet_ttp_shell.__lexer_.run", "github.com_decnet_ttp_shell"},
		{"strings.ToLower", "strings"},
		{"main.__session_.load", "main"},
		{"runtime.mallocgc", "runtime"},
	} {
		if got := Package(c.fn); got != c.want {
			t.Errorf("Package(%q) = %q, want %q", c.fn, got, c.want)
		}
	}
}

// TestProfile counts the loop headers each plugin named by GUESTPROF_PLUGINS runs per event
// over its conform vectors, by function and by package, from the instrumented modules in
// GUESTPROF_DIR (<name>.log.wasm, <name>.log.wat; guestprof.sh makes them), and times the
// plain plugins/<name>.wasm with and without termination checks. Skipped without the variables.
func TestProfile(t *testing.T) {
	dir, names := os.Getenv("GUESTPROF_DIR"), os.Getenv("GUESTPROF_PLUGINS")
	if dir == "" || names == "" {
		t.Skip("GUESTPROF_DIR and GUESTPROF_PLUGINS are unset (make guestprof sets them)")
	}
	for _, name := range filepath.SplitList(names) {
		t.Run(name, func(t *testing.T) { profile(t, dir, name) })
	}
}

func profile(t *testing.T, dir, name string) {
	ctx := context.Background()
	wat, err := os.ReadFile(filepath.Join(dir, name+".log.wat"))
	if err != nil {
		t.Fatal(err)
	}
	loops := LoopHeaders(string(wat))
	if len(loops) == 0 {
		t.Fatalf("%s.log.wat has no logged loop headers", name)
	}
	wasm, err := os.ReadFile(filepath.Join(dir, name+".log.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	counts := map[uint32]int{}
	counting := false
	g, err := Open(ctx, wasm, false, func(id uint32) {
		if counting {
			counts[id]++
		}
	}, Dir("rules", "ttp"), Dir("testdata", "vectors", name))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close(ctx)
	for _, rec := range g.Records {
		if _, err := g.Tag(ctx, rec, "ttp_tag"); err != nil { // warm: buffers grown, dictionary built
			t.Fatal(err)
		}
	}
	only := -1 // GUESTPROF_EVENT=i counts event i alone (its index in the list logged)
	if v := os.Getenv("GUESTPROF_EVENT"); v != "" {
		if only, err = strconv.Atoi(v); err != nil || only < 0 || only >= len(g.Records) {
			t.Fatalf("GUESTPROF_EVENT=%q: not an event index below %d", v, len(g.Records))
		}
	}
	perEvent := make([]int, len(g.Records))
	for i, rec := range g.Records {
		counting = only < 0 || i == only
		before := sum(counts, loops)
		if _, err := g.Tag(ctx, rec, "ttp_tag"); err != nil {
			t.Fatal(err)
		}
		perEvent[i] = sum(counts, loops) - before
	}
	t.Logf("%s: loop headers of each event: %v", name, perEvent)
	fns, total := ByFunc(counts, loops)
	n := float64(len(g.Records))
	if only >= 0 {
		n = 1
	}
	t.Logf("%s: %d events, %.0f loop headers (termination checks) per event", name, len(g.Records), float64(total)/n)
	pkgs := map[string]int{}
	for _, f := range fns {
		pkgs[Package(f.Func)] += f.N
	}
	for _, p := range Sorted(pkgs) {
		t.Logf("  %7.1f  %5.1f%%  package %s", float64(p.N)/n, 100*float64(p.N)/float64(total), p.Func)
	}
	for i, f := range fns {
		if i == 40 {
			break
		}
		t.Logf("  %7.1f  %s", float64(f.N)/n, f.Func)
	}
	if total == 0 {
		t.Errorf("%s ran no loop header at all", name)
	}
	plain, err := os.ReadFile(Dir("plugins", name+".wasm"))
	if err != nil {
		t.Fatal(err)
	}
	for _, checked := range []bool{true, false} {
		t.Logf("%s checked=%v: %.0f ns/event", name, checked, timeGuest(t, plain, checked, name))
	}
}

func timeGuest(t *testing.T, wasm []byte, checked bool, name string) float64 {
	ctx := context.Background()
	g, err := Open(ctx, wasm, checked, nil, Dir("rules", "ttp"), Dir("testdata", "vectors", name))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close(ctx)
	const warm, runs = 500, 3000
	var start time.Time
	for i := 0; i < warm+runs; i++ {
		if i == warm {
			start = time.Now()
		}
		if _, err := g.Tag(ctx, g.Records[i%len(g.Records)], "ttp_tag"); err != nil {
			t.Fatal(err)
		}
	}
	return float64(time.Since(start).Nanoseconds()) / runs
}

// sum is the loop headers counted so far (--log-execution logs function entries too).
func sum(counts map[uint32]int, loops map[uint32]string) int {
	n := 0
	for id, v := range counts {
		if _, ok := loops[id]; ok {
			n += v
		}
	}
	return n
}
