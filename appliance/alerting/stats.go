package alerting

import (
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/logbox/logbox/appliance/pipeline"
)

// Stats is a snapshot of the evaluator for /metrics and /api/status.
// Counters count since the process started; the rest describes now
// (zero on a process that is not the leader).
type Stats struct {
	// Leader says this process evaluates the rules (it won the election).
	Leader bool `json:"leader"`
	// Rules is how many rules the leader runs (invalid ones included).
	Rules int `json:"rules"`
	// Evaluations counts rule evaluations; EvaluationFailures those whose
	// query failed or whose result could not be written to etcd.
	Evaluations        uint64    `json:"evaluations"`
	EvaluationFailures uint64    `json:"evaluation_failures"`
	EvaluationSeconds  Histogram `json:"evaluation_seconds"`
	// Notifications counts deliveries per target kind (webhook,
	// alertmanager, slack; "unknown" for an unreadable outbox entry).
	Notifications map[string]NotificationCounts `json:"notifications"`
	// Outbox is how many notifications wait in etcd to be delivered.
	Outbox int `json:"outbox"`
	// Pending and Firing count alert instances by state.
	Pending int `json:"pending"`
	Firing  int `json:"firing"`
	// RulesInTrouble lists rules in state error: an entry refused, or a
	// query that failed at its last evaluation.
	RulesInTrouble []RuleTrouble `json:"rules_in_trouble"`
	// TargetsInTrouble lists targets whose last delivery failed.
	TargetsInTrouble []TargetTrouble `json:"targets_in_trouble"`
}

// NotificationCounts are one target kind's deliveries: Sent (2xx
// answers), Failed (attempts that failed), Retried (attempts after a
// failure), Dropped (given up: refused for good, or older than the
// outbox keeps them).
type NotificationCounts struct {
	Sent    uint64 `json:"sent"`
	Failed  uint64 `json:"failed"`
	Retried uint64 `json:"retried"`
	Dropped uint64 `json:"dropped"`
}

// Histogram is a Prometheus histogram: Counts[i] is how many
// observations were <= Bounds[i] (cumulative); Count and Sum cover all.
type Histogram struct {
	Bounds []float64 `json:"bounds"`
	Counts []uint64  `json:"counts"`
	Count  uint64    `json:"count"`
	Sum    float64   `json:"sum"`
}

// RuleTrouble is a rule in state error, and why.
type RuleTrouble struct {
	Rule  string `json:"rule"`
	Error string `json:"error"`
}

// TargetTrouble is a target whose deliveries fail. URL is its scheme and
// host only (a webhook's path or query may hold a token).
type TargetTrouble struct {
	Kind                string    `json:"kind"`
	URL                 string    `json:"url"`
	ConsecutiveFailures int       `json:"consecutive_failures"`
	LastError           string    `json:"last_error"`
	LastFailure         time.Time `json:"last_failure"`
	LastSuccess         time.Time `json:"last_success,omitzero"`
	Queued              int       `json:"queued"`
}

var evalBounds = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

// counters holds what Stats reports. One mutex: everything here changes
// at most a few times per evaluation or delivery.
type counters struct {
	mu          sync.Mutex
	leader      bool
	evals       uint64
	evalFails   uint64
	evalCounts  []uint64 // per evalBounds, not cumulative
	evalSum     float64
	notes       map[string]*NotificationCounts
	outbox      int
	rules       map[string]ruleSummary
	targets     map[string]*targetHealth
	queuedByKey func() map[string]int
}

type ruleSummary struct {
	pending, firing int
	err             string
}

type targetHealth struct {
	kind, url   string
	fails       int
	lastErr     string
	lastFailure time.Time
	lastSuccess time.Time
}

func newCounters() *counters {
	return &counters{
		evalCounts: make([]uint64, len(evalBounds)),
		notes:      map[string]*NotificationCounts{},
		rules:      map[string]ruleSummary{},
		targets:    map[string]*targetHealth{},
	}
}

func (c *counters) evaluated(took time.Duration, failed bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.evals++
	if failed {
		c.evalFails++
	}
	s := took.Seconds()
	c.evalSum += s
	for i, b := range evalBounds {
		if s <= b {
			c.evalCounts[i]++
			break
		}
	}
}

