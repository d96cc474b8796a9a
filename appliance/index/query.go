package index

import (
	"fmt"
	"strings"
	"time"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/search/query"

	"github.com/logbox/logbox/appliance/pipeline"
)

// Limits on what a query may ask for, checked before it runs: each of these
// makes Bleve walk a whole term dictionary or build huge automata.
const (
	MaxQueryBytes  = 4 << 10
	MaxRegexpBytes = 200
	// MaxQueryDepth bounds nesting: of parentheses in a query string
	// (checked on the raw string, before it is parsed) and of clauses in a
	// query tree.
	MaxQueryDepth = 20
	MaxFuzziness  = 2
	// MaxPatternLeads is the rule for wildcards and regular expressions
	// alike: the terms a pattern matches may begin with at most this many
	// different bytes (a letter's two cases count once). Bleve walks the
	// term dictionary below each byte a pattern can begin with, so a
	// pattern that can begin with anything (*x, ?x, /.*/, /.+x/, /[a-z]*/)
	// walks all of it, while api*, /err(or)?/, /[Ee]rror/ and
	// /(error|warn)/ walk a few branches.
	MaxPatternLeads = 4
)

// parseUserQuery parses a query string (syntax.go), rejects what is too
// expensive to run (see checkQuery, run on each leaf) and adapts it to the
// mapping. Empty or "*" matches
// everything. Errors are *pipeline.QueryError.
func parseUserQuery(s string) (query.Query, error) {
	if len(s) > MaxQueryBytes {
		return nil, &pipeline.QueryError{Msg: fmt.Sprintf("query is %d bytes; at most %d are allowed", len(s), MaxQueryBytes)}
	}
	if t := strings.TrimSpace(s); t == "" || t == "*" {
		return bleve.NewMatchAllQuery(), nil
	}
	q, err := parseBoolean(s)
	if err != nil {
		return nil, err
	}
	if err := checkDepth(q, 1); err != nil {
		return nil, err
	}
	mapFieldNames(q)
	lowerLevelTerms(q)
	return q, nil
}

// checkParens refuses parentheses nested deeper than MaxQueryDepth in a
// query string handed to Bleve's parser as a whole (a QueryStringQuery
// inside a query tree built by hand, where they do not group). Parentheses
// inside a phrase or after a backslash are text and are not counted;
// inside a regular expression they are its groups and are.
func checkParens(s string) error {
	depth, deepest, phrase := 0, 0, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\':
			i++
		case c == '"':
			phrase = !phrase
		case phrase:
		case c == '(':
			depth++
			deepest = max(deepest, depth)
		case c == ')' && depth > 0:
			depth--
		}
	}
	if deepest > MaxQueryDepth {
		return &pipeline.QueryError{Msg: fmt.Sprintf("parentheses nested %d deep; at most %d levels are allowed (parentheses do not group in this syntax: write +a +b for both, a b for either, -a for not)", deepest, MaxQueryDepth)}
	}
	return nil
}

// topFields are the fields every line has; any other field name in a
// query is a source or JSON field.
var topFields = map[string]bool{
	"": true, "_all": true, "_id": true, "line": true, "ts": true, "ingested": true,
	"offset": true, "host": true, "source": true, "source_name": true,
	"file_id": true, "level": true, "flags": true, patternField: true,
}

// mapFieldNames points query fields at the index layout: a bare name that
// is not a top field means fields.NAME (status:500 is fields.status:500),
// and a numeric range on fields.NAME (or NAME) goes to num.NAME, where
// JSON numbers are indexed as numbers (latency_ms:>500).
func mapFieldNames(q query.Query) {
	if subs, ok := subQueries(q); ok {
		for _, sub := range subs {
			mapFieldNames(sub)
		}
		return
	}
	switch q := q.(type) {
	case *query.NumericRangeQuery:
		f := q.Field()
		if p, ok := strings.CutPrefix(f, "fields."); ok {
			q.SetField("num." + p)
		} else if !topFields[f] && !strings.HasPrefix(f, "num.") {
			q.SetField("num." + f)
		}
		return
	}
	if fq, ok := q.(query.FieldableQuery); ok {
		f := fq.Field()
		if !topFields[f] && !strings.HasPrefix(f, "fields.") && !strings.HasPrefix(f, "num.") {
			fq.SetField("fields." + f)
		}
	}
}

