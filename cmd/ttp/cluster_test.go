package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/decnet/ttp/bus"
	"github.com/decnet/ttp/rules/kvstore"
	"github.com/decnet/ttp/store"
	"github.com/decnet/ttp/store/storetest"
)

// testCluster is a JetStream cluster of nats-servers in the test process: each node with its
// own client port, route port and store directory, all fixed at the start so that a node
// stopped and started again comes back as itself (same name, ports and data).
type testCluster struct {
	t       testing.TB
	dir     string
	clients []string // host:port of each node's clients
	routes  []string // host:port of each node's routes
	nodes   []*server.Server
}

// startCluster starts n nodes routed to one another and waits for JetStream to answer.
func startCluster(t testing.TB, n int) *testCluster {
	t.Helper()
	c := &testCluster{t: t, dir: t.TempDir(), nodes: make([]*server.Server, n)}
	for range n {
		c.clients = append(c.clients, freeAddr(t))
		c.routes = append(c.routes, freeAddr(t))
	}
	for i := range n {
		c.start(i)
	}
	for i := range n {
		c.ready(i)
	}
	t.Cleanup(func() {
		for _, s := range c.nodes {
			if s != nil {
				s.Shutdown()
			}
		}
	})
	return c
}

// options are node i's settings, the same at every start.
func (c *testCluster) options(i int) *server.Options {
	host, port := splitAddr(c.t, c.clients[i])
	rhost, rport := splitAddr(c.t, c.routes[i])
	var routes []*url.URL
	for _, r := range c.routes {
		routes = append(routes, &url.URL{Scheme: "nats-route", Host: r})
	}
	return &server.Options{ServerName: fmt.Sprintf("n%d", i+1), Host: host, Port: port, NoLog: true, NoSigs: true,
		JetStream: true, StoreDir: filepath.Join(c.dir, fmt.Sprintf("n%d", i+1)),
		Cluster: server.ClusterOpts{Name: "ttp-test", Host: rhost, Port: rport}, Routes: routes}
}

func splitAddr(t testing.TB, addr string) (string, int) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return h, n
}

// start starts node i (again).
func (c *testCluster) start(i int) {
	c.t.Helper()
	s, err := server.NewServer(c.options(i))
	if err != nil {
		c.t.Fatalf("node n%d: %v", i+1, err)
	}
	go s.Start()
	c.nodes[i] = s
}

// ready waits for node i to take clients and for its JetStream to be current with the
// cluster's meta leader.
func (c *testCluster) ready(i int) {
	c.t.Helper()
	s := c.nodes[i]
	if !s.ReadyForConnections(30 * time.Second) {
		c.t.Fatalf("node n%d not ready for connections", i+1)
	}
	for start := time.Now(); !s.JetStreamIsCurrent(); time.Sleep(20 * time.Millisecond) {
		if time.Since(start) > 60*time.Second {
			c.t.Fatalf("node n%d: JetStream not current after 60 s", i+1)
		}
	}
}

// stop shuts node i down, as a node that is switched off.
func (c *testCluster) stop(i int) {
	c.nodes[i].Shutdown()
	c.nodes[i].WaitForShutdown()
	c.nodes[i] = nil
}

