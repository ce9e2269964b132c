package cowrie_test

import (
	"bufio"
	"os"
	"testing"
	"time"

	"github.com/decnet/ttp/ingest/cowrie"
)

// FuzzCowrieLine feeds arbitrary lines, after a session's opening lines, to a Decoder with
// small bounds: it never panics, and every event it makes passes abi.DecodeEvent (through its
// JSON) and abi.Expand.
func FuzzCowrieLine(f *testing.F) {
	if sample, err := os.Open("../../testdata/cowrie/sample.json"); err == nil {
		sc := bufio.NewScanner(sample)
		sc.Buffer(nil, cowrie.MaxLine)
		for sc.Scan() {
			f.Add(sc.Text())
		}
		sample.Close()
	}
	const s = "abc123def456"
	for _, l := range []string{
		ln(s, 1, "cowrie.session.closed", "duration", "12.3"),
		ln(s, 1, "cowrie.session.closed", "duration", "NaN"),
		ln(s, 1, "cowrie.direct-tcpip.request", "dst_ip", "", "dst_port", -1),
		ln(s, 1, "cowrie.command.input", "input", "\xff\xfe"),
		ln("", 1, "cowrie.login.failed", "username", nil),
		`{"eventid":"cowrie.login.failed","timestamp":"2026-12-05T03:00:00Z","session":"x","username":"a","password":"b"}`,
		`{"eventid":"cowrie.session.connect","timestamp":"0001-01-01T00:00:00Z","session":"y","dst_port":1e400}`,
		`null`, `{}`, `[]`, `"x"`,
	} {
		f.Add(l)
	}
	f.Fuzz(func(t *testing.T, line string) {
		d := cowrie.New(cowrie.Config{MaxSessions: 2, MaxAttempts: 2, MaxCommands: 2, MaxForwards: 2, IdleTimeout: time.Minute})
		out, _ := d.Decode([]byte(ln(s, 0, "cowrie.session.connect", "protocol", "ssh")), nil)
		out, _ = d.Decode([]byte(line), out)
		out, _ = d.Decode([]byte(line), out)
		out = d.Flush(out)
		for _, ev := range out {
			checkEvent(t, ev)
		}
		if c := d.Counts(); c.Events != int64(len(out)) || c.Lines != 3 {
			t.Fatalf("counts %+v for %d events", c, len(out))
		}
	})
}
