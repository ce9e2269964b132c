package hostfn

import (
	"bytes"
	"slices"
	"testing"
)

func TestLower(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		changed  bool
	}{
		{"", "", false},
		{"wget http://x", "wget http://x", false},
		{"WGET Http://X", "wget http://x", true},
		{"é-Ä-Z", "é-Ä-z", true}, // ASCII only: the Ä's bytes stay
	} {
		dst := make([]byte, len(tc.in))
		changed := Lower(dst, []byte(tc.in))
		if changed != tc.changed || changed && string(dst) != tc.want {
			t.Errorf("Lower(%q) = %q, %v; want %q, %v", tc.in, dst, changed, tc.want, tc.changed)
		}
	}
	b := []byte("In Place")
	if !Lower(b, b) || string(b) != "in place" {
		t.Errorf("in place: %q", b)
	}
}

func TestSpan(t *testing.T) {
	var digits, word ByteSet
	digits.AddRange('0', '9')
	word.AddRange('a', 'z').AddRange('0', '9').Add("-_")
	space := (&ByteSet{}).Add(" \t")
	for _, tc := range []struct {
		text string
		set  *ByteSet
		want int
	}{
		{"", &digits, 0},
		{"123abc", &digits, 3},
		{"123", &digits, 3},
		{"abc-d_9 rest", &word, 7},
		{"x y", ptr(space.Complement()), 1},
		{"\xff\x00", ptr((&ByteSet{}).Add("\xff\x00").Complement()), 0},
	} {
		if got := Span([]byte(tc.text), tc.set); got != tc.want {
			t.Errorf("Span(%q) = %d, want %d", tc.text, got, tc.want)
		}
	}
	if !digits.Has('7') || digits.Has('a') {
		t.Error("Has")
	}
}

func ptr[T any](v T) *T { return &v }

func TestIndex(t *testing.T) {
	for _, tc := range []struct {
		hay, needle string
		fold        bool
		want        int
	}{
		{"curl http://x | sh", "| sh", false, 14},
		{"CURL", "curl", false, -1},
		{"CURL x", "curl", true, 0},
		{"a ChMoD +x", "chmod", true, 2},
		{"abc", "", true, 0},
		{"ab", "abc", true, -1},
		{"ab", string(make([]byte, MaxNeedle+1)), true, -1},
	} {
		if got := Index([]byte(tc.hay), []byte(tc.needle), tc.fold); got != tc.want {
			t.Errorf("Index(%q, %q, %v) = %d, want %d", tc.hay, tc.needle, tc.fold, got, tc.want)
		}
	}
}

// naiveScan is the definition Literals.Scan must meet: every occurrence, ordered by end, then
// longest first, then by index.
func naiveScan(words [][]byte, text []byte, fold bool) []Match {
	var out []Match
	lt := lowerASCII(text, fold)
	for end := 1; end <= len(text); end++ {
		var here []Match
		for id, w := range words {
			w = lowerASCII(w, fold)
			if len(w) > 0 && len(w) <= end && bytes.Equal(lt[end-len(w):end], w) {
				here = append(here, Match{Index: uint32(id), From: uint32(end - len(w)), To: uint32(end)})
			}
		}
		slices.SortStableFunc(here, func(a, b Match) int { return int(a.From) - int(b.From) })
		out = append(out, here...)
	}
	return out
}

func lowerASCII(b []byte, fold bool) []byte {
	if !fold {
		return b
	}
	out := make([]byte, len(b))
	for i, c := range b {
		out[i] = lowerByte(c)
	}
	return out
}

// sameMatches compares as multisets per end offset: literals that are equal may come in either
// order.
func sameMatches(a, b []Match) bool {
	if len(a) != len(b) {
		return false
	}
	key := func(m Match) [3]uint32 { return [3]uint32{m.To, m.From, m.Index} }
	x, y := slices.Clone(a), slices.Clone(b)
	cmp := func(p, q Match) int {
		kp, kq := key(p), key(q)
		return slices.Compare(kp[:], kq[:])
	}
	slices.SortFunc(x, cmp)
	slices.SortFunc(y, cmp)
	return slices.Equal(x, y)
}

