package bus

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/decnet/ttp/abi"
	"github.com/decnet/ttp/dispatch"
	"github.com/decnet/ttp/internal/fault"
)

// TagStore is what the worker needs of the tag store (SQLite or PostgreSQL): an idempotent
// insert, the unpublished tags of an upstream event, and the published mark.
type TagStore interface {
	// Insert stores the tags of every upstream event of the batch in one transaction and
	// returns, for each, the tags that were new (in the order given); a tag already stored is
	// not inserted again.
	Insert(ctx context.Context, batch []Upstream) (inserted [][]abi.Tag, err error)
	// Unpublished returns the upstream event's tags not yet marked published, ordered by
	// tag_uuid.
	Unpublished(ctx context.Context, kind, id string) ([]abi.Tag, error)
	// MarkPublished marks tags published.
	MarkPublished(ctx context.Context, tagUUIDs []string) error
}

// Upstream is one upstream event's tags, all of which belong to its envelope (a session's
// command tags included).
type Upstream struct {
	Kind, ID string
	Tags     []abi.Tag
}

// Config tunes a Worker.
type Config struct {
	Prefix     string // input subject prefix, default "decnet."
	InStream   string // input stream, default DECNET (created when missing)
	OutStream  string // output stream, default TTP (created when missing)
	Durable    string // shared durable consumer, default ttp-workers
	MaxMessage int    // larger messages are dead-lettered; default DefaultMaxMessage
	Batch      int    // messages per store commit at most; default 256
	// Linger is how long a batch waits to fill (to Batch messages) after its first message
	// came before it is committed as it is; default DefaultLinger, negative for no wait.
	Linger   time.Duration
	InFlight int           // messages buffered ahead of processing (back-pressure); default 2048
	AckWait  time.Duration // redelivery after a silent worker; default 30 s
	Name     string        // worker name in heartbeats; default DefaultWorkerName()
	Replicas int           // replicas of a stream Streams creates (1 to MaxReplicas); default 1
	Logger   *slog.Logger  // dead letters, retries, slow PubAcks; default slog.Default()
}

func (c Config) withDefaults() Config {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	if c.InStream == "" {
		c.InStream = DefaultInStream
	}
	if c.OutStream == "" {
		c.OutStream = DefaultOutStream
	}
	if c.Durable == "" {
		c.Durable = DefaultDurable
	}
	if c.MaxMessage == 0 {
		c.MaxMessage = DefaultMaxMessage
	}
	if c.Batch == 0 {
		c.Batch = 256
	}
	if c.Linger == 0 {
		c.Linger = DefaultLinger
	}
	if c.InFlight == 0 {
		c.InFlight = 2048
	}
	if c.AckWait == 0 {
		c.AckWait = 30 * time.Second
	}
	if c.Name == "" {
		c.Name = DefaultWorkerName()
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	return c
}

// DefaultLinger is Config.Linger's default: a fifth of the 10 ms p99 from publish to ack the
// daemon aims at, long enough that a batch at half its flat-out rate holds some 80 events
// (RATIONALE.md, "A batch fills for a bounded time").
const DefaultLinger = 2 * time.Millisecond

// WorkerStats are the worker's counters, for metrics and heartbeats.
type WorkerStats struct {
	Received     atomic.Int64
	Acked        atomic.Int64
	DeadLettered atomic.Int64
	Inserted     atomic.Int64
	Envelopes    atomic.Int64
	Commits      atomic.Int64
	Errors       atomic.Int64
	// AckFailures counts acks that failed (the connection dropped between publish and ack,
	// say): the message is redelivered after AckWait and finds its tags stored and published.
	AckFailures atomic.Int64
}

// Worker consumes, tags, stores and publishes.
type Worker struct {
	js    jetstream.JetStream
	d     *dispatch.Dispatcher
	store TagStore
	cfg   Config
	log   *slog.Logger
	Stats WorkerStats
}

// NewWorker returns a worker; Run starts it. Everything it does on the bus goes through js
// (the consumer, the publications and their acks), so it takes no core connection. js must
// bound its asynchronous publications, as NewJetStream's does: the worker waits for every
// PubAck, and one that never comes would otherwise stall it for ever.
func NewWorker(js jetstream.JetStream, d *dispatch.Dispatcher, store TagStore, cfg Config) *Worker {
	cfg = cfg.withDefaults()
	return &Worker{js: js, d: d, store: store, cfg: cfg, log: cfg.Logger}
}

// NewJetStream returns the JetStream context of a Worker on nc: up to 4,096 publications
// awaiting their PubAck, and a PubAck that has not come within cfg's AckWait failing its
// publication (jetstream.WithPublishAsyncTimeout). The timeout does what a timer of our own
// would, and one thing more: it frees the publication's place among the 4,096, which a PubAck
// lost while the connection stays up (a stream leader lost in a cluster) would otherwise hold
// until the next reconnect (RATIONALE.md, "A PubAck that never comes").
func NewJetStream(nc *nats.Conn, cfg Config) (jetstream.JetStream, error) {
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096), jetstream.WithPublishAsyncTimeout(cfg.withDefaults().AckWait))
	if err != nil {
		return nil, fmt.Errorf("bus: jetstream: %w", err)
	}
	return js, nil
}

// InputMaxMsgSize is the largest message the input stream takes when ttp creates it: four
// times maxMessage (so an event over the worker's limit still arrives to be dead-lettered with
// a reason), at least 1 MiB. The embedded server's max_payload is the same figure, so a core
// NATS publisher over it gets an error from its own client instead of a message the stream
// drops without a word.
func InputMaxMsgSize(maxMessage int) int32 { return int32(max(maxMessage*4, 1<<20)) }

// MaxReplicas is the most replicas JetStream keeps of a stream or bucket (nats-server refuses
// more than 5): `--replicas` is checked against it before anything connects.
const MaxReplicas = 5

// Streams makes sure the input and output streams exist. A missing stream is created with
// ttp's defaults and cfg.Replicas replicas (3 on a three-node cluster, so that losing one node
// loses no event and stops nothing); an existing one keeps the configuration its operator gave it (max age, max
// bytes, replicas, duplicate window...), since every start of every worker and of `ttp
// publish` runs this and must not undo an operator's settings. The input stream belongs to
// the deception network and is otherwise left alone; the output stream is updated only when
// its subjects do not capture one of ours, with those subjects added and nothing else changed,
// because a publication on a subject it does not capture would be lost.
func Streams(ctx context.Context, js jetstream.JetStream, cfg Config) error {
	cfg = cfg.withDefaults()
	if cfg.Replicas < 1 || cfg.Replicas > MaxReplicas {
		return fmt.Errorf("bus: %d replicas: want 1 to %d", cfg.Replicas, MaxReplicas)
	}
	in := jetstream.StreamConfig{Name: cfg.InStream, Subjects: []string{cfg.Prefix + ">"},
		MaxMsgSize: InputMaxMsgSize(cfg.MaxMessage), MaxAge: DefaultInMaxAge, Replicas: cfg.Replicas,
		Description: "upstream deception-network events"}
	if err := ensureStream(ctx, js, in, false); err != nil {
		return err
	}
	out := jetstream.StreamConfig{Name: cfg.OutStream, Subjects: outputSubjects(), Duplicates: 2 * time.Minute, MaxAge: DefaultOutMaxAge,
		Replicas: cfg.Replicas, Description: "ttp output: tagged envelopes, rule.fired, dead letters, rule state changes"}
	return ensureStream(ctx, js, out, true)
}

// Run consumes until ctx ends, then drains: the batches in progress are finished (stored,
// published, acked) and every message still buffered is handed back at once (nak), so a
// rolling restart delays nothing by the consumer's AckWait. The caller bounds the drain with
// its own timeout.
func (w *Worker) Run(ctx context.Context) error {
	cfg := w.cfg
	cons, err := w.js.CreateOrUpdateConsumer(ctx, cfg.InStream, jetstream.ConsumerConfig{
		Durable:       cfg.Durable,
		Description:   "ttp workers: every worker pulls from this one durable, so each input event is tagged once",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       cfg.AckWait,
		MaxAckPending: cfg.InFlight * 4,
		FilterSubject: cfg.Prefix + ">",
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil // stopped before it started
		}
		return fmt.Errorf("bus: consumer %s: %w", cfg.Durable, err)
	}
	msgs := make(chan jetstream.Msg, cfg.InFlight)
	cc, err := cons.Consume(func(m jetstream.Msg) {
		select {
		case msgs <- m:
		case <-ctx.Done():
			m.Nak() // shutting down: hand it back now
		}
	},
		jetstream.PullMaxMessages(cfg.InFlight/2),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			if ctx.Err() == nil {
				w.log.Warn("consume", "err", err)
			}
		}))
	if err != nil {
		return fmt.Errorf("bus: consume: %w", err)
	}
	defer cc.Stop()
	// A batch, once taken, is finished even when shutdown comes in the middle of it.
	work := context.WithoutCancel(ctx)
	// Three stages, one batch each, so that two cores stay busy: this goroutine decodes and
	// tags a batch (on GOMAXPROCS goroutines) while the storer inserts and publishes the one
	// before, and the finisher waits for the publications of the one before that, marks its
	// tags published and acks it. Every batch passes the stages in order, so the order that
	// makes a crash harmless holds for each; the channels hold one batch, which bounds the
	// work in flight. The stages finish what they hold before Run returns.
	prepared := make(chan []item, 1)
	stored := make(chan *finishing, 1)
	finished := make(chan struct{})
	go w.storer(work, prepared, stored)
	go w.finisher(work, stored, finished)
	defer func() {
		close(prepared)
		<-finished
	}()
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	for {
		var batch []jetstream.Msg
		select {
		case <-ctx.Done():
			cc.Drain() // the client's buffered messages reach the callback, which naks them
			select {
			case <-cc.Closed():
			case <-time.After(5 * time.Second):
			}
			for {
				select {
				case m := <-msgs:
					m.Nak()
				default:
					return nil
				}
			}
		case m := <-msgs:
			batch = w.fill(ctx, msgs, m, linger)
		}
		items := make([]item, len(batch))
		for i, m := range batch {
			items[i].msg = m
		}
		w.Stats.Received.Add(int64(len(items)))
		if err := w.prepare(work, items); err != nil {
			w.handBack(batch, "batch failed; its messages will be redelivered", err)
			continue
		}
		prepared <- items
	}
}

// fill makes a batch that starts with first: it takes what msgs holds until the batch has
// cfg.Batch messages or cfg.Linger has passed since first came, whichever is first, so that a
// commit's fixed costs (the transaction, the mark, the wake-ups of three stages) are shared by
// as many messages as the latency target allows at any rate (RATIONALE.md, "A batch fills
// for a bounded time"). Shutdown ends the wait: what the batch holds is finished.
func (w *Worker) fill(ctx context.Context, msgs <-chan jetstream.Msg, first jetstream.Msg, linger *time.Timer) []jetstream.Msg {
	batch := make([]jetstream.Msg, 1, w.cfg.Batch)
	batch[0] = first
	for len(batch) < w.cfg.Batch { // what is already there, without a timer
		select {
		case m := <-msgs:
			batch = append(batch, m)
			continue
		default:
		}
		break
	}
	if len(batch) == w.cfg.Batch || w.cfg.Linger <= 0 {
		return batch
	}
	linger.Reset(w.cfg.Linger)
	defer linger.Stop()
	for len(batch) < w.cfg.Batch {
		select {
		case m := <-msgs:
			batch = append(batch, m)
		case <-linger.C:
			return batch
		case <-ctx.Done():
			return batch
		}
	}
	return batch
}

