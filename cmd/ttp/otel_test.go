package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/decnet/ttp/bus"
	"github.com/decnet/ttp/internal/natstest"
	"github.com/decnet/ttp/rules"
)

func TestOTLPURL(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"127.0.0.1:4318", "http://127.0.0.1:4318/v1/traces"},
		{"collector:4318", "http://collector:4318/v1/traces"},
		{"http://collector:4318", "http://collector:4318/v1/traces"},
		{"https://collector.example/", "https://collector.example/v1/traces"},
		{"https://collector.example/otlp/v1/traces", "https://collector.example/otlp/v1/traces"},
		{"grpc://collector:4317", ""},
		{"http://", ""},
		{"http://[::1", ""},
	} {
		got, err := otlpURL(tt.in)
		if tt.want == "" {
			if err == nil {
				t.Errorf("otlpURL(%q) = %q, want an error", tt.in, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("otlpURL(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

// TestOTLPCollectorDown: with a collector that refuses connections, or accepts them and never
// answers, recording spans does not wait on it, and shutting down takes at most
// otlpShutdownTimeout.
func TestOTLPCollectorDown(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the shutdown timeout")
	}
	refused, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refusedAddr := refused.Addr().String()
	refused.Close() // nothing listens there any more
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c) // held open, never read nor answered
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	}()
	t.Run("collector", func(t *testing.T) { // returns when both cases have, before the defers run
		for name, addr := range map[string]string{"refused": refusedAddr, "silent": silent.Addr().String()} {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				tr, err := newTracing(context.Background(), addr, "w1", slog.New(slog.NewTextHandler(io.Discard, nil)))
				if err != nil {
					t.Fatal(err)
				}
				tracer := tr.provider().Tracer("test")
				start := time.Now()
				for i := 0; i < 10000; i++ { // more than the queue holds: the excess is dropped
					_, span := tracer.Start(context.Background(), "ttp.eval")
					span.End()
				}
				if d := time.Since(start); d > 2*time.Second {
					t.Errorf("10000 spans took %v with the collector %s", d, name)
				}
				start = time.Now()
				tr.shutdown()
				d := time.Since(start)
				if d > otlpShutdownTimeout+2*time.Second {
					t.Errorf("shutdown took %v, want at most %v", d, otlpShutdownTimeout)
				}
				t.Logf("collector %s: shutdown took %v", name, d.Round(time.Millisecond))
			})
		}
	})
}

// TestServeOTLP runs the daemon with --otlp pointed at a fake collector: the spans of a
// tagged event and of a rule state change arrive, at the latest when the daemon exits.
func TestServeOTLP(t *testing.T) {
	var mu sync.Mutex
	var got [][]byte
	paths := map[string]int{}
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, b)
		paths[r.URL.Path]++
		mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	defer collector.Close()

	dir := t.TempDir()
	srv := natstest.Start(t)
	f := testServeFlags(dir, srv.ClientURL(), unameRulesDir(t, dir))
	f.otlp = collector.URL
	daemon := startInProcess(t, f)
	ctx := context.Background()

	nc, js := srv.Connect(t)
	tagged := make(chan struct{}, 1)
	sub, err := nc.Subscribe(bus.SubjectTagged, func(*nats.Msg) {
		select {
		case tagged <- struct{}{}:
		default:
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	daemon.waitStreams(t, js)
	ev := `{"source_kind":"command","source_id":"c-otlp-1","observed_at":"2026-11-27T04:12:01Z","payload":{"command_text":"uname -a"}}`
	if _, err := js.Publish(ctx, bus.SubjectFor(bus.DefaultPrefix, "command"), []byte(ev)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-tagged:
	case <-time.After(30 * time.Second):
		t.Fatal("event not tagged")
	}
	req, _ := json.Marshal(bus.StateRequest{Rule: "R0001", State: rules.State{Mode: rules.Disabled, Reason: "otlp test"}})
	if m, err := nc.Request(bus.SubjectControl, req, 10*time.Second); err != nil || bytes.Contains(m.Data, []byte(`"error"`)) {
		t.Fatalf("state request: %v %s", err, m.Data)
	}
	// The follower records the span, then applies the state, which a get then reads.
	get, _ := json.Marshal(bus.StateRequest{Rule: "R0001", Get: true})
	for start := time.Now(); ; time.Sleep(20 * time.Millisecond) {
		var r bus.StateReply
		if m, err := nc.Request(bus.SubjectControl, get, 10*time.Second); err == nil && json.Unmarshal(m.Data, &r) == nil && r.State.Mode == rules.Disabled {
			break
		}
		if time.Since(start) > 30*time.Second {
			t.Fatal("state change not applied")
		}
	}
	daemon.stop(t)
	mu.Lock()
	defer mu.Unlock()
	all := bytes.Join(got, nil)
	// No --name: the resource still names the worker, as its heartbeats do.
	for _, want := range []string{"ttp.eval", "ttp.rule.fire", "ttp.rule.state", "c-otlp-1", "T1082", "disabled", "service.name",
		"service.instance.id", bus.DefaultWorkerName()} {
		if !bytes.Contains(all, []byte(want)) {
			t.Errorf("collector never got %q (%d requests, paths %v)", want, len(got), paths)
		}
	}
	if paths["/v1/traces"] == 0 {
		t.Errorf("paths %v, want /v1/traces", paths)
	}
}
