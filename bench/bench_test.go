package bench

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/logbox/logbox/appliance"
	"github.com/logbox/logbox/appliance/kafkatest"
)

// Environment knobs (see docs/benchmarks.md).
const (
	envLines        = "LOGBOX_BENCH_LINES"         // lines in the generated file (default 1000000)
	envProfileLines = "LOGBOX_BENCH_PROFILE_LINES" // lines for the in-process CPU profile (default min(lines, 200000))
	envLatRates     = "LOGBOX_BENCH_LAT_RATES"     // latency stage rates tried in order (default 10000,5000,2000,1000)
	envSeconds      = "LOGBOX_BENCH_SECONDS"       // seconds per steady-load phase (default 20)
	envOut          = "LOGBOX_BENCH_OUT"           // where results.md and the profile go (default a new temp dir)
	envSkip         = "LOGBOX_BENCH_SKIP"          // comma-separated stages to skip
)

func envInt(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		b.Fatalf("%s=%q: want a positive number", name, v)
	}
	return n
}

// env is what the stages share: the generated file, the binary, the
// broker, and results.
type env struct {
	n        int
	raw      string // the generated file
	rawBytes int64
	start    time.Time // the generator's first event time
	dir      string    // scratch space (removed at the end)
	out      string    // kept: results.md, profile
	bin      string
	kafka    *kafkatest.Cluster
	seconds  time.Duration

	parent *testing.B

	topic  string // filled by the ship stage
	direct *proc  // direct-mode appliance loaded with the file, for the queries
	rows   []string
	notes  []string

	table map[string]rowData     // each row by stage, for the targets table
	meas  map[string]measured    // figures the targets table reads (targets_test.go)
	mem   memoryFigures          // the index-direct stage's memory (targets_test.go)
	tree  string                 // the commit measured (targets_test.go)
	qres  map[string]queryResult // the queries stage's results by query (queries_test.go)
}

// rowData is one table row as numbers.
type rowData struct {
	lines                   int
	lps, mps, p50, p99, rss float64
	note                    string
}

func (e *env) row(stage string, lines int, linesPerSec, mibPerSec, p50, p99, rss float64, note string) {
	f := func(v float64, prec int) string {
		if v == 0 {
			return "–"
		}
		return strconv.FormatFloat(v, 'f', prec, 64)
	}
	r := fmt.Sprintf("| %s | %d | %s | %s | %s | %s | %s | %s |", stage, lines, f(linesPerSec, 0), f(mibPerSec, 1), f(p50, 1), f(p99, 1), f(rss, 0), note)
	e.rows = append(e.rows, r)
	if e.table == nil {
		e.table = map[string]rowData{}
	}
	e.table[stage] = rowData{lines, linesPerSec, mibPerSec, p50, p99, rss, note}
	fmt.Println(r)
}

func (e *env) skip(b *testing.B, stage string) {
	for s := range strings.SplitSeq(os.Getenv(envSkip), ",") {
		if strings.TrimSpace(s) == stage {
			b.Skipf("skipped by %s", envSkip)
		}
	}
}