// handBack counts and logs a failed batch and hands its messages back for redelivery; the
// steps they went through are idempotent, so the redelivery finds what was already done.
func (w *Worker) handBack(msgs []jetstream.Msg, what string, err error) {
	w.Stats.Errors.Add(1)
	w.log.Error(what, "messages", len(msgs), "err", err)
	for _, m := range msgs {
		m.NakWithDelay(time.Second)
	}
}

// storer stores and publishes the batches Run prepares, until prepared is closed; then it
// closes stored.
func (w *Worker) storer(ctx context.Context, prepared <-chan []item, stored chan<- *finishing) {
	defer close(stored)
	for items := range prepared {
		if err := w.process(ctx, items, stored); err != nil {
			msgs := make([]jetstream.Msg, len(items))
			for i := range items {
				msgs[i] = items[i].msg
			}
			w.handBack(msgs, "batch failed; its messages will be redelivered", err)
		}
	}
}

// item is one message of a batch on its way through.
type item struct {
	msg  jetstream.Msg
	ev   abi.Event
	tags []abi.Tag
	dead string // why the message goes to the dead letters, "" when it does not
	// inserted are the tags the store did not have yet, of those in tags.
	inserted []abi.Tag
}

// finishing is a batch whose tags are stored and whose publications are under way: what is
// left is to wait for them, mark the tags published and ack the messages.
type finishing struct {
	futures []jetstream.PubAckFuture
	marks   []string
	acks    []jetstream.Msg
}

// process stores and publishes one prepared (decoded and tagged) batch in the order that
// makes a crash harmless: insert every tag in one transaction (replays insert nothing);
// publish each upstream event's unpublished tags with their Nats-Msg-Id (JetStream drops a
// republished duplicate); then hand the batch to the finisher, which waits for the
// publications, marks the tags published and acks.
//
// Which tags are unpublished: on a message's first delivery, when the insert stored every
// one of its tags, exactly those (nothing earlier can be waiting under the same upstream
// event, or the insert would have found its tags), so the store is not asked; on a
// redelivery, or when some tags were already stored (the same upstream event sent twice),
// the store says, which also publishes what a crash left unmarked even when the event
// yields no tag this time. Measured, asking for every message cost a third of the worker.
func (w *Worker) process(ctx context.Context, items []item, handoff chan<- *finishing) error {
	fin := &finishing{acks: make([]jetstream.Msg, 0, len(items))}
	var ups []Upstream
	var upItem []int // ups[j] belongs to items[upItem[j]]
	for i := range items {
		it := &items[i]
		if it.dead != "" {
			if err := w.deadLetter(it.msg, it.dead, fin); err != nil {
				return err
			}
			continue
		}
		if len(it.tags) > 0 {
			ups = append(ups, Upstream{Kind: it.ev.SourceKind, ID: it.ev.SourceID, Tags: it.tags})
			upItem = append(upItem, i)
		}
	}
	if len(ups) > 0 {
		inserted, err := w.store.Insert(ctx, ups)
		if err != nil {
			return fmt.Errorf("store: %w", err)
		}
		for j, in := range inserted {
			items[upItem[j]].inserted = in
			w.Stats.Inserted.Add(int64(len(in)))
		}
		w.Stats.Commits.Add(1)
		fault.At("after-commit") // the crash test's hook: internal/fault
	}
	for i := range items {
		it := &items[i]
		if it.dead != "" {
			continue // on its way in fin already
		}
		fin.acks = append(fin.acks, it.msg)
		var unpub []abi.Tag
		switch first := firstDelivery(it.msg); {
		case first && len(it.tags) > 0 && len(it.inserted) == len(it.tags):
			unpub = it.inserted
			slices.SortFunc(unpub, func(a, b abi.Tag) int { return strings.Compare(a.TagUUID, b.TagUUID) })
		case len(it.tags) > 0 || !first:
			var err error
			if unpub, err = w.store.Unpublished(ctx, it.ev.SourceKind, it.ev.SourceID); err != nil {
				return fmt.Errorf("store: %w", err)
			}
		}
		if len(unpub) == 0 {
			continue
		}
		fs, err := w.publish(&it.ev, unpub)
		if err != nil {
			return err
		}
		fin.futures = append(fin.futures, fs...)
		for _, t := range unpub {
			fin.marks = append(fin.marks, t.TagUUID)
		}
	}
	handoff <- fin
	return nil
}

