package index

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/analysis"
	"github.com/blevesearch/bleve/v2/analysis/analyzer/custom"
	"github.com/blevesearch/bleve/v2/analysis/analyzer/keyword"
	"github.com/blevesearch/bleve/v2/analysis/token/lowercase"
	"github.com/blevesearch/bleve/v2/analysis/tokenizer/single"
	"github.com/blevesearch/bleve/v2/mapping"
	"github.com/blevesearch/bleve/v2/registry"
	"github.com/blevesearch/bleve/v2/search/query"

	"github.com/logbox/logbox/appliance/pipeline"
)

// The matcher is checked against Bleve itself: the same lines are indexed
// one document per line with an analyzer that yields exactly the parts, and
// every query must select the same lines both ways.

// testPartsAnalyzer is the name of an analyzer yielding the parts of a text
// (line.go's rules), with positions so that phrases work.
const testPartsAnalyzer = "logbox_test_parts"

func init() {
	err := registry.RegisterAnalyzer(testPartsAnalyzer, func(map[string]interface{}, *registry.Cache) (analysis.Analyzer, error) {
		return partsTestAnalyzer{}, nil
	})
	if err != nil {
		panic(err)
	}
}

type partsTestAnalyzer struct{}

func (partsTestAnalyzer) Analyze(in []byte) analysis.TokenStream {
	var ts analysis.TokenStream
	s := string(in)
	eachPart(s, func(a, b int) {
		if c, _ := classAtS(s, a); c == clCJK {
			// As blocks index a CJK run (terms.go): its bigrams and last
			// character.
			cjkGrams(s[a:b], func(g string) {
				ts = append(ts, &analysis.Token{Term: []byte(g), Start: a, End: b, Position: len(ts) + 1, Type: analysis.Ideographic})
			})
			return
		}
		ts = append(ts, &analysis.Token{Term: []byte(lowerASCII(s[a:b])), Start: a, End: b, Position: len(ts) + 1, Type: analysis.AlphaNumeric})
	})
	return ts
}

// testLine is one line of the corpus with what its block shares.
type testLine struct {
	info blockInfo
	l    storedLine
}

func (t *testLine) id() string { return pipeline.RecordID(t.info.Host, t.info.FileID, t.l.Offset) }

var testBase = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

