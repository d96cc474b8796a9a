package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"sync"

	"github.com/logbox/logbox/appliance/pipeline"
)

// Search merges the indexers' pages: each is asked for the page after
// the same cursor (the order is one across every index), the hits are
// merged newest first, duplicates by line identity dropped, and the
// cursor is the last hit's sort key.
func (r *Router) Search(ctx context.Context, req pipeline.SearchRequest) (pipeline.SearchResult, error) {
	limit := req.Limit
	if limit <= 0 {
		limit = 100
	}
	v := url.Values{"q": {req.Query}, "limit": {strconv.Itoa(limit)}}
	timeParam(v, "from", req.From)
	timeParam(v, "to", req.To)
	if req.Cursor != "" {
		v.Set("cursor", req.Cursor)
	}
	if req.ExactTotal {
		v.Set("track_total", "true")
	}
	sreq := req
	sreq.WithSort = true
	parts, missing, err := gather(ctx, r, func(ctx context.Context) (pipeline.SearchResult, error) {
		return r.Local.Search(ctx, sreq)
	}, remoteJSON[pipeline.SearchResult](r, "/api/search", v))
	if err != nil {
		return pipeline.SearchResult{}, err
	}
	out := pipeline.SearchResult{Hits: []pipeline.Hit{}}
	more := false
	var hits []pipeline.Hit
	for _, p := range parts {
		out.Total += p.Total
		if p.TotalRelation != "" {
			out.TotalRelation = p.TotalRelation
		}
		more = more || p.Cursor != ""
		hits = append(hits, p.Hits...)
		out.Missing = append(out.Missing, p.Missing...)
	}
	slices.SortStableFunc(hits, func(a, b pipeline.Hit) int { return r.CompareSort(a.Sort, b.Sort) })
	seen := make(map[string]bool, len(hits))
	for _, h := range hits {
		if seen[h.ID] {
			if out.TotalRelation == "" && out.Total > 0 {
				out.Total--
			}
			continue
		}
		seen[h.ID] = true
		if len(out.Hits) < limit {
			out.Hits = append(out.Hits, h)
		} else {
			more = true
		}
	}
	if more && len(out.Hits) == limit {
		out.Cursor = out.Hits[limit-1].Sort
	}
	if !req.WithSort {
		for i := range out.Hits {
			out.Hits[i].Sort = ""
		}
	}
	out.Missing = append(out.Missing, missing...)
	out.Partial = len(out.Missing) > 0
	return out, nil
}

// Histogram sums the indexers' buckets over one layout: with an open
// end, a first round finds the oldest and newest matching line of each,
// then all are asked over the same closed range, as one index lays it.
func (r *Router) Histogram(ctx context.Context, req pipeline.HistogramRequest) (pipeline.HistogramResult, error) {
	if req.From.IsZero() || req.To.IsZero() {
		first, err := r.histogram(ctx, req)
		if err != nil || first.Total == 0 {
			return first, err
		}
		if req.From.IsZero() {
			req.From = *first.First
		}
		if req.To.IsZero() {
			req.To = first.Last.Add(1)
		}
		res, err := r.histogram(ctx, req)
		if err == nil {
			res.First, res.Last = first.First, first.Last
		}
		return res, err
	}
	return r.histogram(ctx, req)
}

func (r *Router) histogram(ctx context.Context, req pipeline.HistogramRequest) (pipeline.HistogramResult, error) {
	v := url.Values{"q": {req.Query}}
	if req.Buckets > 0 {
		v.Set("buckets", strconv.Itoa(req.Buckets))
	}
	timeParam(v, "from", req.From)
	timeParam(v, "to", req.To)
	parts, missing, err := gather(ctx, r, func(ctx context.Context) (pipeline.HistogramResult, error) {
		return r.Local.Histogram(ctx, req)
	}, remoteJSON[pipeline.HistogramResult](r, "/api/histogram", v))
	if err != nil {
		return pipeline.HistogramResult{}, err
	}
	out := pipeline.HistogramResult{Buckets: []pipeline.HistogramBucket{}}
	for _, p := range parts {
		out.Total += p.Total
		out.Missing = append(out.Missing, p.Missing...)
		if p.First != nil && (out.First == nil || p.First.Before(*out.First)) {
			out.First = p.First
		}
		if p.Last != nil && (out.Last == nil || p.Last.After(*out.Last)) {
			out.Last = p.Last
		}
		if len(p.Buckets) == 0 {
			continue
		}
		if len(out.Buckets) == 0 {
			out.Buckets = slices.Clone(p.Buckets)
			out.Interval, out.IntervalSeconds = p.Interval, p.IntervalSeconds
			continue
		}
		if p.Interval != out.Interval || len(p.Buckets) != len(out.Buckets) || !p.Buckets[0].TS.Equal(out.Buckets[0].TS) {
			return out, fmt.Errorf("histogram: indexers laid out different buckets (%s × %d from %s, %s × %d from %s); are their versions the same?",
				out.Interval, len(out.Buckets), out.Buckets[0].TS, p.Interval, len(p.Buckets), p.Buckets[0].TS)
		}
		for i := range p.Buckets {
			out.Buckets[i].Count += p.Buckets[i].Count
		}
	}
	out.Missing = append(out.Missing, missing...)
	out.Partial = len(out.Missing) > 0
	return out, nil
}

