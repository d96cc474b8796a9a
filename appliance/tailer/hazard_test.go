package tailer

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/logbox/logbox/appliance/pathpolicy"
	"github.com/logbox/logbox/appliance/pipeline"
)

// swapAfterCheck returns an Allowed policy for root that, right after it
// allowed a file the first time, runs swap: a local user racing the check.
func swapAfterCheck(t *testing.T, root string, swap func()) func(string) error {
	t.Helper()
	policy, err := pathpolicy.New([]string{root})
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	return func(p string) error {
		if err := policy.CheckFile(p); err != nil {
			return err
		}
		once.Do(swap)
		return nil
	}
}

// raceCheck returns an Allowed policy for root whose first check runs
// while a local user has pointed a symlink somewhere harmless (before),
// and that lets the user point it back (after) as soon as it decided.
func raceCheck(t *testing.T, root string, before, after func()) func(string) error {
	t.Helper()
	policy, err := pathpolicy.New([]string{root})
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	return func(p string) error {
		first := false
		once.Do(func() { first = true })
		if !first {
			return policy.CheckFile(p)
		}
		before()
		defer after()
		return policy.CheckFile(p)
	}
}

func startWith(t *testing.T, cfg Config, sink pipeline.Sink, cp Checkpoints, srcs ...pipeline.Source) (*Manager, context.CancelFunc, chan error) {
	t.Helper()
	m := New(cfg, sink, cp, discard())
	m.Apply(srcs)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	return m, cancel, done
}

// TestSymlinkSwapBetweenCheckAndOpen: app.log is a symlink a local user
// controls, pointing at a root-only secret outside the allowed root. The
// user points it at a harmless file inside the root just while the policy
// checks it, and back at the secret right after. What is read must be
// what was checked: the secret is refused and never read. (Before, the
// path was checked and then opened by name: the secret was indexed.)
func TestSymlinkSwapBetweenCheckAndOpen(t *testing.T) {
	root, outside := t.TempDir(), t.TempDir()
	secret := filepath.Join(outside, "secret")
	mkfile(t, secret, "SECRET root-only line\n")
	inside := filepath.Join(root, "real.txt")
	mkfile(t, inside, "harmless line\n")
	link := filepath.Join(root, "app.log")
	point := func(target string) func() {
		return func() {
			tmp := link + ".tmp"
			_ = os.Remove(tmp)
			if err := os.Symlink(target, tmp); err != nil {
				t.Error(err)
			}
			if err := os.Rename(tmp, link); err != nil {
				t.Error(err)
			}
		}
	}
	point(secret)()
	sink, cp := &memSink{}, newCP()
	m, cancel, done := startWith(t, Config{Host: "h", ScanInterval: 20 * time.Millisecond, Allowed: raceCheck(t, root, point(inside), point(secret))}, sink, cp,
		pipeline.Source{Name: "s", Paths: []string{link}})
	defer func() { cancel(); <-done }()
	refused := func() bool {
		for _, f := range m.Status() {
			if f.Path == link && strings.Contains(f.LastError, "outside the allowed roots") {
				return true
			}
		}
		return false
	}
	leaked := func() bool {
		for _, r := range sink.lines() {
			if strings.Contains(r.Line, "SECRET") {
				return true
			}
		}
		return false
	}
	waitFor(t, "the link to the secret refused (or read)", func() bool { return refused() || leaked() })
	time.Sleep(200 * time.Millisecond)
	if leaked() {
		t.Fatal("a file outside the allowed roots was read")
	}
}

// TestFIFOSwapDoesNotBlock: the moment the policy has allowed app.log, a
// local user renames a FIFO over it. Nothing a local user can create may
// block a source: other files of the source are still read, the FIFO is
// refused with a reason, and the tailer stops promptly. (Before, open()
// on the FIFO hung the source's scan for good.)
func TestFIFOSwapDoesNotBlock(t *testing.T) {
	root := t.TempDir()
	path := filepath.Join(root, "app.log")
	mkfile(t, path, "first\n")
	fifo := filepath.Join(root, "fifo.tmp")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	// Whatever happens, release a reader stuck in open() at the end.
	t.Cleanup(func() {
		if f, err := os.OpenFile(path, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			f.Close()
		}
	})
	allowed := swapAfterCheck(t, root, func() {
		if err := os.Rename(fifo, path); err != nil {
			t.Error(err)
		}
	})
	sink, cp := &memSink{}, newCP()
	m, cancel, done := startWith(t, Config{Host: "h", ScanInterval: 20 * time.Millisecond, Allowed: allowed}, sink, cp,
		pipeline.Source{Name: "s", Paths: []string{filepath.Join(root, "*.log")}})
	time.Sleep(200 * time.Millisecond)
	mkfile(t, filepath.Join(root, "other.log"), "other line\n")
	waitFor(t, "the other file read, the FIFO refused", func() bool {
		fifoRefused := false
		for _, f := range m.Status() {
			if f.Path == path && strings.Contains(f.LastError, "FIFO") {
				fifoRefused = true
			}
		}
		for _, r := range sink.lines() {
			if r.Line == "other line" {
				return fifoRefused
			}
		}
		return false
	})
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("tailer did not stop: a reader is stuck")
	}
}

// TestOpenFileNeverBlocksOrEscapes: openFile on a FIFO, a symlink to a
// FIFO, a directory or a device returns at once with a refusal; on a
// symlink leading outside it refuses by the real path.
func TestOpenFileNeverBlocksOrEscapes(t *testing.T) {
	root, outside := t.TempDir(), t.TempDir()
	fifo := filepath.Join(root, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(fifo, filepath.Join(root, "fifo-link")); err != nil {
		t.Fatal(err)
	}
	mkfile(t, filepath.Join(outside, "secret"), "s\n")
	if err := os.Symlink(filepath.Join(outside, "secret"), filepath.Join(root, "escape")); err != nil {
		t.Fatal(err)
	}
	mkfile(t, filepath.Join(root, "ok.log"), "ok\n")
	policy, err := pathpolicy.New([]string{root})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path, want string
	}{
		{filepath.Join(root, "fifo"), "FIFO"},
		{filepath.Join(root, "fifo-link"), "FIFO"},
		{root, "directory"},
		{"/dev/null", "character device"},
		{filepath.Join(root, "escape"), "outside the allowed roots"},
		{filepath.Join(root, "ok.log"), ""},
	} {
		res := make(chan error, 1)
		go func() {
			f, real, err := openFile(tc.path, policy.CheckReal)
			if err == nil {
				if real != filepath.Join(root, "ok.log") {
					err = os.ErrInvalid
				}
				f.Close()
			}
			res <- err
		}()
		select {
		case err := <-res:
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("openFile(%s) = %v, want %q", tc.path, err, tc.want)
			}
		case <-time.After(3 * time.Second):
			t.Fatalf("openFile(%s) blocked", tc.path)
		}
	}
}
