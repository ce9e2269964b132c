// Package testkit holds what the tests of the runtime, the host and the telemetry adapters
// share: a log buffer safe for concurrent writers, a clock tests move by hand, the rules and
// the event the tiny test plugins (wasm/testdata/wat) are written for. Only tests import it.
package testkit

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/decnet/ttp/abi"
	"github.com/decnet/ttp/rules"
)

// SyncBuffer is a bytes.Buffer that log handlers on many goroutines may write to.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write implements io.Writer.
func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what was written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Reset forgets what was written.
func (s *SyncBuffer) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.Reset()
}

// Clock is a clock that moves only when Advance is called, so that quarantines and rule
// state expiry are tested without sleeping.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a Clock at t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock on by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// TinyRule is a rule the tiny test plugins own (rule_kinds lifter:tiny_), with one emit at
// conf and evidence as its only evidence field.
func TinyRule(t testing.TB, id string, conf float64, evidence string) *rules.Rule {
	t.Helper()
	src := fmt.Sprintf(`id: %s
name: tiny %s
applies_to: [command, auth]
match: {kind: lifter:tiny_marker, params: {threshold: 3}}
emits:
  - {technique_id: T1059, sub_technique_id: T1059.004, tactic: execution, confidence: %v}
precision: M
evidence_fields: [%s]
`, id, id, conf, evidence)
	return MustRule(t, id, src)
}

// RuleR0001 is a pattern rule on uname, for tests that want the engine beside a plugin.
const RuleR0001 = `id: R0001
name: uname
applies_to: [command]
match: {kind: pattern, pattern: '\buname\b'}
emits:
  - {technique_id: T1082, tactic: discovery, confidence: 0.8}
precision: H
evidence_fields: [command_text]
`

// MustRule parses src as the rule file id.yaml, failing the test on an error.
func MustRule(t testing.TB, id, src string) *rules.Rule {
	t.Helper()
	r, err := rules.Parse(id+".yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// UnameEvent is a command event both RuleR0001 and the tiny plugins tag.
var UnameEvent = abi.Event{SourceKind: "command", SourceID: "c1", Payload: map[string]any{"command_text": "uname -a"}}

// ByProducer groups tags by their producer.
func ByProducer(tags []abi.Tag) map[string][]abi.Tag {
	out := map[string][]abi.Tag{}
	for _, t := range tags {
		out[t.Producer] = append(out[t.Producer], t)
	}
	return out
}

// Wat is the path of a test module of the runtime (wasm/testdata/wat/name.wasm), from any
// package of the module.
func Wat(name string) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "wasm", "testdata", "wat", name+".wasm")
}

// RSS is the resident size of this process in bytes (Linux); the test is skipped where
// /proc/self/status cannot be read.
func RSS(t testing.TB) int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip("no /proc/self/status")
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				t.Fatalf("VmRSS %q: %v", f[1], err)
			}
			return kb << 10
		}
	}
	return 0
}

// RunInCacheDir runs m's tests with a fresh temporary directory for the compilation cache the
// test binary shares (modules compile once per binary): open makes what uses dir and returns
// what closes it, which runs after the tests, before the directory is removed. It exits with
// the tests' code.
func RunInCacheDir(m *testing.M, open func(dir string) (close func(), err error)) {
	dir, err := os.MkdirTemp("", "ttp-test-cache-")
	if err != nil {
		panic(err)
	}
	closer, err := open(dir)
	if err != nil {
		panic(err)
	}
	code := m.Run()
	closer()
	os.RemoveAll(dir)
	os.Exit(code)
}
