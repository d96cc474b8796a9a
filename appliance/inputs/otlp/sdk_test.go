package otlp

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploghttp"
	"go.opentelemetry.io/otel/log"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	"go.opentelemetry.io/otel/sdk/resource"
	"go.opentelemetry.io/otel/trace"

	"github.com/logbox/logbox/appliance/index"
	"github.com/logbox/logbox/appliance/ingest/ingesttest"
	"github.com/logbox/logbox/appliance/pipeline"
)

// serve runs a real HTTP server on 127.0.0.1 with a chi router where h
// is mounted, wrap (when not nil) around the router, and returns its
// base URL. It stops at the test's end.
func serve(t testing.TB, h *Handler, wrap func(http.Handler) http.Handler) string {
	t.Helper()
	r := chi.NewRouter()
	h.Mount(r)
	var handler http.Handler = r
	if wrap != nil {
		handler = wrap(r)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
	})
	return "http://" + ln.Addr().String()
}

// provider is the OpenTelemetry Go SDK's logger provider with a batch
// processor and the OTLP/HTTP exporter pointed at base, retrying fast.
func provider(t testing.TB, base string, comp otlploghttp.Compression) *sdklog.LoggerProvider {
	t.Helper()
	exp, err := otlploghttp.New(context.Background(),
		otlploghttp.WithEndpointURL(base+Path),
		otlploghttp.WithCompression(comp),
		otlploghttp.WithTimeout(20*time.Second),
		otlploghttp.WithRetry(otlploghttp.RetryConfig{Enabled: true, InitialInterval: 50 * time.Millisecond, MaxInterval: 500 * time.Millisecond, MaxElapsedTime: 30 * time.Second}),
	)
	if err != nil {
		t.Fatal(err)
	}
	res := resource.NewSchemaless(
		attribute.String("service.name", "checkout"),
		attribute.String("host.name", "web-7"),
		attribute.String("deployment.environment", "test"),
	)
	lp := sdklog.NewLoggerProvider(sdklog.WithResource(res), sdklog.WithProcessor(
		sdklog.NewBatchProcessor(exp, sdklog.WithExportInterval(50*time.Millisecond), sdklog.WithExportMaxBatchSize(100))))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = lp.Shutdown(ctx)
	})
	return lp
}

// sdkRecord describes the i-th record emitted by emit, for checks.
type sdkRecord struct {
	ts         time.Time
	level      string // the "level" field logbox should give it
	mapBody    bool   // the body is a map (kvlist)
	trace, spn string // hex
}

var severities = []log.Severity{log.SeverityTrace, log.SeverityDebug2, log.SeverityInfo, log.SeverityWarn3, log.SeverityError, log.SeverityFatal4, log.SeverityInfo4}

func recordOf(base time.Time, i int) sdkRecord {
	r := sdkRecord{ts: base.Add(time.Duration(i) * time.Millisecond), mapBody: i%5 == 0}
	if i%4 == 0 {
		r.level = "warning" // severity text wins
	} else {
		r.level = map[log.Severity]string{log.SeverityTrace: "trace", log.SeverityDebug2: "debug", log.SeverityInfo: "info",
			log.SeverityWarn3: "warn", log.SeverityError: "error", log.SeverityFatal4: "fatal", log.SeverityInfo4: "info"}[severities[i%len(severities)]]
	}
	var tid [16]byte
	var sid [8]byte
	binary.BigEndian.PutUint64(tid[:8], 0xabc0000000000000)
	binary.BigEndian.PutUint64(tid[8:], uint64(i+1))
	binary.BigEndian.PutUint64(sid[:], uint64(1000+i))
	r.trace, r.spn = hex.EncodeToString(tid[:]), hex.EncodeToString(sid[:])
	return r
}