// testCorpus returns ~300 lines of six files, in file order.
func testCorpus() []testLine {
	r := rand.New(rand.NewSource(7))
	pick := func(xs ...string) string { return xs[r.Intn(len(xs))] }
	type file struct {
		info blockInfo
		gen  func(i int) (string, string, []string, []kv, []kn)
	}
	methods := []string{"GET", "POST", "PUT", "DELETE"}
	paths := []string{"/api/v1/users", "/api/v1/orders/42", "/api/v2/users", "/health", "/static/app.js", "/login?next=/home", "/api/v1/users?id=42"}
	statuses := []string{"200", "200", "200", "201", "301", "404", "500", "502", "503"}
	ips := []string{"192.168.1.10", "192.168.1.100", "10.0.0.5", "172.16.0.1", "127.0.0.1"}
	agents := []string{"curl/8.4.0", "Mozilla/5.0 (X11; Linux x86_64)", "Go-http-client/1.1", "kube-probe/1.29"}
	nginx := func(i int) (string, string, []string, []kv, []kn) {
		m, p, st, ip := pick(methods...), pick(paths...), pick(statuses...), pick(ips...)
		lat := float64(r.Intn(1200))
		size := float64(r.Intn(5000))
		line := fmt.Sprintf(`%s - - [25/Nov/2026:10:%02d:%02d +0000] "%s %s HTTP/1.1" %s %d "-" "%s" rt=%.3f`,
			ip, i%60, (i*7)%60, m, p, st, int(size), pick(agents...), lat/1000)
		var flags []string
		if i%17 == 3 {
			flags = []string{"truncated"}
		}
		var stn float64
		fmt.Sscan(st, &stn)
		return line, "", flags,
			[]kv{{"status", st}, {"method", m}, {"path", p}, {"client", ip}},
			[]kn{{"status", stn}, {"bytes", size}, {"latency_ms", lat}}
	}
	appMsgs := []string{
		"upstream timed out (110: Connection timed out) while reading response header",
		"connect() failed (111: Connection refused) while connecting to upstream",
		"user %s logged in from %s",
		"payment-gateway: timeout after %dms",
		"cache miss for key user:%d",
		"Retrying request to user-service (attempt %d)",
		"database connection pool exhausted",
		"NullPointerException at com.example.OrderService.process(OrderService.java:%d)",
		"request completed in %dms",
		"Timeout waiting for lock; TIMEOUT again",
	}
	users := []string{"alice", "bob", "josé", "Zoë", "admin"}
	app := func(i int) (string, string, []string, []kv, []kn) {
		lvl := pick("ERROR", "WARN", "INFO", "INFO", "DEBUG")
		msg := pick(appMsgs...)
		switch strings.Count(msg, "%") {
		case 1:
			if strings.Contains(msg, "%s") {
				msg = fmt.Sprintf(msg, pick(users...))
			} else {
				msg = fmt.Sprintf(msg, r.Intn(5000))
			}
		case 2:
			msg = fmt.Sprintf(msg, pick(users...), pick(ips...))
		}
		line := fmt.Sprintf("2026-11-25T10:%02d:%02d.%03dZ %s [worker-%d] %s", i%60, i%60, r.Intn(1000), lvl, r.Intn(4), msg)
		var flags []string
		if strings.HasPrefix(msg, "NullPointer") {
			flags = []string{"multiline"}
			if i%2 == 0 {
				flags = append(flags, "truncated")
			}
		}
		var fields []kv
		if r.Intn(3) == 0 {
			fields = append(fields, kv{"user", pick(users...)})
		}
		if r.Intn(4) == 0 {
			fields = append(fields, kv{"tags", "a"}, kv{"tags", pick("b", "c", "Prod")})
		}
		var nums []kn
		if r.Intn(2) == 0 {
			nums = append(nums, kn{"latency_ms", float64(r.Intn(900)) + 0.5})
		}
		return line, lvl, flags, fields, nums
	}
	events := func(i int) (string, string, []string, []kv, []kn) {
		lvl := pick("error", "warn", "info")
		st := pick(statuses...)
		user := pick(users...)
		msg := pick("naïve café error", "order placed", "Order FAILED", "timeout talking to db", "GET /api/v1/users done")
		lat := float64(r.Intn(2000)) / 4
		line := fmt.Sprintf(`{"level":"%s","msg":"%s","status":%s,"user":"%s","latency_ms":%g}`, lvl, msg, st, user, lat)
		var stn float64
		fmt.Sscan(st, &stn)
		return line, strings.ToUpper(lvl), nil,
			[]kv{{"level", lvl}, {"msg", msg}, {"status", st}, {"user", user}},
			[]kn{{"status", stn}, {"latency_ms", lat}}
	}
	misc := []string{
		"Überweisung fehlgeschlagen: Größe überschritten — ERROR ünïcödé 日本語 error",
		"2026-11-25T10:00:00Z INFO user=josé request ok",
		`{"level":"error","msg":"naïve café error","status":500}`,
		"Connection refused by 10.0.0.5:5432 (retrying in 5s)",
		"GET /api/v1/users?id=42 HTTP/1.1",
		"user-service: timeout after 30000ms talking to payment-gateway",
		"x-request-id=abc-123-DEF trace_id=7f3a",
		"Timeout TIMEOUT timeout TimeOut",
		"errors: 3 error(s), 0 warnings",
		"erorr typo line",
		"tiemout transposed letters",
		"eror and err and errr",
		"ERROR: disk /dev/sda1 is 95% full",
		"kernel: [12345.678] eth0: link up, 1000 Mbps",
		"панель управления: ошибка соединения",
		"中文日志 错误 error 500",
		"status=500 latency=250ms path=/api/v1/orders",
		"The quick brown fox jumps over the lazy dog",
		"the QUICK brown FOX",
		"quick-brown fox",
		"foo_bar baz-qux 42",
		"σφάλμα: Σφάλμα ΣΦΆΛΜΑ",
		"   leading spaces and trailing   ",
		"a",
		"500",
		"5000 50 500.0",
		"level:error in text",
		"db-1 replication lag 3s",
		"web-2 upstream ok",
		"café Café CAFÉ",
	}
	miscGen := func(i int) (string, string, []string, []kv, []kn) {
		line := misc[i%len(misc)]
		lvl := ""
		switch {
		case strings.Contains(line, "ERROR"):
			lvl = "ERROR"
		case strings.Contains(line, "INFO"):
			lvl = "INFO"
		}
		var flags []string
		if i%5 == 0 {
			flags = []string{"truncated", "partial"}
		}
		return line, lvl, flags, nil, nil
	}
	files := []file{
		{blockInfo{"web-1", "/var/log/nginx/access.log", "nginx", "f1", ""}, nginx},
		{blockInfo{"web-2", "/var/log/nginx/access.log", "nginx", "f2", ""}, nginx},
		{blockInfo{"web-1", "/var/log/app/app.log", "app", "f3", ""}, app},
		{blockInfo{"db-1", "/var/log/app/app.log", "app", "f4", ""}, app},
		{blockInfo{"web-2", "/var/log/app/events.json", "events", "f5", ""}, events},
		{blockInfo{"db-1", "/var/log/misc.log", "", "f6", ""}, miscGen},
	}
	var out []testLine
	for fi, f := range files {
		off := int64(0)
		for i := range 50 {
			line, lvl, flags, fields, nums := f.gen(i)
			ts := testBase.Add(time.Duration(i*60+fi*7) * time.Second).Add(time.Duration(r.Intn(1000)) * time.Millisecond)
			out = append(out, testLine{info: f.info, l: storedLine{
				TS: ts.UnixNano(), Ingested: ts.Add(time.Duration(r.Intn(3000)) * time.Millisecond).UnixNano(),
				Offset: off, Level: lvl, Flags: flags, Fields: fields, Nums: nums, Line: line,
			}})
			off += int64(len(line)) + 1
		}
	}
	return out
}

// lineMapping is the mapping of the one-document-per-line reference index.
func lineMapping(t testing.TB) *mapping.IndexMappingImpl {
	im := bleve.NewIndexMapping()
	im.DefaultAnalyzer = keyword.Name
	im.DefaultField = "line"
	if err := im.AddCustomAnalyzer("lower_keyword", map[string]interface{}{
		"type": custom.Name, "tokenizer": single.Name, "token_filters": []string{lowercase.Name},
	}); err != nil {
		t.Fatal(err)
	}
	text := func(analyzer string) *mapping.FieldMapping {
		fm := bleve.NewTextFieldMapping()
		fm.Analyzer = analyzer
		fm.Store = false
		fm.IncludeInAll = false
		return fm
	}
	dm := bleve.NewDocumentMapping()
	dm.AddFieldMappingsAt("line", text(testPartsAnalyzer))
	for _, f := range []string{"host", "source", "source_name", "file_id", "flags"} {
		dm.AddFieldMappingsAt(f, text(keyword.Name))
	}
	dm.AddFieldMappingsAt("level", text("lower_keyword"))
	dm.AddFieldMappingsAt("offset", bleve.NewNumericFieldMapping())
	dm.AddFieldMappingsAt("ts", bleve.NewDateTimeFieldMapping())
	dm.AddFieldMappingsAt("ingested", bleve.NewDateTimeFieldMapping())
	// fields.* and num.* are mapped dynamically: strings as keywords (the
	// default analyzer), numbers as numbers.
	im.DefaultMapping = dm
	im.StoreDynamic = false
	return im
}

