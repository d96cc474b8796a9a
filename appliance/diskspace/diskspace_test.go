package diskspace_test

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/logbox/logbox/appliance/diskspace"
	"github.com/logbox/logbox/appliance/diskspace/disktest"
)

func TestParseSize(t *testing.T) {
	ok := map[string]int64{
		"0":          0,
		"1048576":    1 << 20,
		"512MiB":     512 << 20,
		"2GiB":       2 << 30,
		"2gib":       2 << 30,
		"2Gi":        2 << 30,
		"2G":         2 << 30,
		"1.5GiB":     3 << 29,
		"500 MB":     500e6,
		"1KB":        1000,
		"1kib":       1024,
		"64B":        64,
		" 10MiB ":    10 << 20,
		"1TiB":       1 << 40,
		"0.5KiB":     512,
		"9000000000": 9e9,
	}
	for in, want := range ok {
		got, err := diskspace.ParseSize(in)
		if err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1", "-1GiB", "MiB", "12XB", "1.2.3MB", "1e3", "10 MiB x", "8EiB", "99999999999TiB"} {
		if n, err := diskspace.ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) = %d, want an error", in, n)
		}
	}
}

func TestFormatSizeRoundTrips(t *testing.T) {
	for n, want := range map[int64]string{
		0: "0", 512: "512", 1 << 10: "1KiB", 512 << 20: "512MiB", 1 << 30: "1GiB", 3 << 29: "1.5GiB", 40956 << 10: "40.0MiB",
		1<<30 + 1: "1.0GiB", 5 << 40: "5TiB", 1536: "1.5KiB",
	} {
		if got := diskspace.FormatSize(n); got != want {
			t.Errorf("FormatSize(%d) = %q, want %q", n, got, want)
		}
	}
	for _, n := range []int64{0, 1000, 1 << 20, 7 << 30, 123 << 10, 3 << 29} {
		back, err := diskspace.ParseSize(diskspace.FormatSize(n))
		if err != nil || back != n {
			t.Errorf("FormatSize(%d) = %q reads back as %d, %v", n, diskspace.FormatSize(n), back, err)
		}
	}
}

// TestGuardOnAFullDisk fills a small tmpfs below the floor and empties
// it again: Check fails with ErrLow and Status says since when; Wait
// returns once the ballast is gone; a floor of 0 never pauses.
func TestGuardOnAFullDisk(t *testing.T) {
	dir := disktest.Tmpfs(t, 32<<20)
	g := diskspace.New(diskspace.Config{Dir: dir, MinFree: 8 << 20, Interval: 20 * time.Millisecond}, nil)
	if err := g.Check(); err != nil {
		t.Fatalf("empty disk: %v", err)
	}
	if st := g.Status(); st.Low || st.FreeBytes < 30<<20 || st.MinFreeBytes != 8<<20 || st.Dir != dir {
		t.Fatalf("empty disk status %+v", st)
	}
	ballast := disktest.Fill(t, dir, 4<<20)
	before := time.Now()
	err := g.Check()
	var low *diskspace.LowError
	if !errors.Is(err, diskspace.ErrLow) || !errors.As(err, &low) || low.Free > 4<<20 || low.MinFree != 8<<20 {
		t.Fatalf("Check below the floor: %v", err)
	}
	st := g.Status()
	if !st.Low || st.Since.Before(before.Add(-time.Second)) || st.FreeBytes > 4<<20 {
		t.Fatalf("status below the floor %+v", st)
	}

	waited := make(chan error, 1)
	go func() { waited <- g.Wait(context.Background()) }()
	select {
	case err := <-waited:
		t.Fatalf("Wait returned %v while the disk is low", err)
	case <-time.After(100 * time.Millisecond):
	}
	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-waited:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Wait did not return after the ballast was removed")
	}
	if st := g.Status(); st.Low || !st.Since.IsZero() {
		t.Fatalf("status after the ballast is gone %+v", st)
	}

	disktest.Fill(t, dir, 1<<20)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := g.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait on a low disk with a short context: %v", err)
	}
	g.SetMinFree(0)
	if err := g.Check(); err != nil {
		t.Fatalf("floor 0 still pauses: %v", err)
	}
}
