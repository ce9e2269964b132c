package store

// Synchronous reads PRAGMA synchronous on a SQLite store's writer connection (1 NORMAL,
// 2 FULL): the pragma is per connection, so only the writer itself can answer.
func Synchronous(s Store) (int, error) {
	var n int
	err := s.(*sqliteStore).w.QueryRow(`PRAGMA synchronous`).Scan(&n)
	return n, err
}
