package main

import (
	"strings"
	"unsafe"

	"github.com/decnet/ttp/sdk"
	"github.com/decnet/ttp/shell"
)

// session is one session event read into a shape the detectors share: the commands lower-cased
// (ASCII), split into shell segments and words once per event, the timings validated, the
// downloads. Every buffer is kept between calls, so that reading an event allocates nothing
// in steady state; nothing in it survives into the next call's answers.
type session struct {
	cmds        []string  // command lines, lower-cased
	orig        []string  // the same lines as sent: the shell reads them before lower-casing
	times       []float64 // offsets in ms, aligned with cmds; nil when absent or unusable
	timesBuf    []float64
	duration    float64
	hasDuration bool
	urls        []string   // payload.downloads[].url, lower-cased
	shas        []string   // payload.downloads[].sha256, aligned with urls ("" when absent)
	client      string     // payload.client_version, as sent
	fwd         forwarding // a forward event's counts (R0100); the rest is empty then

	dict    *dictionary
	sh      shell.Parser // reads each command line; its buffers are kept between calls
	words   []string
	segs    []segment
	matches []match // keyword occurrences, per command line in order of their end
	cursor  int     // first match of the command line being parsed not ending before the last segment's start
	allV    uint64  // segment.vl of every segment, or-ed
	allK    uint64  // segment.kl of every segment, or-ed
	maxSeg  int     // length of the longest segment
	arena   []byte

	// scratch for the detectors, reset by each user
	strs   []string // lists of evidence
	strs2  []string
	strs3  []string
	tmp    []string // operands inside writes
	files  []string // writes, deletes, reads of one segment
	nums   []float64
	occ    []occurrence
	count  []int
	count2 []int
}

// segment is one simple command of a command line: the words between two of ; | & && || ( )
// ` and newlines, outside quotes. A `sh -c '...'` or `eval` argument is parsed too and its
// segments follow the one that runs it.
type segment struct {
	cmd    int    // index of the command line
	text   string // the segment's text, lower-cased
	w0, w1 int    // its words are words[w0:w1]
	verb   int    // index in words of the command word, -1 when there is none
	name   string // the command word's base name ("" when none): /usr/bin/wget -> wget
	sep    byte   // what precedes it: 0 start of line, ';', '|' (pipe), 'a' (&&), 'o' (||), '&', '('
	vid    int32  // dictionary id of the command word's base name, -1 when no list holds it
	start  int32  // offsets of the segment in its command line
	end    int32
	m0, m1 int    // matches[m0:m1] end inside the segment (check from >= start)
	vl     uint64 // the verb lists (ids < 64) holding the command word, as bits
	kl     uint64 // the keyword lists (ids < 64) with an entry inside the segment, as bits
}

// occurrence is one discriminator seen in a command (discovery burst).
type occurrence struct {
	cmd, id int
}

// Bounds on the work one event can cause, whatever its size (a record may be 1 MiB): the
// detectors read at most maxCommands command lines and maxText bytes of them (a line crossing
// the limit is cut) and at most maxSegments segments; package shell bounds nesting
// (shell.MaxDepth).
// Real sessions are far smaller; a hostile one costs bounded time instead of the deadline.
const (
	maxCommands = 1024
	maxText     = 32 << 10
	maxSegments = 1024
)

func (s *session) reset() {
	s.cmds, s.orig, s.times, s.urls, s.shas = s.cmds[:0], s.orig[:0], nil, s.urls[:0], s.shas[:0]
	s.words, s.segs, s.arena, s.matches = s.words[:0], s.segs[:0], s.arena[:0], s.matches[:0]
	s.duration, s.hasDuration, s.client = 0, false, ""
	s.allV, s.allK, s.maxSeg = 0, 0, 0
}

