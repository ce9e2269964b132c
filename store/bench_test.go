package store_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/decnet/ttp/store"
	"github.com/decnet/ttp/store/storetest"
)

// BenchmarkInsertSQLite measures what tag_uuid's time order buys: inserts with time-ordered
// keys (abi.TagUUID with increasing observed_at) against random ones, in transactions of one
// row (the daemon committing each message) and of 1,000 rows (committing a burst of messages
// with InsertBatch, four tags an event). An op of the 1,000-row case is 100 transactions, so
// that the table grows past SQLite's page cache as a daemon's does; run it with
// -benchtime=3x. The figure to read is rows/s.
func BenchmarkInsertSQLite(b *testing.B) {
	benchInsert(b, func(tb testing.TB) string { return "sqlite://" + filepath.Join(tb.TempDir(), "ttp.db") })
}

// BenchmarkInsertPostgres is BenchmarkInsertSQLite on the server TTP_TEST_POSTGRES_URL names.
func BenchmarkInsertPostgres(b *testing.B) {
	benchInsert(b, storetest.PostgresURL)
}

func benchInsert(b *testing.B, newURL func(testing.TB) string) {
	for _, keys := range []string{"ordered", "random"} {
		for _, rows := range []int{1, 1000} {
			b.Run(fmt.Sprintf("keys=%s/tx=%d", keys, rows), func(b *testing.B) {
				txPerOp := 1
				if rows > 1 {
					txPerOp = 100
				}
				s, err := store.Open(context.Background(), newURL(b))
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				gen := &tagGen{random: keys == "random", start: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)}
				benchTx(b, s, gen, rows, txPerOp)
			})
		}
	}
}

func benchTx(b *testing.B, s store.Store, gen *tagGen, rows, txPerOp int) {
	ctx := context.Background()
	// The tags are made outside the timer: all at once when they fit in memory, otherwise per
	// op (StopTimer reads memory statistics, which is noise for a 1-row op but not for a
	// 100,000-row one).
	upfront := b.N*txPerOp*rows <= 200_000
	var all [][]store.Batch
	if upfront {
		for range b.N * txPerOp {
			all = append(all, gen.batches(rows))
		}
	}
	total := 0
	b.ResetTimer()
	for op := range b.N {
		txs := all
		if upfront {
			txs = all[op*txPerOp : (op+1)*txPerOp]
		} else {
			b.StopTimer()
			txs = make([][]store.Batch, txPerOp)
			for i := range txs {
				txs[i] = gen.batches(rows)
			}
			b.StartTimer()
		}
		for _, batches := range txs {
			got, err := s.InsertBatch(ctx, batches)
			if err != nil {
				b.Fatal(err)
			}
			for _, g := range got {
				total += len(g)
			}
		}
	}
	b.StopTimer()
	if want := b.N * txPerOp * rows; total != want {
		b.Fatalf("inserted %d rows, want %d", total, want)
	}
	b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "rows/s")
}

// tagGen makes realistic tags (command rules with a short evidence string), four an event,
// with events observed one millisecond apart.
type tagGen struct {
	random bool
	start  time.Time
	seq    int
}

func (g *tagGen) batches(rows int) []store.Batch {
	const perEvent = 4
	var out []store.Batch
	for len(out)*perEvent < rows {
		n := min(perEvent, rows-len(out)*perEvent)
		ev := g.seq
		g.seq++
		observed := g.start.Add(time.Duration(ev) * time.Millisecond)
		id := fmt.Sprintf("ev-%012d", ev)
		b := store.Batch{UpstreamKind: "command", UpstreamID: id}
		for i := range n {
			t := storetest.Tag("command", id, fmt.Sprintf("R%04d", i+1), observed)
			if g.random {
				t.TagUUID = randomUUID()
			}
			b.Tags = append(b.Tags, t)
		}
		out = append(out, b)
	}
	return out
}

// randomUUID is a version 4 UUID: the key layout tag_uuid avoids.
func randomUUID() string {
	var u [16]byte
	_, _ = rand.Read(u[:])
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	h := hex.EncodeToString(u[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// BenchmarkPublishCycle is the daemon's per-message path on SQLite, one commit a message:
// insert an event's four tags, read its unpublished tags, mark them. The figure is events/s.
func BenchmarkPublishCycle(b *testing.B) {
	s, err := store.Open(context.Background(), "sqlite://"+filepath.Join(b.TempDir(), "ttp.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	gen := &tagGen{start: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)}
	b.ResetTimer()
	for range b.N {
		batch := gen.batches(4)[0]
		if _, err := s.InsertTags(ctx, batch.UpstreamKind, batch.UpstreamID, batch.Tags); err != nil {
			b.Fatal(err)
		}
		pending, err := s.Unpublished(ctx, batch.UpstreamKind, batch.UpstreamID)
		if err != nil || len(pending) != 4 {
			b.Fatalf("Unpublished: %d, %v", len(pending), err)
		}
		ids := make([]string, len(pending))
		for i, p := range pending {
			ids[i] = p.TagUUID
		}
		if err := s.MarkPublished(ctx, ids); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkBatchCommit is the daemon's two writes of a batch on SQLite, timed apart: the
// insert of the batch's tags in one transaction and the published mark of the same tags after
// their PubAcks, in transactions of 16 and 128 tags (a batch of 30 and of 256 events of the
// realistic mix, which makes about half a tag an event). The figures are µs a tag of each
// write; a fixed cost per commit shows as the difference between the two sizes.
func BenchmarkBatchCommit(b *testing.B) {
	for _, rows := range []int{16, 128} {
		b.Run(fmt.Sprintf("tags=%d", rows), func(b *testing.B) {
			s, err := store.Open(context.Background(), "sqlite://"+filepath.Join(b.TempDir(), "ttp.db"))
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			ctx := context.Background()
			gen := &tagGen{start: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)}
			var insert, mark time.Duration
			for range b.N {
				batches := gen.batches(rows)
				t0 := time.Now()
				got, err := s.InsertBatch(ctx, batches)
				if err != nil {
					b.Fatal(err)
				}
				t1 := time.Now()
				var ids []string
				for _, g := range got {
					for _, t := range g {
						ids = append(ids, t.TagUUID)
					}
				}
				if len(ids) != rows {
					b.Fatalf("inserted %d of %d", len(ids), rows)
				}
				if err := s.MarkPublished(ctx, ids); err != nil {
					b.Fatal(err)
				}
				insert += t1.Sub(t0)
				mark += time.Since(t1)
			}
			n := float64(b.N * rows)
			b.ReportMetric(float64(insert.Microseconds())/n, "insert-µs/tag")
			b.ReportMetric(float64(mark.Microseconds())/n, "mark-µs/tag")
		})
	}
}
