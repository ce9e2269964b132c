package bus

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/decnet/ttp/dispatch"
)

// DefaultWorkerName is the name a worker goes by when none is configured: "<hostname>-<pid>",
// unique among the workers of one bus and telling an operator where to look. It is the one
// default for everything that names the worker (heartbeats, the daemon's plugin and rule
// events, trace resources), so that they can be matched with each other. A host whose name
// cannot be read goes by "ttp" instead.
func DefaultWorkerName() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		h = "ttp"
	}
	return fmt.Sprintf("%s-%d", h, os.Getpid())
}

// Heartbeat is what ttp.worker.heartbeat carries every interval.
type Heartbeat struct {
	Worker       string    `json:"worker"`
	PID          int       `json:"pid"`
	At           time.Time `json:"at"`
	UptimeS      float64   `json:"uptime_s"`
	Received     int64     `json:"received"`
	Acked        int64     `json:"acked"`
	DeadLettered int64     `json:"dead_lettered"`
	Envelopes    int64     `json:"envelopes"`
	Tags         int64     `json:"tags"`
	Errors       int64     `json:"errors"`
	AckFailures  int64     `json:"ack_failures"`
}

// Heartbeats publishes a heartbeat with the worker's counters every interval until ctx ends.
func Heartbeats(ctx context.Context, nc *nats.Conn, w *Worker, d *dispatch.Dispatcher, every time.Duration) {
	start := time.Now()
	t := time.NewTicker(every)
	defer t.Stop()
	beat := func() {
		hb := Heartbeat{Worker: w.cfg.Name, PID: os.Getpid(), At: time.Now().UTC(), UptimeS: time.Since(start).Seconds(),
			Received: w.Stats.Received.Load(), Acked: w.Stats.Acked.Load(), DeadLettered: w.Stats.DeadLettered.Load(),
			Envelopes: w.Stats.Envelopes.Load(), Tags: d.Stats.Tags.Load(), Errors: w.Stats.Errors.Load(),
			AckFailures: w.Stats.AckFailures.Load()}
		b, _ := json.Marshal(hb)
		nc.Publish(SubjectHeartbeat, b)
	}
	beat()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			beat()
		}
	}
}

// Collector exports the worker's counters to Prometheus, read at scrape time.
type Collector struct {
	w                                                                        *Worker
	received, acked, dead, envelopes, commits, errors, inserted, ackFailures *prometheus.Desc
}

// NewCollector returns a collector over w.
func NewCollector(w *Worker) *Collector {
	d := func(name, help string) *prometheus.Desc { return prometheus.NewDesc("ttp_bus_"+name, help, nil, nil) }
	return &Collector{w: w,
		received:  d("received_total", "Messages received from the input stream."),
		acked:     d("acked_total", "Messages acked after their tags were stored and published."),
		dead:      d("dead_lettered_total", "Messages sent to ttp.deadletter (bad JSON, missing fields, over the size limit)."),
		envelopes: d("envelopes_total", "ttp.tagged envelopes published."),
		commits:   d("commits_total", "Store transactions committed."),
		errors:    d("batch_errors_total", "Batches that failed and were left for redelivery."),
		inserted:  d("inserted_total", "Tags inserted."),
		ackFailures: d("ack_failures_total",
			"Acks that failed; the message is redelivered after AckWait and finds its tags stored and published."),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.received, c.acked, c.dead, c.envelopes, c.commits, c.errors, c.inserted, c.ackFailures} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	s := &c.w.Stats
	for _, x := range []struct {
		d *prometheus.Desc
		v int64
	}{{c.received, s.Received.Load()}, {c.acked, s.Acked.Load()}, {c.dead, s.DeadLettered.Load()}, {c.envelopes, s.Envelopes.Load()},
		{c.commits, s.Commits.Load()}, {c.errors, s.Errors.Load()}, {c.inserted, s.Inserted.Load()}, {c.ackFailures, s.AckFailures.Load()}} {
		ch <- prometheus.MustNewConstMetric(x.d, prometheus.CounterValue, float64(x.v))
	}
}
