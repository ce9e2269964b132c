package cowrie_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/decnet/ttp/abi"
	"github.com/decnet/ttp/ingest/cowrie"
)

// ln writes one Cowrie line of session s at second sec of 2026-12-05 03:00 with the given
// attributes (key, value pairs).
func ln(s string, sec float64, eventid string, kv ...any) string {
	o := map[string]any{"eventid": eventid, "session": s, "src_ip": "198.51.100." + fmt.Sprint(len(s)), "sensor": "hp1",
		"timestamp": time.Date(2026, 12, 5, 3, 0, 0, 0, time.UTC).Add(time.Duration(sec * float64(time.Second))).Format(time.RFC3339Nano)}
	for i := 0; i+1 < len(kv); i += 2 {
		o[kv[i].(string)] = kv[i+1]
	}
	b, _ := json.Marshal(o)
	return string(b)
}

// decodeAll decodes lines with d, flushes, and fails the test on any line error.
func decodeAll(t *testing.T, d *cowrie.Decoder, lines ...string) []abi.Event {
	t.Helper()
	var out []abi.Event
	for i, l := range lines {
		var err error
		if out, err = d.Decode([]byte(l), out); err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
	}
	return d.Flush(out)
}

func byKind(evs []abi.Event, kind string) []abi.Event {
	var out []abi.Event
	for _, e := range evs {
		if e.SourceKind == kind {
			out = append(out, e)
		}
	}
	return out
}

