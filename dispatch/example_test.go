package dispatch_test

import (
	"context"
	"fmt"

	"github.com/decnet/ttp/abi"
	"github.com/decnet/ttp/dispatch"
	"github.com/decnet/ttp/rules"
)

// A Dispatcher turns one upstream event into finished tags: a session is fanned out into its
// commands, every handler of each kind runs, and Finish applies rule state.
func ExampleDispatcher() {
	rule, err := rules.Parse("R0013.yaml", []byte(`id: R0013
name: SSH authorized_keys injection
applies_to: [command]
match: {kind: pattern, pattern: '(?i)authorized_keys'}
emits:
  - {technique_id: T1098, sub_technique_id: T1098.004, tactic: persistence, confidence: 0.9}
precision: H
evidence_fields: [command_text]
`))
	if err != nil {
		panic(err)
	}
	snap, err := rules.NewSnapshot([]*rules.Rule{rule}, map[string]rules.State{"R0013": {Mode: rules.Clipped, ConfidenceMax: 0.5}})
	if err != nil {
		panic(err)
	}
	d := dispatch.New(dispatch.Config{Snapshot: dispatch.NewSnapshot(snap)})

	session := abi.Event{SourceKind: "session", SourceID: "cowrie-9c2e", Payload: map[string]any{
		"commands": []any{"uname -a", "echo ssh-rsa AAAA >> ~/.ssh/authorized_keys"},
	}}
	tags, err := d.Tag(context.Background(), session, nil)
	if err != nil {
		panic(err)
	}
	for _, t := range tags {
		fmt.Println(t.SourceID, t.RuleID, t.SubTechniqueID, t.Tactic, t.Confidence, t.Evidence["command_text"])
	}
	// Output: cowrie-9c2e#1 R0013 T1098.004 persistence 0.5 echo ssh-rsa AAAA >> ~/.ssh/authorized_keys
}
