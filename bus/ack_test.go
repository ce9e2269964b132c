package bus

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"
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
