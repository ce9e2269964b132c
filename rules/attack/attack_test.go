package attack

import "testing"

func TestLookup(t *testing.T) {
	tests := []struct {
		id         string
		ok         bool
		tactic     string
		hasTactic  bool
		parent     string
		deprecated bool
	}{
		{"T1098", true, "persistence", true, "T1098", false},
		{"T1098.004", true, "persistence", true, "T1098", false},
		{"T1098.004", true, "discovery", false, "T1098", false},
		{"T1059.004", true, "execution", true, "T1059", false},
		{"T9999", false, "", false, "", false},
	}
	for _, tt := range tests {
		got, ok := Lookup(tt.id)
		if ok != tt.ok {
			t.Fatalf("Lookup(%s) ok=%v, want %v", tt.id, ok, tt.ok)
		}
		if !ok {
			continue
		}
		if got.HasTactic(tt.tactic) != tt.hasTactic || got.Parent() != tt.parent || got.Deprecated != tt.deprecated {
			t.Errorf("Lookup(%s) = %+v", tt.id, got)
		}
	}
	if len(byID) != 835 {
		t.Errorf("table has %d rows, want 835", len(byID))
	}
	if !IsTactic("defense-evasion") || IsTactic("evasion") {
		t.Error("IsTactic wrong")
	}
}
