// Package index keeps log lines and answers searches over them.
//
// Its API is "index a batch of records" (Index; the direct-mode queue in
// front of it is appliance/indexwriter) and "search for lines" (Search,
// Histogram, Facets, Context, Tail); how lines are laid out stays
// inside, so the layout can change without touching the pipeline or HTTP.
//
// Lines are stored in compressed blocks of up to BlockLines lines of one
// file (blocks.go); Bleve indexes one document per block (doc.go) and only
// finds the blocks that may hold a match; each line of those is then
// checked exactly (match.go, search.go). The index is split into time
// shards (shards.go) searched as one; fields parsed from lines are
// described in fields.go. Log templates (appliance/patterns) read through
// scan.go: every matching line's text, the _pattern:"…" filter and the
// "| patterns" pipe's syntax; and through keys.go: each line's masked
// form, kept per block as it is written (Config.Masker), so that a
// pattern query masks nothing.
//
// A line is identified by pipeline.Record.ID (host, file identity, byte
// offset): indexing the same line twice keeps it once (files.go), so
// replays after a crash or a Kafka redelivery never double a line.
// files.go also knows which byte ranges of each file the index holds
// (FileCoverage, the index's side of the completeness ledger).
package index

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/logbox/logbox/appliance/pipeline"
)

// Config says where the index lives and how it is split into time shards
// and kept.
type Config struct {
	// Dir holds the index: its shards are in Dir/shards.
	Dir string
	// ShardSpan is the span of event time one shard holds (default 24h;
	// a whole number of minutes, at least one). Changing it applies to
	// new shards; existing ones keep their lines.
	ShardSpan time.Duration
	// Retention drops shards whose span ended longer ago than this
	// (default 7 days; negative keeps them forever).
	Retention time.Duration
	// RetentionBytes, when positive, drops the oldest shards while all
	// of them together take more bytes on disk (the newest is kept).
	RetentionBytes int64
	// RetentionInterval is how often RunRetention checks (default 1m).
	RetentionInterval time.Duration
	// BlockLines caps the lines of one block (default 1024); BlockBytes
	// caps their text (default 256 KiB; a longer line is a block alone).
	BlockLines int
	BlockBytes int
	// TailBuffer bounds the newly indexed lines waiting to be matched for
	// one live tail (default 20000); a tail that falls further behind is
	// dropped, so a slow reader never blocks indexing.
	TailBuffer int
	// TailResumeMax bounds the lines a tail resumed with Last-Event-ID
	// catches up with before going live (default 10000).
	TailResumeMax int
	// MaxFieldsPerLine bounds the JSON leaves indexed per line (default
	// 64); the rest are dropped and the line gets FlagFieldsDropped.
	MaxFieldsPerLine int
	// MaxFieldNames bounds the distinct JSON field names one Bleve index
	// takes (default 1000); leaves with new names beyond it are not
	// indexed (counted in Stats, and the line gets FlagFieldsDropped).
	MaxFieldNames int
	// Now is the clock used to judge parsed times (tests); default time.Now.
	Now func() time.Time
	// Zone is where a time written without a zone is read for a record
	// that names none (Record.TZ: events of other producers and older
	// agents); default time.Local, the indexer's own zone.
	Zone *time.Location
	// PersistTimeout bounds how long a write waits for Bleve to persist
	// a batch (default 30s); then the write fails and is retried (a full
	// disk), and the index is free for retention to drop shards.
	PersistTimeout time.Duration
	// Guard, when set, keeps a free-space floor (appliance/diskspace):
	// Index refuses to write while it reports the disk low (the writer
	// in front of the index waits for room then).
	Guard WriteGuard
	// Templates, when set, answers the _pattern:"TEMPLATE" filter (see
	// scan.go; appliance/patterns.Fitter); without it a query with one
	// is refused.
	Templates TemplateFitter
	// Masker, when set, masks each line's text into its key as blocks
	// are written (keys.go), so that ScanKeys (patterns) reads keys
	// instead of masking text; without it blocks have no keys and
	// ScanKeys is refused.
	Masker Masker
}

// WriteGuard holds writes back while the disk is short of space.
type WriteGuard interface {
	// Check returns nil when a write may go ahead, else why not.
	Check() error
}

