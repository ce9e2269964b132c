package sdktest_test

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/decnet/ttp/abi"
	"github.com/decnet/ttp/sdk"
	"github.com/decnet/ttp/sdk/sdktest"
)

var (
	manifest = sdk.NewManifest("recon", "0.2.0", "lifter:recon_")
	session  = manifest.Source(abi.KindSession)
	commands = session.Field("payload.commands[].text")
	auth     = manifest.Source(abi.KindAuth)
	user     = auth.Field("payload.username")
	countKey = manifest.Evidence("commands")
	firstKey = manifest.Evidence("first")
	userKey  = manifest.Evidence("username")
)

// recon fires when a session has at least min commands, scaled by 0.5, and on every auth
// event whose username is root; behaviour hooks let a test break it.
type recon struct {
	stateful *int
	panics   bool
}

func (recon) Manifest() *sdk.Manifest { return manifest }

func (recon) Configure(r *sdk.Rule[int64]) error {
	r.Params = r.Int("min", 1)
	return nil
}

func (l recon) Tag(ev *sdk.Event, rules []*sdk.Rule[int64], out *sdk.Drafts) {
	if l.panics {
		panic("broken lifter")
	}
	for _, r := range rules {
		switch ev.Kind() {
		case abi.KindSession:
			n := int64(ev.Len(commands))
			if l.stateful != nil {
				*l.stateful++
				n += int64(*l.stateful)
			}
			if n >= r.Params {
				out.Add(r.Index, 1, 0.5).Int(countKey, n).String(firstKey, ev.StringAt(commands, 0))
			}
		case abi.KindAuth:
			if ev.String(user) == "root" {
				out.Add(r.Index, 0, 1).String(userKey, "root")
			}
		}
	}
}

var reconRules = []abi.RuleConfig{
	{ID: "R0200", Kind: "lifter:recon_burst", AppliesTo: []string{"session"}, Params: map[string]any{"min": 2},
		Emits: []abi.EmitConfig{
			{TechniqueID: "T1059", SubTechniqueID: "T1059.004", Tactic: "execution", Confidence: 0.9},
			{TechniqueID: "T1082", Tactic: "discovery", Confidence: 0.6},
		}},
	{ID: "R0201", Kind: "lifter:recon_root", AppliesTo: []string{"auth"},
		Emits: []abi.EmitConfig{{TechniqueID: "T1078", SubTechniqueID: "T1078.003", Tactic: "initial-access", Confidence: 0.4}}},
}

func TestTag(t *testing.T) {
	p, err := sdktest.New(recon{}, reconRules...)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		ev   abi.Event
		want []abi.TagDraft
	}{
		{"commands as strings are expanded to objects", abi.Event{SourceKind: "session", SourceID: "s1",
			Payload: map[string]any{"commands": []any{"uname -a", map[string]any{"text": "id"}}}},
			[]abi.TagDraft{{RuleID: "R0200", TechniqueID: "T1082", Tactic: "discovery", Confidence: 0.3,
				Evidence: map[string]any{"commands": int64(2), "first": "uname -a"}}}},
		{"below threshold", abi.Event{SourceKind: "session", SourceID: "s2",
			Payload: map[string]any{"commands": []any{"uname -a"}}}, nil},
		{"auth", abi.Event{SourceKind: "auth", SourceID: "a1", Payload: map[string]any{"username": "root"}},
			[]abi.TagDraft{{RuleID: "R0201", TechniqueID: "T1078", SubTechniqueID: "T1078.003", Tactic: "initial-access",
				Confidence: 0.4, Evidence: map[string]any{"username": "root"}}}},
		{"undeclared kind is not sent", abi.Event{SourceKind: "command", SourceID: "c1",
			Payload: map[string]any{"command_text": "id"}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := p.Tag(tc.ev)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("drafts\n%+v\nwant\n%+v", got, tc.want)
			}
		})
	}
}

