package pipeline

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Where alerting keeps its entries in etcd: rules (one key each, the JSON
// /api/alerts takes), each rule's AlertStatus as the evaluator last wrote
// it, notifications not yet delivered, and the evaluators' election.
const (
	AlertsPrefix      = "/logbox/alerts/"
	AlertStatePrefix  = "/logbox/alertstate/"
	AlertOutboxPrefix = "/logbox/alertoutbox/"
	AlertLeaderPrefix = "/logbox/alertleader/"
)

// AlertRule is a query watched on a schedule. It is stored as JSON at
// /logbox/alerts/<name> in etcd and is the object /api/alerts takes and
// answers (GET adds the rule's state, see AlertStatus).
//
// Every Every, the query runs over the last Window. Without a stats pipe
// its value is the count of matching lines; with one, each row of the
// answer is its own alert instance, labelled by the row's by values, and
// its value is the row's Column (default: the first function column).
// With NewPatterns the value of each instance is 1 for every template of
// the query's lines in the window that no line of the Compare range
// before the window fits (one instance per new template, labelled
// "pattern"). The Condition is checked per instance; an instance whose
// condition holds is pending until it has held For, then firing; when it
// stops holding (or its group is gone from the answer) it is resolved.
//
// Like SavedSearch, Validate checks the query's size, not its syntax: the
// API parses it with the index's checker before it stores it, and an entry
// written to etcd directly is refused by the evaluator (its state says why).
type AlertRule struct {
	Name      string         `json:"name"`
	Query     string         `json:"query"`
	Every     string         `json:"every"`
	Window    string         `json:"window"`
	Condition AlertCondition `json:"condition"`
	For       string         `json:"for"`
	// Column names the stats column compared (a stats pipe only).
	Column string `json:"column,omitempty"`
	// NewPatterns fires on templates new since Compare (default 24h).
	NewPatterns bool   `json:"new_patterns,omitempty"`
	Compare     string `json:"compare,omitempty"`
	// Labels are added to every instance's labels (alertname is the
	// rule's name; a by value of the same name wins over a label).
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Description string            `json:"description,omitempty"`
	Notify      []AlertTarget     `json:"notify,omitempty"`
	Disabled    bool              `json:"disabled,omitempty"`
	// Created and Updated are set by the server on writes through the API.
	Created time.Time `json:"created,omitzero"`
	Updated time.Time `json:"updated,omitzero"`
}

// AlertCondition compares an instance's value: Op is one of >, >=, <,
// <=, ==, !=.
type AlertCondition struct {
	Op    string  `json:"op"`
	Value float64 `json:"value"`
}

// AlertTarget is where a rule's notifications go: exactly one of Webhook
// (receives Alertmanager's webhook JSON, version 4), Alertmanager (the
// base URL of an Alertmanager; alerts are POSTed to /api/v2/alerts) and
// Slack (a Slack-compatible incoming webhook).
type AlertTarget struct {
	Webhook      string `json:"webhook,omitempty"`
	Alertmanager string `json:"alertmanager,omitempty"`
	Slack        string `json:"slack,omitempty"`
}

// Kind names the target's kind: "webhook", "alertmanager" or "slack".
func (t AlertTarget) Kind() string {
	switch {
	case t.Webhook != "":
		return "webhook"
	case t.Alertmanager != "":
		return "alertmanager"
	case t.Slack != "":
		return "slack"
	}
	return ""
}

// URL is the target's address.
func (t AlertTarget) URL() string {
	return t.Webhook + t.Alertmanager + t.Slack
}

// Alert states. An instance is ok (not listed), pending or firing; a
// rule's state is its worst instance's. Resolved appears in history.
const (
	AlertOK       = "ok"
	AlertPending  = "pending"
	AlertFiring   = "firing"
	AlertResolved = "resolved"
)

// Caps and defaults of one rule.
const (
	MaxAlertBytes       = 32 << 10
	MaxAlertTargets     = 16
	MaxAlertLabels      = 32
	MaxAlertLabelBytes  = 1 << 10
	MinAlertEvery       = time.Second
	MaxAlertWindow      = 31 * 24 * time.Hour
	DefaultAlertEvery   = time.Minute
	DefaultAlertWindow  = 5 * time.Minute
	DefaultAlertCompare = 24 * time.Hour
)

var (
	// ErrAlertNotFound is returned for a rule that does not exist.
	ErrAlertNotFound = errors.New("alert rule not found")
	// ErrAlertExists is returned when a rule's name is taken.
	ErrAlertExists = errors.New("alert rule already exists")
)

// Normalize fills in defaults: every 1m, window 5m, for 0s, an empty
// condition op as ">" (with value 0: any match), compare 24h for a
// new-patterns rule.
func (r *AlertRule) Normalize() {
	if r.Every == "" {
		r.Every = DefaultAlertEvery.String()
	}
	if r.Window == "" {
		r.Window = DefaultAlertWindow.String()
	}
	if r.For == "" {
		r.For = "0s"
	}
	if r.Condition.Op == "" {
		r.Condition.Op = ">"
	}
	if r.NewPatterns && r.Compare == "" {
		r.Compare = DefaultAlertCompare.String()
	}
}

// Durations returns every, window, for and compare (0 unless
// NewPatterns) as parsed; call Validate first.
func (r *AlertRule) Durations() (every, window, forDur, compare time.Duration) {
	every, _ = parseAlertDuration(r.Every)
	window, _ = parseAlertDuration(r.Window)
	forDur, _ = parseAlertDuration(r.For)
	if r.NewPatterns {
		compare, _ = parseAlertDuration(r.Compare)
	}
	return
}

// parseAlertDuration reads a Go duration, plus "d" for days (as 24h).
func parseAlertDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if n, ok := strings.CutSuffix(s, "d"); ok && n != "" && !strings.ContainsAny(n, "hms") {
		d, err := time.ParseDuration(n + "h")
		if err == nil && (d > math.MaxInt64/24 || d < math.MinInt64/24) {
			// d*24 would wrap around (and turn 107000d negative).
			return 0, fmt.Errorf("time: invalid duration %q", s)
		}
		return d * 24, err
	}
	return time.ParseDuration(s)
}

