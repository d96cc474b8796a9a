package loki

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/golang/snappy"
	"github.com/grafana/loki/pkg/push"

	"github.com/logbox/logbox/appliance/ingest"
)

// FuzzDecode feeds arbitrary bytes to every decoding path (a protobuf
// body as clients compress it, bytes taken as a snappy block, JSON, gzip
// JSON through the request path): none panics, and whatever decodes
// gives lines the index takes (valid UTF-8 without NUL, a time, a
// stream identity that parses back).
func FuzzDecode(f *testing.F) {
	req := push.PushRequest{Streams: []push.Stream{{
		Labels: `{job="app", host="web1"}`,
		Entries: []push.Entry{
			{Timestamp: time.Unix(1700000000, 5), Line: "hello"},
			{Timestamp: time.Unix(1700000001, 0), Line: "with metadata", StructuredMetadata: push.LabelsAdapter{{Name: "trace_id", Value: "abc"}}},
		},
	}}}
	pb, err := req.Marshal()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(pb)
	f.Add(snappy.Encode(nil, pb))
	f.Add([]byte(`{"streams":[{"stream":{"job":"app"},"values":[["1700000000000000000","line"],["1","x",{"a":"b"}]]}]}`))
	f.Add([]byte(`{"streams":[{"stream":{"job":"app"},"values":[[1700000000000000000,"line"]]}]}`))
	f.Add([]byte(`{"streams":[{"stream":{},"values":[]}]}`))
	const limit = 1 << 20
	f.Fuzz(func(t *testing.T, data []byte) {
		check := func(path string, lines []ingest.Line, err error) {
			if err != nil {
				if _, ok := err.(*requestError); !ok {
					t.Fatalf("%s: error %T %v is not a requestError", path, err, err)
				}
				return
			}
			for _, l := range lines {
				r := l.Record
				if !utf8.ValidString(r.Line) || strings.IndexByte(r.Line, 0) >= 0 {
					t.Fatalf("%s: line %q not cleaned", path, r.Line)
				}
				for k, v := range r.Fields {
					if !utf8.ValidString(k) || !utf8.ValidString(v) || k == "" || v == "" {
						t.Fatalf("%s: field %q=%q", path, k, v)
					}
				}
				if r.TS.IsZero() || r.Source != Source {
					t.Fatalf("%s: ts %v source %q", path, r.TS, r.Source)
				}
				if _, err := parseLabels(l.Stream); err != nil {
					t.Fatalf("%s: stream %q does not parse: %v", path, l.Stream, err)
				}
			}
		}
		lines, err := decodeProtobuf(snappy.Encode(nil, data), limit, nil)
		check("protobuf", lines, err)
		lines, err = decodeProtobuf(data, limit, nil)
		check("snappy block", lines, err)
		lines, err = decodeJSON(data)
		check("json", lines, err)
		for _, enc := range []string{"gzip", "deflate"} {
			r := httptest.NewRequest(http.MethodPost, PushPath, bytes.NewReader(data))
			r.Header.Set("Content-Type", "application/json")
			r.Header.Set("Content-Encoding", enc)
			lines, err = decodeRequest(r, limit, &memBudget{limit: 3 * limit})
			check(enc, lines, err)
		}
	})
}
