package otlp

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	"google.golang.org/protobuf/proto"

	"github.com/logbox/logbox/appliance/ingest"
	"github.com/logbox/logbox/appliance/ingest/ingesttest"
)

// BenchmarkOTLP sends protobuf export requests of 1000 records each
// (service resource, three attributes, a trace id, distinct bodies) over
// HTTP from 8 clients into a direct pipeline with a real index, and
// reports lines/s: each request answered only once its lines are
// indexed. Run it with: go test -run X -bench OTLP ./appliance/inputs/otlp/
func BenchmarkOTLP(b *testing.B) {
	const perReq, clients = 1000, 8
	p := ingesttest.Start(b, ingesttest.Direct)
	acc := p.Acceptor("otlp", "")
	base := serve(b, New(acc, Config{}, ingesttest.Quiet), nil)

	// The bodies are made before the clock starts: what is measured is
	// the server's side.
	bodies := make([][]byte, b.N)
	start := time.Now().Add(-time.Hour)
	for i := range bodies {
		recs := make([]*logspb.LogRecord, perReq)
		for j := range recs {
			k := i*perReq + j
			recs[j] = &logspb.LogRecord{
				TimeUnixNano:   uint64(start.Add(time.Duration(k) * time.Microsecond).UnixNano()),
				SeverityNumber: logspb.SeverityNumber(9 + 4*(k%3)),
				Body:           str(fmt.Sprintf("GET /api/orders/%d 200 %dms user=%d request served", k, k%500, k%9973)),
				Attributes: []*commonpb.KeyValue{
					attr("http.route", str("/api/orders/{id}")), attr("http.status_code", intv(200)), attr("user.id", intv(int64(k%9973))),
				},
				TraceId: []byte{1, 2, 3, 4, 5, 6, 7, 8, byte(k >> 24), byte(k >> 16), byte(k >> 8), byte(k), 1, 2, 3, 4},
			}
		}
		body, err := proto.Marshal(request("bench", "bench-host", recs...))
		if err != nil {
			b.Fatal(err)
		}
		bodies[i] = body
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}, Timeout: time.Minute}
	b.Cleanup(client.CloseIdleConnections)
	var next atomic.Int64
	var failed atomic.Value
	b.ResetTimer()
	t0 := time.Now()
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(len(bodies)) {
					return
				}
				req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, base+Path, bytes.NewReader(bodies[i]))
				req.Header.Set("Content-Type", contentProto)
				resp, err := client.Do(req)
				if err != nil {
					failed.Store(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					failed.Store(fmt.Errorf("status %d", resp.StatusCode))
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(t0)
	b.StopTimer()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N*perReq)/elapsed.Seconds(), "lines/s")
	if n := p.WaitCount("served", b.N*perReq, time.Minute); n != b.N*perReq {
		b.Fatalf("%d lines indexed, want %d", n, b.N*perReq)
	}
}

// BenchmarkOTLPFlood is a client faster than the index: 64, 256 and 1024
// clients send 1000-record requests without pause (and retry on 429 after
// a short wait), up to a million records offered at once against an
// acceptor that holds at most 100 000 not yet durable. It reports the lines/s indexed, the
// share of requests answered 429, and the peak Go heap sampled every
// 10 ms: the bound holds memory where it is, instead of growing with
// what the clients offer. Run it with:
// go test -run X -bench OTLPFlood -benchtime 400x ./appliance/inputs/otlp/
func BenchmarkOTLPFlood(b *testing.B) {
	for _, clients := range []int{64, 256, 1024} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) { benchFlood(b, clients) })
	}
}

func benchFlood(b *testing.B, clients int) {
	const perReq = 1000
	p := ingesttest.Start(b, ingesttest.Direct)
	acc, err := ingest.New(ingest.Config{Name: "otlp", Host: "bench", Dir: b.TempDir(), Sink: p.Sink, MaxInFlight: 100000}, ingesttest.Quiet)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = acc.Close() })
	base := serve(b, New(acc, Config{}, ingesttest.Quiet), nil)
	start := time.Now().Add(-time.Hour)
	bodies := make([][]byte, b.N)
	for i := range bodies {
		recs := make([]*logspb.LogRecord, perReq)
		for j := range recs {
			k := i*perReq + j
			recs[j] = &logspb.LogRecord{
				TimeUnixNano: uint64(start.Add(time.Duration(k) * time.Microsecond).UnixNano()),
				Body:         str(fmt.Sprintf("flood line %d of the benchmark, user=%d", k, k%9973)),
				Attributes:   []*commonpb.KeyValue{attr("http.route", str("/api/orders/{id}"))},
			}
		}
		body, err := proto.Marshal(request("flood", "flood-host", recs...))
		if err != nil {
			b.Fatal(err)
		}
		bodies[i] = body
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}, Timeout: 2 * time.Minute}
	b.Cleanup(client.CloseIdleConnections)
	runtime.GC()
	var peak atomic.Uint64
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var ms runtime.MemStats
		for {
			select {
			case <-stopSampling:
				return
			case <-time.After(10 * time.Millisecond):
			}
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
		}
	}()
	var next, tooMany, sent atomic.Int64
	var failed atomic.Value
	b.ResetTimer()
	t0 := time.Now()
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(len(bodies)) {
					return
				}
				for {
					req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, base+Path, bytes.NewReader(bodies[i]))
					req.Header.Set("Content-Type", contentProto)
					resp, err := client.Do(req)
					if err != nil {
						failed.Store(err)
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					sent.Add(1)
					if resp.StatusCode == http.StatusTooManyRequests {
						tooMany.Add(1)
						time.Sleep(50 * time.Millisecond)
						continue
					}
					if resp.StatusCode != http.StatusOK {
						failed.Store(fmt.Errorf("status %d", resp.StatusCode))
						return
					}
					break
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(t0)
	b.StopTimer()
	close(stopSampling)
	<-sampled
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N*perReq)/elapsed.Seconds(), "lines/s")
	b.ReportMetric(float64(tooMany.Load())/float64(sent.Load()), "share-429")
	b.ReportMetric(float64(peak.Load())/(1<<20), "peak-heap-MiB")
	if n := p.WaitCount("flood", b.N*perReq, time.Minute); n != b.N*perReq {
		b.Fatalf("%d lines indexed, want %d", n, b.N*perReq)
	}
}
