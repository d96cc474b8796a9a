package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/logbox/logbox/appliance"
	"github.com/logbox/logbox/appliance/diskspace/disktest"
	"github.com/logbox/logbox/appliance/kafkatest"
)

func TestMinFreeDiskFlag(t *testing.T) {
	load := func(args ...string) int64 {
		t.Helper()
		rc, err := loadRunConfig(args, io.Discard)
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		return rc.MinFreeDisk
	}
	if got := load(); got != 1<<30 {
		t.Errorf("default: %d, want 1 GiB", got)
	}
	for in, want := range map[string]int64{"512MiB": 512 << 20, "2GiB": 2 << 30, "1.5GB": 1.5e9, "1048576": 1 << 20, "0": 0} {
		if got := load("--min-free-disk", in); got != want {
			t.Errorf("--min-free-disk %s: %d, want %d", in, got, want)
		}
	}
	file := filepath.Join(t.TempDir(), "logbox.yaml")
	if err := os.WriteFile(file, []byte("min-free-disk: 3GiB\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := load("--config", file); got != 3<<30 {
		t.Errorf("from the config file: %d, want 3 GiB", got)
	}
	t.Setenv("LOGBOX_MIN_FREE_DISK", "256MiB")
	if got := load("--config", file); got != 256<<20 {
		t.Errorf("env over file: %d, want 256 MiB", got)
	}
	for _, bad := range []string{"12XB", "-1", "lots"} {
		if _, err := loadRunConfig([]string{"--min-free-disk", bad}, io.Discard); err == nil || !strings.Contains(err.Error(), "min-free-disk") {
			t.Errorf("--min-free-disk %s: %v, want an error naming the flag", bad, err)
		}
	}
}

// TestEveryFlagIsASetting: each run flag (as --help lists them) is a
// setting that SIGHUP applies or names (appliance.SettingFlags), except
// the two main itself handles; and each setting is a flag.
func TestEveryFlagIsASetting(t *testing.T) {
	var help bytes.Buffer
	if _, err := loadRunConfig([]string{"--help"}, &help); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("--help: %v", err)
	}
	flags := regexp.MustCompile(`(?m)^  -([a-z0-9-]+)`).FindAllStringSubmatch(help.String(), -1)
	if len(flags) < 30 {
		t.Fatalf("found %d flags in --help:\n%s", len(flags), help.String())
	}
	settings := appliance.SettingFlags()
	mainOnly := []string{"config", "log-level"} // the file itself; the level applies on SIGHUP in main
	var listed []string
	for _, f := range flags {
		listed = append(listed, f[1])
		if !slices.Contains(settings, f[1]) && !slices.Contains(mainOnly, f[1]) {
			t.Errorf("flag --%s is not a setting of appliance.Config that SIGHUP applies or names (runSettings)", f[1])
		}
	}
	for _, s := range settings {
		if !slices.Contains(listed, s) {
			t.Errorf("setting %q is not a flag", s)
		}
	}
}

