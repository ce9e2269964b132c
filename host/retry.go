package host

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/decnet/ttp/abi"
)

// Retrier is an Instance that can make a call again as the retry of one that timed out.
// Both loaders implement it.
//
// A first call runs under Limits.Deadline of wall time: on a loaded machine (measured here:
// 2 cores, load 8-10) a 3 ms call is sometimes stopped at 50 ms because the thread was not
// running, which is the host's fault, not the plugin's. The retry tells the two apart by
// measuring the call's own running time: it runs on a locked OS thread and is stopped once
// that thread has run Limits.Deadline of CPU time (a guest that loops), or at the
// Limits.Retry wall-clock ceiling (a guest that waits without computing, or a host that
// does not run it at all). Reading a thread's CPU clock costs two system calls a call
// (3-16 us on this machine), which is why only the retry pays it (RATIONALE.md, "Deadlines
// on a busy host").
type Retrier interface {
	// RetryTag is Tag under the retry's budget. The instance must be a fresh one: the
	// timed-out instance was closed by its deadline.
	RetryTag(ctx context.Context, kindIndex int, ev *abi.Event, lim abi.ReplyLimits, out []abi.ReplyDraft) ([]abi.ReplyDraft, error)
}

// budgetStop says what, if anything, stopped a call run by onCPUBudget.
type budgetStop int

const (
	notStopped  budgetStop = iota
	stoppedCPU             // the call ran its CPU budget: the plugin's doing
	stoppedWall            // the wall-clock ceiling passed first
)

// retryResult is what onCPUBudget measured of one call.
type retryResult struct {
	cpu     time.Duration // CPU time the call's thread ran (0 when the clock is unavailable)
	wall    time.Duration
	stopped budgetStop
}

// onCPUBudget runs call on a locked OS thread and calls stop (which must make call return,
// by closing its module or cancelling its context) once the thread has run budget of CPU
// time since call started, or once ceiling of wall time has passed, whichever is first.
// Where the thread's clock cannot be read (not Linux), only the ceiling applies.
//
// The check is a timer, first at budget (CPU time never runs ahead of wall time on one
// thread), then again after the CPU the call still has, so a quiet host checks once or
// twice and a call that finishes in time costs no check at all.
func onCPUBudget(budget, ceiling time.Duration, stop func(), call func() error) (retryResult, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	clock, haveClock := currentThreadClock()
	var cpu0 time.Duration
	if haveClock {
		cpu0, haveClock = clock.now()
	}
	start := time.Now()
	var (
		mu      sync.Mutex
		done    bool
		stopped budgetStop
		timer   *time.Timer
	)
	check := func() {
		mu.Lock()
		defer mu.Unlock()
		if done {
			return // the call ended: its thread may be running something else
		}
		elapsed := time.Since(start)
		left := ceiling - elapsed
		if haveClock {
			if now, ok := clock.now(); ok {
				ran := now - cpu0
				if ran >= budget {
					stopped = stoppedCPU
					stop()
					return
				}
				left = min(left, budget-ran)
			}
		}
		if elapsed >= ceiling {
			stopped = stoppedWall
			stop()
			return
		}
		timer.Reset(max(left, time.Millisecond))
	}
	first := ceiling
	if haveClock {
		first = min(budget, ceiling)
	}
	mu.Lock()
	timer = time.AfterFunc(first, check)
	mu.Unlock()
	err := call()
	mu.Lock()
	done = true
	r := retryResult{wall: time.Since(start), stopped: stopped}
	mu.Unlock()
	timer.Stop()
	if haveClock {
		if now, ok := clock.now(); ok {
			r.cpu = now - cpu0
		}
	}
	if f := retryObserved.Load(); f != nil {
		(*f)(r)
	}
	return r, err
}

// retryObserved, when set (by tests), sees what every retry measured.
var retryObserved atomic.Pointer[func(retryResult)]

// timeoutError is the error of a retry stopped by its budget: ErrTimeout, with what stopped
// it and what it ran.
func (r retryResult) timeoutError(budget, ceiling time.Duration) error {
	if r.stopped == stoppedCPU {
		return fmt.Errorf("%w (retry ran %v of its own running time, over %v of CPU)", ErrTimeout, r.cpu.Round(time.Microsecond), budget)
	}
	return fmt.Errorf("%w (retry reached its %v ceiling having run %v of CPU: waiting, or a host too busy to run it)", ErrTimeout, ceiling, r.cpu.Round(time.Microsecond))
}

// CallCPUTime runs f on a locked OS thread and returns the CPU time the thread ran during f:
// the call's own running time, which a busy host does not inflate. ok is false where a
// thread's clock cannot be read (not Linux). It costs a few system calls (3-16 us each on the
// project's 2-core machine), so it is for measuring (ttp conform judges latency with it), not
// for the hot path.
func CallCPUTime(f func()) (cpu time.Duration, ok bool) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	clock, ok := currentThreadClock()
	var c0 time.Duration
	if ok {
		c0, ok = clock.now()
	}
	f()
	if !ok {
		return 0, false
	}
	c1, ok := clock.now()
	return c1 - c0, ok
}
