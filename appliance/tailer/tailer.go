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
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/logbox/logbox/appliance/pipeline"
)

// Checkpoints is where acked offsets are kept, per file identity.
type Checkpoints interface {
	Offset(fileID string) (int64, bool)
	Set(fileID, path string, offset int64)
}

// Config tunes the tailer. Zero values take the defaults noted.
type Config struct {
	// Host is stamped on every record.
	Host string
	// ScanInterval is how often globs are expanded to find new files (1s).
	ScanInterval time.Duration
	// BatchLines caps the lines of one batch (1000).
	BatchLines int
	// BatchWait is how long a partial batch waits for more lines (100ms).
	BatchWait time.Duration
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
	if c.BatchWait <= 0 {
		c.BatchWait = 100 * time.Millisecond
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
		c := &collector{m: m, src: s, cancel: cancel, done: make(chan struct{}), files: map[string]*reader{}}
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
	files   map[string]*reader // by file identity
	refused map[string]string  // path → reason
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
			fi, err := os.Stat(path)
			if err != nil || !fi.Mode().IsRegular() {
				continue
			}
			id := FileID(fi)
			c.mu.Lock()
			_, busy := c.files[id]
			c.mu.Unlock()
			if busy {
				continue
			}
			if c.m.cfg.Allowed != nil {
				if err := c.m.cfg.Allowed(path); err != nil {
					refused[path] = err.Error()
					continue
				}
			}
			r := c.newReader(path, id, fi.Size())
			c.mu.Lock()
			c.files[id] = r
			c.mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				r.run(ctx)
				c.mu.Lock()
				delete(c.files, id)
				c.mu.Unlock()
			}()
		}
	}
	c.mu.Lock()
	c.refused = refused
	c.mu.Unlock()
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

// FileID identifies a file by device and inode, independent of its path.
func FileID(fi os.FileInfo) string {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return fmt.Sprintf("%x-%x", uint64(st.Dev), st.Ino)
	}
	// Not reached on Linux; a path-less identity is still better than none.
	return fmt.Sprintf("nostat-%s-%d", fi.Name(), fi.ModTime().UnixNano())
}
