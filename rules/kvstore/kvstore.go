// Package kvstore is the rule Store of a swarm: definitions and states live in two NATS
// JetStream key-value buckets that every worker watches, so one `ttp rules push` or one
// `ttp rules state` reaches all of them, and state survives restarts.
//
// Definitions are the rule files' bytes under the rule id (bucket ttp-rules); states are JSON
// under the rule id (bucket ttp-rule-state). A definition is parsed exactly as a file is
// (rules.Parse of "<id>.yaml"), so a rule read from KV has the version it has on disk. A
// state's expiry is carried out by deleting its key (guarded by its revision), once for the
// whole swarm. When the watch ends (a lost connection), it is re-established with back-off
// from the last revision seen, and the last good rules stay live meanwhile.
package kvstore

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/decnet/ttp/rules"
)

// Default bucket names.
const (
	DefaultRulesBucket = "ttp-rules"
	DefaultStateBucket = "ttp-rule-state"
)

// Store implements rules.Store over two KV buckets.
type Store struct {
	js           jetstream.JetStream
	defs, states jetstream.KeyValue
	feed         *rules.Feed
	log          *slog.Logger
	cancel       context.CancelFunc
	done         sync.WaitGroup

	mu     sync.Mutex
	hashes map[string][sha256.Size]byte
	revs   map[string]uint64 // state key -> revision, for guarded expiry deletes
}

// Config is what a Store is opened with; its zero value is the defaults.
type Config struct {
	// RulesBucket and StateBucket name the buckets; "": DefaultRulesBucket and
	// DefaultStateBucket.
	RulesBucket, StateBucket string
	// Logger receives loads and rejections; nil: slog.Default().
	Logger *slog.Logger
	// Replicas is what a bucket is created with in a clustered JetStream (0: 1; 3 on a
	// three-node cluster lets the buckets survive the loss of one node). A bucket that
	// exists keeps its own.
	Replicas int
	// StatesOnly makes the store carry rule states only, for a daemon whose definitions come
	// from a directory: state is shared through the bucket either way.
	StatesOnly bool
}

// withDefaults is c with its zero fields at their defaults, or an error naming the field
// that cannot be.
func (c Config) withDefaults() (Config, error) {
	if c.RulesBucket == "" {
		c.RulesBucket = DefaultRulesBucket
	}
	if c.StateBucket == "" {
		c.StateBucket = DefaultStateBucket
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.Replicas < 1 || c.Replicas > 5 {
		return c, fmt.Errorf("kvstore: Config.Replicas %d: JetStream keeps 1 to 5 copies", c.Replicas)
	}
	return c, nil
}

// Buckets binds the two buckets (the states bucket alone with StatesOnly), creating a missing
// one. A bucket that exists is used with the configuration it has: every start of every
// worker and of `ttp rules push` runs this, and an update with ours would undo an operator's
// settings (a worker started with the default one replica would scale a three-replica bucket
// down), as the streams are left alone (bus.Streams).
func Buckets(ctx context.Context, js jetstream.JetStream, cfg Config) (defs, states jetstream.KeyValue, err error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, nil, err
	}
	// With StatesOnly the definitions come from a directory: an empty definitions bucket
	// beside it would only suggest that rules are missing, so it is not made (defs is nil).
	if !c.StatesOnly {
		if defs, err = bucket(ctx, js, jetstream.KeyValueConfig{Bucket: c.RulesBucket, Description: "ttp rule definitions (YAML by rule id)", History: 5, Replicas: c.Replicas}); err != nil {
			return nil, nil, err
		}
	}
	if states, err = bucket(ctx, js, jetstream.KeyValueConfig{Bucket: c.StateBucket, Description: "ttp rule states (JSON by rule id)", History: 5, Replicas: c.Replicas}); err != nil {
		return nil, nil, err
	}
	return defs, states, nil
}

// bucket binds the bucket cfg names, or creates it with cfg when it does not exist. Two
// attempts, as for the streams: another worker starting at the same moment may create it
// between our look-up and our create, with a configuration that differs from ours.
func bucket(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	for attempt := 0; ; attempt++ {
		kv, err := js.KeyValue(ctx, cfg.Bucket)
		if errors.Is(err, jetstream.ErrBucketNotFound) {
			kv, err = js.CreateKeyValue(ctx, cfg)
			if errors.Is(err, jetstream.ErrBucketExists) && attempt == 0 {
				continue // created meanwhile: bind it as it is
			}
		}
		if err != nil {
			return nil, fmt.Errorf("kvstore: bucket %s: %w", cfg.Bucket, err)
		}
		return kv, nil
	}
}

// Open binds the buckets, loads everything in them, and watches both until Close. It returns
// once the initial values are loaded, so a subscriber's first view is complete.
func Open(ctx context.Context, js jetstream.JetStream, cfg Config) (*Store, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	defs, states, err := Buckets(ctx, js, c)
	if err != nil {
		return nil, err
	}
	s := &Store{js: js, defs: defs, states: states, feed: rules.NewFeed(nil), log: c.Logger,
		hashes: map[string][sha256.Size]byte{}, revs: map[string]uint64{}}
	s.feed.OnExpire = s.expire
	wctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	ready := make(chan struct{}, 2)
	watches := []struct {
		kv     jetstream.KeyValue
		handle func(jetstream.KeyValueEntry)
	}{{states, s.onState}, {defs, s.onDefinition}}
	if c.StatesOnly {
		watches = watches[:1]
	}
	for _, b := range watches {
		s.done.Add(1)
		go func() {
			defer s.done.Done()
			s.watch(wctx, b.kv, b.handle, ready)
		}()
	}
	for range watches {
		select {
		case <-ready:
		case <-ctx.Done():
			s.Close()
			return nil, ctx.Err()
		}
	}
	return s, nil
}

