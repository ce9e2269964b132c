package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/decnet/ttp/abi"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// tagColumns are the columns that make an abi.Tag, in the order every SELECT reads them.
const tagColumns = `tag_uuid, rule_id, rule_version, technique_id, sub_technique_id, tactic, confidence,
	evidence, source_kind, source_id, attacker_uuid, identity_uuid, session_id, decky_id, producer, created_at`

// sqliteTime is how SQLite keeps created_at: RFC 3339 text in UTC with a fixed six-digit
// fraction, so that text order is time order and the column reads well in the sqlite3 shell.
const sqliteTime = "2006-01-02T15:04:05.000000Z07:00"

// sqliteSchema creates version 1. A WITHOUT ROWID table (clustered on tag_uuid) measured no
// faster for rows of this size (a few hundred bytes of text and evidence), so it is a plain
// rowid table with the primary-key index beside it.
var sqliteSchema = []string{
	`CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`,
	`CREATE TABLE IF NOT EXISTS tags (
		tag_uuid         TEXT PRIMARY KEY,
		rule_id          TEXT NOT NULL,
		rule_version     TEXT NOT NULL,
		technique_id     TEXT NOT NULL,
		sub_technique_id TEXT,
		tactic           TEXT NOT NULL,
		confidence       REAL NOT NULL,
		evidence         TEXT,
		source_kind      TEXT NOT NULL,
		source_id        TEXT NOT NULL,
		attacker_uuid    TEXT,
		identity_uuid    TEXT,
		session_id       TEXT,
		decky_id         TEXT,
		producer         TEXT NOT NULL,
		created_at       TEXT NOT NULL,
		upstream_kind    TEXT NOT NULL,
		upstream_id      TEXT NOT NULL,
		published        INTEGER NOT NULL DEFAULT 0
	)`,
	`CREATE INDEX IF NOT EXISTS tags_upstream ON tags (upstream_kind, upstream_id, published)`,
}

// sqliteStore is the embedded store: one writer connection, a read pool beside it.
type sqliteStore struct {
	w *sql.DB // exactly one connection: every write transaction queues here
	r *sql.DB // readers; the writer itself when the read pool is disabled

	// insert[k] inserts 1<<k rows in one statement and returns the tag_uuids it inserted.
	// Binding a chunk of rows per statement instead of one measured 1.5 to 2 times faster on
	// modernc (per-statement VDBE and database/sql overhead dominate a row of this size); a
	// call's rows are cut into power-of-two chunks so that a handful of prepared statements
	// covers every count.
	insert [insertChunkLog + 1]*sql.Stmt

	// ckpt checkpoints the WAL in the background; nil for :memory:, where the writer's
	// own automatic checkpoints stay on.
	ckpt *checkpointer
}

// insertChunkLog sets the largest chunk, 1<<6 = 64 rows: 1,152 parameters, far below SQLite's
// limit of 32,766, and past the point where larger chunks stopped paying (measured at 50 and
// 100 rows alike).
const insertChunkLog = 6

// sqliteOptions are what a sqlite URL can say.
type sqliteOptions struct {
	path    string
	sync    string // NORMAL or FULL
	readers int
}

func parseSQLiteURL(raw string) (sqliteOptions, error) {
	o := sqliteOptions{sync: "NORMAL", readers: 4}
	if !strings.HasPrefix(raw, "sqlite:") && !strings.HasPrefix(raw, "sqlite3:") {
		o.path = raw // a plain path carries no options: it may legitimately contain '?'
		return o, nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return o, fmt.Errorf("%w: %v", ErrUnsupportedURL, err)
	}
	switch {
	case u.Opaque != "":
		o.path = u.Opaque // sqlite:relative/ttp.db
	case u.Host == "" || u.Host == "localhost":
		o.path = u.Path // sqlite:///abs/ttp.db
	default:
		o.path = u.Host + u.Path // sqlite://var/ttp.db, relative
	}
	if o.path == "" {
		return o, fmt.Errorf("%w: %q names no file", ErrUnsupportedURL, raw)
	}
	for k, vs := range u.Query() {
		v := vs[len(vs)-1]
		switch k {
		case "sync":
			switch v {
			case "normal":
				o.sync = "NORMAL"
			case "always":
				o.sync = "FULL"
			default:
				return o, fmt.Errorf("%w: sync=%q (want normal or always)", ErrUnsupportedURL, v)
			}
		case "readers":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return o, fmt.Errorf("%w: readers=%q (want a count >= 0)", ErrUnsupportedURL, v)
			}
			o.readers = n
		default:
			return o, fmt.Errorf("%w: sqlite option %q (known: sync, readers)", ErrUnsupportedURL, k)
		}
	}
	return o, nil
}

