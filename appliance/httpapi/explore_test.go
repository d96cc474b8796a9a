package httpapi_test

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/logbox/logbox/appliance/httpapi"
	"github.com/logbox/logbox/appliance/index"
	"github.com/logbox/logbox/appliance/pipeline"
)

var base = time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)

// lines makes n lines of file fileID on host, one per second from start;
// every third is an ERROR.
func lines(start time.Time, n int, host, fileID string) []pipeline.Record {
	out := make([]pipeline.Record, n)
	for i := range out {
		lvl := []string{"INFO", "ERROR", "WARN"}[i%3]
		out[i] = pipeline.Record{TS: start.Add(time.Duration(i) * time.Second), Host: host, Source: "/var/log/" + fileID + ".log",
			FileID: fileID, Offset: int64(i * 100), Line: fmt.Sprintf("%s request n%05d", lvl, i)}
	}
	return out
}

func TestExploreAPI(t *testing.T) {
	srv, ix, _ := newServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := ix.Index(ctx, append(lines(base, 60, "web1", "a"), lines(base, 30, "web2", "b")...)); err != nil {
		t.Fatal(err)
	}
	rng := "&from=" + base.Format(time.RFC3339) + "&to=" + base.Add(time.Minute).Format(time.RFC3339)
	mid := pipeline.RecordID("web1", "a", 3000)
	long := url.QueryEscape(strings.Repeat("x ", 2100))
	cases := []struct {
		path   string
		code   int
		errHas string
		check  func(m map[string]any) string // "" = fine
	}{
		{"/api/histogram?buckets=2" + rng, 200, "", func(m map[string]any) string {
			if fmt.Sprint(m["buckets"]) != "[map[count:60 ts:2026-01-02T03:00:00Z] map[count:30 ts:2026-01-02T03:00:30Z]]" || m["interval"] != "30s" {
				return fmt.Sprint(m)
			}
			return ""
		}},
		{"/api/histogram?q=level:error", 200, "", func(m map[string]any) string {
			// Open ends: from the first ERROR (03:00:01) to the last (03:00:58).
			if len(m["buckets"].([]any)) != 58 || m["total"] != 30.0 || m["interval"] != "1s" {
				return fmt.Sprint(m)
			}
			return ""
		}},
		{"/api/histogram?from=2030-01-01T00:00:00Z&to=2030-01-01T01:00:00Z", 200, "", func(m map[string]any) string {
			if len(m["buckets"].([]any)) != 60 || m["total"] != 0.0 || m["interval"] != "1m" {
				return fmt.Sprint(m)
			}
			return ""
		}},
		{"/api/histogram?buckets=0", 400, "buckets:", nil},
		{"/api/histogram?buckets=501", 400, "buckets:", nil},
		{"/api/histogram?to=soon", 400, "to:", nil},
		{"/api/facets?field=host", 200, "", func(m map[string]any) string {
			if fmt.Sprint(m) != "map[field:host missing:0 other:0 total:90 values:[map[count:60 value:web1] map[count:30 value:web2]]]" {
				return fmt.Sprint(m)
			}
			return ""
		}},
		{"/api/facets?field=level&q=host:web2&size=1", 200, "", func(m map[string]any) string {
			if fmt.Sprint(m["values"]) != "[map[count:10 value:ERROR]]" || m["other"] != 20.0 {
				return fmt.Sprint(m)
			}
			return ""
		}},
		{"/api/facets", 400, "field: required", nil},
		{"/api/facets?field=colour", 400, `field: "colour" cannot be faceted`, nil},
		{"/api/facets?field=host&size=1001", 400, "size:", nil},
		{"/api/context?id=" + url.QueryEscape(mid) + "&before=2&after=1", 200, "", func(m map[string]any) string {
			hits := m["hits"].([]any)
			var offs []any
			for _, h := range hits {
				offs = append(offs, h.(map[string]any)["offset"])
			}
			if fmt.Sprint(offs) != "[2800 2900 3000 3100]" || m["anchor_index"] != 2.0 || hits[2].(map[string]any)["anchor"] != true {
				return fmt.Sprint(m)
			}
			return ""
		}},
		{"/api/context?id=" + url.QueryEscape(mid), 200, "", func(m map[string]any) string {
			if len(m["hits"].([]any)) != 21 || m["anchor_index"] != 10.0 {
				return fmt.Sprint(len(m["hits"].([]any)), m["anchor_index"])
			}
			return ""
		}},
		{"/api/context?id=nope", 404, "no line with this id", nil},
		{"/api/context", 400, "id: required", nil},
		{"/api/context?id=x&before=-1", 400, "before:", nil},
		{"/api/context?id=x&after=501", 400, "after:", nil},
		{"/api/export?format=xml", 400, "format:", nil},
		// Expensive queries are refused before they run, on every endpoint.
		{"/api/search?q=*rror", 400, "can begin with any character", nil},
		{"/api/search?q=host:?eb1", 400, "can begin with any character", nil},
		{"/api/histogram?q=error~3", 400, "fuzziness ~3", nil},
		{"/api/facets?field=host&q=" + url.QueryEscape("/"+strings.Repeat("a", 201)+"/"), 400, "regular expression is 201 bytes", nil},
		{"/api/export?q=" + long, 400, "at most 4096", nil},
		{"/api/tail?q=*x", 400, "can begin with any character", nil},
		{"/api/stats?q=" + url.QueryEscape("request | stats count() as n by (host, level) | sort by (n desc, host) | limit 3"), 200, "", func(m map[string]any) string {
			if fmt.Sprint(m) != "map[by:2 columns:[host level n] groups_capped:false rows:[[web1 ERROR 20] [web1 INFO 20] [web1 WARN 20]] total:90]" {
				return fmt.Sprint(m)
			}
			return ""
		}},
		{"/api/stats?q=" + url.QueryEscape("host:web2 | stats count() by (_time:10s)") + rng, 200, "", func(m map[string]any) string {
			if fmt.Sprint(m["rows"]) != "[[2026-01-02T03:00:00Z 10] [2026-01-02T03:00:10Z 10] [2026-01-02T03:00:20Z 10]]" {
				return fmt.Sprint(m)
			}
			return ""
		}},
		// A broken pipe is a 400 that says where; a pipe sent to search too.
		{"/api/stats?q=" + url.QueryEscape("error | stats count() by (host"), 400, `")" to close by`, func(m map[string]any) string {
			if m["position"] != 31.0 {
				return fmt.Sprint(m)
			}
			return ""
		}},
		{"/api/stats?q=error", 400, "needs a stats pipe", nil},
		{"/api/search?q=" + url.QueryEscape("error | stats count()"), 400, "answered by /api/stats", func(m map[string]any) string {
			if m["position"] != 7.0 {
				return fmt.Sprint(m)
			}
			return ""
		}},
		{"/api/search?q=" + url.QueryEscape("level:error"), 200, "", func(m map[string]any) string {
			if m["total"] != 30.0 {
				return fmt.Sprint(m["total"])
			}
			return ""
		}},
	}
	for _, c := range cases {
		code, m, _ := do(t, "GET", srv.URL+c.path, "")
		if code != c.code {
			t.Errorf("%.80s: %d, want %d (%v)", c.path, code, c.code, m)
			continue
		}
		if c.errHas != "" {
			if e, _ := m["error"].(string); !strings.Contains(e, c.errHas) {
				t.Errorf("%.80s: error %q does not mention %q", c.path, e, c.errHas)
			}
		}
		if c.check != nil {
			if bad := c.check(m); bad != "" {
				t.Errorf("%.80s: %s", c.path, bad)
			}
		}
	}
}

