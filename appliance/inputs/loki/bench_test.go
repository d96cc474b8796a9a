package loki

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grafana/loki/pkg/push"

	"github.com/logbox/logbox/appliance/ingest/ingesttest"
)

// BenchmarkLokiPush measures pushes as Promtail sends them (snappy
// protobuf, 1000 logfmt lines in 4 streams each) over HTTP into the
// direct pipeline (index writer and index), from 1 client (each push
// waits for its fsync) and from 16 at once (as many agents send), and
// reports lines/s acknowledged durable. Run it with
//
//	go test -run XXX -bench LokiPush -benchtime 200x ./appliance/inputs/loki/
func BenchmarkLokiPush(b *testing.B) {
	for _, clients := range []int{1, 16} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) { benchPush(b, clients) })
	}
}

func benchPush(b *testing.B, clients int) {
	const perPush, streams = 1000, 4
	p := ingesttest.Start(b, ingesttest.Direct)
	acc := p.Acceptor("loki", "")
	c := newClient(serve(b, router(acc, Config{})))
	c.hc.Transport = &http.Transport{MaxIdleConnsPerHost: clients}

	// The bodies are built first: the clients' encoding is not logbox's
	// cost.
	base := time.Now().Add(-time.Hour)
	reqs := make([]request, b.N)
	for i := range reqs {
		pr := push.PushRequest{Streams: make([]push.Stream, streams)}
		for s := range pr.Streams {
			pr.Streams[s].Labels = fmt.Sprintf(`{env="prod", host="web%d", job="api"}`, s)
			for k := range perPush / streams {
				n := (i*streams+s)*perPush/streams + k
				pr.Streams[s].Entries = append(pr.Streams[s].Entries, push.Entry{
					Timestamp: base.Add(time.Duration(n) * time.Microsecond),
					Line: fmt.Sprintf(`level=info msg="request served" method=GET path=/api/v1/items/%d status=200 duration_ms=%d user=u%d req=r%09d`,
						n%5000, n%97, n%313, n),
				})
			}
		}
		reqs[i] = protoRequest(b, &pr)
	}

	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	b.ResetTimer()
	start := time.Now()
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(reqs) {
					return
				}
				for {
					code, _, msg, err := c.send(context.Background(), reqs[i])
					if err == nil && code == http.StatusNoContent {
						break
					}
					if err == nil && code != http.StatusTooManyRequests && code/100 != 5 {
						errs <- fmt.Errorf("push %d: %d %s", i, code, msg)
						return
					}
					time.Sleep(10 * time.Millisecond)
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N*perPush)/elapsed.Seconds(), "lines/s")
	if st := acc.Stats(); st.Acked != uint64(b.N*perPush) || st.Retried != 0 {
		b.Fatalf("acked %d (retried %d), want %d", st.Acked, st.Retried, b.N*perPush)
	}
}

// BenchmarkDecodeProtobuf measures the input's own share: decoding a
// snappy protobuf push of 1000 lines into ingest lines, no HTTP, no
// pipeline.
func BenchmarkDecodeProtobuf(b *testing.B) {
	pr := push.PushRequest{Streams: make([]push.Stream, 4)}
	base := time.Now()
	for s := range pr.Streams {
		pr.Streams[s].Labels = fmt.Sprintf(`{env="prod", host="web%d", job="api"}`, s)
		for k := range 250 {
			pr.Streams[s].Entries = append(pr.Streams[s].Entries, push.Entry{
				Timestamp: base.Add(time.Duration(k) * time.Microsecond),
				Line:      fmt.Sprintf(`level=info msg="request served" method=GET path=/api/v1/items/%d status=200 duration_ms=%d req=r%09d`, k, k%97, k),
			})
		}
	}
	body := protoRequest(b, &pr).body
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		lines, err := decodeProtobuf(body, DefaultMaxBody, nil)
		if err != nil || len(lines) != 1000 {
			b.Fatal(len(lines), err)
		}
	}
	b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "lines/s")
}
