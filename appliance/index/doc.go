package index

import (
	"math"
	"strconv"
	"strings"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/analysis"
	"github.com/blevesearch/bleve/v2/analysis/analyzer/keyword"
	"github.com/blevesearch/bleve/v2/document"
	"github.com/blevesearch/bleve/v2/mapping"
	"github.com/blevesearch/bleve/v2/search/query"
	bindex "github.com/blevesearch/bleve_index_api"
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

// blockDoc builds the Bleve document of block b holding lines.
func blockDoc(b *block, lines []storedLine) *document.Document {
	d := document.NewDocument(blockDocID(b.seq))
	text := partsAnalyzer{}
	d.AddField(document.NewTextFieldCustom("line", nil, nil, indexOnly, &text))
	text.lines = lines
	kw := func(name, v string) {
		if v != "" {
			d.AddField(document.NewTextFieldCustom(name, nil, []byte(v), indexOnly, singleToken{}))
		}
	}
	kw("host", b.info.Host)
	kw("source", b.info.Source)
	kw("source_name", b.info.SourceName)
	kw("file_id", b.info.FileID)
	var levels [len(levelNames)]bool
	for _, c := range b.levels {
		if c > 0 && int(c) < len(levelNames) && !levels[c] {
			levels[c] = true
			kw("level", lowerASCII(levelNames[c]))
		}
	}
	seen := map[string]struct{}{}
	once := func(key string) bool {
		if _, ok := seen[key]; ok {
			return false
		}
		seen[key] = struct{}{}
		return true
	}
	for i := range lines {
		l := &lines[i]
		for _, f := range l.Flags {
			if once("f\x00" + f) {
				kw("flags", f)
			}
		}
		for _, f := range l.Fields {
			if once("k\x00" + f.K) {
				kw("fnames", f.K)
			}
			if once("v\x00" + f.V) {
				text.extra = append(text.extra, f.V)
			}
		}
		for _, f := range l.Nums {
			if once("k\x00" + f.K) {
				kw("fnames", f.K)
			}
			if t := f.K + "=" + numBucket(f.V); once("n\x00" + t) {
				kw("numb", t)
			}
		}
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

// singleToken yields its whole value as one term.
type singleToken struct{}

func (singleToken) Analyze(v []byte) analysis.TokenStream {
	return analysis.TokenStream{&analysis.Token{Term: v, Start: 0, End: len(v), Position: 1, Type: analysis.AlphaNumeric}}
}

// numBucket names the bucket of v: its sign and the power of two below
// its magnitude (z for zero; magnitudes beyond 2^±64 share the end buckets).
func numBucket(v float64) string {
	if v == 0 {
		return "z"
	}
	sign := "p"
	if v < 0 {
		sign, v = "n", -v
	}
	return sign + strconv.Itoa(expOf(v))
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
// document: a term, wildcard and the like on fields.NAME becomes the
// field's name and the parts of the value; a numeric range on num.NAME
// the buckets it covers. nil stays nil (every block).
func blockQuery(q query.Query) query.Query {
	term := func(field, t string) query.Query {
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
			subs[i] = blockQuery(c)
		}
		return query.NewConjunctionQuery(subs)
	case *query.DisjunctionQuery:
		subs := make([]query.Query, len(q.Disjuncts))
		for i, c := range q.Disjuncts {
			subs[i] = blockQuery(c)
		}
		d := query.NewDisjunctionQuery(subs)
		d.SetMin(q.Min)
		return d
	case *query.BooleanQuery:
		return query.NewBooleanQuery(nilOr(blockQuery(q.Must)), nilOr(blockQuery(q.Should)), nil)
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
		name, ok := fieldOf(q)
		if !ok {
			return q
		}
		subs := []query.Query{term("fnames", name)}
		for _, p := range parts(q.Term) {
			subs = append(subs, term("line", p))
		}
		return query.NewConjunctionQuery(subs)
	}
	if name, ok := fieldOf(q); ok {
		// Wildcards, regexps, prefixes, fuzzy terms on a field value.
		return term("fnames", name)
	}
	return q
}

// nilOr turns a nil sub-query into a nil interface for NewBooleanQuery.
func nilOr(q query.Query) []query.Query {
	if q == nil {
		return nil
	}
	return []query.Query{q}
}
