package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/logbox/logbox/appliance/pipeline"
)

// Searches is the saved-search store (settings.SearchStore).
type Searches interface {
	List(ctx context.Context) (pipeline.SavedSearchList, error)
	Get(ctx context.Context, name string) (pipeline.SavedSearch, error)
	// Create, Put and Rename return what they stored (server times set);
	// Put also whether it created the entry.
	Create(ctx context.Context, ss pipeline.SavedSearch) (pipeline.SavedSearch, error)
	Put(ctx context.Context, ss pipeline.SavedSearch) (pipeline.SavedSearch, bool, error)
	Delete(ctx context.Context, name string) error
	Rename(ctx context.Context, old, to string) (pipeline.SavedSearch, error)
	Decode(b []byte) (pipeline.SavedSearch, error)
}

func searchesRoutes(r chi.Router, s *server) {
	// Each handler gets the store; a process with none answers 501.
	with := func(h func(st Searches, w http.ResponseWriter, r *http.Request)) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if s.d.Searches == nil {
				writeError(w, http.StatusNotImplemented, "this process keeps no saved searches")
				return
			}
			h(s.d.Searches, w, r)
		}
	}
	r.Get("/searches", with(s.listSearches))
	r.Post("/searches", with(s.createSearch))
	r.Get("/searches/{name}", with(s.getSearch))
	r.Put("/searches/{name}", with(s.putSearch))
	r.Delete("/searches/{name}", with(s.deleteSearch))
	r.Post("/searches/{name}/rename", with(s.renameSearch))
}

func searchLocation(name string) string { return "/api/searches/" + url.PathEscape(name) }

func (s *server) listSearches(st Searches, w http.ResponseWriter, r *http.Request) {
	list, err := st.List(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, list)
}

func (s *server) getSearch(st Searches, w http.ResponseWriter, r *http.Request) {
	ss, err := st.Get(r.Context(), chi.URLParam(r, "name"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ss)
}

func (s *server) createSearch(st Searches, w http.ResponseWriter, r *http.Request) {
	b, err := readBody(r)
	var ss pipeline.SavedSearch
	if err == nil {
		ss, err = st.Decode(b)
	}
	if err == nil {
		err = s.checkSavedQuery(ss)
	}
	if err == nil {
		ss, err = st.Create(r.Context(), ss)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Location", searchLocation(ss.Name))
	writeJSON(w, http.StatusCreated, ss)
}

// putSearch creates or replaces the saved search named in the URL (201 or
// 200). The body may leave the name out; a different name is a 400 that
// points at rename.
func (s *server) putSearch(st Searches, w http.ResponseWriter, r *http.Request) {
	name := chi.URLParam(r, "name")
	b, err := readBody(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	b, err = bodyWithName(b, name, func(got string) string {
		return fmt.Sprintf("; to rename, POST {\"name\":%q} to %s/rename", got, searchLocation(name))
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ss, err := st.Decode(b)
	var created bool
	if err == nil {
		err = s.checkSavedQuery(ss)
	}
	if err == nil {
		ss, created, err = st.Put(r.Context(), ss)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	code := http.StatusOK
	if created {
		code = http.StatusCreated
		w.Header().Set("Location", searchLocation(ss.Name))
	}
	writeJSON(w, code, ss)
}

func (s *server) deleteSearch(st Searches, w http.ResponseWriter, r *http.Request) {
	if err := st.Delete(r.Context(), chi.URLParam(r, "name")); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// renameSearch takes {"name":"new"}: 200 with the renamed search, 404 if
// the old one is missing, 409 if the new name is taken.
func (s *server) renameSearch(st Searches, w http.ResponseWriter, r *http.Request) {
	b, err := readBody(r)
	var to string
	if err == nil {
		to, err = renameTarget(b)
	}
	var ss pipeline.SavedSearch
	if err == nil {
		ss, err = st.Rename(r.Context(), chi.URLParam(r, "name"), to)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Location", searchLocation(ss.Name))
	writeJSON(w, http.StatusOK, ss)
}

// renameTarget reads a rename's body: one object with one key, "name", a
// string.
func renameTarget(b []byte) (string, error) {
	var in map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&in); err != nil || in == nil || dec.More() {
		return "", &pipeline.FieldError{Field: "body", Msg: `want one JSON object {"name":"NEW"}`}
	}
	for _, k := range slices.Sorted(maps.Keys(in)) {
		if k != "name" {
			return "", &pipeline.FieldError{Field: k, Msg: `unknown key; a rename takes only {"name":"NEW"}`}
		}
	}
	raw, ok := in["name"]
	var to string
	if !ok || json.Unmarshal(raw, &to) != nil {
		return "", &pipeline.FieldError{Field: "name", Msg: "the new name is required, as a string"}
	}
	return to, pipeline.CheckName(to)
}

// checkSavedQuery refuses a saved search whose query the index cannot
// read (a 400 naming "query", with where in it), when the process has a
// query checker (roles with an index).
func (s *server) checkSavedQuery(ss pipeline.SavedSearch) error {
	if s.d.CheckQuery == nil {
		return nil
	}
	if err := s.d.CheckQuery(ss.Query); err != nil {
		var qe *pipeline.QueryError
		if errors.As(err, &qe) {
			return &pipeline.FieldError{Field: "query", Msg: strings.TrimPrefix(qe.Error(), "query: ")}
		}
		return err
	}
	return nil
}
