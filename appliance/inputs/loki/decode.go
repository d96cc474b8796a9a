package loki

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/golang/snappy"
	"github.com/grafana/loki/pkg/push"
	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/gzip"

	"github.com/logbox/logbox/appliance/ingest"
	"github.com/logbox/logbox/appliance/pipeline"
)

// Source is the Record.Source of every line this input takes. It is a
// constant on purpose: host and source choose a line's Kafka partition,
// and one input's offset sequence must reach the index in order.
const Source = "loki"

// requestError is a push the input refuses, with the HTTP status that
// says why (400, 413 or 415).
type requestError struct {
	code int
	err  error
}

func (e *requestError) Error() string { return e.err.Error() }
func (e *requestError) Unwrap() error { return e.err }

func badRequest(format string, args ...any) error {
	return &requestError{code: http.StatusBadRequest, err: fmt.Errorf(format, args...)}
}

func tooLarge(what string, n, limit int64) error {
	return &requestError{code: http.StatusRequestEntityTooLarge,
		err: fmt.Errorf("%s is larger than the limit of %d bytes (%d)", what, limit, n)}
}

func unsupported(format string, args ...any) error {
	return &requestError{code: http.StatusUnsupportedMediaType, err: fmt.Errorf(format, args...)}
}

// errBusy: the pushes being decoded hold the memory budget; 429.
var errBusy = &requestError{code: http.StatusTooManyRequests,
	err: errors.New("too many pushes are being read at once; retry later")}

// memBudget bounds the bytes that pushes being read and decoded hold at
// once: bodies, decompressed bodies and what is decoded from them.
// Decoded lines leave it when they reach the acceptor, whose in-flight
// bound takes over. Safe for concurrent use; a nil budget bounds nothing.
type memBudget struct {
	held  atomic.Int64
	limit int64
}

// reserve takes n bytes into *held, or returns errBusy.
func (b *memBudget) reserve(n int64, held *int64) error {
	if b == nil {
		return nil
	}
	if b.held.Add(n) > b.limit {
		b.held.Add(-n)
		return errBusy
	}
	*held += n
	return nil
}

func (b *memBudget) release(n int64) {
	if b != nil {
		b.held.Add(-n)
	}
}

// Buffers for bodies and decoded bodies, reused across requests; what
// is decoded from them is copied (gogo's and encoding/json's strings
// are), so they go back once a request is decoded. Buffers grown past
// maxPooled are left to the collector.
const maxPooled = 4 << 20

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func getBuf() *bytes.Buffer { return bufPool.Get().(*bytes.Buffer) }

func putBuf(b *bytes.Buffer) {
	if b.Cap() <= maxPooled {
		b.Reset()
		bufPool.Put(b)
	}
}

// readLimited reads r into buf; more than limit bytes is errTooLarge's
// case, reported by the caller with what it read (over is true).
func readLimited(buf *bytes.Buffer, r io.Reader, limit int64) (over bool, err error) {
	n, err := buf.ReadFrom(io.LimitReader(r, limit+1))
	if err != nil {
		return false, err
	}
	return n > limit, nil
}

