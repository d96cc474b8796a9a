package patterns

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"slices"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/logbox/logbox/appliance/pipeline"
)

// How an answer is made.
//
// Phase 1, on every core, as the index hands over the matching lines:
// each line is masked into a reused buffer, the buffer hashed, and the
// line counted under its masked form (its key) in the worker's table,
// with its sparkline bucket and, when it is the newest so far, as the
// key's example. The key string is made only for a key the worker has
// not seen. Then the workers' tables are merged by key.
//
// Phase 2, on one core: the distinct keys, most lines first (then by
// text), go through the Drain tree (drain.go), each with its count; a
// template's count is the sum of its keys'. Templates with the same text
// are one. A template's example is the newest of its keys' examples.
//
// "New": the comparison range is scanned the same way; each distinct key
// found there marks every template it fits (Template.FitsKey, the check
// the _pattern filter makes). A template no key marks is new: no line of
// the comparison range fits it. The scan stops early once every template
// is marked.

// Limits of an answer.
const (
	DefaultLimit = 100
	MaxLimit     = 10000
	MaxBuckets   = 500
	// MaxKeys bounds the distinct masked lines an answer mines; the lines
	// of the keys past it (the least frequent) are counted in the Other
	// template.
	MaxKeys = 50000
	// maxHeld bounds the bytes of keys and examples one worker holds;
	// lines with new keys past it go to Other too.
	maxHeld = 64 << 20
	// MaxExample is the most bytes of a line kept as an example.
	MaxExample = pipeline.MaxKeyExample
	// maxOverlapChecks bounds the checks made to find overlapping
	// templates (see markOverlaps).
	maxOverlapChecks = 20_000_000
)

// OtherPattern is the text of the template that holds the lines past
// MaxKeys.
const OtherPattern = "<other>"

// Scanner reads the text of the lines of a query: *index.Index
// implements it.
type Scanner interface {
	// ScanText calls each for every line matching query in [from, to)
	// (zero ends are open), from up to ScanWorkers goroutines at once (w
	// tells them apart), with the line's time (Unix ns) and text (valid
	// only during the call). It returns the number of lines.
	ScanText(ctx context.Context, query string, from, to time.Time, each func(w int, ts int64, text string)) (uint64, error)
	// ScanWorkers is the number of goroutines ScanText calls each from.
	ScanWorkers() int
}

// KeyScanner reads the keys (masked forms, by Mask) of the lines of a
// query, which the index keeps for its newer blocks and masks from the
// text for the others: *index.Index implements it. When the Scanner
// given to New is one whose MasksKeys is true, the miner reads keys
// instead of masking text.
type KeyScanner interface {
	// ScanKeys calls each for the lines matching query in [from, to),
	// block by block, from up to ScanWorkers goroutines at once (w tells
	// them apart), with their keys (kb, valid only during the call); a
	// block may come as counts alone when its lines lie in one
	// sparkline bucket (oneBucket(lo, hi): times lo and hi do). It
	// returns the number of lines.
	ScanKeys(ctx context.Context, query string, from, to time.Time, oneBucket func(lo, hi int64) bool, each func(w int, kb *pipeline.KeyBlock)) (uint64, error)
	// MasksKeys says whether ScanKeys is available, masking by Mask.
	MasksKeys() bool
}

// Miner answers pattern requests over a Scanner. It keeps nothing
// between requests and is safe for concurrent use.
type Miner struct {
	sc      Scanner
	maxKeys int
	// textScan makes the miner mask the text of every line (ScanText)
	// even when it could read keys (tests compare the two).
	textScan bool
}

// keys returns the scanner's KeyScanner, or nil when the text is to be
// masked.
func (m *Miner) keys() KeyScanner {
	if ks, ok := m.sc.(KeyScanner); ok && !m.textScan && ks.MasksKeys() {
		return ks
	}
	return nil
}

// New returns a Miner that reads lines through sc.
func New(sc Scanner) *Miner { return &Miner{sc: sc, maxKeys: MaxKeys} }

// entry is one key in a worker's table.
type entry struct {
	key   string
	next  int32 // the next entry with the same hash, or -1
	count uint64
	exTS  int64
	ex    []byte
	bk    []uint32
}

// collector is one worker's table.
type collector struct {
	seed    maphash.Seed
	idx     map[uint64]int32 // hash of a key → its first entry
	ents    []entry
	buf     []byte
	held    int
	maxKeys int
	other   entry // lines past the caps
	capped  bool
	refs    []int32 // addBlock's, reused
	from    int64
	step    int64
	nb      int
}

