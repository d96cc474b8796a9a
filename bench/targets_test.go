package bench

import (
	"flag"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// measured is one figure for the targets table that is not a table row.
type measured struct {
	v    float64
	ok   bool
	note string
}

func (e *env) measure(key string, m measured) {
	if e.meas == nil {
		e.meas = map[string]measured{}
	}
	e.meas[key] = m
}

// memoryFigures are the direct-mode process's memory: an empty index at
// start, and the loaded one.
type memoryFigures struct {
	ok                      bool
	emptyRSS, emptyAnon     int64   // KiB, the empty process once idle
	loadedRSS               int64   // KiB, when every line was searchable
	settledRSS, settledAnon int64   // KiB, once the process was idle after the load
	heapInuse               float64 // bytes, Go heap in use once settled
	heapLive, emptyHeap     float64 // bytes, Go heap allocated right after a GC (0: no GC seen)
	gcWait                  time.Duration
	settle                  time.Duration
	idle                    bool
	peak                    float64 // MiB, VmHWM over the load
}

// bytesPerLine is (RSS of the loaded index once idle and after a GC − RSS of an empty
// index once idle) / lines.
func (m memoryFigures) bytesPerLine(n int) float64 {
	return float64(m.settledRSS-m.emptyRSS) * 1024 / float64(n)
}

// idleCPU is the CPU share (in cores) under which a process counts as idle.
const idleCPU = 0.05

// waitIdle polls the CPU time of pid each second until a second passes
// with less than idleCPU cores busy (Bleve's merges and the index's
// background work done), at most max. It returns how long it waited and
// whether the process went idle.
func waitIdle(pid int, max time.Duration) (time.Duration, bool) {
	t0 := time.Now()
	for time.Since(t0) < max {
		c0, w0 := cpuSeconds(pid), time.Now()
		time.Sleep(time.Second)
		if (cpuSeconds(pid)-c0)/time.Since(w0).Seconds() < idleCPU {
			return time.Since(t0), true
		}
	}
	return time.Since(t0), false
}

// emptyRSS starts the binary in direct mode on an empty file (an empty
// index), waits until it is idle and reads its resident set: the base the
// bytes per stored line are counted from.
func (e *env) emptyRSS(b *testing.B) memoryFigures {
	dir := filepath.Join(e.dir, "empty")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	file := filepath.Join(dir, "empty.log")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		b.Fatal(err)
	}
	p := startLogbox(b, b, e.bin, filepath.Join(dir, "data"), "--collect", file)
	defer p.stop(b)
	pid := p.cmd.Process.Pid
	waitIdle(pid, 30*time.Second)
	return memoryFigures{emptyRSS: procStatusKiB(pid, "VmRSS"), emptyAnon: procStatusKiB(pid, "RssAnon"),
		emptyHeap: metric(p.url, "go_memstats_heap_alloc_bytes")}
}

// gcWaitMax bounds the wait for a garbage collection after the load: an
// idle Go program collects at least every 2 minutes, and its scavenger
// returns freed pages to the system meanwhile.
const gcWaitMax = 130 * time.Second

// waitGC waits until the process at base has finished a GC after since
// (go_memstats_last_gc_time_seconds), at most max; it returns the Go heap
// allocated then (≈ the live heap when the process is idle), 0 if none.
func waitGC(base string, since time.Time, max time.Duration) float64 {
	deadline := time.Now().Add(max)
	for time.Now().Before(deadline) {
		if last := metric(base, "go_memstats_last_gc_time_seconds"); last > float64(since.UnixNano())/1e9 {
			return metric(base, "go_memstats_heap_alloc_bytes")
		}
		time.Sleep(time.Second)
	}
	return 0
}

