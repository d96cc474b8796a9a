package loki

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/golang/snappy"
	"github.com/grafana/loki/pkg/push"
	"github.com/klauspost/compress/gzip"
	"github.com/prometheus/common/model"

	"github.com/logbox/logbox/appliance/ingest"
	"github.com/logbox/logbox/appliance/ingest/ingesttest"
	"github.com/logbox/logbox/appliance/pipeline"
)

// serve runs h on a real HTTP server on 127.0.0.1 and returns its base
// URL; it stops at the test's end.
func serve(t testing.TB, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String()
}

// router mounts a handler over acc the way the process does.
func router(acc *ingest.Acceptor, cfg Config) chi.Router {
	r := chi.NewRouter()
	New(acc, cfg, ingesttest.Quiet).Mount(r)
	return r
}

// dropper loses the answers of the next n requests after the handler
// ran: the push is taken, the client sees its connection close, as
// when logbox's answer or the client's patience runs out.
type dropper struct {
	n    atomic.Int32
	next http.Handler
	lost chan int // the codes the handler answered and the client never saw
}

func (d *dropper) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if d.n.Add(-1) < 0 {
		d.n.Add(1)
		d.next.ServeHTTP(w, r)
		return
	}
	rec := httptest.NewRecorder()
	d.next.ServeHTTP(rec, r)
	d.lost <- rec.Code
	panic(http.ErrAbortHandler)
}

// client sends pushes as Promtail's client does (clients/pkg/promtail/
// client: POST of the snappy-compressed protobuf, Content-Type
// application/x-protobuf, its User-Agent) and retries as it does: a
// 429, a 5xx or a connection error is retried with backoff, with the
// same body; another answer ends the batch.
type client struct {
	url      string
	hc       *http.Client
	attempts atomic.Int64
}

func newClient(url string) *client {
	return &client{url: url, hc: &http.Client{Timeout: 30 * time.Second}}
}

type request struct {
	body          []byte
	ctype, encode string
	chunked       bool // no Content-Length
}

func protoRequest(t testing.TB, req *push.PushRequest) request {
	t.Helper()
	b, err := req.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return request{body: snappy.Encode(nil, b), ctype: "application/x-protobuf"}
}

func gzipped(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// send posts req once and returns the status, headers and body.
func (c *client) send(ctx context.Context, req request) (int, http.Header, string, error) {
	c.attempts.Add(1)
	var body io.Reader = bytes.NewReader(req.body)
	if req.chunked {
		body = io.MultiReader(body) // hides the length: sent chunked
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url+PushPath, body)
	if err != nil {
		return 0, nil, "", err
	}
	if req.ctype != "" {
		hr.Header.Set("Content-Type", req.ctype)
	}
	if req.encode != "" {
		hr.Header.Set("Content-Encoding", req.encode)
	}
	hr.Header.Set("User-Agent", "promtail/3.5.1")
	resp, err := c.hc.Do(hr)
	if err != nil {
		return 0, nil, "", err
	}
	defer resp.Body.Close()
	msg, err := io.ReadAll(io.LimitReader(resp.Body, 1024))
	return resp.StatusCode, resp.Header, string(msg), err
}

// push sends req until it is answered with something not to retry
// (Promtail's sendBatch loop) and returns that status.
func (c *client) push(t testing.TB, req request) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	wait := 10 * time.Millisecond
	for {
		code, _, msg, err := c.send(ctx, req)
		if err == nil && code != http.StatusTooManyRequests && code/100 != 5 {
			if code != http.StatusNoContent {
				t.Logf("push answered %d: %s", code, msg)
			}
			return code
		}
		if ctx.Err() != nil {
			t.Fatalf("push not taken in time: %d %v", code, err)
		}
		time.Sleep(wait)
		wait = min(2*wait, time.Second)
	}
}

// expect records how many times each token's line should be held.
type expect map[string]int

func (e expect) total() int {
	n := 0
	for _, k := range e {
		n += k
	}
	return n
}

