package sdk_test

import (
	"fmt"

	"github.com/decnet/ttp/abi"
	"github.com/decnet/ttp/rules"
	"github.com/decnet/ttp/sdk"
	"github.com/decnet/ttp/sdk/sdktest"
)

// The handles of a small lifter, declared once: it reads the commands of session events and
// may emit two evidence keys.
var (
	busyManifest = sdk.NewManifest("busy", "1.0.0", "lifter:busy_")
	busySession  = busyManifest.Source(abi.KindSession)
	busyCommands = busySession.Field("payload.commands[].text")
	countKey     = busyManifest.Evidence("commands")
	firstKey     = busyManifest.Evidence("first_command")
)

// busyParams is one rule's reading of its params.
type busyParams struct{ minCommands int64 }

// busy tags sessions in which the attacker typed at least min_commands commands, surer the
// more commands there are: half its rule's confidence at the threshold, all of it at twice.
type busy struct{}

func (busy) Manifest() *sdk.Manifest { return busyManifest }

func (busy) Configure(r *sdk.Rule[busyParams]) error {
	r.Params.minCommands = r.Int("min_commands", 5)
	if r.Params.minCommands < 1 {
		return fmt.Errorf("min_commands must be at least 1, got %d", r.Params.minCommands)
	}
	return nil
}

func (busy) Tag(ev *sdk.Event, rules []*sdk.Rule[busyParams], out *sdk.Drafts) {
	n := int64(ev.Len(busyCommands))
	for _, r := range rules {
		if n >= r.Params.minCommands {
			scale := min(1, float64(n)/float64(2*r.Params.minCommands))
			out.Add(r.Index, 0, scale).Int(countKey, n).String(firstKey, ev.StringAt(busyCommands, 0))
		}
	}
}

// A plugin's main package would add
//
//	func init() { sdk.Register(busy{}) }
//
//	func main() {}
//
// Here sdktest runs the lifter natively, with a rule as an operator writes it, on an event
// whose commands come as strings and objects (the host normalises them to objects, so
// payload.commands[].text reads all of them).
func Example() {
	rule, err := rules.Parse("R0950.yaml", []byte(`
id: R0950
name: Busy interactive session
applies_to: [session]
match: {kind: lifter:busy_session, params: {min_commands: 2}}
emits:
  - {technique_id: T1059, sub_technique_id: T1059.004, tactic: execution, confidence: 0.8}
precision: M
evidence_fields: [commands, first_command]
`))
	if err != nil {
		panic(err)
	}
	p, err := sdktest.New(busy{}, sdktest.FromRules(rule)...)
	if err != nil {
		panic(err)
	}
	ev, err := abi.DecodeEvent([]byte(`{"source_kind": "session", "source_id": "cowrie-9c2e",
		"payload": {"commands": ["uname -a", {"id": "cmd-7", "text": "cat /proc/cpuinfo"}, "w"]}}`))
	if err != nil {
		panic(err)
	}
	drafts, err := p.Tag(ev)
	if err != nil {
		panic(err)
	}
	for _, d := range drafts {
		fmt.Printf("%s %s %s %.2f %v\n", d.RuleID, d.SubTechniqueID, d.Tactic, d.Confidence, d.Evidence)
	}

	// A param the lifter cannot use rejects the rule, with a message for the operator.
	rejected, err := p.Configure(abi.RuleConfig{ID: "R0951", Kind: "lifter:busy_session", AppliesTo: []string{"session"},
		Params: map[string]any{"min_commands": "many"}, Emits: []abi.EmitConfig{{TechniqueID: "T1059", Tactic: "execution", Confidence: 0.5}}})
	if err != nil {
		panic(err)
	}
	fmt.Println(rejected[0].Rule, rejected[0].Message)
	// Output:
	// R0950 T1059.004 execution 0.60 map[commands:3 first_command:uname -a]
	// R0951 params.min_commands: want an integer, got "many"
}
