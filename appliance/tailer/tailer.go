// Package tailer finds the files a source names, follows them, and hands
// their lines to a pipeline.Sink in batches.
//
// Delivery contract: a file's offset is checkpointed only after every line
// before it was acked by the sink. Batches of one file may be acked out of
// order; the checkpoint advances over the longest acked prefix only.
//
// Files:
//   - tailer.go: Manager (sources in, status out), Config.
//   - collector.go: one source: glob scans, new files, files that left
//     their path while logbox was down (the sweep), checkpoint adoption.
//   - reader.go: one file: reading, rotation, backpressure, acks.
//   - pool.go: the worker goroutines that run every reader, and the
//     descriptor budget. A followed file costs memory only (no goroutine).
//   - watch.go: change events (fsnotify, on directories), polling fallback.
//   - glob.go: glob expansion with `**`.
//   - open_linux.go: opening without trusting the path (symlink swaps,
//     FIFOs).
//   - identity.go, split.go, multiline.go: file identity, lines, events.
package tailer

import (
	"context"
	"log/slog"
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
	// Finish says key's file is gone from disk and was size bytes long:
	// once every line is acked (offset >= size) the entry may be pruned.
	Finish(key string, size int64)
	// KeepSources names every source that exists (paused ones too); the
	// entries of other sources may be pruned after a grace period.
	KeepSources(names []string)
}

// Config tunes the tailer. Zero values take the defaults noted.
type Config struct {
	// Host is stamped on every record.
	Host string
	// Zone is the IANA name of this box's time zone, stamped (Record.TZ)
	// on the records of sources that name no timezone, so the index reads
	// a time written without a zone as this box wrote it. Empty: the UTC
	// offset of time.Local when the line is read ("+08:00").
	Zone string
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
	// Allowed, if set, is asked about every file before it is read, with
	// the file's real path as its open descriptor resolves it (symlinks
	// followed, so a symlink swapped after a check changes nothing); it
	// must judge the path as given, without looking at the file system. A
	// refused file is not read and its error shows in Status.
	Allowed func(realPath string) error
	// CloseInactive closes a file that had no new data for this long; it
	// stays followed at its place and is opened again, by identity, when
	// it changes (5m).
	CloseInactive time.Duration
	// MaxOpenFiles caps the files open at once; files beyond wait in a
	// queue, shown in Summary. 0 derives it from RLIMIT_NOFILE (see
	// FileDescriptorBudget).
	MaxOpenFiles int
	// Workers is how many goroutines read files (4).
	Workers int

	// noWatch turns change events off (tests of the polling fallback).
	noWatch bool
	// fullScan overrides how often everything is looked at (tests).
	fullScan time.Duration
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
	if c.CloseInactive <= 0 {
		c.CloseInactive = 5 * time.Minute
	}
	if c.MaxOpenFiles <= 0 {
		c.MaxOpenFiles, _ = FileDescriptorBudget()
	}
	if c.Workers <= 0 {
		c.Workers = 4
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
	pool    *pool       // set by Run before any collector starts
	watch   *dirWatcher // likewise

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
// after a restart. It starts Config.Workers reader goroutines and one
// watcher goroutine, however many files are followed.
func (m *Manager) Run(ctx context.Context) error {
	p := newPool(m.cfg.Workers, m.cfg.MaxOpenFiles, readBufSize)
	w := newDirWatcher(p, m.log, m.cfg.noWatch)
	m.mu.Lock()
	m.pool, m.watch = p, w
	m.mu.Unlock()
	wctx, stopWatch := context.WithCancel(context.Background())
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		w.run(wctx)
	}()
	defer func() {
		stopWatch()
		<-watchDone
		p.close()
	}()
	m.log.Info("tailer running", "max_open_files", m.cfg.MaxOpenFiles, "close_inactive", m.cfg.CloseInactive, "changes", w.mode())
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

// present names the sources last applied that collect on this host or are
// paused: those whose checkpoints are kept. m.mu is held.
func (m *Manager) present() []string {
	var names []string
	for _, s := range m.desired {
		if s.Paused || s.RunsOn(m.cfg.Host) {
			names = append(names, s.Name)
		}
	}
	return names
}

// Present names the sources last applied that collect on this host, or
// would when resumed (paused ones).
func (m *Manager) Present() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.present()
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
	m.cp.KeepSources(m.present())
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
		c := newCollector(ctx, m, s)
		m.running[name] = c
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(c.done)
			c.run()
		}()
		m.log.Info("source started", "source", name, "paths", strings.Join(s.Paths, ","))
	}
}

