package sdk

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/decnet/ttp/abi"
)

// The probe manifest declares one field of every record type, for two source kinds.
var (
	probeManifest = NewManifest("probe", "0.1.0", "lifter:probe_")

	session   = probeManifest.Source(abi.KindSession)
	commands  = session.Field("payload.commands[].text")
	times     = session.Field("payload.command_times_ms")
	duration  = session.Field("payload.duration_ms")
	ratio     = session.Field("payload.ratio")
	success   = session.Field("payload.login_success")
	client    = session.Field("payload.client_version")
	env       = session.Field("payload.env.*")
	sessionID = session.Field("session_id")

	auth     = probeManifest.Source(abi.KindAuth)
	username = auth.Field("payload.username")

	cmdKey      = probeManifest.Evidence("command")
	durationKey = probeManifest.Evidence("duration_ms")
	ratioKey    = probeManifest.Evidence("ratio")
	successKey  = probeManifest.Evidence("login_success")
	listKey     = probeManifest.Evidence("commands")
)

type probeParams struct{ min int64 }

// probe is a Lifter whose behaviour each test supplies.
type probe struct {
	configure func(r *Rule[probeParams]) error
	tag       func(ev *Event, rules []*Rule[probeParams], out *Drafts)
}

func (probe) Manifest() *Manifest { return probeManifest }

func (p probe) Configure(r *Rule[probeParams]) error {
	if p.configure == nil {
		r.Params.min = r.Int("min", 1)
		return nil
	}
	return p.configure(r)
}

func (p probe) Tag(ev *Event, rules []*Rule[probeParams], out *Drafts) {
	if p.tag != nil {
		p.tag(ev, rules, out)
	}
}

// probeRule is an owned rule applying to kinds, with two emits entries.
func probeRule(id string, params map[string]any, kinds ...string) abi.RuleConfig {
	return abi.RuleConfig{ID: id, Kind: "lifter:probe_x", AppliesTo: kinds, Params: params, Emits: []abi.EmitConfig{
		{TechniqueID: "T1059", SubTechniqueID: "T1059.004", Tactic: "execution", Confidence: 0.8},
		{TechniqueID: "T1082", Tactic: "discovery", Confidence: 0.5},
	}}
}

// configure sends rules through the JSON path of ttp_configure and returns the reply.
func configure(t *testing.T, p *plugin[probeParams], rules ...abi.RuleConfig) string {
	t.Helper()
	req, err := json.Marshal(abi.ConfigureRequest{Rules: rules})
	if err != nil {
		t.Fatal(err)
	}
	return string(p.Configure(req))
}

// record projects ev as the host does: expanded, then the declared fields of its kind.
func record(t testing.TB, ev abi.Event) []byte {
	t.Helper()
	ev = abi.Expand(ev)[0]
	k := probeManifest.sourceIndex(ev.SourceKind)
	if k < 0 {
		t.Fatalf("kind %s not declared", ev.SourceKind)
	}
	var paths []abi.Path
	for _, f := range probeManifest.sources[k].paths {
		paths = append(paths, abi.MustParsePath(f))
	}
	return abi.AppendRecord(nil, k, paths, &ev)
}

func sessionEvent() abi.Event {
	return abi.Event{
		SourceKind: abi.KindSession, SourceID: "s1", SessionID: "sess-1",
		Payload: map[string]any{
			"commands":         []any{"uname -a", map[string]any{"id": "c2", "text": "id"}},
			"command_times_ms": []any{0.0, 120.0},
			"duration_ms":      1200.0,
			"ratio":            0.25,
			"login_success":    true,
			"client_version":   "SSH-2.0-Go",
			"env":              map[string]any{"TERM": "xterm", "LANG": "C", "COLUMNS": 80.0},
		},
	}
}

func limits(rules ...abi.RuleConfig) abi.ReplyLimits {
	lim := abi.ReplyLimits{EvidenceKeys: len(probeManifest.keys)}
	for _, r := range rules {
		lim.Emits = append(lim.Emits, len(r.Emits))
	}
	return lim
}

