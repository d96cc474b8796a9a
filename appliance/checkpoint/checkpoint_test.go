package checkpoint

import (
	"context"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestPersistAcrossOpen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "checkpoints.json")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	s, err := Open(path, 10*time.Millisecond, log)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Get("a"); ok {
		t.Fatal("empty store has an entry")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	s.Set("a", "/x/a.log", 10, 1)
	s.Set("a", "/x/a.log", 42, 2)
	s.Set("b", "/x/b.log", 7, 3)
	s.Retire("b")
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	s2, err := Open(path, time.Second, log)
	if err != nil {
		t.Fatal(err)
	}
	if e, ok := s2.Get("a"); !ok || e.Offset != 42 || e.Path != "/x/a.log" {
		t.Fatalf("a = %+v %v", e, ok)
	}
	if e, _ := s2.Get("b"); e.Offset != 7 || !e.Retired || e.Tail != 3 {
		t.Fatalf("b = %+v", e)
	}
	// No temp files left behind.
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Fatalf("dir holds %d files, want 1", len(ents))
	}
}

func TestCorruptFileIsAnError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "checkpoints.json")
	if err := os.WriteFile(path, []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path, time.Second, slog.New(slog.NewTextHandler(io.Discard, nil))); err == nil {
		t.Fatal("corrupt checkpoint file opened without error")
	}
}

// TestPruning: checkpoints.json does not grow forever. A deleted file's
// entry goes once every line is acked and GoneGrace passed (not before);
// a retired entry waits RetiredTTL for a copy; the entries of a source
// absent for SourceGrace go, a paused or returning source keeps its place;
// and the absence survives a restart.
func TestPruning(t *testing.T) {
	path := filepath.Join(t.TempDir(), "checkpoints.json")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	open := func() *Store {
		s, err := Open(path, time.Second, log)
		if err != nil {
			t.Fatal(err)
		}
		s.now = clock
		return s
	}
	s := open()
	s.Set("web/deleted-read", "/l/a.log", 100, 1)
	s.Set("web/deleted-unacked", "/l/b.log", 40, 1)
	s.Set("web/truncated", "/l/c.log", 70, 1)
	s.Set("web/live", "/l/d.log", 10, 1)
	s.Set("gone-src/x", "/m/x.log", 5, 1)
	s.Set("paused-src/y", "/m/y.log", 5, 1)
	s.Finish("web/deleted-read", 100)
	s.Finish("web/deleted-unacked", 90) // lines 40..90 not acked yet
	s.Retire("web/truncated")
	s.KeepSources([]string{"web", "paused-src"})
	has := func(s *Store, keys ...string) {
		t.Helper()
		if err := s.Flush(); err != nil {
			t.Fatal(err)
		}
		all := s.All()
		if len(all) != len(keys) {
			t.Errorf("entries %v, want %v", slices.Sorted(maps.Keys(all)), keys)
		}
		for _, k := range keys {
			if _, ok := all[k]; !ok {
				t.Errorf("entry %q pruned too early (have %v)", k, slices.Sorted(maps.Keys(all)))
			}
		}
	}
	has(s, "web/deleted-read", "web/deleted-unacked", "web/truncated", "web/live", "gone-src/x", "paused-src/y")

	now = now.Add(GoneGrace + time.Minute)
	has(s, "web/deleted-unacked", "web/truncated", "web/live", "gone-src/x", "paused-src/y")
	// The last lines of the deleted file are acked: it goes too.
	s.Set("web/deleted-unacked", "/l/b.log", 90, 2)
	now = now.Add(GoneGrace + time.Minute)
	has(s, "web/truncated", "web/live", "gone-src/x", "paused-src/y")

	// A restart in between does not reset the source's absence.
	s = open()
	now = now.Add(SourceGrace - GoneGrace)
	s.KeepSources([]string{"web", "paused-src"})
	has(s, "web/truncated", "web/live", "paused-src/y")

	// A source that is absent for a while and comes back keeps its place.
	s.KeepSources([]string{"web"})
	now = now.Add(SourceGrace / 2)
	s.KeepSources([]string{"web", "paused-src"})
	now = now.Add(SourceGrace)
	has(s, "web/truncated", "web/live", "paused-src/y")

	// A retired entry is kept for RetiredTTL after it was retired.
	now = now.Add(RetiredTTL - 2*SourceGrace)
	has(s, "web/live", "paused-src/y")
	s.Set("web/live", "/l/d.log", 20, 1)
	if e, _ := s.Get("web/live"); e.Offset != 20 || e.Retired || e.Gone {
		t.Fatalf("live entry %+v", e)
	}
}

// TestNewEntryWrittenSoon: the entry of a file seen for the first time is
// on disk at once, not at the next interval, so that a file rotated away
// while logbox is down after a crash can still be found by its identity.
func TestNewEntryWrittenSoon(t *testing.T) {
	path := filepath.Join(t.TempDir(), "checkpoints.json")
	s, err := Open(path, time.Hour, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.Run(ctx)
	s.Set("src/new-file", "/l/a.log", 0, 0)
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, _ := os.ReadFile(path)
		if strings.Contains(string(b), "src/new-file") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("new entry not written within 5s (interval 1h)")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
