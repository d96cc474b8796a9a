package httpapi

import (
	"context"
	"fmt"
	"net/http"

	"github.com/logbox/logbox/appliance/pipeline"
)

// Patterns groups the lines of a query into log templates:
// appliance/patterns.Miner implements it.
type Patterns interface {
	Patterns(ctx context.Context, req pipeline.PatternsRequest) (pipeline.PatternsResult, error)
}

// PatternsPipe recognizes "QUERY | patterns [limit N]" (index.PatternsPipe):
// ok is false for any other query; err is a *pipeline.QueryError for a
// malformed one.
type PatternsPipe func(q string) (query string, limit int, ok bool, err error)

// defaultPatternBuckets is the sparkline buckets /api/patterns gives
// without a buckets parameter (over a closed range).
const defaultPatternBuckets = 30

// GET /api/patterns?q=&from=&to=&limit=&buckets=&compare_from=&compare_to=&compare=&only_new=
// → pipeline.PatternsResult: {"total":N,"patterns":[{"pattern","count",
// "example","buckets","query","new"},…],"templates","rest","new",…}.
// q may end in "| patterns [limit N]". compare=1 (or new=1) compares
// with the range of the same length right before from (to defaults to
// now then); compare_from and compare_to name another.
func (s *server) patterns(w http.ResponseWriter, r *http.Request) {
	if s.d.Patterns == nil {
		writeError(w, http.StatusNotImplemented, "this process has no index (role agent); ask an indexer")
		return
	}
	req, err := s.patternsRequest(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.d.QueryTimeout)
	defer cancel()
	res, err := s.d.Patterns.Patterns(ctx, req)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *server) patternsRequest(r *http.Request) (pipeline.PatternsRequest, error) {
	sr, err := s.searchRequest(r)
	if err != nil {
		return pipeline.PatternsRequest{}, err
	}
	req := pipeline.PatternsRequest{Query: sr.Query, From: sr.From, To: sr.To, Limit: sr.Limit}
	if s.d.PatternsPipe != nil {
		q, limit, ok, err := s.d.PatternsPipe(sr.Query)
		if err != nil {
			return req, err
		}
		if ok {
			req.Query = q
			if req.Limit == 0 {
				req.Limit = limit
			}
		}
	}
	if req.Buckets, err = intParam(r, "buckets", defaultPatternBuckets, 0, 500); err != nil {
		return req, err
	}
	q := r.URL.Query()
	now := s.d.Now()
	if req.CompareFrom, err = ParseTime(q.Get("compare_from"), now); err != nil {
		return req, &pipeline.FieldError{Field: "compare_from", Msg: err.Error()}
	}
	if req.CompareTo, err = ParseTime(q.Get("compare_to"), now); err != nil {
		return req, &pipeline.FieldError{Field: "compare_to", Msg: err.Error()}
	}
	compare, err := boolParam(r, "compare")
	if err != nil {
		return req, err
	}
	isNew, err := boolParam(r, "new")
	if err != nil {
		return req, err
	}
	if req.NewOnly, err = boolParam(r, "only_new"); err != nil {
		return req, err
	}
	if (compare || isNew) && req.CompareFrom.IsZero() && req.CompareTo.IsZero() {
		if req.From.IsZero() {
			return req, &pipeline.FieldError{Field: "from", Msg: "comparing with the range before needs from"}
		}
		if req.To.IsZero() {
			req.To = now
		}
		if !req.To.After(req.From) {
			return req, &pipeline.FieldError{Field: "to", Msg: "comparing with the range before needs to after from"}
		}
		span := req.To.Sub(req.From)
		req.CompareFrom, req.CompareTo = req.From.Add(-span), req.From
		if req.CompareFrom.Before(pipeline.MinTime) {
			req.CompareFrom = pipeline.MinTime
		}
	}
	return req, nil
}

// boolParam reads an optional true/false (1/0) parameter; absent is false.
func boolParam(r *http.Request, name string) (bool, error) {
	switch v := r.URL.Query().Get(name); v {
	case "", "0", "false":
		return false, nil
	case "1", "true":
		return true, nil
	default:
		return false, &pipeline.FieldError{Field: name, Msg: fmt.Sprintf("%q is not true or false", v)}
	}
}

// statsPatterns answers a /api/stats query with a patterns pipe (QUERY |
// patterns [limit N]) as a stats table: columns count, pattern, example,
// one row per template, the most frequent first. It reports whether the
// query was one.
func (s *server) statsPatterns(w http.ResponseWriter, r *http.Request) bool {
	if s.d.Patterns == nil || s.d.PatternsPipe == nil {
		return false
	}
	q, limit, ok, err := s.d.PatternsPipe(r.URL.Query().Get("q"))
	if !ok {
		return false
	}
	if err != nil {
		s.fail(w, r, err)
		return true
	}
	sr, err := s.searchRequest(r)
	if err != nil {
		s.fail(w, r, err)
		return true
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.d.QueryTimeout)
	defer cancel()
	res, err := s.d.Patterns.Patterns(ctx, pipeline.PatternsRequest{Query: q, From: sr.From, To: sr.To, Limit: limit})
	if err != nil {
		s.fail(w, r, err)
		return true
	}
	out := pipeline.StatsResult{Columns: []string{"count", "pattern", "example"}, Rows: make([][]any, 0, len(res.Patterns)),
		Total: res.Total, GroupsCapped: res.Overflow}
	for _, p := range res.Patterns {
		out.Rows = append(out.Rows, []any{p.Count, p.Pattern, p.Example})
	}
	writeJSON(w, http.StatusOK, out)
	return true
}
