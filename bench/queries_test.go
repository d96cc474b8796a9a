package bench

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Each timed query (or Discover view) runs at least minRuns times and for
// at least minWall, so that the process CPU time read from /proc (in ticks
// of 10 ms) is a fair fraction of the wall time; a slow one stops after
// slowRuns runs once it has taken slowWall (10 M lines), and nothing runs
// more than maxRuns times.
const (
	minRuns  = 20
	minWall  = time.Second
	slowRuns = 5
	slowWall = 30 * time.Second
	maxRuns  = 1000
)

// The page's Discover view (ui/static/app.js: search, histogram.load,
// facets.load) for a query asks, at once, for the first page of hits
// (limit=PAGE_SIZE, no track_total), the histogram, and the facets of
// FACET_FIELDS (size=6); when the hits are in, for the facets of up to 8
// of the fields.* names seen in them (sorted). The page asks for
// clientWidth/12 histogram buckets (10–120); the benchmark asks for 24,
// the bucket count of the targets.
const (
	discoverPageSize    = 50
	discoverFacetSize   = 6
	discoverMaxFields   = 8
	discoverBuckets     = 24
	browserConnsPerHost = 6 // what a browser opens to one HTTP/1.1 origin
)

var discoverFixedFacets = []string{"level", "host", "source", "flags"}

// answer is what the benchmark reads of a search, histogram or facets
// answer.
type answer struct {
	Total   uint64 `json:"total"`
	Buckets []struct {
		Count uint64 `json:"count"`
	} `json:"buckets"`
	Hits []struct {
		Fields map[string]any `json:"fields"`
	} `json:"hits"`
}

// hits is the total of a search or facets answer, the sum of the buckets of
// a histogram.
func (a answer) hits() uint64 {
	if a.Buckets == nil {
		return a.Total
	}
	var n uint64
	for _, bk := range a.Buckets {
		n += bk.Count
	}
	return n
}

// timing is what timeRuns measured.
type timing struct {
	ds    []time.Duration // each run
	first time.Duration
	wall  time.Duration // all runs
	cpu   float64       // process CPU seconds during all runs
	busy  float64       // seconds of CPU the whole machine spent during all runs (/proc/stat)
	hits  uint64        // of the last run
}

// machineCores is the whole machine's busy CPU over the wall time of the
// runs: well above cores(), other processes took CPU from the query.
func (t timing) machineCores() float64 {
	if t.wall <= 0 {
		return 0
	}
	return t.busy / t.wall.Seconds()
}

// machineBusy is the CPU time (seconds) all processors of the machine have
// spent not idle since boot: the "cpu" line of /proc/stat less idle and
// iowait (and the guest times, already counted in user).
func machineBusy() float64 {
	raw, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(raw), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0
	}
	var busy float64
	for i, v := range f[1:min(len(f), 9)] { // user nice system idle iowait irq softirq steal
		if i == 3 || i == 4 {
			continue
		}
		n, _ := strconv.ParseFloat(v, 64)
		busy += n
	}
	return busy / 100 // USER_HZ
}

func (t timing) runs() int { return len(t.ds) }

// cores is the process's CPU time over the wall time of the runs: ~1 for a
// query that runs on one core, ~2 for one that keeps both busy.
func (t timing) cores() float64 {
	if t.wall <= 0 {
		return 0
	}
	return t.cpu / t.wall.Seconds()
}

// timeRuns runs one (a query, or a whole Discover view) repeatedly, one
// run after the other, and reads the CPU time of process pid
// (/proc/<pid>/stat, utime+stime) around all of them. one returns its own
// duration (the sum of its requests for a sequence) and its hit count.
func timeRuns(pid int, one func() (time.Duration, uint64, error)) (timing, error) {
	var t timing
	c0, m0 := cpuSeconds(pid), machineBusy()
	t0 := time.Now()
	for {
		d, hits, err := one()
		if err != nil {
			return t, err
		}
		if len(t.ds) == 0 {
			t.first = d
		}
		t.ds = append(t.ds, d)
		t.hits = hits
		el := time.Since(t0)
		n := len(t.ds)
		if n >= maxRuns || (n >= minRuns && el >= minWall) || (n >= slowRuns && el >= slowWall) {
			break
		}
	}
	t.wall = time.Since(t0)
	t.cpu = cpuSeconds(pid) - c0
	t.busy = machineBusy() - m0
	return t, nil
}

