// Package cowrie reads the JSON log of the Cowrie SSH and Telnet honeypot (cowrie.json: one
// object per line, its event ids and attributes as Cowrie's docs/OUTPUT.rst documents them)
// and turns it into ttp events (abi/EVENTS.md):
//
//   - cowrie.login.failed and cowrie.login.success become auth events, with the counts over a
//     sliding window of log time that the credential rules read;
//   - cowrie.command.input and cowrie.command.failed (shell command lines) become command
//     events, tagged as soon as they are read;
//   - the session's lines are gathered, and cowrie.session.closed, an idle timeout or the end
//     of the input closes it into one session event (commands with their times, downloads and
//     uploads, logins, client version and HASSH) for the behavioural rules, and, when the
//     client asked for SSH port forwarding (cowrie.direct-tcpip.*), one forward event that
//     sums its requests per session;
//   - the other event ids are counted and skipped.
//
// Every event's source_id is derived from the sensor, the Cowrie session id and the line's own
// bytes (never a file offset, which rotation changes), so reading a log twice, or a line that
// is in two files, makes the same events and the tag store keeps one tag each. The mapping of
// each event id is in abi/EVENTS.md, "Cowrie".
//
// The Decoder is the per-line path of both `ttp tag --input cowrie` and `ttp serve --ingest`:
// it decodes into one reused value and keeps bounded state (open sessions, the auth window),
// so memory does not grow with the length of the log (RATIONALE.md, "Cowrie ingest").
package cowrie

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/decnet/ttp/abi"
	"github.com/decnet/ttp/ingest"
)

// Defaults of Config, chosen for a busy sensor: an hour of logins is what brute-force and
// stuffing rules look back on (R0059 accepts windows up to a day); Cowrie itself drops an
// idle SSH connection after 3 minutes, so a session without a line for 30 minutes has lost
// its close line (a crash or a rotation) and will not get one.
const (
	DefaultWindow      = time.Hour
	DefaultMaxAttempts = 200_000
	DefaultIdleTimeout = 30 * time.Minute
	DefaultMaxSessions = 50_000
	DefaultMaxCommands = 1000
	DefaultMaxForwards = 64
	// MaxLine is the longest line read; a longer one is reported and skipped.
	MaxLine = 1 << 20
)

// Config sets the Decoder's window and bounds. The zero value means every default.
type Config struct {
	// Window is the span of log time the auth counts cover (payload.window_s).
	Window time.Duration
	// MaxAttempts bounds the login attempts the window holds; the oldest go first.
	MaxAttempts int
	// IdleTimeout closes a session that had no line for this long, in log time.
	IdleTimeout time.Duration
	// MaxSessions bounds the open sessions; over it, the least recently active are closed.
	MaxSessions int
	// MaxCommands bounds the commands (and downloads) a session event carries; later ones are
	// still command events of their own, and counted in the session's commands_dropped.
	MaxCommands int
	// MaxForwards bounds the distinct destinations a forward event lists (it counts them all).
	MaxForwards int
}

