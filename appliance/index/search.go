package index

import (
	"cmp"
	"container/heap"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/blevesearch/bleve/v2"

	"github.com/logbox/logbox/appliance/pipeline"
)

// How a query runs.
//
// 1. The query is compiled twice (match.go): into an exact per-line check
//    and into a Bleve query over block documents that finds the blocks that
//    may hold a matching line (all blocks when it cannot narrow).
// 2. Blocks outside the time range are skipped by their min/max ts; the
//    rest are ordered by time (newest first for searches) and checked line
//    by line on all cores. Checks that read only time and level (level
//    filters, match-all) use the block metadata in memory; others read and
//    decompress the block.
// 3. Hits are ordered by (ts, host, file id, offset).

// lineKey orders lines: by ts, then host, file identity and place in the
// file. pos is the block's first offset plus the line's index in it: it
// orders the lines of a file as their offsets do (blocks of a file do not
// overlap, and a line takes at least one byte), without reading the block.
type lineKey struct {
	ts     int64
	host   string
	fileID string
	pos    int64
}

func cmpKey(a, b *lineKey) int {
	return cmp.Or(cmp.Compare(a.ts, b.ts), strings.Compare(a.host, b.host), strings.Compare(a.fileID, b.fileID), cmp.Compare(a.pos, b.pos))
}

// found is one matching line.
type found struct {
	key lineKey
	b   *block
	i   int
}

// searchOpts describes one run over the blocks.
type searchOpts struct {
	m        *matcher
	from, to int64    // ts range [from, to)
	after    *lineKey // only lines after it in the order (exclusive)
	asc      bool     // oldest first (else newest first)
	limit    int      // hits to return (0: count only)
	count    bool     // count every match (else stop once the page is certain)
	// countMax, with count, stops counting at about that many matches
	// once the page is certain (the total is then a lower bound).
	countMax int
	// each, when set, is called (concurrently, from several workers) for
	// every matching line i of b, with its time and level code; l is nil
	// when the line was not decoded.
	each func(w int, b *block, i int, ts int64, level uint8, l *storedLine)
	// whole, when set with each, is offered the count of a block that
	// lies wholly in the range and whose matching lines are counted
	// without reading it (see wholeCount); when it takes the count
	// (returns true), each is not called for that block's lines.
	whole func(w int, b *block, n uint64) bool
	// noLine says each does not use its line: text-only checks then
	// read only the text.
	noLine bool
	// text says each reads the line's text (l.Line, valid during the
	// call) and nothing else of it: lines are then read as for a
	// text-only check, whatever the query, and l is never nil.
	text bool
	// keyed, with text, names the blocks whose lines each takes without
	// their text (ScanKeys: the blocks with keys): they are read only as
	// the query needs, and l is nil when it needs nothing of the line.
	keyed func(b *block) bool
	// matchKey, with each and no page, names the query and range in the
	// index's match cache: the lines of each block that match are kept
	// there, so that the next aggregation of the same lines (a
	// histogram, then one facet after another, as Discover asks) visits
	// them without matching again.
	matchKey string
}

// timeRange turns a request's zero-able bounds into [from, to) in ns. A
// bound the index cannot hold (outside pipeline.MinTime to MaxTime, where
// Unix ns wrap around) or a to before from is a *pipeline.FieldError:
// every entry point that takes a time range goes through here.
func timeRange(from, to time.Time) (int64, int64, error) {
	if err := pipeline.CheckTimeRange(from, to); err != nil {
		return 0, 0, err
	}
	f, t := int64(math.MinInt64), int64(math.MaxInt64)
	if !from.IsZero() {
		f = from.UnixNano()
	}
	if !to.IsZero() {
		t = to.UnixNano()
	}
	return f, t, nil
}

// workers is how many goroutines check blocks.
func workers() int { return max(1, runtime.GOMAXPROCS(0)) }

