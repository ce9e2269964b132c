package wasm

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"

	"github.com/decnet/ttp/abi"
	"github.com/decnet/ttp/wasm/hostfn"
	"github.com/decnet/ttp/wasm/internal/budget"
	"github.com/decnet/ttp/wasm/internal/seal"
)

// Compiler compiles plugins through one directory compilation cache (compiling a 3.3 MB Go
// module costs about 2 s cold and 84 ms warm). It is safe for concurrent use.
type Compiler struct {
	cache    wazero.CompilationCache
	variants []Variant
}

// CompilerConfig is what a Compiler is made with. The zero value compiles ttp-ABI modules
// only, caching compiled code in memory.
type CompilerConfig struct {
	// CacheDir keeps compiled code across runs; "" keeps it in memory only.
	CacheDir string
	// Variants load modules that speak another convention than the ttp ABI: each is asked,
	// in order, about a module with no ttp_abi_v marker (package wasm/extism is the one
	// shipped). They live outside this package so that the runtime depends on wazero alone.
	Variants []Variant
}

// Variant is a loader of plugins of another convention than the ttp ABI, sharing the
// Compiler's compilation cache. Its modules and instances give the same guarantees as the
// runtime's own (a deadline on every call, the memory cap, the import allowlist).
type Variant interface {
	// Detect reports whether wasm is a module of this variant, without compiling it.
	Detect(wasm []byte) bool
	// Load compiles, checks and describes the module; name is used in errors.
	Load(ctx context.Context, cache wazero.CompilationCache, name string, wasm []byte, lim Limits) (Module, error)
}

// exportsTTPMarker reports whether the module bytes name a ttp_abi_v export (a cheap scan
// before compiling: a module that mentions it is a ttp-ABI module or a broken one, and the
// wazero loader gives the precise error for both).
func exportsTTPMarker(wasm []byte) bool { return bytes.Contains(wasm, []byte("ttp_abi_v")) }

// NewCompiler returns a Compiler; it fails when cfg.CacheDir cannot be used.
func NewCompiler(cfg CompilerConfig) (*Compiler, error) {
	if cfg.CacheDir == "" {
		return &Compiler{cache: wazero.NewCompilationCache(), variants: cfg.Variants}, nil
	}
	c, err := wazero.NewCompilationCacheWithDir(cfg.CacheDir)
	if err != nil {
		return nil, fmt.Errorf("wasm: compilation cache %s: %w", cfg.CacheDir, err)
	}
	return &Compiler{cache: c, variants: cfg.Variants}, nil
}

// Close releases the cache.
func (c *Compiler) Close(ctx context.Context) error { return c.cache.Close(ctx) }

// wasmModule is a ttp-ABI plugin in its own wazero runtime (one runtime per plugin, so each
// has its own memory cap).
type wasmModule struct {
	seal.Type
	name     string
	sum      string
	runtime  wazero.Runtime
	compiled wazero.CompiledModule
	manifest *abi.Manifest
	plans    [][]abi.Path // per manifest kind
	limits   Limits
	fns      *hostfn.Host                 // the host functions of this runtime (module "ttp")
	spare    atomic.Pointer[wasmInstance] // the describe instance, until NewInstance takes it
}

// LoadWasm compiles a ttp-ABI module, checks its marker, exports and imports, instantiates it
// once to read and validate its manifest, and returns it ready for instances. name is used in
// errors (usually the file path).
func (c *Compiler) LoadWasm(ctx context.Context, name string, wasm []byte, lim Limits) (Module, error) {
	lim = lim.WithDefaults()
	sum := sha256.Sum256(wasm)
	cfg := wazero.NewRuntimeConfig().
		WithCloseOnContextDone(true).
		WithMemoryLimitPages(lim.MemoryPages).
		WithCompilationCache(c.cache)
	r := wazero.NewRuntimeWithConfig(ctx, cfg)
	fail := func(err error) (Module, error) {
		r.Close(ctx)
		return nil, fmt.Errorf("wasm: %s: %w", name, err)
	}
	compiled, err := r.CompileModule(ctx, wasm)
	if err != nil {
		return fail(err)
	}
	if err := checkExports(compiled.ExportedFunctions()); err != nil {
		return fail(err)
	}
	if err := checkImports(compiled.ImportedFunctions()); err != nil {
		return fail(err)
	}
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, r); err != nil {
		return fail(err)
	}
	fns, err := hostfn.Instantiate(ctx, r)
	if err != nil {
		return fail(err)
	}
	m := &wasmModule{name: name, sum: hex.EncodeToString(sum[:]), runtime: r, compiled: compiled, limits: lim, fns: fns}
	inst, err := m.instantiate(ctx)
	if err != nil {
		return fail(err)
	}
	raw, err := inst.describeBytes(ctx)
	if err != nil {
		inst.Close(ctx)
		return fail(fmt.Errorf("ttp_describe: %w", err))
	}
	man, err := abi.DecodeManifest(raw)
	if err == nil {
		err = hostfn.CheckDeclared(compiled.ImportedFunctions(), man.Capabilities)
	}
	if err != nil {
		return fail(err)
	}
	m.manifest = man
	if m.plans, err = man.Plans(); err != nil {
		return fail(err)
	}
	// The instance that answered describe becomes the first one NewInstance hands out:
	// instantiating a Go guest runs its runtime's start-up, a third of a warm load with a
	// pool of two.
	m.spare.Store(inst)
	return m, nil
}