// Holds reports whether v meets the condition.
func (c AlertCondition) Holds(v float64) bool {
	switch c.Op {
	case ">":
		return v > c.Value
	case ">=":
		return v >= c.Value
	case "<":
		return v < c.Value
	case "<=":
		return v <= c.Value
	case "==":
		return v == c.Value
	case "!=":
		return v != c.Value
	}
	return false
}

// Validate checks the rule's shape. It does not fill in defaults: call
// Normalize first.
func (r *AlertRule) Validate() error {
	if err := CheckName(r.Name); err != nil {
		return err
	}
	if strings.TrimSpace(r.Query) == "" {
		return &FieldError{"query", "must not be empty (* matches every line)"}
	}
	if len(r.Query) > MaxSavedQueryBytes {
		return &FieldError{"query", fmt.Sprintf("%d bytes; at most %d are allowed", len(r.Query), MaxSavedQueryBytes)}
	}
	if !utf8.ValidString(r.Query) {
		return &FieldError{"query", "must be valid UTF-8"}
	}
	durs := []struct {
		field string
		v     string
		min   time.Duration
	}{{"every", r.Every, MinAlertEvery}, {"window", r.Window, time.Second}, {"for", r.For, 0}}
	if r.NewPatterns {
		durs = append(durs, struct {
			field string
			v     string
			min   time.Duration
		}{"compare", r.Compare, time.Second})
	} else if r.Compare != "" {
		return &FieldError{"compare", "applies only to a rule with new_patterns"}
	}
	for _, d := range durs {
		v, err := parseAlertDuration(d.v)
		switch {
		case err != nil:
			return &FieldError{d.field, fmt.Sprintf("%q is not a duration (e.g. 30s, 5m, 1h, 7d)", d.v)}
		case v < d.min:
			return &FieldError{d.field, fmt.Sprintf("%s is below the least allowed, %s", d.v, d.min)}
		case v > MaxAlertWindow:
			return &FieldError{d.field, fmt.Sprintf("%s is above the most allowed, %s", d.v, MaxAlertWindow)}
		}
	}
	switch r.Condition.Op {
	case ">", ">=", "<", "<=", "==", "!=":
	default:
		return &FieldError{"condition.op", fmt.Sprintf("%q is not one of >, >=, <, <=, ==, !=", r.Condition.Op)}
	}
	if r.NewPatterns && r.Column != "" {
		return &FieldError{"column", "a new_patterns rule has no column"}
	}
	if len(r.Column) > MaxSavedColumnBytes {
		return &FieldError{"column", fmt.Sprintf("%d bytes; at most %d are allowed", len(r.Column), MaxSavedColumnBytes)}
	}
	if !utf8.ValidString(r.Column) || strings.ContainsFunc(r.Column, unicode.IsControl) {
		return &FieldError{"column", "must be valid UTF-8 without control characters"}
	}
	for _, m := range []struct {
		field string
		m     map[string]string
	}{{"labels", r.Labels}, {"annotations", r.Annotations}} {
		if len(m.m) > MaxAlertLabels {
			return &FieldError{m.field, fmt.Sprintf("%d entries; at most %d are allowed", len(m.m), MaxAlertLabels)}
		}
		// In order, so that of several bad entries the same one is named
		// every time.
		for _, k := range slices.Sorted(maps.Keys(m.m)) {
			v, f := m.m[k], m.field+"."+k
			switch {
			case !labelNameOK(k):
				return &FieldError{f, "a label name is 1-128 characters of a-z, A-Z, 0-9 and _, not starting with a digit"}
			case m.field == "labels" && k == "alertname":
				return &FieldError{f, "alertname is the rule's name"}
			case len(v) > MaxAlertLabelBytes || !utf8.ValidString(v):
				return &FieldError{f, fmt.Sprintf("must be valid UTF-8 of at most %d bytes", MaxAlertLabelBytes)}
			}
		}
	}
	if len(r.Description) > MaxSavedDescriptionBytes || !utf8.ValidString(r.Description) {
		return &FieldError{"description", fmt.Sprintf("must be valid UTF-8 of at most %d bytes", MaxSavedDescriptionBytes)}
	}
	if len(r.Notify) > MaxAlertTargets {
		return &FieldError{"notify", fmt.Sprintf("%d targets; at most %d are allowed", len(r.Notify), MaxAlertTargets)}
	}
	for i, t := range r.Notify {
		f := fmt.Sprintf("notify[%d]", i)
		n := 0
		for _, v := range []string{t.Webhook, t.Alertmanager, t.Slack} {
			if v != "" {
				n++
			}
		}
		if n != 1 {
			return &FieldError{f, "needs exactly one of webhook, alertmanager, slack"}
		}
		u, err := url.Parse(t.URL())
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return &FieldError{f + "." + t.Kind(), fmt.Sprintf("%q is not an http(s) URL", t.URL())}
		}
		if len(t.URL()) > MaxPathBytes {
			return &FieldError{f + "." + t.Kind(), "URL too long"}
		}
	}
	return nil
}

