// Package index keeps log lines in Bleve and answers searches over them.
//
// Its API is "index a batch of records" (Index, or Publish for direct mode)
// and "search for lines" (Search); how lines are laid out in Bleve stays
// inside, so the layout can change without touching the pipeline or HTTP.
//
// Documents are keyed by pipeline.Record.ID (host, file identity, byte
// offset), so indexing the same line twice overwrites it: replays after a
// crash or a Kafka redelivery never double a line.
//
// The index is split into time shards (shards.go) searched as one; fields
// parsed from lines are described in fields.go.
package index

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/analysis/analyzer/custom"
	"github.com/blevesearch/bleve/v2/analysis/analyzer/keyword"
	"github.com/blevesearch/bleve/v2/analysis/datetime/flexible"
	"github.com/blevesearch/bleve/v2/analysis/token/lowercase"
	"github.com/blevesearch/bleve/v2/analysis/tokenizer/single"
	"github.com/blevesearch/bleve/v2/analysis/tokenizer/unicode"
	"github.com/blevesearch/bleve/v2/mapping"
	"github.com/blevesearch/bleve/v2/search"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/logbox/logbox/appliance/pipeline"
)

// Config says where the index lives, how it is split into time shards and
// kept, and how direct-mode publishes are batched.
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
	// BatchSize caps the records written in one Bleve batch (default 5000).
	BatchSize int
	// FlushInterval is how long Run waits for more records before writing a
	// partial batch (default 100ms).
	FlushInterval time.Duration
	// QueueBatches bounds the pipeline batches waiting in Publish; a full
	// queue blocks the tailers (backpressure). Default 64.
	QueueBatches int
	// DrainTimeout bounds how long Run keeps indexing queued batches after
	// its context ends (default 5s).
	DrainTimeout time.Duration
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
}

func (c *Config) setDefaults() {
	if c.BatchSize <= 0 {
		c.BatchSize = 5000
	}
	if c.FlushInterval <= 0 {
		c.FlushInterval = 100 * time.Millisecond
	}
	if c.QueueBatches <= 0 {
		c.QueueBatches = 64
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = 5 * time.Second
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
	if c.ShardSpan == 0 {
		c.ShardSpan = day
	}
	if c.Retention == 0 {
		c.Retention = 7 * day
	}
	if c.RetentionInterval <= 0 {
		c.RetentionInterval = time.Minute
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
	cfg   Config
	log   *slog.Logger
	queue chan *pipeline.Batch

	mu     sync.Mutex       // guards shards, closed and alias membership
	shards map[int64]*shard // by start (Unix ns)
	closed bool
	alias  bleve.IndexAlias

	// latency is how long Index takes to make a batch durable.
	latency prometheus.Histogram

	docs          atomic.Uint64 // documents written since open (overwrites included)
	batches       atomic.Uint64
	dropped       atomic.Uint64 // lines flagged FlagFieldsDropped since open
	replayed      atomic.Uint64 // read-time lines found in the previous shard and overwritten there
	droppedShards atomic.Uint64

	// Live tails (see Tail): Index hands each written batch's IDs to them.
	subsMu      sync.Mutex
	subs        map[*subscription]struct{}
	subscribers atomic.Int32
}

// Open opens the index at cfg.Dir, creating it if missing. The caller
// closes it with Close after Run, RunRetention and every other call have
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
		cfg:    cfg,
		log:    log.With("component", "index"),
		queue:  make(chan *pipeline.Batch, cfg.QueueBatches),
		subs:   map[*subscription]struct{}{},
		shards: map[int64]*shard{},
		alias:  bleve.NewIndexAlias(),
	}
	if err := ix.openShards(); err != nil {
		for _, sh := range ix.shards {
			sh.bi.Close()
		}
		return nil, err
	}
	return ix, nil
}

const (
	lineAnalyzer  = "logline"
	levelAnalyzer = "keyword_lower"
	tsParser      = "rfc3339nano"
)