// Effective returns c with every default filled in, as Open uses it
// (status shows these, not the zero of an unset setting).
func (c Config) Effective() Config {
	c.setDefaults()
	return c
}

func (c *Config) setDefaults() {
	if c.BlockLines <= 0 {
		c.BlockLines = 1024
	}
	if c.BlockBytes <= 0 {
		c.BlockBytes = 256 << 10
	}
	if c.TailBuffer <= 0 {
		c.TailBuffer = 20000
	}
	if c.TailResumeMax <= 0 {
		c.TailResumeMax = 10000
	}
	if c.MaxFieldsPerLine <= 0 {
		c.MaxFieldsPerLine = 64
	}
	if c.MaxFieldNames <= 0 {
		c.MaxFieldNames = 1000
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Zone == nil {
		c.Zone = time.Local
	}
	if c.ShardSpan == 0 {
		c.ShardSpan = day
	}
	if c.Retention == 0 {
		c.Retention = 7 * day
	}
	if c.RetentionInterval <= 0 {
		c.RetentionInterval = time.Minute
	}
	if c.PersistTimeout <= 0 {
		c.PersistTimeout = 30 * time.Second
	}
}

// Validate checks the settings that have no safe default.
func (c Config) Validate() error {
	if c.ShardSpan != 0 && (c.ShardSpan < time.Minute || c.ShardSpan%time.Minute != 0) {
		return fmt.Errorf("index shard span %v: must be a whole number of minutes, at least 1m", c.ShardSpan)
	}
	if c.RetentionBytes < 0 {
		return fmt.Errorf("index retention bytes %d: must not be negative", c.RetentionBytes)
	}
	return nil
}

// Index is an open index: its time shards (see shards.go) searched as
// one. Search, Index and the other queries are safe for concurrent use.
type Index struct {
	cfg Config
	log *slog.Logger

	// specs caches the parsers and zones records name (parsers.go).
	specs specCache

	mu     sync.Mutex       // guards shards and closed
	shards map[int64]*shard // by start (Unix ns)
	closed bool

	// writeMu serializes Index calls and shard drops; searchMu is held for
	// reading by every query while it reads blocks, and for writing by a
	// shard drop while it closes the shard's files.
	writeMu  sync.Mutex
	searchMu sync.RWMutex

	files *fileRegistry
	cache *blockCache
	// matches keeps which lines matched recent aggregations (searchOpts.matchKey).
	matches *matchCache
	// times keeps the times and levels of recently read layout-3 blocks
	// of every shard (9 KiB a block).
	times *timesCache
	// noCandidates makes queries check every block (tests compare).
	noCandidates bool
	// newLayout is the layout of new block files (tests; 0: the newest).
	newLayout int
	// noStoredKeys makes ScanKeys mask every line's text as blocks
	// without keys need (tests compare).
	noStoredKeys bool
	// last holds per file the time of its last indexed line (see
	// inheritTimes); guarded by writeMu.
	last map[string]lastTime
	// failBleve, when set (tests), makes writing Bleve documents fail.
	failBleve func() error
	// retention is the retention in force: cfg's at Open, then
	// SetRetention's.
	retention atomic.Pointer[retentionLimits]

	// latency is how long Index takes to make a batch durable.
	latency prometheus.Histogram

	docs          atomic.Uint64 // lines written since open
	batches       atomic.Uint64
	dropped       atomic.Uint64 // lines flagged FlagFieldsDropped since open
	unparsed      atomic.Uint64 // lines flagged FlagUnparsed since open
	replayed      atomic.Uint64 // lines skipped since open: already held
	droppedShards atomic.Uint64

	// Live tails (see Tail): Index hands each written batch's lines to them.
	subsMu      sync.Mutex
	subs        map[*subscription]struct{}
	subscribers atomic.Int32
}

// Open opens the index at cfg.Dir, creating it if missing. The caller
// closes it with Close after RunRetention and every other call have
// returned.
func Open(cfg Config, log *slog.Logger) (*Index, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	ix := &Index{
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "logbox_index_batch_latency_seconds",
			Help:    "Time to write one batch durably into the index.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12),
		}),
		cfg:     cfg,
		log:     log.With("component", "index"),
		subs:    map[*subscription]struct{}{},
		shards:  map[int64]*shard{},
		files:   newFileRegistry(),
		cache:   newBlockCache(16),
		matches: newMatchCache(16),
		times:   newTimesCache(128),
	}
	if err := ix.openShards(); err != nil {
		for _, sh := range ix.shards {
			sh.bi.Close()
			sh.bf.f.Close()
		}
		return nil, err
	}
	for _, sh := range ix.shards {
		ix.files.addShard(sh)
	}
	ix.retention.Store(&retentionLimits{cfg.Retention, cfg.RetentionBytes})
	return ix, nil
}

