package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/decnet/ttp/abi"
	"github.com/decnet/ttp/dispatch"
	"github.com/decnet/ttp/ingest"
	"github.com/decnet/ttp/ingest/cowrie"
	"github.com/decnet/ttp/rules"
)

// maxLine is the longest event line ttp tag reads; longer lines are reported and skipped.
const maxLine = 1 << 20

func runTag(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("tag", flag.ContinueOnError)
	fs.SetOutput(stderr)
	rulesDir := fs.String("rules", defaultRulesDir, "directory of rule files (when the default is missing: the rules built into the binary)")
	stateFile := fs.String("state", "", "YAML file of rule states (rule id -> {state, confidence_max, expires_at})")
	format := fs.String("format", "jsonl", "output format: jsonl or table")
	input := fs.String("input", "jsonl", "input format: jsonl (ttp events, abi/EVENTS.md) or cowrie (Cowrie's JSON log, cowrie.json)")
	window := fs.Duration("window", cowrie.DefaultWindow, "cowrie: span of log time the login counts of auth events cover")
	idle := fs.Duration("idle-timeout", cowrie.DefaultIdleTimeout, "cowrie: a session with no line for this long (log time) is closed")
	pluginsDir := fs.String("plugins", "plugins", "directory of plugin modules (*.wasm); a missing directory means none")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: ttp tag [flags] [FILE...|-]\n\nTags events and writes JSONL tags, then one summary line {\"ttp_ingest\": {...}} (README).\nThe input is ttp event JSONL (--input jsonl) or a Cowrie JSON log (--input cowrie);\nfiles may be gzip-compressed, and rotated files are read oldest first\n(cowrie.json.2026-12-05 before cowrie.json). A bad line is reported on stderr with its\nfile and line number; the run goes on and exits 1 at the end.\n\nflags:")
		fs.PrintDefaults()
	}
	if done, err := parseFlags(fs, args); done {
		return err
	}
	if *format != "jsonl" && *format != "table" {
		return fmt.Errorf("tag: --format %q: want jsonl or table", *format)
	}
	if *input != "jsonl" && *input != "cowrie" {
		return fmt.Errorf("tag: --input %q: want jsonl or cowrie", *input)
	}
	files := fs.Args()
	if len(files) == 0 {
		files = []string{"-"}
	}
	files = ingest.SortRotated(files)
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	var states map[string]rules.State
	if *stateFile != "" {
		var err error
		if states, err = rules.LoadStateFile(*stateFile); err != nil {
			return fmt.Errorf("tag: %w", err)
		}
	}
	o, failed, err := loadOffline(ctx, *rulesDir, *pluginsDir, true, states, log, stderr)
	if err != nil {
		return fmt.Errorf("tag: %w", err)
	}
	defer o.Close()

	out := bufio.NewWriter(stdout)
	defer out.Flush()
	t := &tagRun{ctx: ctx, o: o, d: o.d, format: *format, out: out, enc: json.NewEncoder(out), seen: map[string]map[string]bool{}}
	t.enc.SetEscapeHTML(false)
	var dec *cowrie.Decoder
	if *input == "cowrie" {
		dec = cowrie.New(cowrie.Config{Window: *window, IdleTimeout: *idle})
	}
	counts, err := t.readInputs(files, stdin, *input, dec, func(err error) { fmt.Fprintln(stderr, err) })
	if err != nil {
		return err // "tag: ..." already
	}
	if *format == "table" {
		printTable(out, t.table, int(counts.Events), int(counts.Malformed))
	} else if err := t.enc.Encode(ingest.SummaryLine{Ingest: &counts}); err != nil {
		return fmt.Errorf("tag: %w", err)
	}
	fmt.Fprintln(stderr, countsLine(&counts, t.tags))
	if counts.Malformed > 0 {
		fmt.Fprintf(stderr, "ttp tag: %d bad line(s) of %d\n", counts.Malformed, counts.Events+counts.Malformed)
		failed = true
	}
	if failed || t.refused {
		out.Flush()
		return exitError(1)
	}
	return nil
}

// readInputs tags the events of every file of files in order ("-" is stdin), read by dec
// (a Cowrie log) or as event JSONL when dec is nil, reporting each bad line, and returns the
// ingest counts. Its errors say "tag: ".
func (t *tagRun) readInputs(files []string, stdin io.Reader, input string, dec *cowrie.Decoder, report func(error)) (ingest.Counts, error) {
	var counts ingest.Counts
	if dec == nil {
		counts = ingest.Counts{Input: "jsonl"}
	}
	for _, file := range files {
		name := file
		if file == "-" {
			name = "stdin"
		}
		rc, err := ingest.Open(file, stdin)
		if err != nil {
			return counts, fmt.Errorf("tag: %w", err)
		}
		br := bufio.NewReaderSize(rc, 64<<10)
		if err := checkInput(br, name, input); err != nil {
			rc.Close()
			return counts, err
		}
		if dec != nil {
			err = dec.ReadFrom(name, br, t.tagAll, report)
		} else {
			err = t.readJSONL(name, br, &counts, report)
		}
		rc.Close()
		if err != nil {
			return counts, fmt.Errorf("tag: %w", err)
		}
		counts.Files = append(counts.Files, file)
	}
	if dec != nil {
		if err := t.tagAll(dec.Flush(nil)); err != nil {
			return counts, fmt.Errorf("tag: %w", err)
		}
		files := counts.Files
		counts = dec.Counts()
		counts.Files = files
	}
	return counts, nil
}

