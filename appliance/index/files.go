package index

import (
	"slices"
	"sort"
	"sync"
)

// Files: which lines of each file the index holds.
//
// A line's identity is host + file identity + byte offset (its record ID).
// Blocks do not keep per-line IDs in Bleve, so "already indexed?" is
// answered here: per file, its blocks in offset order and the highest
// offset held. Lines of one file arrive in file order (one tailer per
// file, one Kafka partition per file key), so a new line is almost always
// above that high-water mark and needs no lookup; a line at or below it is
// looked for in the blocks whose offset range holds it (a replay after a
// crash or a Kafka redelivery), and skipped when found. A line that
// arrives late (out of order) is not found there and is indexed.

func fileKey(host, fileID string) string { return host + "|" + fileID }

type fileState struct {
	blocks   []*block // by firstOff
	hw       int64    // highest line offset held
	disjoint bool     // no two blocks' offset ranges overlap
	// held is the union of the blocks' covers (merged, sorted); lines
	// counts the lines held and unknown those of unknown byte range.
	held           []span
	lines, unknown int64
	// droppedTo is the end of the byte ranges retention dropped.
	droppedTo int64
}

// addCover merges c into the sorted, disjoint spans of *held.
func addCover(held *[]span, c span) {
	h := *held
	// Almost always c extends the last span or follows it.
	if n := len(h); n == 0 || c.From > h[n-1].To {
		*held = append(h, c)
		return
	}
	i := sort.Search(len(h), func(i int) bool { return h[i].To >= c.From })
	j := i
	for j < len(h) && h[j].From <= c.To {
		c.From, c.To = min(c.From, h[j].From), max(c.To, h[j].To)
		j++
	}
	*held = slices.Replace(h, i, j, c)
}

func (fs *fileState) addBlock(b *block) {
	for _, c := range b.cover {
		addCover(&fs.held, c)
	}
	fs.lines += int64(b.n())
	if b.cover == nil {
		fs.unknown += int64(b.n())
	}
}

type fileRegistry struct {
	mu sync.RWMutex
	m  map[string]*fileState
}

func newFileRegistry() *fileRegistry { return &fileRegistry{m: map[string]*fileState{}} }

// add records blocks (of one shard or several) as held.
func (fr *fileRegistry) add(blocks []*block) {
	fr.mu.Lock()
	defer fr.mu.Unlock()
	for _, b := range blocks {
		k := fileKey(b.info.Host, b.info.FileID)
		fs := fr.m[k]
		if fs == nil {
			fs = &fileState{hw: -1, disjoint: true}
			fr.m[k] = fs
		}
		i := sort.Search(len(fs.blocks), func(i int) bool { return fs.blocks[i].firstOff > b.firstOff })
		if i > 0 && fs.blocks[i-1].lastOff >= b.firstOff || i < len(fs.blocks) && fs.blocks[i].firstOff <= b.lastOff {
			fs.disjoint = false
		}
		fs.blocks = slices.Insert(fs.blocks, i, b)
		fs.hw = max(fs.hw, b.lastOff)
		fs.addBlock(b)
	}
}

func (fr *fileRegistry) addShard(sh *shard) { fr.add(sh.snapshot()) }

// removeShard forgets the blocks of sh (dropped by retention).
func (fr *fileRegistry) removeShard(sh *shard) {
	fr.mu.Lock()
	defer fr.mu.Unlock()
	for k, fs := range fr.m {
		kept := fs.blocks[:0:0]
		for _, b := range fs.blocks {
			if b.sh != sh {
				kept = append(kept, b)
			}
		}
		if len(kept) == 0 {
			delete(fr.m, k)
			continue
		}
		if len(kept) != len(fs.blocks) {
			for _, b := range fs.blocks {
				if b.sh == sh {
					fs.droppedTo = max(fs.droppedTo, b.lastOff+1)
					for _, c := range b.cover {
						fs.droppedTo = max(fs.droppedTo, c.To)
					}
				}
			}
			fs.blocks = kept
			fs.hw = -1
			fs.held, fs.lines, fs.unknown = nil, 0, 0
			for _, b := range kept {
				fs.hw = max(fs.hw, b.lastOff)
				fs.addBlock(b)
			}
		}
	}
}

// state returns a copy of what the registry holds of file k (nil blocks
// when none).
func (fr *fileRegistry) state(k string) fileState {
	fr.mu.RLock()
	defer fr.mu.RUnlock()
	fs := fr.m[k]
	if fs == nil {
		return fileState{hw: -1, disjoint: true}
	}
	return fileState{blocks: fs.blocks[:len(fs.blocks):len(fs.blocks)], hw: fs.hw, disjoint: fs.disjoint}
}

// covering returns the blocks of fs whose offset range holds off.
func (fs fileState) covering(off int64) []*block {
	i := sort.Search(len(fs.blocks), func(i int) bool { return fs.blocks[i].firstOff > off })
	if fs.disjoint {
		if i > 0 && fs.blocks[i-1].lastOff >= off {
			return fs.blocks[i-1 : i]
		}
		return nil
	}
	var out []*block
	for _, b := range fs.blocks[:i] {
		if b.lastOff >= off {
			out = append(out, b)
		}
	}
	return out
}

// FileCoverage is what the index holds of one file: the index's side of
// the completeness ledger.
type FileCoverage struct {
	// Lines held, and of them the lines whose byte range is unknown
	// (events without an end offset: other shippers, older agents).
	Lines        int64 `json:"lines"`
	UnknownLines int64 `json:"unknown_lines,omitempty"`
	// HighWater is the offset of the last line held.
	HighWater int64 `json:"high_water"`
	// Held are the byte ranges [from, to) of the file the index holds,
	// merged and sorted.
	Held []Span `json:"held"`
	// RetentionDroppedTo is the end of the byte ranges that retention
	// dropped (0: none).
	RetentionDroppedTo int64 `json:"retention_dropped_to,omitempty"`
}

// Span is a byte range [From, To) of a file.
type Span struct {
	From int64 `json:"from"`
	To   int64 `json:"to"`
}

// FileCoverage returns what the index holds of the file fileID collected
// on host; false when it holds none of it.
func (ix *Index) FileCoverage(host, fileID string) (FileCoverage, bool) {
	fr := ix.files
	fr.mu.RLock()
	defer fr.mu.RUnlock()
	fs := fr.m[fileKey(host, fileID)]
	if fs == nil {
		return FileCoverage{HighWater: -1}, false
	}
	fc := FileCoverage{Lines: fs.lines, UnknownLines: fs.unknown, HighWater: fs.hw, RetentionDroppedTo: fs.droppedTo,
		Held: make([]Span, len(fs.held))}
	for i, h := range fs.held {
		fc.Held[i] = Span(h)
	}
	return fc, true
}

func (fr *fileRegistry) count() int {
	fr.mu.RLock()
	defer fr.mu.RUnlock()
	return len(fr.m)
}
