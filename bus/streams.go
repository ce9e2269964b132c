package bus

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
)

// outputSubjects are the subjects the worker publishes on the output stream. The stream must
// capture every one of them: a publication on a subject no stream captures is never stored,
// so Streams adds a missing one to an operator's own stream.
func outputSubjects() []string {
	return []string{SubjectTagged, SubjectFiredPrefix + ">", SubjectDeadLetter, SubjectRuleState}
}

// ensureStream creates the stream want describes when no stream of its name exists. An
// existing stream keeps the configuration its operator gave it (limits, replicas, duplicate
// window, placement...), because a start-up must not undo an operator's settings. When
// addSubjects is set and the existing stream's subjects do not capture every subject of want,
// the missing ones are added and nothing else is changed; otherwise the stream is left alone.
func ensureStream(ctx context.Context, js jetstream.JetStream, want jetstream.StreamConfig, addSubjects bool) error {
	// Two attempts: a worker starting at the same moment may create the stream between our
	// look-up and our create, with a configuration that differs from ours (an older version).
	for attempt := 0; ; attempt++ {
		s, err := js.Stream(ctx, want.Name)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			_, err = js.CreateStream(ctx, want)
			if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) && attempt == 0 {
				continue // created meanwhile: treat it as an existing stream
			}
			if err != nil {
				return fmt.Errorf("bus: create stream %s: %w", want.Name, err)
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("bus: stream %s: %w", want.Name, err)
		}
		if !addSubjects {
			return nil
		}
		have := s.CachedInfo().Config
		subjects, changed := withSubjects(have.Subjects, want.Subjects)
		if !changed {
			return nil
		}
		have.Subjects = subjects
		if _, err := js.UpdateStream(ctx, have); err != nil {
			return fmt.Errorf("bus: stream %s: subjects %v to %v: %w", want.Name, s.CachedInfo().Config.Subjects, subjects, err)
		}
		return nil
	}
}

// withSubjects returns have plus every subject of need that no subject of have captures, and
// whether it added any. A subject of have that an added one captures is dropped, since the
// server refuses a stream whose subjects overlap: what the stream captured before, it still
// captures. have is not modified.
func withSubjects(have, need []string) ([]string, bool) {
	out := slices.Clone(have)
	changed := false
	for _, n := range need {
		if slices.ContainsFunc(out, func(h string) bool { return subjectCovers(h, n) }) {
			continue
		}
		out = slices.DeleteFunc(out, func(h string) bool { return subjectCovers(n, h) })
		out = append(out, n)
		changed = true
	}
	return out, changed
}

// subjectCovers reports whether every subject that subject matches is also matched by
// pattern (both may hold the wildcards * and >), which is what decides whether a stream with
// pattern among its subjects already stores what is published on subject.
func subjectCovers(pattern, subject string) bool {
	pt, st := strings.Split(pattern, "."), strings.Split(subject, ".")
	for i, p := range pt {
		if p == ">" {
			return len(st) > i
		}
		if i >= len(st) {
			return false
		}
		switch {
		case p == "*":
			if st[i] == ">" {
				return false
			}
		case p != st[i]:
			return false
		}
	}
	return len(pt) == len(st)
}
