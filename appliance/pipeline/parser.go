package pipeline

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Parser names. The index implements them (appliance/index/parsers.go).
const (
	ParserAuto   = "auto"   // per line: JSON, syslog, access log, else text with key=value pairs
	ParserNginx  = "nginx"  // access log: common/combined log format, nginx's field names
	ParserApache = "apache" // the same layout as nginx
	ParserSyslog = "syslog" // RFC 5424, RFC 3164 (with or without PRI), rsyslog's file formats
	ParserJSON   = "json"   // a JSON object per line
	ParserLogfmt = "logfmt" // key=value pairs
	ParserNone   = "none"   // no fields from the line (time and level are still found)
)

// ParserNames lists the named parsers, auto first.
var ParserNames = []string{ParserAuto, ParserNginx, ParserApache, ParserSyslog, ParserJSON, ParserLogfmt, ParserNone}

// parserRegexPrefix starts the record form of a regex parser.
const parserRegexPrefix = "regex:"

// Parser says how the index derives fields from a source's lines. As JSON
// it is a string, one of ParserNames, or an object {"regex":"…"}: an RE2
// expression whose named groups are the fields. The zero value is auto.
type Parser struct {
	// Name is one of ParserNames; "" means auto. Empty when Regex is set.
	Name string
	// Regex is the expression of a regex parser.
	Regex string
	// bad says why the JSON was neither form; Validate reports it.
	bad string
}

// IsZero reports the default parser, which a source's JSON omits.
func (p Parser) IsZero() bool { return p == Parser{} }

// MarshalJSON writes the name as a string, or {"regex":"…"}.
func (p Parser) MarshalJSON() ([]byte, error) {
	if p.Regex != "" {
		return json.Marshal(struct {
			Regex string `json:"regex"`
		}{p.Regex})
	}
	if p.Name == "" {
		return json.Marshal(ParserAuto)
	}
	return json.Marshal(p.Name)
}

// UnmarshalJSON reads either form. A value of another shape is kept as
// an invalid parser rather than failing the decode, so Validate can name
// the field ("parser") in its error.
func (p *Parser) UnmarshalJSON(b []byte) error {
	*p = Parser{}
	b = bytes.TrimSpace(b)
	switch {
	case len(b) > 0 && b[0] == '"':
		return json.Unmarshal(b, &p.Name)
	case len(b) > 0 && b[0] == '{':
		var obj struct {
			Regex *string `json:"regex"`
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&obj); err != nil || obj.Regex == nil {
			p.bad = `an object must be {"regex":"…"} and nothing else`
			return nil
		}
		p.Regex = *obj.Regex
		if p.Regex == "" {
			p.bad = "regex must not be empty"
		}
		return nil
	case string(b) == "null":
		return nil
	}
	p.bad = fmt.Sprintf("%s is neither a parser name nor {\"regex\":\"…\"}", b)
	return nil
}

func (p Parser) validate() error {
	if p.bad != "" {
		return &FieldError{"parser", p.bad}
	}
	if p.Regex != "" {
		re, err := regexp.Compile(p.Regex)
		if err != nil {
			return &FieldError{"parser.regex", "invalid regular expression: " + err.Error()}
		}
		if !slices.ContainsFunc(re.SubexpNames(), func(n string) bool { return n != "" }) {
			return &FieldError{"parser.regex", `has no named group: name the parts that are fields, like (?P<status>\d{3})`}
		}
		return nil
	}
	if p.Name != "" && !slices.Contains(ParserNames, p.Name) {
		return &FieldError{"parser", fmt.Sprintf("%q is not one of %s, or {\"regex\":\"…\"}", p.Name, strings.Join(ParserNames, ", "))}
	}
	return nil
}

// Spec is the parser as a record carries it (Record.Parser): "" for auto,
// the name of another, or "regex:" and the expression.
func (p Parser) Spec() string {
	switch {
	case p.Regex != "":
		return parserRegexPrefix + p.Regex
	case p.Name == ParserAuto:
		return ""
	}
	return p.Name
}

// ParseParserSpec reads a Record.Parser: the name of a parser ("" is
// auto), or the expression of a regex parser (isRegex).
func ParseParserSpec(spec string) (name string, regex string, isRegex bool) {
	if re, ok := strings.CutPrefix(spec, parserRegexPrefix); ok {
		return "", re, true
	}
	if spec == "" {
		return ParserAuto, "", false
	}
	return spec, "", false
}
