package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/decnet/ttp/store"
)

// envInt reads a positive integer setting of the test from the environment.
func envInt(t testing.TB, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		t.Fatalf("%s=%q: want a non-negative integer", name, v)
	}
	return n
}

// TestCrashSafety kills the worker again and again while events flow through it, and checks
// the outbox's promise: nothing lost, nothing doubled, in the store and on the output stream.
//
// The events (TTP_CRASH_EVENTS, default 2000) are published in one chunk per worker life onto
// a bus the test owns. Each of the TTP_CRASH_KILLS (default 3) lives ends in a SIGKILL, in
// turn: the daemon's own injected fault TTP_FAULT=after-commit:N (tags stored, nothing
// published), TTP_FAULT=after-publish:N (published, not marked, not acked: internal/fault, in
// the test's ttpfault build only), and the test's SIGKILL at a random point
// of the chunk. Every worker is started on the same data directory and bus. The last one runs
// until everything is acked, then the store and the output stream are compared with what
// `ttp tag` gives for the same events. `make crashtest` runs 50,000 events and 10 kills.
func TestCrashSafety(t *testing.T) {
	nEvents := envInt(t, "TTP_CRASH_EVENTS", 2000)
	nKills := envInt(t, "TTP_CRASH_KILLS", 3)
	seed := uint64(envInt(t, "TTP_CRASH_SEED", 1))
	const batch = 32
	ttpBinary(t) // built before the clock starts
	started := time.Now()

	dir := t.TempDir()
	rules := copyRules(t, dir)
	set := genEvents(nEvents, rand.New(rand.NewPCG(seed, 1)), "")
	file := filepath.Join(dir, "events.jsonl")
	set.writeJSONL(t, file)
	want := offlineTags(t, rules, file)
	tagged := map[string]bool{} // upstream events with tags
	for _, tg := range want {
		tagged[set.upstreamOf[tg.SourceID]] = true
	}
	b := newTestBus(t)
	data := filepath.Join(dir, "data")
	rng := rand.New(rand.NewPCG(seed, 2))
	ctx := context.Background()

	var d *daemon
	kinds := []string{"after-commit", "after-publish", "sigkill"}
	chunk := (nEvents + nKills) / (nKills + 1)
	byKind := map[string]int{}
	for life := 0; life <= nKills; life++ {
		evs := set.events[min(life*chunk, nEvents):min((life+1)*chunk, nEvents)]
		if life == nKills {
			evs = set.events[min(life*chunk, nEvents):]
		}
		kind := ""
		if life < nKills {
			kind = kinds[life%len(kinds)]
		}
		// A fault after the Nth commit (or publish) must come within this chunk: every batch
		// holds at most `batch` messages, so the chunk's tagged events take at least
		// tagged/batch batches that commit and publish.
		nTagged := 0
		for _, ev := range evs {
			if tagged[ev.upstream()] {
				nTagged++
			}
		}
		if kind != "" && kind != "sigkill" && nTagged == 0 {
			kind = "sigkill" // no commit to fault after (tiny TTP_CRASH_EVENTS)
		}
		args := []string{"--batch", strconv.Itoa(batch)}
		var env []string
		point, pct := "", 0
		switch kind {
		case "after-commit", "after-publish":
			n := 1 + rng.IntN(max(1, nTagged/batch))
			point = fmt.Sprintf("%s:%d", kind, n)
			env = append(env, "TTP_FAULT="+point)
		case "sigkill":
			pct = 10 + rng.IntN(81)
			point = fmt.Sprintf("%d%% of the chunk", pct)
		}
		lifeStart := time.Now()
		d = startDaemon(t, daemonOpts{name: fmt.Sprintf("life%d", life), data: data, nats: b.url, rules: rules, metrics: kind == "sigkill", args: args, env: env})
		pub := make(chan error, 1)
		go func() { pub <- b.publish(evs) }()

		switch kind {
		case "after-commit", "after-publish":
			st := d.wait(2 * time.Minute)
			if st == nil {
				t.Fatalf("life %d: TTP_FAULT=%s never fired", life, point)
			}
			if ws, ok := st.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
				t.Fatalf("life %d: TTP_FAULT=%s: the process ended with %v, want killed by SIGKILL", life, point, st)
			}
			if _, ok := d.waitLine("injected fault", 0, "at="+kind); !ok {
				t.Fatalf("life %d: killed, but not by the injected fault %s", life, point)
			}
		case "sigkill":
			target := float64(len(evs) * pct / 100)
			for start := time.Now(); ; time.Sleep(5 * time.Millisecond) {
				if n, err := d.metric("ttp_bus_acked_total"); err == nil && n >= target {
					break
				}
				if time.Since(start) > 30*time.Second || d.exited() {
					t.Logf("life %d: %v acks not reached; killing anyway", life, target)
					break
				}
			}
			d.signal(syscall.SIGKILL)
			if st := d.wait(30 * time.Second); st == nil {
				t.Fatalf("life %d: SIGKILL did not end the process", life)
			}
		}
		if err := <-pub; err != nil {
			t.Fatal(err)
		}
		if kind == "" {
			break
		}
		byKind[kind]++
		ci, err := b.consumer(ctx)
		if err != nil || ci == nil {
			t.Fatalf("consumer: %v", err)
		}
		t.Logf("life %d: %s at %s after %v (%d events published, %d awaiting redelivery)",
			life, kind, point, time.Since(lifeStart).Round(time.Millisecond), len(evs), ci.NumAckPending)
		b.expireAckPending(t)
	}

	took := b.waitAcked(t, time.Duration(60+nEvents/200)*time.Second)
	t.Logf("last life: everything acked %v after its chunk was published", took.Round(time.Millisecond))
	d.stop(30 * time.Second)
	st, err := store.Open(ctx, filepath.Join(data, "ttp.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	r := checkExactlyOnce(t, st, b.readOutput(t), set, want)
	elapsed := time.Since(started)
	t.Logf("events %d, kills %d (after-commit %d, after-publish %d, external SIGKILL %d), tags %d, tagged events %d, envelopes %d, rule.fired %d",
		r.events, nKills, byKind["after-commit"], byKind["after-publish"], byKind["sigkill"], r.tags, r.taggedUpstreams, r.envelopes, r.fired)
	t.Logf("lost %d, duplicated %d (store rows %d for %d distinct; envelopes %d for %d distinct; unpublished %d), elapsed %v",
		r.lost+r.missingEnvelopes, r.duplicated+r.envelopeDups+(r.fired-r.distinctFired), r.rows, r.distinctRows, r.envelopes, r.distinctEnvelopes,
		r.unpublished, elapsed.Round(time.Millisecond))
}
