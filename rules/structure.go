package rules

import (
	"fmt"
	"regexp"
	"regexp/syntax"
	"sort"
	"strings"
	"unsafe"

	"gopkg.in/yaml.v3"

	"github.com/decnet/ttp/abi"
	"github.com/decnet/ttp/rules/internal/ahocorasick"
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
	// Arg and NotArg: a regexp that some argument (no argument) matches whole, so a rule
	// need not spell the blanks around it (`arg: '-\w*d|--decode'`).
	Arg, NotArg *regexp.Regexp
	// Redirect: a regexp that some output redirection's target (>, >>, &>) matches.
	Redirect *regexp.Regexp
	// Input: a regexp that some input redirection's target (<, <<, <<<) matches.
	Input *regexp.Regexp
	// PipedTo: a program later in the command's pipeline is listed (`curl | tee x | sh` is
	// a download piped into a shell). PipedFrom: the program right before it is listed
	// (`echo x | chpasswd | bash` does not feed echo's text to bash).
	PipedTo, PipedFrom []string
	// Env: a regexp that some VAR=value assignment before the program (or of env) matches.
	Env *regexp.Regexp
	// NestedIn: the command runs inside the payload or substitution of a listed program.
	NestedIn []string
	// Via: how the command is nested: subst ($(...), backticks, <(...)), script (sh -c, eval)
	// or stdin (echo '...' | sh); "" for any.
	Via string
	via shell.Via
	// Wrapped: one of these wrappers was peeled off the command (nohup, busybox, sudo...).
	Wrapped []string
	// Bare: the command has no arguments (true) or has some (false); unset, either.
	Bare *bool
	// Background: the command ends in `&` (true) or not (false); unset, either.
	Background *bool
	// Piped: the command's output goes into another command (true) or not (false).
	Piped *bool
	// Line: a regexp on the whole command line, for what the structure cannot say.
	Line *regexp.Regexp
	// Reads, Writes, Deletes name what the command does to a file whose path matches, so that
	// the many ways of doing it are written once (here and in the shared lists readers,
	// writers, deleters) rather than in every rule: see readsFile, writesFile, deletesFile.
	Reads, Writes, Deletes *regexp.Regexp
	// Cleanup: a deleter removes a file an earlier command of the line ran, downloaded, made
	// executable or wrote (`wget http://x/b; sh b; rm -f b`), or the running script ($0).
	Cleanup *bool

	progs, pipedTo, pipedFrom, nestedIn, wrapped map[string]bool
}

// branchKeys are the keys a branch may have (none required; at least one is checked).
var branchKeys = map[string]bool{
	"program": false, "path": false, "args": false, "not_args": false, "redirect": false,
	"input": false, "piped_to": false, "piped_from": false, "nested_in": false, "wrapped": false,
	"bare": false, "background": false, "piped": false, "env": false, "arg": false, "not_arg": false, "cleanup": false, "via": false, "line": false, "reads": false, "writes": false, "deletes": false,
}

// viaNames are the values of a branch's via key.
var viaNames = map[string]shell.Via{"subst": shell.Subst, "script": shell.Script, "stdin": shell.Stdin}

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
		if b := p.branch(n.Content[i], n.Content[i+1], r, used); b != nil {
			r.branches = append(r.branches, b)
		}
	}
}

