package bus_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/decnet/ttp/abi"
	"github.com/decnet/ttp/bus"
	"github.com/decnet/ttp/dispatch"
	"github.com/decnet/ttp/rules"
)

// memStore is a TagStore in memory, enough for an example: the daemon's is package store.
type memStore struct {
	mu        sync.Mutex
	tags      map[string]abi.Tag
	published map[string]bool
}

func (s *memStore) Insert(_ context.Context, batch []bus.Upstream) ([][]abi.Tag, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([][]abi.Tag, len(batch))
	for i, u := range batch {
		for _, t := range u.Tags {
			if _, seen := s.tags[t.TagUUID]; !seen {
				s.tags[t.TagUUID] = t
				out[i] = append(out[i], t)
			}
		}
	}
	return out, nil
}

func (s *memStore) Unpublished(_ context.Context, kind, id string) ([]abi.Tag, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []abi.Tag
	for uuid, t := range s.tags {
		if !s.published[uuid] && t.SourceID == id {
			out = append(out, t)
		}
	}
	return out, nil
}

func (s *memStore) MarkPublished(_ context.Context, uuids []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, u := range uuids {
		s.published[u] = true
	}
	return nil
}

// A Worker consumes events from the input stream, tags them with its Dispatcher, stores the
// tags, publishes them on ttp.tagged (one envelope an event) and only then acknowledges the
// event.
func ExampleWorker() {
	dir, _ := os.MkdirTemp("", "ttp-example-")
	defer os.RemoveAll(dir)
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true})
	if err != nil {
		panic(err)
	}
	go srv.Start()
	defer srv.Shutdown()
	srv.ReadyForConnections(10 * time.Second)
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		panic(err)
	}
	defer nc.Close()
	cfg := bus.Config{}
	js, err := bus.NewJetStream(nc, cfg)
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := bus.Streams(ctx, js, cfg); err != nil {
		panic(err)
	}

	rule, err := rules.Parse("R0001.yaml", []byte(`id: R0001
name: system information discovery
applies_to: [command]
match: {kind: pattern, pattern: '\buname\b'}
emits:
  - {technique_id: T1082, tactic: discovery, confidence: 0.8}
precision: H
evidence_fields: [command_text]
`))
	if err != nil {
		panic(err)
	}
	snap, err := rules.NewSnapshot([]*rules.Rule{rule}, nil)
	if err != nil {
		panic(err)
	}
	d := dispatch.New(dispatch.Config{Snapshot: dispatch.NewSnapshot(snap)})
	st := &memStore{tags: map[string]abi.Tag{}, published: map[string]bool{}}
	cfg.Logger = slog.New(slog.DiscardHandler)
	w := bus.NewWorker(js, d, st, cfg)
	go w.Run(ctx)

	tagged, err := js.CreateOrUpdateConsumer(ctx, bus.DefaultOutStream, jetstream.ConsumerConfig{FilterSubject: bus.SubjectTagged})
	if err != nil {
		panic(err)
	}
	event := `{"source_kind":"command","source_id":"evt-1","observed_at":"2026-11-27T05:00:00Z","payload":{"command_text":"uname -a"}}`
	if _, err := js.Publish(ctx, bus.SubjectFor(bus.DefaultPrefix, abi.KindCommand), []byte(event)); err != nil {
		panic(err)
	}
	msg, err := tagged.Next(jetstream.FetchMaxWait(10 * time.Second))
	if err != nil {
		panic(err)
	}
	var env bus.Envelope
	if err := json.Unmarshal(msg.Data(), &env); err != nil {
		panic(err)
	}
	for _, t := range env.Tags {
		fmt.Println(env.SourceID, t.RuleID, t.TechniqueID, t.Tactic)
	}
	// Output: evt-1 R0001 T1082 discovery
}