func TestRuleParams(t *testing.T) {
	for _, tc := range []struct {
		name   string
		params string // as the host sends them, JSON
		read   func(r *Rule[probeParams]) any
		want   any
		reject string
	}{
		{"int", `{"n": 5}`, func(r *Rule[probeParams]) any { return r.Int("n", 1) }, int64(5), ""},
		{"int default", `{}`, func(r *Rule[probeParams]) any { return r.Int("n", 7) }, int64(7), ""},
		{"int fraction", `{"n": 2.5}`, func(r *Rule[probeParams]) any { return r.Int("n", 1) }, int64(1), "params.n: want an integer, got 2.5"},
		{"int string", `{"n": "5"}`, func(r *Rule[probeParams]) any { return r.Int("n", 1) }, int64(1), `params.n: want an integer, got "5"`},
		{"int null", `{"n": null}`, func(r *Rule[probeParams]) any { return r.Int("n", 1) }, int64(1), "params.n: want an integer, got null"},
		{"float", `{"f": 0.4}`, func(r *Rule[probeParams]) any { return r.Float("f", 1) }, 0.4, ""},
		{"float from int", `{"f": 3}`, func(r *Rule[probeParams]) any { return r.Float("f", 1) }, 3.0, ""},
		{"float bool", `{"f": true}`, func(r *Rule[probeParams]) any { return r.Float("f", 1) }, 1.0, "params.f: want a number, got true"},
		{"string", `{"s": "x"}`, func(r *Rule[probeParams]) any { return r.String("s", "d") }, "x", ""},
		{"string default", `{}`, func(r *Rule[probeParams]) any { return r.String("s", "d") }, "d", ""},
		{"string number", `{"s": 1}`, func(r *Rule[probeParams]) any { return r.String("s", "d") }, "d", "params.s: want a string, got 1"},
		{"bool", `{"b": true}`, func(r *Rule[probeParams]) any { return r.Bool("b", false) }, true, ""},
		{"bool string", `{"b": "yes"}`, func(r *Rule[probeParams]) any { return r.Bool("b", false) }, false, `params.b: want true or false, got "yes"`},
		{"strings", `{"l": ["a", "b"]}`, func(r *Rule[probeParams]) any { return r.Strings("l", nil) }, []string{"a", "b"}, ""},
		{"strings mixed", `{"l": ["a", 1]}`, func(r *Rule[probeParams]) any { return r.Strings("l", []string{"d"}) }, []string{"d"}, `params.l: want a list of strings, got ["a",1]`},
		{"has", `{"x": {"deep": 1}}`, func(r *Rule[probeParams]) any { return r.Has("x") }, true, ""},
		{"value", `{"x": {"deep": 1}}`, func(r *Rule[probeParams]) any { v, _ := r.Value("x"); return v }, map[string]any{"deep": 1.0}, ""},
		{"unknown param", `{"n": 5, "mni": 3}`, func(r *Rule[probeParams]) any { return r.Int("n", 1) }, int64(5), "params.mni: unknown to this lifter (it reads n)"},
		{"no params read", `{"z": 1}`, func(r *Rule[probeParams]) any { return nil }, nil, "params.z: unknown to this lifter (it reads no params)"},
		{"every problem", `{"a": "x", "b": "y", "c": 1}`, func(r *Rule[probeParams]) any { return r.Int("a", 0) + r.Int("b", 0) }, int64(0),
			`params.a: want an integer, got "x"; params.b: want an integer, got "y"; params.c: unknown to this lifter (it reads a, b)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var raw map[string]any
			if err := json.Unmarshal([]byte(tc.params), &raw); err != nil {
				t.Fatal(err)
			}
			r := &Rule[probeParams]{ID: "R0100", raw: raw}
			if got := tc.read(r); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("value %#v, want %#v", got, tc.want)
			}
			if got := r.verdict(nil); got != tc.reject {
				t.Errorf("verdict %q, want %q", got, tc.reject)
			}
		})
	}
}

func TestConfigure(t *testing.T) {
	for _, tc := range []struct {
		name      string
		configure func(r *Rule[probeParams]) error
		rules     []abi.RuleConfig
		want      string
	}{
		{"all usable", nil, []abi.RuleConfig{probeRule("R0100", map[string]any{"min": 2}, "session")}, `{}`},
		{"bad type", nil, []abi.RuleConfig{probeRule("R0100", map[string]any{"min": "two"}, "session")},
			`{"rejected":[{"rule":"R0100","message":"params.min: want an integer, got \"two\""}]}`},
		{"typo", nil, []abi.RuleConfig{probeRule("R0100", map[string]any{"mni": 2}, "session")},
			`{"rejected":[{"rule":"R0100","message":"params.mni: unknown to this lifter (it reads min)"}]}`},
		{"range check", func(r *Rule[probeParams]) error {
			if r.Params.min = r.Int("min", 1); r.Params.min < 1 {
				return fmt.Errorf("min must be at least 1, got %d", r.Params.min)
			}
			return nil
		}, []abi.RuleConfig{probeRule("R0100", map[string]any{"min": 0}, "session"), probeRule("R0101", nil, "session")},
			`{"rejected":[{"rule":"R0100","message":"min must be at least 1, got 0"}]}`},
		{"panic rejects that rule", func(r *Rule[probeParams]) error {
			if r.ID == "R0101" {
				panic("boom")
			}
			return nil
		}, []abi.RuleConfig{probeRule("R0100", nil, "session"), probeRule("R0101", nil, "session")},
			`{"rejected":[{"rule":"R0101","message":"sdk: Configure panicked: boom at github.com/decnet/ttp/sdk.TestConfigure.func`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPlugin[probeParams](probe{configure: tc.configure})
			if got := configure(t, p, tc.rules...); !strings.HasPrefix(got, tc.want) {
				t.Errorf("reply %s\nwant %s", got, tc.want)
			}
		})
	}
	t.Run("malformed request", func(t *testing.T) {
		p := newPlugin[probeParams](probe{})
		var reply abi.ConfigureReply
		if err := json.Unmarshal(p.Configure([]byte(`{"rules": 3}`)), &reply); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(reply.Error, "sdk: configure request: ") {
			t.Errorf("reply %+v, want an error", reply)
		}
	})
}

// TestRulesBySource checks that Tag sees only the accepted rules applying to the event's kind.
func TestRulesBySource(t *testing.T) {
	var seen []string
	p := newPlugin[probeParams](probe{tag: func(ev *Event, rules []*Rule[probeParams], out *Drafts) {
		for _, r := range rules {
			seen = append(seen, ev.Kind()+":"+r.ID)
		}
	}})
	configure(t, p,
		probeRule("R0100", nil, "session"),
		probeRule("R0101", nil, "auth"),
		probeRule("R0102", map[string]any{"min": "x"}, "session", "auth"), // rejected
		probeRule("R0103", nil, "auth", "session"),
	)
	p.Tag(record(t, sessionEvent()))
	p.Tag(record(t, abi.Event{SourceKind: abi.KindAuth, SourceID: "a1"}))
	if want := []string{"session:R0100", "session:R0103", "auth:R0101", "auth:R0103"}; !reflect.DeepEqual(seen, want) {
		t.Errorf("Tag saw %v, want %v", seen, want)
	}
}

func TestEvent(t *testing.T) {
	type read struct {
		Kind, Client, SessionID, First, Missing, WrongKind string
		Duration                                           int64
		DurationOK                                         bool
		Ratio                                              float64
		RatioOK, Success, SuccessOK, HasEnv, HasUser       bool
		Commands                                           []string
		Times                                              []float64
		Env                                                map[string]string
		Len, TimesLen                                      int
		Second                                             float64
	}
	var got read
	p := newPlugin[probeParams](probe{tag: func(ev *Event, _ []*Rule[probeParams], _ *Drafts) {
		got = read{Kind: ev.Kind(), Client: ev.String(client), SessionID: ev.String(sessionID),
			First: ev.StringAt(commands, 0), Missing: ev.StringAt(commands, 9), WrongKind: ev.String(username),
			Len: ev.Len(commands), TimesLen: ev.Len(times), Second: ev.NumberAt(times, 1),
			HasEnv: ev.Has(env), HasUser: ev.Has(username), Env: map[string]string{}}
		got.Duration, got.DurationOK = ev.Int(duration)
		got.Ratio, got.RatioOK = ev.Float(ratio)
		got.Success, got.SuccessOK = ev.Bool(success)
		for _, s := range ev.Strings(commands) {
			got.Commands = append(got.Commands, s)
		}
		for _, f := range ev.Numbers(times) {
			got.Times = append(got.Times, f)
		}
		for k, v := range ev.Pairs(env) {
			got.Env[k] = v
		}
	}})
	configure(t, p)
	p.Tag(record(t, sessionEvent()))
	want := read{Kind: "session", Client: "SSH-2.0-Go", SessionID: "sess-1", First: "uname -a",
		Duration: 1200, DurationOK: true, Ratio: 0.25, RatioOK: true, Success: true, SuccessOK: true,
		HasEnv: true, Commands: []string{"uname -a", "id"}, Times: []float64{0, 120},
		Env: map[string]string{"COLUMNS": "80", "LANG": "C", "TERM": "xterm"}, Len: 2, TimesLen: 2, Second: 120}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("read\n%+v\nwant\n%+v", got, want)
	}

	// Wrong types, a zero Field and another manifest's field read as absent.
	other := NewManifest("other", "0.1.0", "lifter:other_").Source(abi.KindSession).Field("payload.duration_ms")
	var absent []any
	p = newPlugin[probeParams](probe{tag: func(ev *Event, _ []*Rule[probeParams], _ *Drafts) {
		n, ok := ev.Int(client)
		f, fok := ev.Float(Field{})
		_, ook := ev.Int(other)
		absent = []any{n, ok, f, fok, ook, ev.Has(Field{}), ev.Type(other), ev.Len(duration), ev.StringAt(times, 0), math.IsNaN(ev.NumberAt(commands, 0))}
		for range ev.Strings(times) {
			absent = append(absent, "strings of a number list")
		}
		for range ev.Numbers(commands) {
			absent = append(absent, "numbers of a string list")
		}
		for range ev.Pairs(commands) {
			absent = append(absent, "pairs of a string list")
		}
	}})
	configure(t, p)
	p.Tag(record(t, sessionEvent()))
	if want := []any{int64(0), false, 0.0, false, false, false, abi.TypeNull, 0, "", true}; !reflect.DeepEqual(absent, want) {
		t.Errorf("absent reads %v, want %v", absent, want)
	}
}

func TestDrafts(t *testing.T) {
	rules := []abi.RuleConfig{probeRule("R0100", nil, "session"), probeRule("R0101", map[string]any{"min": "x"}, "session")}
	foreign := NewManifest("other", "0.1.0", "lifter:other_").Evidence("command")
	for _, tc := range []struct {
		name string
		tag  func(ev *Event, out *Drafts)
		want []abi.ReplyDraft
		err  string // message of the error reply
	}{
		{"none", func(ev *Event, out *Drafts) {}, nil, ""},
		{"evidence of every type", func(ev *Event, out *Drafts) {
			out.Add(0, 1, 0.5).String(cmdKey, ev.StringAt(commands, 0)).Int(durationKey, 1200).Number(ratioKey, 0.25).
				Bool(successKey, true).Strings(listKey, []string{"a", "b"})
			out.Add(0, 0, 1)
		}, []abi.ReplyDraft{
			{Rule: 0, Emit: 1, Scale: 0.5, Evidence: []abi.ReplyEvidence{
				{Key: 0, Value: "uname -a"}, {Key: 1, Value: int64(1200)}, {Key: 2, Value: 0.25},
				{Key: 3, Value: true}, {Key: 4, Value: []string{"a", "b"}}}},
			{Rule: 0, Emit: 0, Scale: 1},
		}, ""},
		{"rule index", func(ev *Event, out *Drafts) { out.Add(2, 0, 1) }, nil, "sdk: Add: rule index 2, the lifter is configured with 2 rules"},
		{"rejected rule", func(ev *Event, out *Drafts) { out.Add(1, 0, 1) }, nil, "sdk: Add: rule R0101 was rejected at configure"},
		{"emit index", func(ev *Event, out *Drafts) { out.Add(0, 2, 1) }, nil, "sdk: Add: rule R0100: emits index 2, the rule has 2 emits entries"},
		{"scale above 1", func(ev *Event, out *Drafts) { out.Add(0, 0, 1.5) }, nil, "sdk: Add: rule R0100: scale 1.5 outside [0, 1]"},
		{"scale NaN", func(ev *Event, out *Drafts) { out.Add(0, 0, math.NaN()) }, nil, "sdk: Add: rule R0100: scale NaN outside [0, 1]"},
		{"foreign key", func(ev *Event, out *Drafts) { out.Add(0, 0, 1).String(foreign, "x") }, nil,
			"sdk: draft of rule R0100: evidence key not declared by this lifter's manifest"},
		{"zero key", func(ev *Event, out *Drafts) { out.Add(0, 0, 1).Bool(Key{}, true) }, nil,
			"sdk: draft of rule R0100: evidence key not declared by this lifter's manifest"},
		{"NaN evidence", func(ev *Event, out *Drafts) { out.Add(0, 0, 1).Number(ratioKey, math.Inf(1)) }, nil,
			"sdk: draft of rule R0100: evidence ratio = +Inf has no JSON form"},
		{"reply over the cap", func(ev *Event, out *Drafts) {
			big := strings.Repeat("x", abi.MaxReply)
			out.Add(0, 0, 1).String(cmdKey, big)
		}, nil, fmt.Sprintf("sdk: reply of %d bytes over the host's %d-byte cap", abi.MaxReply+8+12+1+5, abi.MaxReply)},
		{"first mistake wins", func(ev *Event, out *Drafts) {
			out.Add(0, 0, 1)
			out.Add(0, 5, 1).String(cmdKey, "x")
			out.Add(9, 0, 1)
		}, nil, "sdk: Add: rule R0100: emits index 5, the rule has 2 emits entries"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPlugin[probeParams](probe{tag: func(ev *Event, _ []*Rule[probeParams], out *Drafts) { tc.tag(ev, out) }})
			configure(t, p, rules...)
			got, err := abi.DecodeReply(p.Tag(record(t, sessionEvent())), limits(rules...), nil)
			if tc.err != "" {
				if !errors.Is(err, abi.ErrGuest) || err.Error() != abi.ErrGuest.Error()+": "+tc.err {
					t.Fatalf("error %v, want an error reply %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("drafts\n%+v\nwant\n%+v", got, tc.want)
			}
		})
	}
}

func TestTagPanicIsAnErrorReply(t *testing.T) {
	p := newPlugin[probeParams](probe{tag: func(ev *Event, rules []*Rule[probeParams], out *Drafts) {
		out.Add(0, 0, 1)
		_ = rules[len(rules)+2] // index out of range
	}})
	configure(t, p, probeRule("R0100", nil, "session"))
	reply := p.Tag(record(t, sessionEvent()))
	_, err := abi.DecodeReply(reply, limits(probeRule("R0100", nil)), nil)
	if !errors.Is(err, abi.ErrGuest) {
		t.Fatalf("error %v, want an error reply", err)
	}
	for _, want := range []string{"sdk: Tag panicked on source kind session: runtime error: index out of range [3] with length 1",
		"at github.com/decnet/ttp/sdk.TestTagPanicIsAnErrorReply.func1 (sdk_test.go:"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q, want it to contain %q", err, want)
		}
	}
	// The instance is still usable: the next call starts clean.
	p.lifter = probe{}
	if _, err := abi.DecodeReply(p.Tag(record(t, sessionEvent())), limits(probeRule("R0100", nil)), nil); err != nil {
		t.Errorf("call after a panic: %v", err)
	}
}

func TestTagBadRecord(t *testing.T) {
	p := newPlugin[probeParams](probe{tag: func(*Event, []*Rule[probeParams], *Drafts) { t.Error("Tag called on a bad record") }})
	configure(t, p)
	good := record(t, sessionEvent())
	for _, tc := range []struct {
		name   string
		record []byte
		want   string
	}{
		{"empty", nil, "sdk: abi: malformed: record: 0 bytes, shorter than its header"},
		{"kind index", append([]byte{1, 5}, good[2:]...), "sdk: record of kind index 5, the manifest declares 2 kinds"},
		{"field count", []byte{1, 1, 0, 0}, "sdk: auth record with 0 fields, the manifest declares 1"},
		{"truncated", good[:len(good)-1], "sdk: record field 7: abi: malformed: tag 4: truncated"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := abi.DecodeReply(p.Tag(tc.record), abi.ReplyLimits{}, nil)
			if err == nil || err.Error() != abi.ErrGuest.Error()+": "+tc.want {
				t.Errorf("error %v, want an error reply %q", err, tc.want)
			}
		})
	}
}

