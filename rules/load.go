package rules

import (
	"fmt"
	"io"
	"os"
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
	if _, err := os.ReadDir(dir); err != nil {
		return nil, fmt.Errorf("rules: %w", err) // names dir, where os.DirFS would say "."
	}
	return LoadFS(os.DirFS(dir), dir)
}