func (c Config) withDefaults() Config {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	if c.Window <= 0 {
		c.Window = DefaultWindow
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	def(&c.MaxAttempts, DefaultMaxAttempts)
	def(&c.MaxSessions, DefaultMaxSessions)
	def(&c.MaxCommands, DefaultMaxCommands)
	def(&c.MaxForwards, DefaultMaxForwards)
	return c
}

// Event ids this package reads (Cowrie's docs/OUTPUT.rst).
const (
	idConnect        = "cowrie.session.connect"
	idClosed         = "cowrie.session.closed"
	idClientVersion  = "cowrie.client.version"
	idClientKex      = "cowrie.client.kex"
	idClientFinger   = "cowrie.client.fingerprint"
	idClientSize     = "cowrie.client.size"
	idClientVar      = "cowrie.client.var"
	idLoginFailed    = "cowrie.login.failed"
	idLoginSuccess   = "cowrie.login.success"
	idCommandInput   = "cowrie.command.input"
	idCommandFailed  = "cowrie.command.failed"
	idDownload       = "cowrie.session.file_download"
	idDownloadFailed = "cowrie.session.file_download.failed"
	idUpload         = "cowrie.session.file_upload"
	idForwardRequest = "cowrie.direct-tcpip.request"
	idForwardData    = "cowrie.direct-tcpip.data"
)

// known are the event ids that are read (or deliberately carry nothing to tag) and so are not
// counted as unknown: the ones above, and documented ids that hold nothing a rule reads.
var known = map[string]bool{
	idConnect: true, idClosed: true, idClientVersion: true, idClientKex: true, idClientFinger: true,
	idClientSize: true, idClientVar: true, idLoginFailed: true, idLoginSuccess: true,
	idCommandInput: true, idCommandFailed: true, idDownload: true, idDownloadFailed: true,
	idUpload: true, idForwardRequest: true, idForwardData: true,
	"cowrie.command.success": true, "cowrie.log.open": true, "cowrie.log.closed": true,
	"cowrie.session.params": true, "cowrie.session.input": true, "cowrie.client.malformed_packet": true,
	"cowrie.direct-tcpip.redirect": true, "cowrie.direct-tcpip.tunnel": true, "cowrie.direct-tcpip.ja4": true,
	"cowrie.direct-tcpip.ja4h": true, "cowrie.reversedns.connect": true, "cowrie.reversedns.forward": true,
	"cowrie.telnet.option": true, "cowrie.telnet.error": true, "cowrie.command.chpasswd": true,
}

// Decoder turns Cowrie log lines into events. It is not safe for concurrent use: one Decoder
// reads one log (its files in time order), because sessions and the auth window span lines.
type Decoder struct {
	cfg      Config
	l        line
	win      *window
	ids      *identities
	open     map[string]*session // by sensor and session id
	counts   ingest.Counts
	sensors  map[string]bool
	now      time.Time   // the latest log time seen
	lastScan time.Time   // log time of the last idle scan
	pending  []abi.Event // events of sessions closed to stay under MaxSessions
}

// New returns a Decoder with cfg's window and bounds (zero fields take the defaults).
func New(cfg Config) *Decoder {
	cfg = cfg.withDefaults()
	return &Decoder{cfg: cfg, win: newWindow(cfg.Window, cfg.MaxAttempts), ids: newIdentities(cfg.Window, cfg.MaxAttempts), open: map[string]*session{},
		counts: ingest.Counts{Input: "cowrie"}, sensors: map[string]bool{}}
}

// Counts returns what the Decoder has read so far (Input "cowrie"; Files are the caller's).
func (d *Decoder) Counts() ingest.Counts {
	c := d.counts
	c.Unknown = nil
	if len(d.counts.Unknown) > 0 {
		c.Unknown = make(map[string]int64, len(d.counts.Unknown))
		for k, v := range d.counts.Unknown {
			c.Unknown[k] = v
		}
	}
	c.Sensors = make([]string, 0, len(d.sensors))
	for s := range d.sensors {
		c.Sensors = append(c.Sensors, s)
	}
	slices.Sort(c.Sensors)
	return c
}

// Open returns the number of sessions not yet closed.
func (d *Decoder) Open() int { return len(d.open) }

// Decode reads one log line (without its newline) and appends the events it completes to out:
// none, one (a login, a command), or those of a session it closes. A blank line is counted
// and yields nothing; a line that is not a Cowrie event is counted as malformed and its error
// names the field (the caller adds file and line number).
func (d *Decoder) Decode(b []byte, out []abi.Event) ([]abi.Event, error) {
	d.counts.Lines++
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		d.counts.Skipped++
		return out, nil
	}
	t, err := d.l.decode(b)
	if err != nil {
		d.counts.Malformed++
		return out, err
	}
	l := &d.l
	if !known[l.EventID] {
		if d.counts.Unknown == nil {
			d.counts.Unknown = map[string]int64{}
		}
		if len(d.counts.Unknown) < 1000 || d.counts.Unknown[l.EventID] > 0 {
			d.counts.Unknown[l.EventID]++
		}
		d.counts.Skipped++
		return out, nil
	}
	if l.Session == "" {
		d.counts.Skipped++ // operational events (cowrie.abuseipdb.*) have no session
		return out, nil
	}
	if l.Sensor != "" && !d.sensors[l.Sensor] && len(d.sensors) < 1000 {
		d.sensors[l.Sensor] = true
	}
	if d.counts.First.IsZero() || t.Before(d.counts.First) {
		d.counts.First = t
	}
	if t.After(d.counts.Last) {
		d.counts.Last = t
	}
	n := len(out)
	if t.After(d.now) {
		d.now = t
		if d.now.Sub(d.lastScan) >= d.cfg.IdleTimeout/8 {
			d.lastScan = d.now
			out = d.expire(d.now, out)
		}
	}
	out = d.ids.roll(t, out)
	m := len(out)
	out = d.apply(t, b, out)
	if len(out) == m {
		d.counts.Skipped++
	}
	out = append(out, d.pending...)
	d.pending = d.pending[:0]
	d.counts.Events += int64(len(out) - n)
	return out, nil
}

