package sigma

import (
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// The condition grammar, as Sigma writes it and the linux rules use it:
//
//	or   := and ("or" and)*
//	and  := not ("and" not)*
//	not  := "not" not | atom
//	atom := "(" or ")" | ("1" | N | "all") "of" (name-pattern | "them") | name
//
// A name pattern may hold * wildcards; `them` is every selection not starting with "_". An
// aggregation (`| count() by x > 3`) or a correlation names several events; a command line is
// one, so it is unsupported.

type condParser struct {
	c     *compiler
	node  *yaml.Node
	toks  []string
	pos   int
	sels  map[string]expr
	names []string
	depth int
}

func tokenize(s string) []string {
	var out []string
	for i := 0; i < len(s); {
		switch ch := s[i]; {
		case ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r':
			i++
		case ch == '(' || ch == ')' || ch == '|':
			out = append(out, s[i:i+1])
			i++
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" \t\r\n()|", rune(s[j])) {
				j++
			}
			out = append(out, s[i:j])
			i = j
		}
	}
	return out
}

func (c *compiler) condition(n *yaml.Node, s string, sels map[string]expr, names []string) expr {
	p := &condParser{c: c, node: n, toks: tokenize(s), sels: sels, names: names}
	for _, t := range p.toks {
		if t == "|" {
			c.fail(n, "detection.condition", "aggregation", ErrUnsupported, "an aggregation (|) counts events; a command line is one")
			return nil
		}
	}
	x := p.or()
	if x != nil && p.pos < len(p.toks) {
		p.errorf("unexpected %q", p.toks[p.pos])
		return nil
	}
	return x
}

func (p *condParser) errorf(format string, args ...any) {
	if len(p.c.errs) == 0 {
		p.c.fail(p.node, "detection.condition", "bad condition", ErrInvalid, format, args...)
	}
}

func (p *condParser) peek() string {
	if p.pos < len(p.toks) {
		return p.toks[p.pos]
	}
	return ""
}

func (p *condParser) or() expr {
	if p.depth++; p.depth > maxDepth {
		p.errorf("nested too deep")
		return nil
	}
	defer func() { p.depth-- }()
	x := p.and()
	if x == nil {
		return nil
	}
	xs := orExpr{x}
	for strings.EqualFold(p.peek(), "or") {
		p.pos++
		y := p.and()
		if y == nil {
			return nil
		}
		xs = append(xs, y)
	}
	if len(xs) == 1 {
		return x
	}
	return xs
}

func (p *condParser) and() expr {
	x := p.not()
	if x == nil {
		return nil
	}
	xs := andExpr{x}
	for strings.EqualFold(p.peek(), "and") {
		p.pos++
		y := p.not()
		if y == nil {
			return nil
		}
		xs = append(xs, y)
	}
	if len(xs) == 1 {
		return x
	}
	return xs
}

func (p *condParser) not() expr {
	if strings.EqualFold(p.peek(), "not") {
		p.pos++
		if p.depth++; p.depth > maxDepth {
			p.errorf("nested too deep")
			return nil
		}
		defer func() { p.depth-- }()
		x := p.not()
		if x == nil {
			return nil
		}
		return notExpr{x}
	}
	return p.atom()
}

func (p *condParser) atom() expr {
	t := p.peek()
	switch {
	case t == "":
		p.errorf("ends early")
		return nil
	case t == "(":
		p.pos++
		x := p.or()
		if x == nil {
			return nil
		}
		if p.peek() != ")" {
			p.errorf("missing )")
			return nil
		}
		p.pos++
		return x
	case t == ")", strings.EqualFold(t, "and"), strings.EqualFold(t, "or"), strings.EqualFold(t, "of"):
		p.errorf("unexpected %q", t)
		return nil
	}
	if p.pos+1 < len(p.toks) && strings.EqualFold(p.toks[p.pos+1], "of") {
		n := 0
		if !strings.EqualFold(t, "all") {
			v, err := strconv.Atoi(t)
			if err != nil || v < 1 {
				p.errorf("%q of: want a count or all", t)
				return nil
			}
			n = v
		}
		if p.pos+2 >= len(p.toks) {
			p.errorf("%s of: what?", t)
			return nil
		}
		pat := p.toks[p.pos+2]
		p.pos += 3
		names := matchNames(pat, p.names)
		if len(names) == 0 {
			p.errorf("%s of %s: no selection matches", t, pat)
			return nil
		}
		xs := make([]expr, len(names))
		for i, nm := range names {
			xs[i] = p.sels[nm]
		}
		if n == 0 || n > len(xs) {
			if n > len(xs) {
				return orExpr{} // more than there are: never
			}
			n = len(xs)
		}
		return ofExpr{n: n, xs: xs}
	}
	p.pos++
	x, ok := p.sels[t]
	if !ok {
		p.errorf("no selection %q", t)
		return nil
	}
	return x
}
