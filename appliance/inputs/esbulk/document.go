package esbulk

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf16"
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
	// seq are the keys of the last document's leaves in order: the next
	// document of a sender most often has the same, found without a
	// lookup.
	seq    []string
	path   []byte  // the flattened key being built
	leaves []field // the document's leaves, in order
	kinds  []uint8 // the kinds of leaves' keys (toLine)
	buf    bytes.Buffer
}

// field is a flattened leaf: its dotted key and its value.
type field struct{ k, v string }

// errInvalid is any document encoding/json's json.Valid would refuse.
var errInvalid = errors.New("the document is not valid JSON")

// maxNesting is how deeply encoding/json lets objects and arrays nest
// (its scanner's maxNestingDepth); a deeper document is not valid JSON.
const maxNesting = 10000

// flatten returns a JSON object's leaves under dotted keys, in order:
// {"host":{"name":"a"}} gives "host.name" = "a". Strings are their text,
// numbers and booleans their JSON text, arrays their compact JSON text;
// nulls, empty objects and empty keys are left out. A key seen twice is
// there twice (its last value counts). doc must be one JSON object
// (leading and trailing white space allowed); src is doc as a string
// (values are its substrings, so no value is copied). It refuses what
// json.Valid refuses (errInvalid), checking the document as it walks it
// once. The leaves are p's until the next call.
func (p *docParser) flatten(doc []byte, src string) ([]field, error) {
	doc, src = bytes.TrimSpace(doc), strings.TrimSpace(src)
	if len(doc) == 0 || doc[0] != '{' || len(src) != len(doc) {
		return nil, errNotObject
	}
	if p.path == nil {
		p.path = make([]byte, 0, 256)
	}
	f := flattener{data: doc, src: src, p: p, out: p.leaves[:0]}
	f.object(p.path[:0], 1)
	if f.err == nil && f.pos != len(doc) {
		f.err = errInvalid // something after the object
	}
	if f.err == errTooDeep && !json.Valid(doc) {
		// As before the walk checked the document: invalid JSON is
		// reported as such, however deep.
		f.err = errInvalid
	}
	p.leaves = f.out
	return f.out, f.err
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

// flattener walks a JSON document, checking it as json.Valid does; it
// checks every index, so that no input makes it panic. parseAction uses
// it on lines json.Valid accepted, without p.
type flattener struct {
	data []byte
	src  string // data as a string
	pos  int
	out  []field // the leaves
	err  error
	p    *docParser
}

// fail records that the document is not valid JSON and stops the walk.
func (f *flattener) fail() {
	if f.err == nil {
		f.err = errInvalid
	}
	f.pos = len(f.data)
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

// leaf adds the leaf path = v to out.
func (f *flattener) leaf(path []byte, v string) {
	f.out = append(f.out, field{f.leafKey(path), v})
}

// leafKey returns path as a string for the next leaf: the key of the
// last document's leaf at that place when it is the same, else the
// parser's.
func (f *flattener) leafKey(path []byte) string {
	p, n := f.p, len(f.out)
	if n < len(p.seq) && p.seq[n] == string(path) {
		return p.seq[n]
	}
	k := p.key(path)
	if n < len(p.seq) {
		p.seq[n] = k
	} else if n == len(p.seq) && n < maxKeys {
		p.seq = append(p.seq, k)
	}
	return k
}

// object reads the object at pos ('{'), its keys under prefix; depth is
// its depth (the document is 1).
func (f *flattener) object(prefix []byte, depth int) {
	if depth > maxDepth {
		f.err = errTooDeep
		f.pos = len(f.data)
		return
	}
	f.pos++ // '{'
	f.ws()
	if f.peek() == '}' {
		f.pos++
		return
	}
	for {
		if f.peek() != '"' {
			f.fail()
			return
		}
		key := f.str()
		f.ws()
		if f.err != nil || f.peek() != ':' {
			f.fail()
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
		if f.err != nil {
			return
		}
		f.ws()
		switch f.peek() {
		case ',':
			f.pos++
			f.ws()
		case '}':
			f.pos++
			return
		default:
			f.fail()
			return
		}
	}
}

// value reads the value at pos into out[path] (skipped when skip); depth
// is the depth of the object holding it.
func (f *flattener) value(path []byte, skip bool, depth int) {
	start := f.pos
	switch c := f.peek(); c {
	case '{':
		if skip {
			f.skip(depth)
			return
		}
		f.object(path, depth+1)
		return
	case '[':
		f.skip(depth)
		if skip || f.err != nil {
			return
		}
		f.leaf(path, f.compact(start, f.pos))
	case '"':
		s := f.str()
		if !skip && f.err == nil {
			f.leaf(path, s)
		}
	case 'n':
		// null: a missing value, as Elasticsearch takes it
		f.literal("null")
	case 't', 'f':
		if c == 't' {
			f.literal("true")
		} else {
			f.literal("false")
		}
		if !skip && f.err == nil {
			f.leaf(path, f.src[start:f.pos])
		}
	default:
		f.number()
		if !skip && f.err == nil {
			f.leaf(path, f.src[start:f.pos])
		}
	}
}

// literal moves past lit (true, false or null) at pos.
func (f *flattener) literal(lit string) {
	if !strings.HasPrefix(f.src[f.pos:], lit) {
		f.fail()
		return
	}
	f.pos += len(lit)
}

// number moves past the JSON number at pos:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (f *flattener) number() {
	d, i := f.data, f.pos
	digits := func() bool {
		j := i
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
		return i > j
	}
	if i < len(d) && d[i] == '-' {
		i++
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case !digits():
		f.fail()
		return
	}
	if i < len(d) && d[i] == '.' {
		i++
		if !digits() {
			f.fail()
			return
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if !digits() {
			f.fail()
			return
		}
	}
	f.pos = i
}

// skip moves past the value at pos, checking it; nest is how many
// objects and arrays hold it.
func (f *flattener) skip(nest int) {
	// The objects ('{') and arrays ('[') open around pos, innermost last.
	var open []byte
	var buf [32]byte
	open = buf[:0]
	for f.err == nil {
		// A value.
		switch c := f.peek(); c {
		case '{', '[':
			if nest+len(open)+1 > maxNesting {
				f.fail()
				return
			}
			f.pos++
			f.ws()
			if c == '{' && f.peek() == '}' || c == '[' && f.peek() == ']' {
				f.pos++
				break
			}
			open = append(open, c)
			if c == '{' && !f.member() {
				return
			}
			continue
		case '"':
			f.strEnd()
		case 'n':
			f.literal("null")
		case 't':
			f.literal("true")
		case 'f':
			f.literal("false")
		default:
			f.number()
		}
		// After a value: the next one, or the ends of the objects and
		// arrays it closes.
		for f.err == nil {
			if len(open) == 0 {
				return
			}
			f.ws()
			c, in := f.peek(), open[len(open)-1]
			switch {
			case c == ',':
				f.pos++
				f.ws()
				if in == '{' && !f.member() {
					return
				}
			case in == '{' && c == '}', in == '[' && c == ']':
				f.pos++
				open = open[:len(open)-1]
				continue
			default:
				f.fail()
				return
			}
			break
		}
	}
}

// member moves past an object member's key and colon, up to its value.
func (f *flattener) member() bool {
	if f.peek() != '"' {
		f.fail()
		return false
	}
	f.strEnd()
	f.ws()
	if f.err != nil || f.peek() != ':' {
		f.fail()
		return false
	}
	f.pos++
	f.ws()
	return true
}

// compact returns the valid JSON value data[start:end] without the white
// space between its tokens, as json.Compact writes it.
func (f *flattener) compact(start, end int) string {
	seg := f.data[start:end]
	in := false // in a string
	i := 0
	for ; i < len(seg); i++ {
		c := seg[i]
		switch {
		case in && c == '\\':
			i++
		case c == '"':
			in = !in
		case !in && (c == ' ' || c == '\t' || c == '\n' || c == '\r'):
			goto spaced
		}
	}
	return f.src[start:end]
spaced:
	b := make([]byte, i, len(seg))
	copy(b, seg[:i])
	for ; i < len(seg); i++ {
		c := seg[i]
		switch {
		case in && c == '\\':
			b = append(b, c, seg[i+1])
			i++
			continue
		case c == '"':
			in = !in
		case !in && (c == ' ' || c == '\t' || c == '\n' || c == '\r'):
			continue
		}
		b = append(b, c)
	}
	return string(b)
}

// strPlain are the bytes a string holds as they are: not a control
// character, quote, backslash or part of a multi-byte UTF-8 sequence.
var strPlain = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// strEnd moves past the string at pos ('"'), checking it as JSON does,
// and reports whether it holds an escape, and a byte of 0x80 or above.
func (f *flattener) strEnd() (escaped, high bool) {
	d := f.data
	i := f.pos + 1
	for i < len(d) {
		c := d[i]
		if strPlain[c] {
			i++
			continue
		}
		switch {
		case c == '"':
			f.pos = i + 1
			return escaped, high
		case c == '\\':
			escaped = true
			if i+1 >= len(d) {
				f.fail()
				return
			}
			switch d[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(d) || !isHex4(d[i+2:i+6]) {
					f.fail()
					return
				}
				i += 6
			default:
				f.fail()
				return
			}
		case c < 0x20:
			f.fail()
			return
		default:
			high = true
			i++
		}
	}
	f.fail() // unterminated
	return
}

func isHex4(b []byte) bool {
	for _, c := range b[:4] {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// str reads the string at pos ("" once the walk failed).
func (f *flattener) str() string {
	start := f.pos
	escaped, high := f.strEnd()
	if f.err != nil {
		return ""
	}
	if !escaped && (!high || utf8.Valid(f.data[start+1:f.pos-1])) {
		return f.src[start+1 : f.pos-1]
	}
	return unquote(f.data[start+1 : f.pos-1])
}

// unquote is the text of a valid JSON string's content s, as
// encoding/json reads it: escapes resolved, a lone surrogate and each
// byte of invalid UTF-8 replaced by U+FFFD.
func unquote(s []byte) string {
	b := make([]byte, 0, len(s)+8)
	for r := 0; r < len(s); {
		c := s[r]
		switch {
		case c == '\\':
			switch e := s[r+1]; e {
			case 'b':
				b = append(b, '\b')
			case 'f':
				b = append(b, '\f')
			case 'n':
				b = append(b, '\n')
			case 'r':
				b = append(b, '\r')
			case 't':
				b = append(b, '\t')
			case 'u':
				rr := hex4(s[r+2:])
				r += 6
				if utf16.IsSurrogate(rr) {
					if r+6 <= len(s) && s[r] == '\\' && s[r+1] == 'u' {
						if dec := utf16.DecodeRune(rr, hex4(s[r+2:])); dec != unicode.ReplacementChar {
							r += 6
							b = utf8.AppendRune(b, dec)
							continue
						}
					}
					rr = unicode.ReplacementChar
				}
				b = utf8.AppendRune(b, rr)
				continue
			default: // '"', '\\', '/'
				b = append(b, e)
			}
			r += 2
		case c < utf8.RuneSelf:
			b = append(b, c)
			r++
		default:
			rr, size := utf8.DecodeRune(s[r:])
			r += size
			b = utf8.AppendRune(b, rr)
		}
	}
	return string(b)
}

// hex4 reads the four hex digits that start s (checked by strEnd).
func hex4(s []byte) rune {
	var r rune
	for _, c := range s[:4] {
		switch {
		case c <= '9':
			c -= '0'
		case c <= 'F':
			c -= 'A' - 10
		default:
			c -= 'a' - 10
		}
		r = r<<4 | rune(c)
	}
	return r
}

// The keys toLine reads (see the package doc).
const (
	kOther = iota
	kAtTimestamp
	kTimestamp
	// The line's text, first found first (Filebeat and Logstash:
	// message; Fluent Bit and Docker: log; many loggers: msg).
	kMessage
	kLog
	kMsg
	// The line's host, first found first.
	kHostName
	kHost
	kHostname
	kLogFilePath
	kLogLevel
	kIndex
	nKinds
)

func kindOf(k string) int {
	switch k {
	case "@timestamp":
		return kAtTimestamp
	case "timestamp":
		return kTimestamp
	case "message":
		return kMessage
	case "log":
		return kLog
	case "msg":
		return kMsg
	case "host.name":
		return kHostName
	case "host":
		return kHost
	case "hostname":
		return kHostname
	case "log.file.path":
		return kLogFilePath
	case "log.level":
		return kLogLevel
	case "index":
		return kIndex
	}
	return kOther
}

// toLine maps one bulk document of index to the line logbox keeps (see
// the package doc for the mapping); src is doc as a string. id is the
// item's _id ("" for none).
func (p *docParser) toLine(doc []byte, src string, index, id string) (ingest.Line, error) {
	leaves, err := p.flatten(doc, src)
	if err != nil {
		return ingest.Line{}, err
	}
	// The last value of each key toLine reads (a key's last value is
	// its value), 1 + its place in leaves (0: none).
	var at [nKinds]int
	kinds := p.kinds[:0]
	for i := range leaves {
		k := kindOf(leaves[i].k)
		kinds = append(kinds, uint8(k))
		at[k] = i + 1
	}
	p.kinds = kinds
	value := func(kind int) (string, bool) {
		if i := at[kind]; i > 0 {
			return leaves[i-1].v, true
		}
		return "", false
	}
	// drop: the kinds that do not stay fields.
	var drop [nKinds]bool
	drop[kIndex] = true // the item's index wins
	var r pipeline.Record
	if v, ok := value(kAtTimestamp); ok {
		if t, ok := parseTime(v); ok {
			r.TS = t
			drop[kAtTimestamp] = true
		}
	} else if v, ok := value(kTimestamp); ok {
		// Vector's default name; kept as a field too, as the sender named it.
		if t, ok := parseTime(v); ok {
			r.TS = t
		}
	}
	found := false
	for kind := kMessage; kind <= kMsg; kind++ {
		if v, ok := value(kind); ok {
			// A line is kept without its newline (Docker's log has one).
			r.Line, found = strings.TrimRight(v, "\r\n"), true
			drop[kind] = true
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
	for kind := kHostName; kind <= kHostname; kind++ {
		if v, ok := value(kind); ok && v != "" && v[0] != '[' {
			r.Host = v
			drop[kind] = true
			break
		}
	}
	// The source names the input ("bulk", the acceptor's name, as for
	// every pushed line); the shipper's file stays the field
	// log.file.path, and is part of the stream.
	path, _ := value(kLogFilePath)
	level, hasLevel := value(kLogLevel)
	drop[kLogLevel] = true
	n := 1 // index
	if hasLevel {
		n++
	}
	for i := range at {
		if at[i] > 0 && drop[i] {
			n--
		}
	}
	fields := make(map[string]string, len(leaves)+n)
	for i, l := range leaves {
		if !drop[kinds[i]] {
			fields[l.k] = l.v
		}
	}
	if hasLevel {
		fields["level"] = level
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
