package ui_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
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

	"github.com/logbox/logbox/ui"
)

const chromiumPath = "/usr/bin/chromium"

// Lines a hostile program could write to a log file. They must show as text.
const (
	xssImg    = `<img src=x onerror=alert(1)>`
	xssScript = `<script>alert(1)</script>`
	xssJSURL  = `javascript:alert(1)`
	ansiLine  = "\x1b[31mRED\x1b[0m"
)

// TestBrowser drives the page in headless Chromium against an in-memory
// stand-in for the logbox API (the page's behaviour is under test here, not
// the API; the appliance has its own end-to-end browser test).
func TestBrowser(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is required in CI: %v", chromiumPath, err)
		}
		t.Skipf("%s not installed: %v", chromiumPath, err)
	}

	api := newFakeAPI(time.Now())
	mux := http.NewServeMux()
	api.register(mux)
	mux.Handle("/", ui.Handler())
	srv := httptest.NewServer(mux)
	defer srv.Close()

	shotDir := os.Getenv("LOGBOX_ARTIFACTS")
	if shotDir == "" {
		shotDir = t.TempDir()
	} else if err := os.MkdirAll(shotDir, 0o755); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 55*time.Second)
	defer cancel()
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
	shot := func(name string) {
		t.Helper()
		sctx, scancel := context.WithTimeout(ctx, 10*time.Second)
		defer scancel()
		buf, err := chromedp.Run(sctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(shotDir, name+".png"), buf, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	hitCount := func() string { return `document.querySelectorAll('#results .hit').length` }

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

	// The page loads and runs an all-time search.
	step("load page", chromedp.Navigate(srv.URL+"/"), chromedp.WaitVisible(chromedp.ID("q")))
	waitFor("initial search", hitCount()+` > 0`)
	if from := api.lastSearch().Get("from"); from != "" {
		t.Errorf("initial search sent from=%q, want none (all time)", from)
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

	// Type a query, pick a range, press Enter.
	const query = "error AND host:web1"
	step("search",
		chromedp.SetValue(chromedp.ID("range"), "now-1h"),
		chromedp.SendKeys(chromedp.ID("q"), query+kb.Enter),
	)
	waitFor("hits render", hitCount()+` === 25 && document.getElementById('hit-count').textContent === '33 hits'`)
	if !api.searched(func(v url.Values) bool {
		return v.Get("q") == query && v.Get("from") == "now-1h" && v.Get("cursor") == ""
	}) {
		t.Errorf("no /api/search request with q=%q from=now-1h; got %v", query, api.searchLog())
	}

	// Untrusted lines render as text.
	if n := evalString(`String(document.querySelectorAll('#results img, #results script, #results a, #results b, #results iframe, #results svg').length)`); n != "0" {
		t.Errorf("%s elements were created from log data", n)
	}
	// innerText is what a user sees (the level badge is upper-cased by CSS).
	text := evalString(`document.getElementById('results').innerText`)
	for _, want := range []string{xssImg, xssScript, xssJSURL, "ESC[31mREDESC[0m", "<B>BOLD</B>", `user=<img src=x onerror=alert(2)>`} {
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
	if ts := evalString(`document.querySelector('#results .hit .ts').textContent`); !regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}$`).MatchString(ts) {
		t.Errorf("timestamp shown as %q, want local time with ms", ts)
	}
	if got, want := evalString(`document.querySelector('#results .hit .line').textContent`), api.hits[0].Line; got != want {
		t.Errorf("first hit %q, want the newest line %q", got, want)
	}
	if cls := evalString(`document.querySelector('#results .hit .level').className`); cls != "level level-error" {
		t.Errorf("level badge class %q", cls)
	}
	shot("discover-light")

	// The URL holds the query and range, and a reload restores them.
	loc := evalString(`location.href`)
	u, err := url.Parse(loc)
	if err != nil || u.Query().Get("q") != query || u.Query().Get("from") != "now-1h" {
		t.Fatalf("URL after search is %q, want q=%q and from=now-1h", loc, query)
	}
	before := api.searchCount()
	step("reload", chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("q")))
	waitFor("hits after reload", hitCount()+` === 25`)
	if got := evalString(`document.getElementById('q').value + '|' + document.getElementById('range').value`); got != query+"|now-1h" {
		t.Errorf("after reload query|range = %q", got)
	}
	if api.searchCount() <= before || api.lastSearch().Get("q") != query {
		t.Errorf("reload did not search for the query again: %v", api.searchLog())
	}

	// Load more appends the next page using the cursor.
	step("load more", chromedp.Click(chromedp.ID("load-more")))
	waitFor("second page", hitCount()+` === 33 && document.getElementById('load-more').hidden`)
	if last := api.lastSearch(); last.Get("cursor") != "25" || last.Get("q") != query || last.Get("from") != "now-1h" {
		t.Errorf("load more sent %v, want cursor=25 with the same q and from", last)
	}
	if got, want := evalString(`document.querySelector('#results .hit:last-child .line').textContent`), "GET /api/orders/29 500 error upstream timeout"; got != want {
		t.Errorf("last hit after load more %q, want %q", got, want)
	}

	// Back restores the previous query.
	step("second search", chromedp.Evaluate[chromedp.Void](`document.getElementById('q').value = ''`),
		chromedp.SendKeys(chromedp.ID("q"), "timeout"+kb.Enter))
	waitFor("second search", `document.getElementById('hit-count').textContent === '30 hits'`)
	step("back", chromedp.Evaluate[chromedp.Void](`history.back()`))
	waitFor("back restores query", `document.getElementById('q').value === `+jsString(query)+
		` && document.getElementById('hit-count').textContent === '33 hits'`)

	// A bad query shows the API's message.
	step("bad query", chromedp.Evaluate[chromedp.Void](`document.getElementById('q').value = ''`),
		chromedp.SendKeys(chromedp.ID("q"), "host:"+kb.Enter))
	waitFor("error shown", `!document.getElementById('search-error').hidden`)
	if msg := evalString(`document.getElementById('search-error').textContent`); !strings.Contains(msg, "parse query: expected a value after host:") {
		t.Errorf("error state shows %q", msg)
	}

	// No match: the empty state, without the no-sources hint.
	step("empty search", chromedp.Evaluate[chromedp.Void](`document.getElementById('q').value = ''`),
		chromedp.SendKeys(chromedp.ID("q"), "nomatchxyz"+kb.Enter))
	waitFor("empty state", `!document.getElementById('empty-state').hidden && document.getElementById('hit-count').textContent === '0 hits'`)
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
	waitFor("dark hits", hitCount()+` === 25`)
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

	// Sources: list, add with a 400, add, remove.
	step("sources tab", chromedp.Click(chromedp.ID("tab-sources")))
	waitFor("sources listed", `document.querySelectorAll('#sources-body tr').length === 2`)
	if got := evalString(`document.getElementById('sources-table').innerText`); !strings.Contains(got, "/var/log/syslog") || !strings.Contains(got, "paused") {
		t.Errorf("sources table reads %q", got)
	}
	if !strings.Contains(evalString(`location.search`), "tab=sources") {
		t.Errorf("the Sources tab is not in the URL")
	}
	step("add without paths",
		chromedp.SendKeys(chromedp.ID("source-name"), "nginx"),
		chromedp.Click(chromedp.ID("source-add")))
	waitFor("400 shown", `!document.getElementById('source-error').hidden`)
	if msg := evalString(`document.getElementById('source-error').textContent`); msg != "paths: must not be empty" {
		t.Errorf("form error %q, want the server's message", msg)
	}
	shot("sources")
	step("add",
		chromedp.SendKeys(chromedp.ID("source-paths"), "/var/log/nginx/*.log, /var/log/nginx/error.log"),
		chromedp.SendKeys(chromedp.ID("source-topic"), "web"),
		chromedp.Click(chromedp.ID("source-add")))
	waitFor("added", `document.querySelector('#sources-body tr[data-name="nginx"]') !== null && document.getElementById('source-error').hidden`)
	if src, ok := api.source("nginx"); !ok || !slices.Equal(src.Paths, []string{"/var/log/nginx/*.log", "/var/log/nginx/error.log"}) || src.Topic != "web" {
		t.Errorf("server got source %+v", src)
	}
	const removeBtn = `#sources-body tr[data-name="nginx"] button.remove`
	step("remove", chromedp.Click(chromedp.CSS(removeBtn)), chromedp.Click(chromedp.CSS(removeBtn)))
	waitFor("removed", `document.querySelector('#sources-body tr[data-name="nginx"]') === null && document.querySelectorAll('#sources-body tr').length === 2`)
	if _, ok := api.source("nginx"); ok {
		t.Errorf("source nginx still on the server after Remove")
	}

	// With no sources at all, an empty result points to the Sources tab.
	api.clearSources()
	step("no sources", chromedp.Navigate(srv.URL+"/?q=nomatchxyz"))
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

// fakeAPI is an in-memory stand-in for /api/search and /api/sources with
// the response shapes of CONTRACT.md. Its query language is a small subset
// of Bleve's: terms joined by AND, field:value for host, source and level,
// any other word a case-insensitive substring of the line.
type fakeAPI struct {
	hits []fakeHit // newest first

	mu       sync.Mutex
	sources  []fakeSource
	searches []url.Values
}

type fakeHit struct {
	ID     string            `json:"id"`
	TS     string            `json:"ts"`
	Host   string            `json:"host"`
	Source string            `json:"source"`
	Offset int64             `json:"offset"`
	Line   string            `json:"line"`
	Level  string            `json:"level,omitempty"`
	Fields map[string]string `json:"fields,omitempty"`
	time   time.Time
}

type fakeSource struct {
	Name   string            `json:"name"`
	Paths  []string          `json:"paths"`
	Topic  string            `json:"topic,omitempty"`
	Fields map[string]string `json:"fields,omitempty"`
	Hosts  []string          `json:"hosts,omitempty"`
	Paused bool              `json:"paused"`
}

// pageCap is below the page's own limit so that Load more is exercised
// with a modest data set; a server may return fewer hits than asked for.
const pageCap = 25

func newFakeAPI(now time.Time) *fakeAPI {
	a := &fakeAPI{
		sources: []fakeSource{
			{Name: "syslog", Paths: []string{"/var/log/syslog"}},
			{Name: "app", Paths: []string{"/srv/app/*.log", "/srv/app/old/*.log"}, Topic: "app-logs", Hosts: []string{"web1"}, Paused: true},
		},
	}
	add := func(age time.Duration, host, level, line string, fields map[string]string) {
		ts := now.Add(-age)
		a.hits = append(a.hits, fakeHit{
			ID: fmt.Sprintf("h%d", len(a.hits)), TS: ts.UTC().Format(time.RFC3339Nano), Host: host,
			Source: "/srv/app/app.log", Offset: int64(1000 * len(a.hits)), Line: line, Level: level,
			Fields: fields, time: ts,
		})
	}
	// 33 lines match "error AND host:web1" within the last hour, the
	// hostile ones newest.
	add(1*time.Second, "web1", "error", "error rendering "+xssImg+" in template", map[string]string{"user": "<img src=x onerror=alert(2)>"})
	add(2*time.Second, "web1", "<b>bold</b>", "error "+xssScript+" injected", nil)
	add(3*time.Second, "web1", "error", "error "+ansiLine+" "+xssJSURL, nil)
	for i := range 30 {
		add(time.Duration(i+1)*time.Minute, "web1", "error", fmt.Sprintf("GET /api/orders/%d 500 error upstream timeout", i), nil)
	}
	for i := range 5 {
		add(time.Duration(i+1)*time.Minute+time.Second, "web2", "info", "GET /healthz 200 ok", nil)
	}
	add(48*time.Hour, "web1", "error", "error from two days ago", nil)
	slices.SortStableFunc(a.hits, func(x, y fakeHit) int { return y.time.Compare(x.time) })
	return a
}

func (a *fakeAPI) register(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/search", a.search)
	mux.HandleFunc("GET /api/sources", func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		defer a.mu.Unlock()
		writeJSON(w, http.StatusOK, map[string]any{"sources": a.sources})
	})
	mux.HandleFunc("POST /api/sources", func(w http.ResponseWriter, r *http.Request) {
		var src fakeSource
		if err := json.NewDecoder(r.Body).Decode(&src); err != nil {
			writeError(w, http.StatusBadRequest, "decode source: "+err.Error())
			return
		}
		switch {
		case src.Name == "":
			writeError(w, http.StatusBadRequest, "name: must not be empty")
			return
		case len(src.Paths) == 0:
			writeError(w, http.StatusBadRequest, "paths: must not be empty")
			return
		}
		a.mu.Lock()
		defer a.mu.Unlock()
		if slices.ContainsFunc(a.sources, func(s fakeSource) bool { return s.Name == src.Name }) {
			writeError(w, http.StatusConflict, "name: source "+src.Name+" exists")
			return
		}
		a.sources = append(a.sources, src)
		writeJSON(w, http.StatusCreated, src)
	})
	mux.HandleFunc("DELETE /api/sources/{name}", func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		defer a.mu.Unlock()
		n := len(a.sources)
		a.sources = slices.DeleteFunc(a.sources, func(s fakeSource) bool { return s.Name == r.PathValue("name") })
		if len(a.sources) == n {
			writeError(w, http.StatusNotFound, "source not found")
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

var relTime = regexp.MustCompile(`^now-(\d+)([smhd])$`)

func (a *fakeAPI) search(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	a.mu.Lock()
	a.searches = append(a.searches, v)
	a.mu.Unlock()

	var from time.Time
	if f := v.Get("from"); f != "" {
		m := relTime.FindStringSubmatch(f)
		if m == nil {
			writeError(w, http.StatusBadRequest, "from: want RFC 3339 or now-N[smhd]")
			return
		}
		n, _ := strconv.Atoi(m[1])
		unit := map[string]time.Duration{"s": time.Second, "m": time.Minute, "h": time.Hour, "d": 24 * time.Hour}[m[2]]
		from = time.Now().Add(-time.Duration(n) * unit)
	}
	var terms []string
	for _, term := range strings.Fields(v.Get("q")) {
		if term == "AND" {
			continue
		}
		if strings.HasSuffix(term, ":") {
			writeError(w, http.StatusBadRequest, "parse query: expected a value after "+term)
			return
		}
		terms = append(terms, term)
	}
	var matched []fakeHit
	for _, h := range a.hits {
		if !from.IsZero() && h.time.Before(from) {
			continue
		}
		if matchAll(h, terms) {
			matched = append(matched, h)
		}
	}
	start, _ := strconv.Atoi(v.Get("cursor"))
	limit, err := strconv.Atoi(v.Get("limit"))
	if err != nil || limit <= 0 || limit > pageCap {
		limit = pageCap
	}
	start = min(start, len(matched))
	end := min(start+limit, len(matched))
	resp := map[string]any{"total": len(matched), "hits": matched[start:end]}
	if end < len(matched) {
		resp["cursor"] = strconv.Itoa(end)
	}
	writeJSON(w, http.StatusOK, resp)
}

func matchAll(h fakeHit, terms []string) bool {
	for _, term := range terms {
		field, value, ok := strings.Cut(term, ":")
		var hay string
		switch {
		case ok && field == "host":
			hay = h.Host
		case ok && field == "source":
			hay = h.Source
		case ok && field == "level":
			hay = h.Level
		default:
			if !strings.Contains(strings.ToLower(h.Line), strings.ToLower(term)) {
				return false
			}
			continue
		}
		if !strings.EqualFold(hay, value) {
			return false
		}
	}
	return true
}

func (a *fakeAPI) searchLog() []url.Values {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.searches)
}

func (a *fakeAPI) searchCount() int { return len(a.searchLog()) }

func (a *fakeAPI) lastSearch() url.Values {
	l := a.searchLog()
	if len(l) == 0 {
		return url.Values{}
	}
	return l[len(l)-1]
}

func (a *fakeAPI) searched(f func(url.Values) bool) bool {
	return slices.ContainsFunc(a.searchLog(), f)
}

func (a *fakeAPI) source(name string) (fakeSource, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	i := slices.IndexFunc(a.sources, func(s fakeSource) bool { return s.Name == name })
	if i < 0 {
		return fakeSource{}, false
	}
	return a.sources[i], true
}

func (a *fakeAPI) clearSources() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.sources = nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}
