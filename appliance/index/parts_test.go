package index

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/logbox/logbox/appliance/pipeline"
)

// TestPartsScope: lines keep the Kafka partition they were read from
// (across a reopen), and a query scoped with pipeline.WithParts sees only
// those partitions: search, histogram, facets, stats and tail.
func TestPartsScope(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "idx")
	ix := openWith(t, Config{Dir: dir, BlockLines: 64})
	base := testNow.Add(-time.Hour)
	var all []pipeline.Record
	for p, n := range map[string]int{"logs/0": 300, "logs/1": 200, "": 100} {
		rs := recs(base, n, "f-"+p)
		for i := range rs {
			rs[i].Part = p
			rs[i].SourceName = "app"
		}
		all = append(all, rs...)
	}
	if err := ix.Index(ctx, all); err != nil {
		t.Fatal(err)
	}
	check := func(ix *Index) {
		t.Helper()
		for _, c := range []struct {
			parts []string
			want  uint64
		}{{nil, 600}, {[]string{"logs/0"}, 300}, {[]string{"logs/1"}, 200}, {[]string{"logs/0", "logs/1"}, 500}, {[]string{}, 0}, {[]string{"logs/9"}, 0}} {
			sctx := ctx
			if c.parts != nil {
				sctx = pipeline.WithParts(ctx, c.parts)
			}
			res, err := ix.Search(sctx, pipeline.SearchRequest{Query: "request", Limit: 5, ExactTotal: true, WithSort: true})
			if err != nil || res.Total != c.want {
				t.Fatalf("search %v: %d %v, want %d", c.parts, res.Total, err, c.want)
			}
			if c.want > 0 && res.Hits[0].Sort == "" {
				t.Fatalf("search %v: no sort key with WithSort", c.parts)
			}
			h, err := ix.Histogram(sctx, pipeline.HistogramRequest{Query: "request", From: base, To: testNow})
			if err != nil || h.Total != c.want {
				t.Fatalf("histogram %v: %d %v, want %d", c.parts, h.Total, err, c.want)
			}
			f, err := ix.Facets(sctx, pipeline.FacetsRequest{Query: "request", From: base, To: testNow, Field: "level"})
			if err != nil || f.Total != c.want {
				t.Fatalf("facets %v: %d %v, want %d", c.parts, f.Total, err, c.want)
			}
			st, err := ix.StatsQuery(sctx, pipeline.StatsRequest{Query: "request | stats count() as n", From: base, To: testNow})
			if err != nil || st.Total != c.want || len(st.Rows) != 1 || st.Rows[0][0] != float64(c.want) && st.Rows[0][0] != c.want && st.Rows[0][0] != int(c.want) {
				t.Fatalf("stats %v: %d %v %v, want %d", c.parts, st.Total, st.Rows, err, c.want)
			}
		}
	}
	check(ix)
	// A scoped tail sees only its partitions' new lines.
	tail, err := ix.Tail(pipeline.WithParts(ctx, []string{"logs/1"}), pipeline.TailRequest{Query: "request"})
	if err != nil {
		t.Fatal(err)
	}
	more := append(recs(testNow.Add(-time.Minute), 3, "g0"), recs(testNow.Add(-time.Minute), 2, "g1")...)
	for i := range more {
		more[i].SourceName = "app"
		more[i].Part = map[bool]string{true: "logs/0", false: "logs/1"}[i < 3]
	}
	if err := ix.Index(ctx, more); err != nil {
		t.Fatal(err)
	}
	var got []pipeline.Hit
	deadline := time.Now().Add(5 * time.Second)
	for len(got) < 2 && time.Now().Before(deadline) {
		c, err := tail.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, c.Hits...)
		if len(c.Hits) == 0 {
			select {
			case <-tail.Ready():
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
	tail.Close()
	if len(got) != 2 || got[0].FileID != "g1" || got[1].FileID != "g1" {
		t.Fatalf("scoped tail got %d hits %+v, want the 2 of logs/1", len(got), got)
	}
	ix.Close()
	ix = openWith(t, Config{Dir: dir, BlockLines: 64})
	defer ix.Close()
	res, err := ix.Search(pipeline.WithParts(ctx, []string{"logs/1"}), pipeline.SearchRequest{Query: "request", Limit: 1, ExactTotal: true})
	if err != nil || res.Total != 202 {
		t.Fatalf("after reopen logs/1 holds %d (%v), want 202", res.Total, err)
	}
	f, err := ix.Facets(ctx, pipeline.FacetsRequest{Query: "", From: base, To: testNow, Field: "source_name"})
	if err != nil || len(f.Values) != 1 || f.Values[0].Value != "app" || f.Values[0].Count != 605 {
		t.Fatalf("source_name facet after reopen: %+v %v, want app 605 (the partition is not part of the name)", f, err)
	}
}

// TestFacetsAll: All returns every value of the field, past MaxFacetSize
// (the fleet sums them), with Other 0.
func TestFacetsAll(t *testing.T) {
	ctx := context.Background()
	ix := openWith(t, Config{Dir: filepath.Join(t.TempDir(), "idx")})
	defer ix.Close()
	n := MaxFacetSize + 300
	rs := recs(testNow.Add(-time.Hour), n, "f")
	for i := range rs {
		rs[i].Fields = map[string]string{"req": fmt.Sprintf("r%05d", i)}
	}
	if err := ix.Index(ctx, rs); err != nil {
		t.Fatal(err)
	}
	f, err := ix.Facets(ctx, pipeline.FacetsRequest{Query: "request", Field: "fields.req", Size: 5, All: true})
	if err != nil || len(f.Values) != n || f.Other != 0 || f.Total != uint64(n) {
		t.Fatalf("all: %d values, other %d, total %d, %v; want %d, 0", len(f.Values), f.Other, f.Total, err, n)
	}
	f, err = ix.Facets(ctx, pipeline.FacetsRequest{Query: "request", Field: "fields.req", Size: 5})
	if err != nil || len(f.Values) != 5 || f.Other != n-5 {
		t.Fatalf("top 5: %d values, other %d, %v", len(f.Values), f.Other, err)
	}
}