// lineDoc is the reference document of one line.
func lineDoc(tl *testLine) map[string]interface{} {
	l := &tl.l
	d := map[string]interface{}{
		"line": l.Line, "host": tl.info.Host, "source": tl.info.Source, "file_id": tl.info.FileID,
		"offset": float64(l.Offset), "ts": time.Unix(0, l.TS).UTC(), "ingested": time.Unix(0, l.Ingested).UTC(),
	}
	if tl.info.SourceName != "" {
		d["source_name"] = tl.info.SourceName
	}
	if l.Level != "" {
		d["level"] = l.Level
	}
	if len(l.Flags) > 0 {
		d["flags"] = l.Flags
	}
	if len(l.Fields) > 0 {
		fields := map[string]interface{}{}
		for _, f := range l.Fields {
			vs, _ := fields[f.K].([]string)
			fields[f.K] = append(vs, f.V)
		}
		d["fields"] = fields
	}
	if len(l.Nums) > 0 {
		nums := map[string]interface{}{}
		for _, f := range l.Nums {
			vs, _ := nums[f.K].([]float64)
			nums[f.K] = append(vs, f.V)
		}
		d["num"] = nums
	}
	return d
}

func openTestIndex(t testing.TB, m mapping.IndexMapping, docs map[string]map[string]interface{}) bleve.Index {
	t.Helper()
	idx, err := bleve.New(filepath.Join(t.TempDir(), "ref"), m)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { idx.Close() })
	b := idx.NewBatch()
	for id, d := range docs {
		if err := b.Index(id, d); err != nil {
			t.Fatal(err)
		}
	}
	if err := idx.Batch(b); err != nil {
		t.Fatal(err)
	}
	return idx
}

// searchIDs returns the IDs of every document q matches.
func searchIDs(t testing.TB, idx bleve.Index, q query.Query, size int) map[string]bool {
	t.Helper()
	req := bleve.NewSearchRequestOptions(q, size+1, 0, false)
	res, err := idx.Search(req)
	if err != nil {
		t.Fatalf("bleve search %s: %v", queryJSON(q), err)
	}
	out := map[string]bool{}
	for _, h := range res.Hits {
		out[h.ID] = true
	}
	return out
}

func queryJSON(q query.Query) string {
	if q == nil {
		return "<nil>"
	}
	b, err := json.Marshal(q)
	if err != nil {
		return fmt.Sprintf("%#v", q)
	}
	return string(b)
}

// forBleve applies to a parsed query what the matcher does on its own for
// the line text, so that the reference index sees the same question:
// wildcard, prefix, fuzzy and term queries on the text are lowercased,
// regular expressions on it get (?i), and "_all" is the text.
func forBleve(q query.Query) query.Query {
	isLine := func(f string) bool { return f == "" || f == "_all" || f == "line" }
	for _, sub := range children(q) {
		forBleve(sub)
	}
	switch q := q.(type) {
	case *query.WildcardQuery:
		if isLine(q.FieldVal) {
			q.Wildcard, q.FieldVal = lowerASCII(q.Wildcard), "line"
		}
	case *query.PrefixQuery:
		if isLine(q.FieldVal) {
			q.Prefix, q.FieldVal = lowerASCII(q.Prefix), "line"
		}
	case *query.FuzzyQuery:
		if isLine(q.FieldVal) {
			q.Term, q.FieldVal = lowerASCII(q.Term), "line"
		}
	case *query.TermQuery:
		if isLine(q.FieldVal) {
			q.Term, q.FieldVal = lowerASCII(q.Term), "line"
		}
	case *query.RegexpQuery:
		if isLine(q.FieldVal) {
			q.Regexp, q.FieldVal = "(?i)"+strings.TrimPrefix(q.Regexp, "^"), "line"
		}
	case *query.MatchQuery:
		if isLine(q.FieldVal) {
			q.FieldVal = "line"
		}
	case *query.MatchPhraseQuery:
		if isLine(q.FieldVal) {
			q.FieldVal = "line"
		}
	}
	return q
}

// diffCase is a query of the differential test: a query string (with an
// optional time range) or a query built directly.
type diffCase struct {
	q        string
	from, to time.Time
	build    func() query.Query
	empty    bool // Bleve is expected to find nothing
}

func (c diffCase) String() string {
	if c.build != nil {
		return "built " + queryJSON(c.build())
	}
	if c.from.IsZero() && c.to.IsZero() {
		return c.q
	}
	return fmt.Sprintf("%s [%s, %s)", c.q, c.from.Format(time.TimeOnly), c.to.Format(time.TimeOnly))
}

// query returns a fresh copy of the case's query, as the index would run it.
func (c diffCase) query(t testing.TB) query.Query {
	t.Helper()
	if c.build != nil {
		return c.build()
	}
	q, err := buildQuery(c.q, c.from, c.to)
	if err != nil {
		t.Fatalf("%s: %v", c, err)
	}
	return q
}

func at(hms string) time.Time {
	d, err := time.Parse(time.TimeOnly, hms)
	if err != nil {
		panic(err)
	}
	return testBase.Add(time.Duration(d.Hour())*time.Hour + time.Duration(d.Minute())*time.Minute + time.Duration(d.Second())*time.Second - 10*time.Hour)
}

func term(field, t string) query.Query {
	q := query.NewTermQuery(t)
	q.SetField(field)
	return q
}

func match(field, t string) query.Query {
	q := query.NewMatchQuery(t)
	q.SetField(field)
	return q
}

