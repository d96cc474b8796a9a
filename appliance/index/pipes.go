package index

import (
	"fmt"
	"strings"

	"github.com/logbox/logbox/appliance/pipeline"
)

// splitPipes cuts a query at its pipes: "status:>=500 | stats count() by
// (host) | sort by (n desc)" gives the query "status:>=500 " and the pipes
// "stats count() by (host)" and "sort by (n desc)", each with the byte
// offset in s where it starts (for error positions). A | is a pipe unless
// it is inside a quoted phrase, inside a /regular expression/ (one that
// starts where a term starts), after a backslash, doubled (|| is OR), or
// inside a word (a line's id, host|file|offset, is one word): a pipe
// starts the query or follows a blank.
func splitPipes(s string) (q string, pipes []string, at []int) {
	cut := -1
	start := 0
	phrase, regexp := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\':
			i++
		case phrase:
			if c == '"' {
				phrase = false
			}
		case regexp:
			if c == '/' {
				regexp = false
			}
		case c == '"':
			phrase = true
		case c == '/' && termStart(s, i):
			regexp = true
		case c == '|' && i+1 < len(s) && s[i+1] == '|':
			i++ // OR
		case c == '|' && (i == 0 || isBlank(s[i-1])):
			if cut < 0 {
				cut = i
			} else {
				pipes = append(pipes, s[start:i])
				at = append(at, start)
			}
			start = i + 1
		}
	}
	if cut < 0 {
		return s, nil, nil
	}
	pipes = append(pipes, s[start:])
	at = append(at, start)
	for i := range pipes {
		t := strings.TrimLeft(pipes[i], " \t\r\n")
		at[i] += len(pipes[i]) - len(t)
		pipes[i] = strings.TrimRight(t, " \t\r\n")
	}
	return s[:cut], pipes, at
}

// termStart says whether a / at s[i] begins a regular expression: it
// starts the query or follows a blank, a field's colon, a parenthesis or
// a +, - or ! prefix.
func termStart(s string, i int) bool {
	if i == 0 {
		return true
	}
	switch s[i-1] {
	case ' ', '\t', '\r', '\n', ':', '(', '+', '-', '!':
		return true
	}
	return false
}

// HasPipe says whether q has a pipe (| stats …): such a query is answered
// by Stats, not by Search, Histogram or Facets.
func HasPipe(q string) bool {
	_, pipes, _ := splitPipes(q)
	return len(pipes) > 0
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// CheckQuery parses q (with its pipes, if any) as Search and StatsQuery
// would (and the patterns engine, for "| patterns"; see PatternsPipe),
// without running it: nil, or the *pipeline.QueryError they would answer.
func CheckQuery(q string) error {
	_, _, _, err := compilePiped(q)
	return err
}

// compilePiped parses q, a query and its pipes: the query part (trimmed,
// so that "GET | stats …" shares the match cache with "GET"), the plan of
// its pipes (nil without any) and its matcher.
func compilePiped(q string) (string, *statsPlan, *matcher, error) {
	if len(q) > MaxQueryBytes {
		return "", nil, nil, &pipeline.QueryError{Msg: fmt.Sprintf("query is %d bytes; at most %d are allowed", len(q), MaxQueryBytes)}
	}
	if qp, _, ok, err := PatternsPipe(q); ok {
		// Answered by the patterns engine (PatternsPipe), not Stats.
		if err != nil {
			return "", nil, nil, err
		}
		m, err := compile(qp)
		return qp, nil, m, err
	}
	qs, pipes, at := splitPipes(q)
	qs = strings.TrimSpace(qs)
	var plan *statsPlan
	if len(pipes) > 0 {
		var err error
		if plan, err = parseStatsPipes(pipes, at); err != nil {
			return "", nil, nil, err
		}
	}
	m, err := compile(qs)
	if err != nil {
		return "", nil, nil, err
	}
	return qs, plan, m, nil
}
