// Package httpapi serves logbox's HTTP API (see CONTRACT.md) and mounts the
// search page. It depends only on the small interfaces below, which the
// appliance fills with the index, the settings store and status reporters.
package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/logbox/logbox/appliance/pipeline"
)

// Searcher answers searches; nil on roles without an index.
type Searcher interface {
	Search(ctx context.Context, req pipeline.SearchRequest) (pipeline.SearchResult, error)
}

// Explorer answers the search page's questions beyond hits: histogram,
// facets, a hit's surrounding lines and live tails. *index.Index
// implements it; New uses Deps.Search as the Explorer when it is one.
type Explorer interface {
	Histogram(ctx context.Context, req pipeline.HistogramRequest) (pipeline.HistogramResult, error)
	Facets(ctx context.Context, req pipeline.FacetsRequest) (pipeline.FacetsResult, error)
	StatsQuery(ctx context.Context, req pipeline.StatsRequest) (pipeline.StatsResult, error)
	Context(ctx context.Context, req pipeline.ContextRequest) (pipeline.ContextResult, error)
	Tail(ctx context.Context, req pipeline.TailRequest) (pipeline.TailStream, error)
}

// Sources is the settings store.
type Sources interface {
	List(ctx context.Context) ([]pipeline.Source, error)
	Get(ctx context.Context, name string) (pipeline.Source, error)
	Create(ctx context.Context, src pipeline.Source) error
	Put(ctx context.Context, src pipeline.Source) error
	Delete(ctx context.Context, name string) error
	Decode(b []byte) (pipeline.Source, error)
}

// Deps is what the API serves.
type Deps struct {
	Search  Searcher
	Sources Sources
	// Searches keeps saved searches; nil answers 501.
	Searches Searches
	// Alerts keeps alert rules and reads their state; nil answers 501.
	Alerts Alerts
	// Status returns the value served at /api/status.
	Status func(ctx context.Context) any
	// Ready reports nil once the process can serve (etcd and index open).
	Ready func(ctx context.Context) error
	// Page serves the search page and its assets; nil serves none.
	Page http.Handler
	// Now is the clock for relative times; nil means time.Now.
	Now func() time.Time
	// Explore answers histogram, facets, context and tail; nil uses
	// Search when it implements Explorer.
	Explore Explorer
	// CheckQuery, when set, parses a query (with its pipes) as the index
	// would: saved searches are checked with it before they are stored.
	CheckQuery func(q string) error
	// HasPipe, when set, tells whether a query has a pipe: alert rules
	// are checked with it before they are stored (a new_patterns rule's
	// query has none; a column needs one).
	HasPipe func(q string) bool
	// StatsColumns, when set, names the function columns of a query's
	// stats pipe (nil without one): an alert rule's column is checked
	// against them.
	StatsColumns func(q string) []string
	// Patterns answers /api/patterns (nil: 501) and, with PatternsPipe,
	// queries with a "| patterns" pipe on /api/stats (patterns.go).
	Patterns     Patterns
	PatternsPipe PatternsPipe
	// QueryTimeout bounds each search, histogram, facets and export page
	// (default 10s); a query that takes longer is answered 504.
	QueryTimeout time.Duration
	// ExportPageSize is how many hits an export fetches per page (default
	// 10000, at most 10000); memory stays bounded by one page.
	ExportPageSize int
	// TailHeartbeat is the interval of SSE comment heartbeats (default 15s).
	TailHeartbeat time.Duration
	// TailWriteTimeout drops a tail whose client does not take a write
	// for this long (default 30s).
	TailWriteTimeout time.Duration
	// ExportWriteTimeout ends an export whose client takes no byte for
	// this long (default 30s); a client that keeps reading is never cut.
	ExportWriteTimeout time.Duration
	// MaxTailsPerClient caps the live tails open at once from one client
	// address (default 8; negative: no cap); MaxTails caps them in all
	// (default 64; negative: no cap). One more is answered 429 with
	// Retry-After. Behind a reverse proxy every client has the proxy's
	// address.
	MaxTailsPerClient, MaxTails int
	// Inputs mount the push inputs' routes (OTLP, Loki push,
	// Elasticsearch bulk) at the router's root, behind the same auth as
	// the API (the guard wraps the whole router).
	Inputs []func(r chi.Router)
	// Local, when set, answers the requests another indexer of the fleet
	// makes (local=1, with partitions=topic/N,…): this process's own
	// index, scoped to those partitions, while Search and Explore answer
	// for the whole fleet. LocalStats answers local=1&state=1 on
	// /api/stats with the stats state (index.StatsState, encoded).
	Local      Explorer
	LocalFind  Searcher
	LocalStats func(ctx context.Context, req pipeline.StatsRequest) ([]byte, error)
	// Stop, when closed, ends open tails: http.Server.Shutdown does not
	// end streaming responses by itself (wire it with RegisterOnShutdown).
	Stop <-chan struct{}
}

const maxBody = 1 << 20

