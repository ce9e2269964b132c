package workload

import (
	"math"
	"math/rand"
	"slices"
	"strings"
	"testing"
)

const corpus = "../../testdata/corpus"

func shipped(t *testing.T) []string {
	t.Helper()
	attacks, err := AttackerCommands(corpus)
	if err != nil {
		t.Fatal(err)
	}
	return attacks
}

// TestCommandsDeterministic is why the package exists: the same seed must give the same
// commands in the same order, call after call, or benchmark runs measure different work.
func TestCommandsDeterministic(t *testing.T) {
	attacks := shipped(t)
	tests := []struct {
		name    string
		seed    int64
		attacks []string
	}{
		{"shipped corpus, default seed", Seed, attacks},
		{"shipped corpus, other seed", 7, attacks},
		{"benign only", Seed, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := Commands(tt.seed, 5000, tt.attacks)
			b := Commands(tt.seed, 5000, tt.attacks)
			if !slices.Equal(a, b) {
				i := 0
				for a[i] == b[i] {
					i++
				}
				t.Fatalf("seed %d: two calls differ at %d: %q and %q", tt.seed, i, a[i], b[i])
			}
			if other := Commands(tt.seed+1, 5000, tt.attacks); slices.Equal(a, other) {
				t.Errorf("seeds %d and %d give the same stream: the seed does not reach it", tt.seed, tt.seed+1)
			}
			// Commands is the stream's head: a longer call extends a shorter one.
			if long := Commands(tt.seed, 6000, tt.attacks); !slices.Equal(a, long[:5000]) {
				t.Error("Commands(seed, 5000) is not the head of Commands(seed, 6000)")
			}
		})
	}
}

// TestMaliciousShare checks the share the package doc states, on sentinel attacks (which no
// template can produce) and on the shipped corpus (where Generator's own label is counted).
func TestMaliciousShare(t *testing.T) {
	const n = 100_000
	want := float64(MaliciousPercent) / 100
	sentinels := []string{"ATTACK-A", "ATTACK-B", "ATTACK-C"}
	got := 0
	for _, c := range Commands(Seed, n, sentinels) {
		if slices.Contains(sentinels, c) {
			got++
		}
	}
	if share := float64(got) / n; math.Abs(share-want) > 0.005 {
		t.Errorf("sentinel attacks: %.2f%% of %d commands, want %d%% ± 0.5", 100*share, n, MaliciousPercent)
	}

	g := New(rand.New(rand.NewSource(Seed)), shipped(t))
	got = 0
	for range n {
		if _, bad := g.next(); bad {
			got++
		}
	}
	if share := float64(got) / n; math.Abs(share-want) > 0.005 {
		t.Errorf("shipped corpus: %.2f%% of %d commands, want %d%% ± 0.5", 100*share, n, MaliciousPercent)
	}

	for _, c := range Commands(Seed, 1000, nil) {
		if slices.Contains(sentinels, c) {
			t.Fatalf("no attacks given, yet %q", c)
		}
	}
}

// TestTemplatesFilled checks that no benign command keeps a placeholder.
func TestTemplatesFilled(t *testing.T) {
	for _, c := range Commands(Seed, 20_000, nil) {
		for _, f := range fills {
			if strings.Contains(c, f.key) {
				t.Fatalf("%q keeps placeholder %s", c, f.key)
			}
		}
	}
}

func TestAttackerCommands(t *testing.T) {
	attacks := shipped(t)
	if len(attacks) < 100 {
		t.Errorf("%d positives in %s; the corpora hold hundreds", len(attacks), corpus)
	}
	if _, err := AttackerCommands(t.TempDir()); err == nil {
		t.Error("an empty directory gave no error")
	}
	if _, err := AttackerCommands("does-not-exist"); err == nil {
		t.Error("a missing directory gave no error")
	}
}
