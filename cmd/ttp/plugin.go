package main

import (
	"bufio"
	"context"
	"embed"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"text/template"
)

//go:embed scaffold/*.tmpl
var scaffold embed.FS

var pluginNameRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,30}$`)

const pluginUsage = `usage: ttp plugin new [--dir DIR] [--ttp-src PATH] NAME

Scaffolds a buildable lifter: main.go (manifest, one rule kind), main_test.go (run natively
through sdktest), rules/R9000.yaml (one rule) and vectors/NAME.yaml (golden vectors).
Inside the ttp repository the default DIR is plugins/NAME; elsewhere it is ./NAME and a go.mod
is written (with a replace to --ttp-src when given).
`

func runPlugin(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if isHelp(args) || len(args) > 1 && args[0] == "new" && isHelp(args[1:]) {
		fmt.Fprint(stdout, pluginUsage)
		return nil
	}
	if len(args) == 0 || args[0] != "new" {
		fmt.Fprint(stderr, pluginUsage)
		return exitError(2)
	}
	fs := flag.NewFlagSet("plugin new", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "", "where to write the plugin")
	src := fs.String("ttp-src", "", "path of a ttp checkout to build against (writes a replace directive)")
	rest := args[1:]
	var name string
	if len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		name, rest = rest[0], rest[1:]
	}
	if done, err := parseFlags(fs, rest); done {
		return err
	}
	if name == "" && fs.NArg() == 1 {
		name = fs.Arg(0)
	}
	if !pluginNameRE.MatchString(name) {
		fmt.Fprintf(stderr, "ttp plugin new: name %q: want lower-case letters, digits and _ (it becomes lifter:%s_)\n\n%s", name, name, pluginUsage)
		return exitError(2)
	}
	inRepo := repoRoot() != ""
	if *dir == "" {
		*dir = name
		if inRepo {
			*dir = filepath.Join(repoRoot(), "plugins", name)
		}
	}
	if _, err := os.Stat(*dir); err == nil {
		return fmt.Errorf("plugin new: %s already exists", *dir)
	}
	data := struct{ Name, RuleID string }{name, "R9000"}
	files := map[string]string{
		"main.go.tmpl":      "main.go",
		"main_test.go.tmpl": "main_test.go",
		"rule.yaml.tmpl":    "rules/R9000.yaml",
		"vector.yaml.tmpl":  "vectors/" + name + ".yaml",
	}
	for tmpl, out := range files {
		t, err := template.ParseFS(scaffold, "scaffold/"+tmpl)
		if err != nil {
			return err
		}
		path := filepath.Join(*dir, out)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		if err := t.Execute(f, data); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
	}
	absDir, _ := filepath.Abs(*dir)
	if !inRepo || !strings.HasPrefix(absDir, repoRoot()) {
		mod := fmt.Sprintf("module example.com/%s\n\ngo 1.26\n\nrequire github.com/decnet/ttp v0.0.0\n", name)
		if *src != "" {
			abs, err := filepath.Abs(*src)
			if err != nil {
				return err
			}
			mod += fmt.Sprintf("\nreplace github.com/decnet/ttp => %s\n", abs)
			if sum, err := os.ReadFile(filepath.Join(abs, "go.sum")); err == nil {
				os.WriteFile(filepath.Join(*dir, "go.sum"), sum, 0o644)
			}
		}
		if err := os.WriteFile(filepath.Join(*dir, "go.mod"), []byte(mod), 0o644); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "created %s\n  test:   (cd %s && go test ./...)\n  build:  (cd %s && GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o %s.wasm .)\n  check:  ttp conform --rules %s/rules --vectors %s/vectors %s/%s.wasm\n",
		*dir, *dir, *dir, name, *dir, *dir, *dir, name)
	return nil
}

// repoRoot is the root of the ttp repository containing the working directory, or "".
func repoRoot() string {
	wd, err := os.Getwd()
	if err != nil {
		return ""
	}
	for d := wd; ; d = filepath.Dir(d) {
		if f, err := os.Open(filepath.Join(d, "go.mod")); err == nil {
			sc := bufio.NewScanner(f)
			sc.Scan()
			f.Close()
			if strings.TrimSpace(sc.Text()) == "module github.com/decnet/ttp" {
				return d
			}
			return ""
		}
		if filepath.Dir(d) == d {
			return ""
		}
	}
}
