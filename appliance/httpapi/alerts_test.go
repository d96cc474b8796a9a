package httpapi_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/logbox/logbox/appliance/httpapi"
	"github.com/logbox/logbox/appliance/index"
	"github.com/logbox/logbox/appliance/pipeline"
	"github.com/logbox/logbox/appliance/settings"
)

// alertsServer serves the alert API over a real embedded etcd, with the
// index's query checks (see etcdServer).
func alertsServer(t *testing.T) (string, *clientv3.Client) {
	t.Helper()
	return etcdServer(t, func(cli *clientv3.Client) httpapi.Deps {
		return httpapi.Deps{Alerts: settings.NewAlertStore(cli), CheckQuery: index.CheckQuery, HasPipe: index.HasPipe}
	})
}

// alertNames lists the names of a GET /api/alerts answer, in its order.
func alertNames(m map[string]any) string {
	var out []string
	list, _ := m["alerts"].([]any)
	for _, a := range list {
		out = append(out, a.(map[string]any)["name"].(string))
	}
	return strings.Join(out, ",")
}

// putState writes a rule's state as the evaluator does.
func putState(t *testing.T, cli *clientv3.Client, name string, st pipeline.AlertStatus) {
	t.Helper()
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(context.Background(), pipeline.AlertStatePrefix+name, string(b)); err != nil {
		t.Fatal(err)
	}
}

