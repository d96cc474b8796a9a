package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/logbox/logbox/appliance/pipeline"
	"github.com/logbox/logbox/appliance/tailer"
)

// Knobs of the many-files benchmarks.
const (
	envFiles     = "LOGBOX_BENCH_FILES"      // files followed (default 10000)
	envFileLines = "LOGBOX_BENCH_FILE_LINES" // lines per file (default 10)
	envNofile    = "LOGBOX_BENCH_NOFILE"     // RLIMIT_NOFILE of the process (default 1024)
)

// writeSmallFiles writes n files of perFile lines each below dir; every
// line carries a unique token.
func writeSmallFiles(b *testing.B, dir string, n, perFile int) {
	b.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	for i := 0; i < n; i++ {
		var sb strings.Builder
		for j := 0; j < perFile; j++ {
			fmt.Fprintf(&sb, "2026-11-25T10:00:00Z INFO manyfiles tok%06d%03d container says something\n", i, j)
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("c%05d.log", i)), []byte(sb.String()), 0o644); err != nil {
			b.Fatal(err)
		}
	}
}

// cpuSeconds is the user+system CPU time of process pid.
func cpuSeconds(pid int) float64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(raw)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // USER_HZ
}

// metric reads one unlabelled sample from /metrics.
func metric(base, name string) float64 {
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for line := range strings.SplitSeq(string(body), "\n") {
		if rest, ok := strings.CutPrefix(line, name+" "); ok {
			v, _ := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			return v
		}
	}
	return 0
}

// BenchmarkManyFiles: the real binary, direct mode, follows 10 000 small
// files (/var/log/containers style) started under `ulimit -n 1024`.
// Reported: time until every line is indexed, peak and idle RSS, open
// descriptors and goroutines, CPU while idle, and the time for lines
// appended to 1 000 files (most of them closed by then) to be indexed.
// Targets (issue 11): within 200 MiB RSS, every line indexed once.
//
//	go test ./bench -run '^$' -bench ManyFiles -benchtime 1x -timeout 30m
func BenchmarkManyFiles(b *testing.B) {
	n := envInt(b, envFiles, 10000)
	perFile := envInt(b, envFileLines, 10)
	nofile := envInt(b, envNofile, 1024)
	dir := b.TempDir()
	logs := filepath.Join(dir, "containers")
	writeSmallFiles(b, logs, n, perFile)
	bin := filepath.Join(dir, "logbox")
	build := exec.Command("go", "build", "-o", bin, "github.com/logbox/logbox")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		b.Fatalf("build logbox: %v", err)
	}
	want := uint64(n * perFile)

	wrap := []string{"/bin/sh", "-c", fmt.Sprintf(`ulimit -n %d && exec "$0" "$@"`, nofile)}
	p := startLogboxVia(b, b, wrap, bin, filepath.Join(dir, "data"), "--collect", filepath.Join(logs, "*.log"))
	pid := p.cmd.Process.Pid
	deadline := time.Now().Add(20 * time.Minute)
	for {
		st, err := p.status()
		if err == nil && st.docs() >= want {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d lines indexed after 20 minutes\n%s", st.docs(), want, p.warnings())
		}
		select {
		case err := <-p.done:
			b.Fatalf("logbox exited: %v\n%s", err, p.warnings())
		case <-time.After(200 * time.Millisecond):
		}
	}
	indexed := time.Since(p.started)
	tot, err := total(p.url, "manyfiles")
	if err != nil {
		b.Fatal(err)
	}
	st, _ := p.status()
	if st.docs() != want || tot != want {
		b.Fatalf("%d lines written, index holds %d, search finds %d: every line must be indexed once", want, st.docs(), tot)
	}
	peak := p.peakRSSMiB()

	// Idle: let the tailer settle, then measure CPU over a while.
	time.Sleep(10 * time.Second)
	idleFor := 30 * time.Second
	c0 := cpuSeconds(pid)
	time.Sleep(idleFor)
	idleCPU := (cpuSeconds(pid) - c0) / idleFor.Seconds() * 100
	fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	goroutines := metric(p.url, "go_goroutines")
	heap := metric(p.url, "go_memstats_heap_inuse_bytes") / mib
	idleRSS := float64(procStatusKiB(pid, "VmRSS")) / 1024
	var tl struct {
		Tailing tailer.Summary `json:"tailing"`
	}
	_ = getJSON(p.url+"/api/status", &tl)

	// Lines appended to every tenth file: closed files open again.
	appendAt := time.Now()
	for i := 0; i < n; i += 10 {
		f, err := os.OpenFile(filepath.Join(logs, fmt.Sprintf("c%05d.log", i)), os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			b.Fatal(err)
		}
		fmt.Fprintf(f, "2026-11-25T10:00:01Z INFO manyfiles tok%06d999 appended later\n", i)
		f.Close()
	}
	want2 := want + uint64((n+9)/10)
	for {
		st, err := p.status()
		if err == nil && st.docs() >= want2 {
			break
		}
		if time.Since(appendAt) > 5*time.Minute {
			b.Fatalf("%d of %d lines indexed 5 minutes after the appends", st.docs(), want2)
		}
		time.Sleep(100 * time.Millisecond)
	}
	reopen := time.Since(appendAt)
	tot2, _ := total(p.url, "manyfiles")
	peak = max(peak, p.peakRSSMiB())

	b.ReportMetric(indexed.Seconds(), "s-to-index")
	b.ReportMetric(peak, "peak-RSS-MiB")
	b.ReportMetric(idleRSS, "idle-RSS-MiB")
	b.ReportMetric(idleCPU, "idle-CPU-%")
	fmt.Printf("| files | lines | nofile | all indexed | peak RSS | idle RSS | Go heap | fds | goroutines | idle CPU | file budget / open / queued | %d appends indexed |\n", (n+9)/10)
	fmt.Println("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|")
	fmt.Printf("| %d | %d | %d | %.1f s | %.0f MiB | %.0f MiB | %.0f MiB | %d | %.0f | %.2f%% | %d / %d / %d | %.1f s |\n",
		n, want, nofile, indexed.Seconds(), peak, idleRSS, heap, len(fds), goroutines, idleCPU,
		tl.Tailing.FileBudget, tl.Tailing.OpenFiles, tl.Tailing.QueuedFiles, reopen.Seconds())
	if tot2 != want2 {
		b.Errorf("after the appends search finds %d lines, want %d", tot2, want2)
	}
	if peak > 200 {
		b.Errorf("peak RSS %.0f MiB, target 200 MiB", peak)
	}
}

