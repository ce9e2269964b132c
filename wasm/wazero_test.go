package wasm

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestOneWazero: the daemon and the extism go-sdk it loads Extism plugins with run on one
// wazero, the one whose compilation cache, limits and termination checks the host sets up.
// Go resolves one version per module path, so this guards against a second copy arriving
// under another path (a wazero/v2 through some dependency) and checks the extism go-sdk is
// really in the build.
func TestOneWazero(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	out, err := exec.Command("go", "list", "-deps", "-f", "{{with .Module}}{{.Path}}@{{.Version}}{{end}}", "../cmd/ttp").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	var wazero, extism []string
	for _, m := range strings.Fields(string(out)) {
		switch {
		case strings.HasPrefix(m, "github.com/tetratelabs/wazero"):
			wazero = append(wazero, m)
		case strings.HasPrefix(m, "github.com/extism/go-sdk"):
			extism = append(extism, m)
		}
	}
	slices.Sort(wazero)
	wazero = slices.Compact(wazero)
	if len(wazero) != 1 || len(extism) == 0 {
		t.Fatalf("ttp builds with wazero %v and extism go-sdk %v: want one wazero, shared with the extism go-sdk", wazero, slices.Compact(extism))
	}
	t.Logf("one wazero: %s", wazero[0])
}

// TestPoolProducerAllocs: the Dispatcher names a pool's producer (name@version) on every call
// it makes to it; the name is built once, not per event.
func TestPoolProducerAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates on its own")
	}
	p := loadPool(t, wat("tiny_v1"), Limits{}, 1, nil, tinyRule(t, "R9001", 0.8, "marker"))
	var got string
	if n := testing.AllocsPerRun(100, func() { got = p.Producer() }); n != 0 || got != "tiny@1.0.0" {
		t.Errorf("Producer() = %q with %v allocations a call", got, n)
	}
}
