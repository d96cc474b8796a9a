package fleet_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/logbox/logbox/appliance/auth"
	"github.com/logbox/logbox/appliance/fleet"
	"github.com/logbox/logbox/appliance/httpapi"
	"github.com/logbox/logbox/appliance/index"
	"github.com/logbox/logbox/appliance/pipeline"
	"github.com/logbox/logbox/appliance/settings"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

var now = time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)

// lines makes n records of partition part, offsets from 0.
func lines(part string, n int) []pipeline.Record {
	rs := make([]pipeline.Record, n)
	for i := range rs {
		rs[i] = pipeline.Record{
			TS: now.Add(-time.Hour).Add(time.Duration(i)*7*time.Second + time.Duration(len(part))*time.Millisecond), Host: "h-" + part[len(part)-1:],
			Source: "/l/app.log", FileID: "f-" + part, Offset: int64(i * 100), Part: part,
			Line: fmt.Sprintf("level=%s status=%d user=u%d msg=request %s", []string{"info", "warn", "error"}[i%3], 200+i%4*100, i%13, part),
		}
	}
	return rs
}

func openIndex(t *testing.T, recs ...[]pipeline.Record) *index.Index {
	t.Helper()
	ix, err := index.Open(index.Config{Dir: filepath.Join(t.TempDir(), "idx"), Now: func() time.Time { return now }}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ix.Close() })
	for _, rs := range recs {
		if err := ix.Index(context.Background(), rs); err != nil {
			t.Fatal(err)
		}
	}
	return ix
}