func TestTagFailures(t *testing.T) {
	ev := abi.Event{SourceKind: "session", SourceID: "s1", Payload: map[string]any{"commands": []any{"a", "b", "c"}}}
	for _, tc := range []struct {
		name   string
		lifter recon
		is     error
		want   string
	}{
		{"panic", recon{panics: true}, abi.ErrGuest,
			"sdktest: recon@0.2.0: session event s1: plugin error: sdk: Tag panicked on source kind session: broken lifter at github.com/decnet/ttp/sdk/sdktest_test.recon.Tag (sdktest_test.go:"},
		{"state between calls", recon{stateful: new(int)}, nil,
			"sdktest: recon@0.2.0: session event s1: a second call with the same record got a different reply: the lifter keeps state between calls"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := sdktest.New(tc.lifter, reconRules...)
			if err != nil {
				t.Fatal(err)
			}
			_, err = p.Tag(ev)
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) || (tc.is != nil && !errors.Is(err, tc.is)) {
				t.Errorf("error %v\nwant %s", err, tc.want)
			}
		})
	}
}

func TestConfigure(t *testing.T) {
	p, err := sdktest.New(recon{})
	if err != nil {
		t.Fatal(err)
	}
	bad := reconRules[0]
	bad.Params = map[string]any{"min": 1.5, "max": 3}
	rejected, err := p.Configure(bad, reconRules[1])
	if err != nil {
		t.Fatal(err)
	}
	want := []abi.RuleRejection{{Rule: "R0200", Message: "params.min: want an integer, got 1.5; params.max: unknown to this lifter (it reads min)"}}
	if !reflect.DeepEqual(rejected, want) {
		t.Errorf("rejected %+v, want %+v", rejected, want)
	}
	// The rejected rule fires nothing; the other is live.
	if drafts, err := p.Tag(abi.Event{SourceKind: "auth", SourceID: "a1", Payload: map[string]any{"username": "root"}}); err != nil || len(drafts) != 1 {
		t.Errorf("drafts %+v, %v; want R0201's", drafts, err)
	}

	_, err = sdktest.New(recon{}, bad)
	if !errors.Is(err, sdktest.ErrRejected) || !strings.Contains(err.Error(), "R0200: params.min: want an integer, got 1.5") {
		t.Errorf("New with a rejected rule: %v", err)
	}

	notOwned := reconRules[1]
	notOwned.Kind = "pattern"
	if _, err := p.Configure(notOwned); err == nil || !strings.Contains(err.Error(), `rule R0201 of kind "pattern" is not owned by the lifter`) {
		t.Errorf("configure with a rule of another kind: %v", err)
	}
}

type badManifest struct{ recon }

var invalid = sdk.NewManifest("Recon", "1", "lifter:recon_")

func (badManifest) Manifest() *sdk.Manifest { return invalid }

func TestNewInvalidManifest(t *testing.T) {
	_, err := sdktest.New(badManifest{})
	if !errors.Is(err, abi.ErrManifest) || !strings.Contains(err.Error(), `name "Recon"`) {
		t.Errorf("New: %v, want the host's manifest error", err)
	}
}

func TestReadRules(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "R0200.yaml")
	err := os.WriteFile(path, []byte(`
id: R0200
name: Recon burst
applies_to: [session]
match: {kind: lifter:recon_burst, params: {min: 2}}
emits:
  - {technique_id: T1059, sub_technique_id: T1059.004, tactic: execution, confidence: 0.9}
  - {technique_id: T1082, tactic: discovery, confidence: 0.6}
precision: M
evidence_fields: [commands, first]
`), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	got, err := sdktest.ReadRules(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ID != "R0200" || got[0].Kind != "lifter:recon_burst" ||
		!reflect.DeepEqual(got[0].AppliesTo, []string{"session"}) || !reflect.DeepEqual(got[0].Emits, reconRules[0].Emits) ||
		len(got[0].Params) != 1 {
		t.Errorf("config %+v, want %+v", got, reconRules[0])
	}
	p, err := sdktest.New(recon{}, got...)
	if err != nil {
		t.Fatal(err)
	}
	drafts, err := p.Tag(abi.Event{SourceKind: "session", SourceID: "s1", Payload: map[string]any{"commands": []any{"a", "b"}}})
	if err != nil || len(drafts) != 1 || drafts[0].RuleID != "R0200" {
		t.Errorf("drafts %+v, %v", drafts, err)
	}
	if _, err := sdktest.ReadRules(filepath.Join(dir, "R0999.yaml")); err == nil {
		t.Error("ReadRules of a missing file: no error")
	}
}
