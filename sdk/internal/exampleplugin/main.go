// Command exampleplugin is a complete, small lifter: it tags an auth event as password
// guessing when the producer counted at least min_failures failed logins from the same source
// before it (payload.failures_before), optionally within max_window_s seconds
// (payload.window_s). Package sdk's tests build it with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o exampleplugin.wasm .
//
// to prove that a lifter written against the sdk is a loadable ttp plugin, and its own test
// runs it natively through sdktest.
package main

import (
	"fmt"

	"github.com/decnet/ttp/abi"
	"github.com/decnet/ttp/sdk"
)

var (
	manifest = sdk.NewManifest("example-bruteforce", "1.0.0", "lifter:example_")

	auth           = manifest.Source(abi.KindAuth)
	failuresBefore = auth.Field("payload.failures_before")
	windowS        = auth.Field("payload.window_s")

	failuresKey = manifest.Evidence("failures_before")
	windowKey   = manifest.Evidence("window_s")
)

// params is one rule's reading of its match.params.
type params struct {
	minFailures int64
	maxWindowS  int64 // 0: any window
}

type bruteForce struct{}

func (bruteForce) Manifest() *sdk.Manifest { return manifest }

func (bruteForce) Configure(r *sdk.Rule[params]) error {
	r.Params = params{
		minFailures: r.Int("min_failures", 10),
		maxWindowS:  r.Int("max_window_s", 0),
	}
	if r.Params.minFailures < 1 {
		return fmt.Errorf("min_failures must be at least 1, got %d", r.Params.minFailures)
	}
	if r.Params.maxWindowS < 0 {
		return fmt.Errorf("max_window_s must be 0 (any window) or positive, got %d", r.Params.maxWindowS)
	}
	return nil
}

func (bruteForce) Tag(ev *sdk.Event, rules []*sdk.Rule[params], out *sdk.Drafts) {
	failures, ok := ev.Int(failuresBefore)
	if !ok {
		return
	}
	window, hasWindow := ev.Int(windowS)
	for _, r := range rules {
		if failures < r.Params.minFailures {
			continue
		}
		if r.Params.maxWindowS > 0 && (!hasWindow || window > r.Params.maxWindowS) {
			continue
		}
		d := out.Add(r.Index, 0, 1).Int(failuresKey, failures)
		if hasWindow {
			d.Int(windowKey, window)
		}
	}
}

func init() { sdk.Register(bruteForce{}) }

func main() {}