// firstDelivery reports whether m is delivered for the first time; when its metadata cannot
// be read it answers false, which costs a store query and never a lost publication.
func firstDelivery(m jetstream.Msg) bool {
	md, err := m.Metadata()
	return err == nil && md.NumDelivered == 1
}

// prepare decodes and tags every message of a batch, the CPU-bound part of the worker, on as
// many goroutines as GOMAXPROCS allows (the Dispatcher's pools hold that many instances per
// plugin). It returns only cancellation: bad input is marked for the dead letters.
func (w *Worker) prepare(ctx context.Context, items []item) error {
	n := runtime.GOMAXPROCS(0)
	if n == 1 || len(items) < 2*minChunk {
		return w.prepareRange(ctx, items)
	}
	chunk := max((len(items)+n-1)/n, minChunk)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for g, lo := 1, chunk; lo < len(items); g, lo = g+1, lo+chunk {
		wg.Add(1)
		go func(part []item) {
			defer wg.Done()
			errs[g] = w.prepareRange(ctx, part)
		}(items[lo:min(lo+chunk, len(items))])
	}
	errs[0] = w.prepareRange(ctx, items[:min(chunk, len(items))])
	wg.Wait()
	return errors.Join(errs...)
}

// minChunk is the fewest messages worth a goroutine of their own.
const minChunk = 16

func (w *Worker) prepareRange(ctx context.Context, items []item) error {
	for i := range items {
		it := &items[i]
		data := it.msg.Data()
		if len(data) > w.cfg.MaxMessage {
			it.dead = fmt.Sprintf("message of %d bytes over the %d-byte limit", len(data), w.cfg.MaxMessage)
			continue
		}
		ev, err := abi.DecodeEvent(data)
		if err != nil {
			it.dead = err.Error()
			continue
		}
		it.ev = ev
		if it.tags, err = w.d.Tag(ctx, ev, nil); err != nil {
			return err // only cancellation: handler failures are swallowed by the Dispatcher
		}
	}
	return nil
}

// finisher completes the batches process hands it, in order, until handoff is closed; then
// it closes done.
func (w *Worker) finisher(ctx context.Context, handoff <-chan *finishing, done chan<- struct{}) {
	defer close(done)
	for fin := range handoff {
		if err := w.finish(ctx, fin); err != nil {
			w.handBack(fin.acks, "batch failed after its commit; its messages will be redelivered and find their tags stored", err)
		}
	}
}

