package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/logbox/logbox/appliance/kafkatest"
	"github.com/logbox/logbox/appliance/settings"
)

// amReceiver is a local HTTP server that takes Alertmanager webhook JSON,
// as any Alertmanager receiver tool would, and keeps what it got.
type amReceiver struct {
	srv *httptest.Server

	mu  sync.Mutex
	got []amMessage
}

type amMessage struct {
	Version string `json:"version"`
	Status  string `json:"status"`
	Alerts  []struct {
		Status       string            `json:"status"`
		Labels       map[string]string `json:"labels"`
		Annotations  map[string]string `json:"annotations"`
		StartsAt     time.Time         `json:"startsAt"`
		EndsAt       time.Time         `json:"endsAt"`
		GeneratorURL string            `json:"generatorURL"`
	} `json:"alerts"`
}

func newAMReceiver(t *testing.T) *amReceiver {
	t.Helper()
	r := &amReceiver{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var m amMessage
		if err := json.NewDecoder(io.LimitReader(req.Body, 1<<20)).Decode(&m); err != nil {
			t.Errorf("receiver: %v", err)
			http.Error(w, err.Error(), 400)
			return
		}
		r.mu.Lock()
		r.got = append(r.got, m)
		r.mu.Unlock()
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// counts returns how many firing and resolved notifications arrived for
// the alert named rule.
func (r *amReceiver) counts(rule string) (firing, resolved int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range r.got {
		for _, a := range m.Alerts {
			if a.Labels["alertname"] != rule {
				continue
			}
			switch a.Status {
			case "firing":
				firing++
			case "resolved":
				resolved++
			}
		}
	}
	return firing, resolved
}

func (r *amReceiver) waitCounts(t *testing.T, rule string, firing, resolved int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		f, rs := r.counts(rule)
		if f == firing && rs == resolved {
			return
		}
		if f > firing || rs > resolved || time.Now().After(deadline) {
			t.Fatalf("%s: %d firing and %d resolved notifications, want %d and %d", rule, f, rs, firing, resolved)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// apiJSON sends a JSON request to a running logbox and decodes its answer.
func apiJSON(t *testing.T, method, url string, body, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %d %s: %v", method, url, resp.StatusCode, b, err)
		}
	}
	return resp.StatusCode
}

type ruleState struct {
	State    string    `json:"state"`
	LastEval time.Time `json:"last_eval"`
	Error    string    `json:"error"`
}

func ruleOf(t *testing.T, base, name string) ruleState {
	t.Helper()
	var rs ruleState
	if code := apiJSON(t, "GET", base+"/api/alerts/"+name, nil, &rs); code != 200 {
		t.Fatalf("GET rule %s: %d", name, code)
	}
	return rs
}

// evaluations is how many rule evaluations the process at base made
// (its /api/status; it counts only while it is the evaluating process).
func evaluations(t *testing.T, base string) uint64 {
	t.Helper()
	var st struct {
		Alerts *struct {
			Evaluations uint64 `json:"evaluations"`
		} `json:"alerts"`
	}
	if code := apiJSON(t, "GET", base+"/api/status", nil, &st); code != 200 || st.Alerts == nil {
		t.Fatalf("status of %s: %d, alerts %v", base, code, st.Alerts)
	}
	return st.Alerts.Evaluations
}

// waitEvaluations waits until the process at base made n more
// evaluations than it had made when called.
func waitEvaluations(t *testing.T, base string, n uint64) {
	t.Helper()
	start := evaluations(t, base)
	deadline := time.Now().Add(60 * time.Second)
	for evaluations(t, base) < start+n {
		if time.Now().After(deadline) {
			t.Fatalf("%s made fewer than %d evaluations in 60s", base, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func appendNow(t *testing.T, path, word string, n int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for i := range n {
		if _, err := fmt.Fprintf(f, "%s ERROR %s payment failed attempt=%d\n", time.Now().UTC().Format(time.RFC3339Nano), word, i); err != nil {
			t.Fatal(err)
		}
	}
}

func errRule(name, word, webhook string) map[string]any {
	return map[string]any{
		"name": name, "query": word, "every": "1s", "window": "30s",
		"condition": map[string]any{"op": ">", "value": 0},
		"notify":    []map[string]string{{"webhook": webhook}},
	}
}

// TestBinaryAlertRestart: a rule fires, logbox is SIGKILLed while it
// fires and started again; the restarted process neither sends the firing
// again nor loses the resolve when the lines leave the window.
func TestBinaryAlertRestart(t *testing.T) {
	bin := buildBinary(t)
	work := t.TempDir()
	if err := os.MkdirAll(filepath.Join(work, "logs"), 0o755); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(work, "logs", "app.log")
	appendNow(t, logPath, "warmup", 1)
	recv := newAMReceiver(t)
	args := []string{"--data", "data", "--http", "127.0.0.1:0", "--etcd-listen", "127.0.0.1:0", "--host", "alertbox",
		"--collect", "logs/*.log", "--scan-interval", "200ms"}
	p := startBinary(t, bin, work, args...)
	if code := apiJSON(t, "POST", p.url+"/api/alerts", errRule("payments", "zzpay", recv.srv.URL), nil); code != 201 && code != 200 {
		t.Fatalf("create rule: %d", code)
	}
	appendNow(t, logPath, "zzpay", 3)
	recv.waitCounts(t, "payments", 1, 0, 30*time.Second)
	if rs := ruleOf(t, p.url, "payments"); rs.State != "firing" {
		t.Fatalf("after the firing notification the rule is %+v", rs)
	}

	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.done
	restart := time.Now()
	p = startBinary(t, bin, work, args...)
	// Evaluated again after the restart, still firing, and nothing sent.
	waitEvaluations(t, p.url, 2)
	if rs := ruleOf(t, p.url, "payments"); rs.State != "firing" {
		t.Fatalf("after the restart the rule is %+v, want firing", rs)
	}
	t.Logf("evaluating again %s after the restart", time.Since(restart).Round(time.Millisecond))
	recv.waitCounts(t, "payments", 1, 0, 0)
	// The lines leave the 30 s window: one resolve.
	recv.waitCounts(t, "payments", 1, 1, 60*time.Second)
	waitEvaluations(t, p.url, 2)
	recv.waitCounts(t, "payments", 1, 1, 0)
	var hist struct {
		History []struct{ From, To string }
	}
	if code := apiJSON(t, "GET", p.url+"/api/alerts/payments/history", nil, &hist); code != 200 || len(hist.History) == 0 || hist.History[0].To != "resolved" {
		t.Fatalf("history: %d %+v", code, hist)
	}
}

// TestBinaryAlertFailover: an agent ships to a Kafka-protocol broker; two
// indexers (each its own consumer group, so each holds every line) share
// one etcd, and exactly one evaluates. The evaluating one is SIGKILLed
// while the rule fires: the other takes over, sends no second firing, and
// sends the resolve once.
func TestBinaryAlertFailover(t *testing.T) {
	bin := buildBinary(t)
	work := t.TempDir()
	if err := os.MkdirAll(filepath.Join(work, "logs"), 0o755); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(work, "logs", "app.log")
	appendNow(t, logPath, "warmup", 1)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	etcd, err := settings.StartEmbedded(filepath.Join(work, "etcd"), "127.0.0.1:0", quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(etcd.Close)
	k := kafkatest.Start(t)
	topic := kafkatest.UniqueName(t, "alerts")
	common := []string{"--http", "127.0.0.1:0", "--etcd-endpoints", etcd.Endpoint(), "--etcd-credentials-file", etcd.CredentialsFile(),
		"--kafka", strings.Join(k.Brokers, ","), "--topic", topic}
	agent := startBinary(t, bin, work, append([]string{"--data", "agent", "--role", "agent", "--host", "web1",
		"--collect", "logs/*.log", "--scan-interval", "200ms"}, common...)...)
	defer func() {
		_ = agent.cmd.Process.Signal(syscall.SIGTERM)
		<-agent.done
	}()
	idx := map[string]*proc{}
	for _, name := range []string{"a", "b"} {
		idx[name] = startBinary(t, bin, work, append([]string{"--data", "idx-" + name, "--role", "indexer", "--host", "idx-" + name,
			"--kafka-group", kafkatest.UniqueName(t, "group-"+name)}, common...)...)
	}
	recv := newAMReceiver(t)
	if code := apiJSON(t, "POST", idx["a"].url+"/api/alerts", errRule("checkout", "zzcheck", recv.srv.URL), nil); code != 201 && code != 200 {
		t.Fatalf("create rule: %d", code)
	}
	appendNow(t, logPath, "zzcheck", 3)
	recv.waitCounts(t, "checkout", 1, 0, 45*time.Second)

	dead := map[string]bool{}
	leader := func() string {
		t.Helper()
		for name, p := range idx {
			if dead[name] {
				continue
			}
			var st struct {
				Alerts *struct {
					Leader bool `json:"leader"`
				} `json:"alerts"`
			}
			if code := apiJSON(t, "GET", p.url+"/api/status", nil, &st); code == 200 && st.Alerts != nil && st.Alerts.Leader {
				return name
			}
		}
		return ""
	}
	first := leader()
	if first == "" {
		t.Fatal("no indexer says it evaluates the rules")
	}
	other := map[string]string{"a": "b", "b": "a"}[first]
	if err := idx[first].cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-idx[first].done
	dead[first] = true
	killed := time.Now()
	deadline := time.Now().Add(30 * time.Second)
	for leader() != other {
		if time.Now().After(deadline) {
			t.Fatalf("indexer %s did not take over evaluation within 30s of %s's kill", other, first)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("indexer %s took over %s after its kill", other, time.Since(killed).Round(time.Millisecond))
	waitEvaluations(t, idx[other].url, 2)
	if rs := ruleOf(t, idx[other].url, "checkout"); rs.State != "firing" {
		t.Fatalf("after the takeover the rule is %+v, want firing", rs)
	}
	recv.waitCounts(t, "checkout", 1, 0, 0)
	recv.waitCounts(t, "checkout", 1, 1, 60*time.Second)
	waitEvaluations(t, idx[other].url, 2)
	recv.waitCounts(t, "checkout", 1, 1, 0)
}