// decodeRequest reads and decodes a push request's body into lines:
// Content-Encoding none, snappy (the protobuf is snappy-compressed
// anyway), gzip or deflate (raw, as Loki reads it); Content-Type
// application/x-protobuf (or none, as Loki takes it) for a
// snappy-compressed PushRequest, application/json for Loki's JSON. The
// body is bounded by limit before and after decompression, and what
// decoding holds by mem (at most 3 × limit for one push). Errors are
// *requestError.
func decodeRequest(r *http.Request, limit int64, mem *memBudget) ([]ingest.Line, error) {
	ct := r.Header.Get("Content-Type")
	kind := "protobuf"
	if ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil {
			return nil, unsupported("Content-Type %q: %v", ct, err)
		}
		switch mt {
		case "application/x-protobuf", "application/protobuf":
		case "application/json":
			kind = "json"
		default:
			return nil, unsupported("Content-Type %q is not supported: send application/x-protobuf (snappy) or application/json", mt)
		}
	}
	enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding")))
	switch enc {
	case "", "identity", "snappy", "gzip", "x-gzip", "deflate":
	default:
		return nil, unsupported("Content-Encoding %q is not supported: send none, gzip or deflate", enc)
	}
	if r.ContentLength > limit {
		return nil, tooLarge("the request body", r.ContentLength, limit)
	}
	var held int64
	defer func() { mem.release(held) }()
	// The body's length when sent with one, else the most it may be.
	reserve := r.ContentLength
	if reserve < 0 {
		reserve = limit
	}
	if err := mem.reserve(reserve, &held); err != nil {
		return nil, err
	}

	body := getBuf()
	defer putBuf(body)
	over, err := readLimited(body, r.Body, limit)
	if err != nil {
		return nil, badRequest("read the request body: %w", err)
	}
	if over {
		return nil, tooLarge("the request body", int64(body.Len()), limit)
	}
	raw := body.Bytes()

	if enc == "gzip" || enc == "x-gzip" || enc == "deflate" {
		// Its decompressed size is known only once decompressed.
		if err := mem.reserve(limit, &held); err != nil {
			return nil, err
		}
		var zr io.ReadCloser
		if enc == "deflate" {
			zr = flate.NewReader(bytes.NewReader(raw))
		} else {
			gz, err := gzip.NewReader(bytes.NewReader(raw))
			if err != nil {
				return nil, badRequest("gzip: %w", err)
			}
			zr = gz
		}
		plain := getBuf()
		defer putBuf(plain)
		over, err := readLimited(plain, zr, limit)
		_ = zr.Close()
		if err != nil {
			return nil, badRequest("%s: %w", enc, err)
		}
		if over {
			return nil, tooLarge("the decompressed body", int64(plain.Len()), limit)
		}
		raw = plain.Bytes()
	}

	if kind == "json" {
		// What JSON decodes to is about as large as the JSON.
		if err := mem.reserve(int64(len(raw)), &held); err != nil {
			return nil, err
		}
		return decodeJSON(raw)
	}
	return decodeProtobuf(raw, limit, func(n int) error {
		// The snappy-decoded body, and the strings decoded from it.
		return mem.reserve(2*int64(n), &held)
	})
}

// decodeProtobuf decodes a snappy-compressed (block format) PushRequest.
// The decoded size is checked against limit, and given to reserve (when
// not nil), before anything is decoded.
func decodeProtobuf(raw []byte, limit int64, reserve func(n int) error) ([]ingest.Line, error) {
	n, err := snappy.DecodedLen(raw)
	if err != nil {
		return nil, badRequest("snappy: %w", err)
	}
	if int64(n) > limit {
		return nil, tooLarge("the snappy-decoded body", int64(n), limit)
	}
	if reserve != nil {
		if err := reserve(n); err != nil {
			return nil, err
		}
	}
	dst := getBuf()
	defer putBuf(dst)
	dst.Grow(n)
	plain, err := snappy.Decode(dst.AvailableBuffer()[:n], raw)
	if err != nil {
		return nil, badRequest("snappy: %w", err)
	}
	var req push.PushRequest
	if err := req.Unmarshal(plain); err != nil {
		return nil, badRequest("protobuf PushRequest: %w", err)
	}
	count := 0
	for i := range req.Streams {
		count += len(req.Streams[i].Entries)
	}
	lines := make([]ingest.Line, 0, count)
	var meta []label
	for i := range req.Streams {
		s := &req.Streams[i]
		if len(s.Entries) == 0 {
			continue
		}
		ls, err := parseLabels(s.Labels)
		if err != nil {
			return nil, badRequest("stream %d: %w", i, err)
		}
		st := newStream(ls)
		for j := range s.Entries {
			e := &s.Entries[j]
			if e.Timestamp.IsZero() {
				return nil, badRequest("stream %d %s, entry %d: no timestamp", i, clip(st.stream), j)
			}
			meta = meta[:0]
			for _, m := range e.StructuredMetadata {
				meta = append(meta, label{name: m.Name, value: m.Value})
			}
			lines = append(lines, st.line(e.Timestamp, e.Line, meta))
		}
	}
	return lines, nil
}

// Loki's JSON push body:
//
//	{"streams":[{"stream":{"job":"app"},"values":[["<unix ns>","line"],["<unix ns>","line",{"trace_id":"…"}]]}]}
type jsonPush struct {
	Streams []jsonStream `json:"streams"`
}

type jsonStream struct {
	Stream map[string]string `json:"stream"`
	Values []jsonEntry       `json:"values"`
}

// jsonEntry is one value: [timestamp, line] or [timestamp, line,
// structured metadata]; the timestamp is Unix nanoseconds as a string
// (as Loki documents it) or a number.
type jsonEntry struct {
	ts   time.Time
	line string
	meta map[string]string
}

