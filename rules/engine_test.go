package rules

import (
	"fmt"
	"os"
	"reflect"
	"regexp/syntax"
	"sort"
	"strings"
	"testing"

	"github.com/decnet/ttp/abi"
	"github.com/decnet/ttp/internal/workload"
)

func loadShipped(tb testing.TB) *RuleSet {
	tb.Helper()
	rs, err := LoadDir("ttp")
	if err != nil {
		tb.Fatalf("shipped rules: %v", err)
	}
	set, err := NewRuleSet(rs)
	if err != nil {
		tb.Fatal(err)
	}
	return set
}

func commandEvent(text string) *abi.Event {
	return &abi.Event{SourceKind: abi.KindCommand, SourceID: "x", Payload: map[string]any{"command_text": text}}
}

// corpusCommands returns every command of the precision corpora.
func corpusCommands(tb testing.TB) []string {
	tb.Helper()
	entries, err := os.ReadDir("../testdata/corpus")
	if err != nil {
		tb.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		data, err := os.ReadFile("../testdata/corpus/" + e.Name())
		if err != nil {
			tb.Fatal(err)
		}
		for _, line := range strings.Split(string(data), "\n") {
			line = strings.TrimSpace(line)
			line = strings.TrimPrefix(line, "- text:")
			line = strings.TrimPrefix(line, "-")
			line = strings.TrimSpace(line)
			if len(line) > 2 && (line[0] == '\'' || line[0] == '"') {
				out = append(out, strings.Trim(line, `'"`))
			}
		}
	}
	return out
}

func TestEngineEqualsNaive(t *testing.T) {
	set := loadShipped(t)
	cmds := append(corpusCommands(t), benchCommands(t, 2000)...)
	if len(cmds) < 1000 {
		t.Fatalf("only %d commands to compare", len(cmds))
	}
	fired, hits := 0, 0
	for _, c := range cmds {
		ev := commandEvent(c)
		// twice: the first evaluation of a text fills the verdict cache, the second reads it
		// (a text seen before in the list reads it the first time too)
		for pass := range 2 {
			if set.engines[ev.SourceKind].verdicts.has(c) {
				hits++
			}
			got := set.Eval(ev, nil)
			want := set.evalNaive(ev, nil)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("%q (evaluation %d): prefiltered %v, naive %v", c, pass+1, ids(got), ids(want))
			}
			if pass == 0 && len(got) > 0 {
				fired++
			}
		}
	}
	if hits < len(cmds) {
		t.Fatalf("%d verdict-cache hits in %d evaluations: the cached path was not compared", hits, 2*len(cmds))
	}
	if fired == 0 {
		t.Fatal("nothing fired: the comparison proves nothing")
	}
	t.Logf("%d commands, %d fired", len(cmds), fired)
}

func ids(ds []abi.TagDraft) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.RuleID)
	}
	return out
}

func FuzzEngineEqualsNaive(f *testing.F) {
	set := loadShipped(f)
	for _, c := range corpusCommands(f)[:min(50, len(corpusCommands(f)))] {
		f.Add(c)
	}
	f.Add("cat /etc/\u212aey")
	f.Add("\xff\xfe wget")
	f.Fuzz(func(t *testing.T, text string) {
		ev := commandEvent(text)
		want := set.evalNaive(ev, nil)
		for pass := range 2 { // the second from the verdict cache
			if got := set.Eval(ev, nil); !reflect.DeepEqual(got, want) {
				t.Fatalf("%q (evaluation %d): prefiltered %v, naive %v", text, pass+1, ids(got), ids(want))
			}
		}
	})
}

