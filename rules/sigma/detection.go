package sigma

import (
	"encoding/base64"
	"errors"
	"fmt"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/decnet/ttp/shell"
)

// Sentinel errors, wrapped in *Error so callers can test with errors.Is.
var (
	// ErrUnsupported: the rule is valid Sigma but uses something a command line cannot show
	// (a field such as User, a modifier such as cidr, an aggregation) or that ttp cannot
	// express (a logsource other than Linux process creation, no ATT&CK technique).
	ErrUnsupported = errors.New("unsupported")
	// ErrInvalid: the rule is not valid Sigma (bad YAML, a condition naming no selection).
	ErrInvalid = errors.New("invalid")
)

// Error is one reason a Sigma rule cannot be read or converted, located by file, line and
// field ("detection.selection.User"). Reason is a short grouping key ("field User",
// "modifier cidr") so that an import can count its skips by cause.
type Error struct {
	File   string
	Line   int
	Field  string
	Reason string
	Err    error
}

func (e *Error) Error() string {
	loc := e.File
	if e.Line > 0 {
		loc += ":" + strconv.Itoa(e.Line)
	}
	if e.Field != "" {
		loc += ": " + e.Field
	}
	return fmt.Sprintf("sigma: %s: %v", loc, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Fields are the Sigma process_creation fields a command line shows; any other field makes a
// rule unsupported rather than silently never (or always) true.
var Fields = []string{"Image", "CommandLine", "ParentImage", "ParentCommandLine"}

type field uint8

const (
	fImage field = iota
	fCommandLine
	fParentImage
	fParentCommandLine
)

func fieldOf(name string) (field, bool) {
	for i, f := range Fields {
		if f == name {
			return field(i), true
		}
	}
	return 0, false
}

// MaxSelections bounds the named selections of a detection, and MaxValues the values of one
// field (after windash and base64offset expansion): a hostile rule costs bounded work.
const (
	MaxSelections = 64
	MaxValues     = 512
	maxDepth      = 32
)

// Detection is a compiled Sigma detection: its selections and its condition as an expression
// over one simple command of a parsed line.
type Detection struct {
	expr  expr
	progs map[string]bool // program names one of which the command must have; nil: any
}

// Programs returns the program base names one of which a command (or one of its peeled
// wrappers) must have, exactly, for the detection to hold, sorted; nil when the detection may
// hold for any program. They come from the Image values that end in /NAME; values compare
// case-insensitively as Sigma says, but a program is its exact name (on Linux WGET is not
// wget), which lets the rule engine index Sigma rules by program name as it does branches.
func (d *Detection) Programs() []string {
	if d.progs == nil {
		return nil
	}
	out := make([]string, 0, len(d.progs))
	for p := range d.progs {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// Match reports whether the detection holds for command i of l: for the command itself, or
// for one of the wrappers peeled off it, taken as a process of its own (see the package
// comment). An engine evaluating many detections on one command uses a View instead, so the
// fields are computed once.
func (d *Detection) Match(l *shell.Line, i int) bool {
	var v View
	v.Reset(l, i)
	return d.MatchView(&v)
}

// MatchView is Match on the command v was Reset to.
func (d *Detection) MatchView(v *View) bool {
	c := v.cmd
	v.w = -1
	if d.progs == nil || d.progs[c.Name] {
		if d.expr.eval(v) {
			return true
		}
	}
	for k, w := range c.Wrappers {
		if d.progs != nil && !d.progs[w] || notProcess[w] {
			continue
		}
		v.w = k
		ok := d.expr.eval(v)
		v.w = -1
		if ok {
			return true
		}
	}
	return false
}

// notProcess are the wrappers the shell runs itself (keywords and builtins): no process of
// theirs appears in a process log, so no Sigma rule sees them.
var notProcess = map[string]bool{"then": true, "do": true, "else": true, "!": true, "command": true, "builtin": true, "exec": true, "time": true}

// View is what detections see of one simple command: its Sigma fields, computed when a
// detection first asks and kept for the next, so that a hundred rules on one command join
// its arguments once. The zero View is ready for Reset.
type View struct {
	line *shell.Line
	cmd  *shell.Command
	i    int
	w    int // -1: the command itself; else the index of the wrapper evaluated as a process

	parent                 *shell.Command
	img, cl, pimg          string
	pcl                    string
	wimg                   [4]string // "/usr/bin/" + wrapper, for the first wrappers
	low                    [4]string // each field ASCII-lower-cased, for case-insensitive values
	lowSet                 [4]bool
	parentSet              bool
	imgSet, clSet, pimgSet bool
	pclSet                 bool
}

// Reset points v at command i of l, forgetting what it knew of the previous command.
func (v *View) Reset(l *shell.Line, i int) {
	*v = View{line: l, cmd: &l.Commands[i], i: i, w: -1}
}

func (v *View) par() *shell.Command {
	if !v.parentSet {
		v.parent, v.parentSet = v.line.ParentOf(v.i), true
	}
	return v.parent
}

// value returns the field's text and whether the field exists for this process.
func (v *View) value(f field) (string, bool) {
	switch f {
	case fImage:
		if v.w >= 0 {
			if v.w < len(v.wimg) {
				if v.wimg[v.w] == "" {
					v.wimg[v.w] = "/usr/bin/" + v.cmd.Wrappers[v.w]
				}
				return v.wimg[v.w], true
			}
			return "/usr/bin/" + v.cmd.Wrappers[v.w], true
		}
		if !v.imgSet {
			v.img, v.imgSet = v.cmd.Image(), true
		}
		return v.img, true
	case fCommandLine:
		if v.w >= 0 {
			return v.cmd.Text, true
		}
		if !v.clSet {
			v.cl, v.clSet = commandLine(v.cmd), true
		}
		return v.cl, true
	case fParentImage:
		if p := v.par(); p != nil {
			if !v.pimgSet {
				v.pimg, v.pimgSet = p.Image(), true
			}
			return v.pimg, true
		}
	case fParentCommandLine:
		if p := v.par(); p != nil {
			if !v.pclSet {
				v.pcl, v.pclSet = commandLine(p), true
			}
			return v.pcl, true
		}
	}
	return "", false
}

// lower returns the field's text ASCII-lower-cased (cached for the command itself).
func (v *View) lower(f field, s string) string {
	if v.w >= 0 {
		return lowerASCII(s)
	}
	if !v.lowSet[f] {
		v.low[f], v.lowSet[f] = lowerASCII(s), true
	}
	return v.low[f]
}

// commandLine is shell.Command.CommandLine in one allocation.
func commandLine(c *shell.Command) string {
	if len(c.Args) == 0 {
		return c.Path
	}
	n := len(c.Path)
	for _, a := range c.Args {
		n += 1 + len(a)
	}
	var b strings.Builder
	b.Grow(n)
	b.WriteString(c.Path)
	for _, a := range c.Args {
		b.WriteByte(' ')
		b.WriteString(a)
	}
	return b.String()
}

// lowerASCII lower-cases ASCII letters, allocating only when s has an upper-case one. Sigma
// values match case-insensitively; folding ASCII only keeps that one cheap pass per field
// (non-ASCII letters then match as written).
func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if c := b[j]; 'A' <= c && c <= 'Z' {
					b[j] = c + 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// expr is a node of a compiled condition.
type expr interface {
	eval(v *View) bool
}

type andExpr []expr
type orExpr []expr
type notExpr struct{ x expr }

// ofExpr holds when at least n of xs hold (`1 of sel*`); all: every one (`all of sel*`).
type ofExpr struct {
	n  int
	xs []expr
}

func (a andExpr) eval(v *View) bool {
	for _, x := range a {
		if !x.eval(v) {
			return false
		}
	}
	return true
}

func (o orExpr) eval(v *View) bool {
	for _, x := range o {
		if x.eval(v) {
			return true
		}
	}
	return false
}

func (n notExpr) eval(v *View) bool { return !n.x.eval(v) }

func (o ofExpr) eval(v *View) bool {
	k := 0
	for _, x := range o.xs {
		if x.eval(v) {
			if k++; k >= o.n {
				return true
			}
		}
	}
	return false
}

// fieldExpr is one `Field|modifiers: values` entry: the field matches one value (all values
// with |all); null matches an absent or empty field; exists tests presence.
type fieldExpr struct {
	f      field
	vals   []matcher
	all    bool
	null   bool
	exists *bool
	folded bool // some value compares case-insensitively: read the lower-cased field
}

func (fe *fieldExpr) eval(v *View) bool {
	s, ok := v.value(fe.f)
	switch {
	case fe.exists != nil:
		return ok == *fe.exists
	case fe.null:
		return !ok || s == ""
	case !ok:
		return false
	}
	ls := s
	if fe.folded {
		ls = v.lower(fe.f, s)
	}
	if fe.all {
		for i := range fe.vals {
			if !fe.vals[i].match(s, ls) {
				return false
			}
		}
		return true
	}
	for i := range fe.vals {
		if fe.vals[i].match(s, ls) {
			return true
		}
	}
	return false
}

type op uint8

const (
	opEq op = iota
	opContains
	opPrefix
	opSuffix
	opRe
)

// matcher is one value: a plain string compared case-insensitively (Sigma's default) unless
// cased, or a regexp (the re modifier, and values with * or ? wildcards).
type matcher struct {
	op    op
	s     string
	cased bool
	enc   bool   // s is an encoding (base64) of the value, not the value
	lit   string // the value as written (before lower-casing)
	re    *regexp.Regexp
}

// match compares the value with the field's text s, or with ls, the text lower-cased, when
// the value is case-insensitive (its own text is lower-cased at compile time).
func (m *matcher) match(s, ls string) bool {
	if m.op == opRe {
		return m.re.MatchString(s)
	}
	if !m.cased {
		s = ls
	}
	switch m.op {
	case opEq:
		return s == m.s
	case opPrefix:
		return strings.HasPrefix(s, m.s)
	case opSuffix:
		return strings.HasSuffix(s, m.s)
	}
	return strings.Contains(s, m.s)
}

// compiler turns a detection's YAML into an expression, collecting located errors.
type compiler struct {
	file string
	errs []*Error
}

func (c *compiler) fail(n *yaml.Node, fieldName, reason string, err error, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	c.errs = append(c.errs, &Error{File: c.file, Line: line, Field: fieldName, Reason: reason, Err: fmt.Errorf("%w: "+format, append([]any{err}, args...)...)})
}

// CompileDetection compiles a Sigma `detection` mapping (named selections and a condition).
// file names the source in errors, which carry the YAML line of the offending node. The error
// is nil or an *Error (the first problem found).
func CompileDetection(file string, n *yaml.Node) (*Detection, error) {
	c := &compiler{file: file}
	d := c.detection(n)
	if len(c.errs) > 0 {
		return nil, c.errs[0]
	}
	return d, nil
}

func (c *compiler) detection(n *yaml.Node) *Detection {
	if n == nil || n.Kind != yaml.MappingNode {
		c.fail(n, "detection", "detection not a mapping", ErrInvalid, "want a mapping of selections and a condition")
		return nil
	}
	if a := findAlias(n, 0); a != nil {
		// the detection is kept verbatim in the converted rule, where the anchor may not be
		c.fail(a, "detection", "YAML alias", ErrUnsupported, "anchors and aliases in a detection")
		return nil
	}
	sels := map[string]expr{}
	var names []string
	var cond *yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.Tag != "!!str" {
			c.fail(k, "detection", "selection name not a string", ErrInvalid, "selection name %q is not a string", k.Value)
			return nil
		}
		switch {
		case k.Value == "condition":
			cond = v
			continue
		case k.Value == "timeframe":
			c.fail(k, "detection.timeframe", "timeframe", ErrUnsupported, "a timeframe correlates events; a command line is one")
			continue
		}
		if _, dup := sels[k.Value]; dup {
			c.fail(k, "detection."+k.Value, "duplicate selection", ErrInvalid, "selection %q twice", k.Value)
			continue
		}
		if len(names) >= MaxSelections {
			c.fail(k, "detection", "too many selections", ErrUnsupported, "more than %d selections", MaxSelections)
			return nil
		}
		x := c.selection(v, "detection."+k.Value, 0)
		if x != nil {
			sels[k.Value] = x
			names = append(names, k.Value)
		}
	}
	if len(c.errs) > 0 {
		return nil
	}
	if cond == nil {
		c.fail(n, "detection.condition", "no condition", ErrInvalid, "required")
		return nil
	}
	var x expr
	switch cond.Kind {
	case yaml.ScalarNode:
		x = c.condition(cond, cond.Value, sels, names)
	case yaml.SequenceNode:
		// a list of conditions is their OR
		var or orExpr
		for _, cn := range cond.Content {
			if cn.Kind != yaml.ScalarNode {
				c.fail(cn, "detection.condition", "condition not a string", ErrInvalid, "want a string")
				return nil
			}
			or = append(or, c.condition(cn, cn.Value, sels, names))
		}
		x = or
	default:
		c.fail(cond, "detection.condition", "condition not a string", ErrInvalid, "want a string")
	}
	if len(c.errs) > 0 {
		return nil
	}
	return &Detection{expr: x, progs: programs(x)}
}

// selection compiles one named selection: a mapping is the AND of its fields, a list of
// mappings their OR; a list of plain values (keywords) has no field to read.
func (c *compiler) selection(n *yaml.Node, name string, depth int) expr {
	if depth > 2 {
		c.fail(n, name, "nested selection", ErrUnsupported, "lists nested this deep")
		return nil
	}
	switch n.Kind {
	case yaml.MappingNode:
		var and andExpr
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if k := n.Content[i].Value; seen[k] {
				c.fail(n.Content[i], name+"."+k, "duplicate field", ErrInvalid, "field %q twice in one selection", k)
				return nil
			} else {
				seen[k] = true
			}
			if x := c.fieldEntry(n.Content[i], n.Content[i+1], name); x != nil {
				and = append(and, x)
			}
		}
		if len(and) == 0 && len(c.errs) == 0 {
			c.fail(n, name, "empty selection", ErrInvalid, "a selection needs a field")
		}
		if len(and) == 1 {
			return and[0]
		}
		return and
	case yaml.SequenceNode:
		var or orExpr
		for i, e := range n.Content {
			if e.Kind != yaml.MappingNode {
				c.fail(e, fmt.Sprintf("%s[%d]", name, i), "keywords", ErrUnsupported, "a keyword search names no field; ttp maps only %s", strings.Join(Fields, ", "))
				return nil
			}
			if x := c.selection(e, fmt.Sprintf("%s[%d]", name, i), depth+1); x != nil {
				or = append(or, x)
			}
		}
		if len(or) == 0 && len(c.errs) == 0 {
			c.fail(n, name, "empty selection", ErrInvalid, "an empty list")
		}
		return or
	}
	c.fail(n, name, "keywords", ErrUnsupported, "a keyword search names no field; ttp maps only %s", strings.Join(Fields, ", "))
	return nil
}

// fieldEntry compiles `Field|mod|mod: value(s)`.
func (c *compiler) fieldEntry(k, v *yaml.Node, sel string) expr {
	parts := strings.Split(k.Value, "|")
	name := sel + "." + k.Value
	f, ok := fieldOf(parts[0])
	if !ok {
		c.fail(k, name, "field "+parts[0], ErrUnsupported, "field %q: a command line shows only %s", parts[0], strings.Join(Fields, ", "))
		return nil
	}
	fe := &fieldExpr{f: f}
	mods, ok := c.readModifiers(k, v, name, parts[1:], fe)
	if !ok {
		return nil
	}
	if fe.exists != nil {
		return fe
	}
	var raw []*yaml.Node
	switch v.Kind {
	case yaml.ScalarNode:
		raw = []*yaml.Node{v}
	case yaml.SequenceNode:
		raw = v.Content
	default:
		c.fail(v, name, "value not a scalar", ErrInvalid, "want a value or a list of values, got a mapping")
		return nil
	}
	if len(raw) == 0 {
		c.fail(v, name, "empty value list", ErrInvalid, "an empty list of values")
		return nil
	}
	for i, vn := range raw {
		vname := name
		if v.Kind == yaml.SequenceNode {
			vname = fmt.Sprintf("%s[%d]", name, i)
		}
		if vn.Kind != yaml.ScalarNode {
			c.fail(vn, vname, "value not a scalar", ErrInvalid, "want a string or a number")
			return nil
		}
		if vn.Tag == "!!null" {
			if len(raw) > 1 || mods.re || mods.op != opEq {
				c.fail(vn, vname, "null with modifiers", ErrUnsupported, "null in a list or with modifiers")
				return nil
			}
			fe.null = true
			return fe
		}
		if mods.re {
			if !c.regexValue(k, vn, name, vname, mods, fe) {
				return nil
			}
			continue
		}
		if !c.literalValue(vn, vname, mods, fe) {
			return nil
		}
		if len(fe.vals) > MaxValues {
			c.fail(v, name, "too many values", ErrUnsupported, "more than %d values", MaxValues)
			return nil
		}
	}
	return fe
}

// modifiers is what a field's modifiers ask of its values.
type modifiers struct {
	op                              op
	cased, windash, b64, b64off, re bool
	reFlags                         string // i, m, s after re
}

// readModifiers reads the modifiers of a field entry (`contains`, `all`, `re`, ...); all and
// exists are set on fe (exists ends the entry: its value is true or false, not a match).
// It reports false after a failure.
func (c *compiler) readModifiers(k, v *yaml.Node, name string, mods []string, fe *fieldExpr) (modifiers, bool) {
	md := modifiers{op: opEq}
	for _, m := range mods {
		switch m {
		case "contains":
			md.op = opContains
		case "startswith":
			md.op = opPrefix
		case "endswith":
			md.op = opSuffix
		case "all":
			fe.all = true
		case "cased":
			md.cased = true
		case "windash":
			md.windash = true
		case "base64":
			md.b64 = true
		case "base64offset":
			md.b64off = true
		case "re":
			md.re = true
		case "i", "m", "s":
			if !md.re {
				c.fail(k, name, "modifier "+m, ErrInvalid, "modifier %q only follows re", m)
				return md, false
			}
			md.reFlags += m
		case "exists":
			if v.Kind != yaml.ScalarNode || v.Tag != "!!bool" {
				c.fail(v, name, "modifier exists", ErrInvalid, "exists takes true or false")
				return md, false
			}
			b := v.Value == "true"
			fe.exists = &b
			return md, true
		default:
			c.fail(k, name, "modifier "+m, ErrUnsupported, "modifier %q", m)
			return md, false
		}
	}
	return md, true
}

// regexValue adds the value vn of a `re` field as an RE2 regular expression; false after a
// failure.
func (c *compiler) regexValue(k, vn *yaml.Node, name, vname string, md modifiers, fe *fieldExpr) bool {
	if md.op != opEq || md.b64 || md.b64off || md.windash {
		c.fail(k, name, "modifier re combined", ErrUnsupported, "re combined with other value modifiers")
		return false
	}
	src := vn.Value
	if md.reFlags != "" {
		src = "(?" + md.reFlags + ")" + vn.Value
	}
	rx, err := regexp.Compile(src)
	if err != nil {
		c.fail(vn, vname, "re not RE2", ErrUnsupported, "regexp is not RE2 (Go): %v", err)
		return false
	}
	fe.vals = append(fe.vals, matcher{op: opRe, re: rx})
	return true
}

// literalValue adds the matchers of the value vn: one per windash variant, each a literal, a
// wildcard pattern, or its base64 encodings; false after a failure.
func (c *compiler) literalValue(vn *yaml.Node, vname string, md modifiers, fe *fieldExpr) bool {
	variants := []string{vn.Value}
	if md.windash {
		variants = windashVariants(vn.Value)
	}
	o := md.op
	for _, w := range variants {
		lit, wild := unescape(w)
		switch {
		case md.b64 || md.b64off:
			if wild {
				c.fail(vn, vname, "base64 with wildcards", ErrUnsupported, "wildcards in a base64 value")
				return false
			}
			encs := []string{base64.StdEncoding.EncodeToString([]byte(lit))}
			if md.b64off {
				encs = base64Offsets(lit)
			}
			for _, e := range encs {
				// base64 text is case-sensitive: folding it would match other bytes
				fe.vals = append(fe.vals, matcher{op: o, s: e, cased: true, enc: true})
			}
		case wild:
			fe.vals = append(fe.vals, matcher{op: opRe, re: globRegexp(w, o, md.cased)})
		default:
			m := matcher{op: o, s: lit, cased: md.cased, lit: lit}
			if !md.cased {
				m.s = lowerASCII(lit)
				fe.folded = true
			}
			fe.vals = append(fe.vals, m)
		}
	}
	return true
}

// unescape reads a Sigma string value: `*` and `?` are wildcards unless escaped with `\`,
// `\\` is a backslash, and any other backslash is itself. It returns the literal text and
// whether a wildcard occurs.
func unescape(s string) (string, bool) {
	if !strings.ContainsAny(s, `*?\`) {
		return s, false
	}
	var b strings.Builder
	wild := false
	for i := 0; i < len(s); i++ {
		switch ch := s[i]; {
		case ch == '\\' && i+1 < len(s) && (s[i+1] == '*' || s[i+1] == '?' || s[i+1] == '\\'):
			b.WriteByte(s[i+1])
			i++
		case ch == '*' || ch == '?':
			wild = true
			b.WriteByte(ch)
		default:
			b.WriteByte(ch)
		}
	}
	return b.String(), wild
}

// globRegexp compiles a value with wildcards, anchored as its operator says.
func globRegexp(s string, o op, cased bool) *regexp.Regexp {
	var b strings.Builder
	b.WriteString("(?s)")
	if !cased {
		b.WriteString("(?i)")
	}
	if o == opEq || o == opPrefix {
		b.WriteByte('^')
	}
	for i := 0; i < len(s); i++ {
		switch ch := s[i]; {
		case ch == '\\' && i+1 < len(s) && (s[i+1] == '*' || s[i+1] == '?' || s[i+1] == '\\'):
			b.WriteString(regexp.QuoteMeta(s[i+1 : i+2]))
			i++
		case ch == '*':
			b.WriteString(".*")
		case ch == '?':
			b.WriteByte('.')
		default:
			b.WriteString(regexp.QuoteMeta(s[i : i+1]))
		}
	}
	if o == opEq || o == opSuffix {
		b.WriteByte('$')
	}
	return regexp.MustCompile(b.String())
}

// windashVariants expands each dash that starts a word (`-x` after a blank or at the start)
// into the characters Windows tools also accept there, as Sigma's windash does: -, /, and the
// en, em and horizontal-bar dashes. The count is bounded by MaxValues.
func windashVariants(s string) []string {
	dashes := []string{"-", "/", "\u2013", "\u2014", "\u2015"}
	out := []string{""}
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if (ch == '-' || ch == '/') && (i == 0 || s[i-1] == ' ') && len(out)*len(dashes) <= MaxValues {
			next := make([]string, 0, len(out)*len(dashes))
			for _, p := range out {
				for _, d := range dashes {
					next = append(next, p+d)
				}
			}
			out = next
			continue
		}
		for j := range out {
			out[j] += s[i : i+1]
		}
	}
	return out
}

// base64Offsets returns the three encodings of s that occur in the base64 of any text holding
// s, whatever its offset modulo 3 (pySigma's base64offset).
func base64Offsets(s string) []string {
	start := [3]int{0, 2, 3}
	end := [3]int{0, 3, 2}
	out := make([]string, 0, 3)
	for i := 0; i < 3; i++ {
		e := base64.StdEncoding.EncodeToString([]byte(strings.Repeat(" ", i) + s))
		lo, hi := start[i], len(e)-end[(len(s)+i)%3]
		if lo > hi {
			lo = hi
		}
		out = append(out, e[lo:hi])
	}
	return out
}

// programs derives the program names a command must have for x to hold (see
// Detection.Programs): from Image equality or suffix values naming a base name, through AND
// (any side's names are required) and OR (every side must name some).
func programs(x expr) map[string]bool {
	switch x := x.(type) {
	case *fieldExpr:
		if x.f != fImage || x.null || x.exists != nil || len(x.vals) == 0 {
			return nil
		}
		out := map[string]bool{}
		for _, m := range x.vals {
			if m.op != opEq && m.op != opSuffix || m.enc {
				return nil
			}
			i := strings.LastIndexByte(m.lit, '/')
			if i < 0 || i == len(m.lit)-1 {
				return nil
			}
			name := m.lit[i+1:]
			if x.all {
				return map[string]bool{name: true}
			}
			out[name] = true
		}
		return out
	case andExpr:
		return andPrograms(x)
	case ofExpr:
		if x.n >= len(x.xs) {
			return andPrograms(x.xs)
		}
		return orPrograms(x.xs)
	case orExpr:
		return orPrograms(x)
	}
	return nil
}

func andPrograms(xs []expr) map[string]bool {
	var best map[string]bool
	for _, y := range xs {
		if p := programs(y); p != nil && (best == nil || len(p) < len(best)) {
			best = p
		}
	}
	return best
}

func orPrograms(xs []expr) map[string]bool {
	out := map[string]bool{}
	for _, y := range xs {
		p := programs(y)
		if p == nil {
			return nil
		}
		for k := range p {
			out[k] = true
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// matchNames returns the selection names a condition pattern (`sel*`, `them`) stands for.
func matchNames(pat string, names []string) []string {
	var out []string
	for _, n := range names {
		if pat == "them" {
			if !strings.HasPrefix(n, "_") {
				out = append(out, n)
			}
			continue
		}
		if ok, _ := path.Match(pat, n); ok {
			out = append(out, n)
		}
	}
	return out
}

// findAlias returns the first alias, anchor or merge key under n, nil when none.
func findAlias(n *yaml.Node, depth int) *yaml.Node {
	if n.Kind == yaml.AliasNode || n.Anchor != "" || n.Tag == "!!merge" || depth > maxDepth {
		return n
	}
	for _, c := range n.Content {
		if a := findAlias(c, depth+1); a != nil {
			return a
		}
	}
	return nil
}
