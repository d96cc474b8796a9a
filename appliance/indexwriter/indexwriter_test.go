package indexwriter_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/logbox/logbox/appliance/index"
	"github.com/logbox/logbox/appliance/indexwriter"
	"github.com/logbox/logbox/appliance/pipeline"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// openIndex opens a real index on a temporary directory, closed at the
// end of the test (after the writer's Run has returned: cleanups run last
// registered first).
func openIndex(t *testing.T, cfg index.Config) *index.Index {
	t.Helper()
	cfg.Dir = filepath.Join(t.TempDir(), "idx")
	ix, err := index.Open(cfg, quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ix.Close() })
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

func TestPublishAcksAfterWrite(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ix := openIndex(t, index.Config{})
	w := indexwriter.New(indexwriter.Config{}, ix, quiet)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(runCtx) }()

	acked := make(chan int, 3)
	for i := 0; i < 3; i++ {
		i := i
		b := pipeline.NewBatch(recs(time.Now(), 5, fmt.Sprintf("f%d", i)), func() {
			acked <- i
		})
		if err := w.Publish(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 3; i++ {
		select {
		case <-acked:
		case <-ctx.Done():
			t.Fatal("batch not acked")
		}
	}
	// Acked means searchable.
	if n := ix.Stats().Docs; n != 15 {
		t.Fatalf("%d docs after acks, want 15", n)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// toggleGuard is a Guard switched by the test.
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

// logBuffer collects what a logger writes, safe for concurrent use.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestGuardPausesWrites: while the guard says the disk is low, Index
// writes nothing and says why, and Run holds published batches unacked
// (no retry warnings); once there is room they are indexed and acked.
func TestGuardPausesWrites(t *testing.T) {
	g := &toggleGuard{}
	ix := openIndex(t, index.Config{Guard: g})
	logs := &logBuffer{}
	w := indexwriter.New(indexwriter.Config{Guard: g, FlushInterval: 10 * time.Millisecond, DrainTimeout: 20 * time.Second}, ix, slog.New(slog.NewTextHandler(logs, nil)))
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
	go func() { done <- w.Run(ctx) }()
	var acked atomic.Int64
	b := pipeline.NewBatch(recs(base, 50, "b"), func() { acked.Add(1) })
	if err := w.Publish(ctx, b); err != nil {
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
	if l := logs.String(); strings.Contains(l, "index write failed") {
		t.Fatalf("a pause for room was logged as a failed write:\n%s", l)
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
	if err := w.Publish(ctx, pipeline.NewBatch(recs(base, 5, "c"), func() { acked.Add(1) })); err != nil {
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

// failIndexer never writes.
type failIndexer struct{}

func (failIndexer) Index(ctx context.Context, recs []pipeline.Record) error {
	return errors.New("disk on fire")
}

// Batches the writer still holds or queues when it stops are nacked (a
// push client is answered then, instead of waiting), and Publish refuses
// once Run has returned.
func TestStopNacksWhatIsLeft(t *testing.T) {
	w := indexwriter.New(indexwriter.Config{DrainTimeout: 200 * time.Millisecond, FlushInterval: 10 * time.Millisecond}, failIndexer{}, quiet)
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	results := make(chan error, 3)
	for i := range 3 {
		b := pipeline.NewBatchFunc(recs(time.Now(), 2, fmt.Sprint("f", i)), func(err error) { results <- err })
		if err := w.Publish(context.Background(), b); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(100 * time.Millisecond) // the first write fails and is retried
	stop()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}
	for range 3 {
		select {
		case err := <-results:
			if !errors.Is(err, pipeline.ErrStopping) {
				t.Fatalf("batch ended with %v, want ErrStopping", err)
			}
		case <-time.After(time.Second):
			t.Fatal("a batch was neither acked nor nacked")
		}
	}
	if err := w.Publish(context.Background(), pipeline.NewBatch(recs(time.Now(), 1, "late"), nil)); !errors.Is(err, pipeline.ErrStopping) {
		t.Fatalf("Publish after Run: %v, want ErrStopping", err)
	}
}

// TestWaitedBatchNotHeld: a batch a client waits on (a push request) is
// written as soon as nothing more is queued, not after the flush
// interval; a tailer's batch still waits the interval for company.
func TestWaitedBatchNotHeld(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ix := openIndex(t, index.Config{})
	w := indexwriter.New(indexwriter.Config{FlushInterval: time.Hour}, ix, quiet)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(runCtx) }()
	defer func() { stop(); <-done }()

	acked := make(chan error, 1)
	tailed := pipeline.NewBatchFunc(recs(time.Now().Add(-time.Hour), 10, "tailed"), func(err error) { acked <- err })
	if err := w.Publish(ctx, tailed); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-acked:
		t.Fatalf("a tailer's batch was written before the flush interval (%v)", err)
	case <-time.After(300 * time.Millisecond):
	}
	pushed := make(chan error, 1)
	b := pipeline.NewBatchFunc(recs(time.Now().Add(-time.Hour), 10, "pushed"), func(err error) { pushed <- err })
	b.Waited = true
	if err := w.Publish(ctx, b); err != nil {
		t.Fatal(err)
	}
	for _, ch := range []chan error{pushed, acked} {
		select {
		case err := <-ch:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a waited batch (and the one queued before it) not written long before the hour's flush interval")
		}
	}
	res, err := ix.Search(ctx, pipeline.SearchRequest{Query: "request", Limit: 1, ExactTotal: true})
	if err != nil || res.Total != 20 {
		t.Fatalf("index holds %d (%v), want 20", res.Total, err)
	}
}
