package extism

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	extsdk "github.com/extism/go-sdk"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/sys"

	"github.com/decnet/ttp/abi"
	"github.com/decnet/ttp/wasm"
	"github.com/decnet/ttp/wasm/internal/budget"
	"github.com/decnet/ttp/wasm/internal/seal"
)

// Variant is the loader of the Extism variant (abi/ABI.md, "The Extism variant"):
// modules that export Extism-style describe, configure and tag functions exchanging JSON
// through the Extism kernel's input and output, for authors who prefer an Extism PDK
// language. It is the slower path: about 95 us and 260 KB of garbage a call against 1.9 us
// for the same tiny plugin through the native ttp ABI (BenchmarkExtismTag, BenchmarkWasmTag;
// the JSON the guest has to parse and print, and the kernel's byte-by-byte copies of input
// and output, dominate), so a plugin on the hot path should speak the ttp ABI.
//
// Each plugin gets its own wazero runtime (through extsdk.NewCompiledPlugin), sharing the
// Compiler's compilation cache, with the same guarantees as the ttp loader: the memory cap,
// WithCloseOnContextDone and a deadline on every call, the output cap, the import allowlist
// (WASI start-up functions, plus the Extism kernel's memory, input/output, error and log
// functions: never its HTTP or variable-store functions), and the same call failures.
//
// Give it to wasm.NewCompiler in wasm.CompilerConfig.Variants; it holds no state.
type Variant struct{}

// Function names of the Extism variant.
const (
	extismDescribe  = "describe"
	extismConfigure = "configure"
	extismTag       = "tag"
)

// extismKernelModule is the import module of the Extism kernel functions, which the SDK
// provides.
const extismKernelModule = "extism:host/env"

// allowedExtismImports are the kernel functions an Extism-variant plugin may import: memory
// blocks, input and output, its error message, config (always empty) and logging. Outside
// the list are http_request, http_status_code and http_headers (network) and var_get and
// var_set (state kept between calls, which would make answers depend on history).
var allowedExtismImports = map[string]bool{
	"alloc": true, "free": true, "length": true, "length_unsafe": true,
	"load_u8": true, "load_u64": true, "store_u8": true, "store_u64": true,
	"input_length": true, "input_offset": true, "input_load_u8": true, "input_load_u64": true,
	"input_set": true, "output_length": true, "output_offset": true, "output_set": true,
	"reset": true, "error_set": true, "error_get": true, "memory_bytes": true,
	"config_get": true, "get_log_level": true,
	"log_trace": true, "log_debug": true, "log_info": true, "log_warn": true, "log_error": true,
}

// allowedExtismImport reports whether an Extism-variant module may import module.name: the
// WASI functions the ttp loader allows, plus the kernel functions of allowedExtismImports.
//
// The host's text functions (module "ttp") are not among them: the Extism SDK's runtime does
// not carry them, so such a module is refused at the check rather than failing to instantiate.
func allowedExtismImport(module, name string) bool {
	return module == "wasi_snapshot_preview1" && wasm.AllowedImport(module, name) || module == extismKernelModule && allowedExtismImports[name]
}

// Detect reports whether wasm looks like an Extism-variant plugin: it exports the functions
// describe, configure and tag and no ttp_abi_v* marker. It reads the export section without
// compiling; bytes it cannot parse are not Extism (the ttp loader then reports why).
func (Variant) Detect(bin []byte) bool {
	sc, err := scanWasm(bin)
	if err != nil {
		return false
	}
	for name := range sc.exports {
		if strings.HasPrefix(name, "ttp_abi_v") {
			return false
		}
	}
	return sc.exports[extismDescribe] && sc.exports[extismConfigure] && sc.exports[extismTag]
}

// extismModule is a compiled Extism-variant plugin with its validated manifest.
type extismModule struct {
	seal.Type
	name     string
	sum      string
	compiled *extsdk.CompiledPlugin
	manifest *abi.Manifest
	plans    [][]abi.Path   // per manifest kind
	keys     map[string]int // evidence key -> index in the manifest
	limits   wasm.Limits
}

