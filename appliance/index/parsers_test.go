package index

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/logbox/logbox/appliance/pipeline"
)

// parsed is what a test compares of one parsed line.
type parsedLine struct {
	ts       time.Time
	parsed   bool
	level    string
	fields   map[string]string  // several values joined by ","
	nums     map[string]float64 // the scalar ones
	dropped  bool
	unparsed bool
}

func parseForTest(t *testing.T, spec, line string, loc *time.Location, now time.Time, maxPerDoc int) parsedLine {
	t.Helper()
	var c specCache
	ex := parseRecord(line, now, nil, now, maxPerDoc, c.parser(spec), loc)
	ex.admit(newFieldNames(1000, nil))
	out := parsedLine{ts: ex.ts, parsed: ex.parsed, level: ex.level, fields: map[string]string{}, nums: map[string]float64{}, dropped: ex.dropped, unparsed: ex.unparsed}
	for k, v := range ex.fields {
		switch v := v.(type) {
		case string:
			out.fields[k] = v
		case []string:
			out.fields[k] = strings.Join(v, ",")
		}
	}
	for k, v := range ex.num {
		if f, ok := v.(float64); ok {
			out.nums[k] = f
		}
	}
	return out
}

// TestParsers: each parser on real-world samples and on malformed ones:
// the exact fields, numbers, time and level.
func TestParsers(t *testing.T) {
	const ua = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"
	type F = map[string]string
	type N = map[string]float64
	cases := []struct {
		name, spec, line string
		ts               string // "" : not found in the line (the read time)
		level            string
		fields           F
		nums             N
		unparsed         bool
	}{
		// Access lines.
		{"nginx combined", "", `203.0.113.7 - - [25/Nov/2026:10:15:32 +0100] "GET /index.html?q=1 HTTP/1.1" 200 5316 "https://example.com/" "` + ua + `"`,
			"2026-11-25T09:15:32Z", "",
			F{"remote_addr": "203.0.113.7", "method": "GET", "path": "/index.html?q=1", "protocol": "HTTP/1.1", "status": "200", "body_bytes_sent": "5316", "http_referer": "https://example.com/", "http_user_agent": ua},
			N{"status": 200, "body_bytes_sent": 5316}, false},
		{"nginx with timings", "nginx", `10.0.0.5 - bob [25/Nov/2026:10:00:00 +0000] "POST /api/v1/orders HTTP/2.0" 502 157 "-" "curl/8.5.0" rt=1.503 uct="0.001" uht="-" urt="1.502" upstream=10.0.1.20:8080`,
			"2026-11-25T10:00:00Z", "",
			F{"remote_addr": "10.0.0.5", "remote_user": "bob", "method": "POST", "path": "/api/v1/orders", "protocol": "HTTP/2.0", "status": "502", "body_bytes_sent": "157", "http_user_agent": "curl/8.5.0",
				"request_time": "1.503", "upstream_connect_time": "0.001", "upstream_response_time": "1.502", "upstream": "10.0.1.20:8080"},
			N{"status": 502, "body_bytes_sent": 157, "request_time": 1.503, "upstream_connect_time": 0.001, "upstream_response_time": 1.502}, false},
		{"nginx main with x-forwarded-for", "", `10.0.0.1 - - [25/Nov/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 612 "-" "curl/8.5.0" "198.51.100.2, 10.0.0.1"`,
			"2026-11-25T10:00:00Z", "",
			F{"remote_addr": "10.0.0.1", "method": "GET", "path": "/", "protocol": "HTTP/1.1", "status": "200", "body_bytes_sent": "612", "http_user_agent": "curl/8.5.0", "http_x_forwarded_for": "198.51.100.2, 10.0.0.1"},
			N{"status": 200, "body_bytes_sent": 612}, false},
		{"apache common", "apache", `127.0.0.1 - frank [10/Oct/2026:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326`,
			"2026-10-10T20:55:36Z", "",
			F{"remote_addr": "127.0.0.1", "remote_user": "frank", "method": "GET", "path": "/apache_pb.gif", "protocol": "HTTP/1.0", "status": "200", "body_bytes_sent": "2326"},
			N{"status": 200, "body_bytes_sent": 2326}, false},
		{"apache combined with %D, no body", "", `192.0.2.1 - - [24/Nov/2026:23:59:59 +0000] "GET /x HTTP/1.1" 304 - "http://ref.example/" "Mozilla/4.08 [en] (Win98; I ;Nav)" 1234`,
			"2026-11-24T23:59:59Z", "",
			F{"remote_addr": "192.0.2.1", "method": "GET", "path": "/x", "protocol": "HTTP/1.1", "status": "304", "http_referer": "http://ref.example/", "http_user_agent": "Mozilla/4.08 [en] (Win98; I ;Nav)"},
			N{"status": 304}, false},
		{"apache escaped quote, host name, IPv6", "", `::1 - - [25/Nov/2026:10:00:00 +0000] "GET /a%20b HTTP/1.1" 404 0 "-" "say \"hi\""`,
			"2026-11-25T10:00:00Z", "",
			F{"remote_addr": "::1", "method": "GET", "path": "/a%20b", "protocol": "HTTP/1.1", "status": "404", "body_bytes_sent": "0", "http_user_agent": `say \"hi\"`},
			N{"status": 404, "body_bytes_sent": 0}, false},
		{"nginx empty request", "", `198.51.100.9 - - [25/Nov/2026:10:00:00 +0000] "-" 400 0 "-" "-"`,
			"2026-11-25T10:00:00Z", "",
			F{"remote_addr": "198.51.100.9", "status": "400", "body_bytes_sent": "0"},
			N{"status": 400, "body_bytes_sent": 0}, false},
		{"nginx TLS bytes on a plain port", "", `198.51.100.9 - - [25/Nov/2026:10:00:00 +0000] "\x16\x03\x01\x02\x00\x01\x00\x01\xFC\x03\x03" 400 157 "-" "-"`,
			"2026-11-25T10:00:00Z", "",
			F{"remote_addr": "198.51.100.9", "status": "400", "body_bytes_sent": "157"},
			N{"status": 400, "body_bytes_sent": 157}, false},
		{"access cut in the user agent", "", `10.0.0.1 - - [25/Nov/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 512 "https://r.example/" "Mozilla/5.0 (X11`,
			"2026-11-25T10:00:00Z", "",
			F{"remote_addr": "10.0.0.1", "method": "GET", "path": "/", "protocol": "HTTP/1.1", "status": "200", "body_bytes_sent": "512", "http_referer": "https://r.example/"},
			N{"status": 200, "body_bytes_sent": 512}, false},
		{"access cut in the request (auto: text)", "", `10.0.0.1 - - [25/Nov/2026:10:00:00 +0000] "GET /very/long`,
			"2026-11-25T10:00:00Z", "", F{}, N{}, false},
		{"access cut in the request (nginx: unparsed)", "nginx", `10.0.0.1 - - [25/Nov/2026:10:00:00 +0000] "GET /very/long`,
			"2026-11-25T10:00:00Z", "", F{}, N{}, true},
		{"access with a bad status (auto: text)", "", `10.0.0.1 - - [25/Nov/2026:10:00:00 +0000] "GET / HTTP/1.1" abc 12 x=1`,
			"2026-11-25T10:00:00Z", "", F{"x": "1"}, N{"x": 1}, false},
		{"access with a bad date (auto: text)", "", `10.0.0.1 - - [99/Foo/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 1`,
			"", "", F{}, N{}, false},
		{"access parser on a JSON line", "apache", `{"status":200}`, "", "", F{}, N{}, true},

		// Syslog.
		{"RFC 5424 with structured data", "", "<165>1 2026-11-25T10:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"] \ufeffAn application event log entry",
			"2026-11-25T10:14:15.003Z", "INFO",
			F{"facility": "local4", "severity": "notice", "hostname": "mymachine.example.com", "app_name": "evntslog", "msgid": "ID47",
				"exampleSDID@32473.iut": "3", "exampleSDID@32473.eventSource": "Application", "exampleSDID@32473.eventID": "1011"},
			N{"exampleSDID@32473.iut": 3, "exampleSDID@32473.eventID": 1011}, false},
		{"RFC 5424 without structured data", "syslog", `<34>1 2026-11-25T10:14:15.000003-08:00 host1 su 4123 - - 'su root' failed user=lonvick`,
			"2026-11-25T18:14:15.000003Z", "ERROR",
			F{"facility": "auth", "severity": "crit", "hostname": "host1", "app_name": "su", "procid": "4123", "user": "lonvick"},
			N{"procid": 4123}, false},
		{"RFC 5424 nil values, escapes, two SD elements", "", `<13>1 - - - - - [a@1 x="q\"uote\]"][b@2 y="1"] hi`,
			"", "INFO",
			F{"facility": "user", "severity": "notice", "a@1.x": `q"uote]`, "b@2.y": "1"},
			N{"b@2.y": 1}, false},
		{"RFC 5424 cut in its structured data (auto: text)", "", `<13>1 2026-11-25T10:00:00Z h app - - [a@1 x="oops`,
			"2026-11-25T10:00:00Z", "", F{}, N{}, false},
		{"RFC 5424 cut in its structured data (syslog: unparsed)", "syslog", `<13>1 2026-11-25T10:00:00Z h app - - [a@1 x="oops`,
			"2026-11-25T10:00:00Z", "", F{}, N{}, true},
		{"RFC 3164 with PRI", "", `<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8`,
			"2026-10-11T22:14:15Z", "ERROR",
			F{"facility": "auth", "severity": "crit", "hostname": "mymachine", "app_name": "su"}, N{}, false},
		{"RFC 3164 without PRI (/var/log/syslog)", "", `Nov 25 09:00:01 web1 CRON[12345]: (root) CMD (command -v debian-sa1 > /dev/null && debian-sa1 1 1)`,
			"2026-11-25T09:00:01Z", "",
			F{"hostname": "web1", "app_name": "CRON", "procid": "12345"}, N{"procid": 12345}, false},
		{"BSD header, space-padded day, level in the message", "", `Nov  5 09:00:01 web1 app[7]: ERROR db down retries=3`,
			"2026-11-05T09:00:01Z", "ERROR",
			F{"hostname": "web1", "app_name": "app", "procid": "7", "retries": "3"}, N{"procid": 7, "retries": 3}, false},
		{"kernel line", "", `Nov 25 10:00:00 web1 kernel: [12345.678] Out of memory: Killed process 1234 (java)`,
			"2026-11-25T10:00:00Z", "", F{"hostname": "web1", "app_name": "kernel"}, N{}, false},
		{"rsyslog file format", "", `2026-11-25T11:30:00.123456+08:00 web1 sshd[999]: Accepted publickey for deploy from 192.0.2.4 port 51234 ssh2`,
			"2026-11-25T03:30:00.123456Z", "",
			F{"hostname": "web1", "app_name": "sshd", "procid": "999"}, N{"procid": 999}, false},
		{"rsyslog file format cut after the host (auto: text)", "", `2026-11-25T11:30:00.123456+08:00 web1`,
			"2026-11-25T03:30:00.123456Z", "", F{}, N{}, false},
		{"BSD header cut in the tag (auto: text)", "", `Nov 25 09:00:01 web1 CRON[123`,
			"2026-11-25T09:00:01Z", "", F{}, N{}, false},
		{"BSD header cut in the tag (syslog)", "syslog", `Nov 25 09:00:01 web1 CRON[123`,
			"2026-11-25T09:00:01Z", "", F{"hostname": "web1"}, N{}, false},
		{"BSD header without a tag (auto: text)", "", `Nov 25 10:00:00 web1 something happened`,
			"2026-11-25T10:00:00Z", "", F{}, N{}, false},
		{"BSD header without a tag (syslog)", "syslog", `Nov 25 10:00:00 web1 something happened`,
			"2026-11-25T10:00:00Z", "", F{"hostname": "web1"}, N{}, false},
		{"PRI out of range (auto: text)", "", `<999>Nov 25 10:00:00 web1 app: x`, "2026-11-25T10:00:00Z", "", F{}, N{}, false},
		{"PRI and nothing else", "", `<13>`, "", "INFO", F{"facility": "user", "severity": "notice"}, N{}, false},
		{"PRI and a message without a header", "", `<11>disk full dev=sda1`, "", "ERROR", F{"facility": "user", "severity": "err", "dev": "sda1"}, N{}, false},
		{"a level word is no host name", "", `2026-11-25T10:00:00Z INFO main: started port=80`,
			"2026-11-25T10:00:00Z", "INFO", F{"port": "80"}, N{"port": 80}, false},
		{"syslog parser on an access line", "syslog", `10.0.0.1 - - [25/Nov/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 1`,
			"2026-11-25T10:00:00Z", "", F{}, N{}, true},

		// JSON, logfmt, none, regex.
		{"JSON", "", `{"ts":"2026-11-25T10:00:00Z","level":"warn","status":503,"msg":"upstream slow"}`,
			"2026-11-25T10:00:00Z", "WARN", F{"ts": "2026-11-25T10:00:00Z", "level": "warn", "status": "503", "msg": "upstream slow"}, N{"status": 503}, false},
		{"JSON cut short (auto: text)", "", `{"ts":"2026-11-25T10:00:00Z","level":"warn","sta`, "2026-11-25T10:00:00Z", "WARN", F{}, N{}, false},
		{"JSON cut short (json: unparsed)", "json", `{"ts":"2026-11-25T10:00:00Z","level":"warn","sta`, "2026-11-25T10:00:00Z", "WARN", F{}, N{}, true},
		{"logfmt", "logfmt", `time=2026-11-25T10:00:00Z level=info msg="hello world" dur=12ms n=3`,
			"2026-11-25T10:00:00Z", "INFO", F{"time": "2026-11-25T10:00:00Z", "level": "info", "msg": "hello world", "dur": "12ms", "n": "3"}, N{"n": 3}, false},
		{"logfmt with a bad quote", "", `level=error msg="unterminated n=1`, "", "ERROR", F{"level": "error"}, N{}, false},
		{"none", "none", `2026-11-25T10:00:00Z WARN disk used=0.97`, "2026-11-25T10:00:00Z", "WARN", F{}, N{}, false},
		{"none on an access line", "none", `10.0.0.1 - - [25/Nov/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 1`, "2026-11-25T10:00:00Z", "", F{}, N{}, false},
		{"regex", `regex:^(?P<client>\S+) (?P<verb>[A-Z]+) (?P<status>\d{3}) (?P<time>\S+) (?P<level>\w+)(?: (?P<opt>x))?$`, `1.2.3.4 GET 503 2026-11-25T10:00:00+01:00 warning`,
			"2026-11-25T09:00:00Z", "WARN", F{"client": "1.2.3.4", "verb": "GET", "status": "503", "time": "2026-11-25T10:00:00+01:00", "level": "warning"}, N{"status": 503}, false},
		{"regex without a match", `regex:^(?P<client>\S+) (?P<verb>[A-Z]+)$`, `2026-11-25T10:00:00Z ERROR something else=1`,
			"2026-11-25T10:00:00Z", "ERROR", F{}, N{}, true},
		{"an invalid regex in an event is auto", `regex:(?P<x>`, `a=1`, "", "", F{"a": "1"}, N{"a": 1}, false},
		{"an unknown parser in an event is auto", `grok`, `a=1`, "", "", F{"a": "1"}, N{"a": 1}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := parseForTest(t, c.spec, c.line, time.UTC, testNow, 64)
			wantTS, wantParsed := testNow, false
			if c.ts != "" {
				wantTS, wantParsed = utc(c.ts), true
			}
			if !got.ts.Equal(wantTS) || got.parsed != wantParsed {
				t.Errorf("ts %v (found %v), want %v (found %v)", got.ts, got.parsed, wantTS, wantParsed)
			}
			if got.level != c.level {
				t.Errorf("level %q, want %q", got.level, c.level)
			}
			if !maps.Equal(got.fields, c.fields) {
				t.Errorf("fields\n got %v\nwant %v", got.fields, c.fields)
			}
			if !maps.Equal(got.nums, c.nums) {
				t.Errorf("numbers\n got %v\nwant %v", got.nums, c.nums)
			}
			if got.unparsed != c.unparsed {
				t.Errorf("unparsed %v, want %v", got.unparsed, c.unparsed)
			}
		})
	}
}

