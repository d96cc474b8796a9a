package index

import (
	"sync"
	"unicode/utf8"

	"github.com/cespare/xxhash/v2"
)

// The terms of a block (files of layout version 3).
//
// A block's parts (see eachPart) are split by what they are like:
//
//   - words: parts without a digit ("get", "error", "connection",
//     "nullpointerexception"). There are few distinct ones and they recur
//     from block to block, which is what an inverted index is good at: they
//     are the terms of the block's Bleve document, each with the number of
//     lines of the block that hold it as its frequency, so that the count
//     of a one-word query over whole blocks is read from Bleve's postings
//     without reading a line (see Index.countByPostings).
//   - parts with a digit (ids, IPs, times, numbers, hex): most occur in
//     one block only (178k of 262k distinct parts per 200k lines occurred
//     once), and in Bleve each would be a term of its own, which cost 2/3
//     of the index's time and 6/7 of its size. They go into the block's
//     Bloom filter instead, kept in the block record and read at query
//     time: a query for such a part reads the filters of the blocks in
//     its time range and checks only those that may hold it.
//
// The parts of field values are split the same way; their words are the
// terms of the document's fval field (so that the text's counts are the
// text's alone).
//
// A CJK run (see isCJK) is not a word but text without spaces: its
// overlapping bigrams and its last character are words (用户登录失败:
// 用户 户登 登录 录失 失败 败), so that any two or more characters of it
// are found by their bigrams and one character by the terms that start
// with it (cjkQuery); the exact check confirms (findSeq). Blocks of layout
// version 4 have these terms; older ones a term per run and what it was
// glued to, and are read for a CJK query.

// hasDigitPart reports whether the part p contains an ASCII digit.
func hasDigitPart(p string) bool {
	for i := 0; i < len(p); i++ {
		if c := p[i]; c >= '0' && c <= '9' {
			return true
		}
	}
	return false
}

// blockTerms are the terms of one block, as encodeBlock finds them and
// blockDoc indexes them.
type blockTerms struct {
	words []string // distinct digit-free parts of the text
	freq  []int32  // lines of the block holding words[i]
	vals  []string // distinct digit-free parts of field values
	// hashes of the distinct parts with a digit (text and values): the
	// Bloom filter's keys.
	hashes []uint64
}

// termsOf finds the terms of lines. Parts are told apart by their
// 64-bit hash (a collision of two distinct parts of one block, about one
// in 10^12 blocks, would merge their counts).
func termsOf(lines []storedLine) *blockTerms {
	t := &blockTerms{}
	tc := termsScratch.Get().(*termsCache)
	defer termsScratch.Put(tc)
	// seen holds, per part's hash, 1 + the index of the word, or 0 for
	// a part with a digit; last, per word, the line it was last counted for.
	seen := &tc.seen
	seen.reset()
	last := tc.last[:0]
	low := tc.low
	// word counts the word p (no digit) for line li.
	word := func(p []byte, li int) {
		slot := seen.find(xxhash.Sum64(p))
		wi := *slot
		if wi < 0 {
			wi = int32(len(t.words)) + 1
			*slot = wi
			seen.added()
			t.words = append(t.words, string(p))
			t.freq = append(t.freq, 0)
			last = append(last, -1)
		}
		if w := wi - 1; wi > 0 && last[w] != int32(li) {
			last[w] = int32(li)
			t.freq[w]++
		}
	}
	for li := range lines {
		s := lines[li].Line
		if cap(low) < len(s) {
			low = make([]byte, len(s), 2*len(s))
		}
		low = low[:len(s)]
		lowerInto(low, s)
		for i := 0; i < len(low); {
			c := low[i]
			if c < utf8.RuneSelf && !isPartByte(c) {
				i++
				continue
			}
			j, digit := i, false
			if c >= utf8.RuneSelf {
				switch cls, n := classAt(low, i); cls {
				case clSep:
					i += n
					continue
				case clCJK:
					// A CJK run: its bigrams and its last character.
					prev := -1
					for j < len(low) {
						k, n := classAt(low, j)
						if k != clCJK {
							break
						}
						if prev >= 0 {
							word(low[prev:j+n], li)
						}
						prev = j
						j += n
					}
					word(low[prev:j], li)
					i = j
					continue
				}
			}
			for j < len(low) {
				c := low[j]
				if c < utf8.RuneSelf {
					if !isPartByte(c) {
						break
					}
					if c >= '0' && c <= '9' {
						digit = true
					}
					j++
					continue
				}
				k, n := classAt(low, j)
				if k != clWord {
					break
				}
				j += n
			}
			p := low[i:j]
			i = j
			h := xxhash.Sum64(p)
			slot := seen.find(h)
			wi := *slot
			if wi < 0 {
				if digit {
					*slot = 0
					seen.added()
					t.hashes = append(t.hashes, h)
					continue
				}
				wi = int32(len(t.words)) + 1
				*slot = wi
				seen.added()
				t.words = append(t.words, string(p))
				t.freq = append(t.freq, 0)
				last = append(last, -1)
			}
			if wi == 0 {
				continue
			}
			if w := wi - 1; last[w] != int32(li) {
				last[w] = int32(li)
				t.freq[w]++
			}
		}
	}
	tc.last, tc.low = last, low
	// Field values: each distinct value once (its hash, salted apart from
	// the parts', marks it in seen), lowercased into low; its words (CJK
	// runs: their bigrams and last character) are vals, told apart from
	// the text's words by another salt; its parts with a digit join the
	// Bloom filter's keys. The part scan is the text's, written out again:
	// one scanner calling a function per part cost termsOf 13 %
	// (BenchmarkTermsOf 800 vs 700 ns a line).
	val := func(p []byte) {
		if slot := seen.find(xxhash.Sum64(p) ^ valWordSalt); *slot < 0 {
			*slot = 0
			seen.added()
			t.vals = append(t.vals, string(p))
		}
	}
	for li := range lines {
		for _, f := range lines[li].Fields {
			if slot := seen.find(xxhash.Sum64String(f.V) ^ valueSalt); *slot < 0 {
				*slot = 0
				seen.added()
			} else {
				continue
			}
			v := f.V
			if cap(low) < len(v) {
				low = make([]byte, len(v), 2*len(v))
			}
			low = low[:len(v)]
			lowerInto(low, v)
			for i := 0; i < len(low); {
				c := low[i]
				if c < utf8.RuneSelf && !isPartByte(c) {
					i++
					continue
				}
				j, digit := i, false
				if c >= utf8.RuneSelf {
					switch cls, n := classAt(low, i); cls {
					case clSep:
						i += n
						continue
					case clCJK:
						prev := -1
						for j < len(low) {
							k, n := classAt(low, j)
							if k != clCJK {
								break
							}
							if prev >= 0 {
								val(low[prev : j+n])
							}
							prev = j
							j += n
						}
						val(low[prev:j])
						i = j
						continue
					}
				}
				for j < len(low) {
					c := low[j]
					if c < utf8.RuneSelf {
						if !isPartByte(c) {
							break
						}
						digit = digit || c >= '0' && c <= '9'
						j++
						continue
					}
					if k, n := classAt(low, j); k == clWord {
						j += n
						continue
					}
					break
				}
				p := low[i:j]
				i = j
				if !digit {
					val(p)
					continue
				}
				h := xxhash.Sum64(p)
				if slot := seen.find(h); *slot < 0 {
					*slot = 0
					seen.added()
					t.hashes = append(t.hashes, h)
				}
			}
		}
	}
	tc.low = low
	return t
}

