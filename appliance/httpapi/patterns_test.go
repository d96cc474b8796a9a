package httpapi_test

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/logbox/logbox/appliance/httpapi"
	"github.com/logbox/logbox/appliance/index"
	"github.com/logbox/logbox/appliance/patterns"
	"github.com/logbox/logbox/appliance/pipeline"
)

func TestPatternsAPI(t *testing.T) {
	srv, ix, _ := newServerWith(t, index.Config{Templates: patterns.Fitter{}}, func(d *httpapi.Deps) {
		d.Patterns = patterns.New(d.Search.(*index.Index))
		d.PatternsPipe = index.PatternsPipe
	})
	ctx := context.Background()
	t0 := time.Date(2026, 4, 1, 12, 0, 0, 0, time.UTC)
	// Before t0: logins and disk lines; from t0 on also timeouts (new).
	want := map[string]uint64{}
	var recs []pipeline.Record
	for i := range 600 {
		ts := t0.Add(time.Duration(i-300) * 6 * time.Second)
		var line, tmpl string
		switch {
		case i%3 == 0:
			line, tmpl = fmt.Sprintf("user %s logged in from 10.0.%d.%d", []string{"ann", "bo", "cy"}[i%9/3], i%7, i%250), "user <*> logged in from <*>"
		case i%3 == 1:
			line, tmpl = fmt.Sprintf("disk usage at %d%%", i%100), "disk usage at <*>%"
		case i >= 300:
			line, tmpl = fmt.Sprintf("request %d timed out after %dms", i, i*7), "request <*> timed out after <*>ms"
		default:
			line, tmpl = "health check ok", "health check ok"
		}
		if i >= 300 {
			want[tmpl]++
		}
		recs = append(recs, pipeline.Record{TS: ts, Host: "web1", Source: "/var/log/app.log", FileID: "f1", Offset: int64(i) * 100, Parser: "none", Line: line})
	}
	if err := ix.Index(ctx, recs); err != nil {
		t.Fatal(err)
	}
	from, to := t0.Format(time.RFC3339), t0.Add(30*time.Minute).Format(time.RFC3339)
	rng := "&from=" + url.QueryEscape(from) + "&to=" + url.QueryEscape(to)

	code, m, _ := do(t, "GET", srv.URL+"/api/patterns?buckets=6&compare=1"+rng, "")
	if code != 200 {
		t.Fatalf("%d %v", code, m)
	}
	if m["total"] != 300.0 || m["templates"] != 3.0 || m["rest"] != 0.0 || m["new"] != 1.0 || m["compared"] != true ||
		m["compare_from"] != t0.Add(-30*time.Minute).Format(time.RFC3339) || m["compare_to"] != from ||
		m["bucket_start"] != from || m["bucket_ms"] != float64(5*time.Minute/time.Millisecond) {
		t.Fatalf("answer %v", m)
	}
	ps := m["patterns"].([]any)
	var sum float64
	for _, x := range ps {
		p := x.(map[string]any)
		name := p["pattern"].(string)
		sum += p["count"].(float64)
		if p["count"] != float64(want[name]) {
			t.Errorf("%q: %v lines, want %d", name, p["count"], want[name])
		}
		if isNew := p["new"] == true; isNew != (name == "request <*> timed out after <*>ms") {
			t.Errorf("%q: new %v", name, p["new"])
		}
		var bk float64
		for _, v := range p["buckets"].([]any) {
			bk += v.(float64)
		}
		if len(p["buckets"].([]any)) != 6 || bk != p["count"] || p["example"] == "" {
			t.Errorf("%q: buckets %v, example %q", name, p["buckets"], p["example"])
		}
		// Its query, in Discover, counts the same lines.
		_, sr, _ := do(t, "GET", srv.URL+"/api/search?track_total=true&limit=1&q="+url.QueryEscape(p["query"].(string))+rng, "")
		if sr["total"] != p["count"] {
			t.Errorf("search %q: %v, want %v", p["query"], sr["total"], p["count"])
		}
	}
	if sum != 300 {
		t.Fatalf("counts add up to %v", sum)
	}

	// Only the new ones, against an explicit range; a pipe's limit.
	cr := "&compare_from=" + url.QueryEscape(t0.Add(-30*time.Minute).Format(time.RFC3339)) + "&compare_to=" + url.QueryEscape(from)
	_, m, _ = do(t, "GET", srv.URL+"/api/patterns?only_new=true"+cr+rng, "")
	if ps := m["patterns"].([]any); len(ps) != 1 || ps[0].(map[string]any)["pattern"] != "request <*> timed out after <*>ms" || m["rest"] != 300.0-float64(want["request <*> timed out after <*>ms"]) {
		t.Fatalf("only new: %v", m)
	}
	_, m, _ = do(t, "GET", srv.URL+"/api/patterns?q="+url.QueryEscape("-health | patterns limit 1")+rng, "")
	if ps := m["patterns"].([]any); len(ps) != 1 || m["templates"] != 3.0 || ps[0].(map[string]any)["query"] != `(-health) AND _pattern:"disk usage at <*>%"` {
		t.Fatalf("pipe limit: %v", m)
	}

	// The pipe on /api/stats: a table.
	code, m, _ = do(t, "GET", srv.URL+"/api/stats?q="+url.QueryEscape("* | patterns limit 2")+rng, "")
	if code != 200 || !slices.Equal(anyStrings(m["columns"]), []string{"count", "pattern", "example"}) || len(m["rows"].([]any)) != 2 || m["total"] != 300.0 {
		t.Fatalf("stats pipe: %d %v", code, m)
	}
	if row := m["rows"].([]any)[0].([]any); row[0] != float64(want[row[1].(string)]) {
		t.Fatalf("stats pipe row %v", row)
	}

	// Errors.
	for _, c := range []struct {
		path string
		code int
		pos  float64
	}{
		{"/api/patterns?q=" + url.QueryEscape("a AND (b") + rng, 400, 7},
		{"/api/stats?q=" + url.QueryEscape("x | patterns limit 0") + rng, 400, 20},
		{"/api/patterns?q=" + url.QueryEscape("x | patterns by (y)") + rng, 400, 14},
		{"/api/patterns?buckets=501" + rng, 400, 0},
		{"/api/patterns?compare=maybe" + rng, 400, 0},
		{"/api/patterns?compare=1", 400, 0},
		{"/api/patterns?only_new=1" + rng, 400, 0},
		{"/api/patterns?compare_from=" + url.QueryEscape(from) + rng, 400, 0},
		{"/api/patterns?limit=0" + rng, 400, 0},
	} {
		code, m, _ := do(t, "GET", srv.URL+c.path, "")
		if code != c.code || m["error"] == nil || c.pos > 0 && m["position"] != c.pos || c.pos == 0 && m["position"] != nil {
			t.Errorf("%s: %d %v; want %d at %v", c.path, code, m, c.code, c.pos)
		}
	}

	// Without a patterns engine (role agent): 501; the pipe is refused
	// by the index.
	bare, _, _ := newServer(t)
	if code, _, _ := do(t, "GET", bare.URL+"/api/patterns", ""); code != 501 {
		t.Fatalf("no engine: %d", code)
	}
	if code, m, _ := do(t, "GET", bare.URL+"/api/stats?q="+url.QueryEscape("* | patterns"), ""); code != 400 {
		t.Fatalf("no engine, pipe: %d %v", code, m)
	}
}

func anyStrings(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}