// TestZonelessTimesInTheBoxZone: on a box set to Asia/Shanghai, a time
// written without a zone is read there (8 hours before the same clock
// reading in UTC); a time with a zone is as written.
func TestZonelessTimesInTheBoxZone(t *testing.T) {
	sh, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct{ spec, line, want string }{
		{"", "2026-11-25 18:00:00 INFO started", "2026-11-25T10:00:00Z"},
		{"", "2026-11-25 18:00:00,123 ERROR [main] c.e.App - boom", "2026-11-25T10:00:00.123Z"},
		{"", "2026/11/25 18:00:00 plain Go log", "2026-11-25T10:00:00Z"},
		{"", "Nov 25 18:00:00 web1 app[1]: hello", "2026-11-25T10:00:00Z"},
		{"", "<13>Nov 25 18:00:00 web1 app: hello", "2026-11-25T10:00:00Z"},
		{"", `{"time":"2026-11-25 18:00:00","msg":"x"}`, "2026-11-25T10:00:00Z"},
		{"regex:^(?P<time>[^|]+)\\|(?P<m>.*)$", "2026-11-25 18:00:00|x", "2026-11-25T10:00:00Z"},
		// Written with a zone: as written.
		{"", "2026-11-25T18:00:00Z INFO x", "2026-11-25T18:00:00Z"},
		{"", "2026-11-25T18:00:00+08:00 web1 app: x", "2026-11-25T10:00:00Z"},
		{"", `10.0.0.1 - - [25/Nov/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 1`, "2026-11-25T10:00:00Z"},
		{"", "<13>1 2026-11-25T10:00:00Z h a - - - x", "2026-11-25T10:00:00Z"},
	}
	for _, c := range cases {
		got := parseForTest(t, c.spec, c.line, sh, testNow, 64)
		if !got.parsed || !got.ts.Equal(utc(c.want)) {
			t.Errorf("%q in Asia/Shanghai: %v (found %v), want %s", c.line, got.ts, got.parsed, c.want)
		}
	}
	// The year of a BSD syslog time is the year at the box: just after
	// midnight on 1 January in Shanghai it is still the old year in UTC.
	now := time.Date(2026, 1, 1, 0, 30, 0, 0, sh)
	got := parseForTest(t, "", "Jan  1 00:10:00 web1 app: new year", sh, now, 64)
	if want := time.Date(2026, 1, 1, 0, 10, 0, 0, sh); !got.ts.Equal(want) {
		t.Errorf("new year line: %v, want %v", got.ts.UTC(), want.UTC())
	}
	got = parseForTest(t, "", "Dec 31 23:59:00 web1 app: old year", sh, now, 64)
	if want := time.Date(2025, 12, 31, 23, 59, 0, 0, sh); !got.ts.Equal(want) {
		t.Errorf("old year line: %v, want %v", got.ts.UTC(), want.UTC())
	}
}

