package kafkaout

import (
	"encoding/json"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/logbox/logbox/appliance/pipeline"
)

// TestAppendEventIsJSONMarshal: the hand-written encoder gives the bytes
// encoding/json gives, on tricky and random records.
func TestAppendEventIsJSONMarshal(t *testing.T) {
	tricky := []string{"", "plain", `q"uote\back`, "tab\tnl\ncr\rff\fbs\b", "\x00\x01\x1f\x7f", "<script>&amp;</script>",
		"ünïcödé 日本語 🎉", "bad \xff\xfe utf8 \xc3", "\u2028line\u2029sep", "end\\"}
	var recs []pipeline.Record
	for i, s := range tricky {
		recs = append(recs, pipeline.Record{TS: time.Date(2026, 11, 25, 10, 0, 0, i*123456789, time.UTC), Host: s, Source: "/var/log/" + s,
			SourceName: s, FileID: "1:2:" + s, Offset: int64(i) * 1e12, End: int64(i)*1e12 + int64(i%3), Line: s + s, Fields: map[string]string{s: s, "b": "x", "a": s}, Flags: []string{s, "truncated"}, Parser: []string{"", "nginx", "regex:" + s}[i%3], TZ: []string{"", "Asia/Shanghai", s}[i%3]})
	}
	recs = append(recs, pipeline.Record{TS: time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 3600)), Host: "h", FileID: "f", Line: "l", Topic: "ignored"})
	rng := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		b := make([]byte, rng.IntN(40))
		for j := range b {
			b[j] = byte(rng.IntN(256))
		}
		s := string(b)
		recs = append(recs, pipeline.Record{TS: time.Unix(rng.Int64N(1<<33), rng.Int64N(1e9)).UTC(), Host: s, Line: s, Offset: -rng.Int64N(5), End: rng.Int64N(3)})
	}
	for _, r := range recs {
		want, err := json.Marshal(&r)
		if err != nil {
			t.Fatal(err)
		}
		got, err := appendEvent(nil, &r)
		if err != nil || string(got) != string(want) {
			t.Fatalf("record %+v:\n got %s (%v)\nwant %s", r, got, err, want)
		}
	}
	if _, err := appendEvent(nil, &pipeline.Record{TS: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}); err == nil {
		t.Fatal("year 10000 encoded")
	}
}

// TestEventEncoderIsAppendEvent: the encoder that reuses what consecutive
// records share gives appendEvent's bytes, whatever changes from one record
// to the next; long strings of mostly plain ASCII (the word-at-a-time
// path) are escaped as encoding/json escapes them.
func TestEventEncoderIsAppendEvent(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789 -_/:.=[]{}" + "\"<>&\\\x00\x1f\x7f\u2028é\xff"
	str := func(n int) string {
		b := make([]byte, 0, n)
		for len(b) < n {
			if rng.IntN(16) == 0 {
				b = append(b, alphabet[47+rng.IntN(len(alphabet)-47)])
			} else {
				b = append(b, alphabet[rng.IntN(47)])
			}
		}
		return string(b)
	}
	pick := func(xs ...string) string { return xs[rng.IntN(len(xs))] }
	ts := []time.Time{time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC), time.Date(2026, 11, 25, 10, 0, 0, 500, time.UTC),
		time.Date(2026, 11, 25, 11, 0, 0, 0, time.FixedZone("x", 3600)), time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}
	fields := map[string]string{"env": "prod"}
	var enc eventEncoder
	for i := range 20000 {
		if rng.IntN(50) == 0 {
			fields["env"] = pick("prod", "dev", `q"t`) // the same map, changed
		}
		r := pipeline.Record{TS: ts[rng.IntN(len(ts))], Host: pick("h1", "h2", "h<3>"), Source: pick("/var/log/a", "/var/log/b"),
			SourceName: pick("", "s"), FileID: pick("1:2:f", "1:3:g"), Offset: int64(i), End: int64(i + rng.IntN(2)), Line: str(rng.IntN(300))}
		switch rng.IntN(4) {
		case 0:
			r.Fields = fields
		case 1:
			r.Fields = map[string]string{"env": pick("prod", "dev"), "dc": "x"}
		}
		if rng.IntN(10) == 0 {
			r.Flags = []string{pipeline.FlagTruncated}
		}
		r.Parser = pick("", "", "nginx", `regex:^(?P<a>\d+) "(?P<b>[^"]*)"`)
		r.TZ = pick("", "", "Asia/Shanghai", "+08:00")
		want, wantErr := appendEvent([]byte("prefix"), &r)
		got, err := enc.append([]byte("prefix"), &r)
		if (err != nil) != (wantErr != nil) || string(got) != string(want) {
			t.Fatalf("record %d %+v:\n got %s (%v)\nwant %s (%v)", i, r, got, err, want, wantErr)
		}
		if wantErr != nil {
			continue
		}
		if j, err := json.Marshal(&r); err != nil || "prefix"+string(j) != string(want) {
			t.Fatalf("record %d: appendEvent %s, encoding/json %s (%v)", i, want, j, err)
		}
	}
}

func BenchmarkAppendEvent(b *testing.B) {
	r := pipeline.Record{TS: time.Now(), Host: "web1", Source: "/var/log/nginx/access.log", SourceName: "nginx", FileID: "2049:131:9f8e7d6c5b4a3921", Offset: 123456789,
		Line: `10.0.3.7 - - [25/Nov/2026:10:00:00 +0000] "GET /api/v1/users/42?expand=true HTTP/1.1" 200 5123 "-" "Mozilla/5.0 (X11; Linux x86_64)" rt=0.012 urt=0.010`}
	var buf []byte
	for range b.N {
		buf, _ = appendEvent(buf[:0], &r)
	}
}
