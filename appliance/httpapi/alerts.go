package httpapi

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/logbox/logbox/appliance/pipeline"
)

// Alerts is the alert-rule store (settings.AlertStore): the rules, and the
// state the evaluator keeps for each.
type Alerts interface {
	List(ctx context.Context) (pipeline.AlertRuleList, error)
	Get(ctx context.Context, name string) (pipeline.AlertRule, error)
	// Create and Put return what they stored (server times set); Put
	// also whether it created the entry.
	Create(ctx context.Context, r pipeline.AlertRule) (pipeline.AlertRule, error)
	Put(ctx context.Context, r pipeline.AlertRule) (pipeline.AlertRule, bool, error)
	// Delete removes the rule and its state.
	Delete(ctx context.Context, name string) error
	Decode(b []byte) (pipeline.AlertRule, error)
	// Status is a rule's state, false if it was never evaluated;
	// Statuses is every rule's, by name.
	Status(ctx context.Context, name string) (pipeline.AlertStatus, bool, error)
	Statuses(ctx context.Context) (map[string]pipeline.AlertStatus, error)
}

// alertUnknown is the state of a rule that was never evaluated.
const alertUnknown = "unknown"

func alertsRoutes(r chi.Router, s *server) {
	// Each handler gets the store; a process with none answers 501.
	with := func(h func(st Alerts, w http.ResponseWriter, r *http.Request)) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if s.d.Alerts == nil {
				writeError(w, http.StatusNotImplemented, "this process keeps no alert rules")
				return
			}
			h(s.d.Alerts, w, r)
		}
	}
	r.Get("/alerts", with(s.listAlerts))
	r.Post("/alerts", with(s.createAlert))
	r.Get("/alerts/{name}", with(s.getAlert))
	r.Put("/alerts/{name}", with(s.putAlert))
	r.Delete("/alerts/{name}", with(s.deleteAlert))
	r.Get("/alerts/{name}/history", with(s.alertHistory))
}

func alertLocation(name string) string { return "/api/alerts/" + url.PathEscape(name) }

// alertView puts a rule and its state (found false: never evaluated)
// side by side, as GET answers a rule.
func alertView(r pipeline.AlertRule, st pipeline.AlertStatus, found bool) pipeline.AlertRuleView {
	if !found {
		st = pipeline.AlertStatus{State: alertUnknown}
	}
	if st.Instances == nil {
		st.Instances = []pipeline.AlertInstance{}
	}
	st.History = nil // served by /history
	return pipeline.AlertRuleView{AlertRule: r, AlertStatus: st}
}

// viewOf reads the state of the rule r and answers both.
func viewOf(ctx context.Context, st Alerts, r pipeline.AlertRule) (pipeline.AlertRuleView, error) {
	status, found, err := st.Status(ctx, r.Name)
	if err != nil {
		return pipeline.AlertRuleView{}, err
	}
	return alertView(r, status, found), nil
}

// listAlerts answers {"alerts":[rule and state…],"invalid":{name:why}}.
func (s *server) listAlerts(st Alerts, w http.ResponseWriter, r *http.Request) {
	list, err := st.List(r.Context())
	var states map[string]pipeline.AlertStatus
	if err == nil {
		states, err = st.Statuses(r.Context())
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := pipeline.AlertRuleViewList{Alerts: make([]pipeline.AlertRuleView, 0, len(list.Alerts)), Invalid: list.Invalid}
	for _, rule := range list.Alerts {
		status, found := states[rule.Name]
		out.Alerts = append(out.Alerts, alertView(rule, status, found))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *server) getAlert(st Alerts, w http.ResponseWriter, r *http.Request) {
	rule, err := st.Get(r.Context(), chi.URLParam(r, "name"))
	var v pipeline.AlertRuleView
	if err == nil {
		v, err = viewOf(r.Context(), st, rule)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// alertHistory answers {"history":[event…]}, newest first: the rule's
// transitions as its state keeps them (none before its first
// evaluation). A rule whose entry is invalid has its history served too
// (it may have run before it was broken); a name without a rule is 404.
func (s *server) alertHistory(st Alerts, w http.ResponseWriter, r *http.Request) {
	name := chi.URLParam(r, "name")
	_, err := st.Get(r.Context(), name)
	var ie *pipeline.InvalidEntryError
	if errors.As(err, &ie) {
		err = nil
	}
	var status pipeline.AlertStatus
	if err == nil {
		status, _, err = st.Status(r.Context(), name)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	h := slices.Clone(status.History)
	slices.Reverse(h)
	if h == nil {
		h = []pipeline.AlertEvent{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"history": h})
}

func (s *server) createAlert(st Alerts, w http.ResponseWriter, r *http.Request) {
	b, err := readBody(r)
	var rule pipeline.AlertRule
	if err == nil {
		rule, err = st.Decode(b)
	}
	if err == nil {
		err = s.checkAlertRule(rule)
	}
	if err == nil {
		rule, err = st.Create(r.Context(), rule)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Location", alertLocation(rule.Name))
	// Create removed any state left under the name: never evaluated.
	writeJSON(w, http.StatusCreated, alertView(rule, pipeline.AlertStatus{}, false))
}

// putAlert creates or replaces the rule named in the URL (201 or 200),
// answering it with its state. The body may leave the name out; a
// different name is a 400.
func (s *server) putAlert(st Alerts, w http.ResponseWriter, r *http.Request) {
	name := chi.URLParam(r, "name")
	b, err := readBody(r)
	if err == nil {
		b, err = bodyWithName(b, name, nil)
	}
	var rule pipeline.AlertRule
	if err == nil {
		rule, err = st.Decode(b)
	}
	if err == nil {
		err = s.checkAlertRule(rule)
	}
	var created bool
	if err == nil {
		rule, created, err = st.Put(r.Context(), rule)
	}
	var v pipeline.AlertRuleView
	if err == nil {
		v, err = viewOf(r.Context(), st, rule)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	code := http.StatusOK
	if created {
		code = http.StatusCreated
		w.Header().Set("Location", alertLocation(rule.Name))
	}
	writeJSON(w, code, v)
}

func (s *server) deleteAlert(st Alerts, w http.ResponseWriter, r *http.Request) {
	if err := st.Delete(r.Context(), chi.URLParam(r, "name")); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// checkAlertRule refuses, with a 400 naming the field, a rule whose query
// the index cannot read (with where in it), when the process has a query
// checker; and, when it can tell pipes (Deps.HasPipe), a new_patterns
// rule whose query has a pipe and a column on a query without one.
// Whether the column is one of the stats pipe's function columns is not
// checked here (the index exposes no column list): the evaluator reports
// a column the answer lacks in the rule's state.
func (s *server) checkAlertRule(rule pipeline.AlertRule) error {
	if s.d.CheckQuery != nil {
		if err := s.d.CheckQuery(rule.Query); err != nil {
			var qe *pipeline.QueryError
			if errors.As(err, &qe) {
				return &queryFieldError{
					fe: &pipeline.FieldError{Field: "query", Msg: strings.TrimPrefix(qe.Error(), "query: ")},
					qe: qe,
				}
			}
			return err
		}
	}
	if s.d.HasPipe == nil {
		return nil
	}
	pipe := s.d.HasPipe(rule.Query)
	switch {
	case rule.NewPatterns && pipe:
		return &pipeline.FieldError{Field: "query", Msg: "a new_patterns rule's query is the lines to find templates in and has no pipe (| …)"}
	case rule.Column != "" && !pipe:
		return &pipeline.FieldError{Field: "column", Msg: "names a column of the query's stats pipe, and the query has none (without one the value is the count of matching lines)"}
	}
	return nil
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
