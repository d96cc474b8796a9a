package tailer

import (
	"context"
	"errors"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nxadm/tail/watch"
	"gopkg.in/tomb.v1"

	"github.com/logbox/logbox/appliance/pipeline"
)

const (
	readBufSize = 256 << 10
	minBackoff  = 2 * time.Millisecond
	maxBackoff  = 250 * time.Millisecond
	pathCheck   = 250 * time.Millisecond
)

// reader follows one file through an open descriptor, cuts it into lines
// and events, and keeps the acked-prefix bookkeeping for it.
//
// It reads the file itself in large chunks (no per-line syscalls or
// channel sends) and uses github.com/nxadm/tail's inotify watcher only to
// wake up early when the file changes; a timer with backoff covers missed
// or unavailable notifications.
type reader struct {
	c       *collector
	path    string
	f       *os.File
	id      identity
	fileID  string
	key     string // checkpoint key
	started time.Time
	tot     *sourceTotals

	read       atomic.Int64 // offset after the last byte read
	linesRead  atomic.Uint64
	linesAcked atomic.Uint64

	mu        sync.Mutex
	pending   []*inflight // batches in read order
	committed int64
	tail      uint64 // hash of the bytes before committed
	lastErr   string
	rateAt    time.Time
	rateN     uint64
	rate      float64
}

type inflight struct {
	end   int64
	tail  uint64
	lines int
	done  bool
}

// newReader reads f (whose identity is id) as fileID: its own identity, or
// the one of the content it continues.
func (c *collector) newReader(path string, f *os.File, id identity, fileID string, size int64) *reader {
	r := &reader{c: c, path: path, f: f, id: id, fileID: fileID, started: time.Now(), rateAt: time.Now()}
	r.key = c.src.Name + "/" + r.fileID
	r.tot = c.m.sourceTotals(c.src.Name)
	if off, ok := c.m.cp.Offset(r.key); ok {
		if off > size {
			// Shorter than what was acked: replaced or truncated while we
			// were down, keeping its first line. Start it over.
			c.m.log.Warn("checkpoint beyond end of file; reading it from the start", "path", path, "file_id", r.fileID, "offset", off, "size", size)
			off = 0
		}
		r.committed = off
	}
	r.read.Store(r.committed)
	return r
}

// exit tells the collector why a reader ended.
type exit int

const (
	exitStopped   exit = iota // context done
	exitGone                  // deleted or rotated away, and read to its end
	exitTruncated             // shrank below what was read: a new generation
	exitFailed
)

func (r *reader) run(ctx context.Context) exit {
	defer r.f.Close()
	cfg := r.c.m.cfg
	src := &r.c.src
	log := r.c.m.log.With("path", r.path, "file_id", r.fileID, "source", src.Name)

	// Change notifications are a hint to read sooner, nothing more.
	wake := make(chan struct{}, 1)
	var tb tomb.Tomb
	defer tb.Kill(nil)
	if changes, err := watch.NewInotifyFileWatcher(r.path).ChangeEvents(&tb, r.committed); err == nil {
		go forwardChanges(&tb, changes, wake)
	} else {
		log.Debug("no inotify watch; polling", "err", err)
	}

	pos := r.committed
	if _, err := r.f.Seek(pos, io.SeekStart); err != nil {
		r.setErr(err)
		return exitFailed
	}
	sp := newSplitter(src.MaxLine(), pos)
	var jn *joiner
	var mlTimeout time.Duration
	if src.Multiline != nil {
		var err error
		if jn, err = newJoiner(src.Multiline, src.MaxLine()); err != nil {
			r.setErr(err) // validated before; not reached
			return exitFailed
		}
		mlTimeout = src.Multiline.TimeoutOrDefault()
	}
	sem := make(chan struct{}, cfg.MaxPending)
	batch := make([]pipeline.Record, 0, cfg.BatchLines)
	var batchEnd int64
	buf := make([]byte, readBufSize)
	now := time.Now()
	lastLine, lastData, lastPath := now, now, time.Time{}
	gone, resumed := false, false
	backoff := minBackoff

	emitEvent := func(ev event) {
		batch = append(batch, pipeline.Record{
			TS:         time.Now().UTC(),
			Host:       cfg.Host,
			Source:     r.path,
			SourceName: src.Name,
			FileID:     r.fileID,
			Offset:     ev.start,
			Line:       ev.text,
			Fields:     src.Fields,
			Topic:      src.Topic,
			Flags:      ev.flags,
		})
		batchEnd = ev.end
		for _, f := range ev.flags {
			r.c.m.count(src.Name, f)
		}
	}
	// Counters and the clock are updated once per read, not per line.
	var lines uint64 // lines cut since the last counted()
	counted := func() {
		if lines > 0 {
			lastLine = time.Now()
			r.linesRead.Add(lines)
			r.tot.linesRead.Add(lines)
			lines = 0
		}
	}
	onLine := func(l rawLine) {
		text, flags := sanitize(l)
		lines++
		if jn != nil {
			jn.push(text, l.start, l.end, flags, emitEvent)
		} else {
			emitEvent(event{text: text, start: l.start, end: l.end, flags: flags})
		}
	}
	publish := func() bool {
		if len(batch) == 0 {
			return true
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return false
		}
		p := r.track(batchEnd, tailHash(r.f, batchEnd), len(batch))
		b := pipeline.NewBatch(batch, func() {
			r.ack(p)
			<-sem
		})
		batch = make([]pipeline.Record, 0, cfg.BatchLines)
		return r.c.m.sink.Publish(ctx, b) == nil
	}

	for {
		if ctx.Err() != nil {
			return exitStopped
		}
		// Before reading what arrived after an idle wait, and every
		// pathCheck while reading: has the file been truncated or rewritten
		// in place, or moved away from its path? Checking before the read
		// keeps a rewrite from being read at the old offset.
		if now := time.Now(); resumed || now.Sub(lastPath) >= pathCheck {
			lastPath, resumed = now, false
			if r.rewritten(pos) {
				log.Info("file truncated or rewritten in place; reading its new content as a new file", "offset", pos)
				r.c.m.count(src.Name, "file_truncated")
				r.c.m.cp.Retire(r.key)
				return exitTruncated
			}
			gone = !r.stillAtPath()
		}
		n, err := r.f.Read(buf)
		if n > 0 {
			sp.feed(buf[:n], onLine)
			counted()
			pos += int64(n)
			r.read.Store(pos)
			r.tot.bytesRead.Add(uint64(n))
			lastData = time.Now()
			backoff = minBackoff
			if len(batch) >= cfg.BatchLines && !publish() {
				return exitStopped
			}
			continue
		}
		if err != nil && !errors.Is(err, io.EOF) {
			r.setErr(err)
		}

		// At the end of what is written so far.
		now := time.Now()
		if jn != nil && jn.pending() && now.Sub(lastLine) >= mlTimeout {
			jn.flush(emitEvent)
		}
		if cfg.PartialLineIdle > 0 && sp.hasPartial() && now.Sub(lastData) >= cfg.PartialLineIdle {
			sp.flushPartial(onLine)
			counted()
		}
		if !publish() {
			return exitStopped
		}
		// A rotated or deleted file is read until the writer has been idle
		// for RotateWait, then let go; what is pending is shipped first.
		if gone && now.Sub(lastData) >= cfg.RotateWait {
			sp.flushPartial(onLine)
			counted()
			if jn != nil {
				jn.flush(emitEvent)
			}
			if !publish() {
				return exitStopped
			}
			if deleted(r.f) {
				r.c.m.cp.Retire(r.key)
			}
			log.Debug("file rotated or deleted and read to its end; closing it")
			return exitGone
		}
		wait := backoff
		if jn != nil && jn.pending() {
			wait = min(wait, mlTimeout)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return exitStopped
		case <-wake:
			backoff = minBackoff
		case <-t.C:
			backoff = min(backoff*2, maxBackoff)
		}
		t.Stop()
		resumed = r.grew(pos)
	}
}

