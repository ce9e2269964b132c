// Command ttp tags the activity caught by a deception network with MITRE ATT&CK techniques.
//
//	ttp serve                 the daemon on NATS (embedded by default)
//	ttp publish FILE          replay JSONL events onto the bus
//	ttp tag [FILE...|-]       tag events (JSONL, or a Cowrie log with --input cowrie) offline
//	ttp navigator --tags F    an ATT&CK Navigator layer of the tags
//	ttp report --tags F       a self-contained HTML report of the tags
//	ttp rules lint DIR        check rule files strictly
//	ttp rules test DIR        score rules against their precision corpora
//	ttp conform PLUGIN.wasm   check a plugin against the ABI contract
//	ttp version               print the version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is set by the linker (-X main.version=...) for releases.
var version = "dev"

// exitError carries an exit status out of a subcommand without printing anything more.
type exitError int

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

const usage = `usage: ttp <command> [arguments]

commands:
  serve               the daemon: consume from NATS, tag, store, publish (embedded NATS by default)
  publish FILE        replay a JSONL file of events onto the bus
  tag [FILE...|-]     tag events (stdin when FILE is - or absent; --input cowrie for Cowrie logs); JSONL tags out
  navigator           an ATT&CK Navigator layer of tags (--tags FILE or --store URL, --since, --score, -o)
  report              a self-contained HTML report of tags (--tags FILE or --store URL, --since, -o)
  rules lint DIR      check every rule file of DIR strictly
  rules test DIR      score the rules of DIR against their precision corpora
  rules state RULE    show or set a rule's state in the running daemon (--disable, --clip 0.4, --ttl)
  rules push DIR      keep the shared KV bucket in step with a directory (--watch)
  conform PLUGIN      check a plugin module against the ABI contract (--vectors, --junit)
  plugin new NAME     scaffold a buildable lifter (manifest, one rule, one vector, sdktest)
  version             print the version

Run 'ttp <command> -h' for a command's flags.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	var code exitError
	switch {
	case err == nil:
	case errors.As(err, &code):
		os.Exit(int(code))
	default:
		fmt.Fprintln(os.Stderr, "ttp:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitError(2)
	}
	switch args[0] {
	case "tag":
		return runTag(ctx, args[1:], stdin, stdout, stderr)
	case "navigator":
		return runNavigator(ctx, args[1:], stdin, stdout, stderr)
	case "report":
		return runReport(ctx, args[1:], stdin, stdout, stderr)
	case "rules":
		return runRules(ctx, args[1:], stdout, stderr)
	case "conform":
		return runConform(ctx, args[1:], stdout, stderr)
	case "serve":
		return runServe(ctx, args[1:], stdout, stderr)
	case "publish":
		return runPublish(ctx, args[1:], stdout, stderr)
	case "plugin":
		return runPlugin(ctx, args[1:], stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, "ttp", version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprintf(stderr, "ttp: unknown command %q\n\n%s", args[0], usage)
	return exitError(2)
}

// parseFlags parses a subcommand's flags. -h or --help prints the usage (fs.Usage) and ends
// the command with status 0, as users and scripts expect of a help request; any other flag
// error has been printed by the flag package and is a usage error, status 2. done is true
// when the command must return err now.
func parseFlags(fs *flag.FlagSet, args []string) (done bool, err error) {
	switch err := fs.Parse(args); {
	case err == nil:
		return false, nil
	case errors.Is(err, flag.ErrHelp):
		return true, nil
	default:
		return true, exitError(2)
	}
}

// isHelp reports whether args ask a command group (rules, plugin) for its usage.
func isHelp(args []string) bool {
	return len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help" || args[0] == "help")
}
