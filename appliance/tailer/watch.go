package tailer

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
)

// dirWatcher is the one change watcher of a Manager: inotify (through
// github.com/fsnotify/fsnotify) on the directories that hold followed
// files or that globs look into — not one watch per file. An event for a
// followed file's name wakes its reader; a file created, renamed or
// removed in a directory, or any event for a name no reader follows,
// bumps the directory's generation, which tells the sources whose globs
// read it to expand them again.
//
// Watching is only a way to learn of changes sooner. When inotify is not
// available (no instance left under fs.inotify.max_user_instances), or a
// directory cannot be watched (max_user_watches, permissions, a network
// file system), the files there are polled by stat every scan interval. A
// watch error never stops logbox.
type dirWatcher struct {
	fw   *fsnotify.Watcher // nil: polling only
	why  string            // why not, when fw is nil
	pool *pool
	log  *slog.Logger

	mu     sync.Mutex
	dirs   map[string]*wdir
	warned bool // a failed watch was logged at Warn once
}

type wdir struct {
	refs    int // globs that look into it, plus names registered
	watched bool
	gen     uint64 // bumped on structural changes (see dirWatcher)
	names   map[string][]*reader
	tried   time.Time // last failed attempt to watch it
	lastErr string
}

// retryWatch is how often adding a watch that failed is tried again.
const retryWatch = 10 * time.Second

func newDirWatcher(p *pool, log *slog.Logger, disable bool) *dirWatcher {
	w := &dirWatcher{pool: p, log: log, dirs: map[string]*wdir{}}
	if disable {
		w.why = "disabled"
		return w
	}
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		w.why = err.Error()
		log.Warn("no inotify instance; polling every file by stat each scan interval instead (raise fs.inotify.max_user_instances to get change events)", "err", err)
		return w
	}
	w.fw = fw
	return w
}

// mode says how changes are learnt: "inotify" or "polling: <why>".
func (w *dirWatcher) mode() string {
	if w.fw == nil {
		return "polling: " + w.why
	}
	return "inotify"
}

// unwatched counts the directories in use that have no watch.
func (w *dirWatcher) unwatched() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, d := range w.dirs {
		if !d.watched {
			n++
		}
	}
	return n
}

// healthy reports whether change events arrive at all.
func (w *dirWatcher) healthy() bool { return w.fw != nil }

// run delivers events until ctx is done, then closes the watcher.
func (w *dirWatcher) run(ctx context.Context) {
	if w.fw == nil {
		<-ctx.Done()
		return
	}
	defer w.fw.Close()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.fw.Events:
			if !ok {
				return
			}
			w.event(ev)
		case err, ok := <-w.fw.Errors:
			if !ok {
				return
			}
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				w.log.Debug("inotify queue overflowed; rescanning every watched directory")
			} else {
				w.log.Warn("inotify error; rescanning every watched directory", "err", err)
			}
			w.overflow()
		}
	}
}

func (w *dirWatcher) event(ev fsnotify.Event) {
	dir, base := filepath.Split(ev.Name)
	dir = filepath.Clean(dir)
	structural := ev.Op&(fsnotify.Create|fsnotify.Remove|fsnotify.Rename) != 0
	var wake []*reader
	w.mu.Lock()
	if d := w.dirs[ev.Name]; d != nil && structural {
		// The directory itself went away or moved: its watch is gone or
		// names the wrong place now.
		if d.watched {
			_ = w.fw.Remove(ev.Name)
		}
		d.watched = false
		d.gen++
		for _, rs := range d.names {
			wake = append(wake, rs...)
		}
	}
	if d := w.dirs[dir]; d != nil {
		rs := d.names[base]
		if structural || len(rs) == 0 {
			d.gen++
		}
		wake = append(wake, rs...)
	}
	w.mu.Unlock()
	for _, r := range wake {
		w.pool.wake(r)
	}
}

