package tailer

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/logbox/logbox/appliance/pipeline"
)

// collector follows the files of one source. Its goroutine scans the
// source's globs; the pool's workers read the files.
type collector struct {
	m      *Manager
	src    pipeline.Source
	parser string // src.Parser.Spec(), stamped on every record
	zone   string // src.Timezone when it names one (not Local)
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	// initMu serializes the decisions about which checkpoint a file
	// carries on (new files, files found after they left their path).
	initMu sync.Mutex

	mu      sync.Mutex
	files   map[devIno]*reader    // followed, by where they live
	keys    map[string]*reader    // by checkpoint key, until their last ack
	copies  map[devIno]time.Time  // first seen, for files that copy a live one
	refused map[string]string     // path → reason
	parked  map[string]parkedFile // key → where a file read to its end was left
	// searched remembers, per key, the modification time of the
	// directory when a search for its content found nothing.
	searched map[string]time.Time
	globs    []globState
	sweep    bool // look for checkpointed files that left their path
	// unidentified counts readers whose first step has not run yet.
	unidentified int
	rescan       bool // expand every glob at the next scan
	lastFull     time.Time
}

// parkedFile is a file that left its path, was read to its end and let
// go; it is looked at again only if it grows.
type parkedFile struct {
	path string
	di   devIno
	size int64
}

// globState is one glob at its last expansion.
type globState struct {
	expanded bool
	dirs     []string
	gens     []uint64
	complete bool
	matches  int
	err      string
}

func newCollector(ctx context.Context, m *Manager, s pipeline.Source) *collector {
	cctx, cancel := context.WithCancel(ctx)
	zone := s.Timezone
	if zone == "Local" {
		zone = "" // the box's zone, as when the source names none
	}
	return &collector{
		m: m, src: s, parser: s.Parser.Spec(), zone: zone, ctx: cctx, cancel: cancel, done: make(chan struct{}),
		files: map[devIno]*reader{}, keys: map[string]*reader{}, copies: map[devIno]time.Time{},
		refused: map[string]string{}, parked: map[string]parkedFile{}, searched: map[string]time.Time{},
		globs: make([]globState, len(s.Paths)), sweep: true,
	}
}

// fullScanEvery is how often a source looks at everything even when no
// change event said so: every glob expanded, every closed file checked by
// stat, every checkpoint of a file not followed looked for.
func (c *collector) fullScanEvery() time.Duration {
	if c.m.cfg.fullScan > 0 {
		return c.m.cfg.fullScan
	}
	return max(time.Minute, 10*c.m.cfg.ScanInterval)
}

func (c *collector) run() {
	defer c.stop()
	t := time.NewTicker(c.m.cfg.ScanInterval)
	defer t.Stop()
	for {
		c.scan()
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
		}
	}
}

// stop releases every reader and watch of the source; ctx is done.
func (c *collector) stop() {
	c.mu.Lock()
	rs := make([]*reader, 0, len(c.files))
	for _, r := range c.files {
		rs = append(rs, r)
	}
	c.mu.Unlock()
	for _, r := range rs {
		c.m.pool.stop(r)
		r.release()
	}
	for i := range c.globs {
		c.m.watch.release(c.globs[i].dirs)
		c.globs[i].dirs = nil
	}
}

