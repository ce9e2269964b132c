package wasm

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/decnet/ttp/abi"
	"github.com/decnet/ttp/internal/testkit"
	"github.com/decnet/ttp/rules"
)

// footprintEvents is how many sample events each instance tags before its second reading
// ($TTP_FOOTPRINT_EVENTS overrides it).
const footprintEvents = 2000

// footprintExtra is how many instances beyond the first the per-instance RSS is averaged over.
const footprintExtra = 4

// TestInstanceFootprint measures, for each plugin module in $TTP_FOOTPRINT_PLUGINS (default
// plugins/, built by make plugins), what its module and each of its instances hold:
// module bytes; compiled code (the module's cache file, and the resident executable mappings
// its load added: wazero compiles once per runtime, every instance of the module runs that
// code, and each plugin has its own runtime, so nothing is shared across plugins); linear
// memory after instantiate and configure and after footprintEvents events of the sample;
// the host RSS and host Go heap a further instance adds. Linear memory is a Go byte slice of
// the host (wazero's default allocator), so it is host heap. `make footprint` builds the
// modules with the ttpmemstats tag (sdk/memstats_wasip1.go), and the test then also logs the
// guest Go runtime's own MemStats. The figures are for RATIONALE.md, "What an instance holds".
func TestInstanceFootprint(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("loads every plugin (not under -short or -race)")
	}
	dir := cmpOr(os.Getenv("TTP_FOOTPRINT_PLUGINS"), "../plugins")
	mods, _ := filepath.Glob(filepath.Join(dir, "*.wasm"))
	if len(mods) == 0 {
		t.Skip("no plugins built (make plugins)")
	}
	all, err := rules.LoadDir("../rules/ttp")
	if err != nil {
		t.Fatal(err)
	}
	set, err := rules.NewRuleSet(all)
	if err != nil {
		t.Fatal(err)
	}
	events := footprintSample(t, "../testdata/events/sample.jsonl")
	calls := footprintEvents
	if n, err := strconv.Atoi(os.Getenv("TTP_FOOTPRINT_EVENTS")); err == nil && n > 0 {
		calls = n
	}
	ctx := context.Background()
	cache := t.TempDir()
	compiler, err := NewCompiler(CompilerConfig{CacheDir: cache})
	if err != nil {
		t.Fatal(err)
	}
	defer compiler.Close(ctx)
	var total footprintFigures
	for _, path := range mods {
		f := measurePlugin(t, compiler, cache, path, set, events, calls)
		t.Log(f.String())
		if f.guest != "" {
			t.Log("  guest MemStats after the events: " + f.guest)
		}
		total.code += f.code
		total.perInstance += f.perInstance
		if f.pagesAfter < f.pagesStart || f.pagesStart == 0 {
			t.Errorf("%s: linear memory %d pages after the events, %d at start", f.name, f.pagesAfter, f.pagesStart)
		}
	}
	t.Logf("all %d plugins: compiled code resident %.1f MiB; one more instance of each %.1f MiB of RSS",
		len(mods), mib(total.code), mib(total.perInstance))
}

// footprintFigures is one plugin's measurement.
type footprintFigures struct {
	name                   string
	wasm, cacheFile, code  int64 // module bytes, its compilation-cache file, resident compiled code
	loadRSS                int64 // RSS added by the load (compile from scratch, one instance, describe)
	pagesStart, pagesAfter uint32
	events                 int
	perInstance, perHeap   int64 // RSS and host Go heap one more configured instance adds
	guest                  string
}

func (f footprintFigures) String() string {
	return fmt.Sprintf("%-12s module %.2f MB, cache file %.1f MiB, code resident %.1f MiB, load +%.1f MiB RSS; "+
		"linear memory %d pages (%.1f MiB) after instantiate+configure, %d (%.1f MiB) after %d events; "+
		"one more instance +%.1f MiB RSS, +%.1f MiB host heap",
		f.name, float64(f.wasm)/1e6, mib(f.cacheFile), mib(f.code), mib(f.loadRSS),
		f.pagesStart, mib(int64(f.pagesStart)<<16), f.pagesAfter, mib(int64(f.pagesAfter)<<16), f.events,
		mib(f.perInstance), mib(f.perHeap))
}

