package alerting

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/logbox/logbox/appliance/pipeline"
)

// TestFiringAndResolvedEachTarget: a rule fires and resolves; a webhook,
// an Alertmanager and a Slack receiver (real HTTP servers) each receive
// the firing and the resolved notification, in their own payloads. The
// Alertmanager also receives the firing alert again while it fires
// (else it would expire it), the others do not.
func TestFiringAndResolvedEachTarget(t *testing.T) {
	e := startEtcd(t)
	cli := e.Client()
	wh, am, sl := newReceiver(t), newReceiver(t), newReceiver(t)
	q := newFakeQuerier()
	q.count("error", 3)
	cfg := testConfig(cli, q)
	cfg.ResendMin = time.Second
	ev := start(t, cfg)

	r := rule("errors", "error",
		pipeline.AlertTarget{Webhook: wh.srv.URL + "/hook?token=s3cret"},
		pipeline.AlertTarget{Alertmanager: am.srv.URL + "/"},
		pipeline.AlertTarget{Slack: sl.srv.URL + "/services/T0/B0/secret"})
	r.Labels = map[string]string{"team": "ops"}
	r.Description = "errors in the logs"
	r.Annotations = map[string]string{"summary": "errors seen"}
	putRule(t, cli, r)

	waitFor(t, 15*time.Second, "firing delivered to every target", func() bool {
		return len(wh.delivered()) >= 1 && len(am.delivered()) >= 1 && len(sl.delivered()) >= 1
	})
	// Webhook: Alertmanager's webhook JSON, version 4.
	if got := wh.delivered()[0].Path; got != "/hook?token=s3cret" {
		t.Errorf("webhook path %q", got)
	}
	msg := wh.webhooks(t)[0]
	if msg.Version != "4" || msg.Status != "firing" || msg.Receiver == "" || msg.GroupKey == "" ||
		msg.GroupLabels["alertname"] != "errors" || msg.ExternalURL != cfg.ExternalURL || len(msg.Alerts) != 1 {
		t.Fatalf("webhook message %+v", msg)
	}
	a := msg.Alerts[0]
	wantLabels := map[string]string{"alertname": "errors", "team": "ops"}
	if !equalMaps(a.Labels, wantLabels) || !equalMaps(msg.CommonLabels, wantLabels) {
		t.Errorf("labels %v, common %v; want %v", a.Labels, msg.CommonLabels, wantLabels)
	}
	if a.Status != "firing" || a.Annotations["value"] != "3" || a.Annotations["description"] != "errors in the logs" ||
		a.Annotations["summary"] != "errors seen" || a.Annotations["query"] != "error" || len(a.Fingerprint) != 16 {
		t.Errorf("alert %+v", a)
	}
	var raw map[string]any
	json.Unmarshal(wh.delivered()[0].Body, &raw)
	if ends := raw["alerts"].([]any)[0].(map[string]any)["endsAt"]; ends != "0001-01-01T00:00:00Z" {
		t.Errorf("firing endsAt %v", ends)
	}
	for _, k := range []string{"version", "groupKey", "truncatedAlerts", "status", "receiver", "groupLabels", "commonLabels", "commonAnnotations", "externalURL", "alerts"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("webhook message lacks %q", k)
		}
	}
	checkLink(t, a.GeneratorURL, cfg.ExternalURL, "error")

	// Alertmanager: POST /api/v2/alerts, an array of postable alerts.
	first := am.delivered()[0]
	if first.Path != "/api/v2/alerts" {
		t.Errorf("alertmanager path %q, want /api/v2/alerts", first.Path)
	}
	var pas []postableAlert
	if err := json.Unmarshal(first.Body, &pas); err != nil || len(pas) != 1 {
		t.Fatalf("alertmanager body %s: %v", first.Body, err)
	}
	if !equalMaps(pas[0].Labels, wantLabels) || pas[0].Annotations["value"] != "3" || pas[0].StartsAt.IsZero() ||
		!pas[0].EndsAt.After(time.Now()) || pas[0].GeneratorURL != a.GeneratorURL {
		t.Errorf("alertmanager alert %+v", pas[0])
	}
	// Slack: one text line.
	var sm map[string]string
	json.Unmarshal(sl.delivered()[0].Body, &sm)
	if txt := sm["text"]; !strings.HasPrefix(txt, "[FIRING] errors — team=ops — value 3 — http://logbox.example:7070/?q=") {
		t.Errorf("slack text %q", txt)
	}

	// While it fires, the Alertmanager hears of it again; the others not.
	waitFor(t, 10*time.Second, "a re-send to the Alertmanager", func() bool { return len(am.delivered()) >= 3 })
	if n := len(wh.delivered()); n != 1 {
		t.Fatalf("webhook got %d messages while firing, want 1", n)
	}
	if n := len(sl.delivered()); n != 1 {
		t.Fatalf("slack got %d messages while firing, want 1", n)
	}

	q.count("error", 0)
	waitFor(t, 15*time.Second, "resolved delivered to every target", func() bool {
		return len(wh.delivered()) == 2 && len(sl.delivered()) == 2 && strings.Contains(string(last(am.delivered()).Body), `"endsAt"`) &&
			!lastAMFiring(am)
	})
	resolvedAt := time.Now()
	res := wh.webhooks(t)[1]
	if res.Status != "resolved" || len(res.Alerts) != 1 || res.Alerts[0].Status != "resolved" ||
		res.Alerts[0].EndsAt.IsZero() || !res.Alerts[0].StartsAt.Equal(a.StartsAt) || res.Alerts[0].Fingerprint != a.Fingerprint {
		t.Errorf("resolved message %+v", res)
	}
	json.Unmarshal(last(am.delivered()).Body, &pas)
	if len(pas) != 1 || pas[0].EndsAt.After(resolvedAt) || resolvedAt.Sub(pas[0].EndsAt) > 5*time.Second || !pas[0].StartsAt.Equal(a.StartsAt) {
		t.Errorf("alertmanager resolved %+v (now %s)", pas, resolvedAt)
	}
	json.Unmarshal(sl.delivered()[1].Body, &sm)
	if !strings.HasPrefix(sm["text"], "[RESOLVED] errors — team=ops — value 0 — http://") {
		t.Errorf("slack resolved text %q", sm["text"])
	}

	// Nothing more comes once it is resolved.
	time.Sleep(2500 * time.Millisecond)
	if n, m := len(wh.delivered()), len(sl.delivered()); n != 2 || m != 2 {
		t.Errorf("after resolve: webhook %d, slack %d messages; want 2 each", n, m)
	}
	if lastAMFiring(am) {
		t.Error("the Alertmanager was sent the alert as firing after it resolved")
	}

	st, ok := readState(t, cli, "errors")
	if !ok || st.State != pipeline.AlertOK || len(st.Instances) != 0 || st.Value == nil || *st.Value != 0 {
		t.Fatalf("state %+v", st)
	}
	var trans []string
	for _, h := range st.History {
		trans = append(trans, h.From+">"+h.To)
	}
	if strings.Join(trans, " ") != "ok>firing firing>resolved" {
		t.Errorf("history %v", trans)
	}
	s := ev.ev.Stats()
	if !s.Leader || s.Notifications["webhook"].Sent != 2 || s.Notifications["slack"].Sent != 2 ||
		s.Notifications["alertmanager"].Sent < 4 || s.Evaluations < 3 || s.Outbox != 0 || s.Firing != 0 {
		t.Errorf("stats %+v", s)
	}
	waitFor(t, 5*time.Second, "an empty outbox in etcd", func() bool { return countKeys(t, cli, pipeline.AlertOutboxPrefix) == 0 })
}

