// Package sdktest runs a Go lifter natively inside `go test`, exactly as the ttp host runs its
// .wasm: the manifest is decoded and validated as at load, the rules are sent as a JSON
// configure request, each event is expanded (abi.Expand) and projected into a record of the
// declared fields (abi.AppendRecord), and the binary reply is decoded and checked
// (abi.DecodeReply) with the host's limits. Only the wasm runtime is missing, so a lifter's
// tests run in milliseconds with the debugger and coverage tools of native Go, and a mistake
// that would make the host refuse a reply fails the test with the reason.
//
// sdktest depends on package rules (to take rule files); package sdk does not, and a lifter's
// .wasm never contains sdktest.
package sdktest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/decnet/ttp/abi"
	"github.com/decnet/ttp/rules"
	"github.com/decnet/ttp/sdk"
	"github.com/decnet/ttp/sdk/internal/bridge"
)

// Plugin is one lifter instance with its rules, driven as the host drives a .wasm instance.
// Its methods are safe for concurrent use; calls are serialised, as one instance serves one
// call at a time in the host.
type Plugin struct {
	mu       sync.Mutex
	guest    bridge.Plugin
	manifest *abi.Manifest
	plans    [][]abi.Path // per manifest kind, the parsed field paths
	rules    []abi.RuleConfig
	limits   abi.ReplyLimits

	input  []byte // the guest's input buffer, reused like ttp_alloc's
	record []byte
	first  []byte
	drafts []abi.ReplyDraft
}

// register serialises sdk.Register, whose registration sdktest picks up right after.
var register sync.Mutex

// ErrRejected is wrapped by New when the lifter rejects one of the rules.
var ErrRejected = errors.New("rule rejected by the lifter")

// New registers l (natively, registration only selects what the wasm exports would serve),
// reads and validates its manifest as the host does at load, and configures it with rules,
// which must all be owned by the lifter. Any rejection is an error (wrapping ErrRejected)
// listing each rule's message; use Configure to look at rejections.
func New[P any](l sdk.Lifter[P], rules ...abi.RuleConfig) (*Plugin, error) {
	guest := registered(l)
	man, err := abi.DecodeManifest(guest.Describe())
	if err != nil {
		return nil, fmt.Errorf("sdktest: %T: %w", l, err)
	}
	p := &Plugin{guest: guest, manifest: man, plans: make([][]abi.Path, len(man.Kinds))}
	for i, k := range man.Kinds {
		for _, f := range k.Fields {
			path, err := abi.ParsePath(f) // validated by DecodeManifest
			if err != nil {
				return nil, fmt.Errorf("sdktest: %s: %w", man.Producer(), err)
			}
			p.plans[i] = append(p.plans[i], path)
		}
	}
	rejected, err := p.Configure(rules...)
	if err != nil {
		return nil, err
	}
	if len(rejected) > 0 {
		msgs := make([]string, len(rejected))
		for i, r := range rejected {
			msgs[i] = r.Rule + ": " + r.Message
		}
		return nil, fmt.Errorf("sdktest: %s: %w: %s", man.Producer(), ErrRejected, strings.Join(msgs, "; "))
	}
	return p, nil
}

// registered registers l and returns what the wasm exports would serve.
func registered[P any](l sdk.Lifter[P]) bridge.Plugin {
	register.Lock()
	defer register.Unlock()
	sdk.Register(l)
	return bridge.Registered
}

// Manifest returns the lifter's decoded, validated manifest.
func (p *Plugin) Manifest() *abi.Manifest { return p.manifest }

// Configure (re)configures the lifter with rules, as the host does at load and after every
// definition change, and returns the rules it rejected with their messages. Rejected rules
// fire nothing; the others are live. An error means the lifter cannot run at all (its reply
// carried "error"), the reply was not valid, or a rule is not owned by the lifter: the host
// would never send it one.
func (p *Plugin) Configure(rules ...abi.RuleConfig) ([]abi.RuleRejection, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, r := range rules {
		if !p.manifest.Owns(r.Kind) {
			return nil, fmt.Errorf("sdktest: %s: rule %s of kind %q is not owned by the lifter (rule_kinds %s)",
				p.manifest.Producer(), r.ID, r.Kind, strings.Join(p.manifest.RuleKinds, ", "))
		}
	}
	req, err := json.Marshal(abi.ConfigureRequest{Rules: rules})
	if err != nil {
		return nil, fmt.Errorf("sdktest: %s: configure request: %w", p.manifest.Producer(), err)
	}
	var reply abi.ConfigureReply
	dec := json.NewDecoder(bytes.NewReader(p.guest.Configure(p.load(req))))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&reply); err != nil {
		return nil, fmt.Errorf("sdktest: %s: configure reply: %w", p.manifest.Producer(), err)
	}
	if reply.Error != "" {
		return nil, fmt.Errorf("sdktest: %s: configure: %s", p.manifest.Producer(), reply.Error)
	}
	for _, r := range reply.Rejected {
		if !hasRule(rules, r.Rule) {
			return nil, fmt.Errorf("sdktest: %s: configure rejected rule %q, which it was not sent", p.manifest.Producer(), r.Rule)
		}
	}
	p.rules = append([]abi.RuleConfig(nil), rules...)
	p.limits = abi.ReplyLimits{Emits: make([]int, len(rules)), EvidenceKeys: len(p.manifest.EvidenceKeys)}
	for i, r := range rules {
		p.limits.Emits[i] = len(r.Emits)
	}
	return reply.Rejected, nil
}

