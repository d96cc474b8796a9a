package pipeline

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func validRule() AlertRule {
	r := AlertRule{Name: "errors", Query: "level:error"}
	r.Normalize()
	return r
}

func TestAlertRuleNormalize(t *testing.T) {
	r := AlertRule{Name: "a", Query: "q"}
	r.Normalize()
	if r.Every != "1m0s" || r.Window != "5m0s" || r.For != "0s" || r.Condition.Op != ">" || r.Condition.Value != 0 || r.Compare != "" {
		t.Fatalf("defaults: %+v", r)
	}
	if err := r.Validate(); err != nil {
		t.Fatalf("a normalized minimal rule is refused: %v", err)
	}
	p := AlertRule{Name: "a", Query: "q", NewPatterns: true, Every: "30s", Condition: AlertCondition{Op: "<", Value: 3}}
	p.Normalize()
	if p.Compare != "24h0m0s" || p.Every != "30s" || p.Condition.Op != "<" {
		t.Fatalf("new patterns defaults: %+v", p)
	}
	every, window, forDur, compare := p.Durations()
	if every != 30*time.Second || window != 5*time.Minute || forDur != 0 || compare != 24*time.Hour {
		t.Fatalf("Durations: %v %v %v %v", every, window, forDur, compare)
	}
}

func TestParseAlertDuration(t *testing.T) {
	for _, c := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"30s", 30 * time.Second, true},
		{" 5m ", 5 * time.Minute, true},
		{"1h30m", 90 * time.Minute, true},
		{"7d", 7 * 24 * time.Hour, true},
		{"1.5d", 36 * time.Hour, true},
		{"0", 0, true},
		{"d", 0, false},
		{"5", 0, false},
		{"1d12h", 0, false},
		{"5md", 0, false},
		{"soon", 0, false},
		// 107000 days do not fit in a Duration: an error, not a
		// negative duration.
		{"107000d", 0, false},
		{"-107000d", 0, false},
	} {
		got, err := parseAlertDuration(c.in)
		if (err == nil) != c.ok || (c.ok && got != c.want) {
			t.Errorf("parseAlertDuration(%q) = %v, %v; want %v, ok %v", c.in, got, err, c.want, c.ok)
		}
	}
}

