package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/logbox/logbox/appliance/kafkatest"
	"github.com/logbox/logbox/appliance/settings"
)

// benchProc is a logbox process a benchmark started (the test helpers
// of main_test.go take a *testing.T).
type benchProc struct {
	cmd  *exec.Cmd
	url  string
	log  string // its stderr, a file
	done chan error
}

// startBench runs the binary in workdir, its stderr to a file, and waits
// for its "running" line. It is killed at the benchmark's end.
func startBench(b *testing.B, bin, workdir, name string, args ...string) *benchProc {
	b.Helper()
	p := &benchProc{log: filepath.Join(workdir, name+".log"), done: make(chan error, 1)}
	logf, err := os.Create(p.log)
	if err != nil {
		b.Fatal(err)
	}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Dir = workdir
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		b.Fatal(err)
	}
	running := make(chan string, 1)
	go func() {
		defer logf.Close()
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			fmt.Fprintln(logf, sc.Text())
			if m := runningRE.FindStringSubmatch(sc.Text()); m != nil {
				running <- m[1]
			}
		}
		_, _ = io.Copy(logf, stderr)
		p.done <- p.cmd.Wait()
	}()
	b.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
	})
	select {
	case p.url = <-running:
	case err := <-p.done:
		b.Fatalf("%s exited before running: %v (log %s)", name, err, p.log)
	case <-time.After(90 * time.Second):
		b.Fatalf("%s not running after 90s (log %s)", name, p.log)
	}
	return p
}