func TestEventIDs(t *testing.T) {
	const s = "abc123def456"
	connect := ln(s, 0, "cowrie.session.connect", "src_port", 40112, "dst_ip", "10.0.0.5", "dst_port", 22, "protocol", "ssh")
	closed := ln(s, 30, "cowrie.session.closed", "duration_ms", 30000)
	tests := []struct {
		name  string
		lines []string
		kind  string         // the kind of the event checked
		want  map[string]any // payload members it must have (JSON values)
		count int            // events of that kind
	}{
		{"connect and close make a session", []string{connect, closed}, abi.KindSession,
			map[string]any{"duration_ms": 30000.0, "login_success": false, "protocol": "ssh", "commands": []any{}, "closed": true}, 1},
		{"client version, kex", []string{connect, ln(s, 1, "cowrie.client.version", "version", "SSH-2.0-Go"),
			ln(s, 1, "cowrie.client.kex", "hassh", "ec7378c1a92f5a8dde7e8b7a1ddf33d1", "kexAlgs", []string{"curve25519-sha256"}), closed}, abi.KindSession,
			map[string]any{"client_version": "SSH-2.0-Go", "hassh": "ec7378c1a92f5a8dde7e8b7a1ddf33d1"}, 1},
		{"older quoted banner", []string{ln(s, 1, "cowrie.client.version", "version", "b'SSH-2.0-libssh_0.9.6'"), closed}, abi.KindSession,
			map[string]any{"client_version": "SSH-2.0-libssh_0.9.6"}, 1},
		{"fingerprint, size, var keep the session, make nothing", []string{connect, ln(s, 1, "cowrie.client.fingerprint", "username", "root", "fingerprint", "ab:cd", "type", "ssh-rsa"),
			ln(s, 2, "cowrie.client.size", "width", 80, "height", 24), ln(s, 2, "cowrie.client.var", "name", "LANG", "value", "C"), closed}, abi.KindSession,
			map[string]any{"usernames": []any{}}, 1},
		{"login failed", []string{connect, ln(s, 1, "cowrie.login.failed", "username", "root", "password", "admin")}, abi.KindAuth,
			map[string]any{"username": "root", "password": "admin", "success": false, "protocol": "ssh", "window_s": 3600.0,
				"failures_before": 0.0, "distinct_usernames": 1.0, "distinct_passwords": 1.0, "pair_seen_from_other_sources": 0.0}, 1},
		{"login success after a failure", []string{connect, ln(s, 1, "cowrie.login.failed", "username", "root", "password", "admin"),
			ln(s, 2, "cowrie.login.success", "username", "root", "password", "xc3511"), closed}, abi.KindSession,
			map[string]any{"login_failures": 1.0, "login_success": true, "usernames": []any{"root"}}, 1},
		{"command input", []string{connect, ln(s, 5, "cowrie.command.input", "input", "uname -a")}, abi.KindCommand,
			map[string]any{"command_text": "uname -a"}, 1},
		{"command failed repeats the input: both are commands", []string{connect, ln(s, 5, "cowrie.command.input", "input", "enable"),
			ln(s, 5.001, "cowrie.command.failed", "input", "enable")}, abi.KindCommand, map[string]any{"command_text": "enable"}, 2},
		{"stdin of a command is no command", []string{connect, ln(s, 5, "cowrie.command.input", "input", "hunter2", "realm", "passwd")}, abi.KindCommand, nil, 0},
		{"commands in the session with their times", []string{connect, ln(s, 5, "cowrie.command.input", "input", "uname -a"),
			ln(s, 6.5, "cowrie.command.input", "input", "w"), closed}, abi.KindSession,
			map[string]any{"command_times_ms": []any{5000.0, 6500.0}}, 1},
		{"download, failed download, upload", []string{connect,
			ln(s, 3, "cowrie.session.file_download", "url", "http://198.51.100.7/x", "shasum", "AB12", "outfile", "dl/ab12", "destfile", "x"),
			ln(s, 4, "cowrie.session.file_download.failed", "url", "http://198.51.100.7/y", "error", "refused"),
			ln(s, 5, "cowrie.session.file_upload", "filename", "a.sh", "shasum", "cd34", "outfile", "dl/cd34"), closed}, abi.KindSession,
			map[string]any{"downloads": []any{
				map[string]any{"url": "http://198.51.100.7/x", "sha256": "ab12", "destfile": "x", "transfer": "download"},
				map[string]any{"url": "http://198.51.100.7/y", "transfer": "failed"},
				map[string]any{"url": "a.sh", "sha256": "cd34", "transfer": "upload"}}}, 1},
		{"direct-tcpip summed per session", []string{connect,
			ln(s, 2, "cowrie.direct-tcpip.request", "dst_ip", "142.250.185.78", "dst_port", 443, "orig_ip", "127.0.0.1", "orig_port", 4000),
			ln(s, 2.1, "cowrie.direct-tcpip.data", "dst_ip", "142.250.185.78", "dst_port", 443, "data", "hello"),
			ln(s, 3, "cowrie.direct-tcpip.request", "dst_ip", "67.195.204.72", "dst_port", 25),
			ln(s, 4, "cowrie.direct-tcpip.request", "dst_ip", "142.250.185.78", "dst_port", 443), closed}, abi.KindForward,
			map[string]any{"requests": 3.0, "data_events": 1.0, "data_bytes": 5.0, "distinct_destinations": 2.0,
				"destinations": []any{"142.250.185.78:443", "67.195.204.72:25"}, "dst_ports": []any{443.0, 25.0}, "span_ms": 2000.0}, 1},
		{"no forwarding, no forward event", []string{connect, closed}, abi.KindForward, nil, 0},
		{"telnet", []string{ln(s, 0, "cowrie.session.connect", "protocol", "telnet", "dst_port", 23), ln(s, 1, "cowrie.login.success", "username", "root", "password", "vizxv")},
			abi.KindAuth, map[string]any{"protocol": "telnet", "success": true}, 1},
		{"unknown and payload-less ids skipped", []string{connect, ln(s, 1, "cowrie.virustotal.scanfile", "sha256", "ab"), ln(s, 1, "cowrie.log.closed", "ttylog", "x")},
			abi.KindSession, map[string]any{"closed": false}, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			evs := byKind(decodeAll(t, cowrie.New(cowrie.Config{}), tc.lines...), tc.kind)
			if len(evs) != tc.count {
				t.Fatalf("%d %s events, want %d: %+v", len(evs), tc.kind, tc.count, evs)
			}
			for _, ev := range evs {
				checkEvent(t, ev)
				for k, want := range tc.want {
					got := ev.Payload[k]
					if k == "commands" || k == "downloads" {
						got = stripIDs(got)
					}
					if !reflect.DeepEqual(got, want) {
						t.Errorf("payload.%s = %#v, want %#v", k, got, want)
					}
				}
			}
		})
	}
}

// stripIDs removes the command ids (derived hashes) from a commands list for comparison.
func stripIDs(v any) any {
	l, ok := v.([]any)
	if !ok {
		return v
	}
	for _, x := range l {
		if m, ok := x.(map[string]any); ok {
			delete(m, "id")
		}
	}
	return l
}