func TestAlertRuleLifecycle(t *testing.T) {
	u, cli := alertsServer(t)
	before := time.Now().UTC().Add(-time.Second)

	body := `{"name":"errors","query":"level:error","every":"30s","window":"10m","condition":{"op":">","value":5},"for":"2m",
		"labels":{"team":"web"},"annotations":{"summary":"many errors"},"description":"d","notify":[{"webhook":"http://127.0.0.1:9/hook"},{"slack":"https://hooks.example/x"}]}`
	code, m, h := do(t, "POST", u+"/api/alerts", body)
	if code != 201 || h.Get("Location") != "/api/alerts/errors" {
		t.Fatalf("create: %d %v %v", code, m, h)
	}
	// The rule as stored, and never evaluated.
	if m["every"] != "30s" || m["window"] != "10m" || m["for"] != "2m" || m["condition"].(map[string]any)["value"] != 5.0 ||
		m["state"] != "unknown" || m["value"] != nil || len(m["instances"].([]any)) != 0 || m["history"] != nil {
		t.Fatalf("create answered %v", m)
	}
	created, err := time.Parse(time.RFC3339Nano, m["created"].(string))
	if err != nil || created.Before(before) || m["updated"] != m["created"] {
		t.Fatalf("created %v, updated %v", m["created"], m["updated"])
	}
	if code, m, _ := do(t, "POST", u+"/api/alerts", body); code != 409 || !strings.Contains(m["error"].(string), "already exists") {
		t.Fatalf("create twice: %d %v, want 409", code, m)
	}
	if code, m, _ := do(t, "GET", u+"/api/alerts/errors", ""); code != 200 || m["state"] != "unknown" || m["query"] != "level:error" || m["labels"].(map[string]any)["team"] != "web" {
		t.Fatalf("get before any evaluation: %d %v", code, m)
	}
	if code, m, _ := do(t, "GET", u+"/api/alerts/errors/history", ""); code != 200 || m["history"] == nil || len(m["history"].([]any)) != 0 {
		t.Fatalf("history before any evaluation: %d %v", code, m)
	}

	// The evaluator writes the rule's state: GET answers it next to the
	// rule, the history newest first on its own.
	t0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	v := 7.0
	lbl := map[string]string{"alertname": "errors", "team": "web"}
	putState(t, cli, "errors", pipeline.AlertStatus{
		State: pipeline.AlertFiring, Value: &v, LastEval: t0.Add(3 * time.Minute), Duration: 0.01,
		Instances: []pipeline.AlertInstance{{Labels: lbl, State: pipeline.AlertFiring, Value: 7, ActiveSince: t0, FiredAt: t0.Add(2 * time.Minute)}},
		History: []pipeline.AlertEvent{
			{Time: t0, Labels: lbl, From: pipeline.AlertOK, To: pipeline.AlertPending, Value: 6},
			{Time: t0.Add(2 * time.Minute), Labels: lbl, From: pipeline.AlertPending, To: pipeline.AlertFiring, Value: 7},
		},
	})
	code, m, _ = do(t, "GET", u+"/api/alerts/errors", "")
	if code != 200 || m["state"] != "firing" || m["value"] != 7.0 || m["last_eval"] != "2026-03-01T09:03:00Z" || m["history"] != nil || m["error"] != nil {
		t.Fatalf("get after an evaluation: %d %v", code, m)
	}
	inst := m["instances"].([]any)
	if len(inst) != 1 || inst[0].(map[string]any)["state"] != "firing" || inst[0].(map[string]any)["labels"].(map[string]any)["team"] != "web" {
		t.Fatalf("instances: %v", inst)
	}
	_, m, _ = do(t, "GET", u+"/api/alerts/errors/history", "")
	hist := m["history"].([]any)
	if len(hist) != 2 || hist[0].(map[string]any)["to"] != "firing" || hist[1].(map[string]any)["to"] != "pending" || hist[1].(map[string]any)["time"] != "2026-03-01T09:00:00Z" {
		t.Fatalf("history, newest first: %v", hist)
	}

	// PUT replaces (the body may leave the name out): created stays, the
	// state stays (the evaluator sees the change), defaults fill in.
	time.Sleep(10 * time.Millisecond)
	code, m, _ = do(t, "PUT", u+"/api/alerts/errors", `{"query":"level:error OR level:fatal","created":"2001-01-01T00:00:00Z"}`)
	if code != 200 || m["query"] != "level:error OR level:fatal" || m["created"] != created.Format(time.RFC3339Nano) || m["updated"] == m["created"] ||
		m["every"] != "1m0s" || m["window"] != "5m0s" || m["state"] != "firing" || m["notify"] != nil {
		t.Fatalf("replace: %d %v", code, m)
	}
	if code, m, h := do(t, "PUT", u+"/api/alerts/abc", `{"name":"abc","query":"* | stats count() as n by (host)","column":"n"}`); code != 201 || h.Get("Location") != "/api/alerts/abc" || m["state"] != "unknown" {
		t.Fatalf("put new: %d %v", code, m)
	}
	// An evaluation that failed shows as an error state with the reason.
	putState(t, cli, "abc", pipeline.AlertStatus{State: "error", Error: "column n: not in the answer"})

	code, m, _ = do(t, "GET", u+"/api/alerts", "")
	if code != 200 || alertNames(m) != "abc,errors" || len(m["invalid"].(map[string]any)) != 0 {
		t.Fatalf("list: %d %v", code, m)
	}
	list := m["alerts"].([]any)
	if a := list[0].(map[string]any); a["state"] != "error" || a["error"] != "column n: not in the answer" || a["value"] != nil {
		t.Fatalf("list[abc] = %v", a)
	}
	if e := list[1].(map[string]any); e["state"] != "firing" || e["value"] != 7.0 || e["history"] != nil {
		t.Fatalf("list[errors] = %v", e)
	}

	// DELETE removes the rule and its state; a rule made again under the
	// name starts never evaluated.
	if code, _, _ := do(t, "DELETE", u+"/api/alerts/errors", ""); code != 204 {
		t.Fatalf("delete: %d", code)
	}
	if resp, err := cli.Get(context.Background(), pipeline.AlertStatePrefix+"errors"); err != nil || len(resp.Kvs) != 0 {
		t.Fatalf("the state outlived its rule: %v %v", resp, err)
	}
	for _, c := range []struct{ method, path string }{{"DELETE", "/api/alerts/errors"}, {"GET", "/api/alerts/errors"}, {"GET", "/api/alerts/errors/history"}, {"PUT", "/api/alerts/errors/history"}} {
		code, m, _ := do(t, c.method, u+c.path, "")
		want := 404
		if c.method == "PUT" {
			want = 405
		}
		if code != want {
			t.Fatalf("%s %s after delete: %d %v, want %d", c.method, c.path, code, m, want)
		}
	}
	if code, m, _ := do(t, "POST", u+"/api/alerts", body); code != 201 || m["state"] != "unknown" {
		t.Fatalf("create again: %d %v", code, m)
	}
}

