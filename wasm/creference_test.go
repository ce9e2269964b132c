package wasm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/decnet/ttp/abi"
)

// The C reference lifter (testdata/reference/c: lifter.c with sdk/c/ttp.h, built by
// build.sh, `make cguest`) is a committed fixture, so these tests need nothing but Go: they
// check that it loads, that it answers exactly as the Go reference lifter does, and, where
// clang can link for wasm32-wasi, that the committed bytes are what its source builds to. Its
// `ttp conform` run is conform's TestCReferenceConforms (and `make conform`).

const cRefPath = "testdata/reference/c/lifter.wasm"

// cRefRules is what the conformance run configures the lifters with
// (testdata/reference/rules): two session rules, the second with two emits entries.
var cRefRules = &abi.ConfigureRequest{Rules: []abi.RuleConfig{
	{ID: "R9031", Kind: "lifter:reference_x", AppliesTo: []string{"session"}, Emits: []abi.EmitConfig{{TechniqueID: "T1059", Tactic: "execution", Confidence: 0.6}}},
	{ID: "R9032", Kind: "lifter:reference_y", AppliesTo: []string{"session"}, Emits: []abi.EmitConfig{
		{TechniqueID: "T1105", Tactic: "command-and-control", Confidence: 0.5},
		{TechniqueID: "T1059", SubTechniqueID: "T1059.004", Tactic: "execution", Confidence: 0.9}}},
}}

// loadRef loads a reference module from wasm with a deadline no busy test machine reaches,
// and returns it with a configured instance.
func loadRef(tb testing.TB, name string, wasm []byte, req *abi.ConfigureRequest) (Module, Instance, *abi.ConfigureReply) {
	tb.Helper()
	ctx := context.Background()
	m, err := testCompiler.LoadWasm(ctx, name, wasm, Limits{Deadline: 5 * time.Second})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { m.Close(ctx) })
	inst, err := m.NewInstance(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { inst.Close(ctx) })
	reply, err := inst.Configure(ctx, req)
	if err != nil {
		tb.Fatalf("%s: configure: %v", name, err)
	}
	return m, inst, reply
}

func readCRef(tb testing.TB) []byte {
	tb.Helper()
	wasm, err := os.ReadFile(cRefPath)
	if err != nil {
		tb.Fatal(err)
	}
	return wasm
}

