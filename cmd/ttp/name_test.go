package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/decnet/ttp/bus"
	"github.com/decnet/ttp/internal/natstest"
)

// TestWorkerName: without --name the worker goes by bus.DefaultWorkerName, the name the bus
// gives heartbeats; --name wins.
func TestWorkerName(t *testing.T) {
	if got := workerName(""); got == "" || got != bus.DefaultWorkerName() {
		t.Errorf("workerName(\"\") = %q, want bus.DefaultWorkerName() = %q", got, bus.DefaultWorkerName())
	}
	if got := workerName("w1"); got != "w1" {
		t.Errorf("workerName(\"w1\") = %q", got)
	}
}

// TestServeWorkerName runs the daemon without --name: its heartbeats and its rule events (a
// rule changed, from the rule follower; a rule rejected, from the host) carry one and the same
// non-empty worker name.
func TestServeWorkerName(t *testing.T) {
	dir := t.TempDir()
	rulesDir := unameRulesDir(t, dir)
	srv := natstest.Start(t)
	nc, _ := srv.Connect(t)
	beats := make(chan *nats.Msg, 16)
	reloaded := make(chan *nats.Msg, 16)
	for subject, ch := range map[string]chan *nats.Msg{bus.SubjectHeartbeat: beats, bus.SubjectReloaded: reloaded} {
		sub, err := nc.ChanSubscribe(subject, ch)
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Unsubscribe()
	}
	nc.Flush()

	daemon := startInProcess(t, testServeFlags(dir, srv.ClientURL(), rulesDir))

	var hb bus.Heartbeat
	select {
	case m := <-beats: // the first one comes once the daemon is ready
		if err := json.Unmarshal(m.Data, &hb); err != nil {
			t.Fatal(err)
		}
	case err := <-daemon.done:
		t.Fatalf("serve: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("no heartbeat")
	}
	if hb.Worker == "" || hb.Worker != workerName("") {
		t.Fatalf("heartbeat worker %q, want %q", hb.Worker, workerName(""))
	}

	// A rule changed, and a rule that does not parse.
	if err := os.WriteFile(filepath.Join(rulesDir, "R0001.yaml"), []byte(strings.Replace(unameRule, "0.8", "0.7", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rulesDir, "R0099.yaml"), []byte("id: R0099\nname\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for deadline := time.After(30 * time.Second); !seen["updated"] || !seen["rule.rejected"]; {
		select {
		case m := <-reloaded:
			var msg struct{ Change, Event, Worker string }
			if err := json.Unmarshal(m.Data, &msg); err != nil {
				t.Fatal(err)
			}
			seen[msg.Change+msg.Event] = true
			if msg.Worker != hb.Worker {
				t.Errorf("%s: worker %q, heartbeats carry %q", m.Data, msg.Worker, hb.Worker)
			}
		case <-deadline:
			t.Fatalf("rule events seen: %v, want updated and rule.rejected", seen)
		}
	}
	daemon.stop(t)
}