// retentionLimits are Config.Retention and RetentionBytes, defaults applied.
type retentionLimits struct {
	age      time.Duration
	maxBytes int64
}

// SetRetention changes Retention and RetentionBytes while the index runs
// (read as in Config: age 0 is the default, negative keeps shards
// forever; maxBytes 0 sets no size limit). The next retention round
// applies them.
func (ix *Index) SetRetention(age time.Duration, maxBytes int64) error {
	c := Config{Retention: age, RetentionBytes: maxBytes, ShardSpan: ix.cfg.ShardSpan}
	if err := c.Validate(); err != nil {
		return err
	}
	c.setDefaults()
	ix.retention.Store(&retentionLimits{c.Retention, c.RetentionBytes})
	return nil
}

// Retention returns the retention in force: the age after which shards
// are dropped (negative: never) and the size limit (0: none).
func (ix *Index) Retention() (age time.Duration, maxBytes int64) {
	r := ix.retention.Load()
	return r.age, r.maxBytes
}

// pendingFile is what Index knows of one file while taking a batch.
type pendingFile struct {
	st      fileState
	last    int64   // highest offset taken so far (held or in this batch)
	taken   []int64 // offsets taken from this batch, in arrival order
	inOrder bool    // taken is ascending
}

// held reports whether the index already holds the line at off of the
// file pf describes.
func (ix *Index) held(pf *pendingFile, off int64) (bool, error) {
	for _, b := range pf.st.covering(off) {
		lines, err := ix.lines(b, true)
		if err != nil {
			return false, err
		}
		i := sort.Search(len(lines), func(i int) bool { return lines[i].Offset >= off })
		if i < len(lines) && lines[i].Offset == off {
			return true, nil
		}
	}
	return false, nil
}