// TestCReferenceLoads: the committed fixture is an ABI v1 module with no import, the Go
// reference's manifest under its own name, a memory of one page, and the benchmark's reply.
// It runs under -short and -race too: it builds nothing.
func TestCReferenceLoads(t *testing.T) {
	ctx := context.Background()
	wasm := readCRef(t)
	ins, err := testCompiler.Inspect(ctx, wasm)
	if err != nil {
		t.Fatal(err)
	}
	if len(ins.Imports) != 0 {
		t.Errorf("imports %v, want none", ins.Imports)
	}
	m, inst, reply := loadRef(t, "reference-c", wasm, cRefRules)
	if len(reply.Rejected) > 0 || reply.Error != "" {
		t.Fatalf("configure: %+v", reply)
	}
	man := m.Manifest()
	want := []string{"payload.commands[].text", "payload.command_times_ms", "payload.duration_ms", "payload.login_failures",
		"payload.login_success", "payload.downloads[].url", "payload.client_version", "payload.usernames"}
	if man.Producer() != "reference-c@1.0.0" || len(man.Kinds) != 1 || man.Kinds[0].SourceKind != "session" ||
		!reflect.DeepEqual(man.Kinds[0].Fields, want) || !reflect.DeepEqual(man.EvidenceKeys, []string{"score"}) {
		t.Fatalf("manifest %+v", man)
	}
	ev := abi.Expand(refEvent)[0]
	out, err := inst.Tag(ctx, 0, &ev, abi.ReplyLimits{Emits: []int{1, 2}, EvidenceKeys: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 2 || out[0].Rule != 0 || out[1].Rule != 1 || out[0].Scale != 1 || len(out[0].Evidence) != 1 || out[0].Evidence[0].Value != int64(8) {
		t.Fatalf("drafts %+v", out)
	}
	if got := inst.(RawTagger).MemoryBytes(); got != 1<<16 {
		t.Errorf("linear memory %d bytes after a call, want one 64 KiB page", got)
	}
}

// TestCReferenceMatchesGo: the C lifter's replies are byte for byte the Go reference's, on
// the golden vectors, the benchmark's event and 3,000 generated sessions (types mixed, lists
// with holes, empty and absent fields); both answer an error reply to the malformed records
// conform sends, and both reject a rule with params with the same message.
func TestCReferenceMatchesGo(t *testing.T) {
	ctx := context.Background()
	goWasm, err := os.ReadFile(filepath.Join(buildReference(t), "lifter.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	goMod, goInst, _ := loadRef(t, "reference", goWasm, cRefRules)
	cMod, cInst, _ := loadRef(t, "reference-c", readCRef(t), cRefRules)
	if g, c := goMod.Manifest(), cMod.Manifest(); !reflect.DeepEqual(g.Kinds, c.Kinds) || !reflect.DeepEqual(g.EvidenceKeys, c.EvidenceKeys) ||
		!reflect.DeepEqual(g.RuleKinds, c.RuleKinds) {
		t.Fatalf("manifests differ: go %+v, c %+v", g, c)
	}
	pl, err := cMod.Manifest().Plans()
	if err != nil {
		t.Fatal(err)
	}
	events := append(vectorEvents(t, "testdata/reference/vectors"), abi.Expand(refEvent)[0])
	rng := rand.New(rand.NewPCG(15, 4))
	for i := 0; i < 3000; i++ {
		events = append(events, randomSession(rng, i))
	}
	goRaw, cRaw := goInst.(RawTagger), cInst.(RawTagger)
	drafts := 0
	for i := range events {
		rec := abi.AppendRecord(nil, 0, pl[0], &events[i])
		g, gerr := goRaw.TagRecord(ctx, rec)
		c, cerr := cRaw.TagRecord(ctx, rec)
		if gerr != nil || cerr != nil {
			t.Fatalf("event %d: go %v, c %v", i, gerr, cerr)
		}
		if !bytes.Equal(g, c) {
			t.Fatalf("event %d (%s): replies differ\ngo %x\nc  %x\nevent %+v", i, events[i].SourceID, g, c, events[i].Payload)
		}
		out, err := abi.DecodeReply(c, abi.ReplyLimits{Emits: []int{1, 2}, EvidenceKeys: 1}, nil)
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		drafts += len(out)
	}
	if fired := drafts / 2; fired < len(events)/20 || fired > len(events)/2 { // two rules: two drafts an event that fires
		t.Fatalf("%d drafts over %d events: too few fire, or too few stay silent, to compare the lifters", drafts, len(events))
	}
	t.Logf("%d events, %d drafts, replies identical", len(events), drafts)

	for name, rec := range map[string][]byte{
		"empty": {}, "wrong version": {9, 0, 0, 0}, "truncated": {1, 0, 1, 0, 4, 10, 0, 0, 0, 'a'},
		"unknown tag": {1, 0, 1, 0, 42}, "kind out of range": {1, 200, 0, 0}, "trailing bytes": {1, 0, 0, 0, 7, 7},
		"too few fields": {1, 0, 1, 0, 0}, "pairs cut short": {1, 0, 1, 0, 7, 1, 0, 0, 0, 1, 0, 0, 0, 'k'},
	} {
		for lang, raw := range map[string]RawTagger{"go": goRaw, "c": cRaw} {
			reply, err := raw.TagRecord(ctx, rec)
			if err != nil {
				t.Fatalf("%s, %s record: %v", lang, name, err)
			}
			if _, err := abi.DecodeReply(reply, abi.ReplyLimits{}, nil); !errors.Is(err, abi.ErrGuest) {
				t.Errorf("%s, %s record: not an error reply (%v)", lang, name, err)
			}
		}
	}

	withParams := &abi.ConfigureRequest{Rules: append([]abi.RuleConfig{{ID: "R9033", Kind: "lifter:reference_z", AppliesTo: []string{"session"},
		Params: map[string]any{"min_commands": 5, "bogus": true}, Emits: cRefRules.Rules[0].Emits}}, cRefRules.Rules...)}
	_, _, gr := loadRef(t, "reference", goWasm, withParams)
	_, _, cr := loadRef(t, "reference-c", readCRef(t), withParams)
	if len(gr.Rejected) != 1 || !reflect.DeepEqual(gr, cr) {
		t.Errorf("a rule with params: go %+v, c %+v", gr, cr)
	}
}

// vectorEvents reads the events of the golden vectors in dir.
func vectorEvents(t *testing.T, dir string) []abi.Event {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
	var out []abi.Event
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var vs []struct {
			Event map[string]any `yaml:"event"`
		}
		if err := yaml.Unmarshal(data, &vs); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, v := range vs {
			b, err := abi.CanonicalJSON(v.Event)
			if err != nil {
				t.Fatal(err)
			}
			ev, err := abi.DecodeEvent(b)
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			out = append(out, abi.Expand(ev)...)
		}
	}
	if len(out) == 0 {
		t.Fatalf("no vectors in %s", dir)
	}
	return out
}

// randomSession is a session event whose eight signals are each on, off, absent or of
// another type at random; about one in thirteen fires (TestCReferenceMatchesGo logs how many).
func randomSession(rng *rand.Rand, i int) abi.Event {
	pick := func(vs ...any) any { return vs[rng.IntN(len(vs))] }
	p := map[string]any{}
	cmds := []string{"uname -a", "wget http://x/a", "curl -O http://x/b", "chmod +x a", "chmod +x b", "chmod 755 a", "cd /tmp", "cat /etc/passwd", "", "xwgetx", "CURL"}
	if rng.IntN(8) > 0 {
		n := rng.IntN(12)
		list := make([]any, n)
		for j := range list {
			if rng.IntN(4) == 0 {
				list[j] = map[string]any{"text": cmds[rng.IntN(len(cmds))]}
			} else {
				list[j] = cmds[rng.IntN(len(cmds))]
			}
		}
		p["commands"] = list
	}
	if rng.IntN(8) > 0 {
		n := rng.IntN(12)
		list, t := make([]any, n), 0.0
		for j := range list {
			t += pick(0.0, 50.0, 150.0, 399.0, 400.0, 401.0, 2000.0, -100.0).(float64)
			switch rng.IntN(12) {
			case 0:
				list[j] = nil
			case 1:
				list[j] = "12"
			case 2:
				list[j] = t + 0.5
			default:
				list[j] = t
			}
		}
		p["command_times_ms"] = list
	}
	for key, vals := range map[string][]any{
		"duration_ms":    {nil, 0.0, -1.0, 1.0, 9999.5, 1400.0, 1400.0, 10000.0, 50000.0, "900", true},
		"login_failures": {nil, 3.0, 3.99, 4.0, 4.5, 6.0, 6.0, 1e300, -1e300, 100.0, "7", false},
		"login_success":  {nil, true, true, true, false, "true", 1.0},
		"client_version": {nil, "SSH-2.0-Go", "SSH-2.0-Go", "SSH-2.0-libssh_0.9", "SSH-2.0-OpenSSH_9.6", "go", "", 2.0, []any{"Go"}},
		"usernames":      {nil, []any{}, []any{"root"}, []any{"root"}, []any{"a", "b"}, "root", []any{1.0}},
		"downloads":      {nil, []any{}, []any{map[string]any{"url": "http://x/a"}}, []any{map[string]any{"url": "http://x/b"}}, []any{map[string]any{"sha256": "ab"}}, "x"},
	} {
		if v := pick(vals...); v != nil {
			p[key] = v
		}
	}
	return abi.Event{SourceKind: "session", SourceID: fmt.Sprintf("gen-%d", i), Payload: p}
}

// TestCReferenceSource: the committed lifter.wasm is what build.sh makes of lifter.c and
// sdk/c/ttp.h today (clang's output is deterministic), so the fixture cannot drift from its
// source. It skips where clang cannot link for wasm32-wasi: `make test` needs only Go.
func TestCReferenceSource(t *testing.T) {
	probe := exec.Command("clang", "--target=wasm32-wasi", "-mexec-model=reactor", "-o", filepath.Join(t.TempDir(), "t.wasm"), "-x", "c", "-")
	probe.Stdin = strings.NewReader(`__attribute__((export_name("f"))) int f(int x) { return x + 1; }`)
	if out, err := probe.CombinedOutput(); err != nil {
		t.Skipf("clang cannot link for wasm32-wasi (make cguest installs it): %v %s", err, out)
	}
	built := filepath.Join(t.TempDir(), "lifter.wasm")
	if out, err := exec.Command("bash", "testdata/reference/c/build.sh", built).CombinedOutput(); err != nil {
		t.Fatalf("build.sh: %v\n%s", err, out)
	}
	got, err := os.ReadFile(built)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, readCRef(t)) {
		t.Fatalf("%s (%d bytes) is not what its source builds to (%d bytes): run make cguest and commit it", cRefPath, len(readCRef(t)), len(got))
	}
}

// cRefInstance is refInstance for the C lifter: the committed fixture loaded as the host
// loads a plugin, with the same limits, configured with the benchmark's one rule.
func cRefInstance(tb testing.TB) (Instance, abi.ReplyLimits) {
	tb.Helper()
	ctx := context.Background()
	m, err := testCompiler.LoadWasm(ctx, "reference-c", readCRef(tb), Limits{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { m.Close(ctx) })
	inst, err := m.NewInstance(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	if reply, err := inst.Configure(ctx, &abi.ConfigureRequest{Rules: cRefRules.Rules[:1]}); err != nil || len(reply.Rejected) > 0 || reply.Error != "" {
		tb.Fatalf("configure: %+v %v", reply, err)
	}
	return inst, abi.ReplyLimits{Emits: []int{1}, EvidenceKeys: len(m.Manifest().EvidenceKeys)}
}

// fileExists reports whether path names a file that can be read.
func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