// candidates returns the blocks that may hold lines matching m within
// [from, to). The caller holds ix.searchMu for reading.
func (ix *Index) candidates(ctx context.Context, m *matcher, from, to int64) ([]*block, error) {
	cand := m.candidate()
	if ix.noCandidates {
		cand = nil
	}
	var out []*block
	var bloomBuf []byte
	parts, scoped := pipeline.PartsOf(ctx)
	for _, sh := range ix.shardList() {
		if sh.end.UnixNano() <= from || sh.start.UnixNano() >= to {
			continue
		}
		blocks := sh.snapshot()
		if len(blocks) == 0 {
			continue
		}
		cq := blockQuery(cand, uint8(sh.bf.version))
		bloom := hasBloom(cq)
		// keep adds b when it is in range and its Bloom filter lets it.
		keep := func(b *block) error {
			if b.maxTS < from || b.minTS >= to || scoped && !parts[b.info.Part] {
				return nil
			}
			if bloom {
				var err error
				if bloomBuf, err = sh.bf.readBloom(b, bloomBuf); err != nil {
					return err
				}
				if bloomBuf != nil && !bloomPass(cq, bloomBuf) {
					return nil
				}
			}
			out = append(out, b)
			return nil
		}
		if cq == nil || onlyBloom(cq) {
			for _, b := range blocks {
				if err := keep(b); err != nil {
					return nil, err
				}
			}
			continue
		}
		sr := bleve.NewSearchRequestOptions(cq, len(blocks), 0, false)
		sr.Score = "none"
		res, err := sh.bi.SearchInContext(ctx, sr)
		if err != nil {
			return nil, fmt.Errorf("find blocks in shard %s: %w", sh.name, err)
		}
		for _, h := range res.Hits {
			seq, ok := parseBlockDocID(h.ID)
			if !ok {
				continue
			}
			i := sort.Search(len(blocks), func(i int) bool { return blocks[i].seq >= seq })
			if i < len(blocks) && blocks[i].seq == seq {
				if err := keep(blocks[i]); err != nil {
					return nil, err
				}
			}
		}
	}
	return out, nil
}

// matchSet is what the match cache keeps of one query over one range:
// per block read, a bitmap of the lines that match.
type matchSet struct {
	mu   sync.Mutex
	bits sync.Map // *block → []uint64
}

// matchCache keeps the match sets of the last few aggregations.
type matchCache struct {
	mu   sync.Mutex
	max  int
	keys []string // oldest first
	m    map[string]*matchSet
}

func newMatchCache(max int) *matchCache { return &matchCache{max: max, m: map[string]*matchSet{}} }

// get returns the set of key, made (and the oldest dropped) when missing.
func (c *matchCache) get(key string) *matchSet {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := c.m[key]; ok {
		return s
	}
	s := &matchSet{}
	c.m[key] = s
	c.keys = append(c.keys, key)
	if len(c.keys) > c.max {
		delete(c.m, c.keys[0])
		c.keys = c.keys[1:]
	}
	return s
}

// matchKey names a query over [lo, hi) in the match cache.
func matchKey(q string, lo, hi int64) string {
	return strconv.FormatInt(lo, 36) + " " + strconv.FormatInt(hi, 36) + " " + q
}

// wholeCount returns, when m allows it, a function that gives the number
// of lines of a block matching m without reading the block, or false for
// a block it cannot judge; the caller makes sure the block lies wholly in
// the time range. Match-all counts the block's lines, a query of what
// blocks share and the level (blockConst) its lines per level, and a
// single word without a digit its Bleve frequency in the block's document
// (layout 3: the lines holding it, see terms.go).
func (ix *Index) wholeCount(ctx context.Context, m *matcher, blocks []*block) (func(b *block) (uint64, bool), error) {
	if ix.noCandidates {
		return nil, nil
	}
	switch {
	case m.matchAll():
		return func(b *block) (uint64, bool) { return uint64(b.n()), true }, nil
	case m.root.blockConst():
		return func(b *block) (uint64, bool) {
			var n uint64
			var meta storedLine
			for c, k := range b.lvCount {
				if k == 0 {
					continue
				}
				meta.Level = levelNames[c]
				if m.match(b.info, &meta) {
					n += uint64(k)
				}
			}
			return n, true
		}, nil
	}
	w, ok := m.word()
	if !ok {
		return nil, nil
	}
	freq, err := ix.wordFreqs(ctx, w, blocks)
	if err != nil {
		return nil, err
	}
	return func(b *block) (uint64, bool) {
		if b.version < 3 {
			return 0, false
		}
		n, ok := freq[b]
		return n, ok
	}, nil
}

