package httpapi

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/logbox/logbox/appliance/pipeline"
)

// scope carries, for a request of another indexer (local=1), the
// partitions it asks for on ctx; local says to answer from this
// process's own index. (The caller's credentials are on every request's
// context already: carryAuth.)
func (s *server) scope(ctx context.Context, r *http.Request) (_ context.Context, local bool) {
	q := r.URL.Query()
	if q.Get("local") != "1" || s.d.Local == nil || s.d.LocalFind == nil {
		return ctx, false
	}
	if p := q.Get("partitions"); p != "" {
		ctx = pipeline.WithParts(ctx, strings.Split(p, ","))
	}
	return ctx, true
}

// explorer returns the Explorer, or answers 501 and nil on roles without
// an index.
func (s *server) explorer(w http.ResponseWriter) Explorer {
	if s.d.Explore == nil {
		writeError(w, http.StatusNotImplemented, "this process has no index (role agent); ask an indexer")
	}
	return s.d.Explore
}

// intParam reads an optional integer parameter in [lo, hi]; absent gives def.
func intParam(r *http.Request, name string, def, lo, hi int) (int, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, &pipeline.FieldError{Field: name, Msg: fmt.Sprintf("must be a number from %d to %d", lo, hi)}
	}
	return n, nil
}

// serveExplore answers one Explorer call: the common query parameters are
// parsed, call runs under the query time limit, and its result is the
// JSON answer. An error (a bad parameter included) is mapped by fail.
func serveExplore[T any](s *server, w http.ResponseWriter, r *http.Request,
	call func(ctx context.Context, ex Explorer, sr pipeline.SearchRequest) (T, error)) {
	ex := s.explorer(w)
	if ex == nil {
		return
	}
	sr, err := s.searchRequest(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.d.QueryTimeout)
	defer cancel()
	ctx, local := s.scope(ctx, r)
	if local {
		ex = s.d.Local
	}
	res, err := call(ctx, ex, sr)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// GET /api/histogram?q=&from=&to=&buckets= →
// {"buckets":[{"ts","count"}],"interval":"1m","interval_seconds":60,"total":N}
func (s *server) histogram(w http.ResponseWriter, r *http.Request) {
	serveExplore(s, w, r, func(ctx context.Context, ex Explorer, sr pipeline.SearchRequest) (pipeline.HistogramResult, error) {
		n, err := intParam(r, "buckets", 60, 1, 500)
		if err != nil {
			return pipeline.HistogramResult{}, err
		}
		return ex.Histogram(ctx, pipeline.HistogramRequest{Query: sr.Query, From: sr.From, To: sr.To, Buckets: n})
	})
}

// GET /api/facets?q=&from=&to=&field=&size= →
// {"field","total","values":[{"value","count"}],"other","missing"}
func (s *server) facets(w http.ResponseWriter, r *http.Request) {
	serveExplore(s, w, r, func(ctx context.Context, ex Explorer, sr pipeline.SearchRequest) (pipeline.FacetsResult, error) {
		field := r.URL.Query().Get("field")
		if field == "" {
			return pipeline.FacetsResult{}, &pipeline.FieldError{Field: "field", Msg: "required: host, source, source_name, level, flags or fields.NAME"}
		}
		size, err := intParam(r, "size", 10, 1, 1000)
		if err != nil {
			return pipeline.FacetsResult{}, err
		}
		// all=1: every value, for the fleet's merge (its own requests
		// only, local=1).
		all := r.URL.Query().Get("all") == "1" && r.URL.Query().Get("local") == "1"
		return ex.Facets(ctx, pipeline.FacetsRequest{Query: sr.Query, From: sr.From, To: sr.To, Field: field, Size: size, All: all})
	})
}

// GET /api/stats?q=QUERY | stats …&from=&to= →
// {"columns":[…],"rows":[[…],…],"total":N,"groups_capped":false}
func (s *server) stats(w http.ResponseWriter, r *http.Request) {
	if s.statsPatterns(w, r) {
		return
	}
	if r.URL.Query().Get("state") == "1" {
		s.statsState(w, r)
		return
	}
	serveExplore(s, w, r, func(ctx context.Context, ex Explorer, sr pipeline.SearchRequest) (pipeline.StatsResult, error) {
		return ex.StatsQuery(ctx, pipeline.StatsRequest{Query: sr.Query, From: sr.From, To: sr.To})
	})
}

// GET /api/context?id=&before=&after= → {"hits":[...],"anchor_index":N}
func (s *server) context(w http.ResponseWriter, r *http.Request) {
	serveExplore(s, w, r, func(ctx context.Context, ex Explorer, _ pipeline.SearchRequest) (pipeline.ContextResult, error) {
		id := r.URL.Query().Get("id")
		if id == "" {
			return pipeline.ContextResult{}, &pipeline.FieldError{Field: "id", Msg: "required: the id of a hit"}
		}
		before, err := intParam(r, "before", 10, 0, 500)
		if err != nil {
			return pipeline.ContextResult{}, err
		}
		after, err := intParam(r, "after", 10, 0, 500)
		if err != nil {
			return pipeline.ContextResult{}, err
		}
		return ex.Context(ctx, pipeline.ContextRequest{ID: id, Before: before, After: after})
	})
}

// GET /api/export?q=&from=&to=&format=ndjson|csv streams every match,
// newest first, one search page at a time. An error before the first byte
// is a JSON error; a later one aborts the response, so a client never
// takes a cut export for a whole one.
func (s *server) export(w http.ResponseWriter, r *http.Request) {
	if s.d.Search == nil {
		writeError(w, http.StatusNotImplemented, "this process has no index (role agent); export from an indexer")
		return
	}
	req, err := s.searchRequest(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	format := r.URL.Query().Get("format")
	switch format {
	case "":
		format = "ndjson"
	case "ndjson", "csv":
	default:
		s.fail(w, r, &pipeline.FieldError{Field: "format", Msg: fmt.Sprintf("%q is not one of ndjson, csv", format)})
		return
	}
	req.Limit = s.d.ExportPageSize
	req.Cursor = ""
	req.NoHighlights = true
	page := func() (pipeline.SearchResult, error) {
		ctx, cancel := context.WithTimeout(r.Context(), s.d.QueryTimeout)
		defer cancel()
		ctx, local := s.scope(ctx, r)
		if local {
			return s.d.LocalFind.Search(ctx, req)
		}
		return s.d.Search.Search(ctx, req)
	}
	res, err := page()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	h := w.Header()
	name := "logbox-export-" + s.d.Now().UTC().Format("20060102T150405Z") + "." + format
	h.Set("Content-Disposition", `attachment; filename="`+name+`"`)
	if format == "csv" {
		h.Set("Content-Type", "text/csv; charset=utf-8")
	} else {
		h.Set("Content-Type", "application/x-ndjson")
	}
	// Each write gets its own deadline: the export lasts while the client
	// reads, the server's overall write timeout does not cut it.
	dw := &deadlineWriter{w: w, rc: http.NewResponseController(w), d: s.d.ExportWriteTimeout}
	dw.extend()
	w.WriteHeader(http.StatusOK)

	var writePage func([]pipeline.Hit) error
	if format == "csv" {
		cw := csv.NewWriter(dw)
		_ = cw.Write([]string{"ts", "host", "source", "offset", "level", "line"})
		writePage = func(hits []pipeline.Hit) error {
			for _, hit := range hits {
				_ = cw.Write([]string{hit.TS.UTC().Format(time.RFC3339Nano), csvCell(hit.Host), csvCell(hit.Source),
					strconv.FormatInt(hit.Offset, 10), hit.Level, csvCell(hit.Line)})
			}
			cw.Flush()
			return cw.Error()
		}
	} else {
		enc := json.NewEncoder(dw)
		enc.SetEscapeHTML(false)
		writePage = func(hits []pipeline.Hit) error {
			for i := range hits {
				if err := enc.Encode(&hits[i]); err != nil {
					return err
				}
			}
			return nil
		}
	}
	for {
		if err := writePage(res.Hits); err != nil {
			return // the client went away or stopped reading
		}
		_ = dw.Flush()
		if res.Cursor == "" {
			return
		}
		req.Cursor = res.Cursor
		if res, err = page(); err != nil {
			if r.Context().Err() == nil {
				s.log.Warn("export stopped midway; the client sees a cut transfer and should retry", "query", req.Query, "err", err)
			}
			panic(http.ErrAbortHandler)
		}
	}
}

// GET /api/tail?q= streams Server-Sent Events: one "data: <hit JSON>"
// event per newly indexed matching line, with the hit's id as the event id.
// A Last-Event-ID header (or last_event_id parameter) first replays the
// lines after that hit. Named events: "gap" (lines skipped, data
// {"message"}), "overflow" (the client fell behind and is dropped, data
// {"error"}), "end" (server shutting down). Comments are heartbeats.
// Open tails are capped per client address and in all (Deps.MaxTails*):
// one more is answered 429 with Retry-After.
func (s *server) tail(w http.ResponseWriter, r *http.Request) {
	ex := s.explorer(w)
	if ex == nil {
		return
	}
	release, refused := s.tails.acquire(clientAddr(r))
	if release == nil {
		tooMany(w, refused, tailRetryAfter)
		return
	}
	defer release()
	req := pipeline.TailRequest{Query: r.URL.Query().Get("q"), LastEventID: r.Header.Get("Last-Event-ID")}
	if v := r.URL.Query().Get("last_event_id"); v != "" && req.LastEventID == "" {
		req.LastEventID = v
	}
	ctx, local := s.scope(r.Context(), r)
	if local {
		ex = s.d.Local
	}
	st, err := func() (pipeline.TailStream, error) {
		qctx, cancel := context.WithTimeout(ctx, s.d.QueryTimeout)
		defer cancel()
		return ex.Tail(qctx, req)
	}()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	defer st.Close()

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("X-Accel-Buffering", "no") // proxies must not hold events back
	w.WriteHeader(http.StatusOK)
	dw := &deadlineWriter{w: w, rc: http.NewResponseController(w), d: s.d.TailWriteTimeout}
	var buf []byte
	// send writes buf; a client that does not take it within the write
	// timeout is dropped.
	send := func() bool {
		_, err := dw.Write(buf)
		buf = buf[:0]
		return err == nil && dw.Flush() == nil
	}
	event := func(name string, v any) {
		b, _ := json.Marshal(v)
		buf = fmt.Appendf(buf, "event: %s\ndata: %s\n\n", name, b)
	}
	buf = append(buf, ": tailing; retry in 2s after a disconnect\nretry: 2000\n\n"...)
	if !send() {
		return
	}
	hb := time.NewTicker(s.d.TailHeartbeat)
	defer hb.Stop()
	for {
		qctx, cancel := context.WithTimeout(ctx, s.d.QueryTimeout)
		c, err := st.Next(qctx)
		cancel()
		switch {
		case err == nil:
		case ctx.Err() != nil:
			return
		case errors.Is(err, pipeline.ErrTailOverflow):
			event("overflow", map[string]string{"error": err.Error()})
			send()
			return
		case errors.Is(err, pipeline.ErrTailClosed):
			event("end", map[string]string{"message": "server shutting down"})
			send()
			return
		default:
			s.log.Warn("tail stopped", "query", req.Query, "err", err)
			event("error", map[string]string{"error": err.Error()})
			send()
			return
		}
		for i := range c.Hits {
			b, _ := json.Marshal(&c.Hits[i])
			if id := c.Hits[i].ID; !strings.ContainsAny(id, "\r\n\x00") {
				buf = fmt.Appendf(buf, "id: %s\n", id)
			}
			buf = fmt.Appendf(buf, "data: %s\n\n", b)
		}
		if c.Gap != "" {
			event("gap", map[string]string{"message": c.Gap})
		}
		if len(buf) > 0 {
			if !send() {
				return
			}
			continue
		}
		select {
		case <-st.Ready():
		case <-hb.C:
			buf = append(buf, ": heartbeat\n\n"...)
			if !send() {
				return
			}
		case <-s.d.Stop:
			event("end", map[string]string{"message": "server shutting down"})
			send()
			return
		case <-ctx.Done():
			return
		}
	}
}

// csvCell keeps a log line from becoming a spreadsheet formula: a cell that
// starts with =, +, -, @, tab or CR gets a leading apostrophe (the OWASP
// advice), which spreadsheets show as text and NDJSON export never needs.
func csvCell(v string) string {
	if v != "" && strings.ContainsRune("=+-@\t\r", rune(v[0])) {
		return "'" + v
	}
	return v
}

// statsState answers another indexer's local=1&state=1 stats request
// with this index's stats state for the partitions asked (binary).
func (s *server) statsState(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), s.d.QueryTimeout)
	defer cancel()
	ctx, local := s.scope(ctx, r)
	if !local || s.d.LocalStats == nil {
		writeError(w, http.StatusBadRequest, "state=1 is for the fleet's own requests (local=1) to an indexer")
		return
	}
	sr, err := s.searchRequest(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	b, err := s.d.LocalStats(ctx, pipeline.StatsRequest{Query: sr.Query, From: sr.From, To: sr.To})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	_, _ = w.Write(b)
}
