package index

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/logbox/logbox/appliance/pipeline"
)

// What the index offers log templates (appliance/patterns): the text of
// every matching line (ScanText), the _pattern:"TEMPLATE" filter, and the
// "QUERY | patterns" pipe's syntax (PatternsPipe). The index does not
// mine templates itself; it knows templates only through the
// TemplateFitter it is given (Config.Templates).

// TemplateFitter decides which lines fit a log template: it compiles the
// _pattern:"TEMPLATE" filter. appliance/patterns.Fitter implements it.
//
// A template is words separated by spaces. Its contract with the index:
// a word of a template that holds no "<*" appears as written, as a whole
// word between white space, in the text of every line that fits the
// template, so the index looks for those words first (candidate blocks,
// then each line's text) and asks fit only about the lines that hold
// them all.
type TemplateFitter interface {
	// FitTemplate returns a check of whether a line's text fits
	// template; the check is called from several goroutines at once.
	FitTemplate(template string) (fit func(text string) bool)
}

// patternField is the pseudo-field of the template filter.
const patternField = "_pattern"

// ScanWorkers is the number of goroutines ScanText calls its function
// from.
func (ix *Index) ScanWorkers() int { return workers() }

// ScanText calls each for every line matching query (no pipe) in [from,
// to) (zero ends are open), from up to ScanWorkers goroutines at once (w,
// below ScanWorkers, tells them apart), in no particular order, with the
// line's time (Unix ns) and text; text is valid only during the call. It
// returns the number of lines. A bad query is a *pipeline.QueryError.
func (ix *Index) ScanText(ctx context.Context, query string, from, to time.Time, each func(w int, ts int64, text string)) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	m, err := compile(query)
	if err != nil {
		return 0, err
	}
	lo, hi, err := timeRange(from, to)
	if err != nil {
		return 0, err
	}
	ix.searchMu.RLock()
	defer ix.searchMu.RUnlock()
	_, total, _, err := ix.run(ctx, searchOpts{m: m, from: lo, to: hi, count: true, text: true,
		each: func(w int, _ *block, _ int, ts int64, _ uint8, l *storedLine) {
			each(w, ts, l.Line)
		}})
	if err != nil {
		return 0, fmt.Errorf("scan %q: %w", query, err)
	}
	return total, nil
}

// patternNode compiles _pattern:"TEMPLATE": the template's words without
// "<*" (ASCII ones; see TemplateFitter) as phrases the line must hold,
// and the fit check, bound to the index's TemplateFitter when the query
// runs (bindTemplates).
func patternNode(template string) *node {
	var kids []*node
	for _, w := range splitSpace(template) {
		if strings.Contains(w, "<*") || !isASCII(w) {
			continue
		}
		ps := parts(w)
		if len(ps) == 0 {
			continue
		}
		seq := make([]termTest, len(ps))
		for i, p := range ps {
			seq[i] = partTest(p)
		}
		kids = append(kids, lineNode(seq))
	}
	kids = append(kids, &node{op: opFit, fk: fLine, name: template})
	return and(kids)
}

// patternSyntaxError answers a term, prefix, wildcard or regexp on
// _pattern: the filter takes a template.
func patternSyntaxError() error {
	return &pipeline.QueryError{Msg: patternField + ` takes a template in double quotes, e.g. _pattern:"user <*> logged in"`}
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// bindTemplates gives m's template filters their fit check. A query with
// one on an index without a TemplateFitter is a *pipeline.QueryError.
func (ix *Index) bindTemplates(m *matcher) error {
	var err error
	var walk func(n *node)
	walk = func(n *node) {
		if n.op == opFit && n.fit == nil {
			if ix.cfg.Templates == nil {
				err = &pipeline.QueryError{Msg: patternField + ": this process does not run the patterns engine"}
				return
			}
			n.fit = ix.cfg.Templates.FitTemplate(n.name)
		}
		for _, k := range n.kids {
			walk(k)
		}
	}
	walk(m.root)
	return err
}

// PatternsPipe recognizes a query with a patterns pipe: "QUERY | patterns"
// or "QUERY | patterns limit N" (or "… | patterns | limit N"). For any
// other query ok is false. For a malformed patterns pipe, or a bad QUERY,
// err is a *pipeline.QueryError. query is QUERY, trimmed; limit is N, 0
// when not given.
func PatternsPipe(q string) (query string, limit int, ok bool, err error) {
	qs, pipes, at := splitPipes(q)
	first := -1
	for k, p := range pipes {
		if strings.EqualFold(pipeHead(p), "patterns") {
			first = k
			break
		}
	}
	if first < 0 {
		return "", 0, false, nil
	}
	if first > 0 {
		return "", 0, true, &pipeline.QueryError{Msg: "patterns must be the first pipe (QUERY | patterns [limit N])", Pos: at[first] + 1}
	}
	if len(q) > MaxQueryBytes {
		return "", 0, true, &pipeline.QueryError{Msg: fmt.Sprintf("query is %d bytes; at most %d are allowed", len(q), MaxQueryBytes)}
	}
	for k, pipe := range pipes {
		toks, err := lexPipe(pipe, at[k])
		if err != nil {
			return "", 0, true, err
		}
		p := &pipeParser{toks: toks, end: at[k] + len(pipe)}
		if k == 0 {
			p.next() // patterns
		} else if t := p.next(); !strings.EqualFold(t.s, "limit") && !strings.EqualFold(t.s, "head") {
			return "", 0, true, &pipeline.QueryError{Msg: fmt.Sprintf("unknown pipe %q after patterns; only limit N may follow it", t.s), Pos: t.pos + 1}
		} else {
			p.i-- // the limit below
		}
		if p.i < len(p.toks) {
			if t := p.next(); !strings.EqualFold(t.s, "limit") && !strings.EqualFold(t.s, "head") {
				return "", 0, true, &pipeline.QueryError{Msg: fmt.Sprintf("unexpected %q; patterns takes only limit N", t.s), Pos: t.pos + 1}
			}
			t, err := p.word("a number")
			if err != nil {
				return "", 0, true, err
			}
			n, perr := strconv.Atoi(t.s)
			if perr != nil || n < 1 || n > MaxPatternsLimit {
				return "", 0, true, &pipeline.QueryError{Msg: fmt.Sprintf("limit must be a number from 1 to %d", MaxPatternsLimit), Pos: t.pos + 1}
			}
			if limit == 0 || n < limit {
				limit = n
			}
		}
		if p.i < len(p.toks) {
			return "", 0, true, p.errAt(fmt.Sprintf("unexpected %q", p.peek()))
		}
	}
	// Compiled as written, so that an error's position is in q.
	if _, err := compile(qs); err != nil {
		return "", 0, true, err
	}
	return strings.TrimSpace(qs), limit, true, nil
}

// pipeHead is the name a pipe starts with (its leading letters).
func pipeHead(p string) string {
	i := 0
	for i < len(p) && (p[i] >= 'a' && p[i] <= 'z' || p[i] >= 'A' && p[i] <= 'Z') {
		i++
	}
	return p[:i]
}

// MaxPatternsLimit is the largest N of "| patterns limit N".
const MaxPatternsLimit = 10000
