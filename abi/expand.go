package abi

import (
	"math"
	"slices"
	"strconv"
	"strings"
)

// Expand is the session fan-out that every path shares (ttp tag, the daemon, conform): a
// session event whose payload has "commands" becomes itself plus one command event per
// command, so the built-in command rules see every command typed in a session that was only
// reported at its end.
//
// Commands may be strings or objects with "text" and an id under "id", "uuid" or
// "command_id". In the returned session event they are normalised to objects, so
// "payload.commands[].text" always reads them. A command event's source_id is its object's
// id, else "<session source_id>#<index>" counted from 0 (an entry that is neither a string nor
// an object keeps its place in the list but makes no command event); it inherits the session's
// attacker, identity, session and decky ids and its observed_at (command_times_ms are offsets
// within the session, read by the behavioral lifter, not times of their own). Every other event is returned alone. ev is not modified.
//
// The first element is always the upstream event: all tags of the returned events belong to
// its envelope.
//
// An intel event whose AbuseIPDB answer has reports (abi/EVENTS.md, "intel") but no flat
// payload.abuseipdb_categories gets one, computed from the reports' categories: the record
// cannot carry their list of lists, and a producer that stores the answer as AbuseIPDB
// returned it does not send the flat field.
func Expand(ev Event) []Event {
	if ev.SourceKind == KindIntel {
		return []Event{expandIntel(ev)}
	}
	if ev.SourceKind != KindSession {
		return []Event{ev}
	}
	cmds, ok := ev.Payload["commands"].([]any)
	if !ok {
		return []Event{ev}
	}
	out := make([]Event, 1, 1+len(cmds))
	norm := make([]any, len(cmds))
	sessionID := ev.SessionID
	for i, c := range cmds {
		var text, id string
		switch x := c.(type) {
		case string:
			text = x
			norm[i] = map[string]any{"text": x}
		case map[string]any:
			text, _ = x["text"].(string)
			for _, k := range [...]string{"id", "uuid", "command_id"} {
				if s, ok := x[k].(string); ok && s != "" {
					id = s
					break
				}
			}
			norm[i] = x
		default:
			norm[i] = map[string]any{"text": ""}
			continue
		}
		if id == "" {
			id = ev.SourceID + "#" + strconv.Itoa(i)
		}
		out = append(out, Event{
			SourceKind:   KindCommand,
			SourceID:     id,
			AttackerUUID: ev.AttackerUUID,
			IdentityUUID: ev.IdentityUUID,
			SessionID:    sessionID,
			DeckyID:      ev.DeckyID,
			ObservedAt:   ev.ObservedAt,
			Payload:      map[string]any{"command_text": text},
		})
	}
	payload := make(map[string]any, len(ev.Payload))
	for k, v := range ev.Payload {
		payload[k] = v
	}
	payload["commands"] = norm
	session := ev
	session.Payload = payload
	out[0] = session
	return out
}

// Expands reports whether Expand may change an event of this source kind (a session fans
// out, an intel event gains derived fields): a caller that skips Expand for speed must not
// skip it for these kinds.
func Expands(kind string) bool { return kind == KindSession || kind == KindIntel }

// maxAbuseCategory bounds the category ids expandIntel keeps (AbuseIPDB's go to 23).
const maxAbuseCategory = 255

// expandIntel adds payload.abuseipdb_categories, the distinct categories of the AbuseIPDB
// reports in ascending order, when the payload has reports and no such field (or null). The
// reports are read from payload.abuseipdb (the check's data object) or payload.abuseipdb.data
// (the whole response); a report's categories may be numbers, numeric strings or one string
// of comma-separated ids ("18,22", the form the report endpoint takes). Anything else is
// skipped. ev is not modified.
func expandIntel(ev Event) Event {
	if v, ok := ev.Payload["abuseipdb_categories"]; ok && v != nil {
		return ev
	}
	answer, _ := ev.Payload["abuseipdb"].(map[string]any)
	reports, ok := answer["reports"].([]any)
	if !ok {
		data, _ := answer["data"].(map[string]any)
		if reports, ok = data["reports"].([]any); !ok {
			return ev
		}
	}
	var cats []int
	add := func(f float64) {
		if c := int(f); float64(c) == f && c >= 1 && c <= maxAbuseCategory && !slices.Contains(cats, c) {
			cats = append(cats, c)
		}
	}
	addString := func(s string) {
		for _, part := range strings.Split(s, ",") {
			if f, err := strconv.ParseFloat(strings.TrimSpace(part), 64); err == nil && !math.IsNaN(f) {
				add(f)
			}
		}
	}
	for _, r := range reports {
		rm, _ := r.(map[string]any)
		switch cs := rm["categories"].(type) {
		case []any:
			for _, c := range cs {
				switch x := c.(type) {
				case float64:
					add(x)
				case string:
					addString(x)
				}
			}
		case string:
			addString(cs)
		case float64:
			add(cs)
		}
	}
	if len(cats) == 0 {
		return ev
	}
	slices.Sort(cats)
	flat := make([]any, len(cats))
	for i, c := range cats {
		flat[i] = float64(c)
	}
	payload := make(map[string]any, len(ev.Payload)+1)
	for k, v := range ev.Payload {
		payload[k] = v
	}
	payload["abuseipdb_categories"] = flat
	ev.Payload = payload
	return ev
}
