package index

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/search"
)

// Time shards.
//
// The index is one Bleve index per ShardSpan of event time (ts), in
// <Dir>/shards/<start>, <start> being the span's first instant in UTC as
// YYYYMMDD (spans of whole days) or YYYYMMDDTHHMM. Spans are aligned to
// the Unix epoch. Searches go to every shard at once through a
// bleve.IndexAlias, so sorting, cursors, facets and counts work across
// shards as on one index. Retention removes whole shards from the alias,
// then closes and deletes them, while indexing and searching go on.
//
// A line goes to the shard of its ts. A ts parsed from the line is the same
// on every replay, so a replay overwrites the line in place. A line without
// a parseable time has its read time as ts; a replay after a restart reads
// it again at a later time, which may fall into the next shard. So a line
// with a read-time ts that falls within replayWindow of the start of its
// shard is first looked up by ID in the previous shard, and overwritten
// there when found. A replay later than that after a shard boundary
// (the process down for longer than replayWindow across it) can double
// such lines.

// replayWindow: see above.
const replayWindow = 6 * time.Hour

// shard is the Bleve index of the lines with start <= ts < end.
type shard struct {
	name       string
	dir        string
	start, end time.Time
	bi         bleve.Index
	names      *fieldNames

	// Writers hold mu.RLock while writing a batch; drop takes mu.Lock, so
	// it waits for them, and writers see gone afterwards.
	mu   sync.RWMutex
	gone bool
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

func (ix *Index) shardsDir() string { return filepath.Join(ix.cfg.Dir, "shards") }

// openShards opens every shard under <Dir>/shards.
func (ix *Index) openShards() error {
	if err := os.MkdirAll(ix.shardsDir(), 0o755); err != nil {
		return fmt.Errorf("create index dir: %w", err)
	}
	if _, err := os.Stat(filepath.Join(ix.cfg.Dir, "index_meta.json")); err == nil {
		ix.log.Warn("an index of an older logbox (one index, no time shards) is in the index dir and is not searched; delete its files (index_meta.json, store) to free the space, or leave them",
			"path", ix.cfg.Dir)
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
		ix.alias.Add(sh.bi)
	}
	return nil
}

// openShard opens (or with create, creates) the shard starting at start.
func (ix *Index) openShard(start time.Time, name string, create bool) (*shard, error) {
	dir := filepath.Join(ix.shardsDir(), name)
	var (
		bi  bleve.Index
		err error
	)
	if create {
		m, merr := newMapping()
		if merr != nil {
			return nil, merr
		}
		bi, err = bleve.New(dir, m)
	} else {
		bi, err = bleve.Open(dir)
	}
	if err != nil {
		return nil, fmt.Errorf("open index shard %q: %w", dir, err)
	}
	existing, err := bi.Fields()
	if err != nil {
		bi.Close()
		return nil, fmt.Errorf("list fields of index shard %q: %w", dir, err)
	}
	return &shard{
		name: name, dir: dir, start: start, end: start.Add(ix.cfg.ShardSpan), bi: bi,
		names: newFieldNames(ix.cfg.MaxFieldNames, existing),
	}, nil
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
	ix.alias.Add(sh.bi)
	ix.log.Info("index shard created", "path", sh.dir)
	return sh, nil
}

// previousShard returns the shard just before sh, or nil.
func (ix *Index) previousShard(sh *shard) *shard {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	return ix.shards[sh.start.Add(-ix.cfg.ShardSpan).UnixNano()]
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

// search runs sr over every shard; with no shard yet it finds nothing.
func (ix *Index) search(ctx context.Context, sr *bleve.SearchRequest) (*bleve.SearchResult, error) {
	out, err := ix.alias.SearchInContext(ctx, sr)
	if errors.Is(err, bleve.ErrorAliasEmpty) {
		return &bleve.SearchResult{Request: sr, Status: &bleve.SearchStatus{}, Hits: search.DocumentMatchCollection{}, Facets: search.FacetResults{}}, nil
	}
	return out, err
}

// existing returns which of ids sh holds.
func (sh *shard) existing(ctx context.Context, ids []string) (map[string]bool, error) {
	sr := bleve.NewSearchRequestOptions(bleve.NewDocIDQuery(ids), len(ids), 0, false)
	out, err := sh.bi.SearchInContext(ctx, sr)
	if err != nil {
		return nil, err
	}
	found := make(map[string]bool, len(out.Hits))
	for _, h := range out.Hits {
		found[h.ID] = true
	}
	return found, nil
}

// dropShard removes sh from searches, waits for the searches and writes
// in flight on it, closes and deletes it.
func (ix *Index) dropShard(sh *shard, reason string) error {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if ix.shards[sh.start.UnixNano()] != sh {
		return nil
	}
	delete(ix.shards, sh.start.UnixNano())
	// Remove waits for the alias's searches in flight.
	ix.alias.Remove(sh.bi)
	sh.mu.Lock()
	sh.gone = true
	cerr := sh.bi.Close()
	sh.mu.Unlock()
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
	shards := ix.shardList()
	var errs []error
	keep := shards[:0:0]
	for _, sh := range shards {
		if ix.cfg.Retention > 0 && !sh.end.After(now.Add(-ix.cfg.Retention)) {
			if err := ix.dropShard(sh, "older than retention"); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		keep = append(keep, sh)
	}
	if ix.cfg.RetentionBytes > 0 && len(keep) > 1 {
		sizes := make([]int64, len(keep))
		var total int64
		for i, sh := range keep {
			sizes[i] = dirSize(sh.dir)
			total += sizes[i]
		}
		for i := 0; total > ix.cfg.RetentionBytes && i < len(keep)-1; i++ {
			if ctx.Err() != nil {
				break
			}
			if err := ix.dropShard(keep[i], fmt.Sprintf("index takes %d bytes, more than retention bytes %d", total, ix.cfg.RetentionBytes)); err != nil {
				errs = append(errs, err)
			}
			total -= sizes[i]
		}
	}
	return errors.Join(errs...)
}

// RunRetention applies retention every RetentionInterval (and once at
// start) until ctx ends; failures are logged and retried on the next
// round. It returns nil when ctx ends. Run it beside Run (direct mode) or
// the Kafka consumer; it runs fine with neither.
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
