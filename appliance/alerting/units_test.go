package alerting

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/logbox/logbox/appliance/pipeline"
)

// TestStep walks the state machine through its transitions. Instances
// are written host:state ("-" for a rule without by), transitions as the
// hosts notified.
func TestStep(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	g := func(v float64, by ...string) group {
		gr := group{value: v, ok: true}
		for i := 0; i+1 < len(by); i += 2 {
			gr.by = append(gr.by, byValue{by[i], by[i+1]})
		}
		return gr
	}
	type eval struct {
		at                     int
		groups                 []group
		err                    error
		state, inst            string
		fired, resolved, event string
	}
	cases := []struct {
		name  string
		for_  string
		evals []eval
	}{
		{"for 0 fires at once, resolves when it stops", "0s", []eval{
			{0, []group{g(0)}, nil, "ok", "", "", "", ""},
			{1, []group{g(2)}, nil, "firing", "-:firing", "-", "", "ok>firing"},
			{2, []group{g(3)}, nil, "firing", "-:firing", "", "", ""},
			{3, []group{g(0)}, nil, "ok", "", "", "-", "firing>resolved"},
		}},
		{"for delays firing", "10s", []eval{
			{0, []group{g(1)}, nil, "pending", "-:pending", "", "", "ok>pending"},
			{9, []group{g(1)}, nil, "pending", "-:pending", "", "", ""},
			{10, []group{g(1)}, nil, "firing", "-:firing", "-", "", "pending>firing"},
		}},
		{"pending that stops is dropped", "10s", []eval{
			{0, []group{g(1)}, nil, "pending", "-:pending", "", "", "ok>pending"},
			{5, []group{g(0)}, nil, "ok", "", "", "", "pending>ok"},
			{6, []group{g(1)}, nil, "pending", "-:pending", "", "", "ok>pending"},
		}},
		{"an error keeps instances", "0s", []eval{
			{0, []group{g(1)}, nil, "firing", "-:firing", "-", "", "ok>firing"},
			{1, nil, errors.New("boom"), "error", "-:firing", "", "", ""},
			{2, []group{g(1)}, nil, "firing", "-:firing", "", "", ""},
			{3, []group{{}}, nil, "ok", "", "", "-", "firing>resolved"}, // no value: does not hold
		}},
		{"groups are instances; a vanished group resolves", "0s", []eval{
			{0, []group{g(5, "host", "a"), g(0, "host", "b")}, nil, "firing", "a:firing", "a", "", "ok>firing"},
			{1, []group{g(5, "host", "a"), g(7, "host", "b")}, nil, "firing", "a:firing b:firing", "b", "", "ok>firing"},
			{2, []group{g(7, "host", "b")}, nil, "firing", "b:firing", "", "a", "firing>resolved"},
			{3, []group{g(0, "host", "b")}, nil, "ok", "", "", "b", "firing>resolved"},
		}},
	}
	host := func(in pipeline.AlertInstance) string {
		if h, ok := in.Labels["host"]; ok {
			return h
		}
		return "-"
	}
	hosts := func(ins []pipeline.AlertInstance) string {
		var s []string
		for _, in := range ins {
			s = append(s, host(in))
		}
		return strings.Join(s, " ")
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := rule("r", "q")
			r.For = c.for_
			var st pipeline.AlertStatus
			for _, ev := range c.evals {
				before := len(st.History)
				out := step(&r, st, ev.groups, ev.err, at(ev.at), time.Millisecond, 100)
				st = out.status
				var inst []string
				for _, in := range st.Instances {
					inst = append(inst, host(in)+":"+in.State)
					if in.Labels["alertname"] != "r" {
						t.Errorf("labels %v", in.Labels)
					}
				}
				var events []string
				for _, h := range st.History[before:] {
					events = append(events, h.From+">"+h.To)
				}
				if st.State != ev.state || strings.Join(inst, " ") != ev.inst || hosts(out.fired) != ev.fired ||
					hosts(out.resolved) != ev.resolved || strings.Join(events, " ") != ev.event || !st.LastEval.Equal(at(ev.at)) {
					t.Fatalf("at %ds: state %s, instances %q, fired %q, resolved %q, events %q; want %s, %q, %q, %q, %q",
						ev.at, st.State, inst, hosts(out.fired), hosts(out.resolved), events, ev.state, ev.inst, ev.fired, ev.resolved, ev.event)
				}
				if (ev.err == nil) != (st.Error == "") {
					t.Fatalf("at %ds: error %q", ev.at, st.Error)
				}
				for _, in := range out.fired {
					if !in.FiredAt.Equal(at(ev.at)) {
						t.Errorf("fired at %s", in.FiredAt)
					}
				}
			}
		})
	}
}