// countSink acks every batch at once and counts lines.
type countSink struct{ lines atomic.Int64 }

func (s *countSink) Publish(ctx context.Context, b *pipeline.Batch) error {
	s.lines.Add(int64(len(b.Records)))
	b.Ack()
	return nil
}

type nopCheckpoints struct{}

func (nopCheckpoints) Offset(string) (int64, bool)       { return 0, false }
func (nopCheckpoints) Set(string, string, int64, uint64) {}
func (nopCheckpoints) Retire(string)                     {}
func (nopCheckpoints) Adopt(string)                      {}
func (nopCheckpoints) Finish(string, int64)              {}
func (nopCheckpoints) KeepSources([]string)              {}
func (nopCheckpoints) Candidates(string, string, func(string, string, int64, uint64, bool) bool) (string, bool) {
	return "", false
}

// BenchmarkIdleFileCost measures the tailer alone, in process: the heap
// and goroutines each followed idle file costs once everything is read
// (the target: at most 16 KB and no goroutine per file), and the CPU the
// process uses while nothing changes.
//
//	go test ./bench -run '^$' -bench IdleFileCost -benchtime 1x
func BenchmarkIdleFileCost(b *testing.B) {
	n := envInt(b, envFiles, 10000)
	perFile := envInt(b, envFileLines, 10)
	dir := b.TempDir()
	writeSmallFiles(b, dir, n, perFile)
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	g0 := runtime.NumGoroutine()

	sink := &countSink{}
	m := tailer.New(tailer.Config{Host: "bench", MaxOpenFiles: 768}, sink, nopCheckpoints{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	m.Apply([]pipeline.Source{{Name: "containers", Paths: []string{filepath.Join(dir, "*.log")}}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = m.Run(ctx)
	}()
	defer func() { cancel(); <-done }()
	start := time.Now()
	for sink.lines.Load() < int64(n*perFile) {
		if time.Since(start) > 10*time.Minute {
			b.Fatalf("%d of %d lines read", sink.lines.Load(), n*perFile)
		}
		time.Sleep(20 * time.Millisecond)
	}
	readAll := time.Since(start)
	time.Sleep(2 * time.Second) // every file idle
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	perFileBytes := float64(int64(after.HeapInuse)-int64(before.HeapInuse)) / float64(n)
	goroutines := runtime.NumGoroutine() - g0

	var ru0, ru1 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	idleFor := 10 * time.Second
	time.Sleep(idleFor)
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	cpu := func(ru syscall.Rusage) float64 {
		return float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
	}
	idleCPU := (cpu(ru1) - cpu(ru0)) / idleFor.Seconds() * 100
	sum := m.Summary()
	b.ReportMetric(perFileBytes, "heap-B/idle-file")
	b.ReportMetric(float64(goroutines), "goroutines")
	b.ReportMetric(idleCPU, "idle-CPU-%")
	fmt.Printf("%d idle files: read in %v, heap %.0f B/file, %d goroutines in all (%d workers + watcher + scans), idle CPU %.2f%% of a core, %d open of a budget of %d\n",
		n, readAll.Round(time.Millisecond), perFileBytes, goroutines, 4, idleCPU, sum.OpenFiles, sum.FileBudget)
	if perFileBytes > 16<<10 {
		b.Errorf("%.0f bytes of heap per idle file, target 16 KB", perFileBytes)
	}
}