// WithDefaults is l with every unset bound at its default (PoolSize stays as it is: the pool
// decides it). Loaders apply it before they compile.
func (l Limits) WithDefaults() Limits {
	if l.Deadline <= 0 {
		l.Deadline = DefaultDeadline
	}
	if l.MemoryPages == 0 {
		l.MemoryPages = DefaultMemoryPages
	}
	l.Retry = l.RetryCeiling()
	return l
}

var requiredExports = []string{"ttp_alloc", "ttp_describe", "ttp_configure", "ttp_tag"}

func checkExports(exports map[string]api.FunctionDefinition) error {
	marker := ""
	for name := range exports {
		if strings.HasPrefix(name, "ttp_abi_v") {
			marker = name
		}
	}
	switch {
	case marker == "":
		return fmt.Errorf("%w: no ttp_abi_v1 export", ErrABIVersion)
	case marker != fmt.Sprintf("ttp_abi_v%d", abi.ABIVersion):
		return fmt.Errorf("%w: %s (this host supports ttp_abi_v%d)", ErrABIVersion, marker, abi.ABIVersion)
	}
	for _, name := range requiredExports {
		if _, ok := exports[name]; !ok {
			return fmt.Errorf("%w: %s", ErrMissingExport, name)
		}
	}
	return nil
}

func checkImports(imports []api.FunctionDefinition) error {
	for _, f := range imports {
		mod, name, _ := f.Import()
		if mod == hostfn.Module && !hostfn.Functions[name] {
			return fmt.Errorf("%w: %s.%s (this host offers %s.%s, capability %s)", ErrForbiddenImport, mod, name, mod, hostfn.Names(), abi.CapHost)
		}
		if !AllowedImport(mod, name) {
			return fmt.Errorf("%w: %s.%s", ErrForbiddenImport, mod, name)
		}
	}
	return nil
}

func (m *wasmModule) Manifest() *abi.Manifest { return m.manifest }
func (m *wasmModule) SHA256() string          { return m.sum }

func (m *wasmModule) Close(ctx context.Context) error { return m.runtime.Close(ctx) }

func (m *wasmModule) NewInstance(ctx context.Context) (Instance, error) {
	if inst := m.spare.Swap(nil); inst != nil {
		return inst, nil
	}
	inst, err := m.instantiate(ctx)
	if err != nil {
		return nil, fmt.Errorf("wasm: %s: %w", m.name, err)
	}
	return inst, nil
}

func (m *wasmModule) instantiate(ctx context.Context) (*wasmInstance, error) {
	cfg := wazero.NewModuleConfig().WithName("").WithStartFunctions("_initialize")
	ictx, bind := m.fns.Instance(ctx) // the instance's literal sets and regexps, forgotten at its close
	mod, err := m.runtime.InstantiateModule(ictx, m.compiled, cfg)
	if err != nil {
		return nil, err
	}
	bind(mod)
	inst := &wasmInstance{
		module: m, mod: mod,
		alloc: mod.ExportedFunction("ttp_alloc"), describe: mod.ExportedFunction("ttp_describe"),
		configure: mod.ExportedFunction("ttp_configure"), tag: mod.ExportedFunction("ttp_tag"),
		stack: make([]uint64, 2),
	}
	if mod.Memory() == nil {
		mod.Close(ctx)
		return nil, fmt.Errorf("%w: memory", ErrMissingExport)
	}
	return inst, nil
}

// wasmInstance is one instance of a ttp-ABI module with its reusable buffers: the guest input
// buffer (obtained once from ttp_alloc, grown when a larger input comes), the record being
// built, and the call stack, so a call allocates nothing on the host side in steady state.
type wasmInstance struct {
	seal.Type
	module                          *wasmModule
	mod                             api.Module
	alloc, describe, configure, tag api.Function
	inPtr, inCap                    uint32
	record                          []byte
	stack                           []uint64
	closeOnce                       sync.Once
	timer                           *time.Timer // the deadline of the call in progress, reused
	mu                              sync.Mutex  // orders a deadline against the end of its call
	running                         bool        // a call is in progress
	due                             time.Time   // when the call in progress must have ended
}

