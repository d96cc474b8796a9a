package index

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/logbox/logbox/appliance/patterns"
	"github.com/logbox/logbox/appliance/pipeline"
	"github.com/logbox/logbox/bench"
)

// TestScanKeysAsMaskedText: ScanKeys over a shard of layout 4 (no keys)
// next to one of layout 5 (keys) hands over, per key, the lines, times
// and example that masking each line's text (ScanText + patterns.Mask)
// gives; whole blocks come as key tables; with the stored keys ignored
// (noStoredKeys) the answer is the same.
func TestScanKeysAsMaskedText(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := filepath.Join(t.TempDir(), "idx")
	day := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	ix := openWith(t, Config{Dir: dir, Retention: -1, BlockLines: 100, Masker: patterns.Fitter{}, Templates: patterns.Fitter{},
		Now: func() time.Time { return day.Add(72 * time.Hour) }})
	defer ix.Close()
	write := func(start time.Time, n int, seed uint64) {
		t.Helper()
		g := bench.NewGenerator(seed, n, start)
		var recs []pipeline.Record
		for i := range n {
			l := g.Next()
			// Two files; times to the second, so lines share them.
			recs = append(recs, pipeline.Record{TS: start.Add(time.Duration(i) * 20 * time.Hour / time.Duration(n)).Truncate(time.Second),
				Host: fmt.Sprintf("web%d", i%2), Source: "/var/log/mix.log", FileID: fmt.Sprintf("f%d", i%2), Offset: int64(i) * 1000, Line: l})
		}
		if err := ix.Index(ctx, recs); err != nil {
			t.Fatal(err)
		}
	}
	ix.newLayout = 4
	write(day.Add(time.Hour), 3000, 1)
	ix.newLayout = 0
	write(day.Add(25*time.Hour), 4000, 2)
	for shard, want := range map[string][]byte{"20261120": blockMagic4, "20261121": blockMagic5} {
		b, err := os.ReadFile(filepath.Join(dir, "segments", shard, blockFileName))
		if err != nil {
			t.Fatal(err)
		}
		if string(b[:8]) != string(want) {
			t.Fatalf("shard %s is of layout %q", shard, b[:8])
		}
	}
	type agg struct {
		n    uint64
		exTS int64
		ex   string
		bk   map[int64]uint64
	}
	// Sparkline buckets of an hour, and of two days (blocks then lie
	// in one).
	step := int64(time.Hour)
	bucket := func(ts int64) int64 { return ts / step }
	add := func(m map[string]*agg, key string, n uint64, ts int64, exTS int64, ex string) {
		a := m[key]
		if a == nil {
			a = &agg{exTS: math.MinInt64, bk: map[int64]uint64{}}
			m[strings.Clone(key)] = a // kb is valid only during the call
		}
		a.n += n
		a.bk[bucket(ts)] += n
		if newerExample(exTS, cutKeyExample(ex), a.exTS, a.ex) {
			a.exTS, a.ex = exTS, strings.Clone(cutKeyExample(ex))
		}
	}
	viaText := func(q string, from, to time.Time) map[string]*agg {
		var mu sync.Mutex
		m := map[string]*agg{}
		if _, err := ix.ScanText(ctx, q, from, to, func(_ int, ts int64, text string) {
			key := string(patterns.Mask(nil, text))
			mu.Lock()
			add(m, key, 1, ts, ts, text)
			mu.Unlock()
		}); err != nil {
			t.Fatal(err)
		}
		return m
	}
	viaKeys := func(q string, from, to time.Time) (map[string]*agg, int) {
		var mu sync.Mutex
		m := map[string]*agg{}
		whole := 0
		if _, err := ix.ScanKeys(ctx, q, from, to, func(lo, hi int64) bool { return bucket(lo) == bucket(hi) }, func(_ int, kb *pipeline.KeyBlock) {
			mu.Lock()
			defer mu.Unlock()
			if kb.Counts != nil {
				whole++
				for k, n := range kb.Counts {
					if n > 0 {
						add(m, kb.Keys[k], uint64(n), kb.TS, kb.ExTS[k], kb.Example(k))
					}
				}
				return
			}
			for j, k := range kb.Lines {
				add(m, kb.Keys[k], 1, kb.LineTS[j], math.MinInt64, "")
			}
			for k, ts := range kb.ExTS {
				if ts != math.MinInt64 {
					add(m, kb.Keys[k], 0, ts, ts, kb.Example(k))
				}
			}
		}); err != nil {
			t.Fatal(err)
		}
		// add counted the examples' calls in a bucket with 0 lines.
		for _, a := range m {
			for b, n := range a.bk {
				if n == 0 {
					delete(a.bk, b)
				}
			}
		}
		return m, whole
	}
	at := func(h float64) time.Time { return day.Add(time.Duration(h * float64(time.Hour))) }
	wholes := 0
	for _, q := range []string{"", "host:web1", "level:ERROR", "GET", "error OR timeout", "-host:web0 AND level:INFO"} {
		for _, r := range [][2]time.Time{{}, {at(0), at(72)}, {at(3.3), at(30.7)}, {at(26.01), at(26.02)}, {at(0), at(24)}, {at(24), at(48)}} {
			step = int64(time.Hour)
			if r[0].Hour() == 0 {
				step = int64(48 * time.Hour)
			}
			want := viaText(q, r[0], r[1])
			for _, ignore := range []bool{false, true} {
				ix.noStoredKeys = ignore
				got, whole := viaKeys(q, r[0], r[1])
				if ignore && whole > 0 {
					t.Fatalf("%q: %d key tables with the stored keys ignored", q, whole)
				}
				wholes += whole
				if len(got) != len(want) {
					t.Fatalf("%q %v (ignore %v): %d keys, masking the text %d", q, r, ignore, len(got), len(want))
				}
				for k, w := range want {
					g := got[k]
					if g == nil || g.n != w.n || g.exTS != w.exTS || g.ex != w.ex || fmt.Sprint(g.bk) != fmt.Sprint(w.bk) {
						t.Fatalf("%q %v (ignore %v): key %q: got %d %d %q %v, masking the text %d %d %q %v", q, r, ignore, k, g.n, g.exTS, g.ex, g.bk, w.n, w.exTS, w.ex, w.bk)
					}
				}
			}
			ix.noStoredKeys = false
		}
	}
	if wholes == 0 {
		t.Fatal("no block came as its key table")
	}
}
