package index

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/search/query"

	"github.com/logbox/logbox/appliance/pipeline"
)

// Histogram limits.
const (
	DefaultBuckets = 60
	MaxBuckets     = 500
)

const day = 24 * time.Hour

// niceIntervals are the bucket sizes a histogram picks from (Kibana's).
var niceIntervals = []time.Duration{
	time.Second, 5 * time.Second, 10 * time.Second, 30 * time.Second,
	time.Minute, 5 * time.Minute, 10 * time.Minute, 30 * time.Minute,
	time.Hour, 3 * time.Hour, 12 * time.Hour,
	day, 7 * day, 30 * day, 365 * day,
}

// bucketStart aligns t down to a multiple of iv since the Unix epoch (UTC).
func bucketStart(t time.Time, iv time.Duration) time.Time {
	ns := t.UnixNano()
	r := ns % int64(iv)
	if r < 0 {
		r += int64(iv)
	}
	return time.Unix(0, ns-r).UTC()
}

// ChooseInterval returns the smallest nice interval whose aligned buckets
// covering [from, to) number at most n, and that number. Beyond the list
// it uses whole multiples of 365 days.
func ChooseInterval(from, to time.Time, n int) (time.Duration, int) {
	count := func(iv time.Duration) int {
		start := bucketStart(from, iv)
		span := to.Sub(start)
		c := int(span / iv)
		if span%iv != 0 || c == 0 {
			c++
		}
		return c
	}
	for _, iv := range niceIntervals {
		if c := count(iv); c <= n {
			return iv, c
		}
	}
	year := 365 * day
	k := time.Duration(to.Sub(from)/year/time.Duration(n)) + 1
	for {
		if c := count(k * year); c <= n {
			return k * year, c
		}
		k++
	}
}

// FormatInterval writes d as the largest whole unit: 1s, 30m, 3h, 7d.
func FormatInterval(d time.Duration) string {
	switch {
	case d%day == 0:
		return strconv.FormatInt(int64(d/day), 10) + "d"
	case d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	case d%time.Minute == 0:
		return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
	default:
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	}
}

// edgeTS returns the oldest (newest=false) or newest matching line's ts.
func (ix *Index) edgeTS(ctx context.Context, q query.Query, newest bool) (time.Time, bool, error) {
	sr := bleve.NewSearchRequestOptions(q, 1, 0, false)
	sr.Fields = []string{"ts"}
	if newest {
		sr.SortBy([]string{"-ts", "-_id"})
	} else {
		sr.SortBy([]string{"ts", "_id"})
	}
	out, err := ix.search(ctx, sr)
	if err != nil {
		return time.Time{}, false, err
	}
	if len(out.Hits) == 0 {
		return time.Time{}, false, nil
	}
	s, _ := out.Hits[0].Fields["ts"].(string)
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("stored ts %q: %w", s, err)
	}
	return t, true, nil
}

// Histogram counts matching lines per time bucket over [From, To); open
// ends are taken from the matching lines (the newest line included). Every
// bucket of the range is returned, empty ones with count 0.
func (ix *Index) Histogram(ctx context.Context, req pipeline.HistogramRequest) (pipeline.HistogramResult, error) {
	res := pipeline.HistogramResult{Buckets: []pipeline.HistogramBucket{}}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	n := req.Buckets
	if n <= 0 {
		n = DefaultBuckets
	}
	if n > MaxBuckets {
		return res, &pipeline.FieldError{Field: "buckets", Msg: fmt.Sprintf("at most %d", MaxBuckets)}
	}
	q, err := parseUserQuery(req.Query)
	if err != nil {
		return res, err
	}
	from, to := req.From, req.To
	if from.IsZero() || to.IsZero() {
		bounded := withRange(q, from, to)
		if from.IsZero() {
			t, ok, err := ix.edgeTS(ctx, bounded, false)
			if err != nil {
				return res, fmt.Errorf("histogram %q: oldest line: %w", req.Query, err)
			}
			if !ok {
				return res, nil
			}
			from = t
		}
		if to.IsZero() {
			t, ok, err := ix.edgeTS(ctx, bounded, true)
			if err != nil {
				return res, fmt.Errorf("histogram %q: newest line: %w", req.Query, err)
			}
			if !ok {
				return res, nil
			}
			to = t.Add(time.Nanosecond) // the range excludes its end
		}
	}
	if !to.After(from) {
		return res, nil
	}
	iv, count := ChooseInterval(from, to, n)
	res.Interval = FormatInterval(iv)
	res.IntervalSeconds = int64(iv / time.Second)
	start := bucketStart(from, iv)

	sr := bleve.NewSearchRequestOptions(withRange(q, from, to), 0, 0, false)
	fr := bleve.NewFacetRequest("ts", count)
	res.Buckets = make([]pipeline.HistogramBucket, count)
	for i := range res.Buckets {
		bs := start.Add(time.Duration(i) * iv)
		res.Buckets[i].TS = bs
		// The first and last buckets are clipped to the asked range.
		lo, hi := bs, bs.Add(iv)
		if lo.Before(from) {
			lo = from
		}
		if hi.After(to) {
			hi = to
		}
		fr.AddDateTimeRange(strconv.Itoa(i), lo, hi)
	}
	sr.AddFacet("ts", fr)
	out, err := ix.search(ctx, sr)
	if err != nil {
		return res, fmt.Errorf("histogram %q: %w", req.Query, err)
	}
	res.Total = out.Total
	if f := out.Facets["ts"]; f != nil {
		for _, dr := range f.DateRanges {
			i, err := strconv.Atoi(dr.Name)
			if err == nil && i >= 0 && i < len(res.Buckets) {
				res.Buckets[i].Count = uint64(dr.Count)
			}
		}
	}
	return res, nil
}