// get times one GET of base+path and decodes its answer.
func get(c *http.Client, base, path string) (answer, time.Duration, error) {
	var a answer
	t0 := time.Now()
	err := getJSONWith(c, base+path, &a)
	return a, time.Since(t0), err
}

// queryResult is one timed row of the queries stage, kept for the
// targets table.
type queryResult struct {
	p50, p99, cores float64
	machine         float64 // cores busy on the whole machine meanwhile
	cpuPerRun       float64 // ms of the process's CPU a run (steadier than p50 on a busy machine)
	runs            int
	hits            uint64
	note            string
	skipped         string // why there is no figure
	failed          bool   // the query answered an error (not a missing endpoint)
}

// benchQueries runs the query set against the direct-mode index over the
// HTTP API, then the requests of the page's Discover view for the common
// term, and records p50/p99 and the CPU (cores busy) of each.
func (e *env) benchQueries(b *testing.B) {
	e.skip(b, "queries")
	if e.direct == nil {
		b.Skip("needs the index-direct stage")
	}
	base := e.direct.url
	// The index may take each line's time from the line itself (then the
	// data spans the generator's hours) or stamp the read time (then it is
	// all within the last hour): the histogram covers 24 h that hold the
	// data.
	from, to := e.start, e.start.Add(24*time.Hour)
	if n, err := searchTotal(base, "/api/search?limit=1&from="+from.Format(time.RFC3339)+"&to="+to.Format(time.RFC3339)); err != nil || n == 0 {
		from, to = time.Now().Add(-23*time.Hour), time.Now().Add(time.Hour)
		e.notes = append(e.notes, "The index stamps lines with their read time: the histogram covers the last 24 h.")
	} else {
		e.notes = append(e.notes, fmt.Sprintf("The index takes the time from the line (%d of %d lines in the generator's first 24 h): the histograms, facets and Discover view cover %s to %s.", n, e.n, from.Format(time.RFC3339), to.Format(time.RFC3339)))
	}
	rng := "&from=" + url.QueryEscape(from.Format(time.RFC3339)) + "&to=" + url.QueryEscape(to.Format(time.RFC3339))
	hist := "/api/histogram?buckets=24" + rng
	qs := []struct {
		name, path string
		want       func(uint64) bool
	}{
		{"rare term", "/api/search?limit=100&q=" + RareToken, func(n uint64) bool { return n == 1 }},
		{"level:ERROR count", "/api/search?limit=1&track_total=true&q=" + url.QueryEscape("level:ERROR"), nil},
		{"common term GET count", "/api/search?limit=1&track_total=true&q=GET", nil},
		{"GET newest 100", "/api/search?limit=100&q=GET", nil},
		{"phrase count", "/api/search?limit=1&track_total=true&q=" + url.QueryEscape(`"`+Phrase+`"`), nil},
		{"24h histogram, 24 buckets", hist, nil},
		{"first page of everything", "/api/search?limit=100", func(n uint64) bool { return n == uint64(e.n) }},
		{"histogram of GET, 24 buckets", hist + "&q=GET", nil},
	}
	// The answers issue's stats pipes (over the same 24 h).
	for _, sq := range statsQueries {
		qs = append(qs, struct {
			name, path string
			want       func(uint64) bool
		}{sq.name, "/api/stats?q=" + url.QueryEscape(sq.q) + rng, nil})
	}
	pid := e.direct.cmd.Process.Pid
	for _, q := range qs {
		e.queryRow(b, q.name, pid, func() (time.Duration, uint64, error) {
			a, d, err := get(httpc, base, q.path)
			return d, a.hits(), err
		}, q.want)
	}
	if skipped(envSkip, "discover") {
		e.notes = append(e.notes, "Discover view: skipped by "+envSkip+".")
	} else {
		e.benchDiscover(b, base, pid, "GET", rng)
	}
	e.benchPatterns(b, base, pid, from, to)
	e.probeStats(base, rng)
	app, _ := dirBytes(filepath.Join(e.direct.data, "index"))
	e.notes = append(e.notes, fmt.Sprintf("Index directory after the query stage: %.1f MiB = %.2f× raw.", float64(app)/mib, float64(app)/float64(e.rawBytes)))
	e.measure("disk/raw after queries", measured{v: float64(app) / float64(e.rawBytes), ok: true,
		note: fmt.Sprintf("%.1f MiB for %.1f MiB raw, after the query stage", float64(app)/mib, float64(e.rawBytes)/mib)})
}

