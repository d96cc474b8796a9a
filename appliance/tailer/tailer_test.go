package tailer

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/logbox/logbox/appliance/pipeline"
)

// memSink collects what the tailer publishes. With hold set it keeps
// batches unacked until release is called.
type memSink struct {
	mu      sync.Mutex
	recs    []pipeline.Record
	hold    bool
	waiting []*pipeline.Batch
}

func (s *memSink) Publish(ctx context.Context, b *pipeline.Batch) error {
	s.mu.Lock()
	s.recs = append(s.recs, b.Records...)
	if s.hold {
		s.waiting = append(s.waiting, b)
		s.mu.Unlock()
		return nil
	}
	s.mu.Unlock()
	b.Ack()
	return nil
}

func (s *memSink) release() {
	s.mu.Lock()
	w := s.waiting
	s.waiting, s.hold = nil, false
	s.mu.Unlock()
	for _, b := range w {
		b.Ack()
	}
}

func (s *memSink) lines() []pipeline.Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]pipeline.Record(nil), s.recs...)
}

type memCP struct {
	mu      sync.Mutex
	m       map[string]int64
	tails   map[string]uint64
	paths   map[string]string
	retired map[string]bool
	// finished: Finish was called (file deleted at that size).
	finished map[string]int64
	sources  []string
}

func newCP() *memCP {
	return &memCP{m: map[string]int64{}, tails: map[string]uint64{}, paths: map[string]string{}, retired: map[string]bool{}, finished: map[string]int64{}}
}

func (c *memCP) Offset(id string) (int64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	o, ok := c.m[id]
	return o, ok
}

func (c *memCP) Set(id, path string, off int64, tail uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m[id], c.paths[id], c.tails[id] = off, path, tail
}

func (c *memCP) Retire(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[id]; ok {
		c.retired[id] = true
	}
}

func (c *memCP) Adopt(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.retired, id)
	delete(c.finished, id)
}

func (c *memCP) Finish(id string, size int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[id]; ok {
		c.retired[id] = true
		c.finished[id] = size
	}
}

func (c *memCP) KeepSources(names []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sources = append([]string(nil), names...)
}

func (c *memCP) isRetired(id string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.retired[id]
}

func (c *memCP) Candidates(prefix, suffix string, fn func(key, path string, offset int64, tail uint64, retired bool) bool) (string, bool) {
	c.mu.Lock()
	var keys []string
	for k := range c.m {
		if strings.HasPrefix(k, prefix) && strings.HasSuffix(k, suffix) {
			keys = append(keys, k)
		}
	}
	c.mu.Unlock()
	for _, k := range keys {
		c.mu.Lock()
		path, off, tail, ret := c.paths[k], c.m[k], c.tails[k], c.retired[k]
		c.mu.Unlock()
		if fn(k, path, off, tail, ret) {
			return k, true
		}
	}
	return "", false
}

func (c *memCP) get(id string) int64 {
	o, _ := c.Offset(id)
	return o
}

func discard() *slog.Logger {
	if os.Getenv("TAILER_DEBUG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func startManager(t *testing.T, sink pipeline.Sink, cp Checkpoints, srcs ...pipeline.Source) (*Manager, func()) {
	t.Helper()
	m := New(Config{Host: "box1", ScanInterval: 50 * time.Millisecond, RotateWait: 200 * time.Millisecond}, sink, cp, discard())
	m.Apply(srcs)
	return m, runManager(t, m)
}

// runManager runs m until the returned stop is called (or the test ends).
func runManager(t *testing.T, m *Manager) func() {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	stop := func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Error(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("tailer did not stop")
		}
	}
	t.Cleanup(func() { cancel() })
	return stop
}

