package ingest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// idEntry is one remembered identity: the line's key and the offset it
// was given.
type idEntry struct {
	key uint64
	off int64
}

const entrySize = 16 // key and offset, little-endian

// segment is one file of the id log: the entries written from start on,
// until the next segment began.
type segment struct {
	path  string
	start time.Time
	keys  []uint64
}

// idLog remembers identities for Window, at most maxIDs of them, in
// memory and in segment files "ids-<unix nanos>.log" under dir (none when
// dir is empty). A new segment begins every window/4 or maxIDs/4
// entries; a segment is deleted once its newest entry is older than the
// window, or to keep under maxIDs. Appends happen under the Acceptor's
// mutex; sync may run beside them.
type idLog struct {
	dir           string
	window        time.Duration
	maxIDs        int
	ids           map[uint64]int64
	segs          []*segment // oldest first; the last is written
	maxOffset     int64      // the highest offset read back at open
	buf           []byte
	mu            sync.Mutex // guards cur, toSync, written
	cur           *os.File
	toSync        []*os.File // rotated files not yet synced and closed
	written       uint64
	syncMu        sync.Mutex
	synced        uint64
	failed, shut  bool
	lastSyncError error
}

func segName(start time.Time) string {
	return "ids-" + strconv.FormatInt(start.UnixNano(), 10) + ".log"
}

func openIDLog(dir string, window time.Duration, maxIDs int, now time.Time) (*idLog, error) {
	l := &idLog{dir: dir, window: window, maxIDs: maxIDs, ids: map[uint64]int64{}}
	if dir == "" {
		l.segs = []*segment{{start: now}}
		return l, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create id log dir: %w", err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read id log dir: %w", err)
	}
	var names []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "ids-") && strings.HasSuffix(e.Name(), ".log") {
			names = append(names, e.Name())
		}
	}
	sort.Slice(names, func(i, j int) bool { return segStart(names[i]).Before(segStart(names[j])) })
	for _, n := range names {
		p := filepath.Join(dir, n)
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("read id log %s: %w", n, err)
		}
		s := &segment{path: p, start: segStart(n)}
		// A torn last entry (a crash mid-write) is left out: its batch
		// was never handed on, since the log is synced first.
		for i := 0; i+entrySize <= len(data); i += entrySize {
			k := binary.LittleEndian.Uint64(data[i:])
			off := int64(binary.LittleEndian.Uint64(data[i+8:]))
			l.ids[k] = off
			s.keys = append(s.keys, k)
			l.maxOffset = max(l.maxOffset, off)
		}
		l.segs = append(l.segs, s)
	}
	if err := l.rotate(now); err != nil {
		return nil, err
	}
	l.expire(now)
	return l, nil
}

// segStart reads a segment's start from its name (zero when it has
// none: such a file expires first).
func segStart(name string) time.Time {
	n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimPrefix(name, "ids-"), ".log"), 10, 64)
	if err != nil {
		return time.Time{}
	}
	return time.Unix(0, n)
}

func (l *idLog) len() int { return len(l.ids) }

func (l *idLog) get(k uint64) (int64, bool) {
	off, ok := l.ids[k]
	return off, ok
}

// rotate begins a new segment.
func (l *idLog) rotate(now time.Time) error {
	s := &segment{start: now}
	if l.dir != "" {
		s.path = filepath.Join(l.dir, segName(now))
		f, err := os.OpenFile(s.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return fmt.Errorf("create id log segment: %w", err)
		}
		l.mu.Lock()
		if l.cur != nil {
			l.toSync = append(l.toSync, l.cur)
		}
		l.cur = f
		l.mu.Unlock()
	}
	l.segs = append(l.segs, s)
	return nil
}

// expire forgets the segments whose newest entry is older than the
// window, and the oldest ones while more than maxIDs are remembered.
func (l *idLog) expire(now time.Time) {
	for len(l.segs) > 1 {
		old, next := l.segs[0], l.segs[1]
		if now.Sub(next.start) <= l.window && len(l.ids) <= l.maxIDs {
			return
		}
		for _, k := range old.keys {
			delete(l.ids, k)
		}
		if old.path != "" {
			if err := os.Remove(old.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				// Read back at the next start and expired then.
				_ = err
			}
		}
		l.segs = l.segs[1:]
	}
}

// append remembers es and writes them to the current segment (not yet
// synced).
func (l *idLog) append(es []idEntry, now time.Time) error {
	if l.shut {
		return errors.New("id log closed")
	}
	cur := l.segs[len(l.segs)-1]
	if now.Sub(cur.start) > l.window/4 || len(cur.keys) >= max(l.maxIDs/4, 1) {
		if err := l.rotate(now); err != nil {
			return err
		}
		cur = l.segs[len(l.segs)-1]
	}
	if len(es) == 0 {
		l.expire(now)
		return nil
	}
	l.buf = l.buf[:0]
	for _, e := range es {
		l.ids[e.key] = e.off
		cur.keys = append(cur.keys, e.key)
		l.buf = binary.LittleEndian.AppendUint64(l.buf, e.key)
		l.buf = binary.LittleEndian.AppendUint64(l.buf, uint64(e.off))
	}
	l.expire(now)
	if l.dir == "" {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, err := l.cur.Write(l.buf); err != nil {
		// The entries stay in memory: a retry in this process is still
		// recognised; after a restart it may be indexed twice.
		return fmt.Errorf("write id log: %w", err)
	}
	l.written++
	return nil
}

// sync makes every entry appended so far durable; calls running at once
// share one fsync.
func (l *idLog) sync() error {
	if l.dir == "" {
		return nil
	}
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	l.mu.Lock()
	target, f, old := l.written, l.cur, l.toSync
	l.toSync = nil
	l.mu.Unlock()
	var errs []error
	for _, o := range old {
		if err := o.Sync(); err != nil {
			errs = append(errs, err)
		}
		_ = o.Close()
	}
	if l.synced < target && f != nil {
		if err := f.Sync(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sync id log: %w", err)
	}
	l.synced = target
	return nil
}

func (l *idLog) close() error {
	l.shut = true
	if l.dir == "" {
		return nil
	}
	err := l.sync()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cur != nil {
		err = errors.Join(err, l.cur.Close())
		l.cur = nil
	}
	return err
}