func newCollector(seed maphash.Seed, maxKeys int, from, step int64, nb int) *collector {
	c := &collector{seed: seed, idx: map[uint64]int32{}, maxKeys: maxKeys, from: from, step: step, nb: nb}
	c.other.exTS = math.MinInt64
	if nb > 0 {
		c.other.bk = make([]uint32, nb)
	}
	return c
}

// add counts a line of text at ts (masking it).
func (c *collector) add(ts int64, text string) {
	c.buf = Mask(c.buf[:0], text)
	en := c.at(c.entryFor(unsafe.String(unsafe.SliceData(c.buf), len(c.buf))))
	en.count++
	if c.nb > 0 {
		en.bk[c.bucket(ts)]++
	}
	c.offer(en, ts, text)
}

// entryFor returns the index in ents of key's entry, made when new (a
// copy of key), or -1 (other) past the caps.
func (c *collector) entryFor(key string) int32 {
	h := maphash.String(c.seed, key)
	head, ok := c.idx[h]
	e := int32(-1)
	if ok {
		for e = head; e >= 0 && c.ents[e].key != key; e = c.ents[e].next {
		}
	} else {
		head = -1
	}
	switch {
	case e >= 0:
		return e
	case len(c.ents) >= c.maxKeys || c.held >= maxHeld:
		c.capped = true
		return -1
	}
	c.ents = append(c.ents, entry{key: strings.Clone(key), next: head, exTS: math.MinInt64})
	e = int32(len(c.ents) - 1)
	c.idx[h] = e
	c.held += len(key)
	if c.nb > 0 {
		c.ents[e].bk = make([]uint32, c.nb)
	}
	return e
}

// at returns entry e (other for -1).
func (c *collector) at(e int32) *entry {
	if e < 0 {
		return &c.other
	}
	return &c.ents[e]
}

// bucket returns the sparkline bucket of ts.
func (c *collector) bucket(ts int64) int {
	k := (ts - c.from) / c.step
	return int(min(max(k, 0), int64(c.nb-1)))
}

// addBlock counts the lines of a block of keys (see pipeline.KeyBlock).
func (c *collector) addBlock(kb *pipeline.KeyBlock) {
	refs := c.refs[:0]
	for k, key := range kb.Keys {
		e := int32(-1)
		if kb.ExTS[k] != math.MinInt64 {
			e = c.entryFor(key)
		}
		refs = append(refs, e)
	}
	c.refs = refs
	if kb.Counts != nil {
		b := 0
		if c.nb > 0 {
			b = c.bucket(kb.TS)
		}
		for k, n := range kb.Counts {
			if n == 0 {
				continue
			}
			en := c.at(refs[k])
			en.count += uint64(n)
			if c.nb > 0 {
				en.bk[b] += n
			}
		}
	} else {
		for j, k := range kb.Lines {
			en := c.at(refs[k])
			en.count++
			if c.nb > 0 {
				en.bk[c.bucket(kb.LineTS[j])]++
			}
		}
	}
	for k, ts := range kb.ExTS {
		if en := c.at(refs[k]); ts != math.MinInt64 && ts >= en.exTS {
			c.offer(en, ts, kb.Example(k))
		}
	}
}

// oneBucket says whether times lo and hi fall in one sparkline bucket.
func (c *collector) oneBucket(lo, hi int64) bool {
	return c.nb == 0 || c.bucket(lo) == c.bucket(hi)
}

// offer makes (ts, text) en's example if it is newer (see newer).
func (c *collector) offer(en *entry, ts int64, text string) {
	if ts < en.exTS {
		return
	}
	t := cutExample(text)
	if ts == en.exTS && t >= string(en.ex) {
		return
	}
	if len(t) > cap(en.ex) {
		c.held += len(t) - cap(en.ex)
	}
	en.ex = append(en.ex[:0], t...)
	en.exTS = ts
}

// cutExample cuts a line to MaxExample bytes, at a character boundary.
func cutExample(s string) string {
	if len(s) <= MaxExample {
		return s
	}
	i := MaxExample
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i]
}

// newer says whether example (ts, ex) wins over (ts0, ex0): newer, or as
// new and smaller.
func newer(ts int64, ex string, ts0 int64, ex0 string) bool {
	return ts > ts0 || ts == ts0 && ex < ex0
}

// mkey is one key merged over the workers.
type mkey struct {
	key   string
	count uint64
	exTS  int64
	ex    string
	bk    []uint64
	tpl   int32 // its template
}

