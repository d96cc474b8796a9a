package pipeline

import "strings"

// SplitPipes cuts a query at its pipes: "status:>=500 | stats count() by
// (host) | sort by (n desc)" gives the query "status:>=500 " and the pipes
// "stats count() by (host)" and "sort by (n desc)", each with the byte
// offset in s where it starts (for error positions). A | is a pipe unless
// it is inside a quoted phrase, inside a /regular expression/ (one that
// starts where a term starts), after a backslash, doubled (|| is OR), or
// inside a word (a line's id, host|file|offset, is one word): a pipe
// starts the query or follows a blank.
func SplitPipes(s string) (q string, pipes []string, at []int) {
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
		case c == '/' && pipeTermStart(s, i):
			regexp = true
		case c == '|' && i+1 < len(s) && s[i+1] == '|':
			i++ // OR
		case c == '|' && (i == 0 || isPipeBlank(s[i-1])):
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

// pipeTermStart says whether a / at s[i] begins a regular expression: it
// starts the query or follows a blank, a field's colon, a parenthesis or
// a +, - or ! prefix.
func pipeTermStart(s string, i int) bool {
	if i == 0 {
		return true
	}
	switch s[i-1] {
	case ' ', '\t', '\r', '\n', ':', '(', '+', '-', '!':
		return true
	}
	return false
}

func isPipeBlank(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }
