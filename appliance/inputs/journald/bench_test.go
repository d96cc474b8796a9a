package journald_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/logbox/logbox/appliance/ingest/ingesttest"
	"github.com/logbox/logbox/appliance/inputs/journald"
	"github.com/logbox/logbox/appliance/pipeline"
)

// ackSink acks every batch at once: the reader's own ceiling (journalctl,
// parsing, batching, checkpoint), without a writer behind it.
type ackSink struct{}

func (ackSink) Publish(_ context.Context, b *pipeline.Batch) error {
	b.Ack()
	return nil
}

// BenchmarkJournald reads a journal of b.N entries (made before the
// timer starts) from its start into a direct-mode pipeline (the index
// writer and a real index). Run it with a fixed count, e.g.
// -bench Journald -benchtime 20000x.
func BenchmarkJournald(b *testing.B) {
	p := ingesttest.Start(b, ingesttest.Direct)
	benchRead(b, p.Sink)
	if got := p.WaitCount("jentry", b.N, time.Minute); got != b.N {
		b.Fatalf("%d lines indexed, want %d", got, b.N)
	}
}

// BenchmarkJournaldReader is BenchmarkJournald into a sink that acks at
// once: the reader's own ceiling.
func BenchmarkJournaldReader(b *testing.B) {
	benchRead(b, ackSink{})
}

func benchRead(b *testing.B, sink pipeline.Sink) {
	tl := needTools(b)
	b.StopTimer()
	file := filepath.Join(b.TempDir(), "bench.journal")
	for from := 0; from < b.N; from += 50000 {
		tl.write(b, file, entries("bench", from, min(50000, b.N-from)))
	}
	b.StartTimer()
	began := time.Now()
	rr := start(b, journald.Config{Source: file, StateDir: b.TempDir(), Sink: sink})
	waitFor(b, 30*time.Minute, "the journal read", func() bool { return rr.r.Stats().EntriesAcked == uint64(b.N) })
	el := time.Since(began)
	b.StopTimer()
	rr.stop(b)
	b.ReportMetric(float64(b.N)/el.Seconds(), "lines/s")
}