func hasRule(rules []abi.RuleConfig, id string) bool {
	for _, r := range rules {
		if r.ID == id {
			return true
		}
	}
	return false
}

// Tag runs the lifter on ev as the host would and returns its drafts resolved: rule id,
// technique, tactic, confidence (the emits entry's times the draft's scale) and evidence by
// key name. It is what the lifter handed the host, before the host's Finish (rule state,
// evidence_fields filtering).
//
// Like the host, Tag first runs abi.Expand, so a session's payload.commands are read as
// objects; the command events a session fans out into are events of their own (pass
// abi.Expand(ev)[1:] to Tag to see them). An event of a kind the manifest does not declare
// is not sent to the lifter: no drafts, no error.
//
// Every event is sent twice and both replies must be equal, since the host pools instances
// and a lifter must keep nothing between calls that changes its answers. An error reply, an
// undecodable reply or unequal replies are errors.
func (p *Plugin) Tag(ev abi.Event) ([]abi.TagDraft, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ev = abi.Expand(ev)[0]
	k := p.manifest.KindIndex(ev.SourceKind)
	if k < 0 {
		return nil, nil
	}
	where := fmt.Sprintf("sdktest: %s: %s event %s", p.manifest.Producer(), ev.SourceKind, ev.SourceID)
	p.record = abi.AppendRecord(p.record[:0], k, p.plans[k], &ev)
	if len(p.record) > abi.MaxRecord {
		return nil, fmt.Errorf("%s: record of %d bytes over the %d-byte limit", where, len(p.record), abi.MaxRecord)
	}
	p.first = append(p.first[:0], p.guest.Tag(p.load(p.record))...)
	if again := p.guest.Tag(p.load(p.record)); !bytes.Equal(again, p.first) {
		return nil, fmt.Errorf("%s: a second call with the same record got a different reply: the lifter keeps state between calls", where)
	}
	var err error
	p.drafts, err = abi.DecodeReply(p.first, p.limits, p.drafts[:0])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	if len(p.drafts) == 0 {
		return nil, nil
	}
	out := make([]abi.TagDraft, len(p.drafts))
	for i, d := range p.drafts {
		rule := p.rules[d.Rule]
		emit := rule.Emits[d.Emit]
		out[i] = abi.TagDraft{
			RuleID:         rule.ID,
			TechniqueID:    emit.TechniqueID,
			SubTechniqueID: emit.SubTechniqueID,
			Tactic:         emit.Tactic,
			Confidence:     emit.Confidence * d.Scale,
		}
		if len(d.Evidence) > 0 {
			out[i].Evidence = make(map[string]any, len(d.Evidence))
			for _, e := range d.Evidence {
				out[i].Evidence[p.manifest.EvidenceKeys[e.Key]] = e.Value
			}
		}
	}
	return out, nil
}

// TagAllocs returns the average number of heap allocations of the lifter's own ttp_tag call on
// ev, in steady state (the record already projected, the input buffer loaded), over runs calls:
// what the module pays per event beyond the host. The ABI promises 0 for the SDK itself
// (sdk.TestTagAllocs), so anything above it is the lifter's. An event of a kind the manifest
// does not declare returns 0.
func (p *Plugin) TagAllocs(ev abi.Event, runs int) float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	ev = abi.Expand(ev)[0]
	k := p.manifest.KindIndex(ev.SourceKind)
	if k < 0 {
		return 0
	}
	p.record = abi.AppendRecord(p.record[:0], k, p.plans[k], &ev)
	in := p.load(p.record)
	p.guest.Tag(in) // warm the lifter's buffers
	return testing.AllocsPerRun(runs, func() { p.guest.Tag(in) })
}

// load copies data into the guest's input buffer, as the host writes into the memory
// ttp_alloc returned, so that strings the lifter wrongly keeps from an earlier call go stale
// here as they would in the module.
func (p *Plugin) load(data []byte) []byte {
	if cap(p.input) < len(data) {
		p.input = make([]byte, len(data))
	}
	p.input = p.input[:len(data)]
	copy(p.input, data)
	return p.input
}

// FromRules returns the configuration the host sends a lifter for parsed rule files
// (rules.Parse, rules.ReadFile, rules.LoadDir): id, match.kind, applies_to, match.params and
// emits.
func FromRules(rs ...*rules.Rule) []abi.RuleConfig {
	out := make([]abi.RuleConfig, len(rs))
	for i, r := range rs {
		rc := abi.RuleConfig{ID: r.ID, Kind: r.Match.Kind, AppliesTo: r.AppliesTo, Params: r.Match.Params}
		for _, e := range r.Emits {
			rc.Emits = append(rc.Emits, abi.EmitConfig{TechniqueID: e.TechniqueID, SubTechniqueID: e.SubTechniqueID, Tactic: e.Tactic, Confidence: e.Confidence})
		}
		out[i] = rc
	}
	return out
}

// ReadRules reads and parses rule files (rules.ReadFile) and returns their configuration,
// for lifters tested against the YAML rules they ship with.
func ReadRules(paths ...string) ([]abi.RuleConfig, error) {
	rs := make([]*rules.Rule, 0, len(paths))
	for _, path := range paths {
		r, err := rules.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("sdktest: %w", err)
		}
		rs = append(rs, r)
	}
	return FromRules(rs...), nil
}
