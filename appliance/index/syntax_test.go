package index

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/search/query"

	"github.com/logbox/logbox/appliance/pipeline"
	"github.com/logbox/logbox/bench"
)

// oldParse is how parseUserQuery read a query before the boolean syntax:
// Bleve's query-string parser over the whole string.
func oldParse(s string) (query.Query, error) {
	if t := strings.TrimSpace(s); t == "" || t == "*" {
		return bleve.NewMatchAllQuery(), nil
	}
	q, err := bleve.NewQueryStringQuery(s).Parse()
	if err != nil {
		return nil, err
	}
	if err := checkQuery(q, 1); err != nil {
		return nil, err
	}
	mapFieldNames(q)
	lowerLevelTerms(q)
	return q, nil
}

// oldSyntaxQueries are queries written before AND/OR/NOT and grouping:
// the differential cases plus odd spacing, prefixes, escapes, boosts and
// parentheses inside words and phrases.
func oldSyntaxQueries() []string {
	var qs []string
	for _, c := range diffCases {
		if c.build == nil && c.q != "" {
			qs = append(qs, c.q)
		}
	}
	return append(qs,
		"status: 500", "status:  >=500", "+ error", "- timeout error", "error^2 timeout", "eror~1 host:web-1",
		`"timed out"~1`, `"connection"refused`, `a"b c"`, `\(110\: connection`, "getUser(42)", "foo(bar) baz",
		"error\ttimeout", "+error\ttimeout", "  error   ", "latency_ms:>-5", "-status:<300 +level:error", "and or not",
		"error and timeout", "not error", "x-y", "a+b", "/api/v1/users", `source:"/var/log/app/app.log"`, "path:/api/v1/users",
		"users?id", "a=b", `"GET /api" -host:web-1 +method:GET`, `"(110: Connection timed out)" error`,
	)
}

// TestSyntaxKeepsOldQueries: a query without the new operators builds the
// same tree as Bleve's parser built, and finds the same lines.
func TestSyntaxKeepsOldQueries(t *testing.T) {
	lines := testCorpus()
	for _, s := range oldSyntaxQueries() {
		old, oerr := oldParse(s)
		nq, nerr := parseUserQuery(s)
		if oerr != nil {
			if nerr == nil {
				t.Logf("%q: refused before (%v), accepted now", s, oerr)
			}
			continue
		}
		if nerr != nil {
			t.Errorf("%q: accepted before, refused now: %v", s, nerr)
			continue
		}
		oj, _ := json.Marshal(old)
		nj, _ := json.Marshal(nq)
		if string(oj) != string(nj) {
			t.Errorf("%q: tree changed\n  old %s\n  new %s", s, oj, nj)
		}
		om, err1 := compileMatcher(old)
		nm, err2 := compileMatcher(nq)
		if err1 != nil || err2 != nil {
			t.Errorf("%q: compile: %v / %v", s, err1, err2)
			continue
		}
		for i := range lines {
			l := &lines[i]
			if om.match(&l.info, &l.l) != nm.match(&l.info, &l.l) {
				t.Errorf("%q: line %q: old %v, new %v", s, l.l.Line, om.match(&l.info, &l.l), nm.match(&l.info, &l.l))
				break
			}
		}
	}
}

