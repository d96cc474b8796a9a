package ui_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/logbox/logbox/appliance"
)

const chromiumPath = "/usr/bin/chromium"

// Lines a hostile program could write to a log file. They must show as text.
const (
	xssImg    = `<img src=x onerror=alert(1)>`
	xssScript = `<script>alert(1)</script>`
	xssJSURL  = `javascript:alert(1)`
	ansiLine  = "\x1b[31mred\x1b[0m"
	// xssField is the value of a field the "web" source adds to every line.
	xssField = `<img src=x onerror=alert(2)>`
)

// batchLines is how many lines share the token "batchtok": more than the
// page's 50 per request, so Load more is needed to see them all.
const batchLines = 80

// TestBrowser drives the page in headless Chromium against a real logbox
// appliance in direct mode: real tailer, real Bleve index, real embedded
// etcd, real HTTP API. Lines are written to files the appliance collects,
// and the page must find them.
func TestBrowser(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is required in CI: %v", chromiumPath, err)
		}
		t.Skipf("%s not installed: %v", chromiumPath, err)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 75*time.Second)
	defer cancel()

	// The logs: one file collected from the start (--collect), one that
	// a source with a hostile field reads, one for a paused source.
	root := t.TempDir()
	logsDir, webDir, archiveDir, extraDir := filepath.Join(root, "logs"), filepath.Join(root, "web"),
		filepath.Join(root, "archive"), filepath.Join(root, "extra")
	for _, d := range []string{logsDir, webDir, archiveDir, extraDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	appLog := filepath.Join(logsDir, "app.log")
	var appLines []string
	for i := range batchLines {
		level := []string{"ERROR", "INFO", "WARN"}[i%3]
		appLines = append(appLines, fmt.Sprintf("%s batchtok GET /api/orders/%02d upstream answered", level, i))
	}
	appLines = append(appLines,
		"ERROR uniqalpha payment declined",
		"WARN uniqbeta disk almost full",
		"INFO uniqgamma service started")
	appendLines(t, appLog, appLines...)
	appendLines(t, filepath.Join(webDir, "web.log"),
		"ERROR xsstok rendering "+xssImg+" in template",
		"ERROR xsstok "+xssScript+" injected",
		"WARN xsstok "+ansiLine+" "+xssJSURL)

	srv := startAppliance(ctx, t, root, filepath.Join(logsDir, "*.log"))
	srv.post(ctx, "/api/sources", map[string]any{
		"name": "web", "paths": []string{filepath.Join(webDir, "*.log")},
		"fields": map[string]string{"user": xssField},
	})
	srv.post(ctx, "/api/sources", map[string]any{
		"name": "archive", "paths": []string{filepath.Join(archiveDir, "*.log")}, "paused": true,
	})
	srv.waitTotal(ctx, "batchtok", batchLines)
	srv.waitTotal(ctx, "uniqgamma", 1)
	srv.waitTotal(ctx, "xsstok", 3)

	shotDir := os.Getenv("LOGBOX_ARTIFACTS")
	if shotDir == "" {
		shotDir = t.TempDir()
	} else if err := os.MkdirAll(shotDir, 0o755); err != nil {
		t.Fatal(err)
	}

	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(chromiumPath),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	defer cancelAlloc()
	ctx, cancelTab := chromedp.NewContext(allocCtx)
	defer cancelTab()

	// step runs actions with their own timeout, so that a hung step fails
	// with its name instead of eating the whole test's budget.
	step := func(name string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, scancel := context.WithTimeout(ctx, 10*time.Second)
		defer scancel()
		if err := chromedp.Do(sctx, actions...); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	// waitFor polls a JavaScript predicate until it is true.
	waitFor := func(name, expr string) {
		t.Helper()
		step(name, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(8*time.Second)))
	}
	evalString := func(expr string) string {
		t.Helper()
		sctx, scancel := context.WithTimeout(ctx, 10*time.Second)
		defer scancel()
		s, err := chromedp.Run(sctx, chromedp.Evaluate[string](expr))
		if err != nil {
			t.Fatalf("evaluate %s: %v", expr, err)
		}
		return s
	}
	// shot saves the whole page, or only what the window shows (for views
	// whose point is at the top of a long page).
	shotAction := func(name string, a chromedp.Action[[]byte]) {
		t.Helper()
		sctx, scancel := context.WithTimeout(ctx, 10*time.Second)
		defer scancel()
		buf, err := chromedp.Run(sctx, a)
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(shotDir, name+".png"), buf, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	shot := func(name string) { t.Helper(); shotAction(name, chromedp.FullScreenshot(100)) }
	shotWindow := func(name string) { t.Helper(); shotAction(name, chromedp.CaptureScreenshot()) }
	// searches lists the /api/search requests the page made since it was
	// last loaded, oldest first, from the browser's resource timing.
	searches := func() []url.Values {
		t.Helper()
		raw := evalString(`JSON.stringify(performance.getEntriesByType('resource')
			.map(e => new URL(e.name)).filter(u => u.pathname === '/api/search').map(u => u.search))`)
		var list []string
		if err := json.Unmarshal([]byte(raw), &list); err != nil {
			t.Fatalf("resource timing: %v", err)
		}
		out := make([]url.Values, 0, len(list))
		for _, s := range list {
			v, err := url.ParseQuery(strings.TrimPrefix(s, "?"))
			if err != nil {
				t.Fatalf("search request %q: %v", s, err)
			}
			out = append(out, v)
		}
		return out
	}
	lastSearch := func() url.Values {
		t.Helper()
		l := searches()
		if len(l) == 0 {
			return url.Values{}
		}
		return l[len(l)-1]
	}
	// search types q into the empty query box and presses Enter.
	search := func(name, q string) {
		t.Helper()
		step(name, chromedp.Evaluate[chromedp.Void](`document.getElementById('q').value = ''`),
			chromedp.SendKeys(chromedp.ID("q"), q+kb.Enter))
	}
	hitCount := func() string { return `document.querySelectorAll('#results .hit').length` }
	countIs := func(text string) string {
		return `document.getElementById('hit-count').textContent === ` + jsString(text)
	}

	// Start the browser with the whole test's context (the first Do binds
	// the browser's life to its context), then watch for dialogs (an alert
	// means injected script ran) and page errors.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 900)); err != nil {
		t.Fatalf("start browser: %v", err)
	}
	var dialogs atomic.Int32
	go func() {
		for ev, err := range chromedp.Events(ctx, page.JavascriptDialogOpening) {
			if err != nil {
				return
			}
			dialogs.Add(1)
			t.Logf("dialog opened: %s %q", ev.Type, ev.Message)
			_, _ = chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: false})
		}
	}()
	var consoleMu sync.Mutex
	var pageErrors []string
	go func() {
		for m, err := range chromedp.Console(ctx) {
			if err != nil {
				return
			}
			// The 400s this test provokes on purpose are logged as
			// "Failed to load resource"; anything else is a bug.
			if m.IsException() || strings.Contains(m.Text, "Content Security Policy") ||
				(m.Type == chromedp.ConsoleError && !strings.Contains(m.Text, "status of 400")) {
				consoleMu.Lock()
				pageErrors = append(pageErrors, m.String())
				consoleMu.Unlock()
			}
		}
	}()

	// The page loads and runs an all-time search: one page of the 86 lines.
	step("load page", chromedp.Navigate(srv.url+"/"), chromedp.WaitVisible(chromedp.ID("q")))
	waitFor("initial search", hitCount()+` === 50 && `+countIs("86 hits"))
	if l := searches(); len(l) != 1 || l[0].Get("from") != "" || l[0].Get("limit") != "50" {
		t.Errorf("initial searches %v, want one with limit=50 and no from (all time)", l)
	}

	// "/" focuses the query box.
	// One keyDown that carries the text, as a real keystroke does (and as
	// Puppeteer sends it), so that preventDefault on keydown stops the
	// character; chromedp.KeyEvent sends a separate char event instead.
	pressSlash := chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		for _, typ := range []input.DispatchKeyEventType{input.DispatchKeyEventTypeKeyDown, input.DispatchKeyEventTypeKeyUp} {
			p := input.DispatchKeyEventParams{Type: typ, Key: "/", Code: "Slash", WindowsVirtualKeyCode: 191, NativeVirtualKeyCode: 191}
			if typ == input.DispatchKeyEventTypeKeyDown {
				p.Text, p.UnmodifiedText = "/", "/"
			}
			if _, err := cdp.Call(ctx, tg, input.DispatchKeyEvent, p); err != nil {
				return err
			}
		}
		return nil
	})
	step("press /", chromedp.Evaluate[chromedp.Void](`document.activeElement.blur()`), pressSlash)
	if id := evalString(`document.activeElement.id`); id != "q" {
		t.Errorf(`after "/": focus on %q, want the query box`, id)
	}
	if v := evalString(`document.getElementById('q').value`); v != "" {
		t.Errorf(`"/" was typed into the box: %q`, v)
	}

	// Type a query, pick a range, press Enter. "+" is Bleve's must.
	const query = "+batchtok +host:testbox"
	step("search",
		chromedp.SetValue(chromedp.ID("range"), "now-1h"),
		chromedp.SendKeys(chromedp.ID("q"), query+kb.Enter),
	)
	waitFor("hits render", hitCount()+` === 50 && `+countIs(fmt.Sprintf("%d hits", batchLines)))
	if last := lastSearch(); last.Get("q") != query || last.Get("from") != "now-1h" || last.Get("cursor") != "" {
		t.Errorf("last /api/search request %v, want q=%q from=now-1h and no cursor", last, query)
	}
	// Newest first: the last line written leads, and times never rise.
	if got, want := evalString(`document.querySelector('#results .hit .line').textContent`), appLines[batchLines-1]; got != want {
		t.Errorf("first hit %q, want the newest line %q", got, want)
	}
	if bad := evalString(`(() => {
		const ts = Array.from(document.querySelectorAll('#results .hit .ts'), e => Date.parse(e.getAttribute('datetime')));
		for (let i = 1; i < ts.length; i++) if (!(ts[i] <= ts[i-1])) return 'hit ' + i + ' is newer than hit ' + (i-1);
		return '';
	})()`); bad != "" {
		t.Errorf("results are not newest first: %s", bad)
	}
	if ts := evalString(`document.querySelector('#results .hit .ts').textContent`); !regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}$`).MatchString(ts) {
		t.Errorf("timestamp shown as %q, want local time with ms", ts)
	}
	// The badge shows the level the index found in the line.
	firstLevel := strings.Fields(appLines[batchLines-1])[0]
	if got := evalString(`(() => { const b = document.querySelector('#results .hit .level'); return b.textContent + '|' + b.className; })()`); got != firstLevel+"|level level-"+strings.ToLower(firstLevel) {
		t.Errorf("level badge text|class %q, want %s", got, firstLevel)
	}
	if got := evalString(`document.querySelector('#results .hit .host').textContent + ' ' + document.querySelector('#results .hit .source').textContent`); got != "testbox "+appLog {
		t.Errorf("first hit host and source %q, want testbox %s", got, appLog)
	}
	shot("discover-light")

	// The URL holds the query and range, and a reload restores them.
	loc := evalString(`location.href`)
	u, err := url.Parse(loc)
	if err != nil || u.Query().Get("q") != query || u.Query().Get("from") != "now-1h" {
		t.Fatalf("URL after search is %q, want q=%q and from=now-1h", loc, query)
	}
	step("reload", chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("q")))
	waitFor("hits after reload", hitCount()+` === 50`)
	if got := evalString(`document.getElementById('q').value + '|' + document.getElementById('range').value`); got != query+"|now-1h" {
		t.Errorf("after reload query|range = %q", got)
	}
	if l := searches(); len(l) != 1 || l[0].Get("q") != query || l[0].Get("from") != "now-1h" {
		t.Errorf("reload searched %v, want the query again", l)
	}

	// Load more appends the next page using the server's cursor.
	step("load more", chromedp.Click(chromedp.ID("load-more")))
	waitFor("second page", hitCount()+fmt.Sprintf(` === %d && document.getElementById('load-more').hidden`, batchLines))
	if last := lastSearch(); last.Get("cursor") == "" || last.Get("q") != query || last.Get("from") != "now-1h" {
		t.Errorf("load more sent %v, want a cursor with the same q and from", last)
	}
	if got, want := evalString(`document.querySelector('#results .hit:last-child .line').textContent`), appLines[0]; got != want {
		t.Errorf("last hit after load more %q, want the oldest line %q", got, want)
	}
	if n := evalString(`String(new Set(Array.from(document.querySelectorAll('#results .hit .line'), e => e.textContent)).size)`); n != fmt.Sprint(batchLines) {
		t.Errorf("%s distinct lines after load more, want %d (a page repeated or skipped lines)", n, batchLines)
	}

	// Back restores the previous query.
	search("second search", "uniqalpha")
	waitFor("second search", countIs("1 hit"))
	if got := evalString(`document.querySelector('#results .hit .line').textContent`); got != "ERROR uniqalpha payment declined" {
		t.Errorf("uniqalpha finds %q", got)
	}
	step("back", chromedp.Evaluate[chromedp.Void](`history.back()`))
	waitFor("back restores query", `document.getElementById('q').value === `+jsString(query)+
		` && `+countIs(fmt.Sprintf("%d hits", batchLines)))

	// The syntax the help explains is what the real index does: a space is
	// OR, + must, - must not (also alone), and AND is just a word.
	if ph := evalString(`document.getElementById('q').placeholder`); ph != "+error +host:web1" {
		t.Errorf("placeholder %q", ph)
	}
	step("open help", chromedp.Click(chromedp.ID("syntax-toggle")))
	waitFor("help shown", `!document.getElementById('syntax-help').hidden`)
	if help := evalString(`document.getElementById('syntax-help').innerText`); !strings.Contains(help, "+timeout +host:web1") ||
		!strings.Contains(help, "not operators") || strings.Contains(help, "also work") {
		t.Errorf("syntax help reads %q", help)
	}
	shotWindow("discover-help")
	step("close help", chromedp.Click(chromedp.ID("syntax-toggle")))
	for _, c := range []struct{ q, count string }{
		{"uniqalpha uniqbeta", "2 hits"},
		{"+batchtok -level:INFO", "53 hits"}, // 27 of the 80 say INFO
		{"+level:ERROR +batchtok", "27 hits"},
		{"-batchtok", "6 hits"},
		{"uniqalpha AND uniqbeta", "2 hits"}, // "and" is one more OR'ed word
	} {
		search("syntax "+c.q, c.q)
		waitFor("syntax "+c.q, countIs(c.count))
	}

	// Untrusted lines and fields render as text.
	search("hostile search", "xsstok")
	waitFor("hostile hits", hitCount()+` === 3 && `+countIs("3 hits"))
	if n := evalString(`String(document.querySelectorAll('#results img, #results script, #results a, #results b, #results iframe, #results svg').length)`); n != "0" {
		t.Errorf("%s elements were created from log data", n)
	}
	// innerText is what a user sees.
	text := evalString(`document.getElementById('results').innerText`)
	for _, want := range []string{xssImg, xssScript, xssJSURL, "ESC[31mredESC[0m", "user=" + xssField} {
		if !strings.Contains(text, want) {
			t.Errorf("results do not show %q as text", want)
		}
	}
	if strings.Contains(evalString(`document.body.textContent`), "\x1b") {
		t.Errorf("a raw ESC character reached the page")
	}
	// ESC shows as a mark element, distinct from the line's own text.
	if got := evalString(`Array.from(document.querySelectorAll('#results .line .ctl'), e => e.textContent).join(',')`); got != "ESC,ESC" {
		t.Errorf("control marks in lines: %q, want ESC,ESC", got)
	}
	shot("discover-hostile")

	// A line appended while the page is open is found by the next search.
	const liveLine = "ERROR livetok appended while the page is open"
	appendLines(t, appLog, liveLine)
	srv.waitTotal(ctx, "livetok", 1)
	search("search appended line", "livetok")
	waitFor("appended line found", countIs("1 hit"))
	if got := evalString(`document.querySelector('#results .hit .line').textContent`); got != liveLine {
		t.Errorf("livetok finds %q, want %q", got, liveLine)
	}

	// A bad query shows the API's message (an unterminated phrase is a
	// syntax error in Bleve's query-string language).
	search("bad query", `"abc`)
	waitFor("error shown", `!document.getElementById('search-error').hidden`)
	if badMsg := evalString(`document.getElementById('search-error').textContent`); badMsg != "query: parse error: unterminated quote" {
		t.Errorf("error state shows %q, want the server's query error", badMsg)
	}
	if n := evalString(`String(document.querySelectorAll('#results .hit').length) + '|' + document.getElementById('hit-count').textContent`); n != "0|" {
		t.Errorf("after a bad query hits|count = %q, want none", n)
	}
	shot("discover-error")

	// No match: the empty state, without the no-sources hint.
	search("empty search", "nomatchxyz")
	waitFor("empty state", `!document.getElementById('empty-state').hidden && `+countIs("0 hits"))
	if got := evalString(`document.getElementById('empty-state').innerText`); !strings.Contains(got, "No lines match. Try a wider time range.") || strings.Contains(got, "No sources yet") {
		t.Errorf("empty state reads %q", got)
	}

	// Dark mode and a narrow window, from the first search's URL.
	step("dark mode", chromedp.Navigate(loc), chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}},
		})
		return err
	}))
	waitFor("dark hits", hitCount()+` === 50`)
	if bg := evalString(`getComputedStyle(document.body).backgroundColor`); bg != "rgb(18, 21, 27)" {
		t.Errorf("dark mode background %q", bg)
	}
	shot("discover-dark")
	step("light mode", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "light"}},
		})
		return err
	}), chromedp.EmulateViewport(420, 900))
	if w := evalString(`(() => {
		const d = document.documentElement, hit = document.querySelector('#results .hit').getBoundingClientRect();
		return d.scrollWidth > d.clientWidth || hit.right > d.clientWidth ? d.scrollWidth + '/' + hit.right + ' > ' + d.clientWidth : '';
	})()`); w != "" {
		t.Errorf("at 420px the page scrolls sideways: %s px", w)
	}
	shot("discover-narrow")
	step("wide again", chromedp.EmulateViewport(1280, 900))

	// Sources: the --collect source and the two made through the API.
	step("sources tab", chromedp.Click(chromedp.ID("tab-sources")))
	waitFor("sources listed", `document.querySelectorAll('#sources-body tr').length === 3`)
	if got := evalString(`document.getElementById('sources-table').innerText`); !strings.Contains(got, filepath.Join(logsDir, "*.log")) ||
		!strings.Contains(got, filepath.Join(webDir, "*.log")) || !strings.Contains(got, "paused") {
		t.Errorf("sources table reads %q", got)
	}
	if got := evalString(`document.querySelector('#sources-body tr[data-name="archive"] .badge').textContent + '|' + document.querySelector('#sources-body tr[data-name="web"] .badge').textContent`); got != "paused|active" {
		t.Errorf("archive|web state badges %q, want paused|active", got)
	}
	if !strings.Contains(evalString(`location.search`), "tab=sources") {
		t.Errorf("the Sources tab is not in the URL")
	}

	// Adding without paths shows the server's 400 inline.
	step("add without paths",
		chromedp.SendKeys(chromedp.ID("source-name"), "extra"),
		chromedp.Click(chromedp.ID("source-add")))
	waitFor("400 shown", `!document.getElementById('source-error').hidden`)
	if msg := evalString(`document.getElementById('source-error').textContent`); msg != "paths: must not be empty" {
		t.Errorf("form error %q, want the server's message", msg)
	}
	shot("sources")

	// Add a real source; lines written to its files become searchable.
	extraGlob := filepath.Join(extraDir, "*.log")
	step("add",
		chromedp.SendKeys(chromedp.ID("source-paths"), extraGlob),
		chromedp.SendKeys(chromedp.ID("source-topic"), "web"),
		chromedp.Click(chromedp.ID("source-add")))
	waitFor("added", `document.querySelector('#sources-body tr[data-name="extra"]') !== null && document.getElementById('source-error').hidden`)
	var got struct {
		Paths []string `json:"paths"`
		Topic string   `json:"topic"`
	}
	if code := srv.get(ctx, "/api/sources/extra", &got); code != http.StatusOK || len(got.Paths) != 1 || got.Paths[0] != extraGlob || got.Topic != "web" {
		t.Errorf("server has source extra as %d %+v, want paths [%s] topic web", code, got, extraGlob)
	}
	shot("sources-added")
	const extraLine = "WARN extratok from the source added in the page"
	appendLines(t, filepath.Join(extraDir, "extra.log"), extraLine)
	srv.waitTotal(ctx, "extratok", 1)
	step("discover tab", chromedp.Click(chromedp.ID("tab-discover")))
	step("all time", chromedp.SetValue(chromedp.ID("range"), ""))
	search("search new source", "extratok")
	waitFor("new source's line found", countIs("1 hit"))
	if got := evalString(`document.querySelector('#results .hit .line').textContent + '|' + document.querySelector('#results .hit .source').textContent`); got != extraLine+"|"+filepath.Join(extraDir, "extra.log") {
		t.Errorf("extratok finds %q", got)
	}

	// Remove asks for a second click, then the source is gone.
	step("sources tab again", chromedp.Click(chromedp.ID("tab-sources")))
	waitFor("sources with extra", `document.querySelectorAll('#sources-body tr').length === 4`)
	const removeBtn = `#sources-body tr[data-name="extra"] button.remove`
	step("remove", chromedp.Click(chromedp.CSS(removeBtn)), chromedp.Click(chromedp.CSS(removeBtn)))
	waitFor("removed", `document.querySelector('#sources-body tr[data-name="extra"]') === null && document.querySelectorAll('#sources-body tr').length === 3`)
	if code := srv.get(ctx, "/api/sources/extra", nil); code != http.StatusNotFound {
		t.Errorf("GET /api/sources/extra after Remove: %d, want 404", code)
	}

	// With no sources at all, an empty result points to the Sources tab.
	var list struct {
		Sources []struct {
			Name string `json:"name"`
		} `json:"sources"`
	}
	srv.get(ctx, "/api/sources", &list)
	for _, s := range list.Sources {
		srv.delete(ctx, "/api/sources/"+url.PathEscape(s.Name))
	}
	step("no sources", chromedp.Navigate(srv.url+"/?q=nomatchxyz"))
	waitFor("no-sources hint", `!document.getElementById('empty-nosources').hidden`)
	step("follow hint", chromedp.Click(chromedp.ID("empty-sources-link")))
	waitFor("sources empty", `!document.getElementById('view-sources').hidden && !document.getElementById('sources-empty').hidden`)

	if n := dialogs.Load(); n != 0 {
		t.Errorf("%d JavaScript dialogs opened: injected script ran", n)
	}
	if n := evalString(`String(document.querySelectorAll('img, script:not([src])').length)`); n != "0" {
		t.Errorf("%s img or inline script elements in the page", n)
	}
	consoleMu.Lock()
	defer consoleMu.Unlock()
	for _, e := range pageErrors {
		t.Errorf("page error: %s", e)
	}
	t.Logf("screenshots in %s", shotDir)
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// appendLines appends lines to the file at path, creating it.
func appendLines(t *testing.T, path string, lines ...string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(strings.Join(lines, "\n") + "\n"); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// server is a running appliance and a small client for its API.
type server struct {
	t   *testing.T
	url string
}

// startAppliance runs a real appliance in direct mode that may read below
// root and collects collect from the start. ctx bounds the wait for it to
// be ready; it is stopped (within 10s) when the test ends.
func startAppliance(ctx context.Context, t *testing.T, root, collect string) *server {
	t.Helper()
	cfg := appliance.DefaultConfig()
	cfg.DataDir = filepath.Join(t.TempDir(), "data")
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.EtcdListen = "127.0.0.1:0"
	cfg.Host = "testbox"
	cfg.AllowPaths = []string{root}
	cfg.Collect = []string{collect}
	cfg.ScanInterval = 100 * time.Millisecond
	cfg.ShutdownTimeout = 2 * time.Second
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	a, err := appliance.New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(runCtx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("appliance: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("appliance did not stop within 10s")
		}
	})
	select {
	case <-a.Ready():
	case err := <-done:
		t.Fatalf("appliance stopped before ready: %v", err)
	case <-ctx.Done():
		t.Fatalf("appliance not ready: %v", ctx.Err())
	}
	return &server{t: t, url: "http://" + a.Addr()}
}