// labelNameOK follows Prometheus' label names: [a-zA-Z_][a-zA-Z0-9_]*.
func labelNameOK(k string) bool {
	if k == "" || len(k) > 128 {
		return false
	}
	for i, c := range []byte(k) {
		switch {
		case c == '_', c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// AlertInstance is one group of a rule that is pending or firing (an ok
// group is not kept).
type AlertInstance struct {
	// Labels are the instance's labels: alertname, the rule's labels and
	// the group's by values.
	Labels      map[string]string `json:"labels"`
	State       string            `json:"state"`
	Value       float64           `json:"value"`
	ActiveSince time.Time         `json:"active_since"`          // when the condition began to hold
	FiredAt     time.Time         `json:"fired_at,omitzero"`     // when it turned firing
	LastSentAt  time.Time         `json:"last_sent_at,omitzero"` // last notification for it
	// Search is the query (without pipes) that finds the instance's
	// lines: the rule's query and the group's by values as field:"value"
	// terms. The evaluator links notifications to the page with it.
	Search string `json:"search,omitempty"`
}

// AlertEvent is one transition in a rule's history.
type AlertEvent struct {
	Time   time.Time         `json:"time"`
	Labels map[string]string `json:"labels"`
	From   string            `json:"from"`
	To     string            `json:"to"`
	Value  float64           `json:"value"`
}

// AlertStatus is a rule's state as the evaluator last wrote it (etcd,
// /logbox/alertstate/<name>); the API adds it to a rule it answers.
type AlertStatus struct {
	State     string          `json:"state"`
	Value     *float64        `json:"value"` // the largest instance value (or the count); null before the first evaluation
	LastEval  time.Time       `json:"last_eval,omitzero"`
	Duration  float64         `json:"last_eval_seconds"`
	Error     string          `json:"error,omitempty"`
	Instances []AlertInstance `json:"instances"`
	History   []AlertEvent    `json:"history"` // newest last, at most MaxAlertHistory
}

// MaxAlertHistory is how many transitions a rule's state keeps.
const MaxAlertHistory = 200

// LabelKey is a canonical string for a label set (sorted name=value
// pairs), used to key instances.
func LabelKey(labels map[string]string) string {
	ks := make([]string, 0, len(labels))
	for k := range labels {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	var b strings.Builder
	for _, k := range ks {
		fmt.Fprintf(&b, "%q=%q,", k, labels[k])
	}
	return b.String()
}
