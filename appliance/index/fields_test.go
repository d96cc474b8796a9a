package index

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/logbox/logbox/appliance/pipeline"
)

var testNow = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

func TestEventTime(t *testing.T) {
	cases := []struct {
		name, line string
		want       string // RFC 3339; "" = none found
	}{
		{"rfc3339 millis Z", "2026-11-25T10:00:00.123Z INFO started", "2026-11-25T10:00:00.123Z"},
		{"rfc3339 offset", "2026-11-25T11:00:00+01:00 WARN slow", "2026-11-25T10:00:00Z"},
		{"rfc3339 offset no colon", "2026-11-25T05:00:00-0500 x", "2026-11-25T10:00:00Z"},
		{"rfc3339 nanos", "2026-11-25T10:00:00.123456789Z x", "2026-11-25T10:00:00.123456789Z"},
		{"space no zone is UTC", "2026-11-25 10:00:00 ERROR [main] x", "2026-11-25T10:00:00Z"},
		{"log4j comma millis", "2026-11-25 10:00:00,250 INFO  [pool-1] c.e.App - ok", "2026-11-25T10:00:00.25Z"},
		{"python logging bracketed", "[2026-11-25 10:00:00,123] INFO in app: hello", "2026-11-25T10:00:00.123Z"},
		{"elasticsearch", "[2026-11-25T10:00:00,123][INFO ][o.e.n.Node] started", "2026-11-25T10:00:00.123Z"},
		{"postgres UTC word", "2026-11-25 10:00:00.123 UTC [4711] LOG:  checkpoint starting", "2026-11-25T10:00:00.123Z"},
		{"mysql 8", "2026-11-25T10:00:00.123456Z 0 [System] [MY-010116] [Server] mysqld", "2026-11-25T10:00:00.123456Z"},
		{"nginx error log slashes", "2026/11/25 09:59:58 [error] 1234#0: *5 open() \"/x\" failed", "2026-11-25T09:59:58Z"},
		{"go log package", "2026/11/25 10:00:01 listening on :8080", "2026-11-25T10:00:01Z"},
		{"rfc5424 syslog", "<165>1 2026-11-25T10:00:00.003Z mymachine app 1 ID47 - msg", "2026-11-25T10:00:00.003Z"},
		{"nginx combined", `192.168.1.10 - - [25/Nov/2026:10:00:00 +0000] "GET /api HTTP/1.1" 200 612 "-" "curl/8.0"`, "2026-11-25T10:00:00Z"},
		{"apache common with offset", `127.0.0.1 - frank [10/Oct/2026:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326`, "2026-10-10T20:55:36Z"},
		{"ipv6 client clf", `2001:db8::1 - - [25/Nov/2026:10:00:00 +0100] "GET / HTTP/2.0" 304 0`, "2026-11-25T09:00:00Z"},
		{"bsd syslog", "Nov 25 10:00:00 web1 sshd[123]: Accepted publickey for root", "2026-11-25T10:00:00Z"},
		{"bsd syslog padded day", "Nov  5 09:01:02 web1 CRON[77]: (root) CMD (run-parts)", "2026-11-05T09:01:02Z"},
		{"bsd syslog with pri", "<34>Nov 25 10:00:00 host su: 'su root' failed", "2026-11-25T10:00:00Z"},
		{"bsd syslog fraction", "Nov 25 10:00:00.5 host app: x", "2026-11-25T10:00:00.5Z"},
		{"syslog earlier than clf in haproxy", "Nov 25 10:00:00 lb haproxy[1]: 10.0.0.1:5000 [25/Nov/2026:09:59:59.123] fe be/s 200", "2026-11-25T10:00:00Z"},
		{"syslog in the future is last year", "Dec 31 23:59:59 host kernel: x", "2025-12-31T23:59:59Z"},
		{"syslog tomorrow within a day is this year", "Nov 26 11:00:00 host x", "2026-11-26T11:00:00Z"},
		{"klog has no year", "I1125 10:00:00.123456       1 main.go:10] msg", ""},
		{"logback time only", "10:00:00.123 [main] INFO com.example.App - ok", ""},
		{"redis", "1:M 25 Nov 2026 10:00:00.123 * Ready to accept connections", ""},
		{"no time", "panic: runtime error: index out of range", ""},
		{"date only", "2026-11-25 deploy finished", ""},
		{"invalid day", "2026-02-30 10:00:00 x", ""},
		{"invalid hour", "2026-11-25T25:00:00Z x", ""},
		{"far future", "2030-01-01T00:00:00Z x", ""},
		{"before 1970", "1969-12-31T23:59:59Z x", ""},
		{"beyond the head", strings.Repeat("x", 70) + " 2026-11-25T10:00:00Z", ""},
		{"digits glued before", "12026-11-25T10:00:00Z", ""},
		{"month word in text", "Nov is a month 10:00:00", ""},
		{"empty", "", ""},
		{"multibyte prefix", "ß→ 2026-11-25T10:00:00Z ok", "2026-11-25T10:00:00Z"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, ok := EventTime(c.line, testNow)
			if c.want == "" {
				if ok {
					t.Fatalf("EventTime(%q) = %v, want none", c.line, got)
				}
				return
			}
			if !ok || !got.Equal(utc(c.want)) {
				t.Fatalf("EventTime(%q) = %v %v, want %s", c.line, got, ok, c.want)
			}
		})
	}
}