// Load checks the module's exports and imports, compiles it with the Extism SDK in a runtime
// of its own (memory cap, close on context done, the Compiler's cache, WASI for reactors such
// as Go's wasip1 c-shared modules), calls describe once on a fresh instance and validates the
// manifest. name is used in errors (usually the file path).
func (Variant) Load(ctx context.Context, cache wazero.CompilationCache, name string, bin []byte, lim wasm.Limits) (wasm.Module, error) {
	lim = lim.WithDefaults()
	fail := func(err error) (wasm.Module, error) { return nil, fmt.Errorf("wasm: %s: %w", name, err) }
	sc, err := scanWasm(bin)
	if err != nil {
		return fail(err)
	}
	for _, e := range []string{extismDescribe, extismConfigure, extismTag} {
		if !sc.exports[e] {
			return fail(fmt.Errorf("%w: %s", wasm.ErrMissingExport, e))
		}
	}
	for _, imp := range sc.funcImports {
		if !allowedExtismImport(imp[0], imp[1]) {
			return fail(fmt.Errorf("%w: %s.%s", wasm.ErrForbiddenImport, imp[0], imp[1]))
		}
	}
	sum := sha256.Sum256(bin)
	rc := wazero.NewRuntimeConfig().
		WithCloseOnContextDone(true).
		WithMemoryLimitPages(lim.MemoryPages).
		WithCompilationCache(cache)
	manifest := extsdk.Manifest{
		Wasm: []extsdk.Wasm{extsdk.WasmData{Data: bin, Name: "main"}},
		// No HTTP and no variable store: a call's answer depends on its input only.
		Memory: &extsdk.ManifestMemory{MaxPages: lim.MemoryPages, MaxHttpResponseBytes: 0, MaxVarBytes: 0},
		// Timeout stays 0: every call gets lim.Deadline from extismInstance.call.
	}
	// EnableWasi: a Go wasip1 guest imports WASI to start. The SDK instantiates modules without
	// start functions and runs _initialize (a reactor's) itself, once per instance, lazily
	// before the instance's first call (within that call's deadline).
	// (When it fails past creating its runtime, the SDK returns without closing it: the
	// scan above refuses what it can before, and the rest is left to the garbage collector.)
	compiled, err := extsdk.NewCompiledPlugin(ctx, manifest, extsdk.PluginConfig{RuntimeConfig: rc, EnableWasi: true}, nil)
	if err != nil {
		return fail(err)
	}
	m := &extismModule{name: name, sum: hex.EncodeToString(sum[:]), compiled: compiled, limits: lim}
	fail = func(err error) (wasm.Module, error) {
		compiled.Close(ctx)
		return nil, fmt.Errorf("wasm: %s: %w", name, err)
	}
	inst, err := m.instantiate(ctx)
	if err != nil {
		return fail(err)
	}
	defer inst.Close(ctx)
	raw, err := inst.call(ctx, extismDescribe, nil)
	if err != nil {
		return fail(fmt.Errorf("describe: %w", err))
	}
	man, err := abi.DecodeManifest(raw)
	if err != nil {
		return fail(err)
	}
	m.manifest = man
	if m.plans, err = man.Plans(); err != nil {
		return fail(err)
	}
	m.keys = make(map[string]int, len(man.EvidenceKeys))
	for i, k := range man.EvidenceKeys {
		m.keys[k] = i
	}
	return m, nil
}

func (m *extismModule) Manifest() *abi.Manifest { return m.manifest }
func (m *extismModule) SHA256() string          { return m.sum }

func (m *extismModule) Close(ctx context.Context) error { return m.compiled.Close(ctx) }

func (m *extismModule) NewInstance(ctx context.Context) (wasm.Instance, error) {
	inst, err := m.instantiate(ctx)
	if err != nil {
		return nil, fmt.Errorf("wasm: %s: %w", m.name, err)
	}
	return inst, nil
}