// load reads the event's declared fields and parses its commands.
func (s *session) load(ev *sdk.Event) {
	s.reset()
	text := 0
	for _, t := range ev.Strings(fCommands) {
		if len(s.cmds) == maxCommands || text >= maxText {
			break
		}
		if len(t) > maxText-text {
			t = t[:maxText-text]
		}
		text += len(t)
		s.cmds = append(s.cmds, s.lower(t))
		s.orig = append(s.orig, t)
	}
	if n := ev.Len(fTimes); n == ev.Len(fCommands) && n > 0 {
		times, prev := s.timesBuf[:0], 0.0
		for j, t := range ev.Numbers(fTimes) {
			if j == len(s.cmds) {
				break
			}
			if !(t >= prev) { // NaN, negative or decreasing: unusable
				times = times[:0]
				break
			}
			times = append(times, t)
			prev = t
		}
		s.timesBuf = times
		if len(times) == len(s.cmds) && len(times) > 0 {
			s.times = times
		}
	}
	if d, ok := ev.Float(fDuration); ok && d >= 0 {
		s.duration, s.hasDuration = d, true
	}
	for _, u := range ev.Strings(fURLs) {
		if len(s.urls) == maxDistinct {
			break
		}
		s.urls = append(s.urls, s.lower(u))
	}
	for _, h := range ev.Strings(fSHA) {
		if len(s.shas) == len(s.urls) {
			break
		}
		s.shas = append(s.shas, h)
	}
	s.client = ev.String(fClient)
	for i, c := range s.cmds {
		s.cursor = len(s.matches)
		if s.dict.lits != nil {
			s.matches = s.dict.lits.Scan(c, s.matches)
		} else {
			s.matches = s.dict.ac.scan(c, s.matches)
		}
		s.parse(c, i, 0)
	}
}

// sha returns the sha256 of download i, "" when unknown.
func (s *session) sha(i int) string {
	if i < len(s.shas) {
		return s.shas[i]
	}
	return ""
}

// lower returns t with ASCII letters lower-cased, t itself when it has none. The copy lives in
// the arena, valid until the next call. The host lower-cases it (sdk.AppendLower): a loop a
// byte in the guest was the plugin's costliest function.
func (s *session) lower(t string) string {
	start := len(s.arena)
	var changed bool
	if s.arena, changed = sdk.AppendLower(s.arena, t); !changed {
		return t
	}
	return unsafe.String(&s.arena[start], len(t))
}

// parse splits a command line into segments and words as package shell reads it: one
// segment per simple command (wrappers peeled, sh -c, eval and echo | sh payloads and
// substitutions included), its words the program and arguments after quote removal and then
// its redirections as words (">", target), which is the shape the detectors read.
func (s *session) parse(text string, cmd, _ int) {
	orig := text // case matters to a shell (xargs -I, not -i): read the line as sent
	if cmd < len(s.orig) && len(s.orig[cmd]) == len(text) {
		orig = s.orig[cmd]
	}
	line := s.sh.Parse(orig)
	for i := range line.Commands {
		if len(s.segs) >= maxSegments {
			return
		}
		c := &line.Commands[i]
		w0 := len(s.words)
		for _, e := range c.Env {
			s.words = append(s.words, s.keep(text, orig, e))
		}
		if c.Path != "" {
			s.words = append(s.words, s.keep(text, orig, c.Path))
		}
		for _, a := range c.Args {
			s.words = append(s.words, s.keep(text, orig, a))
		}
		for _, r := range c.Redirs {
			s.words = append(s.words, redirWord(r))
			if r.Target != "" && r.Op != "<<" && r.Op != "<<-" {
				s.words = append(s.words, s.keep(text, orig, r.Target))
			}
		}
		if len(s.words) == w0 {
			continue
		}
		// the segment's text is the lower-cased line's bytes at the same offsets when the
		// command is a part of the line (payloads and substitutions may not be)
		seg, from := "", offset(orig, c.Text)
		if from >= 0 && from+len(c.Text) <= len(text) {
			seg = text[from : from+len(c.Text)]
		} else {
			seg, from = s.keep(text, orig, c.Text), 0
		}
		s.addSegment(cmd, seg, w0, sepOf(c), int32(from), int32(from+len(c.Text)))
	}
}