// check waits for the index to hold every expected line and checks each
// token is held as often as sent, no more, also a moment later.
func (e expect) check(t *testing.T, p *ingesttest.Pipe) {
	t.Helper()
	want := e.total()
	if n := p.WaitCount("lokitest", want, 30*time.Second); n != want {
		t.Errorf("index holds %d lines, want %d", n, want)
	}
	time.Sleep(300 * time.Millisecond) // a late double would show now
	if n := p.Count("lokitest"); n != want {
		t.Errorf("index holds %d lines a moment later, want %d", n, want)
	}
	for tok, k := range e {
		if n := p.Count(tok); n != k {
			t.Errorf("%s: indexed %d times, want %d", tok, n, k)
		}
	}
}

func hit(t *testing.T, p *ingesttest.Pipe, tok string) pipeline.Hit {
	t.Helper()
	hs := p.Hits(tok, 2)
	if len(hs) != 1 {
		t.Fatalf("%s: %d hits, want 1", tok, len(hs))
	}
	return hs[0]
}

func wantFields(t *testing.T, h pipeline.Hit, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if h.Fields[k] != v {
			t.Errorf("line %q: field %s = %q, want %q (fields %q)", h.Line, k, h.Fields[k], v, h.Fields)
		}
	}
}

// Pushes as Promtail, Alloy and other clients send them, in both
// delivery modes: protobuf with snappy, JSON, gzip JSON; out-of-order and
// identical timestamps; an entry twice in one push; retries of the same
// body (answered, and unanswered); and the same stream spelt otherwise.
// Every line is searchable as often as it was pushed, with its labels
// and metadata as fields.
func TestPush(t *testing.T) {
	for _, mode := range ingesttest.Modes {
		t.Run(string(mode), func(t *testing.T) {
			p := ingesttest.Start(t, mode)
			acc := p.Acceptor("loki", "")
			drop := &dropper{next: router(acc, Config{}), lost: make(chan int, 4)}
			c := newClient(serve(t, drop))
			base := time.Now().Add(-time.Hour).Truncate(time.Second)
			at := func(d time.Duration) time.Time { return base.Add(d) }
			want := expect{}
			entry := func(ts time.Time, tok string, meta ...string) push.Entry {
				e := push.Entry{Timestamp: ts, Line: "lokitest " + tok + " from a client"}
				for i := 0; i+1 < len(meta); i += 2 {
					e.StructuredMetadata = append(e.StructuredMetadata, push.LabelAdapter{Name: meta[i], Value: meta[i+1]})
				}
				return e
			}

			// 1. Protobuf as Promtail builds it.
			first := protoRequest(t, &push.PushRequest{Streams: []push.Stream{
				{
					Labels: model.LabelSet{"job": "app", "host": "web1", "detected_level": "warn"}.String(),
					Entries: []push.Entry{
						entry(at(3*time.Second), "p1a"),
						entry(at(1*time.Second), "p1b"), // out of order
						entry(at(2*time.Second), "p1c"),
						entry(at(5*time.Second), "p1d"), // same time, other lines
						entry(at(5*time.Second), "p1e"),
						entry(at(6*time.Second+7), "p1f", "trace_id", "abc123", "job", "not-the-label"),
						entry(at(7*time.Second), "p1twin"), // twice in one push: two lines
						entry(at(7*time.Second), "p1twin"),
					},
				},
				{
					Labels: " { path = \"C:\\\\logs\\\\a \\\"q\\\" ✓\" , job=`other`,hostname=\"db\\u00e91\", }",
					Entries: []push.Entry{
						entry(at(1*time.Second), "p1b"), // the same text and time in another stream
						entry(at(8*time.Second), "p1g"),
					},
				},
				{
					Labels:  `{job="lv", level="error"}`,
					Entries: []push.Entry{entry(at(8*time.Second), "lv1 INFO all is well")},
				},
				{
					Labels:  `{job="nohost"}`,
					Entries: []push.Entry{{Timestamp: at(9 * time.Second), Line: "lokitest p1h bad \xff utf8 and a \x00 NUL"}},
				},
			}})
			want.add("p1a", 1, "p1b", 2, "p1c", 1, "p1d", 1, "p1e", 1, "p1f", 1, "p1twin", 2, "p1g", 1, "p1h", 1, "lv1", 1)
			if code := c.push(t, first); code != http.StatusNoContent {
				t.Fatalf("first push: %d", code)
			}
			// The same body again: a client that did not see the answer.
			if code := c.push(t, first); code != http.StatusNoContent {
				t.Fatalf("first push again: %d", code)
			}

			// 2. The first stream spelt otherwise, one entry already sent
			// (a retry by its identity), one new.
			second := protoRequest(t, &push.PushRequest{Streams: []push.Stream{{
				Labels:  `{host="web1",detected_level="warn",   job="app"}`,
				Entries: []push.Entry{entry(at(1*time.Second), "p1b"), entry(at(10*time.Second), "p2a")},
			}}})
			want.add("p2a", 1)
			if code := c.push(t, second); code != http.StatusNoContent {
				t.Fatalf("second push: %d", code)
			}

			// 3. A push whose answer is lost: the client retries it.
			third := protoRequest(t, &push.PushRequest{Streams: []push.Stream{{
				Labels:  `{job="app", host="web1"}`,
				Entries: []push.Entry{entry(at(11*time.Second), "p3a"), entry(at(11*time.Second), "p3b")},
			}}})
			want.add("p3a", 1, "p3b", 1)
			drop.n.Store(1)
			before := c.attempts.Load()
			if code := c.push(t, third); code != http.StatusNoContent {
				t.Fatalf("third push: %d", code)
			}
			if got := <-drop.lost; got != http.StatusNoContent {
				t.Fatalf("the lost answer was %d, want 204", got)
			}
			if n := c.attempts.Load() - before; n != 2 {
				t.Fatalf("third push took %d attempts, want 2 (one answer lost)", n)
			}

			// 4. JSON, timestamps as strings and as a number, metadata.
			ns := func(d time.Duration) string { return strconv.FormatInt(at(d).UnixNano(), 10) }
			js := request{ctype: "application/json", body: []byte(`{"streams":[` +
				`{"stream":{"job":"json","host":"web2"},"values":[` +
				`["` + ns(12*time.Second) + `","lokitest j1a"],` +
				`["` + ns(12*time.Second+1) + `","lokitest j1b",{"trace_id":"t9","pod":"api-1"}],` +
				`[` + ns(13*time.Second) + `,"lokitest j1c"]]},` +
				`{"stream":{"job":"json","host":"web3"},"values":[["` + ns(12*time.Second) + `","lokitest j1a"]]}]}`)}
			want.add("j1a", 2, "j1b", 1, "j1c", 1)
			for range 2 {
				if code := c.push(t, js); code != http.StatusNoContent {
					t.Fatalf("JSON push: %d", code)
				}
			}

			// 5. gzip JSON (Content-Type with parameters, as some clients send).
			gz := request{ctype: "application/json; charset=utf-8", encode: "gzip", body: gzipped(t, []byte(
				`{"streams":[{"stream":{"job":"gz"},"values":[["`+ns(14*time.Second)+`","lokitest g1a"],["`+ns(14*time.Second)+`","lokitest g1b"]]}]}`))}
			want.add("g1a", 1, "g1b", 1)
			for range 2 {
				if code := c.push(t, gz); code != http.StatusNoContent {
					t.Fatalf("gzip JSON push: %d", code)
				}
			}

			want.check(t, p)

			h := hit(t, p, "p1f")
			if h.Host != "web1" || h.Source != Source || !h.TS.Equal(at(6*time.Second+7)) {
				t.Errorf("p1f: host %q source %q ts %v, want web1, loki, %v", h.Host, h.Source, h.TS, at(6*time.Second+7))
			}
			wantFields(t, h, map[string]string{"job": "app", "host": "web1", "detected_level": "warn", "level": "warn", "trace_id": "abc123"})
			if h.Level != "WARN" {
				t.Errorf("p1f: level %q, want WARN (its detected_level label)", h.Level)
			}
			if h := hit(t, p, "lv1"); h.Level != "ERROR" {
				t.Errorf("lv1: level %q, want ERROR (its level label, not the INFO in its text)", h.Level)
			}
			h = hit(t, p, "p1g")
			if h.Host != "dbé1" {
				t.Errorf("p1g: host %q, want the hostname label", h.Host)
			}
			wantFields(t, h, map[string]string{"job": "other", "path": `C:\logs\a "q" ✓`, "hostname": "dbé1"})
			h = hit(t, p, "p1h")
			if h.Host != "logbox-test" || !slices.Contains(h.Flags, pipeline.FlagInvalidUTF8) || !slices.Contains(h.Flags, pipeline.FlagNUL) {
				t.Errorf("p1h: host %q flags %q, want the acceptor's host and both flags", h.Host, h.Flags)
			}
			h = hit(t, p, "j1b")
			if h.Host != "web2" || !h.TS.Equal(at(12*time.Second+1)) {
				t.Errorf("j1b: host %q ts %v", h.Host, h.TS)
			}
			wantFields(t, h, map[string]string{"job": "json", "trace_id": "t9", "pod": "api-1"})
			// Labels answer queries as fields: job="app" streams carry
			// p1a–p1f, p1b, the two twins, p2a, p3a and p3b.
			if n := p.Count(`+job:app +lokitest`); n != 11 {
				t.Errorf("job:app counts %d lines, want 11", n)
			}
			if n := p.Count(`trace_id:abc123`); n != 1 {
				t.Errorf("trace_id:abc123 counts %d lines, want 1", n)
			}
			st := acc.Stats()
			if st.Retried == 0 || st.InFlight != 0 || st.Rejected != 0 {
				t.Errorf("stats %+v", st)
			}

			t.Run("refused", func(t *testing.T) { refused(t, p, acc, c) })
		})
	}
}