// Index writes recs, skipping lines the index holds already. When it
// returns nil the lines are durable (the block file is fsynced and Bleve's
// batch waits for its segment to be persisted); after an error some may
// be, and the caller retries them all (what is held is skipped then).
func (ix *Index) Index(ctx context.Context, recs []pipeline.Record) error {
	if len(recs) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if ix.cfg.Guard != nil {
		if err := ix.cfg.Guard.Check(); err != nil {
			return fmt.Errorf("indexing paused: %w", err)
		}
	}
	ix.writeMu.Lock()
	defer ix.writeMu.Unlock()
	start := time.Now()
	now := ix.cfg.Now()
	if err := ix.retryUnindexed(ctx); err != nil {
		return err
	}

	// Which records are new.
	files := map[string]*pendingFile{}
	keep := make([]int, 0, len(recs))
	keys := make([]string, len(recs)) // file key of each record
	for i := range recs {
		r := &recs[i]
		k := fileKey(r.Host, r.FileID)
		keys[i] = k
		pf := files[k]
		if pf == nil {
			st := ix.files.state(k)
			pf = &pendingFile{st: st, last: st.hw, inOrder: true}
			files[k] = pf
		}
		if r.Offset > pf.last {
			pf.last = r.Offset
			pf.taken = append(pf.taken, r.Offset)
			keep = append(keep, i)
			continue
		}
		if inBatch(pf, r.Offset) {
			ix.replayed.Add(1)
			continue
		}
		dup, err := ix.held(pf, r.Offset)
		if err != nil {
			return fmt.Errorf("look up replayed line: %w", err)
		}
		if dup {
			ix.replayed.Add(1)
			continue
		}
		pf.inOrder = false
		pf.taken = append(pf.taken, r.Offset)
		keep = append(keep, i)
	}
	if len(keep) == 0 {
		ix.batches.Add(1)
		ix.latency.Observe(time.Since(start).Seconds())
		return nil
	}

	// Parse on every core.
	parsed := make([]extracted, len(keep))
	parallel(len(keep), func(lo, hi int) {
		// The records of a batch mostly share their parser and zone; ""
		// names auto and the index's zone.
		var spec, tz string
		p, loc := autoParser, ix.cfg.Zone
		for k := lo; k < hi; k++ {
			r := &recs[keep[k]]
			if r.Parser != spec {
				spec, p = r.Parser, ix.specs.parser(r.Parser)
			}
			if r.TZ != tz {
				tz, loc = r.TZ, ix.specs.zone(r.TZ, ix.cfg.Zone)
			}
			parsed[k] = parseRecord(r.Line, readTime(r, now), r.Fields, now, ix.cfg.MaxFieldsPerLine, p, loc)
		}
	})

	ix.inheritTimes(recs, keys, keep, parsed, now)

	// Group by shard, then by file (in order of first appearance).
	type group struct {
		info *blockInfo
		idx  []int // into keep/parsed
	}
	// A block holds lines of one file read under one path and source.
	type groupKey struct{ file, source, sourceName, part string }
	type shardWork struct {
		sh     *shard
		groups []*group
		byFile map[groupKey]*group
	}
	var work []*shardWork
	byShard := map[*shard]*shardWork{}
	var sh *shard
	for k, i := range keep {
		r := &recs[i]
		ts := parsed[k].ts
		if sh == nil || ts.Before(sh.start) || !ts.Before(sh.end) {
			var err error
			if sh, err = ix.shardFor(ts); err != nil {
				return err
			}
		}
		sw := byShard[sh]
		if sw == nil {
			sw = &shardWork{sh: sh, byFile: map[groupKey]*group{}}
			byShard[sh] = sw
			work = append(work, sw)
		}
		fk := groupKey{keys[i], r.Source, r.SourceName, r.Part}
		g := sw.byFile[fk]
		if g == nil {
			g = &group{info: &blockInfo{Host: r.Host, Source: r.Source, SourceName: r.SourceName, FileID: r.FileID, Part: r.Part}}
			sw.byFile[fk] = g
			sw.groups = append(sw.groups, g)
		}
		g.idx = append(g.idx, k)
	}

	var written []*block
	for _, sw := range work {
		// Lines and block cuts.
		var chunks [][]storedLine
		var infos []*blockInfo
		for _, g := range sw.groups {
			for _, k := range g.idx {
				parsed[k].keepNames(sw.sh.names)
			}
			lines := make([]storedLine, len(g.idx))
			parallel(len(g.idx), func(lo, hi int) {
				for j := lo; j < hi; j++ {
					k := g.idx[j]
					lines[j] = ix.stored(&recs[keep[k]], &parsed[k], now)
				}
			})
			slices.SortStableFunc(lines, func(a, b storedLine) int { return cmp.Compare(a.Offset, b.Offset) })
			for len(lines) > 0 {
				n, size := 0, 0
				for n < len(lines) && n < ix.cfg.BlockLines && (n == 0 || size+len(lines[n].Line) <= ix.cfg.BlockBytes) {
					size += len(lines[n].Line)
					n++
				}
				chunks = append(chunks, lines[:n:n])
				infos = append(infos, g.info)
				lines = lines[n:]
			}
		}
		blocks, err := ix.writeBlocks(ctx, sw.sh, infos, chunks)
		if err != nil {
			return err
		}
		written = append(written, blocks...)
	}
	// The written lines are not cached: their text shares the tailer's
	// 256 KiB read buffers, which a cached line would keep alive; a
	// replay reads the block back instead.
	n := 0
	for _, b := range written {
		n += b.n()
	}
	ix.docs.Add(uint64(n))
	ix.batches.Add(1)
	ix.latency.Observe(time.Since(start).Seconds())
	if ix.subscribers.Load() > 0 {
		ix.notify(written)
	}
	return nil
}

// inheritWindow: a line without a time of its own takes the time of the
// last line with a time in its file when both were read within this of
// each other.
const inheritWindow = time.Second

// lastTime is the time found in the last line of a file that had one, and
// when that line was read.
type lastTime struct{ ts, read int64 }

