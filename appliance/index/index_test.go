package index

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/logbox/logbox/appliance/pipeline"
)

func openTest(t *testing.T, dir string) *Index {
	t.Helper()
	ix, err := Open(Config{Dir: dir}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return ix
}

func recs(base time.Time, n int, fileID string) []pipeline.Record {
	out := make([]pipeline.Record, n)
	for i := range out {
		lvl := []string{"INFO", "ERROR", "WARN"}[i%3]
		out[i] = pipeline.Record{
			TS:     base.Add(time.Duration(i) * time.Second),
			Host:   "web1",
			Source: "/var/log/app.log",
			FileID: fileID,
			Offset: int64(i * 100),
			Line:   fmt.Sprintf("%s request tok%04d done path=/api/x", lvl, i),
			Fields: map[string]string{"env": "prod"},
		}
	}
	return out
}

func TestIndexSearch(t *testing.T) {
	ctx := context.Background()
	ix := openTest(t, filepath.Join(t.TempDir(), "idx"))
	defer ix.Close()
	base := time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC)
	if err := ix.Index(ctx, recs(base, 50, "f1")); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name string
		req  pipeline.SearchRequest
		want uint64
	}{
		{"all", pipeline.SearchRequest{}, 50},
		{"term", pipeline.SearchRequest{Query: "tok0007"}, 1},
		{"term case-insensitive", pipeline.SearchRequest{Query: "TOK0007"}, 1},
		{"level field", pipeline.SearchRequest{Query: "level:ERROR"}, 17},
		{"host field", pipeline.SearchRequest{Query: "host:web1"}, 50},
		{"static field", pipeline.SearchRequest{Query: "fields.env:prod"}, 50},
		{"phrase", pipeline.SearchRequest{Query: `"request tok0003"`}, 1},
		{"negation", pipeline.SearchRequest{Query: "+request -tok0003"}, 49},
		{"stop word kept", pipeline.SearchRequest{Query: "+done"}, 50},
		{"time range", pipeline.SearchRequest{From: base.Add(10 * time.Second), To: base.Add(20 * time.Second)}, 10},
		{"no match", pipeline.SearchRequest{Query: "nothere"}, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, err := ix.Search(ctx, c.req)
			if err != nil {
				t.Fatal(err)
			}
			if res.Total != c.want {
				t.Fatalf("total %d, want %d", res.Total, c.want)
			}
		})
	}

	res, err := ix.Search(ctx, pipeline.SearchRequest{Query: "tok0007"})
	if err != nil {
		t.Fatal(err)
	}
	h := res.Hits[0]
	if h.Host != "web1" || h.Source != "/var/log/app.log" || h.Offset != 700 || h.Level != "ERROR" ||
		h.Fields["env"] != "prod" || !h.TS.Equal(base.Add(7*time.Second)) || h.Line != "ERROR request tok0007 done path=/api/x" {
		t.Fatalf("hit fields wrong: %+v", h)
	}

	var bad *pipeline.QueryError
	if _, err := ix.Search(ctx, pipeline.SearchRequest{Query: `"unterminated`}); !errors.As(err, &bad) {
		t.Fatalf("bad query: got %v, want QueryError", err)
	}
}

func TestNewestFirstAndCursor(t *testing.T) {
	ctx := context.Background()
	ix := openTest(t, filepath.Join(t.TempDir(), "idx"))
	defer ix.Close()
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	all := recs(base, 25, "f1")
	// Two lines with the same timestamp must both be returned across pages.
	all = append(all, pipeline.Record{TS: all[24].TS, Host: "web1", FileID: "f2", Offset: 0, Line: "same ts"})
	if err := ix.Index(ctx, all); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	var last time.Time
	cursor := ""
	for page := 0; ; page++ {
		res, err := ix.Search(ctx, pipeline.SearchRequest{Limit: 10, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range res.Hits {
			if seen[h.ID] {
				t.Fatalf("hit %s twice", h.ID)
			}
			seen[h.ID] = true
			if !last.IsZero() && h.TS.After(last) {
				t.Fatalf("not newest first: %v after %v", h.TS, last)
			}
			last = h.TS
		}
		if res.Cursor == "" {
			break
		}
		cursor = res.Cursor
		if page > 5 {
			t.Fatal("cursor does not end")
		}
	}
	if len(seen) != 26 {
		t.Fatalf("paged through %d hits, want 26", len(seen))
	}
}

func TestReplayOverwritesAndPersists(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "idx")
	ix := openTest(t, dir)
	base := time.Now().UTC()
	r := recs(base, 20, "f1")
	if err := ix.Index(ctx, r); err != nil {
		t.Fatal(err)
	}
	// A replay of half the lines, read again at a later time.
	again := recs(base.Add(time.Minute), 10, "f1")
	if err := ix.Index(ctx, again); err != nil {
		t.Fatal(err)
	}
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}
	ix = openTest(t, dir)
	defer ix.Close()
	if n := ix.Stats().Docs; n != 20 {
		t.Fatalf("after replay and reopen: %d docs, want 20", n)
	}
}

