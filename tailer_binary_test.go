package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// startWith starts the binary like startBinary, after prep adjusted the
// command (credentials, a shell that sets limits).
func startWith(t *testing.T, bin, workdir string, prep func(*exec.Cmd), args ...string) *proc {
	t.Helper()
	p := launchWith(t, bin, workdir, prep, args...)
	waitRunning(t, p)
	return p
}

// apiStatus is the part of /api/status these tests read.
type apiStatus struct {
	Files []struct {
		Path      string `json:"path"`
		State     string `json:"state"`
		LastError string `json:"last_error"`
	} `json:"files"`
	Sources []struct {
		Name    string `json:"name"`
		NoMatch bool   `json:"no_match"`
		Open    int    `json:"open"`
		Queued  int    `json:"queued"`
		Files   int    `json:"files"`
	} `json:"sources"`
	Tailing struct {
		Files       int    `json:"files"`
		OpenFiles   int    `json:"open_files"`
		QueuedFiles int    `json:"queued_files"`
		FileBudget  int    `json:"file_budget"`
		Changes     string `json:"changes"`
	} `json:"tailing"`
}

func (p *proc) apiStatus(t *testing.T) apiStatus {
	t.Helper()
	resp, err := http.Get(p.url + "/api/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st apiStatus
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

// alive fails the test if the process has exited.
func (p *proc) alive(t *testing.T) {
	t.Helper()
	select {
	case err := <-p.done:
		p.done <- err
		t.Fatalf("logbox exited: %v", err)
	default:
	}
}

// TestManyFilesUnderLowFDLimit: 400 files to follow with `ulimit -n 256`.
// The tailer keeps its files within a descriptor budget that leaves the
// index, etcd and HTTP what they need: every line is indexed once, and the
// status shows the budget. (Before, the tailer took every descriptor, and
// the index could not open its shard: nothing was indexed.)
func TestManyFilesUnderLowFDLimit(t *testing.T) {
	bin := buildBinary(t)
	work := t.TempDir()
	logs := filepath.Join(work, "logs")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		t.Fatal(err)
	}
	const files, perFile = 400, 5
	for i := 0; i < files; i++ {
		var b strings.Builder
		for j := 0; j < perFile; j++ {
			fmt.Fprintf(&b, "fdline tok%04d%02d from a small file\n", i, j)
		}
		if err := os.WriteFile(filepath.Join(logs, fmt.Sprintf("f%03d.log", i)), []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	args := []string{"--collect", "logs/*.log", "--http", "127.0.0.1:0", "--etcd-listen", "127.0.0.1:0", "--scan-interval", "200ms"}
	p := startWith(t, "/bin/sh", work, nil, append([]string{"-c", `ulimit -n 256 && exec "$0" "$@"`, bin}, args...)...)
	deadline := time.Now().Add(60 * time.Second)
	got := 0
	for time.Now().Before(deadline) {
		p.alive(t)
		if got = p.total(t, "fdline"); got == files*perFile {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if got != files*perFile {
		t.Fatalf("%d of %d lines indexed under ulimit -n 256", got, files*perFile)
	}
	st := p.apiStatus(t)
	t.Logf("tailing: %+v", st.Tailing)
	if st.Tailing.FileBudget != 128 || st.Tailing.OpenFiles > st.Tailing.FileBudget || st.Tailing.Files != files {
		t.Fatalf("tailing status %+v, want a budget of 128 (256 minus the reserve)", st.Tailing)
	}
	// Appending to files that were closed for the budget reopens them.
	for i := 0; i < files; i += 40 {
		f, err := os.OpenFile(filepath.Join(logs, fmt.Sprintf("f%03d.log", i)), os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(f, "fdline tok%04d99 appended later\n", i)
		f.Close()
	}
	p.waitTotal(t, "fdline", files*perFile+files/40)
}

// TestWatchErrorDoesNotExit runs logbox as an unprivileged user (as the
// systemd unit does). The owner of the log directory makes it unreadable
// and a line is appended: logbox keeps running, reports the file's error
// in status, keeps reading the file it has open, and clears the error
// once the directory is readable again. (Before, nxadm/tail's watcher hit
// "permission denied" on its stat and called os.Exit.)
func TestWatchErrorDoesNotExit(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run logbox as another user (nobody)")
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skipf("no user nobody: %v", err)
	}
	uid, _ := strconv.Atoi(nobody.Uid)
	gid, _ := strconv.Atoi(nobody.Gid)
	bin := buildBinary(t)
	// t.TempDir is private to root; this tree is reachable by nobody.
	work, err := os.MkdirTemp("", "logbox-nobody-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = os.Chmod(filepath.Join(work, "logs"), 0o755)
		_ = os.RemoveAll(work)
	})
	if err := os.Chmod(work, 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	ubin := filepath.Join(work, "logbox")
	if err := os.WriteFile(ubin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	logs, data := filepath.Join(work, "logs"), filepath.Join(work, "data")
	app := filepath.Join(logs, "app.log")
	for _, d := range []string{logs, data} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeLines(t, app, 0, 10)
	for _, p := range []string{logs, data, app} {
		if err := os.Chown(p, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	asNobody := func(cmd *exec.Cmd) {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		cmd.Env = append(os.Environ(), "HOME="+work)
	}
	p := startWith(t, ubin, work, asNobody, "--data", data, "--collect", "logs/*.log", "--http", "127.0.0.1:0",
		"--etcd-listen", "127.0.0.1:0", "--scan-interval", "200ms", "--host", "nobodybox")
	p.waitTotal(t, "binline", 10)

	// The owner makes the directory unreadable; a line is appended
	// (root may still write there).
	if err := os.Chmod(logs, 0o000); err != nil {
		t.Fatal(err)
	}
	writeLines(t, app, 10, 1)
	var errSeen string
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) && errSeen == "" {
		p.alive(t)
		for _, f := range p.apiStatus(t).Files {
			if f.Path == app && strings.Contains(f.LastError, "permission denied") {
				errSeen = f.LastError
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	p.alive(t)
	if errSeen == "" {
		t.Fatalf("no permission error for %s in status: %+v", app, p.apiStatus(t).Files)
	}
	t.Logf("status while unreadable: %s", errSeen)
	p.waitTotal(t, "binline", 11) // the open file is still read

	// Readable again: the error goes, lines keep coming.
	if err := os.Chmod(logs, 0o755); err != nil {
		t.Fatal(err)
	}
	writeLines(t, app, 11, 1)
	p.waitTotal(t, "binline", 12)
	deadline = time.Now().Add(20 * time.Second)
	for {
		p.alive(t)
		clear := true
		for _, f := range p.apiStatus(t).Files {
			if f.LastError != "" {
				clear = false
			}
		}
		if clear {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("error not cleared: %+v", p.apiStatus(t).Files)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// narrowWriter appends numbered lines to dir/app.log at a steady rate;
// the test rotates the file when it chooses (rotate).
type narrowWriter struct {
	dir     string
	mu      sync.Mutex
	f       *os.File
	written int
	gen     int
	stop    chan struct{}
	done    chan struct{}
}

func (w *narrowWriter) line(b []byte, note string) []byte {
	b = fmt.Appendf(b, "2026-11-25T10:00:00Z INFO crashline tok%07d %s\n", w.written, note)
	w.written++
	return b
}

func (w *narrowWriter) run(t *testing.T) {
	defer close(w.done)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-w.stop:
			w.mu.Lock()
			w.f.Close()
			w.mu.Unlock()
			return
		case <-tick.C:
		}
		w.mu.Lock()
		var b []byte
		for i := 0; i < 20; i++ {
			b = w.line(b, "steady write")
		}
		if _, err := w.f.Write(b); err != nil {
			t.Error(err)
		}
		w.mu.Unlock()
	}
}

// rotate renames app.log to app.log.N (a few late lines still go to the
// old file) or, every other time, copies it there and truncates it.
func (w *narrowWriter) rotate(t *testing.T) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.gen++
	path := filepath.Join(w.dir, "app.log")
	rotated := fmt.Sprintf("%s.%d", path, w.gen)
	if w.gen%2 == 0 {
		b, err := os.ReadFile(path)
		if err == nil {
			err = os.WriteFile(rotated, b, 0o644)
		}
		if err == nil {
			err = os.Truncate(path, 0)
		}
		if err != nil {
			t.Fatal(err)
		}
		return
	}
	if err := os.Rename(path, rotated); err != nil {
		t.Fatal(err)
	}
	var b []byte
	for i := 0; i < 5; i++ {
		b = w.line(b, "late write after rotation")
	}
	if _, err := w.f.Write(b); err != nil {
		t.Fatal(err)
	}
	w.f.Close()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	w.f = f
}

// TestCrashKill9NarrowGlob: the glob matches the live file only
// (logs/app.log), lines are written steadily, and logbox is killed with
// SIGKILL at a random moment; while it is down the file is rotated (by
// rename or copytruncate, alternately, so the unread tail is only in a
// file no glob matches), then logbox is started again. Every line must be
// indexed exactly once: the files that left their path are found by
// identity and read to their end. (Before, each rotation while logbox was
// down lost the unread tail.) Files are rotated only once logbox has seen
// them: a file that logbox never saw, or saw for less than
// checkpoint.NewEntryDelay before the crash, cannot be known.
func TestCrashKill9NarrowGlob(t *testing.T) {
	if testing.Short() {
		t.Skip("kills the binary many times")
	}
	bin := buildBinary(t)
	work, logs, rng := crashWorkdir(t, 2)
	f, err := os.OpenFile(filepath.Join(logs, "app.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	w := &narrowWriter{dir: logs, f: f, stop: make(chan struct{}), done: make(chan struct{})}
	args := []string{"--collect", "logs/app.log", "--http", "127.0.0.1:0", "--etcd-listen", "127.0.0.1:0",
		"--host", "crashbox", "--rotate-wait", "300ms", "--scan-interval", "200ms"}
	const kills = 6
	for i := 0; i < kills; i++ {
		p := startBinary(t, bin, work, args...)
		if i == 0 {
			go w.run(t)
		}
		time.Sleep(time.Duration(1000+rng.IntN(1500)) * time.Millisecond)
		if i%3 == 2 {
			// While running, too; the new file is seen (a scan, and its
			// entry written) before the kill.
			w.rotate(t)
			time.Sleep(time.Duration(700+rng.IntN(600)) * time.Millisecond)
		}
		if err := p.cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		<-p.done
		time.Sleep(time.Duration(rng.IntN(300)) * time.Millisecond)
		w.rotate(t)
		time.Sleep(time.Duration(100+rng.IntN(500)) * time.Millisecond)
	}
	close(w.stop)
	<-w.done
	written := w.written
	t.Logf("%d lines written, %d rotations (%d while logbox was down), %d kills", written, w.gen, kills, kills)

	p := startBinary(t, bin, work, args...)
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		if searchTotal(t, p.url, "crashline") >= uint64(written) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(time.Second) // nothing more may come
	seen, total := allTokens(t, p.url, "crashline")
	missing, doubled := countTokens(t, seen, written)
	if missing > 0 || doubled > 0 || total != uint64(written) {
		if os.Getenv("NARROW_DEBUG") != "" {
			start := -1
			for i := 0; i <= written; i++ {
				if i < written && seen[i] == 0 {
					if start < 0 {
						start = i
					}
				} else if start >= 0 {
					t.Logf("missing %d..%d", start, i-1)
					start = -1
				}
			}
			ents, _ := os.ReadDir(logs)
			for _, e := range ents {
				fi, _ := e.Info()
				st := fi.Sys().(*syscall.Stat_t)
				b, _ := os.ReadFile(filepath.Join(logs, e.Name()))
				first := strings.SplitN(string(b), "\n", 2)[0]
				t.Logf("%s ino %x size %d first %q", e.Name(), st.Ino, fi.Size(), first)
			}
			cp, _ := os.ReadFile(filepath.Join(work, "logbox-data", "checkpoints.json"))
			t.Logf("checkpoints: %s", cp)
		}
		t.Fatalf("%d written, %d indexed: %d missing, %d doubled", written, total, missing, doubled)
	}
}
