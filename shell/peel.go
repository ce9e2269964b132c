package shell

import "strings"

// wrapper describes a program that runs its arguments as another command: which of its
// options take a value (skipped with it) and how many plain operands precede the command
// (timeout's duration, chroot's directory).
type wrapper struct {
	valued   string // single-letter options that take a value
	long     []string
	operands int
}

// wrappers are peeled off the front of a command so that rules see the program that really
// runs. xargs is one too: `ps | grep x | xargs kill` runs kill.
var wrappers = map[string]wrapper{
	"sudo":         {valued: "ugpChDrtUT", long: []string{"--user", "--group", "--prompt"}},
	"doas":         {valued: "uC"},
	"env":          {valued: "uCS", long: []string{"--unset", "--chdir"}},
	"nohup":        {},
	"setsid":       {},
	"exec":         {valued: "a"},
	"command":      {},
	"builtin":      {},
	"time":         {valued: "fo"},
	"nice":         {valued: "n", long: []string{"--adjustment"}},
	"ionice":       {valued: "cnp"},
	"stdbuf":       {valued: "ioe"},
	"timeout":      {valued: "sk", long: []string{"--signal", "--kill-after"}, operands: 1},
	"chroot":       {operands: 1},
	"busybox":      {},
	"toybox":       {},
	"xargs":        {valued: "nILPsdaE", long: []string{"--max-args", "--replace", "--max-procs", "--delimiter", "--arg-file"}},
	"strace":       {valued: "oepsu"},
	"torsocks":     {},
	"proxychains":  {valued: "f"},
	"proxychains4": {valued: "f"},
	"watch":        {valued: "nd"},
	"screen":       {valued: "SLc"},
	"then":         {}, "do": {}, "else": {}, "!": {},
}

// maybeWrapper is a cheap test before the map lookup: most programs are not wrappers.
func maybeWrapper(name string) bool {
	if name == "" {
		return false
	}
	switch name[0] {
	case 's', 'd', 'e', 'n', 'c', 'b', 't', 'i', 'x', 'p', 'w', '!':
		return len(name) <= 12
	}
	return false
}

// peel fills c's program, arguments, environment and wrappers from words and returns the
// shell code c runs as a payload (sh -c, su -c, eval), "" when none.
func peel(c *Command, words []string, strs *[]string, ifs bool) (payload string, via Via) {
	env0 := len(*strs)
	if len(words) == 1 {
		words = braces(words)
	}
	if ifs {
		words = splitIFS(words)
	}
	for len(words) > 0 && isAssign(words[0]) {
		*strs = append(*strs, words[0])
		words = words[1:]
	}
	var wbuf [4]string
	peeled := wbuf[:0]
	// name is base(words[0]) while named: computed once a word, as every byte of a loop costs
	// a termination check in a wasip1 guest (RATIONALE.md, "What a deadline costs a Go guest")
	name, named := "", false
	for len(words) > 0 {
		name, named = base(words[0]), true
		if !maybeWrapper(name) {
			break
		}
		w, ok := wrappers[name]
		if !ok || len(words) == 1 {
			break
		}
		rest := words[1:]
		switch name {
		case "command":
			if len(rest) > 0 && (rest[0] == "-v" || rest[0] == "-V") {
				ok = false // `command -v x` looks x up; it runs nothing
			}
		case "screen":
			// screen -dmS name cmd: only the detached forms run a command of ours
			ok = len(rest) > 0 && strings.HasPrefix(rest[0], "-") && strings.ContainsAny(rest[0], "dmD")
		}
		if !ok {
			break
		}
		rest = skipOptions(rest, w)
		if name == "env" {
			for len(rest) > 0 && isAssign(rest[0]) {
				*strs = append(*strs, rest[0])
				rest = rest[1:]
			}
		}
		if name == "timeout" && len(rest) > 0 && !isDuration(rest[0]) {
			break
		}
		if len(rest) < w.operands+1 {
			break
		}
		rest = rest[w.operands:]
		peeled = append(peeled, name)
		words, named = rest, false
	}
	if n := len(*strs); n > env0 {
		c.Env = (*strs)[env0:n:n]
	}
	if len(peeled) > 0 {
		w0 := len(*strs)
		*strs = append(*strs, peeled...)
		c.Wrappers = (*strs)[w0:len(*strs):len(*strs)]
	}
	if len(words) == 0 {
		return "", Top
	}
	c.Path = words[0]
	if !named {
		name = base(words[0])
	}
	c.Name = name
	if c.Name == "${SHELL}" || c.Name == "$SHELL" || c.Name == "$BASH" {
		c.Name = "$SHELL"
	}
	c.Args = words[1:]
	switch {
	case isShell(c.Name):
		return shellPayload(c.Args), Script
	case c.Name == "su" || c.Name == "runuser":
		for i, a := range c.Args {
			if (a == "-c" || a == "--command") && i+1 < len(c.Args) {
				return c.Args[i+1], Script
			}
		}
	case c.Name == "eval":
		return strings.Join(c.Args, " "), Script
	}
	return "", Top
}

