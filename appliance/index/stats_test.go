package index

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/logbox/logbox/appliance/pipeline"
)

// statsLine is a generated line and what it holds, for brute force.
type statsLine struct {
	ts     time.Time
	host   string
	level  string
	svc    string // "" when absent
	status string
	rt     float64
	hasRT  bool
	user   string
	tags   []string
	json   bool
}

// statsCorpus indexes n generated lines (logfmt and JSON, three hosts,
// some lines missing fields, some with two tags) over two hours.
func statsCorpus(t *testing.T, n int) (*Index, []statsLine, time.Time) {
	t.Helper()
	ctx := context.Background()
	ix := openTest(t, filepath.Join(t.TempDir(), "idx"))
	t.Cleanup(func() { ix.Close() })
	base := time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)
	r := rand.New(rand.NewPCG(7, 13))
	var lines []statsLine
	byHost := map[string][]pipeline.Record{}
	for i := range n {
		l := statsLine{
			ts:     base.Add(time.Duration(i) * 2 * time.Hour / time.Duration(n)),
			host:   []string{"web1", "web2", "db1"}[r.IntN(3)],
			level:  []string{"INFO", "INFO", "WARN", "ERROR", "DEBUG"}[r.IntN(5)],
			status: []string{"200", "200", "200", "404", "500", "1000"}[r.IntN(6)],
			user:   fmt.Sprintf("u%d", r.IntN(40)),
		}
		if r.IntN(10) > 0 {
			l.svc = []string{"api", "auth", "billing"}[r.IntN(3)]
		}
		if r.IntN(8) > 0 {
			l.rt, l.hasRT = float64(r.IntN(5000))/1000, true
		}
		var text string
		if i%4 == 0 {
			l.json = true
			obj := map[string]any{"level": strings.ToLower(l.level), "status": json.Number(l.status), "user": l.user, "msg": "json line"}
			if l.svc != "" {
				obj["svc"] = l.svc
			}
			if l.hasRT {
				obj["rt"] = l.rt
			}
			l.tags = []string{"t" + strconv.Itoa(r.IntN(3))}
			if r.IntN(3) == 0 {
				l.tags = append(l.tags, "t9")
			}
			obj["tag"] = l.tags
			b, _ := json.Marshal(obj)
			text = string(b)
		} else {
			text = fmt.Sprintf("%s request done status=%s user=%s", l.level, l.status, l.user)
			if l.svc != "" {
				text += " svc=" + l.svc
			}
			if l.hasRT {
				text += " rt=" + strconv.FormatFloat(l.rt, 'f', -1, 64)
			}
		}
		lines = append(lines, l)
		byHost[l.host] = append(byHost[l.host], pipeline.Record{
			TS: l.ts, Host: l.host, Source: "/var/log/app.log", FileID: "f-" + l.host,
			Offset: int64(len(byHost[l.host]) * 200), Line: text,
		})
	}
	for _, h := range slices.Sorted(func(yield func(string) bool) {
		for h := range byHost {
			if !yield(h) {
				return
			}
		}
	}) {
		recs := byHost[h]
		for len(recs) > 0 { // several calls: several blocks per file
			k := min(len(recs), 100)
			if err := ix.Index(ctx, recs[:k]); err != nil {
				t.Fatal(err)
			}
			recs = recs[k:]
		}
	}
	return ix, lines, base
}

// bruteStats computes the rows of a stats query by hand: keep(l) selects
// lines, key(l) gives each line's groups (several for several tags), and
// fn the values of a group.
func bruteStats(lines []statsLine, keep func(*statsLine) bool, key func(*statsLine) [][]any, fn func(g []*statsLine) []any) map[string][]any {
	groups := map[string][]*statsLine{}
	keys := map[string][]any{}
	for i := range lines {
		l := &lines[i]
		if !keep(l) {
			continue
		}
		for _, k := range key(l) {
			ks := fmt.Sprint(k...)
			groups[ks] = append(groups[ks], l)
			keys[ks] = k
		}
	}
	out := map[string][]any{}
	for ks, g := range groups {
		out[ks] = append(slices.Clone(keys[ks]), fn(g)...)
	}
	return out
}

func nearestRank(vals []float64, phi float64) any {
	if len(vals) == 0 {
		return nil
	}
	s := slices.Clone(vals)
	sort.Float64s(s)
	k := int(math.Ceil(phi*float64(len(s)))) - 1
	return s[max(0, min(k, len(s)-1))]
}

func rts(g []*statsLine) []float64 {
	var v []float64
	for _, l := range g {
		if l.hasRT {
			v = append(v, l.rt)
		}
	}
	return v
}