func (k *mkey) addEntry(e *entry) {
	k.count += e.count
	for i, v := range e.bk {
		k.bk[i] += uint64(v)
	}
	if e.count > 0 && newer(e.exTS, string(e.ex), k.exTS, k.ex) {
		k.exTS, k.ex = e.exTS, string(e.ex)
	}
}

// merge merges the workers' tables: the keys, most lines first then by
// text, at most maxKeys of them; the lines of the rest and past the
// workers' caps in other.
func merge(cs []*collector, nb, maxKeys int) (keys []*mkey, other *mkey, capped bool) {
	other = &mkey{key: OtherPattern, exTS: math.MinInt64, bk: make([]uint64, nb)}
	byKey := map[string]*mkey{}
	for _, c := range cs {
		if c == nil {
			continue
		}
		capped = capped || c.capped
		other.addEntry(&c.other)
		for i := range c.ents {
			e := &c.ents[i]
			k := byKey[e.key]
			if k == nil {
				k = &mkey{key: e.key, exTS: math.MinInt64, bk: make([]uint64, nb)}
				byKey[e.key] = k
				keys = append(keys, k)
			}
			k.addEntry(e)
		}
	}
	slices.SortFunc(keys, func(a, b *mkey) int {
		return cmp.Or(cmp.Compare(b.count, a.count), strings.Compare(a.key, b.key))
	})
	if len(keys) > maxKeys {
		capped = true
		for _, k := range keys[maxKeys:] {
			other.count += k.count
			for i, v := range k.bk {
				other.bk[i] += v
			}
			if newer(k.exTS, k.ex, other.exTS, other.ex) {
				other.exTS, other.ex = k.exTS, k.ex
			}
		}
		keys = keys[:maxKeys]
	}
	return keys, other, capped
}

// tpl is one mined template.
type tpl struct {
	t       Template
	count   uint64
	exTS    int64
	ex      string
	bk      []uint64
	keys    []*mkey
	new     bool
	overlap bool
	other   bool
	idx     int // in the slice compare marks
}

// mine runs the keys through Drain and returns the templates.
func mine(keys []*mkey, nb int) []*tpl {
	d := newDrain()
	for i, k := range keys {
		var words []string
		if k.key != "" {
			words = strings.Split(k.key, " ")
		}
		k.tpl = d.add(words, int32(i))
	}
	byText := map[string]*tpl{}
	var out []*tpl
	for _, c := range d.clusters {
		text := templateText(c.toks)
		t := byText[text]
		if t == nil {
			t = &tpl{t: ParseTemplate(text), exTS: math.MinInt64, bk: make([]uint64, nb)}
			byText[text] = t
			out = append(out, t)
		}
		for _, ki := range c.keys {
			k := keys[ki]
			t.keys = append(t.keys, k)
			t.count += k.count
			for i, v := range k.bk {
				t.bk[i] += v
			}
			if newer(k.exTS, k.ex, t.exTS, t.ex) {
				t.exTS, t.ex = k.exTS, k.ex
			}
		}
	}
	return out
}

// byLength groups templates by their number of words.
func byLength(ts []*tpl) map[int][]*tpl {
	g := map[int][]*tpl{}
	for _, t := range ts {
		if !t.other {
			g[t.t.Len()] = append(g[t.t.Len()], t)
		}
	}
	return g
}

// words is the number of words of a masked line.
func words(key []byte) int {
	if len(key) == 0 {
		return 0
	}
	n := 1
	for _, c := range key {
		if c == ' ' {
			n++
		}
	}
	return n
}

// markOverlaps sets overlap on each template that a key of another
// template fits (its filter then selects more lines than its count). A
// template is looked up under one of its exact words (its last one), so
// a key is checked only against the templates whose word it has in that
// place, and those without any exact word. At most maxOverlapChecks
// checks are made; past them overlaps go unmarked.
func markOverlaps(ts []*tpl) {
	checks := 0
	for n, group := range byLength(ts) {
		if len(group) < 2 {
			continue
		}
		anchored := map[place][]*tpl{}
		var open []*tpl
		for _, t := range group {
			p := -1
			for i := n - 1; i >= 0; i-- {
				if t.t.toks[i].kind == tLit {
					p = i
					break
				}
			}
			if p < 0 {
				open = append(open, t)
				continue
			}
			pl := place{p, t.t.toks[p].s}
			anchored[pl] = append(anchored[pl], t)
		}
		check := func(t, o *tpl, key string) {
			if t == o || t.overlap {
				return
			}
			checks++
			if fitsKey(&t.t, key) {
				t.overlap = true
			}
		}
		for _, o := range group {
			for _, k := range o.keys {
				if checks > maxOverlapChecks {
					return
				}
				for _, t := range open {
					check(t, o, k.key)
				}
				if n == 0 {
					continue
				}
				for i, w := range strings.Split(k.key, " ") {
					for _, t := range anchored[place{i, w}] {
						check(t, o, k.key)
					}
				}
			}
		}
	}
}