// shellPayload returns the -c argument of a shell's arguments ("" when it reads a script or
// stdin): `sh -c CODE`, `bash -lc CODE`, `sh -x -c CODE`.
func shellPayload(args []string) string {
	for i, a := range args {
		if len(a) < 2 || a[0] != '-' || a == "--" {
			return ""
		}
		if a[1] != '-' && strings.IndexByte(a, 'c') > 0 && i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}

// splitIFS splits words at ${IFS} and $IFS, as the shell's field splitting does when the
// expansion is unquoted: `wget${IFS}http://x` is how attackers write a blank that filters and
// naive tokenizers miss. Words without it are returned as they are, without copying.
func splitIFS(words []string) []string {
	found := false
	for _, w := range words {
		if strings.Contains(w, "$IFS") || strings.Contains(w, "${IFS}") {
			found = true
			break
		}
	}
	if !found {
		return words
	}
	var out []string
	for _, w := range words {
		w = strings.ReplaceAll(strings.ReplaceAll(w, "${IFS}", " "), "$IFS", " ")
		out = append(out, strings.Fields(w)...)
	}
	return out
}

// braces expands a lone `{echo,aWQ=}` command word into its words, as bash's brace
// expansion does: attackers write commands without blanks so that they survive filters.
func braces(words []string) []string {
	w := words[0]
	if len(w) < 4 || w[0] != '{' || w[len(w)-1] != '}' || !strings.Contains(w, ",") || strings.ContainsAny(w[1:len(w)-1], "{} ") {
		return words
	}
	return strings.Split(w[1:len(w)-1], ",")
}

// skipOptions drops a wrapper's own options (and the values of the valued ones) and a "--".
func skipOptions(args []string, w wrapper) []string {
	for len(args) > 0 {
		a := args[0]
		if a == "--" {
			return args[1:]
		}
		if len(a) < 2 || a[0] != '-' || isNumber(a[1:]) && w.valued == "n" {
			if len(a) > 1 && a[0] == '-' && isNumber(a[1:]) { // nice -10
				args = args[1:]
				continue
			}
			return args
		}
		if strings.HasPrefix(a, "--") {
			args = args[1:]
			for _, l := range w.long {
				if a == l && len(args) > 0 {
					args = args[1:]
				}
			}
			continue
		}
		args = args[1:]
		if last := a[len(a)-1]; strings.IndexByte(w.valued, last) >= 0 && len(args) > 0 {
			args = args[1:]
		}
	}
	return args
}

// isAssign reports whether w is a NAME=value word.
func isAssign(w string) bool {
	for i := 0; i < len(w); i++ {
		c := w[i]
		switch {
		case c == '=':
			return i > 0
		case c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9':
		default:
			return false
		}
	}
	return false
}

func isNumber(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if (s[i] < '0' || s[i] > '9') && s[i] != '.' {
			return false
		}
	}
	return true
}

// isDuration reports whether s is timeout's duration operand (10, 1.5, 5s, 2m).
func isDuration(s string) bool {
	if s == "" {
		return false
	}
	if n := len(s) - 1; strings.IndexByte("smhd", s[n]) >= 0 {
		s = s[:n]
	}
	return isNumber(s)
}
