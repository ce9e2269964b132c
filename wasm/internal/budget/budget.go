// Package budget runs a plugin call under a budget of its own CPU time: the retry of a call
// that timed out, which must tell a guest that loops from a host too busy to run it
// (RATIONALE.md, "Deadlines on a busy host"). It is internal to the runtime and its loaders.
package budget

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Stop says what, if anything, stopped a call run by Run.
type Stop int

// The ways a call run by Run ends.
const (
	NotStopped  Stop = iota // the call returned by itself
	StoppedCPU              // the call ran its CPU budget: the plugin's doing
	StoppedWall             // the wall-clock ceiling passed first
)

// Result is what Run measured of one call.
type Result struct {
	CPU     time.Duration // CPU time the call's thread ran (0 when the clock is unavailable)
	Wall    time.Duration
	Stopped Stop
}

// Run runs call on a locked OS thread and calls stop (which must make call return,
// by closing its module or cancelling its context) once the thread has run budget of CPU
// time since call started, or once ceiling of wall time has passed, whichever is first.
// Where the thread's clock cannot be read (not Linux), only the ceiling applies.
//
// The check is a timer, first at budget (CPU time never runs ahead of wall time on one
// thread), then again after the CPU the call still has, so a quiet host checks once or
// twice and a call that finishes in time costs no check at all.
func Run(budget, ceiling time.Duration, stop func(), call func() error) (Result, error) {
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
		stopped Stop
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
					stopped = StoppedCPU
					stop()
					return
				}
				left = min(left, budget-ran)
			}
		}
		if elapsed >= ceiling {
			stopped = StoppedWall
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
	r := Result{Wall: time.Since(start), Stopped: stopped}
	mu.Unlock()
	timer.Stop()
	if haveClock {
		if now, ok := clock.now(); ok {
			r.CPU = now - cpu0
		}
	}
	if f := Observed.Load(); f != nil {
		(*f)(r)
	}
	return r, err
}

// Observed, when set (by the runtime's tests), sees what every retry measured.
var Observed atomic.Pointer[func(Result)]

// Describe says what stopped the call and what it ran, for the timeout error of a retry
// (budget and ceiling are what Run was given).
func (r Result) Describe(budget, ceiling time.Duration) string {
	if r.Stopped == StoppedCPU {
		return fmt.Sprintf("retry ran %v of its own running time, over %v of CPU", r.CPU.Round(time.Microsecond), budget)
	}
	return fmt.Sprintf("retry reached its %v ceiling having run %v of CPU: waiting, or a host too busy to run it", ceiling, r.CPU.Round(time.Microsecond))
}

// CPUTime runs f on a locked OS thread and returns the CPU time the thread ran during f; ok
// is false where a thread's clock cannot be read (not Linux).
func CPUTime(f func()) (cpu time.Duration, ok bool) {
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
