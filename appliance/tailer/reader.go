package tailer

import (
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nxadm/tail"

	"github.com/logbox/logbox/appliance/pipeline"
)

// reader follows one file and keeps the acked-prefix bookkeeping for it.
type reader struct {
	c       *collector
	path    string
	id      string
	started time.Time

	read       atomic.Int64 // offset after the last line handed to the sink
	linesRead  atomic.Uint64
	linesAcked atomic.Uint64

	mu        sync.Mutex
	pending   []*inflight // batches in read order
	committed int64
	lastErr   string
	rateAt    time.Time
	rateN     uint64
	rate      float64
}

type inflight struct {
	end   int64
	lines int
	done  bool
}

func (c *collector) newReader(path, id string, size int64) *reader {
	r := &reader{c: c, path: path, id: id, started: time.Now(), rateAt: time.Now()}
	if off, ok := c.m.cp.Offset(id); ok {
		if off > size {
			// The file is shorter than what was acked: it was truncated or
			// replaced by one that reuses the inode. Start it over.
			c.m.log.Warn("checkpoint beyond end of file; reading it from the start", "path", path, "file_id", id, "offset", off, "size", size)
			off = 0
		}
		r.committed = off
	}
	r.read.Store(r.committed)
	return r
}

func (r *reader) run(ctx context.Context) {
	log := r.c.m.log.With("path", r.path, "file_id", r.id)
	cfg := r.c.m.cfg
	t, err := tail.TailFile(r.path, tail.Config{
		Location:      &tail.SeekInfo{Offset: r.committed, Whence: io.SeekStart},
		Follow:        true,
		MustExist:     true,
		CompleteLines: true,
		Logger:        tail.DiscardingLogger,
	})
	if err != nil {
		r.setErr(err)
		return
	}
	defer t.Cleanup()
	defer func() { _ = t.Stop() }()
	log.Debug("following file", "offset", r.committed)

	sem := make(chan struct{}, cfg.MaxPending)
	batch := make([]pipeline.Record, 0, cfg.BatchLines)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()

	flush := func() bool {
		if len(batch) == 0 {
			return true
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return false
		}
		p := r.track(r.read.Load(), len(batch))
		b := pipeline.NewBatch(batch, func() {
			r.ack(p)
			<-sem
		})
		batch = make([]pipeline.Record, 0, cfg.BatchLines)
		if err := r.c.m.sink.Publish(ctx, b); err != nil {
			return false
		}
		return true
	}

	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
			if !flush() {
				return
			}
		case line, ok := <-t.Lines:
			if !ok {
				// The file was deleted or moved away and read to its end.
				if err := t.Err(); err != nil && !errors.Is(err, tail.ErrStop) {
					r.setErr(err)
				}
				flush()
				return
			}
			if line.Err != nil {
				r.setErr(line.Err)
				continue
			}
			end := line.SeekInfo.Offset
			start := end - int64(len(line.Text)) - 1
			text := strings.TrimSuffix(line.Text, "\r")
			if len(batch) == 0 {
				timer.Reset(cfg.BatchWait)
			}
			batch = append(batch, pipeline.Record{
				TS:         line.Time.UTC(),
				Host:       cfg.Host,
				Source:     r.path,
				SourceName: r.c.src.Name,
				FileID:     r.id,
				Offset:     start,
				Line:       text,
				Fields:     r.c.src.Fields,
				Topic:      r.c.src.Topic,
			})
			r.read.Store(end)
			r.linesRead.Add(1)
			if len(batch) >= cfg.BatchLines {
				timer.Stop()
				if !flush() {
					return
				}
			}
		}
	}
}

func (r *reader) track(end int64, lines int) *inflight {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := &inflight{end: end, lines: lines}
	r.pending = append(r.pending, p)
	return p
}

// ack marks p delivered and checkpoints the end of the acked prefix.
func (r *reader) ack(p *inflight) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p.done = true
	r.linesAcked.Add(uint64(p.lines))
	advanced := false
	for len(r.pending) > 0 && r.pending[0].done {
		r.committed = r.pending[0].end
		r.pending = r.pending[1:]
		advanced = true
	}
	if advanced {
		r.c.m.cp.Set(r.id, r.path, r.committed)
	}
}

func (r *reader) setErr(err error) {
	r.mu.Lock()
	r.lastErr = err.Error()
	r.mu.Unlock()
	r.c.m.log.Warn("reading file failed; its lines are not collected until the cause is fixed", "path", r.path, "file_id", r.id, "err", err)
}

func (r *reader) status() FileStatus {
	var size int64
	if fi, err := os.Stat(r.path); err == nil {
		size = fi.Size()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	if dt := now.Sub(r.rateAt); dt >= time.Second {
		n := r.linesAcked.Load()
		r.rate = float64(n-r.rateN) / dt.Seconds()
		r.rateN, r.rateAt = n, now
	}
	return FileStatus{
		Source:      r.c.src.Name,
		Path:        r.path,
		FileID:      r.id,
		Offset:      r.committed,
		ReadOffset:  r.read.Load(),
		Size:        size,
		LagBytes:    max(size-r.committed, 0),
		LinesRead:   r.linesRead.Load(),
		LinesAcked:  r.linesAcked.Load(),
		LinesPerSec: r.rate,
		LastError:   r.lastErr,
		Started:     r.started,
	}
}
