// Package indexwriter is the direct-mode sink (no Kafka): it takes the
// tailers' batches, writes their records to the index in batches of its
// own size, retries what fails, and acks each pipeline.Batch only once
// all of its records are durable.
//
// The index itself knows nothing of batches in flight: it writes what
// Index is given, durably when Index returns nil. Through Kafka the
// consumer (appliance/kafkain) plays this part, with offsets for acks.
package indexwriter

import (
	"context"
	"log/slog"
	"time"

	"github.com/logbox/logbox/appliance/pipeline"
)

// Indexer is where the writer puts records: Index makes recs durable when
// it returns nil; after an error it is called again with the same
// records (and must not double those it took already).
type Indexer interface {
	Index(ctx context.Context, recs []pipeline.Record) error
}

// Guard holds writes back while the disk is short of space
// (appliance/diskspace).
type Guard interface {
	// Check returns nil when a write may go ahead, else why not.
	Check() error
	// Wait blocks until Check would return nil, or returns ctx's error.
	Wait(ctx context.Context) error
}

// Config says how the writer batches, queues and drains.
type Config struct {
	// BatchSize caps the records Run hands to one Index call (default
	// 20000: a call makes ~20 blocks, which encode and go to Bleve on
	// both cores; 5000 made ~5, and ingest ran at 0.8× the rate).
	BatchSize int
	// FlushInterval is how long Run waits for more records before writing a
	// partial batch (default 100ms).
	FlushInterval time.Duration
	// QueueBatches bounds the pipeline batches waiting in Publish; a full
	// queue blocks the tailers (backpressure). Default 64.
	QueueBatches int
	// DrainTimeout bounds how long Run keeps indexing queued batches after
	// its context ends (default 5s).
	DrainTimeout time.Duration
	// Guard, when set, keeps a free-space floor: below it Run waits for
	// room instead of retrying (nothing is lost; the tailers wait behind
	// the full queue).
	Guard Guard
}

// Effective returns c with every default filled in, as New uses it.
func (c Config) Effective() Config {
	if c.BatchSize <= 0 {
		c.BatchSize = 20000
	}
	if c.FlushInterval <= 0 {
		c.FlushInterval = 100 * time.Millisecond
	}
	if c.QueueBatches <= 0 {
		c.QueueBatches = 64
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = 5 * time.Second
	}
	return c
}

// Writer queues pipeline batches (Publish) and writes them to an Indexer
// (Run). Publish and Queued are safe for concurrent use; Run is called
// once.
type Writer struct {
	cfg   Config
	ix    Indexer
	log   *slog.Logger
	queue chan *pipeline.Batch
	// stopped is closed when Run returns: Publish refuses from then on.
	stopped chan struct{}
}

// New returns a writer into ix; it starts nothing.
func New(cfg Config, ix Indexer, log *slog.Logger) *Writer {
	cfg = cfg.Effective()
	return &Writer{
		cfg: cfg,
		ix:  ix,
		// The component keeps the name the index writer logged under
		// before it left the index package.
		log:     log.With("component", "index"),
		queue:   make(chan *pipeline.Batch, cfg.QueueBatches),
		stopped: make(chan struct{}),
	}
}

// Queued is the number of pipeline batches waiting for Run.
func (w *Writer) Queued() int { return len(w.queue) }

// Publish queues b for Run to index; it is the direct-mode sink (no Kafka).
// It blocks while the queue is full and returns ctx's error if ctx ends
// first, or pipeline.ErrStopping once Run has returned. b is acked once
// its records are durable in the index, or nacked if Run returns first
// (see pipeline.Batch).
func (w *Writer) Publish(ctx context.Context, b *pipeline.Batch) error {
	select {
	case <-w.stopped:
		return pipeline.ErrStopping
	default:
	}
	select {
	case w.queue <- b:
		return nil
	case <-w.stopped:
		return pipeline.ErrStopping
	case <-ctx.Done():
		return ctx.Err()
	}
}

// nackRest nacks the batches Run holds or that are still queued: Run is
// returning without writing them.
func (w *Writer) nackRest(pending []*pipeline.Batch) {
	close(w.stopped)
	for _, b := range pending {
		b.Nack(pipeline.ErrStopping)
	}
	for {
		select {
		case b := <-w.queue:
			b.Nack(pipeline.ErrStopping)
		default:
			return
		}
	}
}

// Run indexes what Publish queues, coalescing batches into Index calls of
// up to BatchSize records, and acks each pipeline batch once written. A
// failed write is retried with backoff, never dropped; below the
// free-space floor (Config.Guard) Run waits for room instead. When ctx
// ends, Run keeps indexing what is already queued for at most
// DrainTimeout (stop the publishers first), then returns; batches left
// then are nacked: their lines are read again after a restart, a push
// client is answered with an error to retry on.
func (w *Writer) Run(ctx context.Context) error {
	var (
		pending []*pipeline.Batch
		recs    []pipeline.Record
	)
	defer func() { w.nackRest(pending) }()
	flush := func(ctx context.Context) bool {
		backoff := 100 * time.Millisecond
		for {
			err := w.ix.Index(ctx, recs)
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				return false
			}
			if g := w.cfg.Guard; g != nil && g.Check() != nil {
				// Below the free-space floor: wait for room (the guard
				// logs the pause); the queue fills and the tailers wait.
				if g.Wait(ctx) != nil {
					return false
				}
				continue
			}
			w.log.Warn("index write failed; lines are held and retried, tailers pause meanwhile; check disk space and permissions of the data dir", "err", err)
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
				return false
			}
			backoff = min(backoff*2, 5*time.Second)
		}
		for _, b := range pending {
			b.Ack()
		}
		// Cleared, not only cut: a kept record would hold its read buffer.
		clear(pending)
		clear(recs)
		pending, recs = pending[:0], recs[:0]
		return true
	}
	add := func(b *pipeline.Batch) {
		pending = append(pending, b)
		recs = append(recs, b.Records...)
	}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	// waited: a pending batch has a client waiting on its ack.
	var waited bool
	for {
		select {
		case <-ctx.Done():
			dctx, cancel := context.WithTimeout(context.Background(), w.cfg.DrainTimeout)
			defer cancel()
			for {
				select {
				case b := <-w.queue:
					add(b)
					if len(recs) < w.cfg.BatchSize {
						continue
					}
				default:
				}
				if len(recs) == 0 || w.cfg.Guard != nil && w.cfg.Guard.Check() != nil {
					// Nothing left, or no room: what is queued is read
					// again after the restart.
					return nil
				}
				if !flush(dctx) || len(w.queue) == 0 {
					return nil
				}
			}
		case b := <-w.queue:
			if len(pending) == 0 {
				timer.Reset(w.cfg.FlushInterval)
			}
			add(b)
			waited = waited || b.Waited
			// A client waits on a batch and nothing more is queued: write
			// now (group commit); what arrives meanwhile goes next.
			if len(recs) >= w.cfg.BatchSize || waited && len(w.queue) == 0 {
				timer.Stop()
				flush(ctx)
				waited = false
			}
		case <-timer.C:
			flush(ctx)
			waited = false
		}
	}
}
