package wasm

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// Quarantine policy: QuarantineAfter consecutive failures take a plugin out of service for a
// back-off that starts at 1 s and doubles, up to 5 min, each time it is quarantined again
// without a success in between.
const (
	QuarantineAfter = 5
	firstBackoff    = time.Second
	maxBackoff      = 5 * time.Minute
)

// Health is one plugin's failure record, shared by its successive pools so that a definition
// change does not wipe a quarantine. Its clock is injectable so tests need no sleeping.
type Health struct {
	now func() time.Time

	mu          sync.Mutex
	consecutive int
	until       time.Time
	backoff     time.Duration
	lastErr     error
	stallLogged time.Time // the last stall logged (one a second at most)
	stallsHeld  int       // stalls not logged since

	Calls       atomic.Int64
	Failures    atomic.Int64
	Timeouts    atomic.Int64
	Quarantines atomic.Int64
	// Stalls are calls that timed out and whose retry, on a fresh instance under a budget of
	// its own CPU time, succeeded: the host did not run the call in time, the plugin was not
	// at fault. They count as successes (the retry's tags are kept), not as failures.
	Stalls    atomic.Int64
	Skipped   atomic.Int64 // calls not made while quarantined
	Oversized atomic.Int64 // calls not made: the event's record was over abi.MaxRecord
	nanos     atomic.Int64 // total call time, for the mean
	slowest   atomic.Int64
}

// NewHealth returns a Health on the given clock.
func NewHealth(now func() time.Time) *Health { return &Health{now: now} }

// Allow reports whether the plugin may be called now.
func (h *Health) Allow() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.now().Before(h.until) {
		h.Skipped.Add(1)
		return false
	}
	return true
}

// Success records a good call: the failure streak and the back-off reset.
func (h *Health) Success() {
	h.Calls.Add(1)
	h.mu.Lock()
	h.consecutive, h.backoff = 0, 0
	h.mu.Unlock()
}

// Stall records a call resolved by its retry (see Stalls) and reports whether to log it
// now, with how many stalls were not logged since the last one: one line a second at most,
// so a starved host cannot flood the log.
func (h *Health) Stall() (logNow bool, held int) {
	h.Stalls.Add(1)
	h.mu.Lock()
	defer h.mu.Unlock()
	if now := h.now(); h.stallLogged.IsZero() || now.Sub(h.stallLogged) >= time.Second || now.Before(h.stallLogged) {
		h.stallLogged, held, h.stallsHeld = now, h.stallsHeld, 0
		return true, held
	}
	h.stallsHeld++
	return false, 0
}

// Failure records a failed call and reports whether it started a quarantine.
func (h *Health) Failure(err error) bool {
	h.Calls.Add(1)
	h.Failures.Add(1)
	if isTimeout(err) {
		h.Timeouts.Add(1)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lastErr = err
	h.consecutive++
	if h.consecutive < QuarantineAfter {
		return false
	}
	h.consecutive = 0
	if h.backoff == 0 {
		h.backoff = firstBackoff
	} else {
		h.backoff = min(2*h.backoff, maxBackoff)
	}
	h.until = h.now().Add(h.backoff)
	h.Quarantines.Add(1)
	return true
}

// Quarantined reports whether the plugin is out of service now, until when, and the failure
// that put it there.
func (h *Health) Quarantined() (bool, time.Time, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.now().Before(h.until), h.until, h.lastErr
}

func (h *Health) observe(d time.Duration) {
	h.nanos.Add(int64(d))
	for {
		cur := h.slowest.Load()
		if int64(d) <= cur || h.slowest.CompareAndSwap(cur, int64(d)) {
			return
		}
	}
}

// Slowest is the longest call observed.
func (h *Health) Slowest() time.Duration { return time.Duration(h.slowest.Load()) }

func isTimeout(err error) bool { return errors.Is(err, ErrTimeout) }
