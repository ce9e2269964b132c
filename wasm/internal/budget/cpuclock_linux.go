//go:build linux

package budget

import (
	"syscall"
	"time"
	"unsafe"
)

// threadClock is the CPU-time clock of one OS thread (Linux: clock_gettime on the thread's
// CPUCLOCK_SCHED clock, readable from any thread of the process).
type threadClock struct{ id int32 }

// currentThreadClock returns the clock of the calling thread; the caller has locked its
// goroutine to the thread (runtime.LockOSThread) for as long as it reads the clock.
func currentThreadClock() (threadClock, bool) {
	tid := syscall.Gettid()
	// MAKE_THREAD_CPUCLOCK(tid, CPUCLOCK_SCHED) of the kernel's posix-cpu-timers.
	c := threadClock{id: int32((^uint32(tid))<<3 | 6)}
	_, ok := c.now()
	return c, ok
}

// now is the CPU time the thread has run since it started.
func (c threadClock) now() (time.Duration, bool) {
	var ts syscall.Timespec
	_, _, errno := syscall.RawSyscall(syscall.SYS_CLOCK_GETTIME, uintptr(c.id), uintptr(unsafe.Pointer(&ts)), 0)
	if errno != 0 {
		return 0, false
	}
	return time.Duration(ts.Nano()), true
}
