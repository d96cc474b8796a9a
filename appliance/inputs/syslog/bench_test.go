package syslog

import (
	"bufio"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/logbox/logbox/appliance/ingest/ingesttest"
)

// BenchmarkSyslogTCP sends b.N octet-counted RFC 5424 lines (about 190
// bytes each, structured data included) over 1 and 4 TCP connections
// into the direct pipeline (the index writer and a real index) and
// reports lines/s until every line is acked (durable). Not run by the
// default tests: go test -run XXX -bench SyslogTCP ./appliance/inputs/syslog/
func BenchmarkSyslogTCP(b *testing.B) {
	for _, conns := range []int{1, 4} {
		b.Run(fmt.Sprintf("conns=%d", conns), func(b *testing.B) {
			p := ingesttest.Start(b, ingesttest.Direct)
			acc := p.Acceptor(Name, "")
			r := startServer(b, p, acc, Config{TCP: "127.0.0.1:0"})
			base := time.Now().UTC()
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for k := range conns {
				n := b.N / conns
				if k == 0 {
					n += b.N % conns
				}
				wg.Go(func() {
					c, err := net.Dial("tcp", r.tcp.String())
					if err != nil {
						b.Error(err)
						return
					}
					defer c.Close()
					w := bufio.NewWriterSize(c, 64<<10)
					for i := range n {
						ts := base.Add(time.Duration(k*n+i) * time.Microsecond).Format("2006-01-02T15:04:05.000000Z07:00")
						m := fmt.Sprintf("<165>1 %s web%02d.example.org nginx %d ID47 [req@32473 method=\"GET\" status=\"200\"] request served path=/api/v1/items/%d bytes=%d ms=%d",
							ts, k, 1000+k, i, 512+i%4096, i%97)
						fmt.Fprintf(w, "%d %s", len(m), m)
					}
					if err := w.Flush(); err != nil {
						b.Error(err)
					}
				})
			}
			wg.Wait()
			for acc.Stats().Acked < uint64(b.N) {
				if time.Since(start) > 10*time.Minute {
					b.Fatalf("acked %d of %d lines", acc.Stats().Acked, b.N)
				}
				time.Sleep(5 * time.Millisecond)
			}
			el := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/el.Seconds(), "lines/s")
			if n := p.WaitCount("nginx", b.N, 60*time.Second); n != b.N {
				b.Fatalf("indexed %d lines, want %d", n, b.N)
			}
		})
	}
}
