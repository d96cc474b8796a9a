package index

import (
	"context"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/analysis"
	"github.com/blevesearch/bleve/v2/analysis/analyzer/keyword"
	"github.com/blevesearch/bleve/v2/document"
	"github.com/blevesearch/bleve/v2/mapping"
	"github.com/blevesearch/bleve/v2/search"
	"github.com/blevesearch/bleve/v2/search/query"
	bindex "github.com/blevesearch/bleve_index_api"
	"github.com/cespare/xxhash/v2"
)

// One Bleve document per block: it answers "which blocks may hold a
// matching line" (see matcher.candidate and blockQuery), nothing else. Its
// fields:
//
//	line                 the distinct parts of all its lines, and of the
//	                     values of their fields (no positions)
//	host, source, source_name, file_id   one term each
//	level                the distinct levels of its lines, lowercase
//	flags                the distinct flags
//	fnames               the names of the fields its lines have
//	numb                 NAME=BUCKET for every number of field NAME: the
//	                     sign and power of two of the value (numBucket)
//
// Field values are not terms of their own and numbers are not Bleve
// numeric fields: most values are ids, times and durations that would each
// be a term of one block, and Bleve spends per term (the index was 3×
// slower and 3× bigger with them). A field query narrows blocks by the
// field's name and the parts of its value instead, a numeric range by the
// buckets it covers; the exact check does the rest. Nothing is stored and
// there are no doc values: lines, times and facets come from the block
// store.

// blockDocID is the Bleve ID of block seq.
func blockDocID(seq uint64) string { return strconv.FormatUint(seq, 36) }

func parseBlockDocID(id string) (uint64, bool) {
	v, err := strconv.ParseUint(id, 36, 64)
	return v, err == nil
}

// newMapping is the mapping of a shard's Bleve index. Documents are built
// by blockDoc, not mapped; the mapping only names the analyzer of keyword
// fields for queries that analyze.
func newMapping() *mapping.IndexMappingImpl {
	im := bleve.NewIndexMapping()
	im.DefaultAnalyzer = keyword.Name
	im.DefaultField = "line"
	im.StoreDynamic = false
	im.IndexDynamic = false
	im.DocValuesDynamic = false
	dm := bleve.NewDocumentStaticMapping()
	dm.AddSubDocumentMapping("_all", bleve.NewDocumentDisabledMapping())
	im.DefaultMapping = dm
	return im
}

const indexOnly = bindex.IndexField