// keep returns w lower-cased and safe to keep for the whole call: a part of the line as sent
// is the lower-cased line's bytes at the same offsets (text is orig lower-cased, of the same
// length: no host call a word), anything else (an unquoted word, a decoded payload) lives in
// the Parser's buffers until its next line and is copied.
func (s *session) keep(text, orig, w string) string {
	if w == "" {
		return ""
	}
	if off := offset(orig, w); off >= 0 {
		return text[off : off+len(w)]
	}
	start := len(s.arena)
	var changed bool
	if s.arena, changed = sdk.AppendLower(s.arena, w); !changed {
		s.arena = append(s.arena, w...) // w lives in the Parser's buffers: copied all the same
	}
	return unsafe.String(&s.arena[start], len(w))
}

// redirWord is a redirection's operator as the lifter's words spell it ("2>", ">>"),
// without building a string for the common ones.
func redirWord(r shell.Redirect) string {
	if r.Fd == "" {
		return r.Op
	}
	switch r.Fd + r.Op {
	case "2>":
		return "2>"
	case "1>":
		return "1>"
	case "2>&":
		return "2>&"
	}
	return r.Fd + r.Op
}

// sepOf is the lifter's name for what precedes a command: 0 at the start of a line, ';', '|'
// (piped), 'a' (&&), 'o' (||), '&' (after a backgrounded command), '(' (a substitution).
func sepOf(c *shell.Command) byte {
	switch c.Op {
	case ";":
		return ';'
	case "|":
		return '|'
	case "&&":
		return 'a'
	case "||":
		return 'o'
	case "&":
		return '&'
	}
	if c.Via == shell.Subst {
		return '('
	}
	return 0
}

// addSegment finds the segment's command word and appends it with its keyword matches.
func (s *session) addSegment(cmd int, text string, w0 int, sep byte, start, end int32) {
	if len(s.segs) >= maxSegments {
		return
	}
	s.segs = append(s.segs, segment{cmd: cmd, text: text, w0: w0, w1: len(s.words), sep: sep, start: start, end: end})
	g := &s.segs[len(s.segs)-1]
	g.verb, g.vid = s.findVerb(g.w0, g.w1), -1
	if g.verb >= 0 {
		g.name = base(s.words[g.verb])
		g.vid = s.dict.verb(g.name)
	}
	// Segments of a line are created in order of their start (a nested shell's segments right
	// after the one that runs it, inside it), so one cursor per line finds their first match.
	for s.cursor < len(s.matches) && s.matches[s.cursor].To <= g.start {
		s.cursor++
	}
	g.m0 = s.cursor
	g.m1 = g.m0
	for g.m1 < len(s.matches) && s.matches[g.m1].To <= g.end {
		if m := &s.matches[g.m1]; m.From >= g.start {
			g.kl |= s.dict.kmask[m.Index]
		}
		g.m1++
	}
	if g.vid >= 0 {
		g.vl = s.dict.vmask[g.vid]
	}
	s.allV |= g.vl
	s.allK |= g.kl
	s.maxSeg = max(s.maxSeg, len(g.text))
}

// findVerb returns the index of the command word of words[w0:w1]: the first word that is not
// an assignment, a redirection or a wrapper (sudo, nohup, busybox, xargs, do, ...) with its
// flags.
func (s *session) findVerb(w0, w1 int) int {
	for j := w0; j < w1; j++ {
		w := s.words[j]
		if op, target := redirection(w); op != 0 {
			if target == "" {
				j++ // the target is the next word
			}
			continue
		}
		if isAssignment(w) {
			continue
		}
		valueFlags, ok := wrapper(base(w))
		if !ok {
			return j
		}
		numeric := base(w) == "timeout"
		for j+1 < w1 {
			f := s.words[j+1]
			if len(f) > 1 && f[0] == '-' {
				j++
				if len(f) == 2 && strings.IndexByte(valueFlags, f[1]) >= 0 {
					j++
				}
				continue
			}
			if numeric && f[0] >= '0' && f[0] <= '9' {
				j++
				numeric = false
				continue
			}
			break
		}
	}
	return -1
}

