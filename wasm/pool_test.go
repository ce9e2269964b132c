package wasm

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/decnet/ttp/abi"
	"github.com/decnet/ttp/wasm/internal/seal"
)

// gateModule makes instances whose Tag waits until the gate is closed, counting the instances
// made and closed, to watch a pool grow and shrink.
type gateModule struct {
	seal.Type
	man             *abi.Manifest
	gate            chan struct{}
	entered         chan struct{} // one receive per call that reached an instance
	made, closed    atomic.Int64
	failInstantiate atomic.Bool
}

func (m *gateModule) Manifest() *abi.Manifest     { return m.man }
func (m *gateModule) SHA256() string              { return "" }
func (m *gateModule) Close(context.Context) error { return nil }
func (m *gateModule) NewInstance(context.Context) (Instance, error) {
	if m.failInstantiate.Load() {
		return nil, ErrTrap
	}
	m.made.Add(1)
	return &gateInstance{m: m}, nil
}

type gateInstance struct {
	seal.Type
	m    *gateModule
	once sync.Once
}

func (i *gateInstance) Configure(context.Context, *abi.ConfigureRequest) (*abi.ConfigureReply, error) {
	return &abi.ConfigureReply{}, nil
}
func (i *gateInstance) Close(context.Context) error {
	i.once.Do(func() { i.m.closed.Add(1) })
	return nil
}
func (i *gateInstance) Tag(_ context.Context, _ int, _ *abi.Event, _ abi.ReplyLimits, out []abi.ReplyDraft) ([]abi.ReplyDraft, error) {
	i.m.entered <- struct{}{}
	<-i.m.gate
	return append(out, abi.ReplyDraft{Scale: 1}), nil
}

func newGateModule(t *testing.T) *gateModule {
	t.Helper()
	man, err := abi.DecodeManifest([]byte(`{"abi":1,"name":"gate","version":"1.0.0","rule_kinds":["lifter:tiny_"],"kinds":[{"source_kind":"command","fields":["payload.command_text"]}],"evidence_keys":["marker"]}`))
	if err != nil {
		t.Fatal(err)
	}
	return &gateModule{man: man, gate: make(chan struct{}), entered: make(chan struct{}, 16)}
}

// waitInstances waits (up to 10 s: the pool's idle timeout is far shorter) until the pool
// holds want instances.
func waitInstances(t *testing.T, p *Pool, want int) {
	t.Helper()
	for start := time.Now(); time.Since(start) < 10*time.Second; time.Sleep(5 * time.Millisecond) {
		if p.Instances() == want {
			return
		}
	}
	t.Fatalf("pool holds %d instances, want %d", p.Instances(), want)
}

// TestPoolGrowsAndShrinks: a pool starts with one instance (none when lazy), makes one more
// for each call that finds none idle up to its size, makes a call over that wait, and closes
// what stays idle past the idle timeout down to one (none when lazy).
func TestPoolGrowsAndShrinks(t *testing.T) {
	for _, lazy := range []bool{false, true} {
		name := "eager"
		if lazy {
			name = "lazy"
		}
		t.Run(name, func(t *testing.T) {
			m := newGateModule(t)
			keep := 1
			if lazy {
				keep = 0
			}
			pool, _, err := NewPool(context.Background(), m, []abi.RuleConfig{tinyRule(t, "R9001", 0.8, "marker")},
				PoolConfig{Size: 3, Lazy: lazy, IdleTimeout: 50 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			defer pool.Retire(true)
			if got := pool.Instances(); got != keep {
				t.Fatalf("after NewPool: %d instances, want %d", got, keep)
			}
			var wg sync.WaitGroup
			results := make(chan int, 4)
			for range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					drafts, err := pool.Tag(context.Background(), &unameEvent, nil)
					if err != nil {
						t.Error(err)
					}
					results <- len(drafts)
				}()
			}
			for range 3 { // three calls run at once, on three instances
				<-m.entered
			}
			if got := pool.Instances(); got != 3 {
				t.Errorf("three calls in progress: %d instances, want 3 (the size)", got)
			}
			select {
			case <-m.entered:
				t.Fatal("a fourth call ran beyond the pool's size")
			case <-time.After(20 * time.Millisecond):
			}
			close(m.gate)
			wg.Wait()
			close(results)
			for n := range results {
				if n != 1 {
					t.Errorf("a call returned %d drafts, want 1", n)
				}
			}
			waitInstances(t, pool, keep)
			if made, closed := m.made.Load(), m.closed.Load(); made-closed != int64(keep) || made > 4 {
				t.Errorf("made %d instances, closed %d; want %d left and at most 4 made", made, closed, keep)
			}
		})
	}
}

// TestPoolNoInstance: a plugin whose instances cannot be made fails its calls (counted, so a
// plugin that never instantiates is quarantined) without waiting forever for one.
func TestPoolNoInstance(t *testing.T) {
	m := newGateModule(t)
	health := NewHealth(time.Now)
	pool, _, err := NewPool(context.Background(), m, []abi.RuleConfig{tinyRule(t, "R9001", 0.8, "marker")},
		PoolConfig{Size: 2, Lazy: true, Health: health})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Retire(true)
	m.failInstantiate.Store(true)
	for i := range QuarantineAfter {
		if _, err := pool.Tag(context.Background(), &unameEvent, nil); err == nil {
			t.Fatalf("call %d: no error from a pool that can make no instance", i)
		}
	}
	if q, _, _ := health.Quarantined(); !q || health.Failures.Load() != QuarantineAfter {
		t.Errorf("quarantined %v after %d failures", q, health.Failures.Load())
	}
}
