package report_test

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/decnet/ttp/report"
	"github.com/decnet/ttp/tagsource"
)

func TestRenderFixture(t *testing.T) {
	set, err := tagsource.ReadFile(fixture)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := report.Write(&buf, set, report.Options{}); err != nil {
		t.Fatal(err)
	}
	os.WriteFile("/tmp/report-test.html", buf.Bytes(), 0o644)
}

const fixture = "../testdata/report/tags.jsonl"

var _ = strings.Contains
