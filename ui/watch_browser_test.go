package ui_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
)

// xssRule is hostile markup in a rule's label and description: the page
// must show it as text wherever it shows the rule.
const xssRule = `<img src=x onerror=alert(7)>`

// xssPattern is a hostile log line: its template and example must show as
// text in the Patterns tab.
const xssPattern = `<img src=x onerror=alert(1)>`

// waitLong is answerPage.waitFor with a limit of d and, on failure, what
// the Alerts and Patterns views show.
func waitLong(t *testing.T, p *answerPage, name, expr string, d time.Duration) {
	t.Helper()
	if err := pollJS(p.ctx, expr, d); err != nil {
		dctx, dcancel := context.WithTimeout(p.ctx, 3*time.Second)
		defer dcancel()
		state, _ := chromedp.Run(dctx, chromedp.Evaluate[string](`JSON.stringify({url: location.href,
			alerts: document.getElementById('alerts-body').innerText, alertsError: document.getElementById('alerts-error').textContent,
			form: document.getElementById('alert-form').hidden ? '' : document.getElementById('alert-form').innerText,
			detail: document.getElementById('alert-detail').hidden ? '' : document.getElementById('alert-detail').innerText,
			patterns: document.getElementById('patterns').innerText, count: document.getElementById('hit-count').textContent})`))
		t.Fatalf("%s: %v\npage: %s", name, err, state)
	}
}

// setMedia sets the window's size and colour scheme.
func setMedia(t *testing.T, p *answerPage, w, h int64, scheme string) {
	t.Helper()
	p.do(t, "media "+scheme, chromedp.EmulateViewport(w, h), chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}},
		})
		return err
	}))
}

// noSideways fails when the page is wider than the window.
func noSideways(t *testing.T, p *answerPage, where string) {
	t.Helper()
	if got := p.eval(t, `(() => { const W = document.documentElement.clientWidth; const out = [];
		for (const e of document.querySelectorAll('main *, header *')) { const r = e.getBoundingClientRect();
			if (r.width && r.right > W + 1 && e.offsetParent !== null) out.push(e.tagName + '.' + e.className); }
		return document.documentElement.scrollWidth > W ? 'page ' + document.documentElement.scrollWidth + ' > ' + W + ': ' + out.slice(0, 5).join(', ') : ''; })()`); got != "" {
		t.Errorf("%s scrolls sideways: %s", where, got)
	}
}

// apiRule is the part of GET /api/alerts/{name} the test reads.
type apiRule struct {
	Name      string `json:"name"`
	Query     string `json:"query"`
	Every     string `json:"every"`
	Window    string `json:"window"`
	For       string `json:"for"`
	Condition struct {
		Op    string  `json:"op"`
		Value float64 `json:"value"`
	} `json:"condition"`
	Labels      map[string]string   `json:"labels"`
	Description string              `json:"description"`
	Notify      []map[string]string `json:"notify"`
	State       string              `json:"state"`
	Value       *float64            `json:"value"`
	Instances   []struct {
		Search string `json:"search"`
	} `json:"instances"`
}

