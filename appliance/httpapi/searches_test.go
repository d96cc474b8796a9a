package httpapi_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/logbox/logbox/appliance/httpapi"
	"github.com/logbox/logbox/appliance/index"
	"github.com/logbox/logbox/appliance/pipeline"
	"github.com/logbox/logbox/appliance/settings"
)

// etcdServer serves the API, with the Deps deps makes over a client of a
// real embedded etcd, and returns its URL and that client for writing
// entries directly, as etcdctl (or the alert evaluator) would.
func etcdServer(t *testing.T, deps func(cli *clientv3.Client) httpapi.Deps) (string, *clientv3.Client) {
	t.Helper()
	e, err := settings.StartEmbedded(filepath.Join(t.TempDir(), "etcd"), "127.0.0.1:0", quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	srv := httptest.NewServer(httpapi.New(deps(e.Client()), quiet))
	t.Cleanup(srv.Close)
	return srv.URL, e.Client()
}

// searchesServer serves the saved-search API over a real embedded etcd
// (see etcdServer).
func searchesServer(t *testing.T) (string, *clientv3.Client) {
	t.Helper()
	return etcdServer(t, func(cli *clientv3.Client) httpapi.Deps {
		return httpapi.Deps{Searches: settings.NewSearchStore(cli), CheckQuery: index.CheckQuery}
	})
}

// The cap on a saved query is the index's cap on a query (pipeline cannot
// import index to share the constant).
func TestSavedQueryCapIsTheIndexCap(t *testing.T) {
	if pipeline.MaxSavedQueryBytes != index.MaxQueryBytes {
		t.Fatalf("pipeline.MaxSavedQueryBytes = %d, index.MaxQueryBytes = %d", pipeline.MaxSavedQueryBytes, index.MaxQueryBytes)
	}
}

func TestSavedSearchLifecycle(t *testing.T) {
	u, _ := searchesServer(t)
	before := time.Now().UTC().Add(-time.Second)

	// Created out of order; listed by name.
	body := `{"name":"errors","query":"level:error","from":"now-1h","to":"now","columns":["host","status"],"description":"all errors"}`
	code, m, h := do(t, "POST", u+"/api/searches", body)
	if code != 201 || h.Get("Location") != "/api/searches/errors" {
		t.Fatalf("create: %d %v %v", code, m, h)
	}
	if m["view"] != "discover" || m["query"] != "level:error" || m["from"] != "now-1h" || m["to"] != "now" || m["description"] != "all errors" {
		t.Fatalf("create answered %v", m)
	}
	created, err := time.Parse(time.RFC3339Nano, m["created"].(string))
	if err != nil || created.Before(before) || m["updated"] != m["created"] {
		t.Fatalf("created %v, updated %v: want now, and equal", m["created"], m["updated"])
	}
	if code, m, _ := do(t, "POST", u+"/api/searches", body); code != 409 || !strings.Contains(m["error"].(string), "already exists") {
		t.Fatalf("create twice: %d %v, want 409", code, m)
	}
	code, m, _ = do(t, "POST", u+"/api/searches", `{"name":"by-status","query":"* | stats count() by (status)","from":"2026-11-01T00:00:00Z","to":"2026-11-02T00:00:00Z","view":"visualize","chart":"bar"}`)
	if code != 201 || m["view"] != "visualize" || m["chart"] != "bar" {
		t.Fatalf("create visualize: %d %v", code, m)
	}
	code, m, _ = do(t, "GET", u+"/api/searches/errors", "")
	if code != 200 || m["query"] != "level:error" || fmt.Sprint(m["columns"]) != "[host status]" || m["created"] != created.Format(time.RFC3339Nano) {
		t.Fatalf("get: %d %v", code, m)
	}

	// PUT replaces (the body may leave the name out): created stays,
	// updated moves, and what the client says about either is ignored.
	time.Sleep(10 * time.Millisecond)
	code, m, _ = do(t, "PUT", u+"/api/searches/errors", `{"query":"level:error OR level:fatal","from":"now-15m","to":"now","created":"2001-01-01T00:00:00Z","updated":"2001-01-01T00:00:00Z"}`)
	if code != 200 || m["query"] != "level:error OR level:fatal" || m["created"] != created.Format(time.RFC3339Nano) || m["updated"] == m["created"] || m["columns"] != nil {
		t.Fatalf("replace: %d %v", code, m)
	}
	// PUT of a new name creates.
	if code, m, h := do(t, "PUT", u+"/api/searches/abc", `{"name":"abc","query":"x"}`); code != 201 || h.Get("Location") != "/api/searches/abc" || m["from"] != "" {
		t.Fatalf("put new: %d %v", code, m)
	}

	code, m, _ = do(t, "GET", u+"/api/searches", "")
	if code != 200 || names(m) != "abc,by-status,errors" || len(m["invalid"].(map[string]any)) != 0 {
		t.Fatalf("list: %d %v", code, m)
	}
	if code, _, _ := do(t, "DELETE", u+"/api/searches/abc", ""); code != 204 {
		t.Fatalf("delete: %d", code)
	}
	for _, c := range []struct{ method, path string }{{"DELETE", "/api/searches/abc"}, {"GET", "/api/searches/abc"}} {
		if code, m, _ := do(t, c.method, u+c.path, ""); code != 404 || !strings.Contains(m["error"].(string), "not found") {
			t.Fatalf("%s %s after delete: %d %v, want 404", c.method, c.path, code, m)
		}
	}
	if _, m, _ := do(t, "GET", u+"/api/searches", ""); names(m) != "by-status,errors" {
		t.Fatalf("list after delete: %v", m)
	}
}

// names lists the names of a GET /api/searches answer, in its order.
func names(m map[string]any) string {
	var out []string
	list, _ := m["searches"].([]any)
	for _, s := range list {
		out = append(out, s.(map[string]any)["name"].(string))
	}
	return strings.Join(out, ",")
}

func TestSavedSearchValidation(t *testing.T) {
	u, _ := searchesServer(t)
	ok := `"name":"s","query":"q"`
	cases := []struct {
		method, path, body string
		errHas             string // the field named, "" for success
	}{
		{"POST", "/api/searches", `{` + ok + `}`, ""},
		{"POST", "/api/searches", `{"name":"Bad Name","query":"q"}`, "name:"},
		{"POST", "/api/searches", `{"name":"-x","query":"q"}`, "name:"},
		{"POST", "/api/searches", `{"query":"q"}`, "name:"},
		{"POST", "/api/searches", `{"name":"s2"}`, "query:"},
		{"POST", "/api/searches", `{"name":"s2","query":"   "}`, "query:"},
		{"POST", "/api/searches", `{"name":"s2","query":"` + strings.Repeat("a", index.MaxQueryBytes+1) + `"}`, "query: 4097 bytes"},
		{"POST", "/api/searches", `{"name":"s2","query":"q","from":"yesterday"}`, "from:"},
		{"POST", "/api/searches", `{"name":"s2","query":"q","to":"now-15x"}`, "to:"},
		{"POST", "/api/searches", `{"name":"s2","query":"q","from":"now","to":"now-1h"}`, "to:"},
		{"POST", "/api/searches", `{"name":"s2","query":"q","from":"2026-11-02T00:00:00Z","to":"2026-11-01T00:00:00Z"}`, "to:"},
		{"POST", "/api/searches", `{"name":"s2","query":"q","from":"1969-01-01T00:00:00Z"}`, "from:"},
		{"POST", "/api/searches", `{"name":"s2","query":"q","view":"dashboard"}`, "view:"},
		{"POST", "/api/searches", `{"name":"s2","query":"q","view":"visualize","chart":"pie"}`, "chart:"},
		{"POST", "/api/searches", `{"name":"s2","query":"q","columns":["host",""]}`, "columns[1]:"},
		{"POST", "/api/searches", `{"name":"s2","query":"q","columns":["host","host"]}`, "columns[1]:"},
		{"POST", "/api/searches", `{"name":"s2","query":"q","columns":["a b"]}`, "columns[0]:"},
		{"POST", "/api/searches", `{"name":"s2","query":"q","columns":"host"}`, "columns:"},
		{"POST", "/api/searches", `{"name":"s2","query":"q","columns":[` + strings.Repeat(`"c",`, 64) + `"d"]}`, "columns: 65"},
		{"POST", "/api/searches", `{"name":"s2","query":"q","description":"` + strings.Repeat("d", 1025) + `"}`, "description:"},
		{"POST", "/api/searches", `{"name":"s2","query":"q","colour":"red"}`, "colour: unknown key"},
		{"POST", "/api/searches", `{"name":"s2","Query":"q"}`, "Query: unknown key"},
		{"POST", "/api/searches", `{"name":"s2","query":"q","query":"r"}`, "query: given twice"},
		{"POST", "/api/searches", `{"name":"s2","query":"q"} {}`, "body: data after"},
		{"POST", "/api/searches", `{"name":"s2","query":"q","created":"yesterday"}`, "created:"},
		{"POST", "/api/searches", `{"name":"s2","query":7}`, "query:"},
		{"POST", "/api/searches", `[]`, "body:"},
		{"POST", "/api/searches", `{`, "body:"},
		// A query the index cannot read is refused when it is saved,
		// saying where.
		{"POST", "/api/searches", `{"name":"s2","query":"(a OR b"}`, "query: this ( is never closed at position 1"},
		{"POST", "/api/searches", `{"name":"s2","query":"a | stats cnt()"}`, "query: unknown function \"cnt\"; use count, count_distinct, sum, avg, min, max, median, quantile at position 11"},
		{"PUT", "/api/searches/s", `{"query":"/foo["}`, "query:"},
		{"PUT", "/api/searches/s", `{"name":"other","query":"q"}`, "name:"},
		{"PUT", "/api/searches/s", `{"query":"q","view":"x"}`, "view:"},
		// A mixed range is not refused for its order, which changes
		// with the clock.
		{"POST", "/api/searches", `{"name":"mixed","query":"q","from":"2099-01-01T00:00:00Z","to":"now"}`, ""},
		{"POST", "/api/searches", `{"name":"pipes","query":"status:>=500 | stats count() by (host, _time:5m)","view":"visualize","chart":"line","columns":["fields.status","http.user_agent"]}`, ""},
	}
	for _, c := range cases {
		code, m, _ := do(t, c.method, u+c.path, c.body)
		body := c.body[:min(len(c.body), 80)]
		if c.errHas == "" {
			if code/100 != 2 {
				t.Errorf("%s %s: %d %v, want success", c.method, body, code, m)
			}
			continue
		}
		if code != 400 {
			t.Errorf("%s %s: %d %v, want 400", c.method, body, code, m)
			continue
		}
		if msg, _ := m["error"].(string); !strings.HasPrefix(msg, c.errHas) {
			t.Errorf("%s %s: error %q does not start with %q", c.method, body, msg, c.errHas)
		}
	}
	// A query error also gives its position, as an alert rule's and a
	// search's do, for the page to mark it.
	if code, m, _ := do(t, "POST", u+"/api/searches", `{"name":"s3","query":"a | stats cnt()"}`); code != 400 || m["position"] != float64(11) || m["field"] != "query" {
		t.Errorf("saved search with a bad pipe: %d %v, want 400 with position 11 and field query", code, m)
	}
	// Nothing refused was stored.
	if _, m, _ := do(t, "GET", u+"/api/searches", ""); names(m) != "mixed,pipes,s" {
		t.Fatalf("list: %v", m)
	}
}

func TestSavedSearchRename(t *testing.T) {
	u, _ := searchesServer(t)
	for _, b := range []string{`{"name":"a","query":"qa","columns":["host"]}`, `{"name":"b","query":"qb"}`} {
		if code, m, _ := do(t, "POST", u+"/api/searches", b); code != 201 {
			t.Fatalf("create: %d %v", code, m)
		}
	}
	_, orig, _ := do(t, "GET", u+"/api/searches/a", "")

	code, m, h := do(t, "POST", u+"/api/searches/a/rename", `{"name":"c"}`)
	if code != 200 || m["name"] != "c" || m["query"] != "qa" || m["created"] != orig["created"] || h.Get("Location") != "/api/searches/c" {
		t.Fatalf("rename: %d %v", code, m)
	}
	if _, m, _ := do(t, "GET", u+"/api/searches", ""); names(m) != "b,c" {
		t.Fatalf("after rename: %v", m)
	}
	cases := []struct {
		path, body string
		code       int
		errHas     string
	}{
		{"/api/searches/c/rename", `{"name":"b"}`, 409, "already exists"},
		{"/api/searches/nope/rename", `{"name":"d"}`, 404, "not found"},
		{"/api/searches/c/rename", `{"name":"Bad Name"}`, 400, "name:"},
		{"/api/searches/c/rename", `{}`, 400, "name:"},
		{"/api/searches/c/rename", `{"name":"d","query":"x"}`, 400, "query: unknown key"},
		{"/api/searches/c/rename", `"d"`, 400, "body:"},
		{"/api/searches/c/rename", `{"name":"d"} {}`, 400, "body:"},
	}
	for _, c := range cases {
		code, m, _ := do(t, "POST", u+c.path, c.body)
		if msg, _ := m["error"].(string); code != c.code || !strings.Contains(msg, c.errHas) {
			t.Errorf("POST %s %s: %d %v, want %d %q", c.path, c.body, code, m, c.code, c.errHas)
		}
	}
	// A refused rename changed nothing.
	if _, m, _ := do(t, "GET", u+"/api/searches", ""); names(m) != "b,c" {
		t.Fatalf("after refused renames: %v", m)
	}
	// Renaming to its own name changes nothing.
	if code, m, _ := do(t, "POST", u+"/api/searches/c/rename", `{"name":"c"}`); code != 200 || m["name"] != "c" {
		t.Fatalf("rename to itself: %d %v", code, m)
	}

	// Atomic: of many renames of one search at once, to different
	// names, one wins and the others find it gone; the search exists
	// once, never twice and never not at all.
	const n = 8
	codes := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			codes[i], _, _ = do(t, "POST", u+"/api/searches/c/rename", fmt.Sprintf(`{"name":"n%d"}`, i))
		})
	}
	wg.Wait()
	slices.Sort(codes)
	if codes[n-1] != 404 || codes[n-2] != 404 || slices.Index(codes, 200) != 0 || slices.Contains(codes[1:], 200) {
		t.Fatalf("concurrent renames answered %v, want one 200 and the rest 404", codes)
	}
	_, m, _ = do(t, "GET", u+"/api/searches", "")
	list := m["searches"].([]any)
	if len(list) != 2 || names(m)[:2] != "b," || list[1].(map[string]any)["query"] != "qa" {
		t.Fatalf("after concurrent renames: %v", m)
	}
}