// branch reads the branch named by k with conditions v; nil when v holds no conditions.
func (p *parser) branch(k, v *yaml.Node, r *Rule, used map[string]bool) *Branch {
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
		return nil
	}
	keys := p.mapping(v, field+".", branchKeys)
	if len(keys) == 0 {
		p.errorf(v, field, ErrMissing, "a branch needs at least one condition")
		return nil
	}
	c := conditions{p: p, keys: keys, field: field, used: used}
	b := &Branch{Name: k.Value}
	b.Program, b.progs = c.names("program")
	b.PipedTo, b.pipedTo = c.names("piped_to")
	b.PipedFrom, b.pipedFrom = c.names("piped_from")
	b.NestedIn, b.nestedIn = c.names("nested_in")
	b.Wrapped, b.wrapped = c.names("wrapped")
	b.Path, b.Args, b.NotArgs, b.Env = c.re("path"), c.re("args"), c.re("not_args"), c.re("env")
	b.Arg, b.NotArg = c.whole("arg"), c.whole("not_arg")
	b.Redirect, b.Input, b.Line = c.re("redirect"), c.re("input"), c.re("line")
	b.Bare, b.Background, b.Piped = c.flag("bare"), c.flag("background"), c.flag("piped")
	b.Cleanup = c.flag("cleanup")
	if kn := keys["via"]; kn != nil {
		b.Via = p.str(kn, field+".via")
		v, ok := viaNames[b.Via]
		if !ok {
			p.errorf(kn, field+".via", ErrBadValue, "%q: want subst, script or stdin", b.Via)
		}
		b.via = v
	}
	b.Reads, b.Writes, b.Deletes = c.re("reads"), c.re("writes"), c.re("deletes")
	for key, list := range map[string]string{"reads": "readers", "writes": "writers", "deletes": "deleters"} {
		if keys[key] != nil {
			used[list] = true
		}
	}
	return b
}

// conditions reads the values of one branch's condition keys, recording the shared lists
// they use in used.
type conditions struct {
	p     *parser
	keys  map[string]*yaml.Node
	field string
	used  map[string]bool
}

// names reads a list of program names, shared lists expanded, as a list and as a set.
func (c conditions) names(key string) ([]string, map[string]bool) {
	kn := c.keys[key]
	if kn == nil {
		return nil, nil
	}
	l := c.p.strList(kn, c.field+"."+key)
	out, err := expandNames(l, c.used)
	if err != nil {
		c.p.errorf(kn, c.field+"."+key, err, "")
		return nil, nil
	}
	set := make(map[string]bool, len(out))
	for _, s := range out {
		set[s] = true
	}
	return out, set
}

// whole reads a regular expression that must match a whole word.
func (c conditions) whole(key string) *regexp.Regexp {
	return c.regex(key, "^(?:", ")$")
}

// re reads a regular expression that may match anywhere.
func (c conditions) re(key string) *regexp.Regexp {
	return c.regex(key, "", "")
}

func (c conditions) regex(key, prefix, suffix string) *regexp.Regexp {
	kn := c.keys[key]
	if kn == nil {
		return nil
	}
	src := c.p.str(kn, c.field+"."+key)
	exp, err := expandRegex(src, c.used)
	if err != nil {
		c.p.errorf(kn, c.field+"."+key, err, "")
		return nil
	}
	return c.p.regex(kn, c.field+"."+key, prefix+exp+suffix)
}

