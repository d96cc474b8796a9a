package index

import (
	"context"
	"fmt"
	"sync"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/search/query"

	"github.com/logbox/logbox/appliance/pipeline"
)

// tailChunk bounds the IDs matched, and the resumed lines fetched, per Next.
const tailChunk = 1000

// subscription is one live tail. Index only appends the IDs it wrote to
// pending (never blocking); the reader's Next runs the query against them.
type subscription struct {
	ix     *Index
	q      query.Query
	ready  chan struct{} // capacity 1: "pending changed"
	closed chan struct{}

	mu       sync.Mutex
	pending  []string
	overflow bool
	gone     bool // Close or index Close

	// Resume state: resumeAfter holds the sort values ([ts, _id]) of the
	// last line sent; nil when not (or no longer) resuming.
	resumeAfter []string
	resumed     map[string]struct{} // IDs sent while resuming, so live ones are not sent twice
	resumeLeft  int
}

// Tail opens a live tail of the lines matching req.Query that are indexed
// from now on. With req.LastEventID (the ID of a hit a previous tail sent),
// the lines after that hit by (ts, id) come first, up to TailResumeMax. The
// caller must Close the stream. A bad query is a *pipeline.QueryError.
func (ix *Index) Tail(ctx context.Context, req pipeline.TailRequest) (pipeline.TailStream, error) {
	q, err := parseUserQuery(req.Query)
	if err != nil {
		return nil, err
	}
	s := &subscription{
		ix:     ix,
		q:      q,
		ready:  make(chan struct{}, 1),
		closed: make(chan struct{}),
	}
	// Register before looking up the resume point: a line indexed in
	// between is then either pending or found by the resume, never missed.
	ix.subsMu.Lock()
	ix.subs[s] = struct{}{}
	ix.subscribers.Add(1)
	ix.subsMu.Unlock()
	if req.LastEventID != "" {
		if err := s.startResume(ctx, req.LastEventID); err != nil {
			s.Close()
			return nil, err
		}
	}
	return s, nil
}

// startResume finds the sort position of the last hit a client saw. An
// unknown ID (deleted by retention, or from another server) resumes
// nothing: the tail goes live.
func (s *subscription) startResume(ctx context.Context, lastID string) error {
	sr := bleve.NewSearchRequestOptions(bleve.NewDocIDQuery([]string{lastID}), 1, 0, false)
	sr.SortBy([]string{"ts", "_id"})
	out, err := s.ix.search(ctx, sr)
	if err != nil {
		return fmt.Errorf("find Last-Event-ID %q: %w", lastID, err)
	}
	if len(out.Hits) == 0 {
		return nil
	}
	s.resumeAfter = out.Hits[0].Sort
	s.resumed = map[string]struct{}{}
	s.resumeLeft = s.ix.cfg.TailResumeMax
	select {
	case s.ready <- struct{}{}:
	default:
	}
	return nil
}

func (s *subscription) Ready() <-chan struct{} { return s.ready }

// Close ends the subscription; it is safe to call more than once.
func (s *subscription) Close() {
	s.ix.subsMu.Lock()
	if _, ok := s.ix.subs[s]; ok {
		delete(s.ix.subs, s)
		s.ix.subscribers.Add(-1)
	}
	s.ix.subsMu.Unlock()
	s.mu.Lock()
	s.gone = true
	s.pending = nil
	s.mu.Unlock()
}

// offer hands newly written IDs to the subscription without blocking.
func (s *subscription) offer(ids []string) {
	s.mu.Lock()
	switch {
	case s.gone || s.overflow:
	case len(s.pending)+len(ids) > s.ix.cfg.TailBuffer:
		s.overflow = true
		s.pending = nil
	default:
		s.pending = append(s.pending, ids...)
	}
	s.mu.Unlock()
	select {
	case s.ready <- struct{}{}:
	default:
	}
}

func (ix *Index) notify(ids []string) {
	ix.subsMu.Lock()
	defer ix.subsMu.Unlock()
	for s := range ix.subs {
		s.offer(ids)
	}
}

func (ix *Index) closeSubscriptions() {
	ix.subsMu.Lock()
	subs := ix.subs
	ix.subs = map[*subscription]struct{}{}
	ix.subscribers.Store(0)
	ix.subsMu.Unlock()
	for s := range subs {
		s.mu.Lock()
		s.gone = true
		s.pending = nil
		s.mu.Unlock()
		select {
		case s.ready <- struct{}{}:
		default:
		}
	}
}

// Next returns resumed lines first, then newly indexed matching lines,
// oldest first (by ts, then id) within each written batch.
func (s *subscription) Next(ctx context.Context) (pipeline.TailChunk, error) {
	if s.resumeAfter != nil {
		return s.nextResumed(ctx)
	}
	s.mu.Lock()
	if s.gone {
		s.mu.Unlock()
		return pipeline.TailChunk{}, pipeline.ErrTailClosed
	}
	if s.overflow {
		s.mu.Unlock()
		return pipeline.TailChunk{}, pipeline.ErrTailOverflow
	}
	n := min(len(s.pending), tailChunk)
	ids := s.pending[:n:n]
	s.pending = s.pending[n:]
	if len(s.pending) == 0 {
		s.pending = nil
	} else {
		// More to match: the caller comes back without waiting.
		select {
		case s.ready <- struct{}{}:
		default:
		}
	}
	s.mu.Unlock()
	if len(ids) == 0 {
		return pipeline.TailChunk{}, nil
	}
	q := bleve.NewConjunctionQuery(s.q, bleve.NewDocIDQuery(ids))
	sr := bleve.NewSearchRequestOptions(q, len(ids), 0, false)
	sr.Fields = []string{"*"}
	sr.SortBy([]string{"ts", "_id"})
	sr.IncludeLocations = true // highlights
	out, err := s.ix.search(ctx, sr)
	if err != nil {
		return pipeline.TailChunk{}, fmt.Errorf("match tail query against %d new lines: %w", len(ids), err)
	}
	var c pipeline.TailChunk
	for _, h := range out.Hits {
		if _, dup := s.resumed[h.ID]; dup {
			continue
		}
		c.Hits = append(c.Hits, hitFrom(h))
	}
	return c, nil
}

func (s *subscription) nextResumed(ctx context.Context) (pipeline.TailChunk, error) {
	var c pipeline.TailChunk
	size := min(tailChunk, s.resumeLeft+1)
	sr := bleve.NewSearchRequestOptions(s.q, size, 0, false)
	sr.Fields = []string{"*"}
	sr.SortBy([]string{"ts", "_id"})
	sr.IncludeLocations = true // highlights
	sr.SearchAfter = s.resumeAfter
	out, err := s.ix.search(ctx, sr)
	if err != nil {
		return c, fmt.Errorf("resume tail: %w", err)
	}
	hits := out.Hits
	if len(hits) > s.resumeLeft {
		hits = hits[:s.resumeLeft]
		c.Gap = fmt.Sprintf("more than %d lines matched since Last-Event-ID; the rest of them were skipped and the tail goes live (fetch them with /api/export?from=<ts of the last line>)", s.ix.cfg.TailResumeMax)
	}
	for _, h := range hits {
		s.resumed[h.ID] = struct{}{}
		c.Hits = append(c.Hits, hitFrom(h))
	}
	s.resumeLeft -= len(hits)
	if len(out.Hits) < size || c.Gap != "" {
		s.resumeAfter = nil
	} else {
		s.resumeAfter = hits[len(hits)-1].Sort
	}
	select {
	case s.ready <- struct{}{}:
	default:
	}
	return c, nil
}
