// Package tailer finds the files a source names, follows them with
// github.com/nxadm/tail, and hands their lines to a pipeline.Sink in
// batches.
//
// Delivery contract: a file's offset is checkpointed only after every line
// before it was acked by the sink. Batches of one file may be acked out of
// order; the checkpoint advances over the longest acked prefix only.
package tailer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/logbox/logbox/appliance/pipeline"
)

// Checkpoints is where acked offsets are kept. Keys are source name + "/"
// + file identity, so two sources reading one file keep their own place.
type Checkpoints interface {
	Offset(key string) (int64, bool)
	// Set records the acked offset and a hash of the bytes before it.
	Set(key, path string, offset int64, tail uint64)
	// Retire keeps the entry of content that left its file (truncated or
	// deleted), so a copy of that content can carry on from it; Adopt
	// makes it live again.
	Retire(key string)
	Adopt(key string)
	// Candidates offers the entries with the key prefix and suffix to fn
	// until it accepts one.
	Candidates(prefix, suffix string, fn func(key, path string, offset int64, tail uint64, retired bool) bool) (string, bool)
}

// Config tunes the tailer. Zero values take the defaults noted.
type Config struct {
	// Host is stamped on every record.
	Host string
	// ScanInterval is how often globs are expanded to find new files (1s).
	ScanInterval time.Duration
	// BatchLines caps the lines of one batch (1000).
	BatchLines int
	// RotateWait is how long a rotated or deleted file is still read after
	// its last write before it is closed (2s).
	RotateWait time.Duration
	// PartialLineIdle ships a last line that has no newline after this long
	// without new data; 0 waits for the newline however long it takes.
	PartialLineIdle time.Duration
	// MaxPending bounds the unacked batches per file; a file whose limit is
	// reached stops reading until acks arrive (16).
	MaxPending int
	// Allowed, if set, is asked before a file is opened; a refused file is
	// not read and its error shows in Status.
	Allowed func(path string) error
}

func (c *Config) setDefaults() {
	if c.ScanInterval <= 0 {
		c.ScanInterval = time.Second
	}
	if c.BatchLines <= 0 {
		c.BatchLines = 1000
	}
	if c.RotateWait <= 0 {
		c.RotateWait = 2 * time.Second
	}
	if c.MaxPending <= 0 {
		c.MaxPending = 16
	}
}

// Manager runs one collector per active source. Apply changes the set at
// any time; only sources whose settings changed are restarted.
type Manager struct {
	cfg  Config
	sink pipeline.Sink
	cp   Checkpoints
	log  *slog.Logger

	mu      sync.Mutex
	desired []pipeline.Source
	changed chan struct{}
	running map[string]*collector

	countMu sync.Mutex
	counts  map[string]map[string]uint64 // source → reason → lines
	totals  map[string]*sourceTotals
}

type sourceTotals struct{ linesRead, linesAcked, bytesRead atomic.Uint64 }

// SourceTotals are monotonic counters of one source since start.
type SourceTotals struct {
	LinesRead  uint64 `json:"lines_read"`
	LinesAcked uint64 `json:"lines_acked"`
	BytesRead  uint64 `json:"bytes_read"`
}

func (m *Manager) sourceTotals(source string) *sourceTotals {
	m.countMu.Lock()
	defer m.countMu.Unlock()
	t := m.totals[source]
	if t == nil {
		t = &sourceTotals{}
		m.totals[source] = t
	}
	return t
}

// Totals returns lines read, lines acked and bytes read per source since
// start (files that came and went included).
func (m *Manager) Totals() map[string]SourceTotals {
	m.countMu.Lock()
	defer m.countMu.Unlock()
	out := make(map[string]SourceTotals, len(m.totals))
	for s, t := range m.totals {
		out[s] = SourceTotals{LinesRead: t.linesRead.Load(), LinesAcked: t.linesAcked.Load(), BytesRead: t.bytesRead.Load()}
	}
	return out
}

