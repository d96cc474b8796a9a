package index

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/logbox/logbox/appliance/pipeline"
)

func shardDirs(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(dir, "segments"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// threeDays is one file whose lines run from Nov 22 22:00 to Nov 24 02:00,
// one line every 20 minutes, the time in each line; 85 lines, 3 shards.
func threeDays() []pipeline.Record {
	start := time.Date(2026, 11, 22, 22, 0, 0, 0, time.UTC)
	var rs []pipeline.Record
	for i := 0; ; i++ {
		ts := start.Add(time.Duration(i) * 20 * time.Minute)
		if ts.After(time.Date(2026, 11, 24, 2, 0, 0, 0, time.UTC)) {
			break
		}
		lvl := []string{"INFO", "ERROR"}[i%2]
		rs = append(rs, pipeline.Record{
			TS: testNow, Host: "web1", Source: "/var/log/app.log", FileID: "f1", Offset: int64(i * 100),
			Line: fmt.Sprintf("%s %s line%03d", ts.Format(time.RFC3339), lvl, i),
		})
	}
	return rs
}

func TestShardsSearchAsOne(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := filepath.Join(t.TempDir(), "idx")
	ix := openWith(t, Config{Dir: dir})
	all := threeDays()
	n := len(all)
	if err := ix.Index(ctx, all); err != nil {
		t.Fatal(err)
	}
	if got := shardDirs(t, dir); !slices.Equal(got, []string{"20261122", "20261123", "20261124"}) {
		t.Fatalf("shards %v", got)
	}

	// Cursor pages across shards: newest first, each line once.
	var seen []int64
	cursor := ""
	for {
		res, err := ix.Search(ctx, pipeline.SearchRequest{Limit: 7, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		if res.Total != uint64(n) {
			t.Fatalf("total %d, want %d", res.Total, n)
		}
		for _, h := range res.Hits {
			seen = append(seen, h.Offset)
		}
		if res.Cursor == "" {
			break
		}
		cursor = res.Cursor
	}
	if len(seen) != n {
		t.Fatalf("paged %d lines, want %d", len(seen), n)
	}
	for i := range seen {
		if seen[i] != int64((n-1-i)*100) {
			t.Fatalf("page order %v", seen)
		}
	}

	// Time range spanning a shard boundary.
	res, err := ix.Search(ctx, pipeline.SearchRequest{From: time.Date(2026, 11, 22, 23, 0, 0, 0, time.UTC), To: time.Date(2026, 11, 23, 1, 0, 0, 0, time.UTC)})
	if err != nil || res.Total != 6 {
		t.Fatalf("range over midnight: %v %d", err, res.Total)
	}

	// Highlights come through the alias too.
	res, err = ix.Search(ctx, pipeline.SearchRequest{Query: "line079 line010"})
	if err != nil || len(res.Hits) != 2 || len(res.Hits[0].Highlights) != 1 || len(res.Hits[1].Highlights) != 1 ||
		res.Hits[0].Line[res.Hits[0].Highlights[0].Start:res.Hits[0].Highlights[0].End] != "line079" {
		t.Fatalf("highlights across shards: %v %+v", err, res.Hits)
	}

	fr, err := ix.Facets(ctx, pipeline.FacetsRequest{Field: "level"})
	if err != nil || len(fr.Values) != 2 || fr.Values[0].Count+fr.Values[1].Count != n {
		t.Fatalf("facets %v %+v", err, fr)
	}

	hr, err := ix.Histogram(ctx, pipeline.HistogramRequest{Query: "level:ERROR", Buckets: 10})
	if err != nil || hr.Total != uint64(n/2) || hr.Interval != "3h" {
		t.Fatalf("histogram %v %+v", err, hr)
	}
	var sum uint64
	for _, b := range hr.Buckets {
		sum += b.Count
	}
	if sum != hr.Total {
		t.Fatalf("buckets sum %d, total %d", sum, hr.Total)
	}

	// Context around midnight: lines from two shards, in file order.
	mid := all[6] // 2026-11-23T00:00
	cr, err := ix.Context(ctx, pipeline.ContextRequest{ID: mid.ID(), Before: 3, After: 3})
	if err != nil {
		t.Fatal(err)
	}
	var offs []int64
	for _, h := range cr.Hits {
		offs = append(offs, h.Offset)
	}
	if !slices.Equal(offs, []int64{300, 400, 500, 600, 700, 800, 900}) || cr.AnchorIndex != 3 {
		t.Fatalf("context %v anchor %d", offs, cr.AnchorIndex)
	}

	// Tail: resume from a line of the first shard crosses into the others;
	// a new line in a new shard arrives live.
	tail, err := ix.Tail(ctx, pipeline.TailRequest{Query: "level:ERROR error", LastEventID: all[n-8].ID()})
	if err != nil {
		t.Fatal(err)
	}
	defer tail.Close()
	hits, _ := drain(t, ctx, tail) // from Nov 23 23:40 into Nov 24
	if len(hits) != 3 || hits[0].Line != "2026-11-24T00:20:00Z ERROR line079" || len(hits[0].Highlights) != 1 {
		t.Fatalf("resumed %v", lines(hits))
	}
	if err := ix.Index(ctx, []pipeline.Record{{TS: testNow, Host: "web1", FileID: "f1", Offset: 99999, Line: "2026-11-25T09:00:00Z ERROR newday"}}); err != nil {
		t.Fatal(err)
	}
	hits, _ = drain(t, ctx, tail)
	if len(hits) != 1 || hits[0].Line != "2026-11-25T09:00:00Z ERROR newday" || len(hits[0].Highlights) != 1 {
		t.Fatalf("live %v", lines(hits))
	}

	// Reopen: the shards and their lines are back.
	tail.Close()
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}
	ix = openWith(t, Config{Dir: dir})
	defer ix.Close()
	st := ix.Stats()
	if st.Shards != 4 || st.Docs != uint64(n+1) || st.Bytes == 0 || !st.Oldest.Equal(time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("stats after reopen %+v", st)
	}
}

func TestShardSpanHours(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "idx")
	ix := openWith(t, Config{Dir: dir, ShardSpan: 6 * time.Hour})
	defer ix.Close()
	if err := ix.Index(ctx, threeDays()); err != nil {
		t.Fatal(err)
	}
	want := []string{"20261122T1800", "20261123T0000", "20261123T0600", "20261123T1200", "20261123T1800", "20261124T0000"}
	if got := shardDirs(t, dir); !slices.Equal(got, want) {
		t.Fatalf("shards %v, want %v", got, want)
	}
	for _, span := range []time.Duration{time.Second, 90 * time.Second} {
		if _, err := Open(Config{Dir: dir, ShardSpan: span}, ix.log); err == nil {
			t.Fatalf("span %v accepted", span)
		}
	}
}

func TestRetentionByAge(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "idx")
	var now atomic.Pointer[time.Time]
	setNow := func(t time.Time) { now.Store(&t) }
	setNow(time.Date(2026, 11, 24, 3, 0, 0, 0, time.UTC))
	ix := openWith(t, Config{Dir: dir, Retention: 24 * time.Hour, Now: func() time.Time { return *now.Load() }})
	defer ix.Close()
	all := threeDays()
	if err := ix.Index(ctx, all); err != nil {
		t.Fatal(err)
	}
	// Nov 22 ended 27h ago: gone. Nov 23 ended 3h ago: kept.
	if err := ix.ApplyRetention(ctx); err != nil {
		t.Fatal(err)
	}
	if got := shardDirs(t, dir); !slices.Equal(got, []string{"20261123", "20261124"}) {
		t.Fatalf("shards %v", got)
	}
	res, err := ix.Search(ctx, pipeline.SearchRequest{})
	if err != nil || res.Total != uint64(len(all)-6) {
		t.Fatalf("after retention: %v %d", err, res.Total)
	}
	// Context of a line whose neighbours were dropped: what is left.
	cr, err := ix.Context(ctx, pipeline.ContextRequest{ID: all[6].ID(), Before: 3, After: 1})
	if err != nil || len(cr.Hits) != 2 || cr.AnchorIndex != 0 {
		t.Fatalf("context %v %+v", err, cr)
	}
	setNow(time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC))
	if err := ix.ApplyRetention(ctx); err != nil {
		t.Fatal(err)
	}
	if got := shardDirs(t, dir); len(got) != 0 {
		t.Fatalf("shards %v", got)
	}
	res, err = ix.Search(ctx, pipeline.SearchRequest{Query: "error"})
	if err != nil || res.Total != 0 || res.Hits == nil {
		t.Fatalf("empty index: %v %+v", err, res)
	}
	hr, err := ix.Histogram(ctx, pipeline.HistogramRequest{})
	if err != nil || hr.Total != 0 {
		t.Fatalf("empty histogram: %v %+v", err, hr)
	}
	if _, err := ix.Facets(ctx, pipeline.FacetsRequest{Field: "host"}); err != nil {
		t.Fatal(err)
	}
	if st := ix.Stats(); st.Shards != 0 || st.Docs != 0 || st.ShardsDropped != 3 {
		t.Fatalf("stats %+v", st)
	}
	// Indexing goes on: a dropped day comes back as a new shard.
	if err := ix.Index(ctx, all[:1]); err != nil {
		t.Fatal(err)
	}
	if res, err := ix.Search(ctx, pipeline.SearchRequest{}); err != nil || res.Total != 1 {
		t.Fatalf("after re-index: %v %d", err, res.Total)
	}
}