// Patterns answers req: the matching lines grouped into templates (see
// the top of this file). Errors: a *pipeline.QueryError for a bad query,
// a *pipeline.FieldError for a bad parameter, or the scan's.
func (m *Miner) Patterns(ctx context.Context, req pipeline.PatternsRequest) (pipeline.PatternsResult, error) {
	res := pipeline.PatternsResult{Patterns: []pipeline.Pattern{}}
	if err := checkRequest(&req); err != nil {
		return res, err
	}
	nb, step := 0, int64(0)
	if req.Buckets > 0 && !req.From.IsZero() && !req.To.IsZero() && req.To.After(req.From) {
		nb = req.Buckets
		span := req.To.Sub(req.From)
		ms := int64((span + time.Duration(nb)*time.Millisecond - 1) / (time.Duration(nb) * time.Millisecond))
		step = max(ms, 1) * int64(time.Millisecond)
		res.BucketStart = req.From.UTC()
		res.BucketMS = step / int64(time.Millisecond)
	}
	seed := maphash.MakeSeed()
	cs := make([]*collector, max(1, m.sc.ScanWorkers()))
	from := int64(0)
	if nb > 0 {
		from = req.From.UnixNano()
	}
	for w := range cs {
		cs[w] = newCollector(seed, m.maxKeys, from, step, nb)
	}
	var total uint64
	var err error
	if ks := m.keys(); ks != nil {
		total, err = ks.ScanKeys(ctx, req.Query, req.From, req.To, cs[0].oneBucket, func(w int, kb *pipeline.KeyBlock) {
			cs[w].addBlock(kb)
		})
	} else {
		total, err = m.sc.ScanText(ctx, req.Query, req.From, req.To, func(w int, ts int64, text string) {
			cs[w].add(ts, text)
		})
	}
	if err != nil {
		return res, wrap(err, "patterns of %q", req.Query)
	}
	keys, other, capped := merge(cs, nb, m.maxKeys)
	cs = nil
	ts := mine(keys, nb)
	if other.count > 0 {
		ts = append(ts, &tpl{t: ParseTemplate(OtherPattern), count: other.count, exTS: other.exTS, ex: other.ex, bk: other.bk, other: true})
	}
	var sum uint64
	for _, t := range ts {
		sum += t.count
	}
	if sum != total {
		return res, fmt.Errorf("patterns of %q: the templates hold %d lines of %d (a bug)", req.Query, sum, total)
	}
	markOverlaps(ts)
	if req.Compare() {
		if err := m.compare(ctx, req, ts); err != nil {
			return res, err
		}
		res.Compared = true
		res.CompareFrom, res.CompareTo = req.CompareFrom.UTC(), req.CompareTo.UTC()
		for _, t := range ts {
			if t.new {
				res.New++
			}
		}
	}
	slices.SortFunc(ts, func(a, b *tpl) int {
		if a.other != b.other {
			if a.other {
				return 1
			}
			return -1
		}
		return cmp.Or(cmp.Compare(b.count, a.count), strings.Compare(a.t.text, b.t.text))
	})
	res.Total = total
	res.Templates = len(ts)
	res.Overflow = capped
	listed := uint64(0)
	for _, t := range ts {
		if len(res.Patterns) == req.Limit {
			break
		}
		if req.NewOnly && !t.new {
			continue
		}
		p := pipeline.Pattern{Pattern: t.t.text, Count: t.count, Example: t.ex, New: t.new, Overlap: t.overlap, Other: t.other, Buckets: []uint64{}}
		if nb > 0 {
			p.Buckets = t.bk
		}
		if !t.other {
			p.Query = FilterQuery(req.Query, t.t.text)
		}
		res.Patterns = append(res.Patterns, p)
		listed += t.count
	}
	res.Rest = total - listed
	return res, nil
}

