package cowrie_test

import (
	"bytes"
	"sync"
	"testing"
	"time"

	"github.com/decnet/ttp/abi"
	"github.com/decnet/ttp/ingest/cowrie"
	"github.com/decnet/ttp/internal/cowriegen"
)

var benchLog = sync.OnceValue(func() [][]byte {
	var buf bytes.Buffer
	if _, err := cowriegen.Write(&buf, 200_000, 1, time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)); err != nil {
		panic(err)
	}
	return bytes.SplitAfter(bytes.TrimSuffix(buf.Bytes(), []byte("\n")), []byte("\n"))
})

// BenchmarkDecode is the per-line path of the Cowrie ingest, parse and sessionize, on the
// generated mix of internal/cowriegen (events are made and dropped, not tagged). It reports lines/s;
// make cowrie-bench measures the same on a 1,000,000-line file with its peak RSS.
func BenchmarkDecode(b *testing.B) {
	lines := benchLog()
	var bytesN int
	for _, l := range lines {
		bytesN += len(l)
	}
	b.SetBytes(int64(bytesN / len(lines)))
	b.ReportAllocs()
	d := cowrie.New(cowrie.Config{})
	var out []abi.Event
	i := 0
	for b.Loop() {
		if i == len(lines) {
			out = d.Flush(out[:0])
			d = cowrie.New(cowrie.Config{})
			i = 0
		}
		out, _ = d.Decode(lines[i], out[:0])
		i++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lines/s")
}
