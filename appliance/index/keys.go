package index

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/klauspost/compress/s2"

	"github.com/logbox/logbox/appliance/pipeline"
)

// Keys: what a block keeps for log templates (appliance/patterns).
//
// Patterns group lines by their masked form (their key: numbers, ids and
// such replaced, see patterns.Mask). Masking costs about 0.4 µs a line,
// too much to do for millions of lines at query time, so a block of
// layout 5 written with a Masker keeps its lines' keys in two frames,
// the table (S2, quick to read)
//
//	uvarint keys | per key: key | uvarint lines | uvarint its example
//	line | varint its example's time - the block's first time | per
//	line: uvarint its key's index
//
// and the examples (zstd), read only when one is asked for
//
//	per key: the example's text (cut to pipeline.MaxKeyExample bytes)
//
// A key's example is its newest line, of the newest the smallest text
// (cut): the one the miner would keep. ScanKeys then hands over a block
// whose every line matches and whose lines lie in one sparkline bucket
// as its table of keys alone (counts and examples, no line read), any
// other block as its matching lines' key indexes and times (with the
// text only where the query reads it anyway). Blocks without keys (older
// layouts, no Masker, or keys masked by other rules than the Masker's
// now) are masked as they are read, so an answer is the same whatever
// the blocks hold.

// Masker masks a line's text into its key; appliance/patterns.Fitter
// implements it. MaskKey is called from several goroutines at once.
type Masker interface {
	// MaskKey appends the key of text to dst.
	MaskKey(dst []byte, text string) []byte
	// MaskVersion names the masking rules: keys stored under another
	// version are not used (the lines are masked again).
	MaskVersion() uint32
}

// errNoMasker answers ScanKeys on an index without a Masker.
var errNoMasker = errors.New("this index masks no keys (no Masker configured)")

// cutKeyExample cuts s to pipeline.MaxKeyExample bytes, at a character
// boundary.
func cutKeyExample(s string) string {
	if len(s) <= pipeline.MaxKeyExample {
		return s
	}
	i := pipeline.MaxKeyExample
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i]
}

// newerExample says whether example (ts, ex) wins over (ts0, ex0): newer,
// or as new and smaller.
func newerExample(ts int64, ex string, ts0 int64, ex0 string) bool {
	return ts > ts0 || ts == ts0 && ex < ex0
}

// appendKeys appends the raw keys table of lines to dst and their
// examples to exs (see the top of this file); minTS is the block's first
// time.
func appendKeys(dst, exs []byte, lines []storedLine, mk Masker, minTS int64) ([]byte, []byte) {
	type ent struct {
		key   string
		count uint32
		ex    int
	}
	idx := map[string]uint32{}
	var ents []ent
	per := make([]uint32, len(lines))
	var buf []byte
	for i := range lines {
		buf = mk.MaskKey(buf[:0], lines[i].Line)
		k, ok := idx[string(buf)]
		if !ok {
			k = uint32(len(ents))
			s := string(buf)
			idx[s] = k
			ents = append(ents, ent{key: s, ex: i})
		} else if e := &lines[ents[k].ex]; newerExample(lines[i].TS, cutKeyExample(lines[i].Line), e.TS, cutKeyExample(e.Line)) {
			ents[k].ex = i
		}
		ents[k].count++
		per[i] = k
	}
	dst = binary.AppendUvarint(dst, uint64(len(ents)))
	for _, e := range ents {
		dst = appendStr(dst, e.key)
		dst = binary.AppendUvarint(dst, uint64(e.count))
		dst = binary.AppendUvarint(dst, uint64(e.ex))
		dst = binary.AppendVarint(dst, lines[e.ex].TS-minTS)
		exs = appendStr(exs, cutKeyExample(lines[e.ex].Line))
	}
	for _, k := range per {
		dst = binary.AppendUvarint(dst, uint64(k))
	}
	return dst, exs
}

