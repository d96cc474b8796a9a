package patterns

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/logbox/logbox/appliance/index"
	"github.com/logbox/logbox/appliance/pipeline"
	"github.com/logbox/logbox/bench"
)

// benchLines is LOGBOX_BENCH_LINES, default 1 M.
func benchLines(b *testing.B) int {
	if v := os.Getenv("LOGBOX_BENCH_LINES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			b.Fatalf("LOGBOX_BENCH_LINES=%q: not a positive number", v)
		}
		return n
	}
	return 1_000_000
}

// BenchmarkPatterns1M mines the benchmark generator's lines (nginx, app,
// JSON, stack traces; bench.Generator), LOGBOX_BENCH_LINES of them (1 M
// by default), indexed as the appliance does (auto parser): scan alone
// (the index reading every line's text, nothing done with it), masking
// alone (in memory), and the whole answer with a 30-bucket sparkline.
//
//	go test ./appliance/patterns -run '^$' -bench Patterns -benchtime 1x
func BenchmarkPatterns1M(b *testing.B) {
	n := benchLines(b)
	ix, err := index.Open(index.Config{Dir: filepath.Join(b.TempDir(), "idx"), Templates: Fitter{}, Masker: Fitter{}}, quiet)
	if err != nil {
		b.Fatal(err)
	}
	defer ix.Close()
	start := time.Now().Add(-24 * time.Hour).UTC().Truncate(time.Hour)
	g := bench.NewGenerator(1, n, start)
	ctx := context.Background()
	batch := make([]pipeline.Record, 0, 10000)
	lines := make([]string, 0, n)
	var off int64
	t0 := time.Now()
	for i := range n {
		l := g.Next()
		lines = append(lines, l)
		batch = append(batch, pipeline.Record{TS: start.Add(time.Duration(i) * bench.LineSpan), Host: "web1", Source: "/var/log/mix.log",
			FileID: "mix", Offset: off, End: off + int64(len(l)) + 1, Line: l})
		off += int64(len(l)) + 1
		if len(batch) == cap(batch) || i == n-1 {
			if err := ix.Index(ctx, batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	b.Logf("indexed %d lines in %v", n, time.Since(t0).Round(time.Millisecond))
	from, to := g.Stats.First.Add(-time.Hour), g.Stats.Last.Add(time.Hour)
	perLine := func(b *testing.B) {
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/line")
		b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/op")
	}
	b.Run("scan", func(b *testing.B) {
		for b.Loop() {
			got, err := ix.ScanText(ctx, "", from, to, func(int, int64, string) {})
			if err != nil || got != uint64(n) {
				b.Fatalf("%d lines, %v", got, err)
			}
		}
		perLine(b)
	})
	b.Run("mask", func(b *testing.B) {
		var buf []byte
		for b.Loop() {
			for _, l := range lines {
				buf = Mask(buf[:0], l)
			}
		}
		perLine(b)
	})
	m := New(ix)
	var res pipeline.PatternsResult
	b.Run("patterns", func(b *testing.B) {
		for b.Loop() {
			if res, err = m.Patterns(ctx, pipeline.PatternsRequest{From: from, To: to, Buckets: 30, Limit: 50}); err != nil {
				b.Fatal(err)
			}
		}
		perLine(b)
	})
	b.Logf("%d lines: %d templates, %d listed, overflow %v", res.Total, res.Templates, len(res.Patterns), res.Overflow)
	for _, p := range res.Patterns[:min(len(res.Patterns), 12)] {
		b.Logf("%8d  %s", p.Count, p.Pattern)
	}
}

// BenchmarkMask masks 100 000 of the benchmark generator's lines.
func BenchmarkMask(b *testing.B) {
	g := bench.NewGenerator(1, 100000, time.Now())
	lines := make([]string, 100000)
	var size int
	for i := range lines {
		lines[i] = g.Next()
		size += len(lines[i])
	}
	var buf []byte
	b.SetBytes(int64(size))
	for b.Loop() {
		for _, l := range lines {
			buf = Mask(buf[:0], l)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(lines)), "ns/line")
}

// BenchmarkMineDissimilar runs Drain over MaxKeys masked lines of one
// length and first words that share no other word (the case a leaf of
// the tree grows largest in).
func BenchmarkMineDissimilar(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	words := make([]string, 5000)
	for i := range words {
		words[i] = fmt.Sprintf("w%cx%c%c", 'a'+rune(r.IntN(26)), 'a'+rune(r.IntN(26)), 'a'+rune(r.IntN(26)))
	}
	var keys []*mkey
	for i := range MaxKeys {
		k := "<*> INFO"
		for range 8 {
			k += " " + words[r.IntN(len(words))]
		}
		keys = append(keys, &mkey{key: k, count: uint64(MaxKeys - i)})
	}
	for b.Loop() {
		markOverlaps(mine(keys, 0))
	}
}