// scratch is the lifter's own reusable buffer: evidence lists built without allocating.
var scratch = make([]string, 0, 8)

// TestTagAllocs checks the promise of the ABI: in steady state a ttp_tag call (the record
// reader, the lifter's reads, the drafts, the reply) allocates nothing.
func TestTagAllocs(t *testing.T) {
	p := newPlugin[probeParams](probe{tag: func(ev *Event, rules []*Rule[probeParams], out *Drafts) {
		n := 0
		for _, s := range ev.Strings(commands) {
			n += len(s)
		}
		sum := 0.0
		for _, f := range ev.Numbers(times) {
			sum += f
		}
		list := scratch[:0]
		for k, v := range ev.Pairs(env) {
			list = append(list, k, v)
		}
		d, _ := ev.Int(duration)
		r, _ := ev.Float(ratio)
		ok, _ := ev.Bool(success)
		for _, rule := range rules {
			if d >= rule.Params.min {
				out.Add(rule.Index, 0, r).String(cmdKey, ev.StringAt(commands, 1)).Int(durationKey, d).
					Number(ratioKey, sum/float64(n)).Bool(successKey, ok).Strings(listKey, list)
			}
		}
	}})
	rules := []abi.RuleConfig{probeRule("R0100", nil, "session"), probeRule("R0101", map[string]any{"min": 5000}, "session"), probeRule("R0102", nil, "session")}
	configure(t, p, rules...)
	rec := record(t, sessionEvent())
	drafts, err := abi.DecodeReply(p.Tag(rec), limits(rules...), nil)
	if err != nil || len(drafts) != 2 {
		t.Fatalf("drafts %+v, %v; want 2", drafts, err)
	}
	if allocs := testing.AllocsPerRun(200, func() { p.Tag(rec) }); allocs != 0 {
		t.Errorf("%v allocations per Tag call, want 0", allocs)
	}
}

