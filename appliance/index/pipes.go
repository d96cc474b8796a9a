package index

import (
	"fmt"
	"strings"

	"github.com/logbox/logbox/appliance/pipeline"
)

// splitPipes is pipeline.SplitPipes (the index and alerting read a
// query's pipes the same way).
func splitPipes(s string) (q string, pipes []string, at []int) { return pipeline.SplitPipes(s) }

// HasPipe says whether q has a pipe (| stats …): such a query is answered
// by Stats, not by Search, Histogram or Facets.
func HasPipe(q string) bool {
	_, pipes, _ := splitPipes(q)
	return len(pipes) > 0
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// StatsFuncColumns names the function columns of q's stats pipe (an
// alert rule's column must be one of them); nil when q has no stats pipe
// or does not parse.
func StatsFuncColumns(q string) []string {
	_, plan, _, err := compilePiped(q)
	if err != nil || plan == nil {
		return nil
	}
	cols := make([]string, len(plan.funcs))
	for i, f := range plan.funcs {
		cols[i] = f.name
	}
	return cols
}

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
