package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/decnet/ttp/abi"
	"github.com/decnet/ttp/rules"
	"github.com/decnet/ttp/rules/corpus"
)

const rulesUsage = `usage: ttp rules <lint|test|state|push|import-sigma> [flags] ARG

  state RULE [--disable|--enable|--clip 0.4] [--ttl 1h] [--reason TEXT]
             show or set a rule's state in the running daemon (request/reply on the bus)
  push DIR [--watch]
             keep the shared KV bucket in step with DIR, deletions included

  lint DIR   check every rule file of DIR strictly (file, line and field for each problem)
  test DIR   score the rules of DIR against their precision corpora (--corpus, default
             testdata/corpus): precision and recall per rule, exit 1 when a rule falls below
             its band (H: precision >= 0.95, M: >= 0.80) or recall below 0.90
  import-sigma DIR -o OUTDIR
             convert Sigma linux process_creation rules into rule files (ttp rules
             import-sigma -h)
`

func runRules(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if isHelp(args) {
		fmt.Fprint(stdout, rulesUsage)
		return nil
	}
	if len(args) == 0 {
		fmt.Fprint(stderr, rulesUsage)
		return exitError(2)
	}
	switch args[0] {
	case "lint":
		return runRulesLint(args[1:], stdout, stderr)
	case "test":
		return runRulesTest(ctx, args[1:], stdout, stderr)
	case "state":
		return runRulesState(ctx, args[1:], stdout, stderr)
	case "push":
		return runRulesPush(ctx, args[1:], stdout, stderr)
	case "import-sigma":
		return runRulesImportSigma(args[1:], stdout, stderr) // sigma.go
	}
	fmt.Fprintf(stderr, "ttp rules: unknown subcommand %q\n\n%s", args[0], rulesUsage)
	return exitError(2)
}

func runRulesLint(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("rules lint", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, rulesUsage) }
	if done, err := parseFlags(fs, args); done {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return exitError(2)
	}
	loaded, err := rules.LoadDir(fs.Arg(0))
	if err != nil {
		n := printErrors(stderr, err)
		fmt.Fprintf(stdout, "%d rules OK, %d problem(s)\n", len(loaded), n)
		return exitError(1)
	}
	warnings := 0
	for _, r := range loaded {
		for _, w := range r.Warnings() {
			fmt.Fprintln(stdout, "warning:", w)
			warnings++
		}
	}
	fmt.Fprintf(stdout, "%d rules OK, %d warning(s)\n", len(loaded), warnings)
	return nil
}

// printErrors prints every error of a joined error tree on its own line and counts them.
func printErrors(w io.Writer, err error) int {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		n := 0
		for _, e := range j.Unwrap() {
			n += printErrors(w, e)
		}
		return n
	}
	fmt.Fprintln(w, err)
	return 1
}

func runRulesTest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("rules test", flag.ContinueOnError)
	fs.SetOutput(stderr)
	corpusDir := fs.String("corpus", "testdata/corpus", "directory of precision corpora (<id>.yaml)")
	verbose := fs.Bool("v", false, "list every misfire, not only those of failing rules")
	pluginsDir := fs.String("plugins", "plugins", "directory of plugin modules: lifter rules are scored through them, via the host")
	fs.Usage = func() {
		fmt.Fprint(stderr, rulesUsage)
		fmt.Fprintln(stderr, "\nflags of rules test:")
		fs.PrintDefaults()
	}
	if done, err := parseFlags(fs, args); done {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return exitError(2)
	}
	corpora, err := corpus.LoadDir(*corpusDir)
	if err != nil {
		printErrors(stderr, err)
		return exitError(1)
	}
	o, partial, err := loadOffline(ctx, fs.Arg(0), *pluginsDir, false, nil, discardLogger(), stderr)
	if err != nil {
		printErrors(stderr, err)
		return exitError(1)
	}
	defer o.Close()
	if partial {
		return exitError(1)
	}
	reportMissingPlugins(stderr, o.h.RulesWithoutPlugin(), *pluginsDir)
	loaded, d := o.rules, o.d
	var tags []abi.Tag
	eval := func(ctx context.Context, ev abi.Event) (map[string]bool, error) {
		var err error
		tags, err = d.Tag(ctx, ev, tags[:0])
		fired := map[string]bool{}
		for _, t := range tags {
			fired[t.RuleID] = true
		}
		return fired, err
	}
	scores, err := corpus.Run(ctx, loaded, corpora, eval)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RULE\tBAND\tPOS\tNEG\tTP\tFP\tFN\tPRECISION\tRECALL\tRESULT")
	failed := 0
	for _, s := range scores {
		result := "ok"
		if !s.Pass() {
			result = "FAIL"
			failed++
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%.3f\t%.3f\t%s\n", s.Rule, s.Band, s.Positives, s.Negatives, s.TP, s.FP, s.FN, s.Precision, s.Recall, result)
	}
	tw.Flush()
	byID := map[string]*rules.Rule{}
	for _, r := range loaded {
		byID[r.ID] = r
	}
	for _, s := range scores {
		if s.Pass() && !*verbose {
			continue
		}
		for _, f := range s.Failures {
			fmt.Fprintf(stdout, "%s: %s\n", s.Rule, f)
		}
		mis, err := corpus.Misfires(ctx, byID[s.Rule], corpora, eval)
		if err != nil {
			return err
		}
		for _, m := range mis {
			fmt.Fprintf(stdout, "%s:   %s\n", s.Rule, m)
		}
	}
	fmt.Fprintf(stdout, "%d rules, %d passed, %d failed\n", len(scores), len(scores)-failed, failed)
	if failed > 0 {
		return exitError(1)
	}
	return nil
}

// reportMissingPlugins says, before the scores, which lifter rules no loaded module claims,
// grouped by the module that would (a kind lifter:<name>_... belongs to plugins/<name>.wasm by
// the project's convention), and how to build it: on a checkout whose plugins are not built
// every lifter rule would otherwise score recall 0 with no word why.
func reportMissingPlugins(w io.Writer, orphans map[string][]string, dir string) {
	if len(orphans) == 0 {
		return
	}
	byModule := map[string][]string{}
	for kind, ids := range orphans {
		name, _, _ := strings.Cut(strings.TrimPrefix(kind, "lifter:"), "_")
		mod := filepath.Join(dir, name+".wasm")
		byModule[mod] = append(byModule[mod], ids...)
	}
	mods := make([]string, 0, len(byModule))
	for m := range byModule {
		mods = append(mods, m)
	}
	sort.Strings(mods)
	fmt.Fprintln(w, "ttp rules test: these rules have no loaded plugin and will score recall 0:")
	for _, m := range mods {
		ids := byModule[m]
		sort.Strings(ids)
		fmt.Fprintf(w, "  %s (missing or refused): %s\n", m, strings.Join(ids, " "))
	}
	fmt.Fprintln(w, "build the plugins with `make plugins` (or point --plugins at a directory of built modules)")
}
