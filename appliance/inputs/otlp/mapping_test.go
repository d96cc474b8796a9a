package otlp

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	collogpb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

func intv(i int64) *commonpb.AnyValue {
	return &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: i}}
}

func kvlist(kvs ...*commonpb.KeyValue) *commonpb.AnyValue {
	return &commonpb.AnyValue{Value: &commonpb.AnyValue_KvlistValue{KvlistValue: &commonpb.KeyValueList{Values: kvs}}}
}

func array(vs ...*commonpb.AnyValue) *commonpb.AnyValue {
	return &commonpb.AnyValue{Value: &commonpb.AnyValue_ArrayValue{ArrayValue: &commonpb.ArrayValue{Values: vs}}}
}

func TestBodyText(t *testing.T) {
	f := func(v *commonpb.AnyValue, want string) {
		t.Helper()
		var buf []byte
		if got := bodyText(v, &buf); got != want {
			t.Errorf("body %v: %q, want %q", v, got, want)
		}
		if strings.HasPrefix(want, "{") || strings.HasPrefix(want, "[") {
			if !json.Valid([]byte(want)) {
				t.Errorf("body %v: %q is not JSON", v, want)
			}
		}
	}
	f(nil, "")
	f(&commonpb.AnyValue{}, "")
	f(str("plain \"text\"\n"), "plain \"text\"\n")
	f(intv(-42), "-42")
	f(&commonpb.AnyValue{Value: &commonpb.AnyValue_DoubleValue{DoubleValue: 0.25}}, "0.25")
	f(&commonpb.AnyValue{Value: &commonpb.AnyValue_BoolValue{BoolValue: true}}, "true")
	f(&commonpb.AnyValue{Value: &commonpb.AnyValue_BytesValue{BytesValue: []byte("hi")}}, "aGk=")
	f(kvlist(attr("msg", str("a \"quoted\"\tline\x01")), attr("n", intv(3)), attr("inner", kvlist(attr("ok", &commonpb.AnyValue{Value: &commonpb.AnyValue_BoolValue{BoolValue: false}})))),
		`{"msg":"a \"quoted\"\tline\u0001","n":3,"inner":{"ok":false}}`)
	f(array(str("x"), intv(1), &commonpb.AnyValue{}, &commonpb.AnyValue{Value: &commonpb.AnyValue_DoubleValue{DoubleValue: math.Inf(1)}}, &commonpb.AnyValue{Value: &commonpb.AnyValue_BytesValue{BytesValue: []byte{0xff}}}),
		`["x",1,null,"Infinity","/w=="]`)
	f(kvlist(attr("bad", str("\xff\xfeok"))), `{"bad":"\ufffd\ufffdok"}`)
}

func TestLevel(t *testing.T) {
	f := func(text string, n logspb.SeverityNumber, want string) {
		t.Helper()
		if got := level(text, n); got != want {
			t.Errorf("level(%q, %d) = %q, want %q", text, n, got, want)
		}
	}
	f("", 0, "")
	f("", 25, "")
	for n, want := range map[logspb.SeverityNumber]string{1: "trace", 4: "trace", 5: "debug", 8: "debug", 9: "info", 12: "info", 13: "warn", 16: "warn", 17: "error", 20: "error", 21: "fatal", 24: "fatal"} {
		f("", n, want)
	}
	f("ERROR", 9, "error")
	f(" Information ", 0, "information")
}

