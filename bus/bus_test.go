package bus

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/decnet/ttp/abi"
	"github.com/decnet/ttp/dispatch"
	"github.com/decnet/ttp/internal/natstest"
	"github.com/decnet/ttp/rules"
	"github.com/decnet/ttp/store"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// storeAdapter is the daemon's adapter, repeated here to keep bus free of store.
type storeAdapter struct{ store.Store }

func (s storeAdapter) Insert(ctx context.Context, ups []Upstream) ([][]abi.Tag, error) {
	b := make([]store.Batch, len(ups))
	for i, u := range ups {
		b[i] = store.Batch{UpstreamKind: u.Kind, UpstreamID: u.ID, Tags: u.Tags}
	}
	return s.InsertBatch(ctx, b)
}

type rig struct {
	nc    *nats.Conn
	js    jetstream.JetStream
	store store.Store
	w     *Worker
	stop  func()
}

func newRig(t *testing.T, cfg Config) *rig {
	t.Helper()
	srv := natstest.Start(t)
	nc, js := srv.Connect(t)
	ctx := context.Background()
	if err := Streams(ctx, js, cfg); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "ttp.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	loaded, err := rules.LoadDir("../rules/ttp")
	if err != nil {
		t.Fatal(err)
	}
	x, err := rules.NewSnapshot(loaded, nil)
	if err != nil {
		t.Fatal(err)
	}
	d := dispatch.New(dispatch.Config{Snapshot: dispatch.NewSnapshot(x), Logger: quiet})
	cfg.Logger = quiet
	w := NewWorker(js, d, storeAdapter{st}, cfg)
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { w.Run(wctx); close(done) }()
	r := &rig{nc: nc, js: js, store: st, w: w, stop: func() { cancel(); <-done }}
	t.Cleanup(r.stop)
	return r
}

func (r *rig) publish(t *testing.T, subject string, data []byte) {
	t.Helper()
	if _, err := r.js.Publish(context.Background(), subject, data); err != nil {
		t.Fatal(err)
	}
}

func (r *rig) waitAcked(t *testing.T, n int64) {
	t.Helper()
	for start := time.Now(); time.Since(start) < 20*time.Second; time.Sleep(5 * time.Millisecond) {
		if r.w.Stats.Acked.Load() >= n {
			return
		}
	}
	t.Fatalf("acked %d of %d", r.w.Stats.Acked.Load(), n)
}

// streamMsgs returns every message of the output stream on subject.
func (r *rig) streamMsgs(t *testing.T, subject string) []jetstream.RawStreamMsg {
	t.Helper()
	ctx := context.Background()
	s, err := r.js.Stream(ctx, DefaultOutStream)
	if err != nil {
		t.Fatal(err)
	}
	info, _ := s.Info(ctx)
	var out []jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			continue
		}
		if strings.HasPrefix(m.Subject, subject) {
			out = append(out, *m)
		}
	}
	return out
}

const uname = `{"source_kind":"command","source_id":"evt-1","observed_at":"2026-11-27T05:00:00Z","payload":{"command_text":"uname -a; cat /etc/shadow"}}`

func TestReplayOnce(t *testing.T) {
	r := newRig(t, Config{Batch: 16})
	for i := 0; i < 100; i++ {
		r.publish(t, "decnet.attacker.command", []byte(uname))
	}
	r.waitAcked(t, 100)
	n, _ := r.store.Count(context.Background())
	if n != 2 {
		t.Fatalf("%d rows, want one per tag (2)", n)
	}
	env := r.streamMsgs(t, SubjectTagged)
	if len(env) != 1 {
		t.Fatalf("%d envelopes for 100 deliveries of one event, want 1", len(env))
	}
	var e Envelope
	json.Unmarshal(env[0].Data, &e)
	if e.SourceID != "evt-1" || len(e.Tags) != 2 {
		t.Fatalf("envelope %+v", e)
	}
	fired := r.streamMsgs(t, SubjectFiredPrefix)
	subjects := map[string]int{}
	for _, m := range fired {
		subjects[m.Subject]++
	}
	if subjects["ttp.rule.fired.T1082"] != 1 || subjects["ttp.rule.fired.T1003.008"] != 1 || len(fired) != 2 {
		t.Errorf("fired messages %v", subjects)
	}
	un, _ := r.store.Unpublished(context.Background(), "command", "evt-1")
	if len(un) != 0 {
		t.Errorf("%d tags left unpublished", len(un))
	}
}

func TestDeadLetters(t *testing.T) {
	r := newRig(t, Config{MaxMessage: 1024})
	r.publish(t, "decnet.attacker.command", []byte(`{not json`))
	r.publish(t, "decnet.attacker.command", []byte(`{"source_kind":"command","payload":{"command_text":"id"}}`))
	r.publish(t, "decnet.attacker.command", []byte(`{"source_kind":"command","source_id":"big","payload":{"command_text":"`+strings.Repeat("a", 2000)+`"}}`))
	r.publish(t, "decnet.attacker.command", []byte(uname))
	r.waitAcked(t, 4)
	if r.w.Stats.DeadLettered.Load() != 3 {
		t.Fatalf("dead-lettered %d, want 3", r.w.Stats.DeadLettered.Load())
	}
	dls := r.streamMsgs(t, SubjectDeadLetter)
	if len(dls) != 3 {
		t.Fatalf("%d dead letters on the stream", len(dls))
	}
	reasons := ""
	for _, m := range dls {
		var dl DeadLetter
		json.Unmarshal(m.Data, &dl)
		reasons += dl.Reason + "\n"
		if dl.SHA256 == "" || dl.Size == 0 || len(dl.Head) == 0 || len(dl.Head) > 4096 {
			t.Errorf("dead letter %+v", dl)
		}
	}
	for _, want := range []string{"invalid character", `"source_id"`, "over the 1024-byte limit"} {
		if !strings.Contains(reasons, want) {
			t.Errorf("reasons lack %q:\n%s", want, reasons)
		}
	}
	if n, _ := r.store.Count(context.Background()); n != 2 {
		t.Errorf("the good event after bad ones: %d rows", n)
	}
}

