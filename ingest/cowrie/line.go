package cowrie

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"time"
)

// line is one Cowrie JSON log object: the shared attributes and every attribute of the event
// ids this package reads (Cowrie's docs/OUTPUT.rst). Other attributes are ignored, so a newer
// Cowrie that adds some still decodes. It is decoded into a reused value, so the only
// allocations of a line are its strings.
type line struct {
	EventID   string `json:"eventid"`
	Session   string `json:"session"`
	SrcIP     string `json:"src_ip"`
	Timestamp string `json:"timestamp"`
	Sensor    string `json:"sensor"`

	// cowrie.session.connect (and, in recent Cowrie, every event of a connection)
	SrcPort  number `json:"src_port"`
	DstIP    string `json:"dst_ip"`
	DstPort  number `json:"dst_port"`
	Protocol string `json:"protocol"`

	// cowrie.client.*
	Version     string `json:"version"`
	HASSH       string `json:"hassh"`
	Fingerprint string `json:"fingerprint"`
	Name        string `json:"name"`
	Value       string `json:"value"`
	Width       number `json:"width"`
	Height      number `json:"height"`

	// cowrie.login.*
	Username *string `json:"username"`
	Password *string `json:"password"`

	// cowrie.command.*
	Input *string `json:"input"`
	Realm string  `json:"realm"`

	// cowrie.session.file_download, file_download.failed, file_upload
	URL      string `json:"url"`
	SHASum   string `json:"shasum"`
	Outfile  string `json:"outfile"`
	Destfile string `json:"destfile"`
	Filename string `json:"filename"`

	// cowrie.direct-tcpip.data
	Data string `json:"data"`

	// cowrie.session.closed: duration_ms (Cowrie 2.6 and later, integer milliseconds) or
	// duration (earlier releases: seconds, a number or a numeric string such as "12.3")
	DurationMS number `json:"duration_ms"`
	Duration   number `json:"duration"`
}

// number is a JSON number, or a string holding one: Cowrie wrote some numeric attributes as
// strings in some releases (duration as "12.3", ports through some output paths). Set tells
// a present value from an absent one.
type number struct {
	V   float64
	Set bool
}

func (n *number) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		b = []byte(s)
		if len(b) == 0 {
			return nil // "" is as good as absent
		}
	}
	if bytes.Equal(b, []byte("null")) {
		return nil
	}
	v, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		// A type error, so that encoding/json names the field.
		return &json.UnmarshalTypeError{Value: fmt.Sprintf("%.40q", b), Type: reflect.TypeFor[float64]()}
	}
	n.V, n.Set = v, true
	return nil
}

// decode reads one log line into l (reset first) and parses its timestamp.
func (l *line) decode(b []byte) (time.Time, error) {
	*l = line{}
	if l.fast(b) {
		return l.check()
	}
	*l = line{}
	if err := json.Unmarshal(b, l); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return time.Time{}, fmt.Errorf("field %q: want %s, got JSON %s", te.Field, te.Type, te.Value)
		}
		return time.Time{}, err
	}
	return l.check()
}

// check holds a decoded line to what every event needs and parses its timestamp.
func (l *line) check() (time.Time, error) {
	if l.EventID == "" {
		return time.Time{}, fmt.Errorf("field %q: missing", "eventid")
	}
	if l.Timestamp == "" {
		return time.Time{}, fmt.Errorf("field %q: missing", "timestamp")
	}
	t, err := time.Parse(time.RFC3339Nano, l.Timestamp)
	if err != nil {
		return time.Time{}, fmt.Errorf("field %q: not ISO 8601: %.40q", "timestamp", l.Timestamp)
	}
	return t.UTC(), nil
}

// seconds returns the session length a cowrie.session.closed line states, in milliseconds,
// and whether it states one.
func (l *line) durationMS() (float64, bool) {
	switch {
	case l.DurationMS.Set && l.DurationMS.V >= 0:
		return l.DurationMS.V, true
	case l.Duration.Set && l.Duration.V >= 0:
		return l.Duration.V * 1000, true
	}
	return 0, false
}