// TestSyntaxOldQueriesOnIndex: on an index of generated lines, every old
// query finds through the new parser (candidates, Bloom filters and all)
// the lines the old parse matches line by line.
func TestSyntaxOldQueriesOnIndex(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ix := openWith(t, Config{Dir: filepath.Join(t.TempDir(), "idx"), BlockLines: 64})
	defer ix.Close()
	g := bench.NewGenerator(11, 2000, testNow.Add(-time.Hour))
	var rs []pipeline.Record
	var off int64
	for i := range 2000 {
		l := g.Next()
		rs = append(rs, pipeline.Record{TS: testNow, Host: []string{"web-1", "web-2"}[i%2], Source: "/var/log/mix.log", FileID: "mix", Offset: off, Line: l})
		off += int64(len(l) + 1)
	}
	if err := ix.Index(ctx, rs); err != nil {
		t.Fatal(err)
	}
	stored := storedOf(t, ix, len(rs))
	queries := append(oldSyntaxQueries(), "GET", "+GET -200", "POST status:>=500", `"connection refused"`, "level:error -timeout", "java exception", "+at -java")
	for _, s := range queries {
		old, err := oldParse(s)
		if err != nil {
			continue
		}
		om, err := compileMatcher(old)
		if err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		want := 0
		for i := range stored {
			if om.match(stored[i].info, &stored[i].l) {
				want++
			}
		}
		res, err := ix.Search(ctx, pipeline.SearchRequest{Query: s, Limit: 1, ExactTotal: true})
		if err != nil {
			t.Errorf("%q: %v", s, err)
			continue
		}
		if int(res.Total) != want {
			t.Errorf("%q: %d lines, the old parse matches %d", s, res.Total, want)
		}
	}
	// Where the old syntax could say it, the new one finds the same lines.
	for _, pair := range [][2]string{
		{"GET AND 200", "+GET +200"}, {"GET && 200", "+GET +200"}, {"GET OR POST", "GET POST"}, {"GET || POST", "GET POST"},
		{"NOT GET", "-GET"}, {"!GET", "-GET"}, {"GET AND NOT 200", "+GET -200"}, {"NOT (GET OR POST)", "-GET -POST"},
		{"host:(web-1 OR web-2)", "host:web-1 host:web-2"}, {"GET && host:web-1 && !200", "+GET +host:web-1 -200"},
		{"(GET AND 200) AND NOT host:web-1", "+GET +200 -host:web-1"}, {`NOT (java OR "connection reset")`, `-java -"connection reset"`},
		{"level:(error OR warn) AND NOT host:web-2", "+level:error -host:web-2"}, // level has one value per line
	} {
		a, err1 := ix.Search(ctx, pipeline.SearchRequest{Query: pair[0], Limit: len(rs), ExactTotal: true, NoHighlights: true})
		b, err2 := ix.Search(ctx, pipeline.SearchRequest{Query: pair[1], Limit: len(rs), ExactTotal: true, NoHighlights: true})
		if err1 != nil || err2 != nil {
			t.Fatalf("%q / %q: %v %v", pair[0], pair[1], err1, err2)
		}
		if pair[0] == "level:(error OR warn) AND NOT host:web-2" {
			// warn lines added: at least as many.
			if a.Total < b.Total {
				t.Errorf("%q: %d lines, fewer than %q's %d", pair[0], a.Total, pair[1], b.Total)
			}
			continue
		}
		if a.Total != b.Total || fmt.Sprint(ids(a.Hits)) != fmt.Sprint(ids(b.Hits)) || a.Total == 0 {
			t.Errorf("%q: %d lines, %q: %d", pair[0], a.Total, pair[1], b.Total)
		}
	}
}

type storedAt struct {
	info *blockInfo
	l    storedLine
}

// storedOf reads back every line of ix as stored (for brute-force checks).
func storedOf(t *testing.T, ix *Index, n int) []storedAt {
	t.Helper()
	res, err := ix.Search(context.Background(), pipeline.SearchRequest{Limit: n + 1, ExactTotal: true, NoHighlights: true})
	if err != nil || int(res.Total) != n {
		t.Fatalf("read back: %d lines, %v; want %d", res.Total, err, n)
	}
	out := make([]storedAt, 0, n)
	for _, h := range res.Hits {
		l := storedLine{TS: h.TS.UnixNano(), Ingested: h.Ingested.UnixNano(), Offset: h.Offset, Level: h.Level, Flags: h.Flags, Line: h.Line}
		for _, k := range slices.Sorted(maps.Keys(h.Fields)) {
			l.Fields = append(l.Fields, kv{k, h.Fields[k]})
			if v, err := strconv.ParseFloat(h.Fields[k], 64); err == nil {
				l.Nums = append(l.Nums, kn{k, v})
			}
		}
		out = append(out, storedAt{info: &blockInfo{Host: h.Host, Source: h.Source, FileID: h.FileID}, l: l})
	}
	return out
}

