package alerting

import (
	"context"
	"encoding/json"
	"errors"
	"hash/fnv"
	"slices"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/logbox/logbox/appliance/pipeline"
)

// runner runs one rule within a term. Its fields are its goroutine's
// while it runs, and the manager's (leader.run) once it stopped.
type runner struct {
	l    *leader
	name string
	raw  []byte              // the rule's etcd entry
	rule *pipeline.AlertRule // nil when the entry is invalid (bad says why)
	bad  error

	// lastValid is the rule as last evaluated (survives an invalid edit:
	// its targets receive the resolved notifications); lastValidRaw its
	// entry, storedRaw what lastRulePrefix holds for it in etcd.
	lastValid    *pipeline.AlertRule
	lastValidRaw []byte
	storedRaw    []byte

	// status is the rule's state as etcd holds it, but for the values
	// and times of the evaluations since it was last written (see
	// significant): it changes otherwise only once a write of it is
	// known to be applied.
	status pipeline.AlertStatus
	// pending is a write whose outcome is in doubt; it is written again
	// before anything else.
	pending *change
	// written is when status was last written (its LastEval then).
	written time.Time

	cancel context.CancelFunc
	done   chan struct{}
}

// ruleChange is a change to one rule: with it applied, the runner's
// status becomes status (or the rule's state is gone, deleted).
type ruleChange struct {
	status  pipeline.AlertStatus
	deleted bool
	stored  []byte // lastRulePrefix's entry once applied
}

func (r *runner) start(ctx context.Context) {
	ctx, r.cancel = context.WithCancel(ctx)
	r.done = make(chan struct{})
	go func() {
		defer close(r.done)
		r.run(ctx)
	}()
}

// stop ends the runner and waits for it. A write in flight finishes (it
// is not cancelled, see leader.writeCtx); one left in doubt is in pending.
func (r *runner) stop() {
	r.cancel()
	<-r.done
}

func (r *runner) run(ctx context.Context) {
	e := r.l.e
	log := e.log.With("rule", r.name)
	switch {
	case r.rule == nil:
		if r.status.State != stateError || r.status.Error != r.bad.Error() {
			log.Warn("alert rule entry refused; the rule is not evaluated until its entry is fixed (its instances are kept)", "err", r.bad)
			st := cloneStatus(r.status)
			st.State, st.Error = stateError, r.bad.Error()
			r.queue(r.changeFor(outcome{status: st}, false, nil))
		}
		r.settleAll(ctx)
		e.stats.setRule(r.name, r.status)
		<-ctx.Done()
		return
	case r.rule.Disabled:
		if r.status.State != stateDisabled || len(r.status.Instances) > 0 {
			r.queue(r.changeFor(resolveAll(r.status, e.cfg.Now(), stateDisabled), false, nil))
		}
		r.settleAll(ctx)
		e.stats.setRule(r.name, r.status)
		<-ctx.Done()
		return
	}
	e.stats.setRule(r.name, r.status)
	every, _, _, _ := r.rule.Durations()
	tickAfter := schedule(r.name, every)
	// A new rule is evaluated at once; one with a state goes on with its
	// schedule, and a tick missed while no one led (or the rule was
	// being edited) is evaluated once, now.
	next := e.cfg.Now()
	if !r.status.LastEval.IsZero() {
		next = tickAfter(r.status.LastEval)
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		timer.Reset(max(0, next.Sub(e.cfg.Now())))
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		r.evaluate(ctx)
		next = tickAfter(e.cfg.Now())
	}
}

// schedule returns a rule's first tick after t: ticks are every apart,
// at an offset from the epoch (a hash of the name) that spreads rules
// over the interval, as Prometheus spreads its groups.
func schedule(name string, every time.Duration) func(t time.Time) time.Time {
	h := fnv.New64a()
	h.Write([]byte(name))
	offset := int64(h.Sum64() % uint64(every))
	return func(t time.Time) time.Time {
		n := t.UnixNano() - offset
		k := n / int64(every)
		if n < 0 && n%int64(every) != 0 {
			k-- // floor, before 1970
		}
		return time.Unix(0, (k+1)*int64(every)+offset)
	}
}

