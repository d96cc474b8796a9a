package esbulk

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/logbox/logbox/appliance/ingest"
	"github.com/logbox/logbox/appliance/pipeline"
)

// maxDepth bounds how deep a document's objects may nest (Elasticsearch's
// own mapping depth limit is 20); a deeper document is refused.
const maxDepth = 32

var (
	errNotObject = errors.New("the document is not a JSON object")
	errTooDeep   = fmt.Errorf("the document nests objects deeper than %d levels", maxDepth)
)

// maxKeys bounds the key strings one request's documents share.
const maxKeys = 4096

// docParser reads the documents of one bulk request. Documents of one
// sender repeat their keys: the parser makes each key's string once.
// Not safe for concurrent use.
type docParser struct {
	keys map[string]string
	buf  bytes.Buffer
}

// flatten adds a JSON object's leaves to out under dotted keys:
// {"host":{"name":"a"}} gives "host.name" = "a". Strings are their text,
// numbers and booleans their JSON text, arrays their compact JSON text;
// nulls, empty objects and empty keys are left out. A key seen twice
// keeps its last value. doc must be one JSON object (leading and trailing
// white space allowed); src is doc as a string (values are its
// substrings, so no value is copied).
func (p *docParser) flatten(doc []byte, src string, out map[string]string) error {
	doc, src = bytes.TrimSpace(doc), strings.TrimSpace(src)
	if len(doc) == 0 || doc[0] != '{' || len(src) != len(doc) {
		return errNotObject
	}
	if !json.Valid(doc) {
		return errors.New("the document is not valid JSON")
	}
	f := flattener{data: doc, src: src, out: out, p: p}
	f.object(nil, 1)
	return f.err
}

// key returns path as a string, the one made before for an equal path.
func (p *docParser) key(path []byte) string {
	if k, ok := p.keys[string(path)]; ok {
		return k
	}
	k := string(path)
	if p.keys == nil {
		p.keys = make(map[string]string, 64)
	}
	if len(p.keys) < maxKeys {
		p.keys[k] = k
	}
	return k
}

// flattener walks a document json.Valid accepted; it still checks every
// index, so that no input makes it panic.
type flattener struct {
	data []byte
	src  string // data as a string
	pos  int
	out  map[string]string
	err  error
	p    *docParser
}

func (f *flattener) ws() {
	for f.pos < len(f.data) {
		switch f.data[f.pos] {
		case ' ', '\t', '\n', '\r':
			f.pos++
		default:
			return
		}
	}
}

func (f *flattener) peek() byte {
	if f.pos < len(f.data) {
		return f.data[f.pos]
	}
	return 0
}

// object reads the object at pos ('{'), its keys under prefix.
func (f *flattener) object(prefix []byte, depth int) {
	if depth > maxDepth {
		f.err = errTooDeep
		return
	}
	f.pos++ // '{'
	for f.err == nil {
		f.ws()
		switch f.peek() {
		case '}':
			f.pos++
			return
		case ',':
			f.pos++
			continue
		case '"':
		default:
			f.err = errors.New("the document is not valid JSON")
			return
		}
		key := f.str()
		f.ws()
		if f.peek() != ':' {
			f.err = errors.New("the document is not valid JSON")
			return
		}
		f.pos++
		f.ws()
		path := prefix
		if key != "" {
			if len(prefix) > 0 {
				path = append(path, '.')
			}
			path = append(path, key...)
		}
		// path may grow prefix's array past its length: the bytes there
		// are nobody else's, and out takes a copy (string(path)).
		f.value(path, key == "", depth)
	}
}

// value reads the value at pos into out[path] (skipped when skip).
func (f *flattener) value(path []byte, skip bool, depth int) {
	start := f.pos
	switch c := f.peek(); c {
	case '{':
		if skip {
			f.skip()
			return
		}
		f.object(path, depth+1)
		return
	case '[':
		f.skip()
		if skip || f.err != nil {
			return
		}
		b := &f.p.buf
		b.Reset()
		if err := json.Compact(b, f.data[start:f.pos]); err != nil {
			f.err = errors.New("the document is not valid JSON")
			return
		}
		f.out[f.p.key(path)] = b.String()
	case '"':
		s := f.str()
		if !skip {
			f.out[f.p.key(path)] = s
		}
	case 'n':
		f.pos += 4 // null: a missing value, as Elasticsearch takes it
	default:
		for f.pos < len(f.data) {
			c := f.data[f.pos]
			if c == ',' || c == '}' || c == ']' || c == ' ' || c == '\t' || c == '\n' || c == '\r' {
				break
			}
			f.pos++
		}
		if f.pos == start {
			f.err = errors.New("the document is not valid JSON")
			return
		}
		if !skip {
			f.out[f.p.key(path)] = f.src[start:f.pos]
		}
	}
}

