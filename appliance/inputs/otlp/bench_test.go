package otlp

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	"google.golang.org/protobuf/proto"

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
