package index

import (
	"bufio"
	"bytes"
	"cmp"
	"container/list"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"maps"
	"math"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"unique"
	"unsafe"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
)

// The block store.
//
// Lines are kept in blocks: up to Config.BlockLines consecutive lines of
// one file that fall in one time shard. A shard's blocks are appended to
// its file blocks.dat, one record each:
//
//	u32 body length | u32 CRC-32C of body | body
//	body: uvarint seq | host | source | source name | file id (uvarint
//	      length + bytes each) | uvarint n | varint first offset | varint
//	      last offset | n × varint ts delta | n × level code | cover |
//	      uvarint raw payload length | S2-compressed payload
//	      (the source name is followed by NUL and the Kafka partition,
//	      blockInfo.Part, when the lines came through Kafka: every layout
//	      carries it the same way, and a name holds no NUL)
//	cover (files that start with blockMagic2 only): uvarint runs |
//	      per run varint start - first offset, uvarint length
//
// Files that start with blockMagic3 or blockMagic4 (every new shard) lay the body out as
// version 2 up to the cover, but for the times, which are a byte e and
// then the deltas over 10^e ns (times written to the second or the
// millisecond take that unit), then:
//
//	uvarint Bloom filter length | Bloom filter of the block's parts with
//	a digit (terms.go) | uvarint raw payload length | uvarint length of
//	the rows frame | uvarint columns | per column: name | kind | uvarint
//	frame length | the payload: the rows frame, each column's frame, the
//	text frame
//
// Files that start with blockMagic5 add, after the column directory,
//
//	uvarint length of the keys frames (0: none) | when not 0, uvarint
//	mask version | uvarint length of the first (the table)
//
// and the keys frames (keys.go: each line's masked form, for patterns)
// between the columns' frames and the text frame.
//
// Each frame is zstd. The rows are, per line, the read time (a delta
// from the line before's: lines read together share it), the offset
// delta and the flags; the columns are the lines' fields (see Columns
// below); the text frame holds all line lengths, then all line bytes.
// The text is read without the rest, one field without the text.
// Reading a whole block puts the frames together in the raw layout of
// version 2 (the rows, then the columns as readColumns reads them, then
// the text).
//
// The cover is the byte ranges of the file the block's lines account for
// (pipeline.Record.End): maximal runs of lines each starting where the one
// before ended. Lines of unknown end are in no run. Files written before
// the cover existed start with blockMagic1 and keep that layout when
// appended to; their blocks have no cover.
//
// The payload of versions 1 and 2 (S2) holds the length of its per-line
// section (u32), that section (per line the read-time delta, the offset
// delta, flags, fields and numbers), then all line lengths, then all line
// bytes (text together compresses best; a check of the text alone skips
// the per-line section). Their blocks keep everything but the payload in
// memory (about 9 bytes per line); a version-3 block keeps its header
// only (time bounds, level counts, where its parts are, the column
// directory) and reads its times and levels when asked (block.times), so
// counts and histograms of whole blocks and the choice of blocks to read
// need no disk access.
//
// The file is the truth; Bleve (one document per block, see doc.go) only
// finds candidate blocks. A record is fsynced before its Bleve document is
// written; after a crash, blocks beyond the sequence number Bleve last
// recorded are indexed again, and a torn record at the end is cut off.

const blockFileName = "blocks.dat"

var (
	blockMagic1 = []byte("LOGBOXB1")
	blockMagic2 = []byte("LOGBOXB2") // adds the cover
	blockMagic3 = []byte("LOGBOXB3") // adds the Bloom filter; zstd frames
	// blockMagic4: the body of version 3; the block's Bleve document
	// holds CJK runs as bigrams (terms.go), so a query may narrow its
	// blocks by them (see blockQuery).
	blockMagic4 = []byte("LOGBOXB4")
	// blockMagic5: adds the keys frame (patterns, see keys.go).
	blockMagic5 = []byte("LOGBOXB5")
)

// blockVersionNewest is the layout a new block file gets.
const blockVersionNewest = 5

// blockMagics are the magics of layouts 1 to blockVersionNewest.
var blockMagics = [...][]byte{blockMagic1, blockMagic2, blockMagic3, blockMagic4, blockMagic5}

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// levelNames are the levels Level and NormalizeLevel return, by code.
var levelNames = [...]string{"", "ERROR", "WARN", "INFO", "DEBUG"}

func levelCode(s string) uint8 {
	for i, n := range levelNames {
		if n == s {
			return uint8(i)
		}
	}
	return 0
}

// block is what memory holds of one block.
type block struct {
	sh                *shard
	seq               uint64
	info              *blockInfo
	minTS, maxTS      int64
	firstOff, lastOff int64
	nLines            int32
	// ts and levels are the lines' times and level codes, held in memory
	// for blocks of layout 1 and 2 only; layout 3 reads them from the
	// record when asked (times), so that memory holds a few bytes per
	// block, not per line.
	ts      []int64
	levels  []uint8
	lvCount [len(levelNames)]uint32 // lines per level code
	// Layout 3: the times and levels are tsLen bytes at tsPos in the
	// block file.
	tsPos  int64
	tsLen  int32
	pos    int64 // of the payload in the shard's block file
	clen   int32 // compressed payload length
	rawLen int32
	// cover is the byte ranges of the file the lines account for (see
	// the file layout above); nil when unknown.
	cover []span
	// version is the layout of the block's record (its file's).
	version uint8
	// Version 3: secClen is the compressed length of the frame of the
	// rows (per line: read time, offset, flags), the columns' frames
	// follow it, then the text's; the Bloom filter is bloomLen bytes at
	// bloomPos in the block file.
	secClen  int32
	bloomPos int64
	bloomLen int32
	// cols is the directory of the block's columns; the text's frame
	// starts textOff bytes into the payload.
	cols    []colDir
	textOff int32
	// Layout 5: the keys frames (keys.go) are keysClen bytes at keysOff
	// from the start of the payload (0: the block has none), the first
	// (the table) keysTab bytes, the keys masked by the rules of version
	// maskVer.
	keysOff, keysClen, keysTab int32
	maskVer                    uint32
	// terms are the block's terms from encodeBlock until its Bleve
	// document is written (nil once read back from the file).
	terms *blockTerms
}

