// Package shell reads a command line as a POSIX shell would, into the simple commands it runs:
// each with its program, its argument vector after quote removal and escape processing, its
// redirections, and where it sits (what it is piped from and into, what it is nested in).
//
// It exists so that rules and lifters stop re-implementing shell structure in regular
// expressions: a rule about wget asks for the program wget, and this package finds it after
// `;`, `&&`, `|`, inside `$(...)`, behind `sudo env X=1 nohup`, as a busybox applet, or in the
// payload of `sh -c '...'` or `echo '...' | sh`.
//
// Parsing never fails. Lines made of plain words, quotes and operators (nearly all that
// attackers type) are read by a small lexer of our own; anything it does not handle (command
// substitution, here-documents, compound commands) goes to mvdan.cc/sh/v3/syntax; what that
// parser rejects (truncated quotes, junk) is split tolerantly on operators and blanks. The
// measured reason for the two-tier design is in RATIONALE.md ("One shell reader").
//
// The package imports nothing of ttp, so that the rule engine and a wasip1 lifter can both
// use it.
package shell

import "strings"

// MaxDepth bounds how deep payloads nest (`sh -c "sh -c '...'"`, `$( $( ) )`): a hostile line
// costs bounded work, and real attackers rarely nest past two.
const MaxDepth = 4

// MaxCommands bounds the simple commands one line yields; the rest of the line is ignored.
const MaxCommands = 256

// Via says how a command was reached: on the line itself or inside another command's payload.
type Via uint8

// The ways a command is nested. A Sigma-style ParentImage is the program of Command.Parent.
const (
	Top    Via = iota // on the line itself
	Subst             // inside $(...) or backticks of its parent's words
	Script            // the -c payload of a shell (sh -c, bash -c, su -c), or eval's arguments
	Stdin             // text piped or redirected into a shell (echo '...' | sh, sh <<< '...')
)

// Command is one simple command as the shell would execute it, wrappers peeled.
type Command struct {
	// Path is the program as written after peeling (`/usr/bin/wget`, `wget`, `./x`); Name is
	// its base name (`wget`, `x`). For `busybox wget` both are `wget` and "busybox" is in
	// Wrappers; a program word the shell would expand (`$SHELL`) keeps its text.
	Path, Name string
	// Args is argv[1:] after quote removal; an expansion ($X, $(...)) stays as its text.
	Args []string
	// Env holds the VAR=value assignments before the program (and env's own).
	Env []string
	// Wrappers are the base names of the wrappers peeled off, outermost first (sudo, env,
	// nohup, busybox...): a rule may care that a payload ran under nohup.
	Wrappers []string
	// Redirs are the command's redirections in order.
	Redirs []Redirect
	// Op is the control operator before the command on its level: "" (first), ";", "&&",
	// "||", "|" (piped from the previous command) or "&" (the previous one was backgrounded).
	Op string
	// Background reports a trailing `&`.
	Background bool
	// PipedFrom and PipedTo index Line.Commands: the command whose output this one reads, and
	// the one reading this one's output; -1 when none.
	PipedFrom, PipedTo int
	// Parent indexes Line.Commands: the command whose payload or words hold this one, -1 for
	// a command of the line itself. Via says how.
	Parent int
	Via    Via
	// Depth is the nesting depth (0 on the line itself).
	Depth int
	// Text is the command's source text as written (for a payload, in the payload).
	Text string
}

// Redirect is one redirection: Op is its operator without the descriptor (">", ">>", "<",
// ">&", "<&", "<>", "&>", "&>>", "<<", "<<<"), Fd the descriptor as written ("" for the
// default), Target the word after quote removal (the body for a here-document).
type Redirect struct {
	Fd, Op, Target string
}

// Writes reports whether r sends output into Target (>, >>, &>, &>>, >|).
func (r Redirect) Writes() bool { return strings.HasPrefix(r.Op, ">") || strings.HasPrefix(r.Op, "&>") }

// Line is a parsed command line.
type Line struct {
	Text     string
	Commands []Command
	// Fallback reports that the line was not valid shell and was split tolerantly.
	Fallback bool
}

// Image is the resolved program path in the sense Sigma's process_creation rules use: Path
// when it names a directory, else /usr/bin/ followed by the name, which is where an
// attacker's bare commands resolve on the systems honeypots imitate.
func (c *Command) Image() string {
	if strings.Contains(c.Path, "/") {
		return c.Path
	}
	return "/usr/bin/" + c.Name
}

// CommandLine is the program and its arguments joined by blanks, as a process_creation log
// records them.
func (c *Command) CommandLine() string {
	if len(c.Args) == 0 {
		return c.Path
	}
	return c.Path + " " + strings.Join(c.Args, " ")
}

// Wrapped reports whether a wrapper of the given base name was peeled off c.
func (c *Command) Wrapped(name string) bool {
	for _, w := range c.Wrappers {
		if w == name {
			return true
		}
	}
	return false
}

