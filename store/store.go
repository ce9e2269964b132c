package store

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/decnet/ttp/abi"
)

// Store is what both implementations offer. The daemon declares the smaller TagStore it needs
// at its side (InsertBatch, Unpublished, MarkPublished); tests and tools use the rest.
//
// # Notes
//
// This is an interface so that Open can choose the implementation from a URL and callers
// never branch on which one they hold; it is not meant for third-party implementations.
// Every method is safe for concurrent use.
type Store interface {
	// InsertTags stores the tags of one upstream event in one transaction, each unpublished,
	// and returns the ones actually inserted (in the order given, with CreatedAt as stored and
	// ObservedAt as the tag_uuid holds it, which is how every read recovers it):
	// a tag whose tag_uuid is already stored, or appears earlier in tags, is skipped, so a
	// redelivered event returns none.
	InsertTags(ctx context.Context, upstreamKind, upstreamID string, tags []abi.Tag) (inserted []abi.Tag, err error)

	// InsertBatch is InsertTags for many upstream events in one transaction, so that a
	// consumer can commit a burst of messages at once; result i holds what batches[i]
	// inserted. Either every batch is committed or none is.
	InsertBatch(ctx context.Context, batches []Batch) ([][]abi.Tag, error)

	// Unpublished returns the upstream event's tags not yet marked published, ordered by
	// tag_uuid: after a first insert the new tags, after a crash whatever it left unmarked.
	Unpublished(ctx context.Context, upstreamKind, upstreamID string) ([]abi.Tag, error)

	// MarkPublished marks the tags published. Unknown or already marked tag_uuids are
	// ignored, so a repeated mark after a crash is harmless.
	MarkPublished(ctx context.Context, tagUUIDs []string) error

	// Tags returns the stored tags that match filter, ordered by tag_uuid (so by observed
	// time). It reads the whole result into memory: it is for tools such as `ttp report` and
	// `ttp navigator` and for tests, not for the hot path.
	Tags(ctx context.Context, filter Filter) ([]abi.Tag, error)

	// Count returns the number of stored tags.
	Count(ctx context.Context) (int64, error)

	// Close releases the store's connections. A SQLite store checkpoints its WAL on the way.
	Close() error
}

// Batch is the tags of one upstream event, the unit the daemon acks: for a session the
// session's own tags and those of the command events fanned out of it.
type Batch struct {
	UpstreamKind string
	UpstreamID   string
	Tags         []abi.Tag
}

// Filter selects tags for Tags. An empty field selects everything.
type Filter struct {
	UpstreamKind string
	UpstreamID   string
	// Since keeps the tags of events observed at or after it (their ObservedAt). The time is
	// the tag_uuid's top 48 bits, so the filter is a range on the primary key, not a scan;
	// tags of events that had no observed_at are left out once Since is set.
	Since time.Time
}

// uuidFloor is the smallest tag_uuid of an event observed at or after t (abi.TagUUID puts the
// Unix milliseconds in the top 48 bits), the lower bound of Filter.Since on the key.
func uuidFloor(t time.Time) string {
	var ms int64
	if !t.IsZero() {
		ms = max(t.UnixMilli(), 0)
		if t.After(time.UnixMilli(ms)) { // a sub-millisecond Since starts at the next ms
			ms++
		}
	}
	h := fmt.Sprintf("%012x", uint64(ms)&(1<<48-1))
	return h[:8] + "-" + h[8:] + "-0000-0000-000000000000"
}

var (
	// ErrInvalidTag is returned, wrapped, for a tag or tag_uuid that cannot be stored: a
	// tag_uuid that is not a canonical lower-case UUID (both stores must order and compare
	// keys alike), or an empty upstream kind or id. Nothing of the call is stored.
	ErrInvalidTag = errors.New("store: invalid tag")

	// ErrSchemaTooNew is returned by Open when the database was written by a newer ttp whose
	// schema this one does not know.
	ErrSchemaTooNew = errors.New("store: schema is newer than this ttp")

	// ErrUnsupportedURL is returned by Open for a URL scheme or option it does not know.
	ErrUnsupportedURL = errors.New("store: unsupported URL")
)

// schemaVersion is the version of the tables this package creates and reads. Open upgrades an
// older database and refuses a newer one (ErrSchemaTooNew).
const schemaVersion = 1

// Open opens (creating if needed, schema included) the store that url names:
//
//   - "sqlite:///abs/path/ttp.db", "sqlite:relative/ttp.db" or a plain path: SQLite through
//     modernc.org/sqlite (pure Go, no cgo). WAL journal, one writer connection (SQLite
//     serialises writers anyway; one connection turns lock waits into a Go queue) and a
//     separate pool of readers. Options, as URL query parameters:
//     sync=normal (default: synchronous=NORMAL, which survives a process crash but may lose
//     the last commits on power loss) or sync=always (synchronous=FULL, which survives power
//     loss at the cost of an fsync per commit); readers=N, the read pool size (default 4; 0
//     reads through the writer).
//   - "postgres://..." or "postgresql://...": PostgreSQL through pgx's pool; the URL is
//     pgx's (pool_max_conns and the like apply). Option schema=NAME puts the tables in that
//     schema (default "ttp"), created when missing.
func Open(ctx context.Context, url string) (Store, error) {
	switch scheme, _, _ := strings.Cut(url, ":"); scheme {
	case "postgres", "postgresql":
		return openPostgres(ctx, url)
	case "sqlite", "sqlite3":
		return openSQLite(ctx, url)
	default:
		if strings.Contains(url, "://") {
			return nil, fmt.Errorf("%w: scheme %q (want sqlite or postgres)", ErrUnsupportedURL, scheme)
		}
		return openSQLite(ctx, url)
	}
}