// span is a byte range [From, To) of a file.
type span struct{ From, To int64 }

// coverOf returns the runs of lines (sorted by offset) whose byte ranges
// follow each other without a hole; lines of unknown end are left out.
func coverOf(lines []storedLine) []span {
	var out []span
	for i := range lines {
		l := &lines[i]
		if l.End <= l.Offset {
			continue
		}
		if n := len(out); n > 0 && l.Offset <= out[n-1].To {
			out[n-1].To = max(out[n-1].To, l.End)
			continue
		}
		out = append(out, span{l.Offset, l.End})
	}
	return out
}

func (b *block) n() int { return int(b.nLines) }

// times returns the lines' times and level codes: from memory (layout 1
// and 2), else from the record, through the shard's cache.
func (b *block) times() ([]int64, []uint8, error) {
	if b.ts != nil {
		return b.ts, b.levels, nil
	}
	return b.sh.times.get(b)
}

// readTimes reads the times and levels of a layout-3 block.
func (bf *blockFile) readTimes(b *block) ([]int64, []uint8, error) {
	buf := make([]byte, b.tsLen)
	if _, err := bf.f.ReadAt(buf, b.tsPos); err != nil {
		return nil, nil, fmt.Errorf("read times of block %d: %w", b.seq, err)
	}
	r := &bodyReader{b: buf}
	ts := make([]int64, b.n())
	unit := r.tsUnit(int(b.version))
	prev := int64(0)
	for i := range ts {
		prev += r.varint() * unit
		ts[i] = prev
	}
	levels := r.bytes(b.n())
	if r.err != nil {
		return nil, nil, fmt.Errorf("times of block %d: %w", b.seq, r.err)
	}
	return ts, levels, nil
}

// tsUnit returns the largest e <= 9 such that every time in ts is a
// whole number of 10^e ns.
func tsUnit(ts []int64) int {
	e := 9
	for _, t := range ts {
		for e > 0 && t%int64(pow10[e]) != 0 {
			e--
		}
		if e == 0 {
			break
		}
	}
	return e
}

// tsUnit reads the unit of a block's times (layout 3; 1 ns before).
func (r *bodyReader) tsUnit(version int) int64 {
	if version < 3 {
		return 1
	}
	e := r.bytes(1)
	if len(e) != 1 || int(e[0]) >= len(pow10) {
		r.err = errCorrupt
		return 1
	}
	return int64(pow10[e[0]])
}

// timesCache keeps the times and levels of recently read layout-3 blocks.
type timesCache struct {
	mu  sync.Mutex
	max int
	ll  *list.List
	m   map[*block]*list.Element
}

type timesEntry struct {
	b      *block
	ts     []int64
	levels []uint8
}

func newTimesCache(max int) *timesCache {
	return &timesCache{max: max, ll: list.New(), m: map[*block]*list.Element{}}
}

