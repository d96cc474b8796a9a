package index

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/logbox/logbox/appliance/pipeline"
)

func TestChooseInterval(t *testing.T) {
	base := time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		span  time.Duration
		n     int
		want  string
		count int
	}{
		{2 * time.Minute, 60, "5s", 24},
		{15 * time.Minute, 60, "30s", 30},
		{time.Hour, 60, "1m", 60},
		{24 * time.Hour, 60, "30m", 48},
		{7 * day, 60, "3h", 56},
		{time.Hour, 500, "10s", 360},
		{time.Second, 60, "1s", 1},
		{30 * day, 60, "12h", 60},
	}
	for _, c := range cases {
		iv, n := ChooseInterval(base, base.Add(c.span), c.n)
		if FormatInterval(iv) != c.want || n != c.count {
			t.Errorf("%v/%d: %s x %d, want %s x %d", c.span, c.n, FormatInterval(iv), n, c.want, c.count)
		}
	}
	// Beyond the list: whole years, still at most n buckets.
	if iv, n := ChooseInterval(base, base.Add(200*365*day), 10); iv%(365*day) != 0 || n > 10 || n < 5 {
		t.Errorf("200 years in 10: %s x %d", FormatInterval(iv), n)
	}
}

func TestHistogram(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ix := openTest(t, filepath.Join(t.TempDir(), "idx"))
	defer ix.Close()
	base := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	// 120 lines, one per second; every third is ERROR.
	if err := ix.Index(ctx, recs(base, 120, "f1")); err != nil {
		t.Fatal(err)
	}
	s := time.Second
	cases := []struct {
		name     string
		req      pipeline.HistogramRequest
		interval string
		counts   []uint64 // nil: only check total and len
		n        int
		total    uint64
	}{
		{"explicit range", pipeline.HistogramRequest{From: base, To: base.Add(2 * time.Minute)}, "5s", nil, 24, 120},
		{"open ends from data", pipeline.HistogramRequest{}, "5s", nil, 24, 120},
		{"query", pipeline.HistogramRequest{Query: "level:error", From: base, To: base.Add(30 * s), Buckets: 3}, "10s",
			[]uint64{3, 4, 3}, 3, 10},
		{"unaligned range clipped", pipeline.HistogramRequest{From: base.Add(7 * s), To: base.Add(67 * s), Buckets: 6}, "30s",
			[]uint64{23, 30, 7}, 3, 60},
		{"one bucket", pipeline.HistogramRequest{From: base, To: base.Add(2 * time.Minute), Buckets: 1}, "5m", []uint64{120}, 1, 120},
		{"range without data", pipeline.HistogramRequest{From: base.Add(time.Hour), To: base.Add(2 * time.Hour)}, "1m", nil, 60, 0},
		{"open end, no match", pipeline.HistogramRequest{Query: "nothere"}, "", nil, 0, 0},
		{"empty range", pipeline.HistogramRequest{From: base, To: base}, "", nil, 0, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, err := ix.Histogram(ctx, c.req)
			if err != nil {
				t.Fatal(err)
			}
			if res.Interval != c.interval || len(res.Buckets) != c.n || res.Total != c.total {
				t.Fatalf("interval %q, %d buckets, total %d; want %q, %d, %d", res.Interval, len(res.Buckets), res.Total, c.interval, c.n, c.total)
			}
			var sum uint64
			for i, b := range res.Buckets {
				sum += b.Count
				if c.counts != nil && b.Count != c.counts[i] {
					t.Errorf("bucket %d (%v): %d, want %d", i, b.TS, b.Count, c.counts[i])
				}
				if i > 0 && b.TS.Sub(res.Buckets[i-1].TS) != time.Duration(res.IntervalSeconds)*time.Second {
					t.Errorf("bucket %d not one interval after the previous", i)
				}
			}
			if sum != c.total {
				t.Errorf("buckets sum to %d, total %d", sum, c.total)
			}
		})
	}
	var fe *pipeline.FieldError
	if _, err := ix.Histogram(ctx, pipeline.HistogramRequest{Buckets: 501}); !errors.As(err, &fe) || fe.Field != "buckets" {
		t.Fatalf("buckets 501: %v", err)
	}
}