// wordFreqs reads from Bleve's postings of word in the line field the
// number of lines holding it, per block of layout 3 among blocks.
func (ix *Index) wordFreqs(ctx context.Context, word string, blocks []*block) (map[*block]uint64, error) {
	shards := map[*shard]bool{}
	for _, b := range blocks {
		if b.version >= 3 {
			shards[b.sh] = true
		}
	}
	freq := make(map[*block]uint64, len(blocks))
	for sh := range shards {
		if err := func() error {
			adv, err := sh.bi.Advanced()
			if err != nil {
				return err
			}
			r, err := adv.Reader()
			if err != nil {
				return err
			}
			defer r.Close()
			tfr, err := r.TermFieldReader(ctx, []byte(word), "line", true, false, false)
			if err != nil {
				return err
			}
			defer tfr.Close()
			all := sh.snapshot()
			for {
				d, err := tfr.Next(nil)
				if err != nil {
					return err
				}
				if d == nil {
					return nil
				}
				id, err := r.ExternalID(d.ID)
				if err != nil {
					return err
				}
				seq, ok := parseBlockDocID(id)
				if !ok {
					continue
				}
				if i, ok := slices.BinarySearchFunc(all, seq, func(b *block, s uint64) int { return cmp.Compare(b.seq, s) }); ok {
					freq[all[i]] = d.Freq
				}
			}
		}(); err != nil {
			return nil, fmt.Errorf("count %q in shard %s: %w", word, sh.name, err)
		}
	}
	return freq, nil
}

// lines returns the decoded lines of b, from the cache when there; with
// keep, a decoded block is cached.
func (ix *Index) lines(b *block, keep bool) ([]storedLine, error) {
	if l := ix.cache.get(b); l != nil {
		return l, nil
	}
	raw, err := b.sh.bf.readPayload(b)
	if err != nil {
		return nil, err
	}
	lines, err := decodeLines(b, raw)
	if err != nil {
		return nil, fmt.Errorf("block %d of shard %s: %w", b.seq, b.sh.name, err)
	}
	if keep {
		ix.cache.put(b, lines)
	}
	return lines, nil
}

// hitHeap keeps the best limit lines; its top is the worst kept.
type hitHeap struct {
	h   []found
	asc bool
}

func (h *hitHeap) Len() int { return len(h.h) }

// Less puts the worst line on top: the newest when ascending, else the oldest.
func (h *hitHeap) Less(i, j int) bool {
	c := cmpKey(&h.h[i].key, &h.h[j].key)
	if h.asc {
		return c > 0
	}
	return c < 0
}
func (h *hitHeap) Swap(i, j int) { h.h[i], h.h[j] = h.h[j], h.h[i] }
func (h *hitHeap) Push(x any)    { h.h = append(h.h, x.(found)) }
func (h *hitHeap) Pop() any {
	x := h.h[len(h.h)-1]
	h.h = h.h[:len(h.h)-1]
	return x
}

// better reports whether k comes before the worst kept line.
func (h *hitHeap) better(k *lineKey) bool {
	c := cmpKey(k, &h.h[0].key)
	if h.asc {
		return c < 0
	}
	return c > 0
}