func (c *timesCache) get(b *block) ([]int64, []uint8, error) {
	c.mu.Lock()
	if e, ok := c.m[b]; ok {
		c.ll.MoveToFront(e)
		te := e.Value.(*timesEntry)
		c.mu.Unlock()
		return te.ts, te.levels, nil
	}
	c.mu.Unlock()
	ts, levels, err := b.sh.bf.readTimes(b)
	if err != nil {
		return nil, nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[b]; !ok {
		c.m[b] = c.ll.PushFront(&timesEntry{b: b, ts: ts, levels: levels})
		for c.ll.Len() > c.max {
			e := c.ll.Back()
			c.ll.Remove(e)
			delete(c.m, e.Value.(*timesEntry).b)
		}
	}
	return ts, levels, nil
}

// encodeBlock lays out lines (sorted by offset, all of info's file) as a
// record body, in the layout of block file version (1 to 5), and the
// block's in-memory part. pos is filled in by the writer. With mk (and
// layout 5), the block gets its keys frame.
func encodeBlock(seq uint64, info *blockInfo, lines []storedLine, version int, mk Masker) ([]byte, *block) {
	n := len(lines)
	b := &block{seq: seq, info: info, ts: make([]int64, n), levels: make([]uint8, n), version: uint8(version), nLines: int32(n),
		firstOff: lines[0].Offset, lastOff: lines[n-1].Offset, minTS: math.MaxInt64, maxTS: math.MinInt64}
	var sec []byte
	prevOff, prevIng := b.firstOff, int64(0)
	for i := range lines {
		l := &lines[i]
		b.ts[i] = l.TS
		b.levels[i] = levelCode(l.Level)
		b.lvCount[b.levels[i]]++
		b.minTS = min(b.minTS, l.TS)
		b.maxTS = max(b.maxTS, l.TS)
		if version >= 3 {
			sec = binary.AppendVarint(sec, l.Ingested-prevIng)
			prevIng = l.Ingested
		} else {
			sec = binary.AppendVarint(sec, l.Ingested-l.TS)
		}
		sec = binary.AppendVarint(sec, l.Offset-prevOff)
		prevOff = l.Offset
		sec = binary.AppendUvarint(sec, uint64(len(l.Flags)))
		for _, f := range l.Flags {
			sec = appendStr(sec, f)
		}
		if version >= 3 {
			continue // fields and numbers go by column, below
		}
		sec = binary.AppendUvarint(sec, uint64(len(l.Fields)))
		for _, f := range l.Fields {
			sec = appendStr(sec, f.K)
			sec = appendStr(sec, f.V)
		}
		sec = binary.AppendUvarint(sec, uint64(len(l.Nums)))
		for _, f := range l.Nums {
			sec = appendStr(sec, f.K)
			sec = binary.LittleEndian.AppendUint64(sec, math.Float64bits(f.V))
		}
	}
	size := 0
	for i := range lines {
		size += len(lines[i].Line)
	}
	text := make([]byte, 0, size+2*n)
	for i := range lines {
		text = binary.AppendUvarint(text, uint64(len(lines[i].Line)))
	}
	for i := range lines {
		text = append(text, lines[i].Line...)
	}
	b.rawLen = int32(4 + len(sec) + len(text))

	body := make([]byte, 0, 64+n*4+len(text)/4)
	body = binary.AppendUvarint(body, seq)
	body = appendStr(body, info.Host)
	body = appendStr(body, info.Source)
	body = appendStr(body, joinSourceName(info))
	body = appendStr(body, info.FileID)
	body = binary.AppendUvarint(body, uint64(n))
	body = binary.AppendVarint(body, b.firstOff)
	body = binary.AppendVarint(body, b.lastOff)
	b.tsPos = int64(len(body))
	unit := int64(1)
	if version >= 3 {
		// Times written to the second or the millisecond are stored in
		// that unit: a byte e, then the deltas over 10^e ns.
		e := tsUnit(b.ts)
		body = append(body, byte(e))
		unit = int64(pow10[e])
	}
	prev := int64(0)
	for _, t := range b.ts {
		body = binary.AppendVarint(body, (t-prev)/unit)
		prev = t
	}
	body = append(body, b.levels...)
	b.tsLen = int32(int64(len(body)) - b.tsPos)
	if version >= 2 {
		b.cover = coverOf(lines)
		body = binary.AppendUvarint(body, uint64(len(b.cover)))
		for _, c := range b.cover {
			body = binary.AppendVarint(body, c.From-b.firstOff)
			body = binary.AppendUvarint(body, uint64(c.To-c.From))
		}
	}
	if version < 3 {
		raw := make([]byte, 4, b.rawLen)
		binary.LittleEndian.PutUint32(raw, uint32(len(sec)))
		raw = append(append(raw, sec...), text...)
		body = binary.AppendUvarint(body, uint64(len(raw)))
		head := len(body)
		body = append(body, s2.EncodeBetter(nil, raw)...)
		b.clen = int32(len(body) - head)
		// pos is relative to the body until the writer knows where it lands.
		b.pos = int64(head)
		return body, b
	}
	b.terms = termsOf(lines)
	bl := makeBloom(b.terms.hashes)
	body = binary.AppendUvarint(body, uint64(len(bl)))
	b.bloomPos, b.bloomLen = int64(len(body)), int32(len(bl))
	body = append(body, bl...)
	// The frames: rows, each column, text; the directory says where.
	cols := columnsOf(lines)
	frames := make([][]byte, 0, 2+len(cols))
	frames = append(frames, zstdEncode(sec))
	colsRaw := uvarintLen(uint64(len(cols)))
	for _, c := range cols {
		cb := appendColumnBody(nil, c)
		colsRaw += uvarintLen(uint64(len(c.name))) + len(c.name) + 1 + len(cb)
		frames = append(frames, zstdEncode(cb))
	}
	b.rawLen = int32(4 + len(sec) + colsRaw + len(text))
	body = binary.AppendUvarint(body, uint64(b.rawLen))
	body = binary.AppendUvarint(body, uint64(len(frames[0])))
	body = binary.AppendUvarint(body, uint64(len(cols)))
	off := int32(len(frames[0]))
	for i, c := range cols {
		body = appendStr(body, c.name)
		body = append(body, c.kind)
		body = binary.AppendUvarint(body, uint64(len(frames[1+i])))
		// The name is often a substring of a line, whose memory the
		// block would keep for as long as it is open: keep a copy.
		b.cols = append(b.cols, colDir{name: unique.Make(c.name).Value(), kind: c.kind, off: off, clen: int32(len(frames[1+i]))})
		off += int32(len(frames[1+i]))
	}
	var keys []byte
	if version >= 5 {
		if mk != nil {
			table, exs := appendKeys(nil, nil, lines, mk, b.minTS)
			// The table is S2: read for every block a pattern query
			// counts whole, where zstd's decoding took most of the time.
			keys = s2.EncodeBetter(nil, table)
			b.keysTab = int32(len(keys))
			keys = zstdAppend(keys, exs)
		}
		body = binary.AppendUvarint(body, uint64(len(keys)))
		if len(keys) > 0 {
			b.maskVer = mk.MaskVersion()
			body = binary.AppendUvarint(body, uint64(b.maskVer))
			body = binary.AppendUvarint(body, uint64(b.keysTab))
		}
		b.keysOff, b.keysClen = off, int32(len(keys))
		off += int32(len(keys))
	}
	head := len(body)
	for _, f := range frames {
		body = append(body, f...)
	}
	body = append(body, keys...)
	body = zstdAppend(body, text)
	b.secClen, b.textOff = int32(len(frames[0])), off
	b.clen = int32(len(body) - head)
	b.pos = int64(head)
	return body, b
}

func uvarintLen(v uint64) int {
	n := 1
	for ; v >= 0x80; v >>= 7 {
		n++
	}
	return n
}

// Columns (layout version 3): the fields and numbers of a block's lines,
// one column per name and kind, sorted by name, each its own zstd frame,
// so that a value lies next to the values of the same field in other
// lines (they compress together) and one field is read without the
// others or the text (readColumn). A column's frame holds
//
//	n × uvarint values of the line | the values (strings as appendStr,
//	numbers as appendDecimal)
//
// and the block's directory (in the record body) its name, kind and
// compressed length. A whole read puts them
// together, after the rows, as
//
//	uvarint columns | per column: name | kind | its frame's content
//
// Kinds: 0 keyword, 1 number, 2 keyword whose values are also the line's
// numbers of that name (a number column its keyword column spells out is
// not stored).
//
// for readColumns. Lines get their fields back in column order, which
// is the order they were stored in (by name, array values in turn).

// Column kinds.
const (
	colKeyword uint8 = iota // strings
	colNumber               // numbers
	// colBoth: strings that are also the line's numbers of that name
	// (number(s) of each): a field such as rt=0.961 is stored once.
	colBoth
)

type column struct {
	name   string
	kind   uint8
	counts []uint32
	strs   []string
	nums   []float64
}

// columnsOf returns the columns of lines, sorted by name and kind.
func columnsOf(lines []storedLine) []*column {
	type ck struct {
		name string
		kind uint8
	}
	cols := map[ck]*column{}
	get := func(name string, kind uint8) *column {
		c := cols[ck{name, kind}]
		if c == nil {
			c = &column{name: name, kind: kind, counts: make([]uint32, len(lines))}
			cols[ck{name, kind}] = c
		}
		return c
	}
	// Lines of one format name the same fields in the same order: the
	// column of a line's j-th field is most often the line before's.
	var prevF, prevN []*column
	for i := range lines {
		for j, f := range lines[i].Fields {
			c := sameColumn(&prevF, j, f.K, colKeyword, get)
			c.counts[i]++
			c.strs = append(c.strs, f.V)
		}
		for j, f := range lines[i].Nums {
			c := sameColumn(&prevN, j, f.K, colNumber, get)
			c.counts[i]++
			c.nums = append(c.nums, f.V)
		}
	}
	// A number column that its keyword column spells out is dropped.
	for k, nc := range cols {
		if k.kind != colNumber {
			continue
		}
		kc := cols[ck{k.name, colKeyword}]
		if kc == nil || !slices.Equal(kc.counts, nc.counts) {
			continue
		}
		same := true
		for j, v := range kc.strs {
			if f, ok := number(v); !ok || f != nc.nums[j] || math.Signbit(f) != math.Signbit(nc.nums[j]) {
				same = false
				break
			}
		}
		if same {
			kc.kind = colBoth
			delete(cols, k)
		}
	}
	return slices.SortedFunc(maps.Values(cols), func(a, b *column) int {
		return cmp.Or(strings.Compare(a.name, b.name), cmp.Compare(a.kind, b.kind))
	})
}

// sameColumn returns the column of a line's j-th field (name, kind):
// prev's j-th when it has that name, else get's, which then becomes
// prev's j-th.
func sameColumn(prev *[]*column, j int, name string, kind uint8, get func(string, uint8) *column) *column {
	p := *prev
	if j < len(p) && p[j].name == name {
		return p[j]
	}
	c := get(name, kind)
	if j < len(p) {
		p[j] = c
	} else {
		*prev = append(p, c)
	}
	return c
}

// appendColumnBody appends the part of a column after its name and kind:
// the count of values of each line, then the values.
func appendColumnBody(dst []byte, c *column) []byte {
	for _, n := range c.counts {
		dst = binary.AppendUvarint(dst, uint64(n))
	}
	for _, v := range c.strs {
		dst = appendStr(dst, v)
	}
	for _, v := range c.nums {
		dst = appendDecimal(dst, v)
	}
	return dst
}

// colDir is where a layout-3 block keeps one column: its zstd frame is
// clen bytes at off from the start of the block's payload.
type colDir struct {
	name      string
	kind      uint8
	off, clen int32
}

// readColumns reads what appendColumns wrote into lines' Fields and Nums
// (the strings share r's memory).
func readColumns(r *bodyReader, lines []storedLine) error {
	ncols := r.uvarint()
	if r.err != nil || ncols > uint64(len(r.b)) {
		return errCorrupt
	}
	nf, nn := make([]int, len(lines)), make([]int, len(lines)) // per line: fields and numbers
	type colRef struct {
		name   string
		kind   uint8
		counts []uint32
		at     int // start of the values in r
	}
	refs := make([]colRef, 0, ncols)
	for range ncols {
		c := colRef{name: r.str(true), counts: make([]uint32, len(lines))}
		if kind := r.bytes(1); len(kind) == 1 && kind[0] <= colBoth {
			c.kind = kind[0]
		} else {
			return errCorrupt
		}
		total := 0
		for i := range lines {
			c.counts[i] = uint32(r.uvarint())
			total += int(c.counts[i])
			if c.kind != colKeyword {
				nn[i] += int(c.counts[i])
			}
			if c.kind != colNumber {
				nf[i] += int(c.counts[i])
			}
		}
		if r.err != nil || total > len(r.b) {
			return errCorrupt
		}
		c.at = r.i
		for range total {
			if c.kind == colNumber {
				r.num()
			} else {
				r.str(true)
			}
		}
		if r.err != nil {
			return r.err
		}
		refs = append(refs, c)
	}
	sumF, sumN := 0, 0
	for i := range lines {
		sumF += nf[i]
		sumN += nn[i]
	}
	kvs, kns := make([]kv, sumF), make([]kn, sumN)
	// Each line's slices, filled column by column.
	at := 0
	for i := range lines {
		if nf[i] > 0 {
			lines[i].Fields = kvs[at : at : at+nf[i]]
		}
		at += nf[i]
	}
	at = 0
	for i := range lines {
		if nn[i] > 0 {
			lines[i].Nums = kns[at : at : at+nn[i]]
		}
		at += nn[i]
	}
	for _, c := range refs {
		cr := &bodyReader{b: r.b, i: c.at}
		for i := range lines {
			for range c.counts[i] {
				switch c.kind {
				case colNumber:
					lines[i].Nums = append(lines[i].Nums, kn{K: c.name, V: cr.num()})
				case colKeyword:
					lines[i].Fields = append(lines[i].Fields, kv{K: c.name, V: cr.str(true)})
				case colBoth:
					v := cr.str(true)
					f, _ := number(v)
					lines[i].Fields = append(lines[i].Fields, kv{K: c.name, V: v})
					lines[i].Nums = append(lines[i].Nums, kn{K: c.name, V: f})
				}
			}
		}
		if cr.err != nil {
			return cr.err
		}
	}
	return nil
}

// pow10 are the scales appendDecimal tries.
var pow10 = [...]float64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9}

