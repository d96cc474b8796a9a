// Package otlp is the OTLP/HTTP logs input: POST /v1/logs with an
// ExportLogsServiceRequest in protobuf (application/x-protobuf) or
// OTLP's JSON (application/json), plain or gzip, as the OpenTelemetry
// SDKs' and the Collector's otlphttp exporters send it.
//
// Files: otlp.go the handler and its answers, decode.go bodies (size
// limits, gzip, protobuf and JSON), mapping.go log records to lines.
//
// # What is acknowledged when
//
// One request is one ingest.Acceptor.Accept call, and the handler
// answers only after it returns: 200 means every record taken is durable
// (indexed, or acked by Kafka), so a client that gets 200 may forget the
// batch. Any other answer means the client should send it again if the
// code is one OTLP clients retry (429, 502, 503, 504); records of a
// request that failed after it was taken may be durable already, and a
// retry of them is recognised by ingest's identity (the resource and
// scope attributes as the stream, the time, the body and the fields) and
// not indexed twice. A record with no time (neither time_unix_nano nor
// observed_time_unix_nano) is stamped with the time it arrived, so its
// retry is not recognised; the SDKs always set the observed time.
//
// # Answers (as the OTLP/HTTP specification says)
//
//   - 200 with an ExportLogsServiceResponse in the request's encoding;
//     partial_success counts the records refused: a record with neither
//     a body, attributes nor an event name carries nothing to index and
//     is refused (everything else is taken).
//   - 400 with a google.rpc.Status for a body that does not decode (bad
//     protobuf or JSON, invalid UTF-8 in a protobuf string, a trace or
//     span id that is not hex, broken gzip).
//   - 413 when the body, compressed or decompressed, is over
//     Config.MaxBody; 415 for another Content-Type or a Content-Encoding
//     other than gzip and identity.
//   - 429 (overload) or 503 (shutting down, or the lines could not be
//     written) with Retry-After, from ingest.Status.
//
// # Mapping
//
// The record's body is the line (a string as it is, a kvlist or array
// as JSON, so the index's JSON parser finds a kvlist body's fields);
// resource, scope (scope.name, scope.version) and record attributes are
// fields under their OTel names (service.name, host.name, …), nested
// kvlists flattened with dots, arrays as JSON; the severity is the
// "level" field; trace and span ids are hex in "trace_id" and "span_id";
// the resource's host.name is the line's host. Source is always "otlp".
package otlp

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"

	"github.com/go-chi/chi/v5"
	collogpb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	statuspb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/logbox/logbox/appliance/ingest"
)

// Path is the OTLP/HTTP logs path.
const Path = "/v1/logs"

// DefaultMaxBody is Config.MaxBody's default: 16 MiB.
const DefaultMaxBody = 16 << 20

// Config configures the input.
type Config struct {
	// MaxBody bounds a request's body, both as sent and decompressed
	// (default DefaultMaxBody); over it the request is answered 413.
	MaxBody int64
}

// Handler serves POST /v1/logs into an Acceptor; safe for concurrent
// use. It holds no goroutines: the HTTP server's shutdown ends it.
type Handler struct {
	acc   *ingest.Acceptor
	cfg   Config
	log   *slog.Logger
	bufs  sync.Pool // *bytes.Buffer
	gzips sync.Pool // *gzip.Reader
}

// New returns the handler feeding acc. The caller keeps acc (and closes
// it after the HTTP server has stopped).
func New(acc *ingest.Acceptor, cfg Config, log *slog.Logger) *Handler {
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = DefaultMaxBody
	}
	return &Handler{acc: acc, cfg: cfg, log: log.With("component", "input", "input", "otlp")}
}

// Mount registers POST /v1/logs on r.
func (h *Handler) Mount(r chi.Router) {
	r.Post(Path, h.ServeHTTP)
}

// google.rpc.Code values of the Status bodies.
const (
	codeInvalidArgument   = 3
	codeResourceExhausted = 8
	codeUnavailable       = 14
)

// maxPooledBuf: bigger read buffers are left to the garbage collector.
const maxPooledBuf = 4 << 20

