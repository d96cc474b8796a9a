package tailer

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/logbox/logbox/appliance/pipeline"
)

// fdsUnder counts this process's descriptors open on files below dir.
func fdsUnder(t *testing.T, dir string) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	n := 0
	for _, e := range ents {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		if err == nil && strings.HasPrefix(target, dir+"/") {
			n++
		}
	}
	return n
}

// TestManyFilesFixedCost: 400 files under a budget of 16 descriptors. Each
// file costs no goroutine of its own, never more than 16 files are open,
// the files beyond wait in a queue that status counts, every line arrives
// once, and lines appended later to files that were closed are read too.
// (Before: a goroutine and an inotify watch per file, and as many open
// descriptors as files.)
func TestManyFilesFixedCost(t *testing.T) {
	dir := t.TempDir()
	const files, budget = 400, 16
	var want []string
	for i := 0; i < files; i++ {
		var b strings.Builder
		for j := 0; j < 3; j++ {
			l := fmt.Sprintf("file %03d line %d", i, j)
			b.WriteString(l + "\n")
			want = append(want, l)
		}
		mkfile(t, filepath.Join(dir, fmt.Sprintf("f%03d.log", i)), b.String())
	}
	base := runtime.NumGoroutine()
	sink, cp := &memSink{}, newCP()
	m := New(Config{Host: "h", ScanInterval: 50 * time.Millisecond, RotateWait: 200 * time.Millisecond, MaxOpenFiles: budget}, sink, cp, discard())
	m.Apply([]pipeline.Source{{Name: "s", Paths: []string{filepath.Join(dir, "*.log")}}})

	// Watch the descriptors and the queue while it runs.
	var maxOpen, maxQueued atomic.Int64
	stopSampling := make(chan struct{})
	var sampling sync.WaitGroup
	sampling.Add(1)
	go func() {
		defer sampling.Done()
		for {
			if n := int64(fdsUnder(t, dir)); n > maxOpen.Load() {
				maxOpen.Store(n)
			}
			if q := int64(m.Summary().QueuedFiles); q > maxQueued.Load() {
				maxQueued.Store(q)
			}
			select {
			case <-stopSampling:
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	}()
	stop := runManager(t, m)
	defer stop()
	waitFor(t, "every line", func() bool { return len(sink.lines()) >= len(want) })
	if g := runtime.NumGoroutine() - base; g > 30 {
		t.Errorf("%d goroutines for %d files", g, files)
	}
	if s := m.Summary(); s.Files != files || s.FileBudget != budget {
		t.Errorf("summary %+v", s)
	}

	// Append to every tenth file: closed files are opened again.
	for i := 0; i < files; i += 10 {
		l := fmt.Sprintf("file %03d line later", i)
		appendFile(t, filepath.Join(dir, fmt.Sprintf("f%03d.log", i)), l+"\n")
		want = append(want, l)
	}
	waitFor(t, "the later lines", func() bool { return len(sink.lines()) >= len(want) })
	time.Sleep(200 * time.Millisecond)
	close(stopSampling)
	sampling.Wait()
	exactlyOnce(t, sink, want)
	t.Logf("at most %d files open, %d queued", maxOpen.Load(), maxQueued.Load())
	// Opening takes a second, short-lived descriptor (the O_PATH handle
	// the file is checked through): at most one more per worker.
	if maxOpen.Load() > budget+4 {
		t.Errorf("%d files open at once, budget %d (+4 workers opening)", maxOpen.Load(), budget)
	}
	if maxQueued.Load() == 0 {
		t.Error("no file was ever queued for a descriptor")
	}
}

// TestCloseInactive: a file without new data is closed after
// CloseInactive and stays followed; appended lines are read when it is
// opened again; lines appended and then rotated away (renamed) while it
// was closed are read from the renamed file, by identity; nothing twice.
func TestCloseInactive(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	var want []string
	w := openAppend(t, path)
	writeN(t, w, "a", 0, 10, &want)
	w.Close()
	sink, cp := &memSink{}, newCP()
	m := New(Config{Host: "h", ScanInterval: 50 * time.Millisecond, RotateWait: 200 * time.Millisecond, CloseInactive: 150 * time.Millisecond}, sink, cp, discard())
	m.Apply([]pipeline.Source{{Name: "s", Paths: []string{path}}})
	stop := runManager(t, m)
	defer stop()
	closed := func() bool {
		st := m.Status()
		return len(st) == 1 && st[0].State == StateClosed && fdsUnder(t, dir) == 0
	}
	waitFor(t, "first lines", func() bool { return len(sink.lines()) == 10 })
	waitFor(t, "closed when inactive", closed)

	w = openAppend(t, path)
	writeN(t, w, "b", 0, 5, &want)
	w.Close()
	waitFor(t, "lines after reopen", func() bool { return len(sink.lines()) == 15 })
	waitFor(t, "closed again", closed)

	// While closed: appended, then renamed away, and a new file made.
	w = openAppend(t, path)
	writeN(t, w, "c", 0, 7, &want)
	w.Close()
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	w = openAppend(t, path)
	writeN(t, w, "d", 0, 3, &want)
	w.Close()
	waitFor(t, "all lines", func() bool { return len(sink.lines()) >= len(want) })
	time.Sleep(400 * time.Millisecond)
	exactlyOnce(t, sink, want)
	waitFor(t, "the renamed file let go", func() bool { return fdsUnder(t, dir) == 0 && len(m.Status()) == 1 })
}

// TestPollingFallback: without change events (no inotify instance left),
// files are polled by stat each scan interval: new files, appends to
// closed files and a rename while closed are all still read, once.
func TestPollingFallback(t *testing.T) {
	dir := t.TempDir()
	var want []string
	for i := 0; i < 30; i++ {
		l := fmt.Sprintf("file %02d first", i)
		mkfile(t, filepath.Join(dir, fmt.Sprintf("f%02d.log", i)), l+"\n")
		want = append(want, l)
	}
	sink, cp := &memSink{}, newCP()
	m := New(Config{Host: "h", ScanInterval: 30 * time.Millisecond, RotateWait: 150 * time.Millisecond, CloseInactive: 100 * time.Millisecond, MaxOpenFiles: 4, noWatch: true}, sink, cp, discard())
	m.Apply([]pipeline.Source{{Name: "s", Paths: []string{filepath.Join(dir, "*.log")}}})
	stop := runManager(t, m)
	defer stop()
	waitFor(t, "first lines", func() bool { return len(sink.lines()) == 30 })
	if s := m.Summary(); !strings.HasPrefix(s.Changes, "polling") {
		t.Fatalf("summary %+v", s)
	}
	waitFor(t, "every file closed", func() bool { return fdsUnder(t, dir) == 0 })
	for i := 0; i < 30; i += 3 {
		l := fmt.Sprintf("file %02d later", i)
		appendFile(t, filepath.Join(dir, fmt.Sprintf("f%02d.log", i)), l+"\n")
		want = append(want, l)
	}
	mkfile(t, filepath.Join(dir, "new.log"), "new file\n")
	want = append(want, "new file")
	waitFor(t, "appends and the new file", func() bool { return len(sink.lines()) == len(want) })
	waitFor(t, "every file closed again", func() bool { return fdsUnder(t, dir) == 0 })
	appendFile(t, filepath.Join(dir, "f01.log"), "file 01 before rename\n")
	want = append(want, "file 01 before rename")
	if err := os.Rename(filepath.Join(dir, "f01.log"), filepath.Join(dir, "f01.log.1")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the line appended before the rename", func() bool { return len(sink.lines()) == len(want) })
	time.Sleep(300 * time.Millisecond)
	exactlyOnce(t, sink, want)
}

// TestFileWithoutFirstLineYet: a file created empty, then given half a
// line, then the rest, is read once its first line is complete (the
// write is the event that makes logbox look again).
func TestFileWithoutFirstLineYet(t *testing.T) {
	dir := t.TempDir()
	sink, cp := &memSink{}, newCP()
	_, stop := startManager(t, sink, cp, pipeline.Source{Name: "s", Paths: []string{filepath.Join(dir, "*.log")}})
	defer stop()
	path := filepath.Join(dir, "late.log")
	mkfile(t, path, "")
	time.Sleep(200 * time.Millisecond)
	appendFile(t, path, "half a ")
	time.Sleep(200 * time.Millisecond)
	if n := len(sink.lines()); n != 0 {
		t.Fatalf("%d lines before the first line was complete", n)
	}
	appendFile(t, path, "line\nsecond\n")
	waitFor(t, "both lines", func() bool { return len(sink.lines()) == 2 })
	exactlyOnce(t, sink, []string{"half a line", "second"})
}