func (e *jsonEntry) UnmarshalJSON(b []byte) error {
	var parts []json.RawMessage
	if err := json.Unmarshal(b, &parts); err != nil || len(parts) < 2 || len(parts) > 3 {
		return errors.New(`a value is ["<unix ns>", "<line>"] or ["<unix ns>", "<line>", {structured metadata}]`)
	}
	ts := parts[0]
	if len(ts) > 0 && ts[0] == '"' {
		var s string
		if err := json.Unmarshal(ts, &s); err != nil {
			return fmt.Errorf("timestamp: %w", err)
		}
		ts = []byte(s)
	}
	ns, err := strconv.ParseInt(string(ts), 10, 64)
	if err != nil {
		return fmt.Errorf("timestamp %s is not Unix nanoseconds", clip(string(parts[0])))
	}
	e.ts = time.Unix(0, ns).UTC()
	if len(parts[1]) == 0 || parts[1][0] != '"' {
		return errors.New("the line is not a string")
	}
	if err := json.Unmarshal(parts[1], &e.line); err != nil {
		return fmt.Errorf("line: %w", err)
	}
	if len(parts) == 3 {
		if err := json.Unmarshal(parts[2], &e.meta); err != nil {
			return fmt.Errorf("structured metadata (an object of strings): %w", err)
		}
	}
	return nil
}

func decodeJSON(raw []byte) ([]ingest.Line, error) {
	var req jsonPush
	if err := json.Unmarshal(raw, &req); err != nil {
		return nil, badRequest("JSON push request: %w", err)
	}
	count := 0
	for i := range req.Streams {
		count += len(req.Streams[i].Values)
	}
	lines := make([]ingest.Line, 0, count)
	var ls, meta []label
	for i := range req.Streams {
		s := &req.Streams[i]
		if len(s.Values) == 0 {
			continue
		}
		ls = ls[:0]
		for k, v := range s.Stream {
			if k == "" {
				return nil, badRequest("stream %d: a label with an empty name", i)
			}
			if v != "" {
				ls = append(ls, label{name: cleanText(k), value: cleanText(v)})
			}
		}
		if len(ls) == 0 {
			return nil, badRequest("stream %d: %w", i, errNoLabels)
		}
		sortLabels(ls)
		st := newStream(ls)
		for j := range s.Values {
			e := &s.Values[j]
			meta = meta[:0]
			for k, v := range e.meta {
				meta = append(meta, label{name: k, value: v})
			}
			sortLabels(meta)
			lines = append(lines, st.line(e.ts, e.line, meta))
		}
	}
	return lines, nil
}

// stream is what a stream's entries share: their fields (the labels),
// identity and host.
type stream struct {
	fields map[string]string
	stream string
	host   string
}

func newStream(ls []label) stream {
	f := make(map[string]string, len(ls)+1)
	for _, l := range ls {
		f[l.name] = l.value
	}
	levelField(f)
	host := f["host"]
	if host == "" {
		host = f["hostname"]
	}
	return stream{fields: f, stream: canonical(ls), host: host}
}

// levelField names a level the labels give as detected_level (what
// Loki and Alloy detect) level too, unless there is one.
func levelField(f map[string]string) {
	if _, ok := f["level"]; !ok {
		if v := f["detected_level"]; v != "" {
			f["level"] = v
		}
	}
}

// line makes one entry's ingest.Line. Entries without structured
// metadata share the stream's fields map (nothing downstream writes
// to a record's fields); metadata adds fields, a stream label of the
// same name winning.
func (s *stream) line(ts time.Time, text string, meta []label) ingest.Line {
	fields := s.fields
	if len(meta) > 0 {
		fields = maps.Clone(s.fields)
		added := false
		for _, m := range meta {
			if m.name == "" || m.value == "" {
				continue
			}
			name := cleanText(m.name)
			if _, ok := fields[name]; !ok {
				fields[name] = cleanText(m.value)
				added = true
			}
		}
		if added {
			levelField(fields)
		} else {
			fields = s.fields
		}
	}
	text, flags := cleanLine(text)
	return ingest.Line{Stream: s.stream, Record: pipeline.Record{
		TS: ts, Host: s.host, Source: Source, Line: text, Fields: fields, Flags: flags,
	}}
}

// cleanLine removes NUL bytes and replaces invalid UTF-8, flagging each
// change as the tailer does.
func cleanLine(s string) (string, []string) {
	var flags []string
	if strings.IndexByte(s, 0) >= 0 {
		s = strings.ReplaceAll(s, "\x00", "")
		flags = append(flags, pipeline.FlagNUL)
	}
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
		flags = append(flags, pipeline.FlagInvalidUTF8)
	}
	return s, flags
}

func sortLabels(ls []label) {
	slices.SortFunc(ls, func(a, b label) int { return strings.Compare(a.name, b.name) })
}