// skip moves past the value at pos.
func (f *flattener) skip() {
	switch f.peek() {
	case '"':
		f.strEnd()
	case '{', '[':
		depth := 0
		for f.pos < len(f.data) {
			switch f.data[f.pos] {
			case '"':
				f.strEnd()
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					f.pos++
					return
				}
			}
			f.pos++
		}
	default:
		for f.pos < len(f.data) {
			switch f.data[f.pos] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return
			}
			f.pos++
		}
	}
}

// strEnd moves past the string at pos and reports whether it holds an
// escape.
func (f *flattener) strEnd() (escaped bool) {
	f.pos++ // '"'
	for f.pos < len(f.data) {
		switch f.data[f.pos] {
		case '\\':
			escaped = true
			f.pos += 2
			continue
		case '"':
			f.pos++
			return escaped
		}
		f.pos++
	}
	return escaped
}

// str reads the string at pos.
func (f *flattener) str() string {
	start := f.pos
	escaped := f.strEnd()
	end := min(f.pos, len(f.data))
	if end-start < 2 {
		f.err = errors.New("the document is not valid JSON")
		return ""
	}
	raw := f.data[start:end]
	if !escaped && utf8.Valid(raw) {
		return f.src[start+1 : end-1]
	}
	// Escapes and invalid UTF-8 (replaced by U+FFFD) as encoding/json
	// reads them.
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		f.err = errors.New("the document is not valid JSON")
	}
	return s
}

// lineKeys name the line's text, first found first (Filebeat and
// Logstash: message; Fluent Bit and Docker: log; many loggers: msg).
var lineKeys = []string{"message", "log", "msg"}

// toLine maps one bulk document of index to the line logbox keeps (see
// the package doc for the mapping); src is doc as a string. id is the
// item's _id ("" for none).
func (p *docParser) toLine(doc []byte, src string, index, id string) (ingest.Line, error) {
	fields := make(map[string]string, 16)
	if err := p.flatten(doc, src, fields); err != nil {
		return ingest.Line{}, err
	}
	var r pipeline.Record
	if v, ok := fields["@timestamp"]; ok {
		if t, ok := parseTime(v); ok {
			r.TS = t
			delete(fields, "@timestamp")
		}
	} else if v, ok := fields["timestamp"]; ok {
		// Vector's default name; kept as a field too, as the sender named it.
		if t, ok := parseTime(v); ok {
			r.TS = t
		}
	}
	found := false
	for _, k := range lineKeys {
		if v, ok := fields[k]; ok {
			// A line is kept without its newline (Docker's log has one).
			r.Line, found = strings.TrimRight(v, "\r\n"), true
			delete(fields, k)
			break
		}
	}
	if !found {
		p.buf.Reset()
		if err := json.Compact(&p.buf, doc); err == nil {
			r.Line = p.buf.String()
		} else {
			r.Line = strings.TrimSpace(src)
		}
	}
	for _, k := range []string{"host.name", "host", "hostname"} {
		if v, ok := fields[k]; ok && v != "" && v[0] != '[' {
			r.Host = v
			delete(fields, k)
			break
		}
	}
	// The source names the input ("bulk", the acceptor's name, as for
	// every pushed line); the shipper's file stays the field
	// log.file.path, and is part of the stream.
	path := fields["log.file.path"]
	if v, ok := fields["log.level"]; ok {
		fields["level"] = v
		delete(fields, "log.level")
	}
	fields["index"] = index
	r.Fields = fields
	l := ingest.Line{Record: r}
	if id != "" {
		l.ID = index + "/" + id
	} else {
		l.Stream = index + "\x00" + r.Host + "\x00" + path
	}
	return l, nil
}

// timeLayouts are the forms of Elasticsearch's default date format
// (strict_date_optional_time) logbox reads; a time without a zone is UTC,
// as Elasticsearch takes it.
var timeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999Z0700",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02T15:04",
	"2006-01-02",
	"2006-01",
	"2006",
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999",
}

// parseTime reads an @timestamp as Elasticsearch's default format
// (strict_date_optional_time||epoch_millis) does: a date, else epoch
// milliseconds (a number, or a string of one).
func parseTime(v string) (time.Time, bool) {
	if v == "" {
		return time.Time{}, false
	}
	for _, layout := range timeLayouts {
		if t, err := time.Parse(layout, v); err == nil {
			return t, true
		}
	}
	if c := v[0]; c == '-' || (c >= '0' && c <= '9') {
		if ms, err := strconv.ParseFloat(v, 64); err == nil && !strings.ContainsAny(v, "eE") && ms > -1e15 && ms < 1e15 {
			whole := int64(ms)
			frac := ms - float64(whole)
			return time.UnixMilli(whole).Add(time.Duration(frac * float64(time.Millisecond))).UTC(), true
		}
	}
	return time.Time{}, false
}
