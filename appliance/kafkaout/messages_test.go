package kafkaout

import (
	"testing"
	"time"

	"github.com/logbox/logbox/appliance/pipeline"
)

// BenchmarkMessages: encoding a chunk of one file's records, of a source
// with a regex parser and a timezone, as Publish does.
//
//	go test ./appliance/kafkaout -run '^$' -bench Messages -benchmem
func BenchmarkMessages(b *testing.B) {
	p := &Producer{cfg: Config{Topic: "logs", MaxMessageBytes: DefaultMaxMessageBytes}}
	recs := make([]pipeline.Record, 1000)
	for i := range recs {
		recs[i] = pipeline.Record{TS: time.Now().UTC(), Host: "web1", Source: "/var/log/app/app.log", FileID: "2049:131:9f8e7d6c5b4a3921", Offset: int64(i) * 120,
			Line:   `2026-11-25 10:00:00,123 INFO [main] c.e.OrderService - order placed tenant=t0042 trace_id=00000000deadbeef`,
			Parser: `regex:^(?P<time>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) (?P<level>[A-Z]+) +\[(?P<thread>[^\]]+)\] (?P<logger>\S+) - (?P<msg>.*)$`,
			TZ:     "Asia/Shanghai"}
	}
	t := &tracker{}
	b.ReportAllocs()
	for b.Loop() {
		var enc eventEncoder
		p.messages(recs, t, &enc)
	}
}
