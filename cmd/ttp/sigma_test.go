package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestImportSigma runs `ttp rules import-sigma` on the fixtures, lints what it wrote, and
// checks that a re-run keeps ids and reports a file whose rule is gone as stale.
func TestImportSigma(t *testing.T) {
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	err := runRules(context.Background(), []string{"import-sigma", "../../testdata/sigma/rules", "-o", out, "-v"}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("%v\n%s%s", err, stdout.String(), stderr.String())
	}
	text := stdout.String()
	for _, want := range []string{"16 Sigma rules read, 14 converted, 2 skipped", "field User", "no technique in tags",
		"skip  sigma: proc_creation_lnx_omigod_scx_runasprovider_executescript.yml:28: detection.selection.User:"} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
	stdout.Reset()
	if err := runRules(context.Background(), []string{"lint", out}, &stdout, &stderr); err != nil || !strings.Contains(stdout.String(), "14 rules OK") {
		t.Fatalf("lint: %v\n%s", err, stdout.String())
	}
	// a converted file whose Sigma rule is not in DIR any more
	src := t.TempDir()
	one := "proc_creation_lnx_clear_logs.yml"
	data, _ := os.ReadFile(filepath.Join("../../testdata/sigma/rules", one))
	os.WriteFile(filepath.Join(src, one), data, 0o644)
	stdout.Reset()
	if err := runRules(context.Background(), []string{"import-sigma", src, "-o", out}, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout.String(), "1 converted, 0 skipped, 13 stale file(s) left in place") {
		t.Errorf("re-run:\n%s", stdout.String())
	}
	attr, _ := os.ReadFile(filepath.Join(out, "ATTRIBUTION.md"))
	if n := strings.Count(string(attr), "\n| R"); n != 14 {
		t.Errorf("ATTRIBUTION.md credits %d rules, the directory holds 14", n)
	}
	if err := runRules(context.Background(), []string{"import-sigma", src}, &stdout, &stderr); !errors.Is(err, exitError(2)) {
		t.Errorf("no -o: %v", err)
	}
}