// inheritTimes gives a line without a time of its own (a stack trace
// frame, a continuation line) the time of the last line of its file that
// had one, when the two were read within inheritWindow: they were written
// together, so the trace sorts and counts with the line that started it
// instead of at the moment logbox read it (which, for a file read late,
// can be hours after). A line read on its own keeps its read time, and so
// does every line of a file whose lines carry no time.
func (ix *Index) inheritTimes(recs []pipeline.Record, keys []string, keep []int, parsed []extracted, now time.Time) {
	if ix.last == nil {
		ix.last = map[string]lastTime{}
	}
	for k, i := range keep {
		r := &recs[i]
		fk := keys[i]
		read := readTime(r, now).UnixNano()
		ex := &parsed[k]
		if ex.parsed {
			ix.last[fk] = lastTime{ts: ex.ts.UnixNano(), read: read}
			continue
		}
		if prev, ok := ix.last[fk]; ok && read-prev.read < int64(inheritWindow) && prev.read-read < int64(inheritWindow) && prev.ts <= read {
			ex.ts = time.Unix(0, prev.ts).UTC()
		}
	}
}

// inBatch reports whether off was taken from the current batch already.
func inBatch(pf *pendingFile, off int64) bool {
	if pf.inOrder {
		_, ok := slices.BinarySearch(pf.taken, off)
		return ok
	}
	return slices.Contains(pf.taken, off)
}

// readTime is the record's read time: now when it has none, or one the
// index cannot hold (before 1970 or after 2262, as another shipper's event
// may claim), which would wrap around in Unix nanoseconds.
func readTime(r *pipeline.Record, now time.Time) time.Time {
	if r.TS.IsZero() || r.TS.Before(pipeline.MinTime) || r.TS.After(pipeline.MaxTime) {
		return now
	}
	return r.TS
}

// stored lays r out as the block store keeps it, its fields from the
// leaves ex kept (keepNames) and the source's static fields.
func (ix *Index) stored(r *pipeline.Record, ex *extracted, now time.Time) storedLine {
	l := storedLine{
		TS:       ex.ts.UnixNano(),
		Ingested: readTime(r, now).UnixNano(),
		Offset:   r.Offset,
		End:      r.End,
		Level:    ex.level,
		Flags:    r.Flags,
		Line:     r.Line,
	}
	if ex.dropped {
		ix.dropped.Add(1)
		l.Flags = append(l.Flags[:len(l.Flags):len(l.Flags)], pipeline.FlagFieldsDropped)
	}
	if ex.unparsed {
		ix.unparsed.Add(1)
		l.Flags = append(l.Flags[:len(l.Flags):len(l.Flags)], pipeline.FlagUnparsed)
	}
	// The parsed leaves and the source's static fields (whose names the
	// parsers leave alone; a static value comes first), sorted by name
	// straight into the line, a name's values in turn.
	l.Fields, l.Nums = lineFields(ex.static, ex.leaves)
	ex.leaves = nil
	return l
}

// writeBlocks writes chunks (one block each, of the file infos[i]) into
// sh: block file first (fsynced; from then on the blocks are held and
// found by lookups, so a retry does not write them again), then their
// Bleve documents (indexDocs).
func (ix *Index) writeBlocks(ctx context.Context, sh *shard, infos []*blockInfo, chunks [][]storedLine) ([]*block, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	sh.mu.RLock()
	seq := sh.nextSeq
	sh.mu.RUnlock()
	bodies := make([][]byte, len(chunks))
	blocks := make([]*block, len(chunks))
	parallel(len(chunks), func(lo, hi int) {
		for i := lo; i < hi; i++ {
			bodies[i], blocks[i] = encodeBlock(seq+uint64(i), infos[i], chunks[i], sh.bf.version, ix.cfg.Masker)
			blocks[i].sh = sh
		}
	})
	if err := sh.bf.appendRecords(bodies, blocks); err != nil {
		return nil, fmt.Errorf("shard %s: %w", sh.name, err)
	}
	for _, b := range blocks {
		if b.version >= 3 {
			b.ts, b.levels = nil, nil // read from the record when needed
		}
	}
	sh.mu.Lock()
	sh.nextSeq = seq + uint64(len(chunks))
	sh.blocks = append(sh.blocks[:len(sh.blocks):len(sh.blocks)], blocks...)
	for _, b := range blocks {
		sh.lines += int64(b.n())
	}
	sh.mu.Unlock()
	ix.files.add(blocks)
	if err := ix.indexDocs(ctx, sh, blocks, chunks); err != nil {
		return nil, err
	}
	return blocks, nil
}

