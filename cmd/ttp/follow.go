package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/decnet/ttp/abi"
	"github.com/decnet/ttp/bus"
	"github.com/decnet/ttp/ingest"
	"github.com/decnet/ttp/ingest/cowrie"
)

// ingestSpecs is the repeatable --ingest flag: FORMAT:PATH, one log per flag.
type ingestSpecs []string

func (s *ingestSpecs) String() string { return strings.Join(*s, ",") }

func (s *ingestSpecs) Set(v string) error {
	format, path, ok := strings.Cut(v, ":")
	if !ok || format != "cowrie" || path == "" {
		return fmt.Errorf("want cowrie:PATH, got %q", v)
	}
	*s = append(*s, v)
	return nil
}

// followState is what a follower stores, in DATA/ingest/cowrie-<hash of the path>.json, each
// time the bus has acknowledged every event of the lines before Offset: the file it was in
// (device and inode, so a rotation while the daemon was down is recognised), the offset of the
// first line not yet read, and the Decoder's open sessions at that line. A restart restores
// the sessions and reads on from Offset: lines before it are never read again, and lines after
// it (read, maybe published, before a crash) are read again and make the same events, which the
// tag store keeps once.
type followState struct {
	Path    string          `json:"path"`
	Dev     uint64          `json:"dev"`
	Ino     uint64          `json:"ino"`
	Offset  int64           `json:"offset"`
	Lines   int64           `json:"lines"` // lines read in all, for the log
	Decoder json.RawMessage `json:"decoder"`
	Saved   time.Time       `json:"saved"`
}

// follower tails one live Cowrie log (`ttp serve --ingest cowrie:PATH`) and publishes its
// events on the bus input subjects, as a producer beside the sensor would. It follows
// Cowrie's daily rotation (the file renamed, a new one created: the old file is read to its
// end first, and every rotated file after it, by inode, when it fell behind) and truncation
// (copytruncate: read again from 0). A last line without its newline waits for it: Cowrie
// writes whole lines.
type follower struct {
	path, statePath, prefix string
	js                      jetstream.JetStream
	log                     *slog.Logger
	poll                    time.Duration
	checkpoint              time.Duration // at most this long between two saved states
	idle                    time.Duration // the log quiet this long: close idle sessions by the wall clock

	dec     *cowrie.Decoder
	f       *os.File
	dev     uint64
	ino     uint64
	off     int64  // offset of the first byte not yet consumed as a whole line
	pending []byte // bytes read after off, without a newline yet
	skip    bool   // inside a line longer than cowrie.MaxLine: drop up to the next newline
	lines   int64
	futures []jetstream.PubAckFuture
	evs     []abi.Event
	dirty   bool // something consumed since the last saved state
	saved   time.Time
	quiet   time.Time // when the log last grew
}

func newFollower(dataDir, path, prefix string, js jetstream.JetStream, log *slog.Logger) (*follower, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256([]byte(abs))
	dir := filepath.Join(dataDir, "ingest")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("ingest: %w", err)
	}
	return &follower{path: abs, statePath: filepath.Join(dir, "cowrie-"+hex.EncodeToString(sum[:6])+".json"), prefix: prefix, js: js,
		log: log.With("ingest", "cowrie:"+path), poll: 200 * time.Millisecond, checkpoint: time.Second, idle: cowrie.DefaultIdleTimeout,
		dec: cowrie.New(cowrie.Config{})}, nil
}

func fileID(fi os.FileInfo) (dev, ino uint64) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Dev), st.Ino
	}
	return 0, 0
}

