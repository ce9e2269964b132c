// Command credential is the lifter of login attempts (source kind auth, rules R0059, R0060 and
// R0062-R0064). Each auth event is one attempt on a decoy service with the producer's counts
// over a window ending at it (abi/EVENTS.md, "auth"): failures before it, distinct usernames
// and passwords the same source tried, and how many other sources tried the same pair. The
// lifter is stateless: every fact that spans attempts is one of those counts.
//
//   - lifter:credential_brute_force (R0059, T1110): many failed attempts in the window, over
//     more than one credential (a client retrying one stale password is not brute force);
//   - lifter:credential_password_guessing (R0060, T1110.001): many passwords against few
//     usernames;
//   - lifter:credential_stuffing (R0062, T1110.004): the exact username/password pair was
//     tried by other sources too, so it comes from a shared list (a breach dump, a botnet's
//     dictionary);
//   - lifter:credential_valid_after_failures (R0063, T1078): the decoy accepted a login after
//     many failures;
//   - lifter:credential_default_pair (R0064, T1078.001): the pair is a vendor default, from
//     lists kept in the rule's params (the Mirai table, Raspberry Pi, Dell iDRAC, ...); the
//     confidence is scaled down when the attempt failed.
//
// Rules co-fire by design: a successful login after many failures is both R0059 and R0063, a
// password-guessing run is also a brute force, a Mirai pair is also a default credential.
//
// Every threshold and list lives in the rule's params. The password is declared only to compare
// it with the default lists; evidence carries counts, the protocol, the name of the default list
// a pair is in and (only then) the username, never a password.
package main

import (
	"fmt"
	"sort"
	"strings"

	"github.com/decnet/ttp/abi"
	"github.com/decnet/ttp/sdk"
)

var (
	manifest = sdk.NewManifest("credential", "1.0.0", "lifter:credential_")

	auth       = manifest.Source(abi.KindAuth)
	fUsername  = auth.Field("payload.username")
	fPassword  = auth.Field("payload.password")
	fSuccess   = auth.Field("payload.success")
	fProtocol  = auth.Field("payload.protocol")
	fWindow    = auth.Field("payload.window_s")
	fFailures  = auth.Field("payload.failures_before")
	fUsernames = auth.Field("payload.distinct_usernames")
	fPasswords = auth.Field("payload.distinct_passwords")
	fPairSeen  = auth.Field("payload.pair_seen_from_other_sources")

	kFailures    = manifest.Evidence("failures_before")
	kUsernames   = manifest.Evidence("distinct_usernames")
	kPasswords   = manifest.Evidence("distinct_passwords")
	kPairSeen    = manifest.Evidence("pair_seen_from_other_sources")
	kWindow      = manifest.Evidence("window_s")
	kProtocol    = manifest.Evidence("protocol")
	kSuccess     = manifest.Evidence("success")
	kUsername    = manifest.Evidence("username")
	kDefaultPair = manifest.Evidence("default_pair")
)

// The rule kinds the lifter knows.
const (
	kindBruteForce  = "lifter:credential_brute_force"
	kindGuessing    = "lifter:credential_password_guessing"
	kindStuffing    = "lifter:credential_stuffing"
	kindValidAfter  = "lifter:credential_valid_after_failures"
	kindDefaultPair = "lifter:credential_default_pair"
)

// maxProtocolLength bounds payload.protocol in evidence: a longer value is not a protocol name
// and is left out.
const maxProtocolLength = 32

type kind int

const (
	bruteForce kind = iota
	guessing
	stuffing
	validAfter
	defaultPair
)

// pair is a username and password; a map keyed by it is looked up with strings that alias the
// event, without allocating.
type pair struct{ user, password string }

// params is one rule's reading of its match.params; each kind uses its own fields.
type params struct {
	kind kind

	minFailures  int64           // brute force, valid after failures
	minDistinct  int64           // brute force: distinct usernames or passwords
	maxWindowS   int64           // brute force: 0 means any window
	minPasswords int64           // guessing
	maxUsernames int64           // guessing
	minOtherSrcs int64           // stuffing
	failedScale  float64         // default pair: the scale of a failed attempt
	defaultPairs map[pair]string // default pair -> name of the list it is in
}