// New returns the router.
func New(d Deps, log *slog.Logger) http.Handler {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Explore == nil {
		if ex, ok := d.Search.(Explorer); ok {
			d.Explore = ex
		}
	}
	if d.QueryTimeout <= 0 {
		d.QueryTimeout = 10 * time.Second
	}
	if d.ExportPageSize <= 0 || d.ExportPageSize > 10000 {
		d.ExportPageSize = 10000
	}
	if d.TailHeartbeat <= 0 {
		d.TailHeartbeat = 15 * time.Second
	}
	if d.TailWriteTimeout <= 0 {
		d.TailWriteTimeout = 30 * time.Second
	}
	if d.ExportWriteTimeout <= 0 {
		d.ExportWriteTimeout = 30 * time.Second
	}
	if d.MaxTailsPerClient == 0 {
		d.MaxTailsPerClient = DefaultMaxTailsPerClient
	}
	if d.MaxTails == 0 {
		d.MaxTails = DefaultMaxTails
	}
	s := &server{d: d, log: log.With("component", "http"), tails: newTailLimiter(d.MaxTailsPerClient, d.MaxTails)}
	r := chi.NewRouter()
	r.Use(s.recoverer, securityHeaders, carryAuth)
	r.Get("/healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	r.Get("/readyz", s.readyz)
	r.Route("/api", func(r chi.Router) {
		r.Use(apiHeaders)
		r.Get("/search", s.search)
		r.Get("/histogram", s.histogram)
		r.Get("/facets", s.facets)
		r.Get("/stats", s.stats)
		r.Get("/patterns", s.patterns)
		r.Get("/context", s.context)
		r.Get("/tail", s.tail)
		r.Get("/export", s.export)
		r.Get("/status", s.status)
		r.Get("/sources", s.listSources)
		r.Post("/sources", s.createSource)
		r.Get("/sources/{name}", s.getSource)
		r.Put("/sources/{name}", s.putSource)
		r.Delete("/sources/{name}", s.deleteSource)
		searchesRoutes(r, s)
		alertsRoutes(r, s)
		r.NotFound(func(w http.ResponseWriter, r *http.Request) {
			writeError(w, http.StatusNotFound, fmt.Sprintf("no API endpoint %s %s", r.Method, r.URL.Path))
		})
		r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
			writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("%s is not allowed on %s", r.Method, r.URL.Path))
		})
	})
	for _, mount := range d.Inputs {
		mount(r)
	}
	if d.Page != nil {
		r.Handle("/*", d.Page)
	}
	return r
}

type server struct {
	d     Deps
	log   *slog.Logger
	tails *tailLimiter
}

func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		next.ServeHTTP(w, r)
	})
}

func apiHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
		w.Header().Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

func (s *server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("handler panicked", "path", r.URL.Path, "err", v)
				writeError(w, http.StatusInternalServerError, "internal error")
			}
		}()
		next.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

// fail maps an error to a status code and writes it.
func (s *server) fail(w http.ResponseWriter, r *http.Request, err error) {
	var fe *pipeline.FieldError
	var qe *pipeline.QueryError
	var ie *pipeline.InvalidEntryError
	switch {
	case errors.As(err, &ie):
		// The request was fine; what etcd holds is not.
		writeError(w, http.StatusConflict, err.Error())
	case errors.As(err, &fe), errors.As(err, &qe):
		// Which field, and where in the query: the page marks them.
		body := map[string]any{"error": err.Error()}
		if errors.As(err, &fe) {
			body["field"] = fe.Field
		}
		if errors.As(err, &qe) && qe.Pos > 0 {
			body["position"] = qe.Pos
		}
		writeJSON(w, http.StatusBadRequest, body)
	case errors.Is(err, pipeline.ErrSourceNotFound), errors.Is(err, pipeline.ErrHitNotFound), errors.Is(err, pipeline.ErrSearchNotFound),
		errors.Is(err, pipeline.ErrAlertNotFound):
		writeError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, pipeline.ErrSourceExists), errors.Is(err, pipeline.ErrSearchExists), errors.Is(err, pipeline.ErrAlertExists):
		writeError(w, http.StatusConflict, err.Error())
	case errors.Is(err, context.DeadlineExceeded) && r.Context().Err() == nil:
		writeError(w, http.StatusGatewayTimeout, fmt.Sprintf("query took longer than %s and was stopped; narrow the time range or make the query more specific", s.d.QueryTimeout))
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		// The client went away; nobody reads the answer.
	default:
		s.log.Warn("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		writeError(w, http.StatusInternalServerError, err.Error())
	}
}

