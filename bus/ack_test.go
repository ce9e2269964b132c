package bus

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/decnet/ttp/internal/natstest"
)

// ackResult is a message whose Ack returns err; nothing else of it is used.
type ackResult struct {
	jetstream.Msg
	err error
}

func (m ackResult) Ack() error { return m.err }

// TestAckFailureCounted: a failed ack is not an acked message; it is counted apart, exported
// as ttp_bus_ack_failures_total and carried by the heartbeat, so an operator sees a connection
// that drops between publish and ack instead of a silent gap between received and acked.
func TestAckFailureCounted(t *testing.T) {
	w := &Worker{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	fin := &finishing{acks: []jetstream.Msg{ackResult{}, ackResult{err: nats.ErrConnectionClosed}, ackResult{}}}
	if err := w.finish(context.Background(), fin); err != nil {
		t.Fatal(err)
	}
	if got := w.Stats.Acked.Load(); got != 2 {
		t.Errorf("acked %d, want 2", got)
	}
	if got := w.Stats.AckFailures.Load(); got != 1 {
		t.Errorf("ack failures %d, want 1", got)
	}
	if err := testutil.CollectAndCompare(NewCollector(w), strings.NewReader(`
# HELP ttp_bus_ack_failures_total Acks that failed; the message is redelivered after AckWait and finds its tags stored and published.
# TYPE ttp_bus_ack_failures_total counter
ttp_bus_ack_failures_total 1
`), "ttp_bus_ack_failures_total"); err != nil {
		t.Error(err)
	}
}

// TestFinishBoundsPubAckWait: a batch whose PubAck never arrives fails after AckWait (and is
// handed back by the finisher) instead of stalling the worker; none of its messages is acked.
// The PubAck is withheld by a core subscriber that takes the publication and answers nothing,
// so the bound under test is NewJetStream's.
func TestFinishBoundsPubAckWait(t *testing.T) {
	srv := natstest.Start(t)
	nc, _ := srv.Connect(t)
	silent, err := nc.SubscribeSync("silent.subject")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Unsubscribe()
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	cfg := Config{AckWait: 200 * time.Millisecond}
	js, err := NewJetStream(nc, cfg)
	if err != nil {
		t.Fatal(err)
	}
	f, err := js.PublishMsgAsync(&nats.Msg{Subject: "silent.subject", Data: []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	w := &Worker{js: js, cfg: cfg.withDefaults(), log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	fin := &finishing{futures: []jetstream.PubAckFuture{f}, acks: []jetstream.Msg{ackResult{}}}
	done := make(chan error, 1)
	go func() { done <- w.finish(context.Background(), fin) }()
	select {
	case err := <-done:
		if !errors.Is(err, jetstream.ErrAsyncPublishTimeout) {
			t.Errorf("finish: %v, want the missing PubAck (%v)", err, jetstream.ErrAsyncPublishTimeout)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("finish waits for ever on a PubAck that never comes")
	}
	if got := w.Stats.Acked.Load(); got != 0 {
		t.Errorf("acked %d messages of a batch whose publication was not confirmed", got)
	}
	if n := js.PublishAsyncPending(); n != 0 {
		t.Errorf("%d publications still pending after the timeout, want 0: their places are never freed", n)
	}
}

// badMsg is an input message that is dead-lettered, whose ack fails.
type badMsg struct{ ackResult }

func (badMsg) Data() []byte                              { return []byte("{not json") }
func (badMsg) Subject() string                           { return "decnet.attacker.command" }
func (badMsg) Metadata() (*jetstream.MsgMetadata, error) { return nil, errors.New("no metadata") }

// TestDeadLetterAckFailure: a dead letter whose ack fails is counted like any failed ack and
// does not fail its batch (which would send every good message of it round again).
func TestDeadLetterAckFailure(t *testing.T) {
	srv := natstest.Start(t)
	_, js := srv.Connect(t)
	if _, err := js.CreateStream(context.Background(), jetstream.StreamConfig{Name: "DEAD", Subjects: []string{SubjectDeadLetter}}); err != nil {
		t.Fatal(err)
	}
	w := &Worker{js: js, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	fin := &finishing{}
	if err := w.deadLetter(badMsg{ackResult{err: nats.ErrConnectionClosed}}, "bad JSON", fin); err != nil {
		t.Fatalf("deadLetter: %v", err)
	}
	if err := w.finish(context.Background(), fin); err != nil {
		t.Fatalf("finish: %v", err)
	}
	if w.Stats.DeadLettered.Load() != 1 || w.Stats.AckFailures.Load() != 1 || w.Stats.Acked.Load() != 0 {
		t.Errorf("dead-lettered %d, ack failures %d, acked %d; want 1, 1, 0",
			w.Stats.DeadLettered.Load(), w.Stats.AckFailures.Load(), w.Stats.Acked.Load())
	}
}
