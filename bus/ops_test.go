package bus

import (
	"context"
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/decnet/ttp/dispatch"
)

// TestDefaultWorkerName: a worker configured without a name goes by DefaultWorkerName, and
// that is the name its heartbeats carry, so the daemon can stamp the same name on the rest.
func TestDefaultWorkerName(t *testing.T) {
	name := DefaultWorkerName()
	if !strings.HasSuffix(name, "-"+strconv.Itoa(os.Getpid())) || len(name) <= len(strconv.Itoa(os.Getpid()))+1 {
		t.Fatalf("DefaultWorkerName() = %q, want <hostname>-<pid>", name)
	}
	if got := (Config{}).withDefaults().Name; got != name {
		t.Errorf("Config default name %q, DefaultWorkerName() %q", got, name)
	}
	if got := (Config{Name: "w1"}).withDefaults().Name; got != "w1" {
		t.Errorf("a configured name became %q", got)
	}

	r := newRig(t, Config{})
	beats := make(chan *nats.Msg, 4)
	sub, err := r.nc.ChanSubscribe(SubjectHeartbeat, beats)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go Heartbeats(ctx, r.nc, r.w, dispatch.New(dispatch.Config{}), time.Hour)
	select {
	case m := <-beats:
		var hb Heartbeat
		if err := json.Unmarshal(m.Data, &hb); err != nil {
			t.Fatal(err)
		}
		if hb.Worker != name {
			t.Errorf("heartbeat worker %q, want %q", hb.Worker, name)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no heartbeat")
	}
}
