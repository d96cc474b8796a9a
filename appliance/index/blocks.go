package index

import (
	"bufio"
	"container/list"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"
	"sync"
	"unsafe"

	"github.com/klauspost/compress/s2"
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
//	cover (files that start with blockMagic2 only): uvarint runs |
//	      per run varint start - first offset, uvarint length
//
// The cover is the byte ranges of the file the block's lines account for
// (pipeline.Record.End): maximal runs of lines each starting where the one
// before ended. Lines of unknown end are in no run. Files written before
// the cover existed start with blockMagic1 and keep that layout when
// appended to; their blocks have no cover.
//
// The payload holds the length of its per-line section (u32), that section
// (per line the read-time delta, the offset delta, flags, fields and
// numbers), then all line lengths, then all line bytes (text together
// compresses best; a check of the text alone skips the per-line section). Everything but the payload is kept in memory
// for every block (about 9 bytes per line), so counts and histograms by
// time and level, and the choice of blocks to read, need no disk access.
//
// The file is the truth; Bleve (one document per block, see doc.go) only
// finds candidate blocks. A record is fsynced before its Bleve document is
// written; after a crash, blocks beyond the sequence number Bleve last
// recorded are indexed again, and a torn record at the end is cut off.

const blockFileName = "blocks.dat"

var (
	blockMagic1 = []byte("LOGBOXB1")
	blockMagic2 = []byte("LOGBOXB2") // adds the cover
)

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
	ts                []int64
	levels            []uint8
	pos               int64 // of the payload in the shard's block file
	clen              int32 // compressed payload length
	rawLen            int32
	// cover is the byte ranges of the file the lines account for (see
	// the file layout above); nil when unknown.
	cover []span
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

func (b *block) n() int { return len(b.ts) }

// encodeBlock lays out lines (sorted by offset, all of info's file) as a
// record body, in the layout of block file version (1 or 2), and the
// block's in-memory part. pos is filled in by the writer.
func encodeBlock(seq uint64, info *blockInfo, lines []storedLine, version int) ([]byte, *block) {
	n := len(lines)
	b := &block{seq: seq, info: info, ts: make([]int64, n), levels: make([]uint8, n),
		firstOff: lines[0].Offset, lastOff: lines[n-1].Offset, minTS: math.MaxInt64, maxTS: math.MinInt64}
	var raw []byte
	raw = append(raw, 0, 0, 0, 0) // length of the per-line section, below
	prevOff := b.firstOff
	for i := range lines {
		l := &lines[i]
		b.ts[i] = l.TS
		b.levels[i] = levelCode(l.Level)
		b.minTS = min(b.minTS, l.TS)
		b.maxTS = max(b.maxTS, l.TS)
		raw = binary.AppendVarint(raw, l.Ingested-l.TS)
		raw = binary.AppendVarint(raw, l.Offset-prevOff)
		prevOff = l.Offset
		raw = binary.AppendUvarint(raw, uint64(len(l.Flags)))
		for _, f := range l.Flags {
			raw = appendStr(raw, f)
		}
		raw = binary.AppendUvarint(raw, uint64(len(l.Fields)))
		for _, f := range l.Fields {
			raw = appendStr(raw, f.K)
			raw = appendStr(raw, f.V)
		}
		raw = binary.AppendUvarint(raw, uint64(len(l.Nums)))
		for _, f := range l.Nums {
			raw = appendStr(raw, f.K)
			raw = binary.LittleEndian.AppendUint64(raw, math.Float64bits(f.V))
		}
	}
	binary.LittleEndian.PutUint32(raw, uint32(len(raw)-4))
	for i := range lines {
		raw = binary.AppendUvarint(raw, uint64(len(lines[i].Line)))
	}
	for i := range lines {
		raw = append(raw, lines[i].Line...)
	}
	b.rawLen = int32(len(raw))

	body := make([]byte, 0, 64+n*4+len(raw)/3)
	body = binary.AppendUvarint(body, seq)
	body = appendStr(body, info.Host)
	body = appendStr(body, info.Source)
	body = appendStr(body, info.SourceName)
	body = appendStr(body, info.FileID)
	body = binary.AppendUvarint(body, uint64(n))
	body = binary.AppendVarint(body, b.firstOff)
	body = binary.AppendVarint(body, b.lastOff)
	prev := int64(0)
	for _, t := range b.ts {
		body = binary.AppendVarint(body, t-prev)
		prev = t
	}
	body = append(body, b.levels...)
	if version >= 2 {
		b.cover = coverOf(lines)
		body = binary.AppendUvarint(body, uint64(len(b.cover)))
		for _, c := range b.cover {
			body = binary.AppendVarint(body, c.From-b.firstOff)
			body = binary.AppendUvarint(body, uint64(c.To-c.From))
		}
	}
	body = binary.AppendUvarint(body, uint64(len(raw)))
	head := len(body)
	body = append(body, s2.EncodeBetter(nil, raw)...)
	b.clen = int32(len(body) - head)
	// pos is relative to the body until the writer knows where it lands.
	b.pos = int64(head)
	return body, b
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
	n := r.uvarint()
	if r.err != nil || n == 0 || n > uint64(len(body)) {
		return nil, errCorrupt
	}
	b.info = intern(info)
	b.firstOff, b.lastOff = r.varint(), r.varint()
	b.ts = make([]int64, n)
	b.minTS, b.maxTS = math.MaxInt64, math.MinInt64
	prev := int64(0)
	for i := range b.ts {
		prev += r.varint()
		b.ts[i] = prev
		b.minTS = min(b.minTS, prev)
		b.maxTS = max(b.maxTS, prev)
	}
	b.levels = append([]uint8(nil), r.bytes(int(n))...)
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
	b.rawLen = int32(r.uvarint())
	if r.err != nil {
		return nil, r.err
	}
	b.pos = bodyPos + int64(r.i)
	b.clen = int32(len(body) - r.i)
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
	r := &bodyReader{b: raw, i: 4}
	off := b.firstOff
	var kvs []kv
	var kns []kn
	var flags []string
	type span struct{ f, fe, k, ke, nm, nme int }
	spans := make([]span, n)
	for i := range lines {
		l := &lines[i]
		l.TS = b.ts[i]
		l.Level = levelNames[b.levels[i]%uint8(len(levelNames))]
		l.Ingested = l.TS + r.varint()
		off += r.varint()
		l.Offset = off
		sp := &spans[i]
		sp.f = len(flags)
		for range r.uvarint() {
			flags = append(flags, r.str(true))
		}
		sp.fe = len(flags)
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
	for i := range lines {
		if sp := spans[i]; sp.fe > sp.f {
			lines[i].Flags = flags[sp.f:sp.fe:sp.fe]
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
	version int // layout of its records: 1 or 2 (see the top of this file)
}

// openBlockFile opens (creating) path and calls fn with every intact
// record, in order, and the file's layout version; a torn or corrupt tail
// is cut off. A new file gets the newest layout.
func openBlockFile(path string, fn func(body []byte, bodyPos int64, version int) error) (*blockFile, error) {
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
	if st.Size() < int64(len(blockMagic2)) {
		if err := f.Truncate(0); err != nil {
			return fail(fmt.Errorf("init block file: %w", err))
		}
		if _, err := f.WriteAt(blockMagic2, 0); err != nil {
			return fail(fmt.Errorf("init block file: %w", err))
		}
		if err := f.Sync(); err != nil {
			return fail(fmt.Errorf("init block file: %w", err))
		}
		return &blockFile{f: f, size: int64(len(blockMagic2)), version: 2}, nil
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
	raw, err := s2.Decode(raw[:cap(raw)], comp)
	if err == nil && len(raw) != int(b.rawLen) {
		err = errCorrupt
	}
	if err != nil {
		return nil, fmt.Errorf("decompress block %d: %w", b.seq, err)
	}
	return raw, nil
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
	raw, err := b.sh.bf.readPayloadInto(b, t.comp, t.raw)
	if err != nil {
		return nil, err
	}
	t.raw = raw
	if len(raw) < 4 {
		return nil, errCorrupt
	}
	r := &bodyReader{b: raw, i: 4 + int(binary.LittleEndian.Uint32(raw))}
	if r.i > len(raw) {
		return nil, errCorrupt
	}
	n := b.n()
	if cap(t.lines) < n {
		t.lines = make([]storedLine, n)
	}
	lines := t.lines[:n]
	for i := range lines {
		lines[i] = storedLine{TS: b.ts[i], Level: levelNames[b.levels[i]%uint8(len(levelNames))]}
		lines[i].Offset = int64(r.uvarint()) // the length, for now
	}
	// The text of all lines is contiguous: lowercase it in one go.
	text := raw[r.i:]
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