func (i *wasmInstance) Close(ctx context.Context) error {
	var err error
	i.closeOnce.Do(func() { err = i.mod.Close(ctx) })
	return err
}

// call runs one export under the plugin's deadline and maps failures to the host's errors.
//
// The deadline is one timer that closes the module with ExitCodeDeadlineExceeded: the runtime
// (WithCloseOnContextDone) compiles termination checks into the guest, so a looping call
// stops there. The call itself gets context.Background: a cancellable context would make
// wazero watch it on top of the goroutine it already starts per call (measured on an empty
// Go export, 0.84 us a call without against 3.5 us with context.WithTimeout), and deriving
// one without cancellation allocated on every call. Shutdown is checked before and after the
// call; a call in progress at shutdown ends by its deadline at the latest.
func (i *wasmInstance) call(ctx context.Context, fn api.Function, stack []uint64) error {
	return i.callWithin(ctx, i.module.limits.Deadline, fn, stack)
}

// loadDeadline bounds the calls made at load and reconfiguration (describe, configure): they
// are off the hot path, parse JSON once, and must not fail a load on a busy machine.
func (i *wasmInstance) loadDeadline() time.Duration {
	return max(20*i.module.limits.Deadline, 2*time.Second)
}

func (i *wasmInstance) callWithin(ctx context.Context, deadline time.Duration, fn api.Function, stack []uint64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	i.mu.Lock()
	i.running, i.due = true, time.Now().Add(deadline)
	i.mu.Unlock()
	if i.timer == nil {
		i.timer = time.AfterFunc(deadline, i.expire)
	} else {
		i.timer.Reset(deadline)
	}
	err := fn.CallWithStack(context.Background(), stack)
	i.mu.Lock()
	i.running = false // a timer firing from now on finds no call and does nothing
	i.mu.Unlock()
	i.timer.Stop()
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err() // shutdown is not the plugin's failure: never swallowed, never counted
	}
	var exit *sys.ExitError
	if errors.As(err, &exit) && exit.ExitCode() == sys.ExitCodeDeadlineExceeded {
		return fmt.Errorf("%w (%v)", ErrTimeout, deadline)
	}
	return fmt.Errorf("%w: %w", ErrTrap, err)
}

// callRetry runs one export as the retry of a call that timed out (Retrier): the budget is
// Limits.Deadline of the call's own CPU time, with Limits.Retry of wall time as its ceiling,
// and either ends the call by closing the module with the deadline exit code, as the
// instance's timer does; so does the end of ctx. The instance's timer is not armed.
func (i *wasmInstance) callRetry(ctx context.Context, fn api.Function, stack []uint64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	lim := i.module.limits
	stop := func() { i.mod.CloseWithExitCode(context.Background(), sys.ExitCodeDeadlineExceeded) }
	// Shutdown ends the retry at once (off the hot path, a context watch costs nothing here).
	unwatch := context.AfterFunc(ctx, stop)
	defer unwatch()
	r, err := budget.Run(lim.Deadline, lim.Retry, stop, func() error { return fn.CallWithStack(context.Background(), stack) })
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var exit *sys.ExitError
	if errors.As(err, &exit) && exit.ExitCode() == sys.ExitCodeDeadlineExceeded {
		return fmt.Errorf("%w (%s)", ErrTimeout, r.Describe(lim.Deadline, lim.Retry))
	}
	return fmt.Errorf("%w: %w", ErrTrap, err)
}

// expire ends the call in progress if its deadline has passed. The instance reuses one
// timer for all its calls (a timer and a closure per call were two allocations on every
// event), so a firing meant for an earlier call can arrive late, during a later one: the
// due time tells it apart, and the later call's own firing (Reset rescheduled it) follows.
func (i *wasmInstance) expire() {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.running && !time.Now().Before(i.due) {
		i.mod.CloseWithExitCode(context.Background(), sys.ExitCodeDeadlineExceeded)
	}
}

// input copies data into the guest's input buffer, asking ttp_alloc for a larger one when
// needed.
func (i *wasmInstance) input(ctx context.Context, data []byte) error {
	if uint32(len(data)) > i.inCap || i.inCap == 0 {
		size := uint32(len(data))
		if size < 4096 {
			size = 4096
		}
		i.stack[0] = uint64(size)
		if err := i.callWithin(ctx, i.loadDeadline(), i.alloc, i.stack); err != nil {
			return fmt.Errorf("ttp_alloc: %w", err)
		}
		i.inPtr, i.inCap = uint32(i.stack[0]), size
	}
	if !i.mod.Memory().Write(i.inPtr, data) {
		return fmt.Errorf("%w: ttp_alloc returned %d, outside memory", ErrTrap, i.inPtr)
	}
	return nil
}

