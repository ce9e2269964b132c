package sdk

import (
	"fmt"
	"math"

	"github.com/decnet/ttp/abi"
)

// Drafts collects what a Tag call found, written straight into the binary reply
// (abi.ReplyBuilder) that the sdk reuses across calls: adding a draft and its evidence
// allocates nothing.
//
// A draft names its rule and emits entry by index, and its confidence is the entry's
// confidence times a scale in [0, 1]: a lifter can lower a rule's confidence, never raise it.
// A mistake (an index out of range, a scale outside [0, 1], an undeclared key, a number with
// no JSON form) turns the whole reply into an error reply that names it, instead of a reply
// the host would refuse as undecodable with no hint why; both cost the event's tags from this
// lifter and count toward its quarantine, so sdktest reports them in `go test`.
type Drafts struct {
	reply *abi.ReplyBuilder
	m     *Manifest
	rules []ruleLimit
	draft Draft
	err   error
}

// ruleLimit is what Drafts checks a draft against: one per configured rule.
type ruleLimit struct {
	id       string
	emits    int
	rejected bool
}

// Draft is the draft being added: evidence methods chain on it. It is valid until the next
// Add.
type Draft struct {
	out      *Drafts
	rule     int
	evidence int
	live     bool
}

// reset starts the drafts of a new call.
func (o *Drafts) reset() {
	o.reply.Reset()
	o.err = nil
	o.draft = Draft{out: o}
}

// fail records the first mistake of the call; the reply becomes an error reply carrying it.
func (o *Drafts) fail(format string, args ...any) {
	if o.err == nil {
		o.err = fmt.Errorf(format, args...)
	}
	o.draft.live = false
}

// Add starts a draft for the rule at index rule (Rule.Index), emitting its emits entry emit
// with confidence scaled by scale, and returns it for its evidence:
//
//	out.Add(r.Index, 0, 1).Int(countKey, n).String(userKey, user)
func (o *Drafts) Add(rule, emit int, scale float64) *Draft {
	d := &o.draft
	*d = Draft{out: o, rule: rule}
	switch {
	case o.err != nil:
	case rule < 0 || rule >= len(o.rules):
		o.fail("sdk: Add: rule index %d, the lifter is configured with %d rules", rule, len(o.rules))
	case o.rules[rule].rejected:
		o.fail("sdk: Add: rule %s was rejected at configure", o.rules[rule].id)
	case emit < 0 || emit >= o.rules[rule].emits:
		o.fail("sdk: Add: rule %s: emits index %d, the rule has %d emits entries", o.rules[rule].id, emit, o.rules[rule].emits)
	case !(scale >= 0 && scale <= 1):
		o.fail("sdk: Add: rule %s: scale %v outside [0, 1]", o.rules[rule].id, scale)
	default:
		o.reply.Draft(rule, emit, scale)
		d.live = true
	}
	return d
}

// admit checks key before one more evidence entry is written.
func (d *Draft) admit(k Key) bool {
	o := d.out
	switch {
	case !d.live:
		return false
	case k.m != o.m:
		o.fail("sdk: draft of rule %s: evidence key not declared by this lifter's manifest", o.rules[d.rule].id)
		return false
	case d.evidence == math.MaxUint8:
		o.fail("sdk: draft of rule %s: more than %d evidence entries", o.rules[d.rule].id, math.MaxUint8)
		return false
	}
	d.evidence++
	return true
}

// String adds evidence key = s. s is copied into the reply, so it may alias the event.
func (d *Draft) String(k Key, s string) *Draft {
	if d.admit(k) {
		d.out.reply.EvidenceString(k.index, s)
	}
	return d
}

// Number adds evidence key = f; an integral f travels as an integer. NaN and infinities have
// no JSON form for the stored tag, so they fail the call.
func (d *Draft) Number(k Key, f float64) *Draft {
	if !d.admit(k) {
		return d
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		d.out.fail("sdk: draft of rule %s: evidence %s = %v has no JSON form", d.out.rules[d.rule].id, d.out.m.keys[k.index], f)
		return d
	}
	d.out.reply.EvidenceNumber(k.index, f)
	return d
}

// Int adds evidence key = n (exact up to 2^53, like every JSON number).
func (d *Draft) Int(k Key, n int64) *Draft { return d.Number(k, float64(n)) }

// Bool adds evidence key = v.
func (d *Draft) Bool(k Key, v bool) *Draft {
	if d.admit(k) {
		d.out.reply.EvidenceBool(k.index, v)
	}
	return d
}

// Strings adds evidence key = list (copied into the reply).
func (d *Draft) Strings(k Key, list []string) *Draft {
	if d.admit(k) {
		d.out.reply.EvidenceStrings(k.index, list)
	}
	return d
}
