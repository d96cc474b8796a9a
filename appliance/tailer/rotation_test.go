package tailer

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/logbox/logbox/appliance/pipeline"
)

// lineSet checks that every want line was shipped exactly once.
func exactlyOnce(t *testing.T, sink *memSink, want []string) {
	t.Helper()
	seen := map[string]int{}
	for _, r := range sink.lines() {
		seen[r.Line]++
	}
	for _, w := range want {
		if seen[w] != 1 {
			t.Errorf("line %q shipped %d times", w, seen[w])
		}
		delete(seen, w)
	}
	for l, n := range seen {
		t.Errorf("unexpected line %q (%d times)", l, n)
	}
}

func writeN(t *testing.T, f *os.File, prefix string, from, n int, want *[]string) {
	t.Helper()
	var b strings.Builder
	for i := from; i < from+n; i++ {
		l := fmt.Sprintf("%s line %04d", prefix, i)
		b.WriteString(l + "\n")
		*want = append(*want, l)
	}
	if _, err := f.WriteString(b.String()); err != nil {
		t.Fatal(err)
	}
}

func openAppend(t *testing.T, path string) *os.File {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// openFDsTo counts this process's descriptors open on path (also after
// the path was deleted).
func openFDsTo(t *testing.T, path string) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	n := 0
	for _, e := range ents {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		if err == nil && strings.TrimSuffix(target, " (deleted)") == path {
			n++
		}
	}
	return n
}

func TestRenameRotationReadsOldFileToEnd(t *testing.T) {
	for _, glob := range []string{"app.log", "app.log*"} {
		t.Run(glob, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "app.log")
			var want []string
			old := openAppend(t, path)
			writeN(t, old, "old", 0, 100, &want)
			sink, cp := &memSink{}, newCP()
			m, stop := startManager(t, sink, cp, pipeline.Source{Name: "s", Paths: []string{filepath.Join(dir, glob)}})
			defer stop()
			waitFor(t, "first lines", func() bool { return len(sink.lines()) == 100 })

			// Rotate by rename; the writer keeps writing to its old
			// descriptor for a moment before it reopens the path.
			if err := os.Rename(path, path+".1"); err != nil {
				t.Fatal(err)
			}
			writeN(t, old, "old", 100, 50, &want)
			time.Sleep(50 * time.Millisecond)
			writeN(t, old, "old", 150, 10, &want)
			neu := openAppend(t, path)
			writeN(t, neu, "new", 0, 100, &want)
			waitFor(t, "all lines", func() bool { return len(sink.lines()) >= len(want) })
			time.Sleep(300 * time.Millisecond) // RotateWait in tests is 200ms
			exactlyOnce(t, sink, want)

			old.Close()
			if glob == "app.log" {
				// The rotated file is let go once idle: one reader left,
				// and no descriptor on the old file.
				waitFor(t, "old file closed", func() bool { return len(m.Status()) == 1 && openFDsTo(t, path+".1") == 0 })
			}
		})
	}
}

func TestCopyTruncate(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	var want []string
	w := openAppend(t, path)
	writeN(t, w, "before", 0, 200, &want)
	sink, cp := &memSink{}, newCP()
	_, stop := startManager(t, sink, cp, pipeline.Source{Name: "s", Paths: []string{path}})
	defer stop()
	waitFor(t, "lines before", func() bool { return len(sink.lines()) == 200 })

	// logrotate copytruncate: copy aside (not matched), truncate in place;
	// the writer (O_APPEND) continues at the new end.
	copyTruncate(t, path)
	time.Sleep(100 * time.Millisecond)
	writeN(t, w, "after", 0, 50, &want)
	waitFor(t, "lines after", func() bool { return len(sink.lines()) >= 250 })
	time.Sleep(200 * time.Millisecond)
	exactlyOnce(t, sink, want)
	// The new content has its own identity: its records do not overwrite
	// the old ones in the index.
	recs := sink.lines()
	if recs[0].FileID == recs[len(recs)-1].FileID {
		t.Fatal("truncated file kept its identity")
	}
	if recs[len(recs)-50].Offset != 0 {
		t.Fatalf("new content read from offset %d, want 0", recs[len(recs)-50].Offset)
	}
}

