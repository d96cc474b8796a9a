// Package alerting evaluates alert rules and delivers their
// notifications.
//
//	evaluator.go  Config, Run: the election and one leadership term (load, watch rules)
//	rule.go       one rule: its schedule, an evaluation, the change it writes
//	state.go      the state machine of a rule's instances
//	query.go      a rule's query: its pipes, its answer's groups, links to the page
//	notify.go     notifications and their payloads (webhook, Alertmanager, Slack)
//	outbox.go     delivery: per target in order, retried with backoff, expired
//	stats.go      counters for /metrics and /api/status
//
// Rules are read from etcd (pipeline.AlertsPrefix, watched); each rule's
// state is written to pipeline.AlertStatePrefix+<name> as
// pipeline.AlertStatus JSON, where the API reads it.
//
// # One evaluator in a fleet
//
// Every process runs an Evaluator; they campaign in an etcd election
// (pipeline.AlertLeaderPrefix, a session lease of Config.LeaseTTL) and
// only the winner evaluates and sends. Every write the leader makes is one
// etcd transaction guarded by its leadership (its election key still has
// the creation revision it won with), so a deposed leader's writes are
// refused, even one that does not know yet that its lease expired. A
// leader that has heard no keep-alive answer from etcd for three quarters
// of the lease steps down (stops evaluating and sending) before its lease
// can expire and another process lead. A new leader loads every rule's
// state and the outbox from etcd and continues from them.
//
// # Notifications: the outbox
//
// A transition to firing or to resolved writes, in the same transaction
// as the rule's new state, one outbox entry per target
// (pipeline.AlertOutboxPrefix+<20-digit sequence number>). Nothing is sent
// before that transaction commits, and an entry is deleted (again
// leader-guarded) only after its target answered 2xx. So neither a
// restart nor a failover drops a notification, and none is made twice: a
// state that was written carries its entries, one that was not is
// evaluated again by whoever leads next.
//
// Delivery is at least once, not exactly once: a notification that was
// delivered but whose entry was not yet deleted when the process died or
// lost its leadership is delivered again by the next leader (receivers
// that deduplicate, such as Alertmanager by label set, absorb it). Within
// one target, notifications are delivered in the order they were made.
// A failed delivery is retried with exponential backoff (Config.RetryMin
// doubling to RetryMax, with jitter); a target that answers 4xx (other
// than 408 and 429) refused it for good and it is dropped; an entry older
// than Config.MaxAge is dropped. Both are counted (Stats).
package alerting

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/logbox/logbox/appliance/pipeline"
)

// lastRulePrefix keeps, per rule, the entry of the rule as last evaluated
// (written when it changes, in the same transaction as the state): what a
// rule deleted while no evaluator ran needs to send its resolved
// notifications (targets, annotations).
const lastRulePrefix = "/logbox/alertrule-evaluated/"

// Querier answers a query with a stats pipe (the index, or the fleet's
// merge of every indexer's answers).
type Querier interface {
	StatsQuery(ctx context.Context, req pipeline.StatsRequest) (pipeline.StatsResult, error)
}

// PatternsFunc returns the templates of query's lines in [from, to) that
// no line of [cmpFrom, cmpTo) fits.
type PatternsFunc func(ctx context.Context, query string, from, to, cmpFrom, cmpTo time.Time) ([]string, error)

