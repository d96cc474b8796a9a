package alerting

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/logbox/logbox/appliance/pipeline"
	"github.com/logbox/logbox/appliance/settings"
)

// testLogger discards, unless ALERTING_TEST_LOG is set.
func testLogger() *slog.Logger {
	if os.Getenv("ALERTING_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// startEtcd starts a real embedded etcd (as logbox runs it) in a
// temporary directory.
func startEtcd(t *testing.T) *settings.Embedded {
	t.Helper()
	dir := t.TempDir()
	e, err := settings.StartEmbedded(filepath.Join(dir, "etcd"), "127.0.0.1:0", testLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e
}

// dial is another client of the same etcd (as another process has).
func dial(t *testing.T, e *settings.Embedded) *clientv3.Client {
	t.Helper()
	cli, err := settings.Dial([]string{e.Endpoint()}, e.CredentialsFile())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// received is one request a receiver got.
type received struct {
	Path string
	Body []byte
	OK   bool // answered 2xx
	At   time.Time
}

// receiver is a real HTTP server on 127.0.0.1 that records what it is
// sent; it answers failStatus to the next fail requests.
type receiver struct {
	srv        *httptest.Server
	mu         sync.Mutex
	reqs       []received
	fail       int
	failStatus int
	got        chan struct{}
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{failStatus: http.StatusInternalServerError, got: make(chan struct{}, 1)}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		ok := r.fail == 0
		if !ok {
			r.fail--
		}
		r.reqs = append(r.reqs, received{Path: req.URL.RequestURI(), Body: b, OK: ok, At: time.Now()})
		status := r.failStatus
		r.mu.Unlock()
		select {
		case r.got <- struct{}{}:
		default:
		}
		if !ok {
			http.Error(w, "receiver down for the test", status)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) setFail(n, status int) {
	r.mu.Lock()
	r.fail, r.failStatus = n, status
	r.mu.Unlock()
}

func (r *receiver) all() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.reqs...)
}

// delivered are the requests answered 2xx.
func (r *receiver) delivered() []received {
	var out []received
	for _, q := range r.all() {
		if q.OK {
			out = append(out, q)
		}
	}
	return out
}

// webhooks decodes the delivered webhook messages.
func (r *receiver) webhooks(t *testing.T) []webhookMessage {
	t.Helper()
	var out []webhookMessage
	for _, q := range r.delivered() {
		var m webhookMessage
		if err := json.Unmarshal(q.Body, &m); err != nil {
			t.Fatalf("webhook body %s: %v", q.Body, err)
		}
		out = append(out, m)
	}
	return out
}

func countStatus(ms []webhookMessage, status string) int {
	n := 0
	for _, m := range ms {
		if m.Status == status {
			n++
		}
	}
	return n
}

// fakeQuerier is the data source only: it answers each query with the
// result set for it (the index is tested with the real one, see
// TestRealIndex).
type fakeQuerier struct {
	mu    sync.Mutex
	res   map[string]pipeline.StatsResult
	err   error
	calls int
}

func newFakeQuerier() *fakeQuerier { return &fakeQuerier{res: map[string]pipeline.StatsResult{}} }

// count makes query (without a pipe) match n lines.
func (f *fakeQuerier) count(query string, n uint64) {
	f.set(query+" | stats count()", pipeline.StatsResult{Columns: []string{"count()"}, Rows: [][]any{{n}}, Total: n})
}

func (f *fakeQuerier) set(query string, res pipeline.StatsResult) {
	f.mu.Lock()
	f.res[query] = res
	f.mu.Unlock()
}

func (f *fakeQuerier) setErr(err error) {
	f.mu.Lock()
	f.err = err
	f.mu.Unlock()
}

func (f *fakeQuerier) StatsQuery(ctx context.Context, req pipeline.StatsRequest) (pipeline.StatsResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.err != nil {
		return pipeline.StatsResult{}, f.err
	}
	if req.To.Sub(req.From) <= 0 {
		return pipeline.StatsResult{}, fmt.Errorf("empty range %s..%s", req.From, req.To)
	}
	res, ok := f.res[req.Query]
	if !ok {
		return pipeline.StatsResult{}, &pipeline.QueryError{Msg: fmt.Sprintf("test querier knows no %q", req.Query)}
	}
	return res, nil
}

// testConfig is a Config with short intervals for tests.
func testConfig(cli *clientv3.Client, q Querier) Config {
	return Config{
		Etcd: cli, Querier: q, Logger: testLogger(), ExternalURL: "http://logbox.example:7070",
		LeaseTTL: 3 * time.Second, RetryMin: 100 * time.Millisecond, RetryMax: 400 * time.Millisecond,
		ResendMin: time.Hour, SendTimeout: 2 * time.Second, WriteTimeout: 5 * time.Second,
	}
}

// running is an Evaluator's Run in a goroutine.
type running struct {
	ev     *Evaluator
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
}

func start(t *testing.T, cfg Config) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{ev: New(cfg), cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- r.ev.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop cancels Run and waits (bounded) for it to return nil.
func (r *running) stop(t *testing.T) {
	t.Helper()
	r.once.Do(func() {
		r.cancel()
		select {
		case err := <-r.done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("Run did not return within 15s of its context's end")
		}
	})
}

func putRule(t *testing.T, cli *clientv3.Client, r pipeline.AlertRule) {
	t.Helper()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	putRaw(t, cli, pipeline.AlertsPrefix+r.Name, string(b))
}

func putRaw(t *testing.T, cli *clientv3.Client, key, val string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cli.Put(ctx, key, val); err != nil {
		t.Fatal(err)
	}
}

// readState returns the rule's state as etcd holds it (ok false: none).
func readState(t *testing.T, cli *clientv3.Client, name string) (pipeline.AlertStatus, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, pipeline.AlertStatePrefix+name)
	if err != nil {
		t.Fatal(err)
	}
	var st pipeline.AlertStatus
	if len(resp.Kvs) == 0 {
		return st, false
	}
	if err := json.Unmarshal(resp.Kvs[0].Value, &st); err != nil {
		t.Fatal(err)
	}
	return st, true
}

func countKeys(t *testing.T, cli *clientv3.Client, prefix string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	return resp.Count
}

// waitFor polls cond until it holds, failing the test after d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", d, what)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// rule is a rule evaluated every second over the last 5 minutes.
func rule(name, query string, targets ...pipeline.AlertTarget) pipeline.AlertRule {
	r := pipeline.AlertRule{Name: name, Query: query, Every: "1s", Window: "5m", Notify: targets}
	r.Normalize()
	return r
}

// cutProxy is a TCP proxy on 127.0.0.1 in front of an etcd endpoint: a
// client dialled through it can be cut off at once, as a process that
// dies or loses its network (nothing it sends after that arrives, not
// even a resign or a lease revoke).
type cutProxy struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
	cut   bool
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", target)
			p.mu.Lock()
			if err != nil || p.cut {
				p.mu.Unlock()
				c.Close()
				if u != nil {
					u.Close()
				}
				continue
			}
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			go func() { io.Copy(u, c); u.Close() }()
			go func() { io.Copy(c, u); c.Close() }()
		}
	}()
	t.Cleanup(p.kill)
	return p
}

func (p *cutProxy) endpoint() string { return "http://" + p.ln.Addr().String() }

// kill cuts every connection and refuses new ones.
func (p *cutProxy) kill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	p.ln.Close()
	for _, c := range p.conns {
		c.Close()
	}
}
