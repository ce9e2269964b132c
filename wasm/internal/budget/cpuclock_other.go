//go:build !linux

package budget

import "time"

// threadClock is unavailable off Linux: a retry is then bounded by its wall-clock ceiling
// only (Limits.Retry).
type threadClock struct{}

func currentThreadClock() (threadClock, bool)  { return threadClock{}, false }
func (threadClock) now() (time.Duration, bool) { return 0, false }
