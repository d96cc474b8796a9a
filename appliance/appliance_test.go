package appliance

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/logbox/logbox/appliance/kafkatest"
	"github.com/logbox/logbox/appliance/pipeline"
	"github.com/logbox/logbox/appliance/settings"
)

// mode is one way lines reach the index: straight (direct) or through a
// Kafka-protocol broker.
type mode struct {
	name  string
	kafka func(t *testing.T, cfg *Config)
}

func modes() []mode {
	return []mode{
		{"direct", func(*testing.T, *Config) {}},
		{"kafka", func(t *testing.T, cfg *Config) {
			k := kafkatest.Start(t)
			cfg.Kafka = k.Brokers
			cfg.Topic = kafkatest.UniqueName(t, "logbox")
			cfg.KafkaGroup = kafkatest.UniqueName(t, "indexers")
		}},
	}
}

func testConfig(t *testing.T, dataDir string, allow ...string) Config {
	t.Helper()
	cfg := DefaultConfig()
	cfg.DataDir = dataDir
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.EtcdListen = "127.0.0.1:0"
	cfg.Host = "testbox"
	cfg.AllowPaths = allow
	cfg.ScanInterval = 100 * time.Millisecond
	return cfg
}

// running is an appliance started by a test.
type running struct {
	t    *testing.T
	url  string
	stop func()
}

func start(t *testing.T, cfg Config) *running {
	t.Helper()
	_, r := startApp(t, cfg)
	return r
}

// startApp runs an appliance for cfg and returns it once ready; it is
// stopped at the test's end, or earlier by running.stop.
func startApp(t *testing.T, cfg Config) (*Appliance, *running) {
	t.Helper()
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	a, err := New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	select {
	case <-a.Ready():
	case err := <-done:
		cancel()
		t.Fatalf("appliance stopped before ready: %v", err)
	case <-time.After(60 * time.Second):
		cancel()
		t.Fatal("appliance not ready after 60s")
	}
	r := &running{t: t, url: "http://" + a.Addr()}
	stopped := false
	r.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run returned %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("appliance did not stop within 30s")
		}
	}
	t.Cleanup(r.stop)
	return a, r
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func (r *running) call(method, path string, body any, out any) int {
	r.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, r.url+path, rd)
	if err != nil {
		r.t.Fatal(err)
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			r.t.Fatalf("%s %s: %v in %q", method, path, err, b)
		}
	}
	return resp.StatusCode
}

func (r *running) search(q string) pipeline.SearchResult {
	r.t.Helper()
	var res pipeline.SearchResult
	if code := r.call("GET", "/api/search?limit=10000&track_total=true&q="+url.QueryEscape(q), nil, &res); code != 200 {
		r.t.Fatalf("search %q: status %d", q, code)
	}
	return res
}

// waitTotal polls until q matches want lines, or fails after a bound.
func (r *running) waitTotal(q string, want int) {
	r.t.Helper()
	r.waitTotalWithin(q, want, 30*time.Second)
}

