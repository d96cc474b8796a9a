package esbulk_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/elastic/go-elasticsearch/v8"
	"github.com/elastic/go-elasticsearch/v8/esapi"
	"github.com/elastic/go-elasticsearch/v8/esutil"
	"github.com/go-chi/chi/v5"

	"github.com/logbox/logbox/appliance/ingest"
	"github.com/logbox/logbox/appliance/ingest/ingesttest"
	"github.com/logbox/logbox/appliance/inputs/esbulk"
	"github.com/logbox/logbox/appliance/pipeline"
)

// env is the input on a real HTTP server in front of a real pipeline.
type env struct {
	p   *ingesttest.Pipe
	acc *ingest.Acceptor
	url string
}

// serve starts the input on p under a router laid out as logbox's (the
// API under /api, the page at /), its acceptor named name; wrap, when
// given, wraps the router (a lossy network, a slow writer).
func serve(t *testing.T, p *ingesttest.Pipe, name string, cfg esbulk.Config, acc *ingest.Acceptor, wrap func(http.Handler) http.Handler) *env {
	t.Helper()
	if acc == nil {
		acc = p.Acceptor(name, "")
	}
	r := chi.NewRouter()
	r.Route("/api", func(r chi.Router) {
		r.Get("/search", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "the api") })
	})
	esbulk.New(acc, cfg, ingesttest.Quiet).Mount(r)
	r.Handle("/*", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "the page") }))
	var h http.Handler = r
	if wrap != nil {
		h = wrap(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &env{p: p, acc: acc, url: srv.URL}
}

func client(t *testing.T, address string, cfg elasticsearch.Config) *elasticsearch.Client {
	t.Helper()
	cfg.Addresses = []string{address}
	es, err := elasticsearch.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return es
}

var base = time.Date(2024, 3, 5, 10, 0, 0, 0, time.UTC)

// kind is one shape of document a shipper sends.
type kind struct {
	word   string // in every line of the kind, and no other
	index  string
	action string
	withID bool
	doc    func(word string, i int) map[string]any
}

// filebeat is the shape of Filebeat's events (ECS).
func filebeat(word string, i int) map[string]any {
	return map[string]any{
		"@timestamp": base.Add(time.Duration(i) * time.Millisecond).Format(time.RFC3339Nano),
		"message":    fmt.Sprintf("%s %sn%06d GET /checkout 200", word, word, i),
		"host":       map[string]any{"name": "web-1", "os": map[string]any{"family": "debian"}},
		"log":        map[string]any{"file": map[string]any{"path": "/var/log/app.log"}, "offset": i * 100, "level": "info"},
		"http":       map[string]any{"response": map[string]any{"status_code": 200 + i%3}},
		"agent":      map[string]any{"type": "filebeat", "version": "8.11.0"},
		"tags":       []string{"t1", "t2"},
		"ecs":        map[string]any{"version": "8.0.0"},
	}
}

// fluentbit is the shape of Fluent Bit's records from a container: the
// text under log, no message, no host.
func fluentbit(word string, i int) map[string]any {
	return map[string]any{
		"@timestamp": base.Add(time.Duration(i) * time.Millisecond).Format("2006-01-02T15:04:05.000Z"),
		"log":        fmt.Sprintf("%s %sn%06d worker done\n", word, word, i),
		"stream":     "stdout",
		"kubernetes": map[string]any{"pod_name": "pod-1", "namespace_name": "shop", "labels": map[string]any{"app": "cart"}},
	}
}

var kinds = []kind{
	{word: "fbwithid", index: "filebeat-8.11.0", action: "create", withID: true, doc: filebeat},
	{word: "fbnoid", index: "filebeat-8.11.0", action: "create", doc: filebeat},
	{word: "flwithid", index: "fluent-bit", action: "index", withID: true, doc: fluentbit},
	{word: "flnoid", index: "fluent-bit", action: "index", doc: fluentbit},
}

// send indexes n documents of each kind through the Go client's bulk
// indexer, the URL's index being urlIndex (items name theirs when it is
// empty), and reports how many it answered as failed.
func send(t *testing.T, es *elasticsearch.Client, ks []kind, n int, urlIndex string) (failed int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	bi, err := esutil.NewBulkIndexer(esutil.BulkIndexerConfig{
		Client: es, Index: urlIndex, NumWorkers: 2, FlushBytes: 24 << 10, FlushInterval: time.Hour,
		OnError: func(_ context.Context, err error) { t.Errorf("bulk indexer: %v", err) },
	})
	if err != nil {
		t.Fatal(err)
	}
	var nfailed atomic.Int64
	for _, k := range ks {
		for i := range n {
			body, _ := json.Marshal(k.doc(k.word, i))
			it := esutil.BulkIndexerItem{Action: k.action, Body: bytes.NewReader(body),
				OnFailure: func(_ context.Context, it esutil.BulkIndexerItem, res esutil.BulkIndexerResponseItem, err error) {
					nfailed.Add(1)
					t.Errorf("item %s %s: %d %s %s %v", it.Action, it.DocumentID, res.Status, res.Error.Type, res.Error.Reason, err)
				},
				OnSuccess: func(_ context.Context, it esutil.BulkIndexerItem, res esutil.BulkIndexerResponseItem) {
					if res.Status != 201 || res.Result != "created" || res.DocumentID == "" || (it.DocumentID != "" && res.DocumentID != it.DocumentID) {
						t.Errorf("item %s %s answered %+v", it.Action, it.DocumentID, res)
					}
				}}
			if k.index != urlIndex {
				it.Index = k.index
			}
			if k.withID {
				it.DocumentID = fmt.Sprintf("%s-%d", k.word, i)
			}
			if err := bi.Add(ctx, it); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := bi.Close(ctx); err != nil {
		t.Fatal(err)
	}
	st := bi.Stats()
	if st.NumAdded != uint64(len(ks)*n) || st.NumFailed != uint64(nfailed.Load()) || st.NumRequests < 2 {
		t.Errorf("bulk indexer stats %+v", st)
	}
	return nfailed.Load()
}

// checkOnce checks that every document of k is searchable exactly once
// (n of them), with the fields its shape maps to.
func checkOnce(t *testing.T, p *ingesttest.Pipe, k kind, n int) {
	t.Helper()
	if got := p.WaitCount(k.word, n, 30*time.Second); got != n {
		t.Errorf("%s: %d lines searchable, want %d", k.word, got, n)
	}
	hits := p.Hits(k.word, n+50)
	seen := map[string]int{}
	for _, h := range hits {
		var tok string
		for _, w := range strings.Fields(h.Line) {
			if strings.HasPrefix(w, k.word+"n") {
				tok = w
			}
		}
		seen[tok]++
		var i int
		if _, err := fmt.Sscanf(strings.TrimPrefix(tok, k.word+"n"), "%d", &i); err != nil {
			t.Errorf("%s: a line without its number: %q", k.word, h.Line)
			continue
		}
		want := k.doc(k.word, i)
		if !h.TS.Equal(base.Add(time.Duration(i) * time.Millisecond)) {
			t.Errorf("%s: ts %v, want @timestamp", tok, h.TS)
		}
		if h.Fields["index"] != k.index {
			t.Errorf("%s: index field %q, want %q", tok, h.Fields["index"], k.index)
		}
		if _, ok := want["message"]; ok { // Filebeat
			if h.Line != want["message"] || h.Host != "web-1" || h.Fields["log.file.path"] != "/var/log/app.log" ||
				h.Fields["level"] != "info" || h.Fields["http.response.status_code"] != fmt.Sprint(200+i%3) ||
				h.Fields["tags"] != `["t1","t2"]` || h.Fields["host.os.family"] != "debian" || h.Fields["log.offset"] != fmt.Sprint(i*100) {
				t.Errorf("%s: hit %+v", tok, h)
			}
		} else { // Fluent Bit
			if h.Line != strings.TrimSuffix(want["log"].(string), "\n") && h.Line != want["log"] ||
				h.Fields["kubernetes.labels.app"] != "cart" || h.Fields["stream"] != "stdout" || h.Host != "logbox-test" {
				t.Errorf("%s: hit %+v", tok, h)
			}
		}
	}
	for tok, c := range seen {
		if c != 1 {
			t.Errorf("%s indexed %d times", tok, c)
		}
	}
	if len(seen) != n {
		t.Errorf("%s: %d distinct documents, want %d", k.word, len(seen), n)
	}
}

// The official Go client's bulk indexer, at /es and at the root, with
// documents in Filebeat's and Fluent Bit's shapes, with and without _id:
// every document is searchable exactly once with its fields; a resend is
// answered as the first send and indexed once.
func TestGoClientBulk(t *testing.T) {
	const n = 150
	for _, mode := range ingesttest.Modes {
		t.Run(string(mode), func(t *testing.T) {
			p := ingesttest.Start(t, mode)
			for _, at := range []struct{ name, path, urlIndex string }{
				{"es", "/es", ""},
				{"root", "", "filebeat-8.11.0"},
			} {
				t.Run(at.name, func(t *testing.T) {
					e := serve(t, p, "bulk-"+at.name, esbulk.Config{}, nil, nil)
					ks := make([]kind, 0, len(kinds))
					for _, k := range kinds {
						k.word = at.name + k.word
						ks = append(ks, k)
					}
					es := client(t, e.url+at.path, elasticsearch.Config{})
					send(t, es, ks, n, at.urlIndex)
					for _, k := range ks {
						checkOnce(t, p, k, n)
					}
					// The same documents again: those with an _id are
					// recognised, and so are those without (same time,
					// text and fields).
					send(t, es, ks, n, at.urlIndex)
					for _, k := range ks {
						checkOnce(t, p, k, n)
					}
					// Those with an _id once more, changed: the _id decides.
					var withID []kind
					for _, k := range ks {
						if k.withID {
							doc := k.doc
							k.doc = func(word string, i int) map[string]any {
								d := doc(word, i)
								d["attempt"] = 2
								return d
							}
							withID = append(withID, k)
						}
					}
					send(t, es, withID, n, at.urlIndex)
					time.Sleep(300 * time.Millisecond) // a late double would show now
					for _, k := range ks {
						if got := p.Count(k.word); got != n {
							t.Errorf("%s: %d lines after the resends, want %d", k.word, got, n)
						}
					}
					if got := p.Count("fields.attempt:2"); got != 0 {
						t.Errorf("%d changed resends indexed", got)
					}
					st := e.acc.Stats()
					if st.Acked != uint64(2*n*len(ks)+n*len(withID)) || st.Retried != uint64(n*len(ks)+n*len(withID)) || st.Rejected != 0 {
						t.Errorf("stats %+v", st)
					}
				})
			}
		})
	}
}

// dropFirstAnswer serves the first bulk request in full (its lines are
// durable when it returns) and then closes the connection without an
// answer: what a client sees when the network loses the answer.
type dropFirstAnswer struct {
	next    http.Handler
	dropped atomic.Int32
	code    atomic.Int32
}

func (d *dropFirstAnswer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.HasSuffix(r.URL.Path, "/_bulk") || !d.dropped.CompareAndSwap(0, 1) {
		d.next.ServeHTTP(w, r)
		return
	}
	rec := httptest.NewRecorder()
	d.next.ServeHTTP(rec, r)
	d.code.Store(int32(rec.Code))
	conn, _, err := w.(http.Hijacker).Hijack()
	if err != nil {
		panic(err)
	}
	_ = conn.Close()
}

// A request whose answer is lost is sent again by the client's transport;
// every document, with _id and without, is indexed once.
func TestLostAnswerRetried(t *testing.T) {
	const n = 100
	for _, mode := range ingesttest.Modes {
		t.Run(string(mode), func(t *testing.T) {
			p := ingesttest.Start(t, mode)
			drop := &dropFirstAnswer{}
			e := serve(t, p, "bulk", esbulk.Config{}, nil, func(h http.Handler) http.Handler { drop.next = h; return drop })
			es := client(t, e.url+"/es", elasticsearch.Config{})
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			bi, err := esutil.NewBulkIndexer(esutil.BulkIndexerConfig{Client: es, NumWorkers: 1, FlushBytes: 10 << 20, FlushInterval: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			var ok, failed atomic.Int64
			for _, k := range kinds {
				for i := range n {
					body, _ := json.Marshal(k.doc("lost"+k.word, i))
					it := esutil.BulkIndexerItem{Action: k.action, Index: k.index, Body: bytes.NewReader(body),
						OnSuccess: func(context.Context, esutil.BulkIndexerItem, esutil.BulkIndexerResponseItem) { ok.Add(1) },
						OnFailure: func(_ context.Context, _ esutil.BulkIndexerItem, res esutil.BulkIndexerResponseItem, err error) {
							failed.Add(1)
							t.Errorf("item failed: %+v %v", res, err)
						}}
					if k.withID {
						it.DocumentID = fmt.Sprint(i)
					}
					if err := bi.Add(ctx, it); err != nil {
						t.Fatal(err)
					}
				}
			}
			if err := bi.Close(ctx); err != nil {
				t.Fatal(err)
			}
			if drop.dropped.Load() != 1 || drop.code.Load() != 200 {
				t.Fatalf("no answer dropped (%d), or the dropped request was not taken (%d)", drop.dropped.Load(), drop.code.Load())
			}
			if st := bi.Stats(); st.NumRequests != 1 || ok.Load() != int64(n*len(kinds)) {
				t.Fatalf("stats %+v, %d answered created", st, ok.Load())
			}
			for _, k := range kinds {
				k.word = "lost" + k.word
				checkOnce(t, p, k, n)
			}
			if st := e.acc.Stats(); st.Retried != uint64(n*len(kinds)) {
				t.Errorf("the resend was not recognised: %+v", st)
			}
		})
	}
}

// bulkReq posts body to path and decodes the answer.
func bulkReq(t *testing.T, url, path, body string, hdr map[string]string) (int, http.Header, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	return do(t, req)
}

func do(t *testing.T, req *http.Request) (int, http.Header, map[string]any) {
	t.Helper()
	c := &http.Client{Timeout: 30 * time.Second}
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var m map[string]any
	if len(raw) > 0 && json.Unmarshal(raw, &m) != nil {
		t.Fatalf("%s %s: answer is not JSON: %s", req.Method, req.URL.Path, raw)
	}
	if res.Header.Get("X-Elastic-Product") != "Elasticsearch" {
		t.Errorf("%s %s: no X-Elastic-Product header", req.Method, req.URL.Path)
	}
	return res.StatusCode, res.Header, m
}

// Per-item errors: update, delete, a malformed document, a missing index
// and a repeated _id are answered per item as Elasticsearch does; the
// other items are indexed. A malformed action line fails the request.
func TestItemErrors(t *testing.T) {
	for _, mode := range ingesttest.Modes {
		t.Run(string(mode), func(t *testing.T) {
			p := ingesttest.Start(t, mode)
			e := serve(t, p, "bulk", esbulk.Config{}, nil, nil)
			body := strings.Join([]string{
				`{"index":{"_id":"a1"}}`, `{"message":"itemerr good one","@timestamp":"2024-03-05T10:00:00Z"}`,
				`{"update":{"_id":"a1"}}`, `{"doc":{"message":"itemerr changed"}}`,
				`{"delete":{"_id":"a1"}}`,
				`{"create":{}}`, `{"message":"itemerr broken"`,
				`{"create":{"_id":"a1"}}`, `{"message":"itemerr same id"}`,
				`{"create":{"_index":"other"}}`, `{"msg":"itemerr good two","@timestamp":"2024-03-05T10:00:01Z"}`,
				``,
			}, "\n")
			code, _, m := bulkReq(t, e.url, "/es/logs/_bulk", body, nil)
			if code != 200 || m["errors"] != true {
				t.Fatalf("%d %v", code, m)
			}
			items := m["items"].([]any)
			want := []struct {
				action, index string
				status        float64
				typ           string
			}{
				{"index", "logs", 201, ""}, {"update", "logs", 400, "illegal_argument_exception"},
				{"delete", "logs", 400, "illegal_argument_exception"}, {"create", "logs", 400, "mapper_parsing_exception"},
				{"create", "logs", 409, "version_conflict_engine_exception"}, {"create", "other", 201, ""},
			}
			if len(items) != len(want) {
				t.Fatalf("%d items: %v", len(items), items)
			}
			for i, w := range want {
				it := items[i].(map[string]any)[w.action].(map[string]any)
				typ := ""
				if e, ok := it["error"].(map[string]any); ok {
					typ, _ = e["type"].(string)
				}
				if it["status"] != w.status || it["_index"] != w.index || typ != w.typ {
					t.Errorf("item %d: %v, want %+v", i, it, w)
				}
				if w.status == 201 && (it["result"] != "created" || it["_id"] == "" || it["_version"] != 1.0) {
					t.Errorf("item %d: %v", i, it)
				}
			}
			if n := p.WaitCount("itemerr", 2, 20*time.Second); n != 2 {
				t.Errorf("%d lines indexed, want 2", n)
			}
			if n := p.Count(`good`); n != 2 {
				t.Errorf("the good items: %d lines, want 2", n)
			}
			if st := e.acc.Stats(); st.Rejected != 4 {
				t.Errorf("rejected %d, want 4", st.Rejected)
			}

			// Through the Go client: the refused items reach OnFailure, the
			// others OnSuccess.
			es := client(t, e.url+"/es", elasticsearch.Config{})
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			bi, err := esutil.NewBulkIndexer(esutil.BulkIndexerConfig{Client: es, Index: "logs", NumWorkers: 1, FlushInterval: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			var mu sync.Mutex
			got := map[string]int{}
			note := func(_ context.Context, it esutil.BulkIndexerItem, res esutil.BulkIndexerResponseItem) {
				mu.Lock()
				got[it.Action+" "+res.Error.Type] = res.Status
				mu.Unlock()
			}
			for _, a := range []string{"delete", "update", "index"} {
				body := `{"message":"itemerr via client"}`
				if a == "update" {
					body = `{"doc":{"message":"x"}}`
				}
				it := esutil.BulkIndexerItem{Action: a, DocumentID: "c1", OnSuccess: note,
					OnFailure: func(ctx context.Context, it esutil.BulkIndexerItem, res esutil.BulkIndexerResponseItem, err error) {
						note(ctx, it, res)
					}}
				if a != "delete" {
					it.Body = strings.NewReader(body)
				}
				if err := bi.Add(ctx, it); err != nil {
					t.Fatal(err)
				}
			}
			if err := bi.Close(ctx); err != nil {
				t.Fatal(err)
			}
			if got["delete illegal_argument_exception"] != 400 || got["update illegal_argument_exception"] != 400 || got["index "] != 201 || len(got) != 3 {
				t.Errorf("client saw %v", got)
			}

			// A malformed action line: the whole request is refused.
			code, _, m = bulkReq(t, e.url, "/es/_bulk", `{"index":{"_index":"x"}}`+"\n"+`{"message":"itemerr never"}`+"\n"+`{"index"`+"\n{}\n", nil)
			if code != 400 || m["status"] != 400.0 || m["error"].(map[string]any)["type"] != "illegal_argument_exception" {
				t.Errorf("malformed action: %d %v", code, m)
			}
			code, _, m = bulkReq(t, e.url, "/es/_bulk", "\n\n", nil)
			if code != 400 {
				t.Errorf("no action: %d %v", code, m)
			}
			time.Sleep(200 * time.Millisecond)
			if n := p.Count("itemerr"); n != 3 {
				t.Errorf("%d lines, want 3", n)
			}
		})
	}
}

func gz(t *testing.T, s string) string {
	t.Helper()
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	_, _ = io.WriteString(w, s)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// Gzip bodies are read (the Go client's CompressRequestBody, and by
// hand); a body over MaxBody, on the wire or once gunzipped, is answered
// 413 and nothing of it is taken.
func TestGzipAndBodyLimit(t *testing.T) {
	for _, mode := range ingesttest.Modes {
		t.Run(string(mode), func(t *testing.T) {
			p := ingesttest.Start(t, mode)
			e := serve(t, p, "bulk", esbulk.Config{MaxBody: 32 << 10}, nil, nil)
			es := client(t, e.url+"/es", elasticsearch.Config{CompressRequestBody: true})
			k := kind{word: "gzipped", index: "filebeat-8.11.0", action: "create", withID: true, doc: filebeat}
			send(t, es, []kind{k}, 100, "")
			checkOnce(t, p, k, 100)

			doc := func(word string, i int) string {
				b, _ := json.Marshal(filebeat(word, i))
				return `{"create":{"_index":"x"}}` + "\n" + string(b) + "\n"
			}
			code, _, m := bulkReq(t, e.url, "/es/_bulk", gz(t, doc("handgz", 1)), map[string]string{"Content-Encoding": "gzip"})
			if code != 200 || m["errors"] != false {
				t.Errorf("gzip by hand: %d %v", code, m)
			}
			code, _, m = bulkReq(t, e.url, "/es/_bulk", "not gzip", map[string]string{"Content-Encoding": "gzip"})
			if code != 400 || m["status"] != 400.0 {
				t.Errorf("bad gzip: %d %v", code, m)
			}
			code, _, _ = bulkReq(t, e.url, "/es/_bulk", doc("handbr", 1), map[string]string{"Content-Encoding": "br"})
			if code != 415 {
				t.Errorf("brotli: %d", code)
			}

			var big strings.Builder
			for i := 0; big.Len() <= 40<<10; i++ {
				big.WriteString(doc("toolarge", i))
			}
			code, _, m = bulkReq(t, e.url, "/es/_bulk", big.String(), nil)
			if code != 413 || m["status"] != 413.0 {
				t.Errorf("large body: %d %v", code, m)
			}
			// Small on the wire, large once gunzipped.
			z := gz(t, big.String())
			if len(z) > 32<<10 {
				t.Fatalf("the compressed body is %d bytes", len(z))
			}
			code, _, m = bulkReq(t, e.url, "/es/_bulk", z, map[string]string{"Content-Encoding": "gzip"})
			if code != 413 {
				t.Errorf("large gunzipped body: %d %v", code, m)
			}
			// Chunked (no Content-Length): the limit still holds.
			req, _ := http.NewRequest(http.MethodPost, e.url+"/es/_bulk", io.MultiReader(strings.NewReader(big.String())))
			req.ContentLength = -1
			if code, _, _ := do(t, req); code != 413 {
				t.Errorf("large chunked body: %d", code)
			}
			if n := p.WaitCount("handgz", 1, 20*time.Second); n != 1 {
				t.Errorf("handgz: %d", n)
			}
			time.Sleep(200 * time.Millisecond)
			if n := p.Count("toolarge"); n != 0 {
				t.Errorf("%d lines of refused bodies indexed", n)
			}
		})
	}
}

// holdSink holds the first batch until release is closed, then hands it
// on: the index slower than the client.
type holdSink struct {
	next    pipeline.Sink
	held    chan struct{}
	release chan struct{}
	once    sync.Once
}

func (s *holdSink) Publish(ctx context.Context, b *pipeline.Batch) error {
	first := false
	s.once.Do(func() { first = true })
	if first {
		close(s.held)
		select {
		case <-s.release:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return s.next.Publish(ctx, b)
}

// With more lines in flight than the acceptor takes, a request is answered
// 429 with Retry-After; the Go client told to retry 429 sends it again
// and it is indexed once the writer caught up.
func TestOverload(t *testing.T) {
	for _, mode := range ingesttest.Modes {
		t.Run(string(mode), func(t *testing.T) {
			p := ingesttest.Start(t, mode)
			sink := &holdSink{next: p.Sink, held: make(chan struct{}), release: make(chan struct{})}
			acc, err := ingest.New(ingest.Config{Name: "elasticsearch", Host: "logbox-test", Dir: t.TempDir(), Sink: sink, MaxInFlight: 20}, ingesttest.Quiet)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = acc.Close() })
			e := serve(t, p, "", esbulk.Config{}, acc, nil)

			var first strings.Builder
			for i := range 20 {
				b, _ := json.Marshal(filebeat("overfirst", i))
				first.WriteString(`{"create":{}}` + "\n" + string(b) + "\n")
			}
			firstDone := make(chan int, 1)
			go func() {
				code, _, _ := bulkReq(t, e.url, "/es/logs/_bulk", first.String(), nil)
				firstDone <- code
			}()
			select {
			case <-sink.held:
			case <-time.After(20 * time.Second):
				t.Fatal("the first request never reached the writer")
			}
			code, hdr, m := bulkReq(t, e.url, "/es/logs/_bulk", `{"create":{}}`+"\n"+`{"message":"overraw"}`+"\n", nil)
			if code != 429 || hdr.Get("Retry-After") == "" || m["error"].(map[string]any)["type"] != "es_rejected_execution_exception" {
				t.Fatalf("overloaded: %d %v %v", code, hdr, m)
			}

			// The Go client, told to retry 429, keeps sending until the
			// writer takes the first request.
			es := client(t, e.url+"/es", elasticsearch.Config{RetryOnStatus: []int{429, 502, 503, 504}, MaxRetries: 100,
				RetryBackoff: func(int) time.Duration { return 50 * time.Millisecond }})
			k := kind{word: "overclient", index: "logs", action: "create", doc: filebeat}
			sent := make(chan struct{})
			go func() {
				defer close(sent)
				send(t, es, []kind{k}, 60, "")
			}()
			deadline := time.Now().Add(20 * time.Second)
			refused := func() uint64 { st := e.acc.Stats(); return st.Overloaded + st.RequestsBusy }
			for refused() < 2 && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			if refused() < 2 {
				t.Fatal("the client was never refused")
			}
			close(sink.release)
			if code := <-firstDone; code != 200 {
				t.Errorf("first request: %d", code)
			}
			select {
			case <-sent:
			case <-time.After(60 * time.Second):
				t.Fatal("the client never got through")
			}
			checkOnce(t, p, k, 60)
			if n := p.WaitCount("overfirst", 20, 20*time.Second); n != 20 {
				t.Errorf("first request: %d lines", n)
			}
			if n := p.Count("overraw"); n != 0 {
				t.Errorf("a refused request was indexed")
			}
		})
	}
}

// The requests clients make before they send are answered as the Go
// client, Filebeat, Logstash and Vector expect; /api and the page are not
// shadowed.
func TestStartupRequests(t *testing.T) {
	for _, mode := range ingesttest.Modes {
		t.Run(string(mode), func(t *testing.T) {
			p := ingesttest.Start(t, mode)
			e := serve(t, p, "bulk", esbulk.Config{}, nil, nil)
			es := client(t, e.url+"/es", elasticsearch.Config{})

			res, err := es.Info()
			if err != nil {
				t.Fatal(err)
			}
			var info struct {
				ClusterName string `json:"cluster_name"`
				Version     struct {
					Number  string `json:"number"`
					Flavor  string `json:"build_flavor"`
					MinWire string `json:"minimum_wire_compatibility_version"`
				} `json:"version"`
				Tagline string `json:"tagline"`
			}
			decode(t, res.Body, &info)
			if res.StatusCode != 200 || info.Version.Number != "8.11.0" || info.Version.Flavor != "default" ||
				info.ClusterName != "logbox" || info.Tagline != "You Know, for Search" || info.Version.MinWire != "7.17.0" {
				t.Errorf("info %d %+v", res.StatusCode, info)
			}

			check := func(what string, res *esapi.Response, err error, want int) {
				t.Helper()
				if err != nil {
					t.Errorf("%s: %v", what, err)
				} else if res.StatusCode != want || res.Header.Get("X-Elastic-Product") != "Elasticsearch" {
					t.Errorf("%s: %d, want %d: %s", what, res.StatusCode, want, res)
				}
			}
			lic, err := es.License.Get()
			if err == nil {
				var l struct {
					License struct{ Status, Type, UID string } `json:"license"`
				}
				decode(t, lic.Body, &l)
				if l.License.Status != "active" || l.License.Type != "basic" || l.License.UID == "" {
					t.Errorf("license %+v", l)
				}
			}
			check("license", lic, err, 200)
			r1, err := es.Indices.ExistsIndexTemplate("filebeat-8.11.0")
			check("HEAD _index_template", r1, err, 200)
			r2, err := es.Indices.PutIndexTemplate("filebeat-8.11.0", strings.NewReader(`{"index_patterns":["filebeat-*"],"data_stream":{}}`))
			check("PUT _index_template", r2, err, 200)
			r3, err := es.ILM.GetLifecycle(es.ILM.GetLifecycle.WithPolicy("filebeat"))
			check("GET _ilm/policy", r3, err, 200)
			var pol map[string]any
			decode(t, r3.Body, &pol)
			if _, ok := pol["filebeat"]; !ok {
				t.Errorf("policy %v", pol)
			}
			r4, err := es.ILM.PutLifecycle("filebeat", es.ILM.PutLifecycle.WithBody(strings.NewReader(`{"policy":{"phases":{}}}`)))
			check("PUT _ilm/policy", r4, err, 200)
			r5, err := es.Indices.ExistsTemplate([]string{"filebeat"})
			check("HEAD _template", r5, err, 200)
			r6, err := es.Indices.GetDataStream(es.Indices.GetDataStream.WithName("filebeat-8.11.0"))
			check("GET _data_stream", r6, err, 200)
			r7, err := es.Indices.Create("logs")
			check("PUT index", r7, err, 200)
			r8, err := es.Indices.Exists([]string{"logs"})
			check("HEAD index", r8, err, 200)
			r9, err := es.Indices.Refresh()
			check("refresh", r9, err, 200)
			r10, err := es.Cluster.Health()
			check("health", r10, err, 200)
			r11, err := es.Nodes.Info(es.Nodes.Info.WithMetric("http"))
			check("nodes", r11, err, 200)
			r12, err := es.Search()
			check("search", r12, err, 400)
			r13, err := es.Ingest.PutPipeline("p1", strings.NewReader(`{"processors":[]}`))
			check("PUT pipeline", r13, err, 200)

			// What Beats ask by hand.
			for _, c := range []struct {
				method, path string
				want         int
			}{
				{"GET", "/es/_xpack", 200}, {"GET", "/es/_license?human=false", 200}, {"HEAD", "/es/", 200}, {"GET", "/es", 200},
				{"GET", "/es/_template/filebeat", 200}, {"GET", "/es/_index_template/filebeat-8.11.0", 200},
				{"GET", "/es/_nodes/_local/http", 200}, {"DELETE", "/es/logs", 400},
			} {
				req, _ := http.NewRequest(c.method, e.url+c.path, nil)
				if code, _, m := do(t, req); code != c.want {
					t.Errorf("%s %s: %d %v", c.method, c.path, code, m)
				}
			}
			req, _ := http.NewRequest("GET", e.url+"/es/_xpack", nil)
			if _, _, m := do(t, req); m["features"].(map[string]any)["ilm"].(map[string]any)["available"] != true {
				t.Errorf("xpack %v", m)
			}

			// The page and the API are where they were.
			for path, want := range map[string]string{"/": "the page", "/api/search": "the api", "/logs": "the page", "/app/_bulk.js": "the page"} {
				res, err := http.Get(e.url + path)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(res.Body)
				res.Body.Close()
				if string(b) != want || res.Header.Get("X-Elastic-Product") != "" {
					t.Errorf("GET %s: %q %v, want %q", path, b, res.Header, want)
				}
			}

			// POST /_bulk at the root too, as the issue names it.
			if code, _, m := bulkReq(t, e.url, "/_bulk", `{"index":{"_index":"rootidx"}}`+"\n"+`{"message":"rootbulk"}`+"\n", nil); code != 200 || m["errors"] != false {
				t.Errorf("POST /_bulk: %d %v", code, m)
			}
			if n := p.WaitCount("rootbulk", 1, 20*time.Second); n != 1 {
				t.Errorf("POST /_bulk: %d lines", n)
			}

			// An older version for older clients.
			e7 := serve(t, p, "elasticsearch7", esbulk.Config{Version: "7.17.9"}, nil, nil)
			res, err = client(t, e7.url+"/es", elasticsearch.Config{}).Info()
			if err != nil {
				t.Fatal(err)
			}
			decode(t, res.Body, &info)
			if info.Version.Number != "7.17.9" || info.Version.MinWire != "6.8.0" {
				t.Errorf("version 7: %+v", info)
			}
		})
	}
}

func decode(t *testing.T, r io.ReadCloser, v any) {
	t.Helper()
	defer r.Close()
	if err := json.NewDecoder(r).Decode(v); err != nil {
		t.Errorf("decode: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := (esbulk.Config{}).Validate(); err != nil {
		t.Error(err)
	}
	if err := (esbulk.Config{MaxBody: 1, Version: "8.15.1"}).Validate(); err != nil {
		t.Error(err)
	}
	err := (esbulk.Config{MaxBody: -1, Version: "8.x"}).Validate()
	if err == nil || !strings.Contains(err.Error(), "negative") || !strings.Contains(err.Error(), "8.x") {
		t.Errorf("%v", err)
	}
}
