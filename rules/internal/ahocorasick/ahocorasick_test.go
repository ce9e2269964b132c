package ahocorasick

import (
	"math/rand"
	"slices"
	"strings"
	"testing"
)

// naive is the reference: which groups have a pattern that occurs in text, ASCII case-folded.
func naive(patterns []string, groups []int, ngroups int, text string) []uint64 {
	hits := make([]uint64, Words(ngroups))
	lt := strings.Map(asciiLower, text)
	for i, p := range patterns {
		if p != "" && strings.Contains(lt, strings.Map(asciiLower, p)) {
			hits[groups[i]/64] |= 1 << (groups[i] % 64)
		}
	}
	return hits
}

func asciiLower(r rune) rune {
	if 'A' <= r && r <= 'Z' {
		return r + 'a' - 'A'
	}
	return r
}

func TestScan(t *testing.T) {
	tests := []struct {
		name     string
		patterns []string
		text     string
		want     []int // groups hit (group = pattern index)
	}{
		{"none", []string{"wget", "curl"}, "ls -la", nil},
		{"one", []string{"wget", "curl"}, "cd /tmp; wget http://x", []int{0}},
		{"both", []string{"wget", "curl"}, "curl x || wget y", []int{0, 1}},
		{"overlap", []string{"passwd", "etc/passwd", "sswd"}, "cat /etc/passwd", []int{0, 1, 2}},
		{"suffix", []string{"he", "she", "his", "hers"}, "ushers", []int{0, 1, 3}},
		{"case", []string{"Authorized_Keys"}, "AUTHORIZED_KEYS", []int{0}},
		{"nonascii", []string{"é"}, "café", []int{0}},
		{"empty pattern ignored", []string{"", "ab"}, "xab", []int{1}},
		{"prefix of text end", []string{"abcd"}, "abc", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			groups := make([]int, len(tt.patterns))
			for i := range groups {
				groups[i] = i
			}
			m := New(tt.patterns, groups, len(tt.patterns))
			hits := make([]uint64, Words(len(tt.patterns)))
			m.Scan(tt.text, hits)
			var got []int
			for g := 0; g < len(tt.patterns); g++ {
				if hits[g/64]&(1<<(g%64)) != 0 {
					got = append(got, g)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("Scan(%q) hits %v, want %v", tt.text, got, tt.want)
			}
		})
	}
}

// TestScanRandom compares against strings.Contains on random patterns over a small alphabet,
// where overlaps and shared suffixes are frequent, with more than 64 groups.
func TestScanRandom(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	alpha := "abAB/ ."
	word := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = alpha[rng.Intn(len(alpha))]
		}
		return string(b)
	}
	for round := 0; round < 200; round++ {
		n := 1 + rng.Intn(150)
		ngroups := 1 + rng.Intn(130)
		patterns := make([]string, n)
		groups := make([]int, n)
		for i := range patterns {
			patterns[i] = word(1 + rng.Intn(5))
			groups[i] = rng.Intn(ngroups)
		}
		m := New(patterns, groups, ngroups)
		for k := 0; k < 20; k++ {
			text := word(rng.Intn(40))
			got := make([]uint64, Words(ngroups))
			m.Scan(text, got)
			want := naive(patterns, groups, ngroups, text)
			for w := range want {
				if got[w] != want[w] {
					t.Fatalf("patterns %q text %q: word %d got %x want %x", patterns, text, w, got[w], want[w])
				}
			}
		}
	}
}

func FuzzScan(f *testing.F) {
	f.Add("wget\x00curl\x00he\x00she", "ushers wget")
	f.Fuzz(func(t *testing.T, pats, text string) {
		patterns := strings.Split(pats, "\x00")
		if len(patterns) > 200 {
			return
		}
		groups := make([]int, len(patterns))
		for i := range groups {
			groups[i] = i % 70
		}
		m := New(patterns, groups, 70)
		got := make([]uint64, Words(70))
		m.Scan(text, got)
		want := naive(patterns, groups, 70, text)
		for w := range want {
			if got[w] != want[w] {
				t.Fatalf("patterns %q text %q: got %x want %x", patterns, text, got, want)
			}
		}
	})
}

func TestScanAllocs(t *testing.T) {
	m := New([]string{"wget", "curl", "passwd"}, []int{0, 1, 2}, 3)
	hits := make([]uint64, 1)
	if n := testing.AllocsPerRun(100, func() { m.Scan("cd /tmp; wget http://1.2.3.4/x; cat /etc/passwd", hits) }); n != 0 {
		t.Errorf("Scan allocates %v times", n)
	}
}
