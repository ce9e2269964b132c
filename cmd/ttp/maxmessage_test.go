package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/decnet/ttp/bus"
	"github.com/decnet/ttp/internal/natstest"
)

// TestMaxMessageFlag: --max-message is checked at start-up whichever source sets it (flag,
// TTP_MAX_MESSAGE, the config file), with an error that names the flag, before anything
// starts; the bounds are 1 KiB and 64 MiB, both included.
func TestMaxMessageFlag(t *testing.T) {
	for _, tc := range []struct {
		n  int
		ok bool
	}{
		{-1, false}, {0, false}, {1023, false}, {1024, true}, {defaultMaxMessage, true},
		{64 << 20, true}, {64<<20 + 1, false}, {1 << 30, false},
	} {
		if err := checkMaxMessage(tc.n); (err == nil) != tc.ok || (err != nil && !strings.Contains(err.Error(), "--max-message")) {
			t.Errorf("checkMaxMessage(%d) = %v, want ok %v", tc.n, err, tc.ok)
		}
	}

	dir := t.TempDir()
	for _, tc := range []struct {
		name  string
		env   map[string]string
		file  string // config file contents, "" for none
		args  []string
		value string // in the error
	}{
		{"flag too small", nil, "", []string{"--max-message", "1000"}, "1000"},
		{"flag too large", nil, "", []string{"--max-message", strconv.Itoa(64<<20 + 1)}, strconv.Itoa(64<<20 + 1)},
		{"flag zero", nil, "", []string{"--max-message", "0"}, " 0:"},
		{"environment", map[string]string{"TTP_MAX_MESSAGE": "512"}, "", nil, "512"},
		{"config file", nil, "max-message: 100000000\n", nil, "100000000"},
		{"flag over a good environment", map[string]string{"TTP_MAX_MESSAGE": "4096"}, "", []string{"--max-message", "10"}, " 10:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, k := range []string{"TTP_MAX_MESSAGE", "TTP_CONFIG"} {
				t.Setenv(k, "")
				os.Unsetenv(k)
			}
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			args := tc.args
			if tc.file != "" {
				file := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")+".yaml")
				if err := os.WriteFile(file, []byte(tc.file), 0o644); err != nil {
					t.Fatal(err)
				}
				args = append([]string{"--config", file}, args...)
			}
			// The data directory is created by serve: it must not exist afterwards.
			data := filepath.Join(dir, "data-"+strings.ReplaceAll(tc.name, " ", "-"))
			args = append([]string{"--data", data}, args...)
			err := runServe(context.Background(), args, io.Discard, io.Discard)
			var code exitError
			if err == nil || errors.As(err, &code) || !strings.Contains(err.Error(), "--max-message") || !strings.Contains(err.Error(), tc.value) {
				t.Fatalf("runServe %v: %v, want an error naming --max-message and %q", args, err, tc.value)
			}
			if _, err := os.Stat(data); !os.IsNotExist(err) {
				t.Errorf("serve started before the check: %s exists", data)
			}
		})
	}
}

// TestServeMaxMessage: the daemon's worker applies --max-message: an event over it is
// dead-lettered with the limit in the reason, one under it is tagged.
func TestServeMaxMessage(t *testing.T) {
	dir := t.TempDir()
	srv := natstest.Start(t)
	nc, js := srv.Connect(t)
	dead := make(chan *nats.Msg, 4)
	tagged := make(chan *nats.Msg, 4)
	for subject, ch := range map[string]chan *nats.Msg{bus.SubjectDeadLetter: dead, bus.SubjectTagged: tagged} {
		sub, err := nc.ChanSubscribe(subject, ch)
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Unsubscribe()
	}
	f := testServeFlags(dir, srv.ClientURL(), "../../rules/ttp")
	f.maxMessage = 2048
	daemon := startInProcess(t, f)
	daemon.waitStreams(t, js)
	ctx := context.Background()
	// 3000 bytes: under bus.Config's 256 KiB default, over --max-message.
	big := `{"source_kind":"command","source_id":"big","payload":{"command_text":"uname -a ` + strings.Repeat("a", 3000) + `"}}`
	small := `{"source_kind":"command","source_id":"small","payload":{"command_text":"uname -a"}}`
	for _, ev := range []string{big, small} {
		if _, err := js.Publish(ctx, bus.SubjectFor(bus.DefaultPrefix, "command"), []byte(ev)); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case m := <-dead:
		var dl bus.DeadLetter
		if err := json.Unmarshal(m.Data, &dl); err != nil {
			t.Fatal(err)
		}
		if dl.Size != len(big) || !strings.Contains(dl.Reason, "over the 2048-byte limit") {
			t.Errorf("dead letter of %d bytes: %q", dl.Size, dl.Reason)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the event over --max-message was not dead-lettered")
	}
	select {
	case m := <-tagged:
		var env bus.Envelope
		json.Unmarshal(m.Data, &env)
		if env.SourceID != "small" {
			t.Errorf("tagged %q, want small", env.SourceID)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the event under --max-message was not tagged")
	}
	daemon.stop(t)
}

// TestEmbeddedMaxPayload: the embedded server's max_payload is the input stream's max message
// size, so a core NATS publish over it is refused by the publisher's own client (nats.go reads
// max_payload from the server) rather than accepted by the server and dropped by the stream.
func TestEmbeddedMaxPayload(t *testing.T) {
	limit := bus.InputMaxMsgSize(512 << 10) // --max-message 512 KiB: 2 MiB
	ns, err := embeddedNATS("127.0.0.1:-1", t.TempDir(), false, limit)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Shutdown()
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if got := nc.MaxPayload(); got != int64(limit) {
		t.Fatalf("max_payload %d, want the stream's %d", got, limit)
	}
	if err := nc.Publish("decnet.attacker.command", make([]byte, limit+1)); !errors.Is(err, nats.ErrMaxPayload) {
		t.Errorf("core publish over the limit: %v, want nats.ErrMaxPayload", err)
	}
	if err := nc.Publish("decnet.attacker.command", make([]byte, limit-1024)); err != nil {
		t.Errorf("core publish under the limit: %v", err)
	}
}