// checkEvent holds every event to what abi.DecodeEvent accepts, through its JSON.
func checkEvent(t testing.TB, ev abi.Event) {
	t.Helper()
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatalf("event does not marshal: %v", err)
	}
	back, err := abi.DecodeEvent(b)
	if err != nil {
		t.Fatalf("event %s fails abi.DecodeEvent: %v", b, err)
	}
	// Every event belongs to a session except an identity, which groups addresses.
	if !abi.IsKnownKind(back.SourceKind) || back.ObservedAt.IsZero() || back.SessionID == "" && back.SourceKind != abi.KindIdentity {
		t.Fatalf("event %s: unknown kind, no observed_at or no session_id", b)
	}
	if err := abi.CheckPayload(back.SourceKind, back.Payload); err != nil {
		t.Fatalf("event %s: %v", b, err)
	}
	abi.Expand(back)
}

func TestMalformedLinesGoOn(t *testing.T) {
	const s = "abc123def456"
	in := strings.Join([]string{
		ln(s, 0, "cowrie.session.connect", "protocol", "ssh"),
		`{not json`,
		`[1, 2]`,
		`{"eventid": "cowrie.login.failed", "session": "x"}`,
		`{"eventid": "cowrie.login.failed", "session": "x", "timestamp": "yesterday"}`,
		`{"session": "x", "timestamp": "2026-12-05T03:00:00Z"}`,
		ln(s, 1, "cowrie.session.connect", "dst_port", "not a port"),
		ln(s, 1, "cowrie.command.input", "input", 42),
		"",
		ln(s, 2, "cowrie.command.input", "input", "uname -a"),
		strings.Repeat("x", cowrie.MaxLine+5),
		ln(s, 3, "cowrie.session.closed", "duration", "3.0"),
	}, "\n")
	d := cowrie.New(cowrie.Config{})
	var errs []string
	var evs []abi.Event
	err := d.ReadFrom("cowrie.json", strings.NewReader(in), func(e []abi.Event) error { evs = append(evs, e...); return nil },
		func(err error) {
			var le *cowrie.LineError
			if !errors.As(err, &le) || le.File != "cowrie.json" {
				t.Errorf("report %v: not a *LineError of cowrie.json", err)
			}
			errs = append(errs, err.Error())
		})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"cowrie.json:2:", "cowrie.json:3:", "cowrie.json:4: field \"timestamp\"", "cowrie.json:5: field \"timestamp\": not ISO 8601",
		"cowrie.json:6: field \"eventid\"", "cowrie.json:7: field \"dst_port\"", "cowrie.json:8: field \"input\"", "cowrie.json:11: line longer"}
	if len(errs) != len(want) {
		t.Fatalf("reported %d errors, want %d:\n%s", len(errs), len(want), strings.Join(errs, "\n"))
	}
	for i, w := range want {
		if !strings.HasPrefix(errs[i], w) {
			t.Errorf("error %d = %q, want prefix %q", i, errs[i], w)
		}
	}
	evs = append(evs, d.Flush(nil)...)
	c := d.Counts()
	if c.Lines != 12 || c.Malformed != 8 || len(byKind(evs, abi.KindCommand)) != 1 || len(byKind(evs, abi.KindSession)) != 1 {
		t.Errorf("counts %+v, %d events: want 12 lines, 8 malformed, one command and one session", c, len(evs))
	}
	if c.Events != int64(len(evs)) {
		t.Errorf("counts.Events %d, %d events made", c.Events, len(evs))
	}
}

func TestDuration(t *testing.T) {
	const s = "abc123def456"
	for _, tc := range []struct {
		name string
		kv   []any
		want float64
	}{
		{"duration_ms, Cowrie 2.6 and later", []any{"duration_ms", 8123}, 8123},
		{"duration in seconds, a number", []any{"duration", 7.5}, 7500},
		{"duration in seconds, a string", []any{"duration", "12.3"}, 12300},
		{"no duration: from the session's lines", nil, 4000},
		{"a string that is no number is malformed", []any{"duration", "long"}, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := cowrie.New(cowrie.Config{})
			out, _ := d.Decode([]byte(ln(s, 0, "cowrie.session.connect")), nil)
			out, err := d.Decode([]byte(ln(s, 4, "cowrie.session.closed", tc.kv...)), out)
			if tc.want < 0 {
				if err == nil || !strings.Contains(err.Error(), `"duration"`) {
					t.Fatalf("err %v, want one naming duration", err)
				}
				return
			}
			if err != nil || len(out) != 1 {
				t.Fatalf("err %v, %d events", err, len(out))
			}
			if got := out[0].Payload["duration_ms"]; got != tc.want {
				t.Errorf("duration_ms %v, want %v", got, tc.want)
			}
		})
	}
}

