package bench

import (
	"fmt"
	"net/url"
	"testing"
	"time"
)

// The pattern targets: /api/patterns (a 30-bucket sparkline, as
// the page asks) over every line of the run, and over the lines of 15
// minutes at 10k lines/s, i.e. the newest 9 M lines.
const (
	rowPatternsAll    = "patterns of every line"
	rowPatterns15m    = "patterns of the newest 9 M lines (15 min at 10k lines/s)"
	patterns15mLines  = 15 * 60 * 10_000
	patternsBuckets   = 30
	patternsTargetAll = 1000.0 // ms, for 1 M lines
	patternsTarget15m = 300.0  // ms, for 9 M lines
)

// benchPatterns times /api/patterns over [from, to) (every line), and
// over the part of it that holds the newest 9 M lines when the run has
// more (else every line again, and the 9 M figure is extrapolated in
// the targets table).
func (e *env) benchPatterns(b *testing.B, base string, pid int, from, to time.Time) {
	path := func(f, t time.Time) string {
		return fmt.Sprintf("/api/patterns?buckets=%d&limit=50&from=%s&to=%s", patternsBuckets,
			url.QueryEscape(f.Format(time.RFC3339Nano)), url.QueryEscape(t.Format(time.RFC3339Nano)))
	}
	one := func(p string) func() (time.Duration, uint64, error) {
		return func() (time.Duration, uint64, error) {
			a, d, err := get(httpc, base, p)
			return d, a.Total, err
		}
	}
	all := e.queryRow(b, rowPatternsAll, pid, one(path(from, to)), func(n uint64) bool { return n == uint64(e.n) })
	if e.n <= patterns15mLines || all.skipped != "" {
		e.notes = append(e.notes, fmt.Sprintf("Patterns: the 15-minute target is for 9 M lines; this run has %d, so its figure is the every-line one scaled by 9 M / %d lines.", e.n, all.hits))
		return
	}
	// The newest 9 M lines, by the generator's spacing of lines (the
	// answer's total says how many the window holds).
	f := to.Add(-time.Duration(float64(to.Sub(from)) * patterns15mLines / float64(e.n)))
	e.queryRow(b, rowPatterns15m, pid, one(path(f, to)), nil)
}

// patternsTargets writes the two pattern rows of the targets table.
func (e *env) patternsTargets(add func(target, got, met, from string), query func(target, name string, want float64)) {
	query("patterns over 1 M lines ≤ 1 s (`/api/patterns`, every line, 30 buckets)", rowPatternsAll, patternsTargetAll)
	const target = "patterns over the last 15 min at 10k lines/s (9 M lines) ≤ 300 ms"
	q, ok := e.qres[rowPatterns15m]
	name := rowPatterns15m
	if !ok {
		q, ok = e.qres[rowPatternsAll]
		name = rowPatternsAll
	}
	switch {
	case !ok:
		add(target, "n/a: queries stage did not run", "–", "query: "+rowPatternsAll)
		return
	case q.skipped != "" || q.hits == 0:
		add(target, "n/a: "+q.skipped, "–", "query: "+name)
		return
	}
	scaled := q.p50 * patterns15mLines / float64(q.hits)
	got := fmt.Sprintf("%.1f ms for %d lines (p99 %.1f), CPU %.2f cores", q.p50, q.hits, q.p99, q.cores)
	if q.hits < patterns15mLines*9/10 {
		got += fmt.Sprintf("; scaled to 9 M lines: %.0f ms", scaled)
	}
	met := "**met**"
	if scaled > patternsTarget15m {
		met = fmt.Sprintf("**missed**, %.1f× over", scaled/patternsTarget15m)
	}
	add(target, got, met, "query: "+name)
}
