package index

import (
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/logbox/logbox/appliance/pipeline"
)

// statAcc accumulates one function of one group.
type statAcc struct {
	n        uint64 // values (lines for count(f))
	sum      float64
	min, max float64
	vals     []float64           // quantile: every value, for an exact answer
	distinct map[string]struct{} // count_distinct
}

// statGroup is one group of a stats pipe.
type statGroup struct {
	key   string   // in its worker's map (see groupKey)
	vals  []string // by values; a _time item's is empty (see bucket)
	times []int64  // bucket start of each _time item, in order
	count uint64
	accs  []statAcc
}

// statsCols is what a worker read of the block it is in: per by item and
// per function, the values of its lines (layout 3 columns; nil when read
// from the lines).
type statsCols struct {
	b     *block
	by    []colStrs
	funcs []colStrs
	nums  []colNums
	lines []storedLine // older layouts
	// consts holds, for host, source and source name, the block's value
	// (every line of a block shares it), read once per block.
	consts [byTime + 1][]string
}

type colStrs struct {
	starts []int32
	strs   []string
}

type colNums struct {
	starts []int32
	nums   []float64
}

// statsWorker is one worker's groups.
type statsWorker struct {
	groups map[string]*statGroup
	capped bool
	key    []byte
	cols   statsCols
	// per line: the values of each by item (reused)
	vals    [][]string
	times   []int64
	scratch [][]string // per by item, values read from a line
	idx     []int      // per by item, the value being counted
	level   uint8      // of the line being counted
	last    *statGroup // the group counted last
}

// StatsQuery answers a query with a stats pipe (see parseStatsPipes): one row
// per group, exact over every matching line in the range.
func (ix *Index) StatsQuery(ctx context.Context, req pipeline.StatsRequest) (pipeline.StatsResult, error) {
	res := pipeline.StatsResult{Columns: []string{}, Rows: [][]any{}}
	plan, groups, total, capped, err := ix.statsGroups(ctx, req)
	if err != nil {
		return res, err
	}
	plan.answer(&res, groups, total, capped)
	return res, nil
}

// answer lays the groups out as res's columns and rows.
func (p *statsPlan) answer(res *pipeline.StatsResult, groups map[string]*statGroup, total uint64, capped bool) {
	res.Columns = p.columns()
	res.Total = total
	res.GroupsCapped = capped
	res.By = len(p.by)
	if len(p.by) == 0 && len(groups) == 0 {
		groups[""] = &statGroup{accs: make([]statAcc, len(p.funcs))}
	}
	res.Rows = p.rows(groups)
}

// statsGroups runs a stats query up to its groups (merged over the
// workers), before they are laid out as rows.
func (ix *Index) statsGroups(ctx context.Context, req pipeline.StatsRequest) (*statsPlan, map[string]*statGroup, uint64, bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, 0, false, err
	}
	qs, plan, m, err := compilePiped(req.Query)
	if err != nil {
		return nil, nil, 0, false, err
	}
	if plan == nil {
		if _, _, ok, _ := PatternsPipe(req.Query); ok {
			return nil, nil, 0, false, &pipeline.QueryError{Msg: "a patterns pipe is answered by the patterns engine (/api/patterns, /api/stats), not by the index alone"}
		}
		return nil, nil, 0, false, &pipeline.QueryError{Msg: "needs a stats pipe, e.g. error | stats count() by (host)", Pos: len(req.Query) + 1}
	}
	lo, hi, err := timeRange(req.From, req.To)
	if err != nil {
		return nil, nil, 0, false, err
	}
	ws := make([]statsWorker, workers())
	for w := range ws {
		ws[w].groups = map[string]*statGroup{}
		ws[w].vals = make([][]string, len(plan.by))
		ws[w].times = make([]int64, len(plan.by))
		ws[w].scratch = make([][]string, len(plan.by))
		ws[w].idx = make([]int, len(plan.by))
	}
	var decodeErr errOnce
	ix.searchMu.RLock()
	defer ix.searchMu.RUnlock()
	_, total, _, err := ix.run(ctx, searchOpts{m: m, from: lo, to: hi, count: true, noLine: true,
		matchKey: matchKey(qs, lo, hi), whole: plan.wholeFunc(m, ws),
		each: func(w int, b *block, i int, ts int64, level uint8, _ *storedLine) {
			sw := &ws[w]
			if sw.cols.b != b {
				if err := ix.readStatsCols(&sw.cols, b, plan); err != nil {
					decodeErr.set(err)
					return
				}
			}
			plan.add(sw, b, i, ts, level)
		}})
	if err == nil {
		err = decodeErr.get()
	}
	if err != nil {
		return nil, nil, 0, false, fmt.Errorf("stats %q: %w", req.Query, err)
	}
	groups, capped := plan.merge(ws)
	return plan, groups, total, capped, nil
}

