package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/decnet/ttp/bus"
	"github.com/decnet/ttp/internal/natstest"
)

// TestEveryKindFires is the wiring check that cannot go silently dead: the bundled sample,
// which holds events of every kind, goes through the real serve path on a bus, and every
// loaded plugin and the engine must produce tags.
func TestEveryKindFires(t *testing.T) {
	plugins, _ := filepath.Glob("../../plugins/*.wasm")
	if len(plugins) == 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("no plugins/*.wasm: run make plugins (make test does)")
		}
		t.Skip("no plugins/*.wasm built (make plugins)")
	}
	srv := natstest.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f := serveFlags{data: t.TempDir(), natsURL: srv.ClientURL(), rulesSrc: "../../rules/ttp", plugins: "../../plugins",
		sync: "normal", prefix: bus.DefaultPrefix, batch: 64, inflight: 256, drain: 5 * time.Second, deadline: 500 * time.Millisecond}
	done := make(chan error, 1)
	go func() { done <- serve(ctx, f, io.Discard, slog.New(slog.NewTextHandler(io.Discard, nil))) }()

	nc, js := srv.Connect(t)
	var mu sync.Mutex
	producers := map[string]int{}
	kinds := map[string]bool{}
	sub, err := nc.Subscribe(bus.SubjectTagged, func(m *nats.Msg) {
		var env bus.Envelope
		json.Unmarshal(m.Data, &env)
		mu.Lock()
		defer mu.Unlock()
		kinds[env.SourceKind] = true
		for _, tg := range env.Tags {
			producers[strings.SplitN(tg.Producer, "@", 2)[0]]++
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	// Wait for the daemon's streams, then replay the sample.
	for start := time.Now(); ; time.Sleep(20 * time.Millisecond) {
		if _, err := js.Stream(ctx, bus.DefaultInStream); err == nil {
			break
		}
		if time.Since(start) > 30*time.Second {
			t.Fatal("daemon did not create its streams")
		}
	}
	time.Sleep(500 * time.Millisecond) // plugins load before the worker starts; be generous
	if _, _, err := publishFile(ctx, js, "../../testdata/events/sample.jsonl", bus.DefaultPrefix, io.Discard); err != nil {
		t.Fatal(err)
	}
	want := []string{"engine"}
	for _, p := range plugins {
		want = append(want, strings.TrimSuffix(filepath.Base(p), ".wasm"))
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		mu.Lock()
		var missing []string
		for _, w := range want {
			if producers[w] == 0 {
				missing = append(missing, w)
			}
		}
		got := make([]string, 0, len(producers))
		for p, n := range producers {
			got = append(got, p+"="+itoa(n))
		}
		mu.Unlock()
		if len(missing) == 0 {
			sort.Strings(got)
			t.Logf("tags by producer: %s", strings.Join(got, " "))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no tags from %v (got %v)", missing, got)
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}
