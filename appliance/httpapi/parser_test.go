package httpapi_test

import (
	"strings"
	"testing"
)

// TestSourceParserThroughAPI: a source's parser and timezone go through
// the API as the contract writes them; a bad one is a 400 naming its
// field and stores nothing.
func TestSourceParserThroughAPI(t *testing.T) {
	srv, _, root := newServer(t)
	u := srv.URL
	paths := `"paths":["` + root + `/*.log"]`
	for _, c := range []struct{ extra, errHas string }{
		{`"parser":{"regex":"(?P<ip>"}`, "parser.regex: invalid regular expression"},
		{`"parser":{"regex":"(\\d+)"}`, "parser.regex: has no named group"},
		{`"parser":"grok"`, `parser: "grok" is not one of`},
		{`"parser":7`, "parser: 7 is neither"},
		{`"timezone":"Asia/Shang_hai"`, `timezone: "Asia/Shang_hai" is not a time zone`},
	} {
		code, m, _ := do(t, "POST", u+"/api/sources", `{"name":"web",`+paths+`,`+c.extra+`}`)
		if code != 400 || !strings.Contains(m["error"].(string), c.errHas) {
			t.Errorf("%s: %d %v, want 400 mentioning %q", c.extra, code, m, c.errHas)
		}
	}
	if _, m, _ := do(t, "GET", u+"/api/sources", ""); len(m["sources"].([]any)) != 0 {
		t.Fatalf("a refused source was stored: %v", m)
	}
	body := `{"name":"web",` + paths + `,"parser":{"regex":"^(?P<ip>\\S+) (?P<status>\\d{3})$"},"timezone":"Asia/Shanghai"}`
	if code, m, _ := do(t, "POST", u+"/api/sources", body); code != 201 {
		t.Fatalf("create: %d %v", code, m)
	}
	code, m, _ := do(t, "GET", u+"/api/sources/web", "")
	p, _ := m["parser"].(map[string]any)
	if code != 200 || p["regex"] != `^(?P<ip>\S+) (?P<status>\d{3})$` || m["timezone"] != "Asia/Shanghai" {
		t.Fatalf("get: %d %v", code, m)
	}
	if code, m, _ := do(t, "PUT", u+"/api/sources/web", `{`+paths+`,"parser":"nginx"}`); code != 200 || m["parser"] != "nginx" || m["timezone"] != nil {
		t.Fatalf("put: %d %v", code, m)
	}
}