func names(ins []pipeline.AlertInstance) string {
	var s []string
	for _, in := range ins {
		s = append(s, in.Labels["host"])
	}
	return strings.Join(s, " ")
}

// TestStepCaps: history is capped, and instances past MaxInstances are
// not tracked (existing ones kept first), which the status says.
func TestStepCaps(t *testing.T) {
	r := rule("r", "q | stats count() by (host)")
	var st pipeline.AlertStatus
	now := time.Now()
	for i := range pipeline.MaxAlertHistory + 10 {
		v := float64(i % 2)
		st = step(&r, st, []group{{value: v, ok: true}}, nil, now.Add(time.Duration(i)*time.Second), 0, 10).status
	}
	if len(st.History) != pipeline.MaxAlertHistory || !st.History[len(st.History)-1].Time.Equal(now.Add(time.Duration(pipeline.MaxAlertHistory+9)*time.Second)) {
		t.Errorf("history of %d, last %v", len(st.History), st.History[len(st.History)-1])
	}
	st = pipeline.AlertStatus{}
	st = step(&r, st, []group{{by: []byValue{{"host", "old"}}, value: 1, ok: true}}, nil, now, 0, 2).status
	var gs []group
	for i := range 5 {
		gs = append(gs, group{by: []byValue{{"host", fmt.Sprint("h", i)}}, value: float64(10 + i), ok: true})
	}
	gs = append(gs, group{by: []byValue{{"host", "old"}}, value: 1, ok: true})
	st = step(&r, st, gs, nil, now.Add(time.Second), 0, 2).status
	hosts := names(st.Instances)
	if hosts != "h4 old" || !strings.Contains(st.Error, "6 groups") {
		t.Errorf("instances %q, error %q", hosts, st.Error)
	}
}

// TestQueryGroups: how answers become groups (with a data-source fake;
// the index's own answers are checked in TestQueryReadingMatchesIndex).
func TestQueryGroups(t *testing.T) {
	q := newFakeQuerier()
	q.count("error", 7)
	q.set("x | stats count() as n, avg(t) as lat by (host)", pipeline.StatsResult{
		Columns: []string{"host", "n", "lat"}, By: 1,
		Rows: [][]any{{"a", uint64(3), 0.5}, {"b", float64(2), nil}, {"c", json.Number("4"), 1.5}},
	})
	e := New(Config{Querier: q})
	now := time.Now()
	run := func(query, column string) ([]group, error) {
		r := rule("r", query)
		r.Column = column
		return e.query(context.Background(), &r, now)
	}
	gs, err := run("error", "")
	if err != nil || len(gs) != 1 || gs[0].value != 7 || !gs[0].ok || len(gs[0].by) != 0 {
		t.Errorf("count: %+v %v", gs, err)
	}
	gs, err = run("x | stats count() as n, avg(t) as lat by (host)", "")
	if err != nil || fmt.Sprint(gs) != "[{[{host a}] 3 true} {[{host b}] 2 true} {[{host c}] 4 true}]" {
		t.Errorf("first function column: %v %v", gs, err)
	}
	gs, err = run("x | stats count() as n, avg(t) as lat by (host)", "lat")
	if err != nil || fmt.Sprint(gs) != "[{[{host a}] 0.5 true} {[{host b}] 0 false} {[{host c}] 1.5 true}]" {
		t.Errorf("column lat: %v %v", gs, err)
	}
	if _, err := run("x | stats count() as n, avg(t) as lat by (host)", "nope"); err == nil || !strings.Contains(err.Error(), "host, n, lat") {
		t.Errorf("unknown column: %v", err)
	}
	if _, err := run("other", ""); err == nil {
		t.Error("a query error is not an error")
	}
	r := rule("p", "x")
	r.NewPatterns = true
	r.Normalize()
	if _, err := e.query(context.Background(), &r, now); !errors.Is(err, errNoPatterns) {
		t.Errorf("patterns: %v", err)
	}
}

