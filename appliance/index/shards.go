package index

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/index/scorch"
)

// Time shards.
//
// The index is one shard per ShardSpan of event time (ts), in
// <Dir>/segments/<start>, <start> being the span's first instant in UTC as
// YYYYMMDD (spans of whole days) or YYYYMMDDTHHMM. Spans are aligned to
// the Unix epoch. A shard is a block file (blocks.go) and a Bleve index of
// its blocks (doc.go, in <shard>/bleve). Searches read every shard whose
// span meets the asked time range. Retention removes whole shards while
// indexing and searching go on.
//
// A line goes to the shard of its ts. A replay never doubles a line,
// whatever shard its ts falls in: Index skips lines of a file whose offset
// it already holds (see files.go).

// shard holds the blocks of the lines with start <= ts < end.
type shard struct {
	name       string
	dir        string
	start, end time.Time
	bi         bleve.Index
	bf         *blockFile
	names      *fieldNames
	times      *timesCache // of layout-3 blocks: the index's, shared by its shards

	mu      sync.RWMutex // guards blocks, nextSeq, lines, unindexed, gone
	blocks  []*block     // in seq order
	nextSeq uint64
	lines   int64
	gone    bool
	// unindexed are blocks in the block file whose Bleve documents a
	// failed write left out; the next write adds them (see indexDocs).
	unindexed []*block
}

// snapshot returns the shard's blocks now (the slice is never changed in
// place, only appended to).
func (sh *shard) snapshot() []*block {
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	return sh.blocks[:len(sh.blocks):len(sh.blocks)]
}

func shardName(start time.Time, span time.Duration) string {
	if span%day == 0 {
		return start.UTC().Format("20060102")
	}
	return start.UTC().Format("20060102T1504")
}

func parseShardName(name string) (time.Time, bool) {
	for _, layout := range []string{"20060102", "20060102T1504"} {
		if t, err := time.ParseInLocation(layout, name, time.UTC); err == nil && len(name) == len(layout) {
			return t, true
		}
	}
	return time.Time{}, false
}

func (ix *Index) shardsDir() string { return filepath.Join(ix.cfg.Dir, "segments") }

// openShards opens every shard under <Dir>/segments.
func (ix *Index) openShards() error {
	if err := os.MkdirAll(ix.shardsDir(), 0o755); err != nil {
		return fmt.Errorf("create index dir: %w", err)
	}
	for _, old := range []string{"index_meta.json", "shards"} {
		if _, err := os.Stat(filepath.Join(ix.cfg.Dir, old)); err == nil {
			ix.log.Warn("an index of an older logbox (one Bleve document per line) is in the index dir and is not searched; delete it to free the space, or leave it",
				"path", filepath.Join(ix.cfg.Dir, old))
		}
	}
	ents, err := os.ReadDir(ix.shardsDir())
	if err != nil {
		return fmt.Errorf("list shards: %w", err)
	}
	for _, e := range ents {
		start, ok := parseShardName(e.Name())
		if !e.IsDir() || !ok {
			continue
		}
		sh, err := ix.openShard(start, e.Name(), false)
		if err != nil {
			return err
		}
		ix.shards[start.UnixNano()] = sh
	}
	return nil
}

// scorchConfig tunes Bleve's segment merging for block documents. Its
// default treats every segment under 2000 documents as 2000 documents
// big; a block index holds a few thousand documents per million lines, so
// every small segment looked equal to the big ones and merging rewrote the
// whole index again and again (45% of the CPU of indexing). A floor of 16
// documents gives the usual logarithmic tiers.
//
// unsafe_batch: Batch does not wait for the segment to be persisted;
// indexDocs waits for the batch's persisted callback instead (why: see
// indexDocs). The async error callback slows Bleve's retries of a failed
// persist or merge (a full disk) from a busy loop to one a second.
func scorchConfig() map[string]interface{} {
	return map[string]interface{}{
		"scorchMergePlanOptions": map[string]interface{}{
			"FloorSegmentSize": floorSegmentSize,
		},
		"unsafe_batch":           true,
		"asyncErrorCallbackName": asyncErrorCallback,
	}
}

// asyncErrorCallback names bleveAsyncError in Bleve's registry.
const asyncErrorCallback = "logbox-index"

func init() {
	scorch.RegistryAsyncErrorCallbacks[asyncErrorCallback] = bleveAsyncError
}

// bleveAsyncError is called by Bleve's persister and merger goroutines
// after a failed round, which they retry at once. The failed write is
// reported by indexDocs, which waits for it.
func bleveAsyncError(error, string) { time.Sleep(time.Second) }

var floorSegmentSize = 16

// indexedKey is the Bleve internal key holding the highest block seq whose
// document is written (with every block before it).
var indexedKey = []byte("logbox_blocks_indexed")

