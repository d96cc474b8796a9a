package otlp

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"strings"

	collogpb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// format is a request's (and its answer's) encoding.
type format int

const (
	formatProto format = iota + 1
	formatJSON
)

const (
	contentProto = "application/x-protobuf"
	contentJSON  = "application/json"
)

// formatOf maps a Content-Type to its format; false for one OTLP/HTTP
// does not define. application/protobuf is taken as a synonym of
// application/x-protobuf.
func formatOf(contentType string) (format, bool) {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return 0, false
	}
	switch mt {
	case contentProto, "application/protobuf":
		return formatProto, true
	case contentJSON:
		return formatJSON, true
	}
	return 0, false
}

// Errors reading a body; each maps to its status in ServeHTTP.
var (
	errTooLarge   = errors.New("body larger than the limit")
	errEncoding   = errors.New("unsupported Content-Encoding")
	errCompressed = errors.New("body is not valid gzip")
	errRead       = errors.New("body could not be read")
)

// readBody reads body into buf, gunzipped when enc says gzip. max bounds
// the bytes read (compressed) and the bytes decompressed: past either,
// errTooLarge. isMaxBytes tells the reader's own limit error (an
// http.MaxBytesReader's) from other read errors.
func readBody(buf *bytes.Buffer, body io.Reader, enc string, max int64, zr *gzip.Reader, isMaxBytes func(error) bool) error {
	src := body
	switch strings.ToLower(strings.TrimSpace(enc)) {
	case "", "identity":
	case "gzip", "x-gzip":
		if err := zr.Reset(body); err != nil {
			if isMaxBytes(err) {
				return errTooLarge
			}
			return fmt.Errorf("%w: %w", errCompressed, err)
		}
		src = zr
	default:
		return fmt.Errorf("%w %q: only gzip and identity are taken", errEncoding, enc)
	}
	n, err := buf.ReadFrom(io.LimitReader(src, max+1))
	switch {
	case err != nil && isMaxBytes(err):
		return errTooLarge
	case err != nil && src == body:
		return fmt.Errorf("%w: %w", errRead, err)
	case err != nil:
		return fmt.Errorf("%w: %w", errCompressed, err)
	case n > max:
		return errTooLarge
	}
	return nil
}

// decode decodes an ExportLogsServiceRequest in format f. JSON follows
// OTLP's JSON rules (protojson field names, either lowerCamelCase or the
// proto names; 64-bit integers as strings or numbers; enums as numbers
// or names; unknown fields ignored; trace and span ids in hex).
func decode(body []byte, f format) (*collogpb.ExportLogsServiceRequest, error) {
	req := &collogpb.ExportLogsServiceRequest{}
	switch f {
	case formatProto:
		if err := proto.Unmarshal(body, req); err != nil {
			return nil, fmt.Errorf("decode protobuf: %w", err)
		}
	case formatJSON:
		if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(body, req); err != nil {
			return nil, fmt.Errorf("decode JSON: %w", err)
		}
		if err := hexIDs(req); err != nil {
			return nil, err
		}
	default:
		return nil, errors.New("decode: unknown format")
	}
	return req, nil
}

// hexIDs undoes protojson's reading of OTLP/JSON's hex trace and span ids.
//
// protojson reads a bytes field as base64. A hex id is valid base64 too
// (hex digits are base64 digits, and 32 or 16 characters are whole
// base64 quanta without padding), so it arrives as 24 or 12 bytes from
// which base64 gives the exact text back; that text is then read as hex.
// An id of the right size (16 or 8 bytes) was sent in base64 as protojson
// writes it, and is kept as it is.
func hexIDs(req *collogpb.ExportLogsServiceRequest) error {
	fix := func(id []byte, size int, name string) ([]byte, error) {
		if len(id) == 0 || len(id) == size {
			return id, nil
		}
		text := base64.StdEncoding.EncodeToString(id)
		if len(text) == 2*size {
			if out, err := hex.DecodeString(text); err == nil {
				return out, nil
			}
		}
		return nil, fmt.Errorf("decode JSON: %s %q is not %d bytes in hex", name, text, size)
	}
	for _, rl := range req.ResourceLogs {
		for _, sl := range rl.GetScopeLogs() {
			for _, lr := range sl.GetLogRecords() {
				if lr == nil {
					continue
				}
				var err error
				if lr.TraceId, err = fix(lr.TraceId, 16, "traceId"); err != nil {
					return err
				}
				if lr.SpanId, err = fix(lr.SpanId, 8, "spanId"); err != nil {
					return err
				}
			}
		}
	}
	return nil
}