// emit emits records from..to-1 through lp: bodies "sdk <tag> order
// nNNNNN placed" (every fifth a map body holding that text in "msg"),
// severities, attributes (a nested map and a slice among them) and a
// span context.
func emit(lp *sdklog.LoggerProvider, tag string, base time.Time, from, to int) {
	logger := lp.Logger("shop/cart", log.WithInstrumentationVersion("1.4.2"))
	for i := from; i < to; i++ {
		want := recordOf(base, i)
		var rec log.Record
		rec.SetTimestamp(want.ts)
		rec.SetObservedTimestamp(time.Now())
		rec.SetSeverity(severities[i%len(severities)])
		if i%4 == 0 {
			rec.SetSeverityText("Warning")
		}
		text := fmt.Sprintf("sdk %s order n%05d placed", tag, i)
		if want.mapBody {
			rec.SetBody(attribute.MapValue(attribute.String("msg", text), attribute.Int("n", i)))
		} else {
			rec.SetBody(attribute.StringValue(text))
		}
		rec.AddAttributes(
			attribute.Int("user.id", 1000+i),
			attribute.String("http.method", "POST"),
			attribute.Map("order", attribute.Int("id", i), attribute.Float64("total", 12.5)),
			attribute.StringSlice("tags", []string{"a", "b"}),
		)
		tid, _ := trace.TraceIDFromHex(want.trace)
		sid, _ := trace.SpanIDFromHex(want.spn)
		ctx := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled}))
		logger.Emit(ctx, rec)
	}
}

// checkSDKLines checks that records 0..n-1 of tag are each indexed once,
// with the fields they were sent with.
func checkSDKLines(t *testing.T, p *ingesttest.Pipe, tag string, base time.Time, n int) {
	t.Helper()
	q := "sdk AND " + tag
	if got := p.WaitCount(q, n, 30*time.Second); got != n {
		t.Fatalf("%d lines of %s indexed, want %d", got, tag, n)
	}
	time.Sleep(200 * time.Millisecond) // a late double would show now
	hits := p.Hits(q, n+10)
	if len(hits) != n {
		t.Fatalf("%d hits, want %d", len(hits), n)
	}
	seen := make(map[int]bool, n)
	for _, h := range hits {
		i := sdkIndex(t, h)
		if seen[i] {
			t.Fatalf("record %d indexed twice", i)
		}
		seen[i] = true
		want := recordOf(base, i)
		text := fmt.Sprintf("sdk %s order n%05d placed", tag, i)
		if want.mapBody {
			wantLine := fmt.Sprintf(`{"msg":%q,"n":%d}`, text, i)
			if h.Line != wantLine || h.Fields["msg"] != text {
				t.Fatalf("record %d: line %q fields %v, want line %q parsed to msg", i, h.Line, h.Fields, wantLine)
			}
		} else if h.Line != text {
			t.Fatalf("record %d: line %q, want %q", i, h.Line, text)
		}
		if !h.TS.Equal(want.ts) || h.Host != "web-7" || h.Source != Source {
			t.Fatalf("record %d: ts %v host %q source %q, want %v web-7 %s", i, h.TS, h.Host, h.Source, want.ts, Source)
		}
		// The index takes the severity as the line's level.
		if wantLevel := index.NormalizeLevel(want.level); !strings.EqualFold(h.Level, wantLevel) {
			t.Fatalf("record %d: level %q, want %q", i, h.Level, wantLevel)
		}
		wantFields := map[string]string{
			"service.name": "checkout", "host.name": "web-7", "deployment.environment": "test",
			"scope.name": "shop/cart", "scope.version": "1.4.2",
			"user.id": strconv.Itoa(1000 + i), "http.method": "POST", "order.id": strconv.Itoa(i), "order.total": "12.5",
			"tags": `["a","b"]`, "level": want.level, "trace_id": want.trace, "span_id": want.spn,
		}
		for k, v := range wantFields {
			if h.Fields[k] != v {
				t.Fatalf("record %d: field %s = %q, want %q (fields %v)", i, k, h.Fields[k], v, h.Fields)
			}
		}
	}
	// The fields and levels answer queries.
	errors := 0
	for i := range n {
		if index.NormalizeLevel(recordOf(base, i).level) == "ERROR" {
			errors++
		}
	}
	for q, want := range map[string]int{
		"level:error AND " + tag:                              errors,
		"service.name:checkout AND " + tag:                    n,
		"order.id:7 AND " + tag:                               1,
		"trace_id:" + recordOf(base, 3).trace + " AND " + tag: 1,
		"scope.name:\"shop/cart\" AND " + tag:                 n,
	} {
		if got := p.Count(q); got != want {
			t.Errorf("%s: %d lines, want %d", q, got, want)
		}
	}
}

