package report_test

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/decnet/ttp/report"
	"github.com/decnet/ttp/tagsource"
)

// browser finds a Chromium to drive: $TTP_CHROMIUM, else the names Debian and Google use.
// Without one the test skips, except under CI=true, where .ci/run installs Debian's chromium
// and a missing browser means the report went untested.
func browser(t *testing.T) string {
	t.Helper()
	names := []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless-shell"}
	if p := os.Getenv("TTP_CHROMIUM"); p != "" {
		names = append([]string{p}, names...)
	}
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	msg := "no Chromium found (looked for " + strings.Join(names, ", ") + "; apt-get install chromium): the report was not rendered in a browser"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// TestReportInBrowser renders the fixture's report in headless Chromium and reads the page as
// a reader sees it: every technique cell under its tactic with its count, the hostile command
// shown as text and never run, no script in the page, and the ingest counts. The screenshot
// goes to the test's temporary directory, and to $TTP_REPORT_SCREENSHOT when set (make
// report-screenshot writes docs/report.png that way).
func TestReportInBrowser(t *testing.T) {
	exe := browser(t)
	set, err := tagsource.ReadFile("../testdata/report/tags.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	htmlPath := filepath.Join(dir, "report.html")
	f, err := os.Create(htmlPath)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]string{"R0001": "System information discovery", "R0008": "Ingress tool transfer", "R0023": "Mirai-style busybox and shell probing"}
	if err := report.Write(f, set, report.Options{Title: "ttp report: fixture sensors", RuleNames: names, Version: "test"}); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	// The expected cells, counted from the tags themselves.
	want := map[string]int{}
	for _, tag := range set.Tags {
		want[tagsource.TechniqueID(tag)+"/"+tag.Tactic]++
	}

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.NoSandbox, // root in a container: Chromium's sandbox needs user namespaces
		chromedp.Headless,
		chromedp.DisableGPU,
		chromedp.WindowSize(1600, 1800),
		chromedp.UserDataDir(filepath.Join(dir, "profile")),
	)
	// A generous bound: the first start of Chromium on a loaded machine takes seconds.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()

	u := url.URL{Scheme: "file", Path: htmlPath}
	if err := chromedp.Do(bctx, chromedp.Navigate(u.String()), chromedp.WaitVisible("#matrix")); err != nil {
		t.Fatalf("chromium (%s): %v", exe, err)
	}
	// run is one query of the page; a failure names the query.
	run := func(what string, a func() error) {
		t.Helper()
		if err := a(); err != nil {
			t.Fatalf("chromium: %s: %v", what, err)
		}
	}
	var (
		cells                                   [][]string
		scripts                                 int
		hostile, total, lines, malformed, title string
		screenshot, full                        []byte
		err2                                    error
	)
	run("cells", func() error {
		cells, err2 = chromedp.Run(bctx, chromedp.Evaluate[[][]string](`Array.from(document.querySelectorAll('#matrix .tech')).map(e =>
			[e.dataset.technique, e.dataset.tactic, e.closest('.tactic').dataset.tactic, e.querySelector('.count').innerText.trim(),
			 String(e.getBoundingClientRect().width > 0 && e.getBoundingClientRect().height > 0)])`))
		return err2
	})
	run("scripts", func() error {
		scripts, err2 = chromedp.Run(bctx, chromedp.Evaluate[int](`document.scripts.length`))
		return err2
	})
	run("hostile command", func() error {
		hostile, err2 = chromedp.Run(bctx, chromedp.Text(`[data-session="e4a7c9d1"] ol.commands`))
		return err2
	})
	run("total", func() error { total, err2 = chromedp.Run(bctx, chromedp.Text(`#total-tags`)); return err2 })
	run("lines", func() error {
		lines, err2 = chromedp.Run(bctx, chromedp.Text(`#ingest [data-count="lines"]`))
		return err2
	})
	run("malformed", func() error {
		malformed, err2 = chromedp.Run(bctx, chromedp.Text(`#ingest [data-count="malformed"]`))
		return err2
	})
	run("title", func() error { title, err2 = chromedp.Run(bctx, chromedp.Title()); return err2 })
	run("screenshot", func() error { screenshot, err2 = chromedp.Run(bctx, chromedp.CaptureScreenshot()); return err2 })
	run("full screenshot", func() error { full, err2 = chromedp.Run(bctx, chromedp.FullScreenshot(100)); return err2 })
	// Printed, as a reader prints it: the @page size and the section breaks apply.
	var pdf []byte
	run("print to PDF", func() error {
		yes := true
		res, err := chromedp.Call(bctx, page.PrintToPDF, page.PrintToPDFParams{PreferCSSPageSize: &yes, PrintBackground: &yes})
		pdf = res.Data
		return err
	})

	got := map[string]int{}
	for _, c := range cells {
		id, tactic, column, count, visible := c[0], c[1], c[2], c[3], c[4]
		if tactic != column {
			t.Errorf("%s/%s drawn in the %s column", id, tactic, column)
		}
		if visible != "true" {
			t.Errorf("%s/%s has no size on the page", id, tactic)
		}
		n, err := strconv.Atoi(count)
		if err != nil {
			t.Errorf("%s/%s shows count %q", id, tactic, count)
		}
		got[id+"/"+tactic] = n
	}
	if len(got) != len(want) {
		t.Errorf("%d technique cells on the page, want %d", len(got), len(want))
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("cell %s shows %d, want %d", k, got[k], w)
		}
	}
	for _, k := range []string{"T1082/discovery", "T1059.004/execution", "T1105/command-and-control", "T1053.003/persistence"} {
		if _, ok := got[k]; !ok {
			t.Errorf("expected cell %s is not on the page", k)
		}
	}
	if scripts != 0 {
		t.Errorf("the page has %d script elements", scripts)
	}
	if !strings.Contains(hostile, "<script>alert(document.cookie)</script>") {
		t.Errorf("the hostile command is not shown as text: %q", hostile)
	}
	if total != strconv.Itoa(len(set.Tags)) {
		t.Errorf("total tags %q, want %d", total, len(set.Tags))
	}
	if lines != fmt.Sprint(set.Ingest.Lines) || malformed != fmt.Sprint(set.Ingest.Malformed) {
		t.Errorf("ingest lines %q malformed %q, want %d and %d", lines, malformed, set.Ingest.Lines, set.Ingest.Malformed)
	}
	if title != "ttp report: fixture sensors" {
		t.Errorf("title %q", title)
	}

	// The summary, the sessions and the rules each start a page.
	if pages := len(regexp.MustCompile(`/Type\s*/Page[^s]`).FindAll(pdf, -1)); pages < 3 {
		t.Errorf("printed report has %d pages, want at least 3 (one per section)", pages)
	}
	if err := os.WriteFile(filepath.Join(dir, "report.pdf"), pdf, 0o644); err != nil {
		t.Fatal(err)
	}

	shot := filepath.Join(dir, "report.png")
	if err := os.WriteFile(shot, full, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", shot, len(full))
	if out := os.Getenv("TTP_REPORT_SCREENSHOT"); out != "" {
		if err := os.WriteFile(out, screenshot, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot of the first screen: %s", out)
	}
}
