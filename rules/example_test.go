package rules_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/decnet/ttp/abi"
	"github.com/decnet/ttp/rules"
)

// Parse reads one rule file strictly: an unknown key, a bad value or a pattern that does not
// compile is an error naming the file, line and field.
func ExampleParse() {
	r, err := rules.Parse("R0013.yaml", []byte(`id: R0013
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
	fmt.Println(r.ID, r.Emits[0].SubTechniqueID, r.Version != "")

	_, err = rules.Parse("R0014.yaml", []byte(`id: R0014
name: typo
applies_to: [command]
match: {kind: pattern, patern: 'x'}
emits:
  - {technique_id: T1098, tactic: persistence, confidence: 0.9}
precision: H
evidence_fields: [command_text]
`))
	fmt.Println(err)
	var rerr *rules.Error
	fmt.Println(errors.As(err, &rerr), rerr.Field)
	// Output:
	// R0013 T1098.004 true
	// rules: R0014.yaml:4: match.patern: unknown key: known keys: exclude, field, kind, params, pattern, when
	// rules: R0014.yaml:4: match.pattern: required: a pattern rule needs a pattern or when branches
	// true match.patern
}

// A Snapshot is the rules and their states as one evaluation reads them. Apply never edits
// it: it returns the next one, so an evaluation in flight keeps what it started with.
func ExampleSnapshot_Apply() {
	r, err := rules.Parse("R0001.yaml", []byte(`id: R0001
name: uname
applies_to: [command]
match: {kind: pattern, pattern: '\buname\b'}
emits:
  - {technique_id: T1082, tactic: discovery, confidence: 0.8}
precision: H
evidence_fields: [command_text]
`))
	if err != nil {
		panic(err)
	}
	before, err := rules.EmptySnapshot().Apply(rules.Change{Op: rules.RuleUpdated, ID: r.ID, Rule: r})
	if err != nil {
		panic(err)
	}
	after, err := before.Apply(rules.Change{Op: rules.StateChanged, ID: "R0001", State: rules.State{Mode: rules.Disabled}})
	if err != nil {
		panic(err)
	}
	ev := &abi.Event{SourceKind: "command", SourceID: "c1", Payload: map[string]any{"command_text": "uname -a"}}
	now := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	fmt.Println(len(before.Set.Eval(ev, nil)), before.State("R0001", now).Mode, after.State("R0001", now).Mode)
	// Output: 1 enabled disabled
}
