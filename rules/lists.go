package rules

import (
	_ "embed"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"

	"gopkg.in/yaml.v3"
)

// Named lists shared across command rules, as Falco's lists are: `shells: [sh, bash, ...]`
// written once in rules/ttp/lists.yaml and used by name, `$shells` in a program list and
// `{{shells}}` inside a regular expression (where it stands for the entries, quoted, as one
// alternation).
//
// # Why the lists are built into the binary
//
// A rule is one file and every store (directory, KV bucket) and tool (lint, push, the
// corpora) handles rules file by file. Reading the lists from beside the rules would make a
// rule's meaning depend on a second file that each store would have to follow and order
// against the rules. So the lists are part of the engine's vocabulary, like the ATT&CK table:
// embedded, checked when a rule is parsed (an unknown name is an error with file, line and
// field), and folded into the version of every rule that uses them, so a list edit is a new
// rule_version for exactly the rules it changes.

//go:embed ttp/lists.yaml
var listsYAML []byte

var (
	listsOnce sync.Once
	lists     map[string][]string
	macros    map[string]string
	listsErr  error
)

// Lists returns the shared lists by name. It panics when the embedded file is malformed,
// which TestLists catches before any build ships.
func Lists() map[string][]string {
	load()
	return lists
}

// Macros returns the shared regular-expression fragments by name: `{{name}}` inside a rule's
// regular expression stands for the fragment, as a non-capturing group. They are Falco's
// macros for what a list of literals cannot say (`hidden_dir`: a dot-named entry under a
// world-writable directory).
func Macros() map[string]string {
	load()
	return macros
}

func load() {
	listsOnce.Do(func() { lists, macros, listsErr = parseLists(listsYAML) })
	if listsErr != nil {
		panic(listsErr)
	}
}

// listNameRE is what a list may be called.
var listNameRE = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

func parseLists(data []byte) (map[string][]string, map[string]string, error) {
	var doc struct {
		Lists  map[string][]string `yaml:"lists"`
		Macros map[string]string   `yaml:"macros"`
	}
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil {
		return nil, nil, fmt.Errorf("rules: ttp/lists.yaml: %w", err)
	}
	for name, l := range doc.Lists {
		if !listNameRE.MatchString(name) {
			return nil, nil, fmt.Errorf("rules: ttp/lists.yaml: list %q: want a lower-case name", name)
		}
		if len(l) == 0 {
			return nil, nil, fmt.Errorf("rules: ttp/lists.yaml: list %q is empty", name)
		}
	}
	for name, m := range doc.Macros {
		if !listNameRE.MatchString(name) || doc.Lists[name] != nil {
			return nil, nil, fmt.Errorf("rules: ttp/lists.yaml: macro %q: want a lower-case name no list has", name)
		}
		if _, err := regexp.Compile(m); err != nil {
			return nil, nil, fmt.Errorf("rules: ttp/lists.yaml: macro %q: %w", name, err)
		}
	}
	return doc.Lists, doc.Macros, nil
}

// listRefRE finds {{name}} in a regular expression.
var listRefRE = regexp.MustCompile(`\{\{([a-z][a-z0-9_]*)\}\}`)

// expandRegex replaces every {{name}} by the list's entries, quoted, as a non-capturing
// alternation, and records the lists used.
func expandRegex(src string, used map[string]bool) (string, error) {
	var err error
	out := listRefRE.ReplaceAllStringFunc(src, func(m string) string {
		name := m[2 : len(m)-2]
		if mac, ok := Macros()[name]; ok {
			used[name] = true
			return "(?:" + mac + ")"
		}
		l, ok := Lists()[name]
		if !ok {
			err = fmt.Errorf("%w: no list %q in ttp/lists.yaml", ErrBadValue, name)
			return m
		}
		used[name] = true
		q := make([]string, len(l))
		for i, s := range l {
			q[i] = regexp.QuoteMeta(s)
		}
		return "(?:" + strings.Join(q, "|") + ")"
	})
	return out, err
}

// expandNames resolves $name entries of a program list into the list's entries.
func expandNames(in []string, used map[string]bool) ([]string, error) {
	var out []string
	for _, s := range in {
		if !strings.HasPrefix(s, "$") {
			out = append(out, s)
			continue
		}
		l, ok := Lists()[s[1:]]
		if !ok {
			return nil, fmt.Errorf("%w: no list %q in ttp/lists.yaml", ErrBadValue, s[1:])
		}
		used[s[1:]] = true
		out = append(out, l...)
	}
	return out, nil
}

// usedLists returns the named lists in a form RuleVersion can hash.
func usedLists(used map[string]bool) map[string]any {
	names := make([]string, 0, len(used))
	for n := range used {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make(map[string]any, len(names))
	for _, n := range names {
		if m, ok := Macros()[n]; ok {
			out[n] = m
			continue
		}
		l := Lists()[n]
		items := make([]any, len(l))
		for i, s := range l {
			items[i] = s
		}
		out[n] = items
	}
	return out
}