// queryRow times one query (or view), writes its row and keeps it for the
// targets table under "query: "+name. A 404/405 answer (an endpoint this
// tree lacks) makes a "skipped" row.
func (e *env) queryRow(b *testing.B, name string, pid int, one func() (time.Duration, uint64, error), want func(uint64) bool) queryResult {
	t, err := timeRuns(pid, one)
	var he *httpError
	if errors.As(err, &he) && (he.code == 404 || he.code == 405) {
		r := queryResult{skipped: cell(fmt.Sprintf("skipped: answers %d %s", he.code, he.body))}
		e.row("query: "+name, e.n, 0, 0, 0, 0, 0, r.skipped)
		e.queries()[name] = r
		return r
	}
	if err != nil {
		// A query over its time limit (10 M lines, the concurrent view)
		// is a result, not a reason to stop the stage.
		r := queryResult{skipped: cell(fmt.Sprintf("failed after %d runs: %v", t.runs(), err)), failed: true}
		e.row("query: "+name, e.n, 0, 0, 0, 0, 0, r.skipped)
		e.queries()[name] = r
		return r
	}
	r := queryResult{p50: ms(percentile(t.ds, 50)), p99: ms(percentile(t.ds, 99)), cores: t.cores(), runs: t.runs(), hits: t.hits}
	r.machine = t.machineCores()
	r.cpuPerRun = t.cpu / float64(t.runs()) * 1000
	r.note = fmt.Sprintf("%d hits; %d runs, first %.1f ms; CPU %.2f cores (%.2fs CPU in %.2fs, %.0f ms CPU a run; the whole machine %.2f cores busy meanwhile)",
		t.hits, t.runs(), ms(t.first), t.cores(), t.cpu, t.wall.Seconds(), r.cpuPerRun, r.machine)
	if want != nil && !want(t.hits) {
		r.note += " (UNEXPECTED hit count)"
	}
	key := strings.Trim(metricUnsafe.ReplaceAllString(strings.ToLower(name), "-"), "-")
	b.ReportMetric(r.p50, key+"-p50-ms")
	b.ReportMetric(r.p99, key+"-p99-ms")
	b.ReportMetric(r.cores, key+"-cores")
	e.row("query: "+name, e.n, 0, 0, r.p50, r.p99, 0, r.note)
	e.queries()[name] = r
	return r
}

// queries is where queryRow keeps its results.
func (e *env) queries() map[string]queryResult {
	if e.qres == nil {
		e.qres = map[string]queryResult{}
	}
	return e.qres
}

