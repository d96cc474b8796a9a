package alerting

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/logbox/logbox/appliance/pipeline"
)

// TestRuleLifecycle: a firing rule is edited (labels kept: no new
// notification; labels changed: the old instance resolves and the new
// one fires), its query fails (state error, the instance kept, nothing
// resolved), its entry turns invalid (the same), and it is deleted (its
// alert resolved to its last targets, its state dropped). A disabled
// rule resolves its alerts.
func TestRuleLifecycle(t *testing.T) {
	e := startEtcd(t)
	cli := e.Client()
	wh := newReceiver(t)
	q := newFakeQuerier()
	q.count("error", 2)
	q.count("warn", 2)
	ev := start(t, testConfig(cli, q))
	r := rule("errors", "error", pipeline.AlertTarget{Webhook: wh.srv.URL})
	putRule(t, cli, r)
	waitFor(t, 15*time.Second, "firing", func() bool { return len(wh.delivered()) >= 1 })
	st0, _ := readState(t, cli, "errors")

	evals := func() uint64 { return ev.ev.Stats().Evaluations }
	waitEvals := func(n uint64) {
		t.Helper()
		from := evals()
		waitFor(t, 10*time.Second, "evaluations", func() bool { return evals() >= from+n })
	}

	// An edit that keeps the labels keeps the instance.
	r.Description = "now with a description"
	putRule(t, cli, r)
	waitEvals(2)
	st, _ := readState(t, cli, "errors")
	if n := len(wh.delivered()); n != 1 || st.State != pipeline.AlertFiring || !st.Instances[0].FiredAt.Equal(st0.Instances[0].FiredAt) {
		t.Fatalf("after an edit: %d messages, state %+v", n, st)
	}

	// A failing query: error, instance kept, nothing resolved.
	q.setErr(errors.New("index unavailable"))
	waitFor(t, 10*time.Second, "state error", func() bool {
		st, _ = readState(t, cli, "errors")
		return st.State == stateError
	})
	if !strings.Contains(st.Error, "index unavailable") || len(st.Instances) != 1 || st.Instances[0].State != pipeline.AlertFiring {
		t.Fatalf("error state %+v", st)
	}
	// The counters follow the state's write (an evaluation is counted
	// once its write settled), so they may lag the etcd entry a moment.
	inTrouble := func(s Stats) bool {
		return len(s.RulesInTrouble) == 1 && s.RulesInTrouble[0].Rule == "errors" && s.EvaluationFailures > 0 && s.Firing == 1
	}
	deadline := time.Now().Add(5 * time.Second)
	for !inTrouble(ev.ev.Stats()) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if s := ev.ev.Stats(); !inTrouble(s) {
		t.Errorf("stats %+v", s)
	}
	q.setErr(nil)
	waitFor(t, 10*time.Second, "firing again", func() bool {
		st, _ = readState(t, cli, "errors")
		return st.State == pipeline.AlertFiring && st.Error == ""
	})
	if n := len(wh.delivered()); n != 1 {
		t.Fatalf("%d messages after the query recovered, want 1", n)
	}

	// An edit that changes the labels: a new instance.
	r.Labels = map[string]string{"sev": "page"}
	putRule(t, cli, r)
	waitFor(t, 10*time.Second, "resolved and fired", func() bool { return len(wh.delivered()) >= 3 })
	ms := wh.webhooks(t)
	got := map[string]string{}
	for _, m := range ms[1:] {
		got[m.Status] = m.Alerts[0].Labels["sev"]
	}
	if len(ms) != 3 || len(got) != 2 || got["resolved"] != "" || got["firing"] != "page" {
		t.Fatalf("after a label edit: %+v", ms)
	}

	// An invalid entry: error, instance kept.
	putRaw(t, cli, pipeline.AlertsPrefix+"errors", `{"name":"errors","query":"error","every":"often"}`)
	waitFor(t, 10*time.Second, "state error", func() bool {
		st, _ = readState(t, cli, "errors")
		return st.State == stateError
	})
	if !strings.Contains(st.Error, "every") || len(st.Instances) != 1 {
		t.Fatalf("invalid entry state %+v", st)
	}
	putRaw(t, cli, pipeline.AlertsPrefix+"junk", `not json`)
	waitFor(t, 10*time.Second, "junk in error", func() bool {
		st, _ := readState(t, cli, "junk")
		return st.State == stateError && st.Error != ""
	})

	// Deleted: resolved to the targets of its last valid version.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cli.Delete(ctx, pipeline.AlertsPrefix+"errors"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "resolved on delete", func() bool { return len(wh.delivered()) >= 4 })
	if m := wh.webhooks(t)[3]; m.Status != "resolved" || m.Alerts[0].Labels["sev"] != "page" {
		t.Fatalf("on delete: %+v", m)
	}
	waitFor(t, 5*time.Second, "state dropped", func() bool { _, ok := readState(t, cli, "errors"); return !ok })

	// Disabled: resolved, state disabled.
	w := rule("warns", "warn", pipeline.AlertTarget{Webhook: wh.srv.URL})
	putRule(t, cli, w)
	waitFor(t, 10*time.Second, "warns firing", func() bool { return len(wh.delivered()) >= 5 })
	w.Disabled = true
	putRule(t, cli, w)
	waitFor(t, 10*time.Second, "warns resolved", func() bool { return len(wh.delivered()) >= 6 })
	st, _ = readState(t, cli, "warns")
	if m := wh.webhooks(t)[5]; m.Status != "resolved" || st.State != stateDisabled || len(st.Instances) != 0 {
		t.Fatalf("disabled: %+v, state %+v", m, st)
	}
	time.Sleep(time.Second)
	if n := len(wh.delivered()); n != 6 {
		t.Errorf("%d messages in all, want 6", n)
	}
}