// Config is what an Evaluator needs. Etcd and Querier are required;
// zero values take the defaults named.
type Config struct {
	Etcd *clientv3.Client
	// Decode parses and validates a rule's etcd entry (the alert store's
	// decoder; default: JSON, Normalize, Validate); an entry it refuses
	// puts the rule in state error.
	Decode func([]byte) (pipeline.AlertRule, error)
	// Querier answers the rules' queries.
	Querier Querier
	// NewPatterns answers new-patterns rules; nil puts them in state
	// error ("patterns not available").
	NewPatterns PatternsFunc
	// ExternalURL is the page's address as receivers reach it (links in
	// notifications, the webhook's externalURL), e.g.
	// https://logs.example.com; empty gives links without a host.
	ExternalURL string
	// ID names this process in the election (default: host name/pid).
	ID     string
	Logger *slog.Logger
	// Now is the clock for evaluation times and schedules (default
	// time.Now). Schedules sleep in real time, so it must run at the
	// speed of real time.
	Now func() time.Time
	// HTTPClient sends notifications (default: a client of its own).
	HTTPClient *http.Client
	// SendTimeout bounds one delivery (default 10s).
	SendTimeout time.Duration
	// EvalTimeout bounds one evaluation's query (default 1m).
	EvalTimeout time.Duration
	// LeaseTTL is the election session's lease (default 5s, whole
	// seconds, at least 2s: etcd's least): how long a leader that died
	// silently holds the lead.
	LeaseTTL time.Duration
	// RetryMin and RetryMax bound the wait between delivery attempts to
	// a failing target (default 1s doubling to 5m), and between attempts
	// to join the election after an error (RetryMin doubling to 30s).
	RetryMin, RetryMax time.Duration
	// MaxAge drops a notification not delivered this long after it was
	// made (default 24h).
	MaxAge time.Duration
	// ResendMin is the least interval at which firing alerts are sent to
	// an Alertmanager again (default 1m; the interval is max(every,
	// ResendMin), and endsAt is four intervals after each send).
	ResendMin time.Duration
	// StateRefresh is how often a rule's state in etcd is rewritten when
	// only its value and evaluation time changed (default 1m); any other
	// change (a transition, an error) is written by the evaluation that
	// makes it.
	StateRefresh time.Duration
	// MaxInstances bounds the instances one rule tracks (default 500).
	MaxInstances int
	// WriteTimeout bounds one etcd write (default 10s).
	WriteTimeout time.Duration
}

func (c *Config) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.SendTimeout, 10*time.Second)
	def(&c.EvalTimeout, time.Minute)
	def(&c.LeaseTTL, 5*time.Second)
	c.LeaseTTL = max(c.LeaseTTL, 2*time.Second)
	def(&c.RetryMin, time.Second)
	def(&c.RetryMax, 5*time.Minute)
	def(&c.MaxAge, 24*time.Hour)
	def(&c.ResendMin, time.Minute)
	def(&c.WriteTimeout, 10*time.Second)
	def(&c.StateRefresh, time.Minute)
	if c.RetryMax < c.RetryMin {
		c.RetryMax = c.RetryMin
	}
	if c.MaxInstances <= 0 {
		c.MaxInstances = 500
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: c.SendTimeout}
	}
	if c.Decode == nil {
		c.Decode = decodeRule
	}
}

// decodeRule is a plain decoder for when Config.Decode is not given:
// JSON, defaults filled in, validated.
func decodeRule(b []byte) (pipeline.AlertRule, error) {
	var r pipeline.AlertRule
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("invalid alert rule JSON: %w", err)
	}
	r.Normalize()
	return r, r.Validate()
}

// Evaluator runs alert rules (see the package doc).
type Evaluator struct {
	cfg   Config
	log   *slog.Logger
	stats *counters
}

// New returns an Evaluator; it starts nothing (see Run).
func New(cfg Config) *Evaluator {
	cfg.setDefaults()
	return &Evaluator{cfg: cfg, log: cfg.Logger.With("component", "alerting"), stats: newCounters()}
}

// Stats returns a snapshot of the evaluator's counters and state.
func (e *Evaluator) Stats() Stats { return e.stats.snapshot() }