func (c *collector) scan() {
	now := time.Now()
	full := now.Sub(c.lastFull) >= c.fullScanEvery()
	if full {
		c.lastFull = now
	}
	c.mu.Lock()
	expandAll := full || c.rescan
	c.rescan = false
	c.mu.Unlock()
	matched := map[string]bool{}
	expandedAll, allWatched := true, true
	for i, pattern := range c.src.Paths {
		g := &c.globs[i]
		if !expandAll && g.complete && c.m.watch.unchanged(g.dirs, g.gens) {
			expandedAll = false
			continue
		}
		res := expandGlob(pattern)
		gens, watched := c.m.watch.retain(res.dirs)
		allWatched = allWatched && watched && res.complete
		c.m.watch.release(g.dirs)
		c.mu.Lock()
		g.expanded, g.dirs, g.gens, g.complete, g.matches = true, res.dirs, gens, res.complete, len(res.matches)
		g.err = ""
		if res.err != nil {
			g.err = res.err.Error()
		}
		c.mu.Unlock()
		for _, path := range res.matches {
			matched[path] = true
			c.maybeStart(path)
		}
	}
	c.mu.Lock()
	if expandedAll {
		for path := range c.refused {
			if !matched[path] {
				delete(c.refused, path)
			}
		}
	}
	var poll []*reader
	if full || !c.m.watch.healthy() || !allWatched {
		// Some changes may come without an event: stat closed files.
		for _, r := range c.files {
			if st, _ := r.state.Load().(string); st == StateClosed && (full || !c.m.watch.watched(r.path)) {
				poll = append(poll, r)
			}
		}
	}
	// While new files are still being identified the sweep cannot tell
	// theirs from lost ones: it waits (a full scan does not).
	sweep := (c.sweep && c.unidentified == 0) || full
	if sweep {
		c.sweep = false
	}
	c.mu.Unlock()

	// Closed files where no event tells of changes: stat them.
	for _, r := range poll {
		fi, err := os.Stat(r.path)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				c.m.pool.wake(r)
			}
			continue
		}
		if di, ok := devInoOf(fi); !ok || di != r.di || fi.Size() != r.read.Load() {
			c.m.pool.wake(r)
		}
	}
	if sweep {
		c.sweepLost()
	}
}

// maybeStart starts following path unless its file is followed already.
// Identifying it (which needs a descriptor) is the reader's first step.
func (c *collector) maybeStart(path string) {
	fi, err := os.Stat(path)
	if err != nil || fi.IsDir() {
		return
	}
	if !fi.Mode().IsRegular() {
		c.refuse(path, &notRegularError{path: path, kind: modeKind(fi.Mode())})
		return
	}
	di, ok := devInoOf(fi)
	if !ok {
		c.refuse(path, errors.New("no device and inode on this platform"))
		return
	}
	c.mu.Lock()
	if _, busy := c.files[di]; busy {
		c.mu.Unlock()
		return
	}
	r := c.newReader(path, di)
	c.files[di] = r
	c.unidentified++
	c.mu.Unlock()
	c.m.pool.wake(r)
}

// refuse records why path is not read; it shows in Status.
func (c *collector) refuse(path string, err error) {
	c.mu.Lock()
	c.refused[path] = err.Error()
	c.mu.Unlock()
}

// forget drops a reader that ended (x says why).
func (c *collector) forget(r *reader, x exit) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.files[r.di] == r {
		delete(c.files, r.di)
	}
	if !r.inited {
		c.unidentified--
	}
	if x == exitGone || x == exitTruncated || (x == exitRetry && r.found) {
		c.sweep = true
	}
	if x != exitLater {
		// Its path may hold a file to read now; no event will say so.
		c.rescan = true
	}
	r.mu.Lock()
	r.finished = true
	drained := len(r.pending) == 0
	r.mu.Unlock()
	if drained && r.key != "" && c.keys[r.key] == r {
		delete(c.keys, r.key)
	}
}

// drained is called when a reader that ended has its last batch acked.
func (c *collector) drained(r *reader) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.keys[r.key] == r {
		delete(c.keys, r.key)
		c.sweep = true
	}
}

func modeKind(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "FIFO"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeCharDevice != 0:
		return "character device"
	case m&fs.ModeDevice != 0:
		return "block device"
	}
	return "special file"
}