// count records a line not delivered exactly as written (or a file event
// such as a truncation), by source and reason.
func (m *Manager) count(source, reason string) {
	m.countMu.Lock()
	defer m.countMu.Unlock()
	if m.counts[source] == nil {
		m.counts[source] = map[string]uint64{}
	}
	m.counts[source][reason]++
}

// Undelivered returns, per source and reason, how many lines were not
// delivered exactly as written since start (truncated, bytes replaced, ...).
func (m *Manager) Undelivered() map[string]map[string]uint64 {
	m.countMu.Lock()
	defer m.countMu.Unlock()
	out := make(map[string]map[string]uint64, len(m.counts))
	for s, r := range m.counts {
		out[s] = make(map[string]uint64, len(r))
		for k, v := range r {
			out[s][k] = v
		}
	}
	return out
}

// New returns a manager; it starts nothing until Run.
func New(cfg Config, sink pipeline.Sink, cp Checkpoints, log *slog.Logger) *Manager {
	cfg.setDefaults()
	return &Manager{
		cfg:     cfg,
		sink:    sink,
		cp:      cp,
		log:     log.With("component", "tailer"),
		changed: make(chan struct{}, 1),
		running: map[string]*collector{},
		counts:  map[string]map[string]uint64{},
		totals:  map[string]*sourceTotals{},
	}
}

// Apply sets the sources to collect. Sources that are paused or scoped to
// other hosts are not run. It does not block.
func (m *Manager) Apply(sources []pipeline.Source) {
	m.mu.Lock()
	m.desired = append([]pipeline.Source(nil), sources...)
	m.mu.Unlock()
	select {
	case m.changed <- struct{}{}:
	default:
	}
}

// Run collects until ctx is done, then stops every collector and waits for
// them. Lines in flight when it returns may be unacked; they are read again
// after a restart.
func (m *Manager) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for {
		select {
		case <-ctx.Done():
			m.mu.Lock()
			for name, c := range m.running {
				c.cancel()
				delete(m.running, name)
			}
			m.mu.Unlock()
			wg.Wait()
			return nil
		case <-m.changed:
			m.reconcile(ctx, &wg)
		}
	}
}

func (m *Manager) reconcile(ctx context.Context, wg *sync.WaitGroup) {
	m.mu.Lock()
	defer m.mu.Unlock()
	want := map[string]pipeline.Source{}
	for _, s := range m.desired {
		if !s.Paused && s.RunsOn(m.cfg.Host) {
			want[s.Name] = s
		}
	}
	for name, c := range m.running {
		if s, ok := want[name]; !ok || !reflect.DeepEqual(s, c.src) {
			c.cancel()
			<-c.done
			delete(m.running, name)
			m.log.Info("source stopped", "source", name)
		}
	}
	for name, s := range want {
		if _, ok := m.running[name]; ok {
			continue
		}
		cctx, cancel := context.WithCancel(ctx)
		c := &collector{m: m, src: s, cancel: cancel, done: make(chan struct{}), files: map[devIno]*reader{}, copies: map[devIno]time.Time{}}
		m.running[name] = c
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(c.done)
			c.run(cctx)
		}()
		m.log.Info("source started", "source", name, "paths", strings.Join(s.Paths, ","))
	}
}

// FileStatus is what Status reports per followed file.
type FileStatus struct {
	Source      string    `json:"source"`
	Path        string    `json:"path"`
	FileID      string    `json:"file_id"`
	Offset      int64     `json:"offset"`
	ReadOffset  int64     `json:"read_offset"`
	Size        int64     `json:"size"`
	LagBytes    int64     `json:"lag_bytes"`
	LinesRead   uint64    `json:"lines_read"`
	LinesAcked  uint64    `json:"lines_acked"`
	LinesPerSec float64   `json:"lines_per_sec"`
	LastError   string    `json:"last_error,omitempty"`
	Started     time.Time `json:"started"`
}

// Status reports every file currently followed, and files refused.
func (m *Manager) Status() []FileStatus {
	m.mu.Lock()
	cs := make([]*collector, 0, len(m.running))
	for _, c := range m.running {
		cs = append(cs, c)
	}
	m.mu.Unlock()
	var out []FileStatus
	for _, c := range cs {
		out = append(out, c.status()...)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Source != out[j].Source {
			return out[i].Source < out[j].Source
		}
		return out[i].Path < out[j].Path
	})
	return out
}