// wrapper reports whether name runs the next word as a command, and which of its one-letter
// flags take a value (lower case: the text is lower-cased).
func wrapper(name string) (valueFlags string, ok bool) {
	switch name {
	case "sudo", "doas":
		return "ugcdhprt", true
	case "nice", "watch":
		return "n", true
	case "ionice":
		return "cnp", true
	case "timeout":
		return "sk", true
	case "xargs":
		return "ielnpsda", true
	case "env":
		return "ucs", true
	case "nohup", "exec", "setsid", "time", "command", "builtin", "busybox", "stdbuf", "taskset",
		"do", "then", "else", "elif", "!", "{":
		return "", true
	}
	return "", false
}

// redirection parses a redirection word (">", ">>/tmp/x", "2>/dev/null", "&>log", "<in"):
// op is '>' or '<' (0 when w is not one) and target the file, "" when it is the next word or
// a file descriptor.
func redirection(w string) (op byte, target string) {
	i := 0
	for i < len(w) && (w[i] >= '0' && w[i] <= '9' || w[i] == '&') {
		i++
	}
	if i == len(w) || (w[i] != '>' && w[i] != '<') {
		return 0, ""
	}
	op = w[i]
	if op == '<' && strings.HasPrefix(w[i:], "<<") { // here-document or here-string
		return '-', "-"
	}
	for i < len(w) && (w[i] == '>' || w[i] == '<' || w[i] == '|') {
		i++
	}
	rest := w[i:]
	if strings.HasPrefix(rest, "&") { // >&2 (a descriptor), >& file, >&file
		rest = rest[1:]
		if rest == "-" || rest != "" && strings.Trim(rest, "0123456789") == "" {
			return op, "-"
		}
	}
	return op, rest
}