// indexDocs writes the Bleve documents of blocks (whose lines are
// chunks), and of the blocks of sh an earlier call failed to index, and
// waits until Bleve has persisted them (at most PersistTimeout, or until
// ctx ends). On failure they all wait in sh.unindexed for the next call:
// the blocks are durable in the block file, only Bleve does not name
// them yet.
//
// Bleve runs with unsafe_batch (see scorchConfig): Batch returns once
// the segment is searchable, and its persisted callback says when it is
// on disk. Waiting inside Batch instead is what a full disk breaks: when
// persisting fails, Batch closes the segment it already put in the
// index (its term caches become nil maps), and the next batch, search or
// in-memory merge that reads it panics in zapx ("assignment to entry in
// nil map"), the merge in a goroutine nobody can recover. With the
// callback the segment stays whole, Bleve retries persisting it, and a
// batch not persisted in time is written again (same document IDs).
func (ix *Index) indexDocs(ctx context.Context, sh *shard, blocks []*block, chunks [][]storedLine) error {
	sh.mu.Lock()
	retry := sh.unindexed
	sh.unindexed = nil
	sh.mu.Unlock()
	fail := func(err error) error {
		sh.mu.Lock()
		sh.unindexed = append(append(sh.unindexed, retry...), blocks...)
		sh.mu.Unlock()
		return fmt.Errorf("index blocks in shard %s: %w", sh.name, err)
	}
	all := append(retry[:len(retry):len(retry)], blocks...)
	lines := make([][]storedLine, len(retry), len(all))
	for i, b := range retry {
		ls, err := ix.lines(b, false)
		if err != nil {
			return fail(err)
		}
		lines[i] = ls
	}
	lines = append(lines, chunks...)
	if len(all) == 0 {
		return nil
	}
	if ix.failBleve != nil {
		if err := ix.failBleve(); err != nil {
			return fail(err)
		}
	}
	// Every block of sh before the first one here is in Bleve.
	first := all[0].seq
	for _, b := range all {
		first = min(first, b.seq)
	}
	// Two batches at once when there are two blocks to share (Bleve
	// builds one segment per batch on one core).
	parts := 1
	if len(all) >= 2 {
		parts = min(2, workers())
	}
	errs := make([]error, parts)
	var wg sync.WaitGroup
	for p := range parts {
		lo, hi := p*len(all)/parts, (p+1)*len(all)/parts
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				if r := recover(); r != nil {
					errs[p] = fmt.Errorf("bleve batch panicked: %v", r)
				}
			}()
			batch := sh.bi.NewBatch()
			persisted := make(chan error, 1)
			batch.SetPersistedCallback(func(err error) {
				select {
				case persisted <- err:
				default:
				}
			})
			if first > 0 {
				// A crash before these batches persist makes the next
				// open index the blocks from first on again
				// (reindexMissing), which overwrites what did persist.
				batch.SetInternal(indexedKey, []byte(strconv.FormatUint(first-1, 10)))
			}
			for i := lo; i < hi; i++ {
				if err := batch.IndexAdvanced(blockDoc(all[i], lines[i])); err != nil {
					errs[p] = err
					return
				}
			}
			if errs[p] = sh.bi.Batch(batch); errs[p] != nil {
				return
			}
			wait := time.NewTimer(ix.cfg.PersistTimeout)
			defer wait.Stop()
			select {
			case err := <-persisted:
				// Bleve (2.6) calls back only once the batch is on disk,
				// with a nil error; should it ever report a failure, the
				// batch is not durable and the write fails.
				if err != nil {
					errs[p] = fmt.Errorf("bleve could not persist the batch: %w", err)
				}
			case <-wait.C:
				errs[p] = fmt.Errorf("bleve did not persist the batch within %v (is the disk full?)", ix.cfg.PersistTimeout)
			case <-ctx.Done():
				errs[p] = fmt.Errorf("wait for bleve to persist the batch: %w", ctx.Err())
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fail(err)
	}
	for _, b := range all {
		b.terms = nil // in Bleve now; a block in memory keeps only its header
	}
	return nil
}