// apply is Decode's work on a decoded line.
func (d *Decoder) apply(t time.Time, raw []byte, out []abi.Event) []abi.Event {
	l := &d.l
	s := d.session(t)
	s.Last = t
	switch l.EventID {
	case idConnect:
		s.Protocol, s.DstPort = nonEmpty(l.Protocol, s.Protocol), int(l.DstPort.V)
	case idClientVersion:
		s.ClientVersion = cleanVersion(l.Version)
	case idClientKex:
		s.HASSH = l.HASSH
	case idClientFinger, idClientSize, idClientVar:
		// Nothing a rule reads yet; the line keeps the session alive.
	case idLoginFailed, idLoginSuccess:
		return d.login(t, s, raw, out)
	case idCommandInput, idCommandFailed:
		if l.Input == nil || l.Realm != "" {
			return out // a line fed to a command's stdin is not a command
		}
		id := sourceID(s.Sensor, s.ID, "cmd", raw)
		if len(s.Commands) < d.cfg.MaxCommands {
			s.Commands = append(s.Commands, command{Text: *l.Input, ID: id, AtMS: ms(t.Sub(s.Start))})
		} else {
			s.Dropped++
		}
		// observed_at is the session's start, as for the commands abi.Expand fans out of the
		// session event: the tag of this event and that of the session's copy of the command
		// are then one tag (same tag_uuid), stored and published once.
		return append(out, d.envelope(abi.KindCommand, id, s, s.Start, map[string]any{"command_text": *l.Input}))
	case idDownload, idDownloadFailed, idUpload:
		if len(s.Downloads) >= d.cfg.MaxCommands {
			s.Dropped++
			return out
		}
		dl := download{URL: l.URL, SHA256: strings.ToLower(l.SHASum), Destfile: l.Destfile, Transfer: "download"}
		switch l.EventID {
		case idDownloadFailed:
			dl.SHA256, dl.Transfer = "", "failed"
		case idUpload:
			dl.URL, dl.Transfer = l.Filename, "upload"
		}
		s.Downloads = append(s.Downloads, dl)
	case idForwardRequest, idForwardData:
		d.forward(t, s)
	case idClosed:
		if v, ok := l.durationMS(); ok {
			s.DurationMS, s.HasDuration = v, true
		}
		return d.close(s, out)
	}
	return out
}

