package report_test

import (
	"fmt"
	"strings"

	"github.com/decnet/ttp/report"
	"github.com/decnet/ttp/tagsource"
)

// Render the report of `ttp tag` output. An attacker's command is shown as text: the report
// runs no script and escapes everything the tags carry.
func Example() {
	tags := `{"tag_uuid":"01a21b33-fae0-8161-b0c5-39af26075a61","rule_id":"R0001","rule_version":"ad0f0810c267bd81","technique_id":"T1082","tactic":"discovery","confidence":0.8,"evidence":{"command_text":"uname -a; echo '<script>x</script>'"},"source_kind":"command","source_id":"c1","attacker_uuid":null,"session_id":"a1f3c9e2","decky_id":"ssh-fra-01","producer":"engine","created_at":"2026-11-27T04:12:03Z","observed_at":"2026-11-27T04:12:01.12Z"}
{"ttp_ingest":{"input":"cowrie","files":["cowrie.json"],"lines":12,"events":9,"skipped":3,"malformed":0}}
`
	set, err := tagsource.ReadJSONL(strings.NewReader(tags), "tags.jsonl")
	if err != nil {
		fmt.Println(err)
		return
	}
	var page strings.Builder
	if err := report.Write(&page, set, report.Options{Title: "sensor ssh-fra-01", RuleNames: map[string]string{"R0001": "System information discovery"}}); err != nil {
		fmt.Println(err)
		return
	}
	html := page.String()
	fmt.Println(strings.Contains(html, `data-technique="T1082" data-tactic="discovery"`))
	fmt.Println(strings.Contains(html, "&lt;script&gt;x&lt;/script&gt;"), strings.Contains(html, "<script"))
	fmt.Println(strings.Contains(html, `data-count="skipped">3<`))
	// Output:
	// true
	// true false
	// true
}