// FileStatus is what Status reports per followed file. Counters are since
// the file was picked up by this process.
type FileStatus struct {
	Source string `json:"source"`
	Path   string `json:"path"`
	FileID string `json:"file_id"`
	// State is one of the State* constants ("" for a refused path).
	State string `json:"state,omitempty"`
	// Offset is the acked (checkpointed) offset: every line before it is
	// delivered. ReadOffset is how far the file was read.
	Offset     int64  `json:"offset"`
	ReadOffset int64  `json:"read_offset"`
	Size       int64  `json:"size"`
	LagBytes   int64  `json:"lag_bytes"`
	BytesRead  uint64 `json:"bytes_read"`
	LinesRead  uint64 `json:"lines_read"`
	LinesAcked uint64 `json:"lines_acked"`
	// In flight: handed to the sink, not acked yet.
	InFlightBatches int       `json:"in_flight_batches"`
	InFlightLines   int       `json:"in_flight_lines"`
	LinesPerSec     float64   `json:"lines_per_sec"`
	LastError       string    `json:"last_error,omitempty"`
	Started         time.Time `json:"started"`
}

// SourceStatus is what Sources reports per running source.
type SourceStatus struct {
	Name  string       `json:"name"`
	Paths []PathStatus `json:"paths"`
	// Files followed, and of those how many are open and queued for a
	// descriptor.
	Files  int `json:"files"`
	Open   int `json:"open"`
	Queued int `json:"queued"`
	// NoMatch: none of the source's globs matches a file.
	NoMatch bool   `json:"no_match"`
	Warning string `json:"warning,omitempty"`
}

// PathStatus is one glob of a source at its last expansion.
type PathStatus struct {
	Glob    string `json:"glob"`
	Matches int    `json:"matches"`
	Error   string `json:"error,omitempty"`
}

// Summary is the tailer as a whole.
type Summary struct {
	// Files followed (open or not), open, and waiting for a descriptor.
	Files       int `json:"files"`
	OpenFiles   int `json:"open_files"`
	QueuedFiles int `json:"queued_files"`
	// FileBudget is the most files open at once (Config.MaxOpenFiles).
	FileBudget    int    `json:"file_budget"`
	CloseInactive string `json:"close_inactive"`
	// Changes is how changes are noticed: "inotify", or "polling: why".
	Changes string `json:"changes"`
	// UnwatchedDirs counts directories in use whose files are polled
	// because no inotify watch could be added (fs.inotify.max_user_watches,
	// permissions, a file system without events).
	UnwatchedDirs int `json:"unwatched_dirs"`
}

func (m *Manager) collectors() []*collector {
	m.mu.Lock()
	defer m.mu.Unlock()
	cs := make([]*collector, 0, len(m.running))
	for _, c := range m.running {
		cs = append(cs, c)
	}
	return cs
}

// Sources reports every running source, sorted by name.
func (m *Manager) Sources() []SourceStatus {
	var out []SourceStatus
	for _, c := range m.collectors() {
		out = append(out, c.sourceStatus())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Summary reports the tailer as a whole.
func (m *Manager) Summary() Summary {
	s := Summary{FileBudget: m.cfg.MaxOpenFiles, CloseInactive: m.cfg.CloseInactive.String()}
	m.mu.Lock()
	p, w := m.pool, m.watch
	m.mu.Unlock()
	if p != nil {
		s.OpenFiles, _, s.QueuedFiles = p.fdStats()
	}
	if w != nil {
		s.Changes = w.mode()
		s.UnwatchedDirs = w.unwatched()
	}
	for _, c := range m.collectors() {
		c.mu.Lock()
		s.Files += len(c.files)
		c.mu.Unlock()
	}
	return s
}

// Status reports every file currently followed, and files refused.
func (m *Manager) Status() []FileStatus {
	cs := m.collectors()
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
