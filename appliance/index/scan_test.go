package index

import (
	"context"
	"errors"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/logbox/logbox/appliance/pipeline"
)

func TestScanText(t *testing.T) {
	ctx := context.Background()
	ix := openTest(t, filepath.Join(t.TempDir(), "idx"))
	defer ix.Close()
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	all := recs(base, 3000, "f1") // INFO/ERROR/WARN, one a second
	for len(all) > 0 {
		n := min(len(all), 400)
		if err := ix.Index(ctx, all[:n]); err != nil {
			t.Fatal(err)
		}
		all = all[n:]
	}
	want := recs(base, 3000, "f1")
	cases := []struct {
		q        string
		from, to time.Time
		keep     func(i int, r pipeline.Record) bool
	}{
		{"", time.Time{}, time.Time{}, func(int, pipeline.Record) bool { return true }},
		{"*", base.Add(100 * time.Second), base.Add(2500 * time.Second), func(i int, _ pipeline.Record) bool { return i >= 100 && i < 2500 }},
		{"level:ERROR", time.Time{}, time.Time{}, func(i int, _ pipeline.Record) bool { return i%3 == 1 }},
		{"tok0042 OR tok2999", time.Time{}, time.Time{}, func(i int, _ pipeline.Record) bool { return i == 42 || i == 2999 }},
		{"env:prod AND request", time.Time{}, base.Add(time.Minute), func(i int, _ pipeline.Record) bool { return i < 60 }},
		{"-level:INFO", time.Time{}, time.Time{}, func(i int, _ pipeline.Record) bool { return i%3 != 0 }},
	}
	for _, c := range cases {
		var mu sync.Mutex
		var got []string
		seen := map[int]bool{}
		n, err := ix.ScanText(ctx, c.q, c.from, c.to, func(w int, ts int64, text string) {
			mu.Lock()
			defer mu.Unlock()
			if w < 0 || w >= ix.ScanWorkers() {
				t.Errorf("worker %d of %d", w, ix.ScanWorkers())
			}
			seen[w] = true
			got = append(got, time.Unix(0, ts).UTC().Format(time.RFC3339)+" "+strings.Clone(text))
		})
		if err != nil {
			t.Fatalf("%q: %v", c.q, err)
		}
		var exp []string
		for i, r := range want {
			if c.keep(i, r) {
				exp = append(exp, r.TS.UTC().Format(time.RFC3339)+" "+r.Line)
			}
		}
		slices.Sort(got)
		slices.Sort(exp)
		if n != uint64(len(exp)) || !slices.Equal(got, exp) {
			t.Errorf("%q: %d lines (%d calls), want %d", c.q, n, len(got), len(exp))
		}
		if len(exp) > 2000 && runtime.GOMAXPROCS(0) > 1 && len(seen) < 2 {
			t.Logf("%q: one worker only", c.q)
		}
	}
	if _, err := ix.ScanText(ctx, "a | stats count()", time.Time{}, time.Time{}, func(int, int64, string) {}); err == nil {
		t.Fatal("a pipe: no error")
	}
	// Without a TemplateFitter, a template filter is refused (and
	// accepted by CheckQuery, which does not run it).
	_, err := ix.ScanText(ctx, `_pattern:"INFO request <*> done path=<*>"`, time.Time{}, time.Time{}, func(int, int64, string) {})
	if qe := (*pipeline.QueryError)(nil); !errors.As(err, &qe) {
		t.Fatalf("_pattern without a fitter: %v", err)
	}
	if _, err := ix.Search(ctx, pipeline.SearchRequest{Query: `level:INFO -_pattern:"x"`}); err == nil {
		t.Fatal("search with _pattern without a fitter: no error")
	}
	for _, q := range []string{`_pattern:"user <*> logged in"`, `a AND -_pattern:"x \"y\" <*>"`, `_pattern:one`} {
		if err := CheckQuery(q); err != nil {
			t.Errorf("CheckQuery(%q): %v", q, err)
		}
	}
	for _, q := range []string{`_pattern:use*`, `_pattern:/a.*/`} {
		if err := CheckQuery(q); err == nil {
			t.Errorf("CheckQuery(%q): no error", q)
		}
	}
}

func TestPatternsPipe(t *testing.T) {
	cases := []struct {
		in     string
		q      string
		limit  int
		ok     bool
		errPos int // 0: no error; -1: an error without a position
	}{
		{"error", "", 0, false, 0},
		{"error | stats count()", "", 0, false, 0},
		{`"a | patterns"`, "", 0, false, 0},
		{"error | patterns", "error", 0, true, 0},
		{"  host:web1  |  PATTERNS  limit 20 ", "host:web1", 20, true, 0},
		{"| patterns", "", 0, true, 0},
		{"* | patterns | limit 5", "*", 5, true, 0},
		{"x | patterns limit 9 | limit 5", "x", 5, true, 0},
		{"x | patterns limit 0", "", 0, true, 20},
		{"x | patterns limit many", "", 0, true, 20},
		{"x | patterns by (host)", "", 0, true, 14},
		{"x | patterns | sort by (n)", "", 0, true, 16},
		{"x | stats count() | patterns", "", 0, true, 21},
		{"a AND (b | patterns", "", 0, true, 7},
		{"  a AND (b | patterns", "", 0, true, 9},
	}
	for _, c := range cases {
		q, limit, ok, err := PatternsPipe(c.in)
		var qe *pipeline.QueryError
		switch {
		case ok != c.ok:
			t.Errorf("%q: ok %v", c.in, ok)
		case c.errPos == 0 && err != nil:
			t.Errorf("%q: %v", c.in, err)
		case c.errPos == 0 && (q != c.q || limit != c.limit):
			t.Errorf("%q: %q limit %d, want %q limit %d", c.in, q, limit, c.q, c.limit)
		case c.errPos != 0 && !errors.As(err, &qe):
			t.Errorf("%q: %v, want a query error", c.in, err)
		case c.errPos > 0 && qe.Pos != c.errPos:
			t.Errorf("%q: error at %d (%v), want %d", c.in, qe.Pos, err, c.errPos)
		}
		if c.ok && c.errPos == 0 {
			if err := CheckQuery(c.in); err != nil {
				t.Errorf("CheckQuery(%q): %v", c.in, err)
			}
			if !HasPipe(c.in) {
				t.Errorf("HasPipe(%q) is false", c.in)
			}
		}
	}
	ix := openTest(t, filepath.Join(t.TempDir(), "idx"))
	defer ix.Close()
	_, err := ix.StatsQuery(context.Background(), pipeline.StatsRequest{Query: "x | patterns"})
	if qe := (*pipeline.QueryError)(nil); !errors.As(err, &qe) || !strings.Contains(err.Error(), "patterns engine") {
		t.Fatalf("StatsQuery of a patterns pipe: %v", err)
	}
}