type lifter struct{}

func (lifter) Manifest() *sdk.Manifest { return manifest }

func (lifter) Configure(r *sdk.Rule[params]) error {
	p := &r.Params
	switch r.Kind {
	case kindBruteForce:
		p.kind = bruteForce
		p.minFailures = r.Int("min_failures", 10)
		p.minDistinct = r.Int("min_distinct_credentials", 3)
		p.maxWindowS = r.Int("max_window_s", 86400)
		if p.minFailures < 1 {
			return fmt.Errorf("min_failures must be at least 1, got %d", p.minFailures)
		}
		if p.minDistinct < 1 {
			return fmt.Errorf("min_distinct_credentials must be at least 1, got %d", p.minDistinct)
		}
		if p.maxWindowS < 0 {
			return fmt.Errorf("max_window_s must be 0 (any window) or positive, got %d", p.maxWindowS)
		}
	case kindGuessing:
		p.kind = guessing
		p.minPasswords = r.Int("min_distinct_passwords", 8)
		p.maxUsernames = r.Int("max_distinct_usernames", 3)
		if p.minPasswords < 2 {
			return fmt.Errorf("min_distinct_passwords must be at least 2, got %d", p.minPasswords)
		}
		if p.maxUsernames < 1 {
			return fmt.Errorf("max_distinct_usernames must be at least 1, got %d", p.maxUsernames)
		}
	case kindStuffing:
		p.kind = stuffing
		p.minOtherSrcs = r.Int("min_other_sources", 3)
		if p.minOtherSrcs < 1 {
			return fmt.Errorf("min_other_sources must be at least 1, got %d", p.minOtherSrcs)
		}
	case kindValidAfter:
		p.kind = validAfter
		p.minFailures = r.Int("min_failures", 5)
		if p.minFailures < 1 {
			return fmt.Errorf("min_failures must be at least 1, got %d", p.minFailures)
		}
	case kindDefaultPair:
		p.kind = defaultPair
		p.failedScale = r.Float("failed_scale", 0.7)
		if !(p.failedScale >= 0 && p.failedScale <= 1) {
			return fmt.Errorf("failed_scale must be within [0, 1], got %v", p.failedScale)
		}
		v, ok := r.Value("pairs")
		if !ok {
			return fmt.Errorf("pairs is required: lists of default username:password pairs by list name")
		}
		pairs, err := readPairs(v)
		if err != nil {
			return err
		}
		p.defaultPairs = pairs
	default:
		return fmt.Errorf("unknown rule kind %q (known: %s)", r.Kind,
			strings.Join([]string{kindBruteForce, kindGuessing, kindStuffing, kindValidAfter, kindDefaultPair}, ", "))
	}
	return nil
}

// readPairs reads params.pairs: a mapping from a list name (a vendor, a botnet) to a list of
// "username:password" strings, split at the first colon ("root:" is root with an empty
// password). A pair in several lists belongs to the list whose name sorts first.
func readPairs(v any) (map[pair]string, error) {
	lists, ok := v.(map[string]any)
	if !ok || len(lists) == 0 {
		return nil, fmt.Errorf("pairs must be a non-empty mapping of list name to username:password strings")
	}
	names := make([]string, 0, len(lists))
	for name := range lists {
		names = append(names, name)
	}
	sort.Strings(names)
	out := map[pair]string{}
	for _, name := range names {
		if !plainName(name) {
			return nil, fmt.Errorf("pairs: list name %q: want a plain lower-case name such as mirai or dell_idrac", name)
		}
		entries, ok := lists[name].([]any)
		if !ok || len(entries) == 0 {
			return nil, fmt.Errorf("pairs.%s must be a non-empty list of username:password strings", name)
		}
		for i, e := range entries {
			s, ok := e.(string)
			user, password, found := strings.Cut(s, ":")
			if !ok || !found || user == "" {
				return nil, fmt.Errorf("pairs.%s[%d]: want a username:password string, got %v", name, i, e)
			}
			k := pair{user, password}
			if _, dup := out[k]; !dup {
				out[k] = name
			}
		}
	}
	return out, nil
}