// watch follows one bucket, re-watching from the last revision with back-off when the
// watch ends, until ctx ends. ready gets one value once the initial values are in.
func (s *Store) watch(ctx context.Context, kv jetstream.KeyValue, handle func(jetstream.KeyValueEntry), ready chan<- struct{}) {
	var last uint64
	signalled := false
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		var opts []jetstream.WatchOpt
		if last > 0 {
			opts = append(opts, jetstream.ResumeFromRevision(last+1))
		}
		w, err := kv.WatchAll(ctx, opts...)
		if err != nil && (errors.Is(err, nats.ErrConnectionDraining) || errors.Is(err, nats.ErrConnectionClosed)) {
			return // the daemon is stopping: nothing to retry or warn about
		}
		if err != nil {
			s.log.Warn("rules bucket watch failed; last good rules stay live, retrying", "bucket", kv.Bucket(), "err", err, "retry_in", backoff)
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
				return
			}
			backoff = min(2*backoff, 30*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		for e := range w.Updates() {
			if e == nil {
				if !signalled {
					signalled = true
					ready <- struct{}{}
				}
				continue
			}
			if e.Revision() > last {
				last = e.Revision()
			}
			handle(e)
		}
		w.Stop()
		if last > 0 && !signalled {
			signalled = true
			ready <- struct{}{}
		}
	}
}

func (s *Store) onDefinition(e jetstream.KeyValueEntry) {
	id := e.Key()
	file := fmt.Sprintf("kv:%s/%s", s.defs.Bucket(), id)
	s.mu.Lock()
	defer s.mu.Unlock()
	if e.Operation() != jetstream.KeyValuePut {
		delete(s.hashes, id)
		if _, live := s.feed.Rule(id); live {
			s.feed.Publish(rules.Change{Op: rules.RuleDeleted, ID: id, File: file})
		}
		return
	}
	sum := sha256.Sum256(e.Value())
	if prev, ok := s.hashes[id]; ok && prev == sum {
		return
	}
	s.hashes[id] = sum
	if len(e.Value()) > rules.MaxFileSize {
		s.feed.Publish(rules.Change{Op: rules.RuleRejected, ID: id, File: file, Err: &rules.Error{File: file, Err: rules.ErrTooLarge}})
		return
	}
	r, err := rules.Parse(id+".yaml", e.Value())
	if err != nil {
		s.feed.Publish(rules.Change{Op: rules.RuleRejected, ID: id, File: file, Err: err})
		return
	}
	r.File = file
	if prev, live := s.feed.Rule(id); live && prev.Version == r.Version {
		return
	}
	s.feed.Publish(rules.Change{Op: rules.RuleUpdated, ID: id, Rule: r, File: file})
}

func (s *Store) onState(e jetstream.KeyValueEntry) {
	id := e.Key()
	s.mu.Lock()
	s.revs[id] = e.Revision()
	s.mu.Unlock()
	if e.Operation() != jetstream.KeyValuePut {
		s.feed.SetState(id, rules.State{Mode: rules.Enabled, Reason: "expired or cleared"}, e.Revision())
		return
	}
	var st rules.State
	if err := json.Unmarshal(e.Value(), &st); err != nil || st.Validate() != nil {
		s.log.Error("bad rule state in bucket; ignored", "rule", id, "err", err)
		return
	}
	s.feed.SetState(id, st, e.Revision())
}

// expire deletes an expired state once for the swarm: the delete is guarded by the revision
// the state was read at, so a newer state set meanwhile is never removed.
func (s *Store) expire(id string, st rules.State) {
	s.mu.Lock()
	rev := s.revs[id]
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.states.Delete(ctx, id, jetstream.LastRevision(rev))
	if err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
		s.log.Debug("rule state expiry: delete not applied (another worker did it, or a newer state exists)", "rule", id, "err", err)
	}
}

// Subscribe implements rules.Store.
func (s *Store) Subscribe(context.Context) (*rules.Subscription, error) {
	return s.feed.Subscribe(), nil
}

// SetState implements rules.Store: the state is written to the bucket and reaches every
// worker through its watch.
func (s *Store) SetState(ctx context.Context, id string, st rules.State) error {
	if err := st.Validate(); err != nil {
		return fmt.Errorf("kvstore: %s: %w", id, err)
	}
	if st.Mode == rules.Enabled && st.ExpiresAt.IsZero() {
		if err := s.states.Delete(ctx, id); err != nil {
			return fmt.Errorf("kvstore: %s: %w", id, err)
		}
		return nil
	}
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	if _, err := s.states.Put(ctx, id, b); err != nil {
		return fmt.Errorf("kvstore: %s: %w", id, err)
	}
	return nil
}

// Close implements rules.Store.
func (s *Store) Close() error {
	s.cancel()
	s.done.Wait()
	s.feed.Close()
	return nil
}