// openShard opens (or with create, creates) the shard starting at start,
// loads its blocks and indexes in Bleve those a crash left out.
func (ix *Index) openShard(start time.Time, name string, create bool) (*shard, error) {
	dir := filepath.Join(ix.shardsDir(), name)
	bdir := filepath.Join(dir, "bleve")
	var (
		bi  bleve.Index
		err error
	)
	if create {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("create index shard %q: %w", dir, err)
		}
	}
	newBleve := func() (bleve.Index, error) {
		return bleve.NewUsing(bdir, newMapping(), bleve.Config.DefaultIndexType, bleve.Config.DefaultKVStore, scorchConfig())
	}
	if _, serr := os.Stat(bdir); create || errors.Is(serr, fs.ErrNotExist) {
		bi, err = newBleve()
	} else if bi, err = bleve.OpenUsing(bdir, scorchConfig()); err != nil && rebuildable(err) {
		// The block file is the truth and Bleve only finds candidate
		// blocks: a Bleve index a kill left half made (metadata missing)
		// or that is damaged is made again, and reindexMissing below
		// indexes every block of the shard into it.
		ix.log.Warn("the search part of an index shard cannot be opened; rebuilding it from the shard's block file (no line is lost; searches of this shard are complete once it is done)",
			"path", bdir, "err", err)
		if rerr := os.RemoveAll(bdir); rerr != nil {
			return nil, fmt.Errorf("open index shard %q: %w; and removing it to rebuild it: %w", dir, err, rerr)
		}
		bi, err = newBleve()
	}
	if err != nil {
		return nil, fmt.Errorf("open index shard %q: %w", dir, err)
	}
	sh := &shard{name: name, dir: dir, start: start, end: start.Add(ix.cfg.ShardSpan), bi: bi, times: ix.times}
	existing, err := fieldNamesIn(bi)
	if err != nil {
		bi.Close()
		return nil, fmt.Errorf("list fields of index shard %q: %w", dir, err)
	}
	sh.names = newFieldNames(ix.cfg.MaxFieldNames, existing)
	infos := map[blockInfo]*blockInfo{}
	intern := func(bi blockInfo) *blockInfo {
		if p := infos[bi]; p != nil {
			return p
		}
		p := &bi
		infos[bi] = p
		return p
	}
	sh.bf, err = openBlockFile(filepath.Join(dir, blockFileName), ix.newLayout, func(body []byte, pos int64, version int) error {
		b, err := decodeMeta(body, pos, version, intern)
		if err != nil {
			return fmt.Errorf("index shard %q: block at %d: %w", dir, pos, err)
		}
		b.sh = sh
		sh.blocks = append(sh.blocks, b)
		sh.lines += int64(b.n())
		sh.nextSeq = max(sh.nextSeq, b.seq+1)
		return nil
	})
	if err != nil {
		bi.Close()
		return nil, err
	}
	if err := ix.reindexMissing(sh); err != nil {
		sh.bf.f.Close()
		bi.Close()
		return nil, err
	}
	return sh, nil
}

// rebuildable tells whether a Bleve index that failed to open with err is
// damaged (made again from the block file) rather than kept from us by the
// machine (permissions, descriptors, space, quota, a read-only file
// system, memory: reported, not rebuilt).
func rebuildable(err error) bool {
	for _, e := range []error{fs.ErrPermission, syscall.EMFILE, syscall.ENFILE, syscall.ENOSPC, syscall.EDQUOT, syscall.EROFS, syscall.ENOMEM, syscall.EIO} {
		if errors.Is(err, e) {
			return false
		}
	}
	return true
}

// fieldNamesIn lists the field names a shard's Bleve index holds (as
// fields.NAME, what newFieldNames takes).
func fieldNamesIn(bi bleve.Index) ([]string, error) {
	d, err := bi.FieldDict("fnames")
	if err != nil {
		return nil, err
	}
	defer d.Close()
	var out []string
	for {
		e, err := d.Next()
		if err != nil {
			return nil, err
		}
		if e == nil {
			return out, nil
		}
		out = append(out, "fields."+e.Term)
	}
}

// reindexMissing writes the Bleve documents of the blocks after the last
// one Bleve recorded (a crash between the block file and Bleve).
func (ix *Index) reindexMissing(sh *shard) error {
	v, err := sh.bi.GetInternal(indexedKey)
	if err != nil {
		return fmt.Errorf("index shard %q: read state: %w", sh.dir, err)
	}
	done := int64(-1)
	if len(v) > 0 {
		if n, err := strconv.ParseInt(string(v), 10, 64); err == nil {
			done = n
		}
	}
	batch := sh.bi.NewBatch()
	last := uint64(0)
	n := 0
	for _, b := range sh.blocks {
		if int64(b.seq) <= done {
			continue
		}
		raw, err := sh.bf.readPayload(b)
		if err != nil {
			return err
		}
		lines, err := decodeLines(b, raw)
		if err != nil {
			return fmt.Errorf("index shard %q: block %d: %w", sh.dir, b.seq, err)
		}
		if err := batch.IndexAdvanced(blockDoc(b, lines)); err != nil {
			return fmt.Errorf("index shard %q: block %d: %w", sh.dir, b.seq, err)
		}
		last = max(last, b.seq)
		n++
	}
	if n == 0 {
		return nil
	}
	batch.SetInternal(indexedKey, []byte(strconv.FormatUint(last, 10)))
	if err := sh.bi.Batch(batch); err != nil {
		return fmt.Errorf("index shard %q: index %d blocks a crash left out: %w", sh.dir, n, err)
	}
	ix.log.Info("indexed blocks left out by a crash", "shard", sh.dir, "blocks", n)
	return nil
}