// wholeFunc offers run a way to count a whole block without its lines,
// when every function is count() and every by item is the same for the
// whole block (host, source, source name, or a _time bucket holding the
// block); by level too when the query reads no more than the block's
// metadata (its per-level counts then split the block).
func (p *statsPlan) wholeFunc(m *matcher, ws []statsWorker) func(w int, b *block, n uint64) bool {
	levels := false
	for _, f := range p.funcs {
		if f.kind != stCount {
			return nil
		}
	}
	for _, g := range p.by {
		switch g.kind {
		case byField:
			return nil
		case byLevel:
			levels = true
		}
	}
	if levels && !m.matchAll() && !m.root.blockConst() {
		return nil
	}
	return func(w int, b *block, n uint64) bool {
		sw := &ws[w]
		for k, g := range p.by {
			if g.kind == byTime {
				t0, t1 := b.minTS-mod(b.minTS, g.step), b.maxTS-mod(b.maxTS, g.step)
				if t0 != t1 {
					return false
				}
				sw.times[k] = t0
			} else if g.kind != byLevel {
				sw.vals[k] = []string{blockValue(g.kind, b)}
			}
		}
		if !levels {
			if n > 0 {
				p.addTo(sw, nil, -1, n)
			}
			return true
		}
		var meta storedLine
		for c, k := range b.lvCount {
			if k == 0 {
				continue
			}
			meta.Level = levelNames[c]
			if !m.matchAll() && !m.match(b.info, &meta) {
				continue
			}
			for j, g := range p.by {
				if g.kind == byLevel {
					sw.vals[j] = []string{levelNames[c]}
				}
			}
			p.addTo(sw, nil, -1, uint64(k))
		}
		return true
	}
}

func mod(a, b int64) int64 {
	r := a % b
	if r < 0 {
		r += b
	}
	return r
}

// blockValue is the value of a by item every line of b shares.
func blockValue(kind byKind, b *block) string {
	switch kind {
	case byHost:
		return b.info.Host
	case bySource:
		return b.info.Source
	case bySourceName:
		return b.info.SourceName
	}
	return ""
}

// readStatsCols reads what the plan needs of block b: the columns of the
// fields it groups by and reads (layout 3), else the block's lines.
func (ix *Index) readStatsCols(c *statsCols, b *block, p *statsPlan) error {
	*c = statsCols{b: b, by: c.by[:0], funcs: c.funcs[:0], nums: c.nums[:0]}
	for _, k := range []byKind{byHost, bySource, bySourceName} {
		c.consts[k] = []string{blockValue(k, b)}
	}
	if b.version < 3 {
		lines, err := ix.lines(b, true)
		if err != nil {
			return err
		}
		c.lines = lines
		return nil
	}
	// A column read for one item serves the others that name it.
	strCols := map[string]colStrs{}
	numCols := map[string]colNums{}
	str := func(name string) (colStrs, error) {
		if v, ok := strCols[name]; ok {
			return v, nil
		}
		starts, strs, _, err := b.sh.bf.readColumn(b, name)
		v := colStrs{starts, strs}
		strCols[name] = v
		return v, err
	}
	for _, g := range p.by {
		var v colStrs
		if g.kind == byField {
			var err error
			if v, err = str(g.field); err != nil {
				return err
			}
		}
		c.by = append(c.by, v)
	}
	for _, f := range p.funcs {
		var s colStrs
		var n colNums
		switch {
		case f.field == "":
		case f.numeric():
			if v, ok := numCols[f.field]; ok {
				n = v
			} else {
				starts, nums, _, err := b.sh.bf.readNumColumn(b, f.field)
				if err != nil {
					return err
				}
				n = colNums{starts, nums}
				numCols[f.field] = n
			}
		default:
			var err error
			if s, err = str(f.field); err != nil {
				return err
			}
		}
		c.funcs = append(c.funcs, s)
		c.nums = append(c.nums, n)
	}
	return nil
}

