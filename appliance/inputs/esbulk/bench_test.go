package esbulk_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/logbox/logbox/appliance/ingest/ingesttest"
	"github.com/logbox/logbox/appliance/inputs/esbulk"
)

// bulkBody appends a bulk request of n Filebeat-shaped documents, the
// req-th request's, each distinct.
func bulkBody(b []byte, req, n int) []byte {
	t0 := base.Add(time.Duration(req) * time.Second)
	for i := range n {
		b = append(b, `{"create":{"_index":"filebeat-8.11.0"}}`+"\n"...)
		b = fmt.Appendf(b, `{"@timestamp":"%s","message":"10.0.0.%d - - GET /api/v1/orders/%d HTTP/1.1 200 %d req=%dn%d","host":{"name":"web-%d","os":{"family":"debian","name":"Debian GNU/Linux"}},`+
			`"log":{"file":{"path":"/var/log/nginx/access.log"},"offset":%d,"level":"info"},"agent":{"type":"filebeat","version":"8.11.0","name":"web-%d"},`+
			`"http":{"response":{"status_code":200,"body":{"bytes":%d}}},"ecs":{"version":"8.0.0"},"input":{"type":"filestream"},"tags":["nginx","prod"]}`+"\n",
			t0.Add(time.Duration(i)*time.Millisecond).Format(time.RFC3339Nano), i%250, i, 512+i, req, i, req%4, i*180, req%4, 512+i)
	}
	return b
}

// BenchmarkBulk sends bulk requests of 1000 Filebeat-shaped documents
// over HTTP, from 8 and from 32 clients at once (each request waits until durable,
// so throughput grows with the clients), into the direct pipeline (a real
// index); an operation is one request, answered once durable.
func BenchmarkBulk(b *testing.B) {
	for _, clients := range []int{8, 32} {
		b.Run(fmt.Sprintf("filebeat/clients=%d", clients), func(b *testing.B) { benchBulk(b, clients, bulkBody) })
	}
	b.Run("fluentbit/clients=32", func(b *testing.B) { benchBulk(b, 32, fluentBody) })
}

// fluentBody appends a bulk request of n documents as Fluent Bit's es
// output sends a container's lines (log, stream, a few Kubernetes
// fields), each distinct.
func fluentBody(b []byte, req, n int) []byte {
	t0 := base.Add(time.Duration(req) * time.Second)
	for i := range n {
		b = append(b, `{"create":{"_index":"fluent-bit"}}`+"\n"...)
		b = fmt.Appendf(b, `{"@timestamp":"%s","log":"10.0.0.%d - - GET /api/v1/orders/%d HTTP/1.1 200 %d req=%dn%d\n","stream":"stdout",`+
			`"kubernetes":{"pod_name":"shop-%d","namespace_name":"prod","container_name":"nginx"}}`+"\n",
			t0.Add(time.Duration(i)*time.Millisecond).Format(time.RFC3339Nano), i%250, i, 512+i, req, i, req%4)
	}
	return b
}

func benchBulk(b *testing.B, clients int, body func([]byte, int, int) []byte) {
	const docs = 1000
	p := ingesttest.Start(b, ingesttest.Direct)
	acc := p.Acceptor("bulk", "")
	r := chi.NewRouter()
	esbulk.New(acc, esbulk.Config{}, ingesttest.Quiet).Mount(r)
	srv := httptest.NewServer(r)
	b.Cleanup(srv.Close)
	client := &http.Client{Timeout: 2 * time.Minute}

	// The bodies are made before the clock starts, as a shipper has
	// them ready: what is measured is logbox's side (on the same cores).
	bodies := make([][]byte, b.N)
	for i := range bodies {
		bodies[i] = body(nil, i, docs)
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	var bodyBytes atomic.Int64
	b.ResetTimer()
	start := time.Now()
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				req := int(next.Add(1)) - 1
				if req >= b.N {
					return
				}
				buf := bodies[req]
				bodyBytes.Add(int64(len(buf)))
				res, err := client.Post(srv.URL+"/es/_bulk", "application/x-ndjson", bytes.NewReader(buf))
				if err != nil {
					b.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode != 200 {
					b.Errorf("status %d", res.StatusCode)
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N*docs)/elapsed.Seconds(), "lines/s")
	b.ReportMetric(float64(bodyBytes.Load())/elapsed.Seconds()/(1<<20), "MiB/s")
	if st := acc.Stats(); st.Acked != uint64(b.N*docs) || st.Retried != 0 {
		b.Errorf("stats %+v", st)
	}
}