// evaluate runs the rule once and writes its state, with the
// notifications its transitions make.
func (r *runner) evaluate(ctx context.Context) {
	e := r.l.e
	if !r.settle(ctx) {
		if ctx.Err() == nil {
			e.stats.evaluated(0, true)
		}
		return
	}
	now := e.cfg.Now()
	qctx, cancel := context.WithTimeout(ctx, e.cfg.EvalTimeout)
	start := time.Now()
	groups, qerr := e.query(qctx, r.rule, now)
	took := time.Since(start)
	cancel()
	if ctx.Err() != nil {
		return // stopped (rule changed, term over): nothing is written
	}
	out := step(r.rule, r.status, groups, qerr, now, took, e.cfg.MaxInstances)
	for i := range out.status.Instances {
		in := &out.status.Instances[i]
		if in.State == pipeline.AlertFiring && in.FiredAt.Equal(now) {
			in.LastSentAt = now
		}
	}
	resend := r.resends(&out, now)
	if qerr != nil && (r.status.State != stateError || r.status.Error != qerr.Error()) {
		e.log.Warn("alert rule evaluation failed; its alerts stay as they were until it works again", "rule", r.name, "err", qerr)
	} else if qerr == nil && r.status.State == stateError {
		e.log.Info("alert rule evaluates again", "rule", r.name)
	}
	if len(out.fired) == 0 && len(out.resolved) == 0 && string(r.lastValidRaw) == string(r.storedRaw) &&
		now.Sub(r.written) < e.cfg.StateRefresh && !significant(r.status, out.status) {
		// Only the value and the times moved: etcd's copy is refreshed
		// every StateRefresh, not every evaluation (each write is kept in
		// etcd's history until it is compacted).
		r.status = out.status
		e.stats.setRule(r.name, r.status)
		r.l.out.add(resend...)
		e.stats.evaluated(took, qerr != nil)
		return
	}
	r.queue(r.changeFor(out, false, resend))
	ok := r.settle(ctx)
	e.stats.evaluated(took, qerr != nil || !ok)
}

// significant says b differs from a in more than the values and times
// of an evaluation (value, last_eval, last_eval_seconds, an instance's
// value and last_sent_at): in what the state machine goes on from, or
// what the page shows as a change.
func significant(a, b pipeline.AlertStatus) bool {
	skeleton := func(st pipeline.AlertStatus) string {
		st.Value, st.LastEval, st.Duration = nil, time.Time{}, 0
		st.Instances = slices.Clone(st.Instances)
		for i := range st.Instances {
			st.Instances[i].Value, st.Instances[i].LastSentAt = 0, time.Time{}
		}
		b, _ := json.Marshal(st)
		return string(b)
	}
	return skeleton(a) != skeleton(b)
}

// resends are the re-sends of firing alerts to the rule's Alertmanagers
// that are due (every max(every, ResendMin)); it marks them sent in out.
func (r *runner) resends(out *outcome, now time.Time) []*item {
	var ams []pipeline.AlertTarget
	for _, t := range r.rule.Notify {
		if t.Kind() == "alertmanager" {
			ams = append(ams, t)
		}
	}
	if len(ams) == 0 {
		return nil
	}
	every, _, _, _ := r.rule.Durations()
	interval := max(every, r.l.e.cfg.ResendMin)
	var alerts []alert
	for i := range out.status.Instances {
		in := &out.status.Instances[i]
		// Due at the evaluation nearest its time: half an interval of
		// slack, so an evaluation a little early does not skip a round.
		if in.State != pipeline.AlertFiring || in.LastSentAt.Equal(now) || now.Sub(in.LastSentAt) < interval-every/2 {
			continue
		}
		in.LastSentAt = now
		alerts = append(alerts, alertOf(r.rule, *in, now, r.l.e.cfg.ExternalURL))
	}
	if len(alerts) == 0 {
		return nil
	}
	var items []*item
	for _, t := range ams {
		items = append(items, &item{seq: r.l.seq.Add(1), n: &notification{
			Rule: r.name, Target: t, Status: pipeline.AlertFiring, Created: now, Resend: interval, Alerts: alerts,
		}})
	}
	return items
}

// maxOutboxBytes bounds the outbox entries of one write (etcd takes
// requests of up to 1.5 MiB by default); alerts past each entry's share
// are left out and counted in it (truncatedAlerts).
const maxOutboxBytes = 1 << 20