func TestLevel(t *testing.T) {
	for line, want := range map[string]string{
		"2026-01-01 ERROR boom":           "ERROR",
		"[WARNING] disk":                  "WARN",
		"level=INFO msg=x":                "INFO",
		`{"level":"DEBUG","msg":"x"}`:     "DEBUG",
		"an information line with errors": "",
	} {
		if got := Level(line); got != want {
			t.Errorf("Level(%q) = %q, want %q", line, got, want)
		}
	}
}

func TestFlagsAreSearchable(t *testing.T) {
	ctx := context.Background()
	ix := openTest(t, filepath.Join(t.TempDir(), "idx"))
	defer ix.Close()
	rs := []pipeline.Record{
		{TS: time.Now(), Host: "h", FileID: "f", Offset: 0, Line: "cut", Flags: []string{pipeline.FlagTruncated}},
		{TS: time.Now(), Host: "h", FileID: "f", Offset: 10, Line: "both", Flags: []string{pipeline.FlagTruncated, pipeline.FlagInvalidUTF8}},
		{TS: time.Now(), Host: "h", FileID: "f", Offset: 20, Line: "clean"},
	}
	if err := ix.Index(ctx, rs); err != nil {
		t.Fatal(err)
	}
	res, err := ix.Search(ctx, pipeline.SearchRequest{Query: "flags:truncated"})
	if err != nil || res.Total != 2 {
		t.Fatalf("flags:truncated: %v %v", res.Total, err)
	}
	for _, h := range res.Hits {
		if h.Line == "both" && len(h.Flags) != 2 {
			t.Fatalf("flags of %q: %v", h.Line, h.Flags)
		}
	}
}