// Every FieldError Validate can answer, each naming its field.
func TestAlertRuleValidate(t *testing.T) {
	many := func(n int) map[string]string {
		m := map[string]string{}
		for i := range n {
			m[fmt.Sprintf("k%d", i)] = "v"
		}
		return m
	}
	targets := func(n int) []AlertTarget {
		out := make([]AlertTarget, n)
		for i := range out {
			out[i] = AlertTarget{Webhook: "http://127.0.0.1:9/hook"}
		}
		return out
	}
	cases := []struct {
		name   string
		change func(r *AlertRule)
		field  string // "" for valid
	}{
		{"valid", func(r *AlertRule) {}, ""},
		{"everything", func(r *AlertRule) {
			r.Query = "status:>=500 | stats count() as n by (host)"
			r.Every, r.Window, r.For = "30s", "7d", "10m"
			r.Condition = AlertCondition{Op: ">=", Value: 12.5}
			r.Column = "avg(request_time)"
			r.Labels = map[string]string{"team": "web", "_x9": ""}
			r.Annotations = map[string]string{"summary": "too many 5xx", "runbook_url": "https://wiki/5xx"}
			r.Description = "5xx per host"
			r.Notify = []AlertTarget{{Webhook: "http://127.0.0.1:9/hook"}, {Alertmanager: "https://am.example:9093"}, {Slack: "https://hooks.slack.com/services/T/B/X"}}
			r.Disabled = true
		}, ""},
		{"new patterns", func(r *AlertRule) { r.NewPatterns, r.Compare = true, "7d" }, ""},
		{"most window", func(r *AlertRule) { r.Window = "31d" }, ""},
		{"name", func(r *AlertRule) { r.Name = "Bad Name" }, "name"},
		{"no name", func(r *AlertRule) { r.Name = "" }, "name"},
		{"empty query", func(r *AlertRule) { r.Query = " \t" }, "query"},
		{"long query", func(r *AlertRule) { r.Query = strings.Repeat("a", MaxSavedQueryBytes+1) }, "query"},
		{"query not UTF-8", func(r *AlertRule) { r.Query = "a\xff" }, "query"},
		{"compare without new patterns", func(r *AlertRule) { r.Compare = "24h" }, "compare"},
		{"every not a duration", func(r *AlertRule) { r.Every = "often" }, "every"},
		{"every too short", func(r *AlertRule) { r.Every = "500ms" }, "every"},
		{"every too long", func(r *AlertRule) { r.Every = "32d" }, "every"},
		{"window not a duration", func(r *AlertRule) { r.Window = "5 minutes" }, "window"},
		{"window zero", func(r *AlertRule) { r.Window = "0s" }, "window"},
		{"window too long", func(r *AlertRule) { r.Window = "745h" }, "window"},
		{"window overflows", func(r *AlertRule) { r.Window = "107000d" }, "window"},
		{"for not a duration", func(r *AlertRule) { r.For = "5" }, "for"},
		{"for negative", func(r *AlertRule) { r.For = "-1s" }, "for"},
		{"for too long", func(r *AlertRule) { r.For = "40d" }, "for"},
		{"compare not a duration", func(r *AlertRule) { r.NewPatterns, r.Compare = true, "yesterday" }, "compare"},
		{"compare too short", func(r *AlertRule) { r.NewPatterns, r.Compare = true, "0s" }, "compare"},
		{"compare too long", func(r *AlertRule) { r.NewPatterns, r.Compare = true, "60d" }, "compare"},
		{"op", func(r *AlertRule) { r.Condition.Op = "=>" }, "condition.op"},
		{"column with new patterns", func(r *AlertRule) { r.NewPatterns, r.Compare, r.Column = true, "24h", "n" }, "column"},
		{"long column", func(r *AlertRule) { r.Column = strings.Repeat("c", MaxSavedColumnBytes+1) }, "column"},
		{"column with a line break", func(r *AlertRule) { r.Column = "n\n" }, "column"},
		{"column not UTF-8", func(r *AlertRule) { r.Column = "\xff" }, "column"},
		{"too many labels", func(r *AlertRule) { r.Labels = many(MaxAlertLabels + 1) }, "labels"},
		{"too many annotations", func(r *AlertRule) { r.Annotations = many(MaxAlertLabels + 1) }, "annotations"},
		{"label name with a dash", func(r *AlertRule) { r.Labels = map[string]string{"a-b": "v"} }, "labels.a-b"},
		{"label name starting with a digit", func(r *AlertRule) { r.Labels = map[string]string{"9a": "v"} }, "labels.9a"},
		{"empty label name", func(r *AlertRule) { r.Labels = map[string]string{"": "v"} }, "labels."},
		{"long label name", func(r *AlertRule) { r.Labels = map[string]string{strings.Repeat("a", 129): "v"} }, "labels." + strings.Repeat("a", 129)},
		{"alertname label", func(r *AlertRule) { r.Labels = map[string]string{"alertname": "x"} }, "labels.alertname"},
		{"long label value", func(r *AlertRule) { r.Labels = map[string]string{"a": strings.Repeat("v", MaxAlertLabelBytes+1)} }, "labels.a"},
		{"label value not UTF-8", func(r *AlertRule) { r.Labels = map[string]string{"a": "\xff"} }, "labels.a"},
		// Of several bad labels, the first by name, every time.
		{"several bad labels", func(r *AlertRule) { r.Labels = map[string]string{"z-": "v", "b-": "v", "m-": "v", "c-": "v"} }, "labels.b-"},
		{"annotation name", func(r *AlertRule) { r.Annotations = map[string]string{"run book": "x"} }, "annotations.run book"},
		{"long annotation", func(r *AlertRule) {
			r.Annotations = map[string]string{"summary": strings.Repeat("s", MaxAlertLabelBytes+1)}
		}, "annotations.summary"},
		{"long description", func(r *AlertRule) { r.Description = strings.Repeat("d", MaxSavedDescriptionBytes+1) }, "description"},
		{"description not UTF-8", func(r *AlertRule) { r.Description = "\xff" }, "description"},
		{"too many targets", func(r *AlertRule) { r.Notify = targets(MaxAlertTargets + 1) }, "notify"},
		{"empty target", func(r *AlertRule) { r.Notify = []AlertTarget{{Webhook: "http://h/x"}, {}} }, "notify[1]"},
		{"two kinds in a target", func(r *AlertRule) { r.Notify = []AlertTarget{{Webhook: "http://h/x", Slack: "http://h/y"}} }, "notify[0]"},
		{"webhook not http", func(r *AlertRule) { r.Notify = []AlertTarget{{Webhook: "ftp://h/x"}} }, "notify[0].webhook"},
		{"alertmanager without a host", func(r *AlertRule) { r.Notify = []AlertTarget{{Alertmanager: "http:///x"}} }, "notify[0].alertmanager"},
		{"slack unparsable", func(r *AlertRule) { r.Notify = []AlertTarget{{Slack: "http://h/%zz"}} }, "notify[0].slack"},
		{"slack relative", func(r *AlertRule) { r.Notify = []AlertTarget{{Slack: "hooks/x"}} }, "notify[0].slack"},
		{"long URL", func(r *AlertRule) {
			r.Notify = []AlertTarget{{Webhook: "http://h/x"}, {Slack: "https://h/" + strings.Repeat("p", MaxPathBytes)}}
		}, "notify[1].slack"},
	}
	for _, c := range cases {
		r := validRule()
		c.change(&r)
		err := r.Validate()
		var fe *FieldError
		switch {
		case c.field == "" && err != nil:
			t.Errorf("%s: %v, want valid", c.name, err)
		case c.field == "":
		case !errors.As(err, &fe):
			t.Errorf("%s: %v, want a FieldError naming %q", c.name, err, c.field)
		case fe.Field != c.field || fe.Msg == "":
			t.Errorf("%s: %v, want a FieldError naming %q", c.name, err, c.field)
		}
	}
}

