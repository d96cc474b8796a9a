package fleet

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/logbox/logbox/appliance/pipeline"
)

// Local is this process's own index, asked directly (not over HTTP).
type Local interface {
	Search(ctx context.Context, req pipeline.SearchRequest) (pipeline.SearchResult, error)
	Histogram(ctx context.Context, req pipeline.HistogramRequest) (pipeline.HistogramResult, error)
	Facets(ctx context.Context, req pipeline.FacetsRequest) (pipeline.FacetsResult, error)
	StatsQuery(ctx context.Context, req pipeline.StatsRequest) (pipeline.StatsResult, error)
	Context(ctx context.Context, req pipeline.ContextRequest) (pipeline.ContextResult, error)
	Tail(ctx context.Context, req pipeline.TailRequest) (pipeline.TailStream, error)
}

// Router answers for the whole fleet: per Kafka partition it asks one
// live holder (itself first), merges, and marks what no live indexer
// holds as missing. It implements the API's Searcher and Explorer.
type Router struct {
	// Self is this process's member ID ("" for --role query) and Local
	// its index (nil for --role query).
	Self  string
	Local Local
	Dir   *Directory
	// Marks gives each partition's [earliest, high-water mark) offsets
	// in Kafka (nil or failing: taken from the members' coverage).
	Marks func(ctx context.Context) (map[string]pipeline.OffsetRange, error)
	// StatsState runs a stats query on the local index, scoped by ctx,
	// and encodes its state; MergeStats merges encoded states; Less
	// orders two hits' sort keys (newest first). All from the index.
	StatsState  func(ctx context.Context, req pipeline.StatsRequest) ([]byte, error)
	MergeStats  func(query string, states [][]byte) (pipeline.StatsResult, error)
	CompareSort func(a, b string) int
	// Credential, when set, is the Authorization header of the
	// process's own requests (alert rules), which have no caller's to
	// pass on: the fleet's indexers take the same tokens.
	Credential func() string
	Client     *http.Client
	Log        *slog.Logger

	requests, failures atomic.Uint64

	// down holds the members that failed to answer, until when they are
	// not asked (while their lease has not lapsed yet).
	downMu sync.Mutex
	down   map[string]time.Time
}

// downFor is how long a member that did not answer is not asked.
const downFor = 5 * time.Second

// markDown notes that m did not answer; it logs once per outage.
func (r *Router) markDown(m Member, err error) {
	r.downMu.Lock()
	defer r.downMu.Unlock()
	if r.down == nil {
		r.down = map[string]time.Time{}
	}
	if until, ok := r.down[m.ID]; !ok || time.Now().After(until) {
		r.Log.Warn("fleet: an indexer did not answer; its partitions are asked of other holders for a while", "indexer", m.ID, "addr", m.Addr, "for", downFor, "err", err)
	}
	r.down[m.ID] = time.Now().Add(downFor)
}

// isDown reports whether m failed lately.
func (r *Router) isDown(id string) bool {
	r.downMu.Lock()
	defer r.downMu.Unlock()
	until, ok := r.down[id]
	if ok && time.Now().After(until) {
		delete(r.down, id)
		return false
	}
	return ok
}

// Stats are the router's counters, for /metrics.
func (r *Router) Stats() (requests, failures uint64) { return r.requests.Load(), r.failures.Load() }

// ask is one member asked for some partitions.
type ask struct {
	m     Member
	self  bool
	parts []string
	// all: the only member asked, for every partition: asked unscoped
	// (lines read before partitions were kept count too).
	all bool
}

// View is the fleet as the router sees it now: for /api/status.
type View struct {
	Self       string                  `json:"self,omitempty"`
	Indexers   []Member                `json:"indexers"`
	Partitions []PartView              `json:"partitions"`
	Complete   bool                    `json:"complete"`
	Missing    []pipeline.MissingRange `json:"missing,omitempty"`
}