// flag reads a boolean condition; nil when absent.
func (c conditions) flag(key string) *bool {
	kn := c.keys[key]
	if kn == nil {
		return nil
	}
	if kn.Kind != yaml.ScalarNode || kn.Tag != "!!bool" {
		c.p.errorf(kn, c.field+"."+key, ErrType, "want true or false, got %s", describe(kn))
		return nil
	}
	v := kn.Value == "true"
	return &v
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
	if b.Env != nil && !anyMatch(cmd.Env, b.Env) {
		return false
	}
	switch {
	case b.progs != nil && !b.progs[cmd.Name],
		b.Bare != nil && *b.Bare != (len(cmd.Args) == 0),
		b.Background != nil && *b.Background != cmd.Background,
		b.Piped != nil && *b.Piped != (cmd.PipedTo >= 0),
		b.pipedTo != nil && !pipeHas(cmds, cmd.PipedTo, b.pipedTo, true),
		b.pipedFrom != nil && (cmd.PipedFrom < 0 || !b.pipedFrom[cmds[cmd.PipedFrom].Name]),
		b.nestedIn != nil && (cmd.Parent < 0 || !b.nestedIn[cmds[cmd.Parent].Name]),
		b.Via != "" && (cmd.Parent < 0 || cmd.Via != b.via),
		b.wrapped != nil && !anyIn(cmd.Wrappers, b.wrapped),
		b.Path != nil && !b.Path.MatchString(cmd.Path):
		return false
	}
	if b.Redirect != nil && !redirectMatches(cmd.Redirs, b.Redirect, true) ||
		b.Input != nil && !redirectMatches(cmd.Redirs, b.Input, false) {
		return false
	}
	if b.Arg != nil && !anyMatch(cmd.Args, b.Arg) || b.NotArg != nil && anyMatch(cmd.Args, b.NotArg) {
		return false
	}
	if b.Args != nil && !b.Args.Match(c.argText(buf)) || b.NotArgs != nil && b.NotArgs.Match(c.argText(buf)) {
		return false
	}
	if b.Reads != nil && !readsFile(cmd, b.Reads) || b.Writes != nil && !writesFile(cmd, b.Writes) ||
		b.Deletes != nil && !deletesFile(cmd, b.Deletes) {
		return false
	}
	if b.Cleanup != nil && *b.Cleanup != cleansUp(cmds, c.i) {
		return false
	}
	return b.Line == nil || b.Line.MatchString(c.line.Text)
}

// cleansUp reports whether command i deletes what an earlier command of the line touched.
func cleansUp(cmds []shell.Command, i int) bool {
	c := &cmds[i]
	if !inList("deleters", c.Name) {
		return false
	}
	for _, a := range c.Args {
		if a == "$0" || a == `"$0"` {
			return true
		}
		if strings.HasPrefix(a, "-") {
			continue
		}
		name := baseName(a)
		for j := 0; j < i; j++ {
			if touches(&cmds[j], name) {
				return true
			}
		}
	}
	return false
}

// touches reports whether c ran, fetched, chmod-ed or wrote a file of base name name.
func touches(c *shell.Command, name string) bool {
	if name == "" || name == "*" {
		return false
	}
	if strings.Contains(c.Path, "/") && baseName(c.Path) == name {
		return true
	}
	for _, r := range c.Redirs {
		if r.Writes() && baseName(r.Target) == name {
			return true
		}
	}
	switch {
	case c.Name == "chmod" || isShellName(c.Name) || inList("fetchers", c.Name):
		for _, a := range c.Args {
			if !strings.HasPrefix(a, "-") && baseName(a) == name {
				return true
			}
		}
	}
	return false
}

func isShellName(n string) bool { return inList("shells", n) }

// baseName is the last element of a path or URL.
func baseName(p string) string {
	p = strings.TrimRight(p, "/")
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[i+1:]
	}
	return p
}

// operand strips an option's name from an argument: `if=/x` and `--file=/x` give /x, `-x`
// gives "" (an option is not a file).
func operand(a string) string {
	if i := strings.IndexByte(a, '='); i > 0 && (a[0] == '-' || i <= 3) {
		return a[i+1:]
	}
	if strings.HasPrefix(a, "-") {
		return ""
	}
	return a
}

// readsFile: a reader (shared list readers: cat, head, grep, awk, dd...) names a matching
// file among its operands, or the command's input is redirected from one.
func readsFile(c *shell.Command, re *regexp.Regexp) bool {
	if redirectMatches(c.Redirs, re, false) {
		return true
	}
	if !inList("readers", c.Name) {
		return false
	}
	for _, a := range c.Args {
		if o := operand(a); o != "" && re.MatchString(o) {
			return true
		}
	}
	return false
}

// writesFile: output is redirected into a matching file, or a writer (shared list writers:
// tee, cp, mv, install, ln, dd, sed -i...) has one as its destination (tee: any operand; dd:
// of=; the others: the last operand), or a downloader saves into one (-O, -o, --output).
func writesFile(c *shell.Command, re *regexp.Regexp) bool {
	if redirectMatches(c.Redirs, re, true) {
		return true
	}
	args := c.Args
	for i, a := range args {
		// an output option names a file whatever the program (wget -O, curl -o, a dumper's -o)
		if (a == "-O" || a == "-o" || a == "--output" || a == "--output-document") && i+1 < len(args) && re.MatchString(args[i+1]) {
			return true
		}
	}
	if !inList("writers", c.Name) || len(args) == 0 {
		return false
	}
	switch c.Name {
	case "tee":
		for _, a := range args {
			if !strings.HasPrefix(a, "-") && re.MatchString(a) {
				return true
			}
		}
		return false
	case "dd":
		for _, a := range args {
			if strings.HasPrefix(a, "of=") && re.MatchString(a[3:]) {
				return true
			}
		}
		return false
	case "sed", "perl":
		if !anyPrefix(args, "-i") {
			return false
		}
	}
	return re.MatchString(args[len(args)-1])
}

// deletesFile: a deleter (shared list deleters: rm, shred, unlink, truncate...) names a
// matching operand, or the command only truncates one (`> f`, `: > f`, `cat /dev/null > f`,
// `echo > f`, `cp /dev/null f`).
func deletesFile(c *shell.Command, re *regexp.Regexp) bool {
	if inList("deleters", c.Name) {
		for _, a := range c.Args {
			if o := operand(a); o != "" && re.MatchString(o) {
				return true
			}
		}
		return false
	}
	empty := c.Name == "" || c.Name == ":" || c.Name == "true" || (c.Name == "echo" || c.Name == "printf") && emptyArgs(c.Args) ||
		c.Name == "cat" && len(c.Args) == 1 && c.Args[0] == "/dev/null"
	if empty {
		for _, r := range c.Redirs {
			if r.Op == ">" || r.Op == ">|" {
				if re.MatchString(r.Target) {
					return true
				}
			}
		}
	}
	if (c.Name == "cp" || c.Name == "ln") && len(c.Args) >= 2 && c.Args[len(c.Args)-2] == "/dev/null" {
		return re.MatchString(c.Args[len(c.Args)-1])
	}
	return false
}

func emptyArgs(args []string) bool {
	for _, a := range args {
		if a != "" && !strings.HasPrefix(a, "-") {
			return false
		}
	}
	return true
}

func anyPrefix(args []string, p string) bool {
	for _, a := range args {
		if strings.HasPrefix(a, p) {
			return true
		}
	}
	return false
}

// listSets holds the shared lists as sets, for the semantic keys.
var listSets = map[string]map[string]bool{}

func inList(name, s string) bool {
	set := listSets[name]
	if set == nil {
		return false
	}
	return set[s]
}

func init() {
	for _, name := range []string{"readers", "writers", "deleters", "fetchers", "shells"} {
		set := map[string]bool{}
		for _, s := range Lists()[name] {
			set[s] = true
		}
		listSets[name] = set
	}
}

// pipeHas walks a pipeline from command i downstream looking for a listed program.
func pipeHas(cmds []shell.Command, i int, set map[string]bool, _ bool) bool {
	for n := 0; i >= 0 && n < len(cmds); n++ {
		if set[cmds[i].Name] {
			return true
		}
		i = cmds[i].PipedTo
	}
	return false
}

func anyMatch(l []string, re *regexp.Regexp) bool {
	for _, s := range l {
		if re.MatchString(s) {
			return true
		}
	}
	return false
}

func anyIn(l []string, set map[string]bool) bool {
	for _, s := range l {
		if set[s] {
			return true
		}
	}
	return false
}

