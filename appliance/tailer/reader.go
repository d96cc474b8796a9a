package tailer

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/logbox/logbox/appliance/pipeline"
)

const (
	readBufSize = 256 << 10
	// stepBytes is how much one step reads before the reader goes to the
	// back of the run queue, so one busy file does not hold a worker.
	stepBytes  = 16 * readBufSize
	minBackoff = 2 * time.Millisecond
	maxBackoff = 250 * time.Millisecond
	pathCheck  = 250 * time.Millisecond
)

// File states, as Status reports them.
const (
	StateNew     = "new"     // found, not opened yet
	StateReading = "reading" // open, being read
	StateIdle    = "idle"    // open, at the end, waiting for a change
	StateWaiting = "waiting" // too many batches unacked: waits for the sink
	StateClosed  = "closed"  // inactive: no descriptor; reopened when it changes
	StateQueued  = "queued"  // waits for a descriptor (see Config.MaxOpenFiles)
	StateRotated = "rotated" // renamed or deleted: read to its end, then let go
)

// reader follows one file. It has no goroutine: the pool runs its step
// whenever there may be something to do (see pool). Between steps it holds
// its place (offset, an unfinished line, a pending multiline event, the
// batches in flight) and, while active, a descriptor; an idle file gives
// its descriptor back after Config.CloseInactive, or at once when other
// files wait for one, and is opened again, by identity, when it changes.
//
// Everything but the fields under mu and the atomics is touched only by
// the worker running the reader's step.
type reader struct {
	c     *collector
	tot   *sourceTotals
	sched schedState // guarded by pool.mu

	path string // the path its records name (where it was found)
	open string // where to open it again (differs for a found file)
	di   devIno // what path held when the reader was made
	// adopt, if set, is the checkpoint key this reader carries on: a file
	// found by identity after it left its path, or a copy of one.
	adopt string
	found bool // read to its end and let go, wherever a glob matches

	inited  bool
	id      identity
	real    string // the resolved path registered with the watcher
	watched bool
	f       *os.File
	fdHeld  bool

	pos      int64 // next byte to read
	hwm      int64 // highest offset read so far (a reopened file re-reads a partial line)
	sp       splitter
	jn       *joiner
	batch    []pipeline.Record
	batchEnd int64

	// held are records of batch whose text is still only in the read
	// buffer (see ownLines); fullBatch: the last batch published was full.
	held      []heldLine
	fullBatch bool

	lastLine time.Time
	lastData time.Time
	lastPath time.Time
	gone     bool
	backoff  time.Duration
	timer    *time.Timer
	pathErr  bool
	released atomic.Bool

	state      atomic.Value // string
	read       atomic.Int64
	size       atomic.Int64
	bytesRead  atomic.Uint64
	linesRead  atomic.Uint64
	linesAcked atomic.Uint64

	mu        sync.Mutex
	fileID    string
	key       string // checkpoint key
	started   time.Time
	pending   []*inflight // batches in read order
	committed int64
	tail      uint64 // hash of the bytes before committed
	parked    bool   // waits for an ack to publish again
	finished  bool   // let go; kept only until its batches are acked
	lastErr   string
	rateAt    time.Time
	rateN     uint64
	rate      float64
}

// heldLine is the text of batch[i], still a slice of a buffer the next
// read overwrites.
type heldLine struct {
	i    int
	text []byte
}

type inflight struct {
	end   int64
	tail  uint64
	lines int
	done  bool
}

func (c *collector) newReader(path string, di devIno) *reader {
	now := time.Now()
	r := &reader{c: c, tot: c.m.sourceTotals(c.src.Name), path: path, open: path, di: di, started: now, rateAt: now, lastData: now, lastLine: now, backoff: minBackoff}
	r.state.Store(StateNew)
	return r
}

// exit tells why a reader ended.
type exit int

const (
	exitNone      exit = iota
	exitStopped        // context done
	exitGone           // deleted or rotated away, and read to its end
	exitTruncated      // shrank below what was read: a new generation
	exitRetry          // not to be read now; the next scan looks again
	exitLater          // not ready or refused: looked at again when its directory changes
)

