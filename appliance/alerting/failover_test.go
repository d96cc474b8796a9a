package alerting

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/logbox/logbox/appliance/pipeline"
	"github.com/logbox/logbox/appliance/settings"
)

// TestRestartWhileFiring: an evaluator stopped while a rule fires, and a
// new one started on the same etcd: the new one neither notifies the
// firing again nor misses the resolve, which is sent exactly once. A
// notification still in the outbox when the first stopped (its target was
// down) is delivered once by the second.
func TestRestartWhileFiring(t *testing.T) {
	e := startEtcd(t)
	cli := e.Client()
	wh, down := newReceiver(t), newReceiver(t)
	down.setFail(1_000_000, 503)
	q := newFakeQuerier()
	q.count("error", 3)
	q.count("timeout", 1)
	ev1 := start(t, testConfig(cli, q))
	putRule(t, cli, rule("errors", "error", pipeline.AlertTarget{Webhook: wh.srv.URL}))
	putRule(t, cli, rule("timeouts", "timeout", pipeline.AlertTarget{Webhook: down.srv.URL}))

	waitFor(t, 15*time.Second, "firing delivered", func() bool { return len(wh.delivered()) >= 1 })
	waitFor(t, 10*time.Second, "attempts at the target that is down", func() bool { return len(down.all()) >= 2 })
	ev1.stop(t)
	if ev1.ev.Stats().Leader {
		t.Fatal("a stopped evaluator says it leads")
	}
	if st, _ := readState(t, cli, "errors"); st.State != pipeline.AlertFiring {
		t.Fatalf("state after stop %+v", st)
	}
	if n := countKeys(t, cli, pipeline.AlertOutboxPrefix); n != 1 {
		t.Fatalf("%d outbox entries after stop, want the undelivered one", n)
	}
	down.setFail(0, 0)

	ev2 := start(t, testConfig(cli, q))
	waitFor(t, 10*time.Second, "the second evaluator evaluates", func() bool { return ev2.ev.Stats().Evaluations >= 4 })
	waitFor(t, 10*time.Second, "the waiting notification delivered", func() bool { return len(down.delivered()) >= 1 })
	if n := len(wh.delivered()); n != 1 {
		t.Fatalf("after restart the firing rule was notified again: %d messages", n)
	}
	q.count("error", 0)
	waitFor(t, 10*time.Second, "resolved delivered", func() bool { return len(wh.delivered()) >= 2 })
	time.Sleep(1500 * time.Millisecond)
	ms := wh.webhooks(t)
	if len(ms) != 2 || ms[0].Status != "firing" || ms[1].Status != "resolved" {
		t.Fatalf("messages %+v", ms)
	}
	if ms := down.webhooks(t); len(ms) != 1 || ms[0].Status != "firing" {
		t.Fatalf("the waiting notification: %+v", ms)
	}
}

