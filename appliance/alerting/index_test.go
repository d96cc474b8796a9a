package alerting

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/logbox/logbox/appliance/index"
	"github.com/logbox/logbox/appliance/pipeline"
)

// openIndex opens a real index with generated lines over the last
// minute: per host a number of ERROR lines (the rest INFO), each line with
// a logfmt took=N field.
func openIndex(t *testing.T, errs map[string]int, infos int) *index.Index {
	t.Helper()
	ix, err := index.Open(index.Config{Dir: filepath.Join(t.TempDir(), "idx")}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ix.Close() })
	now := time.Now()
	var recs []pipeline.Record
	for host, n := range errs {
		off := int64(0)
		for i := range n + infos {
			lvl := "INFO"
			if i < n {
				lvl = "ERROR"
			}
			line := fmt.Sprintf("%s request %d took=%d", lvl, i, 10*(i+1))
			recs = append(recs, pipeline.Record{
				TS: now.Add(-time.Duration(i+1) * time.Second), Host: host, Source: "/var/log/app.log",
				FileID: "file-" + host, Offset: off, End: off + int64(len(line)) + 1, Line: line,
			})
			off += int64(len(line)) + 1
		}
	}
	if err := ix.Index(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	return ix
}

// TestRealIndex: rules evaluated against a real index, from the
// generated lines: the count of a query without a pipe, and a by (host)
// pipe whose groups over the threshold fire, each with its own count.
func TestRealIndex(t *testing.T) {
	errs := map[string]int{"web1": 8, "web2": 3, "web3": 5}
	ix := openIndex(t, errs, 4)
	e := startEtcd(t)
	cli := e.Client()
	wh := newReceiver(t)
	start(t, testConfig(cli, ix))

	total := rule("errors", "ERROR", pipeline.AlertTarget{Webhook: wh.srv.URL})
	total.Condition = pipeline.AlertCondition{Op: ">", Value: 10}
	byHost := rule("byhost", "level:ERROR | stats count() as n by (host)", pipeline.AlertTarget{Webhook: wh.srv.URL})
	byHost.Condition = pipeline.AlertCondition{Op: ">", Value: 4}
	quiet := rule("quiet", "ERROR AND host:web2", pipeline.AlertTarget{Webhook: wh.srv.URL})
	quiet.Condition = pipeline.AlertCondition{Op: ">", Value: 3}
	putRule(t, cli, total)
	putRule(t, cli, byHost)
	putRule(t, cli, quiet)

	waitFor(t, 15*time.Second, "both rules fire", func() bool { return len(wh.delivered()) >= 2 })
	values := map[string]string{}
	for _, m := range wh.webhooks(t) {
		for _, a := range m.Alerts {
			values[a.Labels["alertname"]+"/"+a.Labels["host"]] = a.Annotations["value"]
		}
	}
	want := map[string]string{"errors/": "16", "byhost/web1": "8", "byhost/web3": "5"}
	if len(values) != len(want) {
		t.Fatalf("alerts %v, want %v", values, want)
	}
	for k, v := range want {
		if values[k] != v {
			t.Errorf("%s: value %q, want %q", k, values[k], v)
		}
	}
	waitFor(t, 10*time.Second, "quiet evaluated", func() bool {
		st, _ := readState(t, cli, "quiet")
		return st.Value != nil
	})
	if st, _ := readState(t, cli, "quiet"); st.State != pipeline.AlertOK || *st.Value != 3 {
		t.Errorf("quiet: %+v", st)
	}
	if st, _ := readState(t, cli, "byhost"); st.State != pipeline.AlertFiring || len(st.Instances) != 2 || *st.Value != 8 {
		t.Errorf("byhost: %+v", st)
	}
}

// TestQueryReadingMatchesIndex: the evaluator's reading of a query (where
// its pipes start; how many by columns lead a stats answer; which
// functions count) agrees with the real index's on every query here.
func TestQueryReadingMatchesIndex(t *testing.T) {
	ix := openIndex(t, map[string]int{"web1": 2, "web2": 1}, 2)
	for _, q := range []string{
		"error", "*", `"a | b"`, `line:/x | y/`, `a || b`, `id:h|f|1`, `a \| b`, "a|b",
		"error | stats count()", `"x" | stats count() by (host)`, "| stats count()",
	} {
		_, pipes := splitPipes(q)
		if got, want := len(pipes) > 0, index.HasPipe(q); got != want {
			t.Errorf("%q: pipe %v, the index says %v", q, got, want)
		}
		if len(pipes) == 0 {
			if err := index.CheckQuery(q + " | stats count()"); err != nil {
				t.Errorf("%q: the count pipe the evaluator adds is refused: %v", q, err)
			}
		}
	}
	now := time.Now()
	// The index says how many columns lead with by values (res.By).
	for _, c := range []struct {
		q       string
		by, fns int
	}{
		{"* | stats count()", 0, 1},
		{"* | stats count() as n by (host)", 1, 1},
		{"* | stats by (host, level) count(), avg(took) as lat", 2, 2},
		{"* | stats by host count_distinct(source)", 1, 1},
		{"* | stats count(took), max(took), quantile(0.9, took) by (host, _time:1m) | sort by (host) | limit 5", 2, 3},
		{"* | stats median(took) as m, sum(took) by (source_name)", 1, 2},
	} {
		res, err := ix.StatsQuery(context.Background(), pipeline.StatsRequest{Query: c.q, From: now.Add(-time.Hour), To: now.Add(time.Minute)})
		if err != nil {
			t.Fatalf("%q: %v", c.q, err)
		}
		nBy := res.By
		if nBy != c.by || len(res.Columns) != c.by+c.fns || len(res.Rows) == 0 {
			t.Errorf("%q: %d by; the index answers columns %q, %d by (%d rows)", c.q, c.by, res.Columns, res.By, len(res.Rows))
			continue
		}
		for _, row := range res.Rows {
			for i, cell := range row {
				if _, isStr := cell.(string); isStr != (i < nBy) {
					t.Errorf("%q: cell %d (%v) of %v, with %d by columns", c.q, i, cell, row, nBy)
				}
			}
		}
	}
	// A pipe without by over a range without lines answers one row: a
	// count is 0 then, an avg no value.
	e := New(Config{Querier: ix})
	old := now.Add(-48 * time.Hour)
	for _, c := range []struct {
		q      string
		column string
		ok     bool
	}{{"* | stats count() as n, avg(took) as lat", "", true}, {"* | stats count() as n, avg(took) as lat", "lat", false}} {
		r := rule("r", c.q)
		r.Column = c.column
		gs, err := e.query(context.Background(), &r, old)
		if err != nil || len(gs) != 1 || gs[0].ok != c.ok || gs[0].value != 0 {
			t.Errorf("%q column %q over an empty range: %+v, %v", c.q, c.column, gs, err)
		}
	}
}