func TestLevelForms(t *testing.T) {
	cases := []struct{ line, want string }{
		{"2026-01-01 ERROR boom", "ERROR"},
		{"[WARNING] disk", "WARN"},
		{"level=INFO msg=x", "INFO"},
		{`time="2026-11-25T10:00:00Z" level=info msg="ERROR counter reset"`, "INFO"},
		{`ts=2026-11-25T10:00:00Z lvl=warn caller=main.go:10`, "WARN"},
		{`level=warning msg=x`, "WARN"},
		{`2026/11/25 09:59:58 [error] 1234#0: open() failed`, "ERROR"},
		{`[Wed Nov 25 10:00:00.123 2026] [core:error] [pid 1] AH00037`, "ERROR"},
		{`[notice] started`, "INFO"},
		{`prefix "level":"debug" suffix`, "DEBUG"},
		{`severity: critical disk full`, "ERROR"},
		{"FATAL: password authentication failed", "ERROR"},
		{"2026-11-25 10:00:00.123 UTC [4711] LOG:  checkpoint", ""},
		{"an information line with errors", ""},
		{"user error occurred", ""},
		{"TRACE enter", "DEBUG"},
	}
	for _, c := range cases {
		if got := Level(c.line); got != c.want {
			t.Errorf("Level(%q) = %q, want %q", c.line, got, c.want)
		}
	}
}