// TestSyntaxParse: precedence, grouping and prefixes, each checked by the
// lines it finds among lines holding every combination of four words.
func TestSyntaxParse(t *testing.T) {
	words := []string{"alpha", "beta", "gamma", "delta"}
	var lines []testLine
	for mask := range 16 {
		var ws []string
		for i, w := range words {
			if mask&(1<<i) != 0 {
				ws = append(ws, w)
			}
		}
		lines = append(lines, testLine{info: blockInfo{Host: "h", FileID: "f"}, l: storedLine{Offset: int64(mask), Line: "x " + strings.Join(ws, " "),
			Fields: []kv{{"k", []string{"one", "two"}[mask%2]}}}})
	}
	has := func(mask int, w string) bool { return mask&(1<<slices.Index(words, w)) != 0 }
	a := func(m int) bool { return has(m, "alpha") }
	b := func(m int) bool { return has(m, "beta") }
	c := func(m int) bool { return has(m, "gamma") }
	d := func(m int) bool { return has(m, "delta") }
	cases := []struct {
		q    string
		want func(m int) bool
	}{
		{"alpha beta", func(m int) bool { return a(m) || b(m) }},
		{"alpha OR beta", func(m int) bool { return a(m) || b(m) }},
		{"alpha || beta", func(m int) bool { return a(m) || b(m) }},
		{"alpha AND beta", func(m int) bool { return a(m) && b(m) }},
		{"alpha && beta", func(m int) bool { return a(m) && b(m) }},
		{"NOT alpha", func(m int) bool { return !a(m) }},
		{"!alpha", func(m int) bool { return !a(m) }},
		{"! alpha", func(m int) bool { return !a(m) }},
		{"alpha OR beta AND gamma", func(m int) bool { return a(m) || b(m) && c(m) }},
		{"alpha AND beta OR gamma", func(m int) bool { return a(m) && b(m) || c(m) }},
		{"alpha beta AND gamma", func(m int) bool { return a(m) || b(m) && c(m) }},
		{"(alpha OR beta) AND gamma", func(m int) bool { return (a(m) || b(m)) && c(m) }},
		{"(alpha beta) AND (gamma delta)", func(m int) bool { return (a(m) || b(m)) && (c(m) || d(m)) }},
		{"NOT alpha AND beta", func(m int) bool { return !a(m) && b(m) }},
		{"NOT (alpha AND beta)", func(m int) bool { return !(a(m) && b(m)) }},
		{"NOT NOT alpha", a},
		{"alpha AND NOT beta", func(m int) bool { return a(m) && !b(m) }},
		{"alpha AND -beta", func(m int) bool { return a(m) && !b(m) }},
		{"alpha AND !beta AND !gamma", func(m int) bool { return a(m) && !b(m) && !c(m) }},
		{"NOT alpha AND NOT beta", func(m int) bool { return !a(m) && !b(m) }},
		// NOT joined to its neighbours without an operator is Lucene's
		// -; next to an explicit OR it is a negation.
		{"alpha NOT beta", func(m int) bool { return a(m) && !b(m) }},
		{"NOT beta alpha", func(m int) bool { return a(m) && !b(m) }},
		{"alpha OR NOT beta", func(m int) bool { return a(m) || !b(m) }},
		{"NOT beta OR alpha", func(m int) bool { return a(m) || !b(m) }},
		{"alpha || !beta", func(m int) bool { return a(m) || !b(m) }},
		{"alpha OR -beta", func(m int) bool { return a(m) && !b(m) }},
		{"alpha OR (NOT beta)", func(m int) bool { return a(m) || !b(m) }},
		{"gamma alpha OR NOT beta", func(m int) bool { return c(m) || a(m) || !b(m) }},
		{"+alpha beta", a},
		{"+alpha -beta gamma", func(m int) bool { return a(m) && !b(m) }},
		{"+(alpha beta) -(gamma AND delta)", func(m int) bool { return (a(m) || b(m)) && !(c(m) && d(m)) }},
		{"-(alpha OR beta)", func(m int) bool { return !a(m) && !b(m) }},
		{"((alpha))", a},
		{"((alpha OR beta) AND (gamma OR delta)) OR (alpha AND delta)", func(m int) bool { return (a(m) || b(m)) && (c(m) || d(m)) || a(m) && d(m) }},
		{"alpha AND beta AND gamma AND delta", func(m int) bool { return a(m) && b(m) && c(m) && d(m) }},
		{"alpha AND (beta OR gamma) AND NOT delta", func(m int) bool { return a(m) && (b(m) || c(m)) && !d(m) }},
		{"line:(alpha OR beta) AND gamma", func(m int) bool { return (a(m) || b(m)) && c(m) }},
		{"k:(one) AND alpha", func(m int) bool { return m%2 == 0 && a(m) }},
		{"k:(one OR two) AND NOT k:two", func(m int) bool { return m%2 == 0 }},
		{"k:(NOT one)", func(m int) bool { return m%2 == 1 }},
		// Lower-case words are words.
		{"alpha and beta", func(m int) bool { return a(m) || b(m) }},
		{"not alpha", a},
		{"*", func(int) bool { return true }},
		{"* AND NOT alpha", func(m int) bool { return !a(m) }},
	}
	for _, tc := range cases {
		q, err := parseUserQuery(tc.q)
		if err != nil {
			t.Errorf("%q: %v", tc.q, err)
			continue
		}
		m, err := compileMatcher(q)
		if err != nil {
			t.Errorf("%q: compile: %v", tc.q, err)
			continue
		}
		for mask := range 16 {
			l := &lines[mask]
			if got := m.match(&l.info, &l.l); got != tc.want(mask) {
				t.Errorf("%q on %q (k=%s): %v, want %v", tc.q, l.l.Line, l.l.Fields[0].V, got, !got)
			}
		}
	}
}

