package index

import (
	"testing"
	"time"

	"github.com/logbox/logbox/bench"
)

// BenchmarkParseKinds: the auto parser's cost per kind of line, through
// keepNames as Index runs it (it uses only parseLine, so the same file
// times the code before the parsers).
//
//	go test ./appliance/index -run '^$' -bench ParseKinds -benchtime 200000x
func BenchmarkParseKinds(b *testing.B) {
	for _, c := range []struct{ name, line string }{
		{"nginx", `10.0.0.5 - bob [25/Nov/2026:10:00:00 +0000] "POST /api/v1/orders HTTP/2.0" 502 157 "https://shop.example.com/" "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36" rt=1.503 uct="0.001" urt="1.502" upstream=10.0.1.20:8080`},
		{"rfc5424", "<165>1 2026-11-25T10:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"] An application event log entry"},
		{"bsd-syslog", "Nov 25 10:00:00 web1 sshd[123]: Accepted publickey for root from 10.0.0.1 port 53422 ssh2"},
		{"log4j", "2026-11-25 10:00:01,377 INFO  [http-nio-8080-exec-7] c.e.OrderService - order placed tenant=t0042 trace_id=00000000deadbeef"},
		{"logfmt", "time=2026-11-25T10:00:00Z level=info msg=\"request done\" method=GET path=/api/items status=200 latency_ms=12"},
		{"json", `{"@timestamp":"2026-11-25T10:00:00Z","level":"info","msg":"GET /a","latency_ms":120,"http":{"status":200,"method":"GET"},"user":"alice"}`},
		{"stack-frame", "\tat com.example.App.main(App.java:42)"},
	} {
		b.Run(c.name, func(b *testing.B) {
			names := newFieldNames(1000, nil)
			b.ReportAllocs()
			for b.Loop() {
				ex := parseLine(c.line, testNow, nil, testNow, 64)
				ex.keepNames(names) // as Index does; stored lays the leaves out
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lines/s")
		})
	}
}

// BenchmarkParseMix: parsing (and admitting the field names of) the
// benchmark generator's mix of lines, one core.
//
//	go test ./appliance/index -run '^$' -bench ParseMix -benchtime 400000x
func BenchmarkParseMix(b *testing.B) {
	g := bench.NewGenerator(1, 20000, time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC))
	lines := make([]string, 20000)
	for i := range lines {
		lines[i] = g.Next()
	}
	now := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	names := newFieldNames(1000, nil)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		ex := parseLine(lines[i%len(lines)], now, nil, now, 64)
		ex.keepNames(names)
		i++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lines/s")
}
