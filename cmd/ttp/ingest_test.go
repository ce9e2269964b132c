package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/decnet/ttp/abi"
	"github.com/decnet/ttp/bus"
	"github.com/decnet/ttp/ingest"
	"github.com/decnet/ttp/internal/cowriegen"
	"github.com/decnet/ttp/store"
)

// TestIngestRestart kills `ttp serve --ingest cowrie:PATH` (SIGKILL) again and again while a
// writer appends to the Cowrie log, rotating it daily-style (renamed to cowrie.json.DATE, a new
// file created) and cutting lines in two writes; then checks that every tag the log makes is in
// the store exactly once and in exactly one published envelope, the same tags `ttp tag --input
// cowrie` makes from the rotated files and the live one. TTP_INGEST_LINES (default 4000) and
// TTP_INGEST_KILLS (default 2) size it; make ingesttest runs 100,000 lines and 8 kills.
func TestIngestRestart(t *testing.T) {
	nLines := envInt(t, "TTP_INGEST_LINES", 4000)
	nKills := envInt(t, "TTP_INGEST_KILLS", 2)
	ttpBinary(t)
	began := time.Now()
	dir := t.TempDir()
	rules := copyRules(t, dir)
	logDir := filepath.Join(dir, "log")
	os.MkdirAll(logDir, 0o755)
	live := filepath.Join(logDir, "cowrie.json")
	var buf bytes.Buffer
	if _, err := cowriegen.Write(&buf, nLines, 3, time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(buf.String(), "\n")
	lines = lines[:len(lines)-1] // every line ends with its newline, the last one included

	// The writer: chunks of lines, a rotation every quarter, some lines in two writes.
	progress := make(chan int, 1)
	written := make(chan error, 1)
	begin := make(chan struct{}) // the writer waits for the first daemon to follow the log
	go func() {
		<-begin
		rng := rand.New(rand.NewPCG(5, 6))
		f, err := os.OpenFile(live, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			written <- err
			return
		}
		rotations := 0
		for i := 0; i < len(lines); {
			n := min(len(lines)-i, 20+rng.IntN(60))
			chunk := strings.Join(lines[i:i+n], "")
			if rng.IntN(3) == 0 { // end the chunk inside a line, finish it a moment later
				cut := len(chunk) - 1 - rng.IntN(min(40, len(lines[i+n-1])-1))
				f.WriteString(chunk[:cut])
				time.Sleep(3 * time.Millisecond)
				chunk = chunk[cut:]
			}
			f.WriteString(chunk)
			i += n
			if i*4/len(lines) > rotations && i < len(lines) {
				rotations++
				f.Close()
				os.Rename(live, fmt.Sprintf("%s.2026-12-%02d", live, rotations))
				if f, err = os.Create(live); err != nil {
					written <- err
					return
				}
			}
			select {
			case progress <- i:
			default:
			}
			time.Sleep(time.Duration(25+rng.IntN(25)) * time.Millisecond) // about 3 s for the default 4000 lines
		}
		f.Close()
		written <- nil
	}()

	b := newTestBus(t)
	data := filepath.Join(dir, "data")
	args := []string{"--ingest", "cowrie:" + live, "--batch", "32"}
	d := startDaemon(t, daemonOpts{name: "life0", data: data, nats: b.url, rules: rules, args: args})
	// A first start reads the live file from its start, not the rotated files before it.
	if _, ok := d.waitLine("ingest: no stored offset", 10*time.Second); !ok {
		t.Fatal("the first daemon does not follow the log")
	}
	close(begin)
	rng := rand.New(rand.NewPCG(7, 8))
	done := 0
	for life := 1; life <= nKills; life++ {
		target := len(lines) * life / (nKills + 1)
		for done < target {
			select {
			case done = <-progress:
			case err := <-written:
				if err != nil {
					t.Fatal(err)
				}
				written <- nil
				done = len(lines)
			}
		}
		// Kill at a random moment, once this life has stored a state at least once.
		for start := time.Now(); time.Since(start) < 10*time.Second; time.Sleep(10 * time.Millisecond) {
			if d.hasLine([]string{"ingest: state saved"}) || life > 1 {
				break
			}
			if st, _ := filepath.Glob(filepath.Join(data, "ingest", "cowrie-*.json")); len(st) > 0 {
				break
			}
		}
		time.Sleep(time.Duration(rng.IntN(200)) * time.Millisecond)
		d.signal(syscall.SIGKILL)
		if d.wait(30*time.Second) == nil {
			t.Fatalf("life %d: SIGKILL did not end the process", life-1)
		}
		t.Logf("life %d killed after %d of %d lines written", life-1, done, len(lines))
		if ci, _ := b.consumer(context.Background()); ci != nil {
			b.expireAckPending(t)
		}
		d = startDaemon(t, daemonOpts{name: fmt.Sprintf("life%d", life), data: data, nats: b.url, rules: rules, args: args})
		for start := time.Now(); !d.hasLine([]string{"ingest: resuming"}) && !d.hasLine([]string{"ingest: the log rotated while stopped; finishing"}); time.Sleep(5 * time.Millisecond) {
			if time.Since(start) > 10*time.Second {
				t.Fatalf("life %d did not resume from a stored offset", life)
			}
		}
	}
	if err := <-written; err != nil {
		t.Fatal(err)
	}
	// Caught up: the stored offset is the end of the live file.
	fi, err := os.Stat(live)
	if err != nil {
		t.Fatal(err)
	}
	states, _ := filepath.Glob(filepath.Join(data, "ingest", "cowrie-*.json"))
	if len(states) != 1 {
		t.Fatalf("state files %v, want one", states)
	}
	for start := time.Now(); ; time.Sleep(50 * time.Millisecond) {
		var st followState
		if b, err := os.ReadFile(states[0]); err == nil && json.Unmarshal(b, &st) == nil && st.Offset == fi.Size() {
			_, ino := fileID(fi)
			if st.Ino == ino {
				break
			}
		}
		if time.Since(start) > 30*time.Second {
			b, _ := os.ReadFile(states[0])
			t.Fatalf("the follower did not reach the end of the log (%d bytes, inode %d); its state: %.300s", fi.Size(), fi.Sys().(*syscall.Stat_t).Ino, b)
		}
	}
	caught := time.Since(began)
	acked := b.waitAcked(t, 2*time.Minute)
	stopped := d.stop(30 * time.Second)
	t.Logf("caught up %v after the start, everything acked %v later, stopped in %v", caught.Round(time.Millisecond), acked.Round(time.Millisecond), stopped.Round(time.Millisecond))

	t0 := time.Now()
	defer func() { t.Logf("checks took %v", time.Since(t0).Round(time.Millisecond)) }()
	// What the log makes offline, from the rotated files and the live one.
	files, _ := filepath.Glob(filepath.Join(logDir, "cowrie.json*"))
	stdout, stderr, code := ttp(t, "", append([]string{"tag", "--input", "cowrie", "--rules", rules, "--plugins", filepath.Join(dir, "none")}, files...)...)
	if code != 0 {
		t.Fatalf("ttp tag: exit %d: %s", code, stderr)
	}
	want := map[string]bool{}
	var sum ingest.SummaryLine
	for _, l := range strings.Split(strings.TrimSpace(stdout), "\n") {
		var tg abi.Tag
		if json.Unmarshal([]byte(l), &sum) == nil && sum.Ingest != nil {
			continue
		}
		if err := json.Unmarshal([]byte(l), &tg); err != nil {
			t.Fatal(err)
		}
		want[tg.TagUUID] = true
	}
	if sum.Ingest == nil || sum.Ingest.Lines != int64(len(lines)) || len(want) == 0 {
		t.Fatalf("offline: %d tags, summary %+v, want %d lines", len(want), sum.Ingest, len(lines))
	}

	st, err := store.Open(context.Background(), filepath.Join(data, "ttp.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rows, err := st.Tags(context.Background(), store.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	stored := map[string]int{}
	for _, tg := range rows {
		stored[tg.TagUUID]++
	}
	lost, extra, dup := 0, 0, 0
	for u := range want {
		if stored[u] == 0 {
			lost++
		}
	}
	for u, n := range stored {
		if !want[u] {
			extra++
		}
		dup += n - 1
	}
	t.Logf("offline and store: %v", time.Since(t0).Round(time.Millisecond))
	published := map[string]int{}
	envelopes := 0
	for _, e := range b.readOutput(t).envelopes {
		envelopes++
		for _, tg := range e.Tags {
			published[tg.TagUUID]++
		}
	}
	unpublished, twice := 0, 0
	for u := range want {
		switch published[u] {
		case 0:
			unpublished++
		case 1:
		default:
			twice++
		}
	}
	s, err := b.js.Stream(context.Background(), bus.DefaultInStream)
	if err != nil {
		t.Fatal(err)
	}
	si, _ := s.Info(context.Background())
	t.Logf("%d lines, %d rotations, %d kills: %d events offline, %d input messages on the bus (re-reads after a kill included), %d tags expected, %d rows, %d envelopes",
		len(lines), 3, nKills, sum.Ingest.Events, si.State.Msgs, len(want), len(rows), envelopes)
	if lost != 0 || extra != 0 || dup != 0 || unpublished != 0 || twice != 0 {
		if keep := os.Getenv("TTP_INGEST_KEEP"); keep != "" {
			os.CopyFS(keep, os.DirFS(dir))
		}
		byID := map[string]bool{}
		for _, tg := range rows {
			byID[tg.SourceID] = true
		}
		n := 0
		for l := range strings.SplitSeq(strings.TrimSpace(stdout), "\n") {
			var tg abi.Tag
			if json.Unmarshal([]byte(l), &tg) == nil && tg.TagUUID != "" && stored[tg.TagUUID] == 0 && n < 5 {
				n++
				t.Logf("lost: %s %s %s (source stored with another tag: %v)", tg.SourceID, tg.RuleID, tg.TagUUID, byID[tg.SourceID])
			}
		}
		t.Errorf("store: %d lost, %d not expected, %d duplicated; envelopes: %d tags never published, %d published twice", lost, extra, dup, unpublished, twice)
	}
}