// afterLoad reads the direct-mode process's memory when every line is
// searchable and again once it is idle, and writes the memory row.
func (e *env) afterLoad(b *testing.B, p *proc, m memoryFigures) {
	pid := p.cmd.Process.Pid
	m.loadedRSS = procStatusKiB(pid, "VmRSS")
	m.peak = p.peakRSSMiB()
	m.settle, m.idle = waitIdle(pid, 3*time.Minute)
	t0 := time.Now()
	m.heapLive = waitGC(p.url, t0, gcWaitMax)
	m.gcWait = time.Since(t0)
	m.settledRSS, m.settledAnon = procStatusKiB(pid, "VmRSS"), procStatusKiB(pid, "RssAnon")
	m.heapInuse = metric(p.url, "go_memstats_heap_inuse_bytes")
	m.ok = true
	e.mem = m
	app, _ := dirBytes(filepath.Join(p.data, "index"))
	e.measure("disk/raw settled", measured{v: float64(app) / float64(e.rawBytes), ok: true,
		note: fmt.Sprintf("%.1f MiB for %.1f MiB raw, index directory once the loaded process is idle", float64(app)/mib, float64(e.rawBytes)/mib)})
	idle := fmt.Sprintf("idle after %.0fs", m.settle.Seconds())
	if !m.idle {
		idle = fmt.Sprintf("NOT idle after %.0fs", m.settle.Seconds())
	}
	idle += fmt.Sprintf(" and %.0fs more for a GC", m.gcWait.Seconds())
	live := fmt.Sprintf("no GC within %v, no live heap figure", gcWaitMax)
	if m.heapLive > 0 {
		live = fmt.Sprintf("Go heap right after that GC %.1f MiB, empty process's heap %.1f MiB: %.1f B/line", m.heapLive/mib, m.emptyHeap/mib, (m.heapLive-m.emptyHeap)/float64(e.n))
	}
	bpl := m.bytesPerLine(e.n)
	b.ReportMetric(bpl, "RSS-B/line")
	e.row("memory of the loaded index (direct)", e.n, 0, 0, 0, 0, float64(m.settledRSS)/1024, fmt.Sprintf(
		"RSS %.0f MiB when all searchable, %.0f MiB once %s (anon %.0f MiB, Go heap in use %.0f MiB); empty index process %.0f MiB (anon %.0f MiB); "+
			"(%.0f − %.0f MiB) / %d lines = %.1f B/line (anon: %.1f B/line); %s; peak while loading %.0f MiB",
		float64(m.loadedRSS)/1024, float64(m.settledRSS)/1024, idle, float64(m.settledAnon)/1024, m.heapInuse/mib,
		float64(m.emptyRSS)/1024, float64(m.emptyAnon)/1024, float64(m.settledRSS)/1024, float64(m.emptyRSS)/1024, e.n, bpl,
		float64(m.settledAnon-m.emptyAnon)*1024/float64(e.n), live, m.peak))
}

// checkDisk fails early when the scratch directory cannot hold the run:
// the file (~200 B/line), the direct index (~1× raw), the topic the ship
// stage fills (~2× raw, kfake's segments) and the indexer's index (~1×).
func checkDisk(b *testing.B, dir string, lines int, skip string) {
	var fs syscall.Statfs_t
	if err := syscall.Statfs(dir, &fs); err != nil {
		b.Logf("statfs %s: %v", dir, err)
		return
	}
	free := float64(fs.Bavail) * float64(fs.Bsize)
	raw := float64(lines) * 200
	need := 2 * raw
	if !strings.Contains(skip, "ship") {
		need += 2 * raw
		if !strings.Contains(skip, "index-kafka") {
			need += raw
		}
	}
	need += 1 << 30
	fmt.Printf("disk: %.1f GiB free under %s; this run needs about %.1f GiB\n", free/(1<<30), dir, need/(1<<30))
	if free < need {
		b.Fatalf("%.1f GiB free under %s, the run needs about %.1f GiB: set TMPDIR elsewhere, fewer %s, or skip stages (%s)",
			free/(1<<30), dir, need/(1<<30), envLines, envSkip)
	}
}

// commandLine is the command that reproduces this run: the LOGBOX_BENCH_*
// variables set, and go test with the -bench flags in use.
func commandLine() string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "LOGBOX_BENCH_") || strings.HasPrefix(kv, "LOGBOX_TEST_KAFKA=") {
			k, v, _ := strings.Cut(kv, "=")
			env = append(env, k+"="+shellQuote(v))
		}
	}
	cmd := "go test ./bench -run '^$'"
	for _, f := range []string{"bench", "benchtime", "timeout"} {
		if fl := flag.Lookup("test." + f); fl != nil && fl.Value.String() != fl.DefValue {
			cmd += " -" + f + " " + shellQuote(fl.Value.String())
		}
	}
	return strings.TrimSpace(strings.Join(env, " ") + " " + cmd)
}