// serve runs the real API over ix, as another indexer answers the
// fleet's own (local=1) requests.
func serve(t *testing.T, ix *index.Index) string {
	t.Helper()
	h := httpapi.New(httpapi.Deps{Search: ix, Local: ix, LocalFind: ix,
		LocalStats: func(ctx context.Context, req pipeline.StatsRequest) ([]byte, error) {
			st, err := ix.StatsState(ctx, req)
			if err != nil {
				return nil, err
			}
			return index.EncodeStatsState(st)
		}, Now: func() time.Time { return now }}, quiet)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// register keeps m in etcd (as an indexer does) until the test ends.
func register(t *testing.T, e *settings.Embedded, m fleet.Member) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	reg := &fleet.Registrar{Client: e.Client(), Self: func() fleet.Member { return m }, Every: 200 * time.Millisecond, Log: quiet}
	go func() { defer close(done); _ = reg.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

func cov(parts ...string) pipeline.Coverage {
	c := pipeline.Coverage{}
	for _, p := range parts {
		c.Add(p, 0, 100)
	}
	return c
}

func mergeStates(q string, states [][]byte) (pipeline.StatsResult, error) {
	var sts []index.StatsState
	for _, b := range states {
		st, err := index.DecodeStatsState(b)
		if err != nil {
			return pipeline.StatsResult{}, err
		}
		sts = append(sts, st)
	}
	return index.MergeStats(q, sts)
}

// TestRouter: three partitions, indexer A holding t/0 and t/1, B t/1
// and t/2 (t/1 on both, as a replica group holds it), a dead indexer
// registered for t/0: the router's answers equal one index's holding
// every line once, page by page; a range no one holds is named.
func TestRouter(t *testing.T) {
	ctx := context.Background()
	e := startEtcd(t)
	p0, p1, p2 := lines("t/0", 100), lines("t/1", 100), lines("t/2", 100)
	ref := openIndex(t, p0, p1, p2)
	a, b := openIndex(t, p0, p1), openIndex(t, p1, p2)
	// The dead one sorts first and has no lag: it is asked first for t/0.
	register(t, e, fleet.Member{ID: "a0-dead", Addr: "http://127.0.0.1:1", Coverage: cov("t/0")})
	register(t, e, fleet.Member{ID: "a1", Addr: serve(t, a), Coverage: cov("t/0", "t/1"), Lag: map[string]int64{"t/0": 5}})
	register(t, e, fleet.Member{ID: "b1", Addr: serve(t, b), Coverage: cov("t/1", "t/2")})
	dir := watchDirectory(t, e, 3)
	var marksMu sync.Mutex
	marks := map[string]pipeline.OffsetRange{"t/0": {0, 100}, "t/1": {0, 100}, "t/2": {0, 100}}
	r := &fleet.Router{Dir: dir, CompareSort: index.CompareSort, MergeStats: mergeStates,
		Client: &http.Client{Timeout: 10 * time.Second}, Log: quiet,
		Marks: func(context.Context) (map[string]pipeline.OffsetRange, error) {
			marksMu.Lock()
			defer marksMu.Unlock()
			return marks, nil
		}}
	from, to := now.Add(-2*time.Hour), now

	// Search: every page equals the reference's, the cursor included
	// across indexers.
	var got, want []string
	cursor, wcursor := "", ""
	for page := 0; ; page++ {
		res, err := r.Search(ctx, pipeline.SearchRequest{Query: "request", From: from, To: to, Limit: 37, Cursor: cursor, ExactTotal: true})
		if err != nil {
			t.Fatal(err)
		}
		wres, err := ref.Search(ctx, pipeline.SearchRequest{Query: "request", From: from, To: to, Limit: 37, Cursor: wcursor, ExactTotal: true})
		if err != nil {
			t.Fatal(err)
		}
		if res.Total != 300 || res.Partial || wres.Total != 300 {
			t.Fatalf("page %d: total %d partial %v %v (reference %d)", page, res.Total, res.Partial, res.Missing, wres.Total)
		}
		for _, h := range res.Hits {
			got = append(got, h.ID)
		}
		for _, h := range wres.Hits {
			want = append(want, h.ID)
		}
		if (res.Cursor == "") != (wres.Cursor == "") {
			t.Fatalf("page %d: cursor %q, reference %q", page, res.Cursor, wres.Cursor)
		}
		if res.Cursor == "" {
			break
		}
		cursor, wcursor = res.Cursor, wres.Cursor
	}
	if !slices.Equal(got, want) || len(got) != 300 {
		t.Fatalf("paged %d hits, reference %d; equal order: %v", len(got), len(want), slices.Equal(got, want))
	}

	// Histogram (closed and open), facets, stats equal the reference.
	for _, hq := range []pipeline.HistogramRequest{{Query: "request", From: from, To: to, Buckets: 30}, {Query: "warn", Buckets: 20}} {
		h, err := r.Histogram(ctx, hq)
		if err != nil {
			t.Fatal(err)
		}
		wh, _ := ref.Histogram(ctx, hq)
		h.Partial, h.Missing = false, nil
		if !reflect.DeepEqual(h, wh) || wh.Total == 0 {
			t.Fatalf("histogram %+v:\nfleet %+v\none   %+v", hq, h, wh)
		}
	}
	for _, field := range []string{"host", "level", "fields.user"} {
		f, err := r.Facets(ctx, pipeline.FacetsRequest{Query: "request", From: from, To: to, Field: field, Size: 5})
		if err != nil {
			t.Fatal(err)
		}
		wf, _ := ref.Facets(ctx, pipeline.FacetsRequest{Query: "request", From: from, To: to, Field: field, Size: 5})
		if !reflect.DeepEqual(f, wf) || wf.Total != 300 {
			t.Fatalf("facets %s:\nfleet %+v\none   %+v", field, f, wf)
		}
	}
	for _, q := range []string{"request | stats count(), avg(status), median(status), count_distinct(user) by (level)", "* | stats by (host, _time:10m) count()"} {
		s, err := r.StatsQuery(ctx, pipeline.StatsRequest{Query: q, From: from, To: to})
		if err != nil {
			t.Fatal(err)
		}
		ws, _ := ref.StatsQuery(ctx, pipeline.StatsRequest{Query: q, From: from, To: to})
		if !reflect.DeepEqual(s, ws) || ws.Total != 300 {
			t.Fatalf("stats %s:\nfleet %+v\none   %+v", q, s, ws)
		}
	}
	// A query error is the caller's: 400 from every indexer, not partial.
	if _, err := r.Search(ctx, pipeline.SearchRequest{Query: `"unclosed`}); err == nil {
		t.Fatal("a malformed query gave no error")
	}

	// Lines past what any indexer holds: partial, naming the range.
	marksMu.Lock()
	marks = map[string]pipeline.OffsetRange{"t/0": {0, 100}, "t/1": {0, 100}, "t/2": {0, 150}, "t/3": {10, 20}}
	marksMu.Unlock()
	res, err := r.Search(ctx, pipeline.SearchRequest{Query: "request", From: from, To: to, Limit: 1, ExactTotal: true})
	if err != nil {
		t.Fatal(err)
	}
	wantMissing := []pipeline.MissingRange{{Partition: "t/2", From: 100, To: 150}, {Partition: "t/3", From: 10, To: 20}}
	if !res.Partial || !reflect.DeepEqual(res.Missing, wantMissing) || res.Total != 300 {
		t.Fatalf("partial %v missing %+v total %d, want %+v and 300", res.Partial, res.Missing, res.Total, wantMissing)
	}
	v := r.View(ctx)
	if v.Complete || len(v.Indexers) != 3 || len(v.Partitions) != 4 || !reflect.DeepEqual(v.Missing, wantMissing) {
		t.Fatalf("view %+v", v)
	}
	if req, fail := r.Stats(); req == 0 || fail == 0 {
		t.Fatalf("fan-out counters: %d requests, %d failures; the dead indexer was never asked", req, fail)
	}
}

// TestRouterTailAndScan: a fleet tail gets each new line once (t/1 is
// indexed on both indexers and asked of one), and ScanText streams every
// matching line of the fleet.
func TestRouterTailAndScan(t *testing.T) {
	ctx := context.Background()
	e := startEtcd(t)
	a, b := openIndex(t), openIndex(t)
	register(t, e, fleet.Member{ID: "a1", Addr: serve(t, a), Coverage: cov("t/0", "t/1")})
	register(t, e, fleet.Member{ID: "b1", Addr: serve(t, b), Coverage: cov("t/1", "t/2")})
	dir := watchDirectory(t, e, 2)
	r := &fleet.Router{Dir: dir, CompareSort: index.CompareSort, MergeStats: mergeStates, Client: &http.Client{Timeout: 10 * time.Second}, Log: quiet,
		Marks: func(context.Context) (map[string]pipeline.OffsetRange, error) {
			return map[string]pipeline.OffsetRange{"t/0": {0, 100}, "t/1": {0, 100}, "t/2": {0, 100}}, nil
		}}
	tail, err := r.Tail(ctx, pipeline.TailRequest{Query: "request"})
	if err != nil {
		t.Fatal(err)
	}
	defer tail.Close()
	time.Sleep(300 * time.Millisecond) // the remote streams connect
	p0, p1, p2 := lines("t/0", 20), lines("t/1", 20), lines("t/2", 20)
	for i := range 20 {
		// Now-ish times, so the tail sees them as new lines.
		for _, rs := range [][]pipeline.Record{p0, p1, p2} {
			rs[i].TS = now.Add(time.Duration(i) * time.Second)
		}
	}
	if err := a.Index(ctx, append(slices.Clone(p0), p1...)); err != nil {
		t.Fatal(err)
	}
	if err := b.Index(ctx, append(slices.Clone(p1), p2...)); err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for deadline := time.Now().Add(10 * time.Second); len(seen) < 60 && time.Now().Before(deadline); {
		c, err := tail.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range c.Hits {
			seen[h.ID]++
		}
		if len(c.Hits) == 0 {
			select {
			case <-tail.Ready():
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
	time.Sleep(300 * time.Millisecond)
	if c, _ := tail.Next(ctx); len(c.Hits) > 0 {
		t.Fatalf("%d more hits after all 60 (doubles?)", len(c.Hits))
	}
	if len(seen) != 60 {
		t.Fatalf("tail saw %d distinct lines, want 60", len(seen))
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("%s seen %d times", id, n)
		}
	}
	var mu sync.Mutex
	texts := map[string]int{}
	n, err := r.ScanText(ctx, "request", time.Time{}, time.Time{}, func(w int, ts int64, text string) {
		mu.Lock()
		texts[text]++
		mu.Unlock()
	})
	if err != nil || n != 60 || len(texts) == 0 {
		t.Fatalf("scan: %d lines, %d texts, %v; want 60", n, len(texts), err)
	}
	sum := 0
	for _, c := range texts {
		sum += c
	}
	if sum != 60 {
		t.Fatalf("scan called each %d times, want 60", sum)
	}
}

// TestRouterCredentials: an indexer behind the API's auth is asked with
// the caller's Authorization header; a request of the process itself (an
// alert rule: no caller) with the router's own Credential; with neither,
// the indexer refuses and its partition is missing.
func TestRouterCredentials(t *testing.T) {
	ctx := context.Background()
	e := startEtcd(t)
	const token = "fleet-credential-0123456789"
	tokFile := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(tokFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	guard, err := auth.New(auth.Config{TokenFile: tokFile})
	if err != nil {
		t.Fatal(err)
	}
	ix := openIndex(t, lines("t/0", 40))
	h := httpapi.New(httpapi.Deps{Search: ix, Local: ix, LocalFind: ix, Now: func() time.Time { return now }}, quiet)
	srv := httptest.NewServer(guard.Middleware(h))
	t.Cleanup(srv.Close)
	register(t, e, fleet.Member{ID: "a1", Addr: srv.URL, Coverage: cov("t/0")})
	dir := watchDirectory(t, e, 1)
	newRouter := func(cred func() string) *fleet.Router {
		return &fleet.Router{Dir: dir, CompareSort: index.CompareSort, MergeStats: mergeStates, Credential: cred,
			Client: &http.Client{Timeout: 10 * time.Second}, Log: quiet,
			Marks: func(context.Context) (map[string]pipeline.OffsetRange, error) {
				return map[string]pipeline.OffsetRange{"t/0": {0, 100}}, nil
			}}
	}
	req := pipeline.SearchRequest{Query: "request", Limit: 1, ExactTotal: true}
	// The caller's header is passed on.
	res, err := newRouter(nil).Search(pipeline.WithAuth(ctx, "Bearer "+token), req)
	if err != nil || res.Total != 40 || res.Partial {
		t.Fatalf("with the caller's token: total %d partial %v %v", res.Total, res.Partial, err)
	}
	// No caller: the router's own credential.
	res, err = newRouter(func() string { return "Bearer " + token }).Search(ctx, req)
	if err != nil || res.Total != 40 || res.Partial {
		t.Fatalf("with the router's credential: total %d partial %v %v", res.Total, res.Partial, err)
	}
	// Neither: refused, so the partition is missing (not silently empty).
	r := newRouter(nil)
	res, err = r.Search(ctx, req)
	if err != nil || res.Total != 0 || !res.Partial {
		t.Fatalf("without credentials: total %d partial %v %v, want 0 and partial", res.Total, res.Partial, err)
	}
	// A refusal is the request's, not an outage: the next request with
	// the token is answered by the same indexer at once.
	res, err = r.Search(pipeline.WithAuth(ctx, "Bearer "+token), req)
	if err != nil || res.Total != 40 || res.Partial {
		t.Fatalf("with the token right after a refusal: total %d partial %v %v", res.Total, res.Partial, err)
	}
}

// startEtcd runs an embedded etcd for the test.
func startEtcd(t *testing.T) *settings.Embedded {
	t.Helper()
	e, err := settings.StartEmbedded(filepath.Join(t.TempDir(), "etcd"), "127.0.0.1:0", quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e
}

// watchDirectory runs a Directory of e until the test ends and waits
// until it lists n members.
func watchDirectory(t *testing.T, e *settings.Embedded, n int) *fleet.Directory {
	t.Helper()
	dir := fleet.NewDirectory(e.Client(), quiet)
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = dir.Run(ctx) }()
	t.Cleanup(func() { stop(); wg.Wait() })
	for deadline := time.Now().Add(10 * time.Second); len(dir.Members()) < n; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("directory lists %d members, want %d", len(dir.Members()), n)
		}
	}
	return dir
}
