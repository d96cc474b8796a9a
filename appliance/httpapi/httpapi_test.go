package httpapi_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/logbox/logbox/appliance/httpapi"
	"github.com/logbox/logbox/appliance/index"
	"github.com/logbox/logbox/appliance/pathpolicy"
	"github.com/logbox/logbox/appliance/pipeline"
	"github.com/logbox/logbox/appliance/settings"
)

func TestParseTime(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		in   string
		want time.Time
		bad  bool
	}{
		{"", time.Time{}, false},
		{"now", now, false},
		{"now-15m", now.Add(-15 * time.Minute), false},
		{"now-2h", now.Add(-2 * time.Hour), false},
		{"now-7d", now.Add(-7 * 24 * time.Hour), false},
		{"now-1w", now.Add(-7 * 24 * time.Hour), false},
		{"now+30s", now.Add(30 * time.Second), false},
		{"2026-11-24T10:00:00Z", time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC), false},
		{"2026-11-24T10:00:00.5+01:00", time.Date(2026, 11, 24, 9, 0, 0, 5e8, time.UTC), false},
		{"now-15x", time.Time{}, true},
		{"now-m", time.Time{}, true},
		{"yesterday", time.Time{}, true},
		{"2026-11-24", time.Time{}, true},
	}
	for _, c := range cases {
		got, err := httpapi.ParseTime(c.in, now)
		if (err != nil) != c.bad || !got.Equal(c.want) {
			t.Errorf("ParseTime(%q) = %v, %v; want %v, bad=%v", c.in, got, err, c.want, c.bad)
		}
	}
}

// newServer serves the API over a real etcd and index; sources may read
// below the returned root.
func newServer(t *testing.T) (*httptest.Server, *index.Index, string) {
	t.Helper()
	return newServerWith(t, index.Config{}, nil)
}

// newServerWith is newServer with index settings and a change to Deps.
func newServerWith(t *testing.T, icfg index.Config, mod func(*httpapi.Deps)) (*httptest.Server, *index.Index, string) {
	t.Helper()
	d, ix, root := apiDeps(t, icfg)
	d.Status = func(context.Context) any { return map[string]int{"files": 0} }
	d.Ready = func(context.Context) error { return nil }
	if mod != nil {
		mod(&d)
	}
	srv := httptest.NewServer(httpapi.New(d, quiet))
	t.Cleanup(srv.Close)
	return srv, ix, root
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// apiDeps opens what the API serves, a real etcd and index, both closed
// when the test ends; sources may read below the returned root.
func apiDeps(t *testing.T, icfg index.Config) (httpapi.Deps, *index.Index, string) {
	t.Helper()
	e, err := settings.StartEmbedded(filepath.Join(t.TempDir(), "etcd"), "127.0.0.1:0", quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	root := t.TempDir()
	pol, err := pathpolicy.New([]string{root})
	if err != nil {
		t.Fatal(err)
	}
	icfg.Dir = filepath.Join(t.TempDir(), "idx")
	ix, err := index.Open(icfg, quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ix.Close() })
	return httpapi.Deps{Search: ix, Sources: settings.NewStore(e.Client(), pol.CheckGlob, quiet)}, ix, root
}

func do(t *testing.T, method, url, body string) (int, map[string]any, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	b, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(b, &m)
	return resp.StatusCode, m, resp.Header
}

func TestAPIErrorsAndSources(t *testing.T) {
	srv, ix, _ := newServer(t)
	if err := ix.Index(context.Background(), []pipeline.Record{{TS: time.Now(), Host: "h", FileID: "f", Offset: 0, Line: "hello <b>world</b>"}}); err != nil {
		t.Fatal(err)
	}
	u := srv.URL
	cases := []struct {
		method, path, body string
		code               int
		errHas             string
	}{
		{"GET", "/api/search?q=hello", "", 200, ""},
		{"GET", "/api/search?from=yesterday", "", 400, "from:"},
		{"GET", "/api/search?from=now&to=now-1h", "", 400, "to:"},
		{"GET", "/api/search?limit=0", "", 400, "limit:"},
		{"GET", "/api/search?q=hello&track_total=true", "", 200, ""},
		{"GET", "/api/search?track_total=maybe", "", 400, "track_total:"},
		{"GET", "/api/search?q=%22unterminated", "", 400, "query"},
		{"GET", "/api/search?cursor=garbage!", "", 400, "cursor"},
		{"GET", "/api/nope", "", 404, "no API endpoint"},
		{"PATCH", "/api/sources", "", 405, "not allowed"},
		{"POST", "/api/sources", "{", 400, "body:"},
		{"POST", "/api/sources", `{"name":"a","paths":["/etc/*"]}`, 400, "paths[0]:"},
		{"POST", "/api/sources", `{"name":"a","paths":["/x"],"colour":"red"}`, 400, "colour"},
		{"GET", "/api/sources/missing", "", 404, "not found"},
		{"DELETE", "/api/sources/missing", "", 404, "not found"},
		{"PUT", "/api/sources/a", `{"name":"b","paths":["/x"]}`, 400, "name:"},
		{"GET", "/healthz", "", 200, ""},
		{"GET", "/readyz", "", 200, ""},
		{"GET", "/api/status", "", 200, ""},
	}
	for _, c := range cases {
		code, m, h := do(t, c.method, u+c.path, c.body)
		if code != c.code {
			t.Errorf("%s %s: %d, want %d (%v)", c.method, c.path, code, c.code, m)
			continue
		}
		if c.errHas != "" && !strings.Contains(m["error"].(string), c.errHas) {
			t.Errorf("%s %s: error %q does not mention %q", c.method, c.path, m["error"], c.errHas)
		}
		if h.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s %s: no nosniff header", c.method, c.path)
		}
	}
	// The line comes back as data, untouched: escaping is the page's job
	// (it inserts text, never HTML).
	_, m, _ := do(t, "GET", u+"/api/search?q=hello", "")
	if line := m["hits"].([]any)[0].(map[string]any)["line"]; line != "hello <b>world</b>" {
		t.Errorf("line = %q", line)
	}
}

