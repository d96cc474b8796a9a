package kafkain

import (
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/logbox/logbox/appliance/pipeline"
)

// fastEvent decodes a logbox event as a logbox agent writes it (members
// in the order of kafkaout's appendEvent: ts, host, source, source_name,
// file_id, offset, end, line, fields, flags, parser, tz; no spaces) without
// reflection. Anything else — another order, other members, whitespace,
// a number or string it does not read exactly as encoding/json would —
// returns false, and the caller decodes the value with encoding/json:
// the result is the same either way (TestFastEventAsJSON).
func fastEvent(v []byte) (pipeline.Record, string, bool) {
	var r pipeline.Record
	p := &eventParser{b: v}
	if !p.lit(`{"ts":`) {
		return r, "", false
	}
	ts, ok := p.str()
	if !ok {
		return r, "", false
	}
	// As encoding/json reads a time.Time (strict RFC 3339).
	if err := r.TS.UnmarshalText([]byte(ts)); err != nil {
		return r, "", false
	}
	if !p.lit(`,"host":`) {
		return r, "", false
	}
	if r.Host, ok = p.str(); !ok || !p.lit(`,"source":`) {
		return r, "", false
	}
	if r.Source, ok = p.str(); !ok {
		return r, "", false
	}
	if p.lit(`,"source_name":`) {
		if r.SourceName, ok = p.str(); !ok {
			return r, "", false
		}
	}
	if !p.lit(`,"file_id":`) {
		return r, "", false
	}
	if r.FileID, ok = p.str(); !ok || !p.lit(`,"offset":`) {
		return r, "", false
	}
	if r.Offset, ok = p.int(); !ok {
		return r, "", false
	}
	if p.lit(`,"end":`) {
		if r.End, ok = p.int(); !ok {
			return r, "", false
		}
	}
	if !p.lit(`,"line":`) {
		return r, "", false
	}
	line, ok := p.str()
	if !ok {
		return r, "", false
	}
	if p.lit(`,"fields":{`) {
		r.Fields = map[string]string{}
		for first := true; !p.lit(`}`); first = false {
			if !first && !p.lit(`,`) {
				return r, "", false
			}
			k, ok := p.str()
			if !ok || !p.lit(`:`) {
				return r, "", false
			}
			val, ok := p.str()
			if !ok {
				return r, "", false
			}
			r.Fields[k] = val
		}
	}
	if p.lit(`,"flags":[`) {
		r.Flags = []string{}
		for first := true; !p.lit(`]`); first = false {
			if !first && !p.lit(`,`) {
				return r, "", false
			}
			f, ok := p.str()
			if !ok {
				return r, "", false
			}
			r.Flags = append(r.Flags, f)
		}
	}
	if p.lit(`,"parser":`) {
		if r.Parser, ok = p.str(); !ok {
			return r, "", false
		}
	}
	if p.lit(`,"tz":`) {
		if r.TZ, ok = p.str(); !ok {
			return r, "", false
		}
	}
	if !p.lit(`}`) || p.i != len(v) {
		return r, "", false
	}
	return r, line, true
}

type eventParser struct {
	b []byte
	i int
}

// lit consumes s when the input continues with it.
func (p *eventParser) lit(s string) bool {
	if len(p.b)-p.i < len(s) || string(p.b[p.i:p.i+len(s)]) != s {
		return false
	}
	p.i += len(s)
	return true
}

// int reads a JSON integer as encoding/json reads one into an int64.
func (p *eventParser) int() (int64, bool) {
	j := p.i
	if j < len(p.b) && p.b[j] == '-' {
		j++
	}
	start := j
	for j < len(p.b) && p.b[j] >= '0' && p.b[j] <= '9' {
		j++
	}
	if j == start || (p.b[start] == '0' && j-start > 1) {
		return 0, false
	}
	n, err := strconv.ParseInt(string(p.b[p.i:j]), 10, 64)
	if err != nil {
		return 0, false
	}
	p.i = j
	return n, true
}

// str reads a JSON string. Invalid UTF-8, which encoding/json replaces
// with U+FFFD, and anything unusual send the value to encoding/json.
func (p *eventParser) str() (string, bool) {
	if p.i >= len(p.b) || p.b[p.i] != '"' {
		return "", false
	}
	j := p.i + 1
	// The common case: no escapes.
	for j < len(p.b) {
		c := p.b[j]
		if c == '"' {
			s := p.b[p.i+1 : j]
			if !utf8.Valid(s) {
				return "", false
			}
			p.i = j + 1
			return string(s), true
		}
		if c == '\\' || c < 0x20 {
			break
		}
		j++
	}
	// Escapes: the text unescaped is no longer than as written, so one
	// buffer of that size holds it, and becomes the string without a copy.
	end := j
	for end < len(p.b) && p.b[end] != '"' {
		if p.b[end] == '\\' {
			end++
		}
		end++
	}
	var out strings.Builder
	out.Grow(min(end, len(p.b)) - p.i - 1)
	out.Write(p.b[p.i+1 : j])
	for j < len(p.b) {
		c := p.b[j]
		switch {
		case c == '"':
			if !utf8.ValidString(out.String()) {
				return "", false
			}
			p.i = j + 1
			return out.String(), true
		case c < 0x20:
			return "", false
		case c != '\\':
			// A run of plain bytes up to the next escape or quote.
			k := j + 1
			for k < len(p.b) && p.b[k] != '\\' && p.b[k] != '"' && p.b[k] >= 0x20 {
				k++
			}
			out.Write(p.b[j:k])
			j = k
			continue
		}
		if j+1 >= len(p.b) {
			return "", false
		}
		switch e := p.b[j+1]; e {
		case '"', '\\', '/':
			out.WriteByte(e)
		case 'b':
			out.WriteByte('\b')
		case 'f':
			out.WriteByte('\f')
		case 'n':
			out.WriteByte('\n')
		case 'r':
			out.WriteByte('\r')
		case 't':
			out.WriteByte('\t')
		case 'u':
			r, ok := hex4(p.b, j+2)
			if !ok {
				return "", false
			}
			j += 6
			if utf16.IsSurrogate(r) {
				r2, ok := hex4(p.b, j+2)
				if !ok || j+1 >= len(p.b) || p.b[j] != '\\' || p.b[j+1] != 'u' {
					return "", false // a lone surrogate: let encoding/json say
				}
				dec := utf16.DecodeRune(r, r2)
				if dec == utf8.RuneError {
					return "", false
				}
				r = dec
				j += 6
			}
			out.WriteRune(r)
			continue
		default:
			return "", false
		}
		j += 2
	}
	return "", false
}

// hex4 reads the four hex digits at b[i:].
func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}
