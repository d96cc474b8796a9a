package ui_test

import (
	"context"
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// answerPage is a tab of headless Chromium on a real appliance, with the
// small vocabulary the answers test speaks (see TestBrowserAnswers).
type answerPage struct {
	ctx     context.Context
	url     string
	shotDir string
}

// do runs actions with their own timeout, so that a hung step fails with
// its name instead of eating the whole test's budget.
func (p *answerPage) do(t *testing.T, name string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// waitFor polls a JavaScript predicate until it holds (at most 10 s).
func (p *answerPage) waitFor(t *testing.T, name, expr string) {
	t.Helper()
	if err := pollJS(p.ctx, expr, 10*time.Second); err != nil {
		dctx, dcancel := context.WithTimeout(p.ctx, 3*time.Second)
		defer dcancel()
		state, _ := chromedp.Run(dctx, chromedp.Evaluate[string](`JSON.stringify({url: location.href,
			queryError: document.getElementById('query-error').innerText, searchError: document.getElementById('search-error').textContent,
			count: document.getElementById('hit-count').textContent})`))
		t.Fatalf("%s: %v\npage: %s", name, err, state)
	}
}

func (p *answerPage) eval(t *testing.T, expr string) string {
	t.Helper()
	return evalJS(p.ctx, t, expr)
}

// query types q into the emptied query box and presses Enter.
func (p *answerPage) query(t *testing.T, q string) {
	t.Helper()
	p.do(t, "query "+q, chromedp.Evaluate[chromedp.Void](`document.getElementById('q').value = ''`),
		chromedp.SendKeys(chromedp.ID("q"), q+kb.Enter))
}

// shot saves what the window shows as name.png in the artifacts.
func (p *answerPage) shot(t *testing.T, name string) {
	t.Helper()
	saveShot(p.ctx, t, p.shotDir, name, chromedp.CaptureScreenshot())
}

// TestBrowserAnswers drives the page's answers to queries in headless
// Chromium against a real appliance in direct mode (real tailer, Bleve
// index, embedded etcd, HTTP API): a query the server cannot read is
// shown under the query box with the place marked.
func TestBrowserAnswers(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is required in CI: %v", chromiumPath, err)
		}
		t.Skipf("%s not installed: %v", chromiumPath, err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()

	root := t.TempDir()
	logs := filepath.Join(root, "logs")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		t.Fatal(err)
	}
	appendLines(t, filepath.Join(logs, "app.log"),
		"ERROR anstok payment declined",
		"INFO anstok 用户登录失败 user=bob")
	srv := startAppliance(ctx, t, root, filepath.Join(logs, "*.log"))
	srv.waitTotal(ctx, "anstok", 2)

	tab := newTab(ctx, t)
	if err := chromedp.Do(tab, chromedp.EmulateViewport(1280, 900)); err != nil {
		t.Fatalf("start browser: %v", err)
	}
	var dialogs atomic.Int32
	go func() {
		for ev, err := range chromedp.Events(tab, page.JavascriptDialogOpening) {
			if err != nil {
				return
			}
			dialogs.Add(1)
			t.Logf("dialog opened: %s %q", ev.Type, ev.Message)
			_, _ = chromedp.Call(tab, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: false})
		}
	}()
	// The 400s provoked on purpose are logged as "Failed to load
	// resource"; any other console error is a bug.
	reportPageErrors := watchPageErrors(tab, t, func(text string) bool { return !strings.Contains(text, "status of 400") })
	p := &answerPage{ctx: tab, url: srv.url, shotDir: artifactsDir(t)}
	p.do(t, "load page", chromedp.Navigate(srv.url+"/?q=anstok"), chromedp.WaitVisible(chromedp.ID("q")))
	p.waitFor(t, "first search", `document.getElementById('hit-count').textContent === '2 hits'`)

	t.Run("query error under the box", func(t *testing.T) {
		// A pipe sent to the search is refused with the pipe's position;
		// the page says so under the query box and marks the pipe. The
		// query's first part is not ASCII: the position counts bytes.
		var before, marked string
		for _, q := range []string{"anstok | stats count()", "登录 anstok | stats count() by (host)"} {
			var want struct {
				Error    string `json:"error"`
				Position int    `json:"position"`
			}
			code, body := srv.raw(ctx, "/api/search?q="+url.QueryEscape(q))
			if code != 400 || json.Unmarshal([]byte(body), &want) != nil || want.Position < 1 || want.Position > len(q) ||
				!strings.Contains(q[want.Position-1:], "stats") {
				t.Fatalf("/api/search?q=%s answered %d %s, want 400 with the position of the pipe", q, code, body)
			}
			// What the page must mark: the character at that byte.
			before = q[:want.Position-1]
			r, _ := utf8.DecodeRuneInString(q[want.Position-1:])
			marked = string(r)
			c := struct{ q, marked, before string }{q, marked, before}
			p.query(t, c.q)
			p.waitFor(t, "error shown "+c.q, `!document.getElementById('query-error').hidden && document.getElementById('query-error-msg').textContent === `+jsString(want.Error))
			got := p.eval(t, `(() => { const w = document.getElementById('query-error-where'), m = w.querySelector('mark');
				return JSON.stringify([document.getElementById('query-error-msg').textContent, m.textContent, (() => { let s = ''; for (let n = m.previousSibling; n; n = n.previousSibling) s = n.textContent + s; return s; })(), w.dataset.position]); })()`)
			wantGot := jsonStrings(want.Error, c.marked, c.before, strconv.Itoa(want.Position))
			if got != wantGot {
				t.Errorf("%s: message|mark|before|position = %s, want %s", c.q, got, wantGot)
			}
			// Under the box: between the query form and the results.
			if got := p.eval(t, `(() => { const f = document.getElementById('search-form').getBoundingClientRect(), e = document.getElementById('query-error').getBoundingClientRect(), h = document.getElementById('histogram').getBoundingClientRect(); return String(e.top >= f.bottom && e.bottom <= h.top + 1 && e.top - f.bottom < 20); })()`); got != "true" {
				t.Errorf("%s: the error is not right under the query box", c.q)
			}
			if got := p.eval(t, `document.getElementById('search-error').hidden + '|' + document.querySelectorAll('#results .hit').length`); got != "true|0" {
				t.Errorf("%s: search-error hidden|hits = %s, want true|0", c.q, got)
			}
		}
		p.shot(t, "query-error")
		// Clicking the marked copy selects the marked character in the box.
		p.do(t, "select the place", chromedp.Click(chromedp.ID("query-error-where")))
		if got := p.eval(t, `(() => { const q = document.getElementById('q'); return document.activeElement.id + '|' + q.value.slice(q.selectionStart, q.selectionEnd) + '|' + q.selectionStart; })()`); got != "q|"+marked+"|"+strconv.Itoa(len([]rune(before))) {
			t.Errorf("after a click on the mark, focus|selection|start = %q", got)
		}
		// The next good query clears it.
		p.query(t, "anstok")
		p.waitFor(t, "error cleared", `document.getElementById('query-error').hidden && document.getElementById('hit-count').textContent === '2 hits'`)
	})

	if n := dialogs.Load(); n != 0 {
		t.Errorf("%d JavaScript dialogs opened: injected script ran", n)
	}
	reportPageErrors()
	t.Logf("screenshots in %s", p.shotDir)
}

// jsonStrings is the JSON array of ss, as JSON.stringify writes it.
func jsonStrings(ss ...string) string {
	b, _ := json.Marshal(ss)
	return string(b)
}