// diffCases are compared with Bleve. None has a query word of several
// parts: those are where the matcher differs on purpose (see
// TestMatchMultiPartWords).
var diffCases = []diffCase{
	// Words.
	{q: "error"}, {q: "ERROR"}, {q: "Error timeout"}, {q: "get"}, {q: "users"},
	{q: "josé"}, {q: "Zoë"}, {q: "zoë"}, {q: "größe"}, {q: "Überweisung"}, {q: "über", empty: true},
	{q: "日本語"}, {q: "café"}, {q: "CAFÉ"}, {q: "500"}, {q: "42"}, {q: "a"},
	{q: "nosuchword", empty: true}, {q: "_all:timeout"}, {q: "line:refused"},
	// Phrases on the text.
	{q: `"connection refused"`}, {q: `"GET /api"`}, {q: `"timed out"`},
	{q: `"fehlgeschlagen größe"`}, {q: `"fehlgeschlagen überschritten"`, empty: true},
	{q: `"api v1 users"`}, {q: `"Connection timed out"`}, {q: `"the quick brown"`}, {q: `"quick brown"`},
	{q: `"::"`, empty: true}, {q: `foo -"::"`, empty: true}, {q: `error -"::"`}, {q: `+"::" +timeout`},
	// Every field kind.
	{q: "host:web-1"}, {q: `host:"web-2"`}, {q: "host:WEB-1", empty: true}, {q: "host:web", empty: true},
	{q: `source:"/var/log/app/app.log"`}, {q: "source_name:nginx"}, {q: "source_name:events"},
	{q: "file_id:f4"}, {q: "level:error"}, {q: "level:ERROR"}, {q: "level:Warn"}, {q: `level:"info"`},
	{q: "flags:truncated"}, {q: "flags:multiline"}, {q: "flags:Truncated", empty: true},
	{q: "status:500"}, {q: "status:404"}, {q: "fields.status:502"}, {q: "method:GET"}, {q: "method:get", empty: true},
	{q: "user:josé"}, {q: `user:"Zoë"`}, {q: "tags:a"}, {q: "tags:Prod"}, {q: `msg:"naïve café error"`},
	{q: "client:10.0.0.5"}, {q: `path:"/api/v1/users"`},
	{q: "nosuchfield:foo", empty: true}, {q: "nosuchfield:>5", empty: true}, {q: "num.status:500"},
	// Numbers, ranges and dates.
	{q: "latency_ms:>500"}, {q: "latency_ms:>=250"}, {q: "latency_ms:<10"}, {q: "latency_ms:<=10.5"},
	{q: "status:>=500"}, {q: "status:<300"}, {q: "bytes:>4000"}, {q: "offset:>5000"}, {q: "offset:<=300"},
	{q: "offset:0"}, {q: "offset:>=0 -offset:>0"},
	{q: `ts:>"2026-11-25T10:30:00Z"`}, {q: `ts:<"2026-11-25T10:05:00Z"`}, {q: `ts:>="2026-11-25T10:20:07Z" ts:<="2026-11-25T10:00:07Z"`},
	{q: `ingested:>"2026-11-25T10:45:00Z"`}, {q: `+level:error +ts:<"2026-11-25T10:25:00Z"`},
	{q: "error", from: at("10:10:00"), to: at("10:30:00")},
	{q: "*", from: at("10:10:00"), to: at("10:10:30")},
	{q: "-timeout", from: at("10:40:00")},
	{q: `"::"`, from: at("10:10:00"), to: at("10:30:00"), empty: true},
	// Wildcards, regular expressions, fuzziness.
	{q: "tim*"}, {q: "Tim*"}, {q: "us?r"}, {q: "con*ion"}, {q: "über*"}, {q: "host:web*"}, {q: "level:err*"},
	{q: "user:jo*"}, {q: "path:/api/v1/*"}, {q: "flags:trunc*"},
	{q: "/ti.*ut/"}, {q: "/5[0-9]{2}/"}, {q: "/us(er|ers)/"}, {q: "/TIME.*/"}, {q: "host:/web-[12]/"},
	{q: "level:/er.*/"}, {q: "user:/a[a-z]+/"}, {q: "/caf./"},
	{q: "eror~1"}, {q: "tiemout~1"}, {q: "timeuot~2"}, {q: "conection~1"}, {q: "ERR~1"}, {q: "host:web-3~1"},
	{q: "level:eror~1"}, {q: "user:jose~1"}, {q: "cafe~1"},
	// Boolean structure.
	{q: "+error -timeout"}, {q: "error timeout"}, {q: "-error"}, {q: "error -timeout"}, {q: "+error timeout"},
	{q: "+level:error +host:web-1"}, {q: `-"connection refused"`}, {q: `+"timed out" -host:web-1`},
	{q: `error -"naïve café error"`}, {q: "-level:info -level:debug"}, {q: "+host:db-1 -flags:truncated refused"},
	{q: "error timeout level:warn"}, {q: "+host:web-2 error timeout"}, {q: "-error -timeout -refused"},
	{q: `+"Connection refused" -"while connecting"`}, {q: `"(110: Connection timed out)"`}, {q: `-"timed out" +source_name:app`}, {q: "+status:500 -method:GET"},
	// Built queries: structures the parser does not make.
	{build: func() query.Query {
		d := query.NewDisjunctionQuery([]query.Query{match("", "error"), match("", "timeout"), match("level", "error")})
		d.SetMin(2)
		return d
	}},
	{build: func() query.Query { return query.NewConjunctionQuery(nil) }, empty: true},
	{build: func() query.Query {
		return query.NewConjunctionQuery([]query.Query{match("", "error"), query.NewMatchNoneQuery()})
	}, empty: true},
	{build: func() query.Query {
		return query.NewDisjunctionQuery([]query.Query{match("", "error"), query.NewMatchNoneQuery()})
	}},
	{build: func() query.Query {
		b := query.NewBooleanQuery([]query.Query{match("", "timeout")}, []query.Query{match("host", "web-1"), match("", "upstream")}, nil)
		b.SetMinShould(1)
		return b
	}},
	{build: func() query.Query {
		b := query.NewBooleanQuery(nil, []query.Query{match("host", "web-1"), match("", "error"), match("", "users")}, []query.Query{match("", "timeout")})
		b.SetMinShould(2)
		return b
	}},
	{build: func() query.Query {
		b := query.NewBooleanQuery(nil, nil, []query.Query{match("", "error")})
		b.AddFilter(match("source_name", "app"))
		return b
	}},
	{build: func() query.Query {
		b := query.NewBooleanQuery(nil, nil, nil)
		b.AddFilter(match("", "refused"))
		return b
	}},
	{build: func() query.Query {
		// A must clause that is a plain match query, should optional.
		b := &query.BooleanQuery{Must: match("", "timeout"), Should: match("host", "web-1")}
		return b
	}},
	{build: func() query.Query {
		// Should as a match query: its searcher is a disjunction with Min 1,
		// so it is required next to must.
		b := &query.BooleanQuery{Must: query.NewConjunctionQuery([]query.Query{match("", "timeout")}), Should: match("host", "web-1")}
		return b
	}},
	{build: func() query.Query {
		return &query.BooleanQuery{Must: query.NewMatchNoneQuery(), Should: query.NewDisjunctionQuery([]query.Query{match("", "refused")})}
	}},
	{build: func() query.Query {
		return &query.BooleanQuery{MustNot: query.NewMatchNoneQuery(), Should: query.NewDisjunctionQuery([]query.Query{match("", "refused")})}
	}},
	{build: func() query.Query {
		b := query.NewBooleanQuery([]query.Query{match("", "error")}, nil, nil)
		b.AddFilter(query.NewMatchNoneQuery())
		return b
	}, empty: true},
	{build: func() query.Query {
		return query.NewConjunctionQuery([]query.Query{term("line", "timeout"), term("level", "error")})
	}},
	{build: func() query.Query { return term("line", "TimeOut") }},
	{build: func() query.Query { return term("flags", "partial") }},
	{build: func() query.Query { q := query.NewPrefixQuery("tim"); q.SetField("line"); return q }},
	{build: func() query.Query { q := query.NewPrefixQuery("/var/log/a"); q.SetField("source"); return q }},
	{build: func() query.Query { q := query.NewFuzzyQuery("timeot"); q.SetField("line"); return q }},
	{build: func() query.Query {
		q := query.NewFuzzyQuery("erorr")
		q.SetFuzziness(2)
		q.SetPrefix(2)
		return q
	}},
	{build: func() query.Query {
		q := query.NewMatchQuery("connection refused")
		q.SetOperator(query.MatchQueryOperatorAnd)
		return q
	}},
	{build: func() query.Query {
		q := query.NewMatchQuery("timeout refused")
		q.SetField("line")
		return q
	}},
	{build: func() query.Query {
		q := query.NewMatchPhraseQuery("upstrem timed")
		q.SetFuzziness(1)
		return q
	}},
	{build: func() query.Query {
		q := query.NewMatchQuery("eror")
		q.SetFuzziness(1)
		q.SetPrefix(1)
		return q
	}},
	{build: func() query.Query {
		return query.NewDocIDQuery([]string{"web-1|f1|0", "db-1|f6|999999", "db-1|f4|" + "0"})
	}},
	{build: func() query.Query { return match("_id", "web-2|f5|0") }},
	{build: func() query.Query { return query.NewMatchAllQuery() }},
	{build: func() query.Query {
		// Default bounds: min inclusive, max exclusive.
		lo, hi := 404.0, 500.0
		q := query.NewNumericRangeQuery(&lo, &hi)
		q.SetField("num.status")
		return q
	}},
	{build: func() query.Query {
		lines := testCorpus()
		q := query.NewDateRangeQuery(time.Unix(0, lines[10].l.TS), time.Unix(0, lines[14].l.TS))
		q.SetField("ts")
		return q
	}},
	{build: func() query.Query {
		incl := true
		lo, hi := 100.0, 200.0
		q := query.NewNumericRangeInclusiveQuery(&lo, &hi, &incl, &incl)
		q.SetField("num.latency_ms")
		return q
	}},
}