func appendFile(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func fileID(t *testing.T, path string) string {
	t.Helper()
	id, err := FileID(path)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// cpKey is the checkpoint key of path under source s.
func cpKey(t *testing.T, path string) string {
	t.Helper()
	return "s/" + fileID(t, path)
}

func TestReadsExistingThenFollows(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.log")
	appendFile(t, path, "first\r\nsecond\n")
	sink, cp := &memSink{}, newCP()
	_, stop := startManager(t, sink, cp, pipeline.Source{Name: "s", Paths: []string{filepath.Join(dir, "*.log")}, Fields: map[string]string{"env": "test"}, Topic: "t1"})
	waitFor(t, "existing lines", func() bool { return len(sink.lines()) == 2 })
	appendFile(t, path, "third")
	time.Sleep(100 * time.Millisecond)
	if n := len(sink.lines()); n != 2 {
		t.Fatalf("partial line shipped before its newline: %d lines", n)
	}
	appendFile(t, path, " line\n")
	waitFor(t, "appended line", func() bool { return len(sink.lines()) == 3 })
	stop()

	got := sink.lines()
	want := []struct {
		line string
		off  int64
	}{{"first", 0}, {"second", 7}, {"third line", 14}}
	for i, w := range want {
		r := got[i]
		if r.Line != w.line || r.Offset != w.off || r.Host != "box1" || r.Source != path ||
			r.SourceName != "s" || r.Fields["env"] != "test" || r.Topic != "t1" || r.FileID != fileID(t, path) {
			t.Errorf("record %d = %+v, want line %q at %d", i, r, w.line, w.off)
		}
	}
	if off := cp.get(cpKey(t, path)); off != 25 {
		t.Fatalf("checkpoint %d, want 25 (end of file)", off)
	}
}

func TestCheckpointOnlyAfterAck(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.log")
	appendFile(t, path, "one\ntwo\n")
	sink, cp := &memSink{hold: true}, newCP()
	_, stop := startManager(t, sink, cp, pipeline.Source{Name: "s", Paths: []string{path}})
	waitFor(t, "lines read", func() bool { return len(sink.lines()) == 2 })
	time.Sleep(50 * time.Millisecond)
	if off := cp.get(cpKey(t, path)); off != 0 {
		t.Fatalf("checkpoint moved to %d before the sink acked", off)
	}
	sink.release()
	waitFor(t, "checkpoint after ack", func() bool { return cp.get(cpKey(t, path)) == 8 })
	stop()
}

func TestResumeFromCheckpoint(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.log")
	appendFile(t, path, "one\ntwo\n")
	cp := newCP()
	sink := &memSink{}
	_, stop := startManager(t, sink, cp, pipeline.Source{Name: "s", Paths: []string{path}})
	waitFor(t, "first run", func() bool { return cp.get(cpKey(t, path)) == 8 })
	stop()

	appendFile(t, path, "three\n")
	sink2 := &memSink{}
	_, stop2 := startManager(t, sink2, cp, pipeline.Source{Name: "s", Paths: []string{path}})
	waitFor(t, "second run", func() bool { return len(sink2.lines()) >= 1 })
	time.Sleep(100 * time.Millisecond)
	stop2()
	got := sink2.lines()
	if len(got) != 1 || got[0].Line != "three" || got[0].Offset != 8 {
		t.Fatalf("after restart got %+v, want only 'three' at 8", got)
	}

	// A checkpoint beyond the end (file replaced while down) starts over.
	cp.Set(cpKey(t, path), path, 1<<20, 0)
	sink3 := &memSink{}
	_, stop3 := startManager(t, sink3, cp, pipeline.Source{Name: "s", Paths: []string{path}})
	waitFor(t, "re-read", func() bool { return len(sink3.lines()) == 3 })
	stop3()
}

func TestApplyAddsAndRemovesSources(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.log"), filepath.Join(dir, "b.log")
	appendFile(t, a, "a1\n")
	appendFile(t, b, "b1\n")
	sink, cp := &memSink{}, newCP()
	srcA := pipeline.Source{Name: "a", Paths: []string{a}}
	m, stop := startManager(t, sink, cp, srcA)
	defer stop()
	waitFor(t, "a1", func() bool { return len(sink.lines()) == 1 })

	m.Apply([]pipeline.Source{srcA, {Name: "b", Paths: []string{b}}})
	waitFor(t, "b1", func() bool { return len(sink.lines()) == 2 })

	// Remove a: its new lines are not collected; b keeps going, not restarted.
	m.Apply([]pipeline.Source{{Name: "b", Paths: []string{b}}})
	waitFor(t, "a stopped", func() bool {
		for _, s := range m.Status() {
			if s.Source == "a" {
				return false
			}
		}
		return true
	})
	appendFile(t, a, "a2\n")
	appendFile(t, b, "b2\n")
	waitFor(t, "b2", func() bool { return len(sink.lines()) == 3 })
	time.Sleep(150 * time.Millisecond)
	for _, r := range sink.lines() {
		if r.Line == "a2" {
			t.Fatal("removed source still collected")
		}
	}
	if got := len(sink.lines()); got != 3 {
		t.Fatalf("%d lines, want 3 (b not restarted, nothing re-read)", got)
	}

	// Paused sources and sources for other hosts do not run.
	m.Apply([]pipeline.Source{{Name: "b", Paths: []string{b}, Paused: true}, {Name: "a", Paths: []string{a}, Hosts: []string{"other"}}})
	waitFor(t, "nothing running", func() bool { return len(m.Status()) == 0 })
}

func TestNewFilesArePickedUp(t *testing.T) {
	dir := t.TempDir()
	sink, cp := &memSink{}, newCP()
	m, stop := startManager(t, sink, cp, pipeline.Source{Name: "s", Paths: []string{filepath.Join(dir, "*.log")}})
	defer stop()
	for i := 0; i < 3; i++ {
		appendFile(t, filepath.Join(dir, fmt.Sprintf("f%d.log", i)), fmt.Sprintf("line %d\n", i))
	}
	appendFile(t, filepath.Join(dir, "ignored.txt"), "no\n")
	waitFor(t, "three files", func() bool { return len(sink.lines()) == 3 })
	if n := len(m.Status()); n != 3 {
		t.Fatalf("status lists %d files, want 3", n)
	}
}

func TestRefusedPathIsReported(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "secret.log")
	appendFile(t, path, "x\n")
	sink, cp := &memSink{}, newCP()
	m := New(Config{Host: "h", ScanInterval: 20 * time.Millisecond, Allowed: func(string) error { return fmt.Errorf("outside allowed roots") }},
		sink, cp, slog.New(slog.NewTextHandler(io.Discard, nil)))
	m.Apply([]pipeline.Source{{Name: "s", Paths: []string{path}}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go m.Run(ctx)
	waitFor(t, "refusal in status", func() bool {
		st := m.Status()
		return len(st) == 1 && st[0].LastError != ""
	})
	if len(sink.lines()) != 0 {
		t.Fatal("refused file was read")
	}
}