// step does what there is to do now and reports whether the reader should
// run again right away (it read its share and there is more).
func (r *reader) step(buf []byte) bool {
	c := r.c
	if c.ctx.Err() != nil {
		return false
	}
	if r.f == nil {
		if !c.m.pool.acquireFD(r) {
			r.state.Store(StateQueued)
			return false
		}
		r.fdHeld = true
		if x := r.reopen(); x != exitNone {
			r.end(x)
			return false
		}
		if r.f == nil {
			return false // not now; a timer looks again
		}
	}
	more, x := r.readSome(buf)
	if x != exitNone {
		r.end(x)
		return false
	}
	return more
}

// reopen opens the file for a reader that has none: the first time (it
// is identified and its place looked up), or after it was closed (it must
// still be the same file, wherever it is now).
func (r *reader) reopen() exit {
	c := r.c
	if !r.inited {
		return r.init()
	}
	f, real, err := openFile(r.open, c.m.cfg.Allowed)
	if err == nil {
		id, ierr := identify(f)
		if ierr != nil || id != r.id {
			f.Close()
			err = fs.ErrNotExist // something else is at the path now
		}
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		// E.g. its directory is unreadable now: keep its place, say so,
		// try again.
		r.setErr(err)
		r.closeFD()
		r.state.Store(StateClosed)
		r.after(c.m.cfg.ScanInterval)
		return exitNone
	}
	if err != nil {
		// It left its path while it was closed: renamed (look for it by
		// identity where it was) or deleted (nothing left to read).
		p, _, ok := c.renamedIn(readDirIndex(filepath.Dir(r.real)), r.id)
		if !ok {
			c.m.log.Info("closed file left its path and is gone; letting it go", "path", r.path, "file_id", r.fileID)
			r.finishGone(r.size.Load(), true)
			return exitGone
		}
		f, real, err = openFile(p, c.m.cfg.Allowed)
		if err == nil {
			if id, ierr := identify(f); ierr != nil || id != r.id {
				f.Close()
				err = errors.New("replaced while it was opened")
			}
		}
		if err != nil {
			r.setErr(err)
			r.closeFD()
			r.state.Store(StateClosed)
			r.after(c.m.cfg.ScanInterval)
			return exitNone
		}
		c.m.log.Debug("closed file was renamed; reading it to its end at its new name", "path", r.path, "now", p)
		r.open, r.gone = p, true
	}
	r.f = f
	r.clearErr()
	r.rewatch(real)
	if _, err := f.Seek(r.pos, io.SeekStart); err != nil {
		r.setErr(err)
		return exitRetry
	}
	return exitNone
}

// init identifies a new file, finds where to start reading it and takes
// its checkpoint entry. Adoption decisions of one source are serialized.
func (r *reader) init() exit {
	c := r.c
	c.initMu.Lock()
	defer c.initMu.Unlock()
	f, real, err := openFile(r.open, c.m.cfg.Allowed)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return exitRetry
		}
		c.refuse(r.path, err)
		return exitLater
	}
	id, err := identify(f)
	switch {
	case errors.Is(err, errNotReady):
		f.Close()
		return exitLater // no complete first line yet: its write is an event
	case err != nil:
		f.Close()
		c.refuse(r.path, err)
		return exitLater
	case id.devIno != r.di:
		f.Close()
		return exitRetry // replaced since the scan; the next one looks again
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		c.refuse(r.path, err)
		return exitRetry
	}
	size := fi.Size()
	fileID := id.String()
	key := c.src.Name + "/" + fileID
	switch {
	case r.adopt != "":
		key, fileID = r.adopt, strings.TrimPrefix(r.adopt, c.src.Name+"/")
		if want, ok := parseFileID(fileID); !ok || want.fp != id.fp || c.keyBusy(key, r) {
			f.Close()
			return exitRetry
		}
	case c.copyOfLiveFile(r.di, id):
		f.Close()
		return exitRetry
	default:
		if _, known := c.m.cp.Offset(key); !known {
			// A new identity may be a copy of content whose file was
			// truncated or deleted (copytruncate, a move across file
			// systems): it then carries on under the old identity, from
			// the old offset.
			if k, ok := c.adoptable(f, id, size); ok {
				key, fileID = k, strings.TrimPrefix(k, c.src.Name+"/")
				c.m.log.Info("file continues content that left another file; reading on from its checkpoint", "path", r.path, "file_id", fileID)
			}
		}
		if c.keyBusy(key, r) {
			f.Close()
			return exitRetry
		}
	}
	c.m.cp.Adopt(key)
	var committed int64
	if off, ok := c.m.cp.Offset(key); ok {
		if off > size {
			// Shorter than what was acked: replaced or truncated while we
			// were down, keeping its first line. Start it over.
			c.m.log.Warn("checkpoint beyond end of file; reading it from the start", "path", r.path, "file_id", fileID, "offset", off, "size", size)
			off = 0
		}
		committed = off
	}
	tail := tailHash(f, committed)
	r.mu.Lock()
	r.fileID, r.key, r.committed, r.tail = fileID, key, committed, tail
	r.mu.Unlock()
	// The entry exists from the start (at the offset reading resumes
	// from), so a copy made before anything is acked can still find it.
	c.m.cp.Set(key, r.path, committed, tail)
	c.mu.Lock()
	c.keys[key] = r
	delete(c.refused, r.path)
	delete(c.parked, key)
	r.id, r.inited = id, true
	c.unidentified--
	c.mu.Unlock()

	r.f = f
	r.pos, r.hwm = committed, committed
	r.read.Store(committed)
	r.size.Store(size)
	r.sp = splitter{max: c.src.MaxLine(), start: committed, next: committed}
	if ml := c.src.Multiline; ml != nil {
		if r.jn, err = newJoiner(ml, c.src.MaxLine()); err != nil {
			r.setErr(err) // validated before; not reached
			return exitRetry
		}
	}
	if r.found {
		r.gone = true
	}
	r.rewatch(real)
	if _, err := f.Seek(committed, io.SeekStart); err != nil {
		r.setErr(err)
		return exitRetry
	}
	return exitNone
}

