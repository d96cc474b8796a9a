package pipeline

// AlertRuleList is every alert rule in etcd: the valid ones sorted by
// name, and, by the name in its key, why each invalid entry was refused
// (like SavedSearchList).
type AlertRuleList struct {
	Alerts  []AlertRule       `json:"alerts"`
	Invalid map[string]string `json:"invalid"`
}

// AlertRuleView is a rule as GET /api/alerts and /api/alerts/{name}
// answer it: the rule's fields and, next to them, its AlertStatus's
// (state, value, last_eval, last_eval_seconds, error, instances). A rule
// never evaluated has the state "unknown", a null value and no
// instances.
type AlertRuleView struct {
	AlertRule
	AlertStatus
	// History shadows AlertStatus.History (a field of the outer struct
	// wins in encoding/json) so that it is left out: the history has its
	// own endpoint, /api/alerts/{name}/history.
	History []AlertEvent `json:"history,omitempty"`
}

// AlertRuleViewList is GET /api/alerts's answer.
type AlertRuleViewList struct {
	Alerts  []AlertRuleView   `json:"alerts"`
	Invalid map[string]string `json:"invalid"`
}
