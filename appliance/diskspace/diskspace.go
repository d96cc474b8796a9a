// Package diskspace keeps a floor of free space on the disk of the data
// directory: below it, whatever would fill the disk (the index writer)
// waits instead of failing half-way.
//
// A full disk is worse than a paused one: Bleve (zapx) and etcd do not
// survive a failed write well (a failed Bleve persist leaves a segment
// whose caches are cleared, and the next batch or search that touches it
// panics; etcd exits when it cannot write its WAL). So writers ask Check
// before each batch (one statfs, about a microsecond) and Wait while the
// free space is below the floor; Run polls on its own so that status,
// readiness and metrics stay current while nothing writes. Above the floor
// everything resumes by itself.
//
// The reference is VictoriaLogs' -storage.minFreeDiskSpaceBytes, which
// stops accepting data below the floor in the same way.
package diskspace

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"syscall"
	"time"
)

// ErrLow is what every error of Check and Wait for a disk below the floor
// matches (errors.Is).
var ErrLow = errors.New("free disk space below the floor")

// LowError says how far below the floor the disk is.
type LowError struct {
	Dir     string
	Free    int64
	MinFree int64
}

func (e *LowError) Error() string {
	return fmt.Sprintf("free disk space on %s is %s, below the floor of %s", e.Dir, FormatSize(e.Free), FormatSize(e.MinFree))
}

// Is makes errors.Is(err, ErrLow) true.
func (e *LowError) Is(target error) bool { return target == ErrLow }

// Free returns the bytes an unprivileged process may still write on the
// file system holding path (statfs f_bavail: the root-reserved blocks are
// not counted, so the floor holds for every writer).
func Free(path string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return 0, fmt.Errorf("statfs %q: %w", path, err)
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}

// Config configures a Guard.
type Config struct {
	// Dir is the directory whose disk is watched.
	Dir string
	// MinFree is the floor in bytes; 0 turns the guard off (Check always
	// passes, status still reports the free space).
	MinFree int64
	// Interval is how often Run checks (default 1s).
	Interval time.Duration
	// Effect says in the log what happens below the floor (default
	// "writes pause until there is room again").
	Effect string
}

// Status is the guard's state for /api/status.
type Status struct {
	Dir string `json:"dir"`
	// FreeBytes is the free space at the last check; MinFreeBytes the floor.
	FreeBytes    int64 `json:"free_bytes"`
	MinFreeBytes int64 `json:"min_free_bytes"`
	// Low is true while FreeBytes < MinFreeBytes; Since is when it
	// became low (zero when not low).
	Low   bool      `json:"low"`
	Since time.Time `json:"since,omitzero"`
	// Checked is the time of the last check; Error its failure, if any
	// (a failed statfs does not pause anything).
	Checked time.Time `json:"checked,omitzero"`
	Error   string    `json:"error,omitempty"`
}

// Guard watches the free space of one directory's disk. Its methods are
// safe for concurrent use.
type Guard struct {
	cfg Config
	log *slog.Logger

	mu      sync.Mutex
	minFree int64
	st      Status
	// wake is closed (and replaced) whenever the disk stops being low.
	wake chan struct{}
}

// New returns a guard for cfg; it checks once right away (so Status is
// filled before Run starts) and starts nothing.
func New(cfg Config, log *slog.Logger) *Guard {
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	if cfg.Effect == "" {
		cfg.Effect = "writes pause until there is room again"
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	g := &Guard{cfg: cfg, log: log.With("component", "diskspace"), minFree: cfg.MinFree, wake: make(chan struct{})}
	g.st.Dir = cfg.Dir
	_ = g.Check()
	return g
}

// SetMinFree changes the floor (a SIGHUP); the next check applies it.
func (g *Guard) SetMinFree(n int64) {
	g.mu.Lock()
	g.minFree = n
	g.mu.Unlock()
	_ = g.Check()
}

// Check measures the free space now and returns a *LowError (matching
// ErrLow) when it is below the floor. A failed measurement returns nil:
// the write it guards then fails or succeeds on its own.
func (g *Guard) Check() error {
	free, err := Free(g.cfg.Dir)
	now := time.Now()
	g.mu.Lock()
	defer g.mu.Unlock()
	g.st.Checked = now
	g.st.MinFreeBytes = g.minFree
	if err != nil {
		if g.st.Error == "" {
			g.log.Warn("cannot measure free disk space; the free-space floor is not enforced until it can; check the data dir", "path", g.cfg.Dir, "err", err)
		}
		g.st.Error = err.Error()
		return nil
	}
	g.st.Error = ""
	g.st.FreeBytes = free
	low := g.minFree > 0 && free < g.minFree
	switch {
	case low && !g.st.Low:
		g.st.Low, g.st.Since = true, now
		g.log.Warn("free disk space is below the floor; "+g.cfg.Effect+"; free space on that disk, or lower the floor",
			"path", g.cfg.Dir, "free_bytes", free, "min_free_bytes", g.minFree)
	case !low && g.st.Low:
		g.log.Info("free disk space is above the floor again", "path", g.cfg.Dir,
			"free_bytes", free, "min_free_bytes", g.minFree, "paused_for", now.Sub(g.st.Since).Round(time.Second).String())
		g.st.Low, g.st.Since = false, time.Time{}
		close(g.wake)
		g.wake = make(chan struct{})
	}
	if low {
		return &LowError{Dir: g.cfg.Dir, Free: free, MinFree: g.minFree}
	}
	return nil
}

// Wait returns nil once the disk is not below the floor, or ctx's error
// if ctx ends first. It checks again every Interval.
func (g *Guard) Wait(ctx context.Context) error {
	t := time.NewTicker(g.cfg.Interval)
	defer t.Stop()
	for {
		if err := g.Check(); err == nil {
			return nil
		}
		g.mu.Lock()
		wake := g.wake
		g.mu.Unlock()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-wake:
		case <-t.C:
		}
	}
}

// Status returns the state of the last check.
func (g *Guard) Status() Status {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.st
}

// Run checks every Interval until ctx ends, so status and readiness stay
// current while nothing writes. It returns nil.
func (g *Guard) Run(ctx context.Context) error {
	t := time.NewTicker(g.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			_ = g.Check()
		}
	}
}
