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
			fs.blocks = kept
			fs.hw = -1
			for _, b := range kept {
				fs.hw = max(fs.hw, b.lastOff)
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

func (fr *fileRegistry) count() int {
	fr.mu.RLock()
	defer fr.mu.RUnlock()
	return len(fr.m)
}
