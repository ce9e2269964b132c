// Command identity is the lifter of identity summaries (source kind identity, rule R0061). An
// identity is the producer's cluster of addresses believed to be one actor; an identity event
// summarises the cluster's logins over a window (abi/EVENTS.md, "identity"). The lifter is
// stateless: the usernames, distinct passwords and attempts are the producer's counts.
//
//   - lifter:identity_password_spraying (R0061, T1110.003): many usernames tried with few
//     passwords, over a window of at least min_window_s: one password tried against many
//     accounts, spread across time (and, usually, across the identity's addresses) to stay
//     under per-account lockouts.
//
// Thresholds live in the rule's params. Evidence carries counts only: never a username, never
// an address. Tags of identity events belong to the identity (the host gives them a null
// attacker_uuid), so nothing here reads the envelope.
package main

import (
	"fmt"

	"github.com/decnet/ttp/abi"
	"github.com/decnet/ttp/sdk"
)

var (
	manifest = sdk.NewManifest("identity", "1.0.0", "lifter:identity_")

	identity   = manifest.Source(abi.KindIdentity)
	fUsernames = identity.Field("payload.usernames")
	fPasswords = identity.Field("payload.distinct_passwords")
	fAttempts  = identity.Field("payload.attempts")
	fMembers   = identity.Field("payload.member_ips") // counted only
	fWindow    = identity.Field("payload.window_s")

	kUsernames = manifest.Evidence("username_count")
	kPasswords = manifest.Evidence("distinct_passwords")
	kAttempts  = manifest.Evidence("attempts")
	kMembers   = manifest.Evidence("member_count")
	kWindow    = manifest.Evidence("window_s")
)

const kindSpraying = "lifter:identity_password_spraying"

// params is one rule's reading of its match.params.
type params struct {
	minUsernames int64
	maxPasswords int64
	minWindowS   int64
}

type lifter struct{}

func (lifter) Manifest() *sdk.Manifest { return manifest }

func (lifter) Configure(r *sdk.Rule[params]) error {
	if r.Kind != kindSpraying {
		return fmt.Errorf("unknown rule kind %q (known: %s)", r.Kind, kindSpraying)
	}
	r.Params = params{
		minUsernames: r.Int("min_usernames", 10),
		maxPasswords: r.Int("max_distinct_passwords", 3),
		minWindowS:   r.Int("min_window_s", 3600),
	}
	p := r.Params
	if p.minUsernames < 2 {
		return fmt.Errorf("min_usernames must be at least 2, got %d", p.minUsernames)
	}
	if p.maxPasswords < 1 {
		return fmt.Errorf("max_distinct_passwords must be at least 1, got %d", p.maxPasswords)
	}
	if p.maxPasswords >= p.minUsernames {
		return fmt.Errorf("max_distinct_passwords (%d) must be below min_usernames (%d): spraying is more accounts than passwords", p.maxPasswords, p.minUsernames)
	}
	if p.minWindowS < 0 {
		return fmt.Errorf("min_window_s must be 0 (any window) or positive, got %d", p.minWindowS)
	}
	return nil
}

func (lifter) Tag(ev *sdk.Event, rules []*sdk.Rule[params], out *sdk.Drafts) {
	if ev.Type(fUsernames) != abi.TypeStringList {
		return
	}
	users := int64(ev.Len(fUsernames))
	passwords, ok := ev.Int(fPasswords)
	if !ok || passwords < 1 { // no password tried: key probing or user enumeration, not spraying
		return
	}
	window, hasWindow := ev.Int(fWindow)
	attempts, hasAttempts := ev.Int(fAttempts)
	hasAttempts = hasAttempts && attempts >= 0
	for _, r := range rules {
		p := &r.Params
		if users < p.minUsernames || passwords > p.maxPasswords {
			continue
		}
		if p.minWindowS > 0 && (!hasWindow || window < p.minWindowS) {
			continue
		}
		d := out.Add(r.Index, 0, 1).Int(kUsernames, users).Int(kPasswords, passwords)
		if hasAttempts {
			d.Int(kAttempts, attempts)
		}
		if ev.Type(fMembers) == abi.TypeStringList {
			d.Int(kMembers, int64(ev.Len(fMembers)))
		}
		if hasWindow {
			d.Int(kWindow, window)
		}
	}
}

func init() { sdk.Register(lifter{}) }

func main() {}