// session returns the open session of the current line, opening it when this is its first
// line (a connect, or any line of a session whose start is in an earlier file).
func (d *Decoder) session(t time.Time) *session {
	l := &d.l
	key := l.Sensor + "\x00" + l.Session
	if s := d.open[key]; s != nil {
		return s
	}
	if len(d.open) >= d.cfg.MaxSessions {
		d.evictOldest()
	}
	s := &session{ID: l.Session, Sensor: l.Sensor, SrcIP: l.SrcIP, Protocol: l.Protocol, Start: t, Last: t}
	if l.DstPort.Set {
		s.DstPort = int(l.DstPort.V)
	}
	d.open[key] = s
	return s
}

// evictOldest closes the tenth of the open sessions least recently active, when MaxSessions
// is reached; their events are dropped into the pending list the next Decode returns.
func (d *Decoder) evictOldest() {
	all := make([]*session, 0, len(d.open))
	for _, s := range d.open {
		all = append(all, s)
	}
	slices.SortFunc(all, func(a, b *session) int { return a.Last.Compare(b.Last) })
	for _, s := range all[:max(1, len(all)/10)] {
		d.pending = d.close(s, d.pending)
	}
}

// Expire closes every session with no line since now minus the idle timeout and appends
// their events to out. Decode calls it as log time advances; a follower of a live log calls
// it with the wall clock when the log has been quiet.
func (d *Decoder) Expire(now time.Time, out []abi.Event) []abi.Event {
	n := len(out)
	out = d.expire(now, out)
	d.counts.Events += int64(len(out) - n)
	return out
}

func (d *Decoder) expire(now time.Time, out []abi.Event) []abi.Event {
	out = d.ids.roll(now, out)
	out = append(out, d.pending...)
	d.pending = d.pending[:0]
	before := now.Add(-d.cfg.IdleTimeout)
	var idle []*session
	for _, s := range d.open {
		if s.Last.Before(before) {
			idle = append(idle, s)
		}
	}
	sortSessions(idle)
	for _, s := range idle {
		out = d.close(s, out)
	}
	return out
}

// Flush closes every open session, at the end of the input, and appends their events to out
// in the order the sessions started.
func (d *Decoder) Flush(out []abi.Event) []abi.Event {
	out = append(out, d.pending...)
	d.pending = d.pending[:0]
	all := make([]*session, 0, len(d.open))
	for _, s := range d.open {
		all = append(all, s)
	}
	sortSessions(all)
	n := len(out)
	for _, s := range all {
		out = d.close(s, out)
	}
	if d.ids.period >= 0 {
		out = d.ids.flush(out)
	}
	d.counts.Events += int64(len(out) - n)
	return out
}

func sortSessions(ss []*session) {
	slices.SortFunc(ss, func(a, b *session) int {
		if c := a.Start.Compare(b.Start); c != 0 {
			return c
		}
		return strings.Compare(a.Sensor+"\x00"+a.ID, b.Sensor+"\x00"+b.ID)
	})
}

// login makes the auth event of a cowrie.login.* line.
func (d *Decoder) login(t time.Time, s *session, raw []byte, out []abi.Event) []abi.Event {
	l := &d.l
	failed := l.EventID == idLoginFailed
	user, pass := deref(l.Username), deref(l.Password)
	if failed {
		s.LoginFailures++
	} else {
		s.LoginSuccess = true
	}
	if !slices.Contains(s.Usernames, user) && len(s.Usernames) < d.cfg.MaxCommands {
		s.Usernames = append(s.Usernames, user)
	}
	src := s.SrcIP
	if src == "" {
		src = s.Sensor + "/" + s.ID // no address: the session is its own source
	}
	agg := d.win.add(t, src, user, pass, failed)
	if s.SrcIP != "" { // an identity groups addresses
		d.ids.add(t, s.SrcIP, user, pass)
	}
	p := map[string]any{
		"username":                     user,
		"success":                      !failed,
		"window_s":                     d.cfg.Window.Seconds(),
		"failures_before":              float64(agg.failuresBefore),
		"distinct_usernames":           float64(agg.distinctUsers),
		"distinct_passwords":           float64(agg.distinctPasses),
		"pair_seen_from_other_sources": float64(agg.pairOthers),
	}
	if l.Password != nil {
		p["password"] = pass
	}
	if s.Protocol != "" {
		p["protocol"] = strings.ToLower(s.Protocol)
	}
	if l.Fingerprint != "" {
		p["key_fingerprint"] = l.Fingerprint
	}
	return append(out, d.envelope(abi.KindAuth, sourceID(s.Sensor, s.ID, "login", raw), s, t, p))
}

