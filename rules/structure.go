package rules

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/decnet/ttp/abi"
	"github.com/decnet/ttp/shell"
)

// Structure rules: a command rule whose match says `when:` instead of `pattern:` is evaluated
// on the command line as package shell reads it, parsed once per event and shared by every
// rule. Each named branch of `when` is a condition on one simple command (its program, its
// arguments, its redirections, what it is piped into or nested in); the rule fires when some
// branch holds for some command, and each emit may name the branches it stands for
// (`when: [user]`), so a rule says only what the match shows.
//
//	match:
//	  kind: pattern
//	  when:
//	    user: {program: [whoami, id], bare: true}
//	    accounts: {program: [$readers], args: '/etc/(passwd|group)\b'}
//	emits:
//	  - {technique_id: T1033, tactic: discovery, confidence: 0.8, when: [user]}

// MaxBranches bounds the branches of one rule: the matched branches of a rule are one word.
const MaxBranches = 64

// Branch is one named condition of a structure rule on a simple command. Every key given
// must hold; lists name programs by base name (`$name` entries expand a shared list), and
// regular expressions are Go RE2, unanchored, with `{{name}}` expanding a shared list.
type Branch struct {
	Name  string
	Sigma *SigmaDetection // a compiled Sigma detection that must hold (sigmakind.go)
	// Program: the command's base name is one of these.
	Program []string
	// Path: a regexp on the program as written (`./x`, `/tmp/.x`, `$SHELL`).
	Path *regexp.Regexp
	// Args and NotArgs: a regexp that must (must not) match the arguments joined by blanks.
	Args, NotArgs *regexp.Regexp
	// Redirect: a regexp that some output redirection's target (>, >>, &>) matches.
	Redirect *regexp.Regexp
	// Input: a regexp that some input redirection's target (<, <<, <<<) matches.
	Input *regexp.Regexp
	// PipedTo, PipedFrom: the program this command's output feeds, or reads from, is listed.
	PipedTo, PipedFrom []string
	// NestedIn: the command runs inside the payload or substitution of a listed program.
	NestedIn []string
	// Wrapped: one of these wrappers was peeled off the command (nohup, busybox, sudo...).
	Wrapped []string
	// Bare: the command has no arguments (true) or has some (false); unset, either.
	Bare *bool
	// Background: the command ends in `&` (true) or not (false); unset, either.
	Background *bool
	// Line: a regexp on the whole command line, for what the structure cannot say.
	Line *regexp.Regexp

	progs, pipedTo, pipedFrom, nestedIn, wrapped map[string]bool
}

// branchKeys are the keys a branch may have (none required; at least one is checked).
var branchKeys = map[string]bool{
	"program": false, "path": false, "args": false, "not_args": false, "redirect": false,
	"input": false, "piped_to": false, "piped_from": false, "nested_in": false, "wrapped": false,
	"bare": false, "background": false, "line": false,
}