// waitCurrent waits until every replica of the stream is current with its leader: a node
// started again catches up on what was stored while it was down, and what a reader is shown
// comes from the leader, which may be that node.
func (c *testCluster) waitCurrent(b *testBus, stream string, timeout time.Duration) {
	c.t.Helper()
	start := time.Now()
	var last string
	for time.Since(start) < timeout {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		s, err := b.js.Stream(ctx, stream)
		var si *jetstream.StreamInfo
		if err == nil {
			si, err = s.Info(ctx)
		}
		cancel()
		if err != nil {
			last = err.Error()
		} else if si.Cluster != nil {
			last = fmt.Sprintf("leader %q, %d messages", si.Cluster.Leader, si.State.Msgs)
			ok := si.Cluster.Leader != "" && len(si.Cluster.Replicas) == len(c.nodes)-1
			for _, r := range si.Cluster.Replicas {
				last += fmt.Sprintf("; %s current=%v offline=%v lag=%d", r.Name, r.Current, r.Offline, r.Lag)
				ok = ok && r.Current && !r.Offline && r.Lag == 0
			}
			if ok {
				c.t.Logf("stream %s whole after %v: %s", stream, time.Since(start).Round(time.Millisecond), last)
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.t.Fatalf("stream %s: replicas not all current after %v: %s", stream, timeout, last)
}

// url is every node's client URL, comma-separated, as nats.go and --nats take a cluster.
func (c *testCluster) url() string {
	var us []string
	for _, a := range c.clients {
		us = append(us, "nats://"+a)
	}
	return strings.Join(us, ",")
}

// connect returns the test's own client of the cluster: it reconnects to whichever node is up,
// and a PubAck that never comes fails its publication after 10 s, for publishRetry to retry.
func (c *testCluster) connect() *testBus {
	c.t.Helper()
	nc, err := nats.Connect(c.url(), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(nc.Close)
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096), jetstream.WithPublishAsyncTimeout(10*time.Second))
	if err != nil {
		c.t.Fatal(err)
	}
	return &testBus{url: c.url(), nc: nc, js: js}
}

// publishRetry publishes evs as a producer that must not lose one does through a node's
// outage: each with a Nats-Msg-Id (its upstream event), so that the input stream's duplicate
// window makes a retry of a publication that was stored but not acknowledged harmless, and
// every publication that failed or went unanswered is retried until all are acknowledged. It
// returns how many retries it took.
func (b *testBus) publishRetry(evs []testEvent, timeout time.Duration) (int, error) {
	start := time.Now()
	pending, retries := evs, 0
	for len(pending) > 0 {
		var failed []testEvent
		for lo := 0; lo < len(pending); lo += 512 {
			chunk := pending[lo:min(lo+512, len(pending))]
			futures := make([]jetstream.PubAckFuture, len(chunk))
			for i, ev := range chunk {
				f, err := b.js.PublishMsgAsync(&nats.Msg{Subject: ev.subject, Data: ev.data}, jetstream.WithMsgID(ev.upstream()))
				if err != nil {
					failed = append(failed, ev)
					continue
				}
				futures[i] = f
			}
			for i, f := range futures {
				if f == nil {
					continue
				}
				select {
				case <-f.Ok():
				case <-f.Err():
					failed = append(failed, chunk[i])
				}
			}
		}
		if len(failed) > 0 {
			retries += len(failed)
			if time.Since(start) > timeout {
				return retries, fmt.Errorf("publish: %d events still unacknowledged after %v", len(failed), timeout)
			}
			time.Sleep(250 * time.Millisecond)
		}
		pending = failed
	}
	return retries, nil
}

// ackFloor returns how far the shared consumer has come, the messages delivered and acked
// (its delivered stream sequence less those awaiting an ack: the ack floor itself stays at a
// killed worker's first unacked message until its redelivery), and its state in words, or an
// error while the cluster cannot answer (a node down, a leader being elected).
func (b *testBus) ackFloor(ctx context.Context) (uint64, string, error) {
	s, err := b.js.Stream(ctx, bus.DefaultInStream)
	if err != nil {
		return 0, "", err
	}
	si, err := s.Info(ctx)
	if err != nil {
		return 0, "", err
	}
	ci, err := b.consumer(ctx)
	if err != nil || ci == nil {
		return 0, "", fmt.Errorf("consumer: %v", err)
	}
	state := fmt.Sprintf("stream last seq %d; consumer delivered %d, ack floor %d, pending %d, ack pending %d, redelivered %d",
		si.State.LastSeq, ci.Delivered.Stream, ci.AckFloor.Stream, ci.NumPending, ci.NumAckPending, ci.NumRedelivered)
	acked := ci.Delivered.Stream - min(ci.Delivered.Stream, uint64(ci.NumAckPending))
	if ci.NumPending == 0 && ci.NumAckPending == 0 && ci.AckFloor.Stream >= si.State.LastSeq {
		return acked, "done " + state, nil
	}
	return acked, state, nil
}

// waitFloor waits until the consumer has acked about n messages (ackFloor) (n = 0: until everything is acked),
// riding out the errors of a cluster that is electing a leader.
func (b *testBus) waitFloor(t testing.TB, n uint64, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	var last string
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		floor, state, err := b.ackFloor(ctx)
		cancel()
		if err != nil {
			last = err.Error()
		} else {
			last = state
			if n > 0 && floor >= n || n == 0 && strings.HasPrefix(state, "done ") {
				return time.Since(start)
			}
		}
		if time.Since(start) > timeout {
			t.Fatalf("%d acks not reached after %v: %s", n, timeout, last)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestClusterCrash is the crash test on more than one machine's worth of parts: a three-node
// JetStream cluster in the test process, three `ttp serve` workers (the built binary) joining
// it with --replicas 3 and one shared PostgreSQL store, and TTP_CLUSTER_EVENTS events
// (default 3000; `make clustertest` runs 50,000) published while one worker is SIGKILLed and
// started again and one NATS node is stopped and started again. At the end the store holds
// every tag `ttp tag` gives for the same events once, and the output stream one envelope per
// tagged event holding each of its tags once: 0 lost, 0 duplicated.
func TestClusterCrash(t *testing.T) {
	pg := storetest.PostgresURL(t) // a schema of the test's own, dropped at its end
	nEvents := envInt(t, "TTP_CLUSTER_EVENTS", 3000)
	if nEvents < 100 {
		t.Fatalf("TTP_CLUSTER_EVENTS=%d: want at least 100, so that the faults fall inside the run", nEvents)
	}
	down := 5 * time.Second // how long a node stays down at most (TTP_CLUSTER_DOWN)
	if v := os.Getenv("TTP_CLUSTER_DOWN"); v != "" {
		var err error
		if down, err = time.ParseDuration(v); err != nil {
			t.Fatalf("TTP_CLUSTER_DOWN=%q: %v", v, err)
		}
	}
	ttpBinary(t) // built before the clock starts
	started := time.Now()
	dir := t.TempDir()
	rules := copyRules(t, dir)
	set := genEvents(nEvents, rand.New(rand.NewPCG(14, 3)), "")
	file := filepath.Join(dir, "events.jsonl")
	set.writeJSONL(t, file)
	want := offlineTags(t, rules, file)

	cl := startCluster(t, 3)
	t.Logf("cluster of 3 nodes up %v after the start", time.Since(started).Round(time.Millisecond))
	b := cl.connect()
	ctx := context.Background()

	// Three workers, each with its data directory; the first creates the streams and buckets.
	opts := func(name string) daemonOpts {
		return daemonOpts{name: name, data: filepath.Join(dir, name), nats: cl.url(), rules: rules, store: pg, metrics: true,
			args: []string{"--replicas", "3", "--batch", "64", "--inflight", "512"}}
	}
	ws := map[string]*daemon{}
	for _, name := range []string{"c1", "c2", "c3"} {
		ws[name] = startDaemon(t, opts(name))
	}
	for _, name := range []string{bus.DefaultInStream, bus.DefaultOutStream, "KV_" + kvstore.DefaultStateBucket} {
		s, err := b.js.Stream(ctx, name)
		if err != nil {
			t.Fatalf("stream %s: %v", name, err)
		}
		if r := s.CachedInfo().Config.Replicas; r != 3 {
			t.Fatalf("stream %s created with %d replicas, want 3 (--replicas 3)", name, r)
		}
	}

	pubDone := make(chan error, 1)
	var retries int
	go func() {
		var err error
		retries, err = b.publishRetry(set.events, 10*time.Minute)
		pubDone <- err
	}()
	timeout := time.Duration(120+nEvents/100) * time.Second

	// A quarter in, the first worker is killed and started again on its data.
	// A quarter in, the first worker is killed while it holds messages taken and not acked
	// (received and not acked on its /metrics), and started again on its data.
	b.waitFloor(t, uint64(nEvents/4), timeout)
	held := 0.0
	for start := time.Now(); time.Since(start) < 10*time.Second; time.Sleep(time.Millisecond) {
		rcv, err1 := ws["c1"].metric("ttp_bus_received_total")
		ack, err2 := ws["c1"].metric("ttp_bus_acked_total")
		if held = rcv - ack; err1 == nil && err2 == nil && held > 0 {
			break
		}
	}
	ws["c1"].signal(syscall.SIGKILL)
	if st := ws["c1"].wait(30 * time.Second); st == nil {
		t.Fatal("SIGKILL did not end c1")
	}
	killedAt := time.Since(started)
	ws["c1"] = startDaemon(t, opts("c1"))
	t.Logf("c1 SIGKILLed %v after the start holding about %.0f messages, and running again %v later",
		killedAt.Round(time.Millisecond), held, (time.Since(started) - killedAt).Round(time.Millisecond))

	// Half way, the third node is stopped for a while and started again on its store.
	// It comes back once the two others have acked another eighth of the events without it
	// (or after TTP_CLUSTER_DOWN), so that it rejoins with work still flowing.
	b.waitFloor(t, uint64(nEvents/2), timeout)
	downAt := time.Now()
	stopFloor, _, _ := b.ackFloor(ctx)
	cl.stop(2)
	floor := stopFloor
	for time.Since(downAt) < down {
		if n, _, err := b.ackFloor(ctx); err == nil {
			floor = n
		}
		if floor >= stopFloor+uint64(nEvents/8) && time.Since(downAt) > time.Second {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	down = time.Since(downAt).Round(time.Millisecond)
	cl.start(2)
	cl.ready(2)
	t.Logf("node n3 down for %v (%d messages acked when it stopped, %d when it came back), current again %v after its stop",
		down, stopFloor, floor, time.Since(downAt).Round(time.Millisecond))

	if err := <-pubDone; err != nil {
		t.Fatal(err)
	}
	t.Logf("published %d events (%d publications retried)", nEvents, retries)
	took := b.waitFloor(t, 0, timeout)
	ci, err := b.consumer(ctx)
	if err != nil || ci == nil {
		t.Fatalf("consumer: %v", err)
	}
	t.Logf("everything acked %v after the last fault; %d deliveries for %d messages", took.Round(time.Millisecond), ci.Delivered.Consumer, ci.Delivered.Stream)
	var share []string
	for _, name := range []string{"c1", "c2", "c3"} {
		n, _ := ws[name].metric("ttp_bus_acked_total")
		share = append(share, fmt.Sprintf("%s %.0f", name, n))
	}
	t.Logf("acks by worker (c1 since its restart): %s", strings.Join(share, ", "))
	for _, name := range []string{"c1", "c2", "c3"} {
		ws[name].stop(30 * time.Second)
	}

	cl.waitCurrent(b, bus.DefaultOutStream, 2*time.Minute)
	st, err := store.Open(ctx, pg)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var out output
	for attempt := 1; ; attempt++ {
		if out, err = b.tryReadOutput(); err == nil {
			break
		}
		if attempt == 10 {
			t.Fatalf("read the output stream: %v", err)
		}
		t.Logf("read the output stream, attempt %d: %v; again in 1 s", attempt, err)
		time.Sleep(time.Second)
	}
	r := checkExactlyOnce(t, st, out, set, want)
	envTags := 0
	for _, e := range out.envelopes {
		envTags += len(e.Tags)
	}
	t.Logf("events %d, tagged events %d, tags %d: store rows %d (%d distinct), envelopes %d (%d distinct, holding %d tags), rule.fired %d",
		r.events, r.taggedUpstreams, r.tags, r.rows, r.distinctRows, r.envelopes, r.distinctEnvelopes, envTags, r.fired)
	t.Logf("lost %d, duplicated %d, unpublished %d, elapsed %v",
		r.lost+r.missingEnvelopes, r.duplicated+r.envelopeDups+(r.fired-r.distinctFired), r.unpublished, time.Since(started).Round(time.Millisecond))
	if envTags != len(want) {
		t.Errorf("envelopes hold %d tags, want %d", envTags, len(want))
	}
	if t.Failed() { // what the stream itself says, to tell a lost message from a misread one
		out, err := b.js.Stream(ctx, bus.DefaultOutStream)
		if err == nil {
			si, err := out.Info(ctx, jetstream.WithSubjectFilter(bus.SubjectTagged))
			if err == nil {
				t.Logf("stream %s: %d messages, %d on %s, leader %s, replicas %+v", bus.DefaultOutStream, si.State.Msgs,
					si.State.Subjects[bus.SubjectTagged], bus.SubjectTagged, si.Cluster.Leader, si.Cluster.Replicas)
			}
		}
	}
}