func (e expect) add(kv ...any) {
	for i := 0; i+1 < len(kv); i += 2 {
		e[kv[i].(string)] += kv[i+1].(int)
	}
}

// refused: pushes that are malformed, too large or of an unknown type
// are answered 400, 413 or 415 with a message, and nothing of them is
// indexed, not even their good streams.
func refused(t *testing.T, p *ingesttest.Pipe, acc *ingest.Acceptor, c *client) {
	small := newClient(serve(t, router(acc, Config{MaxBody: 1024})))
	now := time.Now().Add(-time.Minute)
	good := push.Stream{Labels: `{job="refused"}`, Entries: []push.Entry{{Timestamp: now, Line: "lokitest refused good"}}}
	rawProto := func(req *push.PushRequest) []byte {
		b, err := req.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	big := strings.Repeat("lokitest refused long ", 500) // 11 KB, compresses well
	bigJSON := `{"streams":[{"stream":{"a":"b"},"values":[["1","` + big + `"]]}]}`
	cases := []struct {
		name string
		c    *client
		req  request
		code int
		msg  string
	}{
		{"not snappy", c, request{ctype: "application/x-protobuf", body: []byte("\xff\xff\xff\xff\xff\xff")}, 400, "snappy"},
		{"not a PushRequest", c, request{ctype: "application/x-protobuf", body: snappy.Encode(nil, []byte("\x0a\xff\xff\xff\xff\x0f"))}, 400, "protobuf"},
		{"raw protobuf, no snappy", c, request{ctype: "application/x-protobuf", body: rawProto(&push.PushRequest{Streams: []push.Stream{good}})}, 400, ""},
		{"bad labels", c, protoRequest(t, &push.PushRequest{Streams: []push.Stream{good,
			{Labels: `{job=refused}`, Entries: good.Entries}}}), 400, "labels"},
		{"no labels", c, protoRequest(t, &push.PushRequest{Streams: []push.Stream{good,
			{Labels: `{}`, Entries: good.Entries}}}), 400, "at least one label"},
		{"no timestamp", c, protoRequest(t, &push.PushRequest{Streams: []push.Stream{good,
			{Labels: `{job="x"}`, Entries: []push.Entry{{Line: "lokitest refused nots"}}}}}), 400, "timestamp"},
		{"not JSON", c, request{ctype: "application/json", body: []byte(`{"streams":[`)}, 400, "JSON"},
		{"JSON bad timestamp", c, request{ctype: "application/json", body: []byte(`{"streams":[{"stream":{"a":"b"},"values":[["yesterday","lokitest refused"]]}]}`)}, 400, "timestamp"},
		{"JSON value too short", c, request{ctype: "application/json", body: []byte(`{"streams":[{"stream":{"a":"b"},"values":[["1"]]}]}`)}, 400, "value"},
		{"JSON no labels", c, request{ctype: "application/json", body: []byte(`{"streams":[{"stream":{},"values":[["1","lokitest refused"]]}]}`)}, 400, "label"},
		{"not gzip", c, request{ctype: "application/json", encode: "gzip", body: []byte(`{"streams":[]}`)}, 400, "gzip"},
		{"text", c, request{ctype: "text/plain", body: []byte("lokitest refused")}, 415, "Content-Type"},
		{"brotli", c, request{ctype: "application/json", encode: "br", body: []byte(`{}`)}, 415, "Content-Encoding"},
		{"body over the limit", small, request{ctype: "application/json", body: []byte(bigJSON)}, 413, "limit"},
		{"chunked body over the limit", small, request{ctype: "application/json", body: []byte(bigJSON), chunked: true}, 413, "limit"},
		{"snappy-decoded over the limit", small, protoRequest(t, &push.PushRequest{Streams: []push.Stream{
			{Labels: `{a="b"}`, Entries: []push.Entry{{Timestamp: now, Line: big}}}}}), 413, "snappy-decoded"},
		{"gunzipped over the limit", small, request{ctype: "application/json", encode: "gzip", body: gzipped(t, []byte(bigJSON))}, 413, "decompressed"},
	}
	before := acc.Stats().Rejected
	for _, tc := range cases {
		if over := len(tc.req.body) > 1024; tc.c == small && over != strings.Contains(tc.name, "body over") {
			t.Fatalf("%s: a body of %d bytes does not test what it says", tc.name, len(tc.req.body))
		}
		code, hdr, msg, err := tc.c.send(context.Background(), tc.req)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if code != tc.code || !strings.Contains(msg, tc.msg) || !strings.HasPrefix(hdr.Get("Content-Type"), "text/plain") {
			t.Errorf("%s: answered %d %q (%s), want %d with %q", tc.name, code, msg, hdr.Get("Content-Type"), tc.code, tc.msg)
		}
	}
	if got := acc.Stats().Rejected - before; got != uint64(len(cases)) {
		t.Errorf("rejected counts %d, want %d", got, len(cases))
	}
	// A push that does fit the small limit is taken there.
	if code := small.push(t, protoRequest(t, &push.PushRequest{Streams: []push.Stream{{Labels: `{job="small"}`,
		Entries: []push.Entry{{Timestamp: now, Line: "lokitest smallok"}}}}})); code != http.StatusNoContent {
		t.Errorf("a small push under a small limit: %d", code)
	}
	if n := p.WaitCount("smallok", 1, 20*time.Second); n != 1 {
		t.Errorf("small push indexed %d times", n)
	}
	time.Sleep(200 * time.Millisecond)
	if n := p.Count("refused"); n != 0 {
		t.Errorf("%d lines of refused pushes were indexed", n)
	}
	// Only POST on the push path; /ready answers as Loki's.
	resp, err := http.Get(c.url + PushPath)
	if err == nil {
		resp.Body.Close()
	}
	if err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET %s: %v %v", PushPath, resp.StatusCode, err)
	}
	resp, err = http.Get(c.url + "/ready")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || strings.TrimSpace(string(b)) != "ready" {
		t.Errorf("GET /ready: %d %q", resp.StatusCode, b)
	}
}