func (c *counters) note(kind string, f func(*NotificationCounts)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.notes[kind]
	if n == nil {
		n = &NotificationCounts{}
		c.notes[kind] = n
	}
	f(n)
}

func (c *counters) setRule(name string, st pipeline.AlertStatus) {
	s := ruleSummary{}
	for _, in := range st.Instances {
		switch in.State {
		case pipeline.AlertPending:
			s.pending++
		case pipeline.AlertFiring:
			s.firing++
		}
	}
	if st.State == stateError {
		s.err = st.Error
	}
	c.mu.Lock()
	c.rules[name] = s
	c.mu.Unlock()
}

func (c *counters) dropRule(name string) {
	c.mu.Lock()
	delete(c.rules, name)
	c.mu.Unlock()
}

func (c *counters) addOutbox(n int) {
	c.mu.Lock()
	c.outbox += n
	c.mu.Unlock()
}

// delivery records a target's attempt: err nil is a success.
func (c *counters) delivery(t pipeline.AlertTarget, err error, now time.Time) {
	key := targetKey(t)
	c.mu.Lock()
	defer c.mu.Unlock()
	h := c.targets[key]
	if h == nil {
		h = &targetHealth{kind: t.Kind(), url: redact(t.URL())}
		c.targets[key] = h
	}
	if err == nil {
		h.fails, h.lastSuccess = 0, now
		return
	}
	h.fails++
	h.lastErr, h.lastFailure = err.Error(), now
}

// setLeader marks the start or end of a term; at its end what the term
// described (rules, outbox, targets) is cleared.
func (c *counters) setLeader(on bool, queued func() map[string]int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.leader = on
	c.queuedByKey = queued
	if !on {
		c.rules = map[string]ruleSummary{}
		c.targets = map[string]*targetHealth{}
		c.outbox = 0
	}
}

func (c *counters) snapshot() Stats {
	c.mu.Lock()
	queued := c.queuedByKey
	c.mu.Unlock()
	var q map[string]int
	if queued != nil {
		q = queued() // takes the outbox's lock: not under c.mu
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	s := Stats{
		Leader: c.leader, Rules: len(c.rules), Evaluations: c.evals, EvaluationFailures: c.evalFails,
		Notifications: map[string]NotificationCounts{}, Outbox: c.outbox,
		RulesInTrouble: []RuleTrouble{}, TargetsInTrouble: []TargetTrouble{},
	}
	s.EvaluationSeconds = Histogram{Bounds: slices.Clone(evalBounds), Counts: make([]uint64, len(evalBounds)), Count: c.evals, Sum: c.evalSum}
	var cum uint64
	for i, n := range c.evalCounts {
		cum += n
		s.EvaluationSeconds.Counts[i] = cum
	}
	for _, k := range []string{"webhook", "alertmanager", "slack"} {
		s.Notifications[k] = NotificationCounts{}
	}
	for k, n := range c.notes {
		s.Notifications[k] = *n
	}
	for name, r := range c.rules {
		s.Pending += r.pending
		s.Firing += r.firing
		if r.err != "" {
			s.RulesInTrouble = append(s.RulesInTrouble, RuleTrouble{name, r.err})
		}
	}
	slices.SortFunc(s.RulesInTrouble, func(a, b RuleTrouble) int { return strings.Compare(a.Rule, b.Rule) })
	for key, h := range c.targets {
		if h.fails == 0 {
			continue
		}
		s.TargetsInTrouble = append(s.TargetsInTrouble, TargetTrouble{
			Kind: h.kind, URL: h.url, ConsecutiveFailures: h.fails, LastError: h.lastErr,
			LastFailure: h.lastFailure, LastSuccess: h.lastSuccess, Queued: q[key],
		})
	}
	slices.SortFunc(s.TargetsInTrouble, func(a, b TargetTrouble) int {
		return strings.Compare(a.Kind+a.URL, b.Kind+b.URL)
	})
	return s
}

// targetKey identifies a target: deliveries to one key keep their order.
func targetKey(t pipeline.AlertTarget) string { return t.Kind() + " " + t.URL() }