func TestIdleTimeout(t *testing.T) {
	d := cowrie.New(cowrie.Config{IdleTimeout: 10 * time.Minute})
	var out []abi.Event
	for _, l := range []string{
		ln("idle00000001", 0, "cowrie.session.connect"),
		ln("idle00000001", 5, "cowrie.command.input", "input", "uname -a"),
		ln("busy00000002", 60, "cowrie.session.connect"),
		ln("busy00000002", 400, "cowrie.command.input", "input", "w"),
	} {
		out, _ = d.Decode([]byte(l), out)
	}
	if s := byKind(out, abi.KindSession); len(s) != 0 || d.Open() != 2 {
		t.Fatalf("closed %d sessions before any timeout, %d open", len(s), d.Open())
	}
	out, _ = d.Decode([]byte(ln("busy00000002", 5+11*60, "cowrie.command.input", "input", "id")), out[:0])
	s := byKind(out, abi.KindSession)
	if len(s) != 1 || s[0].SessionID != "idle00000001" || s[0].Payload["closed"] != false || d.Open() != 1 {
		t.Fatalf("after 11 idle minutes: sessions %+v, %d open; want idle00000001 closed by the timeout", s, d.Open())
	}
	// A follower closes by the wall clock when the log is quiet.
	out = d.Expire(time.Date(2026, 12, 5, 4, 0, 0, 0, time.UTC), out[:0])
	if len(out) != 1 || out[0].SessionID != "busy00000002" || d.Open() != 0 {
		t.Fatalf("Expire: %+v, %d open", out, d.Open())
	}
	if c := d.Counts(); c.Events != 5 {
		t.Errorf("counts.Events %d, want 5 (3 commands, 2 sessions)", c.Events)
	}
}

func TestMaxSessions(t *testing.T) {
	d := cowrie.New(cowrie.Config{MaxSessions: 10})
	var out []abi.Event
	for i := range 25 {
		out, _ = d.Decode([]byte(ln(fmt.Sprintf("s%011d", i), float64(i), "cowrie.session.connect")), out)
	}
	if d.Open() > 10 || len(byKind(out, abi.KindSession)) < 15 {
		t.Fatalf("%d open, %d closed: want at most 10 open", d.Open(), len(out))
	}
}

func TestWindow(t *testing.T) {
	d := cowrie.New(cowrie.Config{Window: time.Hour})
	var out []abi.Event
	login := func(s string, ip string, sec float64, user, pass string, ok bool) map[string]any {
		t.Helper()
		eid := "cowrie.login.failed"
		if ok {
			eid = "cowrie.login.success"
		}
		o := map[string]any{"eventid": eid, "session": s, "src_ip": ip, "username": user, "password": pass,
			"timestamp": time.Date(2026, 12, 5, 3, 0, 0, 0, time.UTC).Add(time.Duration(sec * float64(time.Second))).Format(time.RFC3339Nano)}
		b, _ := json.Marshal(o)
		var err error
		out, err = d.Decode(b, out[:0])
		auth := byKind(out, abi.KindAuth) // and the sessions the idle timeout closed
		if err != nil || len(auth) != 1 {
			t.Fatalf("%v, %d auth events", err, len(auth))
		}
		return auth[0].Payload
	}
	want := func(p map[string]any, failures, users, passes, others float64) {
		t.Helper()
		got := []any{p["failures_before"], p["distinct_usernames"], p["distinct_passwords"], p["pair_seen_from_other_sources"]}
		if w := []any{failures, users, passes, others}; !reflect.DeepEqual(got, w) {
			t.Errorf("failures_before, distinct_usernames, distinct_passwords, pair_seen_from_other_sources = %v, want %v", got, w)
		}
	}
	want(login("s1", "198.51.100.1", 0, "root", "a", false), 0, 1, 1, 0)
	want(login("s1", "198.51.100.1", 1, "root", "b", false), 1, 1, 2, 0)
	want(login("s2", "198.51.100.1", 2, "admin", "b", false), 2, 2, 2, 0) // another session of the same source
	want(login("s3", "198.51.100.2", 3, "root", "a", false), 0, 1, 1, 1)  // root/a was tried by .1
	want(login("s4", "198.51.100.3", 4, "root", "a", false), 0, 1, 1, 2)
	want(login("s1", "198.51.100.1", 5, "root", "a", true), 3, 2, 2, 2) // the same pair again: still two others
	// An hour and 1.5 s later the first two attempts have left the window.
	want(login("s5", "198.51.100.1", 3601.5, "root", "c", false), 1, 2, 3, 0) // left: admin/b failed, root/a accepted
	want(login("s5", "198.51.100.1", 7300, "root", "c", false), 0, 1, 1, 0)
	// A bounded window drops the oldest attempts first.
	d = cowrie.New(cowrie.Config{MaxAttempts: 3})
	for i := range 10 {
		p := login("s9", "198.51.100.9", float64(i), "root", fmt.Sprint(i), false)
		if i >= 3 {
			want(p, 2, 1, 3, 0) // the window holds this attempt and the two before
		}
	}
}

