package loki

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// label is one stream label or structured metadata pair.
type label struct{ name, value string }

// errNoLabels is Loki's complaint about a stream without labels.
var errNoLabels = errors.New("at least one label pair is required per stream")

// parseLabels parses a stream's label string as Loki reads it (LogQL's
// stream selector with equality matchers only): `{a="b", c="d"}`. Names
// are Prometheus label names ([a-zA-Z_][a-zA-Z0-9_]*), or quoted strings
// as Prometheus 3 writes names outside that set; values are Go string
// literals, double-quoted with Go's escapes (what strconv.Quote writes,
// which Promtail's label sets use) or back-quoted raw strings. Blanks may
// surround every token and one trailing comma is allowed. A name given
// twice is an error; a label with an empty value is dropped (Prometheus:
// an empty value is an absent label), and a set left empty is an error.
// Values are made valid UTF-8 without NUL bytes. The result is sorted by
// name.
func parseLabels(s string) ([]label, error) {
	p := labelParser{s: s}
	out, err := p.parse()
	if err != nil {
		return nil, fmt.Errorf("parse labels %s: %w", clip(s), err)
	}
	return out, nil
}

type labelParser struct {
	s string
	i int
}

func (p *labelParser) blanks() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *labelParser) parse() ([]label, error) {
	p.blanks()
	if p.i >= len(p.s) || p.s[p.i] != '{' {
		return nil, fmt.Errorf("want '{' at %d", p.i)
	}
	p.i++
	out := make([]label, 0, 8)
	for {
		p.blanks()
		if p.i >= len(p.s) {
			return nil, errors.New("missing '}'")
		}
		if p.s[p.i] == '}' {
			p.i++
			break
		}
		name, err := p.name()
		if err != nil {
			return nil, err
		}
		p.blanks()
		if p.i >= len(p.s) || p.s[p.i] != '=' {
			return nil, fmt.Errorf("label %q: want '=' at %d (only equality matchers name a stream)", name, p.i)
		}
		p.i++
		if p.i < len(p.s) && (p.s[p.i] == '~' || p.s[p.i] == '=') {
			return nil, fmt.Errorf("label %q: want '=' at %d (only equality matchers name a stream)", name, p.i-1)
		}
		p.blanks()
		value, err := p.str()
		if err != nil {
			return nil, fmt.Errorf("label %q: %w", name, err)
		}
		out = append(out, label{name: name, value: value})
		p.blanks()
		if p.i < len(p.s) && p.s[p.i] == ',' {
			p.i++
			continue
		}
		if p.i < len(p.s) && p.s[p.i] == '}' {
			continue
		}
		return nil, fmt.Errorf("want ',' or '}' at %d", p.i)
	}
	p.blanks()
	if p.i != len(p.s) {
		return nil, fmt.Errorf("unexpected text after '}' at %d", p.i)
	}
	// Sorted (stable: the first of twins first) and checked for twins
	// before empty values are dropped: {a="", a="x"} is as wrong as
	// {a="y", a="x"}.
	slices.SortStableFunc(out, func(a, b label) int { return strings.Compare(a.name, b.name) })
	for i := 1; i < len(out); i++ {
		if out[i].name == out[i-1].name {
			return nil, fmt.Errorf("label %q given twice", out[i].name)
		}
	}
	out = slices.DeleteFunc(out, func(l label) bool { return l.value == "" })
	if len(out) == 0 {
		return nil, errNoLabels
	}
	return out, nil
}

// name reads a bare or quoted label name.
func (p *labelParser) name() (string, error) {
	if p.i < len(p.s) && (p.s[p.i] == '"' || p.s[p.i] == '`') {
		n, err := p.str()
		if err != nil {
			return "", fmt.Errorf("label name: %w", err)
		}
		if n == "" {
			return "", fmt.Errorf("empty label name at %d", p.i)
		}
		return n, nil
	}
	start := p.i
	for p.i < len(p.s) && isNameByte(p.s[p.i], p.i == start) {
		p.i++
	}
	if p.i == start {
		return "", fmt.Errorf("want a label name at %d", p.i)
	}
	return p.s[start:p.i], nil
}

func isNameByte(c byte, first bool) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || !first && c >= '0' && c <= '9'
}

// isLegacyName reports whether n can be written without quotes.
func isLegacyName(n string) bool {
	if n == "" {
		return false
	}
	for i := 0; i < len(n); i++ {
		if !isNameByte(n[i], i == 0) {
			return false
		}
	}
	return true
}

// str reads a double-quoted (Go escapes) or back-quoted string.
func (p *labelParser) str() (string, error) {
	if p.i >= len(p.s) {
		return "", errors.New("missing value")
	}
	start := p.i
	switch q := p.s[p.i]; q {
	case '`':
		end := strings.IndexByte(p.s[start+1:], '`')
		if end < 0 {
			return "", fmt.Errorf("unterminated string at %d", start)
		}
		p.i = start + 1 + end + 1
		return cleanText(p.s[start+1 : p.i-1]), nil
	case '"':
		escaped := false
		for j := start + 1; j < len(p.s); j++ {
			switch p.s[j] {
			case '\\':
				escaped = true
				j++
			case '\n':
				return "", fmt.Errorf("newline in string at %d", j)
			case '"':
				p.i = j + 1
				if !escaped {
					return cleanText(p.s[start+1 : j]), nil
				}
				v, err := strconv.Unquote(p.s[start:p.i])
				if err != nil {
					return "", fmt.Errorf("string at %d: %w", start, err)
				}
				return cleanText(v), nil
			}
		}
		return "", fmt.Errorf("unterminated string at %d", start)
	default:
		return "", fmt.Errorf("want a quoted value at %d", start)
	}
}

// cleanText makes s valid UTF-8 without NUL bytes (what the index takes).
func cleanText(s string) string {
	if strings.IndexByte(s, 0) >= 0 {
		s = strings.ReplaceAll(s, "\x00", "")
	}
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	return s
}

// canonical writes labels sorted by name as Prometheus does:
// {a="b", c="d"}, values (and names outside the bare set) quoted with
// strconv.Quote. It is the stream's identity, whichever way the client
// spelt or ordered its labels.
func canonical(ls []label) string {
	n := 2
	for _, l := range ls {
		n += len(l.name) + len(l.value) + 6
	}
	b := make([]byte, 0, n)
	b = append(b, '{')
	for i, l := range ls {
		if i > 0 {
			b = append(b, ", "...)
		}
		if isLegacyName(l.name) {
			b = append(b, l.name...)
		} else {
			b = strconv.AppendQuote(b, l.name)
		}
		b = append(b, '=')
		b = strconv.AppendQuote(b, l.value)
	}
	b = append(b, '}')
	return string(b)
}

// clip shortens s for an error message.
func clip(s string) string {
	const limit = 120
	if len(s) <= limit {
		return strconv.Quote(s)
	}
	return strconv.Quote(s[:limit]) + "…"
}