// TestParserBounds: MaxFieldsPerLine holds for every parser (the rest
// flagged), and a huge line costs a bounded scan and no panic.
func TestParserBounds(t *testing.T) {
	combined := `10.0.0.5 - bob [25/Nov/2026:10:00:00 +0000] "POST /x HTTP/2.0" 502 157 "-" "curl/8.5.0" rt=1.5 a=1 b=2`
	for _, c := range []struct{ spec, line string }{
		{"", combined},
		{"", `<165>1 2026-11-25T10:14:15Z h app 1 m [x@1 a="1" b="2" c="3"] k=v`},
		{"", `Nov 25 10:00:00 web1 app[1]: a=1 b=2 c=3`},
		{`regex:(?P<a>\w+) (?P<b>\w+) (?P<c>\w+) (?P<d>\w+)`, "w x y z"},
	} {
		got := parseForTest(t, c.spec, c.line, time.UTC, testNow, 3)
		if len(got.fields) != 3 || !got.dropped {
			t.Errorf("%q with 3 fields a line: %d fields %v, dropped %v", c.line, len(got.fields), got.fields, got.dropped)
		}
	}
	// The per-shard bound on names: the same admit path.
	var cache specCache
	names := newFieldNames(2, nil)
	ex := parseRecord(combined, testNow, nil, testNow, 64, cache.parser("nginx"), time.UTC)
	ex.admit(names)
	if len(ex.fields) != 2 || !ex.dropped || names.count() != 2 {
		t.Errorf("2 names a shard: fields %v dropped %v", ex.fields, ex.dropped)
	}

	big := strings.Repeat("a", 1<<20)
	for _, spec := range []string{"", "nginx", "syslog", "json", "logfmt", "none", `regex:(?P<x>a+)$`} {
		for _, line := range []string{
			`1.2.3.4 - - [25/Nov/2026:10:00:00 +0000] "GET /` + big + `" 200 1`,
			`1.2.3.4 - - [25/Nov/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 1 "` + big,
			`<13>1 2026-11-25T10:00:00Z h a - - [x@1 a="` + big + `"]`,
			`Nov 25 10:00:00 web1 ` + big,
			`{"a":"` + big,
			big,
		} {
			got := parseForTest(t, spec, line, time.UTC, testNow, 64)
			for k, v := range got.fields {
				if len(v) > 20<<10 {
					t.Errorf("parser %q on a 1 MiB line: field %s of %d bytes", spec, k, len(v))
				}
			}
		}
	}
}

