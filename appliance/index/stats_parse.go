package index

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/logbox/logbox/appliance/pipeline"
)

// Limits on a stats pipe.
const (
	// MaxStatsGroups bounds the groups a stats pipe keeps; lines of
	// groups past it are not counted and the answer says groups_capped.
	MaxStatsGroups = 10000
	MaxStatsFuncs  = 20
	MaxStatsBy     = 8
	// MaxStatsLimit bounds | limit N.
	MaxStatsLimit = 100000
)

// The pipe language (after a query, see splitPipes), as VictoriaLogs'
// LogsQL writes it:
//
//	| stats [by (f1, f2, _time:5m)] func, func … [by (…)]
//	| sort by (col [desc|asc], …)
//	| limit N          (also head N)
//
// func is count(), count(f) (lines with f), count_distinct(f), sum(f),
// avg(f), min(f), max(f), median(f), quantile(phi, f) with 0 <= phi <= 1,
// each optionally "as name". The stats pipe comes first and once; sort
// and limit act on its rows.

type statKind uint8

const (
	stCount statKind = iota
	stCountField
	stCountDistinct
	stSum
	stAvg
	stMin
	stMax
	stQuantile
)

var statNames = map[string]statKind{
	"count": stCount, "count_distinct": stCountDistinct, "sum": stSum, "avg": stAvg,
	"min": stMin, "max": stMax, "quantile": stQuantile, "median": stQuantile,
}

// statFunc is one function of a stats pipe.
type statFunc struct {
	kind  statKind
	field string  // the column (field name) it reads; "" for count()
	meta  byKind  // a top field it reads instead (count_distinct(host))
	phi   float64 // quantile
	name  string  // the answer's column
}

// numeric says whether the function reads numbers (else strings or nothing).
func (f *statFunc) numeric() bool {
	switch f.kind {
	case stSum, stAvg, stMin, stMax, stQuantile:
		return true
	}
	return false
}

type byKind uint8

const (
	byField byKind = iota
	byHost
	bySource
	bySourceName
	byLevel
	byTime
)

// groupBy is one "by" item.
type groupBy struct {
	name  string // the answer's column, as written
	kind  byKind
	field string // byField: the column
	step  int64  // byTime: bucket size in ns
}

type sortKey struct {
	col  int
	desc bool
}

// statsPlan is a parsed pipe chain.
type statsPlan struct {
	by    []groupBy
	funcs []statFunc
	sort  []sortKey
	// sorted says sort was given (else the default order, see order).
	sorted bool
	limit  int
}

func (p *statsPlan) columns() []string {
	cols := make([]string, 0, len(p.by)+len(p.funcs))
	for _, b := range p.by {
		cols = append(cols, b.name)
	}
	for _, f := range p.funcs {
		cols = append(cols, f.name)
	}
	return cols
}

// pipeTok is a token of a pipe: a word (letters, digits and _ . - @ *),
// or one of ( ) , :.
type pipeTok struct {
	s   string
	pos int // byte offset in the whole query
}

func lexPipe(s string, base int) ([]pipeTok, error) {
	var toks []pipeTok
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			i++
		case c == '(' || c == ')' || c == ',' || c == ':':
			toks = append(toks, pipeTok{s[i : i+1], base + i})
			i++
		case isWordByte(c) || c == '.' || c == '-' || c == '@' || c == '*':
			j := i
			for j < len(s) && (isWordByte(s[j]) || s[j] == '.' || s[j] == '-' || s[j] == '@' || s[j] == '*') {
				j++
			}
			toks = append(toks, pipeTok{s[i:j], base + i})
			i = j
		default:
			return nil, &pipeline.QueryError{Msg: fmt.Sprintf("unexpected %q in a pipe", rune(s[i])), Pos: base + i + 1}
		}
	}
	return toks, nil
}

// pipeParser reads the tokens of one pipe.
type pipeParser struct {
	toks []pipeTok
	i    int
	end  int // offset just past the pipe, for errors at its end
}