// PartView is one partition in View.
type PartView struct {
	Partition       string   `json:"partition"`
	Start           int64    `json:"start"`
	End             int64    `json:"end"`
	Holders         []string `json:"holders"`
	CompleteHolders []string `json:"complete_holders"`
}

func (r *Router) marks(ctx context.Context, members []Member) map[string]pipeline.OffsetRange {
	if r.Marks != nil {
		mctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		mk, err := r.Marks(mctx)
		cancel()
		if err == nil {
			return mk
		}
		r.Log.Debug("fleet: kafka offsets unknown; using the indexers' coverage", "err", err)
	}
	mk := map[string]pipeline.OffsetRange{}
	for _, m := range members {
		for p, rs := range m.Coverage {
			if len(rs) == 0 {
				continue
			}
			cur, ok := mk[p]
			if !ok {
				cur = pipeline.OffsetRange{rs[0][0], rs[len(rs)-1][1]}
			}
			mk[p] = pipeline.OffsetRange{min(cur[0], rs[0][0]), max(cur[1], rs[len(rs)-1][1])}
		}
	}
	return mk
}

// effective is what m holds of p (or will, once its lag is read): its
// coverage and, for a partition it consumes, everything past it.
func effective(m Member, p string, end int64) pipeline.Coverage {
	c := pipeline.Coverage{p: m.Coverage[p]}
	if slices.Contains(m.Assigned, p) {
		from := int64(0)
		if rs := c[p]; len(rs) > 0 {
			from = rs[len(rs)-1][1]
		} else {
			from = end // nothing held yet: the consumer starts where it starts
		}
		c.Add(p, from, max(end, from))
	}
	return c
}

func span(rs []pipeline.OffsetRange) int64 {
	var n int64
	for _, r := range rs {
		n += r[1] - r[0]
	}
	return n
}

// plan picks one holder per partition of want (nil: every partition),
// skipping excluded members, and returns the asks and what no candidate
// holds.
func (r *Router) plan(ctx context.Context, want map[string]bool, exclude map[string]bool) ([]ask, []pipeline.MissingRange, map[string]pipeline.OffsetRange) {
	members := r.Dir.Members()
	mk := r.marks(ctx, members)
	byID := map[string]*ask{}
	var missing []pipeline.MissingRange
	parts := make([]string, 0, len(mk))
	for p := range mk {
		parts = append(parts, p)
	}
	slices.Sort(parts)
	for _, p := range parts {
		rg := mk[p]
		if rg[1] <= rg[0] || want != nil && !want[p] {
			continue
		}
		var best *Member
		var bestMiss []pipeline.OffsetRange
		bestScore := int64(-1)
		for i := range members {
			m := &members[i]
			if exclude[m.ID] || m.Addr == "" && m.ID != r.Self || m.ID != r.Self && r.isDown(m.ID) {
				continue
			}
			if len(m.Coverage[p]) == 0 && !slices.Contains(m.Assigned, p) {
				continue
			}
			miss := effective(*m, p, rg[1]).Missing(p, rg[0], rg[1])
			score := span(miss)
			better := best == nil || score < bestScore ||
				score == bestScore && (m.ID == r.Self && best.ID != r.Self ||
					(m.ID == r.Self) == (best.ID == r.Self) && m.Lag[p] < best.Lag[p])
			if better {
				best, bestMiss, bestScore = m, miss, score
			}
		}
		if best == nil {
			missing = append(missing, pipeline.MissingRange{Partition: p, From: rg[0], To: rg[1]})
			continue
		}
		for _, x := range bestMiss {
			missing = append(missing, pipeline.MissingRange{Partition: p, From: x[0], To: x[1]})
		}
		a := byID[best.ID]
		if a == nil {
			a = &ask{m: *best, self: best.ID == r.Self && r.Local != nil}
			byID[best.ID] = a
		}
		a.parts = append(a.parts, p)
	}
	asks := make([]ask, 0, len(byID))
	for _, a := range byID {
		asks = append(asks, *a)
	}
	slices.SortFunc(asks, func(a, b ask) int { return cmp.Compare(a.m.ID, b.m.ID) })
	if len(asks) == 1 && asks[0].self && want == nil {
		asks[0].all = true
	}
	if len(asks) == 0 && r.Local != nil && len(mk) == 0 && want == nil {
		// Nothing in Kafka and no member known yet (start-up): the
		// local index is the answer.
		asks = append(asks, ask{m: Member{ID: r.Self}, self: true, all: true})
	}
	return asks, missing, mk
}

