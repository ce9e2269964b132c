package bus

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/decnet/ttp/internal/natstest"
)

// TestStreamsKeepOperatorSettings: Streams creates a missing stream with ttp's defaults, and
// leaves an operator's existing stream as it is (limits, duplicate window, extra subjects),
// except that the output stream gains the subjects of ours it does not capture.
func TestStreamsKeepOperatorSettings(t *testing.T) {
	ours := outputSubjects()
	for _, tc := range []struct {
		name     string
		existing []string // subjects of the operator's TTP stream; nil: no stream
		want     []string // subjects after Streams, in any order
	}{
		{"missing stream is created", nil, ours},
		{"all ours plus an extra subject", append(slices.Clone(ours), "audit.>"), append(slices.Clone(ours), "audit.>")},
		{"a subject missing", []string{SubjectTagged, SubjectFiredPrefix + ">", "audit.>"},
			[]string{SubjectTagged, SubjectFiredPrefix + ">", "audit.>", SubjectDeadLetter, SubjectRuleState}},
		{"every subject missing", []string{"audit.>"}, append([]string{"audit.>"}, ours...)},
		{"captured by a wildcard", []string{"ttp.>"}, []string{"ttp.>"}},
		{"a narrower subject is widened", []string{SubjectTagged, SubjectDeadLetter, SubjectRuleState, SubjectFiredPrefix + "T1082"}, ours},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			_, js := natstest.Start(t).Connect(t)
			custom := jetstream.StreamConfig{Name: DefaultOutStream, Subjects: tc.existing, MaxAge: 72 * time.Hour,
				Duplicates: 30 * time.Second, MaxBytes: 64 << 20, Description: "operator's own"}
			if tc.existing != nil {
				if _, err := js.CreateStream(ctx, custom); err != nil {
					t.Fatal(err)
				}
			}
			// Twice: a second start changes nothing either.
			for range 2 {
				if err := Streams(ctx, js, Config{}); err != nil {
					t.Fatal(err)
				}
			}
			s, err := js.Stream(ctx, DefaultOutStream)
			if err != nil {
				t.Fatal(err)
			}
			got := s.CachedInfo().Config
			if !sameSet(got.Subjects, tc.want) {
				t.Errorf("subjects %v, want %v", got.Subjects, tc.want)
			}
			for _, subject := range []string{SubjectTagged, SubjectFiredPrefix + "T1098.004", SubjectDeadLetter, SubjectRuleState} {
				if !slices.ContainsFunc(got.Subjects, func(p string) bool { return subjectCovers(p, subject) }) {
					t.Errorf("the stream does not capture %s: %v", subject, got.Subjects)
				}
			}
			want := custom
			if tc.existing == nil {
				want = jetstream.StreamConfig{Duplicates: 2 * time.Minute, MaxAge: DefaultOutMaxAge, MaxBytes: -1, // no byte limit
					Description: "ttp output: tagged envelopes, rule.fired, dead letters, rule state changes"}
			}
			if got.MaxAge != want.MaxAge || got.Duplicates != want.Duplicates || got.MaxBytes != want.MaxBytes || got.Description != want.Description {
				t.Errorf("max age %v, duplicates %v, max bytes %d, description %q; want %v, %v, %d, %q",
					got.MaxAge, got.Duplicates, got.MaxBytes, got.Description, want.MaxAge, want.Duplicates, want.MaxBytes, want.Description)
			}
		})
	}
}

// TestStreamsLeaveInputAlone: an existing input stream is used as it is, whatever its
// settings; a missing one is created with ttp's.
func TestStreamsLeaveInputAlone(t *testing.T) {
	ctx := context.Background()
	_, js := natstest.Start(t).Connect(t)
	custom := jetstream.StreamConfig{Name: DefaultInStream, Subjects: []string{"decnet.attacker.>", "decnet.auth.>"},
		MaxAge: 24 * time.Hour, MaxMsgSize: 4096, Duplicates: 10 * time.Second}
	if _, err := js.CreateStream(ctx, custom); err != nil {
		t.Fatal(err)
	}
	if err := Streams(ctx, js, Config{}); err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(ctx, DefaultInStream)
	if err != nil {
		t.Fatal(err)
	}
	got := s.CachedInfo().Config
	if !slices.Equal(got.Subjects, custom.Subjects) || got.MaxAge != custom.MaxAge || got.MaxMsgSize != custom.MaxMsgSize ||
		got.Duplicates != custom.Duplicates || got.Description != "" {
		t.Errorf("the operator's input stream was changed: %+v", got)
	}

	// Missing: created with ttp's settings, its message size limit from MaxMessage.
	_, js = natstest.Start(t).Connect(t)
	if err := Streams(ctx, js, Config{Prefix: "net.", MaxMessage: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	if s, err = js.Stream(ctx, DefaultInStream); err != nil {
		t.Fatal(err)
	}
	if got := s.CachedInfo().Config; !slices.Equal(got.Subjects, []string{"net.>"}) || got.MaxMsgSize != 4<<20 {
		t.Errorf("created input stream: subjects %v, max message size %d", got.Subjects, got.MaxMsgSize)
	}
}

// TestSubjectCovers: the subject matching that decides whether a subject is missing.
func TestSubjectCovers(t *testing.T) {
	for _, tc := range []struct {
		pattern, subject string
		want             bool
	}{
		{"ttp.tagged", "ttp.tagged", true},
		{"ttp.tagged", "ttp.deadletter", false},
		{"ttp.>", "ttp.tagged", true},
		{"ttp.>", "ttp.rule.fired.>", true},
		{"ttp.>", "ttp", false},
		{">", "ttp.rule.fired.>", true},
		{"ttp.*", "ttp.tagged", true},
		{"ttp.*", "ttp.rule.state", false},
		{"ttp.rule.fired.>", "ttp.rule.fired.>", true},
		{"ttp.rule.fired.>", "ttp.rule.fired.T1098.004", true},
		{"ttp.rule.fired.*", "ttp.rule.fired.>", false},
		{"ttp.rule.fired.T1082", "ttp.rule.fired.>", false},
		{"ttp.rule.*", "ttp.rule.*", true},
		{"ttp.rule.state", "ttp.rule.*", false},
		{"ttp.tagged.x", "ttp.tagged", false},
	} {
		if got := subjectCovers(tc.pattern, tc.subject); got != tc.want {
			t.Errorf("subjectCovers(%q, %q) = %v, want %v", tc.pattern, tc.subject, got, tc.want)
		}
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// TestStreamsBounded: the streams ttp creates have a maximum age, so the zero-configuration
// daemon does not keep every acked event for ever.
func TestStreamsBounded(t *testing.T) {
	srv := natstest.Start(t)
	_, js := srv.Connect(t)
	ctx := context.Background()
	if err := Streams(ctx, js, Config{}); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]time.Duration{DefaultInStream: DefaultInMaxAge, DefaultOutStream: DefaultOutMaxAge} {
		s, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.CachedInfo().Config.MaxAge; got != want {
			t.Errorf("%s: max age %v, want %v", name, got, want)
		}
	}
}
