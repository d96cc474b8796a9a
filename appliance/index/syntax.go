package index

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/blevesearch/bleve/v2/search/query"

	"github.com/logbox/logbox/appliance/pipeline"
)

// The boolean query syntax: Lucene/KQL operators in front of Bleve's
// query-string syntax.
//
//	a b          either (the implicit operator is OR, as before)
//	+a -b        a must, b must not (as before)
//	a OR b       a || b: either
//	a AND b      a && b: both
//	NOT a        !a: not a (in a list of clauses, like -a)
//	( … )        a group; +( … ), -( … ), NOT ( … ) apply to it whole
//	f:(a OR b)   the field applies to every clause of the group
//
// Precedence is NOT, then AND, then OR (and the implicit operator): a OR b
// AND c is a OR (b AND c). Only upper-case AND, OR and NOT are operators
// (as Lucene has it): and, or, not stay words, so that an older query
// that searched for the word "not" still does. A ( groups where a clause
// starts; inside a word (getUser(42)) it is text, as is a ) that closes a
// ( of the same word.
//
// The leaves (words, "phrases", field:value, ranges, /regexps/,
// wildcards, fuzzy~1, boosts^2) are cut where Bleve's own lexer would cut
// them and each is parsed by Bleve's parser; a list of clauses is put
// together as Bleve's query-string parser does (a BooleanQuery of must,
// should and must-not clauses), so a query written without the new
// operators builds the same tree as before and means exactly what it did.

// synErr is a syntax error at byte offset at of the query.
func synErr(at int, format string, args ...any) error {
	return &pipeline.QueryError{Msg: fmt.Sprintf(format, args...), Pos: at + 1}
}

// maxTreeDepth bounds the depth of the query tree the syntax builds: each
// level of parentheses adds at most four (a boolean, its clause list, a
// negation's boolean and its clause list: a OR NOT ( … )), a leaf three
// more. (NOT NOT a is a: a chain of NOTs adds nothing.)
const maxTreeDepth = 4*MaxQueryDepth + 6

// parseBoolean parses s (no pipes; see splitPipes) into a Bleve query
// tree. Errors are *pipeline.QueryError with the position of the fault.
func parseBoolean(s string) (query.Query, error) {
	p := &boolParser{s: s}
	q, err := p.list(0, "")
	if err != nil {
		return nil, err
	}
	if p.pos < len(s) {
		// list stops only at the end or at a ) it may not take.
		return nil, synErr(p.pos, "this ) closes no (")
	}
	return q, nil
}

type boolParser struct {
	s     string
	pos   int
	depth int // open groups
}

// clause is one item of a list: its query and how it is joined.
type clause struct {
	q   query.Query
	mod int // 0 should, '+' must, '-' must not
	// not: a NOT or ! made it; orNext: an explicit OR joins it to a
	// neighbour. Such a clause is a true negation (a OR NOT b is a or
	// not b); joined implicitly it is Lucene's -b (a NOT b is a -b).
	not, orNext bool
}

// skipSpace moves past white space.
func (p *boolParser) skipSpace() {
	for p.pos < len(p.s) && isSpaceAt(p.s, p.pos) {
		_, n := utf8.DecodeRuneInString(p.s[p.pos:])
		p.pos += n
	}
}

// Operator words and signs, as the next token; "" when the next token is
// not one.
func (p *boolParser) peekOp() string {
	rest := p.s[p.pos:]
	for _, op := range []string{"AND", "OR", "NOT", "&&", "||"} {
		if strings.HasPrefix(rest, op) && endsToken(rest[len(op):]) {
			return op
		}
	}
	if strings.HasPrefix(rest, "!") && !strings.HasPrefix(rest, "!=") {
		return "!"
	}
	return ""
}

// endsToken reports whether an operator word followed by rest stands alone.
func endsToken(rest string) bool {
	if rest == "" {
		return true
	}
	c := rest[0]
	return isBlank(c) || c == '(' || c == ')'
}