func TestToLines(t *testing.T) {
	tid := []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	res := func(order ...int) *resourcepb.Resource {
		all := []*commonpb.KeyValue{
			attr("service.name", str("api")), attr("host.name", str("h1")),
			attr("k8s", kvlist(attr("pod", kvlist(attr("name", str("api-0")))), attr("ns", str("prod")))),
			attr("", str("no key")), attr("empty", &commonpb.AnyValue{}), nil,
			attr("clash", str("resource")),
		}
		out := make([]*commonpb.KeyValue, len(order))
		for i, o := range order {
			out[i] = all[o]
		}
		return &resourcepb.Resource{Attributes: out}
	}
	req := &collogpb.ExportLogsServiceRequest{ResourceLogs: []*logspb.ResourceLogs{{
		Resource: res(0, 1, 2, 3, 4, 5, 6),
		ScopeLogs: []*logspb.ScopeLogs{{
			Scope: &commonpb.InstrumentationScope{Name: "lib", Attributes: []*commonpb.KeyValue{attr("clash", str("scope"))}},
			LogRecords: []*logspb.LogRecord{
				{ObservedTimeUnixNano: 5e18, Body: str("one"), TraceId: tid, SpanId: make([]byte, 8), Attributes: []*commonpb.KeyValue{attr("clash", str("record")), attr("list", array(str("a"), intv(2)))}},
				{TimeUnixNano: math.MaxUint64, Body: str("two"), TraceId: tid[:15], SeverityNumber: 18},
				{},
				nil,
			},
		}, {
			LogRecords: []*logspb.LogRecord{{EventName: "evt"}},
		}},
	}, {
		// The same resource, attributes in another order: the same stream.
		Resource:  res(6, 5, 4, 3, 2, 1, 0),
		ScopeLogs: []*logspb.ScopeLogs{{Scope: &commonpb.InstrumentationScope{Name: "lib", Attributes: []*commonpb.KeyValue{attr("clash", str("scope"))}}, LogRecords: []*logspb.LogRecord{{Body: str("three")}}}},
	}, {}, nil}}
	m := toLines(req)
	if m.rejected != 2 || len(m.lines) != 4 {
		t.Fatalf("%d lines, %d rejected; want 4 and 2", len(m.lines), m.rejected)
	}
	one, two, evt, three := m.lines[0], m.lines[1], m.lines[2], m.lines[3]
	wantOne := map[string]string{
		"service.name": "api", "host.name": "h1", "k8s.pod.name": "api-0", "k8s.ns": "prod", "scope.name": "lib",
		"clash": "record", "list": `["a",2]`, "trace_id": "0102030405060708090a0b0c0d0e0f10",
	}
	if len(one.Record.Fields) != len(wantOne) {
		t.Errorf("fields %v, want %v", one.Record.Fields, wantOne)
	}
	for k, v := range wantOne {
		if one.Record.Fields[k] != v {
			t.Errorf("field %s = %q, want %q", k, one.Record.Fields[k], v)
		}
	}
	if !one.Record.TS.Equal(time.Unix(0, 5e18)) || one.Record.Host != "h1" || one.Record.Source != Source || one.Record.Line != "one" {
		t.Errorf("record %+v", one.Record)
	}
	// A time past int64 falls back to the (absent) observed time: zero,
	// the acceptor's now. A 15-byte trace id is no trace id.
	if !two.Record.TS.IsZero() || two.Record.Fields["trace_id"] != "" || two.Record.Fields["level"] != "error" {
		t.Errorf("record two %+v", two.Record)
	}
	if evt.Record.Fields["event.name"] != "evt" || evt.Record.Fields["scope.name"] != "" || evt.Record.Line != "" {
		t.Errorf("event %+v", evt.Record)
	}
	if one.Stream != two.Stream || one.Stream != three.Stream || one.Stream == evt.Stream {
		t.Errorf("streams %q %q %q %q: want the first, second and fourth equal, the event's other", one.Stream, two.Stream, three.Stream, evt.Stream)
	}
	if three.Record.Fields["clash"] != "scope" {
		t.Errorf("scope attribute should win over resource: %v", three.Record.Fields)
	}
}

// The JSON decoder takes what OTLP/JSON allows: hex ids in either case,
// base64 ids as protojson writes them, int64 as strings or numbers, enum
// names or numbers, proto names, unknown fields.
func TestDecodeJSON(t *testing.T) {
	in := `{"resource_logs":[{"scopeLogs":[{"log_records":[
		{"traceId":"5b8efff798038103d269b633813fc60c","span_id":"EEE19B7EC3C1B174","timeUnixNano":"12","severityNumber":"SEVERITY_NUMBER_WARN","body":{"intValue":7},"futureField":{"x":1}},
		{"traceId":"W47/95gDgQPSabYzgT/GDA==","spanId":"7uGbfsPBsXQ=","time_unix_nano":13,"severity_number":17,"body":{"kvlistValue":{"values":[{"key":"a","value":{"stringValue":"b"}}]}}}
	]}]}]}`
	req, err := decode([]byte(in), formatJSON)
	if err != nil {
		t.Fatal(err)
	}
	m := toLines(req)
	if len(m.lines) != 2 {
		t.Fatalf("%d lines", len(m.lines))
	}
	for i, l := range m.lines {
		r := l.Record
		if r.Fields["trace_id"] != "5b8efff798038103d269b633813fc60c" || r.Fields["span_id"] != "eee19b7ec3c1b174" {
			t.Errorf("line %d: ids %v", i, r.Fields)
		}
		if r.TS.UnixNano() != int64(12+i) {
			t.Errorf("line %d: ts %d", i, r.TS.UnixNano())
		}
	}
	if m.lines[0].Record.Line != "7" || m.lines[0].Record.Fields["level"] != "warn" || m.lines[1].Record.Line != `{"a":"b"}` || m.lines[1].Record.Fields["level"] != "error" {
		t.Errorf("lines %+v", m.lines)
	}
	for _, bad := range []string{
		`{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"traceId":"5b8efff798038103d269b633813fc60"}]}]}]}`, // 31 digits
		`{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"spanId":"zzzzzzzzzzzzzzzz"}]}]}]}`,                 // base64, not hex
		`{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"timeUnixNano":"soon"}]}]}]}`,                       // not a number
		`{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":{"stringValue":"a","intValue":1}}]}]}]}`,     // two kinds of one oneof
		`[]`,
	} {
		if _, err := decode([]byte(bad), formatJSON); err == nil {
			t.Errorf("%s: decoded", bad)
		}
	}
}

