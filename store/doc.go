// Package store keeps tags idempotently, with a published mark that makes the daemon's outbox
// crash-safe: SQLite (embedded, the default) and PostgreSQL (shared by a swarm), chosen by URL
// in Open, behind one interface.
//
// # The outbox order
//
// Per upstream event (one JetStream message) the daemon:
//
//  1. inserts the event's new tags in one transaction, each marked unpublished
//     (InsertTags, or InsertBatch for many messages in one commit). A tag's key is its
//     deterministic tag_uuid and the insert is INSERT ... ON CONFLICT (tag_uuid) DO NOTHING,
//     so a redelivered event inserts nothing;
//  2. publishes the upstream event's unpublished tags (Unpublished): on a first delivery the
//     ones just inserted, after a crash whatever the crash left unmarked;
//  3. marks them published (MarkPublished);
//  4. acks the message.
//
// A crash before 1 commits leaves nothing behind and JetStream redelivers; a crash between 1
// and 3 leaves the tags unmarked, so the redelivery inserts nothing and republishes them (the
// output stream drops the duplicate by its Nats-Msg-Id); a crash between 3 and 4 makes the
// redelivery insert nothing and publish nothing. Nothing is lost and nothing is added.
//
// Tags of the command events that abi.Expand fans out of a session belong to the session's
// envelope: every row carries the upstream event's kind and id beside the tag's own
// source_kind and source_id, and Unpublished selects by the upstream pair.
//
// # Keys
//
// tag_uuid is time-ordered (abi.TagUUID: the event's observed_at in the top 48 bits), so the
// primary key index is appended to rather than split at random: BenchmarkInsertSQLite measures
// the difference. A tag_uuid must be a canonical lower-case UUID; SQLite keeps it as text,
// PostgreSQL as uuid, and both order it the same way (byte order).
//
// The conformance suite both stores pass is in store/storetest.
package store