// Facet limits.
const (
	DefaultFacetSize = 10
	MaxFacetSize     = 1000
)

var fieldNameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,100}$`)

// FacetFields are the fields Facets accepts, besides fields.NAME.
var FacetFields = []string{"host", "source", "source_name", "level", "flags"}

// Facets returns the most frequent values of req.Field among matching lines.
func (ix *Index) Facets(ctx context.Context, req pipeline.FacetsRequest) (pipeline.FacetsResult, error) {
	res := pipeline.FacetsResult{Field: req.Field, Values: []pipeline.FacetValue{}}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	known := false
	for _, f := range FacetFields {
		known = known || f == req.Field
	}
	if name, ok := strings.CutPrefix(req.Field, "fields."); ok && fieldNameRE.MatchString(name) {
		known = true
	}
	if !known {
		return res, &pipeline.FieldError{Field: "field", Msg: fmt.Sprintf("%q cannot be faceted; use one of %s or fields.NAME", req.Field, strings.Join(FacetFields, ", "))}
	}
	size := req.Size
	if size <= 0 {
		size = DefaultFacetSize
	}
	if size > MaxFacetSize {
		return res, &pipeline.FieldError{Field: "size", Msg: fmt.Sprintf("at most %d", MaxFacetSize)}
	}
	q, err := buildQuery(req.Query, req.From, req.To)
	if err != nil {
		return res, err
	}
	sr := bleve.NewSearchRequestOptions(q, 0, 0, false)
	sr.AddFacet("f", bleve.NewFacetRequest(req.Field, size))
	out, err := ix.search(ctx, sr)
	if err != nil {
		return res, fmt.Errorf("facets of %s for %q: %w", req.Field, req.Query, err)
	}
	res.Total = out.Total
	if f := out.Facets["f"]; f != nil {
		res.Other = f.Other
		res.Missing = f.Missing
		if f.Terms != nil {
			for _, t := range f.Terms.Terms() {
				v := t.Term
				if req.Field == "level" {
					// Indexed lowercase; shown as stored.
					v = strings.ToUpper(v)
				}
				res.Values = append(res.Values, pipeline.FacetValue{Value: v, Count: t.Count})
			}
		}
	}
	return res, nil
}

// Context limits.
const (
	DefaultContextLines = 10
	MaxContextLines     = 500
)

// Context returns up to Before lines before and After lines after the line
// with req.ID in the same file (same host and file identity), in file order.
// An unknown ID is pipeline.ErrHitNotFound.
func (ix *Index) Context(ctx context.Context, req pipeline.ContextRequest) (pipeline.ContextResult, error) {
	var res pipeline.ContextResult
	if err := ctx.Err(); err != nil {
		return res, err
	}
	for _, p := range []struct {
		name string
		v    *int
	}{{"before", &req.Before}, {"after", &req.After}} {
		if *p.v < 0 || *p.v > MaxContextLines {
			return res, &pipeline.FieldError{Field: p.name, Msg: fmt.Sprintf("must be from 0 to %d", MaxContextLines)}
		}
	}
	sr := bleve.NewSearchRequestOptions(bleve.NewDocIDQuery([]string{req.ID}), 1, 0, false)
	sr.Fields = []string{"*"}
	out, err := ix.search(ctx, sr)
	if err != nil {
		return res, fmt.Errorf("context of %q: %w", req.ID, err)
	}
	if len(out.Hits) == 0 {
		return res, fmt.Errorf("%q: %w", req.ID, pipeline.ErrHitNotFound)
	}
	anchor := hitFrom(out.Hits[0])
	anchor.Anchor = true
	off := float64(anchor.Offset)
	side := func(n int, before bool) ([]pipeline.Hit, error) {
		if n == 0 {
			return nil, nil
		}
		host := bleve.NewTermQuery(anchor.Host)
		host.SetField("host")
		file := bleve.NewTermQuery(anchor.FileID)
		file.SetField("file_id")
		f := false
		var rq *query.NumericRangeQuery
		sort := "offset"
		if before {
			rq = bleve.NewNumericRangeInclusiveQuery(nil, &off, nil, &f)
			sort = "-offset"
		} else {
			rq = bleve.NewNumericRangeInclusiveQuery(&off, nil, &f, nil)
		}
		rq.SetField("offset")
		sr := bleve.NewSearchRequestOptions(bleve.NewConjunctionQuery(host, file, rq), n, 0, false)
		sr.Fields = []string{"*"}
		sr.SortBy([]string{sort})
		out, err := ix.search(ctx, sr)
		if err != nil {
			return nil, fmt.Errorf("context of %q: %w", req.ID, err)
		}
		hits := make([]pipeline.Hit, len(out.Hits))
		for i, h := range out.Hits {
			if before {
				hits[len(hits)-1-i] = hitFrom(h)
			} else {
				hits[i] = hitFrom(h)
			}
		}
		return hits, nil
	}
	before, err := side(req.Before, true)
	if err != nil {
		return res, err
	}
	after, err := side(req.After, false)
	if err != nil {
		return res, err
	}
	res.Hits = make([]pipeline.Hit, 0, len(before)+1+len(after))
	res.Hits = append(res.Hits, before...)
	res.AnchorIndex = len(res.Hits)
	res.Hits = append(res.Hits, anchor)
	res.Hits = append(res.Hits, after...)
	return res, nil
}
