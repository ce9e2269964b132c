package cowrie

import (
	"hash/maphash"
	"time"
)

// window counts login attempts over a sliding window of log time, so that each auth event
// carries the aggregates the credential rules read (abi/EVENTS.md, "auth"): failures of the
// same source before this attempt, the distinct usernames and passwords it tried, and how many
// other sources tried the same pair. A source is the client address (Cowrie knows no attacker
// id). Usernames and passwords are kept as 64-bit hashes, so memory per attempt is fixed
// whatever their length, and the window holds at most max attempts: the oldest are evicted
// first, by age or by count, so an endless log never grows it.
type window struct {
	span    time.Duration
	max     int
	seed    maphash.Seed
	h       maphash.Hash // for the pair's hash, without concatenating the strings
	queue   []attempt    // in arrival order; queue[head:] are live
	head    int
	sources map[string]*source
	pairs   map[uint64]map[string]int // pair hash -> source -> attempts with it in the window
}

type attempt struct {
	at               int64 // Unix nanoseconds
	src              string
	user, pass, pair uint64
	failed           bool
}

type source struct {
	failures int
	users    map[uint64]int
	passes   map[uint64]int
}

// aggregates are the counts of one attempt (abi/EVENTS.md, "auth").
type aggregates struct {
	failuresBefore, distinctUsers, distinctPasses, pairOthers int
}

func newWindow(span time.Duration, max int) *window {
	w := &window{span: span, max: max, seed: maphash.MakeSeed(), sources: map[string]*source{}, pairs: map[uint64]map[string]int{}}
	w.h.SetSeed(w.seed)
	return w
}

// add records one attempt at t and returns its aggregates: the failures before it, and the
// distinct counts and other sources with it included.
func (w *window) add(t time.Time, src, user, pass string, failed bool) aggregates {
	at := t.UnixNano()
	w.evict(at - int64(w.span))
	for len(w.queue)-w.head >= w.max {
		w.drop()
	}
	a := attempt{at: at, src: src, failed: failed,
		user: maphash.String(w.seed, user), pass: maphash.String(w.seed, pass)}
	w.h.Reset()
	w.h.WriteString(user)
	w.h.WriteByte(0)
	w.h.WriteString(pass)
	a.pair = w.h.Sum64()
	s := w.sources[src]
	if s == nil {
		s = &source{users: map[uint64]int{}, passes: map[uint64]int{}}
		w.sources[src] = s
	}
	agg := aggregates{failuresBefore: s.failures}
	if failed {
		s.failures++
	}
	s.users[a.user]++
	s.passes[a.pass]++
	p := w.pairs[a.pair]
	if p == nil {
		p = map[string]int{}
		w.pairs[a.pair] = p
	}
	p[src]++
	agg.distinctUsers, agg.distinctPasses, agg.pairOthers = len(s.users), len(s.passes), len(p)-1
	w.queue = append(w.queue, a)
	return agg
}

// evict drops the attempts older than before (Unix nanoseconds).
func (w *window) evict(before int64) {
	for w.head < len(w.queue) && w.queue[w.head].at < before {
		w.drop()
	}
}

// drop forgets the oldest attempt, and compacts the queue once half of it is dead.
func (w *window) drop() {
	a := w.queue[w.head]
	w.queue[w.head] = attempt{}
	w.head++
	if s := w.sources[a.src]; s != nil {
		if a.failed {
			s.failures--
		}
		decr(s.users, a.user)
		decr(s.passes, a.pass)
		if len(s.users) == 0 {
			delete(w.sources, a.src)
		}
	}
	if p := w.pairs[a.pair]; p != nil {
		if p[a.src]--; p[a.src] <= 0 {
			delete(p, a.src)
		}
		if len(p) == 0 {
			delete(w.pairs, a.pair)
		}
	}
	if w.head > 1024 && w.head*2 > len(w.queue) {
		n := copy(w.queue, w.queue[w.head:])
		clear(w.queue[n:])
		w.queue, w.head = w.queue[:n], 0
	}
}

func decr(m map[uint64]int, k uint64) {
	if m[k]--; m[k] <= 0 {
		delete(m, k)
	}
}

// len is the number of attempts in the window.
func (w *window) len() int { return len(w.queue) - w.head }
