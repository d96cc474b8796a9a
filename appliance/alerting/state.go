package alerting

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/logbox/logbox/appliance/pipeline"
)

// Rule states beyond the instance states pipeline names: a rule whose
// entry or query fails is in error (its instances kept as they were), a
// disabled rule is disabled (its instances resolved).
const (
	stateError    = "error"
	stateDisabled = "disabled"
)

// outcome is what one evaluation does to a rule: its next status and the
// instances that turned firing or resolved (these are notified).
type outcome struct {
	status   pipeline.AlertStatus
	fired    []pipeline.AlertInstance
	resolved []pipeline.AlertInstance // State resolved, FiredAt kept
	at       time.Time                // the evaluation's time (a resolve's end)
}

// step is the state machine of a rule's instances, one evaluation at now
// with the groups its query answered (or qerr):
//
//   - a group whose condition holds and that has no instance becomes
//     pending (ActiveSince now), or firing at once when For is 0;
//   - a pending instance that has held For becomes firing (FiredAt now);
//   - a firing instance whose group no longer holds (or is gone from the
//     answer) is resolved: removed, with an event in the history;
//   - a pending instance that no longer holds is dropped (an event to ok);
//   - a query error leaves every instance as it is (nothing is resolved
//     on an error) and sets the rule's state to error.
//
// At most maxInstances groups are tracked (existing instances first,
// then the largest values); the status's Error says how many were left.
// st is not modified.
func step(r *pipeline.AlertRule, st pipeline.AlertStatus, groups []group, qerr error, now time.Time, took time.Duration, maxInstances int) outcome {
	next := pipeline.AlertStatus{
		State:     st.State,
		Value:     st.Value,
		LastEval:  now,
		Duration:  took.Seconds(),
		Instances: slices.Clone(st.Instances),
		History:   slices.Clone(st.History),
	}
	if next.Instances == nil {
		next.Instances = []pipeline.AlertInstance{}
	}
	if next.History == nil {
		next.History = []pipeline.AlertEvent{}
	}
	out := outcome{at: now}
	if qerr != nil {
		next.State = stateError
		next.Error = qerr.Error()
		out.status = next
		return out
	}
	_, _, forDur, _ := r.Durations()

	var top *float64
	type hit struct {
		labels map[string]string
		key    string
		value  float64
		search string
		old    int // index in st.Instances, -1 for a new group
	}
	old := make(map[string]int, len(st.Instances))
	for i, in := range st.Instances {
		old[pipeline.LabelKey(in.Labels)] = i
	}
	var hits []hit
	seen := map[string]bool{}
	for _, g := range groups {
		if !g.ok {
			continue
		}
		if top == nil || g.value > *top {
			v := g.value
			top = &v
		}
		if !r.Condition.Holds(g.value) {
			continue
		}
		labels := instanceLabels(r, g.by)
		key := pipeline.LabelKey(labels)
		if seen[key] {
			continue // two groups that read as one label set: the first counts
		}
		seen[key] = true
		// A template is not a term the page can search for: a
		// new-pattern instance links to the rule's query.
		search := instanceSearch(r.Query, nil)
		if !r.NewPatterns {
			search = instanceSearch(r.Query, g.by)
		}
		i, ok := old[key]
		if !ok {
			i = -1
		}
		hits = append(hits, hit{labels, key, g.value, search, i})
	}
	next.Value = top
	next.Error = ""
	if maxInstances > 0 && len(hits) > maxInstances {
		slices.SortStableFunc(hits, func(a, b hit) int {
			if (a.old >= 0) != (b.old >= 0) {
				if a.old >= 0 {
					return -1
				}
				return 1
			}
			return cmp.Compare(b.value, a.value)
		})
		next.Error = fmt.Sprintf("%d groups meet the condition; the %d kept are tracked, the rest are not", len(hits), maxInstances)
		hits = hits[:maxInstances]
	}

	event := func(labels map[string]string, from, to string, v float64) {
		next.History = append(next.History, pipeline.AlertEvent{Time: now, Labels: labels, From: from, To: to, Value: v})
	}
	var instances []pipeline.AlertInstance
	kept := map[string]bool{}
	for _, h := range hits {
		kept[h.key] = true
		if h.old < 0 {
			in := pipeline.AlertInstance{Labels: h.labels, State: pipeline.AlertPending, Value: h.value, ActiveSince: now, Search: h.search}
			if forDur <= 0 {
				in.State, in.FiredAt = pipeline.AlertFiring, now
				out.fired = append(out.fired, in)
				event(h.labels, pipeline.AlertOK, pipeline.AlertFiring, h.value)
			} else {
				event(h.labels, pipeline.AlertOK, pipeline.AlertPending, h.value)
			}
			instances = append(instances, in)
			continue
		}
		in := st.Instances[h.old]
		in.Labels = maps.Clone(in.Labels)
		in.Value, in.Search = h.value, h.search
		if in.State == pipeline.AlertPending && now.Sub(in.ActiveSince) >= forDur {
			in.State, in.FiredAt = pipeline.AlertFiring, now
			out.fired = append(out.fired, in)
			event(in.Labels, pipeline.AlertPending, pipeline.AlertFiring, h.value)
		}
		instances = append(instances, in)
	}
	values := map[string]float64{}
	for _, g := range groups {
		if g.ok {
			values[pipeline.LabelKey(instanceLabels(r, g.by))] = g.value
		}
	}
	for _, in := range st.Instances {
		key := pipeline.LabelKey(in.Labels)
		if kept[key] {
			continue
		}
		v := in.Value
		if gv, ok := values[key]; ok {
			v = gv
		}
		switch in.State {
		case pipeline.AlertFiring:
			in.State, in.Value = pipeline.AlertResolved, v
			out.resolved = append(out.resolved, in)
			event(in.Labels, pipeline.AlertFiring, pipeline.AlertResolved, v)
		default:
			event(in.Labels, in.State, pipeline.AlertOK, v)
		}
	}
	slices.SortFunc(instances, func(a, b pipeline.AlertInstance) int {
		return cmp.Compare(pipeline.LabelKey(a.Labels), pipeline.LabelKey(b.Labels))
	})
	if instances == nil {
		instances = []pipeline.AlertInstance{}
	}
	next.Instances = instances
	if n := len(next.History) - pipeline.MaxAlertHistory; n > 0 {
		next.History = slices.Delete(next.History, 0, n)
	}
	next.State = worstState(instances)
	out.status = next
	return out
}