// TestMatchAgainstBleve runs every differential case through the matcher
// and through a one-document-per-line Bleve index and compares the lines.
func TestMatchAgainstBleve(t *testing.T) {
	lines := testCorpus()
	docs := map[string]map[string]interface{}{}
	for i := range lines {
		docs[lines[i].id()] = lineDoc(&lines[i])
	}
	idx := openTestIndex(t, lineMapping(t), docs)
	for _, c := range diffCases {
		m, err := compileMatcher(c.query(t))
		if err != nil {
			t.Errorf("%s: compile: %v", c, err)
			continue
		}
		want := searchIDs(t, idx, forBleve(c.query(t)), len(lines))
		got := map[string]bool{}
		for i := range lines {
			if m.match(&lines[i].info, &lines[i].l) {
				got[lines[i].id()] = true
			}
		}
		if len(want) == 0 && !c.empty {
			t.Errorf("%s: Bleve finds nothing: a useless case", c)
		}
		if !maps.Equal(got, want) {
			var extra, missing []string
			for i := range lines {
				id := lines[i].id()
				switch {
				case got[id] && !want[id]:
					extra = append(extra, fmt.Sprintf("%s %q", id, lines[i].l.Line))
				case want[id] && !got[id]:
					missing = append(missing, fmt.Sprintf("%s %q", id, lines[i].l.Line))
				}
			}
			t.Errorf("%s: matcher %d lines, Bleve %d\n  only matcher: %s\n  only Bleve: %s", c, len(got), len(want),
				strings.Join(first(extra, 5), "\n    "), strings.Join(first(missing, 5), "\n    "))
		}
		t.Logf("%-40s %3d lines", c, len(got))
	}
}

func first(xs []string, n int) []string { return xs[:min(n, len(xs))] }