func (p *pipeParser) peek() string {
	if p.i < len(p.toks) {
		return p.toks[p.i].s
	}
	return ""
}

func (p *pipeParser) errAt(msg string) error {
	pos := p.end
	if p.i < len(p.toks) {
		pos = p.toks[p.i].pos
	}
	return &pipeline.QueryError{Msg: msg, Pos: pos + 1}
}

func (p *pipeParser) next() pipeTok {
	t := p.toks[p.i]
	p.i++
	return t
}

func (p *pipeParser) expect(s, what string) error {
	if p.peek() != s {
		if p.i >= len(p.toks) {
			return p.errAt(fmt.Sprintf("expected %s, the pipe ends", what))
		}
		return p.errAt(fmt.Sprintf("expected %s, found %q", what, p.peek()))
	}
	p.i++
	return nil
}

func (p *pipeParser) word(what string) (pipeTok, error) {
	if t := p.peek(); t == "" || t == "(" || t == ")" || t == "," || t == ":" {
		if t == "" {
			return pipeTok{}, p.errAt(fmt.Sprintf("expected %s, the pipe ends", what))
		}
		return pipeTok{}, p.errAt(fmt.Sprintf("expected %s, found %q", what, t))
	}
	return p.next(), nil
}

// parseStatsPipes parses the pipes splitPipes cut off a query.
func parseStatsPipes(pipes []string, at []int) (*statsPlan, error) {
	plan := &statsPlan{}
	for k, pipe := range pipes {
		toks, err := lexPipe(pipe, at[k])
		if err != nil {
			return nil, err
		}
		p := &pipeParser{toks: toks, end: at[k] + len(pipe)}
		if len(toks) == 0 {
			return nil, &pipeline.QueryError{Msg: "empty pipe", Pos: at[k] + 1}
		}
		head := p.next()
		switch strings.ToLower(head.s) {
		case "stats":
			if k != 0 {
				return nil, &pipeline.QueryError{Msg: "stats must be the first pipe, and come once", Pos: head.pos + 1}
			}
			err = p.stats(plan)
		case "sort":
			if k == 0 {
				return nil, &pipeline.QueryError{Msg: "sort needs a stats pipe before it (| stats … | sort by (…))", Pos: head.pos + 1}
			}
			err = p.sort(plan)
		case "limit", "head":
			if k == 0 {
				return nil, &pipeline.QueryError{Msg: head.s + " needs a stats pipe before it (| stats … | limit N)", Pos: head.pos + 1}
			}
			var t pipeTok
			if t, err = p.word("a number"); err == nil {
				n, perr := strconv.Atoi(t.s)
				if perr != nil || n < 0 || n > MaxStatsLimit {
					return nil, &pipeline.QueryError{Msg: fmt.Sprintf("limit must be a number from 0 to %d", MaxStatsLimit), Pos: t.pos + 1}
				}
				if plan.limit == 0 || n < plan.limit {
					plan.limit = n
				}
				if n == 0 {
					plan.limit = -1 // limit 0: no rows
				}
			}
		default:
			return nil, &pipeline.QueryError{Msg: fmt.Sprintf("unknown pipe %q; pipes are stats, sort, limit", head.s), Pos: head.pos + 1}
		}
		if err != nil {
			return nil, err
		}
		if p.i < len(p.toks) {
			return nil, p.errAt(fmt.Sprintf("unexpected %q", p.peek()))
		}
	}
	if len(plan.funcs) == 0 {
		return nil, &pipeline.QueryError{Msg: "the pipes need a stats pipe first", Pos: at[0] + 1}
	}
	return plan, nil
}

