package fleet

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"sync"
	"time"
)

// LocalScanner reads the text of the local index's matching lines (the
// index implements it; it is what the patterns miner reads through).
type LocalScanner interface {
	ScanText(ctx context.Context, query string, from, to time.Time, each func(w int, ts int64, text string)) (uint64, error)
	ScanWorkers() int
}

// ScanWorkers is the local index's workers plus one that takes the
// other indexers' lines.
func (r *Router) ScanWorkers() int {
	if s, ok := r.Local.(LocalScanner); ok {
		return s.ScanWorkers() + 1
	}
	return 1
}

// ScanText calls each for every line of the fleet matching query in
// [from, to): the local index's for its partitions, and every other
// indexer's for theirs, streamed from its export. The patterns miner
// reads through it, so the fleet's templates are mined from every line,
// as on one box.
func (r *Router) ScanText(ctx context.Context, query string, from, to time.Time, each func(w int, ts int64, text string)) (uint64, error) {
	remoteW := r.ScanWorkers() - 1
	var mu sync.Mutex // the remote streams share one worker
	var total uint64
	var totalMu sync.Mutex
	_, err := r.fanoutRounds(ctx, 1, func(ctx context.Context, a ask) error {
		var n uint64
		if a.self {
			s, ok := r.Local.(LocalScanner)
			if !ok {
				return fmt.Errorf("fleet: the local index cannot scan text")
			}
			var err error
			if n, err = s.ScanText(scoped(ctx, a), query, from, to, each); err != nil {
				return err
			}
		} else {
			var err error
			if n, err = r.scanRemote(ctx, a, query, from, to, func(ts int64, text string) {
				mu.Lock()
				each(remoteW, ts, text)
				mu.Unlock()
			}); err != nil {
				return err
			}
		}
		totalMu.Lock()
		total += n
		totalMu.Unlock()
		return nil
	})
	return total, err
}

// scanRemote streams one indexer's matching lines from its NDJSON export.
// A failure part way is an error (the fan-out does not retry a stream
// half read: the lines already given would count twice).
func (r *Router) scanRemote(ctx context.Context, a ask, query string, from, to time.Time, each func(ts int64, text string)) (uint64, error) {
	q := url.Values{"q": {query}, "format": {"ndjson"}}
	timeParam(q, "from", from)
	timeParam(q, "to", to)
	resp, err := r.open(ctx, a, "/api/export", q, nil, true)
	if err != nil {
		return 0, fmt.Errorf("scan: %w", err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	var n uint64
	var h struct {
		TS   time.Time `json:"ts"`
		Line string    `json:"line"`
	}
	for sc.Scan() {
		h.Line = ""
		if err := json.Unmarshal(sc.Bytes(), &h); err != nil {
			return n, fmt.Errorf("scan indexer %s: %w", a.m.ID, err)
		}
		each(h.TS.UnixNano(), h.Line)
		n++
	}
	if err := sc.Err(); err != nil {
		return n, fmt.Errorf("scan indexer %s: %w", a.m.ID, err)
	}
	return n, nil
}