// sdkIndex reads the record number out of a hit's line.
func sdkIndex(t *testing.T, h pipeline.Hit) int {
	t.Helper()
	text := h.Line
	if m := h.Fields["msg"]; m != "" {
		text = m
	}
	var tag string
	var i int
	if _, err := fmt.Sscanf(text, "sdk %s order n%05d placed", &tag, &i); err != nil {
		t.Fatalf("unexpected line %q: %v", h.Line, err)
	}
	return i
}

// The OpenTelemetry Go SDK's OTLP/HTTP exporter, plain and gzip, in both
// modes: every record is searchable once, with its resource, scope and
// record attributes, level, trace and span ids as fields.
func TestSDKExporter(t *testing.T) {
	for _, mode := range ingesttest.Modes {
		for _, comp := range []struct {
			name string
			c    otlploghttp.Compression
		}{{"plain", otlploghttp.NoCompression}, {"gzip", otlploghttp.GzipCompression}} {
			t.Run(string(mode)+"/"+comp.name, func(t *testing.T) {
				p := ingesttest.Start(t, mode)
				acc := p.Acceptor("otlp", "")
				var mu sync.Mutex
				encodings := map[string]int{}
				base := serve(t, New(acc, Config{}, ingesttest.Quiet), func(next http.Handler) http.Handler {
					return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
						mu.Lock()
						encodings[r.Header.Get("Content-Type")+" "+r.Header.Get("Content-Encoding")]++
						mu.Unlock()
						next.ServeHTTP(w, r)
					})
				})
				lp := provider(t, base, comp.c)
				start := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
				const n = 300
				tag := "t" + comp.name
				emit(lp, tag, start, 0, n)
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				if err := lp.ForceFlush(ctx); err != nil {
					t.Fatalf("flush: %v", err)
				}
				checkSDKLines(t, p, tag, start, n)
				st := acc.Stats()
				if st.Acked != n || st.Retried != 0 || st.Rejected != 0 {
					t.Fatalf("stats %+v", st)
				}
				mu.Lock()
				defer mu.Unlock()
				wantEnc := "application/x-protobuf "
				if comp.c == otlploghttp.GzipCompression {
					wantEnc += "gzip"
				}
				if len(encodings) != 1 || encodings[wantEnc] == 0 {
					t.Fatalf("requests by encoding %v, want only %q", encodings, wantEnc)
				}
			})
		}
	}
}

// failFirst answers the first request that succeeds 503 instead of 200
// (after the handler has returned, so its lines are durable), as a proxy
// that lost the answer would: the exporter retries the batch.
func failFirst(failed *atomic.Int32) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if failed.Load() > 0 {
				next.ServeHTTP(w, r)
				return
			}
			rec := httptest.NewRecorder()
			next.ServeHTTP(rec, r)
			if rec.Code != http.StatusOK {
				for k, v := range rec.Header() {
					w.Header()[k] = v
				}
				w.WriteHeader(rec.Code)
				_, _ = w.Write(rec.Body.Bytes())
				return
			}
			failed.Add(1)
			w.WriteHeader(http.StatusServiceUnavailable)
		})
	}
}

// A client's retry of a batch that was written but whose answer was
// lost: the SDK exporter sends it again, and every record is still
// indexed once.
func TestSDKRetryIndexedOnce(t *testing.T) {
	for _, mode := range ingesttest.Modes {
		t.Run(string(mode), func(t *testing.T) {
			p := ingesttest.Start(t, mode)
			acc := p.Acceptor("otlp", "")
			var failed atomic.Int32
			base := serve(t, New(acc, Config{}, ingesttest.Quiet), failFirst(&failed))
			lp := provider(t, base, otlploghttp.GzipCompression)
			start := time.Now().Add(-2 * time.Hour).Truncate(time.Millisecond)
			const n = 250
			emit(lp, "tretry", start, 0, n)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := lp.ForceFlush(ctx); err != nil {
				t.Fatalf("flush: %v", err)
			}
			if n := failed.Load(); n != 1 {
				t.Fatalf("%d answers replaced by 503, want 1", n)
			}
			checkSDKLines(t, p, "tretry", start, n)
			st := acc.Stats()
			if st.Retried == 0 || st.Acked != n+st.Retried {
				t.Fatalf("stats %+v: want a retried batch recognised", st)
			}
		})
	}
}
