package otlp

import (
	"encoding/base64"
	"encoding/hex"
	"github.com/logbox/logbox/appliance/jsonstr"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	collogpb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"

	"github.com/logbox/logbox/appliance/ingest"
	"github.com/logbox/logbox/appliance/pipeline"
)

// Source is every OTLP line's Record.Source. It is constant on purpose:
// with the host it decides the Kafka partition, and one partition per
// sender host keeps a sender's lines in order.
const Source = "otlp"

// Field names the input sets besides the attributes' own names.
const (
	FieldLevel        = "level"
	FieldTraceID      = "trace_id"
	FieldSpanID       = "span_id"
	FieldScopeName    = "scope.name"
	FieldScopeVersion = "scope.version"
	FieldEventName    = "event.name"
	attrHostName      = "host.name"
)

// kv is one flattened attribute.
type kv struct{ k, v string }

// mapped is what a request became: the lines to accept and the records
// refused.
type mapped struct {
	lines    []ingest.Line
	rejected int
}

// rejectReason is the partial_success message for refused records.
const rejectReason = "log records with neither a body, attributes nor an event name carry nothing to index and were rejected"

// toLines maps a request's log records to lines, in the request's order.
// A record with neither a body, attributes nor an event name is refused
// (counted in rejected), everything else is taken.
//
// Fields, most specific last so that it wins a name clash: resource
// attributes, scope.name, scope.version, scope attributes, record
// attributes, then event.name, level, trace_id and span_id. Nested
// kvlists are flattened with dots, arrays written as JSON.
func toLines(req *collogpb.ExportLogsServiceRequest) mapped {
	n := 0
	for _, rl := range req.GetResourceLogs() {
		for _, sl := range rl.GetScopeLogs() {
			n += len(sl.GetLogRecords())
		}
	}
	m := mapped{lines: make([]ingest.Line, 0, n)}
	var res, scope []kv
	var buf []byte
	for _, rl := range req.GetResourceLogs() {
		res = flattenAttrs(res[:0], "", rl.GetResource().GetAttributes(), &buf)
		host := ""
		for _, f := range res {
			if f.k == attrHostName {
				host = f.v
			}
		}
		for _, sl := range rl.GetScopeLogs() {
			scope = scope[:0]
			if s := sl.GetScope(); s != nil {
				if s.Name != "" {
					scope = append(scope, kv{FieldScopeName, s.Name})
				}
				if s.Version != "" {
					scope = append(scope, kv{FieldScopeVersion, s.Version})
				}
				scope = flattenAttrs(scope, "", s.Attributes, &buf)
			}
			stream := streamOf(res, scope)
			for _, lr := range sl.GetLogRecords() {
				if lr == nil || (isEmpty(lr.Body) && len(lr.Attributes) == 0 && lr.EventName == "") {
					m.rejected++
					continue
				}
				m.lines = append(m.lines, ingest.Line{Stream: stream, Record: record(lr, host, res, scope, &buf)})
			}
		}
	}
	return m
}

// record maps one log record.
func record(lr *logspb.LogRecord, host string, res, scope []kv, buf *[]byte) pipeline.Record {
	fields := make(map[string]string, len(res)+len(scope)+len(lr.Attributes)+4)
	for _, f := range res {
		fields[f.k] = f.v
	}
	for _, f := range scope {
		fields[f.k] = f.v
	}
	var attrs []kv
	attrs = flattenAttrs(attrs, "", lr.Attributes, buf)
	for _, f := range attrs {
		fields[f.k] = f.v
	}
	if lr.EventName != "" {
		fields[FieldEventName] = lr.EventName
	}
	if l := level(lr.SeverityText, lr.SeverityNumber); l != "" {
		fields[FieldLevel] = l
	}
	if validID(lr.TraceId, 16) {
		fields[FieldTraceID] = hex.EncodeToString(lr.TraceId)
	}
	if validID(lr.SpanId, 8) {
		fields[FieldSpanID] = hex.EncodeToString(lr.SpanId)
	}
	if len(fields) == 0 {
		fields = nil
	}
	return pipeline.Record{
		TS:     eventTime(lr.TimeUnixNano, lr.ObservedTimeUnixNano),
		Host:   host,
		Source: Source,
		Line:   bodyText(lr.Body, buf),
		Fields: fields,
	}
}

// eventTime is the record's time, else the time it was observed, else
// zero (the Acceptor stamps now).
func eventTime(t, observed uint64) time.Time {
	for _, v := range [...]uint64{t, observed} {
		if v != 0 && v <= math.MaxInt64 {
			return time.Unix(0, int64(v)).UTC()
		}
	}
	return time.Time{}
}

// validID reports whether id is an OTLP trace or span id of size bytes:
// the right length and not all zeros.
func validID(id []byte, size int) bool {
	if len(id) != size {
		return false
	}
	for _, b := range id {
		if b != 0 {
			return true
		}
	}
	return false
}

// level is the record's level: the severity text lower-cased, else the
// severity number's range name, else "".
func level(text string, n logspb.SeverityNumber) string {
	if t := strings.TrimSpace(text); t != "" {
		return strings.ToLower(t)
	}
	switch {
	case n >= 1 && n <= 4:
		return "trace"
	case n >= 5 && n <= 8:
		return "debug"
	case n >= 9 && n <= 12:
		return "info"
	case n >= 13 && n <= 16:
		return "warn"
	case n >= 17 && n <= 20:
		return "error"
	case n >= 21 && n <= 24:
		return "fatal"
	}
	return ""
}

