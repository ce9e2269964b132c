package rules

import (
	"hash/maphash"
	"strings"
	"sync/atomic"
)

// verdictCache remembers, for the most recent texts of a one-field kind (command_text), which
// rules they fired and through which branches. Attackers' tools type the same lines again and
// again (one bot's fifteen-command survey, sent by thousands of addresses), and a line's
// verdict depends on nothing but its text and the rule set, which is immutable: each RuleSet
// has its own cache, so a rule change starts a fresh one. A hit skips the literal scan, the
// parse and every regular expression; the drafts are built as on a miss, so the tags are the
// same (TestEngineEqualsNaive evaluates each text twice, FuzzEngineEqualsNaive too).
//
// It is direct-mapped (a slot per hash, the newest text wins), lock-free (a slot is an
// atomic pointer to an immutable entry) and bounded: verdictSlots entries of texts up to
// maxVerdictText bytes, kept as copies so that no event's buffer is held. A miss costs the
// hash and one entry (RATIONALE.md, "A line's verdict is cached").
type verdictCache struct {
	seed  maphash.Seed
	slots [verdictSlots]atomic.Pointer[verdict]
}

// verdict is one remembered text and what it fired.
type verdict struct {
	hash  uint64
	text  string
	fired []firing
}

const (
	verdictSlots   = 4096 // a power of two
	maxVerdictText = 512
)

func newVerdictCache() *verdictCache { return &verdictCache{seed: maphash.MakeSeed()} }

// lookup returns the verdict of text, or nil and the hash to store it under.
func (c *verdictCache) lookup(text string) (*verdict, uint64) {
	if len(text) > maxVerdictText {
		return nil, 0
	}
	h := maphash.String(c.seed, text)
	if v := c.slots[h&(verdictSlots-1)].Load(); v != nil && v.hash == h && v.text == text {
		return v, h
	}
	return nil, h
}

// store remembers what text fired (a copy of fired is kept).
func (c *verdictCache) store(h uint64, text string, fired []firing) {
	if len(text) > maxVerdictText {
		return
	}
	v := &verdict{hash: h, text: strings.Clone(text)}
	if len(fired) > 0 {
		v.fired = append([]firing(nil), fired...)
	}
	c.slots[h&(verdictSlots-1)].Store(v)
}

// has reports whether text's verdict is cached (for tests).
func (c *verdictCache) has(text string) bool {
	v, _ := c.lookup(text)
	return v != nil
}