func (p *pipeParser) stats(plan *statsPlan) error {
	if strings.EqualFold(p.peek(), "by") {
		if err := p.byList(plan); err != nil {
			return err
		}
	}
	for {
		f, err := p.function()
		if err != nil {
			return err
		}
		if len(plan.funcs) == MaxStatsFuncs {
			return p.errAt(fmt.Sprintf("at most %d functions in one stats pipe", MaxStatsFuncs))
		}
		plan.funcs = append(plan.funcs, f)
		if p.peek() != "," {
			break
		}
		p.i++
	}
	if strings.EqualFold(p.peek(), "by") {
		if len(plan.by) > 0 {
			return p.errAt("by is given twice")
		}
		if err := p.byList(plan); err != nil {
			return err
		}
	}
	seen := map[string]bool{}
	for _, c := range plan.columns() {
		if seen[c] {
			return &pipeline.QueryError{Msg: fmt.Sprintf("two columns are named %q; name one with \"as\"", c)}
		}
		seen[c] = true
	}
	return nil
}

func (p *pipeParser) byList(plan *statsPlan) error {
	p.i++ // by
	paren := p.peek() == "("
	if paren {
		p.i++
	}
	for {
		t, err := p.word("a field to group by")
		if err != nil {
			return err
		}
		g := groupBy{name: t.s}
		switch t.s {
		case "_time":
			g.kind = byTime
			if p.peek() != ":" {
				return p.errAt("_time needs a bucket size, e.g. _time:5m")
			}
			p.i++
			d, err := p.word("a bucket size such as 5m")
			if err != nil {
				return err
			}
			step, ok := parseStep(d.s)
			if !ok {
				return &pipeline.QueryError{Msg: fmt.Sprintf("%q is not a bucket size; write e.g. 10s, 5m, 1h, 1d", d.s), Pos: d.pos + 1}
			}
			g.step = int64(step)
			g.name = "_time"
		default:
			kind, field, err := statField(t)
			if err != nil {
				return err
			}
			g.kind, g.field = kind, field
		}
		if len(plan.by) == MaxStatsBy {
			return &pipeline.QueryError{Msg: fmt.Sprintf("at most %d fields to group by", MaxStatsBy), Pos: t.pos + 1}
		}
		plan.by = append(plan.by, g)
		if !paren || p.peek() != "," {
			break
		}
		p.i++
	}
	if paren {
		return p.expect(")", `")" to close by (…)`)
	}
	return nil
}

// parseStep reads a bucket size: a Go duration (5m, 1h30m, 500ms) or a
// whole number of days (1d) or weeks (1w).
func parseStep(s string) (time.Duration, bool) {
	d, err := time.ParseDuration(s)
	if err != nil && len(s) > 1 {
		n, nerr := strconv.Atoi(s[:len(s)-1])
		switch {
		case nerr != nil || n <= 0 || n > 3660:
		case s[len(s)-1] == 'd':
			d, err = time.Duration(n)*day, nil
		case s[len(s)-1] == 'w':
			d, err = time.Duration(n)*7*day, nil
		}
	}
	return d, err == nil && d >= time.Millisecond
}

// statField resolves a field named in a pipe: host, source, source_name
// and level are the line's own; anything else (NAME, fields.NAME or
// num.NAME) is a parsed or source field.
func statField(t pipeTok) (byKind, string, error) {
	switch t.s {
	case "host":
		return byHost, "", nil
	case "source":
		return bySource, "", nil
	case "source_name":
		return bySourceName, "", nil
	case "level":
		return byLevel, "", nil
	case "line", "_msg", "ts", "ingested", "offset", "flags", "file_id", "_id", "_time":
		return 0, "", &pipeline.QueryError{Msg: fmt.Sprintf("%s cannot be used here; use host, source, source_name, level or a field", t.s), Pos: t.pos + 1}
	}
	name := t.s
	if n, ok := strings.CutPrefix(name, "fields."); ok {
		name = n
	} else if n, ok := strings.CutPrefix(name, "num."); ok {
		name = n
	}
	if !fieldNameRE.MatchString(name) {
		return 0, "", &pipeline.QueryError{Msg: fmt.Sprintf("%q is not a field name", t.s), Pos: t.pos + 1}
	}
	return byField, name, nil
}

