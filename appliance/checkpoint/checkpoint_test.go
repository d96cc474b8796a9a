package checkpoint

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
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