// waitAtLeast polls until q matches at least n lines.
func (r *running) waitAtLeast(q string, n int) {
	r.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for r.searchTotal(q) < uint64(n) {
		if time.Now().After(deadline) {
			r.t.Fatalf("query %q: fewer than %d hits after 30s", q, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (r *running) searchTotal(q string) uint64 {
	r.t.Helper()
	var res pipeline.SearchResult
	if code := r.call("GET", "/api/search?limit=1&track_total=true&q="+url.QueryEscape(q), nil, &res); code != 200 {
		r.t.Fatalf("search %q: status %d", q, code)
	}
	return res.Total
}

// waitTotalWithin polls until q matches want lines, or fails after d.
func (r *running) waitTotalWithin(q string, want int, d time.Duration) {
	r.t.Helper()
	deadline := time.Now().Add(d)
	var got uint64
	for time.Now().Before(deadline) {
		if got = r.searchTotal(q); got == uint64(want) {
			return
		}
		if got > uint64(want) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	r.t.Fatalf("query %q: %d hits, want %d", q, got, want)
}

var tokRE = regexp.MustCompile(`tok[a-z]+\d+`)

// checkExactlyOnce asserts every token in want is found once and nothing
// else, paging through all hits of q.
func (r *running) checkExactlyOnce(q string, want map[string]bool) {
	r.t.Helper()
	seen := map[string]int{}
	cursor := ""
	for page := 0; page < 1000; page++ {
		var res pipeline.SearchResult
		path := "/api/search?limit=10000&track_total=true&q=" + url.QueryEscape(q) + "&cursor=" + url.QueryEscape(cursor)
		if code := r.call("GET", path, nil, &res); code != 200 {
			r.t.Fatalf("search %q: status %d", q, code)
		}
		for _, h := range res.Hits {
			seen[tokRE.FindString(h.Line)]++
		}
		if cursor = res.Cursor; cursor == "" {
			break
		}
	}
	bad := 0
	for tok := range want {
		if seen[tok] != 1 {
			if bad++; bad <= 10 {
				r.t.Errorf("token %s found %d times, want once", tok, seen[tok])
			}
		}
	}
	for tok, n := range seen {
		if !want[tok] {
			if bad++; bad <= 10 {
				r.t.Errorf("unexpected token %q (%d times)", tok, n)
			}
		}
	}
	if bad > 0 {
		r.t.Fatalf("%d tokens wrong of %d", bad, len(want))
	}
}

func appendLines(t *testing.T, path, prefix string, from, n int, want map[string]bool) {
	t.Helper()
	var b strings.Builder
	for i := from; i < from+n; i++ {
		tok := fmt.Sprintf("tok%s%06d", prefix, i)
		fmt.Fprintf(&b, "2026-11-25 INFO e2e %s user=%d path=/api/v1/items\n", tok, i%17)
		want[tok] = true
	}
	appendFile(t, path, b.String())
}

// appendFile appends text to path in one write, creating the file.
func appendFile(t *testing.T, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestEndToEnd drives the whole appliance through its HTTP API: lines of
// two files found exactly once, a source added and removed at runtime, bad
// input refused, and a restart on the same data dir that neither loses nor
// doubles a line. It runs in direct mode and through a Kafka broker.
func TestEndToEnd(t *testing.T) {
	for _, m := range modes() {
		t.Run(m.name, func(t *testing.T) {
			root := t.TempDir()
			logs := filepath.Join(root, "logs")
			extra := filepath.Join(root, "extra")
			for _, d := range []string{logs, extra} {
				if err := os.MkdirAll(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			a, b := filepath.Join(logs, "a.log"), filepath.Join(logs, "b.log")
			want := map[string]bool{}
			appendLines(t, a, "a", 0, 1500, want)
			appendLines(t, b, "b", 0, 1000, want)

			cfg := testConfig(t, filepath.Join(root, "data"), root)
			cfg.Collect = []string{filepath.Join(logs, "*.log")}
			m.kafka(t, &cfg)
			app := start(t, cfg)

			// Existing lines are read from the start; appended ones follow.
			appendLines(t, a, "a", 1500, 500, want)
			app.waitTotal("e2e", len(want))
			app.checkExactlyOnce("e2e", want)

			// Fields and the query syntax work through the API.
			if res := app.search("+e2e +tokb000007 -toka000007"); res.Total != 1 || res.Hits[0].Host != "testbox" || res.Hits[0].Source != b || res.Hits[0].Level != "INFO" {
				t.Fatalf("search by token: %d hits, first %+v", res.Total, res.Hits[:min(1, len(res.Hits))])
			}

			// Bad input is refused with the field named, and changes nothing.
			var e struct{ Error string }
			if code := app.call("POST", "/api/sources", map[string]any{"name": "bad", "paths": []string{"/etc/*.conf"}}, &e); code != 400 || !strings.Contains(e.Error, "paths[0]") {
				t.Fatalf("outside path: %d %q", code, e.Error)
			}
			if code := app.call("POST", "/api/sources", map[string]any{"name": "Bad Name!", "paths": []string{extra + "/*.txt"}}, &e); code != 400 || !strings.HasPrefix(e.Error, "name:") {
				t.Fatalf("bad name: %d %q", code, e.Error)
			}
			var list struct{ Sources []pipeline.Source }
			app.call("GET", "/api/sources", nil, &list)
			if len(list.Sources) != 1 {
				t.Fatalf("sources after refused writes: %+v", list.Sources)
			}

			// A source added at runtime is followed without a restart.
			x := filepath.Join(extra, "x.txt")
			extraWant := map[string]bool{}
			appendLines(t, x, "x", 0, 100, extraWant)
			src := map[string]any{"name": "extra", "paths": []string{extra + "/*.txt"}, "fields": map[string]string{"team": "core"}}
			if code := app.call("POST", "/api/sources", src, nil); code != 201 {
				t.Fatalf("add source: %d", code)
			}
			if code := app.call("POST", "/api/sources", src, nil); code != 409 {
				t.Fatalf("add source twice: %d, want 409", code)
			}
			app.waitTotal("fields.team:core", 100)
			for k := range extraWant {
				want[k] = true
			}

			// Removing it stops collection: a line appended afterwards is not
			// indexed, while a line in a still-collected file is.
			if code := app.call("DELETE", "/api/sources/extra", nil, nil); code != 204 {
				t.Fatalf("delete source: %d", code)
			}
			if code := app.call("DELETE", "/api/sources/extra", nil, nil); code != 404 {
				t.Fatalf("delete twice: %d, want 404", code)
			}
			waitNoFile(t, app, x)
			appendLines(t, x, "x", 100, 1, map[string]bool{})
			appendLines(t, a, "a", 2000, 1, want)
			app.waitTotal("e2e", len(want))
			if res := app.search("tokx000100"); res.Total != 0 {
				t.Fatal("line of a removed source was indexed")
			}

			// Stop, append while down, start again on the same data dir.
			app.stop()
			appendLines(t, a, "a", 2001, 300, want)
			appendLines(t, b, "b", 1000, 200, want)
			app = start(t, cfg)
			appendLines(t, b, "b", 1200, 100, want)
			app.waitTotal("e2e", len(want))
			app.checkExactlyOnce("e2e", want)
		})
	}
}

// waitNoFile waits until status no longer lists path as followed.
func waitNoFile(t *testing.T, app *running, path string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		var st Status
		app.call("GET", "/api/status", nil, &st)
		found := false
		for _, f := range st.Files {
			found = found || f.Path == path
		}
		if !found {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s still followed after its source was removed", path)
}

// TestExternalEtcd runs against an etcd that logbox did not start
// (--etcd-endpoints) and changes sources by writing etcd keys directly, as
// etcdctl put would: same effect as the API; an invalid entry changes
// nothing and shows in /api/status.
func TestExternalEtcd(t *testing.T) {
	root := t.TempDir()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	e, err := settings.StartEmbedded(filepath.Join(root, "ext-etcd"), "127.0.0.1:0", log)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	cfg := testConfig(t, filepath.Join(root, "data"), root)
	cfg.EtcdEndpoints = []string{e.Endpoint()}
	cfg.EtcdCredentialsFile = e.CredentialsFile() // etcd requires it, as etcdctl --user does
	app := start(t, cfg)

	logs := filepath.Join(root, "logs")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	appendLines(t, filepath.Join(logs, "a.log"), "e", 0, 50, want)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cli := e.Client()
	key := settings.SourcesPrefix + "direct"
	if _, err := cli.Put(ctx, key, `{"name":"direct","paths":["`+logs+`/*.log"]}`); err != nil {
		t.Fatal(err)
	}
	app.waitTotal("e2e", 50)

	// An invalid entry keeps the last valid settings and is reported.
	if _, err := cli.Put(ctx, key, `{"name":"direct","paths":["/etc/*"]}`); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		var st Status
		app.call("GET", "/api/status", nil, &st)
		if strings.Contains(st.InvalidSources["direct"], "paths[0]") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("invalid entry not reported: %+v", st.InvalidSources)
		}
		time.Sleep(50 * time.Millisecond)
	}
	appendLines(t, filepath.Join(logs, "a.log"), "e", 50, 10, want)
	app.waitTotal("e2e", 60)
	app.checkExactlyOnce("e2e", want)
}

// TestUndeliveredInStatus: lines not delivered exactly as written are
// flagged in the index and counted per source and reason in /api/status.
func TestUndeliveredInStatus(t *testing.T) {
	root := t.TempDir()
	cfg := testConfig(t, filepath.Join(root, "data"), root)
	cfg.HostnetInterval = 100 * time.Millisecond
	app := start(t, cfg)
	logs := filepath.Join(root, "logs")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		t.Fatal(err)
	}
	body := "ok line e2e\n" + strings.Repeat("long ", 100) + "e2e\n" + "bad \xff\xfe e2e\n" + "nul\x00 e2e\n"
	if err := os.WriteFile(filepath.Join(logs, "a.log"), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	src := map[string]any{"name": "small", "paths": []string{logs + "/*.log"}, "max_line_bytes": 100}
	if code := app.call("POST", "/api/sources", src, nil); code != 201 {
		t.Fatalf("add source: %d", code)
	}
	app.waitTotal("flags:truncated flags:invalid_utf8 flags:nul_removed", 3)
	var st Status
	app.call("GET", "/api/status", nil, &st)
	got := st.Undelivered["small"]
	if got["truncated"] != 1 || got["invalid_utf8"] != 1 || got["nul_removed"] != 1 {
		t.Fatalf("undelivered counts: %v", st.Undelivered)
	}
	if res := app.search("flags:truncated"); res.Total != 1 || len(res.Hits[0].Line) != 100 {
		t.Fatalf("truncated line: %+v", res)
	}
	// --hostnet-interval indexes host network samples next to the logs.
	app.waitAtLeast("source_name:hostnet", 2)

	// Bad multiline settings are refused with the field named.
	var e struct{ Error string }
	bad := map[string]any{"name": "ml", "paths": []string{logs + "/*.log"}, "multiline": map[string]any{"pattern": "(("}}
	if code := app.call("POST", "/api/sources", bad, &e); code != 400 || !strings.HasPrefix(e.Error, "multiline.pattern:") {
		t.Fatalf("bad multiline: %d %q", code, e.Error)
	}
}

// TestMetrics: /metrics serves the pipeline's counters in Prometheus text
// format, with values that match what happened.
func TestMetrics(t *testing.T) {
	root := t.TempDir()
	logs := filepath.Join(root, "logs")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		t.Fatal(err)
	}
	appendLines(t, filepath.Join(logs, "a.log"), "m", 0, 120, map[string]bool{})
	cfg := testConfig(t, filepath.Join(root, "data"), root)
	cfg.Collect = []string{filepath.Join(logs, "*.log")}
	app := start(t, cfg)
	app.waitTotal("e2e", 120)
	app.search("e2e") // one API request to be timed

	// Acks and latencies are counted just after lines become searchable:
	// poll until every expected line is there.
	scrape := func() string {
		resp, err := http.Get(app.url + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
			t.Fatalf("/metrics: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		return string(b)
	}
	want := []string{
		`logbox_source_lines_read_total\{source="logs-log-[0-9a-f]+"\} 120`,
		`logbox_source_lines_acked_total\{source="logs-log-[0-9a-f]+"\} 120`,
		`logbox_source_bytes_read_total\{source="logs-log-[0-9a-f]+"\} [0-9.e+]+`,
		`logbox_source_open_files\{source="logs-log-[0-9a-f]+"\} 1`,
		`logbox_source_lag_bytes\{source="logs-log-[0-9a-f]+"\} 0`,
		`logbox_index_documents 120`,
		`logbox_index_shards 1`,
		`logbox_index_queued_batches 0`,
		`logbox_index_batch_latency_seconds_count [1-9][0-9]*`,
		`logbox_etcd_up 1`,
		`logbox_http_request_duration_seconds_count\{code="200",route="/api/search"\} [1-9]`,
		`go_goroutines [0-9]+`,
	}
	var missing []string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		text := scrape()
		missing = missing[:0]
		for _, re := range want {
			if !regexp.MustCompile(`(?m)^` + re + `$`).MatchString(text) {
				missing = append(missing, re)
			}
		}
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
	}
	for _, re := range missing {
		t.Errorf("/metrics has no line matching %s", re)
	}

	// The direct-mode writer's queue shows among the index's counts in
	// /api/status, as it did when the queue was the index's.
	var st struct {
		Index map[string]any `json:"index"`
	}
	app.call("GET", "/api/status", nil, &st)
	if q, ok := st.Index["queued_batches"]; !ok || q != float64(0) || st.Index["docs"] != float64(120) {
		t.Errorf("/api/status index: %v, want docs 120 and queued_batches 0", st.Index)
	}
}
