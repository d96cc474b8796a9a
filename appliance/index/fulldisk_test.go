package index

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/logbox/logbox/appliance/diskspace/disktest"
	"github.com/logbox/logbox/appliance/pipeline"
)

// fullDiskBatch is n lines of file "f" from offset first on, with random
// words so Bleve segments grow quickly.
func fullDiskBatch(r *rand.Rand, first int64, n int) []pipeline.Record {
	out := make([]pipeline.Record, n)
	for i := range out {
		line := fmt.Sprintf("INFO full%06d", first+int64(i))
		for range 12 {
			line += fmt.Sprintf(" w%x", r.Uint64())
		}
		out[i] = pipeline.Record{TS: time.Now(), Host: "h", Source: "/a.log", FileID: "f", Offset: first + int64(i), Line: line}
	}
	return out
}

// TestFullDiskBleveWriteFails fills a small disk with the index itself
// (no free-space floor) until writes fail, searching in between, then
// gives the disk room: no write or search may panic (a failed Bleve
// persist used to leave a segment with cleared caches in the index, and
// the next batch panicked with "assignment to entry in nil map" in
// zapx), and after the failed batches are retried every line is held
// exactly once.
func TestFullDiskBleveWriteFails(t *testing.T) {
	dir := disktest.Tmpfs(t, 16<<20)
	ix, err := Open(Config{Dir: filepath.Join(dir, "idx"), PersistTimeout: time.Second}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	ctx := context.Background()
	r := rand.New(rand.NewPCG(1, 2))
	t0 := time.Now()
	const n = 2000
	var failed [][]pipeline.Record
	next := int64(0)
	fails := 0
	for i := 0; i < 500 && fails < 4; i++ {
		b := fullDiskBatch(r, next, n)
		next += n
		if err := ix.Index(ctx, b); err != nil {
			fails++
			failed = append(failed, b)
			t.Logf("batch at %d: %v", next-n, err)
		}
		// Searches go on beside failed writes (prefix: every segment's
		// term dictionary is read).
		if _, err := ix.Search(ctx, pipeline.SearchRequest{Query: "full00*", Limit: 1}); err != nil {
			t.Logf("search while the disk is full: %v", err)
		}
	}
	if fails == 0 {
		t.Fatalf("%d lines written without filling a 16 MiB disk", next)
	}
	t.Logf("%d lines offered, %d batches failed (%v)", next, len(failed), time.Since(t0))

	disktest.Resize(t, dir, 512<<20)
	for _, b := range failed {
		deadline := time.Now().Add(30 * time.Second)
		for {
			err := ix.Index(ctx, b)
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("index after the disk got room: %v", err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	t.Logf("retried (%v)", time.Since(t0))
	res, err := ix.Search(ctx, pipeline.SearchRequest{Query: "INFO", Limit: 1, ExactTotal: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Total != uint64(next) {
		t.Errorf("index holds %d lines, want %d (each once)", res.Total, next)
	}
}

// toggleGuard is a WriteGuard switched by the test.
type toggleGuard struct {
	low atomic.Bool
}

var errTestLow = errors.New("test: disk low")

func (g *toggleGuard) Check() error {
	if g.low.Load() {
		return errTestLow
	}
	return nil
}

// TestGuardRefusesWrites: while the guard says the disk is low, Index
// writes nothing and says why (appliance/indexwriter waits for room then;
// its tests cover that).
func TestGuardRefusesWrites(t *testing.T) {
	g := &toggleGuard{}
	ix, err := Open(Config{Dir: filepath.Join(t.TempDir(), "idx"), Guard: g}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	ctx := context.Background()
	base := time.Now().Add(-time.Hour)

	g.low.Store(true)
	if err := ix.Index(ctx, recs(base, 10, "a")); !errors.Is(err, errTestLow) {
		t.Fatalf("Index below the floor: %v, want the guard's error", err)
	}
	if st := ix.Stats(); st.DocsWritten != 0 || st.Shards != 0 {
		t.Fatalf("Index below the floor wrote: %+v", st)
	}
	g.low.Store(false)
	if err := ix.Index(ctx, recs(base, 10, "a")); err != nil {
		t.Fatalf("Index with room: %v", err)
	}
	if st := ix.Stats(); st.DocsWritten != 10 {
		t.Fatalf("Index with room wrote %d lines, want 10", st.DocsWritten)
	}
}
