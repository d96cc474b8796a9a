package index

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/logbox/logbox/appliance/pipeline"
	"github.com/logbox/logbox/bench"
)

// TestBlockCandidatesNeverMiss: for every query, the blocks Bleve names
// as candidates hold every matching line: the totals equal those of a
// check of every line of every block.
func TestBlockCandidatesNeverMiss(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ix := openWith(t, Config{Dir: filepath.Join(t.TempDir(), "idx"), BlockLines: 16})
	defer ix.Close()
	g := bench.NewGenerator(7, 3000, testNow.Add(-2*time.Hour))
	var rs []pipeline.Record
	var off int64
	for i := range 3000 {
		l := g.Next()
		host := []string{"web1", "web-2", "db.example"}[i%3]
		r := pipeline.Record{TS: testNow, Host: host, Source: "/var/log/mix.log", SourceName: "mix", FileID: "mix-" + host, Offset: off, Line: l}
		if i%10 == 0 {
			r.Fields = map[string]string{"env": []string{"prod", "staging"}[i%20/10], "dc": "eu-1"}
		}
		if i%97 == 0 {
			r.Flags = []string{pipeline.FlagTruncated}
		}
		rs = append(rs, r)
		off += int64(len(l) + 1)
	}
	extra := []string{
		`{"level":"warn","msg":"slow query","latency_ms":1250.5,"user":{"id":"u-42","name":"Zoë"},"tags":["a","b"]}`,
		`{"level":"info","msg":"ok","latency_ms":-3,"status":200}`,
		`ts=2026-11-25T09:00:00Z level=error msg="disk full" path=/var/lib/x used=0.97 code=E42`,
		`GET /api/v1/users/42?debug=true HTTP/1.1 from 192.168.1.10 took 12ms`,
		`Überweisung fehlgeschlagen: Größe überschritten`,
	}
	for i, l := range extra {
		rs = append(rs, pipeline.Record{TS: testNow, Host: "app", Source: "/var/log/app.log", FileID: "app", Offset: int64(i * 1000), Line: l})
	}
	if err := ix.Index(ctx, rs); err != nil {
		t.Fatal(err)
	}
	queries := []string{
		"", "*", "GET", "get", "POST", "error", "level:ERROR", "level:warn", "-level:info", "+level:error +host:web1",
		bench.RareToken, `"` + bench.Phrase + `"`, "host:web-2", "host:web*", "source_name:mix", "file_id:app",
		"flags:truncated", "env:prod", "fields.env:staging", "dc:eu-1", "latency_ms:>1000", "latency_ms:<0", "latency_ms:>=-3",
		"status:200", "user.id:u-42", "user.name:Zoë", "tags:b", "code:E42", "used:>0.9", "used:<0.5",
		"192.168.1.10", "api/v1", "/api/v1/users/42", "12ms", "überweisung", "größe", "über*", "Exception", "exception~1",
		"conn*", "/time.*/", "java", "at", "-at", "GET -200", "user.id:u*", "missing:field", "msg:\"disk full\"", "path:/var/lib/x",
		`"disk full"`, "_id:app|app|1000", "offset:>1000", "ts:>\"2026-11-25T08:00:00Z\"",
	}
	for _, q := range queries {
		ix.noCandidates = false
		got, err := ix.Search(ctx, pipeline.SearchRequest{Query: q, Limit: 5})
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		ix.noCandidates = true
		want, err := ix.Search(ctx, pipeline.SearchRequest{Query: q, Limit: 5})
		if err != nil {
			t.Fatalf("%s (every block): %v", q, err)
		}
		if got.Total != want.Total || fmt.Sprint(ids(got.Hits)) != fmt.Sprint(ids(want.Hits)) {
			t.Errorf("%s: %d hits %v with candidates, %d %v checking every block", q, got.Total, ids(got.Hits), want.Total, ids(want.Hits))
		}
		t.Logf("%-30s %5d", q, got.Total)
	}
	ix.noCandidates = false
}

