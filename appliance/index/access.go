package index

import "strings"

// Access lines (nginx, apache): common and combined log format.
//
//	remote_addr ident remote_user [time] "request" status body_bytes_sent ["referer" "user agent" ["x-forwarded-for"]] [key=value …]

// accessBytes bounds how much of a line the access parser reads: a line
// whose request does not end within it is not an access line.
const accessBytes = 16 << 10

// maxAccessWord bounds the address, ident and user words.
const maxAccessWord = 256

// accessRenames spells out nginx's usual short names of timing variables
// in key=value pairs after the combined part.
var accessRenames = map[string]string{
	"rt":  "request_time",
	"uct": "upstream_connect_time",
	"uht": "upstream_header_time",
	"urt": "upstream_response_time",
}

// word returns the end of the word of s starting at i (the index of the
// blank after it); -1 when there is none within maxAccessWord bytes, it
// is empty, or it holds a quote or bracket.
func word(s string, i int) int {
	end := min(len(s), i+maxAccessWord)
	for j := i; j < end; j++ {
		switch s[j] {
		case ' ':
			if j == i {
				return -1
			}
			return j
		case '"', '[', ']', '\t':
			return -1
		}
	}
	return -1
}

// quoted returns the index of the quote that ends the quoted string whose
// text starts at s[i] (after its opening quote): a backslash escapes the
// byte after it, as Apache writes \"; nginx writes \x22. -1 when it does
// not end.
func quoted(s string, i int) int {
	for j := i; j < len(s); j++ {
		switch s[j] {
		case '\\':
			j++
		case '"':
			return j
		}
	}
	return -1
}

// access parses an access line; false (ex untouched) when line is not
// one. The part through body_bytes_sent must be whole; a referer or user
// agent cut short (a truncated line) is left out.
func (ex *extracted) access(pc *parseCtx, line string) bool {
	s := line[:min(len(line), accessBytes)]
	a := word(s, 0)
	if a < 0 {
		return false
	}
	b := word(s, a+1)
	if b < 0 {
		return false
	}
	u := word(s, b+1)
	if u < 0 || u+2 >= len(s) || s[u+1] != '[' {
		return false
	}
	t, tok := parseCLF(s[u+2:], pc.loc)
	if !tok {
		return false
	}
	k := u + 2 + 20 // past dd/Mon/yyyy:hh:mm:ss
	for k < len(s) && k < u+2+40 && s[k] != ']' {
		k++
	}
	if k+2 >= len(s) || s[k] != ']' || s[k+1] != ' ' || s[k+2] != '"' {
		return false
	}
	rq := k + 3
	re := quoted(s, rq)
	if re < 0 || re+5 > len(s) || s[re+1] != ' ' {
		return false
	}
	st := re + 2
	status := s[st : st+3]
	if !isDigit(status[0]) || !isDigit(status[1]) || !isDigit(status[2]) || (st+3 < len(s) && s[st+3] != ' ') {
		return false
	}
	k = st + 3
	bytes := ""
	if k+1 < len(s) && s[k] == ' ' {
		e := k + 1
		for e < len(s) && (isDigit(s[e]) || s[e] == '-') {
			e++
		}
		if e == k+1 || (e < len(s) && s[e] != ' ') {
			return false
		}
		bytes, k = s[k+1:e], e
	}

	// An access line: its fields.
	if tt, ok := checkTime(t, pc.now); ok {
		ex.ts, ex.parsed = tt, true
	}
	ex.level = Level(line)
	ex.leaves = make([]leaf, 0, 16) // the combined format's 9, and a few pairs
	ex.add(pc, "remote_addr", s[:a])
	if user := s[b+1 : u]; user != "-" {
		ex.add(pc, "remote_user", user)
	}
	if method, rest, ok := strings.Cut(s[rq:re], " "); ok && isMethod(method) {
		ex.add(pc, "method", method)
		path, proto := rest, ""
		if j := strings.LastIndexByte(rest, ' '); j >= 0 && strings.HasPrefix(rest[j+1:], "HTTP/") {
			path, proto = rest[:j], rest[j+1:]
		}
		if path != "" {
			ex.add(pc, "path", path)
		}
		if proto != "" {
			ex.add(pc, "protocol", proto)
		}
	}
	ex.add(pc, "status", status)
	if bytes != "-" && bytes != "" {
		ex.add(pc, "body_bytes_sent", bytes)
	}
	// nginx and Apache write "-" for a value that is not set: such a
	// field is left out (as Elastic's nginx and apache pipelines do).
	// "referer" "user agent" "x-forwarded-for", as many as are whole.
	for _, name := range [...]string{"http_referer", "http_user_agent", "http_x_forwarded_for"} {
		if k+2 >= len(s) || s[k] != ' ' || s[k+1] != '"' {
			break
		}
		e := quoted(s, k+2)
		if e < 0 {
			return true // cut short: the rest is not read
		}
		if v := s[k+2 : e]; v != "-" && v != "" {
			ex.add(pc, name, v)
		}
		k = e + 1
	}
	if k < len(s) {
		from := len(ex.leaves)
		ex.addPairs(pc, s[k:], accessRenames)
		kept := ex.leaves[:from]
		for _, l := range ex.leaves[from:] {
			if l.str != "-" {
				kept = append(kept, l)
			}
		}
		ex.leaves = kept
	}
	return true
}

// isMethod reports an HTTP method's shape: 1 to 20 upper-case letters
// (GET, PROPFIND; not the bytes of a TLS handshake sent to a plain port).
func isMethod(s string) bool {
	if len(s) == 0 || len(s) > 20 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 'A' || s[i] > 'Z' {
			return false
		}
	}
	return true
}