func TestExtractJSON(t *testing.T) {
	read := time.Date(2026, 11, 25, 11, 59, 0, 0, time.UTC)
	cases := []struct {
		name, line string
		ts         string // "" = read time
		level      string
		fields     map[string]any // subset expected
		num        map[string]any
	}{
		{"zap", `{"level":"info","ts":1764064800.123,"caller":"x.go:1","msg":"hi","latency_ms":512}`,
			"2025-11-25T10:00:00.123Z", "INFO",
			map[string]any{"msg": "hi", "latency_ms": "512", "caller": "x.go:1"}, map[string]any{"latency_ms": 512.0}},
		{"logrus", `{"level":"warning","msg":"slow","time":"2026-11-25T11:00:00+01:00"}`,
			"2026-11-25T10:00:00Z", "WARN", map[string]any{"msg": "slow"}, nil},
		{"pino", `{"level":50,"time":1764064800123,"pid":1,"hostname":"h","msg":"boom"}`,
			"2025-11-25T10:00:00.123Z", "ERROR", map[string]any{"hostname": "h", "pid": "1"}, map[string]any{"pid": 1.0, "level": 50.0}},
		{"ecs nested", `{"@timestamp":"2026-11-25T10:00:00.000Z","log.level":"error","message":"x","http":{"response":{"status_code":503}},"tags":["a","b"]}`,
			"2026-11-25T10:00:00Z", "ERROR",
			map[string]any{"http.response.status_code": "503", "tags": []string{"a", "b"}}, map[string]any{"http.response.status_code": 503.0}},
		{"ecs log object", `{"@timestamp":"2026-11-25T10:00:00Z","log":{"level":"WARN","logger":"app"},"message":"x"}`,
			"2026-11-25T10:00:00Z", "WARN", map[string]any{"log.logger": "app"}, nil},
		{"docker json-file", `{"log":"hello world\n","stream":"stdout","time":"2026-11-25T10:00:00.123456789Z"}`,
			"2026-11-25T10:00:00.123456789Z", "", map[string]any{"stream": "stdout"}, nil},
		{"gcp severity", `{"severity":"WARNING","message":"x","timestamp":"2026-11-25T10:00:00Z"}`,
			"2026-11-25T10:00:00Z", "WARN", nil, nil},
		{"unix seconds int", `{"ts":1764064800,"msg":"x"}`, "2025-11-25T10:00:00Z", "", nil, nil},
		{"micros", `{"ts":1764064800123456}`, "2025-11-25T10:00:00.123456Z", "", nil, nil},
		{"nanos", `{"time":1764064800123456789}`, "2025-11-25T10:00:00.123456789Z", "", nil, nil},
		{"space time string", `{"timestamp":"2026-11-25 10:00:00","lvl":"dbug","msg":"DEBUG x"}`, "2026-11-25T10:00:00Z", "DEBUG", nil, nil},
		{"bad time falls back", `{"time":"yesterday","level":"nonsense"}`, "", "", map[string]any{"time": "yesterday"}, nil},
		{"bool and null", `{"ok":true,"gone":null}`, "", "", map[string]any{"ok": "true"}, nil},
		{"leading blanks", `  {"level":"debug"}`, "", "DEBUG", nil, nil},
		{"not json after brace", `{not json} ERROR x`, "", "ERROR", nil, nil},
		{"json not at start is text", `2026-11-25T10:00:00Z {"level":"debug","a":1}`, "2026-11-25T10:00:00Z", "DEBUG", nil, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ex := extract(c.line, read, nil, testNow, 64, newFieldNames(1000, nil))
			want := read
			if c.ts != "" {
				want = utc(c.ts)
			}
			if !ex.ts.Equal(want) {
				t.Errorf("ts %v, want %v", ex.ts, want)
			}
			if ex.level != c.level {
				t.Errorf("level %q, want %q", ex.level, c.level)
			}
			for k, v := range c.fields {
				if fmt.Sprint(ex.fields[k]) != fmt.Sprint(v) {
					t.Errorf("fields[%s] = %#v, want %#v", k, ex.fields[k], v)
				}
			}
			for k, v := range c.num {
				if fmt.Sprint(ex.num[k]) != fmt.Sprint(v) {
					t.Errorf("num[%s] = %#v, want %#v", k, ex.num[k], v)
				}
			}
			if ex.dropped {
				t.Errorf("dropped set")
			}
		})
	}
}

func TestExtractBounds(t *testing.T) {
	names := newFieldNames(6, nil)
	ex := extract(`{"a":1,"b":2,"c":3,"d":4,"e":5}`, testNow, map[string]string{"env": "prod", "a": "static"}, testNow, 3, names)
	// Sorted keys; the static field wins over the JSON leaf of its name.
	if !ex.dropped || ex.fields["a"] != "static" || ex.fields["b"] != "2" || ex.fields["c"] != "3" || ex.fields["d"] != "4" || ex.fields["e"] != nil {
		t.Fatalf("per-line bound: %+v", ex)
	}
	ex = extract(`{"b":1,"x":2,"y":3,"z":4}`, testNow, nil, testNow, 64, names)
	// b, c, d known; x, y, z fill the set to 6; nothing refused yet.
	if ex.dropped || len(ex.fields) != 4 {
		t.Fatalf("under the names bound: %+v", ex)
	}
	ex = extract(`{"b":1,"new":2}`, testNow, nil, testNow, 64, names)
	if !ex.dropped || ex.fields["b"] != "1" || ex.fields["new"] != nil || names.refused != 1 {
		t.Fatalf("names bound: %+v refused %d", ex, names.refused)
	}
	deep := strings.Repeat(`{"a":`, 30) + "1" + strings.Repeat("}", 30)
	if ex := extract(deep, testNow, nil, testNow, 64, newFieldNames(10, nil)); !ex.dropped || len(ex.fields) != 0 {
		t.Fatalf("deep: %+v", ex)
	}
}