// blockSink takes batches and hands them to the test, which acks or
// nacks them when it likes.
type blockSink struct{ got chan *pipeline.Batch }

func (s blockSink) Publish(ctx context.Context, b *pipeline.Batch) error {
	select {
	case s.got <- b:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// A push is answered only once its batch is acked; over the in-flight
// bound a push is answered 429 with Retry-After at once; a batch the
// writer gives up is answered 503 with Retry-After.
func TestOverloadAndNack(t *testing.T) {
	sink := blockSink{got: make(chan *pipeline.Batch, 4)}
	acc, err := ingest.New(ingest.Config{Name: "loki", Host: "h", Sink: sink, MaxInFlight: 10}, ingesttest.Quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer acc.Close()
	c := newClient(serve(t, router(acc, Config{})))
	mk := func(from, n int) request {
		s := push.Stream{Labels: `{job="o"}`}
		for i := range n {
			s.Entries = append(s.Entries, push.Entry{Timestamp: time.Now(), Line: fmt.Sprint("line ", from+i)})
		}
		return protoRequest(t, &push.PushRequest{Streams: []push.Stream{s}})
	}
	type answer struct {
		code int
		hdr  http.Header
		err  error
	}
	send := func(req request) chan answer {
		ch := make(chan answer, 1)
		go func() {
			code, hdr, _, err := c.send(context.Background(), req)
			ch <- answer{code, hdr, err}
		}()
		return ch
	}
	first := send(mk(0, 6))
	b := <-sink.got
	select {
	case a := <-first:
		t.Fatalf("answered %d before the batch was acked", a.code)
	case <-time.After(200 * time.Millisecond):
	}
	code, hdr, _, err := c.send(context.Background(), mk(100, 6))
	if err != nil || code != http.StatusTooManyRequests || hdr.Get("Retry-After") == "" {
		t.Fatalf("over the bound: %d Retry-After %q %v, want 429 with Retry-After", code, hdr.Get("Retry-After"), err)
	}
	b.Ack()
	if a := <-first; a.err != nil || a.code != http.StatusNoContent {
		t.Fatalf("acked push: %d %v", a.code, a.err)
	}
	second := send(mk(200, 6))
	b = <-sink.got
	b.Nack(errors.New("disk gone"))
	if a := <-second; a.err != nil || a.code != http.StatusServiceUnavailable || a.hdr.Get("Retry-After") == "" {
		t.Fatalf("nacked push: %d Retry-After %q %v, want 503 with Retry-After", a.code, a.hdr.Get("Retry-After"), a.err)
	}
	st := acc.Stats()
	if st.Acked != 6 || st.Overloaded != 6 || st.Failed != 6 || st.InFlight != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// Pushes being read hold the memory budget (8 × MaxBody): a client that
// opens more at once than it allows is answered 429 with Retry-After at
// once, and the budget comes back when the pushes end, however they end.
func TestReadBudget(t *testing.T) {
	sink := blockSink{got: make(chan *pipeline.Batch, 4)}
	go func() {
		for b := range sink.got {
			b.Ack()
		}
	}()
	defer close(sink.got)
	acc, err := ingest.New(ingest.Config{Name: "loki", Host: "h", Sink: sink}, ingesttest.Quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer acc.Close()
	const maxBody = 1024
	h := New(acc, Config{MaxBody: maxBody}, ingesttest.Quiet)
	r := chi.NewRouter()
	h.Mount(r)
	url := serve(t, r)
	c := newClient(url)

	// Eight pushes without a length, their bodies never finished: each
	// holds MaxBody.
	var writers []*io.PipeWriter
	errc := make(chan error, 8)
	for range 8 {
		pr, pw := io.Pipe()
		writers = append(writers, pw)
		go func() {
			req, _ := http.NewRequest(http.MethodPost, url+PushPath, pr)
			req.Header.Set("Content-Type", "application/x-protobuf")
			resp, err := http.DefaultClient.Do(req)
			if err == nil {
				resp.Body.Close()
			}
			errc <- err
		}()
		if _, err := pw.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for h.mem.held.Load() != 8*maxBody {
		if time.Now().After(deadline) {
			t.Fatalf("pushes being read hold %d bytes, want %d", h.mem.held.Load(), 8*maxBody)
		}
		time.Sleep(10 * time.Millisecond)
	}
	small := protoRequest(t, &push.PushRequest{Streams: []push.Stream{{Labels: `{a="b"}`,
		Entries: []push.Entry{{Timestamp: time.Now(), Line: "fits"}}}}})
	code, hdr, msg, err := c.send(context.Background(), small)
	if err != nil || code != http.StatusTooManyRequests || hdr.Get("Retry-After") == "" {
		t.Fatalf("a push over the read budget: %d %q Retry-After %q %v", code, msg, hdr.Get("Retry-After"), err)
	}
	for _, pw := range writers {
		pw.CloseWithError(errors.New("client gone"))
	}
	for range writers {
		<-errc
	}
	for h.mem.held.Load() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d bytes still held after the pushes ended", h.mem.held.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if code, _, msg, err := c.send(context.Background(), small); err != nil || code != http.StatusNoContent {
		t.Fatalf("a push once the budget is back: %d %q %v", code, msg, err)
	}
	if h.mem.held.Load() != 0 {
		t.Fatalf("a finished push left %d bytes held", h.mem.held.Load())
	}
}