// Run campaigns for the lead and, while it leads, evaluates and sends. It
// retries passing errors (etcd unreachable, a lost lease) itself, and
// returns nil once ctx is done and everything it started has stopped (a
// delivery in flight is finished, within SendTimeout, and a write in
// flight, within WriteTimeout); it returns an error only for a Config it
// cannot run with. On return it has given up the lead (its lease revoked,
// when etcd answers), so another process takes over at once.
func (e *Evaluator) Run(ctx context.Context) error {
	switch {
	case e.cfg.Etcd == nil:
		return errors.New("alerting: no etcd client")
	case e.cfg.Querier == nil:
		return errors.New("alerting: no querier")
	}
	if e.cfg.ID == "" {
		e.cfg.ID = defaultID()
	}
	wait := e.cfg.RetryMin
	for {
		led, err := e.term(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if led {
			wait = e.cfg.RetryMin
		}
		if err != nil {
			e.log.Warn("alert evaluation paused; it resumes when etcd answers (check etcd's health in /api/status)", "err", err, "retry_in", wait)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		wait = min(wait*2, 30*time.Second)
	}
}

// errNotLeader is a write refused because this process no longer leads.
var errNotLeader = errors.New("no longer the alerting leader")

// term is one campaign and, once won, one leadership: it returns when
// ctx is done, the session's lease is lost, a write is refused for lack
// of leadership, or etcd fails in a way a term cannot go on from. led
// says it won.
func (e *Evaluator) term(ctx context.Context) (led bool, err error) {
	ttl := int((e.cfg.LeaseTTL + time.Second - 1) / time.Second)
	sess, err := concurrency.NewSession(e.cfg.Etcd, concurrency.WithTTL(ttl), concurrency.WithContext(ctx))
	granted := time.Now() // etcd's lease runs at least TTL from here
	if err != nil {
		return false, fmt.Errorf("etcd session: %w", err)
	}
	defer func() {
		// Revoking the lease deletes the election key: the next process
		// need not wait for it to expire. (Session.Close would revoke
		// with ctx, which is done by now on a shutdown.)
		sess.Orphan()
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.cfg.LeaseTTL)
		defer cancel()
		_, _ = e.cfg.Etcd.Revoke(rctx, sess.Lease())
	}()
	cctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	// The session keeps the lease alive; this watches its answers. etcd
	// ends the lease TTL after the last keep-alive it received (sent at
	// least a round trip before its answer came), and another process may
	// lead from then on; so a leader that has heard no answer for the TTL
	// less a margin (a quarter of it, at least 500ms: the round trip and
	// the time to stop) steps down before that can happen, cut off from
	// etcd but maybe not from the targets.
	answers, err := e.cfg.Etcd.KeepAlive(cctx, sess.Lease())
	if err != nil {
		return false, fmt.Errorf("etcd lease keep-alive: %w", err)
	}
	go func() {
		limit := e.cfg.LeaseTTL - max(e.cfg.LeaseTTL/4, 500*time.Millisecond)
		tick := time.NewTicker(limit / 8)
		defer tick.Stop()
		last := granted
		for {
			select {
			case _, ok := <-answers:
				if !ok {
					cancel(errors.New("etcd session lease lost"))
					return
				}
				last = time.Now()
			case <-tick.C:
				if d := time.Since(last); d > limit {
					cancel(fmt.Errorf("no answer from etcd to the lease keep-alive for %s; stepping down before the lease (%s) can expire and another process lead", d.Round(time.Millisecond), e.cfg.LeaseTTL))
					return
				}
			case <-sess.Done():
				cancel(errors.New("etcd session lease lost"))
				return
			case <-cctx.Done():
				return
			}
		}
	}()
	el := concurrency.NewElection(sess, pipeline.AlertLeaderPrefix)
	if err := el.Campaign(cctx, e.cfg.ID); err != nil {
		if c := context.Cause(cctx); c != nil && ctx.Err() == nil {
			err = c
		}
		return false, fmt.Errorf("alerting election: %w", err)
	}
	l := &leader{e: e, cli: e.cfg.Etcd, key: el.Key(), rev: el.Rev(), lose: cancel, runners: map[string]*runner{}}
	l.out = newOutbox(l)
	// Campaign may return after the lease expired while it waited: the
	// first guarded read makes sure.
	if err := l.check(cctx); err != nil {
		return false, err
	}
	e.log.Info("leading alert evaluation", "id", e.cfg.ID)
	e.stats.setLeader(true, l.out.queued)
	defer e.stats.setLeader(false, nil)
	err = l.run(cctx)
	if ctx.Err() == nil {
		if c := context.Cause(cctx); c != nil && err == nil {
			err = c
		}
		e.log.Warn("stopped leading alert evaluation; another process takes over, or this one once etcd answers", "err", err)
	}
	return true, err
}

// defaultID is the host name and process id.
func defaultID() string {
	h, _ := os.Hostname()
	return h + "/" + strconv.Itoa(os.Getpid())
}

// leader is one term's leadership: the guarded writes, the rules'
// runners, the outbox.
type leader struct {
	e    *Evaluator
	cli  *clientv3.Client
	key  string // the election key
	rev  int64  // its creation revision
	lose context.CancelCauseFunc
	seq  atomic.Uint64
	out  *outbox

	// Owned by run's goroutine.
	runners   map[string]*runner
	loaded    map[string]pipeline.AlertStatus
	lastRules map[string][]byte
}

func (l *leader) guard() clientv3.Cmp {
	return clientv3.Compare(clientv3.CreateRevision(l.key), "=", l.rev)
}

func (l *leader) writeCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	// A write is not cancelled with the term: a transaction cut off
	// mid-flight may or may not have been applied, and this process
	// would not know which.
	return context.WithTimeout(context.WithoutCancel(ctx), l.e.cfg.WriteTimeout)
}