// appendDecimal appends v as a decimal when it is one with few digits (a
// byte e < 10 and the varint of v × 10^e: 0.961 takes 3 bytes, and
// compresses like the text it came from), else as the byte 0xff and its
// 8 bytes.
func appendDecimal(b []byte, v float64) []byte {
	for e, p := range pow10 {
		m := v * p
		if m >= -(1<<53) && m <= 1<<53 && m == math.Trunc(m) && float64(int64(m))/p == v && !(v == 0 && math.Signbit(v)) {
			b = append(b, byte(e))
			return binary.AppendVarint(b, int64(m))
		}
	}
	b = append(b, 0xff)
	return binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
}

// num reads a number appendDecimal wrote.
func (r *bodyReader) num() float64 {
	e := r.bytes(1)
	if r.err != nil {
		return 0
	}
	if e[0] == 0xff {
		bits := r.bytes(8)
		if r.err != nil {
			return 0
		}
		return math.Float64frombits(binary.LittleEndian.Uint64(bits))
	}
	if int(e[0]) >= len(pow10) {
		r.err = errCorrupt
		return 0
	}
	return float64(r.varint()) / pow10[e[0]]
}

func appendStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

var errCorrupt = errors.New("corrupt block record")

// bodyReader decodes a record body.
type bodyReader struct {
	b   []byte
	i   int
	err error
}