func TestQueryTimeout(t *testing.T) {
	srv, ix, _ := newServerWith(t, index.Config{}, func(d *httpapi.Deps) { d.QueryTimeout = time.Nanosecond })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := ix.Index(ctx, lines(base, 10, "web1", "a")); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/api/search", "/api/histogram", "/api/facets?field=host", "/api/stats?q=%7C+stats+count()", "/api/export", "/api/context?id=x"} {
		code, m, _ := do(t, "GET", srv.URL+p, "")
		if e, _ := m["error"].(string); code != 504 || !strings.Contains(e, "query took longer than 1ns") {
			t.Errorf("%s: %d %v", p, code, m)
		}
	}
}

func TestExportStreamsEveryLine(t *testing.T) {
	srv, ix, _ := newServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	const n = 25000 // more than two pages of 10000
	const all7 = "line has \"quotes\", a comma\nand a newline"
	var all []pipeline.Record
	for i := 0; i < n; i++ {
		all = append(all, pipeline.Record{TS: base.Add(time.Duration(i) * time.Millisecond), Host: "h", Source: "/s", FileID: "f",
			Offset: int64(i), Line: fmt.Sprintf("line %d", i)})
	}
	all[7].Line = all7
	for len(all) > 0 {
		k := min(len(all), 5000)
		if err := ix.Index(ctx, all[:k]); err != nil {
			t.Fatal(err)
		}
		all = all[k:]
	}
	get := func(t *testing.T, format string) (*http.Response, io.ReadCloser) {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/api/export?q=line&format="+format, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Disposition"), `attachment; filename="logbox-export-`) {
			t.Fatalf("%d %v", resp.StatusCode, resp.Header)
		}
		return resp, resp.Body
	}
	t.Run("ndjson", func(t *testing.T) {
		resp, body := get(t, "ndjson")
		defer body.Close()
		if ct := resp.Header.Get("Content-Type"); ct != "application/x-ndjson" {
			t.Fatalf("content type %q", ct)
		}
		dec := json.NewDecoder(body)
		seen := map[int64]bool{}
		last := time.Time{}
		for {
			var h pipeline.Hit
			if err := dec.Decode(&h); err == io.EOF {
				break
			} else if err != nil {
				t.Fatal(err)
			}
			if seen[h.Offset] {
				t.Fatalf("offset %d twice", h.Offset)
			}
			seen[h.Offset] = true
			if !last.IsZero() && h.TS.After(last) {
				t.Fatal("not newest first")
			}
			last = h.TS
			if h.Offset == 7 && h.Line != all7 {
				t.Fatalf("line 7: %q", h.Line)
			}
		}
		if len(seen) != n {
			t.Fatalf("%d lines, want %d", len(seen), n)
		}
	})
	t.Run("csv", func(t *testing.T) {
		resp, body := get(t, "csv")
		defer body.Close()
		if ct := resp.Header.Get("Content-Type"); ct != "text/csv; charset=utf-8" {
			t.Fatalf("content type %q", ct)
		}
		rows, err := csv.NewReader(body).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(rows[0], ",") != "ts,host,source,offset,level,line" || len(rows) != n+1 {
			t.Fatalf("header %v, %d rows", rows[0], len(rows))
		}
		seen := map[string]bool{}
		for _, r := range rows[1:] {
			if seen[r[3]] {
				t.Fatalf("offset %s twice", r[3])
			}
			seen[r[3]] = true
			if r[3] == "7" && r[5] != all7 {
				t.Fatalf("row of line 7: %q", r)
			}
		}
		if rows[1][0] != base.Add((n-1)*time.Millisecond).Format(time.RFC3339Nano) {
			t.Fatalf("first row %v is not the newest", rows[1])
		}
	})
}