// benchDiscover measures the page's Discover view for q: each facet alone,
// then the whole view with its requests one after the other (the server
// time summed) and as the browser issues them (at once, at most six
// connections, the fields.* facets once the hits are in).
func (e *env) benchDiscover(b *testing.B, base string, pid int, q, rng string) {
	qp := "q=" + url.QueryEscape(q) + rng
	search := "/api/search?limit=" + fmt.Sprint(discoverPageSize) + "&" + qp
	hist := "/api/histogram?buckets=" + fmt.Sprint(discoverBuckets) + "&" + qp
	first, _, err := get(httpc, base, search)
	if err != nil {
		b.Fatalf("discover search: %v", err)
	}
	// The fields.* facets the page asks for: names seen in the first page.
	seen := map[string]bool{}
	for _, h := range first.Hits {
		for k := range h.Fields {
			seen["fields."+k] = true
		}
	}
	extra := slices.Sorted(maps.Keys(seen))
	if len(extra) > discoverMaxFields {
		extra = extra[:discoverMaxFields]
	}
	facet := func(field string) string {
		return "/api/facets?field=" + url.QueryEscape(field) + "&size=" + fmt.Sprint(discoverFacetSize) + "&" + qp
	}
	fields := append(slices.Clone(discoverFixedFacets), extra...)
	maxName, maxFacet := "", queryResult{}
	for _, f := range fields {
		r := e.queryRow(b, fmt.Sprintf("facet %s of %s", f, q), pid, func() (time.Duration, uint64, error) {
			a, d, err := get(httpc, base, facet(f))
			return d, a.hits(), err
		}, nil)
		if r.failed && !maxFacet.failed || r.skipped == "" && !maxFacet.failed && r.p50 >= maxFacet.p50 {
			maxName, maxFacet = f, r
		}
	}
	if maxFacet.failed {
		e.row("query: max facet of "+q, e.n, 0, 0, 0, 0, 0, maxName+": "+maxFacet.skipped)
		e.queries()["max facet of "+q] = maxFacet
	} else if maxName != "" {
		maxFacet.note = fmt.Sprintf("the slowest of the %d facets the page asks for (%s): %s", len(fields), maxName, maxFacet.note)
		e.row("query: max facet of "+q, e.n, 0, 0, maxFacet.p50, maxFacet.p99, 0, maxFacet.note)
		e.queries()["max facet of "+q] = maxFacet
	}

	// The view, one request after the other: the sum of the server times.
	paths := append([]string{search, hist}, mapSlice(fields, facet)...)
	e.queryRow(b, "whole Discover view of "+q+", sequential", pid, func() (time.Duration, uint64, error) {
		var sum time.Duration
		var hits uint64
		for i, p := range paths {
			a, d, err := get(httpc, base, p)
			if err != nil {
				return 0, 0, fmt.Errorf("%s: %w", p, err)
			}
			sum += d
			if i == 0 {
				hits = a.Total
			}
		}
		return sum, hits, nil
	}, nil)

	// The view as the browser asks for it: search, histogram and the fixed
	// facets at once; the fields.* facets when the search has answered.
	bc := &http.Client{Timeout: httpc.Timeout, Transport: &http.Transport{MaxConnsPerHost: browserConnsPerHost, MaxIdleConnsPerHost: browserConnsPerHost}}
	defer bc.CloseIdleConnections()
	fixed := append([]string{hist}, mapSlice(discoverFixedFacets, facet)...)
	more := mapSlice(extra, facet)
	var views, failedViews int
	var firstErr error
	e.queryRow(b, "whole Discover view of "+q+", concurrent", pid, func() (time.Duration, uint64, error) {
		t0 := time.Now()
		var wg sync.WaitGroup
		errs := make(chan error, len(fixed)+len(more)+1)
		fetch := func(p string) {
			defer wg.Done()
			if _, _, err := get(bc, base, p); err != nil {
				errs <- fmt.Errorf("%s: %w", p, err)
			}
		}
		for _, p := range fixed {
			wg.Add(1)
			go fetch(p)
		}
		a, _, err := get(bc, base, search)
		if err != nil {
			errs <- fmt.Errorf("%s: %w", search, err)
		} else {
			for _, p := range more {
				wg.Add(1)
				go fetch(p)
			}
		}
		wg.Wait()
		d := time.Since(t0)
		close(errs)
		views++
		if err := <-errs; err != nil {
			// A request over the server's time limit: the view is
			// counted with the time it took, and the failure said.
			failedViews++
			if firstErr == nil {
				firstErr = err
			}
		}
		return d, a.Total, nil
	}, nil)
	if failedViews > 0 {
		e.notes = append(e.notes, cell(fmt.Sprintf("Concurrent Discover view of %q: %d of %d views had a request fail (timed until it failed); the first: %v", q, failedViews, views, firstErr)))
		if r, ok := e.queries()["whole Discover view of "+q+", concurrent"]; ok {
			r.note += fmt.Sprintf("; %d of %d views had a failed request", failedViews, views)
			e.queries()["whole Discover view of "+q+", concurrent"] = r
		}
	}
	e.notes = append(e.notes, fmt.Sprintf("Discover view of %q (what ui/static/app.js asks for): %s; %s; facets (size=%d) of %s. "+
		"\"sequential\" sums the times of these %d requests issued one after the other (≈ server time: loopback, one client); "+
		"\"concurrent\" is the wall time with the page's concurrency (the first %d at once over at most %d connections, the fields.* facets when the search has answered).",
		q, search, hist, discoverFacetSize, strings.Join(fields, ", "), len(paths), 1+len(fixed), browserConnsPerHost))
}