func openWith(t *testing.T, cfg Config) *Index {
	t.Helper()
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return testNow }
	}
	ix, err := Open(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return ix
}

func TestFieldsSearch(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "idx")
	ix := openWith(t, Config{Dir: dir, MaxFieldsPerLine: 8})
	read := time.Date(2026, 11, 25, 11, 0, 0, 0, time.UTC)
	lines := []string{
		`{"@timestamp":"2026-11-25T10:00:00Z","level":"info","msg":"GET /a","latency_ms":120,"http":{"status":200,"method":"GET"},"user":"alice"}`,
		`{"@timestamp":"2026-11-25T10:00:01Z","level":"error","msg":"GET /b","latency_ms":950.5,"http":{"status":503,"method":"GET"},"user":"bob"}`,
		`{"@timestamp":"2026-11-25T10:00:02Z","level":"warn","msg":"POST /c","latency_ms":500,"http":{"status":429,"method":"POST"},"user":"alice"}`,
		`{"@timestamp":"2026-11-25T10:00:03Z","msg":"big","k01":1,"k02":2,"k03":3,"k04":4,"k05":5,"k06":6,"k07":7,"k08":8,"k09":9}`,
		`192.168.1.10 - - [25/Nov/2026:09:00:00 +0000] "GET /api HTTP/1.1" 200 612 "-" "curl/8.0"`,
		`plain line without a time`,
	}
	var rs []pipeline.Record
	for i, l := range lines {
		rs = append(rs, pipeline.Record{TS: read, Host: "h", Source: "/s", FileID: "f", Offset: int64(i), Line: l,
			Fields: map[string]string{"env": "prod"}})
	}
	if err := ix.Index(ctx, rs); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		q    string
		want []int64 // offsets, newest first
	}{
		{"latency_ms:>500", []int64{1}},
		{"latency_ms:>=500", []int64{2, 1}},
		{"fields.latency_ms:<500", []int64{0}},
		{"num.latency_ms:>100", []int64{2, 1, 0}},
		{"http.status:503", []int64{1}},
		{"fields.http.status:>=429", []int64{2, 1}},
		{"+http.method:GET +user:alice", []int64{0}},
		{"fields.user:alice", []int64{2, 0}},
		{"level:ERROR", []int64{1}},
		{"level:warn", []int64{2}},
		// The plain line was read with the nginx line before it: it takes
		// that line's time (see inheritTimes) and sorts right after it.
		{"fields.env:prod -user:alice", []int64{3, 1, 5, 4}},
		{"flags:fields_dropped", []int64{3}},
		{"k07:7", []int64{3}}, // sorted keys: @timestamp, k01…k07 make 8
		{"k08:8", nil},
		{"ts:<\"2026-11-25T09:30:00Z\"", []int64{5, 4}},
		{"ingested:>=\"2026-11-25T11:00:00Z\"", []int64{3, 2, 1, 0, 5, 4}},
		{"nosuchfield:>1", nil},
	}
	for _, c := range cases {
		res, err := ix.Search(ctx, pipeline.SearchRequest{Query: c.q})
		if err != nil {
			t.Errorf("%s: %v", c.q, err)
			continue
		}
		var got []int64
		for _, h := range res.Hits {
			got = append(got, h.Offset)
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%s: offsets %v, want %v", c.q, got, c.want)
		}
	}
	res, err := ix.Search(ctx, pipeline.SearchRequest{Query: "user:bob"})
	if err != nil || len(res.Hits) != 1 {
		t.Fatalf("user:bob: %v %+v", err, res)
	}
	h := res.Hits[0]
	if !h.TS.Equal(utc("2026-11-25T10:00:01Z")) || !h.Ingested.Equal(read) || h.Level != "ERROR" ||
		h.Fields["http.status"] != "503" || h.Fields["latency_ms"] != "950.5" || h.Fields["env"] != "prod" {
		t.Fatalf("hit: %+v", h)
	}
	for k := range h.Fields {
		if strings.HasPrefix(k, "num.") {
			t.Fatalf("numeric copy leaked into fields: %v", h.Fields)
		}
	}
	fr, err := ix.Facets(ctx, pipeline.FacetsRequest{Field: "fields.http.status"})
	if err != nil || len(fr.Values) != 3 {
		t.Fatalf("facets on a JSON number field: %v %+v", err, fr)
	}
	for _, v := range fr.Values {
		if v.Value != "200" && v.Value != "503" && v.Value != "429" {
			t.Fatalf("facet value %q", v.Value)
		}
	}
	st := ix.Stats()
	if st.LinesFieldsDropped != 1 || st.FieldNames == 0 {
		t.Fatalf("stats %+v", st)
	}
	n := st.FieldNames
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}
	ix = openWith(t, Config{Dir: dir})
	defer ix.Close()
	if got := ix.Stats().FieldNames; got < n {
		t.Fatalf("field names after reopen %d, want at least %d", got, n)
	}
}

