package rules

import (
	"bytes"
	"fmt"
	"os"
	"sort"
	"time"

	"gopkg.in/yaml.v3"
)

// Mode is a rule's operating mode. There is no "expired" mode: a state whose ExpiresAt has
// passed is evaluated as enabled, and its store reverts it.
type Mode string

// The three modes a rule can be in.
const (
	Enabled  Mode = "enabled"
	Disabled Mode = "disabled"
	Clipped  Mode = "clipped" // confidences capped at ConfidenceMax
)

// State is the operator's decision about a rule, kept apart from its definition so that
// silencing a noisy rule at 3 a.m. is never a new rule version and never needs a plugin to be
// reconfigured: the host applies it when it finishes each tag.
type State struct {
	Mode          Mode      `yaml:"state" json:"state"`
	ConfidenceMax float64   `yaml:"confidence_max,omitempty" json:"confidence_max,omitempty"`
	ExpiresAt     time.Time `yaml:"expires_at,omitempty" json:"expires_at,omitzero"`
	Reason        string    `yaml:"reason,omitempty" json:"reason,omitempty"`
}

// Effective is the state as evaluated at now: past its ExpiresAt every state is enabled. It is
// checked at evaluation time, not only when the store reverts, so an expiry is exact even if
// the revert is late.
func (s State) Effective(now time.Time) State {
	if s.Mode == "" || (!s.ExpiresAt.IsZero() && !now.Before(s.ExpiresAt)) {
		return State{Mode: Enabled}
	}
	return s
}

// Apply returns the confidence a tag of a rule in this (effective) state carries, and false
// when the rule is disabled. confidence_max caps only while clipped; no other ceiling exists.
func (s State) Apply(confidence float64) (float64, bool) {
	switch s.Mode {
	case Disabled:
		return 0, false
	case Clipped:
		if confidence > s.ConfidenceMax {
			return s.ConfidenceMax, true
		}
	}
	return confidence, true
}

// Validate checks a state as an operator wrote it.
func (s State) Validate() error {
	switch s.Mode {
	case Enabled, Disabled:
	case Clipped:
		if s.ConfidenceMax < 0 || s.ConfidenceMax > 1 || s.ConfidenceMax != s.ConfidenceMax {
			return fmt.Errorf("confidence_max %v is outside 0..1", s.ConfidenceMax)
		}
	default:
		return fmt.Errorf("state %q: want enabled, disabled or clipped", s.Mode)
	}
	if s.Mode != Clipped && s.ConfidenceMax != 0 {
		return fmt.Errorf("confidence_max applies only to clipped rules")
	}
	return nil
}

// LoadStateFile reads rule states from a YAML file mapping rule ids to states, for the
// offline `ttp tag --state FILE`:
//
//	R0012: {state: disabled, reason: noisy on build hosts}
//	R0004: {state: clipped, confidence_max: 0.4, expires_at: 2026-12-01T00:00:00Z}
func LoadStateFile(path string) (map[string]State, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("rules: state file: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("rules: %s: %w", path, err)
	}
	out := map[string]State{}
	if len(doc.Content) == 0 {
		return out, nil
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, &Error{File: path, Line: root.Line, Err: fmt.Errorf("%w: want a mapping of rule id to state", ErrType)}
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if !idRE.MatchString(k.Value) {
			return nil, &Error{File: path, Line: k.Line, Field: k.Value, Err: fmt.Errorf("%w: want a rule id such as R0012", ErrBadValue)}
		}
		if _, dup := out[k.Value]; dup {
			return nil, &Error{File: path, Line: k.Line, Field: k.Value, Err: ErrDuplicateKey}
		}
		var st State
		dec := v
		if err := decodeStrict(dec, &st); err != nil {
			return nil, &Error{File: path, Line: v.Line, Field: k.Value, Err: fmt.Errorf("%w: %v", ErrType, err)}
		}
		if err := st.Validate(); err != nil {
			return nil, &Error{File: path, Line: v.Line, Field: k.Value, Err: fmt.Errorf("%w: %v", ErrBadValue, err)}
		}
		out[k.Value] = st
	}
	return out, nil
}

// decodeStrict decodes a mapping node into a struct, refusing unknown keys.
func decodeStrict(n *yaml.Node, v any) error {
	b, err := yaml.Marshal(n)
	if err != nil {
		return err
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	return dec.Decode(v)
}

// SortedIDs returns the keys of a state map in order, for stable output.
func SortedIDs[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
