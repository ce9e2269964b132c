package cowrie

import (
	"encoding/json"
	"fmt"
	"time"
)

// session is what the Decoder keeps of an open Cowrie session until it closes. Its fields are
// exported to encoding/json only, for State: a follower that restarts restores its open
// sessions instead of reading their lines again.
type session struct {
	ID            string     `json:"id"`
	Sensor        string     `json:"sensor,omitempty"`
	SrcIP         string     `json:"src_ip,omitempty"`
	Protocol      string     `json:"protocol,omitempty"`
	DstPort       int        `json:"dst_port,omitempty"`
	Start         time.Time  `json:"start"`
	Last          time.Time  `json:"last"`
	ClientVersion string     `json:"client_version,omitempty"`
	HASSH         string     `json:"hassh,omitempty"`
	LoginFailures int        `json:"login_failures,omitempty"`
	LoginSuccess  bool       `json:"login_success,omitempty"`
	Usernames     []string   `json:"usernames,omitempty"`
	Commands      []command  `json:"commands,omitempty"`
	Downloads     []download `json:"downloads,omitempty"`
	Forward       *forward   `json:"forward,omitempty"`
	Dropped       int        `json:"dropped,omitempty"`
	DurationMS    float64    `json:"duration_ms,omitempty"`
	HasDuration   bool       `json:"has_duration,omitempty"`
}

type command struct {
	Text string  `json:"text"`
	ID   string  `json:"id"`
	AtMS float64 `json:"at_ms"`
}

type download struct {
	URL      string `json:"url,omitempty"`
	SHA256   string `json:"sha256,omitempty"`
	Destfile string `json:"destfile,omitempty"`
	Transfer string `json:"transfer"`
}

// forward sums a session's direct-tcpip lines: 10,000 forwarding requests of a relay bot are
// one forward event, not 10,000.
type forward struct {
	First        time.Time `json:"first"`
	Last         time.Time `json:"last"`
	Requests     int       `json:"requests,omitempty"`
	DataEvents   int       `json:"data_events,omitempty"`
	DataBytes    int       `json:"data_bytes,omitempty"`
	Distinct     int       `json:"distinct,omitempty"`
	Destinations []string  `json:"destinations,omitempty"`
	Ports        []float64 `json:"ports,omitempty"`
	seen         map[string]bool
}

// state is the part of a Decoder that a follower saves beside its offset.
type state struct {
	Version  int                 `json:"version"`
	Now      time.Time           `json:"now"`
	Sessions map[string]*session `json:"sessions"`
}

// State returns the Decoder's open sessions as JSON, for a follower to store with the offset
// it has read up to: Restore on a new Decoder continues them, so a restart neither reads old
// lines again nor cuts the sessions open at that moment in two. The auth window is not part
// of it (it is up to MaxAttempts entries): after a restart it fills again from empty, so the
// counts of the first attempts after it are lower than an uninterrupted run's, never higher.
func (d *Decoder) State() ([]byte, error) {
	return json.Marshal(state{Version: 1, Now: d.now, Sessions: d.open})
}

// Restore replaces the Decoder's open sessions by those of a State.
func (d *Decoder) Restore(b []byte) error {
	var st state
	if err := json.Unmarshal(b, &st); err != nil {
		return fmt.Errorf("cowrie: state: %w", err)
	}
	if st.Version != 1 {
		return fmt.Errorf("cowrie: state: version %d, want 1", st.Version)
	}
	if st.Sessions == nil {
		st.Sessions = map[string]*session{}
	}
	d.open, d.now, d.lastScan = st.Sessions, st.Now, st.Now
	return nil
}