func isAssignment(w string) bool {
	eq := strings.IndexByte(w, '=')
	if eq <= 0 || w[0] >= '0' && w[0] <= '9' {
		return false
	}
	for i := 0; i < eq; i++ {
		c := w[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// base returns the last element of a path.
func base(w string) string {
	if i := strings.LastIndexByte(w, '/'); i >= 0 {
		return w[i+1:]
	}
	return w
}

func isFlag(w string) bool { return len(w) > 1 && w[0] == '-' }

// verb returns the base name of g's command word, "" when it has none.
func (s *session) verb(g *segment) string { return g.name }

// verbIn reports whether g's command word (by base name) is in ws.
func (s *session) verbIn(g *segment, ws *wordSet) bool {
	if ws.id < 64 {
		return g.vl&(1<<ws.id) != 0
	}
	return s.dict.verbIndex(g.vid, ws.id) >= 0
}

// anyVerb reports whether some segment's command word is in ws (true when unsure).
func (s *session) anyVerb(ws *wordSet) bool { return ws.id >= 64 || s.allV&(1<<ws.id) != 0 }

// anyKeyword reports whether some entry of kw occurs in the session (true when unsure).
func (s *session) anyKeyword(kw *keywords) bool { return kw.id >= 64 || s.allK&(1<<kw.id) != 0 }

// verbIndex returns the position of g's command word in ws, -1 when it is not there.
func (s *session) verbIndex(g *segment, ws *wordSet) int {
	return s.dict.verbIndex(g.vid, ws.id)
}

// kwAt returns the position in kw of the keyword of match i of g, -1 when the match is
// another list's or lies partly before the segment.
func (s *session) kwAt(g *segment, i int, kw *keywords) int {
	m := &s.matches[i]
	if m.From < g.start {
		return -1
	}
	return s.dict.kwIndex(m.Index, kw.id)
}

// offset returns the position of sub in text when sub is a part of text (the same bytes, as
// slicing makes), -1 otherwise.
func offset(text, sub string) int {
	if len(sub) == 0 || len(text) == 0 {
		return -1
	}
	t := uintptr(unsafe.Pointer(unsafe.StringData(text)))
	p := uintptr(unsafe.Pointer(unsafe.StringData(sub)))
	if p < t || p+uintptr(len(sub)) > t+uintptr(len(text)) {
		return -1
	}
	return int(p - t)
}

// args returns the words after g's command word.
func (s *session) args(g *segment) []string {
	if g.verb < 0 {
		return nil
	}
	return s.words[g.verb+1 : g.w1]
}

// operands returns the arguments of g that are neither flags nor redirections, into dst.
func (s *session) operands(g *segment, dst []string) []string {
	args := s.args(g)
	for j := 0; j < len(args); j++ {
		w := args[j]
		if op, target := redirection(w); op != 0 {
			if target == "" {
				j++
			}
			continue
		}
		if isFlag(w) {
			continue
		}
		dst = append(dst, w)
	}
	return dst
}

// redirects appends to dst every file g redirects into (write) or reads from (!write).
func (s *session) redirects(g *segment, write bool, dst []string) []string {
	for j := g.w0; j < g.w1; j++ {
		op, target := redirection(s.words[j])
		if op != '>' && op != '<' {
			continue
		}
		if target == "" {
			if j+1 >= g.w1 {
				continue
			}
			j++
			target = s.words[j]
		}
		if target != "-" && (op == '>') == write {
			dst = append(dst, target)
		}
	}
	return dst
}

// flagValue returns the value of a short flag (-O file, -Ofile) or long flag (--output=file)
// of g, "" when absent.
func (s *session) flagValue(g *segment, short, long string) string {
	args := s.args(g)
	for j, w := range args {
		switch {
		case short != "" && w == short && j+1 < len(args):
			return args[j+1]
		case short != "" && len(w) > len(short) && strings.HasPrefix(w, short) && w[1] != '-':
			return w[len(short):]
		case long != "" && strings.HasPrefix(w, long+"="):
			return w[len(long)+1:]
		case long != "" && w == long && j+1 < len(args):
			return args[j+1]
		}
	}
	return ""
}

// writes appends to dst every file g writes, truncates or changes the attributes of:
// redirections, tee, cp/mv/install/ln/rsync/scp destinations, sed -i, wget -O, curl -o,
// dd of=, chattr, truncate.
func (s *session) writes(g *segment, dst []string) []string {
	dst = s.redirects(g, true, dst)
	if g.verb < 0 {
		return dst
	}
	switch s.verb(g) {
	case "tee", "chattr", "truncate":
		ops := s.operands(g, s.tmp[:0])
		for _, o := range ops {
			if o[0] != '+' && o[0] != '=' {
				dst = append(dst, o)
			}
		}
		s.tmp = ops[:0]
	case "cp", "mv", "install", "ln", "rsync", "scp":
		ops := s.operands(g, s.tmp[:0])
		if len(ops) >= 2 {
			dst = append(dst, ops[len(ops)-1])
		}
		s.tmp = ops[:0]
	case "sed":
		inPlace := false
		for _, a := range s.args(g) {
			if strings.HasPrefix(a, "-i") || strings.HasPrefix(a, "--in-place") {
				inPlace = true
			}
		}
		ops := s.operands(g, s.tmp[:0])
		if inPlace && len(ops) >= 2 {
			dst = append(dst, ops[len(ops)-1])
		}
		s.tmp = ops[:0]
	case "wget": // -O and -o (its log) both write; the text is lower-cased
		if v := s.flagValue(g, "-o", "--output-document"); v != "" && v != "-" {
			dst = append(dst, v)
		}
	case "curl":
		if v := s.flagValue(g, "-o", "--output"); v != "" && v != "-" {
			dst = append(dst, v)
		}
	case "dd":
		for _, a := range s.args(g) {
			if strings.HasPrefix(a, "of=") {
				dst = append(dst, a[3:])
			}
		}
	}
	return dst
}

// deletes appends to dst every file g removes (rm, shred, unlink, srm, wipe).
func (s *session) deletes(g *segment, dst []string) []string {
	switch s.verb(g) {
	case "rm", "shred", "unlink", "srm", "wipe":
		return s.operands(g, dst)
	}
	return dst
}

// matchPhrase reports whether g's command is phrase: its command word (by base name) then the
// phrase's further words, "*" standing for any word that is not a flag.
func (s *session) matchPhrase(g *segment, phrase []string) bool {
	if g.verb < 0 || len(phrase) == 0 || g.name != phrase[0] {
		return false
	}
	j := g.verb + 1
	for _, p := range phrase[1:] {
		if j >= g.w1 {
			return false
		}
		w := s.words[j]
		if p == "*" {
			if isFlag(w) {
				return false
			}
		} else if w != p {
			return false
		}
		j++
	}
	return true
}

// urlHost returns the host of a URL-like word ("http://user@h:8080/x" -> "h"), "" when w has
// no scheme.
func urlHost(w string) string {
	i := strings.Index(w, "://")
	if i <= 0 {
		return ""
	}
	h := w[i+3:]
	if j := strings.IndexAny(h, "/?# \t\"'`;|&)"); j >= 0 {
		h = h[:j]
	}
	if j := strings.LastIndexByte(h, '@'); j >= 0 {
		h = h[j+1:]
	}
	if strings.HasPrefix(h, "[") { // [v6]:port
		if j := strings.IndexByte(h, ']'); j > 0 {
			return h[1:j]
		}
	}
	if j := strings.IndexByte(h, ':'); j >= 0 {
		h = h[:j]
	}
	return h
}

// urlFile returns the last path element of a URL-like word, "" when it has none.
func urlFile(w string) string {
	i := strings.Index(w, "://")
	if i <= 0 {
		return ""
	}
	p := w[i+3:]
	j := strings.IndexByte(p, '/')
	if j < 0 {
		return ""
	}
	p = p[j:]
	if k := strings.IndexAny(p, "?# \t\"'`;|&)"); k >= 0 {
		p = p[:k]
	}
	return base(p)
}

// hostArg returns the host a connect-style argument names ("1.2.3.4", "1.2.3.4:22",
// "root@10.0.0.5", "c2.example.net", a URL), "" when it does not look like one.
func hostArg(w string) string {
	if h := urlHost(w); h != "" {
		return h
	}
	if i := strings.IndexByte(w, ':'); i > 0 && strings.IndexByte(w[i+1:], ':') > 0 && letters(w[:i]) {
		w = w[i+1:] // socat address: tcp:host:port, openssl:host:port
	}
	if j := strings.LastIndexByte(w, '@'); j >= 0 {
		w = w[j+1:]
	}
	if j := strings.IndexByte(w, ':'); j >= 0 {
		w = w[:j]
	}
	if len(w) < 4 || strings.IndexByte(w, '.') < 0 || w[0] == '.' || w[0] == '-' || w[len(w)-1] == '.' {
		return ""
	}
	digitsOnly, dots := true, 0
	for i := 0; i < len(w); i++ {
		c := w[i]
		switch {
		case c == '.':
			dots++
		case c >= '0' && c <= '9':
		case c >= 'a' && c <= 'z' || c == '-' || c == '$' || c == '{' || c == '}' || c == '_':
			digitsOnly = false
		default:
			return ""
		}
	}
	if digitsOnly {
		if dots != 3 {
			return ""
		}
		return w
	}
	// a name: its last label is letters (a TLD), not a file extension we know
	tld := w[strings.LastIndexByte(w, '.')+1:]
	if len(tld) < 2 {
		return ""
	}
	for i := 0; i < len(tld); i++ {
		if c := tld[i]; c < 'a' || c > 'z' {
			return ""
		}
	}
	switch tld {
	case "sh", "py", "pl", "txt", "log", "conf", "json", "tar", "gz", "tgz", "zip", "bin", "so", "pem", "key", "pub", "php", "js", "service":
		return ""
	}
	return w
}

// hasPrefixFold reports whether s starts with prefix, ignoring ASCII case; prefix is lower case.
func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// maxDistinct bounds the distinct values (hosts, names) a detector tracks in one event, so
// that a hostile event of a million distinct hosts costs linear time, not quadratic.
const maxDistinct = 64

// appendUnique appends v to list unless it is there already or the list is full.
func appendUnique(list []string, v string) []string {
	for _, x := range list {
		if x == v {
			return list
		}
	}
	if len(list) >= maxDistinct {
		return list
	}
	return append(list, v)
}

// letters reports whether w is lower-case ASCII letters and digits, starting with a letter.
func letters(w string) bool {
	if w == "" || w[0] < 'a' || w[0] > 'z' {
		return false
	}
	for i := 0; i < len(w); i++ {
		if c := w[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}
