// Package ingesttest builds, for an input's tests, the real pipeline a
// pushed line goes through: an Acceptor in front of the index writer and
// a real index (direct mode), or of the Kafka producer, a kfake broker
// over TCP and the consumer indexing into a real index (Kafka mode). It
// answers how many times each line is held, so a test can check that
// every line is indexed exactly once.
package ingesttest

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/logbox/logbox/appliance/index"
	"github.com/logbox/logbox/appliance/indexwriter"
	"github.com/logbox/logbox/appliance/ingest"
	"github.com/logbox/logbox/appliance/kafkain"
	"github.com/logbox/logbox/appliance/kafkaout"
	"github.com/logbox/logbox/appliance/kafkatest"
	"github.com/logbox/logbox/appliance/pipeline"
)

// Quiet is a logger that writes nothing.
var Quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// Mode names the two delivery paths every input is tested on.
type Mode string

const (
	Direct Mode = "direct"
	Kafka  Mode = "kafka"
)

// Modes are both delivery paths, for table tests.
var Modes = []Mode{Direct, Kafka}

// Pipe is a running pipeline: Sink takes batches, Index holds what was
// written. Everything stops at the test's end.
type Pipe struct {
	Mode  Mode
	Sink  pipeline.Sink
	Index *index.Index
	t     testing.TB
}

// Start starts the pipeline of mode on t's temporary directories.
func Start(t testing.TB, mode Mode) *Pipe {
	t.Helper()
	ix, err := index.Open(index.Config{Dir: filepath.Join(t.TempDir(), "idx")}, Quiet)
	if err != nil {
		t.Fatalf("open index: %v", err)
	}
	p := &Pipe{Mode: mode, Index: ix, t: t}
	ctx, cancel := context.WithCancel(context.Background())
	var stops []chan error
	run := func(fn func(context.Context) error) {
		ch := make(chan error, 1)
		go func() { ch <- fn(ctx) }()
		stops = append(stops, ch)
	}
	t.Cleanup(func() {
		cancel()
		for _, ch := range stops {
			select {
			case <-ch:
			case <-time.After(20 * time.Second):
				t.Errorf("ingesttest: a pipeline part did not stop")
			}
		}
		_ = ix.Close()
	})
	switch mode {
	case Direct:
		w := indexwriter.New(indexwriter.Config{FlushInterval: 20 * time.Millisecond}, ix, Quiet)
		run(w.Run)
		p.Sink = w
	case Kafka:
		kc := kafkatest.Start(t)
		topic := kafkatest.UniqueName(t, "logs")
		prod := kafkaout.New(kafkaout.Config{Brokers: kc.Brokers, Topic: topic, Partitions: 3}, Quiet)
		run(prod.Run)
		w := indexwriter.New(indexwriter.Config{FlushInterval: 20 * time.Millisecond}, ix, Quiet)
		cons := kafkain.New(kafkain.Config{Brokers: kc.Brokers, Topics: []string{topic}, Partitions: 3,
			Group: kafkatest.UniqueName(t, "group"), FlushInterval: 20 * time.Millisecond}, w, Quiet)
		run(cons.Run)
		run(w.Run)
		p.Sink = prod
	default:
		t.Fatalf("ingesttest: unknown mode %q", mode)
	}
	return p
}

// Acceptor returns an acceptor for input name into the pipe, its id log
// in dir (empty: a new temporary directory). Closed at the test's end.
func (p *Pipe) Acceptor(name, dir string) *ingest.Acceptor {
	p.t.Helper()
	if dir == "" {
		dir = p.t.TempDir()
	}
	a, err := ingest.New(ingest.Config{Name: name, Host: "logbox-test", Dir: dir, Sink: p.Sink}, Quiet)
	if err != nil {
		p.t.Fatalf("acceptor: %v", err)
	}
	p.t.Cleanup(func() { _ = a.Close() })
	return a
}

// Count returns how many lines match query (Bleve query-string syntax,
// as the search box takes it) over all time, counted exactly.
func (p *Pipe) Count(query string) int {
	p.t.Helper()
	res, err := p.Index.Search(context.Background(), pipeline.SearchRequest{
		Query: query, From: time.Unix(0, 0), To: time.Now().Add(100 * 365 * 24 * time.Hour), Limit: 1, ExactTotal: true, NoHighlights: true,
	})
	if err != nil {
		p.t.Fatalf("count %q: %v", query, err)
	}
	return int(res.Total)
}

// Hits returns up to limit lines matching query, newest first.
func (p *Pipe) Hits(query string, limit int) []pipeline.Hit {
	p.t.Helper()
	res, err := p.Index.Search(context.Background(), pipeline.SearchRequest{
		Query: query, From: time.Unix(0, 0), To: time.Now().Add(100 * 365 * 24 * time.Hour), Limit: limit, ExactTotal: true, NoHighlights: true,
	})
	if err != nil {
		p.t.Fatalf("search %q: %v", query, err)
	}
	return res.Hits
}

// WaitCount waits until query counts want lines (at most timeout; through
// Kafka a line is searchable a moment after its ack) and returns the last
// count; a test then checks it equals want.
func (p *Pipe) WaitCount(query string, want int, timeout time.Duration) int {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		n := p.Count(query)
		if n == want || time.Now().After(deadline) {
			return n
		}
		time.Sleep(50 * time.Millisecond)
	}
}