func TestFieldNamesBoundInIndex(t *testing.T) {
	ctx := context.Background()
	ix := openWith(t, Config{Dir: filepath.Join(t.TempDir(), "idx"), MaxFieldNames: 10})
	defer ix.Close()
	var rs []pipeline.Record
	for i := range 20 {
		rs = append(rs, pipeline.Record{TS: testNow, Host: "h", FileID: "f", Offset: int64(i),
			Line: fmt.Sprintf(`{"common":"x","uniq%02d":%d}`, i, i)})
	}
	if err := ix.Index(ctx, rs); err != nil {
		t.Fatal(err)
	}
	st := ix.Stats()
	if st.FieldNames != 10 || st.FieldNamesRefused != 11 || st.LinesFieldsDropped != 11 {
		t.Fatalf("stats %+v", st)
	}
	for q, want := range map[string]uint64{"common:x": 20, "uniq03:3": 1, "uniq15:15": 0, "flags:fields_dropped": 11, "line:uniq15": 1} {
		res, err := ix.Search(ctx, pipeline.SearchRequest{Query: q})
		if err != nil || res.Total != want {
			t.Errorf("%s: total %d err %v, want %d", q, res.Total, err, want)
		}
	}
}

func TestLogfmt(t *testing.T) {
	cases := []struct {
		name, line string
		want       string // key=value|… of the leaves, numbers marked #
	}{
		{"app line", "2026-11-25T10:00:01.377Z WARN  slow query table=orders latency_ms=842 rows=10234",
			"table=orders|latency_ms=842#|rows=10234#"},
		{"quoted with escapes", `2026-11-25T10:00:02.015Z ERROR payment failed order=98231 err="card \"declined\"" user=bob`,
			`order=98231#|err=card "declined"|user=bob`},
		{"slog text", `time=2026-11-25T10:00:00.000Z level=INFO msg="request done" method=GET status=200 dur=1.5ms`,
			"time=2026-11-25T10:00:00.000Z|level=INFO|msg=request done|method=GET|status=200#|dur=1.5ms"},
		{"heroku router", `at=info method=GET path="/" host=app.herokuapp.com request_id=8601b555 fwd="1.2.3.4" dyno=web.1 connect=0ms service=12ms status=200 bytes=1234 protocol=https`,
			"at=info|method=GET|path=/|host=app.herokuapp.com|request_id=8601b555|fwd=1.2.3.4|dyno=web.1|connect=0ms|service=12ms|status=200#|bytes=1234#|protocol=https"},
		{"negative and float", "t=-3.5 n=1e3 hex=0x10 inf=Inf", "t=-3.5#|n=1e3#|hex=0x10|inf=Inf"},
		{"nginx combined has none", `10.1.2.4 - alice [25/Nov/2026:10:00:01 +0000] "GET /api/items?page=2&x=1 HTTP/1.1" 200 2048 "https://example.test/" "Mozilla/5.0"`, ""},
		{"needs a blank before the key", "a,b=c x/y=z url?q=1", ""},
		{"empty value skipped", "a= b=1 c=", "b=1#"},
		{"unterminated quote stops", `a=1 msg="no end b=2`, "a=1#"},
		{"static field wins", "env=dev x=1", "x=1#"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			leaves, dropped := logfmt(c.line, map[string]string{"env": "prod"}, 64)
			var parts []string
			for _, l := range leaves {
				p := l.path + "=" + l.str
				if l.isN {
					p += "#"
				}
				parts = append(parts, p)
			}
			if got := strings.Join(parts, "|"); got != c.want || dropped {
				t.Fatalf("got  %s (dropped %v)\nwant %s", got, dropped, c.want)
			}
		})
	}
	if leaves, dropped := logfmt("a=1 b=2 c=3 d=4", nil, 3); len(leaves) != 3 || !dropped {
		t.Fatalf("bound: %v %v", leaves, dropped)
	}
}

