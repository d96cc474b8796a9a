package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/logbox/logbox/appliance/kafkatest"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploghttp"
	otellog "go.opentelemetry.io/otel/log"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	"go.opentelemetry.io/otel/sdk/resource"
)

// senderTransport is the exporter's HTTP transport with two of a real
// network's troubles:
//
//   - A request the server never answered (connection refused while
//     logbox is down, reset or closed when it is killed mid-request) is
//     answered 503, as a load balancer in front of logbox would: the Go
//     SDK's exporter retries 429/502/503/504 but drops a batch on a
//     refused connection (the Collector's exporter retries those by
//     itself).
//   - When impatient is set, the next request is given up after 40 ms
//     (and answered 503), as a client whose timeout is shorter than the
//     server's work: logbox still writes its lines, and the exporter
//     sends them again. abandoned is signalled each time.
type senderTransport struct {
	base      http.RoundTripper
	impatient atomic.Bool
	abandoned chan struct{}
	// patience is how long the impatient request waits: shorter than
	// logbox takes to make a request durable (the id log's fsync, then
	// the index write and its fsync, or Kafka's acks). A request answered
	// in time makes the next one the impatient one.
	patience time.Duration
}

func unavailable(r *http.Request) *http.Response {
	return &http.Response{StatusCode: http.StatusServiceUnavailable, Status: "503 Service Unavailable",
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Header: http.Header{}, Body: http.NoBody, Request: r}
}

func (s *senderTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if s.impatient.CompareAndSwap(true, false) {
		ctx, cancel := context.WithTimeout(r.Context(), s.patience)
		defer cancel()
		resp, err := s.base.RoundTrip(r.WithContext(ctx))
		if err == nil {
			b, rerr := io.ReadAll(resp.Body)
			resp.Body.Close()
			if rerr == nil {
				// Answered in time: the next request is the impatient one.
				s.impatient.Store(true)
				resp.Body = io.NopCloser(bytes.NewReader(b))
				return resp, nil
			}
		}
		if r.Context().Err() == nil {
			select {
			case s.abandoned <- struct{}{}:
			default:
			}
			return unavailable(r), nil
		}
		return nil, r.Context().Err()
	}
	resp, err := s.base.RoundTrip(r)
	if err != nil && r.Context().Err() == nil {
		return unavailable(r), nil
	}
	return resp, err
}

// TestOTLPBinaryKill9 runs the real binary with --otlp, streams records
// to it with the OpenTelemetry Go SDK (batch processor, OTLP/HTTP
// exporter, gzip), kills logbox with SIGKILL mid-stream a few times and
// restarts it on the same data directory and port; the exporter sends
// again what was not answered. Each kill comes just after the exporter
// gave up on a request whose lines logbox goes on to write, so the
// exporter's retry of them meets the restarted process, which must know
// them from its id log. Every record is searchable exactly once, with its
// attributes as fields.
func TestOTLPBinaryKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("kills the binary")
	}
	bin := buildBinary(t)
	for _, mode := range []string{"direct", "kafka"} {
		t.Run(mode, func(t *testing.T) {
			var extra []string
			if mode == "kafka" {
				// The broker outlives the kills: the records logbox acked
				// are in Kafka, and a resend after a kill is skipped.
				k := kafkatest.Start(t)
				extra = []string{"--kafka", strings.Join(k.Brokers, ","),
					"--topic", kafkatest.UniqueName(t, "otlp"), "--kafka-group", kafkatest.UniqueName(t, "otlp")}
			}
			otlpKill9(t, bin, extra)
		})
	}
}