// ServeHTTP handles one export request (see the package doc).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ct := r.Header.Get("Content-Type")
	f, ok := formatOf(ct)
	if !ok {
		h.refuse(w, formatJSON, http.StatusUnsupportedMediaType, codeInvalidArgument,
			fmt.Sprintf("Content-Type %q is not OTLP/HTTP: send application/x-protobuf or application/json", ct))
		return
	}
	if r.ContentLength > h.cfg.MaxBody {
		h.refuse(w, f, http.StatusRequestEntityTooLarge, codeResourceExhausted, h.tooLarge())
		return
	}
	if h.acc.Busy() {
		// Refused before the body is read: overload costs no memory.
		w.Header().Set("Retry-After", "1")
		h.write(w, f, http.StatusTooManyRequests, &statuspb.Status{Code: int32(codeResourceExhausted), Message: ingest.ErrOverloaded.Error()})
		return
	}

	buf, _ := h.bufs.Get().(*bytes.Buffer)
	if buf == nil {
		buf = new(bytes.Buffer)
	}
	defer func() {
		if buf.Cap() <= maxPooledBuf {
			buf.Reset()
			h.bufs.Put(buf)
		}
	}()
	zr, _ := h.gzips.Get().(*gzip.Reader)
	if zr == nil {
		zr = new(gzip.Reader)
	}
	err := readBody(buf, http.MaxBytesReader(w, r.Body, h.cfg.MaxBody), r.Header.Get("Content-Encoding"), h.cfg.MaxBody, zr, isMaxBytes)
	h.gzips.Put(zr)
	switch {
	case errors.Is(err, errTooLarge):
		h.refuse(w, f, http.StatusRequestEntityTooLarge, codeResourceExhausted, h.tooLarge())
		return
	case errors.Is(err, errEncoding):
		h.refuse(w, f, http.StatusUnsupportedMediaType, codeInvalidArgument, err.Error())
		return
	case err != nil:
		h.refuse(w, f, http.StatusBadRequest, codeInvalidArgument, err.Error())
		return
	}
	req, err := decode(buf.Bytes(), f)
	if err != nil {
		h.refuse(w, f, http.StatusBadRequest, codeInvalidArgument, err.Error())
		return
	}
	m := toLines(req)
	if m.rejected > 0 {
		h.acc.Reject(m.rejected, rejectReason)
	}
	if len(m.lines) > 0 {
		if _, err := h.acc.Accept(r.Context(), m.lines); err != nil {
			code, retryAfter := ingest.Status(err)
			rpc := codeUnavailable
			if code == http.StatusTooManyRequests {
				rpc = codeResourceExhausted
			}
			if retryAfter != "" {
				w.Header().Set("Retry-After", retryAfter)
			}
			h.log.Debug("export not taken", "status", code, "err", err)
			h.write(w, f, code, &statuspb.Status{Code: int32(rpc), Message: err.Error()})
			return
		}
	}
	resp := &collogpb.ExportLogsServiceResponse{}
	if m.rejected > 0 {
		resp.PartialSuccess = &collogpb.ExportLogsPartialSuccess{RejectedLogRecords: int64(m.rejected), ErrorMessage: rejectReason}
	}
	h.write(w, f, http.StatusOK, resp)
}

func (h *Handler) tooLarge() string {
	return fmt.Sprintf("body larger than %d bytes (compressed or decompressed): send smaller batches", h.cfg.MaxBody)
}

// refuse answers a request the input cannot take as sent, and counts it.
func (h *Handler) refuse(w http.ResponseWriter, f format, status, rpc int, msg string) {
	h.acc.Reject(1, msg)
	h.log.Debug("export refused", "status", status, "err", msg)
	h.write(w, f, status, &statuspb.Status{Code: int32(rpc), Message: msg})
}

// write answers with m in format f.
func (h *Handler) write(w http.ResponseWriter, f format, status int, m proto.Message) {
	var body []byte
	var err error
	ct := contentProto
	if f == formatJSON {
		ct = contentJSON
		body, err = protojson.Marshal(m)
	} else {
		body, err = proto.Marshal(m)
	}
	if err != nil {
		// Only a broken invariant: these messages always marshal.
		panic(fmt.Sprintf("otlp: marshal answer: %v", err))
	}
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func isMaxBytes(err error) bool {
	var mb *http.MaxBytesError
	return errors.As(err, &mb)
}
