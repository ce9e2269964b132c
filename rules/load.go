package rules

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
)

// ReadFile reads and parses one rule file, refusing files over MaxFileSize before reading
// them whole.
func ReadFile(path string) (*Rule, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &Error{File: path, Err: err}
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, &Error{File: path, Err: err}
	}
	if len(data) > MaxFileSize {
		return nil, &Error{File: path, Err: ErrTooLarge}
	}
	return Parse(path, data)
}

// LoadDir parses every rule file of dir (names checked against the allowlist first; other
// files are ignored). It returns the rules that loaded, ordered by id, and every problem
// found, duplicate ids included; a caller may run with the good rules and report the rest.
func LoadDir(dir string) ([]*Rule, error) {
	entries, err := os.ReadDir(dir)
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
		r, err := ReadFile(filepath.Join(dir, e.Name()))
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