// FuzzPrefilterPattern checks literal extraction itself on random patterns: whatever the
// pattern, the prefiltered engine must agree with running it.
func FuzzPrefilterPattern(f *testing.F) {
	for _, s := range [][2]string{
		{`(?i)authorized_keys`, "echo k >> AUTHORIZED_KEYS"},
		{`\b(wget|curl)\s+-\w*O`, "curl -sO http://x"},
		{`(?i)kill`, "\u212aILL"},
		{`s[a-c]{2}t`, "sbbt"},
		{`(ab|cd)+x?(ef)*`, "cdab"},
		{`^$`, ""},
		{`é+`, "éé"},
		{`\x{FFFD}x`, "\xffx"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, text string) {
		if _, err := syntax.Parse(pattern, syntax.Perl); err != nil || len(pattern) > 200 {
			return
		}
		yaml := fmt.Sprintf("id: R0001\nname: f\napplies_to: [command]\nmatch: {kind: pattern, pattern: %q}\nemits: [{technique_id: T1082, tactic: discovery, confidence: 0.5}]\nprecision: M\nevidence_fields: [command_text]\n", pattern)
		r, err := Parse("R0001.yaml", []byte(yaml))
		if err != nil {
			return // a pattern YAML cannot carry as written; not what this target tests
		}
		set, err := NewRuleSet([]*Rule{r})
		if err != nil {
			t.Fatal(err)
		}
		ev := commandEvent(text)
		got, want := set.Eval(ev, nil), set.evalNaive(ev, nil)
		if len(got) != len(want) {
			t.Fatalf("pattern %q text %q: prefiltered %d drafts, naive %d (literals %q)", pattern, text, len(got), len(want), literalsOf(pattern))
		}
	})
}

func literalsOf(pattern string) [][][]string {
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return nil
	}
	var out [][][]string
	for _, c := range requiredDNF(re.Simplify()) {
		var cl [][]string
		for _, set := range c {
			s := append([]string(nil), set...)
			sort.Strings(s)
			cl = append(cl, s)
		}
		out = append(out, cl)
	}
	return out
}

func TestRequiredLiterals(t *testing.T) {
	type dnf = [][][]string
	tests := []struct {
		pattern string
		want    dnf // nil: no usable literal, the rule always runs
	}{
		{`(?i)authorized_keys`, dnf{{{"authorized_keys"}}}},
		{`\b(wget|curl|tftp)\b`, dnf{{{"curl", "tftp", "wget"}}}},
		{`/etc/(passwd|shadow)`, dnf{{{"/etc/passwd", "/etc/shadow"}}}},
		{`chmod\s+\+x`, dnf{{{"chmod"}, {"+x"}}}},
		{`(?i)uname\s+-a`, dnf{{{"uname"}, {"-a"}}}},
		{`\bid\b`, dnf{{{"id"}}}},
		{`[Ss]hadow`, dnf{{{"shadow"}}}},
		{`nc\s+-e\s+/bin/sh|bash\s+-i`, dnf{{{"/bin/sh"}, {"nc"}, {"-e"}}, {{"bash"}, {"-i"}}}},
		{`(?:tmp|shm)/\.+\w`, dnf{{{"shm/.", "tmp/."}}}},
		{`x`, nil},
		{`.*`, nil},
		{`a*b*`, nil},
		{`(wget|.)`, nil},
		{`(foo)+bar?`, dnf{{{"fooba", "foobar"}, {"foo"}}}},
		{`history\s+-c|unset\s+HISTFILE`, dnf{{{"history"}, {"-c"}}, {{"histfile"}, {"unset"}}}},
		{`(?:ab){2}`, dnf{{{"abab"}}}},
	}
	for _, tt := range tests {
		if got := literalsOf(tt.pattern); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: formula %q, want %q", tt.pattern, got, tt.want)
		}
	}
}

func TestEvalAllocs(t *testing.T) {
	set := loadShipped(t)
	ev := commandEvent("cd /var/www/html && git pull origin main")
	if n := testing.AllocsPerRun(200, func() { set.Eval(ev, nil) }); n != 0 && !raceEnabled {
		t.Errorf("Eval allocates %v times on a command that fires nothing", n)
	}
	if out := set.Eval(ev, nil); len(out) != 0 {
		t.Errorf("benign command fired %v", ids(out))
	}
}

// benchCommands returns the first n commands of the shared workload (internal/workload): about
// 85% benign administration and 15% attacker commands from the corpora's positives, the same
// stream on every run, so that benchmark runs compare like with like.
func benchCommands(tb testing.TB, n int) []string {
	tb.Helper()
	attacks, err := workload.AttackerCommands("../testdata/corpus")
	if err != nil {
		tb.Fatal(err)
	}
	return workload.Commands(workload.Seed, n, attacks)
}