// keyBusy reports whether another reader carries key on. A reader that
// ended and only waits for acks does not: a copy may carry its content on
// at once (lines it re-reads keep their IDs, so the index holds them once).
func (c *collector) keyBusy(key string, self *reader) bool {
	c.mu.Lock()
	r, ok := c.keys[key]
	c.mu.Unlock()
	if !ok || r == self {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return !r.finished
}

// copyOfLiveFile reports whether a new file has the first line of a file
// being read. copytruncate copies before it truncates: for RotateWait such
// a file is left alone, so that once the original is truncated the copy
// carries on under its identity instead of being read again as new.
func (c *collector) copyOfLiveFile(di devIno, id identity) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	live := false
	for other, r := range c.files {
		if other != di && r.inited && r.id.fp == id.fp {
			live = true
			break
		}
	}
	if !live {
		delete(c.copies, di)
		return false
	}
	first, seen := c.copies[di]
	if !seen {
		c.copies[di] = time.Now()
		return true
	}
	return time.Since(first) < c.m.cfg.RotateWait
}

// adoptable finds a checkpoint this file can carry on from: same source and
// first-line fingerprint, content gone from the file it was read from
// (retired, or its path now holds something else), and the bytes before
// its offset equal to this file's bytes there.
func (c *collector) adoptable(f *os.File, id identity, size int64) (string, bool) {
	prefix := c.src.Name + "/"
	suffix := fmt.Sprintf("-%016x", id.fp)
	return c.m.cp.Candidates(prefix, suffix, func(key, path string, offset int64, tail uint64, retired bool) bool {
		if offset > size || (offset > 0 && tailHash(f, offset) != tail) || (offset == 0 && !retired) {
			return false
		}
		fileID := strings.TrimPrefix(key, prefix)
		if fileID == id.String() {
			return false
		}
		if c.keyBusy(key, nil) {
			return false // still being read
		}
		if retired {
			return true
		}
		// Not retired: the content left its file while logbox was down.
		now, err := FileID(path)
		return err != nil || now != fileID
	})
}

