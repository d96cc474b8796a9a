package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"

	"github.com/go-chi/chi/v5"

	"github.com/logbox/logbox/appliance/pipeline"
)

// Searches is the saved-search store (settings.SearchStore).
type Searches interface {
	EntryStore[pipeline.SavedSearch]
	List(ctx context.Context) (pipeline.SavedSearchList, error)
	// Rename returns what it stored (server times set).
	Rename(ctx context.Context, old, to string) (pipeline.SavedSearch, error)
}

func searchesRoutes(r chi.Router, s *server) {
	with := withStore(s.d.Searches, "this process keeps no saved searches")
	h := &entryHandlers[pipeline.SavedSearch, Searches]{
		s:     s,
		base:  "/api/searches",
		name:  func(ss pipeline.SavedSearch) string { return ss.Name },
		check: s.checkSavedQuery,
		hint: func(name, got string) string {
			return fmt.Sprintf("; to rename, POST {\"name\":%q} to %s/rename", got, searchLocation(name))
		},
		view:  func(_ context.Context, _ Searches, ss pipeline.SavedSearch) (any, error) { return ss, nil },
		fresh: func(ss pipeline.SavedSearch) any { return ss },
	}
	r.Get("/searches", with(s.listSearches))
	h.routes(r, "/searches", with)
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
// read: a 400 naming "query" with the position in it, as an alert rule's
// (see checkQuery), when the process has a query checker.
func (s *server) checkSavedQuery(ss pipeline.SavedSearch) error {
	return s.checkQuery(ss.Query)
}
