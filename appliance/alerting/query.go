package alerting

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/logbox/logbox/appliance/pipeline"
)

// group is one group of a rule's answer: its by values, in the answer's
// column order, and its value (ok false: the group has no value, e.g. the
// avg of a field no line of it had; its condition does not hold).
type group struct {
	by    []byValue
	value float64
	ok    bool
}

type byValue struct{ name, value string }

// errNoPatterns is a new-patterns rule's error when no patterns function
// is configured.
var errNoPatterns = errors.New("patterns not available")

// query runs the rule once over [now-window, now) and returns its groups.
//
// A query without a pipe is asked as QUERY | stats count(): one group,
// the number of matching lines. With a pipe, each row of the answer is a
// group, labelled by its by values, its value the rule's Column (default
// the first function column); a pipe without by whose range has no line
// answers no row, which counts as one group of value 0 when the column is
// a count and as one group without a value otherwise. A new-patterns rule
// has one group per new template, labelled pattern, of value 1.
func (e *Evaluator) query(ctx context.Context, r *pipeline.AlertRule, now time.Time) ([]group, error) {
	_, window, _, compare := r.Durations()
	from := now.Add(-window)
	if r.NewPatterns {
		if e.cfg.NewPatterns == nil {
			return nil, errNoPatterns
		}
		pats, err := e.cfg.NewPatterns(ctx, r.Query, from, now, from.Add(-compare), from)
		if err != nil {
			return nil, fmt.Errorf("new patterns: %w", err)
		}
		gs := make([]group, 0, len(pats))
		for _, p := range pats {
			gs = append(gs, group{by: []byValue{{"pattern", p}}, value: 1, ok: true})
		}
		return gs, nil
	}
	_, pipes := splitPipes(r.Query)
	if len(pipes) == 0 {
		res, err := e.cfg.Querier.StatsQuery(ctx, pipeline.StatsRequest{Query: strings.TrimRight(r.Query, " \t\r\n") + " | stats count()", From: from, To: now})
		if err != nil {
			return nil, err
		}
		return []group{{value: float64(res.Total), ok: true}}, nil
	}
	res, err := e.cfg.Querier.StatsQuery(ctx, pipeline.StatsRequest{Query: r.Query, From: from, To: now})
	if err != nil {
		return nil, err
	}
	nBy := res.By
	if nBy < 0 || len(res.Columns) <= nBy {
		return nil, fmt.Errorf("the answer's columns %q do not fit the stats pipe %q (%d by columns)", res.Columns, pipes[0], nBy)
	}
	col := nBy
	if r.Column != "" {
		col = slices.Index(res.Columns, r.Column)
		if col < 0 {
			return nil, fmt.Errorf("column %q is not in the answer; its columns are %s", r.Column, strings.Join(res.Columns, ", "))
		}
	}
	gs := make([]group, 0, len(res.Rows))
	for _, row := range res.Rows {
		if len(row) != len(res.Columns) {
			return nil, fmt.Errorf("a row of %d cells in an answer of %d columns", len(row), len(res.Columns))
		}
		g := group{by: make([]byValue, nBy)}
		for i := range nBy {
			g.by[i] = byValue{res.Columns[i], cellString(row[i])}
		}
		g.value, g.ok = cellNumber(row[col])
		gs = append(gs, g)
	}
	return gs, nil
}

// cellNumber reads an answer's cell as a number: the index answers
// uint64 and float64, an answer that came through JSON float64 or
// json.Number; a by column's numeric string is read too. nil (no value)
// and anything else is not a number.
func cellNumber(v any) (float64, bool) {
	switch v := v.(type) {
	case float64:
		return v, true
	case uint64:
		return float64(v), true
	case int64:
		return float64(v), true
	case int:
		return float64(v), true
	case json.Number:
		f, err := v.Float64()
		return f, err == nil
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		return f, err == nil
	}
	return 0, false
}

func cellString(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case nil:
		return ""
	}
	return fmt.Sprint(v)
}

// splitPipes cuts a query at its first pipe (pipeline.SplitPipes, as
// the index reads it); pipes are the pipes' texts, trimmed.
func splitPipes(s string) (q string, pipes []string) {
	q, pipes, _ = pipeline.SplitPipes(s)
	return q, pipes
}

// labelName turns a by column's name into a label name as Prometheus
// allows them ([a-zA-Z_][a-zA-Z0-9_]*): fields.NAME and num.NAME lose the
// prefix, other bytes become _.
func labelName(col string) string {
	if n, ok := strings.CutPrefix(col, "fields."); ok {
		col = n
	} else if n, ok := strings.CutPrefix(col, "num."); ok {
		col = n
	}
	b := []byte(col)
	for i, c := range b {
		switch {
		case c == '_', c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			b[i] = '_'
		}
	}
	if len(b) == 0 {
		return "_"
	}
	return string(b)
}

// instanceSearch is the query that finds a group's lines: the rule's
// query without its pipes, and each by value as a field:"value" term
// (a _time bucket is not a term: the link's range covers it). A query
// that is only * is left out when there are terms.
func instanceSearch(query string, by []byValue) string {
	q, _ := splitPipes(query)
	q = strings.TrimSpace(q)
	var terms []string
	for _, b := range by {
		if b.name == "_time" {
			continue
		}
		name := b.name
		if n, ok := strings.CutPrefix(name, "num."); ok {
			name = n
		}
		v := strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(b.value)
		terms = append(terms, name+`:"`+v+`"`)
	}
	if len(terms) == 0 {
		return q
	}
	t := strings.Join(terms, " AND ")
	if q == "" || q == "*" {
		return t
	}
	return "(" + q + ") AND " + t
}

// pageLink is the page's address of search over [from, to]: base (the
// external URL) + /?q=…&from=…&to=… (the page reads q, from and to from
// its URL). The range is widened to whole seconds, so it holds every
// line of [from, to].
func pageLink(base, search string, from, to time.Time) string {
	to = to.Add(time.Second - 1)
	return strings.TrimRight(base, "/") + "/?q=" + url.QueryEscape(search) +
		"&from=" + url.QueryEscape(from.UTC().Format(time.RFC3339)) +
		"&to=" + url.QueryEscape(to.UTC().Format(time.RFC3339))
}
