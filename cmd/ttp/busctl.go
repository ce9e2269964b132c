package main

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/decnet/ttp/bus"
	"github.com/decnet/ttp/rules"
	"github.com/decnet/ttp/rules/kvstore"
)

// defaultNATS is where the clients look for the daemon: TTP_NATS, else the embedded
// server's address.
func defaultNATS() string {
	if u := os.Getenv("TTP_NATS"); u != "" {
		return u
	}
	return "nats://" + DefaultNATSAddr
}

// connect connects a client subcommand (what, for errors) to url with opts (auth.options());
// auth explains a refusal. A client does not reconnect: it runs one job and an error says why.
// Any new subcommand that talks to NATS registers a clientNATS and connects through it, so it
// takes the same security flags.
func connect(what, url string, auth natsAuth, opts ...nats.Option) (*nats.Conn, jetstream.JetStream, error) {
	// No asynchronous error printing: nats.go's default writes each permissions violation to
	// stderr as it comes, and permissionHint puts the last one into the command's error instead.
	quiet := nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {})
	nc, err := nats.Connect(url, append([]nats.Option{nats.Name("ttp " + what), nats.Timeout(5 * time.Second), quiet}, opts...)...)
	if err != nil {
		return nil, nil, auth.connectError(what, url, err)
	}
	// A PubAck that never comes (the server refused the subject: a permissions violation) fails
	// the publish after this long instead of leaving `ttp publish` waiting for ever.
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(30*time.Second))
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return nc, js, nil
}

func runPublish(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("publish", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c clientNATS
	c.register(fs, "NATS URL")
	prefix := fs.String("prefix", bus.DefaultPrefix, "input subject prefix")
	var replicas int
	registerReplicas(fs, &replicas)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: ttp publish [--nats URL] [--nats-user USER ...] FILE.jsonl\n\nflags:")
		fs.PrintDefaults()
	}
	if done, err := parseFlags(fs, args); done {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return exitError(2)
	}
	if err := c.resolve(fs); err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	if err := resolveReplicas("publish", fs, &replicas); err != nil {
		return err
	}
	nc, js, err := c.connect("publish")
	if err != nil {
		return err
	}
	defer nc.Close()
	if err := bus.Streams(ctx, js, bus.Config{Prefix: *prefix, Replicas: replicas}); err != nil {
		return permissionHint(nc, fmt.Errorf("publish: %w", err))
	}
	start := time.Now()
	n, bad, err := publishFile(ctx, js, fs.Arg(0), *prefix, stderr)
	if err != nil {
		return permissionHint(nc, err)
	}
	fmt.Fprintf(stdout, "published %d events in %v (%d lines without source_kind)\n", n, time.Since(start).Round(time.Millisecond), bad)
	return nil
}

// resolveReplicas reads --replicas from TTP_REPLICAS when the command line did not set it
// into *n and checks it; call it after fs.Parse.
func resolveReplicas(cmd string, fs *flag.FlagSet, n *int) error {
	if err := applyEnv(fs, "replicas"); err != nil {
		return fmt.Errorf("%s: %w", cmd, err)
	}
	return checkReplicas(cmd, *n)
}