// TestFullDiskAtStart: on a disk below the floor, or with less room than
// the embedded etcd's write-ahead log takes, logbox exits at once with
// one line that says how much is free, the floor and the flag; no panic,
// no stack trace.
func TestFullDiskAtStart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	cases := []struct {
		name  string
		size  int64
		args  []string
		wants []string
	}{
		{"below the default floor", 100 << 20, nil, []string{"100MiB free", "--min-free-disk 1GiB"}},
		{"too little for etcd's WAL", 48 << 20, []string{"--min-free-disk", "1MiB"}, []string{"48MiB free", "embedded etcd", "--min-free-disk is 1MiB"}},
	}
	bin := buildBinary(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			data := disktest.Tmpfs(t, c.size)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, append([]string{"--data", filepath.Join(data, "data"), "--http", "127.0.0.1:0", "--etcd-listen", "127.0.0.1:0"}, c.args...)...)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() == 0 || ctx.Err() != nil {
				t.Fatalf("logbox on a full disk: %v (want a non-zero exit)\n%s", err, stderr.String())
			}
			out := strings.TrimSpace(stderr.String())
			if strings.Contains(out, "\n") || stdout.Len() > 0 {
				t.Errorf("want one line on stderr and nothing on stdout, got:\n%s%s", stdout.String(), out)
			}
			for _, w := range append(c.wants, "not enough free disk space") {
				if !strings.Contains(out, w) {
					t.Errorf("the line does not say %q: %s", w, out)
				}
			}
			if strings.Contains(out, "panic") || strings.Contains(out, "goroutine") {
				t.Errorf("a panic or stack trace: %s", out)
			}
		})
	}

	// An agent indexes nothing: below the floor it starts and ships, and
	// says the disk is low.
	t.Run("an agent below the floor starts", func(t *testing.T) {
		data := disktest.Tmpfs(t, 200<<20)
		p := startBinary(t, bin, t.TempDir(), "--role", "agent", "--kafka", "127.0.0.1:1", "--data", filepath.Join(data, "data"),
			"--http", "127.0.0.1:0", "--etcd-listen", "127.0.0.1:0")
		var body struct{ Error string }
		if code := getJSON(t, p.url+"/readyz", &body); code != http.StatusServiceUnavailable || !strings.Contains(body.Error, "this agent keeps shipping") {
			t.Errorf("/readyz of an agent below the floor: %d %s", code, body.Error)
		}
		var st diskStatus
		getJSON(t, p.url+"/api/status", &st)
		if !st.Disk.Low || st.Disk.Paused {
			t.Errorf("agent disk status %+v: want low, nothing paused", st.Disk)
		}
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		select {
		case <-p.done:
		case <-time.After(30 * time.Second):
			t.Error("agent did not exit 30s after SIGTERM")
		}
	})
}

func TestFullDiskDirect(t *testing.T) { testFullDisk(t, false) }

func TestFullDiskKafka(t *testing.T) { testFullDisk(t, true) }

// diskStatus is the part of /api/status these tests read.
type diskStatus struct {
	Files []struct {
		Offset     int64 `json:"offset"`
		ReadOffset int64 `json:"read_offset"`
	} `json:"files"`
	Consumer *struct{ Commits, Indexed uint64 } `json:"kafka_consumer"`
	Disk     struct {
		FreeBytes    int64 `json:"free_bytes"`
		MinFreeBytes int64 `json:"min_free_bytes"`
		Low          bool  `json:"low"`
		Paused       bool  `json:"paused"`
	} `json:"disk"`
}

func getJSON(t *testing.T, url string, out any) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s: %v: %s", url, err, b)
		}
	}
	return resp.StatusCode
}

