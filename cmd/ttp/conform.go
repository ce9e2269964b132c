package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/decnet/ttp/conform"
	"github.com/decnet/ttp/host"
	"github.com/decnet/ttp/wasm"
)

func runConform(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("conform", flag.ContinueOnError)
	fs.SetOutput(stderr)
	vectors := fs.String("vectors", "", "directory of golden vectors (*.yaml); default: testdata/vectors/<plugin name> when it exists")
	rulesDir := fs.String("rules", "rules/ttp", "rule definitions the plugin is configured with")
	junit := fs.String("junit", "", "also write the report as JUnit XML to this file")
	calls := fs.Int("calls", 10000, "calls of the memory-growth check")
	deadline := fs.Duration("deadline", wasm.DefaultDeadline, "the host's per-call deadline")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: ttp conform [flags] PLUGIN.wasm\n\nChecks a plugin against the ABI contract; exits 1 when a check fails.\n\nflags:")
		fs.PrintDefaults()
	}
	if done, err := parseFlags(fs, args); done {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return exitError(2)
	}
	c, err := host.NewCompiler(cacheDir())
	if err != nil {
		if c, err = host.NewCompiler(""); err != nil {
			return err
		}
	}
	defer c.Close(ctx)
	start := time.Now()
	rep, err := conform.Run(ctx, fs.Arg(0), conform.Options{RulesDir: *rulesDir, VectorsDir: *vectors, Calls: *calls, Deadline: *deadline, Compiler: c, DefaultVectors: "testdata/vectors"})
	if err != nil {
		return fmt.Errorf("conform: %w", err)
	}
	rep.WriteText(stdout)
	fmt.Fprintf(stdout, "(%v)\n", time.Since(start).Round(time.Millisecond))
	if *junit != "" {
		f, err := os.Create(*junit)
		if err != nil {
			return fmt.Errorf("conform: %w", err)
		}
		if err := rep.WriteJUnit(f); err != nil {
			f.Close()
			return fmt.Errorf("conform: %w", err)
		}
		if err := f.Close(); err != nil {
			return fmt.Errorf("conform: %w", err)
		}
	}
	if rep.Failed() > 0 {
		return exitError(1)
	}
	return nil
}
