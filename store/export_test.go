package store

// Synchronous reads PRAGMA synchronous on a SQLite store's writer connection (1 NORMAL,
// 2 FULL): the pragma is per connection, so only the writer itself can answer.
func Synchronous(s Store) (int, error) {
	var n int
	err := s.(*sqliteStore).w.QueryRow(`PRAGMA synchronous`).Scan(&n)
	return n, err
}

// AutoCheckpoint reads PRAGMA wal_autocheckpoint on a SQLite store's writer connection.
func AutoCheckpoint(s Store) (int, error) {
	var n int
	err := s.(*sqliteStore).w.QueryRow(`PRAGMA wal_autocheckpoint`).Scan(&n)
	return n, err
}

// Checkpoints is how many checkpoints a SQLite store's checkpointer ran; -1 without one.
func Checkpoints(s Store) int64 {
	if c := s.(*sqliteStore).ckpt; c != nil {
		return c.runs.Load()
	}
	return -1
}
