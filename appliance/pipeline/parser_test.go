package pipeline

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// TestSourceParserAndTimezone: a source's parser and timezone as JSON
// (both forms of parser, round trips) and as Validate judges them, each
// refusal a FieldError naming the field.
func TestSourceParserAndTimezone(t *testing.T) {
	cases := []struct {
		json   string // the parser and timezone members
		field  string // "" = accepted
		errHas string
		spec   string // Parser.Spec when accepted
	}{
		{``, "", "", ""},
		{`"parser":"auto"`, "", "", ""},
		{`"parser":"nginx","timezone":"Asia/Shanghai"`, "", "", "nginx"},
		{`"parser":"apache","timezone":"UTC"`, "", "", "apache"},
		{`"parser":"syslog","timezone":"Local"`, "", "", "syslog"},
		{`"parser":"json"`, "", "", "json"},
		{`"parser":"logfmt"`, "", "", "logfmt"},
		{`"parser":"none"`, "", "", "none"},
		{`"parser":null`, "", "", ""},
		{`"parser":{"regex":"^(?P<ip>\\S+) (?P<status>\\d{3})"}`, "", "", `regex:^(?P<ip>\S+) (?P<status>\d{3})`},
		{`"parser":"grok"`, "parser", `"grok" is not one of auto, nginx, apache, syslog, json, logfmt, none`, ""},
		{`"parser":""`, "", "", ""},
		{`"parser":42`, "parser", "42 is neither a parser name nor", ""},
		{`"parser":["nginx"]`, "parser", "is neither a parser name nor", ""},
		{`"parser":{"regex":"(?P<x>"}`, "parser.regex", "invalid regular expression: error parsing regexp: missing closing )", ""},
		{`"parser":{"regex":"\\d+ (\\w+)"}`, "parser.regex", "has no named group", ""},
		{`"parser":{"regex":""}`, "parser", "regex must not be empty", ""},
		{`"parser":{"regex":"(?P<a>x)","name":"y"}`, "parser", `an object must be {"regex":"…"}`, ""},
		{`"parser":{}`, "parser", `an object must be {"regex":"…"}`, ""},
		{`"parser":{"regex":"(?=x)(?P<a>y)"}`, "parser.regex", "invalid or unsupported Perl syntax", ""},
		{`"timezone":"Mars/Olympus"`, "timezone", `"Mars/Olympus" is not a time zone`, ""},
		{`"timezone":"+08:00"`, "timezone", "is not a time zone", ""},
		{`"timezone":"../../../etc/passwd"`, "timezone", "is not a time zone", ""},
	}
	for _, c := range cases {
		body := `{"name":"a","paths":["/var/log/a.log"]`
		if c.json != "" {
			body += "," + c.json
		}
		body += "}"
		var src Source
		if err := json.Unmarshal([]byte(body), &src); err != nil {
			t.Errorf("%s: decode: %v", body, err)
			continue
		}
		err := src.Validate(nil)
		var fe *FieldError
		switch {
		case c.field == "" && err != nil:
			t.Errorf("%s: refused: %v", body, err)
			continue
		case c.field != "" && (!errors.As(err, &fe) || fe.Field != c.field || !strings.Contains(fe.Msg, c.errHas)):
			t.Errorf("%s: %v; want a FieldError on %s mentioning %q", body, err, c.field, c.errHas)
			continue
		case c.field != "":
			continue
		}
		if got := src.Parser.Spec(); got != c.spec {
			t.Errorf("%s: spec %q, want %q", body, got, c.spec)
		}
		// What is stored decodes to the same source.
		b, err := json.Marshal(src)
		if err != nil {
			t.Fatal(err)
		}
		var again Source
		if err := json.Unmarshal(b, &again); err != nil || !reflect.DeepEqual(again, src) {
			t.Errorf("%s: stored as %s, read back as %+v (%v)", body, b, again, err)
		}
		if src.Parser.IsZero() == strings.Contains(string(b), `"parser"`) {
			t.Errorf("%s: stored as %s (a default parser is omitted, another kept)", body, b)
		}
	}
}

// TestParserSpec: the record form of each parser reads back as it.
func TestParserSpec(t *testing.T) {
	for _, p := range []Parser{{}, {Name: "auto"}, {Name: "nginx"}, {Name: "none"}, {Regex: `(?P<a>regex:x)`}} {
		name, re, isRe := ParseParserSpec(p.Spec())
		want := p.Name
		if want == "" {
			want = ParserAuto
		}
		if isRe != (p.Regex != "") || re != p.Regex || (!isRe && name != want) {
			t.Errorf("%+v: spec %q read as %q %q %v", p, p.Spec(), name, re, isRe)
		}
	}
}