type sseEvent struct{ ID, Event, Data string }

// openTail connects to /api/tail and returns its events and comments; it
// returns once the server has sent its first comment (the tail is live).
func openTail(t *testing.T, ctx context.Context, u, lastID string) (<-chan sseEvent, <-chan string, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	req, _ := http.NewRequestWithContext(ctx, "GET", u, nil)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		cancel()
		t.Fatalf("tail: %d %v", resp.StatusCode, resp.Header)
	}
	events := make(chan sseEvent, 100)
	comments := make(chan string, 100)
	go func() {
		defer close(events)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev != (sseEvent{}) {
					events <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, ":"):
				select {
				case comments <- line:
				default:
				}
			case strings.HasPrefix(line, "id: "):
				ev.ID = line[4:]
			case strings.HasPrefix(line, "event: "):
				ev.Event = line[7:]
			case strings.HasPrefix(line, "data: "):
				ev.Data = line[6:]
			}
		}
	}()
	select {
	case <-comments:
	case <-ctx.Done():
		t.Fatal("tail did not start")
	}
	return events, comments, cancel
}

func next(t *testing.T, ctx context.Context, events <-chan sseEvent) (sseEvent, pipeline.Hit) {
	t.Helper()
	select {
	case ev, ok := <-events:
		if !ok {
			t.Fatal("tail ended")
		}
		var h pipeline.Hit
		if ev.Event == "" {
			if err := json.Unmarshal([]byte(ev.Data), &h); err != nil {
				t.Fatalf("event data %q: %v", ev.Data, err)
			}
		}
		return ev, h
	case <-ctx.Done():
		t.Fatal("no event in time")
	}
	panic("unreachable")
}

