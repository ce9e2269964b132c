package conform

import (
	"context"
	"errors"
	"fmt"

	"github.com/decnet/ttp/abi"
	"github.com/decnet/ttp/wasm"
)

// maxStalls bounds the stalls one check tolerates: past it the host is too busy for the
// check to mean anything, and it fails saying so.
const maxStalls = 200

// Warm-up calls: before the memory check measures (a Go guest's first calls grow its heap),
// and on the fresh instance a stall brings in.
const (
	warmCalls      = 100
	warmAfterStall = 10
)

// rawRunner makes the calls of the checks that run on an instance of their own (malformed
// records, memory growth, latency) and retries a call that times out as the daemon's pool
// does: once, on a fresh configured instance (the deadline closed the old one), under a
// budget of the call's own CPU time (wasm.Retrier), which a busy host cannot run out and a
// looping guest does. It keeps the memory growth summed over the instances it ran on.
type rawRunner struct {
	ctx     context.Context
	newInst func() (wasm.Instance, error)
	inst    wasm.Instance
	raw     wasm.RawTagger // inst, when it is a ttp-ABI instance
	man     *abi.Manifest
	lim     abi.ReplyLimits
	evs     []abi.Event // what warm-up replays
	drafts  []abi.ReplyDraft

	stalls    int
	warming   bool   // in warm-up: a stall swaps the instance and the warm-up goes on
	measuring bool   // before is the current instance's, after its warm-up
	before    uint32 // its memory after warm-up
	last      uint32 // its memory after its last call
	growth    int64  // of the instances a stall closed
}

func (r *rawRunner) close() {
	if r.inst != nil {
		r.inst.Close(r.ctx)
	}
}

func (r *rawRunner) stalled(err error) bool {
	return errors.Is(err, wasm.ErrTimeout) && r.ctx.Err() == nil
}

// fresh replaces the instance that first, a timeout, closed.
func (r *rawRunner) fresh(first error) error {
	if r.stalls >= maxStalls {
		return fmt.Errorf("%w; %d stalls already: the host is too busy for this check", first, r.stalls)
	}
	next, err := r.newInst()
	if err != nil {
		return fmt.Errorf("%w; no fresh instance for its retry: %v", first, err)
	}
	if r.measuring {
		r.growth += int64(r.last) - int64(r.before)
	}
	r.close()
	r.inst, r.measuring = next, false
	r.raw, _ = next.(wasm.RawTagger)
	return nil
}

// tagRecord sends record as it is (RawTagger), retrying a timeout.
func (r *rawRunner) tagRecord(record []byte) ([]byte, error) {
	reply, err := r.raw.TagRecord(r.ctx, record)
	if !r.stalled(err) {
		return reply, err
	}
	first := err
	if err := r.fresh(first); err != nil {
		return nil, err
	}
	if reply, err = r.raw.RetryTagRecord(r.ctx, record); err != nil {
		return nil, fmt.Errorf("retry of a call that timed out (%v) on a fresh instance: %w", first, err)
	}
	r.stalls++
	return reply, nil
}

// tag makes one call (an error reply is an answer, not an error), retrying a timeout; after a
// stall the fresh instance is warmed up before its memory is measured.
func (r *rawRunner) tag(e *abi.Event) error {
	var err error
	r.drafts, err = r.inst.Tag(r.ctx, r.man.KindIndex(e.SourceKind), e, r.lim, r.drafts[:0])
	if err == nil || errors.Is(err, abi.ErrGuest) {
		if r.raw != nil {
			r.last = r.raw.MemoryBytes()
		}
		return nil
	}
	if !r.stalled(err) {
		return err
	}
	first := err
	if err := r.fresh(first); err != nil {
		return err
	}
	if r.drafts, err = r.inst.(wasm.Retrier).RetryTag(r.ctx, r.man.KindIndex(e.SourceKind), e, r.lim, r.drafts[:0]); err != nil && !errors.Is(err, abi.ErrGuest) {
		return fmt.Errorf("retry of a call that timed out (%v) on a fresh instance: %w", first, err)
	}
	r.stalls++
	if r.warming {
		return nil
	}
	return r.warm(warmAfterStall)
}

// warm makes n calls, then takes the instance's memory as the base of its growth. A stall
// during warm-up swaps the instance and the warm-up goes on, on the fresh one: restarting it
// would never end on a host that stalls one call in ten.
func (r *rawRunner) warm(n int) error {
	r.warming = true
	defer func() { r.warming = false }()
	for i := 0; i < n; i++ {
		if err := r.tag(&r.evs[i%len(r.evs)]); err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
	}
	r.before, r.last, r.measuring = r.raw.MemoryBytes(), r.raw.MemoryBytes(), true
	return nil
}

// grown is the memory growth since measuring began, over every instance it ran on.
func (r *rawRunner) grown() int64 {
	g := r.growth
	if r.measuring {
		g += int64(r.raw.MemoryBytes()) - int64(r.before)
	}
	return g
}