// worstState is a rule's state from its instances: firing, else pending,
// else ok.
func worstState(ins []pipeline.AlertInstance) string {
	s := pipeline.AlertOK
	for _, in := range ins {
		switch in.State {
		case pipeline.AlertFiring:
			return pipeline.AlertFiring
		case pipeline.AlertPending:
			s = pipeline.AlertPending
		}
	}
	return s
}

// resolveAll ends every instance of st at now (a rule deleted or
// disabled): firing ones are resolved, pending ones dropped, each with an
// event; the state is to.
func resolveAll(st pipeline.AlertStatus, now time.Time, to string) outcome {
	out := outcome{at: now}
	next := st
	next.Instances = []pipeline.AlertInstance{}
	next.History = slices.Clone(st.History)
	if next.History == nil {
		next.History = []pipeline.AlertEvent{}
	}
	for _, in := range st.Instances {
		from, dest := in.State, pipeline.AlertOK
		if in.State == pipeline.AlertFiring {
			dest = pipeline.AlertResolved
			r := in
			r.State = pipeline.AlertResolved
			out.resolved = append(out.resolved, r)
		}
		next.History = append(next.History, pipeline.AlertEvent{Time: now, Labels: in.Labels, From: from, To: dest, Value: in.Value})
	}
	if n := len(next.History) - pipeline.MaxAlertHistory; n > 0 {
		next.History = slices.Delete(next.History, 0, n)
	}
	next.State = to
	next.Error = ""
	out.status = next
	return out
}

// instanceLabels are a group's labels: alertname (the rule's name), the
// rule's labels, then the group's by values (a by value wins over a rule
// label of the same name; alertname always stays the rule's name).
func instanceLabels(r *pipeline.AlertRule, by []byValue) map[string]string {
	l := make(map[string]string, 1+len(r.Labels)+len(by))
	maps.Copy(l, r.Labels)
	for _, b := range by {
		l[labelName(b.name)] = b.value
	}
	l["alertname"] = r.Name
	return l
}
