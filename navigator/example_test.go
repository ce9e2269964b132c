package navigator_test

import (
	"fmt"
	"strings"

	"github.com/decnet/ttp/navigator"
	"github.com/decnet/ttp/tagsource"
)

// Build a layer from the JSONL of `ttp tag` and write it for the Navigator's "Open Existing
// Layer".
func Example() {
	tags := `{"tag_uuid":"01a21b33-fae0-8161-b0c5-39af26075a61","rule_id":"R0001","rule_version":"ad0f0810c267bd81","technique_id":"T1082","tactic":"discovery","confidence":0.8,"source_kind":"command","source_id":"c1","attacker_uuid":null,"session_id":"a1f3c9e2","decky_id":"ssh-fra-01","producer":"engine","created_at":"2026-11-27T04:12:03Z","observed_at":"2026-11-27T04:12:01.12Z"}
{"tag_uuid":"01a21b34-0a3c-8a49-8d6e-3b6c0f1d2e77","rule_id":"R0009","rule_version":"0123456789abcdef","technique_id":"T1059","sub_technique_id":"T1059.004","tactic":"execution","confidence":0.9,"source_kind":"command","source_id":"c3","attacker_uuid":null,"session_id":"a1f3c9e2","decky_id":"ssh-fra-01","producer":"engine","created_at":"2026-11-27T04:12:05Z","observed_at":"2026-11-27T04:12:03.004Z"}
{"ttp_ingest":{"input":"cowrie","files":["cowrie.json"],"lines":12,"events":9,"skipped":3,"malformed":0,"sensors":["ssh-fra-01"]}}
`
	set, err := tagsource.ReadJSONL(strings.NewReader(tags), "tags.jsonl")
	if err != nil {
		fmt.Println(err)
		return
	}
	layer := navigator.Build(set, navigator.Options{Score: navigator.ScoreCount})
	if err := navigator.Validate(layer); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(layer.Domain, layer.Versions.Layer, "ATT&CK", layer.Versions.Attack)
	// navigator.Write(f, layer) writes the file the Navigator opens.
	for _, t := range layer.Techniques {
		fmt.Println(t.TechniqueID, t.Tactic, t.Score)
	}

	// Output:
	// enterprise-attack 4.5 ATT&CK 18
	// T1059.004 execution 1
	// T1082 discovery 1
}