// dbRole is what a connection pool of a SQLite store is for.
type dbRole int

const (
	writer      dbRole = iota // the one connection that writes
	readers                   // the read pool
	checkpoints               // the checkpointer's connection
)

// dsn is the modernc DSN for the file: a "file:" URI, so that any character in the path is
// escaped rather than taken for the start of the query, with the pragmas every connection runs.
func (o sqliteOptions) dsn(role dbRole) string {
	name := o.path
	if name != ":memory:" {
		name = (&url.URL{Path: o.path}).EscapedPath()
		name = strings.NewReplacer("?", "%3f", "#", "%23").Replace(name)
	}
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(5000)")
	switch role {
	case writer:
		q.Add("_pragma", "journal_mode(WAL)")
		q.Add("_pragma", "synchronous("+o.sync+")")
		if o.path != ":memory:" {
			q.Add("_pragma", "wal_autocheckpoint(0)") // the checkpointer's work
		}
		// BEGIN IMMEDIATE takes the write lock at the start, so a transaction never fails
		// half-way with SQLITE_BUSY when it upgrades from reading to writing.
		q.Set("_txlock", "immediate")
	case checkpoints:
		q.Add("_pragma", "synchronous("+o.sync+")") // how hard a checkpoint syncs
	default:
		q.Add("_pragma", "query_only(1)")
	}
	return "file:" + name + "?" + q.Encode()
}

func openSQLite(ctx context.Context, raw string) (Store, error) {
	o, err := parseSQLiteURL(raw)
	if err != nil {
		return nil, err
	}
	w, err := sql.Open("sqlite", o.dsn(writer))
	if err != nil {
		return nil, fmt.Errorf("store: sqlite: open %s: %w", o.path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	s := &sqliteStore{w: w, r: w}
	if err := s.migrate(ctx); err != nil {
		w.Close()
		return nil, err
	}
	if o.readers > 0 && o.path != ":memory:" {
		r, err := sql.Open("sqlite", o.dsn(readers))
		if err != nil {
			w.Close()
			return nil, fmt.Errorf("store: sqlite: open readers %s: %w", o.path, err)
		}
		r.SetMaxOpenConns(o.readers)
		r.SetMaxIdleConns(o.readers)
		s.r = r
	}
	if o.path != ":memory:" {
		c, err := sql.Open("sqlite", o.dsn(checkpoints))
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("store: sqlite: open checkpointer %s: %w", o.path, err)
		}
		c.SetMaxOpenConns(1)
		c.SetMaxIdleConns(1)
		c.SetConnMaxLifetime(0)
		c.SetConnMaxIdleTime(0)
		s.ckpt = newCheckpointer(c)
	}
	const values = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
	for k := range s.insert {
		s.insert[k], err = w.PrepareContext(ctx, `INSERT INTO tags (`+tagColumns+`, upstream_kind, upstream_id) VALUES `+
			strings.Repeat(values+", ", 1<<k-1)+values+` ON CONFLICT (tag_uuid) DO NOTHING RETURNING tag_uuid`)
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("store: sqlite: prepare insert: %w", err)
		}
	}
	return s, nil
}