// rewatch registers the reader's file with the watcher under its real path.
func (r *reader) rewatch(real string) {
	w := r.c.m.watch
	if r.real != "" && r.real != real {
		w.unregister(r, r.real)
		r.real = ""
	}
	if r.real == "" {
		r.real = real
		r.watched = w.register(r, real)
		return
	}
	r.watched = w.watched(real)
}

// readSome reads what there is (up to stepBytes), publishes it and, at the
// end of the file, flushes what waits too long, lets a rotated file go,
// closes an inactive one, or sets the timer for the next look.
func (r *reader) readSome(buf []byte) (more bool, x exit) {
	c := r.c
	cfg := &c.m.cfg
	ctx := c.ctx
	log := c.m.log
	r.state.Store(StateReading)

	// Before reading what arrived after a wait, and every pathCheck while
	// reading: has the file been truncated or rewritten in place, or moved
	// away from its path? Checking before the read keeps a rewrite from
	// being read at the old offset.
	checkPath := func() exit {
		r.lastPath = time.Now()
		if r.rewritten(r.pos) {
			log.Info("file truncated or rewritten in place; reading its new content as a new file", "path", r.path, "offset", r.pos)
			c.m.count(c.src.Name, "file_truncated")
			c.m.cp.Retire(r.key)
			return exitTruncated
		}
		if !r.gone {
			at, err := r.stillAtPath()
			switch {
			case err != nil:
				// Not knowable now (e.g. the directory is unreadable): keep
				// reading through the descriptor, say so, look again.
				r.pathErr = true
				r.setErr(err)
			default:
				if r.pathErr {
					r.pathErr = false
					r.clearErr()
				}
				r.gone = !at
			}
		}
		return exitNone
	}
	if x := checkPath(); x != exitNone {
		return false, x
	}

	// ts is when the lines being cut were read: one clock read per read
	// call rather than per line.
	ts := time.Now().UTC()
	zone := recordZone(c.zone, cfg.Zone, ts)
	emitEvent := func(ev event) {
		if r.batch == nil {
			// A file read at full speed fills its batches, and a batch
			// passes BatchLines by at most one read's lines: room for
			// that spares growing it line by line.
			n := min(cfg.BatchLines, 64)
			if r.fullBatch {
				n = 2 * cfg.BatchLines
			}
			r.batch = make([]pipeline.Record, 0, n)
		}
		r.batch = append(r.batch, pipeline.Record{
			TS:         ts,
			Host:       cfg.Host,
			Source:     r.path,
			SourceName: c.src.Name,
			FileID:     r.fileID,
			Offset:     ev.start,
			End:        ev.end,
			Line:       ev.text,
			Fields:     c.src.Fields,
			Topic:      c.src.Topic,
			Flags:      ev.flags,
			Parser:     c.parser,
			TZ:         zone,
		})
		r.batchEnd = ev.end
		for _, f := range ev.flags {
			c.m.count(c.src.Name, f)
		}
	}
	var lines uint64 // lines cut since the last counted()
	counted := func() {
		if lines > 0 {
			r.lastLine = time.Now()
			r.linesRead.Add(lines)
			r.tot.linesRead.Add(lines)
			lines = 0
		}
	}
	onLine := func(l rawLine) {
		lines++
		if r.jn == nil && l.inData {
			// The common case: the text is in the read buffer and needs no
			// change but trimming. It is copied with the other lines of
			// this read, by ownLines, before the buffer is read into again.
			if text, flags := trimmed(l); clean(text) {
				emitEvent(event{start: l.start, end: l.end, flags: flags})
				r.held = append(r.held, heldLine{i: len(r.batch) - 1, text: text})
				return
			}
		}
		text, flags := sanitize(l)
		if r.jn != nil {
			r.jn.push(text, l.start, l.end, flags, emitEvent)
		} else {
			emitEvent(event{text: text, start: l.start, end: l.end, flags: flags})
		}
	}

	readThisStep := 0
	for {
		if ctx.Err() != nil {
			return false, exitStopped
		}
		if len(r.batch) >= cfg.BatchLines {
			if !r.publish() {
				return false, r.waitAck()
			}
		}
		if readThisStep >= stepBytes {
			return true, exitNone
		}
		if time.Since(r.lastPath) >= pathCheck {
			if x := checkPath(); x != exitNone {
				return false, x
			}
		}
		n, err := r.f.Read(buf)
		if n > 0 {
			ts = time.Now().UTC()
			r.sp.feed(buf[:n], onLine)
			r.ownLines()
			counted()
			r.pos += int64(n)
			readThisStep += n
			r.read.Store(r.pos)
			if r.pos > r.hwm {
				// Bytes read again after a reopen are not new data.
				fresh := uint64(r.pos - max(r.hwm, r.pos-int64(n)))
				r.bytesRead.Add(fresh)
				r.tot.bytesRead.Add(fresh)
				r.hwm = r.pos
				r.lastData = time.Now()
			}
			r.backoff = minBackoff
			continue
		}
		if err != nil && !errors.Is(err, io.EOF) {
			r.setErr(err)
			if !r.publish() {
				return false, r.waitAck()
			}
			r.after(cfg.ScanInterval)
			r.state.Store(StateIdle)
			return false, exitNone
		}
		break
	}

	// At the end of what is written so far.
	now := time.Now()
	ts = now.UTC()
	if fi, err := r.f.Stat(); err == nil {
		r.size.Store(fi.Size())
	}
	mlTimeout := time.Duration(0)
	if r.jn != nil {
		mlTimeout = c.src.Multiline.TimeoutOrDefault()
		if r.jn.pending() && now.Sub(r.lastLine) >= mlTimeout {
			r.jn.flush(emitEvent)
		}
	}
	if cfg.PartialLineIdle > 0 && r.sp.hasPartial() && now.Sub(r.lastData) >= cfg.PartialLineIdle {
		r.sp.flushPartial(onLine)
		counted()
	}
	if !r.publish() {
		return false, r.waitAck()
	}
	// A rotated or deleted file is read until the writer has been idle
	// for RotateWait, then let go; what is pending is shipped first.
	if r.gone && now.Sub(r.lastData) >= cfg.RotateWait {
		r.sp.flushPartial(onLine)
		counted()
		if r.jn != nil {
			r.jn.flush(emitEvent)
		}
		if !r.publish() {
			return false, r.waitAck()
		}
		r.finishGone(r.pos, deleted(r.f))
		log.Debug("file rotated or deleted and read to its end; closing it", "path", r.path, "file_id", r.fileID)
		return false, exitGone
	}

	// Idle. Give the descriptor back if it has been inactive long enough,
	// or at once when other files wait for one; else decide when to look
	// again (events wake it sooner).
	partialDue := cfg.PartialLineIdle > 0 && r.sp.hasPartial()
	joinDue := r.jn != nil && r.jn.pending()
	if !r.gone && !partialDue && !joinDue &&
		(now.Sub(r.lastData) >= cfg.CloseInactive || c.m.pool.pressure()) {
		r.closeInactive()
		return false, exitNone
	}
	wait := time.Duration(-1)
	consider := func(d time.Duration) {
		if d < 0 {
			d = 0
		}
		if wait < 0 || d < wait {
			wait = d
		}
	}
	if r.gone {
		consider(r.backoff)
		r.backoff = min(r.backoff*2, maxBackoff)
	} else {
		if !r.watched {
			r.watched = c.m.watch.watched(r.real)
		}
		if !r.watched || r.pathErr {
			consider(cfg.ScanInterval) // polling by stat
		}
		consider(r.lastData.Add(cfg.CloseInactive).Sub(now))
	}
	if joinDue {
		consider(r.lastLine.Add(mlTimeout).Sub(now))
	}
	if partialDue {
		consider(r.lastData.Add(cfg.PartialLineIdle).Sub(now))
	}
	r.after(wait)
	if r.gone {
		r.state.Store(StateRotated)
	} else {
		r.state.Store(StateIdle)
		if !partialDue && !joinDue {
			c.m.pool.idleWithFD(r)
		}
	}
	return false, exitNone
}

