package index

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/blevesearch/bleve/v2/numeric"
	"github.com/blevesearch/bleve/v2/search/query"
	"github.com/blevesearch/vellum/levenshtein"
	vregexp "github.com/blevesearch/vellum/regexp"

	"github.com/logbox/logbox/appliance/pipeline"
)

// The exact per-line check.
//
// Bleve only finds the blocks that may hold a matching line; every line of
// such a block is then checked by a matcher: the user's query compiled into
// a tree of nodes that read a storedLine directly. The matcher reproduces
// what Bleve would answer for an index holding one document per line (see
// the differential test), with two deliberate differences: a query word of
// several parts ("192.168.1.10") matches those parts in a row, where Bleve
// would match any of them; and a CJK run matches its characters in a row
// anywhere in CJK text (ttCJK), where Bleve would match any of its
// bigrams.
//
// Term-level tests (regexps, wildcards, fuzzy terms) use the same automata
// as Bleve's scorch index (vellum), so the matcher and the Bleve query that
// candidate returns accept exactly the same terms.

// matcher is a query compiled for the exact per-line check.
type matcher struct {
	root *node
	// hl are the leaves on the line text that are not under a negation:
	// what highlights marks.
	hl []*node
}

// compileMatcher compiles q (as parseUserQuery/buildQuery return it).
func compileMatcher(q query.Query) (*matcher, error) {
	if q == nil {
		return nil, &pipeline.QueryError{Msg: "no query"}
	}
	// Bleve validates a request's query before running it; refuse what it
	// would refuse (an empty numeric range, Min above the clause count, ...).
	if v, ok := q.(query.ValidatableQuery); ok {
		if err := v.Validate(); err != nil {
			return nil, &pipeline.QueryError{Msg: err.Error()}
		}
	}
	root, err := compileNode(q, 0)
	if err != nil {
		return nil, err
	}
	m := &matcher{root: root}
	m.collectHighlights(root)
	return m, nil
}

// match reports whether line l of a block with info b matches.
func (m *matcher) match(b *blockInfo, l *storedLine) bool {
	switch m.root.op {
	case opAll:
		return true
	case opNever:
		return false
	}
	c := evalCtx{b: b, l: l}
	ok := m.root.eval(&c)
	c.release()
	return ok
}

// metaOnly reports whether match reads nothing of l but TS and Level (and
// b): then the caller may skip decoding the rest of the line.
func (m *matcher) metaOnly() bool { return m.root.metaOnly() }

// textOnly reports whether match reads nothing of l but TS, Level and Line.
func (m *matcher) textOnly() bool { return m.root.textOnly() }

// matchAll reports whether the query matches every line (MatchAll, or e.g.
// a bare "*"): the caller then counts lines without checking them.
func (m *matcher) matchAll() bool { return m.root.op == opAll }

// candidate returns the Bleve query that finds the blocks that may hold a
// matching line, or nil when any block may (negations, date ranges and the
// like cannot narrow blocks). It must never miss a block holding a
// matching line.
func (m *matcher) candidate() query.Query { return m.root.candidate() }

// highlights returns the byte ranges of l.Line where positive (not under a
// MustNot) "line" terms of the query occur: sorted, merged when they
// overlap or touch, Field "line". For a phrase: the whole span from its
// first to its last part. nil when none.
func (m *matcher) highlights(l *storedLine) []pipeline.Range {
	if len(m.hl) == 0 || l.Line == "" {
		return nil
	}
	low := make([]byte, len(l.Line))
	lowerInto(low, l.Line)
	type span struct{ start, end int }
	var spans []span
	for _, n := range m.hl {
		for from := 0; from < len(low); {
			s, e, ok := n.findSeq(low, from)
			if !ok {
				break
			}
			spans = append(spans, span{s, e})
			from = s + 1
		}
	}
	if len(spans) == 0 {
		return nil
	}
	slices.SortFunc(spans, func(a, b span) int { return cmp.Or(cmp.Compare(a.start, b.start), cmp.Compare(a.end, b.end)) })
	out := []pipeline.Range{{Field: "line", Start: spans[0].start, End: spans[0].end}}
	for _, s := range spans[1:] {
		last := &out[len(out)-1]
		if s.start <= last.End {
			last.End = max(last.End, s.end)
			continue
		}
		out = append(out, pipeline.Range{Field: "line", Start: s.start, End: s.end})
	}
	return out
}

func (m *matcher) collectHighlights(n *node) {
	switch n.op {
	case opNot:
		return
	case opAnd, opOr:
		for _, k := range n.kids {
			m.collectHighlights(k)
		}
	case opLine:
		m.hl = append(m.hl, n)
	}
}

// Nodes.

type op uint8

const (
	opNever op = iota // matches no line
	opAll             // matches every line
	opAnd             // every kid matches
	opOr              // at least min kids match
	opNot             // kids[0] does not match
	opLine            // a run of consecutive parts of the text (seq)
	opKey             // a keyword value (host, level, a field, ...) passes tt
	opRange           // a number or time lies in [lo, hi]
	opID              // the line's ID is one of ids
	opFit             // the line's text fits the template name (fit; scan.go)
)

// fieldKind is what a query field names in a line.
type fieldKind uint8

const (
	fUnknown fieldKind = iota
	fLine
	fHost
	fSource
	fSourceName
	fFileID
	fLevel
	fFlags
	fField // fields.NAME
	fNum   // num.NAME
	fOffset
	fTS
	fIngested
	fID
	fPattern // _pattern, the template filter (scan.go)
)

