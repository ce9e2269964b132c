package budget

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// sink keeps the spinning loop from being optimised away.
var sink atomic.Int64

// TestRun: the retry's budget is CPU time: a call that waits is not stopped by it (only
// by the wall-clock ceiling), a call that computes is.
func TestRun(t *testing.T) {
	if _, ok := currentThreadClock(); !ok {
		t.Skip("no thread CPU clock on this system: the retry has its wall-clock ceiling only")
	}
	tests := []struct {
		name    string
		budget  time.Duration
		ceiling time.Duration
		call    func(stopped <-chan struct{}) error
		want    Stop
	}{
		// 200 ms asleep is 200 ms of wall time and next to no CPU: not stopped at 20 ms.
		{"waiting under the ceiling", 20 * time.Millisecond, time.Minute, func(stopped <-chan struct{}) error {
			select {
			case <-time.After(200 * time.Millisecond):
				return nil
			case <-stopped:
				return errors.New("stopped")
			}
		}, NotStopped},
		{"computing past the budget", 20 * time.Millisecond, time.Minute, func(stopped <-chan struct{}) error {
			x := 0
			for {
				select {
				case <-stopped:
					sink.Add(int64(x))
					return errors.New("stopped")
				default:
					x++
				}
			}
		}, StoppedCPU},
		{"waiting past the ceiling", time.Minute, 200 * time.Millisecond, func(stopped <-chan struct{}) error {
			<-stopped
			return errors.New("stopped")
		}, StoppedWall},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stopped := make(chan struct{})
			var once sync.Once
			r, err := Run(tt.budget, tt.ceiling, func() { once.Do(func() { close(stopped) }) }, func() error { return tt.call(stopped) })
			t.Logf("cpu %v, wall %v, stopped %d, err %v", r.CPU, r.Wall, r.Stopped, err)
			if r.Stopped != tt.want {
				t.Errorf("stopped %d, want %d", r.Stopped, tt.want)
			}
			if (err == nil) != (tt.want == NotStopped) {
				t.Errorf("err %v", err)
			}
			if tt.want == StoppedCPU && r.CPU < tt.budget {
				t.Errorf("stopped for CPU after %v, under its %v budget", r.CPU, tt.budget)
			}
		})
	}
}