// shardFor returns the shard holding ts, creating it if missing.
func (ix *Index) shardFor(ts time.Time) (*shard, error) {
	start := bucketStart(ts, ix.cfg.ShardSpan)
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if ix.closed {
		return nil, errors.New("index closed")
	}
	if sh := ix.shards[start.UnixNano()]; sh != nil {
		return sh, nil
	}
	name := shardName(start, ix.cfg.ShardSpan)
	create := true
	if _, err := os.Stat(filepath.Join(ix.shardsDir(), name)); err == nil {
		// Left by a drop that failed to delete it: use it again.
		create = false
	}
	sh, err := ix.openShard(start, name, create)
	if err != nil {
		return nil, err
	}
	ix.shards[start.UnixNano()] = sh
	ix.files.addShard(sh)
	ix.log.Info("index shard created", "path", sh.dir)
	return sh, nil
}

// shardList returns the shards, oldest first.
func (ix *Index) shardList() []*shard {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	out := make([]*shard, 0, len(ix.shards))
	for _, sh := range ix.shards {
		out = append(out, sh)
	}
	slices.SortFunc(out, func(a, b *shard) int { return a.start.Compare(b.start) })
	return out
}

// dropShard removes sh from searches, waits for the searches and writes
// in flight, closes and deletes it.
func (ix *Index) dropShard(sh *shard, reason string) error {
	ix.writeMu.Lock()
	defer ix.writeMu.Unlock()
	ix.mu.Lock()
	if ix.shards[sh.start.UnixNano()] != sh {
		ix.mu.Unlock()
		return nil
	}
	delete(ix.shards, sh.start.UnixNano())
	ix.mu.Unlock()
	// Searches hold searchMu for reading while they read blocks.
	ix.searchMu.Lock()
	sh.mu.Lock()
	sh.gone = true
	sh.mu.Unlock()
	ix.files.removeShard(sh)
	ix.cache.forget(sh)
	cerr := errors.Join(sh.bi.Close(), sh.bf.f.Close())
	ix.searchMu.Unlock()
	if err := os.RemoveAll(sh.dir); err != nil {
		return fmt.Errorf("delete index shard %q: %w", sh.dir, err)
	}
	ix.droppedShards.Add(1)
	ix.log.Info("index shard dropped", "path", sh.dir, "reason", reason)
	if cerr != nil {
		return fmt.Errorf("close index shard %q: %w", sh.dir, cerr)
	}
	return nil
}

// ApplyRetention drops the shards that retention no longer keeps: those
// that ended more than Retention ago, then, while all shards together
// take more than RetentionBytes on disk, the oldest ones (never the newest).
func (ix *Index) ApplyRetention(ctx context.Context) error {
	now := ix.cfg.Now()
	maxAge, maxBytes := ix.Retention()
	shards := ix.shardList()
	var errs []error
	keep := shards[:0:0]
	for _, sh := range shards {
		if maxAge > 0 && !sh.end.After(now.Add(-maxAge)) {
			if err := ix.dropShard(sh, "older than retention"); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		keep = append(keep, sh)
	}
	if maxBytes > 0 && len(keep) > 1 {
		sizes := make([]int64, len(keep))
		var total int64
		for i, sh := range keep {
			sizes[i] = dirSize(sh.dir)
			total += sizes[i]
		}
		for i := 0; total > maxBytes && i < len(keep)-1; i++ {
			if ctx.Err() != nil {
				break
			}
			if err := ix.dropShard(keep[i], fmt.Sprintf("index takes %d bytes, more than retention bytes %d", total, maxBytes)); err != nil {
				errs = append(errs, err)
			}
			total -= sizes[i]
		}
	}
	return errors.Join(errs...)
}

// RunRetention applies retention every RetentionInterval (and once at
// start) until ctx ends; failures are logged and retried on the next
// round. It returns nil when ctx ends. Run it beside the index writer
// (appliance/indexwriter, direct mode) or the Kafka consumer; it runs
// fine with neither.
func (ix *Index) RunRetention(ctx context.Context) error {
	t := time.NewTicker(ix.cfg.RetentionInterval)
	defer t.Stop()
	for {
		if err := ix.ApplyRetention(ctx); err != nil {
			ix.log.Warn("index retention failed; old shards stay on disk until the next round; check permissions of the data dir", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func dirSize(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}
