package abi

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Manifest is what a plugin's ttp_describe returns (as JSON): who it is, which rules it owns,
// which fields of which source kinds it reads, and which evidence keys it may emit. The host
// compiles one projection plan per kind from it at load.
type Manifest struct {
	ABI          int          `json:"abi"`
	Name         string       `json:"name"`
	Version      string       `json:"version"`
	RuleKinds    []string     `json:"rule_kinds"`
	Kinds        []KindFields `json:"kinds"`
	EvidenceKeys []string     `json:"evidence_keys"`
	// Capabilities are the optional host features the module relies on (ABI.md,
	// "Capabilities"): CapHost for the host's text functions. A module that imports a
	// capability's functions must list it, so that a host without it refuses the module at
	// load by name; a module listing none is plain ABI v1.
	Capabilities []string `json:"capabilities,omitempty"`
}

// CapHost is the capability of the host's text functions, imported from the module "ttp"
// (ABI.md, "Host functions"; package wasm/hostfn implements them).
const CapHost = "ttp_host_v1"

// KnownCapabilities are the capabilities this host offers.
var KnownCapabilities = []string{CapHost}

// KindFields is the fields a plugin reads from events of one source kind, as absolute paths,
// in the order the record carries them.
type KindFields struct {
	SourceKind string   `json:"source_kind"`
	Fields     []string `json:"fields"`
}

// Producer is the name a plugin's tags carry: name@version.
func (m *Manifest) Producer() string { return m.Name + "@" + m.Version }

// KindIndex returns the position of kind in m.Kinds, or -1.
func (m *Manifest) KindIndex(kind string) int {
	for i, k := range m.Kinds {
		if k.SourceKind == kind {
			return i
		}
	}
	return -1
}

// Owns reports whether a rule of match kind matchKind belongs to the plugin.
func (m *Manifest) Owns(matchKind string) bool {
	for _, p := range m.RuleKinds {
		if strings.HasPrefix(matchKind, p) {
			return true
		}
	}
	return false
}

// ErrManifest is wrapped by every manifest validation error.
var ErrManifest = errors.New("abi: invalid manifest")

// The names of a manifest are checked by plain code, not regular expressions: the package is
// compiled into every plugin, and package regexp costs each one 0.5 MB (RATIONALE.md, "What
// makes a plugin 4 MB"). TestNameChecks holds each to the expression in its comment.

// isName: ^[a-z][a-z0-9_-]{0,62}$ (dash allowed) or ^[a-z][a-z0-9_]{0,62}$.
func isName(s string, dash bool) bool {
	if len(s) == 0 || len(s) > 63 || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || dash && c == '-') {
			return false
		}
	}
	return true
}