// waitAck is where a step ends when the file has MaxPending batches
// unacked: the ack that frees a slot wakes the reader. Under descriptor
// pressure the file is closed meanwhile.
func (r *reader) waitAck() exit {
	if r.c.ctx.Err() != nil {
		return exitStopped
	}
	r.state.Store(StateWaiting)
	if !r.gone && r.c.m.pool.pressure() && !(r.jn != nil && r.jn.pending()) {
		r.closeFD()
	}
	return exitNone
}

// after wakes the reader in d (d < 0: only events wake it).
func (r *reader) after(d time.Duration) {
	if d < 0 {
		if r.timer != nil {
			r.timer.Stop()
		}
		return
	}
	if r.timer == nil {
		r.timer = time.AfterFunc(d, func() { r.c.m.pool.wake(r) })
		return
	}
	r.timer.Reset(d)
}

// publish hands the batch read so far to the sink. It returns false when
// the reader must stop here: MaxPending batches are unacked (the reader is
// parked and an ack wakes it), or ctx is done.
func (r *reader) publish() bool {
	r.ownLines()
	if len(r.batch) == 0 {
		return true
	}
	r.mu.Lock()
	if len(r.pending) >= r.c.m.cfg.MaxPending {
		r.parked = true
		r.mu.Unlock()
		return false
	}
	r.mu.Unlock()
	p := r.track(r.batchEnd, tailHash(r.f, r.batchEnd), len(r.batch))
	b := pipeline.NewBatch(r.batch, func() { r.ack(p) })
	r.fullBatch = len(r.batch) >= r.c.m.cfg.BatchLines
	r.batch = nil
	return r.c.m.sink.Publish(r.c.ctx, b) == nil
}