type node struct {
	op op
	// none: Bleve turns this query into a MatchNoneSearcher, which a
	// boolean query treats as an absent clause and a query-string
	// conjunction or disjunction skips. A none node never matches.
	none bool
	// smin is the Min of the Bleve searcher (a disjunction's minimum
	// clause count, 0 for most searchers): a boolean's should clause must
	// match when a must clause exists only if smin > 0.
	smin int

	kids []*node
	min  int // opOr: kids that must match (>= 1)

	fk   fieldKind
	name string // NAME of fields.NAME and num.NAME

	seq []termTest // opLine
	tt  termTest   // opKey

	lo, hi int64 // opRange, as Bleve compares: sortable int64 of a float, or Unix ns

	ids []string // opID

	fit func(text string) bool // opFit, set by Index.bindTemplates

	// cq is the candidate query of a leaf (nil: any block).
	cq query.Query
}

var (
	neverNode = &node{op: opNever}
	noneNode  = &node{op: opNever, none: true}
	allNode   = &node{op: opAll}
)

// evalCtx is the state of one match call.
type evalCtx struct {
	b *blockInfo
	l *storedLine
	// low is l.Line with ASCII lowercased, made on first use in buf.
	low     []byte
	lowDone bool
	buf     *[]byte
	// lvl holds the lowercased level when a test needs its bytes.
	lvl [16]byte
}

// lineBufs recycles the buffers lowercased lines are written to.
var lineBufs = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// maxPooledLine bounds the buffers kept for reuse.
const maxPooledLine = 64 << 10

func (c *evalCtx) lowLine() []byte {
	if c.lowDone {
		return c.low
	}
	c.lowDone = true
	s := c.l.Line
	if c.l.low != nil {
		c.low = c.l.low
		return c.low
	}
	c.buf = lineBufs.Get().(*[]byte)
	b := (*c.buf)[:0]
	if cap(b) < len(s) {
		b = make([]byte, 0, len(s))
	}
	b = b[:len(s)]
	lowerInto(b, s)
	*c.buf = b
	c.low = b
	return b
}

// lowerInto writes s lowercased as lowerASCII does to b (len(b) ==
// len(s)), ASCII eight bytes at a time.
func lowerInto(b []byte, s string) {
	const (
		ones = 0x0101010101010101
		high = 0x8080808080808080
	)
	copy(b, s)
	i := 0
	var seen uint64 // high bits of the bytes seen
	for ; i+8 <= len(b); i += 8 {
		w := binary.LittleEndian.Uint64(b[i:])
		seen |= w
		// Per byte (its low seven bits, so that no sum carries into the
		// next byte): the high bit of ge is set when the byte is >= 'A',
		// of gt when it is > 'Z'. Bytes >= 0x80 are left alone.
		low7 := w &^ high
		ge := low7 + (0x80-'A')*ones
		gt := low7 + (0x80-'Z'-1)*ones
		upper := ge &^ gt &^ w & high
		binary.LittleEndian.PutUint64(b[i:], w|upper>>2)
	}
	for ; i < len(b); i++ {
		if ch := b[i]; ch >= 'A' && ch <= 'Z' {
			b[i] = ch + 'a' - 'A'
		} else if ch >= 0x80 {
			seen |= high
		}
	}
	if seen&high != 0 {
		foldNonASCII(b)
	}
}

func (c *evalCtx) release() {
	if c.buf != nil {
		if cap(*c.buf) <= maxPooledLine {
			lineBufs.Put(c.buf)
		}
		c.buf = nil
	}
}

func (n *node) eval(c *evalCtx) bool {
	switch n.op {
	case opAll:
		return true
	case opAnd:
		for _, k := range n.kids {
			if !k.eval(c) {
				return false
			}
		}
		return true
	case opOr:
		got := 0
		for i, k := range n.kids {
			if k.eval(c) {
				if got++; got >= n.min {
					return true
				}
			} else if got+len(n.kids)-i-1 < n.min {
				return false
			}
		}
		return false
	case opNot:
		return !n.kids[0].eval(c)
	case opLine:
		_, _, ok := n.findSeq(c.lowLine(), 0)
		return ok
	case opKey:
		return n.evalKey(c)
	case opRange:
		return n.evalRange(c.l)
	case opID:
		for _, id := range n.ids {
			if isLineID(id, c.b, c.l.Offset) {
				return true
			}
		}
		return false
	case opFit:
		return n.fit != nil && n.fit(c.l.Line)
	}
	return false
}

func (n *node) evalKey(c *evalCtx) bool {
	t := &n.tt
	switch n.fk {
	case fHost:
		return c.b.Host != "" && testTerm(t, c.b.Host)
	case fSource:
		return c.b.Source != "" && testTerm(t, c.b.Source)
	case fSourceName:
		return c.b.SourceName != "" && testTerm(t, c.b.SourceName)
	case fFileID:
		return c.b.FileID != "" && testTerm(t, c.b.FileID)
	case fLevel:
		lv := c.l.Level
		if lv == "" {
			return false
		}
		if t.kind == ttEq {
			return equalLowerASCII(lv, t.str)
		}
		if len(lv) <= len(c.lvl) {
			b := c.lvl[:len(lv)]
			for i := 0; i < len(lv); i++ {
				ch := lv[i]
				if ch >= 'A' && ch <= 'Z' {
					ch += 'a' - 'A'
				}
				b[i] = ch
			}
			return testTerm(t, b)
		}
		return testTerm(t, lowerASCII(lv))
	case fFlags:
		for _, f := range c.l.Flags {
			if f != "" && testTerm(t, f) {
				return true
			}
		}
	case fField:
		for i := range c.l.Fields {
			if f := &c.l.Fields[i]; f.K == n.name && f.V != "" && testTerm(t, f.V) {
				return true
			}
		}
	case fID:
		if t.kind == ttEq {
			return isLineID(t.str, c.b, c.l.Offset)
		}
		return testTerm(t, pipeline.RecordID(c.b.Host, c.b.FileID, c.l.Offset))
	}
	return false
}

