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
	low    atomic.Bool
	checks atomic.Int64
}

var errTestLow = errors.New("test: disk low")

func (g *toggleGuard) Check() error {
	g.checks.Add(1)
	if g.low.Load() {
		return errTestLow
	}
	return nil
}

func (g *toggleGuard) Wait(ctx context.Context) error {
	for g.low.Load() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	return nil
}

// TestGuardPausesWrites: while the guard says the disk is low, Index
// writes nothing and says why, and Run holds published batches unacked
// (no retry warnings); once there is room they are indexed and acked.
func TestGuardPausesWrites(t *testing.T) {
	g := &toggleGuard{}
	ix, err := Open(Config{Dir: filepath.Join(t.TempDir(), "idx"), Guard: g, FlushInterval: 10 * time.Millisecond, DrainTimeout: 20 * time.Second}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	base := time.Now().Add(-time.Hour)

	g.low.Store(true)
	if err := ix.Index(ctx, recs(base, 10, "a")); !errors.Is(err, errTestLow) {
		t.Fatalf("Index below the floor: %v, want the guard's error", err)
	}
	if st := ix.Stats(); st.DocsWritten != 0 || st.Shards != 0 {
		t.Fatalf("Index below the floor wrote: %+v", st)
	}

	done := make(chan error, 1)
	go func() { done <- ix.Run(ctx) }()
	var acked atomic.Int64
	b := pipeline.NewBatch(recs(base, 50, "b"), func() { acked.Add(1) })
	if err := ix.Publish(ctx, b); err != nil {
		t.Fatal(err)
	}
	checks := g.checks.Load()
	deadline := time.Now().Add(10 * time.Second)
	for g.checks.Load() < checks+2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	if acked.Load() != 0 || ix.Stats().DocsWritten != 0 {
		t.Fatalf("batch acked (%d) or written (%d) while paused", acked.Load(), ix.Stats().DocsWritten)
	}
	g.low.Store(false)
	for acked.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if acked.Load() != 1 || ix.Stats().DocsWritten != 50 {
		t.Fatalf("after the pause: acked %d, written %d; want 1 batch, 50 lines", acked.Load(), ix.Stats().DocsWritten)
	}

	// Shutting down while paused does not wait out DrainTimeout; the
	// batch stays unacked (read again after the restart).
	g.low.Store(true)
	if err := ix.Publish(ctx, pipeline.NewBatch(recs(base, 5, "c"), func() { acked.Add(1) })); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	stopped := time.Now()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if d := time.Since(stopped); d > 5*time.Second {
		t.Errorf("Run took %v to stop while paused (DrainTimeout is 20s)", d)
	}
	if acked.Load() != 1 {
		t.Errorf("a batch was acked at shutdown while paused")
	}
}