func (p *pipeParser) function() (statFunc, error) {
	t, err := p.word("a function such as count()")
	if err != nil {
		return statFunc{}, err
	}
	kind, ok := statNames[strings.ToLower(t.s)]
	if !ok {
		return statFunc{}, &pipeline.QueryError{Msg: fmt.Sprintf("unknown function %q; use count, count_distinct, sum, avg, min, max, median, quantile", t.s), Pos: t.pos + 1}
	}
	f := statFunc{kind: kind}
	if err := p.expect("(", `"(" after `+t.s); err != nil {
		return f, err
	}
	var args []pipeTok
	for p.peek() != ")" {
		if len(args) > 0 {
			if err := p.expect(",", `"," or ")"`); err != nil {
				return f, err
			}
		}
		a, err := p.word("an argument")
		if err != nil {
			return f, err
		}
		args = append(args, a)
	}
	p.i++ // )
	argStr := make([]string, len(args))
	for i, a := range args {
		argStr[i] = a.s
	}
	f.name = strings.ToLower(t.s) + "(" + strings.Join(argStr, ", ") + ")"
	want := 1
	switch {
	case kind == stCount && len(args) == 0:
		want = 0
	case kind == stCount:
		f.kind = stCountField
	case kind == stQuantile && strings.EqualFold(t.s, "quantile"):
		want = 2
	case kind == stQuantile:
		f.phi = 0.5 // median
	}
	if len(args) != want {
		return f, &pipeline.QueryError{Msg: fmt.Sprintf("%s takes %d argument(s)", f.name, want), Pos: t.pos + 1}
	}
	if want == 2 {
		phi, err := strconv.ParseFloat(args[0].s, 64)
		if err != nil || phi < 0 || phi > 1 {
			return f, &pipeline.QueryError{Msg: "quantile's first argument is a number from 0 to 1, e.g. quantile(0.99, request_time)", Pos: args[0].pos + 1}
		}
		f.phi = phi
		args = args[1:]
	}
	if len(args) == 1 {
		kind, field, err := statField(args[0])
		if err != nil {
			return f, err
		}
		if kind != byField && f.numeric() {
			return f, &pipeline.QueryError{Msg: fmt.Sprintf("%s is not a number field", args[0].s), Pos: args[0].pos + 1}
		}
		f.meta, f.field = kind, field
	}
	if strings.EqualFold(p.peek(), "as") {
		p.i++
		a, err := p.word("a column name after as")
		if err != nil {
			return f, err
		}
		f.name = a.s
	}
	return f, nil
}

func (p *pipeParser) sort(plan *statsPlan) error {
	if !strings.EqualFold(p.peek(), "by") {
		return p.errAt(`expected "by" after sort`)
	}
	p.i++
	if err := p.expect("(", `"(" after sort by`); err != nil {
		return err
	}
	cols := plan.columns()
	plan.sort = plan.sort[:0]
	plan.sorted = true
	for p.peek() != ")" {
		if len(plan.sort) > 0 {
			if err := p.expect(",", `"," or ")"`); err != nil {
				return err
			}
		}
		t, err := p.word("a column to sort by")
		if err != nil {
			return err
		}
		name := t.s
		if p.peek() == "(" { // a function as written: count(), avg(rt)
			p.i++
			var args []string
			for p.peek() != ")" {
				if len(args) > 0 {
					if err := p.expect(",", `"," or ")"`); err != nil {
						return err
					}
				}
				a, err := p.word("an argument")
				if err != nil {
					return err
				}
				args = append(args, a.s)
			}
			p.i++
			name = strings.ToLower(name) + "(" + strings.Join(args, ", ") + ")"
		}
		col := -1
		for i, c := range cols {
			if c == name {
				col = i
			}
		}
		if col < 0 {
			return &pipeline.QueryError{Msg: fmt.Sprintf("no column %q to sort by; the columns are %s", name, strings.Join(cols, ", ")), Pos: t.pos + 1}
		}
		k := sortKey{col: col}
		switch strings.ToLower(p.peek()) {
		case "desc":
			k.desc = true
			p.i++
		case "asc":
			p.i++
		}
		plan.sort = append(plan.sort, k)
	}
	p.i++
	if len(plan.sort) == 0 {
		return p.errAt("sort by () names no column")
	}
	return nil
}
