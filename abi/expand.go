package abi

import "strconv"

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
func Expand(ev Event) []Event {
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
