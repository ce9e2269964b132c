package rules

import (
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
)

// builtin holds the rule files of rules/ttp as this binary was built with them, so that a
// `ttp` installed with `go install` or copied to a sensor tags with the shipped rules when
// no rules directory is at hand (BuiltinDir names them in messages).
//
//go:embed ttp/R*.yaml
var builtin embed.FS

// BuiltinDir is the directory the built-in rules were read from at build time; rule files
// loaded by LoadBuiltin carry it in their File, so an error reads like one from LoadDir.
const BuiltinDir = "rules/ttp"

// LoadBuiltin parses the rule files built into the binary (rules/ttp at build time), in id
// order. The files are checked by the project's own tests, so an error here means a binary
// built from a tree whose rules do not lint.
func LoadBuiltin() ([]*Rule, error) {
	sub, err := fs.Sub(builtin, "ttp")
	if err != nil {
		return nil, fmt.Errorf("rules: built-in: %w", err)
	}
	return LoadFS(sub, BuiltinDir)
}

// LoadFS parses every rule file at the top of fsys as LoadDir does a directory; dir is the
// name the files are reported under (Rule.File is dir/name).
func LoadFS(fsys fs.FS, dir string) ([]*Rule, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("rules: %w", err)
	}
	var rules []*Rule
	var errs []error
	seen := map[string]*Rule{}
	for _, e := range entries {
		if e.IsDir() || !ValidFileName(e.Name()) {
			continue
		}
		name := path.Join(dir, e.Name())
		data, err := readLimited(fsys, e.Name())
		if err != nil {
			errs = append(errs, &Error{File: name, Err: err})
			continue
		}
		r, err := Parse(name, data)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if prev, dup := seen[r.ID]; dup {
			errs = append(errs, &Error{File: r.File, Field: "id", Err: fmt.Errorf("%w: %s also in %s", ErrDuplicateID, r.ID, prev.File)})
			continue
		}
		seen[r.ID] = r
		rules = append(rules, r)
	}
	sort.Slice(rules, func(i, j int) bool { return rules[i].ID < rules[j].ID })
	return rules, errors.Join(errs...)
}

// readLimited reads one file of fsys, refusing it past MaxFileSize before reading it whole.
func readLimited(fsys fs.FS, name string) ([]byte, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err == nil && len(data) > MaxFileSize {
		err = ErrTooLarge
	}
	return data, err
}
