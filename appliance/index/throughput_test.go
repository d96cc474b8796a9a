package index

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/logbox/logbox/appliance/patterns"
	"github.com/logbox/logbox/appliance/pipeline"
	"github.com/logbox/logbox/bench"
)

// BenchmarkIndexInProcess indexes the benchmark's generated mix through
// Index (no tailer, no HTTP) and times the issue 7 query set on it: the
// quick loop for tuning the index. The end-to-end figures come from
// ./bench. LOGBOX_BENCH_LINES sets the lines (default 200000); the
// blocks get keys (patterns.Fitter) as the appliance writes them, unless
// LOGBOX_BENCH_NOKEYS=1.
//
//	go test ./appliance/index -run '^$' -bench InProcess -benchtime 1x
func BenchmarkIndexInProcess(b *testing.B) {
	n := 200000
	if s := os.Getenv("LOGBOX_BENCH_LINES"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	start := time.Now().Add(-25 * time.Hour).Truncate(time.Hour)
	g := bench.NewGenerator(1, n, start)
	readTS := time.Now()
	recs := make([]pipeline.Record, n)
	var raw int64
	var off int64
	for i := range recs {
		l := g.Next()
		recs[i] = pipeline.Record{TS: readTS, Host: "bench", Source: "/var/log/mix.log", FileID: "mix", Offset: off, Line: l}
		off += int64(len(l) + 1)
		raw += int64(len(l) + 1)
	}
	for range b.N {
		dir := filepath.Join(b.TempDir(), "idx")
		cfg := Config{Dir: dir, Masker: patterns.Fitter{}}
		if os.Getenv("LOGBOX_BENCH_NOKEYS") == "1" {
			cfg.Masker = nil
		}
		ix, err := Open(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			b.Fatal(err)
		}
		var ms runtime.MemStats
		cpu0 := cpuTime()
		t0 := time.Now()
		batch := 20000
		if s := os.Getenv("LOGBOX_BENCH_BATCH"); s != "" {
			batch, _ = strconv.Atoi(s)
		}
		for lo := 0; lo < n; lo += batch {
			if err := ix.Index(context.Background(), recs[lo:min(n, lo+batch)]); err != nil {
				b.Fatal(err)
			}
		}
		d := time.Since(t0)
		cpu := cpuTime() - cpu0
		runtime.ReadMemStats(&ms)
		size := dirSize(dir)
		var blk, bloom, sec, cols, keys, keysTab, nkeys, text, nb int64
		for _, sh := range ix.shardList() {
			blk += sh.bf.size
			for _, bl := range sh.snapshot() {
				nb++
				bloom += int64(bl.bloomLen)
				sec += int64(bl.secClen)
				cols += int64(bl.textOff - bl.keysClen - bl.secClen)
				keys += int64(bl.keysClen)
				keysTab += int64(bl.keysTab)
				text += int64(bl.clen - bl.textOff)
				if bl.keysClen > 0 {
					k, err := sh.bf.readKeys(bl)
					if err != nil {
						b.Fatal(err)
					}
					nkeys += int64(len(k.keys))
				}
			}
		}
		mib := func(n int64) float64 { return float64(n) / (1 << 20) }
		b.Logf("block files %.1f MiB (%d blocks: text %.1f, field columns %.1f, keys %.1f (table %.1f, %.0f keys a block), rows %.1f, Bloom filters %.1f, times, levels and headers %.1f), the rest (Bleve, metadata) %.1f MiB",
			mib(blk), nb, mib(text), mib(cols), mib(keys), mib(keysTab), float64(nkeys)/float64(nb), mib(sec), mib(bloom), mib(blk-text-cols-keys-sec-bloom), mib(size-blk))
		b.ReportMetric(float64(size)/float64(n), "disk-B/line")
		b.ReportMetric(float64(n)/d.Seconds(), "lines/s")
		// CPU per line holds still on a busy machine, where wall time does not.
		b.ReportMetric(float64(cpu.Microseconds())/float64(n), "cpu-µs/line")
		b.ReportMetric(float64(size)/float64(raw), "disk/raw")
		b.Logf("%d lines (%.1f MiB) in %v = %.0f lines/s; index %.1f MiB = %.2f× raw; heap sys %.0f MiB",
			n, float64(raw)/(1<<20), d.Round(time.Millisecond), float64(n)/d.Seconds(), float64(size)/(1<<20), float64(size)/float64(raw), float64(ms.HeapSys)/(1<<20))
		queries := []struct {
			name string
			req  pipeline.SearchRequest
		}{
			{"rare term", pipeline.SearchRequest{Query: bench.RareToken, Limit: 100}},
			{"level:ERROR count", pipeline.SearchRequest{Query: "level:ERROR", Limit: 1, ExactTotal: true}},
			{"GET count", pipeline.SearchRequest{Query: "GET", Limit: 1, ExactTotal: true}},
			{"GET newest 100", pipeline.SearchRequest{Query: "GET", Limit: 100}},
			{"phrase count", pipeline.SearchRequest{Query: `"` + bench.Phrase + `"`, Limit: 1, ExactTotal: true}},
			{"first page", pipeline.SearchRequest{Limit: 100}},
		}
		for _, q := range queries {
			var ds []time.Duration
			var total uint64
			for range 10 {
				t := time.Now()
				res, err := ix.Search(context.Background(), q.req)
				if err != nil {
					b.Fatal(err)
				}
				ds = append(ds, time.Since(t))
				total = res.Total
			}
			slices.Sort(ds)
			b.Logf("%-20s total %7d  p50 %6.1f ms  max %6.1f ms", q.name, total, ms1(ds[len(ds)/2]), ms1(ds[len(ds)-1]))
		}
		var ds []time.Duration
		for range 10 {
			t := time.Now()
			if _, err := ix.Histogram(context.Background(), pipeline.HistogramRequest{From: start, To: start.Add(24 * time.Hour), Buckets: 24}); err != nil {
				b.Fatal(err)
			}
			ds = append(ds, time.Since(t))
		}
		slices.Sort(ds)
		b.Logf("%-20s p50 %6.1f ms  max %6.1f ms", "histogram 24h", ms1(ds[len(ds)/2]), ms1(ds[len(ds)-1]))
		for _, q := range []string{"GET | stats count() by (status)", "* | stats count() by (status)",
			"* | stats avg(request_time), quantile(0.99, request_time) by (method)",
			"* | stats count() by (host, _time:5m)", "* | stats count() by (level)"} {
			var ds []time.Duration
			var rows int
			for range 10 {
				t := time.Now()
				res, err := ix.StatsQuery(context.Background(), pipeline.StatsRequest{Query: q, From: start, To: start.Add(24 * time.Hour)})
				if err != nil {
					b.Fatal(err)
				}
				ds = append(ds, time.Since(t))
				rows = len(res.Rows)
			}
			slices.Sort(ds)
			b.Logf("%-70s %4d rows  p50 %6.1f ms  max %6.1f ms", q, rows, ms1(ds[len(ds)/2]), ms1(ds[len(ds)-1]))
		}
		fieldRead(b, ix)
		if err := ix.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// fieldRead times what `stats avg(request_time)` needs, the request_time
// field (rt= on the generator's access lines) of every line,
// three ways: its column alone, every line decoded from its block (text,
// rows and all columns), and the text of every line parsed again.
func fieldRead(b *testing.B, ix *Index) {
	var blocks []*block
	for _, sh := range ix.shardList() {
		blocks = append(blocks, sh.snapshot()...)
	}
	now := time.Now()
	ways := []struct {
		name string
		sum  func(bl *block) (float64, int)
	}{
		{"request_time column alone", func(bl *block) (float64, int) {
			starts, strs, _, err := bl.sh.bf.readColumn(bl, "request_time")
			if err != nil {
				b.Fatal(err)
			}
			sum, n := 0.0, 0
			for _, v := range strs[:starts[len(starts)-1]] {
				if f, ok := number(v); ok {
					sum, n = sum+f, n+1
				}
			}
			return sum, n
		}},
		{"lines decoded", func(bl *block) (float64, int) {
			lines, err := ix.lines(bl, false)
			if err != nil {
				b.Fatal(err)
			}
			sum, n := 0.0, 0
			for i := range lines {
				for _, f := range lines[i].Nums {
					if f.K == "request_time" {
						sum, n = sum+f.V, n+1
					}
				}
			}
			return sum, n
		}},
		{"text parsed again", func(bl *block) (float64, int) {
			var tr textReader
			lines, err := tr.read(bl)
			if err != nil {
				b.Fatal(err)
			}
			sum, n := 0.0, 0
			for i := range lines {
				ex := parseLine(lines[i].Line, now, nil, now, 64)
				for _, l := range ex.leaves {
					if l.path == "request_time" && l.isN {
						sum, n = sum+l.num, n+1
					}
				}
			}
			return sum, n
		}},
	}
	var out []string
	for _, w := range ways {
		var ds []time.Duration
		var sum float64
		var n int
		for range 5 {
			t := time.Now()
			sum, n = 0, 0
			for _, bl := range blocks {
				s, k := w.sum(bl)
				sum, n = sum+s, n+k
			}
			ds = append(ds, time.Since(t))
		}
		slices.Sort(ds)
		out = append(out, fmt.Sprintf("%s %.1f ms (%d values, avg %.4f)", w.name, ms1(ds[len(ds)/2]), n, sum/float64(max(n, 1))))
	}
	b.Logf("avg(request_time), p50 on one core: %s", strings.Join(out, "; "))
}

func ms1(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// BenchmarkSearchCount times the exact count of a common term over the
// benchmark mix (LOGBOX_BENCH_LINES, default 200000), for profiling:
//
//	go test ./appliance/index -run '^$' -bench SearchCount -cpuprofile cpu.out
func BenchmarkSearchCount(b *testing.B) {
	n := 200000
	if s := os.Getenv("LOGBOX_BENCH_LINES"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	g := bench.NewGenerator(1, n, time.Now().Add(-25*time.Hour))
	recs := make([]pipeline.Record, n)
	var off int64
	for i := range recs {
		l := g.Next()
		recs[i] = pipeline.Record{TS: time.Now(), Host: "bench", Source: "/var/log/mix.log", FileID: "mix", Offset: off, Line: l}
		off += int64(len(l) + 1)
	}
	ix, err := Open(Config{Dir: filepath.Join(b.TempDir(), "idx")}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	defer ix.Close()
	for lo := 0; lo < n; lo += 5000 {
		if err := ix.Index(context.Background(), recs[lo:min(n, lo+5000)]); err != nil {
			b.Fatal(err)
		}
	}
	q := os.Getenv("LOGBOX_BENCH_QUERY")
	if q == "" {
		q = "GET"
	}
	b.ResetTimer()
	for range b.N {
		if _, err := ix.Search(context.Background(), pipeline.SearchRequest{Query: q, Limit: 1, ExactTotal: true}); err != nil {
			b.Fatal(err)
		}
	}
}

// cpuTime is the CPU time (user + system) the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
