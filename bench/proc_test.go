package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// proc is one logbox binary started by the benchmark.
type proc struct {
	cmd      *exec.Cmd
	url      string
	data     string
	launched time.Time
	started  time.Time // when the "logbox running" line was seen
	done     chan error

	mu   sync.Mutex
	errs []string // WARN/ERROR lines, the last few
}

var runningRE = regexp.MustCompile(`msg="logbox running".* http=(http://[0-9.:]+)`)

// startLogbox runs bin with args plus private --data, --http and
// --etcd-listen, and waits for its "running" line. owner's cleanup stops
// it (owner may outlive b, so that a later stage can use the process).
func startLogbox(b *testing.B, owner testing.TB, bin, data string, args ...string) *proc {
	return startLogboxVia(b, owner, nil, bin, data, args...)
}

// startLogboxVia is startLogbox with the command line prefixed by wrap
// (e.g. a shell that lowers a limit and execs the rest).
func startLogboxVia(b *testing.B, owner testing.TB, wrap []string, bin, data string, args ...string) *proc {
	b.Helper()
	// Retention is long: 10 M generated lines span 9 days of event time,
	// and the default 7 days would drop the oldest shards while loading.
	all := append([]string{bin, "--data", data, "--http", "127.0.0.1:0", "--etcd-listen", "127.0.0.1:0", "--host", "bench", "--retention", "3650d"}, args...)
	all = append(append([]string(nil), wrap...), all...)
	cmd := exec.Command(all[0], all[1:]...)
	cmd.Dir = filepath.Dir(data)
	// Die with the benchmark, even when it is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	p := &proc{cmd: cmd, data: data, done: make(chan error, 1), launched: time.Now()}
	running := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if m := runningRE.FindStringSubmatch(line); m != nil {
				running <- m[1]
			}
			if strings.Contains(line, "level=ERROR") || strings.Contains(line, "level=WARN") {
				p.mu.Lock()
				if len(p.errs) < 20 {
					p.errs = append(p.errs, line)
				}
				p.mu.Unlock()
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
		p.done <- cmd.Wait()
	}()
	owner.Cleanup(func() { p.stop(owner) })
	select {
	case p.url = <-running:
		p.started = time.Now()
	case err := <-p.done:
		b.Fatalf("logbox %v exited before running: %v\n%s", args, err, p.warnings())
	case <-time.After(90 * time.Second):
		b.Fatalf("logbox %v not running after 90s", args)
	}
	return p
}

func (p *proc) warnings() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.errs, "\n")
}

// stop sends SIGTERM and waits (then kills) the process; twice is fine.
func (p *proc) stop(b testing.TB) {
	if p.cmd.ProcessState != nil || p.done == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	p.done = nil
	if w := p.warnings(); w != "" {
		b.Logf("logbox warnings:\n%s", w)
	}
}

// procStatusKiB reads a field such as VmHWM or VmRSS of /proc/<pid>/status.
func procStatusKiB(pid int, field string) int64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n
			}
		}
	}
	return 0
}

// peakRSSMiB is the process's high-water resident set so far.
func (p *proc) peakRSSMiB() float64 {
	return float64(procStatusKiB(p.cmd.Process.Pid, "VmHWM")) / 1024
}

var httpc = &http.Client{Timeout: 60 * time.Second}

func getJSON(u string, v any) error { return getJSONWith(httpc, u, v) }

type httpError struct {
	code int
	body string
}

func (e *httpError) Error() string { return fmt.Sprintf("HTTP %d: %s", e.code, e.body) }

// status is the part of /api/status the benchmark reads.
type status struct {
	Files []struct {
		LinesRead  uint64 `json:"lines_read"`
		LinesAcked uint64 `json:"lines_acked"`
	} `json:"files"`
	Producer *struct{ Acked uint64 }   `json:"kafka_producer"`
	Consumer *struct{ Indexed uint64 } `json:"kafka_consumer"`
	Index    *struct {
		Docs uint64 `json:"docs"`
	} `json:"index"`
}

func (p *proc) status() (status, error) {
	var st status
	err := getJSON(p.url+"/api/status", &st)
	return st, err
}

func (st status) acked() uint64 {
	var n uint64
	for _, f := range st.Files {
		n += f.LinesAcked
	}
	if st.Producer != nil && st.Producer.Acked > n {
		n = st.Producer.Acked
	}
	return n
}

func (st status) docs() uint64 {
	if st.Index == nil {
		return 0
	}
	return st.Index.Docs
}

