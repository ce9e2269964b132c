package sdk

import (
	"encoding/json"
	"fmt"
	"runtime"
	"strings"

	"github.com/decnet/ttp/abi"
	"github.com/decnet/ttp/sdk/internal/bridge"
)

// Lifter is what a lifter author implements; P is the lifter's own reading of one rule's
// params (a struct of thresholds, usually), kept in Rule.Params.
//
// The host may run many instances of a lifter, and configures each afresh; a Lifter must keep
// nothing between Tag calls that changes its answers: the same event always gets the same
// drafts (`ttp conform` and sdktest check it).
type Lifter[P any] interface {
	// Manifest returns the lifter's manifest, declared once at package level. It is read
	// once, when the lifter is registered.
	Manifest() *Manifest

	// Configure reads one owned rule's params into r.Params, with r's helpers (r.Int,
	// r.Float, ...), which reject the rule when a param has the wrong type. Returning an
	// error rejects the rule with the error's message (a threshold out of range, a rule kind
	// the lifter does not know): the host keeps the rule's previous definition live and
	// reports the message with the rule's file. A param the lifter never reads rejects the
	// rule too, since it is almost always a typo, and so does a panic (that rule only).
	// Configure runs once per rule whenever the host (re)configures an instance, never per
	// event.
	Configure(r *Rule[P]) error

	// Tag looks at one event and adds a draft to out for every rule that fires. rules are
	// the accepted rules that apply to the event's source kind, in configuration order. A
	// panic fails this event only: it becomes an error reply naming the panic and where it
	// happened, which the host logs.
	Tag(ev *Event, rules []*Rule[P], out *Drafts)
}

// Register makes l the lifter the module serves. Call it from the plugin's init, beside an
// empty func main (the module is a reactor: the host runs its initialisation, never main):
//
//	func init() { sdk.Register(bruteForce{}) }
//
//	func main() {}
//
// built with `GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o bruteforce.wasm .`.
// Only the last registration counts. It panics when l's Manifest is nil.
func Register[P any](l Lifter[P]) {
	bridge.Registered = newPlugin(l)
}

// plugin is a registered lifter behind the ABI's byte-level calls. It keeps every buffer
// between calls (the record reader, the reply builder, the drafts), so that a Tag call in
// steady state allocates nothing unless the lifter does.
type plugin[P any] struct {
	lifter   Lifter[P]
	m        *Manifest
	manifest []byte // JSON, encoded at the first Describe

	configured []byte       // the last configure reply
	bySource   [][]*Rule[P] // per declared source kind: the accepted rules applying to it

	ev    Event
	out   Drafts
	reply abi.ReplyBuilder
}

func newPlugin[P any](l Lifter[P]) *plugin[P] {
	m := l.Manifest()
	if m == nil {
		panic(fmt.Sprintf("sdk: Register: %T.Manifest returned nil", l))
	}
	p := &plugin[P]{lifter: l, m: m}
	p.ev.m = m
	p.out.reply, p.out.m = &p.reply, m
	return p
}

// Describe returns the manifest as JSON, encoding it once.
func (p *plugin[P]) Describe() []byte {
	if p.manifest == nil {
		p.manifest = p.m.encode()
		p.bySource = make([][]*Rule[P], len(p.m.sources))
	}
	return p.manifest
}

// Configure decodes a configure request, runs the lifter's Configure on every rule and
// returns the reply: {} when every rule is usable, {"rejected": [...]} with a message per
// rule otherwise, {"error": ...} when the request itself is unusable.
func (p *plugin[P]) Configure(req []byte) []byte {
	p.Describe() // the manifest is fixed from here on
	var in abi.ConfigureRequest
	if err := json.Unmarshal(req, &in); err != nil {
		return p.configureReply(abi.ConfigureReply{Error: fmt.Sprintf("sdk: configure request: %v", err)})
	}
	var reply abi.ConfigureReply
	limits := make([]ruleLimit, len(in.Rules))
	bySource := make([][]*Rule[P], len(p.m.sources))
	for i, rc := range in.Rules {
		r := &Rule[P]{Index: i, ID: rc.ID, Kind: rc.Kind, AppliesTo: rc.AppliesTo, Emits: rc.Emits, raw: rc.Params}
		limits[i] = ruleLimit{id: rc.ID, emits: len(rc.Emits)}
		if msg := p.configureRule(r); msg != "" {
			limits[i].rejected = true
			reply.Rejected = append(reply.Rejected, abi.RuleRejection{Rule: rc.ID, Message: msg})
			continue
		}
		for _, kind := range r.AppliesTo {
			if k := p.m.sourceIndex(kind); k >= 0 {
				bySource[k] = append(bySource[k], r)
			}
		}
	}
	p.out.rules, p.bySource = limits, bySource
	return p.configureReply(reply)
}

