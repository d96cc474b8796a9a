package settings

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/logbox/logbox/appliance/pathpolicy"
)

// cpuTime is the CPU this process has used (user + system).
func cpuTime(tb testing.TB) time.Duration {
	tb.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkWatchAddSources grows a watched store from 1 000 to 2 000
// sources, one etcd write each, with the real path policy, and reports the
// process CPU (etcd's own work included) until the watch has reported all
// 2 000: go test ./appliance/settings -run '^$' -bench WatchAddSources -benchtime 1x
func BenchmarkWatchAddSources(b *testing.B) {
	const before, after = 1000, 2000
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for b.Loop() {
		b.StopTimer()
		dir := b.TempDir()
		e, err := StartEmbedded(filepath.Join(dir, "etcd"), "127.0.0.1:0", log)
		if err != nil {
			b.Fatal(err)
		}
		root := filepath.Join(dir, "logs")
		if err := os.MkdirAll(root, 0o755); err != nil {
			b.Fatal(err)
		}
		policy, err := pathpolicy.New([]string{root})
		if err != nil {
			b.Fatal(err)
		}
		s := NewStore(e.Client(), policy.CheckGlob, log)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		put := func(i int) {
			name := fmt.Sprintf("s%04d", i)
			v := fmt.Sprintf(`{"name":%q,"paths":[%q],"fields":{"team":"t%d"}}`, name, filepath.Join(root, name, "*.log"), i%7)
			if _, err := e.Client().Put(ctx, SourcesPrefix+name, v); err != nil {
				b.Fatal(err)
			}
		}
		for i := range before {
			put(i)
		}
		counts := make(chan int, 4096)
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = s.Watch(ctx, "box1", func(st State) { counts <- len(st.Sources) })
		}()
		waitFor := func(n int) {
			for {
				select {
				case c := <-counts:
					if c == n {
						return
					}
				case <-ctx.Done():
					b.Fatalf("watch never reported %d sources", n)
				}
			}
		}
		waitFor(before)
		cpu0 := cpuTime(b)
		b.StartTimer()
		for i := before; i < after; i++ {
			put(i)
		}
		waitFor(after)
		b.StopTimer()
		b.ReportMetric(float64(cpuTime(b)-cpu0)/1e9, "cpu-s/op")
		cancel()
		<-done
		e.Close()
		b.StartTimer()
	}
}