// ParentOf returns the command c was nested in or piped from (the Sigma parent), nil when
// none: nesting first, since a payload's parent is the shell that ran it.
func (l *Line) ParentOf(i int) *Command {
	c := &l.Commands[i]
	switch {
	case c.Parent >= 0:
		return &l.Commands[c.Parent]
	case c.PipedFrom >= 0:
		return &l.Commands[c.PipedFrom]
	}
	return nil
}

// Parse reads text into its simple commands. It never fails; see the package comment.
func Parse(text string) *Line {
	var p Parser
	l := p.Parse(text)
	return &l
}

// Parser parses lines reusing its buffers: the rule engine keeps one per worker so that the
// per-event path allocates little. The Line it returns is valid until the next Parse.
type Parser struct {
	cmds []Command
	// one lexer per nesting depth, buffers kept: a payload at depth d is read completely
	// before the next one at d starts, so each depth's buffers can be reused
	lx   [MaxDepth + 1]lexer
	strs []string // backing store of Env and Wrappers, reset per Parse
	ifs  bool     // the line mentions IFS: words may need field splitting
}

// Parse reads text into its simple commands; the result is valid until the next call.
func (p *Parser) Parse(text string) Line {
	p.cmds = p.cmds[:0]
	p.strs = p.strs[:0]
	p.ifs = strings.Contains(text, "IFS")
	for i := range p.lx {
		p.lx[i].arena, p.lx[i].reds, p.lx[i].bytes = p.lx[i].arena[:0], p.lx[i].reds[:0], p.lx[i].bytes[:0]
	}
	fallback := p.parse(text, -1, Top, 0)
	return Line{Text: text, Commands: p.cmds, Fallback: fallback}
}

// rawCmd is a simple command as a parser produced it, before peeling.
type rawCmd struct {
	words  []string
	redirs []Redirect
	op     string
	bg     bool
	text   string
	nested []nested // substitutions found in its words
}

// nested is the source text of a command substitution found inside a word.
type nested struct{ text string }

// parse reads text at depth and appends its commands to p.cmds with the given parent, and
// reports whether the tolerant split was needed.
func (p *Parser) parse(text string, parent int, via Via, depth int) bool {
	lx := &p.lx[depth]
	lx.reset(text)
	raws, ok := lx.run()
	fallback := false
	if !ok {
		raws, ok = parseMvdan(text)
		if !ok {
			lx.reset(text)
			lx.tolerant = true
			raws, _ = lx.run()
			fallback = true
		}
	}
	p.emit(raws, parent, via, depth)
	return fallback
}

// emit peels each raw command and appends it, then its nested payloads.
func (p *Parser) emit(raws []rawCmd, parent int, via Via, depth int) {
	prev := -1
	for _, rc := range raws {
		if len(p.cmds) >= MaxCommands {
			return
		}
		idx := len(p.cmds)
		c := Command{PipedFrom: -1, PipedTo: -1, Parent: parent, Via: via, Depth: depth, Op: rc.op, Background: rc.bg, Text: rc.text, Redirs: rc.redirs}
		if rc.op == "|" && prev >= 0 {
			c.PipedFrom = prev
			p.cmds[prev].PipedTo = idx
		}
		payload, pvia := peel(&c, rc.words, &p.strs, p.ifs)
		p.cmds = append(p.cmds, c)
		prev = idx
		if depth+1 > MaxDepth {
			continue
		}
		for _, n := range rc.nested {
			p.parse(n.text, idx, Subst, depth+1)
		}
		if payload == "" && c.PipedFrom >= 0 && isShell(c.Name) && len(c.Args) == 0 {
			// echo '...' | sh: the payload is what the feeder prints.
			if f := &p.cmds[c.PipedFrom]; f.Name == "echo" || f.Name == "printf" {
				payload, pvia = printed(f), Stdin
			}
		}
		if payload == "" && isShell(c.Name) && len(c.Args) == 0 {
			for _, r := range c.Redirs {
				if r.Op == "<<<" || r.Op == "<<" {
					payload, pvia = r.Target, Stdin
				}
			}
		}
		if payload != "" && !strings.HasPrefix(payload, "$(") && payload[0] != '`' {
			// a payload that is one substitution was read as such already
			p.parse(payload, idx, pvia, depth+1)
		}
	}
}

// printed is what an echo or printf command writes, its options dropped: the payload of
// `echo '...' | sh`.
func printed(c *Command) string {
	args := c.Args
	escapes := c.Name == "printf"
	for len(args) > 0 && len(args[0]) > 1 && args[0][0] == '-' && c.Name == "echo" {
		escapes = escapes || strings.Contains(args[0], "e")
		args = args[1:]
	}
	out := strings.Join(args, " ")
	if escapes {
		out = ansiC(out) // echo -e '\x69\x64' | sh runs id
	}
	return out
}

// isShell reports the programs whose -c argument and stdin are shell code.
func isShell(name string) bool {
	switch name {
	case "sh", "bash", "dash", "ash", "zsh", "ksh", "mksh", "$SHELL":
		return true
	}
	return false
}

// base returns the last path element of a program word.
func base(w string) string {
	if i := strings.LastIndexByte(w, '/'); i >= 0 && i < len(w)-1 {
		return w[i+1:]
	}
	return w
}
