package hostfn

import (
	"bytes"
	"context"
	"testing"
)

func FuzzLower(f *testing.F) {
	f.Add([]byte("WGET http://X"))
	f.Add([]byte("\xc3\x84ZZ"))
	f.Fuzz(func(t *testing.T, src []byte) {
		dst := make([]byte, len(src))
		changed := Lower(dst, src)
		want := lowerASCII(src, true)
		if changed != !bytes.Equal(want, src) || changed && !bytes.Equal(dst, want) {
			t.Fatalf("Lower(%q) = %q, %v", src, dst, changed)
		}
	})
}

func FuzzSpan(f *testing.F) {
	f.Add([]byte("abc def"), []byte("abcdefghijklmnopqrstuvwxyz"))
	f.Fuzz(func(t *testing.T, text, chars []byte) {
		var set ByteSet
		set.Add(string(chars))
		n := Span(text, &set)
		for i := 0; i < n; i++ {
			if !bytes.Contains(chars, text[i:i+1]) {
				t.Fatalf("byte %d (%q) not in the set", i, text[i])
			}
		}
		if n < len(text) && bytes.Contains(chars, text[n:n+1]) {
			t.Fatalf("stopped at %d on a byte of the set", n)
		}
	})
}

func FuzzIndex(f *testing.F) {
	f.Add([]byte("curl HTTP://x | SH"), []byte("| sh"), true)
	f.Fuzz(func(t *testing.T, hay, needle []byte, fold bool) {
		got := Index(hay, needle, fold)
		want := bytes.Index(lowerASCII(hay, fold), lowerASCII(needle, fold))
		if fold && len(needle) > MaxNeedle {
			want = -1
		}
		if got != want {
			t.Fatalf("Index(%q, %q, %v) = %d, want %d", hay, needle, fold, got, want)
		}
	})
}

// FuzzLiterals checks Scan against the naive definition and the host's lits_scan path (the
// guest's view) against Scan, on an arbitrary literal list and text.
func FuzzLiterals(f *testing.F) {
	f.Add([]byte{2, 0, 0, 0, 'h', 'e', 3, 0, 0, 0, 's', 'h', 'e'}, []byte("usHErs"), true)
	f.Add([]byte{1, 0, 0, 0, 'a', 2, 0, 0, 0, 'a', 'a'}, []byte("aaaa"), false)
	g := openGuest(f)
	f.Cleanup(func() { g.r.Close(context.Background()) })
	f.Fuzz(func(t *testing.T, raw, text []byte, fold bool) {
		if len(raw) > 2048 || len(text) > 1024 {
			return
		}
		words, err := SplitList(raw)
		if err != nil {
			return
		}
		l, err := NewLiterals(words, fold, MaxCells)
		if err != nil {
			t.Fatalf("NewLiterals: %v", err)
		}
		out := make([]Match, 4096)
		n, full := l.Scan(text, out)
		want := naiveScan(words, text, fold)
		if full && len(want) <= len(out) || !full && !sameMatches(out[:n], want) {
			t.Fatalf("Scan = %v (full %v), want %v", out[:n], full, want)
		}
		if full {
			return
		}
		// Through the guest: a fresh set each time would fill MaxSets, so the instance is
		// renewed when it is.
		if g.h.state(g.mod) != nil && len(g.h.state(g.mod).lits) >= MaxSets-1 {
			g.r.Close(context.Background())
			*g = *openGuest(t)
		}
		g.write(t, 0, raw)
		g.write(t, 4096, text)
		h := g.call(t, "lits_new", 0, uint64(len(raw)), map[bool]uint64{false: 0, true: 1}[fold])
		if h < 0 {
			t.Fatalf("lits_new = %d", h)
		}
		got := g.call(t, "lits_scan", uint64(h), 4096, uint64(len(text)), 8192, 4096)
		if got != int64(n) {
			t.Fatalf("lits_scan = %d, Scan %d", got, n)
		}
		mem, _ := g.mod.Memory().Read(8192, uint32(n*12))
		for i := 0; i < n; i++ {
			m := Match{le32(mem[i*12:]), le32(mem[i*12+4:]), le32(mem[i*12+8:])}
			if m != out[i] {
				t.Fatalf("match %d: %v through the guest, %v direct", i, m, out[i])
			}
		}
	})
}

func le32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

func FuzzRegexp(f *testing.F) {
	f.Add([]byte(`(?i)stratum\+tcp://[a-z.]+`), []byte("-o STRATUM+tcp://pool.x"))
	f.Fuzz(func(t *testing.T, pattern, text []byte) {
		re, err := NewRegexp(pattern)
		if err != nil {
			return
		}
		from, to, ok := Find(re, text)
		if ok && (from < 0 || to < from || to > len(text)) {
			t.Fatalf("Find = %d, %d", from, to)
		}
		if ok != re.Match(text) {
			t.Fatalf("Find ok %v, Match %v", ok, re.Match(text))
		}
	})
}