// BenchmarkLogbox runs every stage once, in an order where later stages
// reuse what earlier ones left (the topic the ship stage filled, the index
// the direct stage loaded). Run it with -benchtime 1x; each stage runs
// once whatever b.N is.
func BenchmarkLogbox(b *testing.B) {
	e := &env{n: envInt(b, envLines, 1_000_000), dir: b.TempDir(), parent: b}
	e.seconds = time.Duration(envInt(b, envSeconds, 20)) * time.Second
	e.out = os.Getenv(envOut)
	if e.out == "" {
		var err error
		if e.out, err = os.MkdirTemp("", "logbox-bench-"); err != nil {
			b.Fatal(err)
		}
	} else if err := os.MkdirAll(e.out, 0o755); err != nil {
		b.Fatal(err)
	}

	start := time.Now()
	logs := filepath.Join(e.dir, "logs")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		b.Fatal(err)
	}
	e.raw = filepath.Join(logs, "mix.log")
	// Event times end about an hour before now: the index may take a
	// line's time from the line, and retention drops old shards.
	e.start = time.Now().UTC().Add(-time.Duration(e.n)*LineSpan - time.Hour).Truncate(time.Hour)
	checkDisk(b, e.dir, e.n, os.Getenv(envSkip))
	e.tree = treeVersion()
	st, err := WriteFile(e.raw, 1, e.n, e.start)
	if err != nil {
		b.Fatal(err)
	}
	e.rawBytes = st.Bytes
	fmt.Printf("generated %d lines, %.1f MiB (%.0f B/line) in %v: events %v, lines per kind %v, event times %s to %s\n",
		st.Lines, float64(st.Bytes)/mib, float64(st.Bytes)/float64(st.Lines), time.Since(start).Round(time.Millisecond), st.Events, st.LinesK,
		st.First.Format(time.RFC3339), st.Last.Format(time.RFC3339))

	e.bin = filepath.Join(e.dir, "logbox")
	build := exec.Command("go", "build", "-o", e.bin, "github.com/logbox/logbox")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		b.Fatalf("build logbox: %v", err)
	}
	e.kafka = kafkatest.Start(b)

	fmt.Println("| stage | lines | lines/s | MiB/s | p50 ms | p99 ms | peak RSS MiB | notes |")
	fmt.Println("|---|---:|---:|---:|---:|---:|---:|---|")
	b.Run("ship", e.benchShip)
	b.Run("index-direct", e.benchIndexDirect)
	b.Run("queries", e.benchQueries)
	if e.direct != nil {
		e.direct.stop(b)
		e.direct = nil
	}
	b.Run("index-kafka", e.benchIndexKafka)
	b.Run("latency-direct", func(b *testing.B) { e.benchLatency(b, false) })
	b.Run("latency-kafka", func(b *testing.B) { e.benchLatency(b, true) })
	b.Run("memory-20k", e.benchMemory)
	b.Run("profile-index", func(b *testing.B) { e.benchProfile(b, false) })
	b.Run("profile-ship", func(b *testing.B) { e.benchProfile(b, true) })

	var sb strings.Builder
	fmt.Fprintf(&sb, "logbox benchmark, %s, %d lines (%.1f MiB raw), %d CPUs\n\n", time.Now().Format(time.RFC3339), e.n, float64(e.rawBytes)/mib, runtime.NumCPU())
	sb.WriteString("| stage | lines | lines/s | MiB/s | p50 ms | p99 ms | peak RSS MiB | notes |\n|---|---:|---:|---:|---:|---:|---:|---|\n")
	for _, r := range e.rows {
		sb.WriteString(r + "\n")
	}
	for _, n := range e.notes {
		sb.WriteString("\n" + n + "\n")
	}
	sb.WriteString(e.targetsTable())
	path := filepath.Join(e.out, "results.md")
	if err := os.WriteFile(path, []byte(sb.String()), 0o644); err != nil {
		b.Error(err)
	}
	fmt.Printf("\n%s\nresults written to %s (total %v)\n", sb.String(), path, time.Since(start).Round(time.Second))
}

// stageTimeout allows 1k lines/s at worst, and at least 5 minutes.
func (e *env) stageTimeout() time.Duration {
	return max(5*time.Minute, time.Duration(e.n/1000)*time.Second)
}