// forward adds a cowrie.direct-tcpip.* line to the session's forward aggregate.
func (d *Decoder) forward(t time.Time, s *session) {
	l := &d.l
	f := s.Forward
	if f == nil {
		f = &forward{First: t, seen: map[string]bool{}}
		s.Forward = f
	}
	f.Last = t
	if l.EventID == idForwardData {
		f.DataEvents++
		f.DataBytes += len(l.Data)
	} else {
		f.Requests++
	}
	if l.DstIP == "" && !l.DstPort.Set {
		return
	}
	dst := l.DstIP + ":" + fmt.Sprint(int64(l.DstPort.V))
	if f.seen == nil {
		f.seen = map[string]bool{}
		for _, x := range f.Destinations {
			f.seen[x] = true
		}
	}
	if !f.seen[dst] {
		if len(f.seen) < 16*d.cfg.MaxForwards {
			f.seen[dst] = true
		}
		f.Distinct++
		if len(f.Destinations) < d.cfg.MaxForwards {
			f.Destinations = append(f.Destinations, dst)
		}
		port := l.DstPort.V
		if l.DstPort.Set && !slices.Contains(f.Ports, port) && len(f.Ports) < d.cfg.MaxForwards {
			f.Ports = append(f.Ports, port)
		}
	}
}

// close ends a session: its forward event (when it forwarded) and its session event.
func (d *Decoder) close(s *session, out []abi.Event) []abi.Event {
	delete(d.open, s.Sensor+"\x00"+s.ID)
	base := sourceID(s.Sensor, s.ID, "", nil)
	if f := s.Forward; f != nil {
		dests := make([]any, len(f.Destinations))
		for i, x := range f.Destinations {
			dests[i] = x
		}
		ports := make([]any, len(f.Ports))
		for i, x := range f.Ports {
			ports[i] = x
		}
		p := map[string]any{
			"requests":              float64(f.Requests),
			"data_events":           float64(f.DataEvents),
			"data_bytes":            float64(f.DataBytes),
			"distinct_destinations": float64(f.Distinct),
			"destinations":          dests,
			"dst_ports":             ports,
			"span_ms":               ms(f.Last.Sub(f.First)),
		}
		if s.ClientVersion != "" {
			p["client_version"] = s.ClientVersion
		}
		out = append(out, d.envelope(abi.KindForward, base+":forward", s, f.First, p))
	}
	cmds := make([]any, len(s.Commands))
	times := make([]any, len(s.Commands))
	for i, c := range s.Commands {
		cmds[i] = map[string]any{"text": c.Text, "id": c.ID}
		times[i] = c.AtMS
	}
	users := make([]any, len(s.Usernames))
	for i, u := range s.Usernames {
		users[i] = u
	}
	dls := make([]any, len(s.Downloads))
	for i, x := range s.Downloads {
		m := map[string]any{"url": x.URL, "transfer": x.Transfer}
		if x.SHA256 != "" {
			m["sha256"] = x.SHA256
		}
		if x.Destfile != "" {
			m["destfile"] = x.Destfile
		}
		dls[i] = m
	}
	dur := ms(s.Last.Sub(s.Start))
	if s.HasDuration {
		dur = float64(int64(s.DurationMS))
	}
	p := map[string]any{
		"commands":         cmds,
		"command_times_ms": times,
		"duration_ms":      dur,
		"login_failures":   float64(s.LoginFailures),
		"login_success":    s.LoginSuccess,
		"usernames":        users,
		"downloads":        dls,
		"closed":           s.HasDuration,
	}
	if s.ClientVersion != "" {
		p["client_version"] = s.ClientVersion
	}
	if s.HASSH != "" {
		p["hassh"] = s.HASSH
	}
	if s.Protocol != "" {
		p["protocol"] = strings.ToLower(s.Protocol)
	}
	if s.Forward != nil {
		p["forward_requests"] = float64(s.Forward.Requests)
	}
	if s.Dropped > 0 {
		p["commands_dropped"] = float64(s.Dropped)
	}
	return append(out, d.envelope(abi.KindSession, base, s, s.Start, p))
}

