//go:build !wasip1

package shell

import (
	"strings"
	"sync"

	"mvdan.cc/sh/v3/syntax"
)

// parsers pools mvdan parsers: building one costs more than parsing a short line.
var parsers = sync.Pool{New: func() any { return syntax.NewParser(syntax.Variant(syntax.LangBash)) }}

// parseMvdan reads the lines the strict lexer declines with mvdan.cc/sh/v3/syntax, flattening
// compound commands (if, for, while, case, functions, subshells, blocks) into their simple
// commands in source order.
func parseMvdan(text string) ([]rawCmd, bool) {
	p := parsers.Get().(*syntax.Parser)
	f, err := p.Parse(strings.NewReader(text), "")
	parsers.Put(p)
	if err != nil {
		return nil, false
	}
	c := converter{text: text}
	c.stmts(f.Stmts, "")
	return c.out, true
}

// converter turns mvdan's tree into raw commands.
type converter struct {
	text string
	out  []rawCmd
	buf  strings.Builder
	subs []nested
}

func (c *converter) stmts(list []*syntax.Stmt, op string) {
	for i, s := range list {
		if i > 0 {
			op = ";"
			if list[i-1].Background {
				op = "&"
			}
		}
		c.stmt(s, op)
	}
}

func (c *converter) stmt(s *syntax.Stmt, op string) {
	first := len(c.out)
	switch x := s.Cmd.(type) {
	case *syntax.CallExpr:
		c.call(x, s, op)
	case *syntax.BinaryCmd:
		c.stmt(x.X, op)
		next := "&&"
		switch x.Op {
		case syntax.OrStmt:
			next = "||"
		case syntax.Pipe, syntax.PipeAll:
			next = "|"
		}
		c.stmt(x.Y, next)
	case *syntax.Subshell:
		c.stmts(x.Stmts, op)
	case *syntax.Block:
		c.stmts(x.Stmts, op)
	case *syntax.IfClause:
		for cl := x; cl != nil; cl = cl.Else {
			c.stmts(cl.Cond, op)
			c.stmts(cl.Then, ";")
			op = ";"
		}
	case *syntax.WhileClause:
		// the loop keyword stays as a command of its own: a loop is what a sweep or a beacon
		// is, and the behavioral lifter reads it
		kw := "while"
		if x.Until {
			kw = "until"
		}
		c.out = append(c.out, rawCmd{op: op, words: []string{kw}, text: kw})
		c.stmts(x.Cond, ";")
		c.stmts(x.Do, ";")
	case *syntax.ForClause:
		subs := len(c.subs)
		if it, ok := x.Loop.(*syntax.WordIter); ok {
			for _, w := range it.Items {
				c.word(w)
			}
		}
		pending := append([]nested(nil), c.subs[subs:]...)
		c.subs = c.subs[:subs]
		c.out = append(c.out, rawCmd{op: op, words: []string{"for"}, text: "for", nested: pending})
		c.stmts(x.Do, ";")
	case *syntax.CaseClause:
		for _, it := range x.Items {
			c.stmts(it.Stmts, op)
			op = ";"
		}
	case *syntax.FuncDecl:
		c.stmt(x.Body, op)
	case *syntax.TimeClause:
		if x.Stmt != nil {
			c.stmt(x.Stmt, op)
		}
	case *syntax.CoprocClause:
		c.stmt(x.Stmt, op)
	case *syntax.DeclClause:
		rc := rawCmd{op: op, text: c.src(x)}
		rc.words = append(rc.words, x.Variant.Value)
		for _, a := range x.Args {
			rc.words = append(rc.words, c.assign(a))
		}
		rc.nested = c.takeSubs()
		c.out = append(c.out, rc)
	case nil:
		if len(s.Redirs) > 0 { // a bare redirection: `> file` truncates
			c.out = append(c.out, rawCmd{op: op, text: c.src(s)})
		}
	}
	if len(c.out) > first {
		last := &c.out[len(c.out)-1]
		last.bg = last.bg || s.Background
		for _, r := range s.Redirs {
			c.out[first].redirs = append(c.out[first].redirs, c.redirect(r))
		}
		if len(c.subs) > 0 {
			c.out[first].nested = append(c.out[first].nested, c.takeSubs()...)
		}
	}
}

func (c *converter) call(x *syntax.CallExpr, s *syntax.Stmt, op string) {
	rc := rawCmd{op: op, text: c.src(s)}
	for _, a := range x.Assigns {
		rc.words = append(rc.words, c.assign(a))
	}
	for _, w := range x.Args {
		rc.words = append(rc.words, c.word(w))
	}
	rc.nested = c.takeSubs()
	c.out = append(c.out, rc)
}

func (c *converter) takeSubs() []nested {
	if len(c.subs) == 0 {
		return nil
	}
	out := c.subs
	c.subs = nil
	return out
}

func (c *converter) assign(a *syntax.Assign) string {
	name := ""
	if a.Name != nil {
		name = a.Name.Value + "="
	}
	if a.Value != nil {
		return name + c.word(a.Value)
	}
	if a.Array != nil {
		return name + c.src(a.Array)
	}
	return name
}

func (c *converter) redirect(r *syntax.Redirect) Redirect {
	out := Redirect{Op: r.Op.String()}
	if r.N != nil {
		out.Fd = r.N.Value
	}
	if r.Hdoc != nil {
		out.Target = c.word(r.Hdoc)
	} else if r.Word != nil {
		out.Target = c.word(r.Word)
	}
	return out
}

// src is a node's source text.
func (c *converter) src(n syntax.Node) string {
	a, b := int(n.Pos().Offset()), int(n.End().Offset())
	if a < 0 || b > len(c.text) || a > b {
		return ""
	}
	return c.text[a:b]
}

// word removes quotes and escapes, keeps expansions as written, and records command and
// process substitutions as nested payloads.
func (c *converter) word(w *syntax.Word) string {
	c.buf.Reset()
	for _, p := range w.Parts {
		c.part(p, false)
	}
	return c.buf.String()
}

func (c *converter) part(p syntax.WordPart, dq bool) {
	switch x := p.(type) {
	case *syntax.Lit:
		c.buf.WriteString(unescape(x.Value, dq))
	case *syntax.SglQuoted:
		if x.Dollar {
			c.buf.WriteString(ansiC(x.Value))
		} else {
			c.buf.WriteString(x.Value)
		}
	case *syntax.DblQuoted:
		for _, q := range x.Parts {
			c.part(q, true)
		}
	case *syntax.CmdSubst:
		c.buf.WriteString(c.src(x))
		c.sub(x.Left, x.Right, x.Backquotes)
	case *syntax.ProcSubst:
		c.buf.WriteString(c.src(x))
		c.sub(x.OpPos, x.Rparen, false)
	default:
		c.buf.WriteString(c.src(p))
	}
}

// sub records the text between a substitution's delimiters.
func (c *converter) sub(l, r syntax.Pos, backquotes bool) {
	a, b := int(l.Offset())+2, int(r.Offset())
	if backquotes {
		a--
	}
	if a < 0 || b > len(c.text) || a >= b {
		return
	}
	inner := c.text[a:b]
	if backquotes {
		inner = strings.ReplaceAll(inner, "\\`", "`")
	}
	c.subs = append(c.subs, nested{text: inner})
}