func numOrNil(v []float64, f func([]float64) float64) any {
	if len(v) == 0 {
		return nil
	}
	return f(v)
}

// sameCell compares an answer cell with a brute-force one (JSON numbers
// as float64, sums to a relative 1e-9).
func sameCell(got, want any) bool {
	if want == nil || got == nil {
		return want == nil && got == nil
	}
	gf, gok := cellNumber(got)
	wf, wok := cellNumber(want)
	if _, isStr := want.(string); isStr {
		return got == want
	}
	if gok && wok {
		return gf == wf || math.Abs(gf-wf) <= 1e-9*math.Max(math.Abs(gf), math.Abs(wf))
	}
	return false
}

func TestStatsAgainstBruteForce(t *testing.T) {
	ix, lines, base := statsCorpus(t, 6000)
	ctx := context.Background()
	all := func(*statsLine) bool { return true }
	one := func(v ...any) [][]any { return [][]any{v} }
	count := func(g []*statsLine) []any { return []any{uint64(len(g))} }
	bucket := func(ts time.Time, d time.Duration) string { return ts.Truncate(d).UTC().Format(time.RFC3339) }
	cases := []struct {
		name     string
		q        string
		from, to time.Time
		keep     func(*statsLine) bool
		key      func(*statsLine) [][]any
		fn       func([]*statsLine) []any
	}{
		{"count by level (whole blocks)", "* | stats count() by (level)", time.Time{}, time.Time{}, all,
			func(l *statsLine) [][]any { return one(l.level) }, count},
		{"count by host and 10m (whole blocks and cut ones)", "| stats by (host, _time:10m) count() as n", time.Time{}, time.Time{}, all,
			func(l *statsLine) [][]any { return one(l.host, bucket(l.ts, 10*time.Minute)) }, count},
		{"count by status over a cut range", "request | stats count() by (status)", base.Add(17 * time.Minute), base.Add(83 * time.Minute),
			func(l *statsLine) bool {
				return !l.json && !l.ts.Before(base.Add(17*time.Minute)) && l.ts.Before(base.Add(83*time.Minute))
			},
			func(l *statsLine) [][]any { return one(l.status) }, count},
		{"numbers by svc, missing svc is a group", "| stats count(rt), sum(rt), avg(rt), min(rt), max(rt), quantile(0.99, rt), median(rt) by (svc)", time.Time{}, time.Time{}, all,
			func(l *statsLine) [][]any { return one(l.svc) },
			func(g []*statsLine) []any {
				v := rts(g)
				sum := func(v []float64) float64 {
					s := 0.0
					for _, x := range v {
						s += x
					}
					return s
				}
				return []any{uint64(len(v)), numOrNil(v, sum), numOrNil(v, func(v []float64) float64 { return sum(v) / float64(len(v)) }),
					numOrNil(v, slices.Min[[]float64]), numOrNil(v, slices.Max[[]float64]), nearestRank(v, 0.99), nearestRank(v, 0.5)}
			}},
		{"query filter, count_distinct and 7m buckets", "level:error | stats count_distinct(user) as users, count() by (_time:7m)", time.Time{}, time.Time{},
			func(l *statsLine) bool { return l.level == "ERROR" },
			func(l *statsLine) [][]any {
				return one(time.Unix(0, l.ts.UnixNano()-l.ts.UnixNano()%int64(7*time.Minute)).UTC().Format(time.RFC3339))
			},
			func(g []*statsLine) []any {
				u := map[string]bool{}
				for _, l := range g {
					u[l.user] = true
				}
				return []any{uint64(len(u)), uint64(len(g))}
			}},
		{"multi-valued tag, two by fields", "| stats count(), max(rt) by (tag, host)", time.Time{}, time.Time{}, all,
			func(l *statsLine) [][]any {
				if len(l.tags) == 0 {
					return one("", l.host) // no tag: the empty value's group
				}
				var k [][]any
				for _, t := range l.tags {
					k = append(k, []any{t, l.host})
				}
				return k
			},
			func(g []*statsLine) []any {
				return []any{uint64(len(g)), numOrNil(rts(g), slices.Max[[]float64])}
			}},
		{"no by: one row", "svc:api svc:auth | stats count(), avg(rt)", time.Time{}, time.Time{},
			func(l *statsLine) bool { return l.svc == "api" || l.svc == "auth" },
			func(l *statsLine) [][]any { return one() },
			func(g []*statsLine) []any {
				v := rts(g)
				s := 0.0
				for _, x := range v {
					s += x
				}
				return []any{uint64(len(g)), s / float64(len(v))}
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, err := ix.StatsQuery(ctx, pipeline.StatsRequest{Query: c.q, From: c.from, To: c.to})
			if err != nil {
				t.Fatal(err)
			}
			want := bruteStats(lines, c.keep, c.key, c.fn)
			if len(res.Rows) != len(want) {
				t.Fatalf("%d rows, want %d: %v", len(res.Rows), len(want), res.Rows)
			}
			for _, row := range res.Rows {
				found := false
				for _, w := range want {
					match := true
					for j := range w {
						if !sameCell(row[j], w[j]) {
							match = false
							break
						}
					}
					if match {
						found = true
						break
					}
				}
				if !found {
					t.Errorf("row %v is not among the brute-force rows %v", row, want)
				}
			}
			if res.GroupsCapped {
				t.Error("groups capped")
			}
		})
	}
}