// run checks the candidate blocks and returns the page (ordered), the
// number of matching lines (exact with o.count unless capped by
// o.countMax) and whether that number is exact. The caller holds
// ix.searchMu for reading until it is done with the page.
func (ix *Index) run(ctx context.Context, o searchOpts) ([]found, uint64, bool, error) {
	if err := ix.bindTemplates(o.m); err != nil {
		return nil, 0, false, err
	}
	blocks, err := ix.candidates(ctx, o.m, o.from, o.to)
	if err != nil {
		return nil, 0, false, err
	}
	if o.asc {
		slices.SortFunc(blocks, func(a, b *block) int { return cmp.Compare(a.minTS, b.minTS) })
	} else {
		slices.SortFunc(blocks, func(a, b *block) int { return cmp.Compare(b.maxTS, a.maxTS) })
	}
	blockCount, err := ix.wholeCount(ctx, o.m, blocks)
	if err != nil {
		return nil, 0, false, err
	}
	var set *matchSet
	if o.matchKey != "" && o.each != nil && o.limit == 0 && !o.m.matchAll() && !o.m.metaOnly() && !ix.noCandidates {
		// Held while this run fills the set: the same aggregation asked
		// at once (the page sends its facets together) waits and reuses.
		set = ix.matches.get(o.matchKey)
		set.mu.Lock()
		defer set.mu.Unlock()
	}
	nw := min(workers(), max(1, len(blocks)))
	textOnly := o.m.textOnly()
	lead := o.m.requiredLead()
	if ix.noCandidates {
		lead = nil // tests compare with a check of every line
	}
	heaps := make([]*hitHeap, nw)
	counts := make([]uint64, nw)
	var next atomic.Int64
	var firstErr error
	var errOnce sync.Once
	// done is set once the page is certain and counting is not asked for.
	var done atomic.Bool
	// counted is the matches counted by all workers (as of their last
	// block); partial is set when a worker stopped before the last block.
	var counted atomic.Int64
	var partial atomic.Bool
	var wg sync.WaitGroup
	for w := range nw {
		heaps[w] = &hitHeap{asc: o.asc}
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := heaps[w]
			var meta storedLine
			var text textReader
			for {
				k := int(next.Add(1) - 1)
				if k >= len(blocks) || done.Load() {
					return
				}
				if k%16 == 0 && ctx.Err() != nil {
					errOnce.Do(func() { firstErr = ctx.Err() })
					return
				}
				b := blocks[k]
				counting := o.count && (o.countMax <= 0 || counted.Load() < int64(o.countMax))
				if !counting && o.limit > 0 && h.Len() == o.limit {
					// Blocks come in time order: once a block cannot
					// beat the worst kept line, no later one can.
					worst := h.h[0].key.ts
					if (!o.asc && b.maxTS < worst) || (o.asc && b.minTS > worst) {
						partial.Store(true)
						return
					}
				}
				before := counts[w]
				// Can this block still put a line on the page? If not, it
				// is only counted.
				page := o.limit > 0
				if page && h.Len() == o.limit {
					worst := h.h[0].key.ts
					page = !((!o.asc && b.maxTS < worst) || (o.asc && b.minTS > worst))
				}
				if !page && blockCount != nil && (o.each == nil || o.whole != nil) && b.minTS >= o.from && b.maxTS < o.to {
					if n, ok := blockCount(b); ok && (o.each == nil || o.whole(w, b, n)) {
						counts[w] += n
						counted.Add(int64(n))
						continue
					}
				}
				bts, blv, err := b.times()
				if err != nil {
					errOnce.Do(func() { firstErr = err })
					return
				}
				if !page && o.each == nil && o.m.matchAll() {
					// A block the range cuts (whole ones were counted above).
					for _, ts := range bts {
						if ts >= o.from && ts < o.to {
							counts[w]++
						}
					}
					counted.Add(int64(counts[w] - before))
					continue
				}
				var bm []uint64
				if set != nil {
					if v, ok := set.bits.Load(b); ok {
						bm := v.([]uint64)
						for i := range b.n() {
							if bm[i>>6]&(1<<(i&63)) != 0 {
								counts[w]++
								o.each(w, b, i, bts[i], blv[i], nil)
							}
						}
						counted.Add(int64(counts[w] - before))
						continue
					}
					bm = make([]uint64, (b.n()+63)/64)
				}
				var lines []storedLine
				// cand, when set, marks the lines that may match: those
				// holding the query's required literal, found by one
				// search over the block's lowercased text.
				var cand []bool
				if !o.m.matchAll() && !o.m.metaOnly() || o.text && (o.keyed == nil || !o.keyed(b)) {
					var err error
					if textOnly && (o.each == nil || o.noLine || o.text) {
						lines, err = text.read(b)
						if err == nil && lead != nil {
							cand = text.withLead(lines, lead)
						}
					} else {
						lines, err = ix.lines(b, false)
					}
					if err != nil {
						errOnce.Do(func() { firstErr = err })
						return
					}
				}
				for i, ts := range bts {
					if ts < o.from || ts >= o.to {
						continue
					}
					var l *storedLine
					switch {
					case lines != nil:
						if cand != nil && !cand[i] {
							continue
						}
						l = &lines[i]
						if !o.m.match(b.info, l) {
							continue
						}
					case !o.m.matchAll():
						meta.TS, meta.Level = ts, levelNames[blv[i]%uint8(len(levelNames))]
						if !o.m.match(b.info, &meta) {
							continue
						}
					}
					// The total counts every match; the page only
					// those after the cursor.
					counts[w]++
					if bm != nil {
						bm[i>>6] |= 1 << (i & 63)
					}
					if o.each != nil {
						if o.noLine {
							l = nil
						}
						o.each(w, b, i, ts, blv[i], l)
					}
					if !page {
						continue
					}
					key := lineKey{ts: ts, host: b.info.Host, fileID: b.info.FileID, pos: b.firstOff + int64(i)}
					if o.after != nil {
						c := cmpKey(&key, o.after)
						if (o.asc && c <= 0) || (!o.asc && c >= 0) {
							continue
						}
					}
					if o.limit > 0 {
						if h.Len() < o.limit {
							heap.Push(h, found{key: key, b: b, i: i})
						} else if h.better(&key) {
							h.h[0] = found{key: key, b: b, i: i}
							heap.Fix(h, 0)
						}
					}
				}
				if bm != nil {
					set.bits.Store(b, bm)
				}
				counted.Add(int64(counts[w] - before))
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, 0, false, firstErr
	}
	var all []found
	var total uint64
	for w := range nw {
		all = append(all, heaps[w].h...)
		total += counts[w]
	}
	slices.SortFunc(all, func(a, b found) int {
		if o.asc {
			return cmpKey(&a.key, &b.key)
		}
		return cmpKey(&b.key, &a.key)
	})
	if len(all) > o.limit {
		all = all[:o.limit]
	}
	return all, total, !partial.Load(), nil
}

// hit builds the API's view of line i of b.
func (ix *Index) hit(f found, m *matcher, highlights bool) (pipeline.Hit, error) {
	lines, err := ix.lines(f.b, true)
	if err != nil {
		return pipeline.Hit{}, err
	}
	return hitOf(f.b, &lines[f.i], m, highlights), nil
}

func hitOf(b *block, l *storedLine, m *matcher, highlights bool) pipeline.Hit {
	h := pipeline.Hit{
		ID:       pipeline.RecordID(b.info.Host, b.info.FileID, l.Offset),
		TS:       time.Unix(0, l.TS).UTC(),
		Host:     b.info.Host,
		Source:   b.info.Source,
		FileID:   b.info.FileID,
		Offset:   l.Offset,
		Line:     l.Line,
		Level:    l.Level,
		Ingested: time.Unix(0, l.Ingested).UTC(),
	}
	if len(l.Flags) > 0 {
		h.Flags = slices.Clone(l.Flags)
	}
	for _, f := range l.Fields {
		if h.Fields == nil {
			h.Fields = map[string]string{}
		}
		if cur, ok := h.Fields[f.K]; ok {
			// A JSON array: its values joined.
			h.Fields[f.K] = cur + ", " + f.V
		} else {
			h.Fields[f.K] = f.V
		}
	}
	if highlights && m != nil {
		h.Highlights = m.highlights(l)
	}
	return h
}

// compile parses and compiles a user query. A query with a pipe is
// refused: Stats answers those (see splitPipes).
func compile(q string) (*matcher, error) {
	if qs, pipes, _ := splitPipes(q); len(pipes) > 0 {
		return nil, &pipeline.QueryError{Msg: "a query with a pipe (| stats …) is answered by /api/stats, not here", Pos: len(qs) + 1}
	}
	pq, err := parseUserQuery(q)
	if err != nil {
		return nil, err
	}
	return compileMatcher(pq)
}

// Search runs req and returns hits newest first.
func (ix *Index) Search(ctx context.Context, req pipeline.SearchRequest) (pipeline.SearchResult, error) {
	var res pipeline.SearchResult
	if err := ctx.Err(); err != nil {
		return res, err
	}
	m, err := compile(req.Query)
	if err != nil {
		return res, err
	}
	limit := req.Limit
	if limit <= 0 {
		limit = 100
	}
	if limit > 10000 {
		limit = 10000
	}
	o := searchOpts{m: m, limit: limit, count: true}
	if !req.ExactTotal && !m.matchAll() && !m.metaOnly() {
		// Counting every line of a common term means reading them all;
		// the page alone needs only the newest blocks.
		o.countMax = pipeline.TotalBound
	}
	if o.from, o.to, err = timeRange(req.From, req.To); err != nil {
		return res, err
	}
	if req.Cursor != "" {
		after, err := decodeCursor(req.Cursor)
		if err != nil {
			return res, &pipeline.QueryError{Msg: "cursor: " + err.Error()}
		}
		o.after = &after
	}
	ix.searchMu.RLock()
	defer ix.searchMu.RUnlock()
	page, total, exact, err := ix.run(ctx, o)
	if err != nil {
		return res, fmt.Errorf("search %q: %w", req.Query, err)
	}
	res.Total = total
	if !exact {
		res.TotalRelation = "gte"
	}
	res.Hits = make([]pipeline.Hit, 0, len(page))
	for _, f := range page {
		h, err := ix.hit(f, m, !req.NoHighlights)
		if err != nil {
			return res, fmt.Errorf("search %q: %w", req.Query, err)
		}
		if req.WithSort {
			h.Sort = encodeCursor(f.key)
		}
		res.Hits = append(res.Hits, h)
	}
	if len(page) == limit {
		res.Cursor = encodeCursor(page[len(page)-1].key)
	}
	return res, nil
}

// A cursor holds the order key of the last hit.
func encodeCursor(k lineKey) string {
	b, _ := json.Marshal([]string{strconv.FormatInt(k.ts, 10), k.host, k.fileID, strconv.FormatInt(k.pos, 10)})
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(c string) (lineKey, error) {
	bad := errors.New("not a cursor from this server")
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return lineKey{}, bad
	}
	var s []string
	if err := json.Unmarshal(b, &s); err != nil || len(s) != 4 {
		return lineKey{}, bad
	}
	ts, err1 := strconv.ParseInt(s[0], 10, 64)
	off, err2 := strconv.ParseInt(s[3], 10, 64)
	if err1 != nil || err2 != nil {
		return lineKey{}, bad
	}
	return lineKey{ts: ts, host: s[1], fileID: s[2], pos: off}, nil
}

// lookup finds the line with record ID id.
func (ix *Index) lookup(id string) (*block, int, error) {
	cut := strings.LastIndexByte(id, '|')
	if cut < 0 {
		return nil, 0, pipeline.ErrHitNotFound
	}
	off, err := strconv.ParseInt(id[cut+1:], 10, 64)
	if err != nil {
		return nil, 0, pipeline.ErrHitNotFound
	}
	st := ix.files.state(id[:cut])
	for _, b := range st.covering(off) {
		lines, err := ix.lines(b, true)
		if err != nil {
			return nil, 0, err
		}
		i := sort.Search(len(lines), func(i int) bool { return lines[i].Offset >= off })
		if i < len(lines) && lines[i].Offset == off {
			return b, i, nil
		}
	}
	return nil, 0, pipeline.ErrHitNotFound
}

// The open ends of a time range.
const (
	minTS = int64(math.MinInt64)
	maxTS = int64(math.MaxInt64)
)
