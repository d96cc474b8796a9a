package checkpoint

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/logbox/logbox/appliance/diskspace/disktest"
)

// TestFullDiskRetried: with the disk full, a checkpoint write fails
// without touching the file on disk (the old checkpoints stay whole) and
// without ending Run; once there is room the next round writes it.
func TestFullDiskRetried(t *testing.T) {
	dir := disktest.Tmpfs(t, 1<<20)
	path := filepath.Join(dir, "checkpoints.json")
	s, err := Open(path, 20*time.Millisecond, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	s.Set("a", "/x/a.log", 10, 1)
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()

	ballast := disktest.Fill(t, dir, 0)
	s.Set("a", "/x/a.log", 99, 2)
	time.Sleep(200 * time.Millisecond) // several failed rounds
	select {
	case err := <-done:
		t.Fatalf("Run ended on a full disk: %v", err)
	default:
	}
	if r, err := Open(path, time.Second, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatalf("checkpoints unreadable after failed writes: %v", err)
	} else if off, _ := r.Offset("a"); off != 10 {
		t.Fatalf("offset on disk %d while the disk is full, want the old 10", off)
	}

	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		r, err := Open(path, time.Second, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		if off, _ := r.Offset("a"); off == 99 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("checkpoint not written within 5s of the disk getting room")
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
