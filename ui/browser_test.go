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

	"github.com/IBM/sarama"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/logbox/logbox/appliance"
	"github.com/logbox/logbox/appliance/diskspace"
	"github.com/logbox/logbox/appliance/kafkatest"
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
	// xssGlob is a directory name in a glob that matches nothing.
	xssGlob = `<img src=x onerror=alert(3)>`
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
	// A source whose globs match nothing: a directory that is not there
	// (its name hostile markup), and a symlink loop that cannot be read.
	loopDir := filepath.Join(root, "loop")
	if err := os.Symlink(loopDir, loopDir); err != nil {
		t.Fatal(err)
	}
	noneGlob, loopGlob := filepath.Join(root, xssGlob, "**", "*.log"), filepath.Join(loopDir, "*.log")
	srv.post(ctx, "/api/sources", map[string]any{"name": "nomatch", "paths": []string{noneGlob, loopGlob}})
	srv.waitTotal(ctx, "batchtok", batchLines)
	srv.waitTotal(ctx, "uniqgamma", 1)
	srv.waitTotal(ctx, "xsstok", 3)

	shotDir := artifactsDir(t)
	ctx = newTab(ctx, t)

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
		if err := pollJS(ctx, expr, 8*time.Second); err != nil {
			dctx, dcancel := context.WithTimeout(ctx, 3*time.Second)
			defer dcancel()
			state, _ := chromedp.Run(dctx, chromedp.Evaluate[string](`JSON.stringify({url: location.href,
				hits: document.querySelectorAll('#results .hit').length, count: document.getElementById('hit-count').textContent,
				error: document.getElementById('search-error').textContent, status: document.getElementById('search-status').textContent})`))
			t.Fatalf("%s: %v\npage: %s", name, err, state)
		}
	}
	// waitForLong is waitFor with a longer limit, for a page that waits
	// on purpose (a Retry-After).
	waitForLong := func(name, expr string, d time.Duration) {
		t.Helper()
		if err := pollJS(ctx, expr, d); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	evalString := func(expr string) string { t.Helper(); return evalJS(ctx, t, expr) }
	// shot saves the whole page, or only what the window shows (for views
	// whose point is at the top of a long page).
	shot := func(name string) { t.Helper(); saveShot(ctx, t, shotDir, name, chromedp.FullScreenshot(100)) }
	shotWindow := func(name string) { t.Helper(); saveShot(ctx, t, shotDir, name, chromedp.CaptureScreenshot()) }
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
		return `!document.getElementById('results').hasAttribute('aria-busy') && document.getElementById('hit-count').textContent === ` + jsString(text)
	}

	// Start the browser with the whole test's context (the first Do binds
	// the browser's life to its context), then watch for dialogs (an alert
	// means injected script ran) and page errors.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 900)); err != nil {
		t.Fatalf("start browser: %v", err)
	}
	dialogs := watchDialogs(ctx, t)
	// The 400s and 429s this test provokes on purpose are logged as
	// "Failed to load resource"; any other console error is a bug.
	reportPageErrors := watchPageErrors(ctx, t, func(text string) bool {
		return !strings.Contains(text, "status of 400") && !strings.Contains(text, "status of 429")
	})

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
	// pressKey sends one real keystroke (keyDown + keyUp) to the page.
	pressKey := func(name, key, code string, vk int64) {
		t.Helper()
		step(name, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			for _, typ := range []input.DispatchKeyEventType{input.DispatchKeyEventTypeRawKeyDown, input.DispatchKeyEventTypeKeyUp} {
				p := input.DispatchKeyEventParams{Type: typ, Key: key, Code: code, WindowsVirtualKeyCode: vk, NativeVirtualKeyCode: vk}
				if _, err := cdp.Call(ctx, tg, input.DispatchKeyEvent, p); err != nil {
					return err
				}
			}
			return nil
		}))
	}
	// drag presses the left button at (x0, y), moves in steps to (x1, y)
	// and releases it there; x0 == x1 is a click.
	drag := func(name string, x0, x1, y float64) {
		t.Helper()
		step(name, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			send := func(typ input.DispatchMouseEventType, x float64, buttons int64) error {
				p := input.DispatchMouseEventParams{Type: typ, X: x, Y: y, Button: input.MouseButtonLeft, Buttons: buttons, ClickCount: 1}
				if typ == input.DispatchMouseEventTypeMouseMoved {
					p.ClickCount = 0
				}
				_, err := cdp.Call(ctx, tg, input.DispatchMouseEvent, p)
				return err
			}
			if err := send(input.DispatchMouseEventTypeMousePressed, x0, 1); err != nil {
				return err
			}
			if x1 != x0 {
				for i := 1; i <= 5; i++ {
					if err := send(input.DispatchMouseEventTypeMouseMoved, x0+(x1-x0)*float64(i)/5, 1); err != nil {
						return err
					}
				}
			}
			return send(input.DispatchMouseEventTypeMouseReleased, x1, 0)
		}))
	}
	// rect returns the page coordinates of the element expr names.
	rect := func(expr string) (left, top, width, height float64) {
		t.Helper()
		raw := evalString(`JSON.stringify((() => { const r = ` + expr + `.getBoundingClientRect(); return [r.left, r.top, r.width, r.height]; })())`)
		var v [4]float64
		if err := json.Unmarshal([]byte(raw), &v); err != nil {
			t.Fatalf("rect of %s: %v", expr, err)
		}
		return v[0], v[1], v[2], v[3]
	}
	urlParams := func() url.Values {
		t.Helper()
		u, err := url.Parse(evalString(`location.href`))
		if err != nil {
			t.Fatal(err)
		}
		return u.Query()
	}
	isRFC3339 := func(v string) bool { _, err := time.Parse(time.RFC3339Nano, v); return err == nil }

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
	// The query's plain terms are marked in the lines; field terms are not.
	if got := evalString(`Array.from(document.querySelectorAll('#results .hit .line mark'), e => e.textContent.toLowerCase()).filter(s => s !== 'batchtok').length + '/' + document.querySelectorAll('#results .hit .line mark').length`); got != "0/50" {
		t.Errorf("highlights (not batchtok)/(all) = %s, want 0/50", got)
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

	// Infinite scroll: scrolling to the end loads the next page by cursor.
	step("scroll to end", chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, document.body.scrollHeight)`))
	waitFor("next page by scrolling", hitCount()+fmt.Sprintf(` === %d`, batchLines))
	if last := lastSearch(); last.Get("cursor") == "" || last.Get("q") != query {
		t.Errorf("infinite scroll sent %v, want a cursor and the same q", last)
	}
	step("scroll to top", chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0)`))

	// Histogram: drag across the right half of the chart to zoom in. All
	// lines are in the last minute of the hour, so they stay in range.
	waitFor("histogram drawn", `document.querySelectorAll('#histogram-chart rect.bar').length >= 10`)
	cl, ct, cw, ch := rect(`document.querySelector('#histogram-chart svg')`)
	drag("zoom drag", cl+44+(cw-52)*0.5, cl+cw+20, ct+ch/2)
	waitFor("zoomed", `new URLSearchParams(location.search).get('to') !== null && `+countIs(fmt.Sprintf("%d hits", batchLines)))
	zp := urlParams()
	zf, zt := zp.Get("from"), zp.Get("to")
	if !isRFC3339(zf) || !isRFC3339(zt) || zp.Get("q") != query {
		t.Fatalf("after zoom the URL has q=%q from=%q to=%q, want the query and RFC 3339 times", zp.Get("q"), zf, zt)
	}
	ft, _ := time.Parse(time.RFC3339Nano, zf)
	tt, _ := time.Parse(time.RFC3339Nano, zt)
	if d := tt.Sub(ft); d < 20*time.Minute || d > 40*time.Minute || time.Since(tt) > time.Minute {
		t.Errorf("zoom selected %s .. %s (%s), want about the last half hour", zf, zt, d)
	}
	if last := lastSearch(); last.Get("from") != zf || last.Get("to") != zt {
		t.Errorf("search after zoom sent from=%q to=%q, want the URL's %q %q", last.Get("from"), last.Get("to"), zf, zt)
	}
	if v := evalString(`document.getElementById('range').value + '|' + !!document.getElementById('abs-from').value`); v != "custom|true" {
		t.Errorf("range select|abs-from filled after zoom = %s", v)
	}
	// Click the bar that holds the lines: the range narrows to that bucket.
	waitFor("zoomed histogram", `document.querySelector('#histogram-chart rect.bar[data-count="`+fmt.Sprint(batchLines+6)+`"], #histogram-chart rect.bar[data-count="`+fmt.Sprint(batchLines)+`"]') !== null`)
	bl, bt, bw, bh := rect(`Array.from(document.querySelectorAll('#histogram-chart rect.bar')).find(r => +r.dataset.count > 0)`)
	drag("click bar", bl+bw/2, bl+bw/2, bt+bh/2)
	waitFor("narrowed", `new URLSearchParams(location.search).get('from') !== `+jsString(zf)+` && `+countIs(fmt.Sprintf("%d hits", batchLines)))
	np := urlParams()
	nf, _ := time.Parse(time.RFC3339Nano, np.Get("from"))
	nt, _ := time.Parse(time.RFC3339Nano, np.Get("to"))
	if d := nt.Sub(nf); d <= 0 || d > time.Minute || nf.Before(ft) {
		t.Errorf("bar click narrowed to %s .. %s, want one bucket inside the zoomed range", np.Get("from"), np.Get("to"))
	}
	if last := lastSearch(); last.Get("from") != np.Get("from") || last.Get("to") != np.Get("to") {
		t.Errorf("search after bar click %v, want the URL's range", last)
	}
	shotWindow("histogram-zoomed")

	// Facets: filter WARN out, then ERROR in; each runs the query.
	waitFor("level facet", `document.querySelector('.facet[data-field="level"] .facet-value[data-value="WARN"] .facet-out') !== null`)
	step("filter out WARN", chromedp.Click(chromedp.CSS(`.facet[data-field="level"] .facet-value[data-value="WARN"] .facet-out`)))
	waitFor("WARN filtered out", countIs("54 hits"))
	if q := lastSearch().Get("q"); q != query+` -level:"WARN"` {
		t.Errorf("filter out sent q=%q", q)
	}
	waitFor("level facet again", `document.querySelector('.facet[data-field="level"] .facet-value[data-value="ERROR"] .facet-in') !== null && !document.querySelector('.facet[data-field="level"] .facet-value[data-value="WARN"]')`)
	step("filter in ERROR", chromedp.Click(chromedp.CSS(`.facet[data-field="level"] .facet-value[data-value="ERROR"] .facet-in`)))
	waitFor("ERROR filtered in", countIs("27 hits"))
	filtered := query + ` -level:"WARN" +level:"ERROR"`
	if q := lastSearch().Get("q"); q != filtered || urlParams().Get("q") != filtered {
		t.Errorf("filter in sent q=%q, URL q=%q, want %q", q, urlParams().Get("q"), filtered)
	}

	// Export links carry the current query and range.
	for _, format := range []string{"ndjson", "csv"} {
		href := evalString(`document.getElementById('export-` + format + `').href`)
		eu, err := url.Parse(href)
		if err != nil || eu.Path != "/api/export" || eu.Query().Get("q") != filtered || eu.Query().Get("from") != np.Get("from") ||
			eu.Query().Get("to") != np.Get("to") || eu.Query().Get("format") != format {
			t.Errorf("export %s link %q does not carry the current q/from/to", format, href)
			continue
		}
		resp, err := http.Get(href)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		want := 27
		if format == "csv" {
			want++ // the header
		}
		if n := strings.Count(string(body), "\n"); resp.StatusCode != http.StatusOK || n != want {
			t.Errorf("export %s: status %d, %d lines, want %d", format, resp.StatusCode, n, want)
		}
	}

	// Expand the newest ERROR hit, then open its surrounding lines: the
	// exact file context in file order, the hit marked.
	step("expand hit", chromedp.Click(chromedp.CSS(`#results .hit:first-child .expand`)))
	waitFor("details shown", `document.querySelector('#results .hit:first-child .hit-details .detail-table') !== null`)
	if got := evalString(`document.querySelector('#results .hit:first-child .hit-details').innerText`); !strings.Contains(got, "offset") || !strings.Contains(got, "file_id") || !strings.Contains(got, appLog) {
		t.Errorf("hit details read %q", got)
	}
	step("open context", chromedp.Click(chromedp.CSS(`#results .hit:first-child .context-open`)))
	waitFor("context shown", `!document.getElementById('context-panel').hidden && document.querySelector('#context-lines .context-line.anchor') !== null`)
	const anchorIdx = 78 // the newest ERROR batchtok line
	if got := evalString(`document.querySelector('#context-lines .anchor .line').textContent`); got != appLines[anchorIdx] {
		t.Errorf("context anchor %q, want %q", got, appLines[anchorIdx])
	}
	var ctxLines []string
	if err := json.Unmarshal([]byte(evalString(`JSON.stringify(Array.from(document.querySelectorAll('#context-lines .context-line .line'), e => e.textContent))`)), &ctxLines); err != nil {
		t.Fatal(err)
	}
	if want := appLines[anchorIdx-20:]; strings.Join(ctxLines, "\n") != strings.Join(want, "\n") {
		t.Errorf("context lines\n%s\nwant (file order)\n%s", strings.Join(ctxLines, "\n"), strings.Join(want, "\n"))
	}
	if got := evalString(`document.querySelectorAll('#context-lines .anchor mark').length + '|' + Array.from(document.querySelectorAll('#context-lines .context-offset'), e => +e.parentNode.dataset.offset).every((v, i, a) => i === 0 || v > a[i-1])`); got != "1|true" {
		t.Errorf("context anchor marks|offsets rising = %s", got)
	}
	shotWindow("context")
	pressKey("Esc closes context", "Escape", "Escape", 27)
	waitFor("context closed", `document.getElementById('context-panel').hidden`)
	pressKey("Esc closes details", "Escape", "Escape", 27)
	waitFor("details closed", `document.querySelectorAll('#results .hit.expanded').length === 0`)

	// Absolute range inputs: a day in the year 2000 has nothing.
	step("absolute range", chromedp.Evaluate[chromedp.Void](`(() => {
		document.getElementById('abs-from').value = '2000-01-01T00:00:00';
		document.getElementById('abs-to').value = '2000-01-02T00:00:00';
		document.getElementById('abs-to').dispatchEvent(new Event('change'));
	})()`))
	waitFor("absolute range searched", countIs("0 hits"))
	ap := urlParams()
	af, _ := time.Parse(time.RFC3339Nano, ap.Get("from"))
	at, _ := time.Parse(time.RFC3339Nano, ap.Get("to"))
	if af.Year() != 2000 && af.Year() != 1999 || at.Sub(af) != 24*time.Hour {
		t.Errorf("absolute range in URL from=%q to=%q, want one day in 2000", ap.Get("from"), ap.Get("to"))
	}
	if last := lastSearch(); last.Get("from") != ap.Get("from") || last.Get("to") != ap.Get("to") {
		t.Errorf("absolute range request %v, want the URL's", last)
	}
	// Back to a preset for the rest.
	step("preset again", chromedp.SetValue(chromedp.ID("range"), "now-1h"),
		chromedp.Evaluate[chromedp.Void](`document.getElementById('range').dispatchEvent(new Event('change'))`))
	waitFor("preset searched", `new URLSearchParams(location.search).get('from') === 'now-1h' && !new URLSearchParams(location.search).get('to')`)

	// The syntax the help explains is what the real index does: a space is
	// OR, + must, - must not (also alone), AND, OR, NOT and parentheses
	// are operators in upper case and words in lower case.
	if ph := evalString(`document.getElementById('q').placeholder`); ph != "+error +host:web1" {
		t.Errorf("placeholder %q", ph)
	}
	step("open help", chromedp.Click(chromedp.ID("syntax-toggle")))
	waitFor("help shown", `!document.getElementById('syntax-help').hidden`)
	if help := evalString(`document.getElementById('syntax-help').innerText`); !strings.Contains(help, "+timeout +host:web1") ||
		!strings.Contains(help, "timeout AND host:web1") || !strings.Contains(help, "(GET OR POST) AND status:>=500") ||
		!strings.Contains(help, "Lower-case and, or, not are plain words") || strings.Contains(help, "not operators") ||
		!strings.Contains(help, "must begin with a fixed character (at most 4 different ones") ||
		!strings.Contains(help, "api*, /err(or)?/, /[Ee]rror/, /(error|warn)/ work; *x, ?x, /.*/, /[a-z]*/ are refused") ||
		!strings.Contains(help, "the place is marked under the query box") {
		t.Errorf("syntax help reads %q", help)
	}
	shotWindow("discover-help")
	step("close help", chromedp.Click(chromedp.ID("syntax-toggle")))
	for _, c := range []struct{ q, count string }{
		{"uniqalpha uniqbeta", "2 hits"},
		{"+batchtok -level:INFO", "53 hits"}, // 27 of the 80 say INFO
		{"+level:ERROR +batchtok", "27 hits"},
		{"-batchtok", "6 hits"},
		{"uniqalpha AND uniqbeta", "0 hits"}, // on different lines
		{"uniqalpha OR uniqbeta", "2 hits"},
		{"uniqalpha and uniqbeta", "2 hits"}, // "and" is one more OR'ed word
		{"batchtok AND NOT level:INFO", "53 hits"},
		{"(uniqalpha OR uniqbeta) AND level:WARN", "1 hit"},
		{"level:(ERROR OR WARN) AND batchtok", "53 hits"},
		{"/uniq(alpha|beta)/", "2 hits"}, // a regexp that begins with a fixed character
	} {
		search("syntax "+c.q, c.q)
		waitFor("syntax "+c.q, countIs(c.count))
	}
	// What the help says is refused is refused, with the server's reason.
	for _, q := range []string{"*x", "/.*/"} {
		search("refused "+q, q)
		// Under the query box when the server says where, else above the
		// results.
		shown := `(document.getElementById('search-error').hidden ? document.getElementById('query-error-msg') : document.getElementById('search-error')).textContent`
		waitFor("refused "+q, shown+`.startsWith(`+jsString("query: "+q)+`)`)
		if msg := evalString(shown); !strings.HasPrefix(msg, "query: "+q+" can begin with any character") {
			t.Errorf("%s shows %q, want the server's refusal", q, msg)
		}
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
	// Highlighting keeps hostile text inert, and so does the context panel.
	if got := evalString(`Array.from(document.querySelectorAll('#results .line *'), e => e.tagName + '.' + e.className).filter(s => s !== 'MARK.hl' && s !== 'SPAN.ctl').join(',') + '|' + document.querySelectorAll('#results .line mark').length`); got != "|3" {
		t.Errorf("elements inside hostile lines (other than marks)|marks = %q, want |3", got)
	}
	if got := evalString(`document.querySelector('.facet[data-field="fields.user"] .facet-label').textContent`); got != xssField {
		t.Errorf("fields.user facet shows %q, want the value as text", got)
	}
	step("hostile details", chromedp.Click(chromedp.CSS(`#results .hit:last-child .expand`)))
	step("hostile context", chromedp.Click(chromedp.CSS(`#results .hit:last-child .context-open`)))
	waitFor("hostile context shown", `document.querySelectorAll('#context-lines .context-line').length === 3`)
	ctxText := evalString(`document.getElementById('context-panel').innerText`)
	for _, want := range []string{xssImg, xssScript, xssJSURL, "ESC[31mredESC[0m"} {
		if !strings.Contains(ctxText, want) {
			t.Errorf("context panel does not show %q as text", want)
		}
	}
	if n := evalString(`String(document.querySelectorAll('#context-panel img, #context-panel script, #context-panel a, #context-panel iframe, #context-panel svg, .hit-details img, .hit-details script').length)`); n != "0" {
		t.Errorf("%s elements were created from log data in the context panel or details", n)
	}
	if got := evalString(`document.querySelector('#context-lines .anchor .line').textContent`); got != "ERROR xsstok rendering "+xssImg+" in template" {
		t.Errorf("hostile context anchor %q", got)
	}
	shotWindow("context-hostile")
	pressKey("Esc closes hostile context", "Escape", "Escape", 27)
	waitFor("hostile context closed", `document.getElementById('context-panel').hidden`)

	// A line appended while the page is open is found by the next search.
	const liveLine = "ERROR livetok appended while the page is open"
	appendLines(t, appLog, liveLine)
	srv.waitTotal(ctx, "livetok", 1)
	search("search appended line", "livetok")
	waitFor("appended line found", countIs("1 hit"))
	if got := evalString(`document.querySelector('#results .hit .line').textContent`); got != liveLine {
		t.Errorf("livetok finds %q, want %q", got, liveLine)
	}

	// Live tail: new matching lines are put on top as they are indexed;
	// scrolling away pauses the display and a banner counts what waits.
	search("tail search", "batchtok tailtok")
	waitFor("tail search", hitCount()+` === 50`)
	step("live on", chromedp.Click(chromedp.ID("live-toggle")))
	waitFor("tail open", `document.getElementById('live-toggle').getAttribute('aria-pressed') === 'true' && document.getElementById('tail-status').textContent.startsWith('live')`)
	if urlParams().Get("live") != "1" {
		t.Errorf("live tail is not in the URL: %s", evalString(`location.search`))
	}
	const tailLine1, tailLine2 = "ERROR tailtok first streamed line", "WARN tailtok second streamed line"
	appendLines(t, appLog, tailLine1)
	waitFor("streamed line on top", `document.querySelector('#results .hit .line').textContent === `+jsString(tailLine1)+` && `+hitCount()+` === 51`)
	if got := evalString(`String(document.querySelectorAll('#results .hit:first-child .line mark').length)`); got != "1" {
		t.Errorf("streamed line has %s highlights, want 1 (tailtok)", got)
	}
	step("scroll away", chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 800)`))
	waitFor("paused", `!document.getElementById('tail-banner').hidden`)
	appendLines(t, appLog, tailLine2)
	waitFor("banner counts", `document.getElementById('tail-banner').textContent === 'paused — 1 new line, click to resume'`)
	if got := evalString(`document.querySelector('#results .hit .line').textContent`); got != tailLine1 {
		t.Errorf("while paused the first line changed to %q", got)
	}
	shotWindow("live-paused")
	step("resume", chromedp.Click(chromedp.ID("tail-banner")))
	waitFor("resumed", `document.querySelector('#results .hit .line').textContent === `+jsString(tailLine2)+` && window.scrollY === 0 && document.getElementById('tail-banner').hidden`)
	shotWindow("live")
	step("live off", chromedp.Click(chromedp.ID("live-toggle")))
	waitFor("live off", `document.getElementById('live-toggle').getAttribute('aria-pressed') === 'false' && new URLSearchParams(location.search).get('live') === null`)

	// Too many live tails from this address (8 open elsewhere): the page
	// says what the server said, not a bare "closed", and retries after
	// the server's Retry-After, so the tail opens once one of them ends.
	closeTails := openTails(ctx, t, srv.url, 8)
	step("live on again", chromedp.Click(chromedp.ID("live-toggle")))
	waitFor("tail refused", `document.getElementById('tail-status').classList.contains('failed') && !document.getElementById('tail-status').hidden`)
	if got := evalString(`document.getElementById('tail-status').textContent`); got != "live tail refused: too many live tails from 127.0.0.1: 8 are open, the limit per client is 8; close one (every open live view counts) or retry later — retrying in 5 s" {
		t.Errorf("refused tail shows %q", got)
	}
	shotWindow("live-refused")
	closeTails()
	waitForLong("tail open after retry", `document.getElementById('tail-status').textContent.startsWith('live:') && !document.getElementById('tail-status').classList.contains('failed')`, 15*time.Second)
	step("live off again", chromedp.Click(chromedp.ID("live-toggle")))
	waitFor("live off again", `document.getElementById('live-toggle').getAttribute('aria-pressed') === 'false'`)

	// Query history remembers what was run, newest first.
	if got := evalString(`Array.from(document.querySelectorAll('#q-history option'), o => o.value).slice(0, 2).join('|')`); got != "batchtok tailtok|livetok" {
		t.Errorf("query history starts %q", got)
	}

	// A bad query shows the API's message (an unterminated phrase is a
	// syntax error in Bleve's query-string language).
	// The server says where the query goes wrong; the page marks it under
	// the query box.
	var bad struct {
		Error    string `json:"error"`
		Position int    `json:"position"`
	}
	if code, body := srv.raw(ctx, "/api/search?q="+url.QueryEscape(`"abc`)); code != http.StatusBadRequest || json.Unmarshal([]byte(body), &bad) != nil || bad.Position != 1 {
		t.Fatalf(`/api/search?q="abc answered %d %s, want 400 at position 1 (the unclosed quote)`, code, body)
	}
	search("bad query", `"abc`)
	waitFor("error shown", `!document.getElementById('query-error').hidden`)
	if got := evalString(`document.getElementById('query-error-msg').textContent + '|' + document.querySelector('#query-error-where mark').textContent + '|' + document.getElementById('search-error').hidden`); got != bad.Error+`|"|true` {
		t.Errorf("error state shows %q, want the server's query error %q with the quote marked", got, bad.Error)
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
	shotWindow("discover-dark")
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
	shotWindow("discover-narrow")
	step("wide again", chromedp.EmulateViewport(1280, 900))

	// A source over more files than the Sources view lists one by one
	// (added only now: its lines would change the counts above).
	const manyFiles = 205
	manyDir := filepath.Join(root, "many")
	if err := os.MkdirAll(manyDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range manyFiles {
		appendLines(t, filepath.Join(manyDir, fmt.Sprintf("f%03d.log", i)), "INFO manytok "+fmt.Sprint(i))
	}
	srv.post(ctx, "/api/sources", map[string]any{"name": "many", "paths": []string{filepath.Join(manyDir, "*.log")}})
	srv.waitTotal(ctx, "manytok", manyFiles)

	// Sources: the --collect source, the ones made through the API.
	step("sources tab", chromedp.Click(chromedp.ID("tab-sources")))
	waitFor("sources listed", `document.querySelectorAll('#sources-body tr.source-row').length === 5`)
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
	waitFor("400 shown", `document.getElementById('source-paths-error') !== null`)
	if msg := evalString(`document.getElementById('source-paths-error').textContent + '|' + document.getElementById('source-paths').getAttribute('aria-invalid')`); msg != "paths: must not be empty|true" {
		t.Errorf("paths error %q, want the server's message next to Paths", msg)
	}
	// "paths[0]: ..." also goes next to Paths, "multiline.pattern: ..." next
	// to the pattern (in the options, which open).
	step("relative path",
		chromedp.SendKeys(chromedp.ID("source-paths"), "relative/x.log"),
		chromedp.Click(chromedp.ID("source-add")))
	waitFor("paths[0] shown", `(document.getElementById('source-paths-error') || {}).textContent === `+jsString(`paths[0]: "relative/x.log" must be an absolute path`))
	step("bad pattern",
		chromedp.Evaluate[chromedp.Void](`document.getElementById('source-paths').value = ''`),
		chromedp.Evaluate[chromedp.Void](`document.getElementById('source-more').open = true`),
		chromedp.SendKeys(chromedp.ID("source-paths"), filepath.Join(extraDir, "*.log")),
		chromedp.SendKeys(chromedp.ID("source-ml-pattern"), "("),
		chromedp.Click(chromedp.ID("source-add")))
	waitFor("pattern error shown", `document.getElementById('source-ml-pattern-error') !== null && document.getElementById('source-paths-error') === null`)
	if msg := evalString(`document.getElementById('source-ml-pattern-error').textContent`); !strings.HasPrefix(msg, "multiline.pattern: ") {
		t.Errorf("pattern error %q", msg)
	}
	shot("sources")
	step("clear options",
		chromedp.Evaluate[chromedp.Void](`document.getElementById('source-paths').value = ''; document.getElementById('source-ml-pattern').value = ''`))

	// Per-file status under each source.
	waitFor("file rows", `document.querySelector('#sources-body tr.source-files[data-name="web"] .file-row') !== null`)
	if got := evalString(`document.querySelector('#sources-body tr.source-files[data-name="web"] .file-row').innerText`); !strings.Contains(got, filepath.Join(webDir, "web.log")) || !strings.Contains(got, "/s") {
		t.Errorf("web's file row reads %q", got)
	}

	// Completeness: every file collected is complete, byte for byte, and
	// so is each source; the numbers are the ledger's in /api/status.
	var srcList struct {
		Sources []struct {
			Name  string   `json:"name"`
			Paths []string `json:"paths"`
		} `json:"sources"`
	}
	srv.get(ctx, "/api/sources", &srcList)
	collectName := ""
	for _, s := range srcList.Sources {
		if len(s.Paths) == 1 && s.Paths[0] == filepath.Join(logsDir, "*.log") {
			collectName = s.Name
		}
	}
	if collectName == "" {
		t.Fatalf("no source for --collect in %+v", srcList)
	}
	collectRow := `#sources-body tr.source-files[data-name=` + jsString(collectName) + `]`
	waitFor("ledger complete", `(() => {
		const rows = document.querySelectorAll('`+collectRow+` .file-row, #sources-body tr.source-files[data-name="web"] .file-row');
		return rows.length === 2 && Array.from(rows).every(r => r.dataset.state === 'complete') &&
			document.querySelector('#sources-body tr.source-row[data-name=`+jsString(collectName)+`] .source-state .ledger').textContent === 'complete';
	})()`)
	var led struct {
		Ledger struct {
			Files []struct {
				Source       string `json:"source"`
				Path         string `json:"path"`
				State        string `json:"state"`
				SizeBytes    int64  `json:"size_bytes"`
				IndexedBytes int64  `json:"indexed_bytes"`
			} `json:"files"`
		} `json:"ledger"`
	}
	srv.get(ctx, "/api/status", &led)
	for _, f := range led.Ledger.Files {
		if f.Path != appLog {
			continue
		}
		if f.State != "complete" || f.SizeBytes == 0 || f.IndexedBytes != f.SizeBytes {
			t.Errorf("ledger of %s in /api/status: %+v, want complete", appLog, f)
		}
		// The row reads the ledger: size, read, acked and indexed are the
		// file's size, in flight and gap nothing.
		row := evalString(`(() => {
			const r = document.querySelector('` + collectRow + ` .file-row[data-path=` + jsString(appLog) + `]');
			return ['.file-state .ledger', '.file-size', '.file-read', '.file-acked', '.file-indexed', '.file-inflight', '.file-gap']
				.map(c => c === '.file-state .ledger' ? r.querySelector(c).textContent : r.querySelector(c).title).join('|');
		})()`)
		size := fmt.Sprintf("%s bytes", commas(f.SizeBytes))
		if want := strings.Join([]string{"complete", size, size, size, size, "0 bytes", "0 bytes"}, "|"); row != want {
			t.Errorf("%s's row reads %q, want %q", appLog, row, want)
		}
	}
	if got := evalString(`document.querySelector('` + collectRow + ` .source-summary').textContent`); !strings.Contains(got, "complete: every acked byte of its 1 file is in the index") {
		t.Errorf("collected source's summary reads %q", got)
	}

	// The source whose globs match nothing says so, with the globs and the
	// error of the one that cannot be read; its markup stays text.
	waitFor("no match shown", `document.querySelector('#sources-body tr.source-row[data-name="nomatch"] .badge.no-match') !== null &&
		document.querySelector('#sources-body tr.source-files[data-name="nomatch"] .source-warning') !== null`)
	if got := evalString(`document.querySelector('#sources-body tr.source-files[data-name="nomatch"] .source-warning').innerText`); got != "Nothing collected on this box. Its paths match no file: check the globs (and that logbox may read their directories)." {
		t.Errorf("no-match warning reads %q", got)
	}
	if got := evalString(`Array.from(document.querySelectorAll('#sources-body tr.source-row[data-name="nomatch"] .glob'), g => g.innerText.replace(/\s+/g, ' ')).join('\n')`); !strings.HasPrefix(got, noneGlob+" no file\n"+loopGlob+" ") ||
		!strings.Contains(got, "too many levels of symbolic links") {
		t.Errorf("no-match globs read %q", got)
	}
	if got := evalString(`document.querySelector('#sources-body tr.source-row[data-name="nomatch"] .no-match').textContent`); got != "no file matches" {
		t.Errorf("no-match badge %q", got)
	}
	if n := evalString(`String(document.querySelectorAll('#sources-body img').length)`); n != "0" {
		t.Errorf("%s img elements in the sources table", n)
	}
	step("to the table", chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, document.getElementById('sources-table').getBoundingClientRect().top + window.scrollY - 60)`))
	shotWindow("sources-ledger")
	// Hundreds of files: the first 200 listed, the rest counted.
	waitFor("many files", `(document.querySelector('#sources-body tr.source-files[data-name="many"] .files-more') || {}).textContent === 'and 5 more files not shown: 5 complete'`)
	if got := evalString(`String(document.querySelectorAll('#sources-body tr.source-files[data-name="many"] .file-row').length) + '|' + document.querySelector('#sources-body tr.source-files[data-name="many"] .source-summary').textContent`); got != "200|205 files followed · 205 open — complete: every acked byte of its 205 files is in the index" {
		t.Errorf("many files row count|summary = %q", got)
	}
	step("to the count", chromedp.Evaluate[chromedp.Void](`document.querySelector('#sources-body tr.source-files[data-name="many"] .files-more').scrollIntoView({block: 'center'})`))
	shotWindow("sources-many")
	if w := evalString(`(() => { const d = document.documentElement, t = document.getElementById('sources-table').getBoundingClientRect(); return d.scrollWidth > d.clientWidth || t.right > d.clientWidth - 20 ? d.scrollWidth + '/' + t.right + ' > ' + d.clientWidth : ''; })()`); w != "" {
		t.Errorf("the Sources view is wider than the window: %s px", w)
	}
	// In a narrow window the ledger's columns stack, labelled, without
	// sideways scrolling; in dark mode the badges stay readable.
	step("narrow sources", chromedp.EmulateViewport(420, 900), chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}},
		})
		return err
	}))
	if w := evalString(`(() => { const d = document.documentElement; return d.scrollWidth > d.clientWidth ? d.scrollWidth + ' > ' + d.clientWidth : ''; })()`); w != "" {
		t.Errorf("at 420px the Sources view scrolls sideways: %s px", w)
	}
	step("narrow sources to the table", chromedp.Evaluate[chromedp.Void](`document.getElementById('sources-table').scrollIntoView()`))
	shotWindow("sources-narrow-dark")
	step("wide light sources", chromedp.EmulateViewport(1280, 900), chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "light"}},
		})
		return err
	}))

	// Edit: the form takes the source, a change is PUT, other settings stay.
	step("edit web", chromedp.Click(chromedp.CSS(`#sources-body tr[data-name="web"] button.edit`)))
	waitFor("edit form", `document.getElementById('source-name').value === 'web' && document.getElementById('source-name').readOnly`)
	if got := evalString(`document.getElementById('source-fields').value`); got != "user="+xssField {
		t.Errorf("edit form fields %q", got)
	}
	step("save web", chromedp.SendKeys(chromedp.ID("source-topic"), "webtopic"), chromedp.Click(chromedp.ID("source-add")))
	waitFor("saved", `document.querySelector('#sources-body tr.source-row[data-name="web"] .source-topic').textContent === 'webtopic' && !document.getElementById('source-name').readOnly`)
	var web struct {
		Topic  string            `json:"topic"`
		Paused bool              `json:"paused"`
		Fields map[string]string `json:"fields"`
	}
	if srv.get(ctx, "/api/sources/web", &web); web.Topic != "webtopic" || web.Fields["user"] != xssField || web.Paused {
		t.Errorf("after edit the server has web as %+v", web)
	}
	// Pause and resume.
	step("pause web", chromedp.Click(chromedp.CSS(`#sources-body tr[data-name="web"] button.pause`)))
	waitFor("paused", `document.querySelector('#sources-body tr.source-row[data-name="web"] .badge').textContent === 'paused'`)
	if srv.get(ctx, "/api/sources/web", &web); !web.Paused || web.Topic != "webtopic" {
		t.Errorf("after pause the server has web as %+v", web)
	}
	shot("sources-paused")
	step("resume web", chromedp.Click(chromedp.CSS(`#sources-body tr[data-name="web"] button.pause`)))
	waitFor("resumed", `document.querySelector('#sources-body tr.source-row[data-name="web"] .badge').textContent === 'active'`)
	if srv.get(ctx, "/api/sources/web", &web); web.Paused {
		t.Errorf("after resume the server has web as %+v", web)
	}

	// Add a real source; lines written to its files become searchable.
	extraGlob := filepath.Join(extraDir, "*.log")
	step("add",
		chromedp.SendKeys(chromedp.ID("source-name"), "extra"),
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

	// A term on more lines than the search counts (10 000): the page says
	// "N+ hits"; the histogram counts them all. The bound is checked per
	// block of 1024 lines with a block in flight per core, so it may count
	// a couple of blocks past 10 000: 40 000 lines are past it on any core
	// count this runs on (12 000 were counted exactly on a CI run).
	bulk := make([]string, 40000)
	bulkStart := time.Now().Add(-30 * time.Minute).UTC()
	for i := range bulk {
		bulk[i] = fmt.Sprintf("%s INFO bulktok line %05d", bulkStart.Add(time.Duration(i)*time.Millisecond).Format(time.RFC3339Nano), i)
	}
	appendLines(t, filepath.Join(extraDir, "extra.log"), bulk...)
	srv.waitTotal(ctx, "bulktok", len(bulk))
	search("bounded count", "bulktok")
	waitFor("bounded count shown", `!document.getElementById('results').hasAttribute('aria-busy') && /^[0-9,]+\+ hits$/.test(document.getElementById('hit-count').textContent)`)
	waitFor("histogram counts every line", `/^40,000 lines/.test(document.getElementById('histogram-label').textContent)`)
	shot("discover-bounded-count")

	// Remove asks for a second click, then the source is gone.
	step("sources tab again", chromedp.Click(chromedp.ID("tab-sources")))
	waitFor("sources with extra", `document.querySelectorAll('#sources-body tr.source-row').length === 6`)
	const removeBtn = `#sources-body tr[data-name="extra"] button.remove`
	step("remove", chromedp.Click(chromedp.CSS(removeBtn)), chromedp.Click(chromedp.CSS(removeBtn)))
	waitFor("removed", `document.querySelector('#sources-body tr[data-name="extra"]') === null && document.querySelectorAll('#sources-body tr.source-row').length === 5`)
	if code := srv.get(ctx, "/api/sources/extra", nil); code != http.StatusNotFound {
		t.Errorf("GET /api/sources/extra after Remove: %d, want 404", code)
	}

	// Status: numbers at a glance, refreshing by themselves. A line with
	// invalid UTF-8 shows up as not delivered as written.
	appendLines(t, filepath.Join(webDir, "web.log"), "INFO badbytes \xff\xfe here")
	srv.waitTotal(ctx, "badbytes", 1)
	step("status tab", chromedp.Click(chromedp.ID("tab-status")))
	waitFor("status shown", `document.querySelector('[data-metric="index-docs"]') !== null && document.querySelector('[data-table="undelivered"]') !== null`)
	if !strings.Contains(evalString(`location.search`), "tab=status") {
		t.Errorf("the Status tab is not in the URL")
	}
	metric := func(k string) string {
		return evalString(`document.querySelector('[data-metric="` + k + `"]').textContent`)
	}
	if d := metric("index-docs"); d == "0" || !regexp.MustCompile(`^[\d,.]+$`).MatchString(d) {
		t.Errorf("index docs %q", d)
	}
	if f := metric("tail-files"); f == "0" || !regexp.MustCompile(`^\d+$`).MatchString(f) {
		t.Errorf("files followed %q", f)
	}
	if r := metric("tail-rate"); !strings.HasSuffix(r, "/s") {
		t.Errorf("tail rate %q", r)
	}
	if h := metric("etcd-health"); h != "healthy" {
		t.Errorf("etcd health %q", h)
	}
	if k := evalString(`document.querySelector('[data-card="producer"] .kafka-off').textContent`); !strings.Contains(k, "direct mode") {
		t.Errorf("producer card in direct mode reads %q", k)
	}
	if u := evalString(`document.querySelector('[data-table="undelivered"]').innerText`); !strings.Contains(u, "web") {
		t.Errorf("undelivered table reads %q", u)
	}
	statusCalls := `performance.getEntriesByType('resource').filter(e => new URL(e.name).pathname === '/api/status').length`
	// The settings fold open, and stay open across the refresh waited
	// for here.
	if got := evalString(`String(document.querySelector('[data-card="settings"] details').open)`); got != "false" {
		t.Errorf("settings open at first: %s", got)
	}
	step("open settings", chromedp.Click(chromedp.CSS(`[data-card="settings"] summary`)))
	before := evalString(`String(` + statusCalls + `)`)
	waitFor("status refreshes", statusCalls+` > `+before+` && document.querySelector('[data-card="settings"] details').open`)

	// Tailing: open files against the budget, queued, unwatched, how
	// changes are noticed.
	if got := metric("tail-open"); !regexp.MustCompile(`^\d+ of [\d,]+$`).MatchString(got) {
		t.Errorf("open files %q, want N of the budget", got)
	}
	if got := metric("tail-queued") + "|" + metric("tail-unwatched") + "|" + metric("tail-changes") + "|" + metric("tail-close-inactive"); got != "0|0|inotify|5m" {
		t.Errorf("queued|unwatched|changes|close-inactive = %q", got)
	}
	// Retention and the settings are the effective ones, not zeros.
	if got := metric("index-retention"); got != "7d (shards of 24h)" {
		t.Errorf("retention reads %q, want the defaults in force", got)
	}
	// Completeness per source, the disk against its floor.
	if got := evalString(`Array.from(document.querySelectorAll('[data-table="ledger"] tbody tr'), r => r.dataset.source + '=' + r.querySelector('.ledger').textContent).filter(s => !s.startsWith('extra=')).join(',') + '|' + document.querySelector('[data-card="ledger"] .health').textContent`); got != collectName+"=complete,many=complete,web=complete|ok" {
		t.Errorf("completeness card reads %q", got)
	}
	if got := metric("disk-floor") + "|" + metric("disk-state") + "|" + metric("disk-dir"); got != "1.0 GiB|above the floor|"+srv.cfg.DataDir {
		t.Errorf("disk card floor|state|dir = %q", got)
	}
	// The settings in force, sorted by flag.
	setting := func(flag string) string {
		return evalString(`(document.querySelector('[data-card="settings"] .setting[data-flag="` + flag + `"] dd') || {}).textContent || ''`)
	}
	if got := setting("retention") + "|" + setting("shard-span") + "|" + setting("min-free-disk") + "|" + setting("collect"); got != "7d|24h|1GiB|"+filepath.Join(logsDir, "*.log") {
		t.Errorf("settings retention|shard-span|min-free-disk|collect = %q", got)
	}
	if got := evalString(`Array.from(document.querySelectorAll('[data-card="settings"] .setting'), e => e.dataset.flag).every((f, i, a) => i === 0 || a[i-1] < f) + '|' + document.querySelectorAll('[data-card="settings"] .setting').length`); !strings.HasPrefix(got, "true|") || got == "true|0" {
		t.Errorf("settings sorted|count = %q", got)
	}
	step("status top", chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0)`))
	shot("status")

	// A data disk below --min-free-disk, for real: the floor is raised
	// above the free space (SIGHUP applies it), the guard measures, and
	// every view says indexing is paused and how to fix it.
	free, err := diskspace.Free(srv.cfg.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	lowCfg := srv.cfg
	lowCfg.MinFreeDisk = free + 1<<40
	if _, err := srv.a.Reload(ctx, lowCfg); err != nil {
		t.Fatalf("reload with a floor above the free space: %v", err)
	}
	waitFor("disk banner", `!document.getElementById('disk-banner').hidden && document.querySelector('[data-metric="disk-state"]').textContent.startsWith('low: indexing paused since ')`)
	banner := evalString(`document.getElementById('disk-banner').innerText`)
	for _, want := range []string{"Indexing is paused: the data disk is nearly full.", srv.cfg.DataDir, "below the floor of", "(--min-free-disk) since ", "Nothing is lost", "lower --min-free-disk"} {
		if !strings.Contains(banner, want) {
			t.Errorf("disk banner %q does not say %q", banner, want)
		}
	}
	if code, body := srv.raw(ctx, "/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "disk low") {
		t.Errorf("/readyz while the disk is low: %d %q", code, body)
	}
	shotWindow("status-disk-low")
	step("sources while low", chromedp.Click(chromedp.ID("tab-sources")))
	waitFor("banner on sources", `!document.getElementById('view-sources').hidden && !document.getElementById('disk-banner').hidden`)
	step("discover while low", chromedp.Click(chromedp.ID("tab-discover")))
	waitFor("banner on discover", `!document.getElementById('view-discover').hidden && !document.getElementById('disk-banner').hidden && document.querySelectorAll('#results .hit').length > 0`)
	shotWindow("discover-disk-low")
	// Room again (the floor back): the banner goes by itself.
	if _, err := srv.a.Reload(ctx, srv.cfg); err != nil {
		t.Fatalf("reload with the floor back: %v", err)
	}
	waitForLong("banner gone", `document.getElementById('disk-banner').hidden`, 15*time.Second)
	if code, body := srv.raw(ctx, "/readyz"); code != http.StatusOK {
		t.Errorf("/readyz with room again: %d %q", code, body)
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
	reportPageErrors()
	t.Logf("screenshots in %s", shotDir)
}

// commas formats n as the page's numbers do (en-US grouping).
func commas(n int64) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// TestBrowserLedgerGap shows a real gap in the completeness ledger: an
// agent ships a file through Kafka (its Sources view says "shipped"), the
// topic loses the first half before any indexer read it, and the box that
// then indexes shows the file and its source as "gap", with the missing
// byte range and its reason, in the Sources and Status views.
func TestBrowserLedgerGap(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is required in CI: %v", chromiumPath, err)
		}
		t.Skipf("%s not installed: %v", chromiumPath, err)
	}
	k := kafkatest.Start(t)
	if k.External() {
		t.Skip("deletes records of its topic; runs against the in-process broker only")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()

	root := t.TempDir()
	logs := filepath.Join(root, "logs")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		t.Fatal(err)
	}
	appLog := filepath.Join(logs, "app.log")
	const n, lineLen = 300, 64
	lines := make([]string, n)
	for i := range lines {
		l := fmt.Sprintf("2026-12-01T10:00:00Z INFO gaptok line %05d", i)
		lines[i] = l + strings.Repeat(".", lineLen-1-len(l))
	}
	appendLines(t, appLog, lines...)
	dataDir := filepath.Join(t.TempDir(), "data")
	topic, group := kafkatest.UniqueName(t, "uigap"), kafkatest.UniqueName(t, "uigap")
	kafkaMode := func(role string) func(*appliance.Config) {
		return func(c *appliance.Config) {
			c.Role = role
			c.DataDir = dataDir
			c.Kafka = k.Brokers
			c.Topic, c.KafkaGroup, c.KafkaPartitions = topic, group, 1
			c.LedgerGrace = time.Second
		}
	}
	type fileLedger struct {
		State      string `json:"state"`
		AckedBytes int64  `json:"acked_bytes"`
		GapBytes   int64  `json:"gap_bytes"`
	}
	ledgerOf := func(srv *server, want string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			var st struct {
				Ledger *struct {
					Files []fileLedger `json:"files"`
				} `json:"ledger"`
			}
			srv.get(ctx, "/api/status", &st)
			if st.Ledger != nil && len(st.Ledger.Files) == 1 && st.Ledger.Files[0].State == want && st.Ledger.Files[0].AckedBytes == n*lineLen {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("ledger not %s after 30s: %+v", want, st.Ledger)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	shotDir := artifactsDir(t)
	tab := newTab(ctx, t)
	if err := chromedp.Do(tab, chromedp.EmulateViewport(1280, 800)); err != nil {
		t.Fatalf("start browser: %v", err)
	}
	// An agent has no index: the Discover view's searches are refused
	// there (console errors), which is not what this test looks at.
	reportPageErrors := watchPageErrors(tab, t, nil)
	waitFor := func(name, expr string) {
		t.Helper()
		if err := pollJS(tab, expr, 10*time.Second); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	evalString := func(expr string) string { t.Helper(); return evalJS(tab, t, expr) }
	open := func(name, url string) {
		t.Helper()
		sctx, scancel := context.WithTimeout(tab, 10*time.Second)
		defer scancel()
		if err := chromedp.Do(sctx, chromedp.Navigate(url), chromedp.WaitVisible(chromedp.ID("tab-sources"))); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	shot := func(name string) { t.Helper(); saveShot(tab, t, shotDir, name, chromedp.CaptureScreenshot()) }
	fileState := `(document.querySelector('#sources-body .file-row[data-path=` + jsString(appLog) + `]') || {dataset: {}}).dataset.state`

	// The agent ships every line: Kafka acked them all.
	agent := startApplianceWith(ctx, t, root, filepath.Join(logs, "*.log"), kafkaMode(appliance.RoleAgent))
	ledgerOf(agent, "shipped")
	open("agent sources", agent.url+"/?tab=sources")
	waitFor("shipped shown", fileState+` === 'shipped'`)
	if got := evalString(`document.querySelector('#sources-body .file-row .file-indexed').textContent + '|' + document.querySelector('#sources-body .source-row .ledger').textContent`); got != "—|shipped" {
		t.Errorf("agent's indexed column|source badge = %q, want —|shipped", got)
	}
	// A dash has no byte count to tell in its title.
	if got := evalString(`document.querySelector('#sources-body .file-row .file-indexed').title`); got != "" {
		t.Errorf("agent's indexed column has the title %q, want none", got)
	}
	shot("agent-sources-shipped")
	agent.stop()

	// The first half leaves the topic before any indexer read it.
	sc := sarama.NewConfig()
	sc.Version = sarama.V2_8_0_0
	admin, err := sarama.NewClusterAdmin(k.Brokers, sc)
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.DeleteRecords(topic, map[int32]int64{0: n / 2}); err != nil {
		t.Fatalf("delete records: %v", err)
	}
	admin.Close()

	// The same box, now indexing too, reads what is left: a gap.
	box := startApplianceWith(ctx, t, root, filepath.Join(logs, "*.log"), kafkaMode(appliance.RoleAll))
	box.waitTotal(ctx, "gaptok", n/2)
	ledgerOf(box, "gap")
	open("box sources", box.url+"/?tab=sources")
	waitFor("gap shown", fileState+` === 'gap' && document.querySelector('#sources-body .gap-row .gap') !== null`)
	half := int64(n / 2 * lineLen)
	gapText := fmt.Sprintf("bytes 0 – %s (%.1f KiB): acked but not in the index", commas(half), float64(half)/1024)
	if got := evalString(`Array.from(document.querySelectorAll('#sources-body .gap-row .gap'), g => g.textContent).join('\n')`); got != gapText {
		t.Errorf("gap rows read %q, want %q", got, gapText)
	}
	missing := fmt.Sprintf("gap: %.1f KiB missing", float64(half)/1024)
	if got := evalString(`document.querySelector('#sources-body .file-row .file-state .ledger').textContent + '|' +
		document.querySelector('#sources-body .source-row .source-state .ledger').textContent + '|' +
		document.querySelector('#sources-body .file-row .file-gap').title + '|' + document.querySelector('#sources-body .file-row .file-indexed').title`); got != missing+"|"+missing+"|"+commas(half)+" bytes|"+commas(half)+" bytes" {
		t.Errorf("file badge|source badge|gap|indexed = %q", got)
	}
	if got := evalString(`document.querySelector('#sources-body .source-summary').textContent`); !strings.Contains(got, fmt.Sprintf("gap: %.1f KiB acked but not in the index, in 1 file of 1", float64(half)/1024)) {
		t.Errorf("source summary reads %q", got)
	}
	shot("sources-gap")
	open("box status", box.url+"/?tab=status")
	waitFor("completeness card", `document.querySelector('[data-card="ledger"] [data-table="ledger"]') !== null`)
	if got := evalString(`document.querySelector('[data-card="ledger"] .health').textContent + '|' + document.querySelector('[data-metric="ledger-gap"]').textContent + '|' + document.querySelector('[data-card="ledger"] tbody .ledger').textContent`); got != fmt.Sprintf("problem|%.1f KiB|%s", float64(half)/1024, missing) {
		t.Errorf("completeness card health|missing|badge = %q", got)
	}
	if got := evalString(`document.querySelector('[data-metric="consume-instance"]').textContent + '|' + document.querySelector('[data-metric="consume-sessions"]').textContent`); !regexp.MustCompile(`^\S+\|[1-9]\d*$`).MatchString(got) {
		t.Errorf("consumer instance id|sessions = %q", got)
	}
	if got := evalString(`Array.from(document.querySelectorAll('[data-table="lag"] tbody td'), td => td.textContent).join('|')`); got != topic+"|0|0" {
		t.Errorf("consumer lag table reads %q, want %s|0|0", got, topic)
	}
	shot("status-gap")

	reportPageErrors()
	t.Logf("screenshots in %s", shotDir)
}

// newTab starts headless Chromium and returns the context of its first
// tab; both end with ctx or the test.
func newTab(ctx context.Context, t *testing.T) context.Context {
	t.Helper()
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
	t.Cleanup(cancelAlloc)
	tabCtx, cancelTab := chromedp.NewContext(allocCtx)
	t.Cleanup(cancelTab)
	return tabCtx
}

// artifactsDir is where a browser test saves its screenshots:
// $LOGBOX_ARTIFACTS, or a directory that goes with the test.
func artifactsDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("LOGBOX_ARTIFACTS")
	if dir == "" {
		return t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// pollJS waits up to d for the JavaScript predicate expr to hold in the
// tab of ctx.
func pollJS(ctx context.Context, expr string, d time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, d+2*time.Second)
	defer cancel()
	return chromedp.Do(ctx, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(d)))
}

// evalJS evaluates expr in the tab of ctx and returns its string value.
func evalJS(ctx context.Context, t *testing.T, expr string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return s
}

// saveShot saves the screenshot a takes in the tab of ctx as dir/name.png.
func saveShot(ctx context.Context, t *testing.T, dir, name string, a chromedp.Action[[]byte]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	buf, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), buf, 0o644); err != nil {
		t.Fatal(err)
	}
}

// watchPageErrors collects from the tab of ctx (a started browser)
// uncaught exceptions, Content Security Policy reports, and the console
// errors consoleError counts (nil: none); report fails the test with
// each one collected.
func watchPageErrors(ctx context.Context, t *testing.T, consoleError func(text string) bool) (report func()) {
	var mu sync.Mutex
	var errs []string
	go func() {
		for m, err := range chromedp.Console(ctx) {
			if err != nil {
				return
			}
			if m.IsException() || strings.Contains(m.Text, "Content Security Policy") ||
				(m.Type == chromedp.ConsoleError && consoleError != nil && consoleError(m.Text)) {
				mu.Lock()
				errs = append(errs, m.String())
				mu.Unlock()
			}
		}
	}()
	return func() {
		t.Helper()
		mu.Lock()
		defer mu.Unlock()
		for _, e := range errs {
			t.Errorf("page error: %s", e)
		}
	}
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

// openTails opens n live tails on base from this process (the address
// the browser uses too) and returns a func that closes them. A tail the
// server refuses at first (one the page just closed may not have been
// released yet) is tried again for a few seconds.
func openTails(ctx context.Context, t *testing.T, base string, n int) (closeAll func()) {
	t.Helper()
	tctx, cancel := context.WithCancel(ctx)
	var bodies []io.Closer
	closeAll = func() {
		for _, b := range bodies {
			b.Close()
		}
		cancel()
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(bodies) < n {
		req, err := http.NewRequestWithContext(tctx, http.MethodGet, base+"/api/tail", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			closeAll()
			t.Fatalf("open tail %d: %v", len(bodies)+1, err)
		}
		if resp.StatusCode == http.StatusOK {
			bodies = append(bodies, resp.Body)
			continue
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusTooManyRequests || time.Now().After(deadline) {
			closeAll()
			t.Fatalf("open tail %d: status %d", len(bodies)+1, resp.StatusCode)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Cleanup(closeAll)
	return closeAll
}

// server is a running appliance and a small client for its API.
type server struct {
	t   *testing.T
	url string
	a   *appliance.Appliance
	cfg appliance.Config // the configuration it was started with
	// stop stops the appliance (at the latest when the test ends).
	stop func()
}

// startAppliance runs a real appliance in direct mode that may read below
// root and collects collect from the start. ctx bounds the wait for it to
// be ready; it is stopped (within 10s) when the test ends.
func startAppliance(ctx context.Context, t *testing.T, root, collect string) *server {
	t.Helper()
	return startApplianceWith(ctx, t, root, collect, nil)
}

// startApplianceWith is startAppliance with edit applied to the
// configuration (if not nil) before the start.
func startApplianceWith(ctx context.Context, t *testing.T, root, collect string, edit func(*appliance.Config)) *server {
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
	if edit != nil {
		edit(&cfg)
	}
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	a, err := appliance.New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(runCtx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
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
	}
	t.Cleanup(stop)
	select {
	case <-a.Ready():
	case err := <-done:
		t.Fatalf("appliance stopped before ready: %v", err)
	case <-ctx.Done():
		t.Fatalf("appliance not ready: %v", ctx.Err())
	}
	return &server{t: t, url: "http://" + a.Addr(), a: a, cfg: cfg, stop: stop}
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

// raw gets path and returns the status and the body as text.
func (s *server) raw(ctx context.Context, path string) (int, string) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url+path, nil)
	if err != nil {
		s.t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
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
		code := s.get(ctx, "/api/search?limit=1&track_total=true&q="+url.QueryEscape(q), &res)
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

// watchDialogs counts the JavaScript dialogs the page opens (an alert
// means injected script ran) and dismisses each.
func watchDialogs(ctx context.Context, t *testing.T) *atomic.Int32 {
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
	return &dialogs
}
