// Package boundary holds the test that keeps the tagging path's packages to their jobs
// (docs/ARCHITECTURE.md, "Packages, and who may import whom"): the runtime knows no rules,
// metrics or tracing, the dispatcher no WebAssembly runtime.
package boundary

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestImportBoundaries lists, with `go list -deps`, every package each of ours pulls in
// (transitively, tests excluded) and fails on one it must not.
func TestImportBoundaries(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH to list imports with")
	}
	const ttp = "github.com/decnet/ttp/"
	tests := []struct {
		pkg       string
		forbidden []string // import path prefixes
	}{
		{ttp + "wasm", []string{"github.com/prometheus/", "go.opentelemetry.io/", "github.com/extism/",
			ttp + "rules", ttp + "dispatch", ttp + "host", ttp + "telemetry", ttp + "bus", ttp + "store"}},
		{ttp + "dispatch", []string{"github.com/tetratelabs/wazero", "github.com/extism/", "github.com/prometheus/", "go.opentelemetry.io/",
			ttp + "wasm", ttp + "host", ttp + "telemetry", ttp + "bus", ttp + "store"}},
		{ttp + "host", []string{"github.com/prometheus/", "go.opentelemetry.io/otel", ttp + "telemetry", ttp + "bus", ttp + "store"}},
		{ttp + "rules", []string{"github.com/tetratelabs/wazero", ttp + "wasm", ttp + "dispatch", ttp + "host"}},
		{ttp + "abi", []string{ttp}},
	}
	// A plugin's module (sdk built for wasip1) carries no runtime of the host's.
	tests = append(tests, struct {
		pkg       string
		forbidden []string
	}{ttp + "sdk", []string{"github.com/tetratelabs/wazero", ttp + "wasm", ttp + "rules", ttp + "host"}})
	for _, tt := range tests {
		t.Run(strings.TrimPrefix(tt.pkg, ttp), func(t *testing.T) {
			cmd := exec.Command(goBin, "list", "-deps", "-f", "{{.ImportPath}}", tt.pkg)
			if tt.pkg == ttp+"sdk" {
				cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
			}
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("go list: %v\n%s", err, out)
			}
			deps := strings.Fields(string(out))
			if len(deps) < 2 {
				t.Fatalf("go list -deps %s listed %d packages: %q", tt.pkg, len(deps), out)
			}
			for _, d := range deps {
				if d == tt.pkg {
					continue
				}
				for _, f := range tt.forbidden {
					if strings.HasPrefix(d, f) {
						t.Errorf("%s imports %s (nothing under %s may be among its dependencies)", tt.pkg, d, f)
					}
				}
			}
		})
	}
}