// ownLines gives the held records their text: one string for all of
// them, one allocation per read rather than per line. It runs before the
// buffer they are slices of is used again, and before the batch leaves.
func (r *reader) ownLines() {
	if len(r.held) == 0 {
		return
	}
	n := 0
	for _, h := range r.held {
		n += len(h.text)
	}
	var sb strings.Builder
	sb.Grow(n)
	for _, h := range r.held {
		sb.Write(h.text)
	}
	all := sb.String()
	for _, h := range r.held {
		r.batch[h.i].Line, all = all[:len(h.text)], all[len(h.text):]
	}
	clear(r.held)
	r.held = r.held[:0]
}

// closeInactive gives the descriptor back; the file stays followed and is
// opened again when it changes. An unfinished last line is dropped from
// memory and read again then.
func (r *reader) closeInactive() {
	if r.sp.hasPartial() {
		r.pos = r.sp.start
		r.read.Store(r.pos)
	}
	// A fresh splitter: the buffer of a long line read once is not kept.
	r.sp = splitter{max: r.sp.max, start: r.pos, next: r.pos}
	r.closeFD()
	r.after(-1)
	r.state.Store(StateClosed)
}

func (r *reader) closeFD() {
	if r.f != nil {
		r.f.Close()
		r.f = nil
	}
	if r.fdHeld {
		r.fdHeld = false
		r.c.m.pool.releaseFD()
	}
}

