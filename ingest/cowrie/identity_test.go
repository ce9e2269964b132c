package cowrie_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/decnet/ttp/abi"
	"github.com/decnet/ttp/ingest/cowrie"
)

// TestIdentities: addresses that tried one same username/password pair in a period are one
// identity, rolled up when the period ends (a later line) or at the end of the input; a lone
// address, or one that shares no pair, makes none.
func TestIdentities(t *testing.T) {
	var lines []string
	sprayers := []string{"sprayA", "sprayBB", "sprayCCC"} // ln gives each its own address
	for u := 0; u < 12; u++ {
		for i, s := range sprayers {
			lines = append(lines, ln(s, float64(60*u+i), "cowrie.login.failed", "username", fmt.Sprintf("user%02d", u), "password", "Winter2026!"))
		}
	}
	lines = append(lines,
		ln("loner-xxxxxxxxx", 30, "cowrie.login.failed", "username", "root", "password", "toor"),
		ln("other-xxxxxxxxxx", 31, "cowrie.login.failed", "username", "admin", "password", "admin"))
	// A line two hours later ends the first period; its own lone attempt makes nothing.
	lines = append(lines, ln("late-xxxxxxxxxxxx", 7200, "cowrie.login.failed", "username", "pi", "password", "raspberry"))
	evs := byKind(decodeAll(t, cowrie.New(cowrie.Config{}), lines...), abi.KindIdentity)
	if len(evs) != 1 {
		t.Fatalf("%d identity events, want 1: %+v", len(evs), evs)
	}
	ev := evs[0]
	checkEvent(t, ev)
	p := ev.Payload
	if ips := p["member_ips"].([]any); len(ips) != 3 {
		t.Errorf("member_ips %v, want the three sprayers", ips)
	}
	users := p["usernames"].([]any)
	if len(users) != 12 || users[0] != "user00" || users[11] != "user11" {
		t.Errorf("usernames %v, want user00..user11 in the order tried", users)
	}
	if p["distinct_passwords"] != 1.0 || p["attempts"] != 36.0 || p["window_s"] != 3600.0 {
		t.Errorf("payload %v", p)
	}
	if ev.IdentityUUID == "" || ev.AttackerUUID != "" {
		t.Errorf("identity_uuid %q attacker_uuid %q", ev.IdentityUUID, ev.AttackerUUID)
	}
	// The same log read again makes the same identity (same ids): replays dedupe.
	again := byKind(decodeAll(t, cowrie.New(cowrie.Config{}), lines...), abi.KindIdentity)
	if len(again) != 1 || again[0].SourceID != ev.SourceID || again[0].IdentityUUID != ev.IdentityUUID {
		t.Errorf("a second read made %+v, want the same identity", again)
	}
	// Without the later line, the end of the input rolls the period up.
	end := byKind(decodeAll(t, cowrie.New(cowrie.Config{}), lines[:len(lines)-1]...), abi.KindIdentity)
	if len(end) != 1 || !slices.Equal(end[0].Payload["member_ips"].([]any), ev.Payload["member_ips"].([]any)) {
		t.Errorf("at end of input: %+v", end)
	}
}
