package httpapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/logbox/logbox/appliance/pipeline"
)

// TestRefusedQueryInputs: what the README says is refused is a 400 naming
// the problem on every endpoint that takes it, and what is accepted gives
// the right answer (not a silently wrong one).
func TestRefusedQueryInputs(t *testing.T) {
	srv, ix, _ := newServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// 90 lines: 60 of web1, 30 of web2; a third each ERROR, INFO, WARN.
	if err := ix.Index(ctx, append(lines(base, 60, "web1", "a"), lines(base, 30, "web2", "b")...)); err != nil {
		t.Fatal(err)
	}
	nest := func(n int, inner string) string { return strings.Repeat("(", n) + inner + strings.Repeat(")", n) }
	endpoints := []string{"/api/search?", "/api/histogram?", "/api/facets?field=host&", "/api/export?"}

	// get answers the code, the error and how many lines the endpoint
	// counted (search, histogram and facets: total; export: lines sent).
	get := func(path string) (int, string, int) {
		t.Helper()
		if strings.HasPrefix(path, "/api/export?") {
			req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+path, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != 200 {
				_, m, _ := do(t, "GET", srv.URL+path, "")
				e, _ := m["error"].(string)
				return resp.StatusCode, e, 0
			}
			n := 0
			for sc := bufio.NewScanner(resp.Body); sc.Scan(); n++ {
			}
			return 200, "", n
		}
		code, m, _ := do(t, "GET", srv.URL+path, "")
		e, _ := m["error"].(string)
		total, _ := m["total"].(float64)
		return code, e, int(total)
	}

	refused := []struct {
		params string
		errHas string
	}{
		// 1. Nesting: parentheses group, at most 20 deep; the error says
		// where the 21st opens.
		{"q=" + url.QueryEscape(nest(370, "request")), "parentheses nested more than 20 deep at position 21"},
		{"q=" + url.QueryEscape(nest(21, "request")), "parentheses nested more than 20 deep at position 21"},
		// 2. Times the index cannot hold, and a range that ends before it starts.
		{"to=2300-01-01T00:00:00Z", "to: 2300-01-01T00:00:00Z is outside the times the index can hold"},
		{"from=1600-01-01T00:00:00Z", "from: 1600-01-01T00:00:00Z is outside"},
		{"from=1969-12-31T23:59:59Z", "from: 1969-12-31T23:59:59Z is outside"},
		{"from=now-1000000w", "from:"},
		{"from=now-99999999999999w", "from: \"now-99999999999999w\": more than"},
		{"to=now%2B99999999999999w", "to:"},
		{"from=2026-01-02T03:00:30Z&to=2026-01-02T03:00:10Z", "to: 2026-01-02T03:00:10Z is before from"},
		// 3. One rule for expensive patterns, wildcards and regexps alike.
		{"q=" + url.QueryEscape("/.*/"), "can begin with any character"},
		{"q=" + url.QueryEscape("/.+foo/"), "can begin with any character"},
		{"q=" + url.QueryEscape("/[a-z]*/"), "can begin with 26 different characters"},
		{"q=" + url.QueryEscape("*1"), "can begin with any character"},
		{"q=" + url.QueryEscape("?x"), "can begin with any character"},
		{"q=" + url.QueryEscape("host:/.*1/"), "can begin with any character"},
	}
	for _, ep := range endpoints {
		for _, c := range refused {
			code, e, _ := get(ep + c.params)
			if code != 400 || !strings.Contains(e, c.errHas) {
				t.Errorf("%s%.60s: %d %q, want 400 mentioning %q", ep, c.params, code, e, c.errHas)
			}
		}
	}
	// The live tail takes q too; an accepted tail streams until it is
	// cancelled, so only the status is read.
	tctx, tcancel := context.WithTimeout(ctx, 10*time.Second)
	req, _ := http.NewRequestWithContext(tctx, "GET", srv.URL+"/api/tail?q="+url.QueryEscape(nest(370, "x")), nil)
	if resp, err := http.DefaultClient.Do(req); err != nil {
		t.Errorf("tail with deep nesting: %v", err)
	} else {
		var m map[string]any
		if resp.StatusCode == 400 {
			_ = json.NewDecoder(resp.Body).Decode(&m)
		}
		resp.Body.Close()
		if resp.StatusCode != 400 || !strings.Contains(fmt.Sprint(m["error"]), "nested more than 20 deep") {
			t.Errorf("tail with deep nesting: %d %v", resp.StatusCode, m)
		}
	}
	tcancel()

	accepted := []struct {
		params string
		want   int // lines found
	}{
		{"q=" + url.QueryEscape(nest(20, "request")), 90},
		{"q=" + url.QueryEscape(`"`+nest(30, "request")+`"`), 90}, // a phrase: text
		{"to=2262-04-11T00:00:00Z", 90},
		{"from=1970-01-01T00:00:00Z&to=2262-04-11T23:47:16.854775807Z", 90},
		{"from=2026-01-02T03:00:30Z&to=2026-01-02T03:00:30Z", 0},
		{"from=2026-01-01T00:00:00Z&to=now%2B1000w", 90},
		{"q=" + url.QueryEscape("req*"), 90},
		{"q=" + url.QueryEscape("/req(uest)?/"), 90},
		{"q=" + url.QueryEscape("/[Ee]rror/"), 30},
		{"q=" + url.QueryEscape("/(error|warn)/"), 60},
		{"q=" + url.QueryEscape("n0002?"), 20},
		{"q=" + url.QueryEscape("host:/web[12]/"), 90},
		{"q=" + url.QueryEscape("api*"), 0},
	}
	for _, ep := range endpoints {
		for _, c := range accepted {
			code, e, n := get(ep + c.params)
			if code != 200 || n != c.want {
				t.Errorf("%s%.60s: %d %q, %d lines; want 200 and %d lines", ep, c.params, code, e, n, c.want)
			}
		}
	}
}