func (d *Decoder) envelope(kind, id string, s *session, t time.Time, p map[string]any) abi.Event {
	return abi.Event{SourceKind: kind, SourceID: id, SessionID: s.ID, DeckyID: s.Sensor, ObservedAt: t, Payload: p}
}

// sourceID is "cowrie:<sensor>:<session>" for a session, and that plus what the line is and 16
// hex digits of the SHA-256 of the line's bytes for an event of one line: the same line always
// makes the same id, in whichever file (or at whichever offset) it is read.
func sourceID(sensor, session, what string, raw []byte) string {
	id := "cowrie:" + sensor + ":" + session
	if raw == nil {
		return id
	}
	sum := sha256.Sum256(raw)
	var h [16]byte
	hex.Encode(h[:], sum[:8])
	return id + ":" + what + ":" + string(h[:])
}

// ms is d in milliseconds, to the millisecond.
func ms(d time.Duration) float64 { return float64(d.Milliseconds()) }

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func nonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// cleanVersion undoes the quoting some Cowrie releases wrote the client banner with
// ("b'SSH-2.0-Go'", "'SSH-2.0-Go'").
func cleanVersion(v string) string {
	v = strings.TrimPrefix(v, "b'")
	v = strings.Trim(v, "'\"")
	return v
}

// LineError is a line that could not be read, with where it is.
type LineError struct {
	File string
	Line int64
	Err  error
}

func (e *LineError) Error() string { return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err) }
func (e *LineError) Unwrap() error { return e.Err }

// ErrLineTooLong is the error of a line longer than MaxLine.
var ErrLineTooLong = errors.New("line longer than 1 MiB")

// ReadFrom decodes every line of r (a file called name in messages) and hands the events of
// each line to emit. A line that cannot be read is given to report as a *LineError and the
// run goes on; an error of emit or of r stops it. It does not Flush: the next file of the same
// log may continue the open sessions.
func (d *Decoder) ReadFrom(name string, r io.Reader, emit func([]abi.Event) error, report func(error)) error {
	br := bufio.NewReaderSize(r, 256<<10)
	var evs []abi.Event
	var long []byte
	for n := int64(1); ; n++ {
		b, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			long = append(long[:0], b...)
			for errors.Is(err, bufio.ErrBufferFull) {
				b, err = br.ReadSlice('\n')
				if len(long) <= MaxLine {
					long = append(long, b...)
				}
			}
			if len(long) > MaxLine {
				d.counts.Lines++
				d.counts.Malformed++
				report(&LineError{File: name, Line: n, Err: ErrLineTooLong})
				if err != nil && !errors.Is(err, io.EOF) {
					return fmt.Errorf("cowrie: %s:%d: %w", name, n, err)
				}
				if errors.Is(err, io.EOF) {
					return nil
				}
				continue
			}
			b = long
		}
		if len(b) == 0 && errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("cowrie: %s:%d: %w", name, n, err)
		}
		var derr error
		evs, derr = d.Decode(b, evs[:0])
		if derr != nil {
			report(&LineError{File: name, Line: n, Err: derr})
		}
		if len(evs) > 0 {
			if eerr := emit(evs); eerr != nil {
				return eerr
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
	}
}