func TestStatsSortLimitAndOrder(t *testing.T) {
	ix, lines, _ := statsCorpus(t, 3000)
	ctx := context.Background()
	counts := map[string]int{}
	for _, l := range lines {
		counts[l.status]++
	}
	res, err := ix.StatsQuery(ctx, pipeline.StatsRequest{Query: "| stats count() as n by (status) | sort by (n desc) | limit 2"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Columns, []string{"status", "n"}) || len(res.Rows) != 2 {
		t.Fatalf("columns %v rows %v", res.Columns, res.Rows)
	}
	if res.Rows[0][0] != "200" || res.Rows[0][1] != uint64(counts["200"]) {
		t.Errorf("first row %v, want 200 with %d", res.Rows[0], counts["200"])
	}
	// Status sorted as numbers: 1000 after 500.
	res, err = ix.StatsQuery(ctx, pipeline.StatsRequest{Query: "| stats count() by (status) | sort by (status)"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range res.Rows {
		got = append(got, r[0].(string))
	}
	if !slices.Equal(got, []string{"200", "404", "500", "1000"}) {
		t.Errorf("sorted by status: %v", got)
	}
	// Default order without _time: the first function, largest first.
	res, err = ix.StatsQuery(ctx, pipeline.StatsRequest{Query: "| stats count() by (status)"})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < len(res.Rows); i++ {
		if res.Rows[i-1][1].(uint64) < res.Rows[i][1].(uint64) {
			t.Errorf("default order not by count: %v", res.Rows)
		}
	}
	// A time series: by time.
	res, err = ix.StatsQuery(ctx, pipeline.StatsRequest{Query: "| stats count() by (_time:15m) | limit 3"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Rows) != 3 || !(res.Rows[0][0].(string) < res.Rows[1][0].(string)) {
		t.Errorf("time series rows %v", res.Rows)
	}
	res, err = ix.StatsQuery(ctx, pipeline.StatsRequest{Query: "| stats count() by (_time:1d) | head 1"})
	if err != nil || len(res.Rows) != 1 || res.Rows[0][0] != "2026-03-04T00:00:00Z" || res.Rows[0][1] != uint64(len(lines)) {
		t.Errorf("a day's bucket: %v %v", res.Rows, err)
	}
	if res.Total != uint64(len(lines)) {
		t.Errorf("total %d, want %d", res.Total, len(lines))
	}
}

func TestStatsGroupsCapped(t *testing.T) {
	ix := openTest(t, filepath.Join(t.TempDir(), "idx"))
	defer ix.Close()
	base := time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)
	n := MaxStatsGroups + 500
	rs := make([]pipeline.Record, n)
	for i := range rs {
		rs[i] = pipeline.Record{TS: base.Add(time.Duration(i) * time.Millisecond), Host: "h", Source: "/s", FileID: "f",
			Offset: int64(i * 20), Line: fmt.Sprintf("id=%d", i)}
	}
	if err := ix.Index(context.Background(), rs); err != nil {
		t.Fatal(err)
	}
	res, err := ix.StatsQuery(context.Background(), pipeline.StatsRequest{Query: "| stats count() by (id)"})
	if err != nil {
		t.Fatal(err)
	}
	if !res.GroupsCapped || len(res.Rows) != MaxStatsGroups || res.Total != uint64(n) {
		t.Errorf("capped %v, %d rows, total %d; want capped, %d rows, total %d", res.GroupsCapped, len(res.Rows), res.Total, MaxStatsGroups, n)
	}
	res, err = ix.StatsQuery(context.Background(), pipeline.StatsRequest{Query: "| stats count_distinct(id)"})
	if err != nil || res.GroupsCapped || res.Rows[0][0] != uint64(n) {
		t.Errorf("count_distinct over %d: %v %v", n, res.Rows, err)
	}
}

func TestStatsErrors(t *testing.T) {
	ix := openTest(t, filepath.Join(t.TempDir(), "idx"))
	defer ix.Close()
	cases := []struct {
		q   string
		pos int
		msg string
	}{
		{"error", 6, "needs a stats pipe"},
		{"error | stats", 14, "expected a function"},
		{"error | stats cnt()", 15, "unknown function"},
		{"error | stats count() by (host", 31, `")" to close`},
		{"error | stats count( by (host)", 25, "expected"},
		{"error | stats avg()", 15, "takes 1 argument"},
		{"error | stats quantile(2, rt)", 24, "from 0 to 1"},
		{"error | stats count() by (_time)", 32, "bucket size"},
		{"error | stats count() by (_time:5x)", 33, "not a bucket size"},
		{"error | stats count() | sort by (m)", 34, "no column"},
		{"error | stats count() | limit x", 31, "limit must be"},
		{"error | sort by (n)", 9, "needs a stats pipe"},
		{"error | stats count() | stats count()", 25, "first pipe"},
		{"error | stats count() | grep x", 25, "unknown pipe"},
		{"error | stats count() as n, count() as n", 0, "two columns"},
		{"error | stats sum(line)", 19, "cannot be used"},
		{"error | stats count() ;", 23, "unexpected"},
		{"error |", 8, "empty pipe"},
	}
	for _, c := range cases {
		_, err := ix.StatsQuery(context.Background(), pipeline.StatsRequest{Query: c.q})
		var qe *pipeline.QueryError
		if !errors.As(err, &qe) || qe.Pos != c.pos || !strings.Contains(qe.Msg, c.msg) {
			t.Errorf("%q: %v (pos %d); want position %d and %q", c.q, err, func() int {
				if qe != nil {
					return qe.Pos
				}
				return -1
			}(), c.pos, c.msg)
		}
	}
	// Search, histogram and facets refuse a pipe, pointing at it.
	_, err := ix.Search(context.Background(), pipeline.SearchRequest{Query: "error | stats count()", Limit: 10})
	var qe *pipeline.QueryError
	if !errors.As(err, &qe) || qe.Pos != 7 {
		t.Errorf("search with a pipe: %v", err)
	}
}

func TestSelectKthAsSort(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{1, 2, 3, 10, 100, 1000, 50000} {
		for _, distinct := range []int{1, 3, 1 << 30} {
			a := make([]float64, n)
			for i := range a {
				a[i] = float64(r.IntN(distinct))
			}
			sorted := slices.Clone(a)
			slices.Sort(sorted)
			for _, k := range []int{0, n / 3, n / 2, n - 1, r.IntN(n)} {
				if got := selectKth(slices.Clone(a), k); got != sorted[k] {
					t.Fatalf("n %d distinct %d k %d: %v, want %v", n, distinct, k, got, sorted[k])
				}
			}
		}
	}
	// Already sorted and reversed inputs.
	a := make([]float64, 10000)
	for i := range a {
		a[i] = float64(i)
	}
	rev := slices.Clone(a)
	slices.Reverse(rev)
	if selectKth(slices.Clone(a), 9899) != 9899 || selectKth(rev, 17) != 17 {
		t.Fatal("sorted or reversed input")
	}
}

// TestStatsNoMatchWithoutBy: a pipe without by answers one row when no
// line matches (counts 0, the rest null), as an SQL aggregate does, and
// says how many columns are by values.
func TestStatsNoMatchWithoutBy(t *testing.T) {
	ix, _, _ := statsCorpus(t, 300)
	ctx := context.Background()
	res, err := ix.StatsQuery(ctx, pipeline.StatsRequest{Query: "nosuchwordanywhere | stats count() as n, count_distinct(host), avg(request_time)"})
	if err != nil {
		t.Fatal(err)
	}
	if res.By != 0 || res.Total != 0 || fmt.Sprint(res.Rows) != "[[0 0 <nil>]]" {
		t.Errorf("no match without by: by %d total %d rows %v, want one row [0 0 nil]", res.By, res.Total, res.Rows)
	}
	res, err = ix.StatsQuery(ctx, pipeline.StatsRequest{Query: "nosuchwordanywhere | stats count() by (host, level)"})
	if err != nil {
		t.Fatal(err)
	}
	if res.By != 2 || len(res.Rows) != 0 {
		t.Errorf("no match by two fields: by %d rows %v, want by 2 and no row", res.By, res.Rows)
	}
}