// blockDoc builds the Bleve document of block b holding lines, as the
// block's layout version has it: from version 3 on, "line" holds the
// block's words (terms.go) with the number of lines holding each as its
// frequency, "fval" the words of its field values, and parts with a
// digit are in the block's Bloom filter instead; before, "line" holds
// every distinct part of the text and of the field values once.
func blockDoc(b *block, lines []storedLine) *document.Document {
	d := document.NewDocument(blockDocID(b.seq))
	text := partsAnalyzer{}
	if b.version >= 3 {
		t := b.terms
		if t == nil {
			t = termsOf(lines)
		}
		d.AddField(document.NewTextFieldCustom("line", nil, nil, indexOnly, &wordsAnalyzer{words: t.words, freq: t.freq}))
		d.AddField(document.NewTextFieldCustom("fval", nil, nil, indexOnly, &wordsAnalyzer{words: t.vals}))
	} else {
		d.AddField(document.NewTextFieldCustom("line", nil, nil, indexOnly, &text))
		text.lines = lines
	}
	kw := func(name, v string) {
		if v != "" {
			d.AddField(document.NewTextFieldCustom(name, nil, []byte(v), indexOnly, singleToken{}))
		}
	}
	kw("host", b.info.Host)
	kw("source", b.info.Source)
	kw("source_name", b.info.SourceName)
	kw("file_id", b.info.FileID)
	for c, k := range b.lvCount {
		if c > 0 && k > 0 {
			kw("level", lowerASCII(levelNames[c]))
		}
	}
	// Each flag, field name, value and number bucket once; the keys are
	// typed, not joined strings, so that a line's fields cost no
	// allocation here.
	type seenKey struct {
		kind byte // 'f' flag, 'k' field name, 'v' value, 'n' number bucket
		s    string
		e    int // the bucket's exponent; kind 'n'
		sign byte
	}
	seen := map[seenKey]struct{}{}
	once := func(k seenKey) bool {
		if _, ok := seen[k]; ok {
			return false
		}
		seen[k] = struct{}{}
		return true
	}
	// Lines of one format name the same fields in the same order: a
	// line's j-th name (and number bucket) that is the line before's
	// was seen with it, and needs no look-up.
	var prev *storedLine
	var buckets, prevBuckets []seenKey // the number buckets of l's and prev's Nums
	for i := range lines {
		l := &lines[i]
		for _, f := range l.Flags {
			if once(seenKey{kind: 'f', s: f}) {
				kw("flags", f)
			}
		}
		for j, f := range l.Fields {
			if (prev == nil || j >= len(prev.Fields) || prev.Fields[j].K != f.K) && once(seenKey{kind: 'k', s: f.K}) {
				kw("fnames", f.K)
			}
			if b.version < 3 && once(seenKey{kind: 'v', s: f.V}) {
				text.extra = append(text.extra, f.V)
			}
		}
		buckets = buckets[:0]
		for j, f := range l.Nums {
			if (prev == nil || j >= len(prev.Nums) || prev.Nums[j].K != f.K) && once(seenKey{kind: 'k', s: f.K}) {
				kw("fnames", f.K)
			}
			sign, e := bucketOf(f.V)
			k := seenKey{kind: 'n', s: f.K, e: e, sign: sign}
			buckets = append(buckets, k)
			if (j >= len(prevBuckets) || prevBuckets[j] != k) && once(k) {
				kw("numb", f.K+"="+numBucket(f.V))
			}
		}
		prev = l
		buckets, prevBuckets = prevBuckets, buckets
	}
	return d
}

// partsAnalyzer yields the distinct lowercased parts of its lines and of
// extra (the field's value is not used: the lines are read directly).
type partsAnalyzer struct {
	lines []storedLine
	extra []string
}

func (a *partsAnalyzer) Analyze([]byte) analysis.TokenStream {
	seen := make(map[string]struct{}, 256)
	var ts analysis.TokenStream
	var buf []byte
	for i := range len(a.lines) + len(a.extra) {
		var s string
		if i < len(a.lines) {
			s = a.lines[i].Line
		} else {
			s = a.extra[i-len(a.lines)]
		}
		eachPart(s, func(start, end int) {
			p := s[start:end]
			buf = append(buf[:0], p...)
			lowerBytes(buf)
			if _, ok := seen[string(buf)]; ok {
				return
			}
			term := string(buf)
			seen[term] = struct{}{}
			ts = append(ts, &analysis.Token{Term: []byte(term), Position: len(ts) + 1, Type: analysis.AlphaNumeric})
		})
	}
	return ts
}

// wordsAnalyzer yields each of words freq[i] times (once without freq):
// Bleve counts a term's tokens as its frequency in the document.
type wordsAnalyzer struct {
	words []string
	freq  []int32
}

func (a *wordsAnalyzer) Analyze([]byte) analysis.TokenStream {
	n := len(a.words)
	for _, f := range a.freq {
		n += int(f) - 1
	}
	ts := make(analysis.TokenStream, 0, n)
	toks := make([]analysis.Token, len(a.words))
	for i, w := range a.words {
		t := &toks[i]
		t.Term, t.Position, t.Type = []byte(w), i+1, analysis.AlphaNumeric
		reps := 1
		if a.freq != nil {
			reps = max(1, int(a.freq[i]))
		}
		for range reps {
			ts = append(ts, t)
		}
	}
	return ts
}

// singleToken yields its whole value as one term.
type singleToken struct{}

func (singleToken) Analyze(v []byte) analysis.TokenStream {
	return analysis.TokenStream{&analysis.Token{Term: v, Start: 0, End: len(v), Position: 1, Type: analysis.AlphaNumeric}}
}