// Every refused rule is a 400 whose "field" names what to fix (the
// store's decoding and Validate's every path are tested in settings and
// pipeline; here each kind of check the API adds, and a sample of the
// rest through HTTP).
func TestAlertRuleValidation(t *testing.T) {
	u, _ := alertsServer(t)
	cases := []struct {
		method, path, body string
		field              string // "" for success
		has                string
		position           float64
	}{
		{"POST", "/api/alerts", `{"name":"ok","query":"level:error"}`, "", "", 0},
		{"POST", "/api/alerts", `{"name":"stats","query":"status:>=500 | stats count() as n, avg(request_time) by (host)","column":"avg(request_time)"}`, "", "", 0},
		{"POST", "/api/alerts", `{"name":"newpat","query":"level:error","new_patterns":true,"compare":"7d"}`, "", "", 0},
		// The index's parser, with where in the query.
		{"POST", "/api/alerts", `{"name":"a","query":"(a OR b"}`, "query", "this ( is never closed at position 1", 1},
		{"POST", "/api/alerts", `{"name":"a","query":"a | stats cnt()"}`, "query", `unknown function "cnt"`, 11},
		{"PUT", "/api/alerts/a", `{"query":"/foo["}`, "query", "", 1},
		// The shape of the query against the rule's kind.
		{"POST", "/api/alerts", `{"name":"a","query":"level:error | stats count() by (host)","new_patterns":true}`, "query", "no pipe", 0},
		{"POST", "/api/alerts", `{"name":"a","query":"level:error","column":"n"}`, "column", "stats pipe", 0},
		// Decoding and Validate.
		{"POST", "/api/alerts", `{"name":"Bad Name","query":"q"}`, "name", "", 0},
		{"POST", "/api/alerts", `{"name":"a"}`, "query", "", 0},
		{"POST", "/api/alerts", `{"name":"a","query":"q","every":"0s"}`, "every", "below", 0},
		{"POST", "/api/alerts", `{"name":"a","query":"q","window":"1y"}`, "window", "not a duration", 0},
		{"POST", "/api/alerts", `{"name":"a","query":"q","for":"-5m"}`, "for", "", 0},
		{"POST", "/api/alerts", `{"name":"a","query":"q","compare":"1h"}`, "compare", "new_patterns", 0},
		{"POST", "/api/alerts", `{"name":"a","query":"q","condition":{"op":"gt"}}`, "condition.op", "", 0},
		{"POST", "/api/alerts", `{"name":"a","query":"q","condition":{"value":"5"}}`, "condition.value", "string", 0},
		{"POST", "/api/alerts", `{"name":"a","query":"q","labels":{"alertname":"x"}}`, "labels.alertname", "", 0},
		{"POST", "/api/alerts", `{"name":"a","query":"q","notify":[{"webhook":"http://h/x"},{"webhook":"file:///etc/passwd"}]}`, "notify[1].webhook", "http(s)", 0},
		{"POST", "/api/alerts", `{"name":"a","query":"q","notify":[{"email":"x@y"}]}`, "notify[0].email", "unknown key", 0},
		{"POST", "/api/alerts", `{"name":"a","query":"q","value":3}`, "value", "condition.value", 0},
		{"POST", "/api/alerts", `{"name":"a","query":"q","query":"r"}`, "query", "given twice", 0},
		{"POST", "/api/alerts", `{"name":"a","query":"q"} x`, "body", "data after", 0},
		{"PUT", "/api/alerts/a", `{"name":"b","query":"q"}`, "name", `does not match the URL's "a"`, 0},
	}
	for _, c := range cases {
		code, m, _ := do(t, c.method, u+c.path, c.body)
		short := c.body[:min(len(c.body), 80)]
		if c.field == "" {
			if code/100 != 2 {
				t.Errorf("%s %s: %d %v, want success", c.method, short, code, m)
			}
			continue
		}
		msg, _ := m["error"].(string)
		if code != 400 || m["field"] != c.field || !strings.HasPrefix(msg, c.field+": ") || !strings.Contains(msg, c.has) {
			t.Errorf("%s %s: %d %v, want 400 naming %q saying %q", c.method, short, code, m, c.field, c.has)
		}
		if pos, _ := m["position"].(float64); pos != c.position {
			t.Errorf("%s %s: position %v, want %v", c.method, short, m["position"], c.position)
		}
	}
	// Nothing refused was stored.
	if _, m, _ := do(t, "GET", u+"/api/alerts", ""); alertNames(m) != "newpat,ok,stats" {
		t.Fatalf("list: %v", m)
	}
}

