package store

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/decnet/ttp/abi"
)

// defaultPostgresSchema keeps the tables out of "public" in a database the swarm may share
// with other applications.
const defaultPostgresSchema = "ttp"

// postgresStore is the shared store of a swarm: every worker inserts through its own pool and
// the unique primary key settles races between them.
type postgresStore struct {
	pool   *pgxpool.Pool
	schema string // quoted identifier

	insert, unpublished, mark, tags, count string
}

func openPostgres(ctx context.Context, raw string) (Store, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnsupportedURL, err)
	}
	q := u.Query()
	schema := defaultPostgresSchema
	if v := q.Get("schema"); v != "" {
		schema = v
	}
	q.Del("schema")
	u.RawQuery = q.Encode()
	cfg, err := pgxpool.ParseConfig(u.String())
	if err != nil {
		return nil, fmt.Errorf("store: postgres: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("store: postgres: %w", err)
	}
	s := newPostgresStore(pool, schema)
	if err := s.migrate(ctx, schema); err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

func newPostgresStore(pool *pgxpool.Pool, schema string) *postgresStore {
	sc := pgx.Identifier{schema}.Sanitize()
	return &postgresStore{
		pool:   pool,
		schema: sc,
		// One statement whatever the row count: the columns travel as arrays and unnest turns
		// them back into rows, so 1,000 tags cost one round trip. WITH ORDINALITY keeps the
		// caller's (tag_uuid) order, which is what keeps concurrent inserts deadlock-free.
		insert: `INSERT INTO ` + sc + `.tags (` + tagColumns + `, upstream_kind, upstream_id)
			SELECT t.tag_uuid::uuid, t.rule_id, t.rule_version, t.technique_id, t.sub_technique_id, t.tactic,
				t.confidence, t.evidence::jsonb, t.source_kind, t.source_id, t.attacker_uuid, t.identity_uuid,
				t.session_id, t.decky_id, t.producer, t.created_at, t.upstream_kind, t.upstream_id
			FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::float8[],
				$8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[],
				$15::text[], $16::timestamptz[], $17::text[], $18::text[])
				WITH ORDINALITY AS t(tag_uuid, rule_id, rule_version, technique_id, sub_technique_id, tactic,
					confidence, evidence, source_kind, source_id, attacker_uuid, identity_uuid, session_id,
					decky_id, producer, created_at, upstream_kind, upstream_id, ord)
			ORDER BY t.ord
			ON CONFLICT (tag_uuid) DO NOTHING
			RETURNING tag_uuid::text`,
		unpublished: `SELECT ` + pgTagColumns + ` FROM ` + sc + `.tags
			WHERE upstream_kind = $1::text AND upstream_id = $2::text AND NOT published ORDER BY tag_uuid`,
		mark: `UPDATE ` + sc + `.tags SET published = true
			WHERE tag_uuid = ANY($1::text[]::uuid[]) AND NOT published`,
		tags: `SELECT ` + pgTagColumns + ` FROM ` + sc + `.tags
			WHERE ($1::text = '' OR upstream_kind = $1::text) AND ($2::text = '' OR upstream_id = $2::text)
				AND tag_uuid >= $3::uuid ORDER BY tag_uuid`,
		count: `SELECT count(*) FROM ` + sc + `.tags`,
	}
}

// pgTagColumns reads tagColumns with the uuid and jsonb columns as text, so that scanning
// needs no pgtype and evidence decodes exactly as SQLite's does.
const pgTagColumns = `tag_uuid::text, rule_id, rule_version, technique_id, sub_technique_id, tactic, confidence,
	evidence::text, source_kind, source_id, attacker_uuid, identity_uuid, session_id, decky_id, producer, created_at`

// migrate creates the schema and tables, or checks the version found, under a transaction-wide
// advisory lock: workers of a swarm starting together would otherwise race on CREATE TABLE.
func (s *postgresStore) migrate(ctx context.Context, schema string) error {
	sc := s.schema
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("store: postgres: migrate: %w", err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext($1))`, "ttp store migrate "+schema); err != nil {
		return fmt.Errorf("store: postgres: migrate: %w", err)
	}
	// Create the schema only when it is missing: CREATE SCHEMA IF NOT EXISTS still needs the
	// CREATE privilege on the database, which an operator who made the schema may not grant.
	var exists bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, schema).Scan(&exists); err != nil {
		return fmt.Errorf("store: postgres: migrate: %w", err)
	}
	stmts := []string{
		`CREATE TABLE IF NOT EXISTS ` + sc + `.schema_version (version integer NOT NULL)`,
		`CREATE TABLE IF NOT EXISTS ` + sc + `.tags (
			tag_uuid         uuid PRIMARY KEY,
			rule_id          text NOT NULL,
			rule_version     text NOT NULL,
			technique_id     text NOT NULL,
			sub_technique_id text,
			tactic           text NOT NULL,
			confidence       double precision NOT NULL,
			evidence         jsonb,
			source_kind      text NOT NULL,
			source_id        text NOT NULL,
			attacker_uuid    text,
			identity_uuid    text,
			session_id       text,
			decky_id         text,
			producer         text NOT NULL,
			created_at       timestamptz NOT NULL,
			upstream_kind    text NOT NULL,
			upstream_id      text NOT NULL,
			published        boolean NOT NULL DEFAULT false
		)`,
		`CREATE INDEX IF NOT EXISTS tags_upstream ON ` + sc + `.tags (upstream_kind, upstream_id, published)`,
	}
	if !exists {
		stmts = append([]string{`CREATE SCHEMA ` + sc}, stmts...)
	}
	for _, stmt := range stmts {
		if _, err := tx.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("store: postgres: migrate: %w", err)
		}
	}
	var v int
	switch err := tx.QueryRow(ctx, `SELECT version FROM `+sc+`.schema_version`).Scan(&v); {
	case errors.Is(err, pgx.ErrNoRows):
		if _, err := tx.Exec(ctx, `INSERT INTO `+sc+`.schema_version (version) VALUES ($1)`, schemaVersion); err != nil {
			return fmt.Errorf("store: postgres: migrate: %w", err)
		}
	case err != nil:
		return fmt.Errorf("store: postgres: migrate: %w", err)
	case v > schemaVersion:
		return fmt.Errorf("%w: postgres schema %s has version %d, this ttp knows %d", ErrSchemaTooNew, schema, v, schemaVersion)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("store: postgres: migrate: %w", err)
	}
	return nil
}

func (s *postgresStore) InsertTags(ctx context.Context, upstreamKind, upstreamID string, tags []abi.Tag) ([]abi.Tag, error) {
	out, err := s.InsertBatch(ctx, []Batch{{UpstreamKind: upstreamKind, UpstreamID: upstreamID, Tags: tags}})
	if err != nil {
		return nil, err
	}
	return out[0], nil
}

func (s *postgresStore) InsertBatch(ctx context.Context, batches []Batch) ([][]abi.Tag, error) {
	rows, err := prepare(batches)
	if err != nil {
		return nil, err
	}
	if len(rows) == 0 {
		return make([][]abi.Tag, len(batches)), nil
	}
	n := len(rows)
	var (
		uuids, ruleIDs, ruleVersions, techniques, tactics = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		sourceKinds, sourceIDs, producers, ukinds, uids   = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		subs, evidence, attackers, identities, sessions   = make([]*string, n), make([]*string, n), make([]*string, n), make([]*string, n), make([]*string, n)
		deckies                                           = make([]*string, n)
		confidences                                       = make([]float64, n)
		created                                           = make([]time.Time, n)
	)
	byUUID := make(map[string]int, n)
	for i, r := range rows {
		t := &r.tag
		uuids[i], ruleIDs[i], ruleVersions[i], techniques[i], tactics[i] = t.TagUUID, t.RuleID, t.RuleVersion, t.TechniqueID, t.Tactic
		sourceKinds[i], sourceIDs[i], producers[i], ukinds[i], uids[i] = t.SourceKind, t.SourceID, t.Producer, r.upstreamKind, r.upstreamID
		subs[i], evidence[i], attackers[i] = nullable(t.SubTechniqueID), r.evidence, t.AttackerUUID
		identities[i], sessions[i], deckies[i] = nullable(t.IdentityUUID), nullable(t.SessionID), nullable(t.DeckyID)
		confidences[i], created[i] = t.Confidence, t.CreatedAt
		byUUID[t.TagUUID] = i
	}
	// One statement is one implicit transaction: every batch commits, or none does.
	rs, err := s.pool.Query(ctx, s.insert, uuids, ruleIDs, ruleVersions, techniques, subs, tactics, confidences,
		evidence, sourceKinds, sourceIDs, attackers, identities, sessions, deckies, producers, created, ukinds, uids)
	if err != nil {
		return nil, fmt.Errorf("store: postgres: insert: %w", err)
	}
	got, err := pgx.CollectRows(rs, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("store: postgres: insert: %w", err)
	}
	inserted := make([]*row, 0, len(got))
	for _, id := range got {
		i, ok := byUUID[id]
		if !ok {
			return nil, fmt.Errorf("store: postgres: insert: server returned unknown tag_uuid %q", id)
		}
		inserted = append(inserted, rows[i])
	}
	return results(batches, inserted), nil
}

func (s *postgresStore) Unpublished(ctx context.Context, upstreamKind, upstreamID string) ([]abi.Tag, error) {
	return s.query(ctx, "unpublished", s.unpublished, upstreamKind, upstreamID)
}

func (s *postgresStore) MarkPublished(ctx context.Context, tagUUIDs []string) error {
	if len(tagUUIDs) == 0 {
		return nil
	}
	if err := checkUUIDs(tagUUIDs); err != nil {
		return err
	}
	if _, err := s.pool.Exec(ctx, s.mark, tagUUIDs); err != nil {
		return fmt.Errorf("store: postgres: mark published: %w", err)
	}
	return nil
}

func (s *postgresStore) Tags(ctx context.Context, f Filter) ([]abi.Tag, error) {
	return s.query(ctx, "tags", s.tags, f.UpstreamKind, f.UpstreamID, uuidFloor(f.Since))
}

func (s *postgresStore) Count(ctx context.Context) (int64, error) {
	var n int64
	if err := s.pool.QueryRow(ctx, s.count).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: postgres: count: %w", err)
	}
	return n, nil
}

func (s *postgresStore) Close() error {
	s.pool.Close()
	return nil
}

func (s *postgresStore) query(ctx context.Context, op, q string, args ...any) ([]abi.Tag, error) {
	rs, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: postgres: %s: %w", op, err)
	}
	defer rs.Close()
	var out []abi.Tag
	for rs.Next() {
		var (
			t                                 abi.Tag
			sub, ev, identity, session, decky *string
		)
		if err := rs.Scan(&t.TagUUID, &t.RuleID, &t.RuleVersion, &t.TechniqueID, &sub, &t.Tactic, &t.Confidence,
			&ev, &t.SourceKind, &t.SourceID, &t.AttackerUUID, &identity, &session, &decky, &t.Producer, &t.CreatedAt); err != nil {
			return nil, fmt.Errorf("store: postgres: %s: %w", op, err)
		}
		t.SubTechniqueID, t.IdentityUUID, t.SessionID, t.DeckyID = deref(sub), deref(identity), deref(session), deref(decky)
		t.CreatedAt = t.CreatedAt.UTC()
		t.ObservedAt, _ = abi.TagUUIDTime(t.TagUUID)
		if t.Evidence, err = decodeEvidence(ev); err != nil {
			return nil, fmt.Errorf("store: postgres: %s: tag %s: %w", op, t.TagUUID, err)
		}
		out = append(out, t)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("store: postgres: %s: %w", op, err)
	}
	return out, nil
}
