package hostfn

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
)

// Results a function returns to the guest instead of a value (every value is >= 0, or -1
// for "none"). A guest never traps the host: a bad pointer is an answer, not a panic.
const (
	ResNone    = -1 // lower: nothing to lower-case; index, re_find: no match
	ResRange   = -2 // a pointer and length outside the guest's memory, or over MaxText
	ResLimit   = -3 // over a bound: MaxSets, MaxCells, MaxRegexps, MaxMatches (scan: out full)
	ResHandle  = -4 // no literal set or regular expression of that handle in this instance
	ResPattern = -5 // a literal list or regular expression that does not parse
)

// Functions is what this host offers under Module, by import name: the allowlist the loader
// checks a module's imports of Module against.
var Functions = map[string]bool{
	"lower": true, "span": true, "index": true,
	"lits_new": true, "lits_scan": true, "re_new": true, "re_find": true,
}

// Host is the functions registered on one wazero runtime, with the per-instance state of
// prepared literal sets and regular expressions.
type Host struct {
	states sync.Map // api.Module -> *state
}

// state is one instance's prepared objects. An instance serves one call at a time, so it
// needs no lock; the map holding it is shared.
type state struct {
	lits  []*Literals
	res   []*regexp.Regexp
	cells int
	mod   api.Module
}

// Instantiate registers the functions as the host module Module on r. Call it once per
// runtime, before instantiating guests; Instance then binds each guest instance's state.
func Instantiate(ctx context.Context, r wazero.Runtime) (*Host, error) {
	h := &Host{}
	b := r.NewHostModuleBuilder(Module)
	i32 := api.ValueTypeI32
	fn := func(name string, f api.GoModuleFunction, params []api.ValueType, result api.ValueType) {
		b.NewFunctionBuilder().WithGoModuleFunction(f, params, []api.ValueType{result}).Export(name)
	}
	fn("lower", api.GoModuleFunc(h.lower), []api.ValueType{i32, i32, i32}, i32)
	fn("span", api.GoModuleFunc(h.span), []api.ValueType{i32, i32, i32}, i32)
	fn("index", api.GoModuleFunc(h.index), []api.ValueType{i32, i32, i32, i32, i32}, i32)
	fn("lits_new", api.GoModuleFunc(h.litsNew), []api.ValueType{i32, i32, i32}, i32)
	fn("lits_scan", api.GoModuleFunc(h.litsScan), []api.ValueType{i32, i32, i32, i32, i32}, i32)
	fn("re_new", api.GoModuleFunc(h.reNew), []api.ValueType{i32, i32}, i32)
	fn("re_find", api.GoModuleFunc(h.reFind), []api.ValueType{i32, i32, i32}, api.ValueTypeI64)
	if _, err := b.Instantiate(ctx); err != nil {
		return nil, fmt.Errorf("hostfn: instantiate %s: %w", Module, err)
	}
	return h, nil
}

// Instance prepares the state of one guest instance: instantiate the guest with the context
// it returns (which forgets the state when the instance closes, however it closes), then
// call bind with the instance. Before bind, functions that need state answer ResHandle.
func (h *Host) Instance(ctx context.Context) (context.Context, func(api.Module)) {
	st := &state{}
	ctx = experimental.WithCloseNotifier(ctx, experimental.CloseNotifyFunc(func(context.Context, uint32) {
		if st.mod != nil {
			h.states.Delete(st.mod)
		}
	}))
	return ctx, func(m api.Module) {
		st.mod = m
		h.states.Store(m, st)
	}
}

// Instances is how many guest instances have state: a test's way to see it is forgotten.
func (h *Host) Instances() int {
	n := 0
	h.states.Range(func(any, any) bool { n++; return true })
	return n
}

func (h *Host) state(m api.Module) *state {
	if v, ok := h.states.Load(m); ok {
		return v.(*state)
	}
	return nil
}