// TestDeletedWhileNoLeader: a rule deleted while no evaluator runs has
// its firing alert resolved (to the targets it had) by the next one, and
// its state dropped.
func TestDeletedWhileNoLeader(t *testing.T) {
	e := startEtcd(t)
	cli := e.Client()
	wh := newReceiver(t)
	q := newFakeQuerier()
	q.count("error", 3)
	ev1 := start(t, testConfig(cli, q))
	putRule(t, cli, rule("errors", "error", pipeline.AlertTarget{Webhook: wh.srv.URL}))
	waitFor(t, 15*time.Second, "firing delivered", func() bool { return len(wh.delivered()) >= 1 })
	ev1.stop(t)
	if st, _ := readState(t, cli, "errors"); st.State != pipeline.AlertFiring || countKeys(t, cli, lastRulePrefix) != 1 {
		t.Fatalf("state after stop %+v, %d rules kept", st, countKeys(t, cli, lastRulePrefix))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cli.Delete(ctx, pipeline.AlertsPrefix+"errors"); err != nil {
		t.Fatal(err)
	}
	start(t, testConfig(cli, q))
	waitFor(t, 15*time.Second, "resolved delivered", func() bool { return len(wh.delivered()) >= 2 })
	time.Sleep(time.Second)
	if ms := wh.webhooks(t); len(ms) != 2 || ms[1].Status != "resolved" || ms[1].Alerts[0].Labels["alertname"] != "errors" {
		t.Fatalf("messages %+v", ms)
	}
	waitFor(t, 5*time.Second, "state dropped", func() bool {
		_, ok := readState(t, cli, "errors")
		return !ok && countKeys(t, cli, lastRulePrefix) == 0
	})
}

// TestFailover: two evaluators on one etcd, each with its own client (as
// two processes). The leader is cut off from etcd (its connections
// through a proxy closed: no resign, no revoke, as when it is killed)
// while a firing notification waits in the outbox (the receiver is down):
// A steps down before its lease can have expired; the other takes over
// within the lease TTL, delivers that notification once, and sends the
// resolve once.
func TestFailover(t *testing.T) {
	e := startEtcd(t)
	proxy := newCutProxy(t, strings.TrimPrefix(e.Endpoint(), "http://"))
	cliA, err := settings.Dial([]string{proxy.endpoint()}, e.CredentialsFile())
	if err != nil {
		t.Fatal(err)
	}
	defer cliA.Close()
	cliB := dial(t, e)
	wh := newReceiver(t)
	wh.setFail(1_000_000, 503)
	q := newFakeQuerier()
	q.count("error", 3)
	cfgA, cfgB := testConfig(cliA, q), testConfig(cliB, q)
	cfgA.ID, cfgB.ID = "A", "B"
	// 3 s, as the other tests: with 2 s, a keep-alive held up by a
	// loaded machine (CI under -race) let A's lease lapse before the cut,
	// and B lead at line "both lead" legitimately.
	cfgA.LeaseTTL, cfgB.LeaseTTL = 3*time.Second, 3*time.Second
	a := start(t, cfgA)
	waitFor(t, 10*time.Second, "A leads", func() bool { return a.ev.Stats().Leader })
	b := start(t, cfgB)
	putRule(t, e.Client(), rule("errors", "error", pipeline.AlertTarget{Webhook: wh.srv.URL}))
	waitFor(t, 15*time.Second, "A's attempts", func() bool { return len(wh.all()) >= 2 })
	if b.ev.Stats().Leader {
		t.Fatal("both lead")
	}
	st, _ := readState(t, e.Client(), "errors")
	if st.State != pipeline.AlertFiring {
		t.Fatalf("state %+v", st)
	}

	killed := time.Now()
	proxy.kill()
	bothLed := false
	waitFor(t, 15*time.Second, "B leads", func() bool {
		bl := b.ev.Stats().Leader
		bothLed = bothLed || bl && a.ev.Stats().Leader
		return bl
	})
	took := time.Since(killed)
	if bothLed {
		// A, cut off from etcd but not from the receiver, would send
		// what B sends too.
		t.Error("A still acted as leader when B took over")
	}
	t.Logf("B took over %s after A was cut off (lease TTL %s)", took.Round(time.Millisecond), cfgA.LeaseTTL)
	// The lease runs out at most a TTL after A's last keep-alive; etcd
	// checks for expired leases every 500ms.
	if took > cfgA.LeaseTTL+time.Second {
		t.Errorf("takeover took %s, more than the lease TTL %s and a second", took, cfgA.LeaseTTL)
	}
	wh.setFail(0, 0)
	waitFor(t, 10*time.Second, "firing delivered by B", func() bool { return len(wh.delivered()) >= 1 })
	q.count("error", 0)
	waitFor(t, 10*time.Second, "resolved delivered by B", func() bool { return len(wh.delivered()) >= 2 })
	time.Sleep(1500 * time.Millisecond)
	ms := wh.webhooks(t)
	if len(ms) != 2 || ms[0].Status != "firing" || ms[1].Status != "resolved" {
		t.Fatalf("messages %+v", ms)
	}
	// B continued A's instance: the same start, not a new firing.
	if !ms[0].Alerts[0].StartsAt.Equal(st.Instances[0].FiredAt) || !ms[1].Alerts[0].StartsAt.Equal(st.Instances[0].FiredAt) {
		t.Errorf("startsAt %s / %s, want A's firing time %s", ms[0].Alerts[0].StartsAt, ms[1].Alerts[0].StartsAt, st.Instances[0].FiredAt)
	}
	st, _ = readState(t, e.Client(), "errors")
	if st.State != pipeline.AlertOK || len(st.History) != 2 {
		t.Errorf("final state %+v", st)
	}
}

// TestDeposedLeaderWritesRefused: once a leader's lease is gone (revoked
// here, as when it expires while the leader is cut off) and another
// process leads, the old leader's writes (state, outbox, outbox deletes)
// are refused by etcd and end its term. A change with outbox entries is
// applied at most once however often it is retried.
func TestDeposedLeaderWritesRefused(t *testing.T) {
	e := startEtcd(t)
	admin, cliA := e.Client(), dial(t, e)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	q := newFakeQuerier()
	ev := New(testConfig(cliA, q))
	sess, err := concurrency.NewSession(cliA, concurrency.WithTTL(2))
	if err != nil {
		t.Fatal(err)
	}
	el := concurrency.NewElection(sess, pipeline.AlertLeaderPrefix)
	if err := el.Campaign(ctx, "A"); err != nil {
		t.Fatal(err)
	}
	var lost []error
	l := &leader{e: ev, cli: cliA, key: el.Key(), rev: el.Rev(), lose: func(err error) { lost = append(lost, err) }}
	exists := func(key string) bool {
		resp, err := admin.Get(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		return len(resp.Kvs) > 0
	}

	// Keys outside alerting's prefixes, so that B (below) leaves them be.
	marker, x := "/test/marker", "/test/x"
	c := &change{marker: marker, ops: []clientv3.Op{clientv3.OpPut(marker, "{}"), clientv3.OpPut(x, "{}")}}
	if err := l.commit(ctx, c); err != nil || !exists(x) {
		t.Fatalf("leader's write: %v", err)
	}
	// Retried (as after an answer lost in transit): not applied again.
	if _, err := admin.Delete(ctx, x); err != nil {
		t.Fatal(err)
	}
	if err := l.commit(ctx, c); err != nil || exists(x) {
		t.Fatalf("a retried change was applied twice (err %v)", err)
	}

	if _, err := admin.Revoke(ctx, sess.Lease()); err != nil {
		t.Fatal(err)
	}
	b := start(t, testConfig(dial(t, e), q))
	waitFor(t, 10*time.Second, "B leads", func() bool { return b.ev.Stats().Leader })

	if err := l.commit(ctx, &change{ops: []clientv3.Op{clientv3.OpPut(pipeline.AlertStatePrefix+"y", "{}")}}); !errors.Is(err, errNotLeader) {
		t.Errorf("deposed leader's state write: %v, want refused", err)
	}
	m2 := outboxKey(2)
	if err := l.commit(ctx, &change{marker: m2, ops: []clientv3.Op{clientv3.OpPut(m2, "{}")}}); !errors.Is(err, errNotLeader) {
		t.Errorf("deposed leader's outbox write: %v, want refused", err)
	}
	if err := l.deleteKey(ctx, marker); !errors.Is(err, errNotLeader) {
		t.Errorf("deposed leader's outbox delete: %v, want refused", err)
	}
	if exists(pipeline.AlertStatePrefix+"y") || exists(m2) || !exists(marker) {
		t.Error("a deposed leader's write reached etcd")
	}
	if len(lost) != 3 || !errors.Is(lost[0], errNotLeader) {
		t.Errorf("lost %v, want the term ended on each refusal", lost)
	}
	if err := l.check(ctx); !errors.Is(err, errNotLeader) {
		t.Errorf("check: %v", err)
	}
}
