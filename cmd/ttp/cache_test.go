package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/decnet/ttp/bus"
	"github.com/decnet/ttp/internal/natstest"
)

// TestServeCache: --cache puts the plugins' compilation cache where it says; without it the
// cache is the one every command shares (the user cache directory's ttp/wazero), so a daemon
// started on a new data directory (make run does) still finds its modules compiled.
func TestServeCache(t *testing.T) {
	wasm, err := os.ReadFile("../../wasm/testdata/wat/tiny_v1.wasm")
	if err != nil {
		t.Fatal(err)
	}
	srv := natstest.Start(t)
	nc, js := srv.Connect(t)
	tagged := make(chan *nats.Msg, 16)
	sub, err := nc.ChanSubscribe(bus.SubjectTagged, tagged)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	for _, explicit := range []bool{true, false} {
		dir := t.TempDir()
		f := testServeFlags(dir, srv.ClientURL(), unameRulesDir(t, dir))
		f.plugins = filepath.Join(dir, "plugins")
		if err := os.MkdirAll(f.plugins, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(f.plugins, "tiny.wasm"), wasm, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Setenv("TTP_CACHE", "")
		t.Setenv("XDG_CACHE_HOME", filepath.Join(dir, "xdg"))
		want := filepath.Join(dir, "xdg", "ttp", "wazero")
		if explicit {
			f.cache = filepath.Join(dir, "shared-cache")
			want = f.cache
		}
		daemon := startInProcess(t, f)
		daemon.waitStreams(t, js)
		// A tag means the daemon is running, which it does once its plugins are loaded.
		id := fmt.Sprintf("cache-%v", explicit)
		ev := `{"source_kind":"command","source_id":"` + id + `","payload":{"command_text":"uname -a"}}`
		if _, err := js.Publish(context.Background(), bus.SubjectFor(bus.DefaultPrefix, "command"), []byte(ev)); err != nil {
			t.Fatal(err)
		}
		for waiting := true; waiting; {
			select {
			case m := <-tagged:
				waiting = !strings.Contains(string(m.Data), id)
			case <-time.After(30 * time.Second):
				t.Fatal("no tag: the daemon did not start")
			}
		}
		var files int
		filepath.WalkDir(want, func(_ string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				files++
			}
			return nil
		})
		if files == 0 {
			t.Errorf("cache %s is empty after the plugin loaded", want)
		}
		if _, err := os.Stat(filepath.Join(f.data, "wazero-cache")); err == nil {
			t.Errorf("a cache was also made under the data directory")
		}
		daemon.stop(t)
	}
}