// TestSyntaxErrors: a query that cannot mean anything is a QueryError
// that says where (1-based byte position).
func TestSyntaxErrors(t *testing.T) {
	cases := []struct {
		q   string
		pos int
		has string
	}{
		{"(a", 1, "( is never closed"},
		{"+(", 2, "( is never closed"},
		{"a (b OR c", 3, "( is never closed"},
		{"(a))", 4, ") closes no ("},
		{"a)", 2, ") closes no ("},
		{"()", 1, "empty group"},
		{"a ( ) b", 3, "empty group"},
		{"a AND", 3, "AND needs a clause after it"},
		{"a &&", 3, "&& needs a clause after it"},
		{"(a AND) b", 4, "AND needs a clause after it"},
		{"OR b", 1, "OR needs a clause before it"},
		{"AND b", 1, "AND needs a clause before it"},
		{"a OR", 3, "OR needs a clause after it"},
		{"a OR OR b", 6, "OR right after OR"},
		{"a AND OR b", 7, "OR right after AND"},
		{"NOT", 1, "NOT needs a clause after it"},
		{"a NOT", 3, "NOT needs a clause after it"},
		{"!", 1, "! needs a clause after it"},
		{"+", 1, "+ needs a clause after it"},
		{"a -", 3, "- needs a clause after it"},
		{`"abc`, 1, "quote is never closed"},
		{`error msg:"disk`, 11, "quote is never closed"},
		{"/foo[", 1, "regular expression is never closed"},
		{"a /foo[/", 3, "regular expression /foo[/"},
		{"x line:/(ab/", 3, "regular expression /(ab/"},
		{"ok *bad", 4, "can begin with any character"},
		{"ok (a OR x~3)", 10, "fuzziness ~3"},
		{"status:>abc", 1, "cannot read"},
		{"a status:", 10, `"status:" needs a value after it`},
		{"status:>= AND a", 10, `"status:>=" needs a value after it`},
		{"status:(>= OR 5)", 11, `"status:>=" needs a value after it`},
		{"f:(g:x)", 4, "names a field inside the field group f:"},
		{strings.Repeat("(", 21) + "a" + strings.Repeat(")", 21), 21, "nested more than 20 deep"},
	}
	// The deepest grouping allowed compiles.
	deep := "x"
	for range MaxQueryDepth {
		deep = "(y OR NOT " + deep + ")"
	}
	if q, err := parseUserQuery(deep); err != nil {
		t.Errorf("20 levels of (y OR NOT …): %v", err)
	} else if _, err := compileMatcher(q); err != nil {
		t.Errorf("20 levels of (y OR NOT …): compile: %v", err)
	}
	for _, c := range cases {
		_, err := parseUserQuery(c.q)
		var qe *pipeline.QueryError
		if !errors.As(err, &qe) || qe.Pos != c.pos || !strings.Contains(qe.Msg, c.has) {
			t.Errorf("%q: got %v, want %q at position %d", c.q, err, c.has, c.pos)
		}
	}
}