// read returns the guest's n bytes at ptr, ok false when they are not all inside its memory
// or n is over MaxText. Both are i32 values: only the stack slot's low 32 bits are the value
// (compiled code leaves the high ones undefined).
func read(m api.Module, ptr, n uint64) ([]byte, bool) {
	if uint32(n) > MaxText {
		return nil, false
	}
	return m.Memory().Read(uint32(ptr), uint32(n))
}

func i32(v int) uint64 { return uint64(uint32(int32(v))) }

func i64(v int) uint64 { return uint64(int64(v)) }

// lower(src, n, dst) -> -1 when src holds no upper-case ASCII letter (nothing written), else
// n, the lower-cased bytes written at dst.
func (h *Host) lower(_ context.Context, m api.Module, stack []uint64) {
	src, ok := read(m, stack[0], stack[1])
	dst, ok2 := read(m, stack[2], stack[1])
	if !ok || !ok2 {
		stack[0] = i32(ResRange)
		return
	}
	if !Lower(dst, src) {
		stack[0] = i32(ResNone)
		return
	}
	stack[0] = i32(len(src))
}

// span(text, n, set) -> the length of text's prefix in the 32-byte set at set.
func (h *Host) span(_ context.Context, m api.Module, stack []uint64) {
	text, ok := read(m, stack[0], stack[1])
	set, ok2 := m.Memory().Read(uint32(stack[2]), 32)
	if !ok || !ok2 {
		stack[0] = i32(ResRange)
		return
	}
	stack[0] = i32(Span(text, (*ByteSet)(set)))
}

// index(hay, n, needle, m, fold) -> the offset of needle in hay, -1 when absent.
func (h *Host) index(_ context.Context, m api.Module, stack []uint64) {
	hay, ok := read(m, stack[0], stack[1])
	needle, ok2 := read(m, stack[2], stack[3])
	if !ok || !ok2 {
		stack[0] = i32(ResRange)
		return
	}
	stack[0] = i32(Index(hay, needle, uint32(stack[4]) != 0))
}

// lits_new(list, n, fold) -> a handle of this instance's literal sets. list is the literals,
// each as a little-endian u32 length and its bytes.
func (h *Host) litsNew(_ context.Context, m api.Module, stack []uint64) {
	st, raw, res := h.newArgs(m, stack, func(st *state) bool { return len(st.lits) >= MaxSets })
	if res != 0 {
		stack[0] = i32(res)
		return
	}
	words, err := SplitList(raw)
	if err != nil {
		stack[0] = i32(ResPattern)
		return
	}
	l, err := NewLiterals(words, uint32(stack[2]) != 0, MaxCells-st.cells)
	if err != nil {
		stack[0] = i32(ResLimit)
		return
	}
	st.cells += l.Cells()
	st.lits = append(st.lits, l)
	stack[0] = i32(len(st.lits) - 1)
}

// newArgs checks what a *_new function is given: the instance's state, its (pointer,
// length) argument inside memory, and that full does not say the instance holds its limit
// of handles of that sort. res is the result for the guest when one fails, else 0.
func (h *Host) newArgs(m api.Module, stack []uint64, full func(*state) bool) (st *state, arg []byte, res int) {
	st = h.state(m)
	arg, ok := read(m, stack[0], stack[1])
	switch {
	case st == nil:
		return nil, nil, ResHandle
	case !ok:
		return nil, nil, ResRange
	case full(st):
		return nil, nil, ResLimit
	}
	return st, arg, 0
}

// SplitList decodes a literal list (u32 length, bytes; repeated) into slices of raw. It
// fails on a length running past the end or more than MaxLiterals entries.
func SplitList(raw []byte) ([][]byte, error) {
	var out [][]byte
	for len(raw) > 0 {
		if len(raw) < 4 || len(out) == MaxLiterals {
			return nil, fmt.Errorf("%w: literal list", ErrPattern)
		}
		n := binary.LittleEndian.Uint32(raw)
		if uint64(n) > uint64(len(raw)-4) {
			return nil, fmt.Errorf("%w: literal of %d bytes past the end", ErrPattern, n)
		}
		out = append(out, raw[4:4+n:4+n])
		raw = raw[4+n:]
	}
	return out, nil
}