// changeFor is the write of out: the rule's state (deleted: removed, with
// its lastRulePrefix entry), one outbox entry per target for the
// instances that turned firing and one for those resolved, and the
// re-sends to queue once it is applied.
func (r *runner) changeFor(out outcome, deleted bool, resend []*item) *change {
	e := r.l.e
	c := &change{items: resend}
	rc := &ruleChange{status: out.status, deleted: deleted, stored: r.storedRaw}
	stateKey := pipeline.AlertStatePrefix + r.name
	if deleted {
		c.ops = append(c.ops, clientv3.OpDelete(stateKey), clientv3.OpDelete(lastRulePrefix+r.name))
		rc.stored = nil
	} else {
		b, err := json.Marshal(out.status)
		if err != nil {
			panic("alerting: an AlertStatus that does not marshal: " + err.Error())
		}
		c.ops = append(c.ops, clientv3.OpPut(stateKey, string(b)))
		if r.lastValidRaw != nil && string(r.lastValidRaw) != string(r.storedRaw) {
			c.ops = append(c.ops, clientv3.OpPut(lastRulePrefix+r.name, string(r.lastValidRaw)))
			rc.stored = r.lastValidRaw
		}
	}
	rule := r.lastValid
	if rule != nil && (len(out.fired) > 0 || len(out.resolved) > 0) {
		type batch struct {
			status string
			ins    []pipeline.AlertInstance
		}
		var batches []batch
		if len(out.fired) > 0 {
			batches = append(batches, batch{pipeline.AlertFiring, out.fired})
		}
		if len(out.resolved) > 0 {
			batches = append(batches, batch{pipeline.AlertResolved, out.resolved})
		}
		every, _, _, _ := rule.Durations()
		share := maxOutboxBytes / max(1, len(batches)*len(rule.Notify))
		for _, t := range rule.Notify {
			for _, b := range batches {
				n := &notification{Rule: r.name, Target: t, Status: b.status, Created: out.at, Resend: max(every, e.cfg.ResendMin)}
				size := 256
				for _, in := range b.ins {
					a := alertOf(rule, in, out.at, e.cfg.ExternalURL)
					ab, _ := json.Marshal(a)
					if size+len(ab) > share && len(n.Alerts) > 0 {
						n.Truncated++
						continue
					}
					size += len(ab)
					n.Alerts = append(n.Alerts, a)
				}
				seq := r.l.seq.Add(1)
				key := outboxKey(seq)
				nb, err := json.Marshal(n)
				if err != nil {
					panic("alerting: a notification that does not marshal: " + err.Error())
				}
				if c.marker == "" {
					c.marker = key
				}
				c.ops = append(c.ops, clientv3.OpPut(key, string(nb)))
				c.items = append(c.items, &item{key: key, seq: seq, n: n})
			}
		}
	}
	c.rule = rc
	return c
}

func (r *runner) queue(c *change) { r.pending = c }

// settle writes the pending change once: true when there is none left
// (applied, or refused for good and given up).
func (r *runner) settle(ctx context.Context) bool {
	c := r.pending
	if c == nil {
		return true
	}
	e := r.l.e
	err := r.l.commit(ctx, c)
	switch {
	case err == nil:
		r.pending = nil
		if c.rule.deleted {
			r.status = pipeline.AlertStatus{}
		} else {
			r.status = c.rule.status
			r.written = r.status.LastEval
			e.stats.setRule(r.name, r.status)
		}
		r.storedRaw = c.rule.stored
		r.l.out.add(c.items...)
		return true
	case errors.Is(err, errNotLeader):
		return false
	case isDefinite(err):
		r.pending = nil
		e.log.Error("alert rule state refused by etcd; this evaluation is lost", "rule", r.name, "err", err)
		return true
	}
	if ctx.Err() == nil {
		e.log.Warn("alert rule state not written; written again before the rule's next evaluation", "rule", r.name, "err", err)
	}
	return false
}

// settleAll retries settle until it succeeds or ctx ends (true: settled).
func (r *runner) settleAll(ctx context.Context) bool {
	wait := r.l.e.cfg.RetryMin
	for {
		if r.settle(ctx) {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(wait):
		}
		wait = min(2*wait, 30*time.Second)
	}
}

func cloneStatus(st pipeline.AlertStatus) pipeline.AlertStatus {
	st.Instances = slices.Clone(st.Instances)
	st.History = slices.Clone(st.History)
	if st.Instances == nil {
		st.Instances = []pipeline.AlertInstance{}
	}
	if st.History == nil {
		st.History = []pipeline.AlertEvent{}
	}
	return st
}