func TestSourceIDsSurviveRotation(t *testing.T) {
	const s = "abc123def456"
	lines := []string{
		ln(s, 0, "cowrie.session.connect"),
		ln(s, 1, "cowrie.login.success", "username", "root", "password", "x"),
		ln(s, 2, "cowrie.command.input", "input", "uname -a"),
		ln(s, 3, "cowrie.command.input", "input", "uname -a"), // the same command again is another event
		ln(s, 4, "cowrie.session.closed", "duration_ms", 4000),
	}
	ids := func(lines ...string) []string {
		var out []string
		for _, ev := range decodeAll(t, cowrie.New(cowrie.Config{}), lines...) {
			out = append(out, ev.SourceKind+" "+ev.SourceID)
		}
		return out
	}
	a, b := ids(lines...), ids(lines...)
	if !reflect.DeepEqual(a, b) || len(a) != 4 || a[1] == a[2] {
		t.Fatalf("ids differ between two reads, or two commands share one:\n%v\n%v", a, b)
	}
	if a[3] != "session cowrie:hp1:"+s {
		t.Errorf("session id %q", a[3])
	}
	// The file rotated after the login: the second file alone makes the same command ids.
	c := ids(lines[2:]...)
	if !reflect.DeepEqual(c[:2], a[1:3]) {
		t.Errorf("command ids after rotation %v, want %v", c[:2], a[1:3])
	}
}

func TestStateRestore(t *testing.T) {
	const s = "abc123def456"
	lines := []string{
		ln(s, 0, "cowrie.session.connect", "protocol", "ssh"),
		ln(s, 1, "cowrie.client.version", "version", "SSH-2.0-Go"),
		ln(s, 2, "cowrie.command.input", "input", "uname -a"),
		ln(s, 3, "cowrie.direct-tcpip.request", "dst_ip", "192.0.2.1", "dst_port", 25),
		ln(s, 4, "cowrie.command.input", "input", "w"),
		ln(s, 5, "cowrie.direct-tcpip.request", "dst_ip", "192.0.2.1", "dst_port", 25),
		ln(s, 6, "cowrie.session.closed", "duration_ms", 6000),
	}
	whole := decodeAll(t, cowrie.New(cowrie.Config{}), lines...)
	d := cowrie.New(cowrie.Config{})
	first := decodeAll(t, d, lines[:3]...)[:1] // Flush would close it: keep the command only
	d = cowrie.New(cowrie.Config{})
	for _, l := range lines[:3] {
		d.Decode([]byte(l), nil)
	}
	st, err := d.State()
	if err != nil {
		t.Fatal(err)
	}
	r := cowrie.New(cowrie.Config{})
	if err := r.Restore(st); err != nil {
		t.Fatal(err)
	}
	rest := decodeAll(t, r, lines[3:]...)
	got := append(first, rest...)
	if !reflect.DeepEqual(got, whole) {
		a, _ := json.Marshal(got)
		b, _ := json.Marshal(whole)
		t.Errorf("restored run differs:\n%s\nwant\n%s", a, b)
	}
	if err := r.Restore([]byte(`{"version": 9}`)); err == nil {
		t.Error("a state of another version restored")
	}
}