func TestTruncateAndRewriteInPlace(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	var want []string
	w := openAppend(t, path)
	writeN(t, w, "gen1", 0, 30, &want)
	sink, cp := &memSink{}, newCP()
	_, stop := startManager(t, sink, cp, pipeline.Source{Name: "s", Paths: []string{path}})
	defer stop()
	waitFor(t, "gen1", func() bool { return len(sink.lines()) == 30 })
	oldKey := cpKey(t, path)
	if err := w.Truncate(0); err != nil {
		t.Fatal(err)
	}
	// More than was there before, so a stale offset would skip lines.
	writeN(t, w, "gen2", 0, 100, &want)
	waitFor(t, "gen2", func() bool { return len(sink.lines()) >= 130 })
	time.Sleep(200 * time.Millisecond)
	exactlyOnce(t, sink, want)
	if !cp.isRetired(oldKey) {
		t.Error("checkpoint of the truncated generation not retired")
	}
	if cp.get(cpKey(t, path)) == 0 {
		t.Error("no checkpoint for the new generation")
	}
}

func TestDeletedWhileTailedIsLetGo(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	var want []string
	w := openAppend(t, path)
	writeN(t, w, "x", 0, 20, &want)
	sink, cp := &memSink{}, newCP()
	m, stop := startManager(t, sink, cp, pipeline.Source{Name: "s", Paths: []string{path}})
	defer stop()
	waitFor(t, "lines", func() bool { return len(sink.lines()) == 20 })
	key := cpKey(t, path)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	// Written after the delete, before the writer closes: still read.
	writeN(t, w, "x", 20, 5, &want)
	w.Close()
	waitFor(t, "reader gone", func() bool { return len(m.Status()) == 0 })
	exactlyOnce(t, sink, want)
	if n := openFDsTo(t, path); n != 0 {
		t.Fatalf("%d descriptors still open on the deleted file", n)
	}
	if !cp.isRetired(key) {
		t.Error("checkpoint of a deleted file not retired")
	}
}

func TestInodeReuseOrReplaceReadsFromStart(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	var want []string
	w := openAppend(t, path)
	writeN(t, w, "first", 0, 50, &want)
	w.Close()
	sink, cp := &memSink{}, newCP()
	_, stop := startManager(t, sink, cp, pipeline.Source{Name: "s", Paths: []string{path}})
	waitFor(t, "first file", func() bool { return len(sink.lines()) == 50 })
	stop()

	// While logbox is down the file is deleted and a longer one created at
	// the same path; the file system may well hand it the same inode.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	w = openAppend(t, path)
	writeN(t, w, "second", 0, 80, &want)
	_, stop2 := startManager(t, sink, cp, pipeline.Source{Name: "s", Paths: []string{path}})
	defer stop2()
	waitFor(t, "second file", func() bool { return len(sink.lines()) >= 130 })
	time.Sleep(100 * time.Millisecond)
	exactlyOnce(t, sink, want)
}

func TestLongLinesAndBadBytes(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	w := openAppend(t, path)
	huge := strings.Repeat("x", 3<<20) // 3 MiB, cap is 64 KiB here
	if _, err := w.WriteString("before\n" + huge + "\n" + "bad \xff byte\r\n" + "nul\x00\n" + "after\n"); err != nil {
		t.Fatal(err)
	}
	sink, cp := &memSink{}, newCP()
	m, stop := startManager(t, sink, cp, pipeline.Source{Name: "s", Paths: []string{path}, MaxLineBytes: 64 << 10})
	defer stop()
	waitFor(t, "lines", func() bool { return len(sink.lines()) == 5 })
	got := sink.lines()
	if got[1].Line != huge[:64<<10] || strings.Join(got[1].Flags, ",") != pipeline.FlagTruncated {
		t.Fatalf("long line: %d bytes, flags %v", len(got[1].Line), got[1].Flags)
	}
	if got[2].Line != "bad \uFFFD byte" || got[3].Line != "nul" || got[4].Line != "after" || got[4].Offset != int64(7+len(huge)+1+12+5) {
		t.Fatalf("lines: %q %q %q at %d", got[2].Line, got[3].Line, got[4].Line, got[4].Offset)
	}
	counts := m.Undelivered()["s"]
	if counts[pipeline.FlagTruncated] != 1 || counts[pipeline.FlagInvalidUTF8] != 1 || counts[pipeline.FlagNUL] != 1 {
		t.Fatalf("counts %v", counts)
	}
}

func TestPartialLineIdleFlush(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	w := openAppend(t, path)
	if _, err := w.WriteString("complete\nno newline yet"); err != nil {
		t.Fatal(err)
	}
	sink, cp := &memSink{}, newCP()
	m := New(Config{Host: "h", ScanInterval: 50 * time.Millisecond, PartialLineIdle: 300 * time.Millisecond}, sink, cp, discard())
	m.Apply([]pipeline.Source{{Name: "s", Paths: []string{path}}})
	runManager(t, m)
	waitFor(t, "partial flushed", func() bool { return len(sink.lines()) == 2 })
	p := sink.lines()[1]
	if p.Line != "no newline yet" || strings.Join(p.Flags, ",") != pipeline.FlagPartial {
		t.Fatalf("partial: %+v", p)
	}
	if _, err := w.WriteString(" - rest\n"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "rest", func() bool { return len(sink.lines()) == 3 })
	if r := sink.lines()[2]; r.Line != " - rest" || r.Offset != 23 {
		t.Fatalf("rest: %+v", r)
	}
}

func TestMultilineInFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	w := openAppend(t, path)
	trace := "2026-11-25 ERROR failed\njava.lang.RuntimeException: boom\n\tat a.B.c(B.java:1)\n\tat a.B.d(B.java:2)\n"
	if _, err := w.WriteString(trace + "2026-11-25 INFO ok\n"); err != nil {
		t.Fatal(err)
	}
	sink, cp := &memSink{}, newCP()
	src := pipeline.Source{Name: "s", Paths: []string{path}, Multiline: &pipeline.Multiline{Pattern: `^\d{4}-`, Match: pipeline.MultilineStart, Timeout: "200ms"}}
	_, stop := startManager(t, sink, cp, src)
	defer stop()
	// The last event is shipped by the timeout, as no next line comes.
	waitFor(t, "two events", func() bool { return len(sink.lines()) == 2 })
	got := sink.lines()
	if got[0].Line != strings.TrimSuffix(trace, "\n") || got[1].Line != "2026-11-25 INFO ok" || got[1].Offset != int64(len(trace)) {
		t.Fatalf("events %q", []string{got[0].Line, got[1].Line})
	}
	waitFor(t, "checkpoint at end", func() bool { return cp.get(cpKey(t, path)) == int64(len(trace)+19) })
}

// idsPerLine checks the delivery contract as the index sees it: every want
// line arrived under exactly one record ID (a line re-sent under the same ID
// overwrites itself), and nothing else arrived.
func idsPerLine(t *testing.T, sink *memSink, want []string) {
	t.Helper()
	ids := map[string]map[string]bool{}
	for _, r := range sink.lines() {
		if ids[r.Line] == nil {
			ids[r.Line] = map[string]bool{}
		}
		ids[r.Line][r.ID()] = true
	}
	for _, w := range want {
		if n := len(ids[w]); n != 1 {
			t.Errorf("line %q arrived under %d IDs, want 1", w, n)
		}
		delete(ids, w)
	}
	for l := range ids {
		t.Errorf("unexpected line %q", l)
	}
}

// TestCopyTruncateWithLaggingReader: the reader is behind (nothing acked,
// the sink holds every batch) when logrotate copies the file aside and
// truncates it, and the copies match the glob. The copy carries on under
// the old identity, so no line is lost and none gets a second ID.
func TestCopyTruncateWithLaggingReader(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	var want []string
	w := openAppend(t, path)
	writeN(t, w, "old", 0, 3000, &want)
	sink, cp := &memSink{hold: true}, newCP()
	_, stop := startManager(t, sink, cp, pipeline.Source{Name: "s", Paths: []string{path + "*"}})
	defer stop()
	waitFor(t, "lines read", func() bool { return len(sink.lines()) == 3000 })

	copyTruncate(t, path)
	writeN(t, w, "new", 0, 100, &want)
	time.Sleep(100 * time.Millisecond)
	sink.release()
	waitFor(t, "new lines", func() bool { return len(sink.lines()) >= 3100 })
	time.Sleep(500 * time.Millisecond)
	idsPerLine(t, sink, want)
}

// TestCopyTruncateWhileDown: logbox is stopped, the file is copied aside
// and truncated, more is written; after the restart the copy carries on
// from the checkpoint and the truncated file is read from its start.
func TestCopyTruncateWhileDown(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	var want []string
	w := openAppend(t, path)
	writeN(t, w, "before", 0, 500, &want)
	cp := newCP()
	sink := &memSink{}
	src := pipeline.Source{Name: "s", Paths: []string{path + "*"}}
	_, stop := startManager(t, sink, cp, src)
	waitFor(t, "first run", func() bool { return cp.get(cpKey(t, path)) == 500*17 })
	stop()

	// Lines written after the stop are only in the copy.
	writeN(t, w, "before", 500, 50, &want)
	copyTruncate(t, path)
	writeN(t, w, "after", 0, 70, &want)
	_, stop2 := startManager(t, sink, cp, src)
	defer stop2()
	waitFor(t, "all", func() bool { return len(sink.lines()) >= 620 })
	time.Sleep(300 * time.Millisecond)
	idsPerLine(t, sink, want)
	if n := len(sink.lines()); n != 620 {
		t.Errorf("%d records shipped, want 620 (nothing read twice)", n)
	}
}

// copyTruncate does what logrotate's copytruncate does: copy path to
// path.1, then truncate path in place.
func copyTruncate(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+".1", b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
}
