package sdk

import (
	"slices"
	"testing"
)

func TestAppendLower(t *testing.T) {
	for _, tc := range []struct {
		dst, s, want string
		changed      bool
	}{
		{"x", "", "x", false},
		{"x", "abc", "x", false},
		{"x", "ABc", "xabc", true},
		{"", "É-Z", "É-z", true},
	} {
		got, changed := AppendLower([]byte(tc.dst), tc.s)
		if string(got) != tc.want || changed != tc.changed {
			t.Errorf("AppendLower(%q, %q) = %q, %v; want %q, %v", tc.dst, tc.s, got, changed, tc.want, tc.changed)
		}
	}
}

func TestIndexFold(t *testing.T) {
	for _, tc := range []struct {
		s, sub string
		want   int
	}{
		{"X-Mailer: PHPMailer", "phpmailer", 10},
		{"abc", "", 0},
		{"ab", "abc", -1},
		{"abc", "d", -1},
	} {
		if got := IndexFold(tc.s, tc.sub); got != tc.want {
			t.Errorf("IndexFold(%q, %q) = %d, want %d", tc.s, tc.sub, got, tc.want)
		}
	}
}

func TestLiterals(t *testing.T) {
	l, err := NewLiterals([]string{"xmrig", "rig", "pool"}, true)
	if err != nil {
		t.Fatal(err)
	}
	got := l.Scan("./XMRig --pool", nil)
	want := []LiteralMatch{{0, 2, 7}, {1, 4, 7}, {2, 10, 14}}
	if !slices.Equal(got, want) {
		t.Errorf("Scan = %v, want %v", got, want)
	}
	many := l.Scan(string(make([]byte, 0))+repeat("rig", 100), nil) // past the first buffer
	if len(many) != 100 {
		t.Errorf("%d matches of 100", len(many))
	}
	if _, err := NewLiterals(make([]string, 5000), false); err == nil {
		t.Error("a set over the bound was accepted")
	}
}

func repeat(s string, n int) string {
	out := ""
	for i := 0; i < n; i++ {
		out += s
	}
	return out
}

func TestSpan(t *testing.T) {
	var host ByteSet
	host.AddRange('a', 'z').AddRange('0', '9').Add(".-")
	for _, tc := range []struct {
		s    string
		want int
	}{{"", 0}, {"mail.example", 12}, {"mail.example/x", 12}, {"Mail", 0}} {
		if got := Span(tc.s, &host); got != tc.want {
			t.Errorf("Span(%q) = %d, want %d", tc.s, got, tc.want)
		}
	}
}