// end lets the reader go (x is why) from its own step.
func (r *reader) end(x exit) {
	if x == exitStopped {
		return // the collector is stopping; it releases the reader
	}
	r.c.m.pool.markStopped(r)
	r.release()
	r.c.forget(r, x)
}

// release frees what the reader holds; safe to call twice.
func (r *reader) release() {
	if !r.released.CompareAndSwap(false, true) {
		return
	}
	if r.timer != nil {
		r.timer.Stop()
	}
	r.closeFD()
	r.c.m.pool.dropGrant(r)
	if r.real != "" {
		r.c.m.watch.unregister(r, r.real)
	}
}

// finishGone records that the reader's file left its path and was read up
// to size: a deleted file's entry is pruned once every line is acked; a
// renamed one is remembered where it is now, so that it is not read again.
func (r *reader) finishGone(size int64, isDeleted bool) {
	c := r.c
	if isDeleted {
		c.m.cp.Finish(r.key, size)
		return
	}
	where := r.open
	if r.f != nil {
		if p, err := fdPath(r.f); err == nil && !strings.HasSuffix(p, " (deleted)") {
			where = p
		}
	}
	c.mu.Lock()
	c.parked[r.key] = parkedFile{path: where, di: r.id.devIno, size: size}
	c.mu.Unlock()
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

// stillAtPath reports whether the reader's path still names its file. An
// error other than "not there" means it cannot be known now.
func (r *reader) stillAtPath() (bool, error) {
	fi, err := os.Stat(r.path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return false, nil
		}
		return true, err
	}
	di, ok := devInoOf(fi)
	return ok && di == r.id.devIno, nil
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
	p.done = true
	r.linesAcked.Add(uint64(p.lines))
	r.tot.linesAcked.Add(uint64(p.lines))
	advanced := false
	for len(r.pending) > 0 && r.pending[0].done {
		r.committed, r.tail = r.pending[0].end, r.pending[0].tail
		r.pending[0] = nil
		r.pending = r.pending[1:]
		advanced = true
	}
	if advanced {
		r.c.m.cp.Set(r.key, r.path, r.committed, r.tail)
	}
	wake := r.parked && len(r.pending) < r.c.m.cfg.MaxPending
	if wake {
		r.parked = false
	}
	drained := r.finished && len(r.pending) == 0
	r.mu.Unlock()
	if wake {
		r.c.m.pool.wake(r)
	}
	if drained {
		r.c.drained(r)
	}
}

func (r *reader) setErr(err error) {
	r.mu.Lock()
	changed := r.lastErr != err.Error()
	r.lastErr = err.Error()
	r.mu.Unlock()
	if changed {
		r.c.m.log.Warn("reading file failed; retrying; its new lines wait until the cause is fixed", "path", r.path, "file_id", r.fileID, "err", err)
	}
}

func (r *reader) clearErr() {
	r.mu.Lock()
	r.lastErr = ""
	r.mu.Unlock()
}

func (r *reader) status() FileStatus {
	size := r.size.Load()
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	if dt := now.Sub(r.rateAt); dt >= time.Second {
		n := r.linesAcked.Load()
		r.rate = float64(n-r.rateN) / dt.Seconds()
		r.rateN, r.rateAt = n, now
	}
	var inLines int
	for _, p := range r.pending {
		if !p.done {
			inLines += p.lines
		}
	}
	state, _ := r.state.Load().(string)
	return FileStatus{
		Source:          r.c.src.Name,
		Path:            r.path,
		FileID:          r.fileID,
		State:           state,
		Offset:          r.committed,
		ReadOffset:      r.read.Load(),
		Size:            size,
		LagBytes:        max(size-r.committed, 0),
		BytesRead:       r.bytesRead.Load(),
		LinesRead:       r.linesRead.Load(),
		LinesAcked:      r.linesAcked.Load(),
		InFlightBatches: len(r.pending),
		InFlightLines:   inLines,
		LinesPerSec:     r.rate,
		LastError:       r.lastErr,
		Started:         r.started,
	}
}

// recordZone is the Record.TZ of a line read at ts: the source's zone,
// else the box's (boxZone), else time.Local's UTC offset at ts.
func recordZone(srcZone, boxZone string, ts time.Time) string {
	switch {
	case srcZone != "":
		return srcZone
	case boxZone != "":
		return boxZone
	}
	return ts.In(time.Local).Format("-07:00")
}
