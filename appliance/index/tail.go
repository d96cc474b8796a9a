package index

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/logbox/logbox/appliance/pipeline"
)

// tailChunk bounds the lines matched, and the resumed lines fetched, per Next.
const tailChunk = 1000

// lineRef is line i of block b.
type lineRef struct {
	b *block
	i int
}

// subscription is one live tail. Index only appends the lines it wrote to
// pending (never blocking); the reader's Next checks them against the query.
type subscription struct {
	ix     *Index
	m      *matcher
	ready  chan struct{} // capacity 1: "pending changed"
	closed chan struct{}
	// parts, when scoped, are the Kafka partitions the tail is for
	// (pipeline.WithParts on Tail's context).
	parts  map[string]bool
	scoped bool

	mu       sync.Mutex
	pending  []lineRef
	overflow bool
	gone     bool // Close or index Close

	// Resume state: resumeAfter is the order key of the last line sent;
	// nil when not (or no longer) resuming.
	resumeAfter *lineKey
	resumed     map[string]struct{} // IDs sent while resuming, so live ones are not sent twice
	resumeLeft  int
}

// Tail opens a live tail of the lines matching req.Query that are indexed
// from now on. With req.LastEventID (the ID of a hit a previous tail sent),
// the lines after that hit by (ts, id) come first, up to TailResumeMax. The
// caller must Close the stream. A bad query is a *pipeline.QueryError.
func (ix *Index) Tail(ctx context.Context, req pipeline.TailRequest) (pipeline.TailStream, error) {
	m, err := compile(req.Query)
	if err != nil {
		return nil, err
	}
	if err := ix.bindTemplates(m); err != nil {
		return nil, err
	}
	s := &subscription{
		ix:     ix,
		m:      m,
		ready:  make(chan struct{}, 1),
		closed: make(chan struct{}),
	}
	s.parts, s.scoped = pipeline.PartsOf(ctx)
	// Register before looking up the resume point: a line indexed in
	// between is then either pending or found by the resume, never missed.
	ix.subsMu.Lock()
	ix.subs[s] = struct{}{}
	ix.subscribers.Add(1)
	ix.subsMu.Unlock()
	if req.LastEventID != "" {
		if err := s.startResume(req.LastEventID); err != nil {
			s.Close()
			return nil, err
		}
	}
	return s, nil
}

// startResume finds the order key of the last hit a client saw. An
// unknown ID (deleted by retention, or from another server) resumes
// nothing: the tail goes live.
func (s *subscription) startResume(lastID string) error {
	s.ix.searchMu.RLock()
	b, i, err := s.ix.lookup(lastID)
	s.ix.searchMu.RUnlock()
	if err != nil {
		if err == pipeline.ErrHitNotFound {
			return nil
		}
		return fmt.Errorf("find Last-Event-ID %q: %w", lastID, err)
	}
	ts, _, err := b.times()
	if err != nil {
		return fmt.Errorf("find Last-Event-ID %q: %w", lastID, err)
	}
	s.resumeAfter = &lineKey{ts: ts[i], host: b.info.Host, fileID: b.info.FileID, pos: b.firstOff + int64(i)}
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

// offer hands newly written lines to the subscription without blocking.
func (s *subscription) offer(refs []lineRef) {
	s.mu.Lock()
	switch {
	case s.gone || s.overflow:
	case len(s.pending)+len(refs) > s.ix.cfg.TailBuffer:
		s.overflow = true
		s.pending = nil
	default:
		s.pending = append(s.pending, refs...)
	}
	s.mu.Unlock()
	select {
	case s.ready <- struct{}{}:
	default:
	}
}

func (ix *Index) notify(blocks []*block) {
	var refs []lineRef
	for _, b := range blocks {
		for i := range b.n() {
			refs = append(refs, lineRef{b: b, i: i})
		}
	}
	ix.subsMu.Lock()
	defer ix.subsMu.Unlock()
	for s := range ix.subs {
		s.offer(refs)
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
	refs := s.pending[:n:n]
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
	if len(refs) == 0 {
		return pipeline.TailChunk{}, nil
	}
	type match struct {
		key lineKey
		hit pipeline.Hit
	}
	var ms []match
	s.ix.searchMu.RLock()
	defer s.ix.searchMu.RUnlock()
	for _, r := range refs {
		if r.b.sh.isGone() || s.scoped && !s.parts[r.b.info.Part] {
			continue
		}
		lines, err := s.ix.lines(r.b, true)
		if err != nil {
			return pipeline.TailChunk{}, fmt.Errorf("match tail query against new lines: %w", err)
		}
		l := &lines[r.i]
		if !s.m.match(r.b.info, l) {
			continue
		}
		h := hitOf(r.b, l, s.m, true)
		if _, dup := s.resumed[h.ID]; dup {
			continue
		}
		ms = append(ms, match{key: lineKey{ts: l.TS, host: r.b.info.Host, fileID: r.b.info.FileID, pos: r.b.firstOff + int64(r.i)}, hit: h})
	}
	slices.SortStableFunc(ms, func(a, b match) int { return cmpKey(&a.key, &b.key) })
	var c pipeline.TailChunk
	for _, m := range ms {
		c.Hits = append(c.Hits, m.hit)
	}
	return c, nil
}

func (sh *shard) isGone() bool {
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	return sh.gone
}

func (s *subscription) nextResumed(ctx context.Context) (pipeline.TailChunk, error) {
	var c pipeline.TailChunk
	size := min(tailChunk, s.resumeLeft+1)
	s.ix.searchMu.RLock()
	defer s.ix.searchMu.RUnlock()
	page, _, _, err := s.ix.run(ctx, searchOpts{m: s.m, from: minTS, to: maxTS, after: s.resumeAfter, asc: true, limit: size})
	if err != nil {
		return c, fmt.Errorf("resume tail: %w", err)
	}
	hits := page
	if len(hits) > s.resumeLeft {
		hits = hits[:s.resumeLeft]
		c.Gap = fmt.Sprintf("more than %d lines matched since Last-Event-ID; the rest of them were skipped and the tail goes live (fetch them with /api/export?from=<ts of the last line>)", s.ix.cfg.TailResumeMax)
	}
	for _, f := range hits {
		h, err := s.ix.hit(f, s.m, true)
		if err != nil {
			return c, fmt.Errorf("resume tail: %w", err)
		}
		s.resumed[h.ID] = struct{}{}
		c.Hits = append(c.Hits, h)
	}
	s.resumeLeft -= len(hits)
	if len(page) < size || c.Gap != "" {
		s.resumeAfter = nil
	} else {
		k := hits[len(hits)-1].key
		s.resumeAfter = &k
	}
	select {
	case s.ready <- struct{}{}:
	default:
	}
	return c, nil
}