// tagRun is one `ttp tag`: it tags events and writes their tags.
type tagRun struct {
	ctx    context.Context
	o      *offline
	d      *dispatch.Dispatcher
	format string
	out    *bufio.Writer
	enc    *json.Encoder
	buf    []abi.Tag
	table  []abi.Tag
	tags   int
	// refused is set when a plugin loaded for a kind that arrived was refused (reported on
	// stderr then): the run exits 1 at the end, as for a plugin refused at start.
	refused bool
	// seen holds, per open Cowrie session, the tag_uuids its command events made: the
	// session event fans the same commands out again (abi.Expand) and makes the same tags,
	// which the store would keep once; here they are written once.
	seen map[string]map[string]bool
}

func (t *tagRun) tagAll(evs []abi.Event) error {
	for i := range evs {
		if err := t.tag(evs[i]); err != nil {
			return err
		}
	}
	return nil
}

func (t *tagRun) tag(ev abi.Event) error {
	if t.o.ensure(t.ctx, ev.SourceKind) {
		t.refused = true
	}
	var err error
	t.buf, err = t.d.Tag(t.ctx, ev, t.buf[:0])
	if err != nil {
		return err
	}
	key := ev.DeckyID + "\x00" + ev.SessionID
	var seen map[string]bool
	switch {
	case ev.SessionID == "":
	case ev.SourceKind == abi.KindCommand:
		if seen = t.seen[key]; seen == nil {
			seen = map[string]bool{}
			t.seen[key] = seen
		}
	case ev.SourceKind == abi.KindSession:
		defer delete(t.seen, key)
	}
	for i := range t.buf {
		tg := &t.buf[i]
		if ev.SourceKind == abi.KindSession && t.seen[key][tg.TagUUID] {
			continue
		}
		if seen != nil {
			seen[tg.TagUUID] = true
		}
		t.tags++
		if t.format == "table" {
			t.table = append(t.table, *tg)
			continue
		}
		if err := t.enc.Encode(tg); err != nil {
			return err
		}
	}
	return nil
}

// readJSONL tags a file of ttp events, one per line.
func (t *tagRun) readJSONL(name string, r *bufio.Reader, c *ingest.Counts, report func(error)) error {
	sensors := map[string]bool{}
	for _, s := range c.Sensors {
		sensors[s] = true
	}
	defer func() {
		c.Sensors = c.Sensors[:0]
		for s := range sensors {
			c.Sensors = append(c.Sensors, s)
		}
		sort.Strings(c.Sensors)
	}()
	for lineNo := 1; ; lineNo++ {
		line, err := readLine(r)
		if errors.Is(err, io.EOF) && len(line) == 0 {
			return nil
		}
		c.Lines++
		if errors.Is(err, errLineTooLong) {
			c.Malformed++
			report(fmt.Errorf("%s:%d: line longer than %d bytes, skipped", name, lineNo, maxLine))
			continue
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("%s:%d: %w", name, lineNo, err)
		}
		if len(strings.TrimSpace(string(line))) == 0 {
			c.Skipped++
			continue
		}
		ev, derr := abi.DecodeEvent(line)
		if derr != nil {
			c.Malformed++
			report(fmt.Errorf("%s:%d: %v", name, lineNo, derr))
			continue
		}
		c.Events++
		if !ev.ObservedAt.IsZero() {
			if c.First.IsZero() || ev.ObservedAt.Before(c.First) {
				c.First = ev.ObservedAt.UTC()
			}
			if ev.ObservedAt.After(c.Last) {
				c.Last = ev.ObservedAt.UTC()
			}
		}
		if ev.DeckyID != "" && len(sensors) < 1000 {
			sensors[ev.DeckyID] = true
		}
		if err := t.tag(ev); err != nil {
			return err
		}
	}
}

// checkInput looks at the first line of a file and refuses to go on when it is plainly the
// other input format, naming the --input that reads it: without this, every line of a Cowrie
// log read as events is its own error.
func checkInput(r *bufio.Reader, name, input string) error {
	head, _ := r.Peek(64 << 10)
	if i := bytes.IndexByte(head, '\n'); i >= 0 {
		head = head[:i]
	}
	var keys map[string]json.RawMessage
	if json.Unmarshal(head, &keys) != nil {
		return nil // not one whole JSON object: the readers report it
	}
	_, cowrieLine := keys["eventid"]
	_, eventLine := keys["source_kind"]
	switch {
	case input == "jsonl" && cowrieLine && !eventLine:
		return fmt.Errorf("tag: %s: the first line is a Cowrie log line (it has \"eventid\", not \"source_kind\"): use --input cowrie", name)
	case input == "cowrie" && eventLine && !cowrieLine:
		return fmt.Errorf("tag: %s: the first line is a ttp event (it has \"source_kind\", not \"eventid\"): use --input jsonl (the default)", name)
	}
	return nil
}

// countsLine is the one line of counts `ttp tag` prints on stderr at the end.
func countsLine(c *ingest.Counts, tags int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "ttp tag: %s: %d lines, %d events, %d skipped, %d malformed, %d tags", c.Input, c.Lines, c.Events, c.Skipped, c.Malformed, tags)
	if len(c.Unknown) > 0 {
		ids := make([]string, 0, len(c.Unknown))
		for id := range c.Unknown {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		b.WriteString("; unknown event ids:")
		for _, id := range ids {
			fmt.Fprintf(&b, " %s %d", id, c.Unknown[id])
		}
	}
	return b.String()
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