// View describes the fleet for /api/status.
func (r *Router) View(ctx context.Context) View {
	_, missing, mk := r.plan(ctx, nil, nil)
	v := View{Self: r.Self, Indexers: r.Dir.Members(), Missing: missing, Complete: len(missing) == 0}
	for p, rg := range mk {
		pv := PartView{Partition: p, Start: rg[0], End: rg[1], Holders: []string{}, CompleteHolders: []string{}}
		for _, m := range v.Indexers {
			if len(m.Coverage[p]) == 0 && !slices.Contains(m.Assigned, p) {
				continue
			}
			pv.Holders = append(pv.Holders, m.ID)
			if len(effective(m, p, rg[1]).Missing(p, rg[0], rg[1])) == 0 {
				pv.CompleteHolders = append(pv.CompleteHolders, m.ID)
			}
		}
		v.Partitions = append(v.Partitions, pv)
	}
	slices.SortFunc(v.Partitions, func(a, b PartView) int { return strings.Compare(a.Partition, b.Partition) })
	if v.Indexers == nil {
		v.Indexers = []Member{}
	}
	return v
}

// fanout runs call once per asked member, concurrently; a member that
// fails is left out and its partitions asked of the next best holder
// (up to three rounds). It returns what stays missing.
func (r *Router) fanout(ctx context.Context, call func(ctx context.Context, a ask) error) ([]pipeline.MissingRange, error) {
	return r.fanoutRounds(ctx, 3, call)
}

// fanoutRounds is fanout with at most rounds rounds; with one, a member
// that fails fails the whole call (for streams: what one gave before it
// failed cannot be asked of another without counting it twice).
func (r *Router) fanoutRounds(ctx context.Context, rounds int, call func(ctx context.Context, a ask) error) ([]pipeline.MissingRange, error) {
	exclude := map[string]bool{}
	var want map[string]bool
	var missing []pipeline.MissingRange
	var lastErr error
	for round := 0; round < rounds; round++ {
		asks, miss, mk := r.plan(ctx, want, exclude)
		missing = append(missing, miss...)
		if len(asks) == 0 {
			break
		}
		var mu sync.Mutex
		var failed []ask
		var wg sync.WaitGroup
		for _, a := range asks {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r.requests.Add(1)
				if err := call(ctx, a); err != nil {
					r.failures.Add(1)
					mu.Lock()
					failed = append(failed, a)
					lastErr = err
					mu.Unlock()
					var re *refusedError
					if !a.self && ctx.Err() == nil && !callerError(err) && !errors.As(err, &re) {
						r.markDown(a.m, err)
					}
				}
			}()
		}
		wg.Wait()
		if len(failed) == 0 {
			break
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if rounds == 1 || callerError(lastErr) {
			return nil, lastErr // a stream cannot be asked again, and a caller's mistake is every indexer's
		}
		want = map[string]bool{}
		for _, a := range failed {
			if a.all {
				return nil, lastErr // the local index, asked for everything, failed
			}
			exclude[a.m.ID] = true
			for _, p := range a.parts {
				want[p] = true
			}
		}
		if round == rounds-1 {
			for p := range want {
				rg := mk[p]
				missing = append(missing, pipeline.MissingRange{Partition: p, From: rg[0], To: rg[1]})
			}
		}
	}
	slices.SortFunc(missing, func(a, b pipeline.MissingRange) int {
		return cmp.Or(strings.Compare(a.Partition, b.Partition), cmp.Compare(a.From, b.From))
	})
	return missing, nil
}