// Facets sums the indexers' value counts. Each is asked for every value
// of the field, so the sums are exact; the merged top Size are answered,
// the rest counted in Other.
func (r *Router) Facets(ctx context.Context, req pipeline.FacetsRequest) (pipeline.FacetsResult, error) {
	size := req.Size
	if size <= 0 {
		size = 10
	}
	wide := req
	wide.All = true
	v := url.Values{"q": {req.Query}, "field": {req.Field}, "all": {"1"}}
	timeParam(v, "from", req.From)
	timeParam(v, "to", req.To)
	parts, missing, err := gather(ctx, r, func(ctx context.Context) (pipeline.FacetsResult, error) {
		return r.Local.Facets(ctx, wide)
	}, remoteJSON[pipeline.FacetsResult](r, "/api/facets", v))
	if err != nil {
		return pipeline.FacetsResult{}, err
	}
	out := pipeline.FacetsResult{Field: req.Field, Values: []pipeline.FacetValue{}}
	counts := map[string]int{}
	for _, p := range parts {
		out.Total += p.Total
		out.Other += p.Other
		out.Missing += p.Missing
		out.MissingRanges = append(out.MissingRanges, p.MissingRanges...)
		for _, v := range p.Values {
			counts[v.Value] += v.Count
		}
	}
	for v, n := range counts {
		out.Values = append(out.Values, pipeline.FacetValue{Value: v, Count: n})
	}
	slices.SortFunc(out.Values, func(a, b pipeline.FacetValue) int {
		if a.Count != b.Count {
			return b.Count - a.Count
		}
		if a.Value < b.Value {
			return -1
		}
		if a.Value > b.Value {
			return 1
		}
		return 0
	})
	if len(out.Values) > size {
		for _, v := range out.Values[size:] {
			out.Other += v.Count
		}
		out.Values = out.Values[:size]
	}
	out.MissingRanges = append(out.MissingRanges, missing...)
	out.Partial = len(out.MissingRanges) > 0
	return out, nil
}

// StatsQuery merges the indexers' stats states exactly (index.MergeStats).
func (r *Router) StatsQuery(ctx context.Context, req pipeline.StatsRequest) (pipeline.StatsResult, error) {
	v := url.Values{"q": {req.Query}, "state": {"1"}}
	timeParam(v, "from", req.From)
	timeParam(v, "to", req.To)
	states, missing, err := gather(ctx, r, func(ctx context.Context) ([]byte, error) {
		return r.StatsState(ctx, req)
	}, func(ctx context.Context, a ask) ([]byte, error) {
		return r.get(ctx, a, "/api/stats", v)
	})
	if err != nil {
		return pipeline.StatsResult{}, err
	}
	res, err := r.MergeStats(req.Query, states)
	if err != nil {
		return res, err
	}
	res.Missing = missing
	res.Partial = len(res.Missing) > 0
	return res, nil
}

// Context asks the local index, then each live indexer, for the lines
// around a hit: the first that holds it answers.
func (r *Router) Context(ctx context.Context, req pipeline.ContextRequest) (pipeline.ContextResult, error) {
	if r.Local != nil {
		res, err := r.Local.Context(ctx, req)
		if err == nil || !errors.Is(err, pipeline.ErrHitNotFound) {
			return res, err
		}
	}
	for _, m := range r.Dir.Members() {
		if m.ID == r.Self || m.Addr == "" {
			continue
		}
		var res pipeline.ContextResult
		v := url.Values{"id": {req.ID}, "before": {strconv.Itoa(req.Before)}, "after": {strconv.Itoa(req.After)}}
		if err := r.getJSON(ctx, ask{m: m, all: true}, "/api/context", v, &res); err == nil {
			return res, nil
		}
	}
	return pipeline.ContextResult{}, fmt.Errorf("%q: %w", req.ID, pipeline.ErrHitNotFound)
}

func (r *Router) getJSON(ctx context.Context, a ask, path string, v url.Values, out any) error {
	body, err := r.get(ctx, a, path, v)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("ask indexer %s: %s: %w", a.m.ID, path, err)
	}
	return nil
}

// gather asks every planned member (see fanout) with local (this
// process's index, its context scoped to the member's partitions) or
// remote, and returns their answers and what stays missing.
func gather[T any](ctx context.Context, r *Router, local func(ctx context.Context) (T, error), remote func(ctx context.Context, a ask) (T, error)) ([]T, []pipeline.MissingRange, error) {
	var mu sync.Mutex
	var out []T
	missing, err := r.fanout(ctx, func(ctx context.Context, a ask) error {
		var v T
		var err error
		if a.self {
			v, err = local(scoped(ctx, a))
		} else {
			v, err = remote(ctx, a)
		}
		if err != nil {
			return err
		}
		mu.Lock()
		out = append(out, v)
		mu.Unlock()
		return nil
	})
	return out, missing, err
}

// remoteJSON is a gather remote that GETs path with params and decodes
// the JSON answer.
func remoteJSON[T any](r *Router, path string, v url.Values) func(ctx context.Context, a ask) (T, error) {
	return func(ctx context.Context, a ask) (T, error) {
		var res T
		err := r.getJSON(ctx, a, path, v, &res)
		return res, err
	}
}