// TestRefusedSourceBodies: a source body is one JSON object, each key
// once; what encoding/json would let pass (trailing data, a second object,
// a duplicate key, which it resolves by keeping the last) is a 400 naming
// the problem, on POST and PUT alike, and changes nothing.
func TestRefusedSourceBodies(t *testing.T) {
	srv, _, root := newServer(t)
	u := srv.URL
	p := func(name string) string { return fmt.Sprintf("%q", root+"/"+name+".log") }
	cases := []struct {
		method, path, body string
		code               int
		errHas             string
	}{
		{"POST", "/api/sources", `{"name":"a","paths":[` + p("a") + `]}xyz`, 400, "body: data after the source object, which ends at byte"},
		{"POST", "/api/sources", `{"name":"a","paths":[` + p("a") + `]} {"name":"b","paths":[` + p("b") + `]}`, 400, "body: data after the source object"},
		{"POST", "/api/sources", `{"name":"a","paths":[` + p("a") + `]}]`, 400, "body: data after the source object"},
		{"POST", "/api/sources", `{"name":"a","name":"b","paths":[` + p("a") + `]}`, 400, "name: given twice"},
		{"POST", "/api/sources", `{"name":"a","paths":[` + p("a") + `],"Paths":[` + p("b") + `]}`, 400, "Paths: given twice"},
		{"POST", "/api/sources", `{"name":"a","paths":[` + p("a") + `],"fields":{"t":"1","t":"2"}}`, 400, "fields.t: given twice"},
		{"POST", "/api/sources", `{"name":"a","paths":[` + p("a") + `],"multiline":{"pattern":"^x","Pattern":"^y"}}`, 400, "multiline.Pattern: given twice"},
		{"POST", "/api/sources", `[{"name":"a","paths":[` + p("a") + `]}]`, 400, "body: a source must be one JSON object"},
		{"PUT", "/api/sources/a", `{"paths":[` + p("a") + `],"paths":[` + p("b") + `]}`, 400, "paths: given twice"},
		{"PUT", "/api/sources/a", `{"paths":[` + p("a") + `]}{"paths":[` + p("b") + `]}`, 400, "body: data after the source object"},
		{"PUT", "/api/sources/a", `{"name":"a","name":"a","paths":[` + p("a") + `]}`, 400, "name: given twice"},
		{"PUT", "/api/sources/a", `{"paths":[` + p("a") + `],}`, 400, "body: invalid source JSON"},
		// Accepted: whitespace after the object, field names that differ
		// in case (they are map keys), a PUT without a name.
		{"POST", "/api/sources", "{\"name\":\"ok\",\"paths\":[" + p("ok") + "],\"fields\":{\"t\":\"1\",\"T\":\"2\"}} \r\n\t", 201, ""},
		{"PUT", "/api/sources/ok2", ` { } `, 400, "paths: must not be empty"},
		{"PUT", "/api/sources/ok2", ` {"paths":[` + p("ok2") + `]} `, 200, ""},
	}
	for _, c := range cases {
		code, m, _ := do(t, c.method, u+c.path, c.body)
		e, _ := m["error"].(string)
		if code != c.code || !strings.Contains(e, c.errHas) {
			t.Errorf("%s %s %.70s: %d %q, want %d mentioning %q", c.method, c.path, c.body, code, e, c.code, c.errHas)
		}
	}
	_, m, _ := do(t, "GET", u+"/api/sources", "")
	var names []string
	for _, s := range m["sources"].([]any) {
		names = append(names, s.(map[string]any)["name"].(string))
	}
	if fmt.Sprint(names) != "[ok ok2]" {
		t.Errorf("sources after refused bodies: %v, want [ok ok2]", names)
	}
	if _, m, _ := do(t, "GET", u+"/api/sources/ok", ""); fmt.Sprint(m["fields"]) != "map[T:2 t:1]" {
		t.Errorf("fields differing in case: %v", m["fields"])
	}
}