// blockKeys is a block's keys frame, read.
type blockKeys struct {
	keys   []string
	counts []uint32
	exLine []uint32
	exTS   []int64
	line   []uint32 // per line: its key
	// The examples, read by example when first asked for.
	b      *block
	exComp []byte
	ex     []string // empty until read
	err    error
	// Memory reused from block to block.
	comp, raw, exRaw []byte
}

// grow returns s with length n, reusing its memory.
func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

// example returns key k's example, reading the examples frame the
// first time; on an error it returns "" and keeps the error in err.
func (k *blockKeys) example(i int) string {
	if len(k.ex) == 0 && k.err == nil {
		raw, err := zstdDecode(k.exRaw[:0], k.exComp)
		if err != nil {
			k.err = fmt.Errorf("decompress examples of block %d: %w", k.b.seq, err)
			return ""
		}
		k.exRaw = raw
		r := &bodyReader{b: raw}
		ex := grow(k.ex, len(k.keys))
		for j := range ex {
			ex[j] = r.str(true)
		}
		if r.err != nil {
			k.err = fmt.Errorf("examples of block %d: %w", k.b.seq, r.err)
			return ""
		}
		k.ex = ex
	}
	if k.err != nil {
		return ""
	}
	return k.ex[i]
}

// hasKeys says whether b's stored keys are masked by mk's rules.
func (b *block) hasKeys(mk Masker) bool {
	return b.keysClen > 0 && mk != nil && b.maskVer == mk.MaskVersion()
}

// readKeys reads b's keys frame (b must have one).
func (bf *blockFile) readKeys(b *block) (*blockKeys, error) {
	k := &blockKeys{}
	return k, bf.readKeysInto(b, k, true)
}

// readKeysInto reads b's keys frame (b must have one) into k, reusing
// its memory (what k held before is gone; the strings share its
// buffers); the per-line keys only with lines.
func (bf *blockFile) readKeysInto(b *block, k *blockKeys, lines bool) error {
	comp := k.comp
	if cap(comp) < int(b.keysClen) {
		comp = make([]byte, b.keysClen)
	}
	comp = comp[:b.keysClen]
	k.comp = comp
	if _, err := bf.f.ReadAt(comp, b.pos+int64(b.keysOff)); err != nil {
		return fmt.Errorf("read keys of block %d: %w", b.seq, err)
	}
	dl, err := s2.DecodedLen(comp[:b.keysTab])
	if err != nil {
		return fmt.Errorf("decompress keys of block %d: %w", b.seq, err)
	}
	if cap(k.raw) < dl {
		k.raw = make([]byte, dl)
	}
	raw, err := s2.Decode(k.raw[:cap(k.raw)], comp[:b.keysTab])
	if err != nil {
		return fmt.Errorf("decompress keys of block %d: %w", b.seq, err)
	}
	r := &bodyReader{b: raw}
	n := b.n()
	nk := r.uvarint()
	if r.err != nil || nk > uint64(n) {
		return fmt.Errorf("keys of block %d: %w", b.seq, errCorrupt)
	}
	k.keys = grow(k.keys, int(nk))
	k.counts = grow(k.counts, int(nk))
	k.exLine = grow(k.exLine, int(nk))
	k.exTS = grow(k.exTS, int(nk))
	k.line = k.line[:0]
	if lines {
		k.line = grow(k.line, n)
	}
	k.b, k.exComp, k.ex, k.err = b, comp[b.keysTab:], k.ex[:0], nil
	for i := range k.keys {
		k.keys[i] = r.str(true)
		k.counts[i] = uint32(r.uvarint())
		ex := r.uvarint()
		if ex >= uint64(n) {
			r.err = errCorrupt
		}
		k.exLine[i] = uint32(ex)
		k.exTS[i] = b.minTS + r.varint()
	}
	for i := range k.line {
		v := r.uvarint()
		if v >= nk {
			r.err = errCorrupt
		}
		k.line[i] = uint32(v)
	}
	if r.err != nil {
		return fmt.Errorf("keys of block %d: %w", b.seq, r.err)
	}
	return nil
}