// configureRule runs the lifter's Configure on one rule and returns its rejection message, ""
// when the rule is usable. A panic rejects that rule alone: the other rules stay usable.
func (p *plugin[P]) configureRule(r *Rule[P]) (msg string) {
	defer func() {
		if v := recover(); v != nil {
			msg = fmt.Sprintf("sdk: Configure panicked: %v%s", v, panicSite())
		}
	}()
	return r.verdict(p.lifter.Configure(r))
}

func (p *plugin[P]) configureReply(reply abi.ConfigureReply) []byte {
	b, err := json.Marshal(reply)
	if err != nil { // strings only: cannot happen
		b = []byte(`{"error":"sdk: encoding the configure reply failed"}`)
	}
	p.configured = b
	return b
}

// Tag reads one record, runs the lifter's Tag on it and returns the reply. Every failure,
// from a malformed record to a panic in the lifter, becomes an error reply with a message,
// never a trap: the host logs the message instead of a bare "unreachable".
func (p *plugin[P]) Tag(record []byte) []byte {
	p.Describe()
	p.out.reset()
	if err := p.ev.rec.Reset(record); err != nil {
		p.reply.Error("sdk: " + err.Error())
		return p.reply.Bytes()
	}
	k := p.ev.rec.KindIndex()
	if k >= len(p.m.sources) {
		p.reply.Error(fmt.Sprintf("sdk: record of kind index %d, the manifest declares %d kinds", k, len(p.m.sources)))
		return p.reply.Bytes()
	}
	if want := len(p.m.sources[k].paths); p.ev.rec.Fields != want {
		p.reply.Error(fmt.Sprintf("sdk: %s record with %d fields, the manifest declares %d", p.m.sources[k].kind, p.ev.rec.Fields, want))
		return p.reply.Bytes()
	}
	p.run(p.bySource[k])
	if p.out.err == nil && len(p.reply.Bytes()) > abi.MaxReply {
		p.out.err = fmt.Errorf("sdk: reply of %d bytes over the host's %d-byte cap", len(p.reply.Bytes()), abi.MaxReply)
	}
	if p.out.err != nil {
		p.reply.Error(p.out.err.Error())
	}
	return p.reply.Bytes()
}

// run calls the lifter's Tag, turning a panic into the call's error.
func (p *plugin[P]) run(rules []*Rule[P]) {
	defer func() {
		if v := recover(); v != nil {
			p.out.err = fmt.Errorf("sdk: Tag panicked on source kind %s: %v%s", p.ev.Kind(), v, panicSite())
		}
	}()
	p.lifter.Tag(&p.ev, rules, &p.out)
}

// panicSite returns " at function (file:line)" for the frame that panicked, found by
// skipping the runtime's frames from a deferred function, or "" if there is none.
func panicSite() string {
	var pcs [32]uintptr
	n := runtime.Callers(3, pcs[:]) // skip Callers, panicSite and the deferred function
	frames := runtime.CallersFrames(pcs[:n])
	for {
		f, more := frames.Next()
		if f.Function != "" && !strings.HasPrefix(f.Function, "runtime.") {
			return fmt.Sprintf(" at %s (%s:%d)", f.Function, f.File[strings.LastIndexByte(f.File, '/')+1:], f.Line)
		}
		if !more {
			return ""
		}
	}
}