// TestMatchMultiPartWords checks the rule where the matcher differs from
// a parts-tokenizing Bleve: a word of several parts is a phrase of parts.
func TestMatchMultiPartWords(t *testing.T) {
	lines := []string{
		"client 192.168.1.10 connected",            // 0
		"client 192.168.1.100 connected",           // 1: 100 is not 10
		"via 10.192.168.1.10.5",                    // 2: the parts are in a row
		"192 168 1 10",                             // 3: any separators
		"168.192.1.10",                             // 4
		"GET /api/v1/users",                        // 5
		"api v2 v1",                                // 6
		"user-service timeout",                     // 7
		"user_service timeout",                     // 8: one part
		"service-user",                             // 9
		"X-Request-Id: 42",                         // 10
		"user service",                             // 11
		"the user-servise is down",                 // 12
		"Retrying request to user-service (again)", // 13
	}
	cases := []struct {
		q    string
		want []int
	}{
		{"192.168.1.10", []int{0, 2, 3}},
		{`"192.168.1.10"`, []int{0, 2, 3}},
		{"api/v1", []int{5}},
		{"API/V1", []int{5}},
		{"user-service", []int{7, 11, 13}},
		{"user-service~1", []int{7, 11, 12, 13}},
		{"x-request-id", []int{10}},
		{"192.168.1.10 api/v1", []int{0, 2, 3, 5}},
		{"+user-service -timeout", []int{11, 13}},
		{"-user-service", []int{0, 1, 2, 3, 4, 5, 6, 8, 9, 10, 12}},
		{"user:a-b", nil}, // a keyword field: whole value
		{"...", nil},      // no parts: nothing
	}
	tls := make([]testLine, len(lines))
	for i, l := range lines {
		tls[i] = testLine{info: blockInfo{Host: "h", FileID: "f"}, l: storedLine{Offset: int64(i), Line: l}}
	}
	for _, c := range cases {
		q, err := parseUserQuery(c.q)
		if err != nil {
			t.Fatalf("%s: %v", c.q, err)
		}
		m, err := compileMatcher(q)
		if err != nil {
			t.Fatalf("%s: %v", c.q, err)
		}
		var got []int
		for i := range tls {
			if m.match(&tls[i].info, &tls[i].l) {
				got = append(got, i)
			}
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%s: matched lines %v, want %v", c.q, got, c.want)
		}
	}
}

// TestMatchIDs checks queries on the line ID. A quoted ID is a phrase,
// which Bleve cannot run on _id (it keeps no positions there) but the
// matcher takes as the whole value, like any keyword field.
func TestMatchIDs(t *testing.T) {
	tls := make([]testLine, 5)
	for i := range tls {
		tls[i] = testLine{info: blockInfo{Host: "web-1", FileID: "f|x"}, l: storedLine{Offset: int64(i * 10), Line: "x"}}
	}
	cases := []struct {
		q    query.Query
		want []int
	}{
		{must(parseUserQuery(`_id:"web-1|f|x|20"`)), []int{2}},
		{must(parseUserQuery(`_id:"web-1|f|x|2"`)), nil},
		{must(parseUserQuery(`-_id:"web-1|f|x|20"`)), []int{0, 1, 3, 4}},
		{must(parseUserQuery(`_id:web-1*`)), []int{0, 1, 2, 3, 4}},
		{must(parseUserQuery(`_id:/w.*[|][13]0/`)), []int{1, 3}},
		{query.NewDocIDQuery([]string{"web-1|f|x|0", "web-1|f|x|40", "web-2|f|x|10"}), []int{0, 4}},
	}
	for _, c := range cases {
		m, err := compileMatcher(c.q)
		if err != nil {
			t.Fatalf("%s: %v", queryJSON(c.q), err)
		}
		var got []int
		for i := range tls {
			if m.match(&tls[i].info, &tls[i].l) {
				got = append(got, i)
			}
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%s: matched lines %v, want %v", queryJSON(c.q), got, c.want)
		}
		if m.candidate() != nil {
			t.Errorf("%s: candidate %s, want nil (blocks do not index IDs)", queryJSON(c.q), queryJSON(m.candidate()))
		}
	}
}

func must(q query.Query, err error) query.Query {
	if err != nil {
		panic(err)
	}
	return q
}

// TestCandidateSound indexes the corpus as blocks of 7 lines and checks
// that candidate never misses a block holding a matching line, and that it
// narrows the blocks for simple queries.
func TestCandidateSound(t *testing.T) {
	lines := testCorpus()
	type block struct {
		id    string
		lines []testLine
	}
	var blocks []block
	for i := 0; i < len(lines); {
		j := i + 1
		for j < len(lines) && j-i < 7 && lines[j].info == lines[i].info {
			j++
		}
		blocks = append(blocks, block{id: fmt.Sprintf("b%03d", len(blocks)), lines: lines[i:j]})
		i = j
	}
	docs := map[string]map[string]interface{}{}
	for _, b := range blocks {
		docs[b.id] = blockTestDoc(b.lines)
	}
	im := bleve.NewIndexMapping()
	im.DefaultAnalyzer = keyword.Name
	im.DefaultField = "line"
	im.StoreDynamic = false
	dm := bleve.NewDocumentMapping()
	fm := bleve.NewTextFieldMapping()
	fm.Analyzer = testPartsAnalyzer
	fm.Store, fm.IncludeTermVectors, fm.IncludeInAll = false, false, false
	dm.AddFieldMappingsAt("line", fm)
	im.DefaultMapping = dm
	idx := openTestIndex(t, im, docs)

	check := func(name string, q query.Query) int {
		m, err := compileMatcher(q)
		if err != nil {
			t.Errorf("%s: compile: %v", name, err)
			return -1
		}
		cq := m.candidate()
		var found map[string]bool
		if cq != nil {
			found = searchIDs(t, idx, cq, len(blocks))
		}
		for _, b := range blocks {
			if cq == nil || found[b.id] {
				continue
			}
			for i := range b.lines {
				if m.match(&b.lines[i].info, &b.lines[i].l) {
					t.Errorf("%s: candidate %s misses block %s with matching line %q", name, queryJSON(cq), b.id, b.lines[i].l.Line)
					break
				}
			}
		}
		if cq == nil {
			return len(blocks)
		}
		return len(found)
	}
	for _, c := range diffCases {
		check(c.String(), c.query(t))
	}
	for _, s := range []string{"192.168.1.10", "api/v1", "user-service~1", `"payment-gateway timeout"`} {
		q, err := parseUserQuery(s)
		if err != nil {
			t.Fatal(err)
		}
		check(s, q)
	}
	for _, s := range []string{"error", "refused", "host:web-1", "status:500", "level:error", "latency_ms:>1000",
		`"connection refused"`, "tim*", "eror~1", "flags:multiline", "+error -timeout", "user:josé"} {
		q, err := parseUserQuery(s)
		if err != nil {
			t.Fatal(err)
		}
		if n := check(s, q); n >= len(blocks) {
			t.Errorf("%s: candidate returns all %d blocks", s, len(blocks))
		} else {
			t.Logf("%-24s %2d of %d blocks", s, n, len(blocks))
		}
	}
}