// ScanKeys calls each for the lines matching query (no pipe) in [from,
// to) (zero ends are open), block by block, from up to ScanWorkers
// goroutines at once (w, below ScanWorkers, tells them apart), in no
// particular order, with their keys (see pipeline.KeyBlock and the top
// of this file); kb is valid only during the call. oneBucket(lo, hi)
// says whether times lo and hi fall in one sparkline bucket: a block for
// which it does and whose every line matches may come as counts alone.
// It returns the number of lines. A bad query is a
// *pipeline.QueryError; an index without a Masker refuses.
func (ix *Index) ScanKeys(ctx context.Context, query string, from, to time.Time, oneBucket func(lo, hi int64) bool, each func(w int, kb *pipeline.KeyBlock)) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	mk := ix.cfg.Masker
	if mk == nil {
		return 0, errNoMasker
	}
	m, err := compile(query)
	if err != nil {
		return 0, err
	}
	lo, hi, err := timeRange(from, to)
	if err != nil {
		return 0, err
	}
	keyed := func(b *block) bool { return !ix.noStoredKeys && b.hasKeys(mk) }
	states := make([]*keyScan, workers())
	for w := range states {
		states[w] = &keyScan{w: w, mk: mk, each: each}
	}
	ix.searchMu.RLock()
	defer ix.searchMu.RUnlock()
	_, total, _, err := ix.run(ctx, searchOpts{m: m, from: lo, to: hi, count: true, text: true, keyed: keyed,
		whole: func(w int, b *block, n uint64) bool {
			if n != uint64(b.n()) || !keyed(b) || !oneBucket(b.minTS, b.maxTS) {
				return false
			}
			st := states[w]
			if st.err != nil {
				return true
			}
			k := &st.wholeKeys
			if err := b.sh.bf.readKeysInto(b, k, false); err != nil {
				st.err = err
				return true
			}
			st.whole = pipeline.KeyBlock{Keys: k.keys, Counts: k.counts, TS: b.minTS, ExTS: k.exTS, ExOf: k.example}
			each(w, &st.whole)
			if k.err != nil {
				st.err = k.err
			}
			return true
		},
		each: func(w int, b *block, i int, ts int64, _ uint8, l *storedLine) {
			st := states[w]
			if st.b != b {
				st.flush()
				st.start(b, keyed(b))
			}
			st.add(i, ts, l)
		}})
	for _, st := range states {
		st.flush()
	}
	for _, st := range states {
		if err == nil && st.err != nil {
			err = st.err
		}
	}
	if err != nil {
		return 0, fmt.Errorf("scan keys of %q: %w", query, err)
	}
	return total, nil
}

// keyScan is one worker's block in ScanKeys: the matching lines of the
// block it reads, gathered into a KeyBlock.
type keyScan struct {
	w    int
	mk   Masker
	each func(w int, kb *pipeline.KeyBlock)
	err  error
	b    *block
	// bk is b's keys frame; nil when b has none (its lines are masked,
	// into local).
	bk    *blockKeys
	local map[string]uint32
	buf   []byte
	// textKnown: the lines came with their text (examples are then
	// chosen from it).
	textKnown bool
	matched   []int32 // the matching lines
	kb        pipeline.KeyBlock
	whole     pipeline.KeyBlock // a block handed over as counts
	// Memory reused from block to block: the keys of a block handed over
	// whole and of one read line by line, and the latter's examples.
	wholeKeys, lineKeys blockKeys
	exTS                []int64
	ex                  []string
	text                textReader
}

func (s *keyScan) start(b *block, keyed bool) {
	s.b, s.bk, s.textKnown = b, nil, false
	s.matched = s.matched[:0]
	s.kb = pipeline.KeyBlock{Lines: s.kb.Lines[:0], LineTS: s.kb.LineTS[:0]}
	if s.err != nil {
		return
	}
	if keyed {
		bk := &s.lineKeys
		if err := b.sh.bf.readKeysInto(b, bk, true); err != nil {
			s.err = err
			return
		}
		s.bk = bk
		s.kb.Keys = bk.keys
		s.kb.ExTS = grow(s.exTS, len(bk.keys))
		s.kb.Ex = grow(s.ex, len(bk.keys))
		s.exTS, s.ex = s.kb.ExTS, s.kb.Ex
		clear(s.kb.Ex)
		for k := range s.kb.ExTS {
			s.kb.ExTS[k] = math.MinInt64
		}
		return
	}
	clear(s.local)
	if s.local == nil {
		s.local = map[string]uint32{}
	}
}