func (m *extismModule) instantiate(ctx context.Context) (*extismInstance, error) {
	// A fresh module config: no arguments, environment, files, stdout or stderr, fake clocks
	// and a deterministic random source, as for the ttp loader.
	p, err := m.compiled.Instance(ctx, extsdk.PluginInstanceConfig{ModuleConfig: wazero.NewModuleConfig()})
	if err != nil {
		return nil, err
	}
	p.SetLogger(func(extsdk.LogLevel, string) {}) // a plugin's log calls never reach the host's output
	inst := &extismInstance{module: m, plugin: p}
	inst.enc = newFieldEncoder(&inst.field)
	return inst, nil
}

// newFieldEncoder returns the encoder of tag input values: JSON as encoding/json writes it,
// without escaping <, > and &.
func newFieldEncoder(w io.Writer) *json.Encoder {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc
}

// extismInstance is one instance of an Extism-variant plugin, with the buffers it reuses to
// build the JSON input of tag.
type extismInstance struct {
	seal.Type
	module    *extismModule
	plugin    *extsdk.Plugin
	input     []byte
	field     bytes.Buffer
	enc       *json.Encoder
	closeOnce sync.Once
}

func (i *extismInstance) Close(ctx context.Context) error {
	var err error
	i.closeOnce.Do(func() { err = i.plugin.Close(ctx) })
	return err
}

// call runs one function under the plugin's deadline, enforces the output cap and maps
// failures to the host's errors, as wasmInstance.call does: a deadline passed is wasm.ErrTimeout,
// a trap (or a WASI exit, or anything else the runtime reports) is wasm.ErrTrap, and a plugin that
// failed the call itself (an Extism error message, or a non-zero return) is abi.ErrGuest.
func (i *extismInstance) call(ctx context.Context, fn string, input []byte) ([]byte, error) {
	deadline := i.module.limits.Deadline
	if fn != extismTag {
		deadline = max(20*deadline, 2*time.Second) // load-time calls, off the hot path
	}
	cctx, cancel := context.WithTimeout(ctx, deadline)
	defer cancel()
	rc, out, err := i.plugin.CallWithContext(cctx, fn, input)
	return i.outcome(ctx, fn, rc, out, err, func(err error) error {
		var exit *sys.ExitError
		if errors.As(err, &exit) && exit.ExitCode() == sys.ExitCodeDeadlineExceeded || errors.Is(cctx.Err(), context.DeadlineExceeded) {
			return fmt.Errorf("%w (%v)", wasm.ErrTimeout, deadline)
		}
		return nil
	})
}

// callRetry is call as the retry of a call that timed out (Retrier): under Limits.Deadline of
// the call's own CPU time, with Limits.Retry of wall time as its ceiling; either cancels the
// call's context, which closes the module.
func (i *extismInstance) callRetry(ctx context.Context, fn string, input []byte) ([]byte, error) {
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		rc  uint32
		out []byte
	)
	lim := i.module.limits
	r, err := budget.Run(lim.Deadline, lim.Retry, cancel, func() (err error) {
		rc, out, err = i.plugin.CallWithContext(cctx, fn, input)
		return err
	})
	return i.outcome(ctx, fn, rc, out, err, func(error) error {
		if r.Stopped != budget.NotStopped {
			return fmt.Errorf("%w (%s)", wasm.ErrTimeout, r.Describe(lim.Deadline, lim.Retry))
		}
		return nil
	})
}

// outcome maps a call's result to the host's errors; timeout tells whether err is the call's
// deadline (nil when it is not).
func (i *extismInstance) outcome(ctx context.Context, fn string, rc uint32, out []byte, err error, timeout func(error) error) ([]byte, error) {
	if err == nil && rc == 0 {
		if len(out) > abi.MaxReply {
			return nil, fmt.Errorf("%w: %d bytes", wasm.ErrOutputCap, len(out))
		}
		return out, nil
	}
	if ctx.Err() != nil {
		return nil, ctx.Err() // shutdown is not the plugin's failure: never swallowed, never counted
	}
	if err == nil {
		return nil, fmt.Errorf("%w: %s returned %d", abi.ErrGuest, fn, rc)
	}
	if terr := timeout(err); terr != nil {
		return nil, terr
	}
	// The SDK reports a message the guest set with error_set as a plain error carrying exactly
	// that message; the runtime's errors (traps, panics of host functions) wrap a cause or
	// carry a stack trace.
	if errors.Unwrap(err) == nil {
		if msg := i.plugin.GetError(); msg != "" && msg == err.Error() {
			return nil, fmt.Errorf("%w: %s", abi.ErrGuest, msg)
		}
	}
	return nil, fmt.Errorf("%w: %w", wasm.ErrTrap, err)
}