// do sends a request with an optional JSON body and decodes a JSON answer
// into out (if not nil); it returns the status code.
func (s *server) do(ctx context.Context, method, path string, body, out any) int {
	s.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			s.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, s.url+path, rd)
	if err != nil {
		s.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(b, out); err != nil {
			s.t.Fatalf("%s %s: decode %q: %v", method, path, b, err)
		}
	}
	return resp.StatusCode
}

func (s *server) get(ctx context.Context, path string, out any) int {
	s.t.Helper()
	return s.do(ctx, http.MethodGet, path, nil, out)
}

func (s *server) post(ctx context.Context, path string, body any) {
	s.t.Helper()
	if code := s.do(ctx, http.MethodPost, path, body, nil); code != http.StatusCreated {
		s.t.Fatalf("POST %s %v: status %d", path, body, code)
	}
}

func (s *server) delete(ctx context.Context, path string) {
	s.t.Helper()
	if code := s.do(ctx, http.MethodDelete, path, nil, nil); code != http.StatusNoContent {
		s.t.Fatalf("DELETE %s: status %d", path, code)
	}
}

// waitTotal polls /api/search until q matches want lines (at most 15s):
// lines reach the index asynchronously.
func (s *server) waitTotal(ctx context.Context, q string, want int) {
	s.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		var res struct {
			Total int `json:"total"`
		}
		code := s.get(ctx, "/api/search?limit=1&q="+url.QueryEscape(q), &res)
		if code == http.StatusOK && res.Total == want {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("search %q: status %d, %d hits after 15s, want %d", q, code, res.Total, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// testWriter sends the appliance's log to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