// run follows the log until ctx ends. Errors of the bus are retried; only a state it cannot
// write or read stops it.
func (fl *follower) run(ctx context.Context) error {
	if err := fl.resume(); err != nil {
		return err
	}
	defer func() {
		if fl.f != nil {
			fl.f.Close()
		}
	}()
	buf := make([]byte, 256<<10)
	for ctx.Err() == nil {
		if fl.f == nil && !fl.openAt(fl.path, 0) {
			sleep(ctx, fl.poll)
			continue
		}
		n, err := fl.f.Read(buf)
		if n > 0 {
			fl.quiet = time.Now()
			if perr := fl.consume(ctx, buf[:n]); perr != nil {
				if ctx.Err() != nil {
					break
				}
				return perr
			}
			continue
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("ingest: %s: %w", fl.path, err)
		}
		// At the end of what is there: save, then look for a rotation or a truncation.
		if err := fl.save(ctx, false); err != nil {
			if ctx.Err() != nil {
				break
			}
			fl.log.Warn("ingest: state not saved, will retry", "err", err)
		}
		fl.checkFile()
		if !fl.quiet.IsZero() && time.Since(fl.quiet) > fl.idle && fl.dec.Open() > 0 {
			fl.publishAll(ctx, fl.dec.Expire(time.Now(), fl.evs[:0]))
			fl.dirty = true
		}
		sleep(ctx, fl.poll)
	}
	// Stopping: what was read and published is saved once the bus acknowledged it.
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return fl.save(sctx, true)
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// resume reads the stored state, restores the open sessions and opens the file where the
// last run stopped: the live file at the stored offset, or, when the live file is another one
// now (rotated while the daemon was down), the rotated file found by its inode, read to its
// end before the new one.
func (fl *follower) resume() error {
	b, err := os.ReadFile(fl.statePath)
	if errors.Is(err, os.ErrNotExist) {
		fl.log.Info("ingest: no stored offset; reading the log from its start", "state", fl.statePath)
		return nil
	}
	if err != nil {
		return fmt.Errorf("ingest: %w", err)
	}
	var st followState
	if err := json.Unmarshal(b, &st); err != nil {
		return fmt.Errorf("ingest: %s: %w", fl.statePath, err)
	}
	if len(st.Decoder) > 0 {
		if err := fl.dec.Restore(st.Decoder); err != nil {
			return fmt.Errorf("ingest: %s: %w", fl.statePath, err)
		}
	}
	fl.lines = st.Lines
	if fi, err := os.Stat(fl.path); err == nil {
		if dev, ino := fileID(fi); dev == st.Dev && ino == st.Ino {
			if fi.Size() < st.Offset {
				fl.log.Warn("ingest: the log is shorter than the stored offset (truncated): reading it from its start", "offset", st.Offset, "size", fi.Size())
				st.Offset = 0
			}
			fl.openAt(fl.path, st.Offset)
			fl.log.Info("ingest: resuming", "offset", st.Offset, "open_sessions", fl.dec.Open(), "lines_before", st.Lines)
			return nil
		}
	}
	// Rotated while we were down: find the file we were reading by its inode.
	for _, p := range fl.sequence() {
		fi, err := os.Stat(p)
		if err != nil {
			continue
		}
		if dev, ino := fileID(fi); dev == st.Dev && ino == st.Ino && fl.openAt(p, st.Offset) {
			fl.log.Info("ingest: the log rotated while stopped; finishing the rotated file first", "file", p, "offset", st.Offset)
			return nil
		}
	}
	fl.log.Warn("ingest: the log rotated while stopped and the file read last is gone (deleted or compressed): its unread end is lost; reading the new log from its start",
		"offset", st.Offset)
	return nil
}

// openAt opens path at off, as the file being read; false when it does not exist (yet).
func (fl *follower) openAt(path string, off int64) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return false
	}
	if off > 0 {
		if _, err := f.Seek(off, io.SeekStart); err != nil {
			f.Close()
			return false
		}
	}
	if fl.f != nil {
		fl.f.Close()
	}
	fl.f, fl.off, fl.pending, fl.skip = f, off, fl.pending[:0], false
	fl.dev, fl.ino = fileID(fi)
	return true
}

// checkFile, at the end of the current file, goes back to the start of a truncated live file
// (copytruncate), or, when the current file is no longer the live one (it rotated), and has
// been read to its end, goes on with the next file of the rotation: the next rotated file
// when the daemon fell more than one rotation behind (after a restart), else the live file.
func (fl *follower) checkFile() {
	if fi, err := os.Stat(fl.path); err == nil {
		if dev, ino := fileID(fi); dev == fl.dev && ino == fl.ino {
			if fi.Size() < fl.off+int64(len(fl.pending)) {
				fl.log.Warn("ingest: the log was truncated; reading it from its start", "offset", fl.off, "size", fi.Size())
				fl.openAt(fl.path, 0)
				fl.dirty = true
			}
			return
		}
	}
	// Rotated. Read what the writer appended to it before the rotation, then move on.
	if n, _ := io.Copy(io.Discard, io.NewSectionReader(fl.f, fl.off+int64(len(fl.pending)), 1)); n > 0 {
		return // more in this file: the next read gets it
	}
	next := fl.next()
	if next == "" {
		return // the new live file is not there yet
	}
	if len(fl.pending) > 0 {
		fl.log.Warn("ingest: the rotated file ended inside a line; it is dropped", "bytes", len(fl.pending))
	}
	if fl.openAt(next, 0) {
		fl.log.Info("ingest: the log rotated; reading the next file", "file", next)
		fl.dirty = true
	}
}

// sequence returns the files of the log oldest first: the rotated ones (the live file's name
// plus a suffix, ordered by ingest.SortRotated), then the live file.
func (fl *follower) sequence() []string {
	dir, base := filepath.Dir(fl.path), filepath.Base(fl.path)
	entries, _ := os.ReadDir(dir)
	var rotated []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), base+".") && !strings.HasSuffix(e.Name(), ".gz") {
			rotated = append(rotated, filepath.Join(dir, e.Name()))
		}
	}
	return append(ingest.SortRotated(rotated), fl.path)
}