// TestSessionEnvelope: a session's command tags belong to the session's envelope.
func TestSessionEnvelope(t *testing.T) {
	r := newRig(t, Config{})
	r.publish(t, "decnet.attacker.session.ended", []byte(`{"source_kind":"session","source_id":"S1","payload":{"commands":["uname -a","ls","cat /etc/shadow"]}}`))
	r.waitAcked(t, 1)
	env := r.streamMsgs(t, SubjectTagged)
	if len(env) != 1 {
		t.Fatalf("%d envelopes", len(env))
	}
	var e Envelope
	json.Unmarshal(env[0].Data, &e)
	ids := map[string]bool{}
	for _, tg := range e.Tags {
		ids[tg.SourceID] = true
	}
	if e.SourceID != "S1" || !ids["S1#0"] || !ids["S1#2"] {
		t.Fatalf("envelope %s with tags of %v", e.SourceID, ids)
	}
}

// TestCrashBetweenPublishAndMark: tags stored and published but not marked (a crash before
// the mark) are republished with the same Nats-Msg-Id on redelivery, and JetStream keeps one.
func TestRepublishAfterCrash(t *testing.T) {
	r := newRig(t, Config{})
	ctx := context.Background()
	ev, _ := abi.DecodeEvent([]byte(uname))
	tags := []abi.Tag{}
	loaded, _ := rules.LoadDir("../rules/ttp")
	x, err := rules.NewSnapshot(loaded, nil)
	if err != nil {
		t.Fatal(err)
	}
	d := dispatch.New(dispatch.Config{Snapshot: dispatch.NewSnapshot(x), Logger: quiet})
	tags, _ = d.Tag(ctx, ev, tags)
	// The crashed worker: inserted, published, not marked, not acked.
	r.store.InsertTags(ctx, "command", "evt-1", tags)
	var mu sync.Mutex
	fs, err := r.w.publish(&ev, tags)
	mu.Lock()
	mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fs {
		<-f.Ok()
	}
	// Redelivery.
	r.publish(t, "decnet.attacker.command", []byte(uname))
	r.waitAcked(t, 1)
	if env := r.streamMsgs(t, SubjectTagged); len(env) != 1 {
		t.Fatalf("%d envelopes after a republish, want 1", len(env))
	}
	if n, _ := r.store.Count(ctx); n != int64(len(tags)) {
		t.Errorf("%d rows", n)
	}
	if un, _ := r.store.Unpublished(ctx, "command", "evt-1"); len(un) != 0 {
		t.Errorf("still unpublished: %d", len(un))
	}
	_ = fmt.Sprint()
}

// redelivered is a message as the storer sees it, delivered a given number of times; only
// the methods the storer and finisher call are implemented.
type redelivered struct {
	jetstream.Msg
	data      []byte
	delivered uint64
	acked     bool
}

func (m *redelivered) Data() []byte { return m.data }
func (m *redelivered) Ack() error   { m.acked = true; return nil }
func (m *redelivered) Metadata() (*jetstream.MsgMetadata, error) {
	return &jetstream.MsgMetadata{NumDelivered: m.delivered}, nil
}

// TestLeftoversPublished: tags a crash left stored but unpublished go out when their event
// is redelivered, even when the event makes no tag this time (its rule disabled in between);
// a first delivery that makes no tag asks the store nothing.
func TestLeftoversPublished(t *testing.T) {
	for _, tc := range []struct {
		name      string
		delivered uint64
		envelopes int
	}{
		{"redelivery", 2, 1},
		{"first delivery", 1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			r := newRig(t, Config{})
			ev, err := abi.DecodeEvent([]byte(uname))
			if err != nil {
				t.Fatal(err)
			}
			d := r.w.d // the rig's worker's Dispatcher, over the shipped rules
			tags, err := d.Tag(ctx, ev, nil)
			if err != nil || len(tags) == 0 {
				t.Fatalf("tags %v, %v", tags, err)
			}
			// The crash: committed, never published.
			if _, err := r.store.InsertTags(ctx, ev.SourceKind, ev.SourceID, tags); err != nil {
				t.Fatal(err)
			}
			w := NewWorker(r.js, d, storeAdapter{r.store}, Config{Logger: quiet})
			m := &redelivered{data: []byte(uname), delivered: tc.delivered}
			handoff := make(chan *finishing, 1)
			if err := w.process(ctx, []item{{msg: m, ev: ev}}, handoff); err != nil {
				t.Fatal(err)
			}
			if err := w.finish(ctx, <-handoff); err != nil {
				t.Fatal(err)
			}
			if !m.acked {
				t.Error("message not acked")
			}
			if env := r.streamMsgs(t, SubjectTagged); len(env) != tc.envelopes {
				t.Fatalf("%d envelopes, want %d", len(env), tc.envelopes)
			}
			un, _ := r.store.Unpublished(ctx, ev.SourceKind, ev.SourceID)
			if want := len(tags) * (1 - tc.envelopes); len(un) != want {
				t.Errorf("%d tags still unpublished, want %d", len(un), want)
			}
		})
	}
}