// An entry written to etcd directly (etcdctl put) is served at once; an
// invalid one is listed under "invalid" with the reason, answered 409,
// and can be replaced or deleted through the API.
func TestAlertRuleWrittenToEtcd(t *testing.T) {
	u, cli := alertsServer(t)
	ctx := context.Background()
	put := func(key, val string) {
		t.Helper()
		if _, err := cli.Put(ctx, key, val); err != nil {
			t.Fatal(err)
		}
	}
	put(pipeline.AlertsPrefix+"direct", `{"name":"direct","query":"host:web1","condition":{"op":">=","value":100}}`)
	put(pipeline.AlertsPrefix+"typo", `{"name":"typo","query":"q","widnow":"5m"}`)
	put(pipeline.AlertsPrefix+"garbage", `not json`)
	// The evaluator keeps the history of an entry even after it broke.
	putState(t, cli, "typo", pipeline.AlertStatus{State: "error", History: []pipeline.AlertEvent{{Time: time.Unix(1e9, 0).UTC(), From: "pending", To: "firing"}}})

	code, m, _ := do(t, "GET", u+"/api/alerts", "")
	if code != 200 || alertNames(m) != "direct" {
		t.Fatalf("list: %d %v", code, m)
	}
	d := m["alerts"].([]any)[0].(map[string]any)
	if d["every"] != "1m0s" || d["condition"].(map[string]any)["op"] != ">=" || d["created"] != nil || d["state"] != "unknown" {
		t.Fatalf("direct entry served as %v", d)
	}
	inv := m["invalid"].(map[string]any)
	if len(inv) != 2 || !strings.HasPrefix(inv["typo"].(string), "widnow: unknown key") || !strings.HasPrefix(inv["garbage"].(string), "body:") {
		t.Fatalf("invalid: %v", inv)
	}
	if code, m, _ := do(t, "GET", u+"/api/alerts/typo", ""); code != 409 || !strings.Contains(m["error"].(string), "widnow: unknown key") {
		t.Fatalf("get invalid: %d %v, want 409 with the reason", code, m)
	}
	if code, m, _ := do(t, "GET", u+"/api/alerts/typo/history", ""); code != 200 || len(m["history"].([]any)) != 1 {
		t.Fatalf("history of an invalid entry: %d %v", code, m)
	}
	// A change written there shows at once.
	put(pipeline.AlertsPrefix+"direct", `{"name":"direct","query":"host:web2"}`)
	if _, m, _ := do(t, "GET", u+"/api/alerts/direct", ""); m["query"] != "host:web2" || m["condition"].(map[string]any)["op"] != ">" {
		t.Fatalf("after an etcd write: %v", m)
	}
	if code, m, _ := do(t, "PUT", u+"/api/alerts/typo", `{"query":"q","window":"5m"}`); code != 200 || m["created"] == nil {
		t.Fatalf("replace invalid: %d %v", code, m)
	}
	if code, _, _ := do(t, "DELETE", u+"/api/alerts/garbage", ""); code != 204 {
		t.Fatalf("delete invalid: %d", code)
	}
	if _, m, _ := do(t, "GET", u+"/api/alerts", ""); alertNames(m) != "direct,typo" || len(m["invalid"].(map[string]any)) != 0 {
		t.Fatalf("after fixes: %v", m)
	}
}

// Without a store the routes answer 501, not 404.
func TestAlertsWithoutStore(t *testing.T) {
	srv := httptest.NewServer(httpapi.New(httpapi.Deps{}, quiet))
	defer srv.Close()
	for _, p := range []string{"/api/alerts", "/api/alerts/x", "/api/alerts/x/history"} {
		if code, _, _ := do(t, "GET", srv.URL+p, ""); code != 501 {
			t.Errorf("GET %s without a store: %d, want 501", p, code)
		}
	}
}
