// Package tagsource reads the tags a report is made of, from the two places they live: the
// JSONL that `ttp tag` writes (so that a layer or a report needs no daemon) and a tag store
// (what `ttp serve` filled). Both give a Set: the tags in event-time order and, when the
// JSONL ended with one, the ingest summary line (ingest.SummaryLine) that says how much input
// stood behind them.
//
// It sits beside store and ingest and above abi; package navigator and package report read
// a Set and know nothing of where it came from.
package tagsource

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/decnet/ttp/abi"
	"github.com/decnet/ttp/ingest"
	"github.com/decnet/ttp/store"
)

// Set is the tags one report or layer is made from.
type Set struct {
	// Tags are ordered by event time (Time), then tag_uuid, so that every consumer walks
	// them in the order the activity happened.
	Tags []abi.Tag
	// Ingest is the summary `ttp tag` wrote as its last line, nil when the input had none
	// (a store, or tags from a ttp older than the line). Several summaries, as in the
	// concatenated output of several runs, are merged (Merge).
	Ingest *ingest.Counts
	// Source names where the tags came from, for a report's footer: the file name, "-" for
	// standard input, or the store URL without its password.
	Source string
}

// ErrNotTags is returned, wrapped with the line number, for a JSONL line that is neither a
// tag nor a summary line: most often an events file given where the tags of `ttp tag` were
// meant.
var ErrNotTags = errors.New("tagsource: not a tag")

// maxLine is the longest tag line read; a tag's evidence is bounded by the event it came
// from (256 KiB by default), so 4 MiB leaves room.
const maxLine = 4 << 20

// ReadJSONL reads tags as `ttp tag --format jsonl` writes them, one per line. Blank lines are
// skipped; a line whose only key is ingest.SummaryKey is the summary (merged when there are
// several); any other line must be a tag with a tag_uuid and a technique_id, or ReadJSONL
// stops with the line number, since a tags file with a bad line is the wrong file rather than
// one to make a partial report of.
func ReadJSONL(r io.Reader, source string) (*Set, error) {
	set := &Set{Source: source}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxLine)
	n := 0
	for sc.Scan() {
		n++
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		if c, ok, err := summary(line); err != nil {
			return nil, fmt.Errorf("%s:%d: summary line: %w", source, n, err)
		} else if ok {
			set.Ingest = Merge(set.Ingest, c)
			continue
		}
		var t abi.Tag
		if err := json.Unmarshal(line, &t); err != nil {
			return nil, fmt.Errorf("%s:%d: %w: %v", source, n, ErrNotTags, err)
		}
		if t.TagUUID == "" || t.TechniqueID == "" {
			return nil, fmt.Errorf("%s:%d: %w: no tag_uuid or technique_id (an events file? tag it first: ttp tag FILE > tags.jsonl)", source, n, ErrNotTags)
		}
		set.Tags = append(set.Tags, t)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s:%d: %w", source, n+1, err)
	}
	set.sort()
	return set, nil
}

// ReadFile is ReadJSONL on a file; "-" reads standard input.
func ReadFile(path string) (*Set, error) {
	if path == "-" {
		return ReadJSONL(os.Stdin, "-")
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ReadJSONL(f, path)
}

// ReadStore reads the tags of the store that rawURL names (any form store.Open takes: a
// SQLite path or URL, a postgres:// URL) observed at or after since (zero: all of them).
// A store keeps no ingest summary, so Ingest is nil.
func ReadStore(ctx context.Context, rawURL string, since time.Time) (*Set, error) {
	// store.Open creates a missing SQLite file, which for a reader only hides a typo.
	if path, ok := sqlitePath(rawURL); ok {
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("tagsource: store %s: %w", rawURL, err)
		}
	}
	st, err := store.Open(ctx, rawURL)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	tags, err := st.Tags(ctx, store.Filter{Since: since})
	if err != nil {
		return nil, err
	}
	set := &Set{Tags: tags, Source: redact(rawURL)}
	set.sort()
	return set, nil
}

// summary recognises the summary line: an object whose only key is ingest.SummaryKey. The
// cheap test comes first, since a tag line is the common case.
func summary(line []byte) (*ingest.Counts, bool, error) {
	if !bytes.Contains(line, []byte(`"`+ingest.SummaryKey+`"`)) {
		return nil, false, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(line, &m); err != nil || len(m) != 1 {
		return nil, false, nil // not the summary line: let the tag decoder say what is wrong
	}
	raw, ok := m[ingest.SummaryKey]
	if !ok {
		return nil, false, nil
	}
	var c ingest.Counts
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, false, err
	}
	return &c, true, nil
}

