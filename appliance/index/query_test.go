package index

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/blevesearch/bleve/v2/search/query"

	"github.com/logbox/logbox/appliance/pipeline"
)

func TestQueryChecks(t *testing.T) {
	cases := []struct {
		q      string
		errHas string // "" = accepted
	}{
		{"", ""},
		{"*", ""},
		{"error", ""},
		{"erro*", ""},
		{"e?ror", ""},
		{"host:web*", ""},
		{"*rror", "*rror can begin with any character"},
		{"?rror", "?rror can begin with any character"},
		{"host:*eb1", "*eb1 can begin with any character"},
		{"+ok -*bad", "*bad can begin with any character"},
		{"/err.r/", ""},
		{"/" + strings.Repeat("a", 201) + "/", "regular expression is 201 bytes"},
		{"line:/" + strings.Repeat("a", 200) + "/", ""},
		{"errr~2", ""},
		{"errr~3", "fuzziness ~3"},
		{"host:web~9", "fuzziness ~9"},
		{strings.Repeat("a ", 2049), "at most 4096"},
		{`"unterminated`, "quote is never closed"},
	}
	for _, c := range cases {
		_, err := parseUserQuery(c.q)
		var qe *pipeline.QueryError
		switch {
		case c.errHas == "" && err != nil:
			t.Errorf("%.40q: rejected: %v", c.q, err)
		case c.errHas != "" && (!errors.As(err, &qe) || !strings.Contains(err.Error(), c.errHas)):
			t.Errorf("%.40q: got %v, want QueryError with %q", c.q, err, c.errHas)
		}
	}
	// Parentheses group: their nesting is bounded where they open.
	nest := func(n int, inner string) string { return strings.Repeat("(", n) + inner + strings.Repeat(")", n) }
	for _, c := range []struct {
		q      string
		errHas string
	}{
		{nest(MaxQueryDepth, "error"), ""},
		{nest(MaxQueryDepth+1, "error"), "parentheses nested more than 20 deep at position 21"},
		{nest(370, "a"), "parentheses nested more than 20 deep at position 21"},
		{"+ok " + nest(100, "a b") + " -c", "nested more than 20 deep at position 25"},
		{strings.Repeat("(a ", 30), "nested more than 20 deep at position 61"},
		{strings.Repeat("(a) ", 300), ""},    // many, but shallow
		{`"` + nest(30, "a") + `"`, ""},      // in a phrase: text
		{strings.Repeat(`\(`, 30) + "a", ""}, // escaped: text
		{"/e" + nest(25, "r") + "/", ""},     // a regexp's own groups (bounded by its length)
		{"getUser" + nest(25, "42"), ""},     // inside a word: text
		{strings.Repeat(")", 50) + nest(3, "a"), "this ) closes no ( at position 1"},
	} {
		_, err := parseUserQuery(c.q)
		var qe *pipeline.QueryError
		switch {
		case c.errHas == "" && err != nil:
			t.Errorf("%.40q: rejected: %v", c.q, err)
		case c.errHas != "" && (!errors.As(err, &qe) || !strings.Contains(err.Error(), c.errHas)):
			t.Errorf("%.40q: got %v, want QueryError with %q", c.q, err, c.errHas)
		}
	}
	if err := checkQuery(query.NewQueryStringQuery(nest(30, "x")), 1); err == nil || !strings.Contains(err.Error(), "nested 30 deep") {
		t.Errorf("deep parentheses inside a nested query string: %v", err)
	}
	// Trees the query-string syntax cannot build are checked too.
	deep := query.Query(query.NewMatchQuery("x"))
	for i := 0; i < maxTreeDepth; i++ {
		deep = query.NewConjunctionQuery([]query.Query{deep})
	}
	if err := checkQuery(deep, 1); err == nil || !strings.Contains(err.Error(), "nesting") {
		t.Errorf("deep nesting: %v", err)
	}
	fz := query.NewFuzzyQuery("x")
	fz.SetFuzziness(3)
	if err := checkQuery(query.NewDisjunctionQuery([]query.Query{fz}), 1); err == nil {
		t.Error("fuzzy 3 accepted")
	}
	if err := checkQuery(query.NewBooleanQuery(nil, nil, []query.Query{query.NewQueryStringQuery("*x")}), 1); err == nil {
		t.Error("leading wildcard inside a nested query string accepted")
	}
}