func (r *bodyReader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b[r.i:])
	r.advance(n)
	return v
}

func (r *bodyReader) varint() int64 {
	v, n := binary.Varint(r.b[r.i:])
	r.advance(n)
	return v
}

// advance moves past a varint of n bytes; n <= 0 (binary's error) marks
// the body corrupt and ends it.
func (r *bodyReader) advance(n int) {
	if n <= 0 {
		r.err = errCorrupt
		r.i = len(r.b)
		return
	}
	r.i += n
}

func (r *bodyReader) bytes(n int) []byte {
	if n < 0 || r.i+n > len(r.b) {
		r.err = errCorrupt
		r.i = len(r.b)
		return nil
	}
	s := r.b[r.i : r.i+n]
	r.i += n
	return s
}

// str returns the next string; with alias, it shares r.b's memory.
func (r *bodyReader) str(alias bool) string {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.err = errCorrupt
		return ""
	}
	s := r.bytes(int(n))
	if len(s) == 0 {
		return ""
	}
	if alias {
		return unsafe.String(&s[0], len(s))
	}
	return string(s)
}

// decodeMeta reads the in-memory part of a block from its body, in the
// layout of block file version; bodyPos is where the body starts in the
// file.
func decodeMeta(body []byte, bodyPos int64, version int, intern func(blockInfo) *blockInfo) (*block, error) {
	r := &bodyReader{b: body}
	b := &block{seq: r.uvarint()}
	info := blockInfo{Host: r.str(false), Source: r.str(false), SourceName: r.str(false), FileID: r.str(false)}
	info.SourceName, info.Part = splitSourceName(info.SourceName)
	n := r.uvarint()
	if r.err != nil || n == 0 || n > uint64(len(body)) {
		return nil, errCorrupt
	}
	b.info = intern(info)
	b.firstOff, b.lastOff = r.varint(), r.varint()
	b.nLines = int32(n)
	b.tsPos = bodyPos + int64(r.i)
	ts := make([]int64, n)
	b.minTS, b.maxTS = math.MaxInt64, math.MinInt64
	unit := r.tsUnit(version)
	prev := int64(0)
	for i := range ts {
		prev += r.varint() * unit
		ts[i] = prev
		b.minTS = min(b.minTS, prev)
		b.maxTS = max(b.maxTS, prev)
	}
	levels := r.bytes(int(n))
	for _, c := range levels {
		b.lvCount[c%uint8(len(levelNames))]++
	}
	b.tsLen = int32(bodyPos + int64(r.i) - b.tsPos)
	if version < 3 {
		b.ts, b.levels = ts, append([]uint8(nil), levels...)
	}
	if version >= 2 {
		runs := r.uvarint()
		if runs > n {
			return nil, errCorrupt
		}
		if runs > 0 {
			b.cover = make([]span, runs)
			for i := range b.cover {
				from := b.firstOff + r.varint()
				b.cover[i] = span{from, from + int64(r.uvarint())}
			}
		}
	}
	b.version = uint8(version)
	if version >= 3 {
		bl := int(r.uvarint())
		b.bloomPos, b.bloomLen = bodyPos+int64(r.i), int32(bl)
		r.bytes(bl)
	}
	b.rawLen = int32(r.uvarint())
	if version >= 3 {
		b.secClen = int32(r.uvarint())
		ncols := r.uvarint()
		if ncols > uint64(len(body)) {
			return nil, errCorrupt
		}
		off := b.secClen
		for range ncols {
			c := colDir{name: unique.Make(r.str(true)).Value(), off: off}
			if k := r.bytes(1); len(k) == 1 && k[0] <= colBoth {
				c.kind = k[0]
			} else {
				return nil, errCorrupt
			}
			c.clen = int32(r.uvarint())
			off += c.clen
			b.cols = append(b.cols, c)
		}
		if version >= 5 {
			b.keysOff, b.keysClen = off, int32(r.uvarint())
			if b.keysClen > 0 {
				b.maskVer = uint32(r.uvarint())
				b.keysTab = int32(r.uvarint())
				if b.keysTab <= 0 || b.keysTab > b.keysClen {
					return nil, errCorrupt
				}
			}
			off += b.keysClen
		}
		b.textOff = off
	}
	if r.err != nil {
		return nil, r.err
	}
	b.pos = bodyPos + int64(r.i)
	b.clen = int32(len(body) - r.i)
	if b.secClen < 0 || b.keysClen < 0 || b.textOff < b.secClen || b.textOff > b.clen || b.rawLen < 4 {
		return nil, errCorrupt
	}
	return b, nil
}

// decodeLines decodes the payload raw (decompressed) of b. The strings
// share raw's memory.
func decodeLines(b *block, raw []byte) ([]storedLine, error) {
	n := b.n()
	lines := make([]storedLine, n)
	if len(raw) < 4 {
		return nil, errCorrupt
	}
	bts, blevels, err := b.times()
	if err != nil {
		return nil, err
	}
	r := &bodyReader{b: raw, i: 4}
	off, ing := b.firstOff, int64(0)
	var kvs []kv
	var kns []kn
	var flags []string
	type span struct{ f, fe, k, ke, nm, nme int }
	spans := make([]span, n)
	for i := range lines {
		l := &lines[i]
		l.TS = bts[i]
		l.Level = levelNames[blevels[i]%uint8(len(levelNames))]
		if b.version >= 3 {
			ing += r.varint()
			l.Ingested = ing
		} else {
			l.Ingested = l.TS + r.varint()
		}
		off += r.varint()
		l.Offset = off
		sp := &spans[i]
		sp.f = len(flags)
		for range r.uvarint() {
			flags = append(flags, r.str(true))
		}
		sp.fe = len(flags)
		if b.version >= 3 {
			continue // fields and numbers come by column, below
		}
		sp.k = len(kvs)
		for range r.uvarint() {
			k := r.str(true)
			kvs = append(kvs, kv{K: k, V: r.str(true)})
			if r.err != nil {
				return nil, r.err
			}
		}
		sp.ke = len(kvs)
		sp.nm = len(kns)
		for range r.uvarint() {
			k := r.str(true)
			bits := r.bytes(8)
			if r.err != nil {
				return nil, r.err
			}
			kns = append(kns, kn{K: k, V: math.Float64frombits(binary.LittleEndian.Uint64(bits))})
		}
		sp.nme = len(kns)
		if r.err != nil {
			return nil, r.err
		}
	}
	if b.version >= 3 {
		if err := readColumns(r, lines); err != nil {
			return nil, err
		}
	}
	for i := range lines {
		if sp := spans[i]; sp.fe > sp.f {
			lines[i].Flags = flags[sp.f:sp.fe:sp.fe]
		}
		if b.version >= 3 {
			continue
		}
		if sp := spans[i]; sp.ke > sp.k {
			lines[i].Fields = kvs[sp.k:sp.ke:sp.ke]
		}
		if sp := spans[i]; sp.nme > sp.nm {
			lines[i].Nums = kns[sp.nm:sp.nme:sp.nme]
		}
	}
	lens := make([]int, n)
	for i := range lens {
		lens[i] = int(r.uvarint())
	}
	for i := range lines {
		s := r.bytes(lens[i])
		if r.err != nil {
			return nil, r.err
		}
		if len(s) > 0 {
			lines[i].Line = unsafe.String(&s[0], len(s))
		}
	}
	return lines, nil
}