func (w *dirWatcher) overflow() {
	var wake []*reader
	w.mu.Lock()
	for _, d := range w.dirs {
		d.gen++
		for _, rs := range d.names {
			wake = append(wake, rs...)
		}
	}
	w.mu.Unlock()
	for _, r := range wake {
		w.pool.wake(r)
	}
}

// dir returns dir's entry, creating it; w.mu is held.
func (w *dirWatcher) dirLocked(dir string) *wdir {
	d := w.dirs[dir]
	if d == nil {
		d = &wdir{}
		w.dirs[dir] = d
	}
	if !d.watched && w.fw != nil && time.Since(d.tried) >= retryWatch {
		if err := w.fw.Add(dir); err != nil {
			d.tried, d.lastErr = time.Now(), err.Error()
			if !w.warned {
				w.warned = true
				w.log.Warn("cannot watch a directory for changes; its files are polled every scan interval instead (more CPU, later pickup); on ENOSPC raise fs.inotify.max_user_watches; tailing.unwatched_dirs in /api/status counts such directories", "path", dir, "err", err)
			} else {
				w.log.Debug("cannot watch directory; polling its files", "path", dir, "err", err)
			}
		} else {
			d.watched, d.lastErr = true, ""
			d.gen++ // what happened before the watch is unknown
		}
	}
	return d
}

func (w *dirWatcher) releaseLocked(dir string, d *wdir) {
	d.refs--
	if d.refs > 0 {
		return
	}
	if d.watched {
		_ = w.fw.Remove(dir)
	}
	delete(w.dirs, dir)
}

// retain adds a reference to each dir (watching it if it is not yet) and
// returns their generations and whether every one is watched.
func (w *dirWatcher) retain(dirs []string) (gens []uint64, allWatched bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	allWatched = true
	gens = make([]uint64, len(dirs))
	for i, dir := range dirs {
		d := w.dirLocked(dir)
		d.refs++
		gens[i] = d.gen
		allWatched = allWatched && d.watched
	}
	return gens, allWatched
}

// release drops references taken by retain.
func (w *dirWatcher) release(dirs []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, dir := range dirs {
		if d := w.dirs[dir]; d != nil {
			w.releaseLocked(dir, d)
		}
	}
}

// unchanged reports whether every dir is watched and still at the
// generation given.
func (w *dirWatcher) unchanged(dirs []string, gens []uint64) bool {
	if w.fw == nil {
		return false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for i, dir := range dirs {
		d := w.dirs[dir]
		if d == nil || !d.watched || d.gen != gens[i] {
			return false
		}
	}
	return true
}

// register makes events for the file at path wake r. It reports whether
// the file's directory is watched (else r must poll).
func (w *dirWatcher) register(r *reader, path string) bool {
	dir, base := filepath.Dir(path), filepath.Base(path)
	w.mu.Lock()
	defer w.mu.Unlock()
	d := w.dirLocked(dir)
	d.refs++
	if d.names == nil {
		d.names = map[string][]*reader{}
	}
	d.names[base] = append(d.names[base], r)
	return d.watched
}

// unregister undoes register.
func (w *dirWatcher) unregister(r *reader, path string) {
	dir, base := filepath.Dir(path), filepath.Base(path)
	w.mu.Lock()
	defer w.mu.Unlock()
	d := w.dirs[dir]
	if d == nil {
		return
	}
	rs := d.names[base]
	for i, x := range rs {
		if x == r {
			rs = append(rs[:i:i], rs[i+1:]...)
			break
		}
	}
	if len(rs) == 0 {
		delete(d.names, base)
	} else {
		d.names[base] = rs
	}
	w.releaseLocked(dir, d)
}

// watched reports whether events arrive for files in path's directory.
func (w *dirWatcher) watched(path string) bool {
	if w.fw == nil {
		return false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	d := w.dirs[filepath.Dir(path)]
	return d != nil && d.watched
}