// blockTestDoc is the Bleve document of a block, as doc.go describes it.
func blockTestDoc(lines []testLine) map[string]interface{} {
	info := lines[0].info
	d := map[string]interface{}{"host": info.Host, "source": info.Source, "file_id": info.FileID}
	if info.SourceName != "" {
		d["source_name"] = info.SourceName
	}
	var text []string
	levels, flags := map[string]bool{}, map[string]bool{}
	fields, nums := map[string]map[string]bool{}, map[string]map[float64]bool{}
	for _, tl := range lines {
		l := tl.l
		text = append(text, l.Line)
		if l.Level != "" {
			levels[lowerASCII(l.Level)] = true
		}
		for _, f := range l.Flags {
			flags[f] = true
		}
		for _, f := range l.Fields {
			if fields[f.K] == nil {
				fields[f.K] = map[string]bool{}
			}
			fields[f.K][f.V] = true
		}
		for _, f := range l.Nums {
			if nums[f.K] == nil {
				nums[f.K] = map[float64]bool{}
			}
			nums[f.K][f.V] = true
		}
	}
	d["line"] = strings.Join(text, "\n")
	if len(levels) > 0 {
		d["level"] = slices.Sorted(maps.Keys(levels))
	}
	if len(flags) > 0 {
		d["flags"] = slices.Sorted(maps.Keys(flags))
	}
	if len(fields) > 0 {
		fd := map[string]interface{}{}
		for k, vs := range fields {
			fd[k] = slices.Sorted(maps.Keys(vs))
		}
		d["fields"] = fd
	}
	if len(nums) > 0 {
		nd := map[string]interface{}{}
		for k, vs := range nums {
			nd[k] = slices.Sorted(maps.Keys(vs))
		}
		d["num"] = nd
	}
	return d
}

func TestMatchHighlights(t *testing.T) {
	cases := []struct {
		q, line string
		want    []string // the highlighted text, in order
	}{
		{"error", "Überweisung fehlgeschlagen: Größe überschritten — ERROR ünïcödé 日本語 error", []string{"ERROR", "error"}},
		{"größe", "Überweisung fehlgeschlagen: Größe überschritten", []string{"Größe"}},
		{"über*", "Überweisung fehlgeschlagen: Größe überschritten", []string{"Überweisung", "überschritten"}},
		{`"fehlgeschlagen größe"`, "Überweisung fehlgeschlagen: Größe überschritten", []string{"fehlgeschlagen: Größe"}},
		{"+josé +host:web1", "2026-11-25T10:00:00Z INFO user=josé request ok", []string{"josé"}},
		{"level:INFO", "2026-11-25T10:00:00Z INFO user=josé request ok", nil},
		{"error -timeout", "error: timeout, ERRORS", []string{"error"}},
		{`-"connection refused" refused`, "Connection refused, refused", []string{"refused", "refused"}},
		{`"connection refused" refused`, "Connection refused, refused", []string{"Connection refused", "refused"}},
		{`"connection refused" "refused by"`, "connection refused by peer", []string{"connection refused by"}},
		{"192.168.1.10", "from 192.168.1.10:80 and 192.168.1.100", []string{"192.168.1.10"}},
		{"eror~1 /ti.*ut/", "Error: TIMEOUT (timeouts) terror", []string{"Error", "TIMEOUT"}},
		{"nothing", "a line", nil},
		{"*", "a line", nil},
	}
	for _, c := range cases {
		q, err := parseUserQuery(c.q)
		if err != nil {
			t.Fatalf("%s: %v", c.q, err)
		}
		m, err := compileMatcher(q)
		if err != nil {
			t.Fatalf("%s: %v", c.q, err)
		}
		l := &storedLine{Line: c.line}
		rs := m.highlights(l)
		var got []string
		for i, r := range rs {
			if r.Field != "line" || r.Start < 0 || r.End > len(c.line) || r.Start >= r.End || (i > 0 && r.Start <= rs[i-1].End) {
				t.Fatalf("%s: bad ranges %+v", c.q, rs)
			}
			got = append(got, c.line[r.Start:r.End])
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%s on %q: highlighted %q, want %q", c.q, c.line, got, c.want)
		}
	}
}

// TestMatchQueryStringMode makes sure the flag Bleve keeps on the parser's
// conjunctions and disjunctions is still found (see stringMode).
func TestMatchQueryStringMode(t *testing.T) {
	q, err := bleve.NewQueryStringQuery("+a b -c").Parse()
	if err != nil {
		t.Fatal(err)
	}
	b := q.(*query.BooleanQuery)
	for _, sub := range []query.Query{b.Must, b.Should, b.MustNot} {
		if !stringMode(sub) {
			t.Errorf("%T from the query-string parser: query-string mode not detected", sub)
		}
	}
	if stringMode(query.NewConjunctionQuery(nil)) || stringMode(query.NewDisjunctionQuery(nil)) || stringMode(query.NewMatchQuery("x")) {
		t.Error("query-string mode detected on a plain query")
	}
}