func newMapping() (*mapping.IndexMappingImpl, error) {
	im := bleve.NewIndexMapping()
	// Log text: split on Unicode word boundaries and lowercase, but keep
	// stop words: "not", "no" and "is" matter in log lines.
	err := im.AddCustomAnalyzer(lineAnalyzer, map[string]interface{}{
		"type":          custom.Name,
		"tokenizer":     unicode.Name,
		"token_filters": []string{lowercase.Name},
	})
	if err != nil {
		return nil, fmt.Errorf("add analyzer: %w", err)
	}
	// Levels match whatever the case the user types (level:error finds
	// ERROR); the stored value stays as Level returns it.
	err = im.AddCustomAnalyzer(levelAnalyzer, map[string]interface{}{
		"type":          custom.Name,
		"tokenizer":     single.Name,
		"token_filters": []string{lowercase.Name},
	})
	if err != nil {
		return nil, fmt.Errorf("add analyzer: %w", err)
	}
	// Times are handed to Bleve as RFC 3339 strings with nanoseconds so the
	// stored value keeps its fraction (a time.Time is stored to the second).
	err = im.AddCustomDateTimeParser(tsParser, map[string]interface{}{
		"type":    flexible.Name,
		"layouts": []interface{}{time.RFC3339Nano},
	})
	if err != nil {
		return nil, fmt.Errorf("add date parser: %w", err)
	}
	// Fields other than the line (host, source, per-source fields) match
	// whole values.
	im.DefaultAnalyzer = keyword.Name
	im.DefaultField = "line"
	im.StoreDynamic = true
	im.IndexDynamic = true
	// Per-source fields (fields.NAME) are facetable: facets read doc values.
	im.DocValuesDynamic = true

	dm := bleve.NewDocumentStaticMapping()

	line := bleve.NewTextFieldMapping()
	line.Analyzer = lineAnalyzer
	line.Store = true
	// Term vectors hold positions: phrase queries need them.
	line.IncludeTermVectors = true
	line.IncludeInAll = false
	line.DocValues = false
	dm.AddFieldMappingsAt("line", line)

	ts := bleve.NewDateTimeFieldMapping()
	ts.DateFormat = tsParser
	ts.Store = true
	ts.DocValues = true
	ts.IncludeInAll = false
	dm.AddFieldMappingsAt("ts", ts)

	ingested := bleve.NewDateTimeFieldMapping()
	ingested.DateFormat = tsParser
	ingested.Store = true
	ingested.DocValues = false
	ingested.IncludeInAll = false
	dm.AddFieldMappingsAt("ingested", ingested)

	off := bleve.NewNumericFieldMapping()
	off.Store = true
	off.IncludeInAll = false
	dm.AddFieldMappingsAt("offset", off)

	for _, name := range []string{"host", "source", "source_name", "file_id", "level", "flags"} {
		kw := bleve.NewKeywordFieldMapping()
		kw.Store = true
		kw.IncludeInAll = false
		kw.DocValues = name != "file_id"
		if name == "level" {
			kw.Analyzer = levelAnalyzer
		}
		dm.AddFieldMappingsAt(name, kw)
	}

	// Source fields and JSON leaves as keywords (numbers as their text).
	fields := bleve.NewDocumentMapping()
	fields.Dynamic = true
	dm.AddSubDocumentMapping("fields", fields)
	// JSON numbers again, as numbers: num.<path> answers ranges. Queries
	// on fields.<path> with a numeric range are pointed here.
	num := bleve.NewDocumentMapping()
	num.Dynamic = true
	dm.AddSubDocumentMapping("num", num)

	// Queries name their fields (line is the default), so the _all
	// composite field would only cost time: the profile showed 12% of
	// indexing spent building it.
	dm.AddSubDocumentMapping("_all", bleve.NewDocumentDisabledMapping())
	im.DefaultMapping = dm
	return im, nil
}