func BenchmarkTag(b *testing.B) {
	p := newPlugin[probeParams](probe{tag: func(ev *Event, rules []*Rule[probeParams], out *Drafts) {
		d, _ := ev.Int(duration)
		for _, r := range rules {
			if d >= r.Params.min {
				out.Add(r.Index, 0, 1).Int(durationKey, d).String(cmdKey, ev.StringAt(commands, 0))
			}
		}
	}})
	req, _ := json.Marshal(abi.ConfigureRequest{Rules: []abi.RuleConfig{probeRule("R0100", nil, "session")}})
	p.Configure(req)
	rec := record(b, sessionEvent())
	b.ReportAllocs()
	for b.Loop() {
		p.Tag(rec)
	}
}

func TestManifest(t *testing.T) {
	m := NewManifest("behavioral", "1.0.0", "lifter:behavioral_")
	s := m.Source(abi.KindSession)
	a := s.Field("payload.commands[].text")
	b := s.Field("payload.duration_ms")
	if again := m.Source(abi.KindSession).Field("payload.commands[].text"); again != a || b.index != 1 {
		t.Errorf("redeclared field %+v, want %+v", again, a)
	}
	m.Source(abi.KindAuth)
	k := m.Evidence("median_gap_ms")
	if again := m.Evidence("median_gap_ms"); again != k {
		t.Errorf("redeclared key %+v, want %+v", again, k)
	}
	got := string(m.encode())
	want := `{"abi":1,"name":"behavioral","version":"1.0.0","rule_kinds":["lifter:behavioral_"],` +
		`"kinds":[{"source_kind":"session","fields":["payload.commands[].text","payload.duration_ms"]},` +
		`{"source_kind":"auth","fields":[]}],"evidence_keys":["median_gap_ms"]}`
	if got != want {
		t.Errorf("manifest\n%s\nwant\n%s", got, want)
	}
	if _, err := abi.DecodeManifest([]byte(got)); err != nil {
		t.Errorf("host refuses the manifest: %v", err)
	}

	for _, tc := range []struct {
		name    string
		declare func()
		want    string
	}{
		{"unknown kind", func() { NewManifest("x", "1.0.0").Source("sesion") }, `sdk: source kind "sesion" is not one of`},
		{"bad path", func() { NewManifest("x", "1.0.0").Source("auth").Field("username") }, `sdk: auth field: bad field path: "username"`},
		{"bad key", func() { NewManifest("x", "1.0.0").Evidence("Gap") }, `sdk: evidence key "Gap": want a plain lower-case name`},
		{"after describe", func() { m.Evidence("late") }, "sdk: manifest behavioral: Evidence declared after the manifest was described"},
		{"nil manifest", func() { Register[int](nilManifest{}) }, "sdk: Register: sdk.nilManifest.Manifest returned nil"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if v := fmt.Sprint(recover()); !strings.HasPrefix(v, tc.want) {
					t.Errorf("panic %q, want %q", v, tc.want)
				}
			}()
			tc.declare()
		})
	}
}

type nilManifest struct{}

func (nilManifest) Manifest() *Manifest               { return nil }
func (nilManifest) Configure(*Rule[int]) error        { return nil }
func (nilManifest) Tag(*Event, []*Rule[int], *Drafts) {}
