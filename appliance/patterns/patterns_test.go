package patterns

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/logbox/logbox/appliance/index"
	"github.com/logbox/logbox/appliance/pipeline"
)

// A generator of lines of one known template.
type gen struct {
	tmpl string
	line func(r *rand.Rand) string
}

func pick[T any](r *rand.Rand, xs ...T) T { return xs[r.IntN(len(xs))] }

func ip(r *rand.Rand) string {
	return fmt.Sprintf("%d.%d.%d.%d", 1+r.IntN(254), r.IntN(256), r.IntN(256), 1+r.IntN(254))
}

func hexs(r *rand.Rand, n int) string {
	const d = "0123456789abcdef"
	b := make([]byte, n)
	for i := range b {
		b[i] = d[r.IntN(16)]
	}
	// At least one digit: a run of hex letters alone may be a word.
	b[r.IntN(n)] = d[r.IntN(10)]
	return string(b)
}

func uuidOf(r *rand.Rand) string {
	h := hexs(r, 32)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// gens are 20 templates; the variables of each vary enough that the miner
// must find the template (masked values and plain words alike).
var gens = []gen{
	{"user <*> logged in from <*>", func(r *rand.Rand) string {
		return fmt.Sprintf("user %s logged in from %s", pick(r, "alice", "bob", "carol", "dave", "erin", "frank", "grace"), ip(r))
	}},
	{"connection to <*> closed after <*>ms", func(r *rand.Rand) string {
		return fmt.Sprintf("connection to %s:%d closed after %dms", ip(r), 1024+r.IntN(60000), r.IntN(5000))
	}},
	{"GET /api/v1/items/<*> returned <*> in <*>s", func(r *rand.Rand) string {
		return fmt.Sprintf("GET /api/v1/items/%d returned %d in %.3fs", r.IntN(100000), pick(r, 200, 404, 500), r.Float64())
	}},
	{"payment <*> failed: card declined", func(r *rand.Rand) string {
		return fmt.Sprintf("payment %s failed: card declined", uuidOf(r))
	}},
	{"cache miss for key=<*> ttl=<*>", func(r *rand.Rand) string {
		return fmt.Sprintf("cache miss for key=%s ttl=%d", pick(r, "sessions", "profile", "cart", "prices"), r.IntN(3600))
	}},
	{"worker <*> started job <*>", func(r *rand.Rand) string {
		return fmt.Sprintf("worker %d started job %s", r.IntN(64), hexs(r, 12))
	}},
	{`{"level":<*>,"msg":<*>,"id":<*>}`, func(r *rand.Rand) string {
		return fmt.Sprintf(`{"level":%q,"msg":%q,"id":%d}`, pick(r, "info", "warn"), pick(r, "queue drained", "tick", "gc done"), r.IntN(1e6))
	}},
	{"disk <*> usage at <*>%", func(r *rand.Rand) string {
		return fmt.Sprintf("disk /dev/sd%c usage at %d%%", 'a'+rune(r.IntN(4)), r.IntN(100))
	}},
	{"sent email to <*>", func(r *rand.Rand) string {
		return fmt.Sprintf("sent email to %s.%s@example.com", pick(r, "ann", "ben", "cy"), pick(r, "lee", "ng", "ortiz"))
	}},
	{"retrying request id=<*> attempt <*> of <*>", func(r *rand.Rand) string {
		return fmt.Sprintf("retrying request id=%d attempt %d of 5", r.IntN(1e6), 1+r.IntN(5))
	}},
	{"shutdown requested by signal SIGTERM", func(r *rand.Rand) string { return "shutdown requested by signal SIGTERM" }},
	{"mount point <*> is read-only", func(r *rand.Rand) string {
		return fmt.Sprintf("mount point %s is read-only", pick(r, "/mnt/data", "/srv/www", "/var/lib/db"))
	}},
	{"thread-<*> blocked for <*> ms on lock <*>", func(r *rand.Rand) string {
		return fmt.Sprintf("thread-%d blocked for %d ms on lock %s", r.IntN(200), r.IntN(900), pick(r, "mu", "dbpool", "cache"))
	}},
	{"ERROR failed to parse config file <*> unexpected token <*> at line <*>", func(r *rand.Rand) string {
		return fmt.Sprintf("ERROR failed to parse config file %s: unexpected token %q at line %d", pick(r, "/etc/app.yaml", "/etc/db.yaml", "./local.yaml"), pick(r, "}", "{", "]]"), r.IntN(400))
	}},
	{"session <*> expired after <*>m idle", func(r *rand.Rand) string {
		return fmt.Sprintf("session %s expired after %dm idle", hexs(r, 16), 5+r.IntN(55))
	}},
	{"health check ok", func(r *rand.Rand) string { return "health check ok" }},
	{"upstream <*> responded <*> to <*>", func(r *rand.Rand) string {
		return fmt.Sprintf("upstream %s responded %d to %s", ip(r), pick(r, 502, 503, 504), pick(r, "GET", "POST", "PUT"))
	}},
	{"scheduled backup of db <*> completed in <*> seconds", func(r *rand.Rand) string {
		return fmt.Sprintf("scheduled backup of db %s completed in %d seconds", pick(r, "orders", "users", "billing"), r.IntN(7200))
	}},
	{"memory usage <*> MB (<*>%)", func(r *rand.Rand) string {
		return fmt.Sprintf("memory usage %d MB (%d%%)", r.IntN(64000), r.IntN(100))
	}},
	{"deploy of version <*> to <*> finished by <*>", func(r *rand.Rand) string {
		return fmt.Sprintf("deploy of version %d.%d.%d to %s finished by %s", r.IntN(3), r.IntN(20), r.IntN(100), pick(r, "staging", "production"), pick(r, "alice", "bob", "carol"))
	}},
}

// genLine is a generated line: its template (index in gens) and time.
type genLine struct {
	g    int
	ts   time.Time
	text string
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func openIndex(t *testing.T) *index.Index {
	t.Helper()
	ix, err := index.Open(index.Config{Dir: filepath.Join(t.TempDir(), "idx"), Templates: Fitter{}, Masker: Fitter{}}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ix.Close() })
	return ix
}

// generate makes n lines from the generators in use (indices into gens,
// the first more often than the last), evenly over [start, start+span).
func generate(seed uint64, n int, use []int, start time.Time, span time.Duration) []genLine {
	r := rand.New(rand.NewPCG(seed, seed+1))
	out := make([]genLine, n)
	for i := range out {
		// Skewed: generator k about (len-k) times as often as the last.
		k := r.IntN(len(use) * (len(use) + 1) / 2)
		g := 0
		for w := len(use); k >= w; w-- {
			k -= w
			g++
		}
		out[i] = genLine{g: use[g], ts: start.Add(time.Duration(i) * span / time.Duration(n)), text: gens[use[g]].line(r)}
	}
	return out
}

// load indexes lines in several files of two hosts, in batches (several
// blocks each).
func load(t *testing.T, ix *index.Index, lines []genLine, file string) {
	t.Helper()
	byFile := map[string][]pipeline.Record{}
	var order []string
	for i, l := range lines {
		host := []string{"web1", "web2"}[i%2]
		k := host + "|" + file
		if byFile[k] == nil {
			order = append(order, k)
		}
		recs := byFile[k]
		byFile[k] = append(recs, pipeline.Record{TS: l.ts, Host: host, Source: "/var/log/" + file, FileID: file + "-" + host,
			Offset: int64(len(recs)) * 300, Parser: "none", Line: l.text})
	}
	for _, k := range order {
		recs := byFile[k]
		for len(recs) > 0 {
			n := min(len(recs), 700)
			if err := ix.Index(context.Background(), recs[:n]); err != nil {
				t.Fatal(err)
			}
			recs = recs[n:]
		}
	}
}

func allGens() []int {
	out := make([]int, len(gens))
	for i := range out {
		out[i] = i
	}
	return out
}

var base = time.Date(2026, 5, 6, 10, 0, 0, 0, time.UTC)

func TestPatternsCountsExact(t *testing.T) {
	ix := openIndex(t)
	const n = 30000
	lines := generate(1, n, allGens(), base, 2*time.Hour)
	load(t, ix, lines, "app.log")
	ctx := context.Background()
	from, to := base, base.Add(2*time.Hour)
	const nb = 12
	res, err := New(ix).Patterns(ctx, pipeline.PatternsRequest{From: from, To: to, Buckets: nb, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]uint64{}
	wantBk := map[string][]uint64{}
	examples := map[string]map[string]bool{}
	for _, l := range lines {
		tp := gens[l.g].tmpl
		want[tp]++
		if wantBk[tp] == nil {
			wantBk[tp] = make([]uint64, nb)
			examples[tp] = map[string]bool{}
		}
		wantBk[tp][l.ts.Sub(from)/(to.Sub(from)/nb)]++
		examples[tp][l.text] = true
	}
	if res.Total != n || res.Templates != len(gens) || len(res.Patterns) != len(gens) || res.Rest != 0 || res.Overflow {
		t.Fatalf("total %d, %d templates, %d listed, rest %d, overflow %v; want %d lines in %d templates",
			res.Total, res.Templates, len(res.Patterns), res.Rest, res.Overflow, n, len(gens))
	}
	if res.BucketMS != (10*time.Minute).Milliseconds() || !res.BucketStart.Equal(from) {
		t.Fatalf("buckets start %v, %d ms", res.BucketStart, res.BucketMS)
	}
	var sum uint64
	for i, p := range res.Patterns {
		sum += p.Count
		if i > 0 && p.Count > res.Patterns[i-1].Count {
			t.Errorf("not by count: %q %d after %d", p.Pattern, p.Count, res.Patterns[i-1].Count)
		}
		if want[p.Pattern] != p.Count {
			t.Errorf("template %q: %d lines, generated %d", p.Pattern, p.Count, want[p.Pattern])
			continue
		}
		if !slices.Equal(p.Buckets, wantBk[p.Pattern]) {
			t.Errorf("template %q: buckets %v, generated %v", p.Pattern, p.Buckets, wantBk[p.Pattern])
		}
		if !examples[p.Pattern][p.Example] {
			t.Errorf("template %q: example %q is not one of its lines", p.Pattern, p.Example)
		}
		if p.Overlap || p.New || p.Other {
			t.Errorf("template %q: overlap %v new %v other %v", p.Pattern, p.Overlap, p.New, p.Other)
		}
		// Discover filtered to the template counts exactly its lines.
		sr, err := ix.Search(ctx, pipeline.SearchRequest{Query: p.Query, From: from, To: to, ExactTotal: true, Limit: 3})
		if err != nil {
			t.Fatalf("search %q: %v", p.Query, err)
		}
		if sr.Total != p.Count {
			t.Errorf("search %q: %d lines, the template has %d", p.Query, sr.Total, p.Count)
		}
		for _, h := range sr.Hits {
			if !examples[p.Pattern][h.Line] {
				t.Errorf("search %q found %q, not a line of the template", p.Query, h.Line)
			}
		}
		hr, err := ix.Histogram(ctx, pipeline.HistogramRequest{Query: p.Query, From: from, To: to, Buckets: nb})
		if err != nil {
			t.Fatal(err)
		}
		if hr.Total != p.Count {
			t.Errorf("histogram %q: %d lines, the template has %d", p.Query, hr.Total, p.Count)
		}
	}
	if sum != n {
		t.Fatalf("counts add up to %d of %d", sum, n)
	}
	fr, err := ix.Facets(ctx, pipeline.FacetsRequest{Query: res.Patterns[0].Query, From: from, To: to, Field: "host", Size: 5})
	if err != nil {
		t.Fatal(err)
	}
	var fsum int
	for _, v := range fr.Values {
		fsum += int(v.Count)
	}
	if uint64(fsum) != res.Patterns[0].Count {
		t.Errorf("facet host of %q: %d lines, the template has %d", res.Patterns[0].Query, fsum, res.Patterns[0].Count)
	}

	// A query narrows the lines; the filter query keeps it.
	res2, err := New(ix).Patterns(ctx, pipeline.PatternsRequest{Query: "host:web1 AND (failed OR user)", From: from, To: to})
	if err != nil {
		t.Fatal(err)
	}
	want2 := map[string]uint64{}
	for i, l := range lines {
		if i%2 == 0 && (strings.Contains(l.text, "failed") || strings.HasPrefix(l.text, "user ")) {
			want2[gens[l.g].tmpl]++
		}
	}
	if len(res2.Patterns) != len(want2) {
		t.Fatalf("narrowed: %d templates, want %d: %+v", len(res2.Patterns), len(want2), res2.Patterns)
	}
	for _, p := range res2.Patterns {
		if p.Count != want2[p.Pattern] || !strings.HasPrefix(p.Query, "(host:web1 AND (failed OR user)) AND _pattern:") {
			t.Errorf("narrowed: %q %d (want %d), query %q", p.Pattern, p.Count, want2[p.Pattern], p.Query)
		}
		sr, err := ix.Search(ctx, pipeline.SearchRequest{Query: p.Query, From: from, To: to, ExactTotal: true, Limit: 1})
		if err != nil || sr.Total != p.Count {
			t.Errorf("search %q: %d, %v; want %d", p.Query, sr.Total, err, p.Count)
		}
	}
}

func TestPatternsNew(t *testing.T) {
	ix := openIndex(t)
	// Before: templates 0–14, with users and databases the later range
	// does not have (their lines still fit the later templates), and a
	// deploy line one word short (it fits no template of the later range).
	before := generate(2, 6000, allGens()[:15], base, time.Hour)
	before = append(before,
		genLine{g: 0, ts: base.Add(time.Minute), text: "user zed logged in from 10.0.0.1"},
		genLine{g: 19, ts: base.Add(2 * time.Minute), text: "deploy of version 1.2.3 to staging finished"})
	load(t, ix, before, "before.log")
	after := generate(3, 8000, allGens(), base.Add(time.Hour), time.Hour)
	load(t, ix, after, "after.log")
	ctx := context.Background()
	m := New(ix)
	req := pipeline.PatternsRequest{From: base.Add(time.Hour), To: base.Add(2 * time.Hour), CompareFrom: base, CompareTo: base.Add(time.Hour), Limit: 100}
	res, err := m.Patterns(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Compared || res.New != 5 || len(res.Patterns) != 20 {
		t.Fatalf("compared %v, %d new, %d templates; want 5 new of 20", res.Compared, res.New, len(res.Patterns))
	}
	for _, p := range res.Patterns {
		g := slices.IndexFunc(gens, func(g gen) bool { return g.tmpl == p.Pattern })
		if g < 0 {
			t.Fatalf("unexpected template %q", p.Pattern)
		}
		if p.New != (g >= 15) {
			t.Errorf("template %q: new %v", p.Pattern, p.New)
		}
		// Exactly: new when its filter finds nothing in the comparison range.
		sr, err := ix.Search(ctx, pipeline.SearchRequest{Query: p.Query, From: req.CompareFrom, To: req.CompareTo, ExactTotal: true, Limit: 1})
		if err != nil {
			t.Fatal(err)
		}
		if p.New != (sr.Total == 0) {
			t.Errorf("template %q: new %v, but %d lines of the comparison range fit it", p.Pattern, p.New, sr.Total)
		}
	}
	got, err := m.NewPatterns(ctx, "", req.From, req.To, req.CompareFrom, req.CompareTo)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range got {
		names = append(names, p.Pattern)
		if !p.New {
			t.Errorf("NewPatterns gave %q, not new", p.Pattern)
		}
	}
	slices.Sort(names)
	var wantNames []string
	for _, g := range gens[15:] {
		wantNames = append(wantNames, g.tmpl)
	}
	slices.Sort(wantNames)
	if !slices.Equal(names, wantNames) {
		t.Fatalf("NewPatterns: %q, want %q", names, wantNames)
	}
	// A comparison range that holds everything: nothing is new.
	res, err = m.Patterns(ctx, pipeline.PatternsRequest{From: req.From, To: req.To, CompareFrom: req.From, CompareTo: req.To, NewOnly: true})
	if err != nil || res.New != 0 || len(res.Patterns) != 0 || res.Rest != res.Total {
		t.Fatalf("against itself: %d new, %d listed, rest %d of %d, %v", res.New, len(res.Patterns), res.Rest, res.Total, err)
	}
	if _, err := m.Patterns(ctx, pipeline.PatternsRequest{NewOnly: true}); err == nil {
		t.Fatal("only new without a comparison range: no error")
	}
}

func TestPatternsDeterministic(t *testing.T) {
	ix := openIndex(t)
	lines := generate(4, 20000, allGens(), base, time.Hour)
	load(t, ix, lines, "a.log")
	load(t, ix, generate(5, 5000, allGens()[:10], base.Add(-time.Hour), time.Hour), "b.log")
	req := pipeline.PatternsRequest{From: base, To: base.Add(time.Hour), CompareFrom: base.Add(-time.Hour), CompareTo: base, Buckets: 7}
	answer := func() string {
		t.Helper()
		res, err := New(ix).Patterns(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(res)
		return string(b)
	}
	first := answer()
	if again := answer(); again != first {
		t.Fatalf("two answers differ:\n%s\n%s", first, again)
	}
	prev := runtime.GOMAXPROCS(1)
	one := answer()
	runtime.GOMAXPROCS(max(2, prev))
	two := answer()
	runtime.GOMAXPROCS(prev)
	if one != first || two != first {
		t.Fatalf("1 and 2 workers answer differently:\n%s\n%s", one, two)
	}
}

func TestPatternsOverflow(t *testing.T) {
	ix := openIndex(t)
	lines := generate(6, 5000, allGens(), base, time.Hour)
	load(t, ix, lines, "a.log")
	m := New(ix)
	m.maxKeys = 20
	res, err := m.Patterns(context.Background(), pipeline.PatternsRequest{From: base, To: base.Add(time.Hour), Buckets: 4, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Overflow {
		t.Fatal("no overflow with 20 keys at most")
	}
	var sum uint64
	last := res.Patterns[len(res.Patterns)-1]
	for _, p := range res.Patterns {
		sum += p.Count
	}
	if sum != res.Total || res.Total != 5000 || !last.Other || last.Pattern != OtherPattern || last.Query != "" || last.Count == 0 {
		t.Fatalf("sum %d of %d; last %+v", sum, res.Total, last)
	}
	var bk uint64
	for _, v := range last.Buckets {
		bk += v
	}
	if bk != last.Count {
		t.Fatalf("other's buckets hold %d of %d", bk, last.Count)
	}
}

func TestPatternsLimitAndErrors(t *testing.T) {
	ix := openIndex(t)
	load(t, ix, generate(7, 3000, allGens(), base, time.Hour), "a.log")
	m := New(ix)
	ctx := context.Background()
	res, err := m.Patterns(ctx, pipeline.PatternsRequest{Limit: 3})
	if err != nil {
		t.Fatal(err)
	}
	var listed uint64
	for _, p := range res.Patterns {
		listed += p.Count
		if len(p.Buckets) != 0 {
			t.Fatalf("buckets over an open range: %v", p.Buckets)
		}
	}
	if len(res.Patterns) != 3 || res.Templates != 20 || listed+res.Rest != res.Total || res.Total != 3000 {
		t.Fatalf("%d listed of %d, %d + rest %d of %d", len(res.Patterns), res.Templates, listed, res.Rest, res.Total)
	}
	for _, req := range []pipeline.PatternsRequest{{Limit: -1}, {Limit: MaxLimit + 1}, {Buckets: MaxBuckets + 1},
		{CompareFrom: base}, {From: base.Add(time.Hour), To: base}} {
		if _, err := m.Patterns(ctx, req); err == nil {
			t.Errorf("%+v: no error", req)
		} else if fe := (*pipeline.FieldError)(nil); !errors.As(err, &fe) {
			t.Errorf("%+v: %T %v, want a field error", req, err, err)
		}
	}
	_, err = m.Patterns(ctx, pipeline.PatternsRequest{Query: "a AND (b"})
	if qe := (*pipeline.QueryError)(nil); !errors.As(err, &qe) || qe.Pos == 0 {
		t.Fatalf("bad query: %T %v", err, err)
	}
}

func TestPatternFilter(t *testing.T) {
	ix := openIndex(t)
	lines := generate(8, 6000, allGens(), base, time.Hour)
	odd := []string{
		`copy C:\dir\x"y done 5`, `copy C:\dir\x"y done 6`,
		`copy C:\dir\x"z done 7 now`, "",
	}
	for i, s := range odd {
		lines = append(lines, genLine{g: -1, ts: base.Add(time.Duration(i) * time.Second), text: s})
	}
	load(t, ix, lines, "a.log")
	ctx := context.Background()
	from, to := base, base.Add(time.Hour)
	count := func(q string) uint64 {
		t.Helper()
		sr, err := ix.Search(ctx, pipeline.SearchRequest{Query: q, From: from, To: to, ExactTotal: true, Limit: 1})
		if err != nil {
			t.Fatalf("%q: %v", q, err)
		}
		return sr.Total
	}
	res, err := New(ix).Patterns(ctx, pipeline.PatternsRequest{From: from, To: to, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	byText := map[string]pipeline.Pattern{}
	for _, p := range res.Patterns {
		byText[p.Pattern] = p
		if got := count(p.Query); got != p.Count {
			t.Errorf("%q: %d lines, template %d", p.Query, got, p.Count)
		}
	}
	// The odd lines: a quote and backslashes in a word, and an empty line.
	if p, ok := byText[`copy C:\dir\x"y done <*>`]; !ok || p.Count != 2 || p.Query != `_pattern:"copy C:\\dir\\x\"y done <*>"` {
		t.Errorf("quoted template: %+v (%v)", p, ok)
	}
	if p, ok := byText[""]; !ok || p.Count != 1 {
		t.Errorf("empty line's template: %+v (%v)", p, ok)
	}
	a, b := byText[gens[0].tmpl], byText[gens[1].tmpl]
	total := uint64(len(lines))
	for q, want := range map[string]uint64{
		"-" + a.Query:                               total - a.Count,
		a.Query + " OR " + b.Query:                  a.Count + b.Count,
		a.Query + " AND " + b.Query:                 0,
		`_pattern:"user   <*>  logged in from <*>"`: a.Count,
		`_pattern:"user <*> logged in"`:             0,
		`_pattern:"<*> <*> logged in from <*>"`:     a.Count,
		`alice AND ` + a.Query:                      uint64(countLines(lines, func(s string) bool { return strings.HasPrefix(s, "user alice ") })),
	} {
		if got := count(q); got != want {
			t.Errorf("%q: %d lines, want %d", q, got, want)
		}
	}
	st, err := ix.StatsQuery(ctx, pipeline.StatsRequest{Query: a.Query + " | stats count() as n by (host)", From: from, To: to})
	if err != nil {
		t.Fatal(err)
	}
	var n float64
	for _, row := range st.Rows {
		n += toFloat(row[1])
	}
	if uint64(n) != a.Count {
		t.Errorf("stats by host of %q: %v lines, want %d", a.Query, n, a.Count)
	}

	// A live tail filtered by a template gets only the new lines that fit.
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	tail, err := ix.Tail(tctx, pipeline.TailRequest{Query: b.Query})
	if err != nil {
		t.Fatal(err)
	}
	defer tail.Close()
	now := time.Now().UTC()
	if err := ix.Index(tctx, []pipeline.Record{
		{TS: now, Host: "h", FileID: "live", Offset: 0, Parser: "none", Line: "connection to 10.0.0.9:80 closed after 5ms"},
		{TS: now, Host: "h", FileID: "live", Offset: 100, Parser: "none", Line: "connection to 10.0.0.9:80 closed after 5 ms"},
		{TS: now, Host: "h", FileID: "live", Offset: 200, Parser: "none", Line: "user x logged in from 10.0.0.9"},
	}); err != nil {
		t.Fatal(err)
	}
	var got []string
	for deadline := time.Now().Add(10 * time.Second); len(got) < 1 && time.Now().Before(deadline); {
		c, err := tail.Next(tctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range c.Hits {
			got = append(got, h.Line)
		}
		if len(c.Hits) == 0 {
			select {
			case <-tail.Ready():
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	if !slices.Equal(got, []string{"connection to 10.0.0.9:80 closed after 5ms"}) {
		t.Fatalf("tail of %q: %q", b.Query, got)
	}
}

func countLines(lines []genLine, keep func(string) bool) int {
	n := 0
	for _, l := range lines {
		if keep(l.text) {
			n++
		}
	}
	return n
}

func toFloat(v any) float64 {
	switch v := v.(type) {
	case uint64:
		return float64(v)
	case int64:
		return float64(v)
	case int:
		return float64(v)
	case float64:
		return v
	}
	panic(fmt.Sprintf("%T", v))
}