// isDup reports a descriptor duplication (2>&1, >&-), which names no file.
func isDup(r shell.Redirect) bool {
	return (r.Op == ">&" || r.Op == "<&") && (r.Target == "-" || isDigits(r.Target))
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

func redirectMatches(rs []shell.Redirect, re *regexp.Regexp, writes bool) bool {
	for _, r := range rs {
		if r.Writes() == writes && !(writes && isDup(r)) && re.MatchString(r.Target) {
			return true
		}
	}
	return false
}

// structEngine indexes the branches of every structure rule of a kind by program name, so a
// command costs one map lookup plus the branches about its program (and the few about any).
type structEngine struct {
	// the literal prefilter of the branches' regular expressions, as for pattern rules: one
	// Aho-Corasick scan per event of the line and of every command's unquoted words finds
	// which required literals occur, and a branch whose regexp cannot match is not tried
	ac       *ahocorasick.Matcher
	setWords int

	byProgram map[string][]branchRef
	// branches without a program that can only hold for a command with a redirection or an
	// assignment (writes, deletes by truncation, reads by input, redirect, input, env): tried
	// only on such commands, which are few
	redirected, assigned []branchRef
	any                  []branchRef
}

// branchRef is branch bit of rule (an index into kindEngine.rules), with the prefilter
// formula of one of its regular expressions (nil: none usable, always tried).
type branchRef struct {
	rule  int
	bit   uint64
	b     *Branch
	pre   [][]int
	risky bool
}

// prefilterRegexp picks the branch's positive regular expression whose literals select best:
// the first with a formula. Negative ones (not_args, not_arg) cannot filter.
func (b *Branch) prefilterRegexp() *regexp.Regexp {
	for _, re := range []*regexp.Regexp{b.Arg, b.Args, b.Path, b.Redirect, b.Input, b.Env, b.Reads, b.Writes, b.Deletes, b.Line} {
		if re == nil {
			continue
		}
		if tree, err := syntax.Parse(re.String(), syntax.Perl); err == nil && requiredDNF(tree.Simplify()) != nil {
			return re
		}
	}
	return nil
}

func newStructEngine(rules []*Rule) *structEngine {
	s := &structEngine{byProgram: map[string][]branchRef{}}
	var patterns []string
	var setOf []int
	nsets := 0
	for i, r := range rules {
		for bi, b := range r.branches {
			ref := branchRef{rule: i, bit: 1 << bi, b: b}
			if re := b.prefilterRegexp(); re != nil {
				tree, _ := syntax.Parse(re.String(), syntax.Perl)
				tree = tree.Simplify()
				ref.risky = foldRisky(tree)
				for _, c := range requiredDNF(tree) {
					ids := make([]int, 0, len(c))
					for _, set := range c {
						for _, l := range set {
							patterns = append(patterns, l)
							setOf = append(setOf, nsets)
						}
						ids = append(ids, nsets)
						nsets++
					}
					ref.pre = append(ref.pre, ids)
				}
			}
			switch progs := b.programs(); {
			case progs != nil:
				for _, p := range progs {
					s.byProgram[p] = append(s.byProgram[p], ref)
				}
				if b.Reads != nil || b.Writes != nil || b.Deletes != nil {
					s.redirected = append(s.redirected, ref)
				}
			case b.Redirect != nil || b.Input != nil:
				s.redirected = append(s.redirected, ref)
			case b.Env != nil:
				s.assigned = append(s.assigned, ref)
			default:
				s.any = append(s.any, ref)
			}
		}
	}
	for k, refs := range s.byProgram {
		sort.SliceStable(refs, func(i, j int) bool { return refs[i].rule < refs[j].rule })
		s.byProgram[k] = dedupRefs(refs)
	}
	s.setWords = ahocorasick.Words(nsets)
	if nsets > 0 {
		s.ac = ahocorasick.New(patterns, setOf, nsets)
	}
	return s
}

// scanText is what the prefilter scans for one line: the line as written and, for each
// command, its program, arguments, redirection targets and assignments after unquoting, so
// that a literal hidden by quotes or escapes in the line (w\hoami) is still seen.
func scanText(line *shell.Line, buf []byte) []byte {
	buf = append(buf[:0], line.Text...)
	if !strings.ContainsAny(line.Text, `'"\`) {
		// without quotes or escapes every word, target and payload is a substring of the
		// line (field splitting and brace expansion only cut it): the line alone will do
		return buf
	}
	for i := range line.Commands {
		c := &line.Commands[i]
		buf = append(buf, 0)
		buf = append(buf, c.Path...)
		for _, a := range c.Args {
			buf = append(buf, ' ')
			buf = append(buf, a...)
		}
		for _, r := range c.Redirs {
			buf = append(buf, 0)
			buf = append(buf, r.Target...)
		}
		for _, e := range c.Env {
			buf = append(buf, 0)
			buf = append(buf, e...)
		}
	}
	return buf
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

// programs returns the programs a branch can hold for, nil when any: its program list, or
// for a branch about reading, writing or deleting files without one, the programs that do
// that (the shared lists; a truncating redirection is covered by the redirected bucket).
func (b *Branch) programs() []string {
	if len(b.Program) > 0 {
		return b.Program
	}
	if b.Redirect != nil || b.Input != nil || b.Env != nil || b.Path != nil || b.Args != nil || b.Arg != nil || b.Line != nil {
		return nil
	}
	var out []string
	if b.Reads != nil {
		out = append(out, Lists()["readers"]...)
	}
	if b.Writes != nil {
		out = append(out, Lists()["writers"]...)
		out = append(out, "wget", "curl")
	}
	if b.Deletes != nil {
		out = append(out, Lists()["deleters"]...)
		out = append(out, "cp", "ln")
	}
	if b.Cleanup != nil {
		out = append(out, Lists()["deleters"]...)
	}
	return out
}

// matchState is the per-event scratch of match.
type matchState struct {
	buf      []byte // a command's arguments joined
	scan     []byte // scanText
	sets     []uint64
	nonASCII bool
}

// match ORs into masks[rule] the branches that hold somewhere in line.
func (s *structEngine) match(line *shell.Line, masks []uint64, ms *matchState) {
	ms.sets = zeroed(ms.sets, s.setWords)
	if s.ac != nil {
		ms.scan = scanText(line, ms.scan)
		text := unsafe.String(unsafe.SliceData(ms.scan), len(ms.scan)) // ms.scan is not written until the next event
		s.ac.Scan(text, ms.sets)
		ms.nonASCII = !isASCII(text)
	}
	for i := range line.Commands {
		c := command{line: line, i: i}
		cmd := &line.Commands[i]
		s.try(s.byProgram[cmd.Name], &c, masks, ms)
		if len(cmd.Redirs) > 0 || hasOutputOption(cmd.Args) {
			s.try(s.redirected, &c, masks, ms)
		}
		if len(cmd.Env) > 0 {
			s.try(s.assigned, &c, masks, ms)
		}
		s.try(s.any, &c, masks, ms)
	}
}

// hasOutputOption reports an output-file option (-o, -O, --output), which writesFile takes
// as a write whatever the program.
func hasOutputOption(args []string) bool {
	for _, a := range args {
		if a == "-o" || a == "-O" || a == "--output" || a == "--output-document" {
			return true
		}
	}
	return false
}

func (s *structEngine) try(refs []branchRef, c *command, masks []uint64, ms *matchState) {
	for _, ref := range refs {
		if masks[ref.rule]&ref.bit != 0 {
			continue
		}
		if ref.pre != nil && !(ms.nonASCII && ref.risky) && !holds(ref.pre, ms.sets) {
			continue // a regexp the branch needs cannot match anywhere in the line
		}
		if ref.b.holds(c, &ms.buf) {
			masks[ref.rule] |= ref.bit
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

// fireStructure appends the drafts of a structure rule whose branches mask matched: the
// naive path.
func (r *Rule) fireStructure(field abi.Path, text string, mask uint64, out []abi.TagDraft) []abi.TagDraft {
	if !r.holds(text, mask) {
		return out
	}
	return r.emitDrafts(field, text, mask, out)
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
