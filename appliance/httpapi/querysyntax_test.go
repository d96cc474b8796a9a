package httpapi_test

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/logbox/logbox/appliance/pipeline"
)

// TestQuerySyntaxErrorsHavePosition: a query that cannot mean anything is
// a 400 with the position of the fault on every endpoint that takes a
// query, never a 200 with no hits; the boolean syntax works through the
// API.
func TestQuerySyntaxErrorsHavePosition(t *testing.T) {
	srv, ix, _ := newServer(t)
	now := time.Now()
	var rs []pipeline.Record
	for i, l := range []string{"alpha beta", "alpha gamma", "beta gamma", "用户登录失败 user=bob"} {
		rs = append(rs, pipeline.Record{TS: now, Host: "h", FileID: "f", Offset: int64(i * 100), Line: l})
	}
	if err := ix.Index(context.Background(), rs); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		q   string
		pos float64
		has string
	}{
		{"/foo[", 1, "regular expression"},
		{"+(", 2, "never closed"},
		{"(a", 1, "never closed"},
		{"alpha AND", 7, "AND needs a clause after it"},
		{"OR beta", 1, "OR needs a clause before it"},
		{"()", 1, "empty group"},
		{`msg:"disk`, 5, "quote"},
		{"alpha)", 6, "closes no ("},
	}
	for _, c := range cases {
		for _, path := range []string{"/api/search", "/api/histogram", "/api/facets?field=host&"} {
			sep := "?"
			if strings.HasSuffix(path, "&") {
				sep = ""
			}
			u := srv.URL + path + sep + "q=" + url.QueryEscape(c.q)
			code, m, _ := do(t, "GET", u, "")
			if code != 400 || m["position"] != c.pos || !strings.Contains(m["error"].(string), c.has) {
				t.Errorf("%s q=%q: %d %v, want 400 with position %v and %q", path, c.q, code, m, c.pos, c.has)
			}
		}
	}
	for q, want := range map[string]float64{"alpha AND NOT gamma": 1, "(alpha OR beta) AND gamma": 2, "登录": 1, "msg:登录": 0} {
		code, m, _ := do(t, "GET", srv.URL+"/api/search?q="+url.QueryEscape(q), "")
		if code != 200 || m["total"] != want {
			t.Errorf("q=%q: %d total %v, want %v", q, code, m["total"], want)
		}
	}
}