// next returns the file after the current one in the rotation sequence ("" when there is none
// yet); the live file when the current one is not in it any more.
func (fl *follower) next() string {
	seq := fl.sequence()
	found := false
	for _, p := range seq {
		fi, err := os.Stat(p)
		if err != nil {
			continue
		}
		dev, ino := fileID(fi)
		if found {
			return p
		}
		found = dev == fl.dev && ino == fl.ino
	}
	if !found {
		if _, err := os.Stat(fl.path); err == nil {
			return fl.path
		}
	}
	return ""
}

// consume splits what was read into lines, decodes and publishes them.
func (fl *follower) consume(ctx context.Context, b []byte) error {
	fl.pending = append(fl.pending, b...)
	rest := fl.pending
	for {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			break
		}
		line := rest[:i]
		rest = rest[i+1:]
		fl.off += int64(i + 1)
		fl.dirty = true
		if fl.skip {
			fl.skip = false
			continue
		}
		fl.lines++
		evs, err := fl.dec.Decode(line, fl.evs[:0])
		if err != nil {
			fl.log.Warn("ingest: bad line", "err", &cowrie.LineError{File: fl.path, Line: fl.lines, Err: err})
		}
		if err := fl.publishAll(ctx, evs); err != nil {
			return err
		}
	}
	fl.pending = append(fl.pending[:0], rest...)
	if len(fl.pending) > cowrie.MaxLine {
		fl.log.Warn("ingest: line longer than 1 MiB skipped", "offset", fl.off)
		fl.off += int64(len(fl.pending))
		fl.pending, fl.skip = fl.pending[:0], true
	}
	if time.Since(fl.saved) >= fl.checkpoint {
		return fl.save(ctx, false)
	}
	return nil
}

// publishAll publishes events on their kinds' input subjects with a Nats-Msg-Id of kind and
// source_id, so that a line read again within the stream's duplicate window is one message
// (and after it, one tag: the ids are the same).
func (fl *follower) publishAll(ctx context.Context, evs []abi.Event) error {
	for i := range evs {
		data, err := json.Marshal(&evs[i])
		if err != nil {
			return fmt.Errorf("ingest: %w", err)
		}
		msg := &nats.Msg{Subject: bus.SubjectFor(fl.prefix, evs[i].SourceKind), Data: data}
		for {
			fut, err := fl.js.PublishMsgAsync(msg, jetstream.WithMsgID(evs[i].SourceKind+":"+evs[i].SourceID))
			if err == nil {
				fl.futures = append(fl.futures, fut)
				break
			}
			fl.log.Warn("ingest: publish failed, retrying", "err", err)
			if err := fl.waitAcks(ctx); err != nil && ctx.Err() != nil {
				return ctx.Err()
			}
			sleep(ctx, time.Second)
			if ctx.Err() != nil {
				return ctx.Err()
			}
		}
		if len(fl.futures) >= 1024 {
			if err := fl.waitAcks(ctx); err != nil {
				return err
			}
		}
	}
	fl.evs = evs[:0]
	return nil
}

// waitAcks waits until the bus acknowledged every publish. A refused one is published again
// until it is acknowledged: an event is never skipped.
func (fl *follower) waitAcks(ctx context.Context) error {
	for len(fl.futures) > 0 {
		f := fl.futures[0]
		select {
		case <-f.Ok():
			fl.futures = fl.futures[1:]
		case err := <-f.Err():
			fl.log.Warn("ingest: publish not acknowledged, publishing again", "err", err)
			sleep(ctx, 500*time.Millisecond)
			nf, perr := fl.js.PublishMsgAsync(f.Msg(), jetstream.WithMsgID(f.Msg().Header.Get(jetstream.MsgIDHeader)))
			if perr == nil {
				fl.futures[0] = nf
			}
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(30 * time.Second):
			return fmt.Errorf("ingest: no acknowledgement from the bus in 30 s")
		}
	}
	fl.futures = fl.futures[:0]
	return nil
}

// save writes the state atomically (a temporary file, fsynced, renamed over the old one)
// once every publish so far is acknowledged. Without force it does nothing when nothing was
// consumed since the last save.
func (fl *follower) save(ctx context.Context, force bool) error {
	if !fl.dirty && !force {
		return nil
	}
	if err := fl.waitAcks(ctx); err != nil {
		return err
	}
	dec, err := fl.dec.State()
	if err != nil {
		return err
	}
	b, err := json.Marshal(followState{Path: fl.path, Dev: fl.dev, Ino: fl.ino, Offset: fl.off, Lines: fl.lines, Decoder: dec, Saved: time.Now().UTC()})
	if err != nil {
		return err
	}
	tmp := fl.statePath + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("ingest: state: %w", err)
	}
	if _, err := f.Write(b); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, fl.statePath)
	}
	if err != nil {
		return fmt.Errorf("ingest: state %s: %w", fl.statePath, err)
	}
	fl.dirty, fl.saved = false, time.Now()
	return nil
}