// output reads a ptrlen result, enforcing the output cap. The bytes alias guest memory and
// are valid until the next call.
func (i *wasmInstance) output(ptrlen uint64) ([]byte, error) {
	ptr, n := uint32(ptrlen>>32), uint32(ptrlen)
	if n > abi.MaxReply {
		return nil, fmt.Errorf("%w: %d bytes", ErrOutputCap, n)
	}
	b, ok := i.mod.Memory().Read(ptr, n)
	if !ok {
		return nil, fmt.Errorf("%w: reply at %d+%d outside memory", ErrBadReply, ptr, n)
	}
	return b, nil
}

func (i *wasmInstance) describeBytes(ctx context.Context) ([]byte, error) {
	if err := i.callWithin(ctx, i.loadDeadline(), i.describe, i.stack[:1]); err != nil {
		return nil, err
	}
	b, err := i.output(i.stack[0])
	if err != nil {
		return nil, err
	}
	return append([]byte(nil), b...), nil
}

func (i *wasmInstance) Configure(ctx context.Context, req *abi.ConfigureRequest) (*abi.ConfigureReply, error) {
	data, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	if err := i.input(ctx, data); err != nil {
		return nil, err
	}
	i.stack[0], i.stack[1] = uint64(i.inPtr), uint64(len(data))
	if err := i.callWithin(ctx, i.loadDeadline(), i.configure, i.stack); err != nil {
		return nil, fmt.Errorf("ttp_configure: %w", err)
	}
	out, err := i.output(i.stack[0])
	if err != nil {
		return nil, err
	}
	var reply abi.ConfigureReply
	if len(out) > 0 {
		if err := json.Unmarshal(out, &reply); err != nil {
			return nil, fmt.Errorf("%w: configure reply: %v", ErrBadReply, err)
		}
	}
	return &reply, nil
}

func (i *wasmInstance) Tag(ctx context.Context, kindIndex int, ev *abi.Event, lim abi.ReplyLimits, out []abi.ReplyDraft) ([]abi.ReplyDraft, error) {
	return i.tagCall(ctx, false, kindIndex, ev, lim, out)
}

// RetryTag implements Retrier: Tag with the call under the retry's budget of its own CPU
// time (callRetry).
func (i *wasmInstance) RetryTag(ctx context.Context, kindIndex int, ev *abi.Event, lim abi.ReplyLimits, out []abi.ReplyDraft) ([]abi.ReplyDraft, error) {
	return i.tagCall(ctx, true, kindIndex, ev, lim, out)
}

func (i *wasmInstance) tagCall(ctx context.Context, retry bool, kindIndex int, ev *abi.Event, lim abi.ReplyLimits, out []abi.ReplyDraft) ([]abi.ReplyDraft, error) {
	i.record = abi.AppendRecord(i.record[:0], kindIndex, i.module.plans[kindIndex], ev)
	if len(i.record) > abi.MaxRecord {
		return out, fmt.Errorf("%w: record of %d bytes over %d", ErrRecordTooLarge, len(i.record), abi.MaxRecord)
	}
	reply, err := i.callTag(ctx, retry, i.record)
	if err != nil {
		return out, err
	}
	out, err = abi.DecodeReply(reply, lim, out)
	if err != nil && !errors.Is(err, abi.ErrGuest) {
		return out, fmt.Errorf("%w: %v", ErrBadReply, err)
	}
	return out, err
}

// callTag sends record to ttp_tag (as the retry of a timed-out call when retry is set) and
// returns the reply, which aliases guest memory until the next call.
func (i *wasmInstance) callTag(ctx context.Context, retry bool, record []byte) ([]byte, error) {
	if err := i.input(ctx, record); err != nil {
		return nil, err
	}
	i.stack[0], i.stack[1] = uint64(i.inPtr), uint64(len(record))
	var err error
	if retry {
		err = i.callRetry(ctx, i.tag, i.stack)
	} else {
		err = i.call(ctx, i.tag, i.stack)
	}
	if err != nil {
		return nil, err
	}
	return i.output(i.stack[0])
}

// Load compiles a plugin with the loader its exports call for: modules exporting
// ttp_abi_vN speak the ttp ABI (wazero); a module a Variant detects (Extism's
// describe/configure/tag) goes through that loader. Callers never branch on which.
func (c *Compiler) Load(ctx context.Context, name string, wasm []byte, lim Limits) (Module, error) {
	if !exportsTTPMarker(wasm) {
		for _, v := range c.variants {
			if v.Detect(wasm) {
				return v.Load(ctx, c.cache, name, wasm, lim.WithDefaults())
			}
		}
	}
	return c.LoadWasm(ctx, name, wasm, lim)
}
