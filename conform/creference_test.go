package conform

import (
	"bytes"
	"context"
	"testing"
)

// TestCReferenceConforms: the C reference lifter (wasm/testdata/reference/c, a committed
// fixture built from C against ABI v1 with sdk/c/ttp.h) passes every check of `ttp conform`
// on the reference rules and golden vectors: the proof that a lifter can come from another
// language without the Go sdk or Extism. `make conform` runs the same through the binary.
func TestCReferenceConforms(t *testing.T) {
	rep, err := Run(context.Background(), "../wasm/testdata/reference/c/lifter.wasm", Options{
		RulesDir: "../wasm/testdata/reference/rules", VectorsDir: "../wasm/testdata/reference/vectors", Calls: 2000, Compiler: compiler})
	if err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	rep.WriteText(&text)
	if rep.Failed() > 0 || rep.Producer != "reference-c@1.0.0" {
		t.Fatalf("%d checks failed:\n%s", rep.Failed(), text.String())
	}
	for _, r := range rep.Results {
		if r.Skipped {
			t.Errorf("skipped %s: %s", r.Name, r.Detail)
		}
	}
	if r := result(rep, "golden vectors"); r.Detail != "7 vectors over 1 kinds" {
		t.Errorf("golden vectors: %+v", r)
	}
	t.Logf("\n%s", text.String())
}