// doc is what one line looks like inside Bleve.
type doc struct {
	Line       string         `json:"line"`
	TS         string         `json:"ts"`
	Ingested   string         `json:"ingested"`
	Offset     float64        `json:"offset"`
	Host       string         `json:"host"`
	Source     string         `json:"source"`
	SourceName string         `json:"source_name,omitempty"`
	FileID     string         `json:"file_id"`
	Level      string         `json:"level,omitempty"`
	Fields     map[string]any `json:"fields,omitempty"`
	Num        map[string]any `json:"num,omitempty"`
	Flags      []string       `json:"flags,omitempty"`
}

// Index writes recs, one Bleve batch per shard they fall in. When it
// returns nil the records are durable (Bleve's batch waits for its segment
// to be persisted); after an error some may be, and the caller retries
// them all (a rewrite overwrites).
func (ix *Index) Index(ctx context.Context, recs []pipeline.Record) error {
	if len(recs) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	start := time.Now()
	now := ix.cfg.Now()
	parsed := make([]extracted, len(recs))
	groups := map[*shard][]int{}
	var order []*shard
	var sh *shard
	for i := range recs {
		r := &recs[i]
		parsed[i] = parseLine(r.Line, r.TS, r.Fields, now, ix.cfg.MaxFieldsPerLine)
		if sh == nil || parsed[i].ts.Before(sh.start) || !parsed[i].ts.Before(sh.end) {
			var err error
			if sh, err = ix.shardFor(parsed[i].ts); err != nil {
				return err
			}
		}
		if groups[sh] == nil {
			order = append(order, sh)
		}
		groups[sh] = append(groups[sh], i)
	}
	if err := ix.routeReplays(ctx, recs, parsed, groups, &order); err != nil {
		return err
	}
	for _, sh := range order {
		if err := ix.write(ctx, sh, recs, parsed, groups[sh]); err != nil {
			return err
		}
	}
	ix.docs.Add(uint64(len(recs)))
	ix.batches.Add(1)
	ix.latency.Observe(time.Since(start).Seconds())
	if ix.subscribers.Load() > 0 {
		ids := make([]string, len(recs))
		for i := range recs {
			ids[i] = recs[i].ID()
		}
		ix.notify(ids)
	}
	return nil
}

// routeReplays moves the lines with a read-time ts near the start of their
// shard to the previous shard when it already holds them (see shards.go).
func (ix *Index) routeReplays(ctx context.Context, recs []pipeline.Record, parsed []extracted, groups map[*shard][]int, order *[]*shard) error {
	for _, sh := range *order {
		var cand []int
		for _, i := range groups[sh] {
			if !parsed[i].parsed && parsed[i].ts.Sub(sh.start) < replayWindow {
				cand = append(cand, i)
			}
		}
		if len(cand) == 0 {
			continue
		}
		prev := ix.previousShard(sh)
		if prev == nil {
			continue
		}
		ids := make([]string, len(cand))
		for k, i := range cand {
			ids[k] = recs[i].ID()
		}
		prev.mu.RLock()
		var found map[string]bool
		var err error
		if !prev.gone {
			found, err = prev.existing(ctx, ids)
		}
		prev.mu.RUnlock()
		if err != nil {
			return fmt.Errorf("look up replayed lines in shard %s: %w", prev.name, err)
		}
		if len(found) == 0 {
			continue
		}
		keep := groups[sh][:0:0]
		for _, i := range groups[sh] {
			if found[recs[i].ID()] {
				if groups[prev] == nil {
					*order = append(*order, prev)
				}
				groups[prev] = append(groups[prev], i)
				ix.replayed.Add(1)
			} else {
				keep = append(keep, i)
			}
		}
		groups[sh] = keep
	}
	return nil
}