func TestMatchMetaAndAll(t *testing.T) {
	cases := []struct {
		q              string
		metaOnly, all  bool
		candidateIsNil bool
	}{
		{"*", true, true, true},
		{"", true, true, true},
		{"level:error", true, false, false},
		{"+level:error +host:web-1", true, false, false},
		{"-level:debug", true, false, true},
		{`ts:>"2026-11-25T10:30:00Z"`, true, false, true},
		{"error", false, false, false},
		{"flags:truncated", false, false, false},
		{"status:500", false, false, false},
		{"offset:>10", false, false, true},
		{"error -timeout", false, false, false},
		{"error -level:info", false, false, false},
		{"error offset:>10", false, false, true},
		{"error OR -timeout", false, false, false}, // OR, then Lucene's -: error -timeout
		{"(error OR level:warn) AND NOT host:x", false, false, false},
		{"level:(error OR warn) AND NOT host:x", true, false, false},
	}
	for _, c := range cases {
		q, err := parseUserQuery(c.q)
		if err != nil {
			t.Fatalf("%s: %v", c.q, err)
		}
		m, err := compileMatcher(q)
		if err != nil {
			t.Fatalf("%s: %v", c.q, err)
		}
		if m.metaOnly() != c.metaOnly || m.matchAll() != c.all || (m.candidate() == nil) != c.candidateIsNil {
			t.Errorf("%s: metaOnly %v matchAll %v candidate %s; want %v %v nil=%v", c.q, m.metaOnly(), m.matchAll(), queryJSON(m.candidate()), c.metaOnly, c.all, c.candidateIsNil)
		}
	}
}

func TestMatchErrors(t *testing.T) {
	for _, q := range []query.Query{
		query.NewGeoDistanceQuery(1, 2, "1km"),
		query.NewTermRangeQuery("a", "b"),
		func() query.Query { q := query.NewFuzzyQuery("abc"); q.SetFuzziness(3); return q }(),
		query.NewRegexpQuery(`a\bb`),
		query.NewRegexpQuery(`a+?`),
		query.NewRegexpQuery(`(`),
		query.NewNumericRangeQuery(nil, nil),
		query.NewBooleanQuery([]query.Query{query.NewQueryStringQuery("x")}, nil, nil),
	} {
		_, err := compileMatcher(q)
		var qe *pipeline.QueryError
		if err == nil || !errors.As(err, &qe) {
			t.Errorf("%T %s: err %v, want a QueryError", q, queryJSON(q), err)
		}
	}
}

// TestMatchLowerInto compares the eight-bytes-at-a-time lowercasing with
// lowerASCII on every byte value and many lengths.
func TestMatchLowerInto(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	for n := range 300 {
		raw := make([]byte, n%70)
		for i := range raw {
			raw[i] = byte(r.Intn(256))
		}
		s := string(raw)
		b := make([]byte, len(s))
		lowerInto(b, s)
		if string(b) != lowerASCII(s) {
			t.Fatalf("lowerInto(%q) = %q, want %q", s, b, lowerASCII(s))
		}
	}
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	b := make([]byte, 256)
	lowerInto(b, string(all))
	if string(b) != lowerASCII(string(all)) {
		t.Fatalf("lowerInto of every byte: %q", b)
	}
}

// TestMatchConcurrent runs one matcher from several goroutines (the search
// workers share it); run with -race.
func TestMatchConcurrent(t *testing.T) {
	lines := testCorpus()
	q, err := parseUserQuery(`+error -host:web-2 timeout tim* eror~1 "connection refused" /us(er|ers)/`)
	if err != nil {
		t.Fatal(err)
	}
	m, err := compileMatcher(q)
	if err != nil {
		t.Fatal(err)
	}
	want := make([]bool, len(lines))
	for i := range lines {
		want[i] = m.match(&lines[i].info, &lines[i].l)
	}
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				for i := range lines {
					if m.match(&lines[i].info, &lines[i].l) != want[i] {
						errs <- lines[i].l.Line
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for l := range errs {
		t.Errorf("concurrent match differs on %q", l)
	}
}

// benchLine is a 200-byte access log line.
const benchLine = `192.168.1.10 - - [25/Nov/2026:10:00:00 +0000] "GET /api/v1/users?id=42 HTTP/1.1" 504 312 "-" "Mozilla/5.0" upstream Timed Out after 30000ms waiting for user-service reply ok`

func benchMatch(b *testing.B, q string, l *storedLine) {
	pq, err := parseUserQuery(q)
	if err != nil {
		b.Fatal(err)
	}
	m, err := compileMatcher(pq)
	if err != nil {
		b.Fatal(err)
	}
	info := &blockInfo{Host: "web-1", Source: "/var/log/nginx/access.log", FileID: "f1"}
	if !m.match(info, l) {
		b.Fatalf("%s does not match %q", q, l.Line)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		m.match(info, l)
	}
}

func BenchmarkMatchTerm(b *testing.B) {
	benchMatch(b, "waiting", &storedLine{Line: benchLine})
}

func BenchmarkMatchPhrase(b *testing.B) {
	benchMatch(b, `"upstream timed out"`, &storedLine{Line: benchLine})
}

func BenchmarkMatchLevel(b *testing.B) {
	benchMatch(b, "level:error", &storedLine{Level: "ERROR", Line: benchLine})
}

// BenchmarkMatchNoLead scans every part of the line: a term with no
// literal lead to look for.
func BenchmarkMatchNoLead(b *testing.B) {
	benchMatch(b, `/rep.y/`, &storedLine{Line: benchLine})
}
