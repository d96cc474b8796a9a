package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/logbox/logbox/appliance/httpapi"
	"github.com/logbox/logbox/appliance/index"
	"github.com/logbox/logbox/appliance/pipeline"
	"github.com/logbox/logbox/appliance/settings"
)

// TestAlertsCmd runs `logbox alerts` in-process against the real API
// over a real embedded etcd.
func TestAlertsCmd(t *testing.T) {
	etcd, cli := cmdServer(t, "alerts", func(cli *clientv3.Client) httpapi.Deps {
		return httpapi.Deps{Alerts: settings.NewAlertStore(cli), CheckQuery: index.CheckQuery, HasPipe: index.HasPipe}
	})
	ctx := context.Background()

	get := func(name string) pipeline.AlertRuleView {
		t.Helper()
		out, _ := cli(0, "get", name)
		var v pipeline.AlertRuleView
		if err := json.Unmarshal([]byte(out), &v); err != nil {
			t.Fatalf("get %s: %v\n%s", name, err, out)
		}
		return v
	}

	cli(0, "save", "errors", "level:error", "--every", "30s", "--window", "10m", "--op", ">=", "--value", "5", "--for", "2m",
		"--webhook", "http://127.0.0.1:9/hook?a=1,2", "--alertmanager", "http://127.0.0.1:9093", "--slack", "https://hooks.example/x",
		"--label", "team=web", "--label", "tier=a=b", "--description", "too many errors")
	r := get("errors")
	want := []pipeline.AlertTarget{{Webhook: "http://127.0.0.1:9/hook?a=1,2"}, {Alertmanager: "http://127.0.0.1:9093"}, {Slack: "https://hooks.example/x"}}
	if r.Every != "30s" || r.Window != "10m" || r.For != "2m" || r.Condition != (pipeline.AlertCondition{Op: ">=", Value: 5}) ||
		len(r.Notify) != 3 || r.Notify[0] != want[0] || r.Notify[1] != want[1] || r.Notify[2] != want[2] ||
		r.Labels["team"] != "web" || r.Labels["tier"] != "a=b" || r.Description != "too many errors" || r.State != "unknown" || r.Created.IsZero() {
		t.Fatalf("get errors: %+v", r)
	}
	// Flags first; a query starting with - after --; new patterns.
	cli(0, "save", "--new-patterns", "--compare", "7d", "fresh", "--", "-level:debug")
	if r := get("fresh"); !r.NewPatterns || r.Compare != "7d" || r.Query != "-level:debug" || r.Every != "1m0s" {
		t.Fatalf("get fresh: %+v", r)
	}
	// A rule from a file, bytes as written: a key given twice is refused.
	file := filepath.Join(t.TempDir(), "rule.json")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(file, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(`{"name":"slow","query":"* | stats avg(request_time) as t by (host)","column":"t","condition":{"op":">","value":0.5},"labels":{"team":"api"}}`)
	cli(0, "save", "--file", file)
	if r := get("slow"); r.Column != "t" || r.Condition.Value != 0.5 || r.Labels["team"] != "api" {
		t.Fatalf("get slow: %+v", r)
	}
	write(`{"query":"q","query":"r"}`)
	if _, stderr := cli(1, "save", "dup", "--file", file); !strings.Contains(stderr, "query: given twice") {
		t.Fatalf("duplicate key in the file: %s", stderr)
	}
	write(`{"query":"q"}`)
	if _, stderr := cli(1, "save", "--file", file); !strings.Contains(stderr, `no "name"`) {
		t.Fatalf("file without a name: %s", stderr)
	}
	cli(0, "save", "named", "--file", file) // NAME fills in the file's missing name
	cli(1, "rm", "dup")
	// Server-side refusals come back with their field.
	if _, stderr := cli(1, "save", "bad", "level:error", "--op", "=>"); !strings.Contains(stderr, "condition.op:") {
		t.Fatalf("bad op: %s", stderr)
	}
	if _, stderr := cli(1, "save", "bad", "a | stats cnt()"); !strings.Contains(stderr, "query: unknown function") {
		t.Fatalf("bad query: %s", stderr)
	}
	if _, stderr := cli(1, "save", "bad", "level:error", "--webhook", "not a url"); !strings.Contains(stderr, "notify[0].webhook:") {
		t.Fatalf("bad webhook: %s", stderr)
	}

	// The evaluator's state shows in list and history.
	v := 12.0
	lbl := map[string]string{"alertname": "errors", "host": "web1"}
	t0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	st := pipeline.AlertStatus{State: pipeline.AlertFiring, Value: &v, LastEval: t0,
		History: []pipeline.AlertEvent{
			{Time: t0, Labels: lbl, From: pipeline.AlertOK, To: pipeline.AlertPending, Value: 6},
			{Time: t0.Add(2 * time.Minute), Labels: lbl, From: pipeline.AlertPending, To: pipeline.AlertFiring, Value: 12},
		}}
	b, _ := json.Marshal(st)
	if _, err := etcd.Put(ctx, pipeline.AlertStatePrefix+"errors", string(b)); err != nil {
		t.Fatal(err)
	}
	if _, err := etcd.Put(ctx, pipeline.AlertStatePrefix+"slow", `{"state":"error","error":"column t:\nnot in the answer"}`); err != nil {
		t.Fatal(err)
	}
	if _, err := etcd.Put(ctx, pipeline.AlertsPrefix+"broken", `{"name":"broken","query":"q","op":">"}`); err != nil {
		t.Fatal(err)
	}
	out, stderr := cli(0, "list")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	fields := func(i int) []string { return strings.Fields(lines[i]) }
	if len(lines) != 5 || strings.Join(fields(0), " ") != "NAME STATE VALUE EVERY WINDOW CONDITION QUERY" ||
		strings.Join(fields(1), " ") != "errors firing 12 30s 10m >= 5 for 2m level:error" ||
		strings.Join(fields(2), " ") != "fresh unknown - 1m0s 5m0s new since 7d -level:debug" ||
		strings.Join(fields(3), " ") != "named unknown - 1m0s 5m0s > 0 q" ||
		!strings.HasPrefix(strings.Join(fields(4), " "), "slow error - 1m0s 5m0s > 0.5 * | stats avg(request_time)") {
		t.Fatalf("list:\n%s", out)
	}
	if !strings.Contains(stderr, `rule "slow": column t: not in the answer`) || !strings.Contains(stderr, `invalid entry "broken" (not listed): op: unknown key`) {
		t.Fatalf("list's stderr: %s", stderr)
	}
	out, _ = cli(0, "list", "--json")
	var list pipeline.AlertRuleViewList
	if err := json.Unmarshal([]byte(out), &list); err != nil || len(list.Alerts) != 4 || list.Alerts[0].Value == nil || *list.Alerts[0].Value != 12 || list.Invalid["broken"] == "" {
		t.Fatalf("list --json: %v\n%s", err, out)
	}
	out, _ = cli(0, "history", "errors")
	lines = strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || strings.Join(strings.Fields(lines[0]), " ") != "TIME FROM TO VALUE LABELS" ||
		!strings.HasSuffix(strings.Join(strings.Fields(lines[1]), " "), " pending firing 12 host=web1") ||
		!strings.HasSuffix(strings.Join(strings.Fields(lines[2]), " "), " ok pending 6 host=web1") {
		t.Fatalf("history:\n%s", out)
	}
	if !strings.HasPrefix(lines[1], t0.Add(2*time.Minute).Local().Format(time.RFC3339)) {
		t.Fatalf("history's newest first, in local time:\n%s", out)
	}
	out, _ = cli(0, "history", "errors", "--json")
	var h struct{ History []pipeline.AlertEvent }
	if err := json.Unmarshal([]byte(out), &h); err != nil || len(h.History) != 2 || h.History[0].To != "firing" {
		t.Fatalf("history --json: %v\n%s", err, out)
	}

	// save replaces.
	cli(0, "save", "errors", "level:error OR level:fatal")
	if r := get("errors"); r.Query != "level:error OR level:fatal" || r.Every != "1m0s" || r.Notify != nil || r.State != "firing" {
		t.Fatalf("after save again: %+v", r)
	}
	cli(0, "rm", "errors")
	if _, stderr := cli(1, "rm", "errors"); !strings.Contains(stderr, "not found") {
		t.Fatalf("rm twice: %s", stderr)
	}
	if _, stderr := cli(1, "history", "errors"); !strings.Contains(stderr, "not found") {
		t.Fatalf("history after rm: %s", stderr)
	}

	// Usage errors exit 2.
	cli(2)
	cli(2, "get")
	cli(2, "frobnicate", "x")
	cli(2, "save", "only-a-name")
	cli(2, "save", "x", "--file", file, "--every", "1m")
	cli(2, "save", "a", "b", "--file", file)
}