// sweepLost looks for the files of this source's checkpoints that nothing
// follows and that are no longer at their path: renamed while logbox was
// down (or while closed), or whose content was copied aside (copytruncate)
// to a name no glob matches. Such a file is found by identity in the
// directory it was in — device and inode plus first-line fingerprint, or
// for a copy the fingerprint and the bytes before the checkpoint — read to
// its end from the checkpoint, and let go. So a rotation while logbox was
// down loses nothing, whatever the glob. A file found nowhere is gone: its
// entry is pruned if every line of it was read, else kept (retired) for a
// while in case a copy shows up.
func (c *collector) sweepLost() {
	prefix := c.src.Name + "/"
	type entry struct {
		key, path string
		off       int64
		tail      uint64
		retired   bool
	}
	var es []entry
	c.m.cp.Candidates(prefix, "", func(key, path string, off int64, tail uint64, retired bool) bool {
		es = append(es, entry{key, path, off, tail, retired})
		return false
	})
	// Forget what is remembered about entries that were pruned.
	have := make(map[string]bool, len(es))
	for _, e := range es {
		have[e.key] = true
	}
	c.mu.Lock()
	for k := range c.parked {
		if !have[k] {
			delete(c.parked, k)
		}
	}
	for k := range c.searched {
		if !have[k] {
			delete(c.searched, k)
		}
	}
	c.mu.Unlock()
	c.initMu.Lock()
	defer c.initMu.Unlock()
	dirs := map[string]*dirIndex{}
	for _, e := range es {
		if c.ctx.Err() != nil {
			return
		}
		c.mu.Lock()
		_, followed := c.keys[e.key]
		pk, parked := c.parked[e.key]
		c.mu.Unlock()
		if followed {
			continue
		}
		id, ok := parseFileID(strings.TrimPrefix(e.key, prefix))
		if !ok {
			continue
		}
		// Where it was last seen, if it was read to its end before.
		if parked {
			if fi, err := os.Stat(pk.path); err == nil {
				if di, _ := devInoOf(fi); di == pk.di && (fi.Size() == pk.size || c.holds(pk.path, id.fp)) {
					if fi.Size() > e.off {
						c.startFound(pk.path, di, e.key)
					}
					continue
				}
			}
		}
		// At its path?
		left := false // its content left the inode (rewritten in place)
		if fi, err := os.Stat(e.path); err == nil {
			if di, _ := devInoOf(fi); di == id.devIno {
				c.mu.Lock()
				r := c.files[di]
				pending := r != nil && !r.inited
				c.mu.Unlock()
				switch {
				case r == nil:
					if c.holds(e.path, id.fp) {
						continue // there, not followed (not matched now, or refused)
					}
					left = true // rewritten in place (and not identified yet)
				case pending:
					c.mu.Lock()
					c.sweep = true // not identified yet; look again next scan
					c.mu.Unlock()
					continue
				default:
					left = true // followed under another identity: rewritten
				}
			}
		}
		dir := filepath.Dir(e.path)
		d := dirs[dir]
		if d == nil {
			d = readDirIndex(dir)
			dirs[dir] = d
		}
		// Renamed, in the same directory?
		if !left && !e.retired {
			if p, size, ok := c.renamedIn(d, id); ok {
				c.mu.Lock()
				_, busy := c.files[id.devIno]
				c.mu.Unlock()
				if busy {
					continue
				}
				if size > e.off {
					c.startFound(p, id.devIno, e.key)
				} else {
					c.mu.Lock()
					c.parked[e.key] = parkedFile{path: p, di: id.devIno, size: size}
					c.mu.Unlock()
				}
				continue
			}
		}
		// Copied aside (copytruncate, or a move across file systems)?
		c.mu.Lock()
		last, searched := c.searched[e.key]
		c.mu.Unlock()
		if !(searched && last.Equal(d.mtime)) {
			if p, di, size, ok := c.findCopy(d, dir, e.path, id, e.off, e.tail); ok {
				if size > e.off {
					c.m.log.Info("content of a checkpointed file found in a copy; reading it from the checkpoint", "path", e.path, "copy", p, "file_id", strings.TrimPrefix(e.key, prefix))
					c.startFound(p, di, e.key)
				} else {
					c.mu.Lock()
					c.parked[e.key] = parkedFile{path: p, di: di, size: size}
					c.mu.Unlock()
				}
				continue
			}
			c.mu.Lock()
			c.searched[e.key] = d.mtime
			c.mu.Unlock()
		}
		// Found nowhere: gone.
		switch {
		case parked && pk.size <= e.off:
			c.m.cp.Finish(e.key, pk.size)
			c.mu.Lock()
			delete(c.parked, e.key)
			delete(c.searched, e.key)
			c.mu.Unlock()
		case !e.retired:
			c.m.cp.Retire(e.key)
		}
	}
}

// renamedIn finds the file with identity id in the directory d lists (a
// file renamed there): the listing's inode numbers name the candidate, so
// no other file is looked at.
func (c *collector) renamedIn(d *dirIndex, id identity) (path string, size int64, ok bool) {
	name, ok := d.byIno[id.ino]
	if !ok {
		return "", 0, false
	}
	di, size, ok := d.stat(name)
	if !ok || di != id.devIno {
		return "", 0, false
	}
	path = filepath.Join(d.dir, name)
	return path, size, c.holds(path, id.fp)
}

// holds reports whether the file at path has the first-line fingerprint
// fp (the same content, not a reused inode).
func (c *collector) holds(path string, fp uint64) bool {
	f, _, err := openFile(path, c.m.cfg.Allowed)
	if err != nil {
		return false
	}
	defer f.Close()
	id, err := identify(f)
	return err == nil && id.fp == fp
}

// startFound follows the file at path, which carries on key, to its end.
func (c *collector) startFound(path string, di devIno, key string) {
	c.mu.Lock()
	if _, busy := c.files[di]; busy {
		c.mu.Unlock()
		return
	}
	r := c.newReader(path, di)
	r.adopt, r.found = key, true
	c.files[di] = r
	c.unidentified++
	delete(c.parked, key)
	c.mu.Unlock()
	c.m.log.Info("checkpointed file left its path; reading it to its end where it is now", "path", path, "file_id", strings.TrimPrefix(key, c.src.Name+"/"))
	c.m.pool.wake(r)
}

