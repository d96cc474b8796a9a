// Package index keeps log lines in Bleve and answers searches over them.
//
// Its API is "index a batch of records" (Index, or Publish for direct mode)
// and "search for lines" (Search); how lines are laid out in Bleve stays
// inside, so the layout can change without touching the pipeline or HTTP.
//
// Documents are keyed by pipeline.Record.ID (host, file identity, byte
// offset), so indexing the same line twice overwrites it: replays after a
// crash or a Kafka redelivery never double a line.
package index

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"regexp"
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

	"github.com/logbox/logbox/appliance/pipeline"
)

// Config says where the index lives and how direct-mode publishes are batched.
type Config struct {
	Dir string
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
}

// Index is an open Bleve index. Search and Index are safe for concurrent use.
type Index struct {
	cfg   Config
	log   *slog.Logger
	bi    bleve.Index
	queue chan *pipeline.Batch

	docs    atomic.Uint64 // documents written since open (overwrites included)
	batches atomic.Uint64

	// Live tails (see Tail): Index hands each written batch's IDs to them.
	subsMu      sync.Mutex
	subs        map[*subscription]struct{}
	subscribers atomic.Int32
}

// Open opens the index at cfg.Dir, creating it if missing. The caller
// closes it with Close after Run has returned.
func Open(cfg Config, log *slog.Logger) (*Index, error) {
	cfg.setDefaults()
	bi, err := bleve.Open(cfg.Dir)
	if errors.Is(err, bleve.ErrorIndexPathDoesNotExist) {
		m, merr := newMapping()
		if merr != nil {
			return nil, merr
		}
		if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
			return nil, fmt.Errorf("create index dir: %w", err)
		}
		// bleve wants to create the directory itself.
		_ = os.Remove(cfg.Dir)
		bi, err = bleve.New(cfg.Dir, m)
	}
	if err != nil {
		return nil, fmt.Errorf("open index %q: %w", cfg.Dir, err)
	}
	return &Index{
		cfg:   cfg,
		log:   log.With("component", "index"),
		bi:    bi,
		queue: make(chan *pipeline.Batch, cfg.QueueBatches),
		subs:  map[*subscription]struct{}{},
	}, nil
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

	fields := bleve.NewDocumentMapping()
	fields.Dynamic = true
	dm.AddSubDocumentMapping("fields", fields)

	im.DefaultMapping = dm
	return im, nil
}

// doc is what one line looks like inside Bleve.
type doc struct {
	Line       string            `json:"line"`
	TS         string            `json:"ts"`
	Offset     float64           `json:"offset"`
	Host       string            `json:"host"`
	Source     string            `json:"source"`
	SourceName string            `json:"source_name,omitempty"`
	FileID     string            `json:"file_id"`
	Level      string            `json:"level,omitempty"`
	Fields     map[string]string `json:"fields,omitempty"`
	Flags      []string          `json:"flags,omitempty"`
}

var levelRE = regexp.MustCompile(`\b(FATAL|CRITICAL|ERROR|ERR|WARNING|WARN|INFO|DEBUG|TRACE)\b`)

// Level finds the severity named in a line and normalizes it to
// ERROR, WARN, INFO or DEBUG; it returns "" when the line names none.
func Level(line string) string {
	// Look only at the head of a line: levels sit near the start, and this
	// keeps the cost per line bounded.
	head := line
	if len(head) > 200 {
		head = head[:200]
	}
	m := levelRE.FindString(head)
	switch m {
	case "FATAL", "CRITICAL", "ERROR", "ERR":
		return "ERROR"
	case "WARNING", "WARN":
		return "WARN"
	case "INFO":
		return "INFO"
	case "DEBUG", "TRACE":
		return "DEBUG"
	}
	return ""
}

// Index writes recs in one Bleve batch. When it returns nil the records are
// durable (Bleve's batch waits for its segment to be persisted).
func (ix *Index) Index(ctx context.Context, recs []pipeline.Record) error {
	if len(recs) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	b := ix.bi.NewBatch()
	var ids []string
	if ix.subscribers.Load() > 0 {
		ids = make([]string, 0, len(recs))
	}
	for i := range recs {
		r := &recs[i]
		d := doc{
			Line:       r.Line,
			TS:         r.TS.UTC().Format(time.RFC3339Nano),
			Offset:     float64(r.Offset),
			Host:       r.Host,
			Source:     r.Source,
			SourceName: r.SourceName,
			FileID:     r.FileID,
			Level:      Level(r.Line),
			Fields:     r.Fields,
			Flags:      r.Flags,
		}
		id := r.ID()
		if err := b.Index(id, d); err != nil {
			return fmt.Errorf("add %s to batch: %w", id, err)
		}
		if ids != nil {
			ids = append(ids, id)
		}
	}
	if err := ix.bi.Batch(b); err != nil {
		return fmt.Errorf("write batch of %d: %w", len(recs), err)
	}
	ix.docs.Add(uint64(len(recs)))
	ix.batches.Add(1)
	if ids != nil {
		ix.notify(ids)
	}
	return nil
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
	if req.Cursor != "" {
		after, err := decodeCursor(req.Cursor)
		if err != nil {
			return res, &pipeline.QueryError{Msg: "cursor: " + err.Error()}
		}
		sr.SearchAfter = after
	}
	out, err := ix.bi.SearchInContext(ctx, sr)
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
	for k, v := range h.Fields {
		name, ok := strings.CutPrefix(k, "fields.")
		if !ok {
			continue
		}
		if hit.Fields == nil {
			hit.Fields = map[string]string{}
		}
		hit.Fields[name] = fmt.Sprint(v)
	}
	return hit
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

// Stats describes the index for the status page.
type Stats struct {
	Docs           uint64 `json:"docs"`
	DocsWritten    uint64 `json:"docs_written"`
	BatchesWritten uint64 `json:"batches_written"`
	Queued         int    `json:"queued_batches"`
}

// Stats returns counts; Docs is the number of distinct lines held.
func (ix *Index) Stats() Stats {
	n, _ := ix.bi.DocCount()
	return Stats{Docs: n, DocsWritten: ix.docs.Load(), BatchesWritten: ix.batches.Load(), Queued: len(ix.queue)}
}

// Close closes the index. Call it after Run and every Index call returned.
func (ix *Index) Close() error {
	ix.closeSubscriptions()
	if err := ix.bi.Close(); err != nil {
		return fmt.Errorf("close index: %w", err)
	}
	return nil
}