// isEmpty reports whether v holds no value (absent, unset, or an empty
// string).
func isEmpty(v *commonpb.AnyValue) bool {
	if v == nil {
		return true
	}
	switch x := v.Value.(type) {
	case nil, *commonpb.AnyValue_StringValueStrindex:
		return true
	case *commonpb.AnyValue_StringValue:
		return x.StringValue == ""
	}
	return false
}

// bodyText is a record's line: a string body as it is, a number or bool
// as written in JSON, bytes in base64, an array or kvlist as a JSON
// document (so the index's JSON parser finds a kvlist's fields).
func bodyText(v *commonpb.AnyValue, buf *[]byte) string {
	if v == nil {
		return ""
	}
	switch x := v.Value.(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_BytesValue:
		return base64.StdEncoding.EncodeToString(x.BytesValue)
	}
	return scalarOrJSON(v, buf)
}

// scalarOrJSON renders v as a field value or a line: numbers and bools
// as JSON writes them, arrays and kvlists as JSON documents.
func scalarOrJSON(v *commonpb.AnyValue, buf *[]byte) string {
	switch x := v.GetValue().(type) {
	case nil, *commonpb.AnyValue_StringValueStrindex:
		return ""
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_BoolValue:
		return strconv.FormatBool(x.BoolValue)
	case *commonpb.AnyValue_IntValue:
		return strconv.FormatInt(x.IntValue, 10)
	case *commonpb.AnyValue_DoubleValue:
		return formatFloat(x.DoubleValue)
	case *commonpb.AnyValue_BytesValue:
		return base64.StdEncoding.EncodeToString(x.BytesValue)
	}
	b := appendJSON((*buf)[:0], v, 0)
	*buf = b
	return string(b)
}

func formatFloat(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// maxDepth bounds how deep nested values are followed (a hostile
// request could nest deeper than the stack likes; protobuf's own limit
// is 10000).
const maxDepth = 64

// flattenAttrs appends attrs to out, nested kvlists flattened with dots
// under prefix; arrays are written as JSON, empty values left out.
func flattenAttrs(out []kv, prefix string, attrs []*commonpb.KeyValue, buf *[]byte) []kv {
	return flattenDepth(out, prefix, attrs, buf, 0)
}

func flattenDepth(out []kv, prefix string, attrs []*commonpb.KeyValue, buf *[]byte, depth int) []kv {
	for _, a := range attrs {
		if a == nil || a.Key == "" {
			continue
		}
		name := a.Key
		if prefix != "" {
			name = prefix + "." + a.Key
		}
		if l, ok := a.Value.GetValue().(*commonpb.AnyValue_KvlistValue); ok && depth < maxDepth {
			out = flattenDepth(out, name, l.KvlistValue.GetValues(), buf, depth+1)
			continue
		}
		if v := scalarOrJSON(a.Value, buf); v != "" {
			out = append(out, kv{name, v})
		}
	}
	return out
}

// streamOf renders the resource and scope attributes as a stable
// string: the sender stream of a line's identity. Sorted, so the order a
// client lists its attributes in does not matter.
func streamOf(res, scope []kv) string {
	var b strings.Builder
	write := func(label string, fs []kv) {
		s := slices.Clone(fs)
		slices.SortStableFunc(s, func(a, b kv) int { return strings.Compare(a.k, b.k) })
		b.WriteString(label)
		b.WriteByte('{')
		for i, f := range s {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.Quote(f.k))
			b.WriteByte('=')
			b.WriteString(strconv.Quote(f.v))
		}
		b.WriteByte('}')
	}
	write("resource", res)
	write("scope", scope)
	return b.String()
}

// appendJSON appends v as JSON: kvlists as objects (keys in the order
// sent), arrays as arrays, bytes as base64 strings, non-finite doubles
// as strings, an empty value as null.
func appendJSON(b []byte, v *commonpb.AnyValue, depth int) []byte {
	if depth > maxDepth {
		return append(b, "null"...)
	}
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return appendJSONString(b, x.StringValue)
	case *commonpb.AnyValue_BoolValue:
		return strconv.AppendBool(b, x.BoolValue)
	case *commonpb.AnyValue_IntValue:
		return strconv.AppendInt(b, x.IntValue, 10)
	case *commonpb.AnyValue_DoubleValue:
		if math.IsNaN(x.DoubleValue) || math.IsInf(x.DoubleValue, 0) {
			return appendJSONString(b, formatFloat(x.DoubleValue))
		}
		return strconv.AppendFloat(b, x.DoubleValue, 'g', -1, 64)
	case *commonpb.AnyValue_BytesValue:
		b = append(b, '"')
		b = base64.StdEncoding.AppendEncode(b, x.BytesValue)
		return append(b, '"')
	case *commonpb.AnyValue_ArrayValue:
		b = append(b, '[')
		for i, e := range x.ArrayValue.GetValues() {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSON(b, e, depth+1)
		}
		return append(b, ']')
	case *commonpb.AnyValue_KvlistValue:
		b = append(b, '{')
		i := 0
		for _, e := range x.KvlistValue.GetValues() {
			if e == nil {
				continue
			}
			if i > 0 {
				b = append(b, ',')
			}
			i++
			b = appendJSONString(b, e.Key)
			b = append(b, ':')
			b = appendJSON(b, e.Value, depth+1)
		}
		return append(b, '}')
	}
	return append(b, "null"...)
}

// appendJSONString appends s as a JSON string; invalid UTF-8 becomes
// U+FFFD (as encoding/json writes it).
func appendJSONString(b []byte, s string) []byte { return jsonstr.Append(b, s) }
