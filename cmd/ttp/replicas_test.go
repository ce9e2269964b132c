package main

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReplicasFlag: --replicas (serve, publish, rules push; TTP_REPLICAS) is checked before
// anything connects or starts, with an error naming the flag and the value; the bounds are 1
// and 5, and serve refuses more than one replica on its embedded one-node server.
func TestReplicasFlag(t *testing.T) {
	for _, tc := range []struct {
		n  int
		ok bool
	}{{-1, false}, {0, false}, {1, true}, {3, true}, {5, true}, {6, false}} {
		if err := checkReplicas("serve", tc.n); (err == nil) != tc.ok || (err != nil && !strings.Contains(err.Error(), "--replicas")) {
			t.Errorf("checkReplicas(%d) = %v, want ok %v", tc.n, err, tc.ok)
		}
	}
	dir := t.TempDir()
	events := filepath.Join(dir, "events.jsonl")
	if err := os.WriteFile(events, []byte(`{"source_kind":"command","source_id":"c1"}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Nothing listens on this URL: a check that came after the connect would fail on it
	// with a connection error instead of the flag's.
	const nowhere = "nats://127.0.0.1:1"
	for _, tc := range []struct {
		name string
		run  func(ctx context.Context, args []string, stdout, stderr io.Writer) error
		env  string // TTP_REPLICAS, "" for unset
		args []string
		want string // in the error
	}{
		{"serve zero", runServe, "", []string{"--replicas", "0"}, "--replicas 0: want 1 to 5"},
		{"serve six", runServe, "", []string{"--replicas", "6", "--nats", nowhere}, "--replicas 6: want 1 to 5"},
		{"serve environment", runServe, "9", nil, "--replicas 9"},
		{"serve embedded", runServe, "", []string{"--replicas", "3"}, "--replicas 3 needs a clustered JetStream"},
		{"publish", runPublish, "", []string{"--nats", nowhere, "--replicas", "7", events}, "publish: --replicas 7"},
		{"publish environment", runPublish, "0", []string{"--nats", nowhere, events}, "publish: --replicas 0"},
		{"rules push", runRulesPush, "", []string{"--nats", nowhere, "--replicas", "-2", dir}, "rules push: --replicas -2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("TTP_REPLICAS", tc.env)
			if tc.env == "" {
				os.Unsetenv("TTP_REPLICAS")
			}
			t.Setenv("TTP_CONFIG", "")
			os.Unsetenv("TTP_CONFIG")
			args := tc.args
			data := filepath.Join(dir, "data-"+strings.ReplaceAll(tc.name, " ", "-"))
			if strings.HasPrefix(tc.name, "serve") {
				args = append([]string{"--data", data}, args...)
			}
			err := tc.run(context.Background(), args, io.Discard, io.Discard)
			var code exitError
			if err == nil || errors.As(err, &code) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("%v: %v, want an error with %q", args, err, tc.want)
			}
			if _, err := os.Stat(data); !os.IsNotExist(err) {
				t.Errorf("serve started before the check: %s exists", data)
			}
		})
	}
}
