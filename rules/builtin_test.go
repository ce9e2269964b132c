package rules

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestBuiltinMatchesDir holds the built-in rules to the files of rules/ttp: same ids, same
// files, and every one parses, so a binary away from a checkout tags as one inside it.
func TestBuiltinMatchesDir(t *testing.T) {
	got, err := LoadBuiltin()
	if err != nil {
		t.Fatalf("LoadBuiltin: %v", err)
	}
	want, err := LoadDir("ttp")
	if err != nil {
		t.Fatalf("LoadDir: %v", err)
	}
	if len(got) != len(want) || len(got) == 0 {
		t.Fatalf("built-in %d rules, directory %d", len(got), len(want))
	}
	for i := range want {
		if got[i].ID != want[i].ID || got[i].File != filepath.ToSlash(filepath.Join(BuiltinDir, filepath.Base(want[i].File))) {
			t.Errorf("rule %d: built-in %s (%s), directory %s (%s)", i, got[i].ID, got[i].File, want[i].ID, want[i].File)
		}
		if got[i].Name != want[i].Name || len(got[i].Emits) != len(want[i].Emits) {
			t.Errorf("%s: built-in differs from the file", want[i].ID)
		}
	}
}

// TestLoadFSReportsFile checks that a bad file in an fs.FS is reported under the name given.
func TestLoadFSReportsFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "R9001.yaml"), []byte("id: R9001\nname: [\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := LoadFS(os.DirFS(dir), "mine")
	if err == nil {
		t.Fatal("LoadFS accepted a malformed file")
	}
	var e *Error
	if !errors.As(err, &e) || e.File != "mine/R9001.yaml" {
		t.Fatalf("error %v does not name mine/R9001.yaml", err)
	}
}