// migrate creates the schema, or checks that the one found is one this code reads.
func (s *sqliteStore) migrate(ctx context.Context) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: sqlite: migrate: %w", err)
	}
	defer tx.Rollback()
	for _, stmt := range sqliteSchema {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("store: sqlite: migrate: %w", err)
		}
	}
	var v int
	switch err := tx.QueryRowContext(ctx, `SELECT version FROM schema_version`).Scan(&v); {
	case errors.Is(err, sql.ErrNoRows):
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_version (version) VALUES (?)`, schemaVersion); err != nil {
			return fmt.Errorf("store: sqlite: migrate: %w", err)
		}
	case err != nil:
		return fmt.Errorf("store: sqlite: migrate: %w", err)
	case v > schemaVersion:
		return fmt.Errorf("%w: sqlite database has version %d, this ttp knows %d", ErrSchemaTooNew, v, schemaVersion)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: sqlite: migrate: %w", err)
	}
	return nil
}

func (s *sqliteStore) InsertTags(ctx context.Context, upstreamKind, upstreamID string, tags []abi.Tag) ([]abi.Tag, error) {
	out, err := s.InsertBatch(ctx, []Batch{{UpstreamKind: upstreamKind, UpstreamID: upstreamID, Tags: tags}})
	if err != nil {
		return nil, err
	}
	return out[0], nil
}

func (s *sqliteStore) InsertBatch(ctx context.Context, batches []Batch) ([][]abi.Tag, error) {
	rows, err := prepare(batches)
	if err != nil {
		return nil, err
	}
	if len(rows) == 0 {
		return make([][]abi.Tag, len(batches)), nil
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("store: sqlite: insert: %w", err)
	}
	defer tx.Rollback()
	// ON CONFLICT DO NOTHING RETURNING returns exactly the rows inserted; rows are unique by
	// tag_uuid (prepare), so each returned key names one row of the chunk.
	byUUID := make(map[string]int, len(rows))
	for i, r := range rows {
		byUUID[r.tag.TagUUID] = i
	}
	inserted := make([]*row, 0, len(rows))
	args := make([]any, 0, 18<<insertChunkLog)
	for rest := rows; len(rest) > 0; {
		k := min(insertChunkLog, bits.Len(uint(len(rest)))-1)
		chunk := rest[:1<<k]
		rest = rest[1<<k:]
		args = args[:0]
		for i := range chunk {
			r := chunk[i]
			t := &r.tag
			args = append(args, t.TagUUID, t.RuleID, t.RuleVersion, t.TechniqueID, nullable(t.SubTechniqueID),
				t.Tactic, t.Confidence, r.evidence, t.SourceKind, t.SourceID, t.AttackerUUID, nullable(t.IdentityUUID),
				nullable(t.SessionID), nullable(t.DeckyID), t.Producer, t.CreatedAt.Format(sqliteTime),
				r.upstreamKind, r.upstreamID)
		}
		rs, err := tx.StmtContext(ctx, s.insert[k]).QueryContext(ctx, args...)
		if err != nil {
			return nil, fmt.Errorf("store: sqlite: insert: %w", err)
		}
		for rs.Next() {
			var id string
			if err := rs.Scan(&id); err != nil {
				rs.Close()
				return nil, fmt.Errorf("store: sqlite: insert: %w", err)
			}
			i, ok := byUUID[id]
			if !ok {
				rs.Close()
				return nil, fmt.Errorf("store: sqlite: insert: returned unknown tag_uuid %q", id)
			}
			inserted = append(inserted, rows[i])
		}
		if err := rs.Close(); err != nil {
			return nil, fmt.Errorf("store: sqlite: insert: %w", err)
		}
		if err := rs.Err(); err != nil {
			return nil, fmt.Errorf("store: sqlite: insert: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("store: sqlite: insert: commit: %w", err)
	}
	s.committed()
	return results(batches, inserted), nil
}

func (s *sqliteStore) Unpublished(ctx context.Context, upstreamKind, upstreamID string) ([]abi.Tag, error) {
	return s.query(ctx, "unpublished", `SELECT `+tagColumns+` FROM tags
		WHERE upstream_kind = ? AND upstream_id = ? AND published = 0 ORDER BY tag_uuid`, upstreamKind, upstreamID)
}

func (s *sqliteStore) MarkPublished(ctx context.Context, tagUUIDs []string) error {
	if len(tagUUIDs) == 0 {
		return nil
	}
	if err := checkUUIDs(tagUUIDs); err != nil {
		return err
	}
	// One parameter however many keys: json_each unrolls the list, so there is no
	// SQLITE_MAX_VARIABLE_NUMBER to chunk around.
	ids, _ := json.Marshal(tagUUIDs) // a []string always marshals
	_, err := s.w.ExecContext(ctx, `UPDATE tags SET published = 1
		WHERE published = 0 AND tag_uuid IN (SELECT value FROM json_each(?))`, string(ids))
	if err != nil {
		return fmt.Errorf("store: sqlite: mark published: %w", err)
	}
	s.committed()
	return nil
}

// committed tells the checkpointer, if any, that the WAL has grown.
func (s *sqliteStore) committed() {
	if s.ckpt != nil {
		s.ckpt.committed()
	}
}

func (s *sqliteStore) Tags(ctx context.Context, f Filter) ([]abi.Tag, error) {
	q := `SELECT ` + tagColumns + ` FROM tags WHERE (? = '' OR upstream_kind = ?) AND (? = '' OR upstream_id = ?)
		AND tag_uuid >= ? ORDER BY tag_uuid`
	return s.query(ctx, "tags", q, f.UpstreamKind, f.UpstreamKind, f.UpstreamID, f.UpstreamID, uuidFloor(f.Since))
}

func (s *sqliteStore) Count(ctx context.Context) (int64, error) {
	var n int64
	if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM tags`).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: sqlite: count: %w", err)
	}
	return n, nil
}