// blockFile is a shard's blocks.dat.
type blockFile struct {
	mu      sync.Mutex // guards appends
	f       *os.File
	size    int64
	version int // layout of its records: 1 to 5 (see the top of this file)
}

// openBlockFile opens (creating) path and calls fn with every intact
// record, in order, and the file's layout version; a torn or corrupt tail
// is cut off. A new file gets layout newVersion (0: the newest).
func openBlockFile(path string, newVersion int, fn func(body []byte, bodyPos int64, version int) error) (*blockFile, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open block file: %w", err)
	}
	fail := func(err error) (*blockFile, error) {
		f.Close()
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		return fail(fmt.Errorf("stat block file: %w", err))
	}
	if newVersion <= 0 || newVersion > blockVersionNewest {
		newVersion = blockVersionNewest
	}
	if st.Size() < int64(len(blockMagic4)) {
		if err := f.Truncate(0); err != nil {
			return fail(fmt.Errorf("init block file: %w", err))
		}
		if _, err := f.WriteAt(blockMagics[newVersion-1], 0); err != nil {
			return fail(fmt.Errorf("init block file: %w", err))
		}
		if err := f.Sync(); err != nil {
			return fail(fmt.Errorf("init block file: %w", err))
		}
		return &blockFile{f: f, size: int64(len(blockMagic4)), version: newVersion}, nil
	}
	br := bufio.NewReaderSize(io.NewSectionReader(f, 0, st.Size()), 1<<20)
	magic := make([]byte, len(blockMagic2))
	version := 0
	if _, err := io.ReadFull(br, magic); err == nil {
		switch string(magic) {
		case string(blockMagic1):
			version = 1
		case string(blockMagic2):
			version = 2
		case string(blockMagic3):
			version = 3
		case string(blockMagic4):
			version = 4
		case string(blockMagic5):
			version = 5
		}
	}
	if version == 0 {
		return fail(fmt.Errorf("%s is not a logbox block file", path))
	}
	pos := int64(len(blockMagic2))
	var hdr [8]byte
	var body []byte
	for {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			break
		}
		n := binary.LittleEndian.Uint32(hdr[:4])
		if int64(n) > st.Size()-pos-8 {
			break
		}
		if cap(body) < int(n) {
			body = make([]byte, n)
		}
		body = body[:n]
		if _, err := io.ReadFull(br, body); err != nil {
			break
		}
		if crc32.Checksum(body, crcTable) != binary.LittleEndian.Uint32(hdr[4:]) {
			break
		}
		if err := fn(body, pos+8, version); err != nil {
			return fail(err)
		}
		pos += 8 + int64(n)
	}
	if pos < st.Size() {
		if err := f.Truncate(pos); err != nil {
			return fail(fmt.Errorf("cut torn end of block file: %w", err))
		}
	}
	return &blockFile{f: f, size: pos, version: version}, nil
}

// appendRecords writes bodies as records, fsyncs, and sets each block's
// pos to where its payload landed.
func (bf *blockFile) appendRecords(bodies [][]byte, blocks []*block) error {
	bf.mu.Lock()
	defer bf.mu.Unlock()
	total := 0
	for _, b := range bodies {
		total += 8 + len(b)
	}
	buf := make([]byte, 0, total)
	pos := bf.size
	for i, body := range bodies {
		buf = binary.LittleEndian.AppendUint32(buf, uint32(len(body)))
		buf = binary.LittleEndian.AppendUint32(buf, crc32.Checksum(body, crcTable))
		buf = append(buf, body...)
		blocks[i].pos += pos + 8
		if blocks[i].bloomLen > 0 {
			blocks[i].bloomPos += pos + 8
		}
		blocks[i].tsPos += pos + 8
		pos += 8 + int64(len(body))
	}
	if _, err := bf.f.WriteAt(buf, bf.size); err != nil {
		// Cut off whatever landed: the caller retries these lines.
		_ = bf.f.Truncate(bf.size)
		return fmt.Errorf("append blocks: %w", err)
	}
	if err := bf.f.Sync(); err != nil {
		_ = bf.f.Truncate(bf.size)
		return fmt.Errorf("sync blocks: %w", err)
	}
	bf.size = pos
	return nil
}

// readPayload reads and decompresses b's payload.
func (bf *blockFile) readPayload(b *block) ([]byte, error) {
	return bf.readPayloadInto(b, nil, nil)
}