func TestSourceLifecycle(t *testing.T) {
	srv, _, root := newServer(t)
	u := srv.URL
	if code, m, _ := do(t, "POST", u+"/api/sources", `{"name":"app","paths":["/tmp/elsewhere/*.log"]}`); code != 400 {
		t.Fatalf("path outside root accepted: %d %v", code, m)
	}

	body := `{"name":"app","paths":["` + root + `/*.log"],"fields":{"team":"core"}}`
	if code, m, h := do(t, "POST", u+"/api/sources", body); code != 201 || h.Get("Location") != "/api/sources/app" {
		t.Fatalf("create: %d %v", code, m)
	}
	if code, _, _ := do(t, "POST", u+"/api/sources", body); code != 409 {
		t.Fatalf("create twice: %d, want 409", code)
	}
	// PUT without a name in the body takes the URL's, and replaces.
	if code, m, _ := do(t, "PUT", u+"/api/sources/app", `{"paths":["`+root+`/*.txt"],"paused":true}`); code != 200 || m["paused"] != true {
		t.Fatalf("put: %d %v", code, m)
	}
	code, m, _ := do(t, "GET", u+"/api/sources", "")
	list := m["sources"].([]any)
	if code != 200 || len(list) != 1 || list[0].(map[string]any)["paths"].([]any)[0] != root+"/*.txt" {
		t.Fatalf("list: %d %v", code, m)
	}
	if code, _, _ := do(t, "DELETE", u+"/api/sources/app", ""); code != 204 {
		t.Fatalf("delete: %d", code)
	}
	if _, m, _ := do(t, "GET", u+"/api/sources", ""); len(m["sources"].([]any)) != 0 {
		t.Fatalf("after delete: %v", m)
	}
}

func TestCSVCell(t *testing.T) {
	for in, want := range map[string]string{
		`=HYPERLINK("http://x","y")`: `'=HYPERLINK("http://x","y")`,
		"+1+1":                       "'+1+1",
		"-2":                         "'-2",
		"@SUM(A1)":                   "'@SUM(A1)",
		"\tcmd":                      "'\tcmd",
		"plain line":                 "plain line",
		"":                           "",
	} {
		if got := httpapi.CSVCell(in); got != want {
			t.Errorf("CSVCell(%q) = %q, want %q", in, got, want)
		}
	}
}
