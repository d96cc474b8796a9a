package ui_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/logbox/logbox/appliance/index"
)

// xssVizSvc is a service name that is hostile markup: it must show as text
// in the Visualize table, chart and legend.
const xssVizSvc = `<img src=x onerror=alert(5)>`

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
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()

	root := t.TempDir()
	logs := filepath.Join(root, "logs")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		t.Fatal(err)
	}
	appendLines(t, filepath.Join(logs, "app.log"),
		"ERROR anstok payment declined",
		"INFO anstok 用户登录失败 user=bob")
	// Lines of eight services over the last hour (logfmt: svc and a
	// numeric latency are fields), each service with its own count; one
	// service's name is hostile markup.
	svcs := []struct {
		name string
		n    int
	}{{"api", 40}, {"web", 30}, {"db", 20}, {"auth", 12}, {"cache", 8}, {"queue", 5}, {"mail", 3}, {xssVizSvc, 2}}
	base := time.Now().Add(-55 * time.Minute).Truncate(time.Minute).UTC()
	var vizLines []string
	vizTotal := 0
	for si, s := range svcs {
		for k := range s.n {
			ts := base.Add(time.Duration((k*7+si*3)%50) * time.Minute).Add(time.Duration(k) * time.Second)
			vizLines = append(vizLines, fmt.Sprintf("%s INFO vtok svc=%s latency=%g", ts.Format(time.RFC3339), strconv.Quote(s.name), float64(k%10)*1.5+float64(si)))
		}
		vizTotal += s.n
	}
	appendLines(t, filepath.Join(logs, "svc.log"), vizLines...)
	// One more distinct id than a stats pipe keeps groups for.
	capLines := make([]string, index.MaxStatsGroups+1)
	for i := range capLines {
		capLines[i] = fmt.Sprintf("INFO captok id=%d", i)
	}
	appendLines(t, filepath.Join(logs, "cap.log"), capLines...)
	srv := startAppliance(ctx, t, root, filepath.Join(logs, "*.log"))
	srv.waitTotal(ctx, "anstok", 2)
	srv.waitTotal(ctx, "vtok", vizTotal)
	srv.waitTotal(ctx, "captok", len(capLines))

	tab := newTab(ctx, t)
	if err := chromedp.Do(tab, chromedp.EmulateViewport(1280, 900)); err != nil {
		t.Fatalf("start browser: %v", err)
	}
	dialogs := watchDialogs(tab, t)
	// The 400s (broken queries) and the 409 (a name taken) provoked on
	// purpose are logged as "Failed to load resource"; any other console
	// error is a bug.
	reportPageErrors := watchPageErrors(tab, t, func(text string) bool {
		return !strings.Contains(text, "status of 400") && !strings.Contains(text, "status of 409")
	})
	p := &answerPage{ctx: tab, url: srv.url, shotDir: artifactsDir(t)}
	p.do(t, "load page", chromedp.Navigate(srv.url+"/?q=anstok"), chromedp.WaitVisible(chromedp.ID("q")))
	p.waitFor(t, "first search", `document.getElementById('hit-count').textContent === '2 hits'`)

	t.Run("query error under the box", func(t *testing.T) {
		// A pipe sent to the search is refused with the pipe's position;
		// the page says so under the query box and marks the pipe. The
		// query's first part is not ASCII: the position counts bytes.
		var before, marked string
		for _, q := range []string{"anstok | stats count()", "登录 anstok | stats count() by (host)", "(anstok", "anstok AND /foo[/", "用户 AND"} {
			var want struct {
				Error    string `json:"error"`
				Position int    `json:"position"`
			}
			code, body := srv.raw(ctx, "/api/search?q="+url.QueryEscape(q))
			if code != 400 || json.Unmarshal([]byte(body), &want) != nil || want.Position < 1 || want.Position > len(q) ||
				(strings.Contains(q, "|") && !strings.Contains(q[want.Position-1:], "stats")) {
				t.Fatalf("/api/search?q=%s answered %d %s, want 400 with a position (a pipe's: the pipe's)", q, code, body)
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
		// A stats pipe typed in Discover: the error offers Visualize, which
		// answers it.
		p.query(t, "anstok | stats count()")
		p.waitFor(t, "pipe refused", `!document.getElementById('query-error').hidden && !document.getElementById('query-error-viz').hidden`)
		p.do(t, "run it in Visualize", chromedp.Click(chromedp.ID("query-error-viz")))
		p.waitFor(t, "visualized", `!document.getElementById('view-visualize').hidden && document.querySelectorAll('#viz-chart rect.viz-bar').length === 1 &&
			document.querySelector('#viz-tbody td').dataset.value === '2' && document.getElementById('query-error').hidden`)
	})

	// statsOf is /api/stats's answer for q over all time, each cell as
	// the page's table keeps it (data-value): a number as written in the
	// JSON, a string as it is, null as "null".
	statsOf := func(t *testing.T, q string) (columns []string, rows [][]string) {
		t.Helper()
		code, body := srv.raw(ctx, "/api/stats?q="+url.QueryEscape(q))
		var a struct {
			Columns []string `json:"columns"`
			Rows    [][]any  `json:"rows"`
		}
		dec := json.NewDecoder(strings.NewReader(body))
		dec.UseNumber()
		if code != 200 || dec.Decode(&a) != nil {
			t.Fatalf("/api/stats?q=%s: %d %s", q, code, body)
		}
		for _, r := range a.Rows {
			var row []string
			for _, v := range r {
				switch v := v.(type) {
				case nil:
					row = append(row, "null")
				case json.Number:
					row = append(row, v.String())
				default:
					row = append(row, fmt.Sprint(v))
				}
			}
			rows = append(rows, row)
		}
		return a.Columns, rows
	}
	// tableIs checks that the Visualize table shows /api/stats's answer
	// for q, cell for cell.
	tableIs := func(t *testing.T, q string) [][]string {
		t.Helper()
		cols, rows := statsOf(t, q)
		want := jsonOf(t, []any{cols, rows})
		got := p.eval(t, `JSON.stringify([Array.from(document.querySelectorAll('#viz-thead th'), th => th.textContent),
			Array.from(document.querySelectorAll('#viz-tbody tr'), tr => Array.from(tr.cells, td => td.dataset.value))])`)
		if got != want {
			t.Errorf("Visualize table for %s\n%s\nwant /api/stats's\n%s", q, got, want)
		}
		return rows
	}
	vizShown := `!document.getElementById('view-visualize').hidden && !document.getElementById('viz-chart').classList.contains('loading')`
	lines := func(n int) string {
		return vizShown + ` && document.querySelectorAll('#viz-chart path.viz-line').length === ` + strconv.Itoa(n)
	}
	// hover moves the mouse over the point at the fraction fx, fy of the
	// element expr names.
	hover := func(t *testing.T, expr string, fx, fy float64) {
		t.Helper()
		var r [4]float64
		if err := json.Unmarshal([]byte(p.eval(t, `JSON.stringify((() => { const r = `+expr+`.getBoundingClientRect(); return [r.left, r.top, r.width, r.height]; })())`)), &r); err != nil {
			t.Fatal(err)
		}
		p.do(t, "hover", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := cdp.Call(ctx, tg, input.DispatchMouseEvent, input.DispatchMouseEventParams{Type: input.DispatchMouseEventTypeMouseMoved, X: r[0] + r[2]*fx, Y: r[1] + r[3]*fy})
			return err
		}))
	}
	const countBySvc = "vtok | stats count() by (fields.svc) | sort by (count() desc) | limit 20"

	t.Run("field visualize link draws bars", func(t *testing.T) {
		p.do(t, "discover vtok", chromedp.Navigate(srv.url+"/?q=vtok"), chromedp.WaitVisible(chromedp.ID("q")))
		p.waitFor(t, "svc facet", `document.querySelector('.facet[data-field="fields.svc"] .facet-viz') !== null`)
		p.do(t, "visualize svc", chromedp.Click(chromedp.CSS(`.facet[data-field="fields.svc"] .facet-viz`)))
		p.waitFor(t, "bars", vizShown+` && document.querySelectorAll('#viz-chart rect.viz-bar').length === 8`)
		if got := p.eval(t, `new URLSearchParams(location.search).get('tab') + '|' + new URLSearchParams(location.search).get('q')`); got != "visualize|"+countBySvc {
			t.Errorf("URL tab|q = %q, want visualize|%s", got, countBySvc)
		}
		rows := tableIs(t, countBySvc)
		// One bar per group, in the answer's order, as tall as its count.
		var bars [][2]float64
		if err := json.Unmarshal([]byte(p.eval(t, `JSON.stringify(Array.from(document.querySelectorAll('#viz-chart rect.viz-bar'), r => [+r.dataset.value, r.getBBox().height]))`)), &bars); err != nil {
			t.Fatal(err)
		}
		for i, b := range bars {
			n, _ := strconv.ParseFloat(rows[i][1], 64)
			if b[0] != n || (i > 0 && b[1] > bars[i-1][1]) || absf(b[1]-bars[0][1]*n/bars[0][0]) > 1.5 {
				t.Errorf("bar %d: value %g height %.1f; want %g, no taller than the one before, in proportion to bar 0 (%g = %.1f px)", i, b[0], b[1], n, bars[0][0], bars[0][1])
			}
		}
		// Labels name the groups, as text (a long one is cut with …).
		var labels []string
		if err := json.Unmarshal([]byte(p.eval(t, `JSON.stringify(Array.from(document.querySelectorAll('#viz-chart text.x-tick'), e => e.textContent))`)), &labels); err != nil {
			t.Fatal(err)
		}
		for i, l := range labels {
			if full := rows[i][0]; l != full && !(strings.HasSuffix(l, "…") && strings.HasPrefix(full, strings.TrimSuffix(l, "…"))) {
				t.Errorf("bar %d labelled %q, want %q", i, l, full)
			}
		}
		if len(labels) != len(rows) {
			t.Errorf("%d bar labels, want %d", len(labels), len(rows))
		}
		// Hover on the first bar: its group and count.
		hover(t, `document.querySelector('#viz-chart rect.viz-bar')`, 0.5, 0.5)
		p.waitFor(t, "bar tooltip", `!document.querySelector('#viz-chart .viz-tip').hidden`)
		if got := p.eval(t, `document.querySelector('.viz-tip-title').textContent + '|' + document.querySelector('.viz-tip-value').textContent`); got != rows[0][0]+"|"+rows[0][1] {
			t.Errorf("tooltip over the first bar reads %q, want %s|%s", got, rows[0][0], rows[0][1])
		}
		p.shot(t, "viz-bars")
	})

	t.Run("table equals the answer", func(t *testing.T) {
		const q = "vtok | stats count() as n, avg(latency), quantile(0.99, latency) by (svc) | sort by (n desc)"
		p.query(t, q)
		p.waitFor(t, "three bars a group", vizShown+` && document.querySelectorAll('#viz-chart rect.viz-bar').length === 24 && document.querySelector('#viz-thead th:nth-child(2)').textContent === 'n'`)
		tableIs(t, q)
		// What a user reads: counts grouped, the hostile name as text.
		if got := p.eval(t, `Array.from(document.querySelectorAll('#viz-tbody tr:first-child td'), td => td.textContent).slice(0, 2).join('|')`); got != "api|40" {
			t.Errorf("first row reads %q", got)
		}
		if !strings.Contains(p.eval(t, `document.getElementById('viz-table').innerText`), xssVizSvc) {
			t.Errorf("the hostile service name is not shown as text in the table")
		}
		if got := p.eval(t, `Array.from(document.querySelectorAll('#viz-legend .viz-key-name'), e => e.textContent).join('|')`); got != "n|avg(latency)|quantile(0.99, latency)" {
			t.Errorf("legend of a three-column bar chart reads %q", got)
		}
		p.shot(t, "viz-bars-three")
	})

	t.Run("line chart: top 5 and other", func(t *testing.T) {
		const q = "vtok | stats count() by (svc, _time:5m)"
		p.query(t, q)
		p.waitFor(t, "six lines", lines(6))
		tableIs(t, q)
		got := p.eval(t, `JSON.stringify(Array.from(document.querySelectorAll('#viz-legend .viz-key'), k => [k.querySelector('.viz-key-name').textContent, k.querySelector('.viz-key-total').textContent]))`)
		if want := jsonOf(t, [][]string{{"api", "40"}, {"web", "30"}, {"db", "20"}, {"auth", "12"}, {"cache", "8"}, {"other", "10"}}); got != want {
			t.Errorf("legend (name, total) %s, want %s", got, want)
		}
		if got := p.eval(t, `Array.from(document.querySelectorAll('#viz-chart path.viz-line'), e => e.dataset.name).join('|')`); got != "api|web|db|auth|cache|other" {
			t.Errorf("lines drawn %q", got)
		}
		// Time ticks are read as times, and do not overlap.
		if bad := p.eval(t, `(() => { const t = Array.from(document.querySelectorAll('#viz-chart text.x-tick'));
			if (t.length < 3) return 'only ' + t.length + ' time ticks';
			for (const e of t) if (!/^\d\d:\d\d$/.test(e.textContent)) return 'tick ' + e.textContent;
			for (let i = 1; i < t.length; i++) if (t[i].getBBox().x < t[i-1].getBBox().x + t[i-1].getBBox().width + 4) return 'ticks ' + (i-1) + ' and ' + i + ' overlap';
			return ''; })()`); bad != "" {
			t.Errorf("time axis: %s", bad)
		}
		hover(t, `document.querySelector('#viz-chart svg')`, 0.5, 0.5)
		p.waitFor(t, "line tooltip", `!document.querySelector('#viz-chart .viz-tip').hidden && document.querySelectorAll('.viz-tip-row').length === 6`)
		p.shot(t, "viz-lines-hover")
	})

	t.Run("URL round trip", func(t *testing.T) {
		const q = "vtok | stats count() by (svc, _time:5m)"
		p.do(t, "table only", chromedp.Click(chromedp.CSS(`.viz-type[data-chart="table"]`)))
		p.waitFor(t, "table only", `document.querySelector('#viz-chart svg') === null && !document.getElementById('viz-table').hidden && new URLSearchParams(location.search).get('chart') === 'table'`)
		p.do(t, "reload", chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("q")))
		p.waitFor(t, "reopened", vizShown+` && document.querySelectorAll('#viz-tbody tr').length > 0 && document.querySelector('.viz-type[data-chart="table"]').getAttribute('aria-pressed') === 'true'`)
		if got := p.eval(t, `document.getElementById('q').value + '|' + (document.querySelector('#viz-chart svg') === null)`); got != q+"|true" {
			t.Errorf("after reload query|no chart = %q", got)
		}
		tableIs(t, q)
		p.do(t, "back", chromedp.Evaluate[chromedp.Void](`history.back()`))
		p.waitFor(t, "lines again", lines(6)+` && new URLSearchParams(location.search).get('chart') === null`)
		// Discover shows the query before the pipes; back in Visualize the
		// pipes are there again.
		p.do(t, "to discover", chromedp.Click(chromedp.ID("tab-discover")))
		p.waitFor(t, "discover vtok", `document.getElementById('q').value === 'vtok' && document.getElementById('hit-count').textContent === '`+strconv.Itoa(vizTotal)+` hits'`)
		p.do(t, "to visualize", chromedp.Click(chromedp.ID("tab-visualize")))
		p.waitFor(t, "visualize again", lines(6)+` && document.getElementById('q').value === `+jsString(q))
		// A link opens it too.
		p.do(t, "link", chromedp.Navigate(srv.url+"/?tab=visualize&chart=bar&q="+url.QueryEscape(countBySvc)), chromedp.WaitVisible(chromedp.ID("q")))
		p.waitFor(t, "link opened", vizShown+` && document.querySelectorAll('#viz-chart rect.viz-bar').length === 8`)
	})

	t.Run("avg and p99 of a numeric field", func(t *testing.T) {
		p.do(t, "discover vtok", chromedp.Navigate(srv.url+"/?q=vtok&from=now-1h"), chromedp.WaitVisible(chromedp.ID("q")))
		p.waitFor(t, "latency facet", `document.querySelector('.facet[data-field="fields.latency"] .facet-viz-avg') !== null`)
		if got := p.eval(t, `String(document.querySelector('.facet[data-field="fields.svc"] .facet-viz-avg'))`); got != "null" {
			t.Errorf("svc (not numbers) offers avg & p99")
		}
		p.do(t, "avg & p99", chromedp.Click(chromedp.CSS(`.facet[data-field="fields.latency"] .facet-viz-avg`)))
		p.waitFor(t, "two lines", lines(2))
		q := p.eval(t, `new URLSearchParams(location.search).get('q')`)
		if !regexp.MustCompile(`^vtok \| stats avg\(fields\.latency\), quantile\(0\.99, fields\.latency\) by \(_time:\d+[smh]\)$`).MatchString(q) {
			t.Errorf("avg & p99 opened q=%q", q)
		}
		if got := p.eval(t, `Array.from(document.querySelectorAll('#viz-chart path.viz-line'), e => e.dataset.name).join('|')`); got != "avg(fields.latency)|quantile(0.99, fields.latency)" {
			t.Errorf("lines %q", got)
		}
		code, body := srv.raw(ctx, "/api/stats?from=now-1h&q="+url.QueryEscape(q))
		if code != 200 {
			t.Fatalf("/api/stats: %d %s", code, body)
		}
		p.shot(t, "viz-avg-p99")
		// The same series as bars: two a bucket, each labelled with its time
		// (a bucket of the day before, after midnight, with its date too).
		rows := tableIs(t, q)
		p.do(t, "as bars", chromedp.Click(chromedp.CSS(`.viz-type[data-chart="bar"]`)))
		p.waitFor(t, "series bars", `document.querySelectorAll('#viz-chart rect.viz-bar').length === `+strconv.Itoa(2*len(rows)))
		if got := p.eval(t, `Array.from(document.querySelectorAll('#viz-chart text.x-tick'), e => e.textContent).every(l => /^(\S.* )?\d\d:\d\d:\d\d$/.test(l)) + '|' + document.querySelectorAll('#viz-chart text.x-tick').length`); got != "true|"+strconv.Itoa(len(rows)) {
			t.Errorf("series bars labelled by time|labels = %q, want true|%d", got, len(rows))
		}
		p.shot(t, "viz-series-bars")
		p.do(t, "as lines", chromedp.Click(chromedp.CSS(`.viz-type[data-chart="line"]`)))
		p.waitFor(t, "lines back", lines(2))
	})

	t.Run("a query without stats counts over time", func(t *testing.T) {
		p.query(t, "vtok")
		p.waitFor(t, "one line", lines(1)+` && !document.getElementById('viz-hint').hidden`)
		sent := p.eval(t, `new URL(performance.getEntriesByType('resource').filter(e => new URL(e.name).pathname === '/api/stats').pop().name).searchParams.get('q')`)
		if !regexp.MustCompile(`^vtok \| stats count\(\) by \(_time:\d+[smh]\)$`).MatchString(sent) {
			t.Errorf("a plain query sent %q to /api/stats", sent)
		}
		if got := p.eval(t, `document.querySelector('#viz-legend .viz-key-total').textContent`); got != strconv.Itoa(vizTotal) {
			t.Errorf("count over time totals %s, want %d", got, vizTotal)
		}
		p.shot(t, "viz-default")
		// Over all time the bucket is the one the histogram picks.
		p.do(t, "all time", chromedp.Navigate(srv.url+"/?tab=visualize&q=vtok"), chromedp.WaitVisible(chromedp.ID("q")))
		p.waitFor(t, "all-time line", lines(1)+` && !document.getElementById('viz-hint').hidden`)
		if got := p.eval(t, `document.querySelector('#viz-legend .viz-key-total').textContent`); got != strconv.Itoa(vizTotal) {
			t.Errorf("all-time count over time totals %s, want %d", got, vizTotal)
		}
	})

	t.Run("a broken pipe is marked", func(t *testing.T) {
		const q = "vtok | stats cnt()"
		var want struct {
			Error    string `json:"error"`
			Position int    `json:"position"`
		}
		code, body := srv.raw(ctx, "/api/stats?q="+url.QueryEscape(q))
		if code != 400 || json.Unmarshal([]byte(body), &want) != nil || want.Position < 1 || want.Position > len(q) {
			t.Fatalf("/api/stats?q=%s: %d %s, want a 400 with a position", q, code, body)
		}
		p.query(t, q)
		p.waitFor(t, "pipe error", `!document.getElementById('query-error').hidden && document.getElementById('query-error-msg').textContent === `+jsString(want.Error))
		if got := p.eval(t, `document.querySelector('#query-error-where mark').textContent + '|' + (document.querySelector('#viz-chart svg') === null) + '|' + document.getElementById('viz-table').hidden`); got != q[want.Position-1:want.Position]+"|true|true" {
			t.Errorf("mark|no chart|no table = %q", got)
		}
		// Discover runs the query before the pipe (and clears the error);
		// back in Visualize the pipe is refused again.
		p.do(t, "to discover", chromedp.Click(chromedp.ID("tab-discover")))
		p.waitFor(t, "discover vtok", `document.getElementById('q').value === 'vtok' && document.getElementById('query-error').hidden && document.getElementById('hit-count').textContent === '`+strconv.Itoa(vizTotal)+` hits'`)
		p.do(t, "to visualize", chromedp.Click(chromedp.ID("tab-visualize")))
		p.waitFor(t, "refused again", `document.getElementById('q').value === `+jsString(q)+` && !document.getElementById('query-error').hidden && document.getElementById('query-error-msg').textContent === `+jsString(want.Error))
	})

	t.Run("groups capped", func(t *testing.T) {
		const q = "captok | stats count() by (id) | limit 5"
		if code, body := srv.raw(ctx, "/api/stats?q="+url.QueryEscape(q)); code != 200 || !strings.Contains(body, `"groups_capped":true`) {
			t.Fatalf("/api/stats?q=%s: %d %s, want groups_capped", q, code, body)
		}
		p.query(t, q)
		p.waitFor(t, "capped", vizShown+` && !document.getElementById('viz-capped').hidden && document.querySelectorAll('#viz-tbody tr').length === 5`)
		if got := p.eval(t, `document.getElementById('viz-capped').textContent`); !strings.HasPrefix(got, "Too many groups") {
			t.Errorf("capped answer says %q", got)
		}
		p.query(t, "captok | stats count()")
		p.waitFor(t, "not capped", vizShown+` && document.getElementById('viz-capped').hidden && document.querySelector('#viz-tbody td').dataset.value === '`+strconv.Itoa(len(capLines))+`'`)
	})

	t.Run("hostile values stay text", func(t *testing.T) {
		p.do(t, "bars", chromedp.Navigate(srv.url+"/?tab=visualize&q="+url.QueryEscape(countBySvc)), chromedp.WaitVisible(chromedp.ID("q")))
		p.waitFor(t, "bars", vizShown+` && document.querySelectorAll('#viz-chart rect.viz-bar').length === 8`)
		if n := p.eval(t, `String(document.querySelectorAll('#view-visualize img, #view-visualize script, #view-visualize iframe, #viz-chart foreignObject').length)`); n != "0" {
			t.Errorf("%s elements made from values in Visualize", n)
		}
		if !strings.Contains(p.eval(t, `Array.from(document.querySelectorAll('#viz-chart title'), e => e.textContent).join('\n')`), xssVizSvc) {
			t.Errorf("the hostile group is not named as text in the bars' titles")
		}
		// Dark and narrow: still no sideways scrolling.
		p.do(t, "narrow dark", chromedp.EmulateViewport(420, 900), chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
				Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}},
			})
			return err
		}))
		p.query(t, "vtok | stats count() by (svc, _time:5m)")
		p.waitFor(t, "narrow lines", lines(6))
		if w := p.eval(t, `(() => { const d = document.documentElement; return d.scrollWidth > d.clientWidth ? d.scrollWidth + ' > ' + d.clientWidth : ''; })()`); w != "" {
			t.Errorf("at 420px Visualize scrolls sideways: %s px", w)
		}
		p.shot(t, "viz-lines-narrow-dark")
		p.do(t, "wide light", chromedp.EmulateViewport(1280, 900), chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
				Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "light"}},
			})
			return err
		}))
	})

	t.Run("saved searches", func(t *testing.T) {
		type savedSearch struct {
			Name, Query, From, To, View, Chart, Description string
		}
		savedOf := func(name string) (int, savedSearch) {
			var ss savedSearch
			code := srv.get(ctx, "/api/searches/"+url.PathEscape(name), &ss)
			return code, ss
		}
		const series = "vtok | stats count() by (svc, _time:5m)"
		// Save a Visualize table over the last hour.
		p.do(t, "open series", chromedp.Navigate(srv.url+"/?tab=visualize&from=now-1h&chart=table&q="+url.QueryEscape(series)), chromedp.WaitVisible(chromedp.ID("q")))
		p.waitFor(t, "series table", vizShown+` && document.querySelectorAll('#viz-tbody tr').length > 0`)
		p.do(t, "save", chromedp.Click(chromedp.ID("save-toggle")))
		p.waitFor(t, "save form", `!document.getElementById('save-panel').hidden && document.activeElement.id === 'save-name'`)
		p.do(t, "name it", chromedp.SendKeys(chromedp.ID("save-name"), "svc-by-time"),
			chromedp.SendKeys(chromedp.ID("save-description"), xssVizSvc), chromedp.Click(chromedp.ID("save-submit")))
		p.waitFor(t, "saved", `document.getElementById('save-panel').hidden`)
		want := savedSearch{Name: "svc-by-time", Query: series, From: "now-1h", View: "visualize", Chart: "table", Description: xssVizSvc}
		if code, got := savedOf("svc-by-time"); code != 200 || got != want {
			t.Errorf("saved: %d %+v, want %+v", code, got, want)
		}
		// Another, from Discover; saved again under its name from another
		// query, it is refused (the name is taken) until "Replace it".
		p.do(t, "discover anstok", chromedp.Navigate(srv.url+"/?q=anstok"), chromedp.WaitVisible(chromedp.ID("q")))
		p.waitFor(t, "anstok", `document.getElementById('hit-count').textContent === '2 hits'`)
		saveAs := func(name string) {
			t.Helper()
			p.do(t, "save "+name, chromedp.Click(chromedp.ID("save-toggle")))
			p.waitFor(t, "save form "+name, `!document.getElementById('save-panel').hidden`)
			p.do(t, "name "+name, chromedp.SendKeys(chromedp.ID("save-name"), name), chromedp.Click(chromedp.ID("save-submit")))
		}
		saveAs("anstok-all")
		p.waitFor(t, "anstok-all saved", `document.getElementById('save-panel').hidden`)
		if code, got := savedOf("anstok-all"); code != 200 || got.Query != "anstok" || got.View != "discover" || got.From != "" {
			t.Errorf("anstok-all saved as %d %+v", code, got)
		}
		p.query(t, "anstok payment")
		p.waitFor(t, "anstok payment", `document.getElementById('hit-count').textContent === '2 hits' && new URLSearchParams(location.search).get('q') === 'anstok payment'`)
		saveAs("anstok-all")
		p.waitFor(t, "taken", `!document.getElementById('save-error').hidden && !document.getElementById('save-replace').hidden`)
		if code, got := savedOf("anstok-all"); code != 200 || got.Query != "anstok" {
			t.Errorf("a refused save changed anstok-all: %d %+v", code, got)
		}
		p.shot(t, "saved-taken")
		p.do(t, "replace", chromedp.Click(chromedp.ID("save-replace")))
		p.waitFor(t, "replaced", `document.getElementById('save-panel').hidden`)
		if code, got := savedOf("anstok-all"); code != 200 || got.Query != "anstok payment" || got.View != "discover" {
			t.Errorf("after Replace anstok-all is %d %+v", code, got)
		}

		// The list: names, queries, views; the description as text.
		p.do(t, "list", chromedp.Click(chromedp.ID("saved-toggle")))
		p.waitFor(t, "listed", `document.querySelectorAll('#saved-body tr.saved-row').length === 2`)
		if got := p.eval(t, `Array.from(document.querySelectorAll('#saved-body tr.saved-row'), r => r.dataset.name + '=' + r.querySelector('.saved-view').textContent).join(',')`); got != "anstok-all=Discover,svc-by-time=Visualize · table" {
			t.Errorf("saved list %q", got)
		}
		if got := p.eval(t, `document.querySelector('#saved-body tr[data-name="svc-by-time"] .saved-description').textContent + '|' + document.querySelectorAll('#saved-panel img').length`); got != xssVizSvc+"|0" {
			t.Errorf("description|img elements = %q", got)
		}
		p.shot(t, "saved-list")
		// Open restores the query, the range, the view and its chart.
		p.do(t, "open", chromedp.Click(chromedp.CSS(`#saved-body tr[data-name="svc-by-time"] .saved-open`)))
		p.waitFor(t, "opened", vizShown+` && document.querySelectorAll('#viz-tbody tr').length > 0 && document.getElementById('saved-panel').hidden`)
		if got := p.eval(t, `[document.getElementById('q').value, document.getElementById('range').value, location.search.includes('chart=table'), location.search.includes('tab=visualize'), document.querySelector('#viz-chart svg') === null].join('|')`); got != series+"|now-1h|true|true|true" {
			t.Errorf("opened q|range|chart=table|tab|no chart = %q", got)
		}
		// Rename, then delete (a second click confirms).
		p.do(t, "list again", chromedp.Click(chromedp.ID("saved-toggle")))
		p.waitFor(t, "listed again", `document.querySelectorAll('#saved-body tr.saved-row').length === 2`)
		p.do(t, "rename", chromedp.Click(chromedp.CSS(`#saved-body tr[data-name="svc-by-time"] button.rename`)))
		p.waitFor(t, "rename input", `document.activeElement.classList.contains('saved-rename-input')`)
		p.do(t, "new name", chromedp.Evaluate[chromedp.Void](`document.activeElement.value = ''`), chromedp.SendKeys(chromedp.CSS(`.saved-rename-input`), "svc-series"+kb.Enter))
		p.waitFor(t, "renamed", `document.querySelector('#saved-body tr[data-name="svc-series"]') !== null && document.querySelector('#saved-body tr[data-name="svc-by-time"]') === null`)
		if code, _ := savedOf("svc-by-time"); code != 404 {
			t.Errorf("after rename the old name answers %d, want 404", code)
		}
		renamed := want
		renamed.Name = "svc-series"
		if code, got := savedOf("svc-series"); code != 200 || got != renamed {
			t.Errorf("renamed: %d %+v, want %+v", code, got, renamed)
		}
		const del = `#saved-body tr[data-name="anstok-all"] button.remove`
		p.do(t, "delete", chromedp.Click(chromedp.CSS(del)), chromedp.Click(chromedp.CSS(del)))
		p.waitFor(t, "deleted", `document.querySelector('#saved-body tr[data-name="anstok-all"]') === null && document.querySelectorAll('#saved-body tr.saved-row').length === 1`)
		if code, _ := savedOf("anstok-all"); code != 404 {
			t.Errorf("after delete anstok-all answers %d, want 404", code)
		}
		p.shot(t, "saved-after")
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

// jsonOf is v as JSON.stringify writes it.
func jsonOf(t *testing.T, v any) string {
	t.Helper()
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

func absf(f float64) float64 {
	if f < 0 {
		return -f
	}
	return f
}
