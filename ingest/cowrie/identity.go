package cowrie

import (
	"crypto/sha256"
	"encoding/hex"
	"hash/maphash"
	"slices"
	"strings"
	"time"

	"github.com/decnet/ttp/abi"
)

// identities rolls login attempts up into identity events (abi/EVENTS.md, "identity"), which
// the identity lifter reads (R0061, password spraying across addresses). Cowrie knows
// addresses, not actors, so this is the producer's clustering, stated here once: within one
// period of log time (the login window's length, aligned to the Unix epoch) the sources that
// tried one same username and password pair are taken as one actor, transitively (a shared
// list is what ties the addresses of one spraying bot together). When the period ends (a later
// line, Expire with the wall clock, or Flush at the end of the input) every such group of two
// or more addresses becomes one identity event. Memory is bounded: at most max sources and
// max distinct pairs a period, and 1,000 usernames a source; what is over is not counted.
//
// The period's attempts are not part of a follower's stored state: after a restart the
// period in progress is rolled up from the attempts read since, so its counts can only be
// lower than an uninterrupted run's.
type identities struct {
	span   time.Duration
	max    int
	period int64 // index of the period in progress, -1 before the first attempt
	seed   maphash.Seed
	h      maphash.Hash
	parent map[string]string    // union-find over sources
	srcs   map[string]*idSource // sources of the period
	first  map[uint64]string    // pair hash -> first source that tried it this period
}

type idSource struct {
	users    []idUser
	seen     map[string]bool
	passes   map[uint64]bool
	attempts int
	last     time.Time
}

type idUser struct {
	name string
	at   time.Time
}

const maxIdentityUsers = 1000

func newIdentities(span time.Duration, max int) *identities {
	ids := &identities{span: span, max: max, period: -1, seed: maphash.MakeSeed()}
	ids.h.SetSeed(ids.seed)
	ids.reset()
	return ids
}

func (ids *identities) reset() {
	ids.parent, ids.srcs, ids.first = map[string]string{}, map[string]*idSource{}, map[uint64]string{}
}

// roll ends the period in progress when t is past it, appending its identity events.
func (ids *identities) roll(t time.Time, out []abi.Event) []abi.Event {
	if ids.period >= 0 && t.UnixNano()/int64(ids.span) > ids.period {
		out = ids.flush(out)
	}
	return out
}

// add counts one attempt of src at t (the caller rolled the period first).
func (ids *identities) add(t time.Time, src, user, pass string) {
	ids.period = max(ids.period, t.UnixNano()/int64(ids.span)) // a late line joins the period in progress
	s := ids.srcs[src]
	if s == nil {
		if len(ids.srcs) >= ids.max {
			return
		}
		s = &idSource{seen: map[string]bool{}, passes: map[uint64]bool{}}
		ids.srcs[src], ids.parent[src] = s, src
	}
	s.attempts++
	if t.After(s.last) {
		s.last = t
	}
	if !s.seen[user] && len(s.users) < maxIdentityUsers {
		s.seen[user] = true
		s.users = append(s.users, idUser{user, t})
	}
	s.passes[maphash.String(ids.seed, pass)] = true
	ids.h.Reset()
	ids.h.WriteString(user)
	ids.h.WriteByte(0)
	ids.h.WriteString(pass)
	pair := ids.h.Sum64()
	if other, ok := ids.first[pair]; ok {
		ids.union(src, other)
	} else if len(ids.first) < ids.max {
		ids.first[pair] = src
	}
}

func (ids *identities) find(s string) string {
	for ids.parent[s] != s {
		ids.parent[s] = ids.parent[ids.parent[s]]
		s = ids.parent[s]
	}
	return s
}

func (ids *identities) union(a, b string) {
	ra, rb := ids.find(a), ids.find(b)
	if ra != rb {
		ids.parent[max(ra, rb)] = min(ra, rb)
	}
}

// flush appends one identity event per group of two or more sources of the period in
// progress, in the order of their member lists, and starts an empty period.
func (ids *identities) flush(out []abi.Event) []abi.Event {
	groups := map[string][]string{}
	for src := range ids.srcs {
		r := ids.find(src)
		groups[r] = append(groups[r], src)
	}
	var all [][]string
	for _, m := range groups {
		if len(m) >= 2 {
			slices.Sort(m)
			all = append(all, m)
		}
	}
	slices.SortFunc(all, func(a, b []string) int { return strings.Compare(a[0], b[0]) })
	start := time.Unix(0, ids.period*int64(ids.span)).UTC()
	for _, members := range all {
		out = append(out, ids.event(members, start))
	}
	ids.reset()
	return out
}

func (ids *identities) event(members []string, start time.Time) abi.Event {
	var users []idUser
	passes := map[uint64]bool{}
	attempts := 0
	var last time.Time
	for _, m := range members {
		s := ids.srcs[m]
		users = append(users, s.users...)
		for p := range s.passes {
			passes[p] = true
		}
		attempts += s.attempts
		if s.last.After(last) {
			last = s.last
		}
	}
	slices.SortStableFunc(users, func(a, b idUser) int { return a.at.Compare(b.at) })
	names := make([]any, 0, len(users))
	seen := map[string]bool{}
	for _, u := range users {
		if !seen[u.name] && len(names) < maxIdentityUsers {
			seen[u.name] = true
			names = append(names, u.name)
		}
	}
	ips := make([]any, len(members))
	for i, m := range members {
		ips[i] = m
	}
	key := strings.Join(members, ",")
	sum := sha256.Sum256([]byte("cowrie identity\x00" + key))
	idHex := hex.EncodeToString(sum[:16])
	uuid := idHex[:8] + "-" + idHex[8:12] + "-" + idHex[12:16] + "-" + idHex[16:20] + "-" + idHex[20:32]
	ps := sha256.Sum256([]byte(key + "\x00" + start.Format(time.RFC3339Nano)))
	return abi.Event{
		SourceKind:   abi.KindIdentity,
		SourceID:     "cowrie:identity:" + hex.EncodeToString(ps[:8]),
		IdentityUUID: uuid,
		ObservedAt:   last,
		Payload: map[string]any{
			"usernames":          names,
			"distinct_passwords": float64(len(passes)),
			"attempts":           float64(attempts),
			"member_ips":         ips,
			"window_s":           ids.span.Seconds(),
		},
	}
}