func TestRetentionBySize(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "idx")
	ix := openWith(t, Config{Dir: dir, Retention: -1, RetentionBytes: 1})
	defer ix.Close()
	if err := ix.Index(ctx, threeDays()); err != nil {
		t.Fatal(err)
	}
	if err := ix.ApplyRetention(ctx); err != nil {
		t.Fatal(err)
	}
	// Over the limit whatever is left: all but the newest shard go.
	if got := shardDirs(t, dir); !slices.Equal(got, []string{"20261124"}) {
		t.Fatalf("shards %v", got)
	}
	if res, err := ix.Search(ctx, pipeline.SearchRequest{}); err != nil || res.Total != 7 {
		t.Fatalf("search: %v %d", err, res.Total)
	}
}

// TestRetentionWhileBusy drops shards while other goroutines index into
// the current shard and search all of them (run with -race).
func TestRetentionWhileBusy(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := filepath.Join(t.TempDir(), "idx")
	var clock atomic.Int64
	clock.Store(time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC).UnixNano())
	ix := openWith(t, Config{Dir: dir, ShardSpan: time.Hour, Retention: 3 * time.Hour,
		Now: func() time.Time { return time.Unix(0, clock.Load()).UTC() }})
	defer ix.Close()
	var wg sync.WaitGroup
	var indexed atomic.Int64
	stop := make(chan struct{})
	wg.Go(func() { // indexer: lines stamped with the moving clock
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			ts := time.Unix(0, clock.Load()).UTC()
			r := pipeline.Record{TS: ts, Host: "h", FileID: "f", Offset: int64(i), Line: ts.Format(time.RFC3339Nano) + " INFO tick"}
			if err := ix.Index(ctx, []pipeline.Record{r}); err != nil {
				t.Error(err)
				return
			}
			indexed.Add(1)
		}
	})
	for range 2 {
		wg.Go(func() { // searchers
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := ix.Search(ctx, pipeline.SearchRequest{Query: "tick", Limit: 5}); err != nil {
					t.Error(err)
					return
				}
				if _, err := ix.Histogram(ctx, pipeline.HistogramRequest{}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	for range 12 {
		time.Sleep(30 * time.Millisecond)
		clock.Add(int64(time.Hour))
		if err := ix.ApplyRetention(ctx); err != nil {
			t.Error(err)
		}
	}
	close(stop)
	wg.Wait()
	st := ix.Stats()
	if st.ShardsDropped == 0 || st.Shards > 4 || indexed.Load() == 0 {
		t.Fatalf("stats %+v, indexed %d", st, indexed.Load())
	}
}

// TestReplayOfReadTimeLineAcrossMidnight: a line without a time in it,
// read before midnight and read again after a restart just after
// midnight, stays one line (in the first day's shard).
func TestReplayOfReadTimeLineAcrossMidnight(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "idx")
	ix := openWith(t, Config{Dir: dir})
	defer ix.Close()
	before := time.Date(2026, 11, 24, 23, 59, 0, 0, time.UTC)
	after := time.Date(2026, 11, 25, 0, 5, 0, 0, time.UTC)
	line := func(off int64, ts time.Time) pipeline.Record {
		return pipeline.Record{TS: ts, Host: "h", FileID: "f", Offset: off, Line: fmt.Sprintf("no time here %d", off)}
	}
	if err := ix.Index(ctx, []pipeline.Record{line(0, before), line(10, before)}); err != nil {
		t.Fatal(err)
	}
	// The replay, with one new line after the old ones.
	if err := ix.Index(ctx, []pipeline.Record{line(0, after), line(10, after), line(20, after)}); err != nil {
		t.Fatal(err)
	}
	res, err := ix.Search(ctx, pipeline.SearchRequest{})
	if err != nil || res.Total != 3 {
		t.Fatalf("total %d err %v, want 3", res.Total, err)
	}
	if got := shardDirs(t, dir); !slices.Equal(got, []string{"20261124", "20261125"}) {
		t.Fatalf("shards %v", got)
	}
	if st := ix.Stats(); st.ReplaysSkipped != 2 || st.Docs != 3 {
		t.Fatalf("stats %+v", st)
	}
	// A line with its time in it is routed by that time: a replay is the
	// same shard whatever the read time.
	r := pipeline.Record{TS: before, Host: "h", FileID: "g", Offset: 0, Line: "2026-11-24T23:59:59Z x"}
	r2 := r
	r2.TS = after
	if err := ix.Index(ctx, []pipeline.Record{r}); err != nil {
		t.Fatal(err)
	}
	if err := ix.Index(ctx, []pipeline.Record{r2}); err != nil {
		t.Fatal(err)
	}
	if res, _ := ix.Search(ctx, pipeline.SearchRequest{Query: "file_id:g"}); res.Total != 1 {
		t.Fatalf("parsed-time replay total %d", res.Total)
	}
}

func TestRunRetention(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "idx")
	ix := openWith(t, Config{Dir: dir, Retention: time.Hour, RetentionInterval: 10 * time.Millisecond})
	defer ix.Close()
	if err := ix.Index(context.Background(), threeDays()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ix.RunRetention(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for len(shardDirs(t, dir)) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("shards left: %v", shardDirs(t, dir))
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// The search part of a shard that a kill left half made (its Bleve index
// has no metadata yet) or that is damaged is rebuilt from the block file
// at open: every line is found once, and opening does not fail (it ended
// logbox: "cannot open index, metadata missing", found by the crash test).
func TestShardBleveRebuiltFromBlocks(t *testing.T) {
	damage := map[string]func(t *testing.T, bleveDir string){
		"metadata missing": func(t *testing.T, d string) {
			if err := os.Remove(filepath.Join(d, "index_meta.json")); err != nil {
				t.Fatal(err)
			}
		},
		"half made": func(t *testing.T, d string) {
			if err := os.RemoveAll(d); err != nil {
				t.Fatal(err)
			}
			if err := os.MkdirAll(filepath.Join(d, "store"), 0o755); err != nil {
				t.Fatal(err)
			}
		},
		"metadata corrupt": func(t *testing.T, d string) {
			if err := os.WriteFile(filepath.Join(d, "index_meta.json"), []byte("{not json"), 0o644); err != nil {
				t.Fatal(err)
			}
		},
	}
	for name, fn := range damage {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			dir := filepath.Join(t.TempDir(), "idx")
			ix := openTest(t, dir)
			all := threeDays()
			if err := ix.Index(ctx, all); err != nil {
				t.Fatal(err)
			}
			if err := ix.Close(); err != nil {
				t.Fatal(err)
			}
			shards := shardDirs(t, dir)
			fn(t, filepath.Join(dir, "segments", shards[1], "bleve"))
			ix, err := Open(Config{Dir: dir}, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatalf("open after the search part of a shard was damaged: %v", err)
			}
			defer ix.Close()
			want := map[string]uint64{"": uint64(len(all))}
			for _, r := range all {
				if strings.Contains(r.Line, "ERROR") {
					want["error"]++
				}
			}
			for q, n := range want {
				res, err := ix.Search(ctx, pipeline.SearchRequest{Query: q, ExactTotal: true})
				if err != nil || res.Total != n {
					t.Errorf("query %q after the rebuild: %v, %d lines, want %d", q, err, res.Total, n)
				}
			}
		})
	}
}