func (i *extismInstance) Configure(ctx context.Context, req *abi.ConfigureRequest) (*abi.ConfigureReply, error) {
	data, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	out, err := i.call(ctx, extismConfigure, data)
	if err != nil {
		return nil, fmt.Errorf("configure: %w", err)
	}
	var reply abi.ConfigureReply
	if len(out) > 0 {
		if err := json.Unmarshal(out, &reply); err != nil {
			return nil, fmt.Errorf("%w: configure reply: %v", wasm.ErrBadReply, err)
		}
	}
	return &reply, nil
}

// Tag sends {"source_kind": ..., "fields": [...]} (the manifest's fields of the event's kind
// in declared order, JSON-typed, null when absent) to tag and decodes its reply with
// decodeExtismReply.
func (i *extismInstance) Tag(ctx context.Context, kindIndex int, ev *abi.Event, lim abi.ReplyLimits, out []abi.ReplyDraft) ([]abi.ReplyDraft, error) {
	return i.tag(ctx, false, kindIndex, ev, lim, out)
}

// RetryTag implements Retrier: Tag with the call under the retry's budget (callRetry).
func (i *extismInstance) RetryTag(ctx context.Context, kindIndex int, ev *abi.Event, lim abi.ReplyLimits, out []abi.ReplyDraft) ([]abi.ReplyDraft, error) {
	return i.tag(ctx, true, kindIndex, ev, lim, out)
}

func (i *extismInstance) tag(ctx context.Context, retry bool, kindIndex int, ev *abi.Event, lim abi.ReplyLimits, out []abi.ReplyDraft) ([]abi.ReplyDraft, error) {
	i.input = i.appendTagInput(i.input[:0], kindIndex, ev)
	if len(i.input) > abi.MaxRecord {
		return out, fmt.Errorf("%w: tag input of %d bytes over %d", wasm.ErrRecordTooLarge, len(i.input), abi.MaxRecord)
	}
	var reply []byte
	var err error
	if retry {
		reply, err = i.callRetry(ctx, extismTag, i.input)
	} else {
		reply, err = i.call(ctx, extismTag, i.input)
	}
	if err != nil {
		return out, err
	}
	return decodeExtismReply(reply, i.module.keys, lim, out)
}

// appendTagInput appends the JSON input of tag for ev to buf. A value JSON cannot carry (a
// NaN, a channel) is sent as null, as the record of the ttp ABI carries it as null.
func (i *extismInstance) appendTagInput(buf []byte, kindIndex int, ev *abi.Event) []byte {
	buf = append(buf, `{"source_kind":`...)
	buf = i.appendJSON(buf, i.module.manifest.Kinds[kindIndex].SourceKind)
	buf = append(buf, `,"fields":[`...)
	for n, p := range i.module.plans[kindIndex] {
		if n > 0 {
			buf = append(buf, ',')
		}
		v, ok := p.Lookup(ev)
		if !ok {
			buf = append(buf, "null"...)
			continue
		}
		buf = i.appendJSON(buf, v)
	}
	return append(buf, "]}"...)
}

func (i *extismInstance) appendJSON(buf []byte, v any) []byte {
	switch x := v.(type) {
	case nil:
		return append(buf, "null"...)
	case bool:
		return strconv.AppendBool(buf, x)
	}
	i.field.Reset()
	if err := i.enc.Encode(v); err != nil {
		return append(buf, "null"...)
	}
	return append(buf, bytes.TrimRight(i.field.Bytes(), "\n")...)
}

// extismReply is the reply of tag: drafts, or an error.
type extismReply struct {
	Drafts []extismDraft `json:"drafts"`
	Error  *string       `json:"error"`
}