// readPayloadInto is readPayload reusing comp and raw's memory.
func (bf *blockFile) readPayloadInto(b *block, comp, raw []byte) ([]byte, error) {
	if cap(comp) < int(b.clen) {
		comp = make([]byte, b.clen)
	}
	comp = comp[:b.clen]
	if _, err := bf.f.ReadAt(comp, b.pos); err != nil {
		return nil, fmt.Errorf("read block %d: %w", b.seq, err)
	}
	if cap(raw) < int(b.rawLen) {
		raw = make([]byte, 0, b.rawLen)
	}
	var err error
	if b.version >= 3 {
		raw = append(raw[:0], 0, 0, 0, 0)
		raw, err = zstdDecode(raw, comp[:b.secClen])
		if err == nil {
			raw = binary.AppendUvarint(raw, uint64(len(b.cols)))
			for _, c := range b.cols {
				if err != nil {
					break
				}
				raw = appendStr(raw, c.name)
				raw = append(raw, c.kind)
				raw, err = zstdDecode(raw, comp[c.off:c.off+c.clen])
			}
		}
		if err == nil {
			binary.LittleEndian.PutUint32(raw, uint32(len(raw)-4))
			raw, err = zstdDecode(raw, comp[b.textOff:])
		}
	} else {
		raw, err = s2.Decode(raw[:cap(raw)], comp)
	}
	if err == nil && len(raw) != int(b.rawLen) {
		err = errCorrupt
	}
	if err != nil {
		return nil, fmt.Errorf("decompress block %d: %w", b.seq, err)
	}
	return raw, nil
}

// readText reads and decompresses the line lengths and bytes of b (the
// payload after the per-line section), reusing comp and raw's memory.
func (bf *blockFile) readText(b *block, comp, raw []byte) (text, rawBuf []byte, err error) {
	if b.version < 3 {
		raw, err := bf.readPayloadInto(b, comp, raw)
		if err != nil {
			return nil, raw, err
		}
		at := 4 + int(binary.LittleEndian.Uint32(raw))
		if at > len(raw) {
			return nil, raw, errCorrupt
		}
		return raw[at:], raw, nil
	}
	tlen := b.clen - b.textOff
	if cap(comp) < int(tlen) {
		comp = make([]byte, tlen)
	}
	comp = comp[:tlen]
	if _, err := bf.f.ReadAt(comp, b.pos+int64(b.textOff)); err != nil {
		return nil, raw, fmt.Errorf("read block %d: %w", b.seq, err)
	}
	raw, err = zstdDecode(raw[:0], comp)
	if err != nil {
		return nil, raw, fmt.Errorf("decompress block %d: %w", b.seq, err)
	}
	return raw, raw, nil
}

// readBloom reads b's Bloom filter into buf (nil for a block without one).
func (bf *blockFile) readBloom(b *block, buf []byte) ([]byte, error) {
	if b.bloomLen == 0 {
		return nil, nil
	}
	if cap(buf) < int(b.bloomLen) {
		buf = make([]byte, b.bloomLen)
	}
	buf = buf[:b.bloomLen]
	if _, err := bf.f.ReadAt(buf, b.bloomPos); err != nil {
		return nil, fmt.Errorf("read Bloom filter of block %d: %w", b.seq, err)
	}
	return buf, nil
}

// textReader decodes only the text of blocks (with ts and level from
// memory), reusing its memory from block to block: what a check that
// reads nothing else needs. The lines it returns are valid until the next
// call.
type textReader struct {
	comp, raw, low []byte
	lines          []storedLine
}

func (t *textReader) read(b *block) ([]storedLine, error) {
	textPart, raw, err := b.sh.bf.readText(b, t.comp, t.raw)
	t.raw = raw
	if err != nil {
		return nil, err
	}
	r := &bodyReader{b: textPart}
	bts, blevels, err := b.times()
	if err != nil {
		return nil, err
	}
	n := b.n()
	if cap(t.lines) < n {
		t.lines = make([]storedLine, n)
	}
	lines := t.lines[:n]
	for i := range lines {
		lines[i] = storedLine{TS: bts[i], Level: levelNames[blevels[i]%uint8(len(levelNames))]}
		lines[i].Offset = int64(r.uvarint()) // the length, for now
	}
	// The text of all lines is contiguous: lowercase it in one go.
	text := textPart[r.i:]
	if cap(t.low) < len(text) {
		t.low = make([]byte, len(text))
	}
	low := t.low[:len(text)]
	lowerInto(low, unsafe.String(unsafe.SliceData(text), len(text)))
	at := 0
	for i := range lines {
		n := int(lines[i].Offset)
		s := r.bytes(n)
		if r.err != nil {
			return nil, r.err
		}
		lines[i].Offset = 0
		if len(s) > 0 {
			lines[i].Line = unsafe.String(&s[0], len(s))
		}
		lines[i].low = low[at : at+n : at+n]
		at += n
	}
	return lines, nil
}

// withLead marks the lines (of the last read) whose lowercased text
// contains lead, found with one search over the whole block's text.
func (t *textReader) withLead(lines []storedLine, lead []byte) []bool {
	marks := make([]bool, len(lines))
	low := t.low[:0]
	for i := range lines {
		low = low[:len(low)+len(lines[i].low)]
	}
	at, line, lineEnd := 0, 0, 0
	if len(lines) > 0 {
		lineEnd = len(lines[0].low)
	}
	for {
		k := bytes.Index(low[at:], lead)
		if k < 0 {
			return marks
		}
		at += k
		for line < len(lines) && at >= lineEnd {
			line++
			if line < len(lines) {
				lineEnd += len(lines[line].low)
			}
		}
		if line == len(lines) {
			return marks
		}
		if at+len(lead) <= lineEnd {
			marks[line] = true
		}
		at++
	}
}

// blockCache keeps recently decoded blocks (hits, context, replay checks).
type blockCache struct {
	mu  sync.Mutex
	max int
	ll  *list.List
	m   map[*block]*list.Element
}

type cacheEntry struct {
	b     *block
	lines []storedLine
}

func newBlockCache(max int) *blockCache {
	return &blockCache{max: max, ll: list.New(), m: map[*block]*list.Element{}}
}

func (c *blockCache) get(b *block) []storedLine {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[b]; ok {
		c.ll.MoveToFront(e)
		return e.Value.(*cacheEntry).lines
	}
	return nil
}

func (c *blockCache) put(b *block, lines []storedLine) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[b]; ok {
		return
	}
	c.m[b] = c.ll.PushFront(&cacheEntry{b: b, lines: lines})
	for c.ll.Len() > c.max {
		e := c.ll.Back()
		c.ll.Remove(e)
		delete(c.m, e.Value.(*cacheEntry).b)
	}
}

