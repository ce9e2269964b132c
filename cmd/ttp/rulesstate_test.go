package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestRulesStateFlags: every bad value of `ttp rules state` is refused before anything is
// sent, with the flag named as the user wrote it. Good ones get as far as connecting (to a
// port nothing listens on here).
func TestRulesStateFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--disable", "--ttl", "-5s"}, "--ttl -5s"},
		{[]string{"--disable", "--ttl", "0s"}, "--ttl 0s"},
		{[]string{"--clip", "-1"}, "--clip -1"},
		{[]string{"--clip", "NaN"}, "--clip NaN"},
		{[]string{"--clip", "7"}, "--clip 7"},
		{[]string{"--clip", "0"}, "--disable"},
		{[]string{"--ttl", "1h"}, "--ttl needs an action"},
		{[]string{"--reason", "noisy"}, "--reason needs an action"},
		{[]string{"--enable", "--ttl", "1h"}, "--ttl with --enable"},
		{[]string{"--disable", "--clip", "0.4"}, "choose one"},
		{[]string{"--clip", "0.4", "--ttl", "1h"}, "nats"},
		{[]string{"--disable"}, "nats"},
		{nil, "nats"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			args := append([]string{"rules", "state", "R0001", "--nats", "nats://127.0.0.1:1"}, tc.args...)
			err := run(context.Background(), args, nil, &out, &errb)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want one containing %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "confidence_max") {
				t.Errorf("names the internal field: %v", err)
			}
		})
	}
}

// TestRulesTestNamesMissingPlugins: on a checkout whose plugins are not built, `ttp rules
// test` says which rules need which module and how to build it, before scoring them 0.
func TestRulesTestNamesMissingPlugins(t *testing.T) {
	var out, errb bytes.Buffer
	err := run(context.Background(), []string{"rules", "test", "--corpus", "../../testdata/corpus", "--plugins", t.TempDir(), "../../rules/ttp"}, nil, &out, &errb)
	if err == nil {
		t.Fatal("lifter rules without their plugins passed")
	}
	for _, want := range []string{"credential.wasm (missing or refused): R0059", "behavioral.wasm", "make plugins"} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, errb.String())
		}
	}
}

// TestPrintEnvelopeAligned: --print keeps its columns aligned whatever the source id's
// length: the id is the last column.
func TestPrintEnvelopeAligned(t *testing.T) {
	var b bytes.Buffer
	for _, id := range []string{"c1", "cowrie-" + strings.Repeat("f", 60)} {
		env := `{"source_kind":"command","source_id":"` + id + `","tags":[{"rule_id":"R0001","technique_id":"T1082","tactic":"discovery","confidence":0.9,"producer":"engine","source_kind":"command","source_id":"` + id + `"}]}`
		printEnvelope(&b, []byte(env))
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 2 || strings.Index(lines[0], "command:") != strings.Index(lines[1], "command:") {
		t.Fatalf("columns not aligned:\n%s", b.String())
	}
}

// TestHelpExitsZero: every command's -h and --help print its usage and succeed; no command
// at all, or a bad flag, is a usage error (2); --version is understood.
func TestHelpExitsZero(t *testing.T) {
	for _, cmd := range [][]string{{"tag"}, {"serve"}, {"publish"}, {"rules"}, {"rules", "lint"}, {"rules", "test"},
		{"rules", "state"}, {"rules", "push"}, {"conform"}, {"plugin"}, {"plugin", "new"}, {"version"}} {
		for _, h := range []string{"-h", "--help"} {
			var out, errb bytes.Buffer
			if err := run(context.Background(), append(append([]string{}, cmd...), h), nil, &out, &errb); err != nil {
				t.Errorf("ttp %s %s: %v, want success", strings.Join(cmd, " "), h, err)
			}
			if out.Len()+errb.Len() == 0 && cmd[0] != "version" {
				t.Errorf("ttp %s %s printed no usage", strings.Join(cmd, " "), h)
			}
		}
	}
	for _, args := range [][]string{nil, {"tag", "--bogus"}, {"rules", "state"}, {"nosuch"}} {
		var out, errb bytes.Buffer
		if err := run(context.Background(), args, nil, &out, &errb); err != exitError(2) {
			t.Errorf("ttp %v: %v, want exit status 2", args, err)
		}
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"--version"}, nil, &out, &out); err != nil || !strings.HasPrefix(out.String(), "ttp ") {
		t.Errorf("--version: %v %q", err, out.String())
	}
}