// An entry written to etcd directly (etcdctl put) is served like one
// written through the API; an invalid one is listed under "invalid" with
// the reason, never served as a saved search, and can be replaced or
// deleted through the API.
func TestSavedSearchWrittenToEtcd(t *testing.T) {
	u, cli := searchesServer(t)
	ctx := context.Background()
	put := func(key, val string) {
		t.Helper()
		if _, err := cli.Put(ctx, key, val); err != nil {
			t.Fatal(err)
		}
	}
	put(settings.SearchesPrefix+"direct", `{"name":"direct","query":"host:web1","from":"now-30m","to":"now"}`)
	put(settings.SearchesPrefix+"garbage", `{"name":"garbage",`)
	put(settings.SearchesPrefix+"elsewhere", `{"name":"other","query":"q"}`)
	put(settings.SearchesPrefix+"typo", `{"name":"typo","query":"q","veiw":"visualize"}`)
	put(settings.SearchesPrefix+"Bad Key", `{"name":"Bad Key","query":"q"}`)

	code, m, _ := do(t, "GET", u+"/api/searches", "")
	if code != 200 || names(m) != "direct" {
		t.Fatalf("list: %d %v", code, m)
	}
	d := m["searches"].([]any)[0].(map[string]any)
	// The view is filled in; the times an etcdctl write left out stay out.
	if d["view"] != "discover" || d["query"] != "host:web1" || d["created"] != nil {
		t.Fatalf("direct entry served as %v", d)
	}
	invalid := m["invalid"].(map[string]any)
	for name, why := range map[string]string{"garbage": "body: invalid saved search JSON", "elsewhere": `name: "other" does not match its key`, "typo": "veiw: unknown key", "Bad Key": "name:"} {
		if got, _ := invalid[name].(string); !strings.HasPrefix(got, why) {
			t.Errorf("invalid[%q] = %q, want it to start with %q", name, got, why)
		}
	}
	if len(invalid) != 4 {
		t.Errorf("invalid = %v, want 4 entries", invalid)
	}
	if code, m, _ := do(t, "GET", u+"/api/searches/direct", ""); code != 200 || m["from"] != "now-30m" {
		t.Fatalf("get direct: %d %v", code, m)
	}
	if code, m, _ := do(t, "GET", u+"/api/searches/typo", ""); code != 409 || !strings.Contains(m["error"].(string), "veiw: unknown key") {
		t.Fatalf("get invalid: %d %v, want 409 with the reason", code, m)
	}
	if code, m, _ := do(t, "POST", u+"/api/searches/typo/rename", `{"name":"fixed"}`); code != 409 {
		t.Fatalf("rename invalid: %d %v, want 409", code, m)
	}
	// Rename of an etcdctl-written entry.
	if code, m, _ := do(t, "POST", u+"/api/searches/direct/rename", `{"name":"direct2"}`); code != 200 || m["query"] != "host:web1" {
		t.Fatalf("rename direct: %d %v", code, m)
	}

	// Fix one through the API, delete another; a change written to etcd
	// shows at once.
	if code, m, _ := do(t, "PUT", u+"/api/searches/typo", `{"query":"q","view":"visualize"}`); code != 200 || m["created"] == nil {
		t.Fatalf("replace invalid: %d %v", code, m)
	}
	if code, _, _ := do(t, "DELETE", u+"/api/searches/garbage", ""); code != 204 {
		t.Fatalf("delete invalid: %d", code)
	}
	put(settings.SearchesPrefix+"direct2", `{"name":"direct2","query":"host:web2"}`)
	_, m, _ = do(t, "GET", u+"/api/searches", "")
	if names(m) != "direct2,typo" || m["searches"].([]any)[0].(map[string]any)["query"] != "host:web2" {
		t.Fatalf("list after fixes: %v", m)
	}
	if inv := m["invalid"].(map[string]any); len(inv) != 2 || inv["elsewhere"] == nil || inv["Bad Key"] == nil {
		t.Fatalf("invalid after fixes: %v", inv)
	}
	// An entry under a name the API would refuse can still be removed.
	if code, m, _ := do(t, "DELETE", u+"/api/searches/Bad%20Key", ""); code != 204 {
		t.Fatalf("delete %q: %d %v", "Bad Key", code, m)
	}
}

// Without a store the routes answer 501, not 404.
func TestSavedSearchesWithoutStore(t *testing.T) {
	srv := httptest.NewServer(httpapi.New(httpapi.Deps{}, quiet))
	defer srv.Close()
	if code, _, _ := do(t, "GET", srv.URL+"/api/searches", ""); code != 501 {
		t.Fatalf("GET /api/searches without a store: %d, want 501", code)
	}
}
