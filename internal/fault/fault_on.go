//go:build ttpfault

package fault

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
)

// Enabled reports whether this binary was built with the fault hook (-tags ttpfault).
const Enabled = true

// The injection TTP_FAULT asks for, read once at start: the point's name and how many
// passages to let by before the kill.
var (
	point     string
	remaining atomic.Int64
)

func init() {
	kind, n, ok := strings.Cut(os.Getenv("TTP_FAULT"), ":")
	if !ok {
		return
	}
	v, err := strconv.ParseInt(n, 10, 64)
	if err != nil || v <= 0 {
		fmt.Fprintf(os.Stderr, "ttp: TTP_FAULT=%q: want after-commit:N or after-publish:N with N > 0\n", os.Getenv("TTP_FAULT"))
		os.Exit(2)
	}
	point = kind
	remaining.Store(v)
}

// At kills the process with SIGKILL at the Nth passage through the point TTP_FAULT names,
// after saying so on stderr (the test checks that the kill was this one).
func At(p string) {
	if p != point || remaining.Load() <= 0 {
		return
	}
	if remaining.Add(-1) == 0 {
		fmt.Fprintf(os.Stderr, "level=WARN msg=\"injected fault: killing the process\" at=%s\n", p)
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
	}
}
