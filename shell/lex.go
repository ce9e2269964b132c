package shell

import (
	"strings"
	"unsafe"
)

// lexStrict reads a line made only of words (with quotes and escapes), redirections and the
// operators ; && || | & and newlines. It reports false on anything else a shell gives meaning
// to (command substitution, here-documents, subshells, compound commands, comments), which is
// then mvdan's to read: it must never read a line differently from a shell.
func lexStrict(text string) ([]rawCmd, bool) {
	l := lexer{text: text}
	return l.run()
}

// reset prepares a reused lexer for text, keeping its buffers. The word arena is not
// rewound: the commands of an earlier payload at the same depth still point into it (the
// Parser rewinds every arena when a new line starts).
func (l *lexer) reset(text string) {
	*l = lexer{text: text, cmds: l.cmds[:0], arena: l.arena, buf: l.buf[:0], w0: len(l.arena), reds: l.reds, r0: len(l.reds), bytes: l.bytes}
}

// lexTolerant splits what no parser accepts: quotes are removed where they close, and
// parentheses, braces and unknown syntax act as separators, so the words survive for the
// rules.
func lexTolerant(text string) []rawCmd {
	l := lexer{text: text, tolerant: true}
	cmds, _ := l.run()
	return cmds
}

// lexer is the state of one lexing pass.
type lexer struct {
	text     string
	tolerant bool
	i        int
	cmds     []rawCmd
	cur      rawCmd
	start    int // offset of the current command's first byte, -1 when none yet
	end      int
	op       string
	buf      []byte
	arena    []string   // words of every command; a command's words are a slice of it
	w0       int        // first word of the current command in arena
	reds     []Redirect // redirections of every command, likewise
	r0       int
	bytes    []byte // the text of unquoted words that are not substrings of the line
}

// isReserved reports the words that begin or end compound commands, which the lexer leaves
// to mvdan (a switch, not a map: cheaper in a wasip1 guest).
func isReserved(w string) bool {
	switch w {
	case "if", "then", "else", "elif", "fi", "for", "while", "until", "do", "done", "case",
		"esac", "function", "select", "[[", "]]", "{", "}", "!", "coproc":
		return true
	}
	return false
}

func (l *lexer) run() ([]rawCmd, bool) {
	l.start = -1
	for l.i < len(l.text) {
		c := l.text[l.i]
		switch c {
		case ' ', '\t', '\r':
			l.i++
		case '\n', ';':
			if c == ';' && strings.HasPrefix(l.text[l.i:], ";;") && !l.tolerant {
				return nil, false
			}
			l.finish(";", false)
			l.i++
		case '&':
			switch {
			case strings.HasPrefix(l.text[l.i:], "&&"):
				l.finish("&&", false)
				l.i += 2
			case strings.HasPrefix(l.text[l.i:], "&>"):
				if !l.redirect("") {
					return nil, false
				}
			default:
				l.finish("&", true)
				l.i++
			}
		case '|':
			switch {
			case strings.HasPrefix(l.text[l.i:], "||"):
				l.finish("||", false)
				l.i += 2
			case strings.HasPrefix(l.text[l.i:], "|&"):
				l.finish("|", false)
				l.i += 2
			default:
				l.finish("|", false)
				l.i++
			}
		case '<', '>':
			if !l.redirect("") {
				return nil, false
			}
		case '(', ')', '`':
			if !l.tolerant {
				return nil, false
			}
			l.finish(";", false)
			l.i++
		case '#':
			if !l.tolerant {
				return nil, false
			}
			l.word()
		default:
			start := l.i
			w, ok := l.word()
			if !ok {
				return nil, false
			}
			// a word of digits right before < or > is a descriptor
			if l.i < len(l.text) && (l.text[l.i] == '<' || l.text[l.i] == '>') && isDigits(l.text[start:l.i]) {
				if !l.redirect(w) {
					return nil, false
				}
				continue
			}
			if len(l.cur.words) == 0 && len(l.cur.redirs) == 0 && !l.tolerant && isReserved(w) && l.text[start] != '"' && l.text[start] != '\'' {
				return nil, false
			}
			if l.start < 0 {
				l.start = start
			}
			l.end = l.i
			l.arena = append(l.arena, w)
			l.cur.words = l.arena[l.w0:len(l.arena):len(l.arena)]
		}
	}
	l.finish("", false)
	return l.cmds, true
}