// list parses clauses joined by OR, || or nothing, up to the end or a )
// that closes the group opened at open-1 (open 0: the top level). field,
// when set, is the field of an enclosing field:( … ) group.
func (p *boolParser) list(open int, field string) (query.Query, error) {
	var items []clause
	orBefore := false
	for {
		p.skipSpace()
		if p.pos >= len(p.s) || p.s[p.pos] == ')' {
			break
		}
		if op := p.peekOp(); isBinaryOp(op) {
			at := p.pos
			if len(items) == 0 {
				return nil, synErr(at, "%s needs a clause before it", op)
			}
			p.pos += len(op)
			if err := p.needClause(op, at); err != nil {
				return nil, err
			}
			if op == "OR" || op == "||" {
				items[len(items)-1].orNext = true
				orBefore = true
				continue
			}
			// AND binds the last clause to the next ones.
			last := items[len(items)-1]
			items = items[:len(items)-1]
			c, err := p.and(last, op, at, field)
			if err != nil {
				return nil, err
			}
			items = append(items, c)
			continue
		}
		c, err := p.unary(field)
		if err != nil {
			return nil, err
		}
		// An AND right after binds this clause first.
		p.skipSpace()
		if op := p.peekOp(); op == "AND" || op == "&&" {
			at := p.pos
			p.pos += len(op)
			if c, err = p.and(c, op, at, field); err != nil {
				return nil, err
			}
		}
		c.orNext = orBefore
		orBefore = false
		items = append(items, c)
	}
	if len(items) == 0 {
		if open > 0 && p.pos >= len(p.s) {
			return nil, synErr(open-1, "this ( is never closed")
		}
		if open > 0 {
			return nil, synErr(open-1, "empty group ( )")
		}
		return query.NewMatchNoneQuery(), nil
	}
	if open > 0 && len(items) == 1 && items[0].mod == 0 {
		return items[0].q, nil // (a) is a
	}
	b := query.NewBooleanQueryForQueryString(nil, nil, nil)
	for _, c := range items {
		switch {
		case c.not && c.mod == '-' && c.orNext:
			b.AddShould(query.NewBooleanQueryForQueryString(nil, nil, []query.Query{c.q}))
		case c.mod == '+':
			b.AddMust(c.q)
		case c.mod == '-':
			b.AddMustNot(c.q)
		default:
			b.AddShould(c.q)
		}
	}
	return b, nil
}

// needClause moves past white space after the operator op (at its
// position at) and checks that a clause follows: not the end, a ) or a
// binary operator.
func (p *boolParser) needClause(op string, at int) error {
	p.skipSpace()
	if p.pos >= len(p.s) || p.s[p.pos] == ')' {
		return synErr(at, "%s needs a clause after it", op)
	}
	if next := p.peekOp(); isBinaryOp(next) {
		return synErr(p.pos, "%s right after %s: a clause is missing between them", next, op)
	}
	return nil
}

// isBinaryOp reports whether op joins two clauses (OR, ||, AND, &&).
func isBinaryOp(op string) bool { return op == "OR" || op == "||" || op == "AND" || op == "&&" }

// and parses the clauses after an AND at position at (first is the one
// before it), and further ANDs, into one must clause.
func (p *boolParser) and(first clause, op string, at int, field string) (clause, error) {
	ops := []clause{first}
	for {
		if err := p.needClause(op, at); err != nil {
			return clause{}, err
		}
		c, err := p.unary(field)
		if err != nil {
			return clause{}, err
		}
		ops = append(ops, c)
		p.skipSpace()
		if op = p.peekOp(); op != "AND" && op != "&&" {
			break
		}
		at = p.pos
		p.pos += len(op)
	}
	b := query.NewBooleanQueryForQueryString(nil, nil, nil)
	for _, c := range ops {
		if c.mod == '-' {
			b.AddMustNot(c.q)
		} else {
			b.AddMust(c.q)
		}
	}
	// Joined to its neighbours as any clause is: a b AND c is a OR (b AND c).
	return clause{q: b}, nil
}