func lastAMFiring(am *receiver) bool {
	d := am.delivered()
	if len(d) == 0 {
		return false
	}
	var pas []postableAlert
	json.Unmarshal(last(d).Body, &pas)
	return len(pas) > 0 && pas[0].EndsAt.After(time.Now())
}

func last[T any](s []T) T { return s[len(s)-1] }

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// checkLink: a link opens the page on the query over a range that holds
// now.
func checkLink(t *testing.T, link, base, wantQ string) {
	t.Helper()
	if !strings.HasPrefix(link, base+"/?q=") {
		t.Fatalf("link %q does not start with %s/?q=", link, base)
	}
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	v := u.Query()
	from, err1 := time.Parse(time.RFC3339, v.Get("from"))
	to, err2 := time.Parse(time.RFC3339, v.Get("to"))
	if v.Get("q") != wantQ || err1 != nil || err2 != nil || !from.Before(to) || time.Since(to) > time.Minute || to.Sub(from) < time.Minute {
		t.Errorf("link %q: q=%q from=%s to=%s", link, v.Get("q"), from, to)
	}
}

// TestForDelaysFiring: with for 3s, the rule is pending first and fires
// (and notifies) only once the condition held 3s; a pending instance
// whose condition stops is dropped without any notification.
func TestForDelaysFiring(t *testing.T) {
	e := startEtcd(t)
	cli := e.Client()
	wh := newReceiver(t)
	q := newFakeQuerier()
	q.count("slow", 5)
	q.count("flap", 5)
	start(t, testConfig(cli, q))

	r := rule("slow", "slow", pipeline.AlertTarget{Webhook: wh.srv.URL})
	r.For = "3s"
	f := rule("flap", "flap", pipeline.AlertTarget{Webhook: wh.srv.URL})
	f.For = "1h"
	putRule(t, cli, r)
	putRule(t, cli, f)

	var pending pipeline.AlertStatus
	waitFor(t, 10*time.Second, "slow pending", func() bool {
		pending, _ = readState(t, cli, "slow")
		return pending.State == pipeline.AlertPending
	})
	if len(pending.Instances) != 1 || pending.Instances[0].State != pipeline.AlertPending || !pending.Instances[0].FiredAt.IsZero() {
		t.Fatalf("pending state %+v", pending)
	}
	if n := len(wh.all()); n != 0 {
		t.Fatalf("%d notifications while pending", n)
	}
	waitFor(t, 15*time.Second, "slow firing delivered", func() bool { return len(wh.delivered()) >= 1 })
	st, _ := readState(t, cli, "slow")
	in := st.Instances[0]
	if st.State != pipeline.AlertFiring || in.FiredAt.Sub(in.ActiveSince) < 3*time.Second || !in.ActiveSince.Equal(pending.Instances[0].ActiveSince) {
		t.Fatalf("firing state %+v (active since %s)", st, pending.Instances[0].ActiveSince)
	}
	if got := wh.delivered()[0].At; got.Before(in.ActiveSince.Add(3 * time.Second)) {
		t.Errorf("delivered at %s, before the condition held 3s (active since %s)", got, in.ActiveSince)
	}

	st, _ = readState(t, cli, "flap")
	if st.State != pipeline.AlertPending {
		t.Fatalf("flap %+v", st)
	}
	q.count("flap", 0)
	waitFor(t, 10*time.Second, "flap back to ok", func() bool {
		st, _ = readState(t, cli, "flap")
		return st.State == pipeline.AlertOK
	})
	if len(st.History) != 2 || st.History[0].To != pipeline.AlertPending || st.History[1].From != pipeline.AlertPending || st.History[1].To != pipeline.AlertOK {
		t.Errorf("flap history %+v", st.History)
	}
	for _, m := range wh.webhooks(t) {
		if m.GroupLabels["alertname"] != "slow" {
			t.Errorf("a notification for %v", m.GroupLabels)
		}
	}
}