// TestCursorManyPages pages through thousands of lines with nanosecond
// timestamps: every line exactly once, newest first.
func TestCursorManyPages(t *testing.T) {
	ctx := context.Background()
	ix := openTest(t, filepath.Join(t.TempDir(), "idx"))
	defer ix.Close()
	base := time.Now().UTC()
	var all []pipeline.Record
	for i := 0; i < 12000; i++ {
		all = append(all, pipeline.Record{TS: base.Add(time.Duration(i*7919) * time.Nanosecond), Host: "h", FileID: "f", Offset: int64(i), Line: fmt.Sprintf("line %d", i)})
	}
	// Many small batches make many segments, as a live index has.
	for len(all) > 0 {
		n := min(len(all), 997)
		if err := ix.Index(ctx, all[:n]); err != nil {
			t.Fatal(err)
		}
		all = all[n:]
	}
	seen := map[string]bool{}
	cursor := ""
	for pages := 0; ; pages++ {
		res, err := ix.Search(ctx, pipeline.SearchRequest{Limit: 5000, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range res.Hits {
			if seen[h.ID] {
				t.Fatalf("page %d: %s again", pages, h.ID)
			}
			seen[h.ID] = true
		}
		if res.Cursor == "" || pages > 20 {
			break
		}
		cursor = res.Cursor
	}
	if len(seen) != 12000 {
		t.Fatalf("saw %d of 12000", len(seen))
	}
}

// TestTotalBound: a term on the line text is counted up to TotalBound
// unless the exact total is asked for; level filters and match-all are
// always exact (counted from block metadata).
func TestTotalBound(t *testing.T) {
	ctx := context.Background()
	ix := openWith(t, Config{Dir: filepath.Join(t.TempDir(), "idx")})
	defer ix.Close()
	// The bound is checked per block (1024 lines) with one block in
	// flight per worker, so the count may pass it by a few blocks.
	n := 4 * pipeline.TotalBound
	rs := recs(testNow.Add(-time.Duration(n)*time.Second), n, "big")
	if err := ix.Index(ctx, rs); err != nil {
		t.Fatal(err)
	}
	res, err := ix.Search(ctx, pipeline.SearchRequest{Query: "request", Limit: 3})
	if err != nil {
		t.Fatal(err)
	}
	if res.TotalRelation != "gte" || res.Total < pipeline.TotalBound || res.Total >= uint64(n) || len(res.Hits) != 3 || res.Hits[0].Line != rs[n-1].Line {
		t.Fatalf("bounded: total %d %q, first %q", res.Total, res.TotalRelation, res.Hits[0].Line)
	}
	res, err = ix.Search(ctx, pipeline.SearchRequest{Query: "request", Limit: 3, ExactTotal: true})
	if err != nil || res.TotalRelation != "" || res.Total != uint64(n) || res.Hits[0].Line != rs[n-1].Line {
		t.Fatalf("exact: total %d %q err %v", res.Total, res.TotalRelation, err)
	}
	for _, q := range []string{"", "level:ERROR", "host:web1"} {
		res, err = ix.Search(ctx, pipeline.SearchRequest{Query: q, Limit: 1})
		if err != nil || res.TotalRelation != "" || res.Total == 0 {
			t.Fatalf("%q: total %d %q err %v", q, res.Total, res.TotalRelation, err)
		}
	}
	// A cursor page counts the same way.
	res2, err := ix.Search(ctx, pipeline.SearchRequest{Query: "tok0001", Limit: 1})
	if err != nil || res2.Total != 1 || res2.TotalRelation != "" {
		t.Fatalf("rare: %+v %v", res2, err)
	}
}

// TestInheritTime: stack trace lines read with the line that starts them
// take its time; a line without a time read later keeps its read time.
func TestInheritTime(t *testing.T) {
	ctx := context.Background()
	ix := openWith(t, Config{Dir: filepath.Join(t.TempDir(), "idx")})
	defer ix.Close()
	read := testNow.Add(-time.Minute)
	lines := []string{
		"2026-11-25T09:00:00Z ERROR boom",
		"java.lang.IllegalStateException: boom",
		"\tat com.example.A.run(A.java:10)",
	}
	var rs []pipeline.Record
	for i, l := range lines {
		rs = append(rs, pipeline.Record{TS: read, Host: "h", FileID: "t", Offset: int64(i * 100), Line: l})
	}
	if err := ix.Index(ctx, rs); err != nil {
		t.Fatal(err)
	}
	// Next batch: one more frame read together, then a line read 10 s later.
	late := pipeline.Record{TS: read.Add(10 * time.Second), Host: "h", FileID: "t", Offset: 400, Line: "--- marker ---"}
	if err := ix.Index(ctx, []pipeline.Record{{TS: read.Add(100 * time.Millisecond), Host: "h", FileID: "t", Offset: 300, Line: "\tat com.example.B.run(B.java:20)"}, late}); err != nil {
		t.Fatal(err)
	}
	res, err := ix.Search(ctx, pipeline.SearchRequest{Query: "file_id:t"})
	if err != nil || len(res.Hits) != 5 {
		t.Fatalf("%v %+v", err, res)
	}
	want := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	if !res.Hits[0].TS.Equal(late.TS) || res.Hits[0].Offset != 400 {
		t.Fatalf("late line: %+v", res.Hits[0])
	}
	for i, h := range res.Hits[1:] {
		if !h.TS.Equal(want) || h.Offset != int64(300-100*i) {
			t.Fatalf("hit %d: ts %v offset %d, want %v (newest first, file order within the time)", i+1, h.TS, h.Offset, want)
		}
	}
}

// TestBleveFailureNotDoubled: when writing the Bleve documents fails after
// the block file took the lines, the caller's retry does not write them
// again, and the next write gives Bleve the documents it missed.
func TestBleveFailureNotDoubled(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "idx")
	ix := openWith(t, Config{Dir: dir})
	rs := recs(testNow.Add(-time.Hour), 300, "bf")
	ix.failBleve = func() error { return errors.New("injected") }
	if err := ix.Index(ctx, rs); err == nil {
		t.Fatal("Index with Bleve failing: no error")
	}
	ix.failBleve = nil
	if err := ix.Index(ctx, rs); err != nil { // the caller's retry
		t.Fatal(err)
	}
	for _, q := range []string{"", "tok0123", "level:ERROR"} {
		ix.noCandidates = false
		got, err := ix.Search(ctx, pipeline.SearchRequest{Query: q, ExactTotal: true})
		if err != nil {
			t.Fatal(err)
		}
		ix.noCandidates = true
		want, _ := ix.Search(ctx, pipeline.SearchRequest{Query: q, ExactTotal: true})
		if got.Total != want.Total || want.Total == 0 {
			t.Errorf("%q: %d with Bleve, %d checking every block", q, got.Total, want.Total)
		}
	}
	ix.noCandidates = false
	if st := ix.Stats(); st.Docs != 300 || st.ReplaysSkipped != 300 {
		t.Fatalf("stats %+v, want 300 lines held, 300 skipped", st)
	}
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}
	ix = openWith(t, Config{Dir: dir})
	defer ix.Close()
	if res, err := ix.Search(ctx, pipeline.SearchRequest{Query: "tok0299"}); err != nil || res.Total != 1 {
		t.Fatalf("after reopen: %d %v", res.Total, err)
	}
}

// A record whose read time the index cannot hold (another shipper's event
// from year 2400 or 1800) is kept at the time it was indexed, not wrapped
// around into another century.
func TestReadTimeOutOfRange(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	ix := openWith(t, Config{Dir: filepath.Join(t.TempDir(), "idx"), Now: func() time.Time { return now }, Retention: -1})
	defer ix.Close()
	recs := []pipeline.Record{
		{TS: time.Date(2400, 1, 1, 0, 0, 0, 0, time.UTC), Host: "h", FileID: "f", Offset: 0, Line: "far future"},
		{TS: time.Date(1800, 1, 1, 0, 0, 0, 0, time.UTC), Host: "h", FileID: "f", Offset: 10, Line: "far past"},
	}
	if err := ix.Index(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	res, err := ix.Search(context.Background(), pipeline.SearchRequest{Limit: 10, ExactTotal: true})
	if err != nil || res.Total != 2 {
		t.Fatalf("search: %v %+v", err, res)
	}
	for _, h := range res.Hits {
		if !h.TS.Equal(now) {
			t.Errorf("%q at %v, want the time it was indexed, %v", h.Line, h.TS, now)
		}
	}
}