// lits_scan(set, text, n, out, cap) -> the matches written at out (12 bytes each: u32 index,
// from, to), or ResLimit when cap (at most MaxMatches) was too small: the guest retries with
// more room.
func (h *Host) litsScan(_ context.Context, m api.Module, stack []uint64) {
	st := h.state(m)
	id, capacity := uint32(stack[0]), uint32(stack[4])
	if st == nil || id >= uint32(len(st.lits)) {
		stack[0] = i32(ResHandle)
		return
	}
	text, ok := read(m, stack[1], stack[2])
	if capacity > MaxMatches {
		capacity = MaxMatches
	}
	out, ok2 := m.Memory().Read(uint32(stack[3]), capacity*12)
	if !ok || !ok2 {
		stack[0] = i32(ResRange)
		return
	}
	l := st.lits[id]
	n, st2 := 0, int32(0)
	delta, class, nc := l.delta, &l.class, l.nclass
	if len(l.out) > 1 {
		for i, c := range text {
			st2 = delta[st2*nc+int32(class[c])]
			for _, k := range l.out[st2] {
				if n == int(capacity) {
					stack[0] = i32(ResLimit)
					return
				}
				o := out[n*12 : n*12+12]
				binary.LittleEndian.PutUint32(o, k)
				binary.LittleEndian.PutUint32(o[4:], uint32(i+1)-l.lens[k])
				binary.LittleEndian.PutUint32(o[8:], uint32(i+1))
				n++
			}
		}
	}
	stack[0] = i32(n)
}

// re_new(pattern, n) -> a handle of this instance's regular expressions.
func (h *Host) reNew(_ context.Context, m api.Module, stack []uint64) {
	st, pat, res := h.newArgs(m, stack, func(st *state) bool { return len(st.res) >= MaxRegexps })
	if res != 0 {
		stack[0] = i32(res)
		return
	}
	re, err := NewRegexp(pat)
	if err != nil {
		stack[0] = i32(ResPattern)
		return
	}
	st.res = append(st.res, re)
	stack[0] = i32(len(st.res) - 1)
}

// re_find(re, text, n) -> i64: from<<32 | to of the leftmost match, -1 when none, or another
// negative result.
func (h *Host) reFind(_ context.Context, m api.Module, stack []uint64) {
	st := h.state(m)
	id := uint32(stack[0])
	if st == nil || id >= uint32(len(st.res)) {
		stack[0] = i64(ResHandle)
		return
	}
	text, ok := read(m, stack[1], stack[2])
	if !ok {
		stack[0] = i64(ResRange)
		return
	}
	from, to, found := Find(st.res[id], text)
	if !found {
		stack[0] = i64(ResNone)
		return
	}
	stack[0] = uint64(from)<<32 | uint64(to)
}

// Names lists the functions offered, sorted, comma-separated: what a refusal names.
func Names() string {
	names := make([]string, 0, len(Functions))
	for n := range Functions {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// ErrUndeclared is a module importing the host functions without declaring the capability.
var ErrUndeclared = errors.New("hostfn: imports of module " + Module + " without the capability " + Capability + " in the manifest")

// CheckDeclared fails when a module imports any function of Module and its manifest's
// capabilities do not list Capability: the import is what the host checks, the declaration
// what lets an older host refuse the module by name.
func CheckDeclared(imports []api.FunctionDefinition, capabilities []string) error {
	if slices.Contains(capabilities, Capability) {
		return nil
	}
	for _, f := range imports {
		if mod, name, _ := f.Import(); mod == Module {
			return fmt.Errorf("%w (it imports %s.%s)", ErrUndeclared, mod, name)
		}
	}
	return nil
}