// TestByGroups: each group of a by (…) pipe is its own instance with its
// own labels and link; one group resolving leaves the other firing.
func TestByGroups(t *testing.T) {
	e := startEtcd(t)
	cli := e.Client()
	wh := newReceiver(t)
	q := newFakeQuerier()
	query := `status:>=500 | stats count() as n, avg(request_time) by (host, fields.env)`
	answer := func(web1 uint64) pipeline.StatsResult {
		return pipeline.StatsResult{Columns: []string{"host", "fields.env", "n", "avg(request_time)"}, By: 2, Rows: [][]any{
			{"web1", "prod", web1, 0.5}, {"web2", "prod", uint64(1), 0.2}, {"web3", "dev", uint64(7), nil}}, Total: web1 + 8}
	}
	q.set(query, answer(10))
	start(t, testConfig(cli, q))
	r := rule("5xx", query, pipeline.AlertTarget{Webhook: wh.srv.URL})
	r.Condition = pipeline.AlertCondition{Op: ">", Value: 5}
	r.Labels = map[string]string{"host": "overridden", "sev": "page"}
	putRule(t, cli, r)

	waitFor(t, 15*time.Second, "firing", func() bool { return len(wh.delivered()) >= 1 })
	m := wh.webhooks(t)[0]
	if m.Status != "firing" || len(m.Alerts) != 2 {
		t.Fatalf("firing message %+v", m)
	}
	hosts := map[string]webhookAlert{}
	for _, a := range m.Alerts {
		hosts[a.Labels["host"]] = a
	}
	w1, w3 := hosts["web1"], hosts["web3"]
	if !equalMaps(w1.Labels, map[string]string{"alertname": "5xx", "host": "web1", "env": "prod", "sev": "page"}) ||
		w1.Annotations["value"] != "10" || w3.Annotations["value"] != "7" || w1.Fingerprint == w3.Fingerprint {
		t.Fatalf("alerts %+v", m.Alerts)
	}
	if !equalMaps(m.CommonLabels, map[string]string{"alertname": "5xx", "sev": "page"}) {
		t.Errorf("common labels %v", m.CommonLabels)
	}
	checkLink(t, w1.GeneratorURL, "http://logbox.example:7070", `(status:>=500) AND host:"web1" AND fields.env:"prod"`)
	st, _ := readState(t, cli, "5xx")
	if st.State != pipeline.AlertFiring || len(st.Instances) != 2 || *st.Value != 10 {
		t.Fatalf("state %+v", st)
	}

	q.set(query, answer(2))
	waitFor(t, 15*time.Second, "web1 resolved", func() bool { return len(wh.delivered()) >= 2 })
	m = wh.webhooks(t)[1]
	if m.Status != "resolved" || len(m.Alerts) != 1 || m.Alerts[0].Labels["host"] != "web1" || m.Alerts[0].Annotations["value"] != "2" {
		t.Fatalf("resolved message %+v", m)
	}
	st, _ = readState(t, cli, "5xx")
	if st.State != pipeline.AlertFiring || len(st.Instances) != 1 || st.Instances[0].Labels["host"] != "web3" {
		t.Fatalf("state after web1 resolved %+v", st)
	}
	time.Sleep(1500 * time.Millisecond)
	if n := len(wh.delivered()); n != 2 {
		t.Errorf("%d messages, want 2", n)
	}
}

