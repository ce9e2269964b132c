package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/decnet/ttp/navigator"
	"github.com/decnet/ttp/report"
	"github.com/decnet/ttp/rules"
	"github.com/decnet/ttp/tagsource"
)

// sourceFlags are the flags ttp navigator and ttp report share: where the tags come from and
// which of them to keep.
type sourceFlags struct {
	tags, store, since, rules, out string
	rulesSet                       bool
}

func (s *sourceFlags) register(fs *flag.FlagSet, outHelp string) {
	fs.StringVar(&s.tags, "tags", "", "`FILE` of JSONL tags as ttp tag writes them (- for stdin)")
	fs.StringVar(&s.store, "store", "", "tag store `URL` to read instead: a SQLite path or URL, or a postgres:// URL (as ttp serve --store)")
	fs.StringVar(&s.since, "since", "", "only events observed in the last `DURATION` (24h), or since an RFC 3339 time")
	fs.StringVar(&s.rules, "rules", defaultRulesDir, "`DIR` of rule files, for rule names (skipped when the default is missing)")
	fs.StringVar(&s.out, "o", "-", outHelp)
}

// read loads the tags the flags name, filtered by --since. When --since leaves none of a
// file's tags it says so on stderr, with the newest event time: `--since 24h` over last
// month's log is an easy mistake, and an empty report does not explain itself.
func (s *sourceFlags) read(ctx context.Context, stdin io.Reader, stderr io.Writer) (*tagsource.Set, error) {
	since, err := tagsource.ParseSince(s.since, time.Now())
	if err != nil {
		return nil, err
	}
	filter := func(set *tagsource.Set) *tagsource.Set {
		kept := set.Since(since)
		if len(kept.Tags) == 0 && len(set.Tags) > 0 {
			_, last := set.Span()
			fmt.Fprintf(stderr, "ttp: --since %s keeps none of the %d tags: the newest event is at %s\n", s.since, len(set.Tags), last.UTC().Format(time.RFC3339))
		}
		return kept
	}
	switch {
	case s.tags != "" && s.store != "":
		return nil, errors.New("--tags and --store: give one")
	case s.tags == "-":
		set, err := tagsource.ReadJSONL(stdin, "-")
		if err != nil {
			return nil, err
		}
		return filter(set), nil
	case s.tags != "":
		set, err := tagsource.ReadFile(s.tags)
		if err != nil {
			return nil, err
		}
		return filter(set), nil
	case s.store != "":
		return tagsource.ReadStore(ctx, s.store, since)
	}
	return nil, errors.New("no tags: give --tags FILE (from ttp tag) or --store URL (from ttp serve)")
}

// ruleNames reads the rule names for comments and tables. A missing default directory is
// normal (a report made away from a checkout: the built-in rules name them); a directory the
// user named must load.
func (s *sourceFlags) ruleNames(stderr io.Writer) (map[string]string, error) {
	rs, err := rules.LoadDir(s.rules)
	if _, serr := os.Stat(s.rules); serr != nil && !s.rulesSet {
		rs, err = rules.LoadBuiltin() // away from a checkout: the names this binary was built with
	}
	if err != nil {
		if !s.rulesSet {
			fmt.Fprintf(stderr, "ttp: rule names left out: %v\n", err)
			return nil, nil
		}
		return nil, err
	}
	names := make(map[string]string, len(rs))
	for _, r := range rs {
		names[r.ID] = r.Name
	}
	return names, nil
}

// writeOutput writes through a temporary file renamed into place, so that an interrupted run
// never leaves half a layer or report where the last good one was; "-" is stdout.
func writeOutput(path string, stdout io.Writer, write func(io.Writer) error) error {
	if path == "-" || path == "" {
		w := bufio.NewWriter(stdout)
		if err := write(w); err != nil {
			return err
		}
		return w.Flush()
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	w := bufio.NewWriter(f)
	if err := write(w); err != nil {
		f.Close()
		return err
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// parse parses a subcommand's flags: --help prints the usage and succeeds, a bad flag is
// exit status 2 (the flag package has printed why).
func parse(fs *flag.FlagSet, args []string) (help bool, err error) {
	switch err := fs.Parse(args); {
	case errors.Is(err, flag.ErrHelp):
		return true, nil
	case err != nil:
		return false, exitError(2)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "ttp %s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		return false, exitError(2)
	}
	return false, nil
}

func runNavigator(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("navigator", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var src sourceFlags
	src.register(fs, "output `FILE` for the layer (- for stdout)")
	score := fs.String("score", "count", "technique score: count (tags) or confidence (summed confidence)")
	name := fs.String("name", "", "layer name (default: ttp and the sensors)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: ttp navigator [--tags FILE | --store URL] [--since DURATION] [--score count|confidence] [-o layer.json]\n\n"+
			"Writes an ATT&CK Navigator layer (format "+navigator.LayerVersion+", Enterprise ATT&CK v"+navigator.AttackVersion+"): one entry per technique\n"+
			"and tactic tagged. Open it at https://mitre-attack.github.io/attack-navigator/ (Open Existing Layer).\n\nflags:")
		fs.PrintDefaults()
	}
	if help, err := parse(fs, args); help || err != nil {
		return err
	}
	fs.Visit(func(f *flag.Flag) { src.rulesSet = src.rulesSet || f.Name == "rules" })
	sc, err := navigator.ParseScore(*score)
	if err != nil {
		return fmt.Errorf("navigator: --%w", err)
	}
	set, err := src.read(ctx, stdin, stderr)
	if err != nil {
		return fmt.Errorf("navigator: %w", err)
	}
	names, err := src.ruleNames(stderr)
	if err != nil {
		return fmt.Errorf("navigator: --rules: %w", err)
	}
	layer := navigator.Build(set, navigator.Options{Score: sc, Name: *name, RuleNames: names})
	if err := navigator.Validate(layer); err != nil {
		return err // a bug, not the input: Build places only valid techniques
	}
	if err := writeOutput(src.out, stdout, func(w io.Writer) error { return navigator.Write(w, layer) }); err != nil {
		return fmt.Errorf("navigator: %w", err)
	}
	return nil
}

func runReport(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var src sourceFlags
	src.register(fs, "output `FILE` for the HTML report (- for stdout)")
	title := fs.String("title", "", "report title (default: ttp report)")
	sessions := fs.Int("sessions", 10, "how many of the busiest sessions to detail")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: ttp report [--tags FILE | --store URL] [--since DURATION] -o report.html\n\n"+
			"Writes one self-contained HTML file (no scripts, nothing fetched, prints well): the ATT&CK\n"+
			"matrix as a heatmap, a timeline, the top sessions with their commands, the rules that fired\n"+
			"and the input counts of the summary line ttp tag ends its output with.\n\nflags:")
		fs.PrintDefaults()
	}
	if help, err := parse(fs, args); help || err != nil {
		return err
	}
	fs.Visit(func(f *flag.Flag) { src.rulesSet = src.rulesSet || f.Name == "rules" })
	if *sessions < 1 {
		return fmt.Errorf("report: --sessions %d: want at least 1", *sessions)
	}
	set, err := src.read(ctx, stdin, stderr)
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	names, err := src.ruleNames(stderr)
	if err != nil {
		return fmt.Errorf("report: --rules: %w", err)
	}
	opts := report.Options{Title: *title, RuleNames: names, Sessions: *sessions, Version: version, Generated: time.Now()}
	if err := writeOutput(src.out, stdout, func(w io.Writer) error { return report.Write(w, set, opts) }); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	return nil
}
