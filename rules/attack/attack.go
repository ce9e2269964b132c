// Package attack answers the one question the rule linter asks of MITRE ATT&CK: does this
// technique (or sub-technique) exist, is it current, and which tactics does it serve. The table
// is embedded so that linting needs no network and no file beside the binary.
package attack

import (
	_ "embed"
	"strings"
)

//go:embed enterprise-techniques.tsv
var table string

// Technique is one row of the ATT&CK Enterprise table.
type Technique struct {
	ID         string
	Name       string
	Tactics    []string
	Deprecated bool // deprecated or revoked: rules may not emit it
}

// IsSub reports whether t is a sub-technique (T1098.004).
func (t Technique) IsSub() bool { return strings.Contains(t.ID, ".") }

// Parent is the technique a sub-technique belongs to (T1098 for T1098.004), or the id itself.
func (t Technique) Parent() string {
	if i := strings.IndexByte(t.ID, '.'); i >= 0 {
		return t.ID[:i]
	}
	return t.ID
}

// HasTactic reports whether tactic is one of t's kill-chain phases.
func (t Technique) HasTactic(tactic string) bool {
	for _, x := range t.Tactics {
		if x == tactic {
			return true
		}
	}
	return false
}

// Version names the ATT&CK release the table was taken from.
const Version = "v18.1"

var (
	byID    = map[string]Technique{}
	tactics = map[string]bool{}
)

func init() {
	for i, line := range strings.Split(table, "\n") {
		if i == 0 || line == "" {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) < 5 {
			continue
		}
		t := Technique{ID: f[0], Name: f[1], Tactics: strings.Split(f[2], ","), Deprecated: f[4] == "true"}
		byID[t.ID] = t
		for _, tc := range t.Tactics {
			tactics[tc] = true
		}
	}
}

// Lookup returns the technique with the given id (T1059 or T1059.004).
func Lookup(id string) (Technique, bool) {
	t, ok := byID[id]
	return t, ok
}

// IsTactic reports whether name is an Enterprise tactic (kill-chain phase name such as
// "defense-evasion").
func IsTactic(name string) bool { return tactics[name] }