func shellQuote(s string) string {
	if regexp.MustCompile(`^[A-Za-z0-9_./:,=-]+$`).MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// treeVersion is the commit the run measured, "+dirty" with local edits.
func treeVersion() string {
	out, err := exec.Command("git", "describe", "--always", "--dirty=+dirty", "--abbrev=12").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}

// Stage names of the rows the targets table reads.
const (
	rowShip        = "ship (file → kfake, acks=all)"
	rowIndexDirect = "index direct (tail → searchable)"
	rowIndexKafka  = "index via Kafka (consume → searchable)"
)

// shipCPURE finds a CPU-per-line figure in the ship row's note ("2.9 µs
// CPU/line", "2.9 µs of CPU per line"), for when the ship stage reports
// one; a "ship µs CPU/line" measure wins over it.
var shipCPURE = regexp.MustCompile(`([0-9]+(?:\.[0-9]+)?) ?(?:µs|us) (?:of )?CPU ?(?:/|per |a )line`)

// targetsTable is the targets, each with what this run measured
// and whether it is met.
func (e *env) targetsTable() string {
	var sb strings.Builder
	tenM := e.n >= 10_000_000
	fmt.Fprintf(&sb, "\n## Targets of issue 12 (%d lines)\n\nCommand: `%s`, tree %s, %s; load average at the end %s.\n",
		e.n, commandLine(), e.tree, time.Now().UTC().Format("2006-01-02 15:04 UTC"), loadAvg())
	if e.n != 1_000_000 {
		fmt.Fprintf(&sb, "The targets are for 1 M lines unless they say 10 M; this run has %d lines: its figures are compared with them all the same.\n", e.n)
	}
	sb.WriteString("Query times are the p50 (p99 in brackets) of the runs over HTTP on loopback; a target is met when the p50 is within it.\n\n")
	sb.WriteString("| target | measured | met? | from |\n|---|---|---|---|\n")
	add := func(target, got, met, from string) {
		fmt.Fprintf(&sb, "| %s | %s | %s | %s |\n", cell(target), cell(got), cell(met), cell(from))
	}
	atLeast := func(v, want float64) string {
		if v >= want {
			return "**met**"
		}
		return fmt.Sprintf("**missed**, %.2f× short", want/v)
	}
	atMost := func(v, want float64) string {
		if v <= want {
			return "**met**"
		}
		return fmt.Sprintf("**missed**, %.2f× over", v/want)
	}
	rate := func(target, stage string, want float64, extra string) {
		r, ok := e.table[stage]
		if !ok || r.lps == 0 {
			add(target, "n/a: stage did not run", "–", stage)
			return
		}
		add(target, fmt.Sprintf("%.0f lines/s%s", r.lps, extra), atLeast(r.lps, want), stage)
	}
	query := func(target, name string, want float64) {
		q, ok := e.qres[name]
		switch {
		case !ok && len(e.qres) > 0 && skipped(envSkip, "discover"):
			add(target, "n/a: the Discover view was skipped ("+envSkip+"=…,discover)", "–", "query: "+name)
		case !ok:
			add(target, "n/a: queries stage did not run", "–", "query: "+name)
		case q.failed:
			add(target, q.skipped, "**missed**: no answer", "query: "+name)
		case q.skipped != "":
			add(target, "n/a: "+q.skipped, "–", "query: "+name)
		default:
			add(target, fmt.Sprintf("%.1f ms (p99 %.1f), %d hits, CPU %.2f cores (machine %.2f), %.0f ms CPU a run", q.p50, q.p99, q.hits, q.cores, q.machine, q.cpuPerRun), atMost(q.p50, want), "query: "+name)
		}
	}

	// Shipping.
	rate("shipping ≥ 300k lines/s to Kafka, acks=all", rowShip, 300_000, "")
	cpu, cpuOK := e.meas["ship µs CPU/line"]
	if !cpuOK {
		if m := shipCPURE.FindStringSubmatch(e.table[rowShip].note); m != nil {
			v, _ := strconv.ParseFloat(m[1], 64)
			cpu = measured{v: v, ok: true}
		}
	}
	if cpu.ok {
		add("shipping ≤ 3 µs CPU per line", fmt.Sprintf("%.2f µs/line %s", cpu.v, cpu.note), atMost(cpu.v, 3), rowShip)
	} else {
		add("shipping ≤ 3 µs CPU per line", "n/a: the ship stage does not report CPU per line in this tree", "–", rowShip)
	}

	// Ingest and disk.
	rate("ingest → searchable ≥ 120k lines/s, direct", rowIndexDirect, 120_000, " (with the default parser, auto)")
	rate("ingest → searchable ≥ 100k lines/s through Kafka (consume → searchable)", rowIndexKafka, 100_000, "")
	if d, ok := e.meas["disk/raw settled"]; ok {
		add("index on disk ≤ 0.3× raw", fmt.Sprintf("%.2f× (%s)", d.v, d.note), atMost(d.v, 0.3), rowIndexDirect)
	} else {
		add("index on disk ≤ 0.3× raw", "n/a: index-direct did not run", "–", rowIndexDirect)
	}

	// Queries.
	query("common term count ≤ 100 ms (`GET`, exact)", "common term GET count", 100)
	query("phrase count ≤ 100 ms (exact)", "phrase count", 100)
	query("level count ≤ 10 ms (`level:ERROR`, exact)", "level:ERROR count", 10)
	query("24-bucket histogram ≤ 10 ms (every line)", "24h histogram, 24 buckets", 10)
	query("rare term ≤ 5 ms", "rare term", 5)
	query("newest 100 ≤ 20 ms (`GET`)", "GET newest 100", 20)
	query("histogram of a common term ≤ 100 ms (`GET`, 24 buckets)", "histogram of GET, 24 buckets", 100)
	query("each facet of a common term ≤ 100 ms (the slowest)", "max facet of GET", 100)
	query("whole Discover view of a common term ≤ 300 ms of server time (requests one after the other, summed)", "whole Discover view of GET, sequential", 300)
	if q, ok := e.qres["whole Discover view of GET, concurrent"]; ok && q.skipped == "" {
		add("(the same view as the browser asks for it, wall time)", fmt.Sprintf("%.1f ms (p99 %.1f), CPU %.2f cores%s", q.p50, q.p99, q.cores, failedNote(q.note)), "(for information)", "query: whole Discover view of GET, concurrent")
	}
	if tenM {
		query("at 10 M lines, common term count ≤ 700 ms", "common term GET count", 700)
		query("at 10 M lines, phrase count ≤ 700 ms", "phrase count", 700)
	} else {
		add("at 10 M lines, common term / phrase count ≤ 700 ms", fmt.Sprintf("not measured in a %d-line run", e.n), "–", "run with "+envLines+"=10000000")
	}
	query("`GET | stats count() by (status)` ≤ 100 ms", "stats count by status", 100)
	if q, ok := e.qres["stats count by status, every line"]; ok && q.skipped == "" {
		add("(the same over every line)", fmt.Sprintf("%.1f ms (p99 %.1f), CPU %.2f cores", q.p50, q.p99, q.cores), "(for information)", "query: stats count by status, every line")
	}
	query("avg and quantile(0.99) of a number by a field of few values ≤ 150 ms", "stats avg and p99 by method", 150)
	query("24 h series by 5 minutes by host ≤ 100 ms", "stats 5m series by host", 100)
	query("count by level ≤ 20 ms (`| stats count() by (level)`)", "stats count by level", 20)
	e.patternsTargets(add, query)
	e.coresTarget(add)

	// Memory.
	if e.mem.ok {
		bpl := e.mem.bytesPerLine(e.n)
		heap := ""
		if e.mem.heapLive > 0 {
			heap = fmt.Sprintf("; Go heap after a GC: %.1f B/line", (e.mem.heapLive-e.mem.emptyHeap)/float64(e.n))
		}
		add("≤ 2 bytes of RAM per stored line", fmt.Sprintf("%.1f B/line = (RSS after the load, once idle and after a GC, %.0f MiB − RSS of an idle empty index process %.0f MiB) / %d lines%s", bpl,
			float64(e.mem.settledRSS)/1024, float64(e.mem.emptyRSS)/1024, e.n, heap), atMost(bpl, 2), "memory of the loaded index (direct)")
	} else {
		add("≤ 2 bytes of RAM per stored line", "n/a: index-direct did not run", "–", "memory of the loaded index (direct)")
	}
	if r, ok := e.table[rowIndexDirect]; ok && tenM {
		add("≤ 300 MiB RSS while loading 10 M lines", fmt.Sprintf("%.0f MiB peak (VmHWM) in direct mode", r.rss), atMost(r.rss, 300), rowIndexDirect)
	} else if ok {
		add("≤ 300 MiB RSS while loading 10 M lines", fmt.Sprintf("not measured in a %d-line run (peak %.0f MiB at %d lines)", e.n, r.rss, e.n), "–", "run with "+envLines+"=10000000")
	} else {
		add("≤ 300 MiB RSS while loading 10 M lines", "n/a: index-direct did not run", "–", rowIndexDirect)
	}
	if r, ok := e.table[rowIndexKafka]; ok && tenM {
		add("(the same through Kafka)", fmt.Sprintf("%.0f MiB peak (VmHWM), indexer", r.rss), atMost(r.rss, 300), rowIndexKafka)
	}

	// Not measured by this benchmark.
	stats := "n/a: stats pipes do not exist yet (the next issue); nothing reads one field of many lines to measure"
	if m, ok := e.meas["stats"]; ok {
		stats = m.note
	}
	add("reading one field of many lines costs a fraction of decoding the lines", stats, "–", "query: stats")
	add("an index of the current release is read or converted at start", "n/a: not a speed target; checked by the index package's tests", "–", "–")
	return sb.String()
}

// heavyQuery is the p50 above which a query is expected to keep both cores
// busy: below it the request's own overhead dominates.
const heavyQuery = 20.0 // ms

// bothCores is the CPU (in cores) at which a query counts as using both.
const bothCores = 1.5

// coresTarget writes "a query uses both cores": every query row with a p50
// of heavyQuery or more must keep at least bothCores cores busy.
func (e *env) coresTarget(add func(target, got, met, from string)) {
	const target = "a query uses both cores"
	var heavy, short []string
	for _, name := range slices.Sorted(maps.Keys(e.qres)) {
		q := e.qres[name]
		if q.skipped != "" || q.p50 < heavyQuery || strings.Contains(name, "concurrent") || strings.HasPrefix(name, "max facet") {
			continue
		}
		heavy = append(heavy, fmt.Sprintf("%s %.2f (machine %.2f)", name, q.cores, q.machine))
		if q.cores < bothCores {
			short = append(short, name)
		}
	}
	how := fmt.Sprintf("process CPU time (/proc/<pid>/stat) over the wall time of the runs, for each query with p50 ≥ %.0f ms; met when all ≥ %.1f cores; "+
		"\"machine\" is the whole machine's busy CPU meanwhile (/proc/stat): when it is near 2 and the query's is not, other processes held a core", heavyQuery, bothCores)
	switch {
	case len(e.qres) == 0:
		add(target, "n/a: queries stage did not run", "–", how)
	case len(heavy) == 0:
		add(target, fmt.Sprintf("no query takes %.0f ms or more", heavyQuery), "–", how)
	case len(short) == 0:
		add(target, "cores: "+strings.Join(heavy, "; "), "**met**", how)
	default:
		add(target, "cores: "+strings.Join(heavy, "; "), fmt.Sprintf("**missed** by %d of %d queries", len(short), len(heavy)), how)
	}
}

// loadAvg is the 1, 5 and 15 minute load averages (the machine is shared).
func loadAvg() string {
	raw, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(raw)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "unknown"
}

// cell makes s fit one Markdown table cell: one line, "|" escaped.
func cell(s string) string {
	return strings.ReplaceAll(strings.Join(strings.Fields(s), " "), "|", `\|`)
}

// failedNote is the "views had a failed request" part of a note, if any.
func failedNote(note string) string {
	if i := strings.LastIndex(note, "; "); i >= 0 && strings.Contains(note[i:], "failed request") {
		return note[i:]
	}
	return ""
}