// unary parses NOT, !, + and - before a clause, and the clause.
func (p *boolParser) unary(field string) (clause, error) {
	p.skipSpace()
	at := p.pos
	if op := p.peekOp(); op == "NOT" || op == "!" {
		p.pos += len(op)
		if err := p.needClause(op, at); err != nil {
			return clause{}, err
		}
		c, err := p.unary(field)
		if err != nil {
			return clause{}, err
		}
		if c.mod == '-' { // NOT -a, NOT NOT a: a
			return clause{q: c.q, mod: '+'}, nil
		}
		return clause{q: c.q, mod: '-', not: true}, nil
	}
	if c := p.s[p.pos]; c == '+' || c == '-' {
		p.pos++
		p.skipSpace()
		if p.pos >= len(p.s) || p.s[p.pos] == ')' {
			return clause{}, synErr(at, "%c needs a clause after it", c)
		}
		if op := p.peekOp(); op != "" {
			return clause{}, synErr(p.pos, "%s right after %c", op, c)
		}
		q, err := p.primary(field)
		if err != nil {
			return clause{}, err
		}
		return clause{q: q, mod: int(c)}, nil
	}
	q, err := p.primary(field)
	if err != nil {
		return clause{}, err
	}
	return clause{q: q}, nil
}

// primary parses a group, a field group or a leaf.
func (p *boolParser) primary(field string) (query.Query, error) {
	if p.s[p.pos] == '(' {
		return p.group(field)
	}
	lf, err := p.leaf()
	if err != nil {
		return nil, err
	}
	if lf.group {
		if field != "" {
			return nil, synErr(lf.start, "a field group inside the field group %s:( … )", field)
		}
		return p.group(lf.text[:len(lf.text)-1])
	}
	text, at := lf.text, lf.start
	if field != "" {
		if lf.field {
			return nil, synErr(lf.start, "%s names a field inside the field group %s:( … )", lf.text, field)
		}
		text = field + ":" + text
		at -= len(field) + 1
	}
	if text == "*" {
		return query.NewMatchAllQuery(), nil
	}
	return leafQuery(text, lf.start, at)
}

// group parses ( … ) at p.pos.
func (p *boolParser) group(field string) (query.Query, error) {
	open := p.pos
	if p.depth >= MaxQueryDepth {
		return nil, synErr(open, "parentheses nested more than %d deep", MaxQueryDepth)
	}
	p.depth++
	p.pos++
	q, err := p.list(open+1, field)
	if err != nil {
		return nil, err
	}
	if p.pos >= len(p.s) {
		return nil, synErr(open, "this ( is never closed")
	}
	p.pos++ // )
	p.depth--
	return q, nil
}

// leafQuery parses one leaf with Bleve's parser; errors point at start
// (text[k] is the query's byte at+k: a field group's field is put before
// a leaf).
func leafQuery(text string, start, at int) (query.Query, error) {
	q, err := query.NewQueryStringQuery(text).Parse()
	if err != nil {
		msg := strings.TrimPrefix(err.Error(), "parse error: ")
		if t := strings.TrimRight(text, " "); t != "" && strings.ContainsRune(":<>=", rune(t[len(t)-1])) {
			// Where the value should be.
			return nil, synErr(at+len(t), "%q needs a value after it", t)
		}
		if msg == "syntax error" {
			msg = "not a word, \"phrase\", field:value or range (field:>=N)"
		}
		return nil, synErr(start, "cannot read %q: %s", text, msg)
	}
	if err := checkQuery(q, 1); err != nil {
		if qe, ok := err.(*pipeline.QueryError); ok && qe.Pos == 0 {
			qe.Pos = start + 1
		}
		return nil, err
	}
	if b, ok := q.(*query.BooleanQuery); ok && b.Must == nil && b.MustNot == nil && b.Filter == nil {
		if d, ok := b.Should.(*query.DisjunctionQuery); ok && len(d.Disjuncts) == 1 {
			return d.Disjuncts[0], nil
		}
	}
	return q, nil
}