// TestSpecCache: parsers and zones are built once per text; what an event
// names that logbox does not know is auto and the indexer's zone.
func TestSpecCache(t *testing.T) {
	var c specCache
	re := `regex:(?P<a>\d+)`
	if p1, p2 := c.parser(re), c.parser(re); p1 != p2 || p1.kind != parseRegex {
		t.Errorf("regex parser built twice or wrong: %p %p", p1, p2)
	}
	if c.parser("") != autoParser || c.parser("auto") != autoParser || c.parser("nope") != autoParser || c.parser("regex:(") != autoParser {
		t.Error("unknown or invalid parser is not auto")
	}
	if c.parser("nginx").kind != parseAccess || c.parser("apache").kind != parseAccess || c.parser("none").kind != parseNone {
		t.Error("named parsers")
	}
	for i := range maxCached + 10 {
		c.parser(fmt.Sprintf("regex:(?P<a>%d)", i))
	}
	if n := len(c.parsers); n > maxCached {
		t.Errorf("parser cache holds %d", n)
	}
	def := time.FixedZone("indexer", 3600)
	at := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	for tz, want := range map[string]int{"": 3600, "UTC": 0, "Asia/Shanghai": 8 * 3600, "+05:30": 5*3600 + 1800, "-03:00": -3 * 3600, "Mars/Olympus": 3600, "+99:00": 3600, "../../etc/passwd": 3600} {
		z := c.zone(tz, def)
		if _, off := at.In(z).Zone(); off != want {
			t.Errorf("zone %q: offset %d, want %d", tz, off, want)
		}
	}
	if c.zone("Asia/Shanghai", def) != c.zone("Asia/Shanghai", def) {
		t.Error("zone loaded twice")
	}
}