// TestSyntaxAgainstBruteForce: random boolean queries over generated lines
// find, through the whole index, exactly the lines a direct evaluation of
// the expression picks.
func TestSyntaxAgainstBruteForce(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ix := openWith(t, Config{Dir: filepath.Join(t.TempDir(), "idx"), BlockLines: 32})
	defer ix.Close()
	r := rand.New(rand.NewSource(3))
	words := []string{"alpha", "beta", "gamma", "delta", "eps1", "zeta"}
	type gen struct {
		ws   map[string]bool
		kval string
	}
	var gs []gen
	var rs []pipeline.Record
	for i := range 600 {
		g := gen{ws: map[string]bool{}, kval: []string{"one", "two", "three"}[r.Intn(3)]}
		var parts []string
		for _, w := range words {
			if r.Intn(3) == 0 {
				g.ws[w] = true
				parts = append(parts, w)
			}
		}
		r.Shuffle(len(parts), func(i, j int) { parts[i], parts[j] = parts[j], parts[i] })
		gs = append(gs, g)
		rs = append(rs, pipeline.Record{TS: testNow, Host: "h", Source: "/s", FileID: "f", Offset: int64(i * 100),
			Line: fmt.Sprintf("line %d %s", i, strings.Join(parts, " ")), Fields: map[string]string{"k": g.kval}})
	}
	if err := ix.Index(ctx, rs); err != nil {
		t.Fatal(err)
	}
	// expr builds a random expression and its evaluator.
	// NOT is generated where it reads as a negation (see TestSyntaxParse
	// for NOT joined without an operator).
	var expr func(depth int) (string, func(g gen) bool)
	paren := func(s string) string {
		if strings.HasPrefix(s, "NOT ") {
			return "(" + s + ")"
		}
		return s
	}
	leaf := func() (string, func(g gen) bool) {
		if r.Intn(5) == 0 {
			v := []string{"one", "two", "three"}[r.Intn(3)]
			return "k:" + v, func(g gen) bool { return g.kval == v }
		}
		w := words[r.Intn(len(words))]
		return w, func(g gen) bool { return g.ws[w] }
	}
	expr = func(depth int) (string, func(g gen) bool) {
		if depth > 3 || r.Intn(3) == 0 {
			s, f := leaf()
			switch r.Intn(4) {
			case 0:
				return "NOT " + s, func(g gen) bool { return !f(g) }
			case 1:
				return "(" + s + ")", f
			}
			return s, f
		}
		ls, lf := expr(depth + 1)
		rs, rf := expr(depth + 1)
		switch r.Intn(5) {
		case 0:
			return "(" + ls + " OR " + rs + ")", func(g gen) bool { return lf(g) || rf(g) }
		case 1:
			return "(" + paren(ls) + " " + paren(rs) + ")", func(g gen) bool { return lf(g) || rf(g) }
		case 2:
			return "NOT (" + ls + " AND " + rs + ")", func(g gen) bool { return !(lf(g) && rf(g)) }
		case 3:
			return "(" + ls + " && " + rs + ")", func(g gen) bool { return lf(g) && rf(g) }
		}
		return "(" + ls + " AND " + rs + ")", func(g gen) bool { return lf(g) && rf(g) }
	}
	for range 150 {
		s, f := expr(0)
		var want []int64
		for i, g := range gs {
			if f(g) {
				want = append(want, int64(i*100))
			}
		}
		res, err := ix.Search(ctx, pipeline.SearchRequest{Query: s, Limit: len(gs), ExactTotal: true, NoHighlights: true})
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		var got []int64
		for _, h := range res.Hits {
			got = append(got, h.Offset)
		}
		slices.Sort(got)
		if int(res.Total) != len(want) || !slices.Equal(got, want) {
			t.Errorf("%s: %d lines, want %d", s, res.Total, len(want))
		}
	}
}

