package kafkain

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/IBM/sarama"

	"github.com/logbox/logbox/appliance/pipeline"
)

// Gap fill (Config.FillGaps). A claim of a partition starts at the
// group's committed offset, which says what some member of the group
// indexed, not what this consumer's index holds. After a rebalance that
// moved a partition here (its former holder died), the lines below that
// offset are in the other member's index only. A filler reads them from
// Kafka with a plain partition consumer (not the group: nothing is
// committed for them) and hands them to the same sink as the group path,
// decoded the same way; each acked batch extends the coverage. The index
// skips lines it holds already, so reading a range twice costs time, not
// correctness.
//
// There is at most one filler per partition, and at most maxFillers read
// at once (the others wait for a slot). A filler reads, for the newest
// claim start s of its partition, what the coverage lacks of
// [earliest offset in Kafka, s), range by range, and ends when nothing is
// missing or Run's context ends. It keeps filling when the partition
// moves away meanwhile: the coverage it adds is still true.

// maxFillers bounds the gap fillers reading from Kafka at once.
const maxFillers = 2

// fillRetry is the pause before a filler tries again after a failure
// (Kafka unreachable, a batch the writer gave back).
const fillRetry = time.Second

// fillers are the gap fillers of one Run.
type fillers struct {
	ctx    context.Context // Run's: fillers stop when it ends
	client sarama.Client   // the group's: for offsets
	wg     sync.WaitGroup
	slots  chan struct{} // one token per filler reading
	// dial opens the fillers' own client. sarama sends one request at a
	// time per broker connection, so fetches for a fill on the group's
	// client would queue behind its long-polling fetch (and its commits
	// behind them).
	dial func() (sarama.Client, error)

	mu        sync.Mutex
	parts     map[string]*filler // by PartName
	fetcher   sarama.Client      // opened by the first filler that reads
	fetchCons sarama.Consumer    // on fetcher
}

// filler is the state of one partition's gap filler.
type filler struct {
	tp topicPartition
	// Guarded by fillers.mu.
	target int64 // the newest claim's initial offset (or a sentinel)
	active bool  // it found a gap: filling it, or waiting for a slot
}

func newFillers(ctx context.Context, client sarama.Client, dial func() (sarama.Client, error)) *fillers {
	return &fillers{ctx: ctx, client: client, dial: dial, slots: make(chan struct{}, maxFillers), parts: map[string]*filler{}}
}

// consumer returns the consumer fillers read with, opening it first.
func (f *fillers) consumer() (sarama.Consumer, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fetchCons != nil {
		return f.fetchCons, nil
	}
	client, err := f.dial()
	if err != nil {
		return nil, fmt.Errorf("open a kafka client for gap fill: %w", err)
	}
	cons, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		client.Close()
		return nil, fmt.Errorf("open a kafka consumer for gap fill: %w", err)
	}
	f.fetcher, f.fetchCons = client, cons
	return cons, nil
}

// close waits for the fillers and closes what they read with.
func (f *fillers) close() {
	f.wg.Wait()
	if f.fetcher != nil {
		f.fetchCons.Close()
		f.fetcher.Close()
	}
}