// row is one tag on its way into a store, with the upstream event it belongs to and its
// place in the caller's input (so results come back per batch, in input order).
type row struct {
	tag          abi.Tag
	evidence     *string // JSON, nil for a nil map
	upstreamKind string
	upstreamID   string
	batch, index int
}

// prepare validates and flattens batches into rows sorted by tag_uuid, without duplicates (the
// first occurrence wins). Sorted, because two transactions inserting overlapping keys in the
// same order cannot deadlock in PostgreSQL, and because in-order keys touch fewer pages. The
// rows are pointers into one array in the caller's order: a row holds a whole tag, and sorting
// and gathering pointers instead of rows measured a sixth of the SQLite insert.
func prepare(batches []Batch) ([]*row, error) {
	n := 0
	for _, b := range batches {
		n += len(b.Tags)
	}
	all := make([]row, 0, n)
	for bi, b := range batches {
		if b.UpstreamKind == "" || b.UpstreamID == "" {
			if len(b.Tags) == 0 {
				continue
			}
			return nil, fmt.Errorf("%w: batch %d has an empty upstream kind or id", ErrInvalidTag, bi)
		}
		for ti, t := range b.Tags {
			if !validUUID(t.TagUUID) {
				return nil, fmt.Errorf("%w: batch %d tag %d: tag_uuid %q is not a lower-case UUID", ErrInvalidTag, bi, ti, t.TagUUID)
			}
			t.CreatedAt = storedTime(t.CreatedAt)
			t.ObservedAt, _ = abi.TagUUIDTime(t.TagUUID) // what a read recovers (validated above)
			r := row{tag: t, upstreamKind: b.UpstreamKind, upstreamID: b.UpstreamID, batch: bi, index: ti}
			if t.Evidence != nil {
				ev, err := json.Marshal(t.Evidence)
				if err != nil {
					return nil, fmt.Errorf("%w: batch %d tag %s: evidence: %v", ErrInvalidTag, bi, t.TagUUID, err)
				}
				s := string(ev)
				r.evidence = &s
			}
			all = append(all, r)
		}
	}
	rows := make([]*row, len(all))
	sorted := true
	for i := range all {
		rows[i] = &all[i]
		sorted = sorted && (i == 0 || all[i-1].tag.TagUUID < all[i].tag.TagUUID)
	}
	if sorted { // the common case: one event's tags, or events in the order they were observed
		return rows, nil
	}
	slices.SortStableFunc(rows, func(a, b *row) int { return cmp.Compare(a.tag.TagUUID, b.tag.TagUUID) })
	return slices.CompactFunc(rows, func(a, b *row) bool { return a.tag.TagUUID == b.tag.TagUUID }), nil
}

// results gathers the inserted rows back into per-batch slices in the caller's order.
func results(batches []Batch, inserted []*row) [][]abi.Tag {
	out := make([][]abi.Tag, len(batches))
	slices.SortFunc(inserted, func(a, b *row) int {
		return cmp.Or(cmp.Compare(a.batch, b.batch), cmp.Compare(a.index, b.index))
	})
	for _, r := range inserted {
		out[r.batch] = append(out[r.batch], r.tag)
	}
	return out
}

// storedTime is t as both stores keep it: UTC, to the microsecond (PostgreSQL's precision),
// so that what InsertTags returns equals what a later read returns.
func storedTime(t time.Time) time.Time {
	return t.UTC().Truncate(time.Microsecond)
}

// validUUID reports whether s is a UUID in canonical lower-case form, the form abi.TagUUID
// produces and the only one whose text order is its byte order.
func validUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
				return false
			}
		}
	}
	return true
}

// checkUUIDs validates the tag_uuids of a MarkPublished call.
func checkUUIDs(ids []string) error {
	for i, id := range ids {
		if !validUUID(id) {
			return fmt.Errorf("%w: tag_uuid %d %q is not a lower-case UUID", ErrInvalidTag, i, id)
		}
	}
	return nil
}

// nullable maps an absent optional string to SQL NULL.
func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// deref maps SQL NULL back to the absent string.
func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// decodeEvidence reads the evidence column: NULL is a nil map.
func decodeEvidence(s *string) (map[string]any, error) {
	if s == nil {
		return nil, nil
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(*s), &m); err != nil {
		return nil, fmt.Errorf("evidence: %w", err)
	}
	return m, nil
}
