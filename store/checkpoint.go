package store

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// checkpointInterval is the least time between two WAL checkpoints of a SQLite store. At the
// daemon's flat-out rate the WAL grows by a few MB a second, so a checkpoint copies some
// hundreds of pages; SQLite's own default, one every 1,000 pages, would run about as often.
const checkpointInterval = 250 * time.Millisecond

// checkpointer runs the WAL checkpoints of a SQLite store on a connection of its own, in the
// background, instead of in the commit that crosses SQLite's 1,000-page mark
// (wal_autocheckpoint, off on the writer): a checkpoint copies the WAL's pages into the
// database file and, at synchronous=NORMAL, syncs both files, and in the commit it held up
// the worker's store stage, and every batch behind it, for milliseconds (RATIONALE.md,
// "Checkpoints off the commit path"). A PASSIVE checkpoint waits for no reader or writer, so
// the writer goes on committing while it runs.
type checkpointer struct {
	db    *sql.DB
	kick  chan struct{} // a commit happened since the last checkpoint
	stop  chan struct{}
	done  chan struct{}
	runs  atomic.Int64
	fails atomic.Int64
	once  sync.Once
}

func newCheckpointer(db *sql.DB) *checkpointer {
	c := &checkpointer{db: db, kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go c.loop()
	return c
}

// committed tells the checkpointer that the WAL has grown; it never blocks.
func (c *checkpointer) committed() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

func (c *checkpointer) loop() {
	defer close(c.done)
	t := time.NewTimer(checkpointInterval)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-c.kick:
		}
		select { // at most one checkpoint an interval: the commits meanwhile share it
		case <-c.stop:
			return
		case <-t.C:
		}
		if err := c.run(); err != nil {
			c.fails.Add(1) // the next commit tries again; Close checkpoints what is left
		}
		t.Reset(checkpointInterval)
	}
}

// run checkpoints once.
func (c *checkpointer) run() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var busy, log, done int
	if err := c.db.QueryRowContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &log, &done); err != nil {
		return fmt.Errorf("store: sqlite: checkpoint: %w", err)
	}
	c.runs.Add(1)
	return nil
}

// close stops the loop and closes its connection; a second call does nothing, as a second
// Close of the store does.
func (c *checkpointer) close() error {
	var err error
	c.once.Do(func() {
		close(c.stop)
		<-c.done
		if e := c.db.Close(); e != nil {
			err = fmt.Errorf("store: sqlite: close checkpointer: %w", e)
		}
	})
	return err
}