// finish closes the current command; op is the operator that follows it.
func (l *lexer) finish(op string, bg bool) {
	if len(l.cur.words) > 0 || len(l.cur.redirs) > 0 {
		l.cur.op = l.op
		l.cur.bg = bg
		if l.start >= 0 {
			l.cur.text = l.text[l.start:l.end]
		}
		l.cmds = append(l.cmds, l.cur)
		l.op = op
	}
	if bg {
		l.op = "&"
	}
	l.cur = rawCmd{}
	l.start = -1
	l.w0 = len(l.arena)
	l.r0 = len(l.reds)
}

// redirect reads an operator at l.i and its target word.
func (l *lexer) redirect(fd string) bool {
	if l.start < 0 {
		l.start = l.i - len(fd)
	}
	rest := l.text[l.i:]
	op := ""
	for _, o := range redirOps {
		if strings.HasPrefix(rest, o) {
			op = o
			break
		}
	}
	if op == "<<" && !l.tolerant {
		return false // here-documents are mvdan's
	}
	l.i += len(op)
	for l.i < len(l.text) && (l.text[l.i] == ' ' || l.text[l.i] == '\t') {
		l.i++
	}
	target := ""
	if l.i < len(l.text) && !strings.ContainsRune(";&|<>()\n", rune(l.text[l.i])) {
		w, ok := l.word()
		if !ok {
			return false
		}
		target = w
	} else if !l.tolerant {
		return false
	}
	l.end = l.i
	l.reds = append(l.reds, Redirect{Fd: fd, Op: op, Target: target})
	l.cur.redirs = l.reds[l.r0:len(l.reds):len(l.reds)]
	return true
}

// redirOps are the redirection operators, longest first.
var redirOps = []string{"&>>", "<<<", "<<-", "&>", ">>", ">&", ">|", "<&", "<>", "<<", ">", "<"}

// word reads one word at l.i, removing quotes and processing escapes. It reports false, in
// strict mode, on an expansion only a shell can perform or an unclosed quote.
func (l *lexer) word() (string, bool) {
	start := l.i
	text := l.text
	plain := true // no quote or escape: the word is a substring of the line
	l.buf = l.buf[:0]
	for l.i < len(text) {
		c := text[l.i]
		switch c {
		case ' ', '\t', '\r', '\n', ';', '&', '|', '<', '>':
			return l.done(start, plain), true
		case '(', ')':
			if !l.tolerant {
				return "", false
			}
			return l.done(start, plain), true
		case '`':
			if !l.tolerant {
				return "", false
			}
			return l.done(start, plain), true
		case '$':
			if !l.dollar(plain, start) {
				return "", false
			}
		case '\\':
			plain = l.unplain(plain, start)
			if l.i+1 < len(text) {
				if text[l.i+1] != '\n' {
					l.buf = append(l.buf, text[l.i+1])
				}
				l.i += 2
			} else {
				l.buf = append(l.buf, '\\') // a trailing backslash stays, as in bash
				l.i++
			}
		case '\'':
			plain = l.unplain(plain, start)
			end := strings.IndexByte(text[l.i+1:], '\'')
			if end < 0 {
				if !l.tolerant {
					return "", false
				}
				l.buf = append(l.buf, text[l.i+1:]...)
				l.i = len(text)
				continue
			}
			l.buf = append(l.buf, text[l.i+1:l.i+1+end]...)
			l.i += end + 2
		case '"':
			plain = l.unplain(plain, start)
			if !l.doubleQuoted() {
				return "", false
			}
		default:
			// a run of ordinary bytes in one tight loop: in a wasip1 guest every taken branch
			// costs a termination check, and most of a line is such runs
			j := l.i + 1
			for j < len(text) && ordinary[text[j]] {
				j++
			}
			if !plain {
				l.buf = append(l.buf, text[l.i:j]...)
			}
			l.i = j
		}
	}
	return l.done(start, plain), true
}