func (c *blockCache) forget(sh *shard) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for e := c.ll.Front(); e != nil; {
		next := e.Next()
		if ce := e.Value.(*cacheEntry); ce.b.sh == sh {
			c.ll.Remove(e)
			delete(c.m, ce.b)
		}
		e = next
	}
}

// zstd: an encoder and a decoder for the process (safe for concurrent
// use through EncodeAll and DecodeAll), at the fastest level: at 256 KiB
// blocks the better levels saved under 2% of the text and 9% of the
// per-line section, for twice the time.
var (
	zstdEnc, _ = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)), zstd.WithLowerEncoderMem(true))
	zstdDec, _ = zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(1<<30))
)

func zstdEncode(src []byte) []byte { return zstdEnc.EncodeAll(src, make([]byte, 0, len(src)/3+64)) }

func zstdAppend(dst, src []byte) []byte { return zstdEnc.EncodeAll(src, dst) }

func zstdDecode(dst, src []byte) ([]byte, error) { return zstdDec.DecodeAll(src, dst) }

// readColumn reads the keyword column name of a layout-3 block: the
// values of line i are strs[starts[i]:starts[i+1]]. A block without
// the column has no values (ok is still true); ok is false for a block
// of an older layout (read its lines instead).
func (bf *blockFile) readColumn(b *block, name string) (starts []int32, strs []string, ok bool, err error) {
	if b.version < 3 {
		return nil, nil, false, nil
	}
	i := slices.IndexFunc(b.cols, func(c colDir) bool { return c.name == name && c.kind != colNumber })
	if i < 0 {
		return make([]int32, b.n()+1), nil, true, nil
	}
	starts, r, err := bf.readColumnFrame(b, b.cols[i])
	if err != nil {
		return nil, nil, true, err
	}
	strs = make([]string, starts[b.n()])
	for j := range strs {
		strs[j] = r.str(true)
	}
	if r.err != nil {
		return nil, nil, true, fmt.Errorf("column %s of block %d: %w", name, b.seq, r.err)
	}
	return starts, strs, true, nil
}

// readFlags reads the flags of a layout-3 block's lines from its rows
// frame alone: the flags of line i are flags[starts[i]:starts[i+1]]; ok is
// false for a block of an older layout (read its lines instead).
func (bf *blockFile) readFlags(b *block) (starts []int32, flags []string, ok bool, err error) {
	if b.version < 3 {
		return nil, nil, false, nil
	}
	comp := make([]byte, b.secClen)
	if _, err := bf.f.ReadAt(comp, b.pos); err != nil {
		return nil, nil, true, fmt.Errorf("read rows of block %d: %w", b.seq, err)
	}
	raw, err := zstdDecode(nil, comp)
	if err != nil {
		return nil, nil, true, fmt.Errorf("decompress rows of block %d: %w", b.seq, err)
	}
	r := &bodyReader{b: raw}
	n := b.n()
	starts = make([]int32, n+1)
	for i := range n {
		r.varint() // read time
		r.varint() // offset
		k := r.uvarint()
		if k > uint64(len(raw)) {
			return nil, nil, true, fmt.Errorf("rows of block %d: %w", b.seq, errCorrupt)
		}
		for range k {
			flags = append(flags, r.str(true))
		}
		starts[i+1] = int32(len(flags))
	}
	if r.err != nil {
		return nil, nil, true, fmt.Errorf("rows of block %d: %w", b.seq, r.err)
	}
	return starts, flags, true, nil
}

// readColumnFrame reads and decompresses the frame of column c of b: the
// value ranges of its lines (values of line i are starts[i] to
// starts[i+1]) and a reader at its first value.
func (bf *blockFile) readColumnFrame(b *block, c colDir) ([]int32, *bodyReader, error) {
	n := b.n()
	starts := make([]int32, n+1)
	comp := make([]byte, c.clen)
	if _, err := bf.f.ReadAt(comp, b.pos+int64(c.off)); err != nil {
		return nil, nil, fmt.Errorf("read column %s of block %d: %w", c.name, b.seq, err)
	}
	raw, err := zstdDecode(nil, comp)
	if err != nil {
		return nil, nil, fmt.Errorf("decompress column %s of block %d: %w", c.name, b.seq, err)
	}
	r := &bodyReader{b: raw}
	for j := range n {
		starts[j+1] = starts[j] + int32(r.uvarint())
	}
	if r.err != nil || int(starts[n]) > len(raw) {
		return nil, nil, fmt.Errorf("column %s of block %d: %w", c.name, b.seq, errCorrupt)
	}
	return starts, r, nil
}

// readNumColumn reads the numbers of field name of a layout-3 block (its
// number column, or its keyword column when that spells the numbers): the
// numbers of line i are nums[starts[i]:starts[i+1]]. A block without them
// has none (ok is still true); ok is false for a block of an older layout
// (read its lines instead).
func (bf *blockFile) readNumColumn(b *block, name string) (starts []int32, nums []float64, ok bool, err error) {
	if b.version < 3 {
		return nil, nil, false, nil
	}
	i := slices.IndexFunc(b.cols, func(c colDir) bool { return c.name == name && c.kind != colKeyword })
	if i < 0 {
		return make([]int32, b.n()+1), nil, true, nil
	}
	c := b.cols[i]
	starts, r, err := bf.readColumnFrame(b, c)
	if err != nil {
		return nil, nil, true, err
	}
	nums = make([]float64, starts[b.n()])
	for j := range nums {
		if c.kind == colNumber {
			nums[j] = r.num()
		} else {
			nums[j], _ = number(r.str(true))
		}
	}
	if r.err != nil {
		return nil, nil, true, fmt.Errorf("column %s of block %d: %w", name, b.seq, r.err)
	}
	return starts, nums, true, nil
}

// joinSourceName is the source name field of a block's body: the name,
// then NUL and the partition when there is one (see the layout above).
func joinSourceName(info *blockInfo) string {
	if info.Part == "" {
		return info.SourceName
	}
	return info.SourceName + "\x00" + info.Part
}

// splitSourceName reads joinSourceName's field back.
func splitSourceName(s string) (name, part string) {
	name, part, _ = strings.Cut(s, "\x00")
	return name, part
}