func otlpKill9(t *testing.T, bin string, extra []string) {
	began := time.Now()
	work, _, rng := crashWorkdir(t, 3)
	args := func(addr string) []string {
		return append([]string{"--data", "data", "--http", addr, "--etcd-listen", "127.0.0.1:0", "--host", "otlpbox", "--otlp"}, extra...)
	}
	p := startBinary(t, bin, work, args("127.0.0.1:0")...)
	addr := strings.TrimPrefix(p.url, "http://")
	// An empty export: 200 once --otlp mounts the input.
	pre, err := http.Post(p.url+"/v1/logs", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	pre.Body.Close()
	if pre.StatusCode != http.StatusOK {
		t.Fatalf("POST /v1/logs of an empty export: %d, want 200 (is --otlp wired?)", pre.StatusCode)
	}

	// (40 ms in direct mode while the index writer held every batch
	// for its flush interval; a pushed batch is now written at once.)
	patience := 2 * time.Millisecond
	sender := &senderTransport{base: http.DefaultTransport.(*http.Transport).Clone(), abandoned: make(chan struct{}, 1), patience: patience}
	exp, err := otlploghttp.New(context.Background(),
		otlploghttp.WithEndpointURL(p.url+"/v1/logs"),
		otlploghttp.WithCompression(otlploghttp.GzipCompression),
		otlploghttp.WithHTTPClient(&http.Client{Transport: sender, Timeout: 20 * time.Second}),
		// A retry comes 250 ms or more after a failure: after the kill.
		otlploghttp.WithRetry(otlploghttp.RetryConfig{Enabled: true, InitialInterval: 500 * time.Millisecond, MaxInterval: time.Second, MaxElapsedTime: 3 * time.Minute}),
	)
	if err != nil {
		t.Fatal(err)
	}
	res := resource.NewSchemaless(attribute.String("service.name", "binsvc"), attribute.String("host.name", "otlp-sender"))
	lp := sdklog.NewLoggerProvider(sdklog.WithResource(res), sdklog.WithProcessor(sdklog.NewBatchProcessor(exp,
		sdklog.WithExportInterval(50*time.Millisecond), sdklog.WithExportMaxBatchSize(1000),
		sdklog.WithMaxQueueSize(1<<17), sdklog.WithExportTimeout(4*time.Minute))))
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = lp.Shutdown(ctx)
	}()

	// The stream: 100 records every 30 ms, about 8 s in all.
	const n = 25000
	var emitted atomic.Int64
	emitDone := make(chan struct{})
	go func() {
		defer close(emitDone)
		logger := lp.Logger("binary/test", otellog.WithInstrumentationVersion("2.0.0"))
		base := time.Now().Add(-10 * time.Minute)
		for i := range n {
			var rec otellog.Record
			rec.SetTimestamp(base.Add(time.Duration(i) * time.Millisecond))
			rec.SetObservedTimestamp(time.Now())
			rec.SetSeverity(otellog.SeverityInfo)
			rec.SetBody(attribute.StringValue(fmt.Sprintf("otlpbin tok%07d order placed", i)))
			rec.AddAttributes(attribute.Int("seq", i), attribute.String("http.method", "POST"))
			logger.Emit(context.Background(), rec)
			emitted.Add(1)
			if i%100 == 99 {
				time.Sleep(30 * time.Millisecond)
			}
		}
	}()

	const kills = 3
	for k := range kills {
		time.Sleep(time.Duration(400+rng.IntN(800)) * time.Millisecond)
		sender.impatient.Store(true)
		select {
		case <-sender.abandoned:
		case <-time.After(10 * time.Second):
			t.Fatal("no request was given up")
		}
		// The abandoned request's lines become durable meanwhile.
		time.Sleep(150 * time.Millisecond)
		if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			exit := <-p.done
			p.dumpLog(t, fmt.Sprintf("logbox exited by itself (%v) before it was killed", exit))
			t.Fatalf("logbox exited by itself before kill %d", k+1)
		}
		<-p.done
		t.Logf("%v: kill %d after %d records emitted", time.Since(began).Round(time.Millisecond), k+1, emitted.Load())
		time.Sleep(time.Duration(100+rng.IntN(400)) * time.Millisecond)
		p = startBinary(t, bin, work, args(addr)...)
		if got := strings.TrimPrefix(p.url, "http://"); got != addr {
			t.Fatalf("restarted on %s, want %s", got, addr)
		}
	}
	<-emitDone
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	if err := lp.ForceFlush(ctx); err != nil {
		t.Fatalf("flush: %v", err)
	}

	t.Logf("%v: flushed", time.Since(began).Round(time.Millisecond))
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) && exactTotal(t, p.url, "otlpbin") < n {
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // a late double would show now
	seen, total := allTokens(t, p.url, "otlpbin")
	missing, doubled := countTokens(t, seen, n)
	t.Logf("%v: %d kills, %d records: %d indexed, %d missing, %d doubled", time.Since(began).Round(time.Millisecond), kills, n, total, missing, doubled)
	if missing > 0 || doubled > 0 || total != n {
		t.Fatalf("%d records, %d indexed: %d missing, %d doubled", n, total, missing, doubled)
	}

	// A record as searched: the sender's host, source otlp, attributes
	// as fields, the severity as level.
	resp, err := http.Get(p.url + "/api/search?limit=1&q=" + url.QueryEscape("tok0012345"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Hits []struct {
			Host, Source, Line, Level string
			Fields                    map[string]string
		} `json:"hits"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	if len(out.Hits) != 1 {
		t.Fatalf("%d hits for one record", len(out.Hits))
	}
	h := out.Hits[0]
	if h.Host != "otlp-sender" || h.Source != "otlp" || h.Fields["service.name"] != "binsvc" || h.Fields["seq"] != "12345" ||
		h.Fields["scope.name"] != "binary/test" || !strings.EqualFold(h.Level, "info") {
		t.Fatalf("hit %+v", h)
	}
}