// extismDraft is one draft: every field but evidence is required.
type extismDraft struct {
	Rule     *int           `json:"rule"`
	Emit     *int           `json:"emit"`
	Scale    *float64       `json:"scale"`
	Evidence map[string]any `json:"evidence"`
}

// decodeExtismReply decodes and validates a tag reply of the Extism variant,
// {"drafts":[{"rule":i,"emit":j,"scale":s,"evidence":{"key":value}}]} or {"error":"..."},
// appending its drafts to out. It validates as abi.DecodeReply does: a rule index not below
// len(lim.Emits), an emits index not below that rule's count, a scale outside [0,1], an
// evidence key the manifest does not declare (keys maps each declared key to its index), a
// missing field, an unknown key or anything after the object make the reply undecodable
// (wasm.ErrBadReply, and out is returned as it was); an error reply returns abi.ErrGuest with the
// message. Evidence values take the types the binary reply would give them: integral numbers
// int64, other numbers float64, arrays []string or []float64, objects []string of key, value
// pairs sorted by key; the entries are ordered by key index.
func decodeExtismReply(data []byte, keys map[string]int, lim abi.ReplyLimits, out []abi.ReplyDraft) ([]abi.ReplyDraft, error) {
	bad := func(format string, args ...any) ([]abi.ReplyDraft, error) {
		return out, fmt.Errorf("%w: "+format, append([]any{wasm.ErrBadReply}, args...)...)
	}
	if len(data) > abi.MaxReply {
		return out, fmt.Errorf("%w: %d bytes", wasm.ErrOutputCap, len(data))
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var r extismReply
	if err := dec.Decode(&r); err != nil {
		return bad("tag reply: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return bad("tag reply: data after the reply object")
	}
	if r.Error != nil {
		return out, fmt.Errorf("%w: %s", abi.ErrGuest, *r.Error)
	}
	res := out
	for i, d := range r.Drafts {
		switch {
		case d.Rule == nil || d.Emit == nil || d.Scale == nil:
			return bad("draft %d: rule, emit and scale are required", i)
		case *d.Rule < 0 || *d.Rule >= len(lim.Emits):
			return bad("draft %d: rule index %d, plugin was configured with %d rules", i, *d.Rule, len(lim.Emits))
		case *d.Emit < 0 || *d.Emit >= lim.Emits[*d.Rule]:
			return bad("draft %d: emits index %d, rule has %d", i, *d.Emit, lim.Emits[*d.Rule])
		case !(*d.Scale >= 0 && *d.Scale <= 1):
			return bad("draft %d: scale %v outside [0,1]", i, *d.Scale)
		}
		rd := abi.ReplyDraft{Rule: *d.Rule, Emit: *d.Emit, Scale: *d.Scale}
		for k, v := range d.Evidence {
			key, ok := keys[k]
			if !ok || key >= lim.EvidenceKeys {
				return bad("draft %d: evidence key %q not declared in the manifest", i, k)
			}
			rd.Evidence = append(rd.Evidence, abi.ReplyEvidence{Key: key, Value: evidenceValue(v)})
		}
		sort.Slice(rd.Evidence, func(a, b int) bool { return rd.Evidence[a].Key < rd.Evidence[b].Key })
		res = append(res, rd)
	}
	return res, nil
}

// evidenceValue converts a decoded JSON evidence value to the type abi.DecodeReply gives the
// same value encoded in a binary reply (abi.ABI.md, record and reply value tags).
func evidenceValue(v any) any {
	switch x := v.(type) {
	case float64:
		if x == math.Trunc(x) && math.Abs(x) <= 1<<53 {
			return int64(x)
		}
		return x
	case []any:
		for _, el := range x {
			if _, ok := el.(string); ok {
				out := make([]string, len(x))
				for j, el := range x {
					out[j] = scalarString(el)
				}
				return out
			}
		}
		out := make([]float64, len(x))
		for j, el := range x {
			out[j] = math.NaN()
			switch n := el.(type) {
			case float64:
				out[j] = n
			case bool:
				out[j] = 0
				if n {
					out[j] = 1
				}
			}
		}
		return out
	case map[string]any:
		ks := make([]string, 0, len(x))
		for k := range x {
			ks = append(ks, k)
		}
		sort.Strings(ks)
		out := make([]string, 0, 2*len(ks))
		for _, k := range ks {
			out = append(out, k, scalarString(x[k]))
		}
		return out
	}
	return v // nil, bool, string
}

// scalarString is a scalar as a string entry of a list: strings as they are, numbers in Go's
// shortest form, booleans true/false, anything else "".
func scalarString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	}
	return ""
}

