package settings

import (
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// envKillDir makes TestKilledFirstStartChild start an embedded etcd in that
// directory and SIGKILL its own process the moment etcd's write-ahead log
// appears, before etcd saved anything into it.
const envKillDir = "LOGBOX_TEST_KILL_ETCD_DIR"

func TestKilledFirstStartChild(t *testing.T) {
	dir := os.Getenv(envKillDir)
	if dir == "" {
		t.Skip("run by TestKilledFirstStart")
	}
	go func() {
		for {
			for _, d := range []string{dir, dir + ".new"} {
				if _, err := os.Stat(filepath.Join(d, "member", "wal")); err == nil {
					_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
				}
			}
			time.Sleep(20 * time.Microsecond)
		}
	}()
	if _, err := StartEmbedded(dir, "127.0.0.1:0", slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	t.Fatal("etcd started although the process should have been killed first")
}

// An embedded etcd killed in its first start, right after it created its
// write-ahead log, starts again: etcd itself would wait forever for a
// leader (the log lacks the member's own configuration).
func TestKilledFirstStart(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "etcd")
	cmd := exec.Command(os.Args[0], "-test.run", "^TestKilledFirstStartChild$", "-test.v")
	cmd.Env = append(os.Environ(), envKillDir+"="+dir)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if err == nil || !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("the child was not killed in its first start: %v\n%s", err, out)
	}
	done := make(chan error, 1)
	go func() {
		e, err := StartEmbedded(dir, "127.0.0.1:0", slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err == nil {
			e.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("start after a killed first start: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("etcd not ready 20s after a start that follows a first start killed right after it made its log")
	}
}