// add counts line i of block b (its time ts, level code level) into its
// groups.
func (p *statsPlan) add(sw *statsWorker, b *block, i int, ts int64, level uint8) {
	c := &sw.cols
	var l *storedLine
	if c.lines != nil {
		l = &c.lines[i]
	}
	sw.level = level
	for k, g := range p.by {
		switch g.kind {
		case byTime:
			sw.times[k] = ts - mod(ts, g.step)
		case byLevel:
			sw.vals[k] = levelValue(level)
		case byField:
			if l != nil {
				sw.scratch[k] = fieldValues(sw.scratch[k][:0], l, g.field)
				sw.vals[k] = sw.scratch[k]
			} else {
				col := c.by[k]
				sw.vals[k] = col.strs[col.starts[i]:col.starts[i+1]]
			}
			if len(sw.vals[k]) == 0 {
				sw.vals[k] = emptyValue
			}
		default:
			sw.vals[k] = c.consts[g.kind]
		}
	}
	p.addTo(sw, l, i, 1)
}

var (
	emptyValue  = []string{""}
	levelValues = func() [len(levelNames)][]string {
		var v [len(levelNames)][]string
		for i, n := range levelNames {
			v[i] = []string{n}
		}
		return v
	}()
)

func levelValue(code uint8) []string { return levelValues[code%uint8(len(levelNames))] }

func fieldValues(dst []string, l *storedLine, name string) []string {
	for _, f := range l.Fields {
		if f.K == name {
			dst = append(dst, f.V)
		}
	}
	return dst
}

// addTo adds n lines with the by values in sw.vals/sw.times (line i of the
// worker's block, or l when read from the lines; i < 0 when the block is
// counted whole) to their groups: one group per combination of values
// when an item has several.
func (p *statsPlan) addTo(sw *statsWorker, l *storedLine, i int, n uint64) {
	multi := false
	for k, g := range p.by {
		sw.idx[k] = 0
		multi = multi || g.kind != byTime && len(sw.vals[k]) != 1
	}
	if !multi {
		p.emit(sw, l, i, n)
		return
	}
	p.walk(sw, l, i, n, 0)
}

func (p *statsPlan) walk(sw *statsWorker, l *storedLine, i int, n uint64, k int) {
	switch {
	case k == len(p.by):
		p.emit(sw, l, i, n)
	case p.by[k].kind == byTime:
		p.walk(sw, l, i, n, k+1)
	default:
		for j := range sw.vals[k] {
			sw.idx[k] = j
			p.walk(sw, l, i, n, k+1)
		}
	}
}

// emit counts into the group of the values sw.idx picks.
func (p *statsPlan) emit(sw *statsWorker, l *storedLine, i int, n uint64) {
	key := p.groupKey(sw)
	g := sw.last // the line before's group, for a run of one group
	if g == nil || key != g.key {
		if g = sw.groups[key]; g == nil {
			if len(sw.groups) >= MaxStatsGroups {
				sw.capped = true
				return
			}
			g = &statGroup{key: strings.Clone(key), vals: make([]string, len(p.by)), times: make([]int64, len(p.by)), accs: make([]statAcc, len(p.funcs))}
			for k, b := range p.by {
				if b.kind == byTime {
					g.times[k] = sw.times[k]
				} else {
					g.vals[k] = strings.Clone(sw.vals[k][sw.idx[k]])
				}
			}
			sw.groups[g.key] = g
		}
		sw.last = g
	}
	p.count(g, sw, l, i, n)
}

// groupKey is the key of the group of the values sw.idx picks, valid
// until the next call: one field's value as it is, else the values
// (length-prefixed) and bucket times laid out in sw.key.
func (p *statsPlan) groupKey(sw *statsWorker) string {
	if len(p.by) == 1 && p.by[0].kind != byTime {
		return sw.vals[0][sw.idx[0]]
	}
	sw.key = sw.key[:0]
	for k, g := range p.by {
		if g.kind == byTime {
			sw.key = binary.LittleEndian.AppendUint64(sw.key, uint64(sw.times[k]))
		} else {
			v := sw.vals[k][sw.idx[k]]
			sw.key = binary.AppendUvarint(sw.key, uint64(len(v)))
			sw.key = append(sw.key, v...)
		}
	}
	return unsafe.String(unsafe.SliceData(sw.key), len(sw.key))
}