// collector follows the files of one source.
type collector struct {
	m      *Manager
	src    pipeline.Source
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	files   map[devIno]*reader   // being read, by where they live
	copies  map[devIno]time.Time // first seen, for files that copy a live one
	refused map[string]string    // path → reason
}

func (c *collector) run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	t := time.NewTicker(c.m.cfg.ScanInterval)
	defer t.Stop()
	for {
		c.scan(ctx, &wg)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (c *collector) scan(ctx context.Context, wg *sync.WaitGroup) {
	refused := map[string]string{}
	for _, pattern := range c.src.Paths {
		matches, err := filepath.Glob(pattern)
		if err != nil {
			refused[pattern] = err.Error()
			continue
		}
		for _, path := range matches {
			if why := c.maybeStart(ctx, wg, path); why != "" {
				refused[path] = why
			}
		}
	}
	c.mu.Lock()
	c.refused = refused
	c.mu.Unlock()
}

// maybeStart starts a reader for path unless its file is already being
// read or not ready. It returns why the file is refused, if it is.
func (c *collector) maybeStart(ctx context.Context, wg *sync.WaitGroup, path string) string {
	fi, err := os.Stat(path)
	if err != nil || !fi.Mode().IsRegular() {
		return ""
	}
	di, ok := devInoOf(fi)
	if !ok {
		return "no device and inode on this platform"
	}
	c.mu.Lock()
	_, busy := c.files[di]
	c.mu.Unlock()
	if busy {
		return ""
	}
	if c.m.cfg.Allowed != nil {
		if err := c.m.cfg.Allowed(path); err != nil {
			return err.Error()
		}
	}
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	id, err := identify(f)
	if err == nil && id.devIno != di {
		err = errNotReady // replaced between stat and open; next scan
	}
	if err != nil {
		f.Close()
		if errors.Is(err, errNotReady) {
			return ""
		}
		return err.Error()
	}
	fileID := id.String()
	key := c.src.Name + "/" + fileID
	if c.copyOfLiveFile(di, id) {
		f.Close()
		return ""
	}
	if _, known := c.m.cp.Offset(key); !known {
		// A new identity may be a copy of content whose file was
		// truncated or deleted (copytruncate, a move across file systems):
		// it then carries on under the old identity, from the old offset.
		if k, ok := c.adoptable(f, id, fi.Size()); ok {
			key, fileID = k, strings.TrimPrefix(k, c.src.Name+"/")
			c.m.log.Info("file continues content that left another file; reading on from its checkpoint", "path", path, "file_id", fileID)
		}
	}
	c.m.cp.Adopt(key)
	r := c.newReader(path, f, id, fileID, fi.Size())
	// The entry exists from the start (at the offset reading resumes
	// from), so a copy made before anything is acked can still find it.
	c.m.cp.Set(key, path, r.committed, tailHash(f, r.committed))
	c.mu.Lock()
	c.files[di] = r
	c.mu.Unlock()
	wg.Add(1)
	go func() {
		defer wg.Done()
		r.run(ctx)
		c.mu.Lock()
		delete(c.files, di)
		c.mu.Unlock()
	}()
	return ""
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
		if other != di && r.id.fp == id.fp {
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
		c.mu.Lock()
		for _, r := range c.files {
			if r.fileID == fileID {
				c.mu.Unlock()
				return false // still being read
			}
		}
		c.mu.Unlock()
		if retired {
			return true
		}
		// Not retired: the content left its file while logbox was down.
		now, err := FileID(path)
		return err != nil || now != fileID
	})
}

func (c *collector) status() []FileStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]FileStatus, 0, len(c.files)+len(c.refused))
	for _, r := range c.files {
		out = append(out, r.status())
	}
	for path, why := range c.refused {
		out = append(out, FileStatus{Source: c.src.Name, Path: path, LastError: why})
	}
	return out
}
