package main

// The roles of bus/SUBJECTS.md#permissions against a nats-server started in process from
// bus/testdata/permissions.conf, the very file the documentation points at: each role does
// its job with the real subcommands (serve, publish, rules state, rules push), and the producer
// is refused everything beyond publishing events.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/decnet/ttp/bus"
	"github.com/decnet/ttp/rules/kvstore"
	"github.com/decnet/ttp/store"
)

// permissionsConf is the example configuration of bus/SUBJECTS.md#permissions.
const permissionsConf = "../../bus/testdata/permissions.conf"

// syncBuffer is a bytes.Buffer safe for a writer and a reader on two goroutines (a daemon's
// log read by its test).
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// rolePasswords are the test's passwords of the configuration's users, handed to it through
// the environment variables it reads them from.
var rolePasswords = map[string]string{"producer": "producer-pw", "worker": "worker-pw", "operator": "operator-pw", "reader": "reader-pw"}

// startPermissionsServer runs a JetStream server configured by permissionsConf on a random
// loopback port, plus an unrestricted user "admin" (not in the file) for the test's own setup
// and checks.
func startPermissionsServer(t *testing.T) *server.Server {
	t.Helper()
	for role, pw := range rolePasswords {
		t.Setenv("NATS_"+strings.ToUpper(role)+"_PASSWORD", pw)
	}
	opts, err := server.ProcessConfigFile(permissionsConf)
	if err != nil {
		t.Fatalf("%s: %v", permissionsConf, err)
	}
	if len(opts.Users) != len(rolePasswords) {
		t.Fatalf("%s: %d users, want %d", permissionsConf, len(opts.Users), len(rolePasswords))
	}
	opts.Host, opts.Port, opts.StoreDir, opts.NoLog, opts.NoSigs = "127.0.0.1", -1, t.TempDir(), true, true
	opts.Users = append(opts.Users, &server.User{Username: "admin", Password: "admin-pw"})
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	t.Cleanup(s.Shutdown)
	return s
}

// roleConn is one role's connection, made with natsAuth's own options, and the asynchronous
// errors the server sent it (permissions violations).
type roleConn struct {
	nc   *nats.Conn
	js   jetstream.JetStream
	errs chan error
}

func connectRole(t *testing.T, url, user, password string) *roleConn {
	t.Helper()
	a := natsAuth{user: user, password: password, inbox: "_INBOX_" + user}
	opts, err := a.options()
	if err != nil {
		t.Fatal(err)
	}
	rc := &roleConn{errs: make(chan error, 64)}
	opts = append(opts, nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		select {
		case rc.errs <- err:
		default:
		}
	}))
	if rc.nc, err = nats.Connect(url, opts...); err != nil {
		t.Fatalf("%s: %v", user, err)
	}
	t.Cleanup(rc.nc.Close)
	if rc.js, err = jetstream.New(rc.nc); err != nil {
		t.Fatal(err)
	}
	return rc
}

// refused runs do and waits for the server's permissions violation naming want (`Publish to
// "ttp.tagged"`, `Subscription to "ttp.tagged"`).
func (rc *roleConn) refused(t *testing.T, want string, do func() error) {
	t.Helper()
	for len(rc.errs) > 0 {
		<-rc.errs
	}
	do() // its own error, if any, is a timeout at most: the server's answer is the async error
	rc.nc.Flush()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case err := <-rc.errs:
			if errors.Is(err, nats.ErrPermissionViolation) && strings.Contains(err.Error(), want) {
				return
			}
		case <-timeout:
			t.Errorf("no permissions violation for %s", want)
			return
		}
	}
}

// runTTP runs the command line in process and returns its stdout and stderr.
func runTTP(ctx context.Context, args ...string) (string, string, error) {
	var out, errw syncBuffer
	err := run(ctx, args, strings.NewReader(""), &out, &errw)
	return out.String(), errw.String(), err
}