// structure parses match.when into r.branches.
func (p *parser) structure(n *yaml.Node, r *Rule, used map[string]bool) {
	if n.Kind != yaml.MappingNode || len(n.Content) == 0 {
		p.errorf(n, "match.when", ErrType, "want a mapping of named branches, got %s", describe(n))
		return
	}
	if len(n.Content)/2 > MaxBranches {
		p.errorf(n, "match.when", ErrRange, "%d branches, at most %d", len(n.Content)/2, MaxBranches)
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		field := "match.when." + k.Value
		if !evidenceRE.MatchString(k.Value) {
			p.errorf(k, field, ErrBadValue, "branch name %q: want a plain lower-case name", k.Value)
		}
		for _, b := range r.branches {
			if b.Name == k.Value {
				p.errorf(k, field, ErrDuplicateKey, "")
			}
		}
		if v.Kind != yaml.MappingNode {
			p.errorf(v, field, ErrType, "want a mapping of conditions, got %s", describe(v))
			continue
		}
		keys := p.mapping(v, field+".", branchKeys)
		if len(keys) == 0 {
			p.errorf(v, field, ErrMissing, "a branch needs at least one condition")
			continue
		}
		b := &Branch{Name: k.Value}
		names := func(key string) ([]string, map[string]bool) {
			kn := keys[key]
			if kn == nil {
				return nil, nil
			}
			l := p.strList(kn, field+"."+key)
			out, err := expandNames(l, used)
			if err != nil {
				p.errorf(kn, field+"."+key, err, "")
				return nil, nil
			}
			set := make(map[string]bool, len(out))
			for _, s := range out {
				set[s] = true
			}
			return out, set
		}
		re := func(key string) *regexp.Regexp {
			kn := keys[key]
			if kn == nil {
				return nil
			}
			src := p.str(kn, field+"."+key)
			exp, err := expandRegex(src, used)
			if err != nil {
				p.errorf(kn, field+"."+key, err, "")
				return nil
			}
			return p.regex(kn, field+"."+key, exp)
		}
		flag := func(key string) *bool {
			kn := keys[key]
			if kn == nil {
				return nil
			}
			if kn.Kind != yaml.ScalarNode || kn.Tag != "!!bool" {
				p.errorf(kn, field+"."+key, ErrType, "want true or false, got %s", describe(kn))
				return nil
			}
			v := kn.Value == "true"
			return &v
		}
		b.Program, b.progs = names("program")
		b.PipedTo, b.pipedTo = names("piped_to")
		b.PipedFrom, b.pipedFrom = names("piped_from")
		b.NestedIn, b.nestedIn = names("nested_in")
		b.Wrapped, b.wrapped = names("wrapped")
		b.Path, b.Args, b.NotArgs = re("path"), re("args"), re("not_args")
		b.Redirect, b.Input, b.Line = re("redirect"), re("input"), re("line")
		b.Bare, b.Background = flag("bare"), flag("background")
		r.branches = append(r.branches, b)
	}
}

// Branches returns a structure rule's branches in file order (nil for a regexp rule).
func (r *Rule) Branches() []*Branch { return r.branches }

// IsStructure reports whether r matches on the parsed command line (match.when).
func (r *Rule) IsStructure() bool { return len(r.branches) > 0 }

// command is what a branch sees of one simple command: the command and its arguments joined
// (computed once per command, when a branch first asks).
type command struct {
	line   *shell.Line
	i      int
	args   []byte
	joined bool
	sigma  *sigmaView // sigmakind.go
}

func (c *command) argText(buf *[]byte) []byte {
	if !c.joined {
		b := (*buf)[:0]
		for j, a := range c.line.Commands[c.i].Args {
			if j > 0 {
				b = append(b, ' ')
			}
			b = append(b, a...)
		}
		*buf = b
		c.args, c.joined = b, true
	}
	return c.args
}

// holds reports whether the branch holds for command c of line.
func (b *Branch) holds(c *command, buf *[]byte) bool {
	if b.Sigma != nil {
		return b.Sigma.MatchView(c.sigmaView()) // sigmakind.go
	}
	cmd := &c.line.Commands[c.i]
	cmds := c.line.Commands
	switch {
	case b.progs != nil && !b.progs[cmd.Name],
		b.Bare != nil && *b.Bare != (len(cmd.Args) == 0),
		b.Background != nil && *b.Background != cmd.Background,
		b.pipedTo != nil && (cmd.PipedTo < 0 || !b.pipedTo[cmds[cmd.PipedTo].Name]),
		b.pipedFrom != nil && (cmd.PipedFrom < 0 || !b.pipedFrom[cmds[cmd.PipedFrom].Name]),
		b.nestedIn != nil && (cmd.Parent < 0 || !b.nestedIn[cmds[cmd.Parent].Name]),
		b.wrapped != nil && !anyIn(cmd.Wrappers, b.wrapped),
		b.Path != nil && !b.Path.MatchString(cmd.Path):
		return false
	}
	if b.Redirect != nil && !redirectMatches(cmd.Redirs, b.Redirect, true) ||
		b.Input != nil && !redirectMatches(cmd.Redirs, b.Input, false) {
		return false
	}
	if b.Args != nil && !b.Args.Match(c.argText(buf)) || b.NotArgs != nil && b.NotArgs.Match(c.argText(buf)) {
		return false
	}
	return b.Line == nil || b.Line.MatchString(c.line.Text)
}