// retryUnindexed writes the Bleve documents earlier calls failed to write.
func (ix *Index) retryUnindexed(ctx context.Context) error {
	for _, sh := range ix.shardList() {
		sh.mu.RLock()
		n := len(sh.unindexed)
		sh.mu.RUnlock()
		if n > 0 {
			if err := ix.indexDocs(ctx, sh, nil, nil); err != nil {
				return err
			}
		}
	}
	return nil
}

// parallel runs fn over [0, n) split across the cores.
func parallel(n int, fn func(lo, hi int)) {
	w := min(workers(), n)
	if w <= 1 || n < 64 {
		fn(0, n)
		return
	}
	var wg sync.WaitGroup
	for p := range w {
		lo, hi := p*n/w, (p+1)*n/w
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(lo, hi)
		}()
	}
	wg.Wait()
}

// Collectors are the index's Prometheus metrics beyond Stats.
func (ix *Index) Collectors() []prometheus.Collector {
	return []prometheus.Collector{ix.latency}
}

// Stats describes the index for the status page.
type Stats struct {
	Docs           uint64 `json:"docs"`
	DocsWritten    uint64 `json:"docs_written"`
	BatchesWritten uint64 `json:"batches_written"`
	// Shards is the number of time shards; Bytes their size on disk.
	Shards int   `json:"shards"`
	Bytes  int64 `json:"bytes"`
	// Oldest and Newest are the start of the oldest and the end of the
	// newest shard (zero without shards).
	Oldest time.Time `json:"oldest,omitzero"`
	Newest time.Time `json:"newest,omitzero"`
	// ShardsDropped counts shards removed by retention since open.
	ShardsDropped uint64 `json:"shards_dropped"`
	// ReplaysSkipped counts lines skipped since open because the index
	// held them already (replays after a restart, Kafka redeliveries).
	ReplaysSkipped uint64 `json:"replays_skipped"`
	// FieldNames is the number of distinct JSON field names indexed, over
	// all shards (each shard takes at most MaxFieldNames).
	FieldNames int `json:"field_names"`
	// LinesFieldsDropped counts lines (since open) flagged fields_dropped.
	LinesFieldsDropped uint64 `json:"lines_fields_dropped"`
	// LinesUnparsed counts lines (since open) flagged unparsed: the
	// source's named parser did not fit them.
	LinesUnparsed uint64 `json:"lines_unparsed"`
	// FieldNamesRefused counts JSON leaves not indexed because their
	// shard held MaxFieldNames names already (since open).
	FieldNamesRefused uint64 `json:"field_values_refused"`
}

// Stats returns counts; Docs is the number of distinct lines held. It
// walks the shard directories for their size.
func (ix *Index) Stats() Stats {
	st := Stats{
		DocsWritten: ix.docs.Load(), BatchesWritten: ix.batches.Load(),
		ShardsDropped: ix.droppedShards.Load(), ReplaysSkipped: ix.replayed.Load(), LinesFieldsDropped: ix.dropped.Load(), LinesUnparsed: ix.unparsed.Load(),
	}
	names := map[string]struct{}{}
	for _, sh := range ix.shardList() {
		sh.mu.RLock()
		if !sh.gone {
			st.Docs += uint64(sh.lines)
			st.Shards++
			st.Bytes += dirSize(sh.dir)
			if st.Oldest.IsZero() {
				st.Oldest = sh.start
			}
			st.Newest = sh.end
		}
		sh.mu.RUnlock()
		sh.names.mu.Lock()
		for n := range sh.names.names {
			names[n] = struct{}{}
		}
		st.FieldNamesRefused += sh.names.refused
		sh.names.mu.Unlock()
	}
	st.FieldNames = len(names)
	return st
}

// Close closes the index. Call it after RunRetention and every Index
// call returned.
func (ix *Index) Close() error {
	ix.closeSubscriptions()
	ix.writeMu.Lock()
	defer ix.writeMu.Unlock()
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ix.searchMu.Lock()
	defer ix.searchMu.Unlock()
	ix.closed = true
	var errs []error
	for _, sh := range ix.shards {
		sh.mu.Lock()
		sh.gone = true
		if err := sh.bi.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close index shard %s: %w", sh.name, err))
		}
		if err := sh.bf.f.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close block file of shard %s: %w", sh.name, err))
		}
		sh.mu.Unlock()
	}
	ix.shards = map[int64]*shard{}
	return errors.Join(errs...)
}
