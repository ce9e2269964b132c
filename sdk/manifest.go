package sdk

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/decnet/ttp/abi"
)

// Manifest declares who a lifter is, which rules it owns, which fields of which source kinds
// it reads and which evidence keys it emits: what ttp_describe returns. Build it once, at
// package level, with the handles the lifter reads and writes through:
//
//	var (
//		manifest = sdk.NewManifest("bruteforce", "1.0.0", "lifter:bruteforce_")
//		auth     = manifest.Source(abi.KindAuth)
//		failures = auth.Field("payload.failures_before")
//		countKey = manifest.Evidence("failures_before")
//	)
//
// Why handles: the host writes a record of exactly the declared fields in declared order and
// the guest reads field i by index (abi/ABI.md), so a Field handle is that index, resolved
// once, and reading it costs no lookup and no allocation.
//
// Declaring is done before the manifest is first described; a declaration after that, or a
// malformed one, panics (like regexp.MustCompile), so the mistake surfaces in the plugin's
// first `go test` rather than as a bad record in production.
type Manifest struct {
	name, version string
	ruleKinds     []string
	sources       []*Source
	keys          []string
	host          bool // declares abi.CapHost: the lifter uses the host's text functions
	frozen        bool
}

// HostFunctions declares the capability of the host's text functions (abi.CapHost), which
// the sdk's AppendLower, IndexFold and Literals call when built for wasip1. A lifter that
// uses them must declare it: the host refuses a module importing them without the capability
// (ABI.md, "Host functions"). It returns m, to chain after NewManifest.
func (m *Manifest) HostFunctions() *Manifest {
	m.mutable("HostFunctions")
	m.host = true
	return m
}

// NewManifest starts a manifest. name ([a-z][a-z0-9_-]*) and version (semantic) make the
// producer name@version that every tag of the lifter carries; ruleKinds are the match.kind
// prefixes (such as "lifter:behavioral_") of the rules the lifter owns and is configured with.
// They are checked with the rest of the manifest when it is described (abi.Manifest.Validate).
func NewManifest(name, version string, ruleKinds ...string) *Manifest {
	return &Manifest{name: name, version: version, ruleKinds: append([]string(nil), ruleKinds...)}
}

// Source declares that the lifter handles events of one source kind (abi.KindAuth, ...) and
// returns the handle to declare that kind's fields with. The host calls the lifter only for
// events of declared kinds. Declaring a kind again returns the same handle.
func (m *Manifest) Source(kind string) *Source {
	m.mutable("Source")
	if !abi.IsKnownKind(kind) {
		panic(fmt.Sprintf("sdk: source kind %q is not one of %s", kind, strings.Join(abi.KnownKinds, ", ")))
	}
	for _, s := range m.sources {
		if s.kind == kind {
			return s
		}
	}
	s := &Source{m: m, kind: kind, index: len(m.sources)}
	m.sources = append(m.sources, s)
	return s
}

// Evidence declares an evidence key ([a-z][a-z0-9_]*) and returns its handle for Draft's
// evidence methods. A draft can carry only declared keys: the reply names them by index, and
// the host strips any key outside the rule's evidence_fields. Declaring a key again returns
// the same handle.
func (m *Manifest) Evidence(key string) Key {
	m.mutable("Evidence")
	if !plainName(key) {
		panic(fmt.Sprintf("sdk: evidence key %q: want a plain lower-case name such as body_sha256", key))
	}
	for i, k := range m.keys {
		if k == key {
			return Key{m: m, index: i}
		}
	}
	if len(m.keys) == abi.MaxEvidenceKeys {
		panic(fmt.Sprintf("sdk: evidence key %q: at most %d keys", key, abi.MaxEvidenceKeys))
	}
	m.keys = append(m.keys, key)
	return Key{m: m, index: len(m.keys) - 1}
}

// mutable panics when the manifest was already described: a later declaration would not be in
// the records the host writes.
func (m *Manifest) mutable(what string) {
	if m.frozen {
		panic(fmt.Sprintf("sdk: manifest %s: %s declared after the manifest was described; declare handles at package level", m.name, what))
	}
}

// encode freezes the manifest and returns its JSON (abi.Manifest). It is not validated here:
// the host validates it (abi.DecodeManifest) and refuses the module with the reason, and so
// does sdktest.
func (m *Manifest) encode() []byte {
	m.frozen = true
	am := abi.Manifest{
		ABI:          abi.ABIVersion,
		Name:         m.name,
		Version:      m.version,
		RuleKinds:    append([]string{}, m.ruleKinds...),
		Kinds:        make([]abi.KindFields, len(m.sources)),
		EvidenceKeys: append([]string{}, m.keys...),
	}
	for i, s := range m.sources {
		am.Kinds[i] = abi.KindFields{SourceKind: s.kind, Fields: append([]string{}, s.paths...)}
	}
	if m.host {
		am.Capabilities = []string{abi.CapHost}
	}
	b, err := json.Marshal(am)
	if err != nil { // strings and slices of strings always encode
		panic(fmt.Sprintf("sdk: manifest %s: %v", m.name, err))
	}
	return b
}

// sourceIndex returns the position of kind among the declared sources, or -1.
func (m *Manifest) sourceIndex(kind string) int {
	for i, s := range m.sources {
		if s.kind == kind {
			return i
		}
	}
	return -1
}

func plainName(s string) bool {
	if len(s) == 0 || len(s) > 63 || s[0] < 'a' || s[0] > 'z' {
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

// Source is one declared source kind of a Manifest; its fields are declared through it.
type Source struct {
	m     *Manifest
	kind  string
	index int
	paths []string
}

// Field declares that the lifter reads path (absolute: "payload.failures_before",
// "payload.commands[].text", "payload.headers.*", "session_id"; see abi.ParsePath) from
// events of this source kind, and returns the handle to read it with. The order of
// declarations is the order of the record. Declaring a path again returns the same handle.
//
// A lifter never sees a field it did not declare: that is also the first guard against
// personal data reaching it.
func (s *Source) Field(path string) Field {
	s.m.mutable("Field " + path)
	if _, err := abi.ParsePath(path); err != nil {
		panic(fmt.Sprintf("sdk: %s field: %v", s.kind, err))
	}
	for i, p := range s.paths {
		if p == path {
			return Field{m: s.m, source: s.index, index: i}
		}
	}
	if len(s.paths) == abi.MaxFieldsPerKind {
		panic(fmt.Sprintf("sdk: %s field %q: at most %d fields per source kind", s.kind, path, abi.MaxFieldsPerKind))
	}
	s.paths = append(s.paths, path)
	return Field{m: s.m, source: s.index, index: len(s.paths) - 1}
}

// Kind returns the source kind the handle declares.
func (s *Source) Kind() string { return s.kind }

// Field is a declared field of one source kind: its position in that kind's records. Reading
// it from an event of another kind (or through the zero Field) gives an absent value, so a
// lifter handling several kinds can read each kind's fields without checking the kind first.
type Field struct {
	m      *Manifest
	source int
	index  int
}

// Key is a declared evidence key: its index in the manifest's evidence_keys.
type Key struct {
	m     *Manifest
	index int
}