func (n *node) evalRange(l *storedLine) bool {
	in := func(v int64) bool { return v >= n.lo && v <= n.hi }
	switch n.fk {
	case fNum:
		for _, f := range l.Nums {
			if f.K == n.name && in(numeric.Float64ToInt64(f.V)) {
				return true
			}
		}
	case fOffset:
		return in(numeric.Float64ToInt64(float64(l.Offset)))
	case fTS:
		return in(l.TS)
	case fIngested:
		return in(l.Ingested)
	}
	return false
}

// isLineID reports whether id is pipeline.RecordID(b.Host, b.FileID, off),
// without building that string.
func isLineID(id string, b *blockInfo, off int64) bool {
	rest, ok := strings.CutPrefix(id, b.Host)
	if !ok {
		return false
	}
	if rest, ok = strings.CutPrefix(rest, "|"); !ok {
		return false
	}
	if rest, ok = strings.CutPrefix(rest, b.FileID); !ok {
		return false
	}
	if rest, ok = strings.CutPrefix(rest, "|"); !ok {
		return false
	}
	var digits [24]byte
	return string(strconv.AppendInt(digits[:0], off, 10)) == rest
}

// equalLowerASCII reports whether s with ASCII lowercased equals lower.
func equalLowerASCII(s, lower string) bool {
	if len(s) != len(lower) {
		return false
	}
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if ch >= 'A' && ch <= 'Z' {
			ch += 'a' - 'A'
		}
		if ch != lower[i] {
			return false
		}
	}
	return true
}

// findSeq finds in low (a lowercased line) the first run of consecutive
// parts, starting at or after from, that pass n.seq one by one. It returns
// the byte span from the first part's start to the last part's end. A CJK
// element (ttCJK) matches its characters anywhere in CJK text, as if each
// character were a part.
func (n *node) findSeq(low []byte, from int) (start, end int, ok bool) {
	seq := n.seq
	lead := seq[0].lead
	for i := from; i < len(low); {
		var s int
		if len(lead) > 0 {
			k := bytes.Index(low[i:], lead)
			if k < 0 {
				return 0, 0, false
			}
			s = i + k
			if seq[0].kind != ttCJK && wordBefore(low, s) {
				i = s + 1
				continue
			}
		} else {
			if i > 0 && classBefore(low, i) != clSep {
				// from is inside a part: go to the next one.
				i = partEnd(low, i)
			}
			i = sepEnd(low, i)
			if i == len(low) {
				return 0, 0, false
			}
			s = i
		}
		e, ok := matchAt(low, s, &seq[0])
		if ok {
			if j, ok := followSeq(low, e, seq[1:]); ok {
				return s, j, true
			}
		}
		if len(lead) > 0 {
			i = s + 1
		} else {
			i = max(e, s+1)
		}
	}
	return 0, 0, false
}

// matchAt checks the part (or CJK characters) at s of low against t and
// returns where what matched ends; when it does not match, the end of the
// part at s (s for a CJK test), so that findSeq need not find it again.
func matchAt(low []byte, s int, t *termTest) (int, bool) {
	if t.kind == ttCJK {
		if bytes.HasPrefix(low[s:], t.lead) {
			return s + len(t.lead), true
		}
		return s, false
	}
	e := partEnd(low, s)
	return e, e > s && testTerm(t, low[s:e])
}

// followSeq checks that the parts right after position e of low pass seq
// in order, and returns the end of the last.
func followSeq(low []byte, e int, seq []termTest) (int, bool) {
	j := e
	for i := range seq {
		j = sepEnd(low, j)
		if j >= len(low) {
			return 0, false
		}
		k, ok := matchAt(low, j, &seq[i])
		if !ok {
			return 0, false
		}
		j = k
	}
	return j, true
}

func (n *node) metaOnly() bool { return n.readsMeta(true) }

// blockConst reports whether the node reads only what all lines of a
// block share and their level: it is then decided per block and level
// (see Index.wholeCount), not per line.
func (n *node) blockConst() bool { return n.readsMeta(false) }

// readsMeta reports whether the node reads only what a block shares and
// the line's level, and with ts its time.
func (n *node) readsMeta(ts bool) bool {
	switch n.op {
	case opAll, opNever:
		return true
	case opAnd, opOr, opNot:
		for _, k := range n.kids {
			if !k.readsMeta(ts) {
				return false
			}
		}
		return true
	case opKey:
		switch n.fk {
		case fHost, fSource, fSourceName, fFileID, fLevel:
			return true
		}
	case opRange:
		return ts && n.fk == fTS
	}
	return false
}

// requiredLead returns a literal that the lowercased text of every
// matching line contains (the lead of a run of parts the line must hold,
// the longest such when the query is a conjunction), or nil.
func (m *matcher) requiredLead() []byte {
	lead := func(n *node) []byte {
		if n.op == opLine && len(n.seq) > 0 {
			return n.seq[0].lead
		}
		return nil
	}
	if m.root.op != opAnd {
		return lead(m.root)
	}
	var best []byte
	for _, k := range m.root.kids {
		if l := lead(k); len(l) > len(best) {
			best = l
		}
	}
	return best
}

// word returns the query's one word when it is a single word of the
// text without a digit (a term of the blocks' Bleve documents, whose
// frequency there is the number of lines holding it).
func (m *matcher) word() (string, bool) {
	n := m.root
	if n.op != opLine || len(n.seq) != 1 || n.seq[0].kind != ttEq || n.seq[0].str == "" || hasDigitPart(n.seq[0].str) {
		return "", false
	}
	for i := 0; i < len(n.seq[0].str); i++ {
		if !isPartByte(n.seq[0].str[i]) {
			return "", false
		}
	}
	return n.seq[0].str, true
}

