// Command lifter is the reference lifter of the ABI benchmark: eight predicates over a
// session's aggregates, read by index from the record.
package main

import (
	"sort"
	"strings"

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

// gaps is reused across calls so the lifter allocates nothing in steady state.
var gaps []float64

func (lifter) Tag(ev *sdk.Event, rules []*sdk.Rule[struct{}], out *sdk.Drafts) {
	score := 0
	n := ev.Len(texts)
	if n > 5 { // 1: many commands
		score++
	}
	gaps = gaps[:0]
	prev := -1.0
	for _, t := range ev.Numbers(times) {
		if prev >= 0 {
			gaps = append(gaps, t-prev)
		}
		prev = t
	}
	if len(gaps) > 0 { // 2: machine-speed median gap
		sort.Float64s(gaps)
		if gaps[len(gaps)/2] < 400 {
			score++
		}
	}
	download, chmod := false, false
	for _, s := range ev.Strings(texts) {
		download = download || strings.Contains(s, "wget") || strings.Contains(s, "curl")
		chmod = chmod || strings.Contains(s, "chmod +x")
	}
	if download { // 3
		score++
	}
	if chmod { // 4
		score++
	}
	if d, ok := ev.Float(duration); ok && d > 0 && d < 10000 { // 5: short session
		score++
	}
	if f, ok := ev.Int(failures); ok && f > 3 { // 6: failures before success
		if s, _ := ev.Bool(success); s {
			score++
		}
	}
	if c := ev.String(client); strings.Contains(c, "Go") || strings.Contains(c, "libssh") { // 7
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
