package httpapi

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/logbox/logbox/appliance/pipeline"
)

// EntryStore is what a store of one kind of named settings entry offers
// the API: saved searches (Searches) and alert rules (Alerts) have it.
type EntryStore[T any] interface {
	Get(ctx context.Context, name string) (T, error)
	// Create and Put return what they stored (server times set); Put
	// also whether it created the entry.
	Create(ctx context.Context, v T) (T, error)
	Put(ctx context.Context, v T) (T, bool, error)
	Delete(ctx context.Context, name string) error
	Decode(b []byte) (T, error)
}

// withStore returns the wrapper that gives each handler the store st; a
// process without one (st nil) answers 501 with missing.
func withStore[S comparable](st S, missing string) func(h func(st S, w http.ResponseWriter, r *http.Request)) http.HandlerFunc {
	return func(h func(st S, w http.ResponseWriter, r *http.Request)) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			var none S
			if st == none {
				writeError(w, http.StatusNotImplemented, missing)
				return
			}
			h(st, w, r)
		}
	}
}

// entryHandlers answers GET, PUT and DELETE on base/{name} and POST on
// base for one kind of entry T kept in a store S; the fields are what the
// kinds differ in.
type entryHandlers[T any, S EntryStore[T]] struct {
	s *server
	// base is the collection's URL path ("/api/searches").
	base string
	// name is an entry's name.
	name func(v T) string
	// check refuses, before it is stored, an entry the store would take
	// (a query the index cannot read).
	check func(v T) error
	// hint ends the message of a PUT whose body names another entry than
	// its URL's name (got); nil adds nothing.
	hint func(name, got string) string
	// view is how GET and PUT answer an entry; fresh how POST answers the
	// entry it created.
	view  func(ctx context.Context, st S, v T) (any, error)
	fresh func(v T) any
}

// routes registers the handlers under path (the router's, "/searches").
func (h *entryHandlers[T, S]) routes(r chi.Router, path string, with func(func(S, http.ResponseWriter, *http.Request)) http.HandlerFunc) {
	r.Post(path, with(h.create))
	r.Get(path+"/{name}", with(h.get))
	r.Put(path+"/{name}", with(h.put))
	r.Delete(path+"/{name}", with(h.delete))
}

func (h *entryHandlers[T, S]) location(name string) string {
	return h.base + "/" + url.PathEscape(name)
}

func (h *entryHandlers[T, S]) get(st S, w http.ResponseWriter, r *http.Request) {
	v, err := st.Get(r.Context(), chi.URLParam(r, "name"))
	var out any
	if err == nil {
		out, err = h.view(r.Context(), st, v)
	}
	if err != nil {
		h.s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// create answers 201 with the entry and its Location.
func (h *entryHandlers[T, S]) create(st S, w http.ResponseWriter, r *http.Request) {
	b, err := readBody(r)
	var v T
	if err == nil {
		v, err = st.Decode(b)
	}
	if err == nil {
		err = h.check(v)
	}
	if err == nil {
		v, err = st.Create(r.Context(), v)
	}
	if err != nil {
		h.s.fail(w, r, err)
		return
	}
	w.Header().Set("Location", h.location(h.name(v)))
	writeJSON(w, http.StatusCreated, h.fresh(v))
}

// put creates or replaces the entry named in the URL (201 with its
// Location, or 200). The body may leave the name out; a different name is
// a 400.
func (h *entryHandlers[T, S]) put(st S, w http.ResponseWriter, r *http.Request) {
	name := chi.URLParam(r, "name")
	b, err := readBody(r)
	if err == nil {
		var hint func(string) string
		if h.hint != nil {
			hint = func(got string) string { return h.hint(name, got) }
		}
		b, err = bodyWithName(b, name, hint)
	}
	var v T
	if err == nil {
		v, err = st.Decode(b)
	}
	if err == nil {
		err = h.check(v)
	}
	var created bool
	if err == nil {
		v, created, err = st.Put(r.Context(), v)
	}
	var out any
	if err == nil {
		out, err = h.view(r.Context(), st, v)
	}
	if err != nil {
		h.s.fail(w, r, err)
		return
	}
	code := http.StatusOK
	if created {
		code = http.StatusCreated
		w.Header().Set("Location", h.location(h.name(v)))
	}
	writeJSON(w, code, out)
}

func (h *entryHandlers[T, S]) delete(st S, w http.ResponseWriter, r *http.Request) {
	if err := st.Delete(r.Context(), chi.URLParam(r, "name")); err != nil {
		h.s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// checkQuery refuses, when the process has a query checker (roles with an
// index), a query the index cannot read: a *queryFieldError, a 400 naming
// "query" that keeps where in the query the index stopped.
func (s *server) checkQuery(q string) error {
	if s.d.CheckQuery == nil {
		return nil
	}
	err := s.d.CheckQuery(q)
	var qe *pipeline.QueryError
	if errors.As(err, &qe) {
		return &queryFieldError{
			fe: &pipeline.FieldError{Field: "query", Msg: strings.TrimPrefix(qe.Error(), "query: ")},
			qe: qe,
		}
	}
	return err
}

// queryFieldError is a query the index refused, as a field error naming
// where the query is, that keeps the *pipeline.QueryError (and so its
// position) for the answer.
type queryFieldError struct {
	fe *pipeline.FieldError
	qe *pipeline.QueryError
}

func (e *queryFieldError) Error() string   { return e.fe.Error() }
func (e *queryFieldError) Unwrap() []error { return []error{e.fe, e.qe} }