// textOnly is metaOnly that may also read the line's text.
func (n *node) textOnly() bool {
	switch n.op {
	case opLine, opFit:
		return true
	case opAnd, opOr, opNot:
		for _, k := range n.kids {
			if !k.textOnly() {
				return false
			}
		}
		return true
	}
	return n.metaOnly()
}

// cost orders the kids of and/or nodes: cheap checks first.
func (n *node) cost() int {
	switch n.op {
	case opAll, opNever:
		return 0
	case opKey:
		switch n.fk {
		case fHost, fSource, fSourceName, fFileID, fLevel:
			return 1
		}
		return 3
	case opRange, opID:
		return 2
	case opFit:
		return 1000 // masks the whole line: after every other check
	case opLine:
		c := 10
		for i := range n.seq {
			if n.seq[i].a != nil {
				c += 20
			}
		}
		return c
	}
	c := 0
	for _, k := range n.kids {
		c += k.cost()
	}
	return c
}

// candidate returns the query for the blocks that may hold a line n
// matches: nil means any block.
func (n *node) candidate() query.Query {
	switch n.op {
	case opNever:
		return query.NewMatchNoneQuery()
	case opAll, opNot:
		return nil
	case opAnd:
		var qs []query.Query
		for _, k := range n.kids {
			switch c := k.candidate(); c.(type) {
			case nil:
			case *query.MatchNoneQuery:
				return c
			default:
				qs = append(qs, c)
			}
		}
		switch len(qs) {
		case 0:
			return nil
		case 1:
			return qs[0]
		}
		return query.NewConjunctionQuery(qs)
	case opOr:
		var qs []query.Query
		for _, k := range n.kids {
			switch c := k.candidate(); c.(type) {
			case nil:
				return nil
			case *query.MatchNoneQuery:
			default:
				qs = append(qs, c)
			}
		}
		// A line that matches min kids lies in a block that holds each of
		// those kids' candidates, so the block passes min of them too.
		if len(qs) < n.min {
			return query.NewMatchNoneQuery()
		}
		if len(qs) == 1 {
			return qs[0]
		}
		d := query.NewDisjunctionQuery(qs)
		if n.min > 1 {
			d.SetMin(float64(n.min))
		}
		return d
	}
	return n.cq
}

// Term tests.

type ttKind uint8

const (
	ttEq     ttKind = iota // the term equals str
	ttPrefix               // the term starts with str
	ttWild                 // wildcard str (the automaton a)
	ttRegexp               // regular expression str (the automaton a)
	ttFuzzy                // within fuzz edits of str, starting with pre
	// ttCJK: the CJK run str, matched anywhere in the CJK text of a line
	// (findSeq), its bigrams in the index.
	ttCJK
	// ttSub: a keyword value that holds str (a CJK run): msg:登录 finds
	// msg="用户登录失败", whose words are not split by spaces.
	ttSub
)

// termTest checks one term: a part of the line or a whole keyword value.
type termTest struct {
	kind ttKind
	str  string
	a    automaton
	pre  string // the term must start with it
	fuzz int    // ttFuzzy: edit distance
	pfx  int    // ttFuzzy: Bleve's prefix length
	// lead is a literal every passing term starts with (may be empty): on
	// the line text it is searched for instead of trying every part.
	lead []byte
}

// automaton is the part of vellum.Automaton a term test runs.
type automaton interface {
	Start() int
	IsMatch(int) bool
	CanMatch(int) bool
	Accept(int, byte) int
}

func testTerm[T string | []byte](t *termTest, s T) bool {
	switch t.kind {
	case ttEq:
		return string(s) == t.str
	case ttPrefix:
		return len(s) >= len(t.str) && string(s[:len(t.str)]) == t.str
	case ttCJK, ttSub:
		return strings.Contains(string(s), t.str)
	}
	if len(s) < len(t.pre) || string(s[:len(t.pre)]) != t.pre {
		return false
	}
	a := t.a
	st := a.Start()
	for i := 0; i < len(s); i++ {
		if st = a.Accept(st, s[i]); !a.CanMatch(st) {
			return false
		}
	}
	return a.IsMatch(st)
}

// bleve returns the Bleve query for the terms of field that t passes.
func (t *termTest) bleve(field string) query.Query {
	var q query.FieldableQuery
	switch t.kind {
	case ttCJK:
		return cjkQuery(field, t.str)
	case ttEq, ttSub:
		q = query.NewTermQuery(t.str)
	case ttPrefix:
		q = query.NewPrefixQuery(t.str)
	case ttWild:
		q = query.NewWildcardQuery(t.str)
	case ttRegexp:
		q = query.NewRegexpQuery(t.str)
	default:
		fq := query.NewFuzzyQuery(t.str)
		fq.SetFuzziness(t.fuzz)
		fq.SetPrefix(t.pfx)
		q = fq
	}
	q.SetField(field)
	return q
}

func eqTest(s string) termTest { return termTest{kind: ttEq, str: s, lead: []byte(s)} }

// partTest is the test of one part of a query word: a CJK run matches
// inside CJK text (ttCJK), any other part as a whole (ttEq).
func partTest(p string) termTest {
	if c, _ := classAtS(p, 0); c == clCJK {
		return termTest{kind: ttCJK, str: p, lead: []byte(p)}
	}
	return eqTest(p)
}

// cjkQuery is the Bleve query for the blocks whose field holds the CJK
// run s: each of its bigrams, or for one character the terms (bigrams and
// run ends) that start with it.
func cjkQuery(field, s string) query.Query {
	if _, n := utf8.DecodeRuneInString(s); n == len(s) {
		p := query.NewPrefixQuery(s)
		p.SetField(field)
		return p
	}
	var qs []query.Query
	seen := map[string]bool{}
	cjkGrams(s, func(g string) {
		// The run's last character alone is inside its last bigram.
		if _, n := utf8.DecodeRuneInString(g); n == len(g) || seen[g] {
			return
		}
		seen[g] = true
		t := query.NewTermQuery(g)
		t.SetField(field)
		qs = append(qs, t)
	})
	if len(qs) == 1 {
		return qs[0]
	}
	return query.NewConjunctionQuery(qs)
}

