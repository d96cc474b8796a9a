package otlp

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploghttp"
	collogpb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	statuspb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/logbox/logbox/appliance/ingest"
	"github.com/logbox/logbox/appliance/ingest/ingesttest"
	"github.com/logbox/logbox/appliance/pipeline"
)

func str(s string) *commonpb.AnyValue {
	return &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: s}}
}

func attr(k string, v *commonpb.AnyValue) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: v}
}

// request wraps records in one resource (service.name=svc, host.name=host)
// and one scope.
func request(svc, host string, recs ...*logspb.LogRecord) *collogpb.ExportLogsServiceRequest {
	return &collogpb.ExportLogsServiceRequest{ResourceLogs: []*logspb.ResourceLogs{{
		Resource:  &resourcepb.Resource{Attributes: []*commonpb.KeyValue{attr("service.name", str(svc)), attr("host.name", str(host))}},
		ScopeLogs: []*logspb.ScopeLogs{{Scope: &commonpb.InstrumentationScope{Name: "test/scope", Version: "0.1"}, LogRecords: recs}},
	}}}
}

// post sends body to base's /v1/logs and returns the answer and its body.
func post(t *testing.T, base, contentType, encoding string, body io.Reader) (*http.Response, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+Path, body)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if encoding != "" {
		req.Header.Set("Content-Encoding", encoding)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func gz(t testing.TB, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	w := gzip.NewWriter(&out)
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// okResponse checks a 200 answer in the request's encoding and returns
// its partial success.
func okResponse(t *testing.T, resp *http.Response, body []byte, json bool) *collogpb.ExportLogsPartialSuccess {
	t.Helper()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	var out collogpb.ExportLogsServiceResponse
	var err error
	if json {
		if ct := resp.Header.Get("Content-Type"); ct != contentJSON {
			t.Fatalf("answer Content-Type %q, want %s", ct, contentJSON)
		}
		err = protojson.Unmarshal(body, &out)
	} else {
		if ct := resp.Header.Get("Content-Type"); ct != contentProto {
			t.Fatalf("answer Content-Type %q, want %s", ct, contentProto)
		}
		err = proto.Unmarshal(body, &out)
	}
	if err != nil {
		t.Fatalf("answer %q: %v", body, err)
	}
	return out.PartialSuccess
}

// statusResponse checks an error answer: code, a google.rpc.Status body
// in the given encoding, and its message containing want.
func statusResponse(t *testing.T, resp *http.Response, body []byte, code int, json bool, want string) *statuspb.Status {
	t.Helper()
	if resp.StatusCode != code {
		t.Fatalf("status %d (%s), want %d", resp.StatusCode, body, code)
	}
	var st statuspb.Status
	var err error
	if json {
		err = protojson.Unmarshal(body, &st)
	} else {
		err = proto.Unmarshal(body, &st)
	}
	if err != nil {
		t.Fatalf("answer %q is not a google.rpc.Status: %v", body, err)
	}
	if st.Code == 0 || !strings.Contains(st.Message, want) {
		t.Fatalf("status %+v, want a code and a message with %q", &st, want)
	}
	return &st
}

// JSON requests as protojson writes them (lowerCamelCase, and with proto
// names), plain and gzip, and the OTLP repository's JSON example (int64
// as numbers, hex ids): the fields come out as from protobuf.
func TestJSON(t *testing.T) {
	sample, err := os.ReadFile("testdata/logs.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range ingesttest.Modes {
		t.Run(string(mode), func(t *testing.T) {
			p := ingesttest.Start(t, mode)
			acc := p.Acceptor("otlp", "")
			base := serve(t, New(acc, Config{}, ingesttest.Quiet), nil)
			ts := time.Now().Add(-30 * time.Minute).Truncate(time.Microsecond)
			mk := func(tag string) *collogpb.ExportLogsServiceRequest {
				return request("jsonsvc", "json-host", &logspb.LogRecord{
					TimeUnixNano:   uint64(ts.UnixNano()),
					SeverityNumber: logspb.SeverityNumber_SEVERITY_NUMBER_ERROR2,
					Body:           str("json record " + tag),
					Attributes: []*commonpb.KeyValue{
						attr("tag", str(tag)),
						attr("big", &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: 1 << 60}}),
					},
					TraceId: []byte{0x5b, 0x8e, 0xff, 0xf7, 0x98, 0x03, 0x81, 0x03, 0xd2, 0x69, 0xb6, 0x33, 0x81, 0x3f, 0xc6, 0x0c},
					SpanId:  []byte{0xee, 0xe1, 0x9b, 0x7e, 0xc3, 0xc1, 0xb1, 0x74},
				})
			}
			cases := []struct {
				tag  string
				opts protojson.MarshalOptions
				gzip bool
			}{
				{"camel", protojson.MarshalOptions{}, false},
				{"snake", protojson.MarshalOptions{UseProtoNames: true, UseEnumNumbers: true}, false},
				{"gzipped", protojson.MarshalOptions{}, true},
			}
			for _, c := range cases {
				body, err := c.opts.Marshal(mk(c.tag))
				if err != nil {
					t.Fatal(err)
				}
				enc := ""
				if c.gzip {
					body, enc = gz(t, body), "gzip"
				}
				resp, rb := post(t, base, "application/json; charset=utf-8", enc, bytes.NewReader(body))
				if ps := okResponse(t, resp, rb, true); ps != nil {
					t.Fatalf("%s: partial success %v", c.tag, ps)
				}
				if string(rb) != "{}" {
					t.Fatalf("%s: answer %s, want {}", c.tag, rb)
				}
			}
			// The example hex ids are the same bytes mk sends, so the
			// three protojson requests and the example agree on them.
			resp, rb := post(t, base, "application/json", "", bytes.NewReader(sample))
			okResponse(t, resp, rb, true)

			for _, c := range cases {
				if n := p.WaitCount(`"json record `+c.tag+`"`, 1, 20*time.Second); n != 1 {
					t.Fatalf("%s: %d lines, want 1", c.tag, n)
				}
				h := p.Hits(`"json record `+c.tag+`"`, 2)[0]
				want := map[string]string{"service.name": "jsonsvc", "host.name": "json-host", "scope.name": "test/scope", "scope.version": "0.1",
					"tag": c.tag, "big": "1152921504606846976", "level": "error",
					"trace_id": "5b8efff798038103d269b633813fc60c", "span_id": "eee19b7ec3c1b174"}
				for k, v := range want {
					if h.Fields[k] != v {
						t.Fatalf("%s: field %s = %q, want %q (%v)", c.tag, k, h.Fields[k], v, h.Fields)
					}
				}
				if !h.TS.Equal(ts) || h.Host != "json-host" {
					t.Fatalf("%s: ts %v host %q", c.tag, h.TS, h.Host)
				}
			}
			if n := p.WaitCount(`"Example log record"`, 1, 20*time.Second); n != 1 {
				t.Fatalf("example: %d lines, want 1", n)
			}
			h := p.Hits(`"Example log record"`, 2)[0]
			want := map[string]string{
				"service.name": "my.service", "scope.name": "my.library", "scope.version": "1.0.0",
				"my.scope.attribute": "some scope attribute", "string.attribute": "some string",
				"boolean.attribute": "true", "int.attribute": "10", "double.attribute": "637.704",
				"array.attribute": `["many","values"]`, "map.attribute.some.map.key": "some value",
				"level": "information", "trace_id": "5b8efff798038103d269b633813fc60c", "span_id": "eee19b7ec3c1b174",
			}
			for k, v := range want {
				if h.Fields[k] != v {
					t.Fatalf("example: field %s = %q, want %q (%v)", k, h.Fields[k], v, h.Fields)
				}
			}
			if len(h.Fields) != len(want) {
				t.Fatalf("example: fields %v, want %v", h.Fields, want)
			}
			if !h.TS.Equal(time.Unix(0, 1544712660300000000)) || h.Host != "logbox-test" || h.Source != Source {
				t.Fatalf("example: ts %v host %q source %q", h.TS, h.Host, h.Source)
			}
			// The same example again is a retry, not a second line.
			resp, rb = post(t, base, "application/json", "", bytes.NewReader(sample))
			okResponse(t, resp, rb, true)
			time.Sleep(300 * time.Millisecond)
			if n := p.Count(`"Example log record"`); n != 1 {
				t.Fatalf("example sent twice: %d lines, want 1", n)
			}
			if st := acc.Stats(); st.Retried != 1 || st.Acked != 5 {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

// Records with nothing to index are refused in partial_success, the
// others taken, in either encoding.
func TestPartialSuccess(t *testing.T) {
	for _, mode := range ingesttest.Modes {
		t.Run(string(mode), func(t *testing.T) {
			p := ingesttest.Start(t, mode)
			acc := p.Acceptor("otlp", "")
			base := serve(t, New(acc, Config{}, ingesttest.Quiet), nil)
			now := uint64(time.Now().Add(-time.Minute).UnixNano())
			for _, json := range []bool{false, true} {
				enc := fmt.Sprint("json", json)
				now := now
				if json {
					now += 100
				}
				req := request("partial", "ph", []*logspb.LogRecord{
					{TimeUnixNano: now, Body: str("partial keep one " + enc), Attributes: []*commonpb.KeyValue{attr("batch", str(enc))}},
					{TimeUnixNano: now, SeverityNumber: logspb.SeverityNumber_SEVERITY_NUMBER_INFO},    // nothing: refused
					{TimeUnixNano: now + 1, Attributes: []*commonpb.KeyValue{attr("batch", str(enc))}}, // attributes only
					{TimeUnixNano: now + 2, Body: str("")},                                             // nothing: refused
					{TimeUnixNano: now + 3, EventName: "user.login", Attributes: nil, Body: nil},       // an event
					{}, // a record the client left empty: refused
				}...)
				var body []byte
				var err error
				ct := contentProto
				if json {
					ct = contentJSON
					body, err = protojson.Marshal(req)
				} else {
					body, err = proto.Marshal(req)
				}
				if err != nil {
					t.Fatal(err)
				}
				resp, rb := post(t, base, ct, "", bytes.NewReader(body))
				ps := okResponse(t, resp, rb, json)
				if ps.GetRejectedLogRecords() != 3 || !strings.Contains(ps.GetErrorMessage(), "nothing to index") {
					t.Fatalf("%s: partial success %v, want 3 rejected", enc, ps)
				}
				if n := p.WaitCount("batch:"+enc, 2, 20*time.Second); n != 2 {
					t.Fatalf("%s: %d lines with batch, want 2", enc, n)
				}
			}
			if n := p.WaitCount("event.name:\"user.login\"", 2, 20*time.Second); n != 2 {
				t.Fatalf("%d events, want 2", n)
			}
			if n := p.Count("service.name:partial"); n != 6 {
				t.Fatalf("%d lines, want 6", n)
			}
			if st := acc.Stats(); st.Acked != 6 || st.Rejected != 6 {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

// Bodies the input cannot take: 415 for other media types and
// encodings, 400 for undecodable bodies, 413 over the limit (a gzip bomb
// included); each with a google.rpc.Status, nothing indexed, counted.
func TestRefused(t *testing.T) {
	p := ingesttest.Start(t, ingesttest.Direct)
	acc := p.Acceptor("otlp", "")
	const limit = 64 << 10
	base := serve(t, New(acc, Config{MaxBody: limit}, ingesttest.Quiet), nil)
	good, err := proto.Marshal(request("refused", "rh", &logspb.LogRecord{Body: str("refusedline must not be indexed")}))
	if err != nil {
		t.Fatal(err)
	}
	goodJSON, err := protojson.Marshal(request("refused", "rh", &logspb.LogRecord{Body: str("refusedline must not be indexed")}))
	if err != nil {
		t.Fatal(err)
	}
	big := make([]byte, 0, limit+100)
	for len(big) <= limit {
		big = append(big, good...)
	}
	bomb := gz(t, bytes.Repeat([]byte{0}, 4<<20))
	if len(bomb) > limit {
		t.Fatalf("bomb of %d bytes", len(bomb))
	}
	// A body string with invalid UTF-8, which proto.Marshal would refuse
	// to write: ResourceLogs(1) > ScopeLogs(2) > LogRecords(2) > Body(5)
	// > string_value(1).
	nest := func(num protowire.Number, inner []byte) []byte {
		return protowire.AppendBytes(protowire.AppendTag(nil, num, protowire.BytesType), inner)
	}
	badUTF8 := nest(1, nest(2, nest(2, nest(5, nest(1, []byte("bad \xff utf8"))))))
	chunked := func(b []byte) io.Reader { return io.MultiReader(bytes.NewReader(b)) } // no length: sent chunked
	cases := []struct {
		name     string
		ct, enc  string
		body     io.Reader
		code     int
		json     bool
		contains string
	}{
		{"text/plain", "text/plain", "", bytes.NewReader(good), 415, true, "Content-Type"},
		{"no content type", "", "", bytes.NewReader(good), 415, true, "Content-Type"},
		{"brotli", contentProto, "br", bytes.NewReader(good), 415, false, "Content-Encoding"},
		{"bad protobuf", contentProto, "", bytes.NewReader([]byte{0x0a, 0xff, 0xff, 0xff, 0x0f, 1}), 400, false, "protobuf"},
		{"invalid UTF-8", contentProto, "", bytes.NewReader(badUTF8), 400, false, "UTF-8"},
		{"bad JSON", contentJSON, "", strings.NewReader(`{"resourceLogs":[{`), 400, true, "JSON"},
		{"bad trace id", contentJSON, "", strings.NewReader(`{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":{"stringValue":"x"},"traceId":"0011"}]}]}]}`), 400, true, "traceId"},
		{"bad gzip", contentProto, "gzip", bytes.NewReader(good), 400, false, "gzip"},
		{"truncated gzip", contentJSON, "gzip", bytes.NewReader(gz(t, goodJSON)[:30]), 400, true, "gzip"},
		{"too large", contentProto, "", bytes.NewReader(big), 413, false, "larger than"},
		{"too large chunked", contentProto, "", chunked(big), 413, false, "larger than"},
		{"gzip bomb", contentProto, "gzip", chunked(bomb), 413, false, "larger than"},
		{"gzip bomb json", contentJSON, "gzip", bytes.NewReader(bomb), 413, true, "larger than"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, rb := post(t, base, c.ct, c.enc, c.body)
			statusResponse(t, resp, rb, c.code, c.json, c.contains)
		})
	}
	if st := acc.Stats(); st.Rejected != uint64(len(cases)) || st.Acked != 0 {
		t.Fatalf("stats %+v, want %d rejected", st, len(cases))
	}
	// Not POST: chi's 405.
	resp, err := http.Get(base + Path)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET: %d", resp.StatusCode)
	}
	// A good body just under the limit, gzip, still goes.
	resp, rb := post(t, base, contentProto, "gzip", bytes.NewReader(gz(t, good)))
	okResponse(t, resp, rb, false)
	if n := p.WaitCount("refusedline", 1, 10*time.Second); n != 1 {
		t.Fatalf("%d lines, want 1", n)
	}
}

// gateSink hands batches to a real sink once open is closed.
type gateSink struct {
	next pipeline.Sink
	open chan struct{}
}

func (s gateSink) Publish(ctx context.Context, b *pipeline.Batch) error {
	select {
	case <-s.open:
	case <-ctx.Done():
		return ctx.Err()
	}
	return s.next.Publish(ctx, b)
}

// Overload: while the in-flight bound is taken, a request is answered
// 429 with Retry-After and a Status, nothing of it taken; the SDK's
// exporter waits as told and sends again, and every record is indexed
// once. A closed acceptor answers 503 with Retry-After.
func TestOverload(t *testing.T) {
	for _, mode := range ingesttest.Modes {
		t.Run(string(mode), func(t *testing.T) {
			p := ingesttest.Start(t, mode)
			gate := gateSink{next: p.Sink, open: make(chan struct{})}
			acc, err := ingest.New(ingest.Config{Name: "otlp", Host: "logbox-test", Dir: t.TempDir(), Sink: gate, MaxInFlight: 20}, ingesttest.Quiet)
			if err != nil {
				t.Fatal(err)
			}
			defer acc.Close()
			var mu sync.Mutex
			codes := map[int]int{}
			base := serve(t, New(acc, Config{}, ingesttest.Quiet), func(next http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					rec := &codeWriter{ResponseWriter: w}
					next.ServeHTTP(rec, r)
					mu.Lock()
					codes[rec.code]++
					mu.Unlock()
				})
			})
			now := uint64(time.Now().Add(-time.Minute).UnixNano())
			var recs []*logspb.LogRecord
			for i := range 15 {
				recs = append(recs, &logspb.LogRecord{TimeUnixNano: now + uint64(i), Body: str(fmt.Sprintf("holding line %d", i))})
			}
			holding, _ := proto.Marshal(request("hold", "hh", recs...))
			done := make(chan int, 1)
			go func() {
				resp, _ := post(t, base, contentProto, "", bytes.NewReader(holding))
				done <- resp.StatusCode
			}()
			// Wait until those 15 lines hold the budget.
			for deadline := time.Now().Add(10 * time.Second); acc.Stats().InFlight != 15; {
				if time.Now().After(deadline) {
					t.Fatalf("in flight %d", acc.Stats().InFlight)
				}
				time.Sleep(5 * time.Millisecond)
			}
			more, _ := proto.Marshal(request("hold", "hh", &logspb.LogRecord{TimeUnixNano: now, Body: str("overloaded line")}, &logspb.LogRecord{TimeUnixNano: now, Body: str("overloaded line two")}, &logspb.LogRecord{TimeUnixNano: now, Body: str("overloaded line three")}, &logspb.LogRecord{TimeUnixNano: now, Body: str("overloaded line four")}, &logspb.LogRecord{TimeUnixNano: now, Body: str("overloaded line five")}, &logspb.LogRecord{TimeUnixNano: now, Body: str("overloaded line six")}))
			resp, rb := post(t, base, contentProto, "", bytes.NewReader(more))
			statusResponse(t, resp, rb, http.StatusTooManyRequests, false, "too many lines in flight")
			if ra := resp.Header.Get("Retry-After"); ra == "" {
				t.Fatal("429 without Retry-After")
			}

			// The SDK exporter meets the same 429, waits Retry-After and
			// sends again once the gate opens.
			lp := provider(t, base, otlploghttp.GzipCompression)
			start := time.Now().Add(-3 * time.Hour).Truncate(time.Millisecond)
			const n = 40
			emit(lp, "toverload", start, 0, n)
			for deadline := time.Now().Add(10 * time.Second); ; {
				mu.Lock()
				got := codes[http.StatusTooManyRequests]
				mu.Unlock()
				if got >= 2 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the exporter was not answered 429: %v", codes)
				}
				time.Sleep(5 * time.Millisecond)
			}
			close(gate.open)
			if code := <-done; code != http.StatusOK {
				t.Fatalf("holding request: %d", code)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := lp.ForceFlush(ctx); err != nil {
				t.Fatalf("flush: %v", err)
			}
			checkSDKLines(t, p, "toverload", start, n)
			if n := p.Count("holding"); n != 15 {
				t.Fatalf("%d holding lines, want 15", n)
			}
			if n := p.Count("overloaded"); n != 0 {
				t.Fatalf("%d lines of a refused request indexed", n)
			}
			if st := acc.Stats(); st.Overloaded < 6+n || st.InFlight != 0 {
				t.Fatalf("stats %+v", st)
			}

			_ = acc.Close()
			resp, rb = post(t, base, contentJSON, "", strings.NewReader(`{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":{"stringValue":"after close"}}]}]}]}`))
			statusResponse(t, resp, rb, http.StatusServiceUnavailable, true, "shutting down")
			if resp.Header.Get("Retry-After") == "" {
				t.Fatal("503 without Retry-After")
			}
		})
	}
}

type codeWriter struct {
	http.ResponseWriter
	code int
}

func (w *codeWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}