func TestFacets(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ix := openTest(t, filepath.Join(t.TempDir(), "idx"))
	defer ix.Close()
	base := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	a := recs(base, 30, "f1") // web1: 10 INFO, 10 ERROR, 10 WARN
	b := recs(base, 12, "f2")
	for i := range b {
		b[i].Host = "web2"
		b[i].Fields = map[string]string{"env": "dev"}
		b[i].Flags = []string{pipeline.FlagTruncated}
	}
	b[0].Flags = append(b[0].Flags, pipeline.FlagInvalidUTF8)
	if err := ix.Index(ctx, append(a, b...)); err != nil {
		t.Fatal(err)
	}
	type fv struct {
		Value string
		Count int
	}
	cases := []struct {
		name           string
		req            pipeline.FacetsRequest
		total          uint64
		values         []fv
		other, missing int
	}{
		{"host", pipeline.FacetsRequest{Field: "host"}, 42, []fv{{"web1", 30}, {"web2", 12}}, 0, 0},
		{"host top 1", pipeline.FacetsRequest{Field: "host", Size: 1}, 42, []fv{{"web1", 30}}, 12, 0},
		{"level shown as stored", pipeline.FacetsRequest{Field: "level", Query: "host:web1"}, 30, []fv{{"ERROR", 10}, {"INFO", 10}, {"WARN", 10}}, 0, 0},
		{"static field", pipeline.FacetsRequest{Field: "fields.env"}, 42, []fv{{"prod", 30}, {"dev", 12}}, 0, 0},
		{"flags", pipeline.FacetsRequest{Field: "flags"}, 42, []fv{{"truncated", 12}, {"invalid_utf8", 1}}, 0, 30},
		{"lowercase level query", pipeline.FacetsRequest{Field: "host", Query: "level:error"}, 14, []fv{{"web1", 10}, {"web2", 4}}, 0, 0},
		{"level wildcard", pipeline.FacetsRequest{Field: "host", Query: "level:Err*"}, 14, []fv{{"web1", 10}, {"web2", 4}}, 0, 0},
		{"time range", pipeline.FacetsRequest{Field: "host", From: base.Add(20 * time.Second)}, 10, []fv{{"web1", 10}}, 0, 0},
		{"no match", pipeline.FacetsRequest{Field: "host", Query: "nothere"}, 0, []fv{}, 0, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, err := ix.Facets(ctx, c.req)
			if err != nil {
				t.Fatal(err)
			}
			if res.Total != c.total || res.Other != c.other || res.Missing != c.missing || fmt.Sprint(res.Values) != fmt.Sprint(c.values) {
				t.Fatalf("got total %d values %v other %d missing %d; want %d %v %d %d", res.Total, res.Values, res.Other, res.Missing, c.total, c.values, c.other, c.missing)
			}
		})
	}
	for _, f := range []string{"line", "file_id", "fields.", "fields.a b", "nope"} {
		var fe *pipeline.FieldError
		if _, err := ix.Facets(ctx, pipeline.FacetsRequest{Field: f}); !errors.As(err, &fe) || fe.Field != "field" {
			t.Errorf("field %q: %v", f, err)
		}
	}
}

func TestContext(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ix := openTest(t, filepath.Join(t.TempDir(), "idx"))
	defer ix.Close()
	base := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	f1 := recs(base, 20, "f1") // offsets 0,100,...,1900
	// Another file with the same timestamps and offsets, and the same file
	// ID on another host: neither belongs to f1's context.
	f2 := recs(base, 20, "f2")
	other := recs(base, 20, "f1")
	for i := range other {
		other[i].Host = "web9"
	}
	// Timestamps out of file order: context follows offsets, not time.
	f1[5].TS, f1[6].TS = f1[6].TS, f1[5].TS
	if err := ix.Index(ctx, append(append(f1, f2...), other...)); err != nil {
		t.Fatal(err)
	}
	offs := func(hs []pipeline.Hit) []int64 {
		var o []int64
		for _, h := range hs {
			if h.FileID != "f1" || h.Host != "web1" {
				t.Errorf("hit from another file: %+v", h)
			}
			o = append(o, h.Offset)
		}
		return o
	}
	cases := []struct {
		name          string
		anchor        int
		before, after int
		want          []int64
		idx           int
	}{
		{"middle", 6, 3, 2, []int64{300, 400, 500, 600, 700, 800}, 3},
		{"file start", 0, 3, 1, []int64{0, 100}, 0},
		{"file end", 19, 1, 5, []int64{1800, 1900}, 1},
		{"anchor only", 10, 0, 0, []int64{1000}, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, err := ix.Context(ctx, pipeline.ContextRequest{ID: f1[c.anchor].ID(), Before: c.before, After: c.after})
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(offs(res.Hits)) != fmt.Sprint(c.want) || res.AnchorIndex != c.idx || !res.Hits[c.idx].Anchor {
				t.Fatalf("offsets %v anchor %d; want %v anchor %d", offs(res.Hits), res.AnchorIndex, c.want, c.idx)
			}
			for i, h := range res.Hits {
				if h.Anchor != (i == c.idx) {
					t.Errorf("hit %d anchor=%v", i, h.Anchor)
				}
			}
		})
	}
	if _, err := ix.Context(ctx, pipeline.ContextRequest{ID: "nope|x|1"}); !errors.Is(err, pipeline.ErrHitNotFound) {
		t.Fatalf("unknown id: %v", err)
	}
	var fe *pipeline.FieldError
	if _, err := ix.Context(ctx, pipeline.ContextRequest{ID: f1[0].ID(), After: 501}); !errors.As(err, &fe) || fe.Field != "after" {
		t.Fatalf("after 501: %v", err)
	}
}

func TestValueCounterCountsAsAMap(t *testing.T) {
	c := newValueCounter()
	want := map[string]int{}
	for i := range 200000 {
		v := fmt.Sprintf("10.%d.%d.%d", i%7, i%251, i%997)
		k := 1 + i%3
		c.add(v, k)
		want[v] += k
	}
	c.add("", 1) // the empty value is a value like any other here
	want[""]++
	got := map[string]int{}
	c.each(func(s string, n int) { got[s] += n })
	if c.len() != len(want) || len(got) != len(want) {
		t.Fatalf("%d values (len %d), want %d", len(got), c.len(), len(want))
	}
	for v, n := range want {
		if got[v] != n {
			t.Fatalf("%q: %d, want %d", v, got[v], n)
		}
	}
}
