package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestPluginNew scaffolds a lifter in a temp dir, runs its sdktest, builds the module and
// runs conform on it: the scaffold is buildable and conforming as generated.
func TestPluginNew(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a wasm module")
	}
	repo, _ := filepath.Abs("../..")
	dir := filepath.Join(t.TempDir(), "demo")
	stdout, stderr, code := ttp(t, "", "plugin", "new", "demo", "--dir", dir, "--ttp-src", repo)
	if code != 0 {
		t.Fatalf("plugin new: exit %d: %s", code, stderr)
	}
	for _, f := range []string{"main.go", "main_test.go", "rules/R9000.yaml", "vectors/demo.yaml", "go.mod"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("missing %s (%s)", f, stdout)
		}
	}
	goCmd := func(env []string, args ...string) {
		t.Helper()
		cmd := exec.Command("go", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), append([]string{"GOFLAGS=-mod=mod"}, env...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	goCmd(nil, "test", "./...")
	goCmd([]string{"GOOS=wasip1", "GOARCH=wasm"}, "build", "-buildmode=c-shared", "-o", "demo.wasm", ".")
	stdout, stderr, code = ttp(t, "", "conform", "--rules", filepath.Join(dir, "rules"), "--vectors", filepath.Join(dir, "vectors"), "--calls", "2000", filepath.Join(dir, "demo.wasm"))
	if code != 0 || !strings.Contains(stdout, "0 failed") {
		t.Fatalf("conform: exit %d\n%s%s", code, stdout, stderr)
	}
	// A second scaffold over the same directory is refused, and names are checked.
	if _, _, code := ttp(t, "", "plugin", "new", "demo", "--dir", dir); code == 0 {
		t.Error("scaffold over an existing directory accepted")
	}
	if _, _, code := ttp(t, "", "plugin", "new", "Bad-Name", "--dir", t.TempDir()+"/x"); code != 2 {
		t.Error("bad name accepted")
	}
}