// BenchmarkParseCompile: what a query costs before it reads anything.
func BenchmarkParseCompile(b *testing.B) {
	for _, q := range []string{"waiting", "level:error", `"upstream timed out"`, "+GET -200 status:>=500 host:web*",
		"(GET OR POST) AND NOT status:200 AND level:(error OR warn)", "登录失败 AND msg:超时"} {
		b.Run(q, func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				pq, err := parseUserQuery(q)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := compileMatcher(pq); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// FuzzQueryMatch: any query either is refused with a QueryError or
// compiles and checks lines of every script (and marks them) without
// failing.
func FuzzQueryMatch(f *testing.F) {
	for _, s := range []string{"登录", `"连接 超时"`, "a AND (b OR NOT c)", "msg:登", "用户bob登录", "f:(a OR \"b c\")", "!x && y || z",
		"/ab[c]/ AND tim*", "(", "a)", "NOT", "サーバー~1", "로그인*", "x:(>=5 AND <9)"} {
		f.Add(s)
	}
	lines := []storedLine{
		{Line: "用户登录失败 user=bob", Fields: []kv{{"msg", "数据库连接超时"}, {"f", "b c"}}},
		{Line: "サーバーへの接続がタイムアウトしました，code=504 连接，超时"},
		{Line: "GET /api/v1 HTTP/1.1 200 timeout after 30ms 사용자 로그인 실패", Level: "ERROR", Nums: []kn{{"x", 6}}},
		{Line: "\xff\xfe broken 登\xe7\x99 utf8"},
	}
	info := &blockInfo{Host: "h", FileID: "f"}
	f.Fuzz(func(t *testing.T, s string) {
		q, err := parseUserQuery(s)
		if err != nil {
			var qe *pipeline.QueryError
			if !errors.As(err, &qe) {
				t.Fatalf("%q: not a QueryError: %v", s, err)
			}
			if qe.Pos < 0 || qe.Pos > len(s)+1 {
				t.Fatalf("%q: position %d outside the query", s, qe.Pos)
			}
			return
		}
		m, err := compileMatcher(q)
		if err != nil {
			return
		}
		for i := range lines {
			m.match(info, &lines[i])
			for _, r := range m.highlights(&lines[i]) {
				if r.Start < 0 || r.End > len(lines[i].Line) || r.Start >= r.End {
					t.Fatalf("%q: highlight %v in %q", s, r, lines[i].Line)
				}
			}
		}
		_ = blockQuery(m.candidate(), 4)
		_ = blockQuery(m.candidate(), 3)
	})
}
