// Package disktest gives tests a small disk of their own to fill: a
// tmpfs mounted on a temporary directory. Mounting needs root; tests skip
// (saying why) where it is not possible.
package disktest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/logbox/logbox/appliance/diskspace"
)

// Tmpfs mounts a tmpfs of size bytes on a new temporary directory and
// returns it; t.Cleanup unmounts it (lazily, so a process still holding
// files there does not keep it busy). It skips t when not running as
// root or when the mount fails.
func Tmpfs(t testing.TB, size int64) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs to fill (run the tests as root, e.g. in a container)")
	}
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d,mode=0755", size)); err != nil {
		t.Skipf("cannot mount a tmpfs on %s (%v); this test needs one to fill", dir, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount tmpfs %s: %v", dir, err)
		}
	})
	return dir
}

// Resize changes the size of the tmpfs mounted on dir (it may not shrink
// below what it holds).
func Resize(t testing.TB, dir string, size int64) {
	t.Helper()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_REMOUNT, fmt.Sprintf("size=%d", size)); err != nil {
		t.Fatalf("resize tmpfs %s to %d bytes: %v", dir, size, err)
	}
}

// Fill writes a ballast file into dir until at most leave bytes are free
// (about leave, less what others write meanwhile) and returns its path;
// removing it gives the space back. Leave 0 fills the disk completely.
func Fill(t testing.TB, dir string, leave int64) string {
	t.Helper()
	f, err := os.CreateTemp(dir, "ballast-*")
	if err != nil {
		t.Fatalf("create ballast: %v", err)
	}
	defer f.Close()
	chunk := make([]byte, 1<<20)
	for i := range chunk {
		chunk[i] = byte(i) // not zeros: no file system may keep them sparse
	}
	for {
		free, err := diskspace.Free(dir)
		if err != nil {
			t.Fatal(err)
		}
		n := free - leave
		if n <= 0 {
			break
		}
		if _, err := f.Write(chunk[:min(n, int64(len(chunk)))]); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				break
			}
			t.Fatalf("write ballast: %v", err)
		}
	}
	if err := f.Sync(); err != nil && !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("sync ballast: %v", err)
	}
	return filepath.Clean(f.Name())
}