// TestRender checks each payload's shape and the links.
func TestRender(t *testing.T) {
	fired := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	now := fired.Add(time.Minute)
	r := rule("5xx", `status:>=500 | stats count() by (host, num.code)`)
	r.Description = "server errors"
	in := pipeline.AlertInstance{
		Labels: map[string]string{"alertname": "5xx", "host": "web\"1", "code": "503"}, State: pipeline.AlertFiring,
		Value: 12.5, ActiveSince: fired, FiredAt: fired,
		Search: instanceSearch(r.Query, []byValue{{"host", `web"1`}, {"num.code", "503"}}),
	}
	a := alertOf(&r, in, now, "https://logs.example.com/")
	u, _ := url.Parse(a.GeneratorURL)
	if got := u.Query().Get("q"); got != `(status:>=500) AND host:"web\"1" AND code:"503"` || u.Host != "logs.example.com" || u.Path != "/" ||
		u.Query().Get("from") != "2026-03-01T11:56:00Z" || u.Query().Get("to") != "2026-03-01T12:01:00Z" {
		t.Errorf("link %s (q %s)", a.GeneratorURL, got)
	}
	n := &notification{Rule: "5xx", Status: "firing", Resend: time.Minute, Alerts: []alert{a}}

	n.Target = pipeline.AlertTarget{Alertmanager: "http://am:9093/prefix"}
	target, body, err := render(n, now, "")
	var pas []map[string]any
	json.Unmarshal(body, &pas)
	if err != nil || target != "http://am:9093/prefix/api/v2/alerts" || len(pas) != 1 || pas[0]["endsAt"] != "2026-03-01T12:05:00Z" ||
		pas[0]["startsAt"] != "2026-03-01T12:00:00Z" || len(pas[0]) != 5 {
		t.Errorf("alertmanager %s %s %v", target, body, err)
	}

	n.Target = pipeline.AlertTarget{Slack: "https://hooks.slack.com/services/x"}
	_, body, _ = render(n, now, "")
	var sm map[string]string
	json.Unmarshal(body, &sm)
	if want := `[FIRING] 5xx — code=503, host=web"1 — value 12.5 — ` + a.GeneratorURL; sm["text"] != want {
		t.Errorf("slack %q\nwant  %q", sm["text"], want)
	}

	res := in
	res.State = pipeline.AlertResolved
	ra := alertOf(&r, res, now, "")
	n2 := &notification{Rule: "5xx", Status: "resolved", Target: pipeline.AlertTarget{Webhook: "http://h/"}, Alerts: []alert{ra, a}, Truncated: 3}
	_, body, _ = render(n2, now, "https://x")
	var m webhookMessage
	json.Unmarshal(body, &m)
	if m.Alerts[0].Status != "resolved" || !m.Alerts[0].EndsAt.Equal(now) || m.Alerts[1].Status != "firing" || m.TruncatedAlerts != 3 ||
		m.CommonAnnotations["description"] != "server errors" || m.CommonAnnotations["value"] != "12.5" {
		t.Errorf("webhook %s", body)
	}
	if !strings.HasPrefix(ra.GeneratorURL, "/?q=") || !strings.Contains(ra.GeneratorURL, "from=2026-03-01T11%3A55%3A00Z") {
		t.Errorf("resolved link %s: from should start a window before the instance began", ra.GeneratorURL)
	}
}

func TestBackoff(t *testing.T) {
	for n, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 4: 8 * time.Second, 20: 5 * time.Minute} {
		for range 20 {
			d := backoff(time.Second, 5*time.Minute, n)
			if d < want*8/10 || d > want*12/10 {
				t.Errorf("backoff after %d failures: %s, want %s ±20%%", n, d, want)
			}
		}
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"https://hooks.slack.com/services/T/B/secret": "https://hooks.slack.com",
		"http://user:pw@am:9093/x?token=1":            "http://am:9093",
		"::":                                          "(invalid URL)",
	} {
		if got := redact(in); got != want {
			t.Errorf("redact(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestSchedule: a rule's ticks are every apart, at the same offset each
// time, and the tick after t is the first one strictly after it.
func TestSchedule(t *testing.T) {
	for _, every := range []time.Duration{time.Second, time.Minute, 7 * time.Minute, time.Hour} {
		next := schedule("errors", every)
		t0 := time.Date(2026, 5, 1, 10, 3, 17, 500, time.UTC)
		a := next(t0)
		if !a.After(t0) || a.Sub(t0) > every {
			t.Fatalf("every %s: tick after %s is %s", every, t0, a)
		}
		b := next(a)
		if b.Sub(a) != every || !next(a.Add(-1)).Equal(a) || !next(b.Add(-every/2)).Equal(b) {
			t.Errorf("every %s: ticks %s, %s", every, a, b)
		}
		if other := schedule("warnings", every)(t0); every >= time.Minute && other.Equal(a) {
			t.Errorf("every %s: two rules tick together at %s", every, a)
		}
	}
}
