package ingest_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/decnet/ttp/ingest"
)

func TestSortRotated(t *testing.T) {
	for _, tc := range []struct{ in, want []string }{
		{[]string{"cowrie.json", "cowrie.json.2026-12-05.gz", "cowrie.json.2026-12-04", "cowrie.json.2026-11-30"},
			[]string{"cowrie.json.2026-11-30", "cowrie.json.2026-12-04", "cowrie.json.2026-12-05.gz", "cowrie.json"}},
		{[]string{"cowrie.json.2026_12_5", "cowrie.json.2026_12_10", "cowrie.json"},
			[]string{"cowrie.json.2026_12_5", "cowrie.json.2026_12_10", "cowrie.json"}},
		{[]string{"cowrie.json", "cowrie.json.1", "cowrie.json.3.gz", "cowrie.json.2.gz"},
			[]string{"cowrie.json.3.gz", "cowrie.json.2.gz", "cowrie.json.1", "cowrie.json"}},
		{[]string{"b.json", "-", "a.json"}, []string{"b.json", "-", "a.json"}},
	} {
		if got := ingest.SortRotated(tc.in); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("SortRotated(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestOpenDetectsGzipByContent(t *testing.T) {
	dir := t.TempDir()
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	io.WriteString(zw, "line 1\nline 2\n")
	zw.Close()
	files := map[string][]byte{
		"cowrie.json.2026-12-05.gz": z.Bytes(),
		"cowrie.json.2026-12-04":    z.Bytes(), // compressed without the suffix
		"cowrie.json":               []byte("line 1\nline 2\n"),
		"empty":                     nil,
	}
	for name, data := range files {
		p := filepath.Join(dir, name)
		os.WriteFile(p, data, 0o644)
		rc, err := ingest.Open(p, nil)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if want := "line 1\nline 2\n"; err != nil || (string(got) != want && name != "empty") {
			t.Errorf("%s: %q, %v", name, got, err)
		}
	}
	rc, err := ingest.Open("-", strings.NewReader("from stdin\n"))
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(rc); string(b) != "from stdin\n" {
		t.Errorf("stdin: %q", b)
	}
	os.WriteFile(filepath.Join(dir, "bad.gz"), []byte{0x1f, 0x8b, 0, 1}, 0o644)
	if _, err := ingest.Open(filepath.Join(dir, "bad.gz"), nil); err == nil || !strings.Contains(err.Error(), "bad.gz: gzip") {
		t.Errorf("a broken gzip file: %v", err)
	}
}
