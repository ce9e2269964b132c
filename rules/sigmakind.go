package rules

import (
	"errors"

	"gopkg.in/yaml.v3"

	"github.com/decnet/ttp/abi"
	"github.com/decnet/ttp/rules/sigma"
	"github.com/decnet/ttp/shell"
)

// KindSigma is the match kind of a rule converted from Sigma (`ttp rules import-sigma`). Its
// match keeps the Sigma detection as written, which the built-in engine compiles with package
// sigma and evaluates on each simple command of the parsed line, beside the structure rules:
//
//	match:
//	  kind: sigma
//	  sigma_id: 2e4c9e57-...        # the Sigma rule's id: attribution, and stable ids on re-import
//	  author: Jane Doe              # the Sigma rule's author
//	  detection:
//	    selection:
//	      Image|endswith: /wget
//	      CommandLine|contains: ' -O /tmp/'
//	    condition: selection
//
// Such a rule is one structure rule with a single branch (named "sigma") whose condition is
// the compiled detection, so the index, the engine and the naive reference treat it as any
// other branch. Its tags carry sigma_id and sigma_author in their evidence: the Detection
// Rule License 1.1 asks that messages based on a rule's matches keep its author.
// RATIONALE.md ("Sigma rules") says why the detection is kept rather than
// translated into when branches.
const KindSigma = "sigma"

// SigmaDetection is a compiled Sigma detection (Branch.Sigma), named here so that the
// structure engine's file does not import package sigma.
type SigmaDetection = sigma.Detection

type sigmaView = sigma.View

// sigmaBranch is the name of the one branch of a Sigma rule.
const sigmaBranch = "sigma"

// sigmaMatch parses the match mapping of a `kind: sigma` rule and reports whether it was one
// (otherwise the caller parses it as any other match).
func (p *parser) sigmaMatch(n *yaml.Node, r *Rule) bool {
	if n.Kind != yaml.MappingNode || !isSigmaMatch(n) {
		return false
	}
	keys := p.mapping(n, "match.", map[string]bool{"kind": true, "sigma_id": true, "author": false, "detection": true})
	r.Match.Kind = KindSigma
	for _, k := range r.AppliesTo {
		if k != abi.KindCommand {
			p.errorf(n, "applies_to", ErrBadValue, "a sigma rule reads command lines: applies_to must be [%s], not %q", abi.KindCommand, k)
		}
	}
	r.sigmaCredit = map[string]any{}
	if v := keys["sigma_id"]; v != nil {
		r.sigmaCredit["sigma_id"] = p.str(v, "match.sigma_id")
	}
	if v := keys["author"]; v != nil {
		r.sigmaCredit["sigma_author"] = p.str(v, "match.author")
	}
	v := keys["detection"]
	if v == nil {
		return true
	}
	d, err := sigma.CompileDetection(p.file, v)
	if err != nil {
		var se *sigma.Error
		if errors.As(err, &se) {
			ln := &yaml.Node{Line: se.Line}
			p.errorf(ln, "match."+se.Field, ErrBadValue, "%v", se.Err)
		} else {
			p.errorf(v, "match.detection", ErrBadValue, "%v", err)
		}
		return true
	}
	// Program indexes the branch by the names one of which the command must have (never
	// checked as a structure branch's list is: the detection decides). A detection that may
	// hold for a wrapper (sudo, nice) is seen by commands of another name, so it is tried on
	// every command.
	progs := d.Programs()
	for _, name := range progs {
		if shell.IsWrapper(name) {
			progs = nil
			break
		}
	}
	r.branches = append(r.branches, &Branch{Name: sigmaBranch, Program: progs, Sigma: d})
	return true
}

// isSigmaMatch reports whether a match mapping says kind: sigma.
func isSigmaMatch(n *yaml.Node) bool {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == "kind" {
			return n.Content[i+1].Value == KindSigma
		}
	}
	return false
}

// evidence is a tag's evidence: the field the rule read, and for a Sigma rule the rule's id
// and author, which the Detection Rule License asks every message based on a match to keep.
func (r *Rule) evidence(field abi.Path, text string) map[string]any {
	ev := make(map[string]any, 1+len(r.sigmaCredit))
	ev[field.Key()] = text
	for k, v := range r.sigmaCredit {
		ev[k] = v
	}
	return ev
}

// sigmaView returns the Sigma fields of c, computed once per command for every Sigma branch.
func (c *command) sigmaView() *sigma.View {
	if c.sigma == nil {
		c.sigma = new(sigma.View)
		c.sigma.Reset(c.line, c.i)
	}
	return c.sigma
}