// benchShip: file → Kafka through the real binary as an agent (acks=all),
// timed from its "running" line until every line is acked.
func (e *env) benchShip(b *testing.B) {
	e.skip(b, "ship")
	topic := fmt.Sprintf("bench-%d", time.Now().UnixNano())
	p := startLogbox(b, b, e.bin, filepath.Join(e.dir, "ship-data"), "--role", "agent", "--kafka", strings.Join(e.kafka.Brokers, ","),
		"--topic", topic, "--kafka-acks", "all", "--collect", e.raw)
	cpu0 := cpuSeconds(p.cmd.Process.Pid)
	end := waitFor(b, "ship: lines acked", uint64(e.n), e.stageTimeout(), 50*time.Millisecond, func() (uint64, error) {
		st, err := p.status()
		return st.acked(), err
	})
	// The agent's user+system CPU over the stage, per line (USER_HZ ticks:
	// ±10 ms of the total).
	cpuPerLine := (cpuSeconds(p.cmd.Process.Pid) - cpu0) / float64(e.n) * 1e6
	d := end.Sub(p.started)
	rss := p.peakRSSMiB()
	p.stop(b)
	e.topic = topic
	lps, mps := float64(e.n)/d.Seconds(), float64(e.rawBytes)/mib/d.Seconds()
	b.ReportMetric(lps, "lines/s")
	b.ReportMetric(mps, "MiB/s")
	b.ReportMetric(rss, "peak-RSS-MiB")
	b.ReportMetric(cpuPerLine, "CPU-us/line")
	e.row("ship (file → kfake, acks=all)", e.n, lps, mps, 0, 0, rss, fmt.Sprintf("%.2fs from the running line (tailing starts there); startup %.1fs before it (%.0f lines/s counting startup); agent process, %.2f µs CPU/line (user+sys over the stage)",
		d.Seconds(), p.started.Sub(p.launched).Seconds(), float64(e.n)/end.Sub(p.launched).Seconds(), cpuPerLine))
}

// loadIndex waits until p holds n searchable lines and reports the stage.
func (e *env) loadIndex(b *testing.B, p *proc, stage, note string) {
	end := waitFor(b, stage+": docs", uint64(e.n), e.stageTimeout(), 200*time.Millisecond, func() (uint64, error) {
		st, err := p.status()
		return st.docs(), err
	})
	waitFor(b, stage+": search total", uint64(e.n), time.Minute, 50*time.Millisecond, func() (uint64, error) { return total(p.url, "") })
	d := end.Sub(p.started)
	rss := p.peakRSSMiB()
	app, alloc := dirBytes(filepath.Join(p.data, "index"))
	lps, mps := float64(e.n)/d.Seconds(), float64(e.rawBytes)/mib/d.Seconds()
	b.ReportMetric(lps, "lines/s")
	b.ReportMetric(mps, "MiB/s")
	b.ReportMetric(rss, "peak-RSS-MiB")
	b.ReportMetric(float64(app)/float64(e.rawBytes), "disk/raw")
	e.row(stage, e.n, lps, mps, 0, 0, rss, fmt.Sprintf("%.1fs from the running line (startup %.1fs before it); %s; index %.1f MiB = %.2f× raw (%.1f MiB allocated)",
		d.Seconds(), p.started.Sub(p.launched).Seconds(), note, float64(app)/mib, float64(app)/float64(e.rawBytes), float64(alloc)/mib))
}

// benchIndexDirect: tail → index in one process (no Kafka), timed from
// "running" until every line is searchable. The process stays up for the
// query stage.
func (e *env) benchIndexDirect(b *testing.B) {
	e.skip(b, "index-direct")
	empty := e.emptyRSS(b)
	p := startLogbox(b, e.parent, e.bin, filepath.Join(e.dir, "direct-data"), "--collect", e.raw)
	e.loadIndex(b, p, "index direct (tail → searchable)", "one process")
	e.afterLoad(b, p, empty)
	e.direct = p
}

// benchIndexKafka: an indexer consuming the topic the ship stage filled,
// timed from "running" until every line is searchable.
func (e *env) benchIndexKafka(b *testing.B) {
	e.skip(b, "index-kafka")
	if e.topic == "" {
		b.Skip("needs the ship stage")
	}
	p := startLogbox(b, b, e.bin, filepath.Join(e.dir, "indexer-data"), "--role", "indexer", "--kafka", strings.Join(e.kafka.Brokers, ","),
		"--topic", e.topic, "--kafka-group", "bench-"+strconv.FormatInt(time.Now().UnixNano(), 36))
	e.loadIndex(b, p, "index via Kafka (consume → searchable)", "indexer process, topic pre-filled by ship")
	p.stop(b)
}