// TestSourceCaps: a source's paths, fields, hosts and sizes are capped,
// each refusal a 400 naming the field; a source at every cap is accepted.
func TestSourceCaps(t *testing.T) {
	srv, _, root := newServer(t)
	globs := func(n, size int) string {
		var b strings.Builder
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
			}
			g := fmt.Sprintf("%s/p%d", root, i)
			g += strings.Repeat("x", max(0, size-len(g)-4)) + ".log"
			fmt.Fprintf(&b, "%q", g)
		}
		return "[" + b.String() + "]"
	}
	fields := func(n, size int) string {
		var b strings.Builder
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `"f%d":%q`, i, strings.Repeat("v", size))
		}
		return "{" + b.String() + "}"
	}
	hosts := func(n, size int) string {
		var b strings.Builder
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
			}
			h := fmt.Sprintf("h%d", i)
			fmt.Fprintf(&b, "%q", h+strings.Repeat("h", max(0, size-len(h))))
		}
		return "[" + b.String() + "]"
	}
	src := func(name, paths, fields, hosts string) string {
		return fmt.Sprintf(`{"name":%q,"paths":%s,"fields":%s,"hosts":%s}`, name, paths, fields, hosts)
	}
	one := globs(1, 0)
	cases := []struct {
		body   string
		code   int
		errHas string
	}{
		{src("a", globs(20000, 0), "{}", "[]"), 400, fmt.Sprintf("paths: 20000 globs; at most %d", pipeline.MaxSourcePaths)},
		{src("a", one, fields(5000, 1), "[]"), 400, fmt.Sprintf("fields: 5000 fields; at most %d", pipeline.MaxSourceFields)},
		{src("a", one, "{}", hosts(300, 0)), 400, fmt.Sprintf("hosts: 300 hosts; at most %d", pipeline.MaxSourceHosts)},
		{src("a", one, fields(1, 2000), "[]"), 400, "fields.f0: value is 2000 bytes; at most 1024"},
		{src("a", one, "{}", hosts(1, 300)), 400, "hosts[0]: 300 bytes; at most 253"},
		{src("a", globs(1, 5000), "{}", "[]"), 400, "paths[0]: 5000 bytes; at most 4096"},
		{src("a", globs(200, 400), "{}", "[]"), 400, "body: the source is"},                   // each part fits, the whole does not
		{src("a", one, "{}", "[]") + strings.Repeat(" ", 70<<10), 400, "body: the source is"}, // in its raw size too
		{src("a", globs(pipeline.MaxSourcePaths, 0), fields(pipeline.MaxSourceFields, 100), hosts(pipeline.MaxSourceHosts, 20)), 201, ""},
		{src("b", one, fields(1, pipeline.MaxFieldValueBytes), hosts(1, pipeline.MaxHostBytes)), 201, ""},
	}
	for _, c := range cases {
		code, m, _ := do(t, "POST", srv.URL+"/api/sources", c.body)
		e, _ := m["error"].(string)
		if code != c.code || !strings.Contains(e, c.errHas) {
			t.Errorf("%.60s… (%d bytes): %d %q, want %d mentioning %q", c.body, len(c.body), code, e, c.code, c.errHas)
		}
	}
}