func TestLiterals(t *testing.T) {
	for _, tc := range []struct {
		words []string
		text  string
		fold  bool
		want  int
	}{
		{[]string{"he", "she", "his", "hers"}, "ushers", false, 3},
		{[]string{"xmrig", "minerd"}, "./XMRig -o pool", true, 1},
		{[]string{"xmrig", "minerd"}, "./XMRig -o pool", false, 0},
		{[]string{"a", "aa", "aaa"}, "aaaa", false, 9},
		{[]string{"", "x"}, "xx", false, 2},
		{nil, "anything", false, 0},
		{[]string{"/etc/shadow", "shadow"}, "cat /etc/shadow", false, 2},
	} {
		words := make([][]byte, len(tc.words))
		for i, w := range tc.words {
			words[i] = []byte(w)
		}
		l, err := NewLiterals(words, tc.fold, MaxCells)
		if err != nil {
			t.Fatal(err)
		}
		out := make([]Match, 64)
		n, full := l.Scan([]byte(tc.text), out)
		want := naiveScan(words, []byte(tc.text), tc.fold)
		if full || n != tc.want || !sameMatches(out[:n], want) {
			t.Errorf("%v in %q: %v (full %v), want %v", tc.words, tc.text, out[:n], full, want)
		}
		if tc.want > 1 {
			if n, full := l.Scan([]byte(tc.text), out[:1]); n != 1 || !full {
				t.Errorf("%v in %q with room for one: %d, full %v", tc.words, tc.text, n, full)
			}
		}
	}
}

func TestLiteralsLimits(t *testing.T) {
	many := make([][]byte, MaxLiterals+1)
	for i := range many {
		many[i] = []byte("x")
	}
	big := [][]byte{make([]byte, MaxLiteralBytes+1)}
	for name, tc := range map[string]struct {
		words [][]byte
		cells int
	}{
		"too many literals": {many, MaxCells},
		"too many bytes":    {big, MaxCells},
		"too many cells":    {[][]byte{[]byte("abcdef")}, 10},
	} {
		if _, err := NewLiterals(tc.words, false, tc.cells); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	l, err := NewLiterals([][]byte{all, []byte{0}}, false, MaxCells)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]Match, 8)
	if n, _ := l.Scan(append([]byte{1}, all...), out); n != 2 {
		t.Errorf("every byte value: %d matches, want 2", n)
	}
}

func TestSplitList(t *testing.T) {
	for _, tc := range []struct {
		raw  []byte
		want []string
		ok   bool
	}{
		{nil, nil, true},
		{[]byte{2, 0, 0, 0, 'a', 'b', 0, 0, 0, 0}, []string{"ab", ""}, true},
		{[]byte{3, 0, 0, 0, 'a', 'b'}, nil, false},
		{[]byte{1, 0}, nil, false},
		{[]byte{0xff, 0xff, 0xff, 0xff}, nil, false},
	} {
		got, err := SplitList(tc.raw)
		if (err == nil) != tc.ok {
			t.Errorf("%v: err %v", tc.raw, err)
			continue
		}
		var s []string
		for _, g := range got {
			s = append(s, string(g))
		}
		if !slices.Equal(s, tc.want) {
			t.Errorf("%v: %q, want %q", tc.raw, s, tc.want)
		}
	}
}

func TestRegexp(t *testing.T) {
	re, err := NewRegexp([]byte(`(?i)stratum\+tcp://([a-z0-9.-]+)`))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		text     string
		from, to int
		ok       bool
	}{
		{"xmrig -o Stratum+TCP://pool.example:3333", 9, 35, true},
		{"nothing here", 0, 0, false},
	} {
		from, to, ok := Find(re, []byte(tc.text))
		if ok != tc.ok || from != tc.from || to != tc.to {
			t.Errorf("Find(%q) = %d, %d, %v; want %d, %d, %v", tc.text, from, to, ok, tc.from, tc.to, tc.ok)
		}
	}
	if _, err := NewRegexp([]byte("(")); err == nil {
		t.Error("a bad pattern compiled")
	}
	if _, err := NewRegexp(make([]byte, MaxPattern+1)); err == nil {
		t.Error("an oversized pattern compiled")
	}
}