// FuzzParsers: no parser panics or takes more than the line bound of
// fields, whatever the line.
func FuzzParsers(f *testing.F) {
	for _, s := range []string{
		`203.0.113.7 - - [25/Nov/2026:10:15:32 +0100] "GET /i HTTP/1.1" 200 5316 "-" "ua" rt=0.1`,
		`<165>1 2026-11-25T10:14:15.003Z h app - ID47 [a@1 x="3" y="\"]"][b z="1"] msg k=v`,
		`<34>Oct 11 22:14:15 mymachine su[1]: x`, `Nov 25 09:00:01 web1 CRON[12345]: x`,
		`2026-11-25T11:30:00.123456+08:00 web1 sshd[999]: x`, `{"a":{"b":[1,2]}}`, `a=1 b="x y"`, `<`, `<1`, `<1>1 `,
	} {
		f.Add(s)
	}
	var c specCache
	specs := []string{"", "nginx", "syslog", "json", "logfmt", "none", `regex:(?P<a>\S+) (?P<time>\S+)`}
	f.Fuzz(func(t *testing.T, line string) {
		for _, spec := range specs {
			ex := parseRecord(line, testNow, nil, testNow, 8, c.parser(spec), time.UTC)
			if len(ex.leaves) > 8 {
				t.Fatalf("parser %q: %d leaves", spec, len(ex.leaves))
			}
			if ex.parsed && ex.ts.After(testNow.Add(maxFuture)) {
				t.Fatalf("parser %q: time %v", spec, ex.ts)
			}
		}
	})
}