// Salts that keep the hashes of whole field values and of value words
// apart from those of the text's parts in termsOf's table.
const (
	valueSalt   = 0x9e3779b97f4a7c15
	valWordSalt = 0xc2b2ae3d27d4eb4f
)

// termsCache is termsOf's scratch memory, reused from block to block.
type termsCache struct {
	seen hashTable
	last []int32
	low  []byte
}

var termsScratch = sync.Pool{New: func() any { return &termsCache{} }}

// hashTable maps 64-bit hashes to int32 values (-1: absent) by open
// addressing; the keys are hashes already, so unlike a Go map it does not
// hash them again. It grows at half full.
type hashTable struct {
	keys []uint64
	vals []int32
	n    int
}

func (t *hashTable) reset() {
	if t.keys == nil || len(t.keys) > 1<<16 {
		t.keys, t.vals = make([]uint64, 1<<14), make([]int32, 1<<14)
	}
	for i := range t.vals {
		t.vals[i] = -1
	}
	t.n = 0
}

// find returns the value slot of h, claiming a free one (value -1) when h
// is absent; call added after filling a claimed slot.
func (t *hashTable) find(h uint64) *int32 {
	mask := uint64(len(t.keys) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		if t.vals[i] < 0 {
			t.keys[i] = h
			return &t.vals[i]
		}
		if t.keys[i] == h {
			return &t.vals[i]
		}
	}
}

// added counts a filled slot, and grows the table at half full.
func (t *hashTable) added() {
	t.n++
	if t.n*2 < len(t.keys) {
		return
	}
	keys, vals := t.keys, t.vals
	t.keys, t.vals = make([]uint64, 2*len(keys)), make([]int32, 2*len(keys))
	for i := range t.vals {
		t.vals[i] = -1
	}
	for i, v := range vals {
		if v >= 0 {
			*t.find(keys[i]) = v
		}
	}
}

// Bloom filters: a byte holding k, then the bits (a multiple of 64).
// bloomBitsPerKey and bloomK give about 0.8% false positives.
const (
	bloomBitsPerKey = 10
	bloomK          = 7
)

// makeBloom returns the filter of keys (distinct hashes).
func makeBloom(keys []uint64) []byte {
	m := max(64, (len(keys)*bloomBitsPerKey+63)/64*64)
	bl := make([]byte, 1+m/8)
	bl[0] = bloomK
	bits := bl[1:]
	for _, h := range keys {
		h1, h2 := uint32(h), uint32(h>>32)|1
		for i := range uint32(bloomK) {
			j := (h1 + i*h2) % uint32(m)
			bits[j/8] |= 1 << (j % 8)
		}
	}
	return bl
}

// bloomHas reports whether the filter bl may hold key h. An empty or
// malformed filter may hold anything.
func bloomHas(bl []byte, h uint64) bool {
	if len(bl) < 9 {
		return true // makeBloom writes at least 9 bytes
	}
	k := uint32(bl[0])
	bits := bl[1:]
	m := uint32(len(bits) * 8)
	h1, h2 := uint32(h), uint32(h>>32)|1
	for i := range k {
		j := (h1 + i*h2) % m
		if bits[j/8]&(1<<(j%8)) == 0 {
			return false
		}
	}
	return true
}