// add takes line i of the block (time ts; text l, or nil when the line
// was not read).
func (s *keyScan) add(i int, ts int64, l *storedLine) {
	if s.err != nil {
		return
	}
	var k uint32
	if s.bk != nil {
		k = s.bk.line[i]
	} else {
		if l == nil {
			s.err = fmt.Errorf("block %d: line %d without its text (a bug)", s.b.seq, i)
			return
		}
		s.buf = s.mk.MaskKey(s.buf[:0], l.Line)
		var ok bool
		if k, ok = s.local[string(s.buf)]; !ok {
			k = uint32(len(s.kb.Keys))
			key := string(s.buf)
			s.local[key] = k
			s.kb.Keys = append(s.kb.Keys, key)
			s.kb.ExTS = append(s.kb.ExTS, math.MinInt64)
			s.kb.Ex = append(s.kb.Ex, "")
		}
	}
	s.kb.Lines = append(s.kb.Lines, k)
	s.kb.LineTS = append(s.kb.LineTS, ts)
	s.matched = append(s.matched, int32(i))
	if l != nil {
		s.textKnown = true
		if ts < s.kb.ExTS[k] {
			return
		}
		t := cutKeyExample(l.Line)
		if newerExample(ts, t, s.kb.ExTS[k], s.kb.Ex[k]) {
			s.kb.ExTS[k], s.kb.Ex[k] = ts, strings.Clone(t)
		}
		return
	}
	s.kb.ExTS[k] = max(s.kb.ExTS[k], ts)
}

// flush hands over the block gathered, if any.
func (s *keyScan) flush() {
	if s.b == nil {
		return
	}
	b := s.b
	s.b = nil
	if s.err != nil || len(s.matched) == 0 {
		return
	}
	if s.bk != nil && !s.textKnown {
		s.examples(b)
		if s.err != nil {
			return
		}
	}
	s.each(s.w, &s.kb)
	if s.bk != nil && s.bk.err != nil {
		s.err = s.bk.err
	}
}

// examples chooses the examples of the keys of a block read without its
// text: a key's stored example when it is among the matching lines and
// as new as the newest of them (it is then the smallest of those),
// otherwise from the block's text.
func (s *keyScan) examples(b *block) {
	bk := s.bk
	isMatched := make([]bool, b.n())
	for _, i := range s.matched {
		isMatched[i] = true
	}
	fixed := make([]bool, len(bk.keys))
	var need bool
	for k, ts := range s.kb.ExTS {
		if ts == math.MinInt64 {
			continue
		}
		if isMatched[bk.exLine[k]] && bk.exTS[k] == ts {
			fixed[k] = true // read only when asked for (ExOf)
			continue
		}
		s.kb.ExTS[k] = math.MinInt64 // chosen below
		need = true
	}
	exs := s.kb.Ex
	s.kb.Ex = nil
	s.kb.ExOf = func(k int) string {
		if fixed[k] {
			return bk.example(k)
		}
		return exs[k]
	}
	if !need {
		return
	}
	lines, err := s.text.read(b)
	if err != nil {
		s.err = err
		return
	}
	for j, i := range s.matched {
		k := s.kb.Lines[j]
		if fixed[k] {
			continue
		}
		ts, t := s.kb.LineTS[j], cutKeyExample(lines[i].Line)
		if newerExample(ts, t, s.kb.ExTS[k], exs[k]) {
			s.kb.ExTS[k], exs[k] = ts, strings.Clone(t)
		}
	}
}

// MasksKeys says whether ScanKeys is available: the index has a Masker.
func (ix *Index) MasksKeys() bool { return ix.cfg.Masker != nil }