// Merge adds b's counts to a's, as for the concatenated output of two `ttp tag` runs: sums of
// the counters, the union of files (in order) and sensors (sorted), the earliest First and
// the latest Last. Either may be nil; the result is a new value.
func Merge(a, b *ingest.Counts) *ingest.Counts {
	if a == nil || b == nil {
		if c := cmp.Or(a, b); c != nil {
			cp := *c
			return &cp
		}
		return nil
	}
	out := ingest.Counts{
		Input:     a.Input,
		Files:     slices.Concat(a.Files, b.Files),
		Lines:     a.Lines + b.Lines,
		Events:    a.Events + b.Events,
		Skipped:   a.Skipped + b.Skipped,
		Malformed: a.Malformed + b.Malformed,
		First:     a.First,
		Last:      a.Last,
	}
	if a.Input != b.Input {
		out.Input = a.Input + "+" + b.Input
	}
	if len(a.Unknown)+len(b.Unknown) > 0 {
		out.Unknown = map[string]int64{}
		for _, m := range []map[string]int64{a.Unknown, b.Unknown} {
			for k, v := range m {
				out.Unknown[k] += v
			}
		}
	}
	out.Sensors = slices.Compact(slices.Sorted(slices.Values(slices.Concat(a.Sensors, b.Sensors))))
	if out.First.IsZero() || !b.First.IsZero() && b.First.Before(out.First) {
		out.First = b.First
	}
	if b.Last.After(out.Last) {
		out.Last = b.Last
	}
	return &out
}

// Time is when the event behind t happened: its observed_at, else the time its tag_uuid
// holds (tags written before Tag.ObservedAt existed), else when it was tagged. Every report
// and layer places a tag by this time, and --since filters by it.
func Time(t abi.Tag) time.Time {
	if !t.ObservedAt.IsZero() {
		return t.ObservedAt
	}
	if at, ok := abi.TagUUIDTime(t.TagUUID); ok && !at.IsZero() {
		return at
	}
	return t.CreatedAt
}

// TechniqueID is the most specific technique a tag names: its sub_technique_id ("T1059.004")
// when it has one, else its technique_id ("T1082"). A layer entry and a report cell are keyed
// by it, as the Navigator keys a sub-technique by its full id.
func TechniqueID(t abi.Tag) string { return cmp.Or(t.SubTechniqueID, t.TechniqueID) }

// Since returns the tags of s whose event happened at or after since (Time), in a new Set
// with the same summary: the summary still describes the whole input, which a report says.
func (s *Set) Since(since time.Time) *Set {
	out := *s
	if since.IsZero() {
		return &out
	}
	out.Tags = nil
	for _, t := range s.Tags {
		if !Time(t).Before(since) {
			out.Tags = append(out.Tags, t)
		}
	}
	return &out
}

// Span returns the earliest and latest event time of the tags (zero times when there are
// none). It does not rely on the order of Tags, which a caller building a Set may not keep.
func (s *Set) Span() (first, last time.Time) {
	for i, t := range s.Tags {
		at := Time(t)
		if i == 0 || at.Before(first) {
			first = at
		}
		if i == 0 || at.After(last) {
			last = at
		}
	}
	return first, last
}

// Sensors names the honeypots behind the tags: the sensors of the ingest summary when there
// is one, else the distinct decky_ids of the tags, sorted.
func (s *Set) Sensors() []string {
	if s.Ingest != nil && len(s.Ingest.Sensors) > 0 {
		return s.Ingest.Sensors
	}
	var out []string
	for _, t := range s.Tags {
		if t.DeckyID != "" {
			out = append(out, t.DeckyID)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func (s *Set) sort() {
	slices.SortStableFunc(s.Tags, func(a, b abi.Tag) int {
		return cmp.Or(Time(a).Compare(Time(b)), strings.Compare(a.TagUUID, b.TagUUID))
	})
}

// sqlitePath is the file a SQLite store URL names, read as store.Open reads it (a plain
// path is taken whole, '?' included), ok false for PostgreSQL or a URL store.Open refuses.
func sqlitePath(raw string) (string, bool) {
	scheme, _, _ := strings.Cut(raw, ":")
	switch scheme {
	case "postgres", "postgresql":
		return "", false
	case "sqlite", "sqlite3":
	default:
		return raw, !strings.Contains(raw, "://")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", false
	}
	switch {
	case u.Opaque != "":
		return u.Opaque, true
	case u.Host == "" || u.Host == "localhost":
		return u.Path, u.Path != ""
	default:
		return u.Host + u.Path, true
	}
}

// redact removes a password from a store URL, which ends up in a report's footer.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	return u.Redacted()
}

// ParseSince reads a --since value: a duration back from now ("24h", "90m") or an RFC 3339
// time ("2026-11-27T00:00:00Z"), the second being what a report over an old log needs. The
// empty string is the zero time (no filter).
func ParseSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, fmt.Errorf("--since %q: a negative duration", s)
		}
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("--since %q: want a duration (24h) or an RFC 3339 time", s)
}
