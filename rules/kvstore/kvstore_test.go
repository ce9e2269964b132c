package kvstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/decnet/ttp/internal/natstest"
	"github.com/decnet/ttp/rules"
	"github.com/decnet/ttp/rules/storetest"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func TestConformance(t *testing.T) {
	srv := natstest.Start(t)
	n := 0
	storetest.Run(t, func(t *testing.T, initial map[string][]byte) storetest.Harness {
		n++
		_, js := srv.Connect(t)
		ctx := context.Background()
		cfg := Config{RulesBucket: fmt.Sprintf("rules-%d", n), StateBucket: fmt.Sprintf("state-%d", n), Logger: quiet}
		defs, _, err := Buckets(ctx, js, cfg)
		if err != nil {
			t.Fatal(err)
		}
		for id, content := range initial {
			if _, err := defs.Put(ctx, id, content); err != nil {
				t.Fatal(err)
			}
		}
		s, err := Open(ctx, js, cfg)
		if err != nil {
			t.Fatal(err)
		}
		return storetest.Harness{
			Store: s,
			Write: func(t *testing.T, id string, content []byte) {
				if _, err := defs.Put(ctx, id, content); err != nil {
					t.Fatal(err)
				}
			},
			Delete: func(t *testing.T, id string) {
				if err := defs.Delete(ctx, id); err != nil {
					t.Fatal(err)
				}
			},
		}
	})
}

// TestTwoWorkersShareState: a state set through one store reaches another on the same
// buckets, and survives a restart of both.
func TestTwoWorkersShareState(t *testing.T) {
	srv := natstest.Start(t)
	_, js := srv.Connect(t)
	ctx := context.Background()
	defs, _, _ := Buckets(ctx, js, Config{})
	defs.Put(ctx, "R9001", storetest.Rule("R9001", "x"))
	a, err := Open(ctx, js, Config{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Open(ctx, js, Config{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	sub := b.feed.Subscribe()
	start := time.Now()
	if err := a.SetState(ctx, "R9001", rules.State{Mode: rules.Disabled, Reason: "noisy"}); err != nil {
		t.Fatal(err)
	}
	nctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c, err := sub.Next(nctx)
	if err != nil || c.Op != rules.StateChanged || c.State.Mode != rules.Disabled {
		t.Fatalf("worker b saw %+v, %v", c, err)
	}
	t.Logf("state reached the other worker in %v", time.Since(start))
	a.Close()
	b.Close()
	c2, err := Open(ctx, js, Config{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if _, states := c2.feed.Subscribe().Initial(); states["R9001"].Mode != rules.Disabled {
		t.Fatalf("state lost across restart: %+v", states)
	}
}

// TestStatesOnlyMakesNoDefinitionsBucket: a daemon whose definitions come from a directory
// makes only the states bucket; an empty ttp-rules beside it would suggest missing rules.
func TestStatesOnlyMakesNoDefinitionsBucket(t *testing.T) {
	srv := natstest.Start(t)
	_, js := srv.Connect(t)
	ctx := context.Background()
	s, err := Open(ctx, js, Config{StatesOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := js.KeyValue(ctx, DefaultRulesBucket); !errors.Is(err, jetstream.ErrBucketNotFound) {
		t.Errorf("definitions bucket: %v, want ErrBucketNotFound", err)
	}
	if _, err := js.KeyValue(ctx, DefaultStateBucket); err != nil {
		t.Errorf("states bucket: %v", err)
	}
}

// TestBucketsKeepOperatorConfig: Buckets creates a missing bucket with ours (history 5, the
// replicas asked for) and binds an existing one as it is: an operator's history and
// description survive every start, as a stream's do (bus.Streams).
func TestBucketsKeepOperatorConfig(t *testing.T) {
	srv := natstest.Start(t)
	_, js := srv.Connect(t)
	ctx := context.Background()
	if _, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "ops-state", History: 2, Description: "the operator's"}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, bucket, description string
		history                   uint8
	}{
		{"existing", "ops-state", "the operator's", 2},
		{"created", "ops-rules", "ttp rule definitions (YAML by rule id)", 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defs, states, err := Buckets(ctx, js, Config{RulesBucket: "ops-rules", StateBucket: "ops-state", Replicas: 1})
			if err != nil {
				t.Fatal(err)
			}
			kv := map[string]jetstream.KeyValue{"ops-rules": defs, "ops-state": states}[tc.bucket]
			st, err := kv.Status(ctx)
			if err != nil {
				t.Fatal(err)
			}
			info := st.(*jetstream.KeyValueBucketStatus).StreamInfo()
			if st.History() != int64(tc.history) || info.Config.Description != tc.description || info.Config.Replicas != 1 {
				t.Errorf("bucket %s: history %d, description %q, replicas %d; want %d, %q, 1",
					tc.bucket, st.History(), info.Config.Description, info.Config.Replicas, tc.history, tc.description)
			}
		})
	}
}