// TestIndexReadsRecordParserAndZone: Index parses each record with the
// parser and zone it names; a record naming none (another producer's
// event) gets auto and Config.Zone; records of one batch may differ.
func TestIndexReadsRecordParserAndZone(t *testing.T) {
	indexer := time.FixedZone("indexer", -5*3600)
	now := time.Now().Truncate(time.Second)
	ix, err := Open(Config{Dir: filepath.Join(t.TempDir(), "idx"), Zone: indexer}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	wall := func(z *time.Location) string { return now.Add(-time.Hour).In(z).Format("2006-01-02 15:04:05") }
	sh, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	recs := []pipeline.Record{
		{Line: wall(indexer) + " tzdefault a=1"},
		{Line: wall(sh) + " tzshanghai a=1", TZ: "Asia/Shanghai"},
		{Line: wall(time.FixedZone("", 5*3600+1800)) + " tzoffset a=1", TZ: "+05:30"},
		{Line: wall(sh) + " tznone a=1", TZ: "Asia/Shanghai", Parser: "none"},
		{Line: "7 GET tzregex", Parser: `regex:^(?P<n>\d+) (?P<verb>[A-Z]+)`},
		{Line: "tzunfit no digits", Parser: `regex:^(?P<n>\d+) (?P<verb>[A-Z]+)`},
		{Line: "<165>1 " + now.Add(-time.Minute).UTC().Format(time.RFC3339) + ` web1 evntslog - ID47 [exampleSDID@32473 eventID="1011"][origin ip="10.0.0.1"] sdline`},
	}
	for i := range recs {
		recs[i].TS, recs[i].Host, recs[i].FileID, recs[i].Offset = now, "h", "f", int64(i*100)
	}
	if err := ix.Index(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	hit := func(q string) pipeline.Hit {
		t.Helper()
		res, err := ix.Search(context.Background(), pipeline.SearchRequest{Query: q, Limit: 10})
		if err != nil || len(res.Hits) != 1 {
			t.Fatalf("%s: %d hits, %v", q, len(res.Hits), err)
		}
		return res.Hits[0]
	}
	for _, q := range []string{"tzdefault", "tzshanghai", "tzoffset", "tznone"} {
		if h := hit(q); !h.TS.Equal(now.Add(-time.Hour)) {
			t.Errorf("%s: ts %v, want %v", q, h.TS, now.Add(-time.Hour))
		}
	}
	if h := hit("tznone"); len(h.Fields) != 0 {
		t.Errorf("parser none: fields %v", h.Fields)
	}
	if h := hit("+n:>5 +verb:GET"); h.Fields["n"] != "7" {
		t.Errorf("regex parser: fields %v", h.Fields)
	}
	if h := hit("flags:unparsed"); !strings.Contains(h.Line, "tzunfit") || len(h.Fields) != 0 {
		t.Errorf("unfit line: %+v", h)
	}
	// Syslog fields, structured data included, answer queries.
	for _, q := range []string{"+severity:notice +facility:local4 +app_name:evntslog", "exampleSDID@32473.eventID:>1000", "origin.ip:10.0.0.1"} {
		if h := hit(q); !strings.Contains(h.Line, "sdline") || h.Level != "INFO" {
			t.Errorf("%s: %+v", q, h)
		}
	}
	if n := ix.Stats().LinesUnparsed; n != 1 {
		t.Errorf("lines unparsed %d, want 1", n)
	}
}

// TestSpecCacheConcurrent: the cores that parse a batch share the cache
// (run with -race).
func TestSpecCacheConcurrent(t *testing.T) {
	var c specCache
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 400 {
				spec := fmt.Sprintf("regex:(?P<a>%d)", (i*7+g)%(maxCached+40))
				if p := c.parser(spec); p.kind != parseRegex {
					t.Errorf("%s: kind %d", spec, p.kind)
					return
				}
				tz := []string{"Asia/Shanghai", "+08:00", "Europe/Berlin", "bad/zone"}[(i+g)%4]
				if z := c.zone(tz, time.UTC); z == nil {
					t.Errorf("%s: nil zone", tz)
					return
				}
			}
		}()
	}
	wg.Wait()
}