func forwardChanges(tb *tomb.Tomb, ch *watch.FileChanges, wake chan<- struct{}) {
	poke := func() {
		select {
		case wake <- struct{}{}:
		default:
		}
	}
	for {
		select {
		case <-ch.Modified:
			poke()
		case <-ch.Truncated:
			poke()
		case <-ch.Deleted:
			poke()
			return
		case <-tb.Dying():
			return
		}
	}
}

// grew reports whether the file's size differs from pos, i.e. a read
// would find new bytes or the file shrank.
func (r *reader) grew(pos int64) bool {
	fi, err := r.f.Stat()
	return err == nil && fi.Size() != pos
}

// rewritten reports whether the file shrank below pos or its first line
// changed: either way what was read is gone and the content is new.
func (r *reader) rewritten(pos int64) bool {
	fi, err := r.f.Stat()
	if err != nil {
		return false
	}
	if fi.Size() < pos {
		return true
	}
	id, err := identify(r.f)
	return err == nil && id != r.id
}

// stillAtPath reports whether the reader's path still names its file.
func (r *reader) stillAtPath() bool {
	fi, err := os.Stat(r.path)
	if err != nil {
		return false
	}
	di, ok := devInoOf(fi)
	return ok && di == r.id.devIno
}

// deleted reports whether f has no name left on disk.
func deleted(f *os.File) bool {
	fi, err := f.Stat()
	if err != nil {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && st.Nlink == 0
}

func (r *reader) track(end int64, tail uint64, lines int) *inflight {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := &inflight{end: end, tail: tail, lines: lines}
	r.pending = append(r.pending, p)
	return p
}

// ack marks p delivered and checkpoints the end of the acked prefix.
func (r *reader) ack(p *inflight) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p.done = true
	r.linesAcked.Add(uint64(p.lines))
	r.tot.linesAcked.Add(uint64(p.lines))
	advanced := false
	for len(r.pending) > 0 && r.pending[0].done {
		r.committed, r.tail = r.pending[0].end, r.pending[0].tail
		r.pending = r.pending[1:]
		advanced = true
	}
	if advanced {
		r.c.m.cp.Set(r.key, r.path, r.committed, r.tail)
	}
}

func (r *reader) setErr(err error) {
	r.mu.Lock()
	r.lastErr = err.Error()
	r.mu.Unlock()
	r.c.m.log.Warn("reading file failed; its lines are not collected until the cause is fixed", "path", r.path, "file_id", r.fileID, "err", err)
}

func (r *reader) status() FileStatus {
	var size int64
	if fi, err := r.f.Stat(); err == nil {
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
		FileID:      r.fileID,
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