func ids(hs []pipeline.Hit) []string {
	var out []string
	for _, h := range hs {
		out = append(out, h.ID)
	}
	return out
}

// TestWholeBlockCountsMatchLines: the counts and histograms taken from
// block metadata and Bleve's word frequencies, without reading lines
// (wholeCount), and facets taken from the match cache and from columns
// read without the text, equal those of a check of every line, over
// ranges that cut blocks and ranges that do not.
func TestWholeBlockCountsMatchLines(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ix := openWith(t, Config{Dir: filepath.Join(t.TempDir(), "idx"), BlockLines: 64})
	defer ix.Close()
	start := testNow.Add(-3 * time.Hour)
	g := bench.NewGenerator(11, 6000, start)
	var rs []pipeline.Record
	var off int64
	for i := range 6000 {
		l := g.Next()
		host := []string{"web1", "web-2"}[i%2]
		r := pipeline.Record{TS: testNow, Host: host, Source: "/var/log/mix.log", FileID: "mix-" + host, Offset: off, Line: l}
		if i%7 == 0 {
			r.Flags = []string{pipeline.FlagTruncated}
		}
		rs = append(rs, r)
		off += int64(len(l) + 1)
	}
	if err := ix.Index(ctx, rs); err != nil {
		t.Fatal(err)
	}
	// Flags are read from the rows alone: their facet counts what went in.
	if fr, err := ix.Facets(ctx, pipeline.FacetsRequest{Field: "flags"}); err != nil || len(fr.Values) != 1 || fr.Values[0].Count != 858 || fr.Missing != 6000-858 {
		t.Fatalf("flags facet: %+v, %v; want 858 truncated", fr, err)
	}
	// The lines' own times span about 10 minutes from start.
	ranges := [][2]time.Time{
		{start.Add(-time.Hour), start.Add(time.Hour)},
		{start.Add(97 * time.Second), start.Add(7*time.Minute + 13*time.Second)},
		{},
	}
	queries := []string{"", "GET", "get", "error", "exception", "at", "level:ERROR", "-level:info", "+level:warn +host:web1", "host:web-2", "nothere", "GET -200"}
	shortcuts := 0
	for _, rg := range ranges {
		for _, q := range queries {
			ask := func(every bool) (uint64, string) {
				ix.noCandidates = every
				defer func() { ix.noCandidates = false }()
				res, err := ix.Search(ctx, pipeline.SearchRequest{Query: q, From: rg[0], To: rg[1], Limit: 1, ExactTotal: true})
				if err != nil {
					t.Fatalf("%q: %v", q, err)
				}
				// Facets twice: the second time from the match cache.
				facets := ""
				for range 2 {
					for _, f := range []string{"level", "host", "fields.service", "fields.upstream", "flags"} {
						fr, err := ix.Facets(ctx, pipeline.FacetsRequest{Query: q, Field: f, From: rg[0], To: rg[1], Size: 20})
						if err != nil {
							t.Fatalf("%q facets of %s: %v", q, f, err)
						}
						facets += fmt.Sprint(f, fr.Total, fr.Missing, fr.Values)
					}
				}
				if rg[0].IsZero() {
					return res.Total, facets
				}
				h, err := ix.Histogram(ctx, pipeline.HistogramRequest{Query: q, From: rg[0], To: rg[1], Buckets: 24})
				if err != nil {
					t.Fatalf("%q histogram: %v", q, err)
				}
				return res.Total, fmt.Sprint(h.Total, h.Buckets) + facets
			}
			got, gotH := ask(false)
			want, wantH := ask(true)
			if got != want || gotH != wantH {
				t.Errorf("%q in %v: total %d, histogram %s; line by line %d, %s", q, rg, got, gotH, want, wantH)
			}
			if m, _ := compile(q); m != nil {
				if _, ok := m.word(); ok || m.matchAll() || m.root.blockConst() {
					shortcuts++
				}
			}
		}
	}
	if shortcuts < 20 {
		t.Fatalf("only %d of the cases take a whole-block count", shortcuts)
	}
}