// write indexes recs[idx] into sh in one batch. A shard dropped by
// retention meanwhile is created again.
func (ix *Index) write(ctx context.Context, sh *shard, recs []pipeline.Record, parsed []extracted, idx []int) error {
	if len(idx) == 0 {
		return nil
	}
	for attempt := 0; ; attempt++ {
		sh.mu.RLock()
		if sh.gone {
			sh.mu.RUnlock()
			if attempt > 2 {
				return fmt.Errorf("index shard %s dropped while writing to it", sh.name)
			}
			var err error
			if sh, err = ix.shardFor(sh.start); err != nil {
				return err
			}
			continue
		}
		err := ix.writeLocked(ctx, sh, recs, parsed, idx)
		sh.mu.RUnlock()
		return err
	}
}

func (ix *Index) writeLocked(ctx context.Context, sh *shard, recs []pipeline.Record, parsed []extracted, idx []int) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b := sh.bi.NewBatch()
	for _, i := range idx {
		r := &recs[i]
		ex := parsed[i]
		ex.admit(sh.names)
		id := r.ID()
		if err := b.Index(id, ix.docFor(r, &ex)); err != nil {
			return fmt.Errorf("add %s to batch: %w", id, err)
		}
	}
	if err := sh.bi.Batch(b); err != nil {
		return fmt.Errorf("write batch of %d to shard %s: %w", len(idx), sh.name, err)
	}
	return nil
}

// docFor lays r out as a Bleve document, with the time, level and fields
// parsed from its line (see extract).
func (ix *Index) docFor(r *pipeline.Record, ex *extracted) doc {
	flags := r.Flags
	if ex.dropped {
		ix.dropped.Add(1)
		flags = append(flags[:len(flags):len(flags)], pipeline.FlagFieldsDropped)
	}
	return doc{
		Line:       r.Line,
		TS:         ex.ts.UTC().Format(time.RFC3339Nano),
		Ingested:   r.TS.UTC().Format(time.RFC3339Nano),
		Offset:     float64(r.Offset),
		Host:       r.Host,
		Source:     r.Source,
		SourceName: r.SourceName,
		FileID:     r.FileID,
		Level:      ex.level,
		Fields:     ex.fields,
		Num:        ex.num,
		Flags:      flags,
	}
}

// Publish queues b for Run to index; it is the direct-mode sink (no Kafka).
// It blocks while the queue is full and returns ctx's error if ctx ends
// first. b is acked once its records are durable in the index.
func (ix *Index) Publish(ctx context.Context, b *pipeline.Batch) error {
	select {
	case ix.queue <- b:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Run indexes what Publish queues, coalescing batches into Bleve batches of
// up to BatchSize records, and acks each pipeline batch once written. A
// failed write is retried with backoff, never dropped. When ctx ends, Run
// keeps indexing what is already queued for at most DrainTimeout (stop the
// publishers first), then returns; batches left then are not acked and
// their lines are read again after a restart.
func (ix *Index) Run(ctx context.Context) error {
	var (
		pending []*pipeline.Batch
		recs    []pipeline.Record
	)
	flush := func(ctx context.Context) bool {
		backoff := 100 * time.Millisecond
		for {
			err := ix.Index(ctx, recs)
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				return false
			}
			ix.log.Warn("index write failed; lines are held and retried, tailers pause meanwhile; check disk space and permissions of the data dir", "err", err)
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
				return false
			}
			backoff = min(backoff*2, 5*time.Second)
		}
		for _, b := range pending {
			b.Ack()
		}
		pending, recs = pending[:0], recs[:0]
		return true
	}
	add := func(b *pipeline.Batch) {
		pending = append(pending, b)
		recs = append(recs, b.Records...)
	}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			dctx, cancel := context.WithTimeout(context.Background(), ix.cfg.DrainTimeout)
			defer cancel()
			for {
				select {
				case b := <-ix.queue:
					add(b)
					if len(recs) < ix.cfg.BatchSize {
						continue
					}
				default:
				}
				if len(recs) == 0 || !flush(dctx) || len(ix.queue) == 0 {
					return nil
				}
			}
		case b := <-ix.queue:
			if len(pending) == 0 {
				timer.Reset(ix.cfg.FlushInterval)
			}
			add(b)
			if len(recs) >= ix.cfg.BatchSize {
				timer.Stop()
				flush(ctx)
			}
		case <-timer.C:
			flush(ctx)
		}
	}
}