// check confirms the lead.
func (l *leader) check(ctx context.Context) error {
	wctx, cancel := l.writeCtx(ctx)
	defer cancel()
	resp, err := l.cli.Txn(wctx).If(l.guard()).Commit()
	if err != nil {
		return fmt.Errorf("confirm the alerting lead: %w", err)
	}
	if !resp.Succeeded {
		return errNotLeader
	}
	return nil
}

// change is one guarded transaction: a rule's state and the outbox
// entries that go with it.
type change struct {
	ops []clientv3.Op
	// marker is the first outbox key it writes: a change with one is
	// applied at most once however often it is retried (the transaction
	// also requires the marker to be absent, and finding it present means
	// an earlier attempt was applied).
	marker string
	items  []*item // queued once the change is applied
	rule   *ruleChange
}

// commit writes c. nil: applied (now or by an earlier attempt).
// errNotLeader: refused, this process no longer leads (the term is
// ended). isDefinite(err): refused by etcd, not applied. Any other error
// leaves it in doubt: commit it again before writing anything else.
func (l *leader) commit(ctx context.Context, c *change) error {
	cmps := []clientv3.Cmp{l.guard()}
	var els []clientv3.Op
	if c.marker != "" {
		cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(c.marker), "=", 0))
		els = append(els, clientv3.OpGet(c.marker, clientv3.WithCountOnly()))
	}
	wctx, cancel := l.writeCtx(ctx)
	defer cancel()
	resp, err := l.cli.Txn(wctx).If(cmps...).Then(c.ops...).Else(els...).Commit()
	if err != nil {
		return fmt.Errorf("write to etcd: %w", err)
	}
	if !resp.Succeeded {
		if c.marker != "" && resp.Responses[0].GetResponseRange().Count > 0 {
			return nil
		}
		l.lose(errNotLeader)
		return errNotLeader
	}
	return nil
}

// isDefinite says etcd refused a write without applying it, and would
// refuse it again.
func isDefinite(err error) bool {
	return errors.Is(err, rpctypes.ErrRequestTooLarge) || errors.Is(err, rpctypes.ErrTooManyOps) ||
		errors.Is(err, rpctypes.ErrDuplicateKey) || errors.Is(err, rpctypes.ErrKeyNotFound)
}

