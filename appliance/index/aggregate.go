package index

import (
	"cmp"
	"container/heap"
	"context"
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/logbox/logbox/appliance/pipeline"
)

// Histogram limits.
const (
	DefaultBuckets = 60
	MaxBuckets     = 500
)

const day = 24 * time.Hour

// niceIntervals are the bucket sizes a histogram picks from (Kibana's).
var niceIntervals = []time.Duration{
	time.Second, 5 * time.Second, 10 * time.Second, 30 * time.Second,
	time.Minute, 5 * time.Minute, 10 * time.Minute, 30 * time.Minute,
	time.Hour, 3 * time.Hour, 12 * time.Hour,
	day, 7 * day, 30 * day, 365 * day,
}

// bucketStart aligns t down to a multiple of iv since the Unix epoch (UTC).
func bucketStart(t time.Time, iv time.Duration) time.Time {
	ns := t.UnixNano()
	r := ns % int64(iv)
	if r < 0 {
		r += int64(iv)
	}
	return time.Unix(0, ns-r).UTC()
}

// ChooseInterval returns the smallest nice interval whose aligned buckets
// covering [from, to) number at most n, and that number. Beyond the list
// it uses whole multiples of 365 days.
func ChooseInterval(from, to time.Time, n int) (time.Duration, int) {
	count := func(iv time.Duration) int {
		start := bucketStart(from, iv)
		span := to.Sub(start)
		c := int(span / iv)
		if span%iv != 0 || c == 0 {
			c++
		}
		return c
	}
	for _, iv := range niceIntervals {
		if c := count(iv); c <= n {
			return iv, c
		}
	}
	year := 365 * day
	k := time.Duration(to.Sub(from)/year/time.Duration(n)) + 1
	for {
		if c := count(k * year); c <= n {
			return k * year, c
		}
		k++
	}
}

// FormatInterval writes d as the largest whole unit: 1s, 30m, 3h, 7d.
func FormatInterval(d time.Duration) string {
	switch {
	case d%day == 0:
		return strconv.FormatInt(int64(d/day), 10) + "d"
	case d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	case d%time.Minute == 0:
		return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
	default:
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	}
}

// Histogram counts matching lines per time bucket over [From, To); open
// ends are taken from the matching lines (the newest line included). Every
// bucket of the range is returned, empty ones with count 0.
func (ix *Index) Histogram(ctx context.Context, req pipeline.HistogramRequest) (pipeline.HistogramResult, error) {
	res := pipeline.HistogramResult{Buckets: []pipeline.HistogramBucket{}}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	n := req.Buckets
	if n <= 0 {
		n = DefaultBuckets
	}
	if n > MaxBuckets {
		return res, &pipeline.FieldError{Field: "buckets", Msg: fmt.Sprintf("at most %d", MaxBuckets)}
	}
	m, err := compile(req.Query)
	if err != nil {
		return res, err
	}
	from, to := req.From, req.To
	lo, hi, err := timeRange(from, to)
	if err != nil {
		return res, err
	}
	if !from.IsZero() && !to.IsZero() {
		return ix.histogramIn(ctx, req.Query, m, from, to, n)
	}
	// One pass collects the ts of every matching line; the bucket size
	// follows from the range, which open ends take from those lines.
	tss := make([][]int64, workers())
	ix.searchMu.RLock()
	_, total, _, err := ix.run(ctx, searchOpts{m: m, from: lo, to: hi, count: true, each: func(w int, b *block, i int, ts int64, _ uint8, _ *storedLine) {
		tss[w] = append(tss[w], ts)
	}})
	ix.searchMu.RUnlock()
	if err != nil {
		return res, fmt.Errorf("histogram %q: %w", req.Query, err)
	}
	if total == 0 && (from.IsZero() || to.IsZero()) {
		return res, nil
	}
	if from.IsZero() || to.IsZero() {
		mn, mx := int64(math.MaxInt64), int64(math.MinInt64)
		for _, ts := range tss {
			for _, t := range ts {
				mn, mx = min(mn, t), max(mx, t)
			}
		}
		first, last := time.Unix(0, mn).UTC(), time.Unix(0, mx).UTC()
		res.First, res.Last = &first, &last
		if from.IsZero() {
			from = time.Unix(0, mn).UTC()
		}
		if to.IsZero() {
			to = time.Unix(0, mx+1).UTC() // the range excludes its end
		}
	}
	if !to.After(from) {
		return res, nil
	}
	iv, count, start := layBuckets(&res, from, to, n)
	lo, hi = from.UnixNano(), to.UnixNano()
	s0 := start.UnixNano()
	for _, ts := range tss {
		for _, t := range ts {
			if t < lo || t >= hi {
				continue
			}
			if k := (t - s0) / int64(iv); k >= 0 && k < int64(count) {
				res.Buckets[k].Count++
				res.Total++
			}
		}
	}
	return res, nil
}