func prefixTest(s string) termTest { return termTest{kind: ttPrefix, str: s, lead: []byte(s)} }

// wildcardRegexp turns a wildcard into Bleve's regular expression for it
// (search/query/wildcard.go).
var wildcardRegexp = strings.NewReplacer(
	"+", `\+`, "(", `\(`, ")", `\)`, "^", `\^`, "$", `\$`, ".", `\.`,
	"{", `\{`, "}", `\}`, "[", `\[`, "]", `\]`, `|`, `\|`, `\`, `\\`,
	"*", ".*", "?", ".")

func wildcardTest(w string) (termTest, error) {
	a, err := vregexp.New(wildcardRegexp.Replace(w))
	if err != nil {
		return termTest{}, &pipeline.QueryError{Msg: fmt.Sprintf("wildcard %q: %v", w, err)}
	}
	lit := w
	if i := strings.IndexAny(w, "*?"); i >= 0 {
		lit = w[:i]
	}
	return termTest{kind: ttWild, str: w, a: a, lead: []byte(lit)}, nil
}

// regexpTest compiles a regular expression the way Bleve's scorch index
// does: a leading ^ is dropped, the match is of the whole term, and what
// vellum cannot run (anchors, word boundaries, lazy repeats) is an error.
// foldCase adds (?i).
func regexpTest(re string, foldCase bool) (termTest, error) {
	pat := strings.TrimPrefix(re, "^")
	if rest, ok := strings.CutPrefix(pat, "(?i)"); ok {
		// lowerLevelTerms puts (?i) before the user's expression; a ^
		// after it is dropped too.
		pat, foldCase = strings.TrimPrefix(rest, "^"), true
	}
	if foldCase {
		pat = "(?i)" + pat
	}
	a, err := vregexp.New(pat)
	if err != nil {
		return termTest{}, &pipeline.QueryError{Msg: fmt.Sprintf("regular expression /%s/: %v", re, err)}
	}
	return termTest{kind: ttRegexp, str: pat, a: a}, nil
}

var (
	levOnce     sync.Once
	levBuilders [MaxFuzziness + 1]*levenshtein.LevenshteinAutomatonBuilder
	levErr      error
)

// fuzzyTest matches terms within fuzz edits of term (Damerau-Levenshtein
// over runes, as scorch's automaton) that start with term's first prefix
// bytes (extended to a rune boundary, as Bleve does). fuzz 0 is equality.
func fuzzyTest(term string, fuzz, prefix int) (termTest, error) {
	if fuzz < 0 || fuzz > MaxFuzziness {
		return termTest{}, &pipeline.QueryError{Msg: fmt.Sprintf("fuzziness ~%d: must be 0 to %d", fuzz, MaxFuzziness)}
	}
	if fuzz == 0 {
		return eqTest(term), nil
	}
	levOnce.Do(func() {
		for d := 1; d <= MaxFuzziness; d++ {
			if levBuilders[d], levErr = levenshtein.NewLevenshteinAutomatonBuilder(uint8(d), true); levErr != nil {
				return
			}
		}
	})
	if levErr != nil {
		return termTest{}, fmt.Errorf("build fuzzy automaton builder: %w", levErr)
	}
	a, err := levBuilders[fuzz].BuildDfa(term, uint8(fuzz))
	if err != nil {
		return termTest{}, &pipeline.QueryError{Msg: fmt.Sprintf("fuzzy term %q: %v", term, err)}
	}
	pre := term
	for i := range term {
		if i >= prefix {
			pre = term[:i]
			break
		}
	}
	return termTest{kind: ttFuzzy, str: term, a: a, pre: pre, fuzz: fuzz, pfx: prefix, lead: []byte(pre)}, nil
}

// Compiling.

// resolveField maps a query field to what it names in a line.
func resolveField(f string) (fieldKind, string) {
	switch f {
	case "", "_all", "line":
		return fLine, ""
	case "host":
		return fHost, ""
	case "source":
		return fSource, ""
	case "source_name":
		return fSourceName, ""
	case "file_id":
		return fFileID, ""
	case "level":
		return fLevel, ""
	case "flags":
		return fFlags, ""
	case "offset":
		return fOffset, ""
	case "ts":
		return fTS, ""
	case "ingested":
		return fIngested, ""
	case "_id":
		return fID, ""
	case patternField:
		return fPattern, ""
	}
	if name, ok := strings.CutPrefix(f, "fields."); ok {
		return fField, name
	}
	if name, ok := strings.CutPrefix(f, "num."); ok {
		return fNum, name
	}
	return fUnknown, ""
}

// isKeyword reports whether field kind k holds whole-value terms.
func isKeyword(k fieldKind) bool {
	switch k {
	case fHost, fSource, fSourceName, fFileID, fLevel, fFlags, fField, fID:
		return true
	}
	return false
}

// blockField is the name of field k in a block's Bleve document ("" when
// blocks do not index it).
func blockField(k fieldKind, name string) string {
	switch k {
	case fLine:
		return "line"
	case fHost:
		return "host"
	case fSource:
		return "source"
	case fSourceName:
		return "source_name"
	case fFileID:
		return "file_id"
	case fLevel:
		return "level"
	case fFlags:
		return "flags"
	case fField:
		return "fields." + name
	case fNum:
		return "num." + name
	}
	return ""
}

// keyNode is a test of the whole values of keyword field k.
func keyNode(k fieldKind, name string, t termTest) *node {
	n := &node{op: opKey, fk: k, name: name, tt: t}
	if f := blockField(k, name); f != "" {
		n.cq = t.bleve(f)
	}
	return n
}

// lineNode matches a run of consecutive parts of the text passing seq.
func lineNode(seq []termTest) *node {
	n := &node{op: opLine, fk: fLine, seq: seq}
	if len(seq) == 1 {
		n.cq = seq[0].bleve("line")
	} else {
		qs := make([]query.Query, len(seq))
		for i := range seq {
			qs[i] = seq[i].bleve("line")
		}
		n.cq = query.NewConjunctionQuery(qs)
	}
	return n
}

// stringMode reports whether a conjunction or disjunction was made by the
// query-string parser: Bleve then skips its sub-queries that match nothing
// by construction (a phrase without terms, say). The flag is unexported,
// so it is read by reflection; TestMatchQueryStringMode notices if Bleve
// renames it.
func stringMode(q query.Query) bool { return unexportedBool(q, "queryStringMode") }

// autoFuzzy reports whether a match, phrase or fuzzy query chose automatic
// fuzziness (an unexported flag, set by JSON "fuzziness": "auto").
func autoFuzzy(q query.Query) bool { return unexportedBool(q, "autoFuzzy") }

func unexportedBool(q query.Query, name string) bool {
	v := reflect.ValueOf(q)
	if v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct {
		return false
	}
	f := v.Elem().FieldByName(name)
	return f.IsValid() && f.Kind() == reflect.Bool && f.Bool()
}

// autoFuzziness is Bleve's fuzziness for a term under automatic fuzziness
// (searcher.GetAutoFuzziness).
func autoFuzziness(term string) int {
	switch {
	case len(term) > 5:
		return 2
	case len(term) > 2:
		return 1
	}
	return 0
}

// maxCompileDepth bounds the nesting compileNode follows. Parsed queries
// are checked against MaxQueryDepth already; this only guards the stack
// against queries built by hand.
const maxCompileDepth = 5 * MaxQueryDepth

func compileNode(q query.Query, depth int) (*node, error) {
	if depth > maxCompileDepth {
		return nil, &pipeline.QueryError{Msg: fmt.Sprintf("query nested deeper than %d levels", MaxQueryDepth)}
	}
	switch q := q.(type) {
	case *query.MatchAllQuery:
		return allNode, nil
	case *query.MatchNoneQuery:
		return noneNode, nil
	case *query.BooleanQuery:
		return compileBoolean(q, depth)
	case *query.ConjunctionQuery:
		return compileConjunction(q.Conjuncts, stringMode(q), depth)
	case *query.DisjunctionQuery:
		n, err := compileDisjunction(q.Disjuncts, int(q.Min), stringMode(q), depth)
		if err == nil && !n.none {
			n = withSmin(n, int(q.Min))
		}
		return n, err
	case *query.MatchQuery:
		return compileMatch(q)
	case *query.MatchPhraseQuery:
		return compilePhrase(q)
	case *query.TermQuery:
		return termLeaf(q.FieldVal, func(line bool) (termTest, error) {
			if line {
				return eqTest(lowerASCII(q.Term)), nil
			}
			return eqTest(q.Term), nil
		})
	case *query.PrefixQuery:
		return termLeaf(q.FieldVal, func(line bool) (termTest, error) {
			if line {
				return prefixTest(lowerASCII(q.Prefix)), nil
			}
			return prefixTest(q.Prefix), nil
		})
	case *query.WildcardQuery:
		return termLeaf(q.FieldVal, func(line bool) (termTest, error) {
			if line {
				return wildcardTest(lowerASCII(q.Wildcard))
			}
			return wildcardTest(q.Wildcard)
		})
	case *query.RegexpQuery:
		return termLeaf(q.FieldVal, func(line bool) (termTest, error) {
			return regexpTest(q.Regexp, line)
		})
	case *query.FuzzyQuery:
		k, name := resolveField(q.FieldVal)
		term := q.Term
		if k == fLine {
			term = lowerASCII(term)
		}
		fuzz := q.Fuzziness
		if autoFuzzy(q) {
			fuzz = autoFuzziness(term)
		}
		t, err := fuzzyTest(term, fuzz, q.Prefix)
		if err != nil {
			return nil, err
		}
		switch {
		case k == fLine:
			return lineNode([]termTest{t}), nil
		case isKeyword(k):
			return keyNode(k, name, t), nil
		}
		return neverNode, nil
	case *query.NumericRangeQuery:
		k, name := resolveField(q.FieldVal)
		if k != fNum && k != fOffset {
			return neverNode, nil
		}
		n := &node{op: opRange, fk: k, name: name}
		n.lo, n.hi = sortableRange(q.Min, q.Max, q.InclusiveMin, q.InclusiveMax)
		if k == fNum {
			c := query.NewNumericRangeInclusiveQuery(q.Min, q.Max, q.InclusiveMin, q.InclusiveMax)
			c.SetField("num." + name)
			n.cq = c
		}
		return n, nil
	case *query.DateRangeQuery:
		min, err := dateBound(q.Start, math.Inf(-1))
		if err != nil {
			return nil, err
		}
		max, err := dateBound(q.End, math.Inf(1))
		if err != nil {
			return nil, err
		}
		k, _ := resolveField(q.FieldVal)
		if k != fTS && k != fIngested {
			return neverNode, nil
		}
		n := &node{op: opRange, fk: k}
		n.lo, n.hi = sortableRange(&min, &max, q.InclusiveStart, q.InclusiveEnd)
		return n, nil
	case *query.DocIDQuery:
		return &node{op: opID, ids: slices.Clone(q.IDs)}, nil
	case nil:
		return nil, &pipeline.QueryError{Msg: "empty sub-query"}
	}
	return nil, &pipeline.QueryError{Msg: fmt.Sprintf("unsupported query type %T", q)}
}

// dateBound is the bound Bleve's date range searcher uses for t: the Unix
// ns as a float (numeric.Int64ToFloat64), or open when t is zero. Times
// outside what RFC 3339 can write are refused, as Bleve does.
func dateBound(t query.BleveQueryTime, open float64) (float64, error) {
	if t.IsZero() {
		return open, nil
	}
	if t.Before(query.MinRFC3339CompatibleTime) || t.After(query.MaxRFC3339CompatibleTime) {
		return 0, &pipeline.QueryError{Msg: fmt.Sprintf("date %s is out of range", t.Format(time.RFC3339))}
	}
	return numeric.Int64ToFloat64(t.UnixNano()), nil
}

// sortableRange is the interval of sortable int64s (numeric.Float64ToInt64)
// that Bleve's numeric range searcher accepts: min inclusive and max
// exclusive unless told otherwise, nil bounds open.
func sortableRange(min, max *float64, minIncl, maxIncl *bool) (lo, hi int64) {
	lo, hi = numeric.Float64ToInt64(math.Inf(-1)), numeric.Float64ToInt64(math.Inf(1))
	if min != nil {
		lo = numeric.Float64ToInt64(*min)
	}
	if max != nil {
		hi = numeric.Float64ToInt64(*max)
	}
	if minIncl != nil && !*minIncl && lo != math.MaxInt64 {
		lo++
	}
	if (maxIncl == nil || !*maxIncl) && hi != math.MinInt64 {
		hi--
	}
	return lo, hi
}

// termLeaf compiles a term-level query (term, prefix, wildcard, regexp)
// on field: test builds the term test, for the line's parts (line) or for
// whole keyword values. Other fields match nothing.
func termLeaf(field string, test func(line bool) (termTest, error)) (*node, error) {
	k, name := resolveField(field)
	if k == fPattern {
		return nil, patternSyntaxError()
	}
	if k != fLine && !isKeyword(k) {
		return neverNode, nil
	}
	t, err := test(k == fLine)
	if err != nil {
		return nil, err
	}
	if k == fLine {
		return lineNode([]termTest{t}), nil
	}
	return keyNode(k, name, t), nil
}

// withSmin records the Min of the searcher Bleve builds for n.
func withSmin(n *node, smin int) *node {
	if n.smin == smin {
		return n
	}
	c := *n
	c.smin = smin
	return &c
}

func compileMatch(q *query.MatchQuery) (*node, error) {
	if q.Operator != query.MatchQueryOperatorOr && q.Operator != query.MatchQueryOperatorAnd {
		return nil, &pipeline.QueryError{Msg: fmt.Sprintf("unknown match operator %d", q.Operator)}
	}
	if q.Fuzziness < 0 || q.Fuzziness > MaxFuzziness {
		return nil, &pipeline.QueryError{Msg: fmt.Sprintf("fuzziness ~%d: must be 0 to %d", q.Fuzziness, MaxFuzziness)}
	}
	auto := autoFuzzy(q)
	fuzz := func(term string) int {
		if auto {
			return autoFuzziness(term)
		}
		return q.Fuzziness
	}
	k, name := resolveField(q.FieldVal)
	if k == fPattern {
		return withSmin(patternNode(q.Match), orMin(q.Operator)), nil
	}
	if k != fLine {
		// Every other field is analyzed as one keyword term (level
		// lowercased): never none, a disjunction of one term for Bleve.
		if !isKeyword(k) {
			return withSmin(neverNode, orMin(q.Operator)), nil
		}
		text := q.Match
		if k == fLevel {
			text = strings.ToLower(text)
		}
		if k == fField && fuzz(text) == 0 && allCJK(text) {
			return withSmin(keyNode(k, name, termTest{kind: ttSub, str: text}), orMin(q.Operator)), nil
		}
		t, err := fuzzyTest(text, fuzz(text), q.Prefix)
		if err != nil {
			return nil, err
		}
		return withSmin(keyNode(k, name, t), orMin(q.Operator)), nil
	}
	var words []*node
	for _, w := range splitSpace(q.Match) {
		ps := parts(w)
		if len(ps) == 0 {
			continue
		}
		seq := make([]termTest, len(ps))
		for i, p := range ps {
			if fuzz(p) == 0 {
				seq[i] = partTest(p)
				continue
			}
			t, err := fuzzyTest(p, fuzz(p), q.Prefix)
			if err != nil {
				return nil, err
			}
			seq[i] = t
		}
		words = append(words, lineNode(seq))
	}
	if len(words) == 0 {
		return noneNode, nil
	}
	var n *node
	if q.Operator == query.MatchQueryOperatorAnd {
		n = and(words)
	} else {
		n = or(words, 1)
	}
	return withSmin(n, orMin(q.Operator)), nil
}

// orMin is the Min of the searcher of a match query with operator o that
// has terms: its terms form a disjunction with Min 1, or a conjunction.
func orMin(o query.MatchQueryOperator) int {
	if o == query.MatchQueryOperatorOr {
		return 1
	}
	return 0
}

func compilePhrase(q *query.MatchPhraseQuery) (*node, error) {
	fuzz := q.Fuzziness
	auto := autoFuzzy(q)
	if !auto && (fuzz < 0 || fuzz > MaxFuzziness) {
		return nil, &pipeline.QueryError{Msg: fmt.Sprintf("fuzziness ~%d: must be 0 to %d", fuzz, MaxFuzziness)}
	}
	test := func(term string) (termTest, error) {
		if auto {
			return fuzzyTest(term, autoFuzziness(term), 0)
		}
		return fuzzyTest(term, fuzz, 0)
	}
	k, name := resolveField(q.FieldVal)
	if k == fPattern {
		return patternNode(q.MatchPhrase), nil
	}
	if k != fLine {
		if !isKeyword(k) {
			return neverNode, nil
		}
		text := q.MatchPhrase
		if k == fLevel {
			text = strings.ToLower(text)
		}
		if k == fField && !auto && fuzz == 0 && allCJK(text) {
			return keyNode(k, name, termTest{kind: ttSub, str: text}), nil
		}
		t, err := test(text)
		if err != nil {
			return nil, err
		}
		return keyNode(k, name, t), nil
	}
	ps := parts(q.MatchPhrase)
	if len(ps) == 0 {
		return noneNode, nil
	}
	seq := make([]termTest, len(ps))
	for i, p := range ps {
		if !auto && fuzz == 0 {
			seq[i] = partTest(p)
			continue
		}
		t, err := test(p)
		if err != nil {
			return nil, err
		}
		seq[i] = t
	}
	return lineNode(seq), nil
}

// splitSpace splits s at ASCII white space. (Other white space is made of
// bytes >= 0x80, which belong to parts.)
func splitSpace(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool {
		return r == ' ' || r == '\t' || r == '\n' || r == '\r' || r == '\v' || r == '\f'
	})
}

func compileBoolean(q *query.BooleanQuery, depth int) (*node, error) {
	clause := func(sub query.Query) (*node, error) {
		if sub == nil {
			return nil, nil
		}
		n, err := compileNode(sub, depth+1)
		if err != nil || n.none {
			// A clause Bleve builds no searcher for counts as absent.
			return nil, err
		}
		return n, nil
	}
	must, err := clause(q.Must)
	if err != nil {
		return nil, err
	}
	should, err := clause(q.Should)
	if err != nil {
		return nil, err
	}
	mustNot, err := clause(q.MustNot)
	if err != nil {
		return nil, err
	}
	var filter *node
	if q.Filter != nil {
		// A filter is never dropped: one that matches nothing empties
		// the result.
		if filter, err = compileNode(q.Filter, depth+1); err != nil {
			return nil, err
		}
	}
	if must == nil && should == nil && mustNot == nil && filter == nil {
		return noneNode, nil
	}
	var kids []*node
	switch {
	case must != nil:
		kids = append(kids, must)
		if should != nil && should.smin > 0 {
			kids = append(kids, should)
		}
	case should != nil:
		kids = append(kids, should)
	}
	if mustNot != nil {
		kids = append(kids, not(mustNot))
	}
	if filter != nil {
		kids = append(kids, filter)
	}
	n := and(kids)
	// Bleve hands back the only clause's own searcher.
	if filter == nil && mustNot == nil {
		switch {
		case must != nil && should == nil:
			n = withSmin(n, must.smin)
		case must == nil && should != nil:
			n = withSmin(n, should.smin)
		default:
			n = withSmin(n, 0)
		}
	} else {
		n = withSmin(n, 0)
	}
	return n, nil
}

func compileConjunction(qs []query.Query, stringMode bool, depth int) (*node, error) {
	var kids []*node
	for _, sub := range qs {
		k, err := compileNode(sub, depth+1)
		if err != nil {
			return nil, err
		}
		if k.none && stringMode {
			continue
		}
		kids = append(kids, k)
	}
	if len(kids) == 0 {
		return noneNode, nil
	}
	return withSmin(and(kids), 0), nil
}

func compileDisjunction(qs []query.Query, min int, stringMode bool, depth int) (*node, error) {
	var kids []*node
	for _, sub := range qs {
		k, err := compileNode(sub, depth+1)
		if err != nil {
			return nil, err
		}
		if k.none && stringMode {
			continue
		}
		kids = append(kids, k)
	}
	if len(kids) == 0 {
		return noneNode, nil
	}
	return or(kids, max(1, min)), nil
}

// and combines kids that must all match, simplified. The result is never
// none (its smin is 0).
func and(kids []*node) *node {
	var keep []*node
	for _, k := range kids {
		switch k.op {
		case opNever:
			return neverNode
		case opAll:
			continue
		case opAnd:
			keep = append(keep, k.kids...)
			continue
		}
		keep = append(keep, k)
	}
	switch len(keep) {
	case 0:
		return allNode
	case 1:
		return plain(keep[0])
	}
	slices.SortStableFunc(keep, func(a, b *node) int { return cmp.Compare(a.cost(), b.cost()) })
	return &node{op: opAnd, kids: keep}
}

// or combines kids of which at least min must match, simplified.
func or(kids []*node, min int) *node {
	var keep []*node
	all := 0
	for _, k := range kids {
		switch k.op {
		case opNever:
			continue
		case opAll:
			all++
		}
		keep = append(keep, k)
	}
	if all >= min {
		return allNode
	}
	if len(keep) < min {
		return neverNode
	}
	if len(keep) == 1 {
		return plain(keep[0])
	}
	if min == 1 {
		// Flatten nested "any of" nodes.
		var flat []*node
		for _, k := range keep {
			if k.op == opOr && k.min == 1 {
				flat = append(flat, k.kids...)
			} else {
				flat = append(flat, k)
			}
		}
		keep = flat
	}
	slices.SortStableFunc(keep, func(a, b *node) int { return cmp.Compare(a.cost(), b.cost()) })
	return &node{op: opOr, kids: keep, min: min}
}

func not(k *node) *node {
	switch k.op {
	case opNever:
		return allNode
	case opAll:
		return neverNode
	case opNot:
		return plain(k.kids[0])
	}
	return &node{op: opNot, kids: []*node{k}}
}

// plain returns n without the Bleve-level flags of the query it came from
// (none, smin), for use inside a combined node.
func plain(n *node) *node {
	if !n.none && n.smin == 0 {
		return n
	}
	switch n.op {
	case opNever:
		return neverNode
	case opAll:
		return allNode
	}
	c := *n
	c.none, c.smin = false, 0
	return &c
}
