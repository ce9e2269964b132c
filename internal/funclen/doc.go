// Package funclen holds one test: no non-test function in the module is longer than
// MaxLines, so that each one is short enough for a reader to hold (issue 13). The package
// has no code of its own; it exists so that `go test ./...` runs the check.
package funclen

// MaxLines is the longest a non-test function may be, counted from the line of `func` to
// the line of its closing brace.
const MaxLines = 100