// wasmScan is what scanWasm reads from a module's bytes: its function exports and imports.
type wasmScan struct {
	exports     map[string]bool
	funcImports [][2]string // module, name
}

// scanWasm reads the import and export sections of a WebAssembly binary without compiling
// it. It checks the layout it walks, not the module's validity (compiling does that).
func scanWasm(b []byte) (*wasmScan, error) {
	malformed := func(what string) (*wasmScan, error) {
		return nil, fmt.Errorf("not a WebAssembly module: %s", what)
	}
	if len(b) < 8 || string(b[:4]) != "\x00asm" || string(b[4:8]) != "\x01\x00\x00\x00" {
		return malformed("bad magic or version")
	}
	sc := &wasmScan{exports: map[string]bool{}}
	r := wasmReader{b: b, p: 8}
	for r.p < len(r.b) {
		id := r.byte()
		size := r.u32()
		if r.err != nil || size > uint32(len(r.b)-r.p) {
			return malformed("truncated section")
		}
		sec := wasmReader{b: r.b[r.p : r.p+int(size)]}
		r.p += int(size)
		switch id {
		case 2: // imports
			for n := sec.u32(); n > 0 && sec.err == nil; n-- {
				mod, name, kind := sec.name(), sec.name(), sec.byte()
				switch kind {
				case 0: // function: type index
					sec.u32()
					sc.funcImports = append(sc.funcImports, [2]string{mod, name})
				case 1: // table: reference type, limits
					sec.byte()
					sec.limits()
				case 2: // memory: limits
					sec.limits()
				case 3: // global: value type, mutability
					sec.byte()
					sec.byte()
				case 4: // tag: attribute, type index
					sec.byte()
					sec.u32()
				default:
					return malformed(fmt.Sprintf("import kind %d", kind))
				}
			}
		case 7: // exports
			for n := sec.u32(); n > 0 && sec.err == nil; n-- {
				name, kind := sec.name(), sec.byte()
				sec.u32()
				if kind == 0 {
					sc.exports[name] = true
				}
			}
		}
		if sec.err != nil {
			return malformed(fmt.Sprintf("section %d: %v", id, sec.err))
		}
	}
	return sc, nil
}

// wasmReader reads the binary format's primitives, remembering the first error.
type wasmReader struct {
	b   []byte
	p   int
	err error
}

var errWasmTruncated = errors.New("truncated")

func (r *wasmReader) byte() byte {
	if r.err != nil || r.p >= len(r.b) {
		r.err = errWasmTruncated
		return 0
	}
	r.p++
	return r.b[r.p-1]
}

// uleb reads an unsigned LEB128 of at most bits bits.
func (r *wasmReader) uleb(bits uint) uint64 {
	var v uint64
	for shift := uint(0); shift < bits+7; shift += 7 {
		c := r.byte()
		if r.err != nil {
			return 0
		}
		v |= uint64(c&0x7f) << shift
		if c&0x80 == 0 {
			return v
		}
	}
	r.err = errors.New("LEB128 too long")
	return 0
}

func (r *wasmReader) u32() uint32 { return uint32(r.uleb(32)) }

func (r *wasmReader) name() string {
	n := r.u32()
	if r.err != nil || int(n) > len(r.b)-r.p {
		r.err = errWasmTruncated
		return ""
	}
	r.p += int(n)
	return string(r.b[r.p-int(n) : r.p])
}

// limits reads a table or memory type's limits: flags, minimum, maximum when flagged, page
// size when flagged (custom-page-sizes).
func (r *wasmReader) limits() {
	flags := r.byte()
	r.uleb(64)
	if flags&1 != 0 {
		r.uleb(64)
	}
	if flags&8 != 0 {
		r.u32()
	}
}