func (w *Worker) finish(ctx context.Context, fin *finishing) error {
	if len(fin.futures) > 0 {
		// A PubAck that never comes fails its future after AckWait (NewJetStream's
		// WithPublishAsyncTimeout), and the batch is handed back, its messages being due for
		// redelivery by then anyway.
		for _, f := range fin.futures {
			select {
			case <-f.Ok():
			case err := <-f.Err():
				return fmt.Errorf("publish: %w", err)
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		fault.At("after-publish")
	}
	if len(fin.marks) > 0 {
		if err := w.store.MarkPublished(ctx, fin.marks); err != nil {
			return fmt.Errorf("store: %w", err)
		}
	}
	for _, m := range fin.acks {
		if err := m.Ack(); err != nil {
			w.Stats.AckFailures.Add(1)
			w.log.Warn("ack failed; the message will be redelivered and find its tags stored", "err", err)
			continue
		}
		w.Stats.Acked.Add(1)
	}
	return nil
}

// publish sends an upstream event's unpublished tags: one envelope and one rule.fired message
// per technique, each with its Nats-Msg-Id. Each tag is encoded once, and its JSON goes into
// both messages that carry it (appendTagged).
func (w *Worker) publish(ev *abi.Event, tags []abi.Tag) ([]jetstream.PubAckFuture, error) {
	enc := make([][]byte, len(tags))
	for i := range tags {
		b, err := json.Marshal(&tags[i])
		if err != nil {
			return nil, fmt.Errorf("publish: tag %s: %w", tags[i].TagUUID, err)
		}
		enc[i] = b
	}
	var out []jetstream.PubAckFuture
	send := func(subject, id string, head any, tags [][]byte) error {
		b, err := appendTagged(nil, head, tags)
		if err != nil {
			return fmt.Errorf("publish %s: %w", subject, err)
		}
		f, err := w.js.PublishMsgAsync(&nats.Msg{Subject: subject, Data: b}, jetstream.WithMsgID(id))
		if err != nil {
			return fmt.Errorf("publish %s: %w", subject, err)
		}
		out = append(out, f)
		return nil
	}
	env := Envelope{SourceKind: ev.SourceKind, SourceID: ev.SourceID, AttackerUUID: ev.AttackerUUID, IdentityUUID: ev.IdentityUUID,
		SessionID: ev.SessionID, DeckyID: ev.DeckyID, ObservedAt: ev.ObservedAt}
	if err := send(SubjectTagged, msgID("tagged", ev.SourceKind, ev.SourceID, "", tags), &env, enc); err != nil {
		return out, err
	}
	w.Stats.Envelopes.Add(1)
	// The techniques in the order of their first tag; a tag's place in its technique's
	// message is its place in tags.
	var order []string
	of := make([]int, len(tags)) // tags[i] belongs to order[of[i]]
	for i := range tags {
		s := FiredSubject(&tags[i])
		j := slices.Index(order, s)
		if j < 0 {
			j = len(order)
			order = append(order, s)
		}
		of[i] = j
	}
	for j, s := range order {
		var group []abi.Tag
		var groupEnc [][]byte
		for i := range tags {
			if of[i] == j {
				group = append(group, tags[i])
				groupEnc = append(groupEnc, enc[i])
			}
		}
		tech := s[len(SubjectFiredPrefix):]
		fired := Fired{Technique: tech, SourceKind: ev.SourceKind, SourceID: ev.SourceID}
		if err := send(s, msgID("fired", ev.SourceKind, ev.SourceID, tech, group), &fired, groupEnc); err != nil {
			return out, err
		}
	}
	return out, nil
}

// deadLetter publishes bad input with the reason and adds the publication and the message to
// fin, whose finisher acks the message once the stream has the dead letter, as it does the
// batch's other messages: bad input is counted, never redelivered forever, never stops the
// daemon, and never holds up the batch it came in by a round trip of its own.
func (w *Worker) deadLetter(m jetstream.Msg, reason string, fin *finishing) error {
	data := m.Data()
	sum := sha256.Sum256(data)
	head := data
	if len(head) > 4096 {
		head = head[:4096]
	}
	dl := DeadLetter{Reason: reason, Subject: m.Subject(), Size: len(data), SHA256: hex.EncodeToString(sum[:]), Head: head, At: time.Now().UTC()}
	id := "dead:" + dl.SHA256
	if md, err := m.Metadata(); err == nil {
		dl.Stream = md.Sequence.Stream
		id = fmt.Sprintf("dead:%s:%d", md.Stream, md.Sequence.Stream)
	}
	b, _ := json.Marshal(dl)
	f, err := w.js.PublishMsgAsync(&nats.Msg{Subject: SubjectDeadLetter, Data: b}, jetstream.WithMsgID(id))
	if err != nil {
		return fmt.Errorf("dead letter: %w", err)
	}
	fin.futures = append(fin.futures, f)
	fin.acks = append(fin.acks, m)
	w.Stats.DeadLettered.Add(1)
	w.log.Warn("dead-lettered", "subject", m.Subject(), "size", len(data), "reason", reason)
	return nil
}
