package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/logbox/logbox/appliance/pipeline"
)

// Alerts is the alert-rule store (settings.AlertStore): the rules, and the
// state the evaluator keeps for each. Its Delete removes the rule and its
// state.
type Alerts interface {
	EntryStore[pipeline.AlertRule]
	List(ctx context.Context) (pipeline.AlertRuleList, error)
	// Status is a rule's state, false if it was never evaluated;
	// Statuses is every rule's, by name.
	Status(ctx context.Context, name string) (pipeline.AlertStatus, bool, error)
	Statuses(ctx context.Context) (map[string]pipeline.AlertStatus, error)
}

// alertUnknown is the state of a rule that was never evaluated.
const alertUnknown = "unknown"

// alertsRoutes answers a rule with its state (a created rule: never
// evaluated, as Create removed any state left under its name).
func alertsRoutes(r chi.Router, s *server) {
	with := withStore(s.d.Alerts, "this process keeps no alert rules")
	h := &entryHandlers[pipeline.AlertRule, Alerts]{
		s:     s,
		base:  "/api/alerts",
		name:  func(rule pipeline.AlertRule) string { return rule.Name },
		check: s.checkAlertRule,
		view: func(ctx context.Context, st Alerts, rule pipeline.AlertRule) (any, error) {
			return viewOf(ctx, st, rule)
		},
		fresh: func(rule pipeline.AlertRule) any { return alertView(rule, pipeline.AlertStatus{}, false) },
	}
	r.Get("/alerts", with(s.listAlerts))
	h.routes(r, "/alerts", with)
	r.Get("/alerts/{name}/history", with(s.alertHistory))
}

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

// checkAlertRule refuses, with a 400 naming the field, a rule whose query
// the index cannot read (with where in it), when the process has a query
// checker; and, when it can tell pipes (Deps.HasPipe), a new_patterns
// rule whose query has a pipe and a column on a query without one.
// With Deps.StatsColumns, a column must be one of the stats pipe's
// function columns.
func (s *server) checkAlertRule(rule pipeline.AlertRule) error {
	if err := s.checkQuery(rule.Query); err != nil {
		return err
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
	if rule.Column != "" && s.d.StatsColumns != nil {
		cols := s.d.StatsColumns(rule.Query)
		if !slices.Contains(cols, rule.Column) {
			return &pipeline.FieldError{Field: "column", Msg: fmt.Sprintf("%q is not a function column of the query's stats pipe; it has %s", rule.Column, strings.Join(cols, ", "))}
		}
	}
	return nil
}