// TestBrowserAlerts drives the Alerts view in headless Chromium against a
// real appliance in direct mode (real tailer, Bleve index, embedded etcd,
// HTTP API and alert evaluator): a rule made through the form (a refused
// field shown next to it first) is listed, turns firing as matching lines
// arrive, shows its instance and history, resolves when edited, and is
// deleted; "alert on this search" fills the form from Discover,
// Visualize and a saved search.
func TestBrowserAlerts(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is required in CI: %v", chromiumPath, err)
		}
		t.Skipf("%s not installed: %v", chromiumPath, err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 120*time.Second)
	defer cancel()

	// A receiver for the rule's webhook, so that its notifications go
	// somewhere real (this test reads the page, not the deliveries).
	var (
		hookMu   sync.Mutex
		hookGot  []string
		receiver = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			hookMu.Lock()
			hookGot = append(hookGot, r.URL.Path+" "+string(b))
			hookMu.Unlock()
		}))
	)
	defer receiver.Close()

	root := t.TempDir()
	logs := filepath.Join(root, "logs")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		t.Fatal(err)
	}
	appLog := filepath.Join(logs, "app.log")
	appendLines(t, appLog, "INFO watchtok service started", "INFO watchtok ready")
	srv := startAppliance(ctx, t, root, filepath.Join(logs, "*.log"))
	srv.waitTotal(ctx, "watchtok", 2)

	tab := newTab(ctx, t)
	if err := chromedp.Do(tab, chromedp.EmulateViewport(1280, 900)); err != nil {
		t.Fatalf("start browser: %v", err)
	}
	dialogs := watchDialogs(tab, t)
	// The 400s the form provokes on purpose are logged as "Failed to load
	// resource"; any other console error is a bug.
	reportPageErrors := watchPageErrors(tab, t, func(text string) bool { return !strings.Contains(text, "status of 400") })
	p := &answerPage{ctx: tab, url: srv.url, shotDir: artifactsDir(t)}
	wait := func(name, expr string) { t.Helper(); waitLong(t, p, name, expr, 10*time.Second) }
	setInput := func(id, v string) chromedp.Action[chromedp.Void] {
		return chromedp.Evaluate[chromedp.Void](`(() => { const i = document.getElementById(` + jsString(id) + `); i.value = ` + jsString(v) +
			`; i.dispatchEvent(new Event('input', {bubbles: true})); })()`)
	}
	getRule := func(name string) (apiRule, int) {
		t.Helper()
		var r apiRule
		code := srv.get(ctx, "/api/alerts/"+url.PathEscape(name), &r)
		return r, code
	}

	// The Alerts tab, empty.
	p.do(t, "open alerts", chromedp.Navigate(srv.url+"/?tab=alerts"), chromedp.WaitVisible(chromedp.ID("alert-new")))
	wait("no rules yet", `!document.getElementById('alerts-empty').hidden && document.getElementById('alerts-table').hidden`)

	// A refused field: the server's message shows next to that input, and
	// nothing is stored.
	const rule = "checkout-errors"
	const ruleQuery = "+watchtok +level:ERROR"
	p.do(t, "fill form", chromedp.Click(chromedp.ID("alert-new")), chromedp.WaitVisible(chromedp.ID("af-name")),
		chromedp.SendKeys(chromedp.ID("af-name"), rule),
		chromedp.SendKeys(chromedp.ID("af-description"), "checkout fails "+xssRule),
		chromedp.SendKeys(chromedp.ID("af-query"), ruleQuery),
		chromedp.SendKeys(chromedp.ID("af-every"), "1x"),
		chromedp.SendKeys(chromedp.ID("af-window"), "1m"),
		chromedp.SetValue(chromedp.ID("af-op"), ">="),
		chromedp.SendKeys(chromedp.ID("af-value"), "3"),
		chromedp.SendKeys(chromedp.ID("af-labels"), "severity=page, team="+xssRule),
		chromedp.Click(chromedp.ID("af-add-target")),
		chromedp.SendKeys(`#af-targets li:last-child .af-target-url`, receiver.URL+"/hook"),
		chromedp.Click(chromedp.ID("af-submit")))
	wait("every refused next to its field", `(() => { const e = document.querySelector('#alert-form label[data-field="every"] .field-error');
		return e && /every/.test(e.textContent) && document.getElementById('af-every').getAttribute('aria-invalid') === 'true'; })()`)
	if got := p.eval(t, `String(document.querySelectorAll('#alert-form .field-error').length) + '|' + document.getElementById('af-error').hidden`); got != "1|true" {
		t.Errorf("errors shown (count|form-level hidden) = %s, want one, next to every", got)
	}
	if _, code := getRule(rule); code != http.StatusNotFound {
		t.Errorf("GET the refused rule: status %d, want 404", code)
	}
	p.shot(t, "alert-form-error")

	// A query the index cannot read: marked next to the query.
	p.do(t, "broken query", setInput("af-every", "1s"), setInput("af-query", "+watchtok AND (level:ERROR"), chromedp.Click(chromedp.ID("af-submit")))
	wait("query refused next to it", `(() => { const e = document.querySelector('#alert-form label[data-field="query"] .field-error');
		return e && e.querySelector('mark.query-error-at') !== null; })()`)
	if got := p.eval(t, `String(document.querySelectorAll('#alert-form .field-error').length)`); got != "1" {
		t.Errorf("%s errors after the second try, want only the query's (the first cleared)", got)
	}

	// Fixed: the rule is stored as the form said and listed.
	// With an Alertmanager and a Slack target beside the webhook.
	p.do(t, "create", setInput("af-query", ruleQuery),
		chromedp.Click(chromedp.ID("af-add-target")),
		chromedp.SetValue(`#af-targets li:last-child .af-target-kind`, "alertmanager"),
		chromedp.SendKeys(`#af-targets li:last-child .af-target-url`, receiver.URL),
		chromedp.Click(chromedp.ID("af-add-target")),
		chromedp.SetValue(`#af-targets li:last-child .af-target-kind`, "slack"),
		chromedp.SendKeys(`#af-targets li:last-child .af-target-url`, receiver.URL+"/slack"),
		chromedp.Click(chromedp.ID("af-submit")))
	wait("rule listed", `document.getElementById('alert-form').hidden && document.querySelector('#alerts-body tr[data-name="`+rule+`"]') !== null`)
	got, code := getRule(rule)
	if code != http.StatusOK {
		t.Fatalf("GET the rule: status %d", code)
	}
	if got.Query != ruleQuery || got.Condition.Op != ">=" || got.Condition.Value != 3 || got.Labels["team"] != xssRule || got.Labels["severity"] != "page" ||
		len(got.Notify) != 3 || got.Notify[0]["webhook"] != receiver.URL+"/hook" || got.Notify[1]["alertmanager"] != receiver.URL ||
		got.Notify[2]["slack"] != receiver.URL+"/slack" || got.Description != "checkout fails "+xssRule {
		t.Errorf("stored rule %+v, not what the form said", got)
	}
	for _, d := range []struct{ name, v, want string }{{"every", got.Every, "1s"}, {"window", got.Window, "1m"}} {
		if d.v != d.want && d.v != d.want+"0s" {
			t.Errorf("stored %s %q, want %s", d.name, d.v, d.want)
		}
	}
	row := `document.querySelector('#alerts-body tr[data-name="` + rule + `"]')`
	if got := p.eval(t, row+`.querySelector('.alert-cond').textContent`); got != "count >= 3" {
		t.Errorf("condition shown %q, want count >= 3", got)
	}
	// Evaluated (every second) over the two INFO lines: ok, value 0.
	waitLong(t, p, "evaluated ok", row+`.dataset.state === 'ok' && `+row+`.querySelector('.alert-value').textContent === '0'`, 20*time.Second)

	// Three matching lines: the rule fires, the tab counts it.
	appendLines(t, appLog, "ERROR watchtok checkout failed order=1", "ERROR watchtok checkout failed order=2", "ERROR watchtok checkout failed order=3")
	waitLong(t, p, "firing", row+`.dataset.state === 'firing' && `+row+`.querySelector('.badge.alert-firing') !== null && `+
		row+`.querySelector('.alert-value').textContent === '3'`, 20*time.Second)
	if got := p.eval(t, `document.getElementById('alerts-tab-count').hidden + '|' + document.getElementById('alerts-tab-count').textContent`); got != "false|1" {
		t.Errorf("tab count hidden|text = %s, want 1 shown", got)
	}
	firing, _ := getRule(rule)
	if firing.State != "firing" || firing.Value == nil || *firing.Value != 3 || len(firing.Instances) != 1 {
		t.Errorf("API says state %q value %v instances %d, want firing 3 with one", firing.State, firing.Value, len(firing.Instances))
	}
	p.shot(t, "alerts-firing")

	// The detail: the instance (its labels as text) and the history,
	// newest first, as the API has it.
	p.do(t, "open rule", chromedp.Click(chromedp.JSPath(row+`.querySelector('.alert-open')`)))
	wait("detail", `!document.getElementById('alert-detail').hidden && document.querySelectorAll('#ad-instances-body tr').length === 1 &&
		document.querySelectorAll('#ad-history-body tr').length > 0`)
	if u := p.eval(t, `new URLSearchParams(location.search).get('rule')`); u != rule {
		t.Errorf("URL rule=%q, want %s", u, rule)
	}
	if got := p.eval(t, `(() => { const tr = document.querySelector('#ad-instances-body tr'); return tr.dataset.state + '|' + tr.querySelector('.ad-value').textContent + '|' +
		Array.from(tr.querySelectorAll('.label-chip'), c => c.textContent).join(','); })()`); got != "firing|3|severity=page,team="+xssRule {
		t.Errorf("instance state|value|labels = %q", got)
	}
	var hist struct {
		History []struct {
			From, To string
			Value    float64
		} `json:"history"`
	}
	if code := srv.get(ctx, "/api/alerts/"+rule+"/history", &hist); code != http.StatusOK || len(hist.History) == 0 {
		t.Fatalf("history: status %d, %d entries", code, len(hist.History))
	}
	if hist.History[0].To != "firing" {
		t.Errorf("newest transition %+v, want one to firing", hist.History[0])
	}
	wantHist := make([]string, len(hist.History))
	for i, e := range hist.History {
		wantHist[i] = e.From + ">" + e.To
	}
	wait("history as the API has it", `Array.from(document.querySelectorAll('#ad-history-body tr'), tr => Array.from(tr.querySelectorAll('.badge'), b => b.textContent).join('>')).join(',') === `+
		jsString(strings.Join(wantHist, ",")))
	// The instance links to its lines: the evaluator's query for it.
	if len(firing.Instances) == 1 && firing.Instances[0].Search != "" {
		iu, err := url.Parse(p.eval(t, `document.querySelector('#ad-instances-body .ad-instance-lines')?.getAttribute('href') ?? ''`))
		if err != nil || iu.Query().Get("q") != firing.Instances[0].Search || iu.Query().Get("from") != "now-1m" {
			t.Errorf("instance link %v, want q=%q from=now-1m", iu, firing.Instances[0].Search)
		}
	}
	if got := p.eval(t, `document.getElementById('ad-name').textContent + '|' + document.getElementById('ad-description').textContent`); got != rule+"|checkout fails "+xssRule {
		t.Errorf("detail name|description %q", got)
	}
	p.shot(t, "alert-detail")

	// Its link opens Discover on the rule's query over its window.
	href := p.eval(t, `document.getElementById('ad-discover').getAttribute('href')`)
	hu, err := url.Parse(href)
	if err != nil || hu.Query().Get("q") != ruleQuery || hu.Query().Get("from") != "now-1m" || hu.Query().Get("tab") != "" {
		t.Errorf("Discover link %q, want q=%q from=now-1m", href, ruleQuery)
	}
	p.do(t, "to discover", chromedp.Click(chromedp.ID("ad-discover")))
	wait("its lines", `document.getElementById('tab-discover').getAttribute('aria-selected') === 'true' && document.getElementById('q').value === `+jsString(ruleQuery)+
		` && document.getElementById('hit-count').textContent === '3 hits'`)
	p.do(t, "back to the rule", chromedp.Evaluate[chromedp.Void](`history.back()`))
	wait("rule again", `!document.getElementById('alert-detail').hidden && document.getElementById('ad-name').textContent === `+jsString(rule))

	// Edited to a bar the count is under: it resolves, and the history
	// says so.
	p.do(t, "edit", chromedp.Click(chromedp.ID("ad-edit")), chromedp.WaitVisible(chromedp.ID("af-value")))
	if got := p.eval(t, `['af-name','af-query','af-every','af-window','af-op','af-value','af-labels'].map(id => document.getElementById(id).value).join('|') + '|' +
		document.querySelector('#af-targets .af-target-url').value + '|' + document.getElementById('af-name').readOnly`); got != strings.Join([]string{rule, ruleQuery, "1s", "1m", ">=", "3", "severity=page, team=" + xssRule, receiver.URL + "/hook", "true"}, "|") {
		t.Errorf("edit form holds %q", got)
	}
	p.do(t, "raise the bar", setInput("af-value", "100"), chromedp.Click(chromedp.ID("af-submit")))
	waitLong(t, p, "resolved", row+`.dataset.state === 'ok' && document.querySelector('#ad-history-body tr[data-to="resolved"], #ad-history-body tr[data-to="ok"]') !== null`, 20*time.Second)
	if r, _ := getRule(rule); r.Condition.Value != 100 || r.Labels["team"] != xssRule || len(r.Notify) != 3 || r.Notify[1]["alertmanager"] != receiver.URL || r.Notify[2]["slack"] != receiver.URL+"/slack" {
		t.Errorf("after the edit the rule is %+v, want value 100 and the rest kept", r)
	}
	// Newest first: the resolve is listed above the firing.
	tos := strings.Split(p.eval(t, `Array.from(document.querySelectorAll('#ad-history-body tr'), tr => tr.dataset.to).join(',')`), ",")
	if f, r := slices.Index(tos, "firing"), slices.IndexFunc(tos, func(s string) bool { return s == "resolved" || s == "ok" }); f < 0 || r < 0 || r > f {
		t.Errorf("history (to, newest first) = %q, want a resolve above the firing", tos)
	}
	p.shot(t, "alert-resolved")

	// Dark and narrow: readable, no sideways scrolling.
	setMedia(t, p, 420, 900, "dark")
	wait("narrow detail", `!document.getElementById('alert-detail').hidden`)
	noSideways(t, p, "the alerts view, narrow")
	p.shot(t, "alerts-narrow-dark")
	setMedia(t, p, 1280, 900, "light")

	// Status lists alerting once /api/status reports it.
	var st map[string]json.RawMessage
	srv.get(ctx, "/api/status", &st)
	p.do(t, "status", chromedp.Click(chromedp.ID("tab-status")))
	if _, ok := st["alerts"]; ok {
		wait("alerts card", `document.querySelector('#status-cards [data-card="alerts"]') !== null`)
		p.shot(t, "status-alerts")
	} else {
		t.Logf("/api/status has no alerts part: the Status card is not shown")
	}

	// Alert on this search: from Discover (the query, the range's length
	// as the window), from Visualize (with its stats pipe) and from a
	// saved search (its name too).
	p.do(t, "discover", chromedp.Click(chromedp.ID("tab-discover")), chromedp.SetValue(chromedp.ID("range"), "now-15m"))
	p.query(t, "+watchtok -level:INFO")
	wait("searched", `document.getElementById('hit-count').textContent === '3 hits'`)
	p.do(t, "alert on this search", chromedp.Click(chromedp.ID("alert-this")))
	wait("form from discover", `document.getElementById('tab-alerts').getAttribute('aria-selected') === 'true' && !document.getElementById('alert-form').hidden`)
	if got := p.eval(t, `['af-name','af-query','af-window','af-every'].map(id => document.getElementById(id).value).join('|') + '|' + document.activeElement.id`); got != "|+watchtok -level:INFO|15m||af-name" {
		t.Errorf("form from Discover name|query|window|every|focus = %q", got)
	}
	p.shot(t, "alert-from-search")
	const statsQ = "watchtok | stats count() as n by (level)"
	p.do(t, "visualize", chromedp.Click(chromedp.ID("tab-visualize")))
	p.query(t, statsQ)
	wait("stats", `document.querySelectorAll('#viz-tbody tr').length === 2`)
	p.do(t, "alert from visualize", chromedp.Click(chromedp.ID("alert-this")))
	wait("form from visualize", `!document.getElementById('alert-form').hidden && document.getElementById('af-query').value === `+jsString(statsQ))
	if got := p.eval(t, `document.getElementById('af-column-label').hidden + '|' + document.getElementById('af-cond-subject').textContent`); got != "false|first column" {
		t.Errorf("a stats query's form column hidden|subject = %q, want the column input shown", got)
	}
	// The column typed becomes what the condition compares, and is stored.
	p.do(t, "stats rule", setInput("af-name", "by-level"), setInput("af-column", "n"), chromedp.Click(chromedp.ID("af-submit")))
	wait("stats rule listed", `document.querySelector('#alerts-body tr[data-name="by-level"] .alert-cond')?.textContent === 'n > 0'`)
	srv.post(ctx, "/api/searches", map[string]any{"name": "payments", "query": "+watchtok +payment", "from": "now-1h", "to": "", "view": "discover"})
	p.do(t, "discover again", chromedp.Click(chromedp.ID("tab-discover")), chromedp.Click(chromedp.ID("saved-toggle")))
	wait("saved list", `document.querySelector('#saved-body tr[data-name="payments"] .alert-saved') !== null`)
	p.do(t, "alert from saved", chromedp.Click(`#saved-body tr[data-name="payments"] .alert-saved`))
	wait("form from saved", `!document.getElementById('alert-form').hidden && document.getElementById('af-name').value === 'payments'`)
	if got := p.eval(t, `document.getElementById('af-query').value + '|' + document.getElementById('af-window').value`); got != "+watchtok +payment|1h" {
		t.Errorf("form from the saved search query|window = %q", got)
	}
	p.do(t, "cancel", chromedp.Click(chromedp.ID("af-cancel")))

	// Delete: the first click arms, the second deletes.
	p.do(t, "delete once", chromedp.Click(chromedp.JSPath(row+`.querySelector('button.remove')`)))
	wait("armed", row+`.querySelector('button.remove.armed') !== null`)
	if _, code := getRule(rule); code != http.StatusOK {
		t.Errorf("one click deleted the rule (status %d)", code)
	}
	p.do(t, "delete twice", chromedp.Click(chromedp.JSPath(row+`.querySelector('button.remove')`)))
	wait("deleted", row+` === null && document.getElementById('alert-detail').hidden`)
	if _, code := getRule(rule); code != http.StatusNotFound {
		t.Errorf("after delete GET the rule: status %d, want 404", code)
	}

	if n := p.eval(t, `String(document.querySelectorAll('main img').length)`); n != "0" {
		t.Errorf("%s img elements in the page: markup from a rule was parsed", n)
	}
	if n := dialogs.Load(); n != 0 {
		t.Errorf("%d dialogs opened: injected script ran", n)
	}
	reportPageErrors()
	hookMu.Lock()
	t.Logf("the receiver got %d notifications", len(hookGot))
	// The rule the form made notifies all three kinds of target, each its
	// own way.
	kinds := map[string]bool{}
	for _, m := range hookGot {
		switch {
		case strings.HasPrefix(m, "/hook {") && strings.Contains(m, `"status":"firing"`):
			kinds["webhook"] = true
		case strings.HasPrefix(m, "/api/v2/alerts [") && strings.Contains(m, `"alertname":"`+rule+`"`):
			kinds["alertmanager"] = true
		case strings.HasPrefix(m, "/slack {") && strings.Contains(m, `"text":`):
			kinds["slack"] = true
		}
	}
	hookMu.Unlock()
	if len(kinds) != 3 {
		t.Errorf("notified target kinds %v, want webhook, alertmanager and slack", kinds)
	}
}

