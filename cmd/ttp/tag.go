package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/decnet/ttp/abi"
	"github.com/decnet/ttp/rules"
)

// maxLine is the longest event line ttp tag reads; longer lines are reported and skipped.
const maxLine = 1 << 20

func runTag(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("tag", flag.ContinueOnError)
	fs.SetOutput(stderr)
	rulesDir := fs.String("rules", "rules/ttp", "directory of rule files")
	stateFile := fs.String("state", "", "YAML file of rule states (rule id -> {state, confidence_max, expires_at})")
	format := fs.String("format", "jsonl", "output format: jsonl or table")
	pluginsDir := fs.String("plugins", "plugins", "directory of plugin modules (*.wasm); a missing directory means none")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: ttp tag [flags] [FILE|-]\n\nTags JSONL events (one per line) and writes JSONL tags. A bad line is reported on\nstderr with its line number; the run goes on and exits 1 at the end.\n\nflags:")
		fs.PrintDefaults()
	}
	if done, err := parseFlags(fs, args); done {
		return err
	}
	if *format != "jsonl" && *format != "table" {
		return fmt.Errorf("tag: --format %q: want jsonl or table", *format)
	}
	in := stdin
	name := "stdin"
	if fs.NArg() > 1 {
		return fmt.Errorf("tag: one input file at most, got %d", fs.NArg())
	}
	if fs.NArg() == 1 && fs.Arg(0) != "-" {
		f, err := os.Open(fs.Arg(0))
		if err != nil {
			return fmt.Errorf("tag: %w", err)
		}
		defer f.Close()
		in, name = f, fs.Arg(0)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	var states map[string]rules.State
	if *stateFile != "" {
		var err error
		if states, err = rules.LoadStateFile(*stateFile); err != nil {
			return fmt.Errorf("tag: %w", err)
		}
	}
	o, failed, err := loadOffline(ctx, *rulesDir, *pluginsDir, states, log, stderr)
	if err != nil {
		return fmt.Errorf("tag: %w", err)
	}
	defer o.Close()
	d := o.d

	out := bufio.NewWriter(stdout)
	defer out.Flush()
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)
	var table []abi.Tag
	var tags []abi.Tag
	events, bad := 0, 0
	r := bufio.NewReaderSize(in, 64<<10)
	for lineNo := 1; ; lineNo++ {
		line, err := readLine(r)
		if errors.Is(err, io.EOF) && len(line) == 0 {
			break
		}
		if errors.Is(err, errLineTooLong) {
			bad++
			fmt.Fprintf(stderr, "%s:%d: line longer than %d bytes, skipped\n", name, lineNo, maxLine)
			continue
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("tag: %s:%d: %w", name, lineNo, err)
		}
		if len(strings.TrimSpace(string(line))) == 0 {
			continue
		}
		ev, derr := abi.DecodeEvent(line)
		if derr != nil {
			bad++
			fmt.Fprintf(stderr, "%s:%d: %v\n", name, lineNo, derr)
			continue
		}
		events++
		tags, err = d.Tag(ctx, ev, tags[:0])
		if err != nil {
			return fmt.Errorf("tag: %w", err)
		}
		for i := range tags {
			if *format == "table" {
				table = append(table, tags[i])
				continue
			}
			if err := enc.Encode(&tags[i]); err != nil {
				return fmt.Errorf("tag: %w", err)
			}
		}
	}
	if *format == "table" {
		printTable(out, table, events, bad)
	}
	if bad > 0 {
		fmt.Fprintf(stderr, "ttp tag: %d bad line(s) of %d\n", bad, events+bad)
		failed = true
	}
	if failed {
		out.Flush()
		return exitError(1)
	}
	return nil
}

var errLineTooLong = errors.New("line too long")

// readLine returns the next line without its newline. A line over maxLine is consumed and
// reported as errLineTooLong, so one bad line never stops the run.
func readLine(r *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		if len(line)+len(chunk) > maxLine+1 {
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = r.ReadSlice('\n')
			}
			return nil, errLineTooLong
		}
		line = append(line, chunk...)
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		return []byte(strings.TrimRight(string(line), "\r\n")), err
	}
}

func printTable(w io.Writer, tags []abi.Tag, events, bad int) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TECHNIQUE\tTACTIC\tRULE\tCONFIDENCE\tSOURCE\tPRODUCER")
	perRule := map[string]int{}
	perTactic := map[string]int{}
	for _, t := range tags {
		tech := t.TechniqueID
		if t.SubTechniqueID != "" {
			tech = t.SubTechniqueID
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.2f\t%s:%s\t%s\n", tech, t.Tactic, t.RuleID, t.Confidence, t.SourceKind, t.SourceID, t.Producer)
		perRule[t.RuleID]++
		perTactic[t.Tactic]++
	}
	tw.Flush()
	fmt.Fprintf(w, "\n%d events (%d bad lines), %d tags from %d rules\n", events, bad, len(tags), len(perRule))
	tactics := rules.SortedIDs(perTactic)
	sort.SliceStable(tactics, func(i, j int) bool { return perTactic[tactics[i]] > perTactic[tactics[j]] })
	for _, t := range tactics {
		fmt.Fprintf(w, "  %-22s %d\n", t, perTactic[t])
	}
}
