package index

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/logbox/logbox/appliance/pipeline"
)

func TestCoverOf(t *testing.T) {
	f := func(name string, lines []storedLine, want []span) {
		t.Helper()
		if got := coverOf(lines); !slices.Equal(got, want) {
			t.Errorf("%s: cover %v, want %v", name, got, want)
		}
	}
	l := func(off, end int64) storedLine { return storedLine{Offset: off, End: end} }
	f("none", nil, nil)
	f("one run", []storedLine{l(0, 10), l(10, 25), l(25, 26)}, []span{{0, 26}})
	f("a hole", []storedLine{l(0, 10), l(10, 20), l(30, 40)}, []span{{0, 20}, {30, 40}})
	f("unknown ends left out", []storedLine{l(0, 10), l(10, 0), l(20, 30)}, []span{{0, 10}, {20, 30}})
	f("overlap merges", []storedLine{l(0, 10), l(5, 12)}, []span{{0, 12}})
}

func TestAddCover(t *testing.T) {
	var h []span
	for _, c := range []span{{10, 20}, {30, 40}, {0, 5}, {20, 30}, {50, 60}, {45, 55}, {5, 10}} {
		addCover(&h, c)
	}
	if want := []span{{0, 40}, {45, 60}}; !slices.Equal(h, want) {
		t.Fatalf("held %v, want %v", h, want)
	}
}

// lineRecs are n lines of one file, each 20 bytes with its newline,
// skipping the lines whose index is in skip.
func lineRecs(fileID string, n int, skip ...int) []pipeline.Record {
	base := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	var out []pipeline.Record
	for i := range n {
		if slices.Contains(skip, i) {
			continue
		}
		line := fmt.Sprintf("INFO cover %08d", i) // 19 bytes + newline
		out = append(out, pipeline.Record{TS: base.Add(time.Duration(i) * time.Millisecond), Host: "h1", Source: "/var/log/c.log",
			FileID: fileID, Offset: int64(i * 20), End: int64(i*20 + 20), Line: line})
	}
	return out
}

// The index knows which byte ranges of a file it holds, across blocks,
// batches and a reopen, and tells a hole from a held range.
func TestFileCoverage(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "idx")
	ix := openTest(t, dir)
	// 400 lines (several blocks) with lines 150-159 and 399 missing, in
	// two batches; a replay of the first batch changes nothing.
	all := lineRecs("f1", 400, 150, 151, 152, 153, 154, 155, 156, 157, 158, 159, 399)
	for _, b := range [][]pipeline.Record{all[:200], all[200:], all[:200]} {
		if err := ix.Index(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	want := FileCoverage{Lines: 389, HighWater: 398 * 20, Held: []Span{{0, 3000}, {3200, 7980}}}
	check := func(ix *Index, when string) {
		t.Helper()
		got, ok := ix.FileCoverage("h1", "f1")
		if !ok || got.Lines != want.Lines || got.HighWater != want.HighWater || !slices.Equal(got.Held, want.Held) || got.UnknownLines != 0 {
			t.Fatalf("%s: coverage %+v (%v), want %+v", when, got, ok, want)
		}
	}
	check(ix, "written")
	if _, ok := ix.FileCoverage("h1", "other"); ok {
		t.Fatal("coverage of a file never indexed")
	}
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}
	ix = openTest(t, dir)
	defer ix.Close()
	check(ix, "reopened")
	// The hole filled later (a late partition, a replay from Kafka).
	fill := lineRecs("f1", 160)[150:]
	if err := ix.Index(ctx, fill); err != nil {
		t.Fatal(err)
	}
	want.Lines, want.Held = 399, []Span{{0, 7980}}
	check(ix, "filled")
	// Lines without an end (other shippers) count as held, range unknown.
	if err := ix.Index(ctx, []pipeline.Record{{TS: time.Date(2026, 11, 24, 11, 0, 0, 0, time.UTC), Host: "h1", FileID: "f1", Offset: 7980, Line: "no end"}}); err != nil {
		t.Fatal(err)
	}
	if got, _ := ix.FileCoverage("h1", "f1"); got.Lines != 400 || got.UnknownLines != 1 || !slices.Equal(got.Held, want.Held) {
		t.Fatalf("unknown end: %+v", got)
	}
}

// Retention says how far it dropped a file.
func TestFileCoverageRetention(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	ix := openWith(t, Config{Dir: filepath.Join(t.TempDir(), "idx"), Retention: 24 * time.Hour, Now: func() time.Time { return now }})
	defer ix.Close()
	old := lineRecs("f1", 100) // Nov 24
	recent := lineRecs("f1", 200)[100:]
	for i := range recent {
		recent[i].TS = now.Add(-time.Hour)
	}
	if err := ix.Index(ctx, append(old, recent...)); err != nil {
		t.Fatal(err)
	}
	if err := ix.ApplyRetention(ctx); err != nil {
		t.Fatal(err)
	}
	got, ok := ix.FileCoverage("h1", "f1")
	if !ok || got.Lines != 100 || got.RetentionDroppedTo != 2000 || !slices.Equal(got.Held, []Span{{2000, 4000}}) {
		t.Fatalf("after retention: %+v %v", got, ok)
	}
}

// A block file written before covers existed (layout 1) is read, and
// appended to in its own layout.
func TestBlockFileLayout1(t *testing.T) {
	path := filepath.Join(t.TempDir(), blockFileName)
	if err := os.WriteFile(path, blockMagic1, 0o644); err != nil {
		t.Fatal(err)
	}
	read := func() []*block {
		t.Helper()
		var got []*block
		bf, err := openBlockFile(path, 0, func(body []byte, pos int64, version int) error {
			b, err := decodeMeta(body, pos, version, func(i blockInfo) *blockInfo { return &i })
			got = append(got, b)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		defer bf.f.Close()
		if bf.version != 1 {
			t.Fatalf("version %d", bf.version)
		}
		return got
	}
	read()
	bf, err := openBlockFile(path, 0, func([]byte, int64, int) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	lines := make([]storedLine, 3)
	for i := range lines {
		lines[i] = storedLine{TS: int64(i), Offset: int64(i * 10), End: int64(i*10 + 10), Line: "x"}
	}
	body, b := encodeBlock(1, &blockInfo{Host: "h", FileID: "f"}, lines, bf.version, nil)
	if err := bf.appendRecords([][]byte{body}, []*block{b}); err != nil {
		t.Fatal(err)
	}
	bf.f.Close()
	got := read()
	if len(got) != 1 || got[0].n() != 3 || got[0].cover != nil || got[0].lastOff != 20 {
		t.Fatalf("layout 1 block: %+v", got)
	}
	raw, err := (&blockFile{f: mustOpen(t, path)}).readPayload(got[0])
	if err != nil {
		t.Fatal(err)
	}
	if dl, err := decodeLines(got[0], raw); err != nil || len(dl) != 3 || dl[2].Offset != 20 {
		t.Fatalf("lines %v %+v", err, dl)
	}
}

func mustOpen(t *testing.T, path string) *os.File {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}