// Search runs req and returns hits newest first.
func (ix *Index) Search(ctx context.Context, req pipeline.SearchRequest) (pipeline.SearchResult, error) {
	var res pipeline.SearchResult
	if err := ctx.Err(); err != nil {
		return res, err
	}
	q, err := buildQuery(req.Query, req.From, req.To)
	if err != nil {
		return res, err
	}
	limit := req.Limit
	if limit <= 0 {
		limit = 100
	}
	if limit > 10000 {
		limit = 10000
	}
	sr := bleve.NewSearchRequestOptions(q, limit, 0, false)
	sr.Fields = []string{"*"}
	sr.SortBy([]string{"-ts", "-_id"})
	// Term locations of the line (it has term vectors) are the highlights.
	sr.IncludeLocations = !req.NoHighlights
	if req.Cursor != "" {
		after, err := decodeCursor(req.Cursor)
		if err != nil {
			return res, &pipeline.QueryError{Msg: "cursor: " + err.Error()}
		}
		sr.SearchAfter = after
	}
	out, err := ix.search(ctx, sr)
	if err != nil {
		return res, fmt.Errorf("search %q: %w", req.Query, err)
	}
	res.Total = out.Total
	res.Hits = make([]pipeline.Hit, 0, len(out.Hits))
	for _, h := range out.Hits {
		res.Hits = append(res.Hits, hitFrom(h))
	}
	if len(out.Hits) == limit {
		res.Cursor = encodeCursor(out.Hits[len(out.Hits)-1].Sort)
	}
	return res, nil
}

func hitFrom(h *search.DocumentMatch) pipeline.Hit {
	str := func(k string) string {
		s, _ := h.Fields[k].(string)
		return s
	}
	hit := pipeline.Hit{
		ID:     h.ID,
		Host:   str("host"),
		Source: str("source"),
		FileID: str("file_id"),
		Line:   str("line"),
		Level:  str("level"),
	}
	if ts, err := time.Parse(time.RFC3339Nano, str("ts")); err == nil {
		hit.TS = ts
	}
	if ts, err := time.Parse(time.RFC3339Nano, str("ingested")); err == nil {
		hit.Ingested = ts
	}
	switch f := h.Fields["flags"].(type) {
	case string:
		hit.Flags = []string{f}
	case []interface{}:
		for _, v := range f {
			hit.Flags = append(hit.Flags, fmt.Sprint(v))
		}
	}
	if off, ok := h.Fields["offset"].(float64); ok {
		hit.Offset = int64(off)
	}
	hit.Highlights = highlights(h.Locations["line"], len(hit.Line))
	for k, v := range h.Fields {
		name, ok := strings.CutPrefix(k, "fields.")
		if !ok {
			continue
		}
		if hit.Fields == nil {
			hit.Fields = map[string]string{}
		}
		if vs, ok := v.([]interface{}); ok {
			// A JSON array: its values joined.
			parts := make([]string, len(vs))
			for i, e := range vs {
				parts[i] = fmt.Sprint(e)
			}
			hit.Fields[name] = strings.Join(parts, ", ")
			continue
		}
		hit.Fields[name] = fmt.Sprint(v)
	}
	return hit
}