func measurePlugin(t *testing.T, c *Compiler, cache, path string, set *rules.RuleSet, events []abi.Event, calls int) footprintFigures {
	t.Helper()
	ctx := context.Background()
	wasm, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f := footprintFigures{name: strings.TrimSuffix(filepath.Base(path), ".wasm"), wasm: int64(len(wasm))}
	settle()
	rss0, code0 := testkit.RSS(t), execAnonRSS(t)
	m, err := c.LoadWasm(ctx, path, wasm, Limits{Deadline: 5 * time.Second}) // no stall on a busy machine
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(ctx)
	settle()
	f.loadRSS, f.code = testkit.RSS(t)-rss0, execAnonRSS(t)-code0
	f.cacheFile = newestFileSize(t, cache)
	p, rej, err := NewPool(ctx, m, ownedConfigs(set, m.Manifest()), PoolConfig{Size: 1})
	if err != nil || len(rej) > 0 {
		t.Fatalf("%s: %v %v", path, err, rej)
	}
	defer p.Retire(false)
	f.pagesStart = poolInstance(p).mod.Memory().Size() >> 16
	var out []abi.TagDraft
	for i := 0; f.events < calls && len(events) > 0; i++ {
		ev := &events[i%len(events)]
		if !p.Handles(ev.SourceKind) {
			if i >= len(events) && f.events == 0 {
				break // no event of the sample is of this plugin's kinds
			}
			continue
		}
		if out, err = p.Tag(ctx, ev, out[:0]); err != nil {
			t.Fatalf("%s: %v", f.name, err)
		}
		f.events++
	}
	inst := poolInstance(p)
	f.pagesAfter = inst.mod.Memory().Size() >> 16
	f.guest = guestMemStats(t, inst)
	f.perInstance, f.perHeap = instanceCost(t, m, set)
	return f
}

// poolInstance is the idle instance of a pool of one.
func poolInstance(p *Pool) *wasmInstance {
	s := <-p.idle
	p.idle <- s
	return s.inst.(*wasmInstance)
}

// instanceCost is the RSS and host heap one more configured instance of m adds, averaged
// over footprintExtra instances.
func instanceCost(t *testing.T, m Module, set *rules.RuleSet) (rssDelta, heapDelta int64) {
	ctx := context.Background()
	settle()
	rss0, heap0 := testkit.RSS(t), hostHeap()
	p, _, err := NewPool(ctx, m, ownedConfigs(set, m.Manifest()), PoolConfig{Size: footprintExtra})
	if err != nil {
		t.Fatal(err)
	}
	settle()
	rssDelta, heapDelta = (testkit.RSS(t)-rss0)/footprintExtra, (hostHeap()-heap0)/footprintExtra
	p.Retire(false)
	return rssDelta, heapDelta
}

// guestMemStats calls ttp_memstats (modules built with the ttpmemstats tag) and formats the
// guest runtime's figures, or returns "" when the module does not export it.
func guestMemStats(t *testing.T, inst *wasmInstance) string {
	fn := inst.mod.ExportedFunction("ttp_memstats")
	if fn == nil {
		return ""
	}
	res, err := fn.Call(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	b, err := inst.output(res[0])
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"Sys", "HeapSys", "HeapInuse", "HeapIdle", "HeapReleased", "HeapAlloc",
		"StackSys", "MSpanSys", "MCacheSys", "BuckHashSys", "GCSys", "OtherSys", "NextGC", "NumGC"}
	var parts []string
	for i, n := range names {
		if len(b) < 8*(i+1) {
			break
		}
		v := binary.LittleEndian.Uint64(b[8*i:])
		if n == "NumGC" {
			parts = append(parts, fmt.Sprintf("%s %d", n, v))
		} else {
			parts = append(parts, fmt.Sprintf("%s %.2f", n, mib(int64(v))))
		}
	}
	return strings.Join(parts, ", ") + " (MiB)"
}

// footprintSample is the sample's events, fanned out as the dispatcher fans them out.
func footprintSample(t *testing.T, path string) []abi.Event {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []abi.Event
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		ev, err := abi.DecodeEvent(sc.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, abi.Expand(ev)...)
	}
	return out
}

// execAnonRSS is the resident size of the process's anonymous executable mappings: wazero's
// compiled code (the Go binary's own text is file-backed).
func execAnonRSS(t *testing.T) int64 {
	data, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Skip("no /proc/self/smaps")
	}
	var total int64
	exec := false
	for _, line := range strings.Split(string(data), "\n") {
		fields := strings.Fields(line)
		switch {
		case len(fields) >= 5 && strings.Contains(fields[0], "-"):
			exec = strings.Contains(fields[1], "x") && (len(fields) == 5 || fields[5] == "")
		case exec && len(fields) == 3 && fields[0] == "Rss:":
			kb, _ := strconv.ParseInt(fields[1], 10, 64)
			total += kb << 10
		}
	}
	return total
}

func newestFileSize(t *testing.T, dir string) int64 {
	var size int64
	var newest int64
	filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() && fi.ModTime().UnixNano() >= newest {
			newest, size = fi.ModTime().UnixNano(), fi.Size()
		}
		return nil
	})
	return size
}

// settle collects the host's garbage and returns it to the OS, so RSS readings compare.
func settle() {
	runtime.GC()
	debug.FreeOSMemory()
}

func hostHeap() int64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapInuse)
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// ownedConfigs is what a host configures a plugin with: the rules of set its manifest owns.
func ownedConfigs(set *rules.RuleSet, man *abi.Manifest) []abi.RuleConfig {
	var out []*rules.Rule
	for _, r := range set.Rules() {
		if !r.IsPattern() && man.Owns(r.Match.Kind) {
			out = append(out, r)
		}
	}
	return rules.PluginConfigs(out)
}
