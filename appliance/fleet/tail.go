package fleet

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/logbox/logbox/appliance/pipeline"
)

// maxTailBuffer bounds the hits a fleet tail holds for its reader; past
// it the tail ends with pipeline.ErrTailOverflow, as one index's does.
const maxTailBuffer = 20000

// maxTailSeen bounds the line ids remembered to drop a line two
// indexers both send (a replica answering during a rebalance).
const maxTailSeen = 100000

// Tail follows the new matching lines of the whole fleet: the local
// index for its partitions and, over Server-Sent Events, every other
// indexer the plan asks for theirs, merged as they come, duplicates
// dropped by line id. Last-Event-ID is passed to each: the one that
// holds the line resumes after it, the others go live.
func (r *Router) Tail(ctx context.Context, req pipeline.TailRequest) (pipeline.TailStream, error) {
	asks, _, _ := r.plan(ctx, nil, nil)
	if len(asks) == 0 && r.Local != nil {
		asks = []ask{{m: Member{ID: r.Self}, self: true, all: true}}
	}
	if len(asks) == 0 {
		return nil, errors.New("no live indexer to tail: none is registered in etcd")
	}
	// The streams outlive the call (ctx ends when it returns); the
	// caller's credentials stay on the context.
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	t := &fleetTail{ready: make(chan struct{}, 1), cancel: cancel, seen: map[string]struct{}{}}
	for _, a := range asks {
		if a.self {
			st, err := r.Local.Tail(scoped(ctx, a), req)
			if err != nil {
				t.Close()
				return nil, err
			}
			t.local = st
			t.wg.Add(1)
			go t.pumpLocal(sctx, st)
			continue
		}
		t.wg.Add(1)
		go t.pumpRemote(sctx, r, a, req)
	}
	return t, nil
}

type fleetTail struct {
	ready  chan struct{}
	cancel context.CancelFunc
	local  pipeline.TailStream
	wg     sync.WaitGroup

	mu       sync.Mutex
	pending  []pipeline.Hit
	gap      string
	err      error
	seen     map[string]struct{}
	seenList []string
}

func (t *fleetTail) signal() {
	select {
	case t.ready <- struct{}{}:
	default:
	}
}

// add takes hits from one indexer.
func (t *fleetTail) add(hits []pipeline.Hit, gap string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.err != nil {
		return
	}
	for _, h := range hits {
		if _, dup := t.seen[h.ID]; dup {
			continue
		}
		t.seen[h.ID] = struct{}{}
		t.seenList = append(t.seenList, h.ID)
		if len(t.seenList) > maxTailSeen {
			delete(t.seen, t.seenList[0])
			t.seenList = t.seenList[1:]
		}
		t.pending = append(t.pending, h)
	}
	if gap != "" {
		t.gap = strings.TrimPrefix(t.gap+"; "+gap, "; ")
	}
	if len(t.pending) > maxTailBuffer {
		t.err = pipeline.ErrTailOverflow
	}
	t.signal()
}

// fail ends the tail with err (the first one counts).
func (t *fleetTail) fail(err error) {
	t.mu.Lock()
	if t.err == nil {
		t.err = err
	}
	t.mu.Unlock()
	t.signal()
}

func (t *fleetTail) pumpLocal(ctx context.Context, st pipeline.TailStream) {
	defer t.wg.Done()
	for {
		c, err := st.Next(ctx)
		if err != nil {
			if ctx.Err() == nil {
				t.fail(err)
			}
			return
		}
		if len(c.Hits) > 0 || c.Gap != "" {
			t.add(c.Hits, c.Gap)
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-st.Ready():
		}
	}
}

// pumpRemote reads one indexer's tail (its Server-Sent Events).
func (t *fleetTail) pumpRemote(ctx context.Context, r *Router, a ask, req pipeline.TailRequest) {
	defer t.wg.Done()
	header := http.Header{"Accept": {"text/event-stream"}}
	if req.LastEventID != "" {
		header.Set("Last-Event-ID", req.LastEventID)
	}
	// A stream: a tail is long; the server's heartbeats keep it.
	resp, err := r.open(ctx, a, "/api/tail", url.Values{"q": {req.Query}}, header, true)
	if err != nil {
		if ctx.Err() == nil {
			t.fail(fmt.Errorf("tail: %w", err))
		}
		return
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	var event string
	var data []string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if len(data) > 0 {
				t.remoteEvent(a, event, strings.Join(data, "\n"))
			}
			event, data = "", nil
		case strings.HasPrefix(line, "event:"):
			event = strings.TrimSpace(line[len("event:"):])
		case strings.HasPrefix(line, "data:"):
			data = append(data, strings.TrimPrefix(line[len("data:"):], " "))
		}
	}
	if ctx.Err() == nil {
		t.fail(fmt.Errorf("tail indexer %s: the stream ended: %w", a.m.ID, cmpErr(sc.Err())))
	}
}

func cmpErr(err error) error {
	if err == nil {
		return errors.New("closed by the indexer")
	}
	return err
}

func (t *fleetTail) remoteEvent(a ask, event, data string) {
	switch event {
	case "":
		var h pipeline.Hit
		if err := json.Unmarshal([]byte(data), &h); err != nil {
			t.fail(fmt.Errorf("tail indexer %s: a line that is not JSON: %w", a.m.ID, err))
			return
		}
		t.add([]pipeline.Hit{h}, "")
	case "gap":
		var g struct {
			Message string `json:"message"`
		}
		_ = json.Unmarshal([]byte(data), &g)
		t.add(nil, a.m.ID+": "+g.Message)
	case "overflow":
		t.fail(pipeline.ErrTailOverflow)
	case "end":
		t.fail(fmt.Errorf("tail indexer %s is shutting down; reconnect to follow the fleet without it", a.m.ID))
	default:
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal([]byte(data), &e)
		t.fail(fmt.Errorf("tail indexer %s: %s", a.m.ID, e.Error))
	}
}

// Next returns the hits gathered so far, oldest first.
func (t *fleetTail) Next(ctx context.Context) (pipeline.TailChunk, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := pipeline.TailChunk{Hits: t.pending, Gap: t.gap}
	t.pending, t.gap = nil, ""
	if len(c.Hits) == 0 && c.Gap == "" && t.err != nil {
		return c, t.err
	}
	slices.SortStableFunc(c.Hits, func(a, b pipeline.Hit) int { return a.TS.Compare(b.TS) })
	return c, nil
}

func (t *fleetTail) Ready() <-chan struct{} { return t.ready }

// Close ends every stream.
func (t *fleetTail) Close() {
	t.cancel()
	if t.local != nil {
		t.local.Close()
	}
	done := make(chan struct{})
	go func() { t.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}
}