// waitFor polls cond every 100ms for at most d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not after %v: %s", d, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// testFullDisk runs the real binary collecting a file (direct, or
// through Kafka), fills its data dir's disk below --min-free-disk with a
// ballast file and checks that indexing pauses before anything fails:
// /readyz answers 503 saying why, status and metrics say paused, lines
// written meanwhile are not indexed and (direct mode) their checkpoint
// does not move, (Kafka mode) they are shipped but no offset is
// committed, and the process lives. Then the ballast goes and every line
// is indexed exactly once, by itself.
func testFullDisk(t *testing.T, kafka bool) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	data := filepath.Join(disktest.Tmpfs(t, 256<<20), "data")
	bin := buildBinary(t)
	work := t.TempDir()
	if err := os.MkdirAll(filepath.Join(work, "logs"), 0o755); err != nil {
		t.Fatal(err)
	}
	logFile := filepath.Join(work, "logs", "app.log")
	writeLines(t, logFile, 0, 1000)
	args := []string{"--data", data, "--collect", "logs/*.log", "--http", "127.0.0.1:0", "--etcd-listen", "127.0.0.1:0",
		"--host", "disktest", "--min-free-disk", "64MiB"}
	if kafka {
		k := kafkatest.Start(t)
		args = append(args, "--kafka", strings.Join(k.Brokers, ","), "--topic", kafkatest.UniqueName(t, "logbox"),
			"--kafka-group", kafkatest.UniqueName(t, "indexers"))
	}
	p := startBinary(t, bin, work, args...)
	p.waitTotal(t, "binline", 1000)
	alive := func() {
		t.Helper()
		select {
		case err := <-p.done:
			t.Fatalf("logbox died: %v", err)
		default:
		}
	}

	ballast := disktest.Fill(t, data, 40<<20)
	var body struct{ Error string }
	waitFor(t, 30*time.Second, "/readyz answers 503", func() bool {
		return getJSON(t, p.url+"/readyz", &body) == http.StatusServiceUnavailable
	})
	for _, w := range []string{"disk low", "--min-free-disk 64MiB", data} {
		if !strings.Contains(body.Error, w) {
			t.Errorf("/readyz does not say %q: %s", w, body.Error)
		}
	}
	var st diskStatus
	getJSON(t, p.url+"/api/status", &st)
	if !st.Disk.Low || !st.Disk.Paused || st.Disk.FreeBytes >= 64<<20 || st.Disk.MinFreeBytes != 64<<20 {
		t.Fatalf("status while the disk is low: %+v", st.Disk)
	}
	metrics := metricsText(t, p.url)
	for _, m := range []string{"logbox_index_paused 1", "logbox_disk_low 1", "logbox_disk_min_free_bytes 6.7108864e+07"} {
		if !strings.Contains(metrics, m+"\n") {
			t.Errorf("metrics lack %q", m)
		}
	}
	if len(st.Files) != 1 {
		t.Fatalf("status files: %+v", st.Files)
	}
	ackedBefore := st.Files[0].Offset
	var committed uint64
	if kafka {
		committed = st.Consumer.Commits
	}

	writeLines(t, logFile, 1000, 500)
	fi, err := os.Stat(logFile)
	if err != nil {
		t.Fatal(err)
	}
	if kafka {
		// The agent side keeps shipping: the new lines reach Kafka.
		waitFor(t, 30*time.Second, "the new lines are acked by Kafka", func() bool {
			getJSON(t, p.url+"/api/status", &st)
			return st.Files[0].Offset == fi.Size()
		})
	} else {
		waitFor(t, 30*time.Second, "the new lines are read", func() bool {
			getJSON(t, p.url+"/api/status", &st)
			return st.Files[0].ReadOffset == fi.Size()
		})
	}
	time.Sleep(3 * time.Second) // time to index them, were it not paused
	alive()
	if n := p.total(t, "binline"); n != 1000 {
		t.Errorf("%d lines indexed while paused, want the 1000 from before", n)
	}
	getJSON(t, p.url+"/api/status", &st)
	if !kafka && st.Files[0].Offset != ackedBefore {
		t.Errorf("the checkpoint moved from %d to %d while indexing was paused", ackedBefore, st.Files[0].Offset)
	}
	if kafka && st.Consumer.Commits != committed {
		t.Errorf("kafka offsets committed while indexing was paused (%d commits, were %d)", st.Consumer.Commits, committed)
	}

	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "/readyz answers 200 again", func() bool {
		return getJSON(t, p.url+"/readyz", nil) == http.StatusOK
	})
	p.waitTotal(t, "binline", 1500)
	getJSON(t, p.url+"/api/status", &st)
	if st.Disk.Low || st.Disk.Paused {
		t.Errorf("status after the ballast is gone: %+v", st.Disk)
	}
	if !kafka && st.Files[0].Offset != fi.Size() {
		t.Errorf("checkpoint at %d after resuming, want %d", st.Files[0].Offset, fi.Size())
	}
	alive()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Error("no exit 30s after SIGTERM")
	}
}

func metricsText(t *testing.T, base string) string {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		b.WriteString(sc.Text() + "\n")
	}
	return b.String()
}