// apiPatterns is /api/patterns' answer as the test reads it.
type apiPatterns struct {
	Total    int `json:"total"`
	Patterns []struct {
		Pattern string `json:"pattern"`
		Count   int    `json:"count"`
		Example string `json:"example"`
		New     bool   `json:"new"`
		Buckets []int  `json:"buckets"`
		Query   string `json:"query"`
	} `json:"patterns"`
}

// TestBrowserPatterns drives Discover's Patterns tab in headless Chromium
// against a real appliance: the templates listed are /api/patterns' for
// the page's query and range, their counts add up to the total (the
// number of lines written), each has a sparkline, a hostile line shows
// as text, "new since the previous period" marks exactly the templates
// the API calls new, and clicking a template lists exactly its lines.
func TestBrowserPatterns(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is required in CI: %v", chromiumPath, err)
		}
		t.Skipf("%s not installed: %v", chromiumPath, err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()

	// Lines of the last half hour (each stamped with its time) of four
	// kinds, and 90 minutes ago (before a one-hour range) of two of them
	// only: "cache miss" and the hostile line are new in the last hour.
	now := time.Now().UTC().Truncate(time.Second)
	var lines []string
	recent := 0
	add := func(at time.Time, line string, inRange bool) {
		lines = append(lines, at.Format(time.RFC3339)+" "+line)
		if inRange {
			recent++
		}
	}
	for i := range 40 {
		add(now.Add(-30*time.Minute+time.Duration(i*40)*time.Second), fmt.Sprintf("INFO pattok user %d logged in from 10.0.%d.%d", 1000+i*7, i%5, i%200), true)
	}
	for i := range 25 {
		add(now.Add(-25*time.Minute+time.Duration(i*50)*time.Second), fmt.Sprintf("INFO pattok GET /api/orders/%d answered %d in %d ms", i*13, 200+i%3, 5+i), true)
	}
	for i := range 7 {
		add(now.Add(-10*time.Minute+time.Duration(i*60)*time.Second), fmt.Sprintf("WARN pattok cache miss for key %x", 0xbeef00+i*17), true)
	}
	for i := range 3 {
		add(now.Add(-5*time.Minute+time.Duration(i*30)*time.Second), fmt.Sprintf("ERROR pattok rendering %s for request %d", xssPattern, 40+i), true)
	}
	for i := range 6 {
		add(now.Add(-90*time.Minute+time.Duration(i)*time.Minute), fmt.Sprintf("INFO pattok user %d logged in from 10.1.0.%d", 77+i, i), false)
		add(now.Add(-85*time.Minute+time.Duration(i)*time.Minute), fmt.Sprintf("INFO pattok GET /api/orders/%d answered 200 in %d ms", 900+i, 9+i), false)
	}
	root := t.TempDir()
	logs := filepath.Join(root, "logs")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		t.Fatal(err)
	}
	appendLines(t, filepath.Join(logs, "app.log"), lines...)
	srv := startAppliance(ctx, t, root, filepath.Join(logs, "*.log"))
	srv.waitTotal(ctx, "pattok", len(lines))

	tab := newTab(ctx, t)
	if err := chromedp.Do(tab, chromedp.EmulateViewport(1280, 900)); err != nil {
		t.Fatalf("start browser: %v", err)
	}
	dialogs := watchDialogs(tab, t)
	reportPageErrors := watchPageErrors(tab, t, func(string) bool { return true })
	p := &answerPage{ctx: tab, url: srv.url, shotDir: artifactsDir(t)}
	wait := func(name, expr string) { t.Helper(); waitLong(t, p, name, expr, 10*time.Second) }

	// lastPatterns asks the API what the page's last /api/patterns
	// request asked, and returns that request's query too.
	lastPatterns := func() (apiPatterns, url.Values) {
		t.Helper()
		raw := p.eval(t, `(() => { const l = performance.getEntriesByType('resource').map(e => new URL(e.name)).filter(u => u.pathname === '/api/patterns');
			return l.length ? l[l.length - 1].search : ''; })()`)
		if raw == "" {
			t.Fatal("the page asked /api/patterns nothing")
		}
		var ans apiPatterns
		if code := srv.get(ctx, "/api/patterns"+raw, &ans); code != http.StatusOK {
			t.Fatalf("GET /api/patterns%s: status %d", raw, code)
		}
		v, _ := url.ParseQuery(strings.TrimPrefix(raw, "?"))
		return ans, v
	}
	// shown reads the page's rows: template text, count and the like.
	type row struct {
		Template, Example string
		Count             int
		Share             string
		New, Other        bool
		Spark             int
	}
	shown := func() []row {
		t.Helper()
		raw := p.eval(t, `JSON.stringify(Array.from(document.querySelectorAll('#patterns-body tr'), tr => ({
			Template: tr.querySelector('.pt-open')?.textContent ?? '', Example: tr.querySelector('.pt-example')?.textContent ?? '',
			Count: Number(tr.dataset.count), Share: tr.querySelector('.pt-share').textContent, New: tr.querySelector('.pt-new') !== null,
			Other: tr.classList.contains('pattern-other'), Spark: Number(tr.querySelector('.spark-line')?.dataset.n ?? 0)})))`)
		var rows []row
		if err := json.Unmarshal([]byte(raw), &rows); err != nil {
			t.Fatalf("rows %s: %v", raw, err)
		}
		return rows
	}

	p.do(t, "open", chromedp.Navigate(srv.url+"/?q=pattok&from=now-1h"), chromedp.WaitVisible(chromedp.ID("mode-patterns")))
	wait("searched", fmt.Sprintf(`document.getElementById('hit-count').textContent === '%d hits'`, recent))
	p.do(t, "patterns", chromedp.Click(chromedp.ID("mode-patterns")))
	wait("patterns listed", `!document.getElementById('patterns').hidden && document.querySelectorAll('#patterns-body tr').length > 0 && !document.getElementById('patterns').classList.contains('loading')`)
	if got := p.eval(t, `new URLSearchParams(location.search).get('show') + '|' + document.getElementById('results').offsetParent`); got != "patterns|null" {
		t.Errorf("URL show=|results shown = %q, want patterns and the lines hidden", got)
	}
	ans, req := lastPatterns()
	if req.Get("q") != "pattok" || req.Get("from") != "now-1h" || req.Get("compare_from") != "" {
		t.Errorf("page asked %v, want q=pattok from=now-1h and no comparison", req)
	}
	if ans.Total != recent {
		t.Errorf("/api/patterns total %d, want the %d lines of the last hour", ans.Total, recent)
	}
	rows := shown()
	sum := 0
	for _, r := range rows {
		sum += r.Count
	}
	if sum != recent || p.eval(t, `document.getElementById('patterns-total').textContent`) != fmt.Sprint(recent) {
		t.Errorf("counts shown add up to %d, total shown %s; want %d", sum, p.eval(t, `document.getElementById('patterns-total').textContent`), recent)
	}
	if len(rows) != len(ans.Patterns) {
		t.Fatalf("%d rows shown, the API has %d templates", len(rows), len(ans.Patterns))
	}
	hostile := -1
	for i, a := range ans.Patterns {
		r := rows[i]
		if r.Template != a.Pattern || r.Count != a.Count || r.Example != a.Example || r.New {
			t.Errorf("row %d = %+v, want the API's %q ×%d (example %q) without a new badge", i, r, a.Pattern, a.Count, a.Example)
		}
		if r.Spark != len(a.Buckets) || len(a.Buckets) < 2 {
			t.Errorf("row %d sparkline of %d points, the API has %d buckets", i, r.Spark, len(a.Buckets))
		}
		if strings.Contains(a.Example, xssPattern) {
			hostile = i
		}
	}
	if hostile < 0 {
		t.Fatalf("no template's example holds the hostile line: %+v", ans.Patterns)
	}
	if n := p.eval(t, `String(document.querySelectorAll('#patterns img, #patterns script').length)`); n != "0" {
		t.Errorf("%s elements parsed from a log line in the patterns", n)
	}
	// The example shows on expanding.
	p.do(t, "expand", chromedp.Click(fmt.Sprintf(`#patterns-body tr:nth-child(%d) .pt-expand`, hostile+1)))
	wait("example shown", fmt.Sprintf(`document.querySelector('#patterns-body tr:nth-child(%d) .pt-example').offsetParent !== null`, hostile+1))
	p.shot(t, "patterns")

	// New since the previous period: the hour before. Exactly the
	// templates the API calls new have the badge: the two written only
	// in the last hour.
	p.do(t, "new toggle", chromedp.Click(chromedp.ID("patterns-new")))
	wait("compared", `!document.getElementById('patterns').classList.contains('loading') && new URLSearchParams(location.search).get('new') === '1'`)
	wait("badges", `document.querySelectorAll('#patterns-body .pt-new').length > 0`)
	ans, req = lastPatterns()
	if req.Get("compare_from") != "now-2h" || req.Get("compare_to") != "now-1h" {
		t.Errorf("compare range %s..%s, want now-2h..now-1h", req.Get("compare_from"), req.Get("compare_to"))
	}
	rows = shown()
	var newOnes []string
	for i, a := range ans.Patterns {
		if i < len(rows) && rows[i].New != a.New {
			t.Errorf("row %q new badge %v, the API says %v", a.Pattern, rows[i].New, a.New)
		}
		if a.New {
			newOnes = append(newOnes, a.Example)
		}
	}
	if len(newOnes) != 2 || !slices.ContainsFunc(newOnes, func(s string) bool { return strings.Contains(s, "cache miss") }) ||
		!slices.ContainsFunc(newOnes, func(s string) bool { return strings.Contains(s, xssPattern) }) {
		t.Errorf("new templates' examples %q, want the cache miss and the hostile one", newOnes)
	}
	if got := p.eval(t, `document.getElementById('patterns-summary').textContent`); !strings.HasSuffix(got, "· 2 new") {
		t.Errorf("summary %q, want it to count 2 new", got)
	}
	p.shot(t, "patterns-new")

	// Narrow and dark: the rows stack, nothing scrolls sideways.
	setMedia(t, p, 420, 900, "dark")
	wait("narrow", `document.querySelectorAll('#patterns-body tr').length > 0`)
	noSideways(t, p, "the patterns, narrow")
	p.do(t, "scroll to patterns", chromedp.Evaluate[chromedp.Void](`document.getElementById('patterns').scrollIntoView()`))
	p.shot(t, "patterns-narrow-dark")
	setMedia(t, p, 1280, 900, "light")

	// A click on a template lists exactly its lines.
	pick := 0
	for i, a := range ans.Patterns {
		if strings.Contains(a.Example, "logged in") {
			pick = i
		}
	}
	want := ans.Patterns[pick]
	p.do(t, "click template", chromedp.Click(fmt.Sprintf(`#patterns-body tr:nth-child(%d) .pt-open`, pick+1)))
	wait("its lines", fmt.Sprintf(`document.getElementById('q').value === %s && document.getElementById('mode-docs').getAttribute('aria-pressed') === 'true' &&
		document.getElementById('hit-count').textContent === %s && document.getElementById('patterns').hidden`, jsString(want.Query), jsString(plural(want.Count, "hit", "hits"))))
	if got := p.eval(t, `new URLSearchParams(location.search).get('q') + '|' + new URLSearchParams(location.search).get('show')`); got != want.Query+"|null" {
		t.Errorf("URL q|show after the click = %q", got)
	}
	// Every line listed fits the template (the first page of them).
	if bad := p.eval(t, `Array.from(document.querySelectorAll('#results .hit .line'), e => e.textContent).filter(l => !/ user \d+ logged in from /.test(l)).join('\n')`); bad != "" {
		t.Errorf("lines that do not fit %q listed:\n%s", want.Pattern, bad)
	}
	p.shot(t, "patterns-filtered")
	// Back: the patterns again.
	p.do(t, "back", chromedp.Evaluate[chromedp.Void](`history.back()`))
	wait("patterns again", `!document.getElementById('patterns').hidden && document.getElementById('q').value === 'pattok' && document.querySelectorAll('#patterns-body .pt-new').length > 0`)

	// All time: every line, still with sparklines (over the histogram's
	// span); "new since" needs a range to compare with.
	p.do(t, "all time", chromedp.SetValue(chromedp.ID("range"), ""))
	wait("all time", fmt.Sprintf(`document.getElementById('patterns-total').textContent === '%d' && !document.getElementById('patterns').classList.contains('loading')`, len(lines)))
	ans, req = lastPatterns()
	if req.Get("from") == "" || req.Get("to") == "" || req.Get("compare_from") != "" || ans.Total != len(lines) {
		t.Errorf("all time asked from=%q to=%q compare_from=%q and got %d lines, want a closed range, no comparison, all %d lines",
			req.Get("from"), req.Get("to"), req.Get("compare_from"), ans.Total, len(lines))
	}
	rows = shown()
	sum = 0
	for i, r := range rows {
		sum += r.Count
		if i < len(ans.Patterns) && (r.Spark != len(ans.Patterns[i].Buckets) || r.Spark < 2 || r.New) {
			t.Errorf("all time, row %d: %d sparkline points (API %d buckets), new badge %v", i, r.Spark, len(ans.Patterns[i].Buckets), r.New)
		}
	}
	if sum != len(lines) {
		t.Errorf("all time: counts add up to %d, want %d", sum, len(lines))
	}
	if got := p.eval(t, `String(document.getElementById('patterns-new').disabled)`); got != "true" {
		t.Errorf("new-since toggle disabled = %s over all time, want true", got)
	}

	// A query that matches nothing has no patterns, and says so.
	p.query(t, "pattok AND nosuchword")
	wait("none", `!document.getElementById('patterns-empty').hidden && document.getElementById('patterns-table').hidden`)

	if n := dialogs.Load(); n != 0 {
		t.Errorf("%d dialogs opened: injected script ran", n)
	}
	reportPageErrors()
}

// plural is the page's plural(): "1 hit", "1,234 hits".
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return commas(int64(n)) + " " + many
}