func (s *sqliteStore) Close() error {
	var errs []error
	if s.ckpt != nil {
		errs = append(errs, s.ckpt.close()) // first: the last connection closed checkpoints what is left
	}
	for _, stmt := range s.insert {
		if stmt != nil {
			errs = append(errs, stmt.Close())
		}
	}
	if s.r != s.w {
		errs = append(errs, s.r.Close())
	}
	errs = append(errs, s.w.Close())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("store: sqlite: close: %w", err)
	}
	return nil
}

// query reads tags on the read pool. A reader sees every transaction the writer committed
// before the query began (WAL snapshot isolation), so an Unpublished right after InsertTags
// sees the insert.
func (s *sqliteStore) query(ctx context.Context, op, q string, args ...any) ([]abi.Tag, error) {
	rs, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: sqlite: %s: %w", op, err)
	}
	defer rs.Close()
	var out []abi.Tag
	for rs.Next() {
		var (
			t                                 abi.Tag
			sub, ev, identity, session, decky *string
			created                           string
		)
		if err := rs.Scan(&t.TagUUID, &t.RuleID, &t.RuleVersion, &t.TechniqueID, &sub, &t.Tactic, &t.Confidence,
			&ev, &t.SourceKind, &t.SourceID, &t.AttackerUUID, &identity, &session, &decky, &t.Producer, &created); err != nil {
			return nil, fmt.Errorf("store: sqlite: %s: %w", op, err)
		}
		t.SubTechniqueID, t.IdentityUUID, t.SessionID, t.DeckyID = deref(sub), deref(identity), deref(session), deref(decky)
		if t.Evidence, err = decodeEvidence(ev); err != nil {
			return nil, fmt.Errorf("store: sqlite: %s: tag %s: %w", op, t.TagUUID, err)
		}
		if t.CreatedAt, err = time.Parse(time.RFC3339Nano, created); err != nil {
			return nil, fmt.Errorf("store: sqlite: %s: tag %s: created_at: %w", op, t.TagUUID, err)
		}
		t.ObservedAt, _ = abi.TagUUIDTime(t.TagUUID)
		out = append(out, t)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("store: sqlite: %s: %w", op, err)
	}
	return out, nil
}