// numBucket names the bucket of v: its sign and the power of two below
// its magnitude (z for zero; magnitudes beyond 2^±64 share the end buckets).
func numBucket(v float64) string {
	sign, e := bucketOf(v)
	if sign == 'z' {
		return "z"
	}
	return string(sign) + strconv.Itoa(e)
}

// bucketOf is numBucket's sign ('z', 'p' or 'n') and exponent.
func bucketOf(v float64) (byte, int) {
	switch {
	case v == 0:
		return 'z', 0
	case v < 0:
		return 'n', expOf(-v)
	}
	return 'p', expOf(v)
}

func expOf(v float64) int {
	_, e := math.Frexp(v) // v = frac × 2^e, 0.5 <= frac < 1
	return min(max(e-1, -65), 64)
}

// bucketsIn returns the buckets that hold some value in [lo, hi] (nil: open).
func bucketsIn(lo, hi *float64) []string {
	in := func(a, b float64) bool { // does [a, b] meet [lo, hi]?
		return (lo == nil || b >= *lo) && (hi == nil || a <= *hi)
	}
	var out []string
	if in(0, 0) {
		out = append(out, "z")
	}
	for e := -65; e <= 64; e++ {
		a, b := math.Ldexp(1, e), math.Ldexp(1, e+1)
		if e == -65 {
			a = 0
		}
		if e == 64 {
			b = math.Inf(1)
		}
		if in(a, b) {
			out = append(out, "p"+strconv.Itoa(e))
		}
		if in(-b, -a) {
			out = append(out, "n"+strconv.Itoa(e))
		}
	}
	return out
}

// blockQuery adapts a candidate query (matcher.candidate) to the block
// documents of layout version: a term, wildcard and the like on
// fields.NAME becomes the field's name and the parts of the value; a
// numeric range on num.NAME the buckets it covers. From version 3 on, a
// part with a digit becomes a bloomQuery (every block to Bleve; the
// block's Bloom filter decides, see bloomPass), and a wildcard, regexp,
// prefix or fuzzy term of the text every block (the parts it may match
// are not all in Bleve). nil stays nil (every block).
func blockQuery(q query.Query, version uint8) query.Query {
	v3 := version >= 3
	// From version 4 on, CJK runs of the text and of field values are
	// indexed as their bigrams and last characters (terms.go); before, a
	// run was one term with whatever it was glued to, so a block of an
	// older layout may hold any CJK text.
	v4 := version >= 4
	term := func(field, t string) query.Query {
		if v3 && (field == "line" || field == "fval") && hasDigitPart(t) {
			return &bloomQuery{hash: xxhash.Sum64String(t)}
		}
		tq := query.NewTermQuery(t)
		tq.SetField(field)
		return tq
	}
	fieldOf := func(q query.Query) (string, bool) {
		if fq, ok := q.(query.FieldableQuery); ok {
			return strings.CutPrefix(fq.Field(), "fields.")
		}
		return "", false
	}
	switch q := q.(type) {
	case nil:
		return nil
	case *query.ConjunctionQuery:
		subs := make([]query.Query, len(q.Conjuncts))
		for i, c := range q.Conjuncts {
			subs[i] = blockQuery(c, version)
		}
		return query.NewConjunctionQuery(subs)
	case *query.DisjunctionQuery:
		subs := make([]query.Query, len(q.Disjuncts))
		for i, c := range q.Disjuncts {
			subs[i] = blockQuery(c, version)
		}
		d := query.NewDisjunctionQuery(subs)
		d.SetMin(q.Min)
		return d
	case *query.BooleanQuery:
		return query.NewBooleanQuery(nilOr(blockQuery(q.Must, version)), nilOr(blockQuery(q.Should, version)), nil)
	case *query.NumericRangeQuery:
		name, ok := strings.CutPrefix(q.Field(), "num.")
		if !ok {
			return q
		}
		var subs []query.Query
		for _, b := range bucketsIn(q.Min, q.Max) {
			subs = append(subs, term("numb", name+"="+b))
		}
		if len(subs) == 0 {
			return query.NewMatchNoneQuery()
		}
		return query.NewDisjunctionQuery(subs)
	case *query.TermQuery:
		if q.Field() == "line" {
			if hasCJK(q.Term) && !v4 {
				return query.NewMatchAllQuery()
			}
			return term("line", q.Term)
		}
		name, ok := fieldOf(q)
		if !ok {
			return q
		}
		vf := "line"
		if v3 {
			vf = "fval"
		}
		subs := []query.Query{term("fnames", name)}
		if hasCJK(q.Term) && !v4 {
			return subs[0]
		}
		for _, p := range parts(q.Term) {
			if c, _ := classAtS(p, 0); c == clCJK {
				subs = append(subs, cjkQuery(vf, p))
				continue
			}
			subs = append(subs, term(vf, p))
		}
		return query.NewConjunctionQuery(subs)
	case *query.PrefixQuery:
		if q.Field() == "line" && hasCJK(q.Prefix) {
			// One CJK character (cjkQuery): the bigrams and run ends
			// that start with it.
			if v4 {
				return q
			}
			return query.NewMatchAllQuery()
		}
	}
	if name, ok := fieldOf(q); ok {
		// Wildcards, regexps, prefixes, fuzzy terms on a field value.
		return term("fnames", name)
	}
	if fq, ok := q.(query.FieldableQuery); ok && v3 && fq.Field() == "line" {
		return query.NewMatchAllQuery()
	}
	return q
}

