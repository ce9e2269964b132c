package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/decnet/ttp/bus"
)

// unameRule is the one rule of the rules directories the in-process daemon tests write.
const unameRule = `id: R0001
name: uname
applies_to: [command]
match: {kind: pattern, pattern: '\buname\b'}
emits:
  - {technique_id: T1082, tactic: discovery, confidence: 0.8}
precision: H
evidence_fields: [command_text]
`

// unameRulesDir writes unameRule into a new rules directory under dir and returns it.
func unameRulesDir(t *testing.T, dir string) string {
	t.Helper()
	rulesDir := filepath.Join(dir, "rules")
	if err := os.MkdirAll(rulesDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rulesDir, "R0001.yaml"), []byte(unameRule), 0o644); err != nil {
		t.Fatal(err)
	}
	return rulesDir
}

// testServeFlags are the flags of a small daemon on the NATS server at natsURL, with its data
// under dir, the rules of rulesDir and no plugins; a test sets what it is about on top.
func testServeFlags(dir, natsURL, rulesDir string) serveFlags {
	return serveFlags{data: filepath.Join(dir, "data"), natsURL: natsURL, rulesSrc: rulesDir, plugins: filepath.Join(dir, "none"),
		sync: "normal", prefix: bus.DefaultPrefix, batch: 16, inflight: 64, maxMessage: defaultMaxMessage,
		drain: 5 * time.Second, deadline: 500 * time.Millisecond}
}

// inProcess is serve running in the test's process, for tests that look inside it.
type inProcess struct {
	cancel context.CancelFunc
	done   chan error // serve's result
}

// startInProcess runs serve with f; the test's cleanup stops it if the test does not.
func startInProcess(t *testing.T, f serveFlags) *inProcess {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	d := &inProcess{cancel: cancel, done: make(chan error, 1)}
	go func() { d.done <- serve(ctx, f, io.Discard, slog.New(slog.NewTextHandler(io.Discard, nil))) }()
	t.Cleanup(cancel)
	return d
}

// waitStreams waits until the daemon has created its streams, so that what the test
// publishes is stored.
func (d *inProcess) waitStreams(t *testing.T, js jetstream.JetStream) {
	t.Helper()
	for start := time.Now(); ; time.Sleep(20 * time.Millisecond) {
		if _, err := js.Stream(context.Background(), bus.DefaultInStream); err == nil {
			return
		}
		if time.Since(start) > 30*time.Second {
			t.Fatal("daemon did not create its streams")
		}
	}
}

// stop shuts the daemon down as SIGTERM does and fails the test unless it exits cleanly.
func (d *inProcess) stop(t *testing.T) {
	t.Helper()
	d.cancel()
	select {
	case err := <-d.done:
		if err != nil {
			t.Fatalf("serve: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not exit")
	}
}