// TestSearchTestdata indexes testdata/app.log and nginx.log as a tailer
// would (read time later than the lines' own times) and queries fields.
func TestSearchTestdata(t *testing.T) {
	ctx := context.Background()
	ix := openWith(t, Config{Dir: filepath.Join(t.TempDir(), "idx")})
	defer ix.Close()
	var rs []pipeline.Record
	for _, name := range []string{"app.log", "nginx.log"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		off := 0
		for _, l := range strings.SplitAfter(string(b), "\n") {
			if l == "" {
				continue
			}
			rs = append(rs, pipeline.Record{TS: testNow, Host: "h", Source: name, FileID: name, Offset: int64(off), Line: strings.TrimSuffix(l, "\n"),
				Fields: map[string]string{"team": "core", "shard_no": "7"}})
			off += len(l)
		}
	}
	if err := ix.Index(ctx, rs); err != nil {
		t.Fatal(err)
	}
	cases := map[string]uint64{
		"latency_ms:>500":              1,
		"latency_ms:>=12":              3,
		"fields.latency_ms:<100":       2,
		"status:200":                   4, // 1 app line (status=200) + 3 nginx lines (the access parser)
		"+status:>=400 +method:POST":   1,
		"body_bytes_sent:>1000":        1,
		"+status:>=200 +user:carol":    1,
		`err:"card declined"`:          1,
		"level:ERROR":                  1,
		"level:DEBUG":                  1,
		"level:WARN":                   1,
		"source:nginx.log":             4,
		"shard_no:>5":                  10,
		"fields.shard_no:7":            10,
		"ts:<\"2026-11-25T10:00:02Z\"": 5, // 3 app lines + 2 nginx lines
	}
	for q, want := range cases {
		res, err := ix.Search(ctx, pipeline.SearchRequest{Query: q})
		if err != nil || res.Total != want {
			t.Errorf("%s: total %d err %v, want %d", q, res.Total, err, want)
		}
	}
	res, err := ix.Search(ctx, pipeline.SearchRequest{Query: "latency_ms:>500"})
	if err != nil || len(res.Hits) != 1 {
		t.Fatal(err)
	}
	if h := res.Hits[0]; !h.TS.Equal(utc("2026-11-25T10:00:01.377Z")) || !h.Ingested.Equal(testNow) || h.Fields["table"] != "orders" || h.Level != "WARN" {
		t.Fatalf("hit %+v", h)
	}
}

func BenchmarkParseLine(b *testing.B) {
	lines := []string{
		"2026-11-25T10:00:01.377Z WARN  slow query table=orders latency_ms=842 rows=10234",
		`10.1.2.4 - alice [25/Nov/2026:10:00:01 +0000] "GET /api/items?page=2 HTTP/1.1" 200 2048 "https://example.test/" "Mozilla/5.0"`,
		"Nov 25 10:00:00 web1 sshd[123]: Accepted publickey for root from 10.0.0.1 port 53422 ssh2",
		`{"@timestamp":"2026-11-25T10:00:00Z","level":"info","msg":"GET /a","latency_ms":120,"http":{"status":200,"method":"GET"},"user":"alice"}`,
		"\tat com.example.App.main(App.java:42)",
	}
	names := newFieldNames(1000, nil)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		ex := parseLine(lines[i%len(lines)], testNow, nil, testNow, 64)
		ex.admit(names)
	}
}