// highlights turns the term locations of the line into sorted,
// non-overlapping byte ranges within a line of n bytes.
func highlights(tl search.TermLocationMap, n int) []pipeline.Range {
	var rs []pipeline.Range
	for _, locs := range tl {
		for _, l := range locs {
			if l.Start < l.End && l.End <= uint64(n) {
				rs = append(rs, pipeline.Range{Field: "line", Start: int(l.Start), End: int(l.End)})
			}
		}
	}
	if len(rs) == 0 {
		return nil
	}
	slices.SortFunc(rs, func(a, b pipeline.Range) int { return cmp.Or(a.Start-b.Start, a.End-b.End) })
	out := rs[:1]
	for _, r := range rs[1:] {
		last := &out[len(out)-1]
		if r.Start <= last.End {
			last.End = max(last.End, r.End)
			continue
		}
		out = append(out, r)
	}
	return out
}

// A cursor holds the sort values of the last hit. They are Bleve's encoded
// terms (binary), so each is base64-encoded on its own before the list is.
func encodeCursor(sort []string) string {
	enc := make([]string, len(sort))
	for i, v := range sort {
		enc[i] = base64.RawURLEncoding.EncodeToString([]byte(v))
	}
	b, _ := json.Marshal(enc)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(c string) ([]string, error) {
	bad := errors.New("not a cursor from this server")
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return nil, bad
	}
	var s []string
	if err := json.Unmarshal(b, &s); err != nil || len(s) != 2 {
		return nil, bad
	}
	for i, v := range s {
		raw, err := base64.RawURLEncoding.DecodeString(v)
		if err != nil {
			return nil, bad
		}
		s[i] = string(raw)
	}
	return s, nil
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
	Queued         int    `json:"queued_batches"`
	// Shards is the number of time shards; Bytes their size on disk.
	Shards int   `json:"shards"`
	Bytes  int64 `json:"bytes"`
	// Oldest and Newest are the start of the oldest and the end of the
	// newest shard (zero without shards).
	Oldest time.Time `json:"oldest,omitzero"`
	Newest time.Time `json:"newest,omitzero"`
	// ShardsDropped counts shards removed by retention since open.
	ShardsDropped uint64 `json:"shards_dropped"`
	// ReplaysRouted counts lines with a read-time ts found in the
	// previous shard and overwritten there (since open).
	ReplaysRouted uint64 `json:"replays_routed"`
	// FieldNames is the number of distinct JSON field names indexed, over
	// all shards (each shard takes at most MaxFieldNames).
	FieldNames int `json:"field_names"`
	// LinesFieldsDropped counts lines (since open) flagged fields_dropped.
	LinesFieldsDropped uint64 `json:"lines_fields_dropped"`
	// FieldNamesRefused counts JSON leaves not indexed because their
	// shard held MaxFieldNames names already (since open).
	FieldNamesRefused uint64 `json:"field_values_refused"`
}

// Stats returns counts; Docs is the number of distinct lines held. It
// walks the shard directories for their size.
func (ix *Index) Stats() Stats {
	st := Stats{
		DocsWritten: ix.docs.Load(), BatchesWritten: ix.batches.Load(), Queued: len(ix.queue),
		ShardsDropped: ix.droppedShards.Load(), ReplaysRouted: ix.replayed.Load(), LinesFieldsDropped: ix.dropped.Load(),
	}
	names := map[string]struct{}{}
	for _, sh := range ix.shardList() {
		sh.mu.RLock()
		if !sh.gone {
			n, _ := sh.bi.DocCount()
			st.Docs += n
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

// Close closes the index. Call it after Run, RunRetention and every Index
// call returned.
func (ix *Index) Close() error {
	ix.closeSubscriptions()
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ix.closed = true
	var errs []error
	for _, sh := range ix.shards {
		sh.mu.Lock()
		sh.gone = true
		if err := sh.bi.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close index shard %s: %w", sh.name, err))
		}
		sh.mu.Unlock()
	}
	ix.shards = map[int64]*shard{}
	if err := ix.alias.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close index: %w", err))
	}
	return errors.Join(errs...)
}