// scoped returns ctx limited to a's partitions, for the local index.
func scoped(ctx context.Context, a ask) context.Context {
	if a.all {
		return ctx
	}
	return pipeline.WithParts(ctx, a.parts)
}

// open asks member a for path with params, plus local=1 and its
// partitions, with the caller's credentials (and header, when set), and
// returns a 200's response for the caller to read and close. stream
// takes no overall time limit (a tail, an export: the answer lasts).
func (r *Router) open(ctx context.Context, a ask, path string, params url.Values, header http.Header, stream bool) (*http.Response, error) {
	q := url.Values{}
	for k, v := range params {
		q[k] = v
	}
	q.Set("local", "1")
	if !a.all {
		q.Set("partitions", strings.Join(a.parts, ","))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(a.m.Addr, "/")+path+"?"+q.Encode(), nil)
	if err != nil {
		return nil, fmt.Errorf("ask indexer %s: %w", a.m.ID, err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if h := r.authorization(ctx); h != "" {
		req.Header.Set("Authorization", h)
	}
	client := r.Client
	if stream {
		client = &http.Client{Transport: r.Client.Transport}
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("ask indexer %s: %w", a.m.ID, err)
	}
	if resp.StatusCode == http.StatusOK {
		return resp, nil
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	switch resp.StatusCode {
	case http.StatusBadRequest:
		return nil, &pipeline.QueryError{Msg: remoteError(body)}
	case http.StatusUnauthorized, http.StatusForbidden:
		return nil, &refusedError{id: a.m.ID, status: resp.Status}
	}
	return nil, fmt.Errorf("ask indexer %s: %s: %s", a.m.ID, resp.Status, remoteError(body))
}

// get is open's answer read whole.
func (r *Router) get(ctx context.Context, a ask, path string, params url.Values) ([]byte, error) {
	resp, err := r.open(ctx, a, path, params, nil, false)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 512<<20))
	if err != nil {
		return nil, fmt.Errorf("ask indexer %s: read: %w", a.m.ID, err)
	}
	return body, nil
}

func remoteError(body []byte) string {
	s := strings.TrimSpace(string(body))
	if i := strings.Index(s, `"error":"`); i >= 0 {
		s = s[i+9:]
		if j := strings.Index(s, `"`); j >= 0 {
			s = s[:j]
		}
	}
	if len(s) > 300 {
		s = s[:300]
	}
	return s
}

func timeParam(v url.Values, name string, t time.Time) {
	if !t.IsZero() {
		v.Set(name, t.UTC().Format(time.RFC3339Nano))
	}
}

// Whole reports whether this process's own index answers for the whole
// fleet now (it is the only holder asked, for every partition), and the
// ranges no live indexer holds.
func (r *Router) Whole(ctx context.Context) (bool, []pipeline.MissingRange) {
	asks, missing, _ := r.plan(ctx, nil, nil)
	return len(asks) == 1 && asks[0].all, missing
}

// authorization is the Authorization header to ask another indexer with:
// the caller's, else the process's own credential.
func (r *Router) authorization(ctx context.Context) string {
	if h := pipeline.AuthOf(ctx); h != "" {
		return h
	}
	if r.Credential != nil {
		return r.Credential()
	}
	return ""
}

// refusedError: an indexer refused the credentials of one request. It is
// not down (the next request may carry good ones): its partitions are
// missing from this answer only.
type refusedError struct{ id, status string }

func (e *refusedError) Error() string {
	return fmt.Sprintf("ask indexer %s: %s: the fleet's indexers must take the same credentials (--auth-token-file, --auth-htpasswd)", e.id, e.status)
}

// callerError reports whether err is the caller's mistake (a malformed
// query or parameter), which every indexer answers the same.
func callerError(err error) bool {
	var qe *pipeline.QueryError
	var fe *pipeline.FieldError
	return errors.As(err, &qe) || errors.As(err, &fe)
}
