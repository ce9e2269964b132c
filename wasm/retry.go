package wasm

import (
	"context"
	"time"

	"github.com/decnet/ttp/abi"
	"github.com/decnet/ttp/wasm/internal/budget"
)

// Retrier is an Instance that can make a call again as the retry of one that timed out.
// Both loaders (this package's and package wasm/extism) implement it.
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
	Instance
	// RetryTag is Tag under the retry's budget. The instance must be a fresh one: the
	// timed-out instance was closed by its deadline.
	RetryTag(ctx context.Context, kindIndex int, ev *abi.Event, lim abi.ReplyLimits, out []abi.ReplyDraft) ([]abi.ReplyDraft, error)
}

// CallCPUTime runs f on a locked OS thread and returns the CPU time the thread ran during f:
// the call's own running time, which a busy host does not inflate. ok is false where a
// thread's clock cannot be read (not Linux). It costs a few system calls (3-16 us each on the
// project's 2-core machine), so it is for measuring (ttp conform judges latency with it), not
// for the hot path.
func CallCPUTime(f func()) (cpu time.Duration, ok bool) { return budget.CPUTime(f) }