// leafText is a leaf as the lexer cut it.
type leafText struct {
	text  string
	start int
	field bool // it names a field (field:value)
	group bool // it is "field:" right before a ( (a field group)
}

// leaf cuts the leaf at p.pos the way Bleve's query-string lexer reads
// it: a phrase, or a word up to an unescaped space, and across ':', '>',
// '<', '=' and a sign after them to what they apply to; a ^boost or ~fuzz
// suffix up to a space. A ) ends it where it closes an open group. Errors:
// an unclosed quote, a /regexp that is never closed.
func (p *boolParser) leaf() (leafText, error) {
	s := p.s
	start := p.pos
	i := start
	lf := leafText{start: start}
	need := false // after an operator: what it applies to comes next
	words := 0    // words and phrases read so far
	for i < len(s) {
		c := s[i]
		switch {
		case need && isSpaceAt(s, i):
			p.pos = i
			p.skipSpace()
			j, op := p.pos, p.peekOp()
			p.pos = start
			if op != "" && op != "!" {
				goto done // "status: AND …": the value is missing
			}
			i = j
			continue
		case c == ' ':
			goto done
		case c == '"':
			// A phrase (only where a token starts).
			j := i + 1
			for j < len(s) && s[j] != '"' {
				if s[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(s) {
				return lf, synErr(i, "this quote is never closed")
			}
			i = j + 1
			words++
			need = false
			if i < len(s) && (s[i] == ':' || s[i] == '~' || s[i] == '^') {
				continue
			}
			goto done
		case c == ':' || c == '>' || c == '<' || c == '=':
			if c == ':' && words > 0 && !lf.field {
				lf.field = true
				if i+1 < len(s) && s[i+1] == '(' {
					lf.text, lf.group = s[start:i+1], true
					p.pos = i + 1
					return lf, nil
				}
			}
			i++
			need = true
			continue
		case (c == '+' || c == '-') && need:
			i++
			continue
		case c == '^' || c == '~':
			// A boost or fuzziness: to the next space.
			for i < len(s) && s[i] != ' ' && !(s[i] == ')' && p.depth > 0) {
				if s[i] == '\\' {
					i++
				}
				i++
			}
			i = min(i, len(s)) // past a trailing backslash
			goto done
		case c == ')' && p.depth > 0:
			goto done
		}
		// A word (a number reads the same way), to an unescaped space,
		// ':', '^' or '~' as in Bleve's lexer, or a ) that closes a group.
		words++
		need = false
		if c == '/' {
			// A regular expression: its own parentheses are not groups.
			j := i + 1
			for j < len(s) && s[j] != '/' && s[j] != ' ' {
				if s[j] == '\\' {
					j++
				}
				j++
			}
			j = min(j, len(s))
			if j < len(s) && s[j] == '/' {
				i = j + 1
			} else if w := s[i:j]; strings.ContainsAny(w, "[](){}|\\") {
				return lf, synErr(i, "this regular expression is never closed (end it with /)")
			}
		}
		local := 0 // parentheses opened inside this word
	word:
		for i < len(s) {
			switch s[i] {
			case '\\':
				i += 2
				continue
			case ' ', ':', '^', '~':
				break word
			case '(':
				local++
			case ')':
				if local == 0 && p.depth > 0 {
					break word
				}
				if local == 0 {
					return lf, synErr(i, "this ) closes no (")
				}
				local--
			}
			i++
		}
		i = min(i, len(s)) // past a trailing backslash
	}
done:
	lf.text = strings.TrimRight(s[start:i], " \t\r\n")
	p.pos = i
	return lf, nil
}

// isSpaceAt reports whether a white-space character starts at s[i].
func isSpaceAt(s string, i int) bool {
	c := s[i]
	if c < utf8.RuneSelf {
		return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
	}
	r, _ := utf8.DecodeRuneInString(s[i:])
	return unicode.IsSpace(r)
}