func anyIn(l []string, set map[string]bool) bool {
	for _, s := range l {
		if set[s] {
			return true
		}
	}
	return false
}

func redirectMatches(rs []shell.Redirect, re *regexp.Regexp, writes bool) bool {
	for _, r := range rs {
		if r.Writes() == writes && !strings.HasPrefix(r.Op, ">&") && re.MatchString(r.Target) {
			return true
		}
	}
	return false
}

// structEngine indexes the branches of every structure rule of a kind by program name, so a
// command costs one map lookup plus the branches about its program (and the few about any).
type structEngine struct {
	byProgram map[string][]branchRef
	any       []branchRef
}

// branchRef is branch bit of rule (an index into kindEngine.rules).
type branchRef struct {
	rule int
	bit  uint64
	b    *Branch
}

func newStructEngine(rules []*Rule) *structEngine {
	s := &structEngine{byProgram: map[string][]branchRef{}}
	for i, r := range rules {
		for bi, b := range r.branches {
			ref := branchRef{rule: i, bit: 1 << bi, b: b}
			if len(b.Program) == 0 {
				s.any = append(s.any, ref)
				continue
			}
			for _, p := range b.Program {
				s.byProgram[p] = append(s.byProgram[p], ref)
			}
		}
	}
	for k, refs := range s.byProgram {
		sort.SliceStable(refs, func(i, j int) bool { return refs[i].rule < refs[j].rule })
		s.byProgram[k] = dedupRefs(refs)
	}
	return s
}

func dedupRefs(refs []branchRef) []branchRef {
	out := refs[:0]
	for i, r := range refs {
		if i > 0 && r.b == refs[i-1].b {
			continue
		}
		out = append(out, r)
	}
	return out
}

// match ORs into masks[rule] the branches that hold somewhere in line.
func (s *structEngine) match(line *shell.Line, masks []uint64, buf *[]byte) {
	for i := range line.Commands {
		c := command{line: line, i: i}
		for _, ref := range s.byProgram[line.Commands[i].Name] {
			if masks[ref.rule]&ref.bit == 0 && ref.b.holds(&c, buf) {
				masks[ref.rule] |= ref.bit
			}
		}
		for _, ref := range s.any {
			if masks[ref.rule]&ref.bit == 0 && ref.b.holds(&c, buf) {
				masks[ref.rule] |= ref.bit
			}
		}
	}
}

// matchNaive is match without the index: every branch of every rule on every command. The
// tests compare the two.
func matchNaive(rules []*Rule, line *shell.Line, masks []uint64) {
	var buf []byte
	for i := range line.Commands {
		c := command{line: line, i: i}
		for ri, r := range rules {
			for bi, b := range r.branches {
				if b.holds(&c, &buf) {
					masks[ri] |= 1 << bi
				}
			}
		}
	}
}

// fireStructure appends the drafts of a structure rule whose matched branches are mask.
func (r *Rule) fireStructure(field abi.Path, text string, mask uint64, out []abi.TagDraft) []abi.TagDraft {
	if mask == 0 || (r.exclude != nil && r.exclude.MatchString(text)) {
		return out
	}
	for _, em := range r.Emits {
		if em.whenMask != 0 && em.whenMask&mask == 0 {
			continue
		}
		out = append(out, abi.TagDraft{
			RuleID:         r.ID,
			TechniqueID:    em.TechniqueID,
			SubTechniqueID: em.SubTechniqueID,
			Tactic:         em.Tactic,
			Confidence:     em.Confidence,
			Evidence:       r.evidence(field, text), // sigmakind.go
		})
	}
	return out
}

// resolveWhen compiles each emit's `when` branch names into a mask, reporting unknown names.
func (p *parser) resolveWhen(r *Rule, nodes []*yaml.Node) {
	for i := range r.Emits {
		e := &r.Emits[i]
		for _, name := range e.When {
			found := false
			for bi, b := range r.branches {
				if b.Name == name {
					e.whenMask |= 1 << bi
					found = true
				}
			}
			if !found {
				p.errorf(nodes[i], fmt.Sprintf("emits[%d].when", i), ErrBadValue, "no branch %q in match.when", name)
			}
		}
	}
}
