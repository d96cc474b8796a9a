package index

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/logbox/logbox/appliance/pipeline"
	"github.com/logbox/logbox/bench"
)

// TestReadsIndexOfLayout2: an index written by the release before block
// layout 3 (testdata/index-layout2: 1 000 lines of the benchmark mix on
// 2026-11-20, hosts web1 and web-2, every tenth line with env=prod, made
// by that release's Index) is read as it is: every query answers as a
// check of every line does, the old shard takes more lines in its own
// layout, and a new shard is written in layout 3 beside it.
func TestReadsIndexOfLayout2(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := filepath.Join(t.TempDir(), "idx")
	if err := os.CopyFS(dir, os.DirFS(filepath.Join("..", "..", "testdata", "index-layout2"))); err != nil {
		t.Fatal(err)
	}
	day := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	open := func() *Index {
		return openWith(t, Config{Dir: dir, Retention: -1, Now: func() time.Time { return day.Add(30 * time.Hour) }})
	}
	ix := open()
	magic := func(shard string) string {
		b, err := os.ReadFile(filepath.Join(dir, "segments", shard, blockFileName))
		if err != nil {
			t.Fatal(err)
		}
		return string(b[:8])
	}
	if m := magic("20261120"); m != string(blockMagic2) {
		t.Fatalf("fixture starts with %q", m)
	}
	queries := []string{"", "GET", "error", "level:ERROR", "-level:info", "host:web1", "env:prod", "fields.env:prod",
		"exception", `"` + bench.Phrase + `"`, "192.168.1.10", "api/v1", "at", "conn*", "GET -200", "latency_ms:>100"}
	check := func(want map[string]uint64) map[string]uint64 {
		t.Helper()
		got := map[string]uint64{}
		for _, q := range queries {
			var totals [2]uint64
			var hists [2]string
			for k, every := range []bool{false, true} {
				ix.noCandidates = every
				res, err := ix.Search(ctx, pipeline.SearchRequest{Query: q, Limit: 3, ExactTotal: true})
				if err != nil {
					t.Fatalf("%q: %v", q, err)
				}
				h, err := ix.Histogram(ctx, pipeline.HistogramRequest{Query: q, From: day.Add(-time.Hour), To: day.Add(47 * time.Hour), Buckets: 48})
				if err != nil {
					t.Fatalf("%q: %v", q, err)
				}
				totals[k], hists[k] = res.Total, fmt.Sprint(h.Buckets)
			}
			// Stats read old blocks' lines (they have no columns): the
			// same counts as the facets and the search.
			st, err := ix.StatsQuery(ctx, pipeline.StatsRequest{Query: q + " | stats count(), count(env), sum(latency_ms) by (level)"})
			if err != nil {
				t.Fatalf("%q stats: %v", q, err)
			}
			fc, err := ix.Facets(ctx, pipeline.FacetsRequest{Query: q, Field: "level", Size: 10})
			if err != nil {
				t.Fatalf("%q facets: %v", q, err)
			}
			byLevel := map[string]int{}
			var sum uint64
			for _, r := range st.Rows {
				byLevel[r[0].(string)] = int(r[1].(uint64))
				sum += r[1].(uint64)
			}
			for _, v := range fc.Values {
				if byLevel[v.Value] != v.Count {
					t.Errorf("%q: stats by level %v, facets %v", q, byLevel, fc.Values)
				}
			}
			if sum != totals[0] || st.Total != totals[0] {
				t.Errorf("%q: stats counts %d lines (total %d), search %d", q, sum, st.Total, totals[0])
			}
			ix.noCandidates = false
			if totals[0] != totals[1] || hists[0] != hists[1] {
				t.Errorf("%q: %d hits, histogram %s; line by line %d, %s", q, totals[0], hists[0], totals[1], hists[1])
			}
			if w, ok := want[q]; ok && w != totals[0] {
				t.Errorf("%q: %d hits, want %d", q, totals[0], w)
			}
			got[q] = totals[0]
		}
		return got
	}
	before := check(map[string]uint64{"": 1000, "host:web1": 500, "env:prod": 100})
	if before["GET"] == 0 || before["level:ERROR"] == 0 || before[`"`+bench.Phrase+`"`] == 0 {
		t.Fatalf("fixture finds too little: %v", before)
	}

	// More lines: some into the old shard's day, some into the next day.
	g := bench.NewGenerator(5, 400, day)
	var rs []pipeline.Record
	for i := range 400 {
		l := g.Next()
		ts := day.Add(time.Duration(i) * time.Second)
		if i%2 == 1 {
			ts = ts.Add(24 * time.Hour)
		}
		rs = append(rs, pipeline.Record{TS: ts, Host: "web3", Source: "/var/log/new.log", FileID: "new", Offset: int64(i * 1000), Line: "2026-11-20 junk " + l})
	}
	if err := ix.Index(ctx, rs); err != nil {
		t.Fatal(err)
	}
	after := check(map[string]uint64{"": 1400, "host:web1": 500, "env:prod": 100})
	if magic("20261120") != string(blockMagic2) || magic("20261121") != string(blockMagics[blockVersionNewest-1]) {
		t.Fatalf("layouts after writing: %q and %q", magic("20261120"), magic("20261121"))
	}
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}
	ix = open()
	defer ix.Close()
	if again := check(nil); fmt.Sprint(again) != fmt.Sprint(after) {
		t.Fatalf("after reopening: %v, before %v", again, after)
	}
}