// TestRetryThenDelivered: a receiver that fails three times then answers
// 200 gets the notification once; the retries are counted and the target
// shows in trouble (its URL without path or token) until it recovers. A
// target that refuses for good (404) is not retried.
func TestRetryThenDelivered(t *testing.T) {
	e := startEtcd(t)
	cli := e.Client()
	wh, gone := newReceiver(t), newReceiver(t)
	wh.setFail(3, 503)
	gone.setFail(1000, 404)
	q := newFakeQuerier()
	q.count("error", 1)
	cfg := testConfig(cli, q)
	cfg.RetryMin, cfg.RetryMax = 300*time.Millisecond, time.Second
	ev := start(t, cfg)
	putRule(t, cli, rule("errors", "error", pipeline.AlertTarget{Webhook: wh.srv.URL + "/hook/secret-path?token=x"}, pipeline.AlertTarget{Slack: gone.srv.URL + "/gone"}))

	var s Stats
	var tr *TargetTrouble
	waitFor(t, 10*time.Second, "two failed attempts counted", func() bool {
		s = ev.ev.Stats()
		for i := range s.TargetsInTrouble {
			if s.TargetsInTrouble[i].Kind == "webhook" {
				tr = &s.TargetsInTrouble[i]
			}
		}
		return tr != nil && tr.ConsecutiveFailures >= 2
	})
	if tr.URL != wh.srv.URL || tr.ConsecutiveFailures < 2 || !strings.Contains(tr.LastError, "503") ||
		strings.Contains(tr.LastError, "secret") || tr.Queued != 1 || s.Outbox < 1 {
		t.Fatalf("targets in trouble %+v (outbox %d)", s.TargetsInTrouble, s.Outbox)
	}
	waitFor(t, 15*time.Second, "delivered", func() bool { return len(wh.delivered()) >= 1 })
	waitFor(t, 5*time.Second, "outbox emptied", func() bool { return ev.ev.Stats().Outbox == 0 })
	time.Sleep(time.Second)
	if n, d := len(wh.all()), len(wh.delivered()); n != 4 || d != 1 {
		t.Errorf("%d requests, %d delivered; want 4 and 1", n, d)
	}
	s = ev.ev.Stats()
	if c := s.Notifications["webhook"]; c.Sent != 1 || c.Failed != 3 || c.Retried != 3 || c.Dropped != 0 {
		t.Errorf("webhook counts %+v", c)
	}
	if c := s.Notifications["slack"]; c.Sent != 0 || c.Failed != 1 || c.Retried != 0 || c.Dropped != 1 || len(gone.all()) != 1 {
		t.Errorf("slack counts %+v after %d requests (a 404 is not retried)", c, len(gone.all()))
	}
	for _, tr := range s.TargetsInTrouble {
		if tr.Kind == "webhook" {
			t.Errorf("webhook still in trouble after delivering: %+v", tr)
		}
	}
	if len(s.TargetsInTrouble) != 1 || s.TargetsInTrouble[0].Kind != "slack" || !strings.Contains(s.TargetsInTrouble[0].LastError, "404") {
		t.Errorf("targets in trouble %+v", s.TargetsInTrouble)
	}
	if n := countKeys(t, cli, pipeline.AlertOutboxPrefix); n != 0 {
		t.Errorf("%d outbox entries left in etcd", n)
	}
}

// TestOutboxExpiry: a notification its target never takes is dropped
// once older than MaxAge, counted, and removed from etcd.
func TestOutboxExpiry(t *testing.T) {
	e := startEtcd(t)
	cli := e.Client()
	wh := newReceiver(t)
	wh.setFail(1_000_000, 502)
	q := newFakeQuerier()
	q.count("error", 1)
	cfg := testConfig(cli, q)
	cfg.MaxAge = 1500 * time.Millisecond
	ev := start(t, cfg)
	putRule(t, cli, rule("errors", "error", pipeline.AlertTarget{Webhook: wh.srv.URL}))
	waitFor(t, 10*time.Second, "an outbox entry", func() bool { return countKeys(t, cli, pipeline.AlertOutboxPrefix) == 1 })
	waitFor(t, 10*time.Second, "the entry dropped", func() bool { return ev.ev.Stats().Notifications["webhook"].Dropped == 1 })
	if n := countKeys(t, cli, pipeline.AlertOutboxPrefix); n != 0 {
		t.Errorf("%d outbox entries in etcd after the drop", n)
	}
	if s := ev.ev.Stats(); s.Outbox != 0 || s.Notifications["webhook"].Failed < 2 {
		t.Errorf("stats %+v", s)
	}
}
