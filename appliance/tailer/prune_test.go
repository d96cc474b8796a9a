package tailer

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/logbox/logbox/appliance/pipeline"
)

// TestRotatedAwayThenDeletedIsFinished: the glob names the live file only;
// it is renamed away (read to its end, let go), and later the rotated file
// is deleted. Its checkpoint entry is then marked finished at its full
// size, so the store prunes it (before, the entry stayed forever).
func TestRotatedAwayThenDeletedIsFinished(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	var want []string
	w := openAppend(t, path)
	writeN(t, w, "old", 0, 20, &want)
	sink, cp := &memSink{}, newCP()
	m := New(Config{Host: "h", ScanInterval: 20 * time.Millisecond, RotateWait: 100 * time.Millisecond, fullScan: 100 * time.Millisecond}, sink, cp, discard())
	m.Apply([]pipeline.Source{{Name: "s", Paths: []string{path}}})
	stop := runManager(t, m)
	defer stop()
	waitFor(t, "old lines", func() bool { return len(sink.lines()) == 20 })
	oldKey := cpKey(t, path)
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	writeN(t, w, "old", 20, 5, &want) // late write to the rotated file
	w.Close()
	appendFile(t, path, "new 1\n")
	want = append(want, "new 1")
	waitFor(t, "rotated file let go", func() bool { return len(m.Status()) == 1 && len(sink.lines()) == 26 })
	time.Sleep(300 * time.Millisecond) // a few full scans: nothing is read again
	exactlyOnce(t, sink, want)
	cp.mu.Lock()
	_, finished := cp.finished[oldKey]
	cp.mu.Unlock()
	if finished {
		t.Fatal("entry finished while its file still exists")
	}

	if err := os.Remove(path + ".1"); err != nil {
		t.Fatal(err)
	}
	size := int64(25 * len("old line 0000\n"))
	waitFor(t, "entry of the deleted file finished at its size", func() bool {
		cp.mu.Lock()
		defer cp.mu.Unlock()
		return cp.finished[oldKey] == size && cp.m[oldKey] == size
	})
}

// TestSourcesReportedForPruning: the checkpoint store is told which
// sources exist — paused ones too, removed ones not.
func TestSourcesReportedForPruning(t *testing.T) {
	sink, cp := &memSink{}, newCP()
	dir := t.TempDir()
	m, stop := startManager(t, sink, cp, pipeline.Source{Name: "a", Paths: []string{dir + "/a.log"}}, pipeline.Source{Name: "b", Paths: []string{dir + "/b.log"}})
	defer stop()
	sources := func() []string {
		cp.mu.Lock()
		defer cp.mu.Unlock()
		return slices.Sorted(slices.Values(cp.sources))
	}
	waitFor(t, "a and b", func() bool { return slices.Equal(sources(), []string{"a", "b"}) })
	m.Apply([]pipeline.Source{{Name: "b", Paths: []string{dir + "/b.log"}, Paused: true}, {Name: "c", Paths: []string{dir + "/c.log"}, Hosts: []string{"elsewhere"}}})
	waitFor(t, "b only (paused), not a (removed) nor c (another host's)", func() bool { return slices.Equal(sources(), []string{"b"}) })
}