func runRulesState(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("rules state", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c clientNATS
	c.register(fs, "NATS URL of the daemon")
	disable := fs.Bool("disable", false, "disable the rule")
	enable := fs.Bool("enable", false, "enable the rule (clears any state)")
	clip := fs.Float64("clip", 0, "clip the rule's confidences at this value (above 0, at most 1)")
	ttl := fs.Duration("ttl", 0, "revert to enabled after this long (e.g. 1h)")
	reason := fs.String("reason", "", "why, for the log and the bus")
	usage := func() {
		fmt.Fprintln(stderr, "usage: ttp rules state RULE [--disable|--enable|--clip 0.4] [--ttl 1h] [--reason TEXT] [--nats URL] [--nats-user USER ...]\n\nWithout an action it prints the rule's state.")
		fmt.Fprintln(stderr)
		fs.PrintDefaults()
	}
	fs.Usage = func() {
		usage()
		fmt.Fprintln(stderr, "\nflags:")
		fs.PrintDefaults()
	}
	if isHelp(args) {
		fs.Usage()
		return nil
	}
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		usage()
		return exitError(2)
	}
	id := args[0]
	if done, err := parseFlags(fs, args[1:]); done {
		return err
	}
	if fs.NArg() != 0 {
		usage()
		return exitError(2)
	}
	req, err := stateRequest(id, fs, *disable, *enable, *clip, *ttl, *reason, time.Now())
	if err != nil {
		return fmt.Errorf("rules state: %w", err)
	}
	if err := c.resolve(fs); err != nil {
		return fmt.Errorf("rules state: %w", err)
	}
	nc, _, err := c.connect("rules state")
	if err != nil {
		return err
	}
	defer nc.Close()
	b, _ := json.Marshal(req)
	msg, err := nc.RequestWithContext(ctxTimeout(ctx, 5*time.Second), bus.SubjectControl, b)
	if err != nil {
		return permissionHint(nc, fmt.Errorf("rules state: %w", err))
	}
	var rep bus.StateReply
	if err := json.Unmarshal(msg.Data, &rep); err != nil {
		return fmt.Errorf("rules state: bad reply: %w", err)
	}
	if rep.Error != "" {
		return fmt.Errorf("rules state: %s", rep.Error)
	}
	out, _ := json.Marshal(rep.State)
	fmt.Fprintf(stdout, "%s %s\n", rep.Rule, out)
	return nil
}

// stateRequest checks the flags of `ttp rules state` and makes the request. Every flag it
// refuses is named as the user wrote it: a negative --ttl would make a permanent state, and
// --ttl or --reason without an action would do nothing and exit 0. --clip 0 is refused by
// decision: it would keep storing the rule's tags at confidence 0; --disable says that.
func stateRequest(id string, fs *flag.FlagSet, disable, enable bool, clip float64, ttl time.Duration, reason string, now time.Time) (bus.StateRequest, error) {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	req := bus.StateRequest{Rule: id}
	actions := 0
	for _, b := range []bool{disable, enable, set["clip"]} {
		if b {
			actions++
		}
	}
	switch {
	case actions > 1:
		return req, fmt.Errorf("choose one of --disable, --enable, --clip")
	case actions == 0:
		for _, f := range []string{"ttl", "reason"} {
			if set[f] {
				return req, fmt.Errorf("--%s needs an action (--disable or --clip); without one the state is only printed", f)
			}
		}
		req.Get = true
		return req, nil
	case disable:
		req.State = rules.State{Mode: rules.Disabled}
	case enable:
		req.State = rules.State{Mode: rules.Enabled}
	default:
		if clip != clip || clip <= 0 || clip > 1 {
			return req, fmt.Errorf("--clip %v: want a confidence above 0 and at most 1 (to silence the rule, --disable)", clip)
		}
		req.State = rules.State{Mode: rules.Clipped, ConfidenceMax: clip}
	}
	if set["ttl"] {
		if ttl <= 0 {
			return req, fmt.Errorf("--ttl %v: want a positive duration (leave it out for a state that does not expire)", ttl)
		}
		if enable {
			return req, fmt.Errorf("--ttl with --enable: enabled is the state a rule reverts to; nothing to expire")
		}
		req.State.ExpiresAt = now.Add(ttl).UTC()
	}
	req.State.Reason = reason
	if err := req.State.Validate(); err != nil {
		return req, err
	}
	return req, nil
}

func ctxTimeout(ctx context.Context, d time.Duration) context.Context {
	c, cancel := context.WithTimeout(ctx, d)
	go func() { <-c.Done(); cancel() }()
	return c
}

