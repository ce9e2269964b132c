package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/decnet/ttp/rules"
	"github.com/decnet/ttp/rules/sigma"
)

const importSigmaUsage = `usage: ttp rules import-sigma DIR -o OUTDIR [--first-id 5000] [--source-url URI] [-v]

  Convert the Sigma rules under DIR (logsource linux / process_creation) into ttp rule files
  OUTDIR/R<NNNN>.yaml (match.kind: sigma, the detection kept as written) and write
  OUTDIR/ATTRIBUTION.md, the notice the Detection Rule License 1.1 asks for. Every rule that
  cannot be converted is listed with its file, line, field and reason; the counts, grouped by
  reason, end the output. A rule already converted into OUTDIR keeps its id. Exit 1 when none
  converts.
`

// runRulesImportSigma is `ttp rules import-sigma`: see importSigmaUsage.
func runRulesImportSigma(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("rules import-sigma", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("o", "", "output directory for the converted rules (required)")
	first := fs.Int("first-id", 5000, "number of the first new rule id (R5000)")
	verbose := fs.Bool("v", false, "also list every converted rule")
	srcURL := fs.String("source-url", "", "base URI of DIR's rules, linked from each converted rule (DRL attribution)")
	fs.Usage = func() { fmt.Fprint(stderr, importSigmaUsage) }
	// flags may follow DIR: parse, take the operand, parse the rest
	var operands []string
	for {
		if err := fs.Parse(args); err != nil {
			return exitError(2)
		}
		if fs.NArg() == 0 {
			break
		}
		operands = append(operands, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(operands) != 1 || *out == "" || *first < 0 || *first > 9999 {
		fmt.Fprint(stderr, importSigmaUsage)
		return exitError(2)
	}
	rep, err := sigma.Import(operands[0], *out, sigma.Options{
		FirstID:   *first,
		SourceURL: *srcURL,
		Validate: func(name string, data []byte) error {
			_, err := rules.Parse(name, data)
			return err
		},
	})
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitError(1)
	}
	if *verbose {
		for _, c := range rep.Converted {
			fmt.Fprintf(stdout, "ok    %s -> %s.yaml  %s\n", c.File, c.ID, c.Title)
		}
	}
	for _, e := range rep.Skipped {
		fmt.Fprintf(stdout, "skip  %v  [%s]\n", e, e.Reason)
	}
	for _, st := range rep.Stale {
		fmt.Fprintf(stdout, "stale %s: not converted by this run; delete it or keep it\n", st)
	}
	fmt.Fprint(stdout, rep.Summary())
	if len(rep.Converted) == 0 {
		return exitError(1)
	}
	return nil
}