// checkQuery walks a parsed query and rejects wildcards and regexps that
// can begin with too many bytes (see MaxPatternLeads), long regexps, deep
// nesting and fuzziness above MaxFuzziness. It is pure: the same query
// gives the same answer.
func checkQuery(q query.Query, depth int) error {
	if depth > maxTreeDepth {
		return &pipeline.QueryError{Msg: fmt.Sprintf("boolean nesting deeper than %d levels", maxTreeDepth)}
	}
	fuzzy := func(n int) error {
		if n < 0 || n > MaxFuzziness {
			return &pipeline.QueryError{Msg: fmt.Sprintf("fuzziness ~%d: at most ~%d is allowed (larger edit distances match almost every term)", n, MaxFuzziness)}
		}
		return nil
	}
	if subs, ok := subQueries(q); ok {
		for _, sub := range subs {
			if err := checkQuery(sub, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	switch q := q.(type) {
	case *query.QueryStringQuery:
		if len(q.Query) > MaxQueryBytes {
			return &pipeline.QueryError{Msg: fmt.Sprintf("query is %d bytes; at most %d are allowed", len(q.Query), MaxQueryBytes)}
		}
		if err := checkParens(q.Query); err != nil {
			return err
		}
		sub, err := q.Parse()
		if err != nil {
			return &pipeline.QueryError{Msg: err.Error()}
		}
		return checkQuery(sub, depth+1)
	case *query.WildcardQuery:
		t, err := wildcardTest(q.Wildcard)
		if err != nil {
			return err
		}
		return checkLeads(q.Wildcard, t.a)
	case *query.RegexpQuery:
		if len(q.Regexp) > MaxRegexpBytes {
			return &pipeline.QueryError{Msg: fmt.Sprintf("regular expression is %d bytes; at most %d are allowed", len(q.Regexp), MaxRegexpBytes)}
		}
		t, err := regexpTest(q.Regexp, false)
		if err != nil {
			return err
		}
		return checkLeads("/"+q.Regexp+"/", t.a)
	case *query.FuzzyQuery:
		return fuzzy(q.Fuzziness)
	case *query.MatchQuery:
		return fuzzy(q.Fuzziness)
	case *query.MatchPhraseQuery:
		return fuzzy(q.Fuzziness)
	}
	return nil
}

// checkDepth refuses a tree deeper than maxTreeDepth (the syntax keeps
// parentheses within MaxQueryDepth; a chain of NOTs is bounded here).
func checkDepth(q query.Query, depth int) error {
	if depth > maxTreeDepth {
		return &pipeline.QueryError{Msg: fmt.Sprintf("query nested deeper than %d levels (too many NOTs or parentheses)", maxTreeDepth)}
	}
	for _, sub := range children(q) {
		if err := checkDepth(sub, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// checkLeads applies the one rule for patterns (MaxPatternLeads) to the
// automaton a of pattern p, the same automaton Bleve and the matcher run.
func checkLeads(p string, a automaton) error {
	n := patternLeads(a)
	if n <= MaxPatternLeads {
		return nil
	}
	what := fmt.Sprintf("%d different characters", n)
	if n >= 128 {
		what = "any character"
	}
	return &pipeline.QueryError{Msg: fmt.Sprintf("%s can begin with %s: that walks nearly every term of the index; begin it with a fixed character, or at most %d alternatives (api*, /err(or)?/, /(error|warn)/); to match everything leave q empty", p, what, MaxPatternLeads)}
}

// patternLeads counts the bytes a term accepted by a can begin with, an
// ASCII letter's two cases once.
func patternLeads(a automaton) int {
	var seen [256]bool
	n, st := 0, a.Start()
	for c := range 256 {
		if !a.CanMatch(a.Accept(st, byte(c))) {
			continue
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if !seen[c] {
			seen[c] = true
			n++
		}
	}
	return n
}

// lowerLevelTerms lowercases the terms of unanalyzed queries on level: the
// level field is indexed lowercase (see blockDoc) so that level:error and
// level:ERROR both match; the matcher lowercases match and phrase queries.
func lowerLevelTerms(q query.Query) {
	for _, sub := range children(q) {
		lowerLevelTerms(sub)
	}
	switch q := q.(type) {
	case *query.WildcardQuery:
		if q.FieldVal == "level" {
			q.Wildcard = strings.ToLower(q.Wildcard)
		}
	case *query.TermQuery:
		if q.FieldVal == "level" {
			q.Term = strings.ToLower(q.Term)
		}
	case *query.PrefixQuery:
		if q.FieldVal == "level" {
			q.Prefix = strings.ToLower(q.Prefix)
		}
	case *query.FuzzyQuery:
		if q.FieldVal == "level" {
			q.Term = strings.ToLower(q.Term)
		}
	case *query.RegexpQuery:
		if q.FieldVal == "level" {
			q.Regexp = "(?i)" + q.Regexp
		}
	}
}

// subQueries returns the clauses of a boolean, conjunction or disjunction
// query (absent ones left out) and true; for any other query, false.
func subQueries(q query.Query) ([]query.Query, bool) {
	var subs []query.Query
	switch q := q.(type) {
	case *query.BooleanQuery:
		subs = []query.Query{q.Must, q.Should, q.MustNot, q.Filter}
	case *query.ConjunctionQuery:
		subs = q.Conjuncts
	case *query.DisjunctionQuery:
		subs = q.Disjuncts
	default:
		return nil, false
	}
	out := make([]query.Query, 0, len(subs))
	for _, sub := range subs {
		if sub != nil {
			out = append(out, sub)
		}
	}
	return out, true
}

// children is subQueries without the flag: nil for a leaf.
func children(q query.Query) []query.Query {
	subs, _ := subQueries(q)
	return subs
}

// buildQuery is parseUserQuery restricted to from <= ts < to (zero = open).
func buildQuery(s string, from, to time.Time) (query.Query, error) {
	q, err := parseUserQuery(s)
	if err != nil {
		return nil, err
	}
	return withRange(q, from, to), nil
}

func withRange(q query.Query, from, to time.Time) query.Query {
	if from.IsZero() && to.IsZero() {
		return q
	}
	incl, excl := true, false
	dr := bleve.NewDateRangeInclusiveQuery(from, to, &incl, &excl)
	dr.SetField("ts")
	return bleve.NewConjunctionQuery(q, dr)
}