// Filling returns the partitions (PartName) whose gap a filler is
// filling or waiting to fill, sorted.
func (c *Consumer) Filling() []string {
	f := c.fillers.Load()
	if f == nil {
		return []string{}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	out := []string{}
	for part, st := range f.parts {
		if st.active {
			out = append(out, part)
		}
	}
	slices.Sort(out)
	return out
}

// claimStarts is called as a claim of tp begins at offset (the claim's
// initial offset: the group's committed offset, or a sentinel when the
// group has none). With FillGaps, it makes sure a filler checks what the
// coverage lacks below it.
func (c *Consumer) claimStarts(tp topicPartition, offset int64) {
	f := c.fillers.Load()
	if !c.cfg.FillGaps || f == nil {
		return
	}
	part := pipeline.PartName(tp.topic, tp.partition)
	f.mu.Lock()
	defer f.mu.Unlock()
	if st, ok := f.parts[part]; ok {
		st.target = offset // it looks again before it ends
		return
	}
	st := &filler{tp: tp, target: offset}
	f.parts[part] = st
	f.wg.Go(func() { c.runFiller(f, part, st) })
}

// runFiller fills part's gaps below its newest claim start until none is
// left or the fillers' context ends.
func (c *Consumer) runFiller(f *fillers, part string, st *filler) {
	ctx := f.ctx
	holding := false
	defer func() {
		if holding {
			<-f.slots
		}
		f.mu.Lock()
		if f.parts[part] == st {
			delete(f.parts, part)
		}
		f.mu.Unlock()
	}()
	pause := func() {
		select {
		case <-ctx.Done():
		case <-time.After(fillRetry):
		}
	}
	for ctx.Err() == nil {
		f.mu.Lock()
		target := st.target
		f.mu.Unlock()
		earliest, end, err := fillBounds(f.client, st.tp, target)
		if err != nil {
			c.log.Warn("cannot read a partition's offsets to check for a gap; retrying; check broker health",
				"topic", st.tp.topic, "partition", st.tp.partition, "err", err)
			pause()
			continue
		}
		c.covMu.Lock()
		missing := c.cov.Missing(part, earliest, end)
		c.covMu.Unlock()
		if len(missing) == 0 {
			f.mu.Lock()
			if st.target == target {
				// Done: a claim that starts later finds no filler and
				// starts one.
				delete(f.parts, part)
				f.mu.Unlock()
				if st.active {
					c.log.Info("kafka partition gap filled", "topic", st.tp.topic, "partition", st.tp.partition, "to", end)
				}
				return
			}
			f.mu.Unlock()
			continue // a newer claim: look again
		}
		if !st.active {
			f.mu.Lock()
			st.active = true
			f.mu.Unlock()
			c.log.Info("kafka partition has a gap below where its claim starts; reading it from Kafka",
				"topic", st.tp.topic, "partition", st.tp.partition, "missing", missing)
		}
		if !holding {
			select {
			case f.slots <- struct{}{}:
				holding = true
			case <-ctx.Done():
				return
			}
		}
		cons, err := f.consumer()
		if err != nil {
			c.log.Warn("cannot connect to kafka to fill a gap; retrying", "topic", st.tp.topic, "partition", st.tp.partition, "err", err)
			pause()
			continue
		}
		r := missing[0]
		if err := c.fillRange(ctx, cons, st.tp, part, r[0], r[1]); err != nil && ctx.Err() == nil {
			// Out of range (retention moved the earliest offset) is
			// settled by looking again; anything else waits first.
			if !errors.Is(err, sarama.ErrOffsetOutOfRange) {
				c.log.Warn("filling a kafka partition gap failed; retrying", "topic", st.tp.topic, "partition", st.tp.partition,
					"from", r[0], "to", r[1], "err", err)
			}
			pause()
		}
	}
}

// fillBounds returns tp's earliest offset in Kafka and where a claim that
// starts at target starts in offsets (resolving sentinels).
func fillBounds(client sarama.Client, tp topicPartition, target int64) (earliest, end int64, err error) {
	earliest, err = client.GetOffset(tp.topic, tp.partition, sarama.OffsetOldest)
	if err != nil {
		return 0, 0, fmt.Errorf("earliest offset of %s/%d: %w", tp.topic, tp.partition, err)
	}
	switch {
	case target >= 0:
		return earliest, target, nil
	case target == sarama.OffsetNewest:
		end, err = client.GetOffset(tp.topic, tp.partition, sarama.OffsetNewest)
		if err != nil {
			return 0, 0, fmt.Errorf("high-water mark of %s/%d: %w", tp.topic, tp.partition, err)
		}
		return earliest, end, nil
	default: // OffsetOldest: the claim reads everything
		return earliest, earliest, nil
	}
}

// fillRange reads [from, to) of tp and publishes it in batches of
// BatchSize, each waited for; an acked batch extends the coverage. A
// batch the writer gives back is published again after a pause, until ctx
// ends. It returns nil once the range is read (its last offset, or a
// later one, was seen) or ctx ended.
func (c *Consumer) fillRange(ctx context.Context, cons sarama.Consumer, tp topicPartition, part string, from, to int64) error {
	pc, err := cons.ConsumePartition(tp.topic, tp.partition, from)
	if err != nil {
		return fmt.Errorf("consume %s from offset %d: %w", part, from, err)
	}
	defer pc.Close()
	batch := make([]pipeline.Record, 0, min(int64(c.cfg.BatchSize), to-from))
	covered := from // everything below is in the index (or not in Kafka)
	var next int64  // the offset after the last one read
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	// flush publishes the batch and, once it is acked, covers
	// [covered, end): every offset of it that Kafka delivers is in the
	// batch or was acked before.
	flush := func(end int64) bool {
		timer.Stop()
		if len(batch) > 0 {
			if !c.publishFill(ctx, tp, batch) {
				return false
			}
			c.filled.Add(uint64(len(batch)))
			batch = make([]pipeline.Record, 0, cap(batch))
		}
		c.addCoverage(part, covered, end)
		covered = max(covered, end)
		return true
	}
	for {
		select {
		case msg, ok := <-pc.Messages():
			if !ok {
				return fmt.Errorf("partition consumer of %s closed at offset %d", part, next)
			}
			if msg.Offset >= to {
				// Nothing deliverable was left in the range.
				flush(to)
				return nil
			}
			c.consumed.Add(1)
			if len(batch) == 0 {
				timer.Reset(c.cfg.FlushInterval)
			}
			batch = append(batch, c.decode(msg, part))
			next = msg.Offset + 1
			if next >= to {
				flush(to)
				return nil
			}
			if len(batch) >= c.cfg.BatchSize && !flush(next) {
				return nil
			}
		case err := <-pc.Errors():
			if err == nil {
				continue
			}
			if errors.Is(err.Err, sarama.ErrOffsetOutOfRange) {
				flush(next)
				return fmt.Errorf("fill %s: %w", part, err.Err)
			}
			// The partition consumer retries the others itself.
			c.log.Debug("gap fill read error", "topic", tp.topic, "partition", tp.partition, "err", err.Err)
		case <-timer.C:
			if !flush(next) {
				return nil
			}
		case <-ctx.Done():
			return nil
		}
	}
}

// publishFill hands recs to the writer as one batch and waits for its
// ack, publishing them again after a pause each time the writer gives
// them back. It returns false only when ctx ended first.
func (c *Consumer) publishFill(ctx context.Context, tp topicPartition, recs []pipeline.Record) bool {
	for {
		err := c.publishWait(ctx, recs)
		if err == nil {
			c.indexed.Add(uint64(len(recs)))
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		c.indexErrs.Add(1)
		c.log.Warn("the index writer gave a gap-fill batch back; publishing it again shortly",
			"topic", tp.topic, "partition", tp.partition, "records", len(recs), "err", err)
		select {
		case <-ctx.Done():
			return false
		case <-time.After(fillRetry):
		}
		// The writer gave the slice up; a copy keeps the retry clear of it.
		recs = slices.Clone(recs)
	}
}
