package index

import (
	"context"
	"errors"
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
		{"*rror", "starts with a wildcard"},
		{"?rror", "starts with a wildcard"},
		{"host:*eb1", "starts with a wildcard"},
		{"+ok -*bad", "starts with a wildcard"},
		{"/err.r/", ""},
		{"/" + strings.Repeat("a", 201) + "/", "regular expression is 201 bytes"},
		{"line:/" + strings.Repeat("a", 200) + "/", ""},
		{"errr~2", ""},
		{"errr~3", "fuzziness ~3"},
		{"host:web~9", "fuzziness ~9"},
		{strings.Repeat("a ", 2049), "at most 4096"},
		{`"unterminated`, "unterminated quote"},
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
	// Trees the query-string syntax cannot build are checked too.
	deep := query.Query(query.NewMatchQuery("x"))
	for i := 0; i < MaxQueryDepth; i++ {
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
	if depth > MaxQueryDepth {
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