func TestAlertConditionHolds(t *testing.T) {
	for _, c := range []struct {
		op      string
		v       float64
		holds   []float64
		notHold []float64
	}{
		{">", 5, []float64{5.01, 100}, []float64{5, -1}},
		{">=", 5, []float64{5, 6}, []float64{4.99}},
		{"<", 1, []float64{0, -3}, []float64{1, 2}},
		{"<=", 1, []float64{1, 0}, []float64{1.5}},
		{"==", 0, []float64{0}, []float64{1, -1}},
		{"!=", 0, []float64{1, -1}, []float64{0}},
		{"~", 0, nil, []float64{0, 1}},
	} {
		cond := AlertCondition{Op: c.op, Value: c.v}
		for _, v := range c.holds {
			if !cond.Holds(v) {
				t.Errorf("%s %v does not hold for %v", c.op, c.v, v)
			}
		}
		for _, v := range c.notHold {
			if cond.Holds(v) {
				t.Errorf("%s %v holds for %v", c.op, c.v, v)
			}
		}
	}
}

func TestAlertTargetKindAndLabelKey(t *testing.T) {
	for _, c := range []struct {
		t          AlertTarget
		kind, addr string
	}{
		{AlertTarget{Webhook: "http://a"}, "webhook", "http://a"},
		{AlertTarget{Alertmanager: "http://b"}, "alertmanager", "http://b"},
		{AlertTarget{Slack: "http://c"}, "slack", "http://c"},
		{AlertTarget{}, "", ""},
	} {
		if c.t.Kind() != c.kind || c.t.URL() != c.addr {
			t.Errorf("%+v: kind %q url %q, want %q %q", c.t, c.t.Kind(), c.t.URL(), c.kind, c.addr)
		}
	}
	a := LabelKey(map[string]string{"host": "web1", "alertname": "x"})
	b := LabelKey(map[string]string{"alertname": "x", "host": "web1"})
	if a != b {
		t.Fatalf("LabelKey depends on order: %q vs %q", a, b)
	}
	// Names and values are quoted, so no value can pass for two labels.
	if LabelKey(map[string]string{"a": `1",b="2`}) == LabelKey(map[string]string{"a": "1", "b": "2"}) {
		t.Fatal("LabelKey of two label sets collides")
	}
}