func plainName(s string) bool {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// count reads a producer count: a non-negative number.
func count(ev *sdk.Event, f sdk.Field) (int64, bool) {
	n, ok := ev.Int(f)
	return n, ok && n >= 0
}

// attempt is what one auth event says, read once for every rule.
type attempt struct {
	failures, usernames, passwords, pairSeen, window int64

	hasFailures, hasUsernames, hasPasswords, hasPairSeen, hasWindow bool

	success, hasSuccess bool
	protocol            string
}

func read(ev *sdk.Event) attempt {
	var a attempt
	a.failures, a.hasFailures = count(ev, fFailures)
	a.usernames, a.hasUsernames = count(ev, fUsernames)
	a.passwords, a.hasPasswords = count(ev, fPasswords)
	a.pairSeen, a.hasPairSeen = count(ev, fPairSeen)
	a.window, a.hasWindow = count(ev, fWindow)
	a.success, a.hasSuccess = ev.Bool(fSuccess)
	if p := ev.String(fProtocol); len(p) <= maxProtocolLength {
		a.protocol = p
	}
	return a
}

// context adds the evidence every count-based rule carries: the window and the protocol.
func (a *attempt) context(d *sdk.Draft) {
	if a.hasWindow {
		d.Int(kWindow, a.window)
	}
	if a.protocol != "" {
		d.String(kProtocol, a.protocol)
	}
}

// optional adds count n under k when the producer sent it.
func optional(d *sdk.Draft, k sdk.Key, n int64, ok bool) {
	if ok {
		d.Int(k, n)
	}
}

func (lifter) Tag(ev *sdk.Event, rules []*sdk.Rule[params], out *sdk.Drafts) {
	a := read(ev)
	for _, r := range rules {
		p := &r.Params
		switch p.kind {
		case bruteForce:
			if !a.hasFailures || a.failures < p.minFailures {
				continue
			}
			if (a.hasUsernames || a.hasPasswords) && max(a.usernames, a.passwords) < p.minDistinct {
				continue // one credential retried: a misconfigured client, not a brute force
			}
			if p.maxWindowS > 0 && a.hasWindow && a.window > p.maxWindowS {
				continue
			}
			d := out.Add(r.Index, 0, 1).Int(kFailures, a.failures)
			optional(d, kUsernames, a.usernames, a.hasUsernames)
			optional(d, kPasswords, a.passwords, a.hasPasswords)
			a.context(d)
		case guessing:
			if !a.hasPasswords || !a.hasUsernames || a.passwords < p.minPasswords ||
				a.usernames < 1 || a.usernames > p.maxUsernames {
				continue
			}
			d := out.Add(r.Index, 0, 1).Int(kPasswords, a.passwords).Int(kUsernames, a.usernames)
			optional(d, kFailures, a.failures, a.hasFailures)
			a.context(d)
		case stuffing:
			if !a.hasPairSeen || a.pairSeen < p.minOtherSrcs {
				continue
			}
			d := out.Add(r.Index, 0, 1).Int(kPairSeen, a.pairSeen)
			optional(d, kUsernames, a.usernames, a.hasUsernames)
			optional(d, kPasswords, a.passwords, a.hasPasswords)
			a.context(d)
		case validAfter:
			if !a.hasSuccess || !a.success || !a.hasFailures || a.failures < p.minFailures {
				continue
			}
			d := out.Add(r.Index, 0, 1).Int(kFailures, a.failures)
			a.context(d)
		case defaultPair:
			if ev.Type(fUsername) != abi.TypeString || ev.Type(fPassword) != abi.TypeString {
				continue
			}
			user := ev.String(fUsername)
			list, ok := p.defaultPairs[pair{user, ev.String(fPassword)}]
			if !ok {
				continue
			}
			scale := p.failedScale
			if a.hasSuccess && a.success {
				scale = 1
			}
			d := out.Add(r.Index, 0, scale).String(kUsername, user).String(kDefaultPair, list)
			if a.hasSuccess {
				d.Bool(kSuccess, a.success)
			}
			if a.protocol != "" {
				d.String(kProtocol, a.protocol)
			}
		}
	}
}

func init() { sdk.Register(lifter{}) }

func main() {}