// deleteKey removes an outbox entry.
func (l *leader) deleteKey(ctx context.Context, key string) error {
	wctx, cancel := l.writeCtx(ctx)
	defer cancel()
	resp, err := l.cli.Txn(wctx).If(l.guard()).Then(clientv3.OpDelete(key)).Commit()
	if err != nil {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	if !resp.Succeeded {
		l.lose(errNotLeader)
		return errNotLeader
	}
	return nil
}

func outboxKey(seq uint64) string { return fmt.Sprintf("%s%020d", pipeline.AlertOutboxPrefix, seq) }

// run is the term's work: load, start a runner per rule and the outbox,
// then follow the rules' changes until ctx ends.
func (l *leader) run(ctx context.Context) error {
	e := l.e
	rctx, rcancel := l.writeCtx(ctx)
	resp, err := l.cli.Txn(rctx).If(l.guard()).Then(
		clientv3.OpGet(pipeline.AlertsPrefix, clientv3.WithPrefix()),
		clientv3.OpGet(pipeline.AlertStatePrefix, clientv3.WithPrefix()),
		clientv3.OpGet(pipeline.AlertOutboxPrefix, clientv3.WithPrefix()),
		clientv3.OpGet(lastRulePrefix, clientv3.WithPrefix()),
	).Commit()
	rcancel()
	if err != nil {
		return fmt.Errorf("load alert rules and state: %w", err)
	}
	if !resp.Succeeded {
		return errNotLeader
	}
	rules := resp.Responses[0].GetResponseRange().Kvs
	l.loaded = map[string]pipeline.AlertStatus{}
	for _, kv := range resp.Responses[1].GetResponseRange().Kvs {
		name := strings.TrimPrefix(string(kv.Key), pipeline.AlertStatePrefix)
		var st pipeline.AlertStatus
		if err := json.Unmarshal(kv.Value, &st); err != nil {
			e.log.Warn("alert rule state unreadable; the rule starts afresh (its firing alerts are notified again)", "rule", name, "err", err)
			st = pipeline.AlertStatus{}
		}
		l.loaded[name] = st
	}
	maxSeq := uint64(e.cfg.Now().UnixNano())
	var items []*item
	for _, kv := range resp.Responses[2].GetResponseRange().Kvs {
		seq, perr := strconv.ParseUint(strings.TrimPrefix(string(kv.Key), pipeline.AlertOutboxPrefix), 10, 64)
		var n notification
		if err := json.Unmarshal(kv.Value, &n); err != nil || perr != nil || n.Target.Kind() == "" {
			e.log.Error("outbox entry unreadable; dropped", "key", string(kv.Key), "err", errors.Join(err, perr))
			if err := l.deleteKey(ctx, string(kv.Key)); err != nil {
				return err
			}
			e.stats.note("unknown", func(c *NotificationCounts) { c.Dropped++ })
			continue
		}
		maxSeq = max(maxSeq, seq)
		items = append(items, &item{key: string(kv.Key), seq: seq, n: &n})
	}
	l.seq.Store(maxSeq)
	l.out.add(items...)
	l.lastRules = map[string][]byte{}
	for _, kv := range resp.Responses[3].GetResponseRange().Kvs {
		l.lastRules[strings.TrimPrefix(string(kv.Key), lastRulePrefix)] = kv.Value
	}

	// The outbox and the rules run side by side; the first to fail ends
	// both (and the term).
	gctx, gcancel := context.WithCancelCause(ctx)
	var wg sync.WaitGroup
	var first error
	var once sync.Once
	fail := func(err error) {
		if err != nil {
			once.Do(func() { first = err })
		}
		gcancel(err)
	}
	wg.Add(2)
	go func() {
		defer wg.Done()
		fail(l.out.run(gctx))
	}()
	go func() {
		defer wg.Done()
		fail(l.rules(gctx, rules, resp.Header.Revision+1))
	}()
	wg.Wait()
	err = first
	if c := context.Cause(ctx); err == nil && c != nil && !errors.Is(c, context.Canceled) {
		err = c
	}
	return err
}

// rules starts a runner per rule, ends the state of rules deleted while
// no one led, then follows the rules' changes until ctx ends.
func (l *leader) rules(ctx context.Context, rules []*mvccpb.KeyValue, rev int64) error {
	defer l.stopAll()
	present := map[string]bool{}
	for _, kv := range rules {
		name := strings.TrimPrefix(string(kv.Key), pipeline.AlertsPrefix)
		present[name] = true
		l.upsert(ctx, name, kv.Value)
	}
	// State of rules deleted while no one led.
	for name := range l.loaded {
		if !present[name] {
			if err := l.drop(ctx, l.orphan(name)); err != nil {
				return err
			}
		}
	}
	for name := range l.lastRules {
		if !present[name] {
			if _, ok := l.loaded[name]; !ok {
				if err := l.drop(ctx, l.orphan(name)); err != nil {
					return err
				}
			}
		}
	}
	l.loaded = nil
	return l.watch(ctx, rev)
}

// watch applies the rules' changes from rev on.
func (l *leader) watch(ctx context.Context, rev int64) error {
	wch := l.cli.Watch(clientv3.WithRequireLeader(ctx), pipeline.AlertsPrefix, clientv3.WithPrefix(), clientv3.WithRev(rev))
	for {
		select {
		case <-ctx.Done():
			return nil
		case wr, ok := <-wch:
			if !ok {
				if ctx.Err() != nil {
					return nil
				}
				return errors.New("watch of alert rules ended")
			}
			if err := wr.Err(); err != nil {
				return fmt.Errorf("watch alert rules: %w", err)
			}
			for _, ev := range wr.Events {
				name := strings.TrimPrefix(string(ev.Kv.Key), pipeline.AlertsPrefix)
				if ev.Type == clientv3.EventTypeDelete {
					if r := l.runners[name]; r != nil {
						r.stop()
						delete(l.runners, name)
						if err := l.drop(ctx, r); err != nil {
							return err
						}
					}
					continue
				}
				l.upsert(ctx, name, ev.Kv.Value)
			}
		}
	}
}

// upsert starts (or restarts, on a changed entry) the rule's runner; a
// restarted rule keeps its state.
func (l *leader) upsert(ctx context.Context, name string, raw []byte) {
	old := l.runners[name]
	if old != nil && string(old.raw) == string(raw) {
		return
	}
	r := &runner{l: l, name: name, raw: raw}
	if old != nil {
		old.stop()
		r.status, r.pending, r.written = old.status, old.pending, old.written
		r.lastValid, r.lastValidRaw, r.storedRaw = old.lastValid, old.lastValidRaw, old.storedRaw
	} else {
		r.status = l.loaded[name]
		r.written = r.status.LastEval
		if b, ok := l.lastRules[name]; ok {
			r.storedRaw = b
			if rule, err := l.e.cfg.Decode(b); err == nil {
				r.lastValid, r.lastValidRaw = &rule, b
			}
		}
	}
	rule, err := l.e.cfg.Decode(raw)
	if err == nil && rule.Name != name {
		err = fmt.Errorf("the rule's name %q is not its key's, %q", rule.Name, name)
	}
	if err != nil {
		r.bad = err
	} else {
		r.rule, r.lastValid, r.lastValidRaw = &rule, &rule, raw
	}
	l.runners[name] = r
	r.start(ctx)
}

// orphan is a stopped runner for the state of a rule that is gone.
func (l *leader) orphan(name string) *runner {
	r := &runner{l: l, name: name, status: l.loaded[name], storedRaw: l.lastRules[name]}
	if b := l.lastRules[name]; b != nil {
		if rule, err := l.e.cfg.Decode(b); err == nil {
			r.lastValid = &rule
		}
	}
	return r
}

// drop ends a deleted rule: its firing instances are resolved (notified
// with its last targets) and its state removed, in one write, retried
// until it is applied or the term ends.
func (l *leader) drop(ctx context.Context, r *runner) error {
	if !r.settleAll(ctx) {
		return context.Cause(ctx)
	}
	out := resolveAll(r.status, l.e.cfg.Now(), pipeline.AlertOK)
	if len(out.resolved) > 0 && r.lastValid == nil {
		l.e.log.Warn("alert rule deleted while firing, and its targets are unknown: its resolved notification is not sent", "rule", r.name)
	}
	r.pending = r.changeFor(out, true, nil)
	if !r.settleAll(ctx) {
		return context.Cause(ctx)
	}
	l.e.stats.dropRule(r.name)
	return nil
}

func (l *leader) stopAll() {
	for _, r := range l.runners {
		r.cancel()
	}
	for _, r := range l.runners {
		<-r.done
	}
}