// layBuckets sets res's interval and its empty buckets over [from, to)
// (about n of them), and returns the interval, the bucket count and the
// first bucket's start.
func layBuckets(res *pipeline.HistogramResult, from, to time.Time, n int) (time.Duration, int, time.Time) {
	iv, count := ChooseInterval(from, to, n)
	res.Interval = FormatInterval(iv)
	res.IntervalSeconds = int64(iv / time.Second)
	start := bucketStart(from, iv)
	res.Buckets = make([]pipeline.HistogramBucket, count)
	for i := range res.Buckets {
		res.Buckets[i].TS = start.Add(time.Duration(i) * iv)
	}
	return iv, count, start
}

// histogramIn is Histogram over a closed range: the buckets are known
// before the pass, so lines are counted into them as they match, and a
// block that lies in one bucket and whose count needs no lines read (see
// wholeCount) is counted whole.
func (ix *Index) histogramIn(ctx context.Context, q string, m *matcher, from, to time.Time, n int) (pipeline.HistogramResult, error) {
	res := pipeline.HistogramResult{Buckets: []pipeline.HistogramBucket{}}
	if !to.After(from) {
		return res, nil
	}
	iv, count, start := layBuckets(&res, from, to, n)
	s0, ivn := start.UnixNano(), int64(iv)
	lo, hi := from.UnixNano(), to.UnixNano()
	per := make([][]uint64, workers())
	for w := range per {
		per[w] = make([]uint64, count)
	}
	bucket := func(t int64) int64 {
		if t < lo || t >= hi {
			return -1
		}
		if k := (t - s0) / ivn; k < int64(count) {
			return k
		}
		return -1
	}
	ix.searchMu.RLock()
	_, _, _, err := ix.run(ctx, searchOpts{m: m, from: lo, to: hi, count: true, noLine: true, matchKey: matchKey(q, lo, hi),
		each: func(w int, b *block, i int, ts int64, _ uint8, _ *storedLine) {
			if k := bucket(ts); k >= 0 {
				per[w][k]++
			}
		},
		whole: func(w int, b *block, c uint64) bool {
			k := bucket(b.minTS)
			if k < 0 || bucket(b.maxTS) != k {
				return false
			}
			per[w][k] += c
			return true
		}})
	ix.searchMu.RUnlock()
	if err != nil {
		return res, fmt.Errorf("histogram %q: %w", q, err)
	}
	for i := range res.Buckets {
		for w := range per {
			res.Buckets[i].Count += per[w][i]
		}
		res.Total += res.Buckets[i].Count
	}
	return res, nil
}

// Facet limits.
const (
	DefaultFacetSize = 10
	MaxFacetSize     = 1000
)

var fieldNameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,100}$`)

// FacetFields are the fields Facets accepts, besides fields.NAME.
var FacetFields = []string{"host", "source", "source_name", "level", "flags"}

// Facets returns the most frequent values of req.Field among matching lines.
func (ix *Index) Facets(ctx context.Context, req pipeline.FacetsRequest) (pipeline.FacetsResult, error) {
	res := pipeline.FacetsResult{Field: req.Field, Values: []pipeline.FacetValue{}}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	known := false
	for _, f := range FacetFields {
		known = known || f == req.Field
	}
	if name, ok := strings.CutPrefix(req.Field, "fields."); ok && fieldNameRE.MatchString(name) {
		known = true
	}
	if !known {
		return res, &pipeline.FieldError{Field: "field", Msg: fmt.Sprintf("%q cannot be faceted; use one of %s or fields.NAME", req.Field, strings.Join(FacetFields, ", "))}
	}
	size := req.Size
	if size <= 0 {
		size = DefaultFacetSize
	}
	if size > MaxFacetSize {
		return res, &pipeline.FieldError{Field: "size", Msg: fmt.Sprintf("at most %d", MaxFacetSize)}
	}
	if req.All {
		size = math.MaxInt
	}
	m, err := compile(req.Query)
	if err != nil {
		return res, err
	}
	lo, hi, err := timeRange(req.From, req.To)
	if err != nil {
		return res, err
	}
	name, isField := strings.CutPrefix(req.Field, "fields.")
	needLines := isField || req.Field == "flags"
	counts := make([]*valueCounter, workers())
	counter := func(w int) *valueCounter {
		if counts[w] == nil {
			counts[w] = newValueCounter()
		}
		return counts[w]
	}
	missing := make([]int, workers())
	// cols keeps, per worker, the column of the block it is in (layout 3:
	// a field's values are read without the lines).
	type colOf struct {
		b      *block
		starts []int32
		strs   []string
	}
	cols := make([]colOf, workers())
	var decodeErr errOnce
	ix.searchMu.RLock()
	defer ix.searchMu.RUnlock()
	// A value every line of a block shares (host, source, source name):
	// a block counted whole (see wholeCount) adds its count at once.
	var blockValue func(b *block) string
	switch req.Field {
	case "host":
		blockValue = func(b *block) string { return b.info.Host }
	case "source":
		blockValue = func(b *block) string { return b.info.Source }
	case "source_name":
		blockValue = func(b *block) string { return b.info.SourceName }
	}
	var whole func(w int, b *block, n uint64) bool
	if blockValue != nil {
		whole = func(w int, b *block, n uint64) bool {
			if v := blockValue(b); v == "" {
				missing[w] += int(n)
			} else if n > 0 {
				counter(w).add(v, int(n))
			}
			return true
		}
	}
	_, total, _, err := ix.run(ctx, searchOpts{m: m, from: lo, to: hi, count: true, noLine: true, matchKey: matchKey(req.Query, lo, hi), whole: whole,
		each: func(w int, b *block, i int, _ int64, level uint8, l *storedLine) {
			c := counter(w)
			var v string
			switch {
			case blockValue != nil:
				v = blockValue(b)
			case req.Field == "level":
				v = levelNames[level%uint8(len(levelNames))]
			}
			if !needLines {
				if v == "" {
					missing[w]++
				} else {
					c.add(v, 1)
				}
				return
			}
			// A field's column or the flags of the rows, read without the
			// text (layout 3), once per block a worker visits.
			cc := &cols[w]
			if cc.b != b {
				var starts []int32
				var strs []string
				var ok bool
				var err error
				if isField {
					starts, strs, ok, err = b.sh.bf.readColumn(b, name)
				} else {
					starts, strs, ok, err = b.sh.bf.readFlags(b)
				}
				if err != nil {
					decodeErr.set(err)
					return
				}
				if !ok {
					starts, strs = nil, nil
				}
				*cc = colOf{b: b, starts: starts, strs: strs}
			}
			if cc.starts != nil {
				vals := cc.strs[cc.starts[i]:cc.starts[i+1]]
				for _, v := range vals {
					c.add(v, 1)
				}
				if len(vals) == 0 {
					missing[w]++
				}
				return
			}
			if l == nil {
				lines, err := ix.lines(b, true)
				if err != nil {
					decodeErr.set(err)
					return
				}
				l = &lines[i]
			}
			any := false
			if isField {
				for _, f := range l.Fields {
					if f.K == name {
						c.add(f.V, 1)
						any = true
					}
				}
			} else {
				for _, f := range l.Flags {
					c.add(f, 1)
					any = true
				}
			}
			if !any {
				missing[w]++
			}
		}})
	if err == nil {
		err = decodeErr.get()
	}
	if err != nil {
		return res, fmt.Errorf("facets of %s for %q: %w", req.Field, req.Query, err)
	}
	res.Total = total
	// Merge into the biggest worker's counts, then keep the best size
	// values in a heap (a field such as an upstream address has a value
	// per line: sorting them all cost more than counting them).
	big := 0
	for w := range counts {
		res.Missing += missing[w]
		if counts[w].len() > counts[big].len() {
			big = w
		}
	}
	all := counts[big]
	if all == nil {
		all = newValueCounter()
	}
	for w := range counts {
		if w != big && counts[w] != nil {
			counts[w].each(func(v string, n int) { all.add(v, n) })
		}
	}
	worse := func(a, b pipeline.FacetValue) bool { // a ranks below b
		return a.Count < b.Count || a.Count == b.Count && a.Value > b.Value
	}
	h := &facetHeap{worse: worse}
	sum := 0
	all.each(func(v string, n int) {
		sum += n
		fv := pipeline.FacetValue{Value: v, Count: n}
		if h.Len() < size {
			heap.Push(h, fv)
		} else if worse(h.v[0], fv) {
			h.v[0] = fv
			heap.Fix(h, 0)
		}
	})
	res.Values = h.v
	slices.SortFunc(res.Values, func(a, b pipeline.FacetValue) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), strings.Compare(a.Value, b.Value))
	})
	res.Other = sum
	for i := range res.Values {
		res.Values[i].Value = strings.Clone(res.Values[i].Value) // not the column's memory
		res.Other -= res.Values[i].Count
	}
	return res, nil
}

// facetHeap keeps the best facet values; its top is the worst kept.
type facetHeap struct {
	v     []pipeline.FacetValue
	worse func(a, b pipeline.FacetValue) bool
}

func (h *facetHeap) Len() int           { return len(h.v) }
func (h *facetHeap) Less(i, j int) bool { return h.worse(h.v[i], h.v[j]) }
func (h *facetHeap) Swap(i, j int)      { h.v[i], h.v[j] = h.v[j], h.v[i] }
func (h *facetHeap) Push(x any)         { h.v = append(h.v, x.(pipeline.FacetValue)) }
func (h *facetHeap) Pop() any {
	x := h.v[len(h.v)-1]
	h.v = h.v[:len(h.v)-1]
	return x
}

// Context limits.
const (
	DefaultContextLines = 10
	MaxContextLines     = 500
)

// Context returns up to Before lines before and After lines after the line
// with req.ID in the same file (same host and file identity), in file order.
// An unknown ID is pipeline.ErrHitNotFound.
func (ix *Index) Context(ctx context.Context, req pipeline.ContextRequest) (pipeline.ContextResult, error) {
	var res pipeline.ContextResult
	if err := ctx.Err(); err != nil {
		return res, err
	}
	for _, p := range []struct {
		name string
		v    *int
	}{{"before", &req.Before}, {"after", &req.After}} {
		if *p.v < 0 || *p.v > MaxContextLines {
			return res, &pipeline.FieldError{Field: p.name, Msg: fmt.Sprintf("must be from 0 to %d", MaxContextLines)}
		}
	}
	ix.searchMu.RLock()
	defer ix.searchMu.RUnlock()
	b, i, err := ix.lookup(req.ID)
	if err != nil {
		if errors.Is(err, pipeline.ErrHitNotFound) {
			return res, fmt.Errorf("%q: %w", req.ID, err)
		}
		return res, fmt.Errorf("context of %q: %w", req.ID, err)
	}
	lines, err := ix.lines(b, true)
	if err != nil {
		return res, fmt.Errorf("context of %q: %w", req.ID, err)
	}
	anchor := hitOf(b, &lines[i], nil, false)
	anchor.Anchor = true
	off := anchor.Offset
	// The file's blocks in offset order; walk out from the anchor's.
	st := ix.files.state(fileKey(b.info.Host, b.info.FileID))
	at := slices.Index(st.blocks, b)
	var before, after []pipeline.Hit
	for k := at; k >= 0 && len(before) < req.Before; k-- {
		ls, err := ix.lines(st.blocks[k], true)
		if err != nil {
			return res, fmt.Errorf("context of %q: %w", req.ID, err)
		}
		for j := len(ls) - 1; j >= 0 && len(before) < req.Before; j-- {
			if ls[j].Offset < off {
				before = append(before, hitOf(st.blocks[k], &ls[j], nil, false))
			}
		}
	}
	for k := at; k >= 0 && k < len(st.blocks) && len(after) < req.After; k++ {
		ls, err := ix.lines(st.blocks[k], true)
		if err != nil {
			return res, fmt.Errorf("context of %q: %w", req.ID, err)
		}
		for j := 0; j < len(ls) && len(after) < req.After; j++ {
			if ls[j].Offset > off {
				after = append(after, hitOf(st.blocks[k], &ls[j], nil, false))
			}
		}
	}
	slices.Reverse(before)
	res.Hits = make([]pipeline.Hit, 0, len(before)+1+len(after))
	res.Hits = append(res.Hits, before...)
	res.AnchorIndex = len(res.Hits)
	res.Hits = append(res.Hits, anchor)
	res.Hits = append(res.Hits, after...)
	return res, nil
}

// valueCounter counts strings in an open-addressing table keyed by their
// 64-bit hash (a facet of a field with a value per line, such as a client
// address, counts hundreds of thousands of distinct values: a Go map spent
// most of the facet's time hashing and growing). Equal hashes of unequal
// strings take the next slot, so counts stay exact.
type valueCounter struct {
	hashes []uint64
	counts []int // 0: empty slot
	strs   []string
	n      int
}

func newValueCounter() *valueCounter {
	return &valueCounter{hashes: make([]uint64, 64), counts: make([]int, 64), strs: make([]string, 64)}
}

func (c *valueCounter) len() int {
	if c == nil {
		return 0
	}
	return c.n
}

// add counts k (> 0) more of s.
func (c *valueCounter) add(s string, k int) {
	h := xxhash.Sum64String(s)
	mask := uint64(len(c.hashes) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		if c.counts[i] == 0 {
			c.hashes[i], c.counts[i], c.strs[i] = h, k, s
			c.n++
			if 2*c.n > len(c.hashes) {
				c.grow()
			}
			return
		}
		if c.hashes[i] == h && c.strs[i] == s {
			c.counts[i] += k
			return
		}
	}
}

func (c *valueCounter) grow() {
	hashes, counts, strs := c.hashes, c.counts, c.strs
	c.hashes, c.counts, c.strs = make([]uint64, 2*len(hashes)), make([]int, 2*len(hashes)), make([]string, 2*len(hashes))
	mask := uint64(len(c.hashes) - 1)
	for j, n := range counts {
		if n == 0 {
			continue
		}
		i := hashes[j] & mask
		for c.counts[i] != 0 {
			i = (i + 1) & mask
		}
		c.hashes[i], c.counts[i], c.strs[i] = hashes[j], n, strs[j]
	}
}

// each calls fn for every value and its count.
func (c *valueCounter) each(fn func(s string, n int)) {
	if c == nil {
		return
	}
	for i, n := range c.counts {
		if n > 0 {
			fn(c.strs[i], n)
		}
	}
}

// errOnce keeps the first error workers report.
type errOnce struct {
	mu  sync.Mutex
	err error
}

func (e *errOnce) set(err error) {
	e.mu.Lock()
	if e.err == nil {
		e.err = err
	}
	e.mu.Unlock()
}

func (e *errOnce) get() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.err
}