// dollar reads a `$` of the word that began at start: a plain ${name} is kept whole; a
// substitution, $( $' or ${ with more inside, is refused unless tolerant, where the `$` is
// kept as a byte. It reports false when the word is refused.
func (l *lexer) dollar(plain bool, start int) bool {
	text := l.text
	if l.i+1 < len(text) && strings.IndexByte("('{", text[l.i+1]) >= 0 {
		if text[l.i+1] == '{' {
			if end := strings.IndexByte(text[l.i:], '}'); end > 0 && !strings.ContainsAny(text[l.i:l.i+end], "$`( \"'") {
				l.add(plain, start, text[l.i:l.i+end+1])
				l.i += end + 1
				return true
			}
		}
		if !l.tolerant {
			return false
		}
	}
	l.add(plain, start, "$")
	l.i++
	return true
}

// doubleQuoted reads a double-quoted part of a word from its opening quote into l.buf,
// unescaping as bash does inside double quotes. A substitution inside or a missing closing
// quote refuses the word (false) unless tolerant.
func (l *lexer) doubleQuoted() bool {
	text := l.text
	l.i++
	closed := false
	for l.i < len(text) {
		d := text[l.i]
		if d == '"' {
			l.i++
			closed = true
			break
		}
		if d == '`' || d == '$' && l.i+1 < len(text) && strings.IndexByte("('", text[l.i+1]) >= 0 {
			if !l.tolerant {
				return false
			}
		}
		if d == '\\' && l.i+1 < len(text) && strings.IndexByte("$`\"\\\n", text[l.i+1]) >= 0 {
			if text[l.i+1] != '\n' {
				l.buf = append(l.buf, text[l.i+1])
			}
			l.i += 2
			continue
		}
		l.buf = append(l.buf, d)
		l.i++
	}
	return closed || l.tolerant
}

// ordinary marks the bytes that never end or change a word.
var ordinary = func() (t [256]bool) {
	for i := range t {
		t[i] = true
	}
	for _, c := range []byte(" \t\r\n;&|<>()`$\\'\"") {
		t[c] = false
	}
	return t
}()

// unplain switches a word to the buffer when its first quote or escape is met.
func (l *lexer) unplain(plain bool, start int) bool {
	if plain {
		l.buf = append(l.buf[:0], l.text[start:l.i]...)
	}
	return false
}

// add appends s to a word that is no longer a substring.
func (l *lexer) add(plain bool, start int, s string) {
	if !plain {
		l.buf = append(l.buf, s...)
	}
}

func (l *lexer) done(start int, plain bool) string {
	if plain {
		return l.text[start:l.i]
	}
	// a word that is one quoted string with nothing removed inside is a substring of the
	// line: no copy, and a payload parsed from it keeps its place in the line
	if n := l.i - start; n >= 2 && len(l.buf) == n-2 && (l.text[start] == '\'' || l.text[start] == '"') && l.text[l.i-1] == l.text[start] {
		return l.text[start+1 : l.i-1]
	}
	// the word's bytes go to the arena, so that a Parser reading line after line does not
	// allocate; they stay valid until the Parser starts the next line
	if len(l.buf) == 0 {
		return ""
	}
	n := len(l.bytes)
	l.bytes = append(l.bytes, l.buf...)
	return unsafe.String(&l.bytes[n], len(l.buf))
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
