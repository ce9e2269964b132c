// Command floor reads what the reference lifter reads, as it reads it, and tests only cheap
// predicates: lengths and comparisons, one pass over each list, no substring search and no
// sort. It answers like the lifter does on the benchmark's event (score 8). It bounds from
// below what a lifter of this shape costs a call: whatever its predicates, it ranges over
// both lists and reads the six scalars.
package main

import (
	"github.com/decnet/ttp/abi"
	"github.com/decnet/ttp/sdk"
)

var (
	manifest = sdk.NewManifest("reference", "1.0.0", "lifter:reference_")
	session  = manifest.Source(abi.KindSession)
	texts    = session.Field("payload.commands[].text")
	times    = session.Field("payload.command_times_ms")
	duration = session.Field("payload.duration_ms")
	failures = session.Field("payload.login_failures")
	success  = session.Field("payload.login_success")
	urls     = session.Field("payload.downloads[].url")
	client   = session.Field("payload.client_version")
	users    = session.Field("payload.usernames")

	scoreKey = manifest.Evidence("score")
)

type lifter struct{}

func (lifter) Manifest() *sdk.Manifest               { return manifest }
func (lifter) Configure(r *sdk.Rule[struct{}]) error { return nil }

func (lifter) Tag(ev *sdk.Event, rules []*sdk.Rule[struct{}], out *sdk.Drafts) {
	score := 0
	if ev.Len(texts) > 5 { // 1
		score++
	}
	prev, fast, gaps := -1.0, 0, 0
	for _, t := range ev.Numbers(times) {
		if prev >= 0 {
			gaps++
			if t-prev < 400 {
				fast++
			}
		}
		prev = t
	}
	if fast > gaps/2 { // 2: the median gap is under 400 ms
		score++
	}
	short, long := false, false
	for _, s := range ev.Strings(texts) {
		short = short || len(s) < 6
		long = long || len(s) > 16
	}
	if short { // 3
		score++
	}
	if long { // 4
		score++
	}
	if d, ok := ev.Float(duration); ok && d > 0 && d < 10000 { // 5
		score++
	}
	if f, ok := ev.Int(failures); ok && f > 3 { // 6
		if s, _ := ev.Bool(success); s {
			score++
		}
	}
	if len(ev.String(client)) > 5 { // 7
		score++
	}
	if ev.Len(urls) > 0 && ev.Len(users) > 0 { // 8
		score++
	}
	if score >= 5 {
		for _, r := range rules {
			out.Add(r.Index, 0, 1).Int(scoreKey, int64(score))
		}
	}
}

func init() { sdk.Register[struct{}](lifter{}) }

func main() {}