// NewPatterns returns the templates of query's lines in [from, to) that
// no line of query in [compareFrom, compareTo) fits, most lines first:
// the question a new-pattern alert asks. Their counts are exact.
func (m *Miner) NewPatterns(ctx context.Context, query string, from, to, compareFrom, compareTo time.Time) ([]pipeline.Pattern, error) {
	res, err := m.Patterns(ctx, pipeline.PatternsRequest{Query: query, From: from, To: to,
		CompareFrom: compareFrom, CompareTo: compareTo, NewOnly: true, Limit: MaxLimit})
	return res.Patterns, err
}

// checkRequest fills req's defaults and checks its parameters.
func checkRequest(req *pipeline.PatternsRequest) error {
	switch {
	case req.Limit == 0:
		req.Limit = DefaultLimit
	case req.Limit < 0 || req.Limit > MaxLimit:
		return &pipeline.FieldError{Field: "limit", Msg: fmt.Sprintf("must be a number from 1 to %d", MaxLimit)}
	}
	if req.Buckets < 0 || req.Buckets > MaxBuckets {
		return &pipeline.FieldError{Field: "buckets", Msg: fmt.Sprintf("must be a number from 0 to %d", MaxBuckets)}
	}
	if err := pipeline.CheckTimeRange(req.From, req.To); err != nil {
		return err
	}
	if req.CompareFrom.IsZero() != req.CompareTo.IsZero() {
		return &pipeline.FieldError{Field: "compare_from", Msg: "a comparison range needs both compare_from and compare_to"}
	}
	if req.Compare() {
		if err := pipeline.CheckTimeRange(req.CompareFrom, req.CompareTo); err != nil {
			var fe *pipeline.FieldError
			if errors.As(err, &fe) {
				fe.Field = "compare_" + fe.Field
			}
			return err
		}
	} else if req.NewOnly {
		return &pipeline.FieldError{Field: "compare_from", Msg: "listing only new templates needs a comparison range"}
	}
	return nil
}

// compare marks the templates of ts that no line of the comparison range
// fits as new.
func (m *Miner) compare(ctx context.Context, req pipeline.PatternsRequest, ts []*tpl) error {
	groups := byLength(ts)
	marks := make([]atomic.Bool, len(ts))
	var left atomic.Int64
	for i, t := range ts {
		t.idx = i
		if !t.other {
			left.Add(1)
		}
	}
	if left.Load() == 0 {
		return nil
	}
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	seed := maphash.MakeSeed()
	type seenSet struct {
		m   map[uint64]string
		buf []byte
	}
	seen := make([]seenSet, max(1, m.sc.ScanWorkers()))
	for w := range seen {
		seen[w].m = map[uint64]string{}
	}
	// see marks the templates key fits, once per key a worker sees.
	see := func(w int, key []byte) {
		s := &seen[w]
		h := maphash.Bytes(seed, key)
		k, ok := s.m[h]
		if ok && k == string(key) {
			return
		}
		if !ok && len(s.m) < m.maxKeys {
			s.m[h] = string(key)
		}
		for _, t := range groups[words(key)] {
			i := t.idx
			if marks[i].Load() || !t.t.FitsKey(key) {
				continue
			}
			if !marks[i].Swap(true) && left.Add(-1) == 0 {
				cancel()
			}
		}
	}
	var err error
	if ks := m.keys(); ks != nil {
		_, err = ks.ScanKeys(cctx, req.Query, req.CompareFrom, req.CompareTo, func(int64, int64) bool { return true }, func(w int, kb *pipeline.KeyBlock) {
			for k, key := range kb.Keys {
				if left.Load() == 0 {
					return
				}
				if kb.ExTS[k] != math.MinInt64 {
					see(w, unsafe.Slice(unsafe.StringData(key), len(key)))
				}
			}
		})
	} else {
		_, err = m.sc.ScanText(cctx, req.Query, req.CompareFrom, req.CompareTo, func(w int, _ int64, text string) {
			if left.Load() == 0 {
				return
			}
			s := &seen[w]
			s.buf = Mask(s.buf[:0], text)
			see(w, s.buf)
		})
	}
	if err != nil && !(left.Load() == 0 && ctx.Err() == nil && errors.Is(err, context.Canceled)) {
		return wrap(err, "patterns of %q: comparison range", req.Query)
	}
	for i, t := range ts {
		t.new = !t.other && !marks[i].Load()
	}
	return nil
}

// wrap adds context to a scan's error, but not to a bad query or
// parameter: the API answers those as they are (with the position).
func wrap(err error, format string, args ...any) error {
	var qe *pipeline.QueryError
	var fe *pipeline.FieldError
	if errors.As(err, &qe) || errors.As(err, &fe) {
		return err
	}
	return fmt.Errorf(format+": %w", append(args, err)...)
}