// benchLatency appends lines at steady rates (highest first) with a probe
// every 100 lines and measures append → searchable per probe. A rate is
// sustained when p99 stays under 3 s; the stage stops at the first
// sustained rate.
func (e *env) benchLatency(b *testing.B, viaKafka bool) {
	mode := "direct"
	if viaKafka {
		mode = "kafka"
	}
	e.skip(b, "latency-"+mode)
	rates := []int{10000, 5000, 2000, 1000}
	if v := os.Getenv(envLatRates); v != "" {
		rates = nil
		for s := range strings.SplitSeq(v, ",") {
			r, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil || r < 100 {
				b.Fatalf("%s=%q: want rates ≥ 100", envLatRates, v)
			}
			rates = append(rates, r)
		}
	}
	logs := filepath.Join(e.dir, "lat-"+mode)
	if err := os.MkdirAll(logs, 0o755); err != nil {
		b.Fatal(err)
	}
	file := filepath.Join(logs, "live.log")
	// The file exists, with a first line, before logbox starts, so the
	// stage measures a steady stream, not how soon a new file is found: a
	// file is opened once it has a first line (its identity), found by the
	// scan every --scan-interval (1 s), which made the first second of
	// probes 1 s late and the p99 of a 20 s phase.
	if err := os.WriteFile(file, []byte(gen0(time.Now().Add(-time.Hour))+"\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	args := []string{"--collect", file}
	if viaKafka {
		args = append(args, "--kafka", strings.Join(e.kafka.Brokers, ","), "--topic", fmt.Sprintf("lat-%d", time.Now().UnixNano()),
			"--kafka-group", "lat-"+strconv.FormatInt(time.Now().UnixNano(), 36))
	}
	p := startLogbox(b, b, e.bin, filepath.Join(logs, "data"), args...)
	gen := NewGenerator(7, 1<<62, time.Now().Add(-time.Hour))
	const probeEvery = 100
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, rate := range rates {
		token := fmt.Sprintf("probe%s%d", mode, rate)
		w := &rateWriter{path: file, gen: gen, probeEvery: probeEvery, probeToken: token}
		pw := &probeWatcher{}
		wctx, wcancel := context.WithCancel(ctx)
		go pw.run(wctx, p.url, token)
		achieved, err := w.run(ctx, rate, e.seconds)
		if err != nil {
			wcancel()
			b.Fatal(err)
		}
		// Wait for the backlog to drain (all probes in), at most 3 minutes.
		drainStart := time.Now()
		for pw.count() < len(w.probesSent) && time.Since(drainStart) < 3*time.Minute {
			time.Sleep(50 * time.Millisecond)
		}
		wcancel()
		lat := pw.latencies(w.probesSent, 0, len(w.probesSent))
		p50, p99 := ms(percentile(lat, 50)), ms(percentile(lat, 99))
		sustained := len(lat) == len(w.probesSent) && p99 < 3000
		note := fmt.Sprintf("offered %d lines/s for %v; %d/%d probes seen; drain %.1fs", rate, e.seconds, len(lat), len(w.probesSent), time.Since(drainStart).Seconds())
		if sustained {
			note += "; SUSTAINED"
		} else {
			note += "; not sustained (latency grows)"
		}
		e.row("latency "+mode+fmt.Sprintf(" @ %d/s", rate), w.written, achieved, 0, p50, p99, p.peakRSSMiB(), note)
		if sustained || rate == rates[len(rates)-1] {
			b.ReportMetric(float64(rate), "rate-lines/s")
			b.ReportMetric(p50, "p50-ms")
			b.ReportMetric(p99, "p99-ms")
			break
		}
	}
	p.stop(b)
}

// gen0 is a first line for a live file.
func gen0(t time.Time) string {
	return t.UTC().Format(time.RFC3339Nano) + " INFO latency stage starts"
}

// benchMemory: direct mode under a steady 20k lines/s; peak RSS, and how
// much of the load the index took in.
func (e *env) benchMemory(b *testing.B) {
	e.skip(b, "memory-20k")
	logs := filepath.Join(e.dir, "mem")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		b.Fatal(err)
	}
	file := filepath.Join(logs, "live.log")
	p := startLogbox(b, b, e.bin, filepath.Join(logs, "data"), "--collect", file)
	w := &rateWriter{path: file, gen: NewGenerator(11, 1<<62, time.Now().Add(-time.Hour))}
	const rate = 20000
	t0 := time.Now()
	achieved, err := w.run(context.Background(), rate, e.seconds)
	if err != nil {
		b.Fatal(err)
	}
	d := time.Since(t0)
	st, err := p.status()
	if err != nil {
		b.Fatal(err)
	}
	rss := p.peakRSSMiB()
	cur := float64(procStatusKiB(p.cmd.Process.Pid, "VmRSS")) / 1024
	p.stop(b)
	indexed := float64(st.docs()) / d.Seconds()
	b.ReportMetric(rss, "peak-RSS-MiB")
	b.ReportMetric(indexed, "indexed-lines/s")
	e.row("memory @ 20k lines/s (direct)", w.written, indexed, 0, 0, 0, rss,
		fmt.Sprintf("written at %.0f lines/s for %v; indexed %d of %d meanwhile (backpressure holds the rest in the file); RSS at end %.0f MiB", achieved, e.seconds, st.docs(), w.written, cur))
}

// benchProfile loads a file in direct mode with the appliance in this
// process (appliance.New + Run) under the CPU profiler, then prints pprof's
// top functions by cumulative time.
func (e *env) benchProfile(b *testing.B, ship bool) {
	stage, what := "profile-index", "direct-mode index"
	if ship {
		stage, what = "profile-ship", "agent shipping to Kafka"
	}
	e.skip(b, stage)
	n := envInt(b, envProfileLines, min(e.n, 200_000))
	logs := filepath.Join(e.dir, stage)
	if err := os.MkdirAll(logs, 0o755); err != nil {
		b.Fatal(err)
	}
	file := filepath.Join(logs, "mix.log")
	st, err := WriteFile(file, 1, n, time.Now().UTC().Add(-time.Duration(n)*LineSpan-time.Hour).Truncate(time.Hour))
	if err != nil {
		b.Fatal(err)
	}
	cfg := appliance.DefaultConfig()
	cfg.DataDir = filepath.Join(logs, "data")
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.EtcdListen = "127.0.0.1:0"
	cfg.Host = "bench"
	cfg.Collect = []string{file}
	if ship {
		cfg.Role = appliance.RoleAgent
		cfg.Kafka = e.kafka.Brokers
		cfg.Topic = "logbox-profile-ship"
		cfg.KafkaAcks = "all"
	}
	a, err := appliance.New(cfg, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		b.Fatal(err)
	}
	prof := filepath.Join(e.out, stage+".cpu.pprof")
	f, err := os.Create(prof)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	if err := pprof.StartCPUProfile(f); err != nil {
		b.Fatal(err)
	}
	t0 := time.Now()
	go func() { runErr <- a.Run(ctx) }()
	select {
	case <-a.Ready():
	case err := <-runErr:
		pprof.StopCPUProfile()
		b.Fatalf("appliance: %v", err)
	}
	base := "http://" + a.Addr()
	end := waitFor(b, stage+": lines", uint64(n), e.stageTimeout(), 100*time.Millisecond, func() (uint64, error) {
		var s status
		err := getJSON(base+"/api/status", &s)
		if ship {
			return s.acked(), err
		}
		return s.docs(), err
	})
	pprof.StopCPUProfile()
	_ = f.Close()
	cancel()
	if err := <-runErr; err != nil {
		b.Errorf("appliance Run: %v", err)
	}
	d := end.Sub(t0)
	lps := float64(n) / d.Seconds()
	b.ReportMetric(lps, "lines/s")
	e.row(what+", in-process under CPU profile", n, lps, float64(st.Bytes)/mib/d.Seconds(), 0, 0, 0, "timed from Run (includes etcd start); profile "+prof)
	for _, mode := range []string{"-cum", "-flat"} {
		out, err := exec.Command("go", "tool", "pprof", "-top", mode, "-nodecount=25", prof).CombinedOutput()
		if err != nil {
			b.Logf("go tool pprof: %v\n%s", err, out)
			continue
		}
		fmt.Printf("\npprof -top %s (%s, %d lines):\n%s", mode, what, n, out)
		e.notes = append(e.notes, fmt.Sprintf("pprof -top %s, %s, %d lines:\n\n```\n%s```", mode, what, n, out))
	}
}