// TestRolePermissions: with bus/testdata/permissions.conf, a producer publishes an event
// (`ttp publish`), a worker (`ttp serve --nats URL --rules kv --nats-user worker`, its password from
// TTP_NATS_PASSWORD) tags and stores it without one permissions violation in its log, a reader
// reads the envelope from the TTP stream and the rule.fired message on core NATS, an operator
// pushes the rules the worker reads from KV (`ttp rules push`) and changes a rule state (`ttp
// rules state`); and the producer
// cannot change rule state, publish tags, read the KV or reach the control subject.
//
// It runs twice: as a swarm starts (the operator pushes the rules, creating the buckets, and the
// worker reads them from KV) and with the worker first on a fresh server, creating every stream
// and bucket itself and reading its rules from a directory.
func TestRolePermissions(t *testing.T) {
	for _, tc := range []struct {
		name    string
		rulesKV bool
	}{
		{"rules in KV pushed first", true},
		{"worker first with a rules directory", false},
	} {
		t.Run(tc.name, func(t *testing.T) { testRoles(t, tc.rulesKV) })
	}
}

func testRoles(t *testing.T, rulesKV bool) {
	s := startPermissionsServer(t)
	url := s.ClientURL()
	dir := t.TempDir()
	ctx := context.Background()
	admin := connectRole(t, url, "admin", "admin-pw")

	// The operator pushes the rule definitions (creating the buckets) for the swarm's workers.
	opArgs := []string{"--nats", url, "--nats-user", "operator", "--nats-password", rolePasswords["operator"], "--nats-inbox", "_INBOX_operator"}
	rulesDir := unameRulesDir(t, dir)
	rulesFlag := rulesDir
	var out, errOut string
	var err error
	if rulesKV {
		out, errOut, err = runTTP(ctx, append([]string{"rules", "push"}, append(opArgs, rulesDir)...)...)
		if err != nil || !strings.Contains(out, "1 rules, 1 put") {
			t.Fatalf("operator: ttp rules push: %v\n%s%s", err, out, errOut)
		}
		rulesFlag = "kv"
	}

	// The worker, its rules from the bucket and its password from the environment.
	t.Setenv("TTP_NATS_PASSWORD", rolePasswords["worker"])
	var wlog syncBuffer
	wctx, wstop := context.WithCancel(ctx)
	defer wstop()
	done := make(chan error, 1)
	data := filepath.Join(dir, "data")
	go func() {
		done <- run(wctx, []string{"serve", "--nats", url, "--nats-user", "worker", "--nats-inbox", "_INBOX_worker",
			"--data", data, "--rules", rulesFlag, "--plugins", filepath.Join(dir, "none"), "--metrics", "",
			"--name", "w1", "--batch", "16", "--inflight", "64"}, nil, io.Discard, &wlog)
	}()
	for start := time.Now(); ; time.Sleep(20 * time.Millisecond) {
		if _, err := admin.js.Consumer(ctx, bus.DefaultInStream, bus.DefaultDurable); err == nil {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("serve exited: %v\n%s", err, wlog.String())
		default:
		}
		if time.Since(start) > 60*time.Second {
			t.Fatalf("the worker did not start:\n%s", wlog.String())
		}
	}

	// The reader, before anything is tagged: a JetStream consumer of ttp.tagged, and a core
	// subscription to ttp.rule.fired.>.
	reader := connectRole(t, url, "reader", rolePasswords["reader"])
	tagged, err := reader.js.CreateConsumer(ctx, bus.DefaultOutStream, jetstream.ConsumerConfig{
		Name: "reader-test", FilterSubject: bus.SubjectTagged, AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatalf("reader: consumer of ttp.tagged: %v", err)
	}
	firedStream, err := reader.js.CreateConsumer(ctx, bus.DefaultOutStream, jetstream.ConsumerConfig{
		Name: "reader-fired", FilterSubject: bus.SubjectFiredPrefix + ">", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatalf("reader: consumer of ttp.rule.fired.>: %v", err)
	}
	fired, err := reader.nc.SubscribeSync(bus.SubjectFiredPrefix + ">")
	if err != nil {
		t.Fatal(err)
	}
	taggedCore, err := reader.nc.SubscribeSync(bus.SubjectTagged)
	if err != nil {
		t.Fatal(err)
	}
	reader.nc.Flush()

	// The producer publishes an event and a bad line (dead-lettered) with `ttp publish`.
	dead, err := admin.nc.SubscribeSync(bus.SubjectDeadLetter)
	if err != nil {
		t.Fatal(err)
	}
	admin.nc.Flush()
	events := filepath.Join(dir, "events.jsonl")
	os.WriteFile(events, []byte(`{"source_kind":"command","source_id":"perm-1","payload":{"command_text":"uname -a"}}`+"\n{not json\n"), 0o644)
	out, errOut, err = runTTP(ctx, "publish", "--nats", url, "--nats-user", "producer", "--nats-password", rolePasswords["producer"],
		"--nats-inbox", "_INBOX_producer", events)
	if err != nil || !strings.Contains(out, "published 2 events") {
		t.Fatalf("producer: ttp publish: %v\n%s%s", err, out, errOut)
	}

	// The reader reads the envelope and the technique.
	msg, err := tagged.Next(jetstream.FetchMaxWait(30 * time.Second))
	if err != nil {
		t.Fatalf("reader: ttp.tagged: %v\nworker log:\n%s", err, wlog.String())
	}
	var env bus.Envelope
	if err := json.Unmarshal(msg.Data(), &env); err != nil || env.SourceID != "perm-1" || len(env.Tags) != 1 {
		t.Errorf("reader: envelope %s: %v", msg.Data(), err)
	}
	if err := msg.DoubleAck(ctxTimeout(ctx, 10*time.Second)); err != nil {
		t.Errorf("reader: ack: %v", err)
	}
	if m, err := firedStream.Next(jetstream.FetchMaxWait(30 * time.Second)); err != nil || m.Subject() != bus.SubjectFiredPrefix+"T1082" {
		t.Errorf("reader: ttp.rule.fired.> from the stream: %v", err)
	}
	if m, err := fired.NextMsg(30 * time.Second); err != nil || m.Subject != bus.SubjectFiredPrefix+"T1082" {
		t.Errorf("reader: ttp.rule.fired.>: %v %v", m, err)
	}
	if m, err := taggedCore.NextMsg(30 * time.Second); err != nil || !strings.Contains(string(m.Data), `"perm-1"`) {
		t.Errorf("reader: ttp.tagged on core NATS: %v", err)
	}
	if _, err := dead.NextMsg(30 * time.Second); err != nil {
		t.Errorf("the worker did not dead-letter the bad line: %v", err)
	}
	// And acked both.
	for start := time.Now(); ; time.Sleep(50 * time.Millisecond) {
		info, err := admin.js.Consumer(ctx, bus.DefaultInStream, bus.DefaultDurable)
		if err != nil {
			t.Fatal(err)
		}
		ci := info.CachedInfo()
		if ci.NumAckPending == 0 && ci.NumPending == 0 && ci.AckFloor.Stream == 2 {
			break
		}
		if time.Since(start) > 30*time.Second {
			t.Fatalf("the worker did not ack its messages: %d pending, %d unacked, ack floor %d", ci.NumPending, ci.NumAckPending, ci.AckFloor.Stream)
		}
	}

	// The operator disables the rule through the control subject; the worker writes the state
	// and announces it on ttp.rule.state.
	announced, err := admin.nc.SubscribeSync(bus.SubjectRuleState)
	if err != nil {
		t.Fatal(err)
	}
	admin.nc.Flush()
	out, errOut, err = runTTP(ctx, append([]string{"rules", "state", "R0001", "--disable", "--reason", "perm test"}, opArgs...)...)
	if err != nil || !strings.Contains(out, `"disabled"`) {
		t.Fatalf("operator: ttp rules state --disable: %v\n%s%s", err, out, errOut)
	}
	if m, err := announced.NextMsg(30 * time.Second); err != nil || !strings.Contains(string(m.Data), `"disabled"`) {
		t.Errorf("ttp.rule.state after the operator's change: %v %v", m, err)
	}
	states, err := admin.js.KeyValue(ctx, kvstore.DefaultStateBucket)
	if err != nil {
		t.Fatal(err)
	}
	if e, err := states.Get(ctx, "R0001"); err != nil || !strings.Contains(string(e.Value()), "disabled") {
		t.Errorf("state bucket after the operator's change: %v", err)
	}
	out, errOut, err = runTTP(ctx, append([]string{"rules", "state", "R0001"}, opArgs...)...)
	if err != nil || !strings.Contains(out, `"disabled"`) {
		t.Errorf("operator: ttp rules state R0001: %v\n%s%s", err, out, errOut)
	}
	// And pushes a changed rule, which the worker loads and announces.
	reloaded, err := admin.nc.SubscribeSync(bus.SubjectReloaded)
	if err != nil {
		t.Fatal(err)
	}
	admin.nc.Flush()
	edited := strings.Replace(unameRule, "name: uname", "name: uname edited", 1)
	os.WriteFile(filepath.Join(rulesDir, "R0001.yaml"), []byte(edited), 0o644)
	if !rulesKV {
		// The worker reads the directory, which the edit reaches first; the push is then the
		// bucket's first content, made by the operator on buckets the worker created.
		if m, err := reloaded.NextMsg(30 * time.Second); err != nil || !strings.Contains(string(m.Data), `"updated"`) {
			t.Errorf("ttp.rule.reloaded after the edit: %v %v", m, err)
		}
	}
	out, errOut, err = runTTP(ctx, append([]string{"rules", "push"}, append(opArgs, rulesDir)...)...)
	if err != nil || !strings.Contains(out, "1 rules, 1 put") {
		t.Errorf("operator: ttp rules push: %v\n%s%s", err, out, errOut)
	}
	if rulesKV {
		if m, err := reloaded.NextMsg(30 * time.Second); err != nil || !strings.Contains(string(m.Data), `"updated"`) {
			t.Errorf("ttp.rule.reloaded after the push: %v %v", m, err)
		}
	}
	// Pushing the same directory again reads the bucket back and puts nothing.
	out, errOut, err = runTTP(ctx, append([]string{"rules", "push"}, append(opArgs, rulesDir)...)...)
	if err != nil || !strings.Contains(out, "1 rules, 0 put") {
		t.Errorf("operator: ttp rules push of an unchanged directory: %v\n%s%s", err, out, errOut)
	}

	// What the producer may not do.
	producer := connectRole(t, url, "producer", rolePasswords["producer"])
	enable, _ := json.Marshal(bus.StateRequest{Rule: "R0001"})
	for _, tc := range []struct {
		name, want string
		do         func() error
	}{
		{"put a rule state into the KV", `Publish to "$KV.ttp-rule-state.R0001"`,
			func() error { return producer.nc.Publish("$KV.ttp-rule-state.R0001", []byte(`{"state":"enabled"}`)) }},
		{"put a rule definition into the KV", `Publish to "$KV.ttp-rules.R0001"`,
			func() error { return producer.nc.Publish("$KV.ttp-rules.R0001", []byte("id: R0001")) }},
		{"request a rule state change", `Publish to "ttp.control.rule.state"`,
			func() error { return producer.nc.PublishRequest(bus.SubjectControl, producer.nc.NewInbox(), enable) }},
		{"answer control requests in a worker's place", `Subscription to "ttp.control.rule.state"`,
			func() error { _, err := producer.nc.QueueSubscribeSync(bus.SubjectControl, "ttp-control"); return err }},
		{"publish a tag", `Publish to "ttp.tagged"`,
			func() error { return producer.nc.Publish(bus.SubjectTagged, []byte(`{}`)) }},
		{"publish a fired technique", `Publish to "ttp.rule.fired.T1082"`,
			func() error { return producer.nc.Publish(bus.SubjectFiredPrefix+"T1082", []byte(`{}`)) }},
		{"read tags", `Subscription to "ttp.tagged"`,
			func() error { _, err := producer.nc.SubscribeSync(bus.SubjectTagged); return err }},
		{"read the state bucket", `Publish to "$JS.API.DIRECT.GET.KV_ttp-rule-state.$KV.ttp-rule-state.R0001"`,
			func() error {
				return producer.nc.PublishRequest("$JS.API.DIRECT.GET.KV_ttp-rule-state.$KV.ttp-rule-state.R0001", producer.nc.NewInbox(), nil)
			}},
		{"watch the rules bucket", `Subscription to "$KV.ttp-rules.>"`,
			func() error { _, err := producer.nc.SubscribeSync("$KV.ttp-rules.>"); return err }},
		{"consume the rules bucket's stream", `Publish to "$JS.API.CONSUMER.CREATE.KV_ttp-rules"`,
			func() error {
				return producer.nc.PublishRequest("$JS.API.CONSUMER.CREATE.KV_ttp-rules", producer.nc.NewInbox(), []byte(`{}`))
			}},
		{"read other users' replies", `Subscription to "_INBOX.>"`,
			func() error { _, err := producer.nc.SubscribeSync("_INBOX.>"); return err }},
		{"read the worker's replies", `Subscription to "_INBOX_worker.>"`,
			func() error { _, err := producer.nc.SubscribeSync("_INBOX_worker.>"); return err }},
	} {
		t.Run("producer cannot "+tc.name, func(t *testing.T) { producer.refused(t, tc.want, tc.do) })
	}
	if e, err := states.Get(ctx, "R0001"); err != nil || !strings.Contains(string(e.Value()), "disabled") {
		t.Errorf("the producer changed the rule state: %v", err)
	}
	// `ttp rules state` run with the producer's credentials fails and says why.
	_, _, err = runTTP(ctx, "rules", "state", "R0001", "--enable", "--nats", url, "--nats-user", "producer",
		"--nats-password", rolePasswords["producer"], "--nats-inbox", "_INBOX_producer")
	if err == nil || !strings.Contains(err.Error(), "permissions violation") || !strings.Contains(err.Error(), "SUBJECTS.md#permissions") {
		t.Errorf("ttp rules state as the producer: %v, want a permissions violation", err)
	}
	// The reader may not read the dead letters or rule states from the TTP stream.
	reader.refused(t, `Publish to "$JS.API.CONSUMER.CREATE.TTP.sneak.ttp.rule.state"`, func() error {
		_, err := reader.js.CreateConsumer(ctxTimeout(ctx, 2*time.Second), bus.DefaultOutStream, jetstream.ConsumerConfig{Name: "sneak", FilterSubject: bus.SubjectRuleState})
		return err
	})

	wstop()
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}
	logText := wlog.String()
	if strings.Contains(strings.ToLower(logText), "permissions violation") || strings.Contains(logText, "level=ERROR") {
		t.Errorf("the worker's permissions lack something:\n%s", logText)
	}
	st, err := store.Open(ctx, filepath.Join(data, "ttp.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if n, err := st.Count(ctx); err != nil || n != 1 {
		t.Errorf("tags stored by the worker: %d, %v; want 1", n, err)
	}
}

// TestPermissionsDoc: the permission blocks and users bus/SUBJECTS.md#permissions shows are
// those of bus/testdata/permissions.conf, character for character, so what the documentation
// tells an operator is what TestRolePermissions tested.
func TestPermissionsDoc(t *testing.T) {
	conf, err := os.ReadFile(permissionsConf)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile("../../bus/SUBJECTS.md")
	if err != nil {
		t.Fatal(err)
	}
	section := string(doc)
	if i := strings.Index(section, "\n## Permissions\n"); i < 0 {
		t.Fatal("bus/SUBJECTS.md has no Permissions section")
	} else {
		section = section[i:]
	}
	blocks := regexp.MustCompile(`(?ms)^(\w+_PERMISSIONS = \{|authorization \{)\n.*?^\}\n`).FindAllString(string(conf), -1)
	if len(blocks) != len(rolePasswords)+1 {
		t.Fatalf("%s: %d blocks, want one per role and the users", permissionsConf, len(blocks))
	}
	for _, b := range blocks {
		if !strings.Contains(section, "```\n"+b+"```\n") {
			t.Errorf("bus/SUBJECTS.md#permissions does not show this block of %s as it is:\n%s", permissionsConf, b)
		}
	}
}