// TestPatternRule: wildcards and regular expressions are judged by one
// rule, on the automaton Bleve runs: the terms a pattern matches may begin
// with at most MaxPatternLeads different bytes (either case of a letter
// once).
func TestPatternRule(t *testing.T) {
	cases := []struct {
		q    string
		lead int // how many bytes a match can begin with; > MaxPatternLeads is refused
	}{
		// Refused: they can begin with (nearly) anything.
		{"*1", -1}, {"?x", -1}, {"*", 0} /* match all, not a pattern */, {"**x", -1}, {"host:*eb1", -1},
		{"/.*/", -1}, {"/.+foo/", -1}, {"/.?x/", -1}, {"/[a-z]*/", 26}, {"/[0-9]+ms/", 10}, {`/\w+/`, 37},
		{`/\Wy/`, -1}, {"/(a|b|c|d|e)x/", 5}, {"level:/.*/", -1}, {"/(?i).*/", -1},
		// Accepted: a fixed first character, or a few.
		{"api*", 1}, {"a?c", 1}, {"Tim*", 1}, {"über*", 1}, {"/err(or)?/", 1}, {"/[Ee]rror/", 1},
		{"/(error|warn)/", 2}, {"/(?i)error/", 1}, {"/[a-d]x/", 4}, {"/x?y/", 2}, {"/x*y/", 2}, {"host:/web-[12]/", 1}, {"/é.*/", 1},
	}
	for _, c := range cases {
		_, err := parseUserQuery(c.q)
		refused := c.lead < 0 || c.lead > MaxPatternLeads
		var qe *pipeline.QueryError
		switch {
		case c.lead == 0:
			if err != nil {
				t.Errorf("%q: %v", c.q, err)
			}
		case refused && (!errors.As(err, &qe) || !strings.Contains(err.Error(), "can begin with")):
			t.Errorf("%q: got %v, want it refused as a pattern that can begin with too much", c.q, err)
		case !refused && err != nil:
			t.Errorf("%q: refused: %v", c.q, err)
		}
		if c.lead > 0 && err != nil && !strings.Contains(err.Error(), fmt.Sprintf("%d different characters", c.lead)) {
			t.Errorf("%q: %v, want it to say %d different characters", c.q, err, c.lead)
		}
	}
}

// TestTimeBounds: a time the index cannot hold (int64 ns since 1970) is a
// FieldError naming the parameter on every entry point, not a wrong answer.
func TestTimeBounds(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ix := openTest(t, filepath.Join(t.TempDir(), "idx"))
	defer ix.Close()
	ts := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	if err := ix.Index(ctx, []pipeline.Record{{TS: ts, Host: "h", Source: "/s", FileID: "f", Line: "hello"}}); err != nil {
		t.Fatal(err)
	}
	far := time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC)
	early := time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		from, to time.Time
		field    string // "" = accepted, and the line is found
	}{
		{time.Time{}, far, "to"},
		{early, time.Time{}, "from"},
		{time.Date(1969, 12, 31, 23, 59, 59, 0, time.UTC), ts.Add(time.Hour), "from"},
		{early, far, "from"},
		{ts.Add(time.Hour), ts, "to"}, // to before from
		{pipeline.MinTime, pipeline.MaxTime, ""},
		{time.Time{}, pipeline.MaxTime, ""},
		{ts, ts.Add(time.Nanosecond), ""},
	}
	for _, c := range cases {
		name := fmt.Sprintf("[%s, %s)", c.from.Format(time.RFC3339), c.to.Format(time.RFC3339))
		check := func(what string, n int64, err error) {
			t.Helper()
			var fe *pipeline.FieldError
			switch {
			case c.field == "" && (err != nil || n != 1):
				t.Errorf("%s %s: %d lines, %v; want the line", what, name, n, err)
			case c.field != "" && (!errors.As(err, &fe) || fe.Field != c.field):
				t.Errorf("%s %s: %d lines, %v; want a FieldError on %s", what, name, n, err, c.field)
			}
		}
		sr, err := ix.Search(ctx, pipeline.SearchRequest{From: c.from, To: c.to})
		check("search", int64(sr.Total), err)
		hr, err := ix.Histogram(ctx, pipeline.HistogramRequest{From: c.from, To: c.to})
		check("histogram", int64(hr.Total), err)
		fr, err := ix.Facets(ctx, pipeline.FacetsRequest{From: c.from, To: c.to, Field: "host"})
		check("facets", int64(fr.Total), err)
	}
}

