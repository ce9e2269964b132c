package cowrie_test

import (
	"fmt"
	"strings"

	"github.com/decnet/ttp/abi"
	"github.com/decnet/ttp/ingest/cowrie"
)

// A Decoder reads a Cowrie log line by line: a login is an auth event at once, a command a
// command event, and the close of the session one session event with everything it did.
func Example() {
	log := `{"eventid":"cowrie.session.connect","src_ip":"198.51.100.23","src_port":40112,"dst_ip":"10.0.0.5","dst_port":22,"protocol":"ssh","session":"a3f19c0e77d1","sensor":"hp1","timestamp":"2026-12-05T03:01:00.000000Z"}
{"eventid":"cowrie.login.success","username":"root","password":"vizxv","src_ip":"198.51.100.23","session":"a3f19c0e77d1","sensor":"hp1","timestamp":"2026-12-05T03:01:02.900000Z"}
{"eventid":"cowrie.command.input","input":"uname -a","src_ip":"198.51.100.23","session":"a3f19c0e77d1","sensor":"hp1","timestamp":"2026-12-05T03:01:03.400000Z"}
{"eventid":"cowrie.session.closed","duration_ms":4100,"src_ip":"198.51.100.23","session":"a3f19c0e77d1","sensor":"hp1","timestamp":"2026-12-05T03:01:04.100000Z"}
`
	d := cowrie.New(cowrie.Config{}) // a 1-hour login window, a 30-minute idle timeout
	var events []abi.Event
	err := d.ReadFrom("cowrie.json", strings.NewReader(log),
		func(evs []abi.Event) error { events = append(events, evs...); return nil },
		func(err error) { fmt.Println("bad line:", err) })
	if err != nil {
		panic(err)
	}
	events = d.Flush(events) // sessions still open at the end of the input
	for _, ev := range events {
		fmt.Println(ev.SourceKind, ev.SourceID[:len("cowrie:hp1:a3f19c0e77d1")])
	}
	c := d.Counts()
	fmt.Printf("%d lines, %d events, %d skipped\n", c.Lines, c.Events, c.Skipped)
	// Output:
	// auth cowrie:hp1:a3f19c0e77d1
	// command cowrie:hp1:a3f19c0e77d1
	// session cowrie:hp1:a3f19c0e77d1
	// 4 lines, 3 events, 1 skipped
}