// count adds n lines (line i, or l) to group g.
func (p *statsPlan) count(g *statGroup, sw *statsWorker, l *storedLine, i int, n uint64) {
	g.count += n
	if i < 0 {
		return // counted whole: count() only
	}
	for fi := range p.funcs {
		p.funcs[fi].accumulate(&g.accs[fi], sw, fi, l, i)
	}
}

// accumulate adds line i's values of f to a.
func (f *statFunc) accumulate(a *statAcc, sw *statsWorker, fi int, l *storedLine, i int) {
	switch f.kind {
	case stCount:
		return
	case stCountField, stCountDistinct:
		var vals []string
		switch {
		case f.meta == byLevel:
			vals = levelValue(sw.level)
		case f.meta != byField:
			vals = sw.cols.consts[f.meta]
		case l != nil:
			vals = fieldValues(nil, l, f.field)
		default:
			c := sw.cols.funcs[fi]
			vals = c.strs[c.starts[i]:c.starts[i+1]]
		}
		if f.kind == stCountField {
			if len(vals) > 0 && (len(vals) > 1 || vals[0] != "") {
				a.n++
			}
			return
		}
		for _, v := range vals {
			if a.distinct == nil {
				a.distinct = map[string]struct{}{}
			}
			if _, ok := a.distinct[v]; !ok {
				a.distinct[strings.Clone(v)] = struct{}{}
			}
		}
		return
	}
	var nums []float64
	if l != nil {
		for _, kn := range l.Nums {
			if kn.K == f.field {
				nums = append(nums, kn.V)
			}
		}
	} else {
		c := sw.cols.nums[fi]
		nums = c.nums[c.starts[i]:c.starts[i+1]]
	}
	for _, v := range nums {
		if a.n == 0 {
			a.min, a.max = v, v
		}
		a.n++
		a.sum += v
		a.min, a.max = min(a.min, v), max(a.max, v)
		if f.kind == stQuantile {
			a.vals = append(a.vals, v)
		}
	}
}

// merge joins the workers' groups (into the biggest), keeping at most
// MaxStatsGroups.
func (p *statsPlan) merge(ws []statsWorker) (map[string]*statGroup, bool) {
	big := 0
	capped := false
	for w := range ws {
		capped = capped || ws[w].capped
		if len(ws[w].groups) > len(ws[big].groups) {
			big = w
		}
	}
	all := ws[big].groups
	for w := range ws {
		if w == big {
			continue
		}
		for k, g := range ws[w].groups {
			to := all[k]
			if to == nil {
				if len(all) >= MaxStatsGroups {
					capped = true
					continue
				}
				all[k] = g
				continue
			}
			to.count += g.count
			for fi := range to.accs {
				a, b := &to.accs[fi], &g.accs[fi]
				if b.n > 0 {
					if a.n == 0 {
						a.min, a.max = b.min, b.max
					}
					a.min, a.max = min(a.min, b.min), max(a.max, b.max)
				}
				a.n += b.n
				a.sum += b.sum
				a.vals = append(a.vals, b.vals...)
				if len(b.distinct) > 0 && a.distinct == nil {
					a.distinct = map[string]struct{}{}
				}
				for v := range b.distinct {
					a.distinct[v] = struct{}{}
				}
			}
		}
	}
	return all, capped
}

// rows lays the groups out as the answer's rows, ordered (see order) and
// limited.
func (p *statsPlan) rows(groups map[string]*statGroup) [][]any {
	rows := make([][]any, 0, len(groups))
	for _, g := range groups {
		row := make([]any, 0, len(p.by)+len(p.funcs))
		for k, b := range p.by {
			if b.kind == byTime {
				row = append(row, time.Unix(0, g.times[k]).UTC().Format(time.RFC3339Nano))
			} else {
				row = append(row, g.vals[k])
			}
		}
		for fi := range p.funcs {
			row = append(row, p.funcs[fi].value(g, &g.accs[fi]))
		}
		rows = append(rows, row)
	}
	keys := p.sort
	if !p.sorted {
		keys = p.defaultOrder()
	}
	slices.SortFunc(rows, func(a, b []any) int {
		for _, k := range keys {
			c := compareCells(a[k.col], b[k.col])
			if k.desc {
				c = -c
			}
			if c != 0 {
				return c
			}
		}
		// Ties: by the group values, so the order is the same every time.
		for k := range p.by {
			if c := compareCells(a[k], b[k]); c != 0 {
				return c
			}
		}
		return 0
	})
	switch {
	case p.limit < 0:
		rows = rows[:0]
	case p.limit > 0 && len(rows) > p.limit:
		rows = rows[:p.limit]
	}
	return rows
}