// TestQueryChecksRunBeforeSearch: every entry point refuses expensive
// queries with a QueryError.
func TestQueryChecksRunBeforeSearch(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ix := openTest(t, filepath.Join(t.TempDir(), "idx"))
	defer ix.Close()
	var qe *pipeline.QueryError
	if _, err := ix.Search(ctx, pipeline.SearchRequest{Query: "*x"}); !errors.As(err, &qe) {
		t.Errorf("search: %v", err)
	}
	if _, err := ix.Histogram(ctx, pipeline.HistogramRequest{Query: "*x"}); !errors.As(err, &qe) {
		t.Errorf("histogram: %v", err)
	}
	if _, err := ix.Facets(ctx, pipeline.FacetsRequest{Query: "*x", Field: "host"}); !errors.As(err, &qe) {
		t.Errorf("facets: %v", err)
	}
	if _, err := ix.Tail(ctx, pipeline.TailRequest{Query: "*x"}); !errors.As(err, &qe) {
		t.Errorf("tail: %v", err)
	}
	// An expired context fails before any work.
	dead, stop := context.WithTimeout(ctx, -time.Second)
	defer stop()
	if _, err := ix.Search(dead, pipeline.SearchRequest{}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("expired search: %v", err)
	}
}

// acceptedInvariants re-checks, independently of checkQuery, what an
// accepted query may not contain.
func acceptedInvariants(t *testing.T, q query.Query, depth int) {
	if depth > maxTreeDepth {
		t.Fatalf("accepted a query nested %d deep", depth)
	}
	switch q := q.(type) {
	case *query.BooleanQuery:
		for _, s := range []query.Query{q.Must, q.Should, q.MustNot, q.Filter} {
			acceptedInvariants(t, s, depth+1)
		}
	case *query.ConjunctionQuery:
		for _, s := range q.Conjuncts {
			acceptedInvariants(t, s, depth+1)
		}
	case *query.DisjunctionQuery:
		for _, s := range q.Disjuncts {
			acceptedInvariants(t, s, depth+1)
		}
	case *query.WildcardQuery:
		if q.Wildcard != "" && strings.ContainsRune("*?", rune(q.Wildcard[0])) {
			t.Fatalf("accepted leading wildcard %q", q.Wildcard)
		}
	case *query.RegexpQuery:
		if len(strings.TrimPrefix(q.Regexp, "(?i)")) > MaxRegexpBytes {
			t.Fatalf("accepted a %d-byte regexp", len(q.Regexp))
		}
	case *query.MatchQuery:
		if q.Fuzziness > MaxFuzziness || q.Fuzziness < 0 {
			t.Fatalf("accepted fuzziness %d", q.Fuzziness)
		}
	}
}

func FuzzQueryCheck(f *testing.F) {
	for _, s := range []string{"", "*", "error", "*x", "?x", "a~3", "a~1", "/a+/", "host:web*", `+a -"b c" d:>5`,
		`ts:>"2026-01-01T00:00:00Z"`, "level:ERR*", `\*x`, "a^2", "x:/" + strings.Repeat(".", 250) + "/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		q1, err1 := parseUserQuery(s)
		_, err2 := parseUserQuery(s)
		if (err1 == nil) != (err2 == nil) || (err1 != nil && err1.Error() != err2.Error()) {
			t.Fatalf("inconsistent: %v vs %v", err1, err2)
		}
		if err1 != nil {
			var qe *pipeline.QueryError
			if !errors.As(err1, &qe) {
				t.Fatalf("rejection is not a QueryError: %v", err1)
			}
			return
		}
		if len(s) > MaxQueryBytes {
			t.Fatalf("accepted %d bytes", len(s))
		}
		acceptedInvariants(t, q1, 1)
	})
}