// findCopy looks in dir for a copy of the content of the file that was at
// orig (identity id, read up to off, tail the hash of the bytes before
// off): a regular file no reader follows, named like orig (its name
// starts with orig's name up to the first dot), at least off bytes long,
// with the same first line and the same bytes before off.
func (c *collector) findCopy(d *dirIndex, dir, orig string, id identity, off int64, tail uint64) (string, devIno, int64, bool) {
	stem := filepath.Base(orig)
	if i := strings.IndexByte(stem, '.'); i > 0 {
		stem = stem[:i]
	}
	for _, ent := range d.ents {
		name := ent.name
		if !strings.HasPrefix(name, stem) || ent.ino == id.ino || !ent.maybeRegular() {
			continue
		}
		di, size, regular := d.stat(name)
		if !regular || di == id.devIno || size < off {
			continue
		}
		c.mu.Lock()
		_, busy := c.files[di]
		c.mu.Unlock()
		if busy {
			continue
		}
		p := filepath.Join(dir, name)
		f, _, err := openFile(p, c.m.cfg.Allowed)
		if err != nil {
			continue
		}
		got, err := identify(f)
		ok := err == nil && got.fp == id.fp && (off == 0 || tailHash(f, off) == tail)
		f.Close()
		if ok {
			return p, di, size, true
		}
	}
	return "", devIno{}, 0, false
}

// dirIndex is one listing of a directory, with inode numbers; sizes are
// looked up (lstat) only for the names that matter.
type dirIndex struct {
	dir   string
	ents  []dirEnt
	byIno map[uint64]string
	mtime time.Time
	stats map[string]os.FileInfo
}

func readDirIndex(dir string) *dirIndex {
	d := &dirIndex{dir: dir, byIno: map[uint64]string{}, stats: map[string]os.FileInfo{}}
	if fi, err := os.Stat(dir); err == nil {
		d.mtime = fi.ModTime()
	}
	d.ents, _ = listDir(dir)
	for _, e := range d.ents {
		if e.maybeRegular() {
			d.byIno[e.ino] = e.name
		}
	}
	return d
}

// stat returns name's devIno and size, if it is a regular file.
func (d *dirIndex) stat(name string) (devIno, int64, bool) {
	fi, ok := d.stats[name]
	if !ok {
		fi, _ = os.Lstat(filepath.Join(d.dir, name))
		d.stats[name] = fi
	}
	if fi == nil || !fi.Mode().IsRegular() {
		return devIno{}, 0, false
	}
	di, ok := devInoOf(fi)
	return di, fi.Size(), ok
}

func (c *collector) status() []FileStatus {
	c.mu.Lock()
	rs := make([]*reader, 0, len(c.files))
	for _, r := range c.files {
		rs = append(rs, r)
	}
	refused := make(map[string]string, len(c.refused))
	for p, why := range c.refused {
		refused[p] = why
	}
	c.mu.Unlock()
	out := make([]FileStatus, 0, len(rs)+len(refused))
	for _, r := range rs {
		out = append(out, r.status())
	}
	for path, why := range refused {
		out = append(out, FileStatus{Source: c.src.Name, Path: path, LastError: why})
	}
	return out
}

func (c *collector) sourceStatus() SourceStatus {
	s := SourceStatus{Name: c.src.Name}
	c.mu.Lock()
	defer c.mu.Unlock()
	total, expanded := 0, true
	for i, glob := range c.src.Paths {
		g := c.globs[i]
		s.Paths = append(s.Paths, PathStatus{Glob: glob, Matches: g.matches, Error: g.err})
		total += g.matches
		expanded = expanded && g.expanded
	}
	for _, r := range c.files {
		s.Files++
		switch st, _ := r.state.Load().(string); st {
		case StateQueued:
			s.Queued++
		case StateClosed:
		default:
			s.Open++
		}
	}
	if total == 0 && expanded {
		s.NoMatch = true
		s.Warning = "its paths match no file: check the globs (and that logbox may read their directories)"
	}
	return s
}