// defaultOrder is the order of rows when no sort pipe is given: a time
// series by time (then its other groups); groups without _time by the
// first function, largest first (as Kibana's terms orders by count).
func (p *statsPlan) defaultOrder() []sortKey {
	for _, b := range p.by {
		if b.kind == byTime {
			var keys []sortKey
			for k, b := range p.by {
				if b.kind == byTime {
					keys = append(keys, sortKey{col: k})
				}
			}
			return keys
		}
	}
	return []sortKey{{col: len(p.by), desc: true}}
}

// compareCells orders answer cells: numbers by value, strings that both
// read as numbers (status 404 < 1000) by value, other strings by bytes;
// null (no value) after everything.
func compareCells(a, b any) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return 1
	case b == nil:
		return -1
	}
	fa, aNum := cellNumber(a)
	fb, bNum := cellNumber(b)
	if aNum && bNum {
		return cmp.Compare(fa, fb)
	}
	sa, _ := a.(string)
	sb, _ := b.(string)
	return strings.Compare(sa, sb)
}

func cellNumber(v any) (float64, bool) {
	switch v := v.(type) {
	case uint64:
		return float64(v), true
	case int:
		return float64(v), true
	case float64:
		return v, true
	case string:
		if f, err := strconv.ParseFloat(v, 64); err == nil && v != "" && !strings.ContainsAny(v, "eEnN") {
			return f, true
		}
	}
	return 0, false
}

// value is f's answer for group g: a count, or a number (nil when the
// group had no value of the field).
func (f *statFunc) value(g *statGroup, a *statAcc) any {
	switch f.kind {
	case stCount:
		return g.count
	case stCountField:
		return a.n
	case stCountDistinct:
		return uint64(len(a.distinct))
	}
	if a.n == 0 {
		return nil
	}
	var v float64
	switch f.kind {
	case stSum:
		v = a.sum
	case stAvg:
		v = a.sum / float64(a.n)
	case stMin:
		v = a.min
	case stMax:
		v = a.max
	case stQuantile:
		v = quantile(a.vals, f.phi)
	}
	if math.IsInf(v, 0) || math.IsNaN(v) {
		return nil
	}
	return v
}

// quantile is the nearest-rank phi-quantile of vals (reordered in place):
// the smallest value with at least phi of the values at or below it (phi
// 0: the smallest; 0.5 of 1..4: 2).
func quantile(vals []float64, phi float64) float64 {
	k := int(math.Ceil(phi*float64(len(vals)))) - 1
	return selectKth(vals, max(0, min(k, len(vals)-1)))
}

// selectKth returns the k-th smallest of a (0-based), partly reordering a:
// quickselect with a median-of-three pivot, which needs a fraction of a
// sort's time; after 64 rounds (an input that defeats the pivot) it sorts
// what is left.
func selectKth(a []float64, k int) float64 {
	lo, hi := 0, len(a)-1
	for round := 0; lo < hi; round++ {
		if round == 64 {
			slices.Sort(a[lo : hi+1])
			return a[k]
		}
		mid := lo + (hi-lo)/2
		if a[mid] < a[lo] {
			a[mid], a[lo] = a[lo], a[mid]
		}
		if a[hi] < a[lo] {
			a[hi], a[lo] = a[lo], a[hi]
		}
		if a[hi] < a[mid] {
			a[hi], a[mid] = a[mid], a[hi]
		}
		p := a[mid]
		i, j := lo, hi
		for i <= j {
			for a[i] < p {
				i++
			}
			for a[j] > p {
				j--
			}
			if i <= j {
				a[i], a[j] = a[j], a[i]
				i++
				j--
			}
		}
		switch {
		case k <= j:
			hi = j
		case k >= i:
			lo = i
		default:
			return a[k]
		}
	}
	return a[k]
}