func mapSlice[T, U any](xs []T, f func(T) U) []U {
	out := make([]U, len(xs))
	for i, x := range xs {
		out[i] = f(x)
	}
	return out
}

func searchTotal(base, path string) (uint64, error) {
	var res struct {
		Total uint64 `json:"total"`
	}
	err := getJSON(base+path, &res)
	return res.Total, err
}

var metricUnsafe = regexp.MustCompile(`[^a-z0-9]+`)

// probeStats asks once for a stats pipe over one field (what the target
// "reading one field of many lines" is about) and records whether this
// tree answers it; it is not timed against decoding the lines.
func (e *env) probeStats(base, rng string) {
	q := "GET | stats count() as n, avg(request_time) by (host)" // rt= on access lines is request_time (auto parser)
	var res map[string]any
	t0 := time.Now()
	err := getJSON(base+"/api/stats?q="+url.QueryEscape(q)+rng, &res)
	d := time.Since(t0)
	var he *httpError
	switch {
	case errors.As(err, &he) && (he.code == 404 || he.code == 405 || he.code == 501):
		e.measure("stats", measured{note: fmt.Sprintf("n/a: stats pipes do not exist yet (the next issue): /api/stats answers %d", he.code)})
	case err != nil:
		e.measure("stats", measured{note: fmt.Sprintf("n/a: /api/stats?q=%s failed: %v", q, err)})
	default:
		e.measure("stats", measured{note: fmt.Sprintf("/api/stats answers `%s` in %.1f ms (one run); not compared with decoding the lines by this benchmark", q, ms(d))})
	}
}

// statsQueries are the stats pipes the targets table times: "the access
// lines" are those with GET (as VictoriaLogs' query for the same figure
// selects them); the average and quantile are over every line by method,
// which has four values on the access lines and none (one more group) on
// the others: the nearest the generator has to the issue's "3-valued
// field".
var statsQueries = []struct{ name, q string }{
	{"stats count by status", "GET | stats count() by (status)"},
	{"stats count by status, every line", "* | stats count() by (status)"},
	{"stats avg and p99 by method", "* | stats avg(request_time), quantile(0.99, request_time) by (method)"},
	{"stats 5m series by host", "* | stats count() by (host, _time:5m)"},
	{"stats count by level", "* | stats count() by (level)"},
}

// getJSONWith is getJSON with client c.
func getJSONWith(c *http.Client, u string, v any) error {
	resp, err := c.Get(u)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return &httpError{code: resp.StatusCode, body: string(body)}
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// skipped says whether stage is in the comma-separated list of variable env.
func skipped(env, stage string) bool {
	for s := range strings.SplitSeq(os.Getenv(env), ",") {
		if strings.TrimSpace(s) == stage {
			return true
		}
	}
	return false
}