// isVersion: ^[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.-]+)?$
func isVersion(s string) bool {
	for part := 0; part < 3; part++ {
		n := 0
		for n < len(s) && s[n] >= '0' && s[n] <= '9' {
			n++
		}
		if n == 0 {
			return false
		}
		s = s[n:]
		if part < 2 {
			if len(s) == 0 || s[0] != '.' {
				return false
			}
			s = s[1:]
		}
	}
	if len(s) == 0 {
		return true
	}
	if s[0] != '-' && s[0] != '+' || len(s) == 1 {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// isRuleKind: ^lifter:[a-z][a-z0-9_]*$
func isRuleKind(s string) bool {
	rest, ok := strings.CutPrefix(s, "lifter:")
	if !ok || rest == "" || rest[0] < 'a' || rest[0] > 'z' {
		return false
	}
	for i := 1; i < len(rest); i++ {
		c := rest[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// DecodeManifest decodes and validates a manifest. Unknown JSON keys are refused so that a
// typo in a manifest is caught at load, not silently ignored.
func DecodeManifest(data []byte) (*Manifest, error) {
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	var m Manifest
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrManifest, err)
	}
	if len(m.Capabilities) == 0 {
		m.Capabilities = nil // "capabilities": [] is no capability, as an absent key
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

// Validate checks everything the host relies on: ABI version, name and semantic version,
// rule kind prefixes, known source kinds each listed once, parseable field paths, evidence
// keys that are plain unique names, and the limits.
func (m *Manifest) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrManifest}, args...)...)
	}
	if m.ABI != ABIVersion {
		return bad("abi %d, this host speaks %d", m.ABI, ABIVersion)
	}
	if !isName(m.Name, true) {
		return bad("name %q: want lower-case letters, digits, - and _", m.Name)
	}
	if !isVersion(m.Version) {
		return bad("version %q: want a semantic version such as 1.2.0", m.Version)
	}
	if len(m.RuleKinds) == 0 {
		return bad("rule_kinds is empty: the plugin would own no rule")
	}
	for _, k := range m.RuleKinds {
		if !isRuleKind(k) && !(strings.HasPrefix(k, "lifter:") && isRuleKind(strings.TrimSuffix(k, "_"))) {
			return bad("rule_kinds entry %q: want a prefix such as lifter:behavioral_", k)
		}
	}
	if len(m.Kinds) == 0 {
		return bad("kinds is empty: the plugin would see no event")
	}
	seen := map[string]bool{}
	for _, k := range m.Kinds {
		if !IsKnownKind(k.SourceKind) {
			return bad("source kind %q is not one of %s", k.SourceKind, strings.Join(KnownKinds, ", "))
		}
		if seen[k.SourceKind] {
			return bad("source kind %q listed twice", k.SourceKind)
		}
		seen[k.SourceKind] = true
		if len(k.Fields) > MaxFieldsPerKind {
			return bad("%s: %d fields, at most %d", k.SourceKind, len(k.Fields), MaxFieldsPerKind)
		}
		for _, f := range k.Fields {
			if _, err := ParsePath(f); err != nil {
				return bad("%s: field %v", k.SourceKind, err)
			}
		}
	}
	if len(m.EvidenceKeys) > MaxEvidenceKeys {
		return bad("%d evidence keys, at most %d", len(m.EvidenceKeys), MaxEvidenceKeys)
	}
	keys := map[string]bool{}
	for _, k := range m.EvidenceKeys {
		if !isName(k, false) {
			return bad("evidence key %q: want a plain lower-case name such as body_sha256", k)
		}
		if keys[k] {
			return bad("evidence key %q listed twice", k)
		}
		keys[k] = true
	}
	for i, c := range m.Capabilities {
		if !slices.Contains(KnownCapabilities, c) {
			return bad("capability %q: this host offers %s", c, strings.Join(KnownCapabilities, ", "))
		}
		if slices.Contains(m.Capabilities[:i], c) {
			return bad("capability %q listed twice", c)
		}
	}
	return nil
}

// ConfigureRequest is what ttp_configure receives (as JSON): the definitions of the rules the
// plugin owns, in the order reply drafts index them. State (disabled, clipped) is never sent:
// the host applies it.
type ConfigureRequest struct {
	Rules []RuleConfig `json:"rules"`
}

// RuleConfig is one owned rule as a plugin sees it.
type RuleConfig struct {
	ID        string         `json:"id"`
	Kind      string         `json:"kind"`
	AppliesTo []string       `json:"applies_to"`
	Params    map[string]any `json:"params,omitempty"`
	Emits     []EmitConfig   `json:"emits"`
}

// EmitConfig is one emits entry; a draft names it by index and may scale its confidence down.
type EmitConfig struct {
	TechniqueID    string  `json:"technique_id"`
	SubTechniqueID string  `json:"sub_technique_id,omitempty"`
	Tactic         string  `json:"tactic"`
	Confidence     float64 `json:"confidence"`
}

// ConfigureReply is what ttp_configure returns (as JSON). Rejected rules keep their previous
// definition live in the host, which reports the plugin's message with the rule's file.
type ConfigureReply struct {
	Rejected []RuleRejection `json:"rejected,omitempty"`
	Error    string          `json:"error,omitempty"` // the plugin cannot run at all
}

// RuleRejection is one rule a plugin cannot use, and why.
type RuleRejection struct {
	Rule    string `json:"rule"`
	Message string `json:"message"`
}

// Plans parses the manifest's field paths once per kind, in the order of Kinds: the
// projection plan a loader builds records (or the Extism variant's JSON input) from.
func (m *Manifest) Plans() ([][]Path, error) {
	out := make([][]Path, len(m.Kinds))
	for i, k := range m.Kinds {
		for _, f := range k.Fields {
			p, err := ParsePath(f)
			if err != nil {
				return nil, err
			}
			out[i] = append(out[i], p)
		}
	}
	return out, nil
}
