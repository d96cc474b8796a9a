package loki

import (
	"strings"
	"testing"

	"github.com/prometheus/common/model"
)

func TestParseLabels(t *testing.T) {
	f := func(in string, want []label) {
		t.Helper()
		got, err := parseLabels(in)
		if err != nil {
			t.Errorf("parseLabels(%q): %v", in, err)
			return
		}
		if len(got) != len(want) {
			t.Errorf("parseLabels(%q) = %q, want %q", in, got, want)
			return
		}
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("parseLabels(%q) = %q, want %q", in, got, want)
				return
			}
		}
	}
	f(`{job="app"}`, []label{{"job", "app"}})
	f(`{job="app", host="web1"}`, []label{{"host", "web1"}, {"job", "app"}})
	f(" \t{ b = \"2\" ,a=\"1\", } \n", []label{{"a", "1"}, {"b", "2"}})
	f(`{a="x\"y\\z\n\t\u00e9\x41"}`, []label{{"a", "x\"y\\z\n\té" + "A"}})
	f("{a=`raw \\n \"q\"`}", []label{{"a", `raw \n "q"`}})
	f(`{a="{b=\"c\", d}"}`, []label{{"a", `{b="c", d}`}})
	f(`{_x1="v", X_="w"}`, []label{{"X_", "w"}, {"_x1", "v"}})
	f(`{"service.name"="api", a="1"}`, []label{{"a", "1"}, {"service.name", "api"}})
	f(`{a="", b="2"}`, []label{{"b", "2"}})         // an empty value is an absent label
	f(`{a="\xff\x00z"}`, []label{{"a", "\uFFFDz"}}) // made valid, NUL dropped
	f(`{a="日本語", b="x,y}=z"}`, []label{{"a", "日本語"}, {"b", "x,y}=z"}})

	bad := []string{
		``, `job="app"`, `{`, `{job="app"`, `{job="app",`, `{job}`, `{job=}`, `{job=app}`,
		`{job="app}`, `{job="app"}}`, `{job="app"} x`, `{1job="app"}`, `{job-x="app"}`,
		`{job!="app"}`, `{job=~"app"}`, `{job=="app"}`, `{job="a", job="b"}`, `{job="", job="b"}`,
		`{}`, `{a=""}`, `{job="app" host="x"}`, "{job=\"a\nb\"}", `{job="\q"}`, `{""="x"}`,
		"{a=`x}", `{a='x'}`, `{,}`, `{a="b",,}`,
	}
	for _, in := range bad {
		if got, err := parseLabels(in); err == nil {
			t.Errorf("parseLabels(%q) = %q, want an error", in, got)
		}
	}
}

// Label sets written the way Promtail writes them (Prometheus'
// model.LabelSet.String) parse back to the set, and canonical writes
// them byte for byte as Promtail did.
func TestLabelsAsPromtailWritesThem(t *testing.T) {
	sets := []model.LabelSet{
		{"job": "app", "host": "web1"},
		{"filename": `C:\logs\app "1".log`, "job": "x"},
		{"a": "line\nbreak\ttab\x01ctl", "b": "✓ ünï", "c": `back\slash`},
		{"z": "}", "y": "{", "x": `=",`},
	}
	for _, s := range sets {
		in := s.String()
		ls, err := parseLabels(in)
		if err != nil {
			t.Errorf("parse %s: %v", in, err)
			continue
		}
		if len(ls) != len(s) {
			t.Errorf("parse %s: %d labels, want %d", in, len(ls), len(s))
		}
		for _, l := range ls {
			if string(s[model.LabelName(l.name)]) != l.value {
				t.Errorf("parse %s: %s=%q, want %q", in, l.name, l.value, s[model.LabelName(l.name)])
			}
		}
		if got := canonical(ls); got != in {
			t.Errorf("canonical = %s, want %s", got, in)
		}
	}
}

// FuzzParseLabels: no input panics, and whatever parses has a canonical
// form that parses back to the same labels.
func FuzzParseLabels(f *testing.F) {
	for _, s := range []string{
		`{job="app", host="web1"}`, `{a="x\"y\\z\n"}`, "{a=`raw`}", `{"a.b"="c",}`, `{a="\u00e9\xff"}`, `{}`, `{a=b}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ls, err := parseLabels(s)
		if err != nil {
			return
		}
		if len(ls) == 0 {
			t.Fatalf("parseLabels(%q): no labels and no error", s)
		}
		c := canonical(ls)
		back, err := parseLabels(c)
		if err != nil {
			t.Fatalf("canonical %q of %q does not parse: %v", c, s, err)
		}
		if canonical(back) != c {
			t.Fatalf("canonical %q of %q parses to %q", c, s, canonical(back))
		}
		for i := 1; i < len(ls); i++ {
			if strings.Compare(ls[i-1].name, ls[i].name) >= 0 {
				t.Fatalf("parseLabels(%q) not sorted or with twins: %q", s, ls)
			}
		}
	})
}