// The benchmarks the figure comes from: the prefiltered engine against the naive loop
// over the same compiled regexps, per command, on 10,000 realistic commands.
func benchEngine(b *testing.B, eval func(*RuleSet, *abi.Event, []abi.TagDraft) []abi.TagDraft) {
	set := loadShipped(b)
	cmds := benchCommands(b, 10000)
	evs := make([]*abi.Event, len(cmds))
	for i, c := range cmds {
		evs[i] = commandEvent(c)
	}
	out := make([]abi.TagDraft, 0, 64)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		out = eval(set, evs[i%len(evs)], out[:0])
	}
}

func BenchmarkEnginePrefiltered(b *testing.B) { benchEngine(b, (*RuleSet).Eval) }
func BenchmarkEngineNaive(b *testing.B)       { benchEngine(b, (*RuleSet).evalNaive) }

// BenchmarkEngineNoFire is the allocation figure: a benign command through the prefiltered
// engine.
func BenchmarkEngineNoFire(b *testing.B) {
	set := loadShipped(b)
	ev := commandEvent("docker logs --tail 100 worker")
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		set.Eval(ev, nil)
	}
}

// BenchmarkRule measures each command rule's regexp on the commands its prefilter lets
// through (from the 10,000-command stream): the cost a rule adds to the engine. A rule whose
// compiled program exceeds 500 instructions loses Go's backtracker and costs several times more.
func BenchmarkRule(b *testing.B) {
	set := loadShipped(b)
	e := set.engines[abi.KindCommand]
	cmds := benchCommands(b, 10000)
	cands := make([][]string, len(e.rules))
	for _, c := range cmds {
		hits := make([]uint64, e.words)
		e.groups[e.field[0]].candidates(c, hits)
		for i := range e.rules {
			if hits[i/64]&(1<<(i%64)) != 0 {
				cands[i] = append(cands[i], c)
			}
		}
	}
	for i, r := range e.rules {
		if len(cands[i]) == 0 {
			continue
		}
		b.Run(r.ID, func(b *testing.B) {
			for n := 0; n < b.N; n++ {
				r.re.MatchString(cands[i][n%len(cands[i])])
			}
			b.ReportMetric(float64(len(cands[i]))/float64(len(cmds)), "candidates/cmd")
		})
	}
}

// loadDir compiles the rule files of dir into a RuleSet.
func loadDir(tb testing.TB, dir string) *RuleSet {
	tb.Helper()
	rs, err := LoadDir(dir)
	if err != nil {
		tb.Fatalf("%s: %v", dir, err)
	}
	set, err := NewRuleSet(rs)
	if err != nil {
		tb.Fatal(err)
	}
	return set
}

// uncached turns the verdict cache of set off: every evaluation does the whole work, as for
// a stream of lines never seen before.
func uncached(set *RuleSet) *RuleSet {
	for _, e := range set.engines {
		e.verdicts = nil
	}
	return set
}

// BenchmarkCommandEngine is the figure issue 12 asks for, both engines in one run on the same
// 10,000-command realistic mix: regex is R0001-R0030 as they were before the rewrite
// (rules/testdata/legacy, one prefiltered regexp each), structure is the same thirty rules on
// the parsed line, and structure-all every command rule shipped now (R0065 and up included).
// Per command: the parse (package shell) and every rule. These three run without the verdict
// cache (regex as it was; every line as if never seen), and structure-all once more with it,
// as the engine runs: the mix holds 1,674 distinct lines in 10,000, as real traffic repeats.
func BenchmarkCommandEngine(b *testing.B) {
	cmds := benchCommands(b, 10000)
	evs := make([]*abi.Event, len(cmds))
	for i, c := range cmds {
		evs[i] = commandEvent(c)
	}
	ids30 := map[string]bool{}
	for i := 1; i <= 30; i++ {
		ids30[fmt.Sprintf("R%04d", i)] = true
	}
	shipped, err := LoadDir("ttp")
	if err != nil {
		b.Fatal(err)
	}
	var first30 []*Rule
	for _, r := range shipped {
		if ids30[r.ID] {
			first30 = append(first30, r)
		}
	}
	structure30, err := NewRuleSet(first30)
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		set  *RuleSet
	}{
		{"regex", uncached(loadDir(b, "testdata/legacy"))},
		{"structure", uncached(structure30)},
		{"structure-all-uncached", uncached(loadShipped(b))},
		{"structure-all", loadShipped(b)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			out := make([]abi.TagDraft, 0, 64)
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				out = bc.set.Eval(evs[i%len(evs)], out[:0])
			}
		})
	}
}