// bloomQuery is a part with a digit in a block query: to Bleve it matches
// every block, and bloomPass checks it against each block's Bloom filter.
type bloomQuery struct{ hash uint64 }

func (q *bloomQuery) Searcher(ctx context.Context, i bindex.IndexReader, m mapping.IndexMapping, o search.SearcherOptions) (search.Searcher, error) {
	return query.NewMatchAllQuery().Searcher(ctx, i, m, o)
}

// hasBloom reports whether q holds a bloomQuery.
func hasBloom(q query.Query) bool {
	switch q := q.(type) {
	case *bloomQuery:
		return true
	case *query.ConjunctionQuery:
		return slices.ContainsFunc(q.Conjuncts, hasBloom)
	case *query.DisjunctionQuery:
		return slices.ContainsFunc(q.Disjuncts, hasBloom)
	case *query.BooleanQuery:
		return hasBloom(q.Must) || hasBloom(q.Should)
	}
	return false
}

// onlyBloom reports whether Bleve cannot narrow q at all (every leaf
// matches every block to it).
func onlyBloom(q query.Query) bool {
	switch q := q.(type) {
	case *bloomQuery, *query.MatchAllQuery:
		return true
	case *query.ConjunctionQuery:
		for _, c := range q.Conjuncts {
			if !onlyBloom(c) {
				return false
			}
		}
		return true
	}
	return false
}

// bloomPass reports whether a block whose Bloom filter is bl may hold a
// line matching q, judging only q's bloomQuery leaves (every other leaf
// passes: Bleve judged those).
func bloomPass(q query.Query, bl []byte) bool {
	switch q := q.(type) {
	case *bloomQuery:
		return bloomHas(bl, q.hash)
	case *query.ConjunctionQuery:
		for _, c := range q.Conjuncts {
			if !bloomPass(c, bl) {
				return false
			}
		}
		return true
	case *query.DisjunctionQuery:
		need := max(1, int(q.Min))
		got := 0
		for _, c := range q.Disjuncts {
			if bloomPass(c, bl) {
				if got++; got >= need {
					return true
				}
			}
		}
		return false
	case *query.BooleanQuery:
		if q.Must != nil {
			return bloomPass(q.Must, bl)
		}
		return q.Should == nil || bloomPass(q.Should, bl)
	}
	return true
}

// nilOr turns a nil sub-query into a nil interface for NewBooleanQuery.
func nilOr(q query.Query) []query.Query {
	if q == nil {
		return nil
	}
	return []query.Query{q}
}