// TestNewPatternsRule: without a patterns function a new-patterns rule is
// in error; with one, each new template is an instance labelled pattern,
// asked over the window and the compare range just before it.
func TestNewPatternsRule(t *testing.T) {
	e := startEtcd(t)
	cli := e.Client()
	wh := newReceiver(t)
	q := newFakeQuerier()
	r := rule("novel", "source:app", pipeline.AlertTarget{Webhook: wh.srv.URL})
	r.NewPatterns = true
	r.Compare = "24h"
	putRule(t, cli, r)
	ev := start(t, testConfig(cli, q))
	waitFor(t, 10*time.Second, "error without patterns", func() bool {
		st, _ := readState(t, cli, "novel")
		return st.State == stateError && st.Error == "patterns not available"
	})
	ev.stop(t)

	var mu sync.Mutex
	var asked [4]time.Time
	cfg := testConfig(cli, q)
	cfg.NewPatterns = func(ctx context.Context, query string, from, to, cmpFrom, cmpTo time.Time) ([]string, error) {
		mu.Lock()
		defer mu.Unlock()
		if query != "source:app" {
			return nil, errors.New("wrong query " + query)
		}
		asked = [4]time.Time{from, to, cmpFrom, cmpTo}
		return []string{"user <*> logged in from <*>", "disk <*> full"}, nil
	}
	start(t, cfg)
	waitFor(t, 10*time.Second, "firing", func() bool { return len(wh.delivered()) >= 1 })
	m := wh.webhooks(t)[0]
	pats := map[string]bool{}
	for _, a := range m.Alerts {
		pats[a.Labels["pattern"]] = true
	}
	if m.Status != "firing" || len(pats) != 2 || !pats["disk <*> full"] || !pats["user <*> logged in from <*>"] {
		t.Fatalf("message %+v", m)
	}
	mu.Lock()
	defer mu.Unlock()
	if asked[1].Sub(asked[0]) != 5*time.Minute || !asked[3].Equal(asked[0]) || asked[3].Sub(asked[2]) != 24*time.Hour {
		t.Errorf("asked over %v", asked)
	}
}

// TestStateWritesThrottled: evaluations that only move the value are not
// each written to etcd (every write stays in etcd's history until it is
// compacted); a transition is written by the evaluation that makes it,
// and the value is refreshed every StateRefresh.
func TestStateWritesThrottled(t *testing.T) {
	e := startEtcd(t)
	cli := e.Client()
	q := newFakeQuerier()
	q.count("error", 1)
	cfg := testConfig(cli, q)
	cfg.StateRefresh = 4 * time.Second
	ev := start(t, cfg)
	r := rule("errors", "error")
	r.Condition.Value = 100
	putRule(t, cli, r)
	version := func() int64 {
		resp, err := cli.Get(context.Background(), pipeline.AlertStatePrefix+"errors")
		if err != nil || len(resp.Kvs) == 0 {
			return 0
		}
		return resp.Kvs[0].Version
	}
	waitFor(t, 10*time.Second, "first write", func() bool { return version() == 1 })
	for i := uint64(2); i <= 3; i++ {
		q.count("error", i)
		waitFor(t, 5*time.Second, "an evaluation", func() bool { return ev.ev.Stats().Evaluations >= i+1 })
	}
	if v := version(); v != 1 {
		t.Fatalf("state written %d times for value-only changes within StateRefresh", v)
	}
	q.count("error", 500)
	waitFor(t, 5*time.Second, "the transition written", func() bool { return version() == 2 })
	st, _ := readState(t, cli, "errors")
	if st.State != pipeline.AlertFiring || *st.Value != 500 {
		t.Fatalf("state %+v", st)
	}
	q.count("error", 501)
	waitFor(t, 10*time.Second, "the value refreshed", func() bool {
		st, _ = readState(t, cli, "errors")
		return *st.Value == 501
	})
	if v := version(); v != 3 {
		t.Errorf("version %d after the refresh, want 3", v)
	}
}