// total runs a search and returns its total.
func total(base, q string) (uint64, error) {
	var res struct {
		Total uint64 `json:"total"`
	}
	err := getJSON(base+"/api/search?limit=1&track_total=true&q="+url.QueryEscape(q), &res)
	return res.Total, err
}

// waitFor polls get every interval until it reaches want, printing
// progress every 10s; it fails the benchmark after timeout.
func waitFor(b *testing.B, what string, want uint64, timeout, interval time.Duration, get func() (uint64, error)) time.Time {
	b.Helper()
	start := time.Now()
	deadline := start.Add(timeout)
	nextLog := start.Add(10 * time.Second)
	var got uint64
	var err error
	for {
		got, err = get()
		now := time.Now()
		if err == nil && got >= want {
			return now
		}
		if now.After(deadline) {
			b.Fatalf("%s: %d of %d after %v (last error: %v)", what, got, want, timeout, err)
		}
		if now.After(nextLog) {
			fmt.Printf("    %s: %d of %d after %.0fs\n", what, got, want, now.Sub(start).Seconds())
			nextLog = now.Add(10 * time.Second)
		}
		time.Sleep(interval)
	}
}

// dirBytes returns the apparent size and the allocated size of a tree.
func dirBytes(dir string) (apparent, allocated int64) {
	_ = filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		if fi, err := d.Info(); err == nil {
			apparent += fi.Size()
			if st, ok := fi.Sys().(*syscall.Stat_t); ok {
				allocated += st.Blocks * 512
			}
		}
		return nil
	})
	return apparent, allocated
}

// percentile is the nearest-rank percentile of ds (sorted in place).
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	i := int(math.Ceil(p/100*float64(len(ds)))) - 1
	return ds[max(0, min(i, len(ds)-1))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

const mib = 1 << 20

// rateWriter appends generated lines to a file at a steady rate, in 10ms
// ticks, optionally with a probe line every probeEvery lines.
type rateWriter struct {
	path       string
	gen        *Generator
	probeEvery int
	probeToken string
	probesSent []time.Time // send time of probe k (probe lines carry seq=k)
	written    int
}

// run writes rate lines/s for d, then a final probe. It returns the
// achieved write rate.
func (w *rateWriter) run(ctx context.Context, rate int, d time.Duration) (float64, error) {
	f, err := os.OpenFile(w.path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var buf []byte
	start := time.Now()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	n := 0
	probe := func() {
		k := len(w.probesSent)
		buf = fmt.Appendf(buf, "%s INFO [bench] latency probe %s seq=%d\n", time.Now().UTC().Format(time.RFC3339Nano), w.probeToken, k)
	}
	for {
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-tick.C:
		}
		el := time.Since(start)
		if el > d {
			el = d
		}
		target := int(float64(rate) * el.Seconds())
		buf = buf[:0]
		var probes int
		for ; n < target; n++ {
			if w.probeEvery > 0 && n%w.probeEvery == w.probeEvery-1 {
				probe()
				probes++
				continue
			}
			buf = append(buf, w.gen.Next()...)
			buf = append(buf, '\n')
		}
		if el >= d && w.probeEvery > 0 {
			probe()
			probes++
		}
		now := time.Now()
		if _, err := f.Write(buf); err != nil {
			return 0, err
		}
		for range probes {
			w.probesSent = append(w.probesSent, now)
		}
		if el >= d {
			w.written += n + probes
			return float64(n) / time.Since(start).Seconds(), nil
		}
	}
}

// probeWatcher polls search for the probe token and records, for probe k,
// when at least k+1 probes were searchable. Lines of one file are indexed
// in file order, so the count tells which probes are in.
type probeWatcher struct {
	mu   sync.Mutex
	seen []time.Time
}

func (pw *probeWatcher) run(ctx context.Context, base, token string) {
	t := time.NewTicker(25 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n, err := total(base, token)
		if err != nil {
			continue
		}
		now := time.Now()
		pw.mu.Lock()
		for uint64(len(pw.seen)) < n {
			pw.seen = append(pw.seen, now)
		}
		pw.mu.Unlock()
	}
}

func (pw *probeWatcher) count() int {
	pw.mu.Lock()
	defer pw.mu.Unlock()
	return len(pw.seen)
}

// latencies returns append→searchable for probes from..to-1 (those seen).
func (pw *probeWatcher) latencies(sent []time.Time, from, to int) []time.Duration {
	pw.mu.Lock()
	defer pw.mu.Unlock()
	var out []time.Duration
	for k := from; k < to && k < len(pw.seen); k++ {
		out = append(out, pw.seen[k].Sub(sent[k]))
	}
	return out
}