// readBody's limits: the compressed and the decompressed size, each
// bounded by max.
func TestReadBodyLimits(t *testing.T) {
	payload := bytes.Repeat([]byte("0123456789"), 100) // 1000 bytes
	var z bytes.Buffer
	w := gzip.NewWriter(&z)
	_, _ = w.Write(payload)
	_ = w.Close()
	noMax := func(error) bool { return false }
	f := func(body []byte, enc string, max int64, wantErr error) {
		t.Helper()
		var buf bytes.Buffer
		err := readBody(&buf, bytes.NewReader(body), enc, max, new(gzip.Reader), noMax)
		if wantErr == nil && (err != nil || !bytes.Equal(buf.Bytes(), payload)) {
			t.Errorf("%s max %d: %v, %d bytes", enc, max, err, buf.Len())
		}
		if wantErr != nil && !errors.Is(err, wantErr) {
			t.Errorf("%s max %d: %v, want %v", enc, max, err, wantErr)
		}
	}
	f(payload, "", 1000, nil)
	f(payload, "identity", 999, errTooLarge)
	f(z.Bytes(), "gzip", 1000, nil)
	f(z.Bytes(), "GZIP", 999, errTooLarge) // compressed it is far smaller
	f(z.Bytes(), "deflate", 1000, errEncoding)
}

// FuzzDecode feeds arbitrary bodies to the decoders (protobuf, JSON,
// each also gzip) and maps what decodes: nothing may panic, and every
// line taken is one record of the request.
func FuzzDecode(f *testing.F) {
	seed := request("fuzz", "fh", &logspb.LogRecord{TimeUnixNano: 1, Body: kvlist(attr("a", array(str("x"), intv(1)))), Attributes: []*commonpb.KeyValue{attr("k", kvlist(attr("n", str("v"))))}, TraceId: make([]byte, 16)})
	pb, _ := proto.Marshal(seed)
	js, _ := protojson.Marshal(seed)
	f.Add(pb, uint8(0))
	f.Add(js, uint8(1))
	var z bytes.Buffer
	w := gzip.NewWriter(&z)
	_, _ = w.Write(pb)
	_ = w.Close()
	f.Add(z.Bytes(), uint8(2))
	f.Add([]byte(`{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"traceId":"5B8EFFF798038103D269B633813FC60C","body":{"arrayValue":{"values":[{}]}}}]}]}]}`), uint8(1))
	f.Fuzz(func(t *testing.T, body []byte, kind uint8) {
		ft := formatProto
		if kind&1 == 1 {
			ft = formatJSON
		}
		if kind&2 == 2 {
			var buf bytes.Buffer
			if err := readBody(&buf, bytes.NewReader(body), "gzip", 1<<20, new(gzip.Reader), func(error) bool { return false }); err != nil {
				return
			}
			body = buf.Bytes()
		}
		req, err := decode(body, ft)
		if err != nil {
			return
		}
		n := 0
		for _, rl := range req.GetResourceLogs() {
			for _, sl := range rl.GetScopeLogs() {
				n += len(sl.GetLogRecords())
			}
		}
		m := toLines(req)
		if len(m.lines)+m.rejected != n {
			t.Fatalf("%d lines + %d rejected of %d records", len(m.lines), m.rejected, n)
		}
		for _, l := range m.lines {
			if l.Record.Source != Source || l.Stream == "" {
				t.Fatalf("line %+v", l)
			}
			if id := l.Record.Fields["trace_id"]; id != "" && len(id) != 32 {
				t.Fatalf("trace id %q", id)
			}
		}
	})
}