func (s *server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.d.Ready != nil {
		if err := s.d.Ready(r.Context()); err != nil {
			writeError(w, http.StatusServiceUnavailable, err.Error())
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func (s *server) status(w http.ResponseWriter, r *http.Request) {
	if s.d.Status == nil {
		writeJSON(w, http.StatusOK, map[string]any{})
		return
	}
	writeJSON(w, http.StatusOK, s.d.Status(r.Context()))
}

func (s *server) search(w http.ResponseWriter, r *http.Request) {
	if s.d.Search == nil {
		writeError(w, http.StatusNotImplemented, "this process has no index (role agent); search on an indexer")
		return
	}
	req, err := s.searchRequest(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.d.QueryTimeout)
	defer cancel()
	ctx, local := s.scope(ctx, r)
	find := s.d.Search
	if local {
		find, req.WithSort = s.d.LocalFind, true
	}
	res, err := find.Search(ctx, req)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *server) searchRequest(r *http.Request) (pipeline.SearchRequest, error) {
	q := r.URL.Query()
	req := pipeline.SearchRequest{Query: q.Get("q"), Cursor: q.Get("cursor")}
	switch q.Get("track_total") {
	case "", "false":
	case "true":
		req.ExactTotal = true
	default:
		return req, &pipeline.FieldError{Field: "track_total", Msg: "must be true or false"}
	}
	now := s.d.Now()
	var err error
	if req.From, err = ParseTime(q.Get("from"), now); err != nil {
		return req, &pipeline.FieldError{Field: "from", Msg: err.Error()}
	}
	if req.To, err = ParseTime(q.Get("to"), now); err != nil {
		return req, &pipeline.FieldError{Field: "to", Msg: err.Error()}
	}
	if err := pipeline.CheckTimeRange(req.From, req.To); err != nil {
		return req, err
	}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 10000 {
			return req, &pipeline.FieldError{Field: "limit", Msg: "must be a number from 1 to 10000"}
		}
		req.Limit = n
	}
	return req, nil
}

// ParseTime reads an absolute RFC 3339 time or one relative to now (see
// pipeline.ParseTime, which saved searches are checked with too).
func ParseTime(v string, now time.Time) (time.Time, error) {
	return pipeline.ParseTime(v, now)
}

func (s *server) listSources(w http.ResponseWriter, r *http.Request) {
	list, err := s.d.Sources.List(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if list == nil {
		list = []pipeline.Source{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"sources": list})
}

func (s *server) getSource(w http.ResponseWriter, r *http.Request) {
	src, err := s.d.Sources.Get(r.Context(), chi.URLParam(r, "name"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, src)
}

// readBody reads a request body of at most maxBody bytes.
func readBody(r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxBody))
	if err != nil {
		return nil, &pipeline.FieldError{Field: "body", Msg: "unreadable or larger than 1 MiB: " + err.Error()}
	}
	return b, nil
}

func (s *server) readSource(r *http.Request) (pipeline.Source, error) {
	b, err := readBody(r)
	if err != nil {
		return pipeline.Source{}, err
	}
	return s.d.Sources.Decode(b)
}

func (s *server) createSource(w http.ResponseWriter, r *http.Request) {
	src, err := s.readSource(r)
	if err == nil {
		err = s.d.Sources.Create(r.Context(), src)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/sources/"+src.Name)
	writeJSON(w, http.StatusCreated, src)
}

func (s *server) putSource(w http.ResponseWriter, r *http.Request) {
	name := chi.URLParam(r, "name")
	b, err := readBody(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if b, err = bodyWithName(b, name, nil); err != nil {
		s.fail(w, r, err)
		return
	}
	src, err := s.d.Sources.Decode(b)
	if err == nil {
		err = s.d.Sources.Put(r.Context(), src)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, src)
}

// bodyWithName makes the name in the URL win for a PUT body b: a body
// that leaves the name out gets it; one naming another is a 400 whose
// message ends with hint(the body's name), when hint is set. The body is not re-encoded: Decode must see it
// as sent, with any duplicate key or trailing data, to refuse it.
func bodyWithName(b []byte, name string, hint func(got string) string) ([]byte, error) {
	var probe struct {
		Name *string `json:"name"`
	}
	if json.NewDecoder(bytes.NewReader(b)).Decode(&probe) != nil {
		return b, nil
	}
	switch {
	case probe.Name == nil:
		return withName(b, name), nil
	case *probe.Name != name:
		msg := fmt.Sprintf("%q does not match the URL's %q", *probe.Name, name)
		if hint != nil {
			msg += hint(*probe.Name)
		}
		return nil, &pipeline.FieldError{Field: "name", Msg: msg}
	}
	return b, nil
}

// withName inserts "name":name as the first key of the JSON object b,
// leaving the rest of b as it is; b that is not an object is returned as is.
func withName(b []byte, name string) []byte {
	rest, ok := bytes.CutPrefix(bytes.TrimLeft(b, " \t\r\n"), []byte("{"))
	if !ok {
		return b
	}
	q, _ := json.Marshal(name)
	out := append([]byte(`{"name":`), q...)
	if t := bytes.TrimLeft(rest, " \t\r\n"); !bytes.HasPrefix(t, []byte("}")) {
		out = append(out, ',')
	}
	return append(out, rest...)
}

func (s *server) deleteSource(w http.ResponseWriter, r *http.Request) {
	if err := s.d.Sources.Delete(r.Context(), chi.URLParam(r, "name")); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// carryAuth puts the caller's Authorization header on the request's
// context: the fleet asks other indexers with the same credentials
// (pipeline.AuthOf), whatever the handler.
func carryAuth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h := r.Header.Get("Authorization"); h != "" {
			r = r.WithContext(pipeline.WithAuth(r.Context(), h))
		}
		next.ServeHTTP(w, r)
	})
}