// runRulesPush keeps the KV bucket in step with a directory: every rule file is put (when its
// content differs), every key without a file is deleted; --watch goes on doing it on change.
func runRulesPush(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("rules push", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c clientNATS
	c.register(fs, "NATS URL")
	watch := fs.Bool("watch", false, "keep pushing changes until interrupted")
	var replicas int
	registerReplicas(fs, &replicas)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: ttp rules push [--nats URL] [--nats-user USER ...] [--watch] DIR\n\nflags:")
		fs.PrintDefaults()
	}
	if done, err := parseFlags(fs, args); done {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return exitError(2)
	}
	if err := c.resolve(fs); err != nil {
		return fmt.Errorf("rules push: %w", err)
	}
	if err := resolveReplicas("rules push", fs, &replicas); err != nil {
		return err
	}
	dir := fs.Arg(0)
	nc, js, err := c.connect("rules push")
	if err != nil {
		return err
	}
	defer nc.Close()
	defs, _, err := kvstore.Buckets(ctx, js, kvstore.Config{Replicas: replicas})
	if err != nil {
		return permissionHint(nc, fmt.Errorf("rules push: %w", err))
	}
	sync := func() error { return pushRules(ctx, defs, dir, stdout, stderr) }
	if err := sync(); err != nil {
		return permissionHint(nc, err)
	}
	if !*watch {
		return nil
	}
	return watchRules(ctx, dir, stderr, func() {
		if err := sync(); err != nil {
			fmt.Fprintln(stderr, permissionHint(nc, err))
		}
	})
}

// pushRules makes the definitions bucket hold the rules of dir that lint: it puts those
// whose bytes differ from the bucket's and deletes the keys that have no file in dir. A rule
// that does not lint keeps its bucket version.
func pushRules(ctx context.Context, defs jetstream.KeyValue, dir string, stdout, stderr io.Writer) error {
	loaded, lerr := rules.LoadDir(dir)
	if lerr != nil {
		printErrors(stderr, lerr)
		if len(loaded) == 0 {
			return lerr
		}
		fmt.Fprintln(stderr, "ttp rules push: pushing the rules that lint; the others keep their bucket version")
	}
	want := map[string][]byte{}
	for _, r := range loaded {
		data, err := os.ReadFile(filepath.Join(dir, r.ID+".yaml"))
		if err != nil {
			return err
		}
		want[r.ID] = data
	}
	put, del := 0, 0
	for id, data := range want {
		cur, err := defs.Get(ctx, id)
		if err == nil && sha256.Sum256(cur.Value()) == sha256.Sum256(data) {
			continue
		}
		if _, err := defs.Put(ctx, id, data); err != nil {
			return fmt.Errorf("rules push: %s: %w", id, err)
		}
		put++
	}
	keys, err := defs.Keys(ctx)
	if err != nil && !errors.Is(err, jetstream.ErrNoKeysFound) {
		return err
	}
	for _, k := range keys {
		if _, ok := want[k]; !ok && !fileExists(filepath.Join(dir, k+".yaml")) {
			if err := defs.Delete(ctx, k); err != nil {
				return err
			}
			del++
		}
	}
	fmt.Fprintf(stdout, "%s: %d rules, %d put, %d deleted\n", time.Now().Format(time.TimeOnly), len(want), put, del)
	return nil
}

// watchRules calls sync 50 ms after the last change to a rule file of dir (or a watch
// error), until ctx ends.
func watchRules(ctx context.Context, dir string, stderr io.Writer, sync func()) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	defer w.Close()
	if err := w.Add(dir); err != nil {
		return err
	}
	var timer <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev := <-w.Events:
			if rules.ValidFileName(filepath.Base(ev.Name)) {
				timer = time.After(50 * time.Millisecond)
			}
		case err := <-w.Errors:
			fmt.Fprintln(stderr, "watch:", err)
			timer = time.After(50 * time.Millisecond)
		case <-timer:
			sync()
		}
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