// BenchmarkFanout measures the fan-out's cost: query latency through one
// indexer that holds every line against latency through one of three
// indexers that share the lines (one consumer group over 6 partitions),
// which asks the other two and merges. Both fleets index the same lines
// (LOGBOX_FANOUT_LINES, default 1 000 000) from one agent via one kfake
// broker; each fleet has its own etcd, so neither sees the other.
//
// Each sub-benchmark reports the median latency of its b.N queries
// (median-ms) beside Go's mean (ns/op):
//
//	go test -run '^$' -bench BenchmarkFanout -benchtime 20x -timeout 30m .
func BenchmarkFanout(b *testing.B) {
	lines := 1_000_000
	if v := os.Getenv("LOGBOX_FANOUT_LINES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			b.Fatalf("LOGBOX_FANOUT_LINES=%q: want a positive number", v)
		}
		lines = n
	}
	work := b.TempDir()
	bin := filepath.Join(work, "logbox")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		b.Fatalf("build: %v\n%s", err, out)
	}
	if err := os.MkdirAll(filepath.Join(work, "logs"), 0o755); err != nil {
		b.Fatal(err)
	}
	// Two files of lines 100 ms apart, ending a few minutes ago.
	half := lines / 2
	base := time.Now().UTC().Truncate(time.Minute).Add(-time.Duration(half)*100*time.Millisecond - 10*time.Minute)
	writeFleetLines(b, filepath.Join(work, "logs", "a.log"), base, 0, 0, half)
	writeFleetLines(b, filepath.Join(work, "logs", "b.log"), base, 0, half, lines-half)

	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	etcd, err := settings.StartEmbedded(filepath.Join(work, "etcd"), "127.0.0.1:0", quiet)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(etcd.Close)
	topic := kafkatest.UniqueName(b, "fanout")
	k := kafkatest.Start(b, kfake.SeedTopics(6, topic))
	tokFile := filepath.Join(work, "tokens")
	if err := os.WriteFile(tokFile, []byte(fleetToken+"\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	kafka := []string{"--kafka", strings.Join(k.Brokers, ","), "--topic", topic, "--kafka-partitions", "6",
		"--auth-token-file", tokFile, "--http", "127.0.0.1:0"}
	shared := append([]string{"--etcd-endpoints", etcd.Endpoint(), "--etcd-credentials-file", etcd.CredentialsFile()}, kafka...)

	one := startBench(b, bin, work, "one", append([]string{"--data", "data-one", "--role", "indexer", "--host", "one",
		"--etcd-listen", "127.0.0.1:0", "--kafka-group", kafkatest.UniqueName(b, "one")}, kafka...)...)
	group3 := kafkatest.UniqueName(b, "three")
	var three []*benchProc
	for i := 1; i <= 3; i++ {
		name := fmt.Sprintf("three-%d", i)
		three = append(three, startBench(b, bin, work, name, append([]string{"--data", "data-" + name, "--role", "indexer",
			"--host", name, "--kafka-group", group3}, shared...)...))
	}
	startBench(b, bin, work, "agent", append([]string{"--data", "data-agent", "--role", "agent", "--host", "bench",
		"--etcd-listen", "127.0.0.1:0", "--collect", "logs/*.log", "--kafka-partitioner", "roundrobin"}, kafka...)...)

	count := func(p *benchProc) uint64 {
		var page tokenPage
		fleetJSON(b, p.url+"/api/search?limit=1&track_total=true&q=fleetline", &page)
		return page.Total
	}
	began := time.Now()
	deadline := began.Add(20 * time.Minute)
	for count(one) != uint64(lines) {
		if time.Now().After(deadline) {
			b.Fatalf("the single indexer has %d of %d lines after 20 min (logs in %s)", count(one), lines, work)
		}
		time.Sleep(time.Second)
	}
	// The three index the same lines at about the same pace.
	deadline = time.Now().Add(3 * time.Minute)
	for count(three[0]) != uint64(lines) {
		if time.Now().After(deadline) {
			b.Fatalf("through one of the three indexers %d of %d lines, 3 min after the single indexer had them all (logs in %s)",
				count(three[0]), lines, work)
		}
		time.Sleep(time.Second)
	}
	b.Logf("%d lines indexed by both fleets in %v", lines, time.Since(began).Round(time.Second))
	// The three share the partitions once the group has settled: a query
	// through one asks the others.
	deadline = time.Now().Add(2 * time.Minute)
	for {
		live := fleetStatusOf(b, three[0].url).indexers()
		shared := len(live) == 3
		var held []string
		for _, m := range live {
			shared = shared && len(m.Assigned) > 0 && len(m.Assigned) < 6
			held = append(held, fmt.Sprintf("%s %d", m.Host, len(m.Assigned)))
		}
		if shared && count(three[0]) == uint64(lines) {
			b.Logf("partitions held: %s", strings.Join(held, ", "))
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("the three indexers do not share the 6 partitions after 2 min: partitions held %v (logs in %s)", held, work)
		}
		time.Sleep(time.Second)
	}

	q := url.QueryEscape
	from, to := base.Format(time.RFC3339), time.Now().UTC().Format(time.RFC3339)
	queries := []struct{ name, path string }{
		{"search", "/api/search?q=fleetline&limit=100"},
		{"search-exact-total", "/api/search?q=fleetline&limit=100&track_total=true"},
		{"histogram", "/api/histogram?q=fleetline&buckets=60&from=" + q(from) + "&to=" + q(to)},
		{"facets", "/api/facets?q=fleetline&field=level"},
		{"stats", "/api/stats?q=" + q("fleetline | stats count(), avg(latency_ms), quantile(0.99, latency_ms) by (level, status)")},
	}
	fleets := []struct {
		name string
		p    *benchProc
	}{{"1-indexer", one}, {"3-indexers", three[0]}}
	// Warm both up (caches, connections) before measuring; then each
	// query through one and the other, close in time.
	for _, fleet := range fleets {
		for _, qu := range queries {
			for range 3 {
				if code, body := fleetGet(b, fleet.p.url+qu.path); code != http.StatusOK {
					b.Fatalf("%s: %d %s", qu.path, code, body)
				}
			}
		}
	}
	for _, qu := range queries {
		for _, fleet := range fleets {
			b.Run(qu.name+"/"+fleet.name, func(b *testing.B) {
				var took []time.Duration
				for b.Loop() {
					start := time.Now()
					code, body := fleetGet(b, fleet.p.url+qu.path)
					took = append(took, time.Since(start))
					if code != http.StatusOK {
						b.Fatalf("%s: %d %s", qu.path, code, body)
					}
					var a struct {
						Partial bool `json:"partial"`
					}
					if err := json.Unmarshal(body, &a); err != nil || a.Partial {
						b.Fatalf("%s: partial or not JSON (%v): %.300s", qu.path, err, body)
					}
				}
				slices.Sort(took)
				b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "median-ms")
			})
		}
	}
}