func TestTailSSE(t *testing.T) {
	stop := make(chan struct{})
	srv, ix, _ := newServerWith(t, index.Config{}, func(d *httpapi.Deps) {
		d.TailHeartbeat = 50 * time.Millisecond
		d.Stop = stop
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	u := srv.URL + "/api/tail?q=" + url.QueryEscape("level:error")
	ev1, com1, close1 := openTail(t, ctx, u, "")
	defer close1()
	ev2, _, close2 := openTail(t, ctx, u, "")
	defer close2()

	// A non-matching line first, then a matching one: each subscriber's
	// first event is the matching line.
	rs := lines(base, 3, "web1", "a") // INFO, ERROR, WARN
	for _, r := range rs {
		if err := ix.Index(ctx, []pipeline.Record{r}); err != nil {
			t.Fatal(err)
		}
	}
	for i, evs := range []<-chan sseEvent{ev1, ev2} {
		ev, h := next(t, ctx, evs)
		if h.Line != rs[1].Line || ev.ID != rs[1].ID() || h.ID != ev.ID {
			t.Fatalf("subscriber %d got %+v", i, ev)
		}
	}
	// Heartbeats keep an idle stream alive.
	for {
		select {
		case c := <-com1:
			if c != ": heartbeat" {
				continue
			}
		case <-ctx.Done():
			t.Fatal("no heartbeat")
		}
		break
	}
	select {
	case ev := <-ev1:
		t.Fatalf("unexpected event %+v", ev)
	default:
	}

	// Subscriber 1 goes away; lines come meanwhile; it reconnects with the
	// last id it saw and gets them first, in order, then live ones.
	close1()
	missed := lines(base.Add(time.Minute), 6, "web1", "b") // ERROR at 1 and 4
	if err := ix.Index(ctx, missed); err != nil {
		t.Fatal(err)
	}
	ev1, _, close1 = openTail(t, ctx, u, rs[1].ID())
	defer close1()
	live := lines(base.Add(time.Hour), 2, "web1", "c")
	if err := ix.Index(ctx, live); err != nil {
		t.Fatal(err)
	}
	for _, want := range []pipeline.Record{missed[1], missed[4], live[1]} {
		if ev, h := next(t, ctx, ev1); ev.ID != want.ID() || h.Line != want.Line {
			t.Fatalf("after resume got %+v, want %s", ev, want.ID())
		}
	}
	// Subscriber 2 saw them live, each once.
	for _, want := range []pipeline.Record{missed[1], missed[4], live[1]} {
		if ev, _ := next(t, ctx, ev2); ev.ID != want.ID() {
			t.Fatalf("subscriber 2 got %+v, want %s", ev, want.ID())
		}
	}
	// Server shutdown ends every tail with an "end" event.
	close(stop)
	for _, evs := range []<-chan sseEvent{ev1, ev2} {
		if ev, _ := next(t, ctx, evs); ev.Event != "end" {
			t.Fatalf("on stop: %+v", ev)
		}
	}
}

// TestTailSlowClient: a client that stops reading never blocks indexing;
// it is dropped with an "overflow" event once it falls TailBuffer behind.
func TestTailSlowClient(t *testing.T) {
	srv, ix, _ := newServerWith(t, index.Config{TailBuffer: 3000}, func(d *httpapi.Deps) { d.TailWriteTimeout = 2 * time.Minute })
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	// A healthy subscriber alongside.
	evs, _, closeFast := openTail(t, ctx, srv.URL+"/api/tail?q=canary", "")
	defer closeFast()

	conn, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /api/tail HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	br := bufio.NewReader(conn)
	if l, err := br.ReadString('\n'); err != nil || !strings.Contains(l, "200") {
		t.Fatalf("slow tail: %q %v", l, err)
	}
	// Now it stops reading. 40 batches of 500 lines of 1 KiB: more than
	// the socket buffers and TailBuffer hold.
	pad := strings.Repeat("x", 1024)
	for b := 0; b < 40; b++ {
		rs := make([]pipeline.Record, 500)
		for i := range rs {
			rs[i] = pipeline.Record{TS: base.Add(time.Duration(b*500+i) * time.Millisecond), Host: "h", FileID: "f",
				Offset: int64(b*500 + i), Line: fmt.Sprintf("line %d %s", b*500+i, pad)}
		}
		start := time.Now()
		if err := ix.Index(ctx, rs); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Fatalf("batch %d took %v", b, d)
		}
	}
	// The healthy subscriber still gets a new line.
	if err := ix.Index(ctx, []pipeline.Record{{TS: base, Host: "h", FileID: "g", Offset: 0, Line: "canary"}}); err != nil {
		t.Fatal(err)
	}
	if _, h := next(t, ctx, evs); h.Line != "canary" {
		t.Fatalf("healthy subscriber got %q", h.Line)
	}
	// The slow one, once it reads again, finds that it was dropped.
	_ = conn.SetReadDeadline(time.Now().Add(60 * time.Second))
	rest, err := io.ReadAll(br)
	if err != nil {
		t.Fatalf("slow tail: %v", err)
	}
	if !strings.Contains(string(rest), "event: overflow\ndata: {\"error\":\"tail fell too far behind") {
		t.Fatalf("slow tail ended without overflow event: ...%q", rest[max(0, len(rest)-300):])
	}
}
