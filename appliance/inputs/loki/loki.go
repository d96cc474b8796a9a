// Package loki is the Loki push input: POST /loki/api/v1/push as Loki
// answers it, so Promtail, Grafana Alloy (loki.write), Fluent Bit's and
// Vector's loki outputs, and anything built on Loki's push types send to
// logbox unchanged.
//
// # Bodies
//
//   - Content-Type application/x-protobuf (or none, as Loki takes it): a
//     snappy-compressed (block format) logproto PushRequest, what
//     Promtail, Alloy and Fluent Bit send. A stream's Labels is Loki's
//     label string, `{job="app", host="web1"}`: names bare or quoted,
//     values double-quoted with Go's escapes (as Prometheus writes them)
//     or back-quoted, equality only; a label with an empty value is
//     absent, and a stream needs one label at least.
//   - Content-Type application/json: Loki's JSON (below); the time is
//     Unix nanoseconds as a string (or a number), the optional third
//     element the entry's structured metadata.
//   - Content-Encoding gzip or deflate on either (and snappy, which
//     changes nothing: the protobuf is snappy-compressed anyway).
//
// A JSON body:
//
//	{"streams":[{"stream":{"job":"app","host":"web1"},
//	  "values":[["1700000000000000000","a line"],
//	            ["1700000000000000001","another",{"trace_id":"abc"}]]}]}
//
// Config.MaxBody bounds the body as sent and again once decompressed
// (the snappy-decoded size is read from its header and checked before
// anything is decoded).
//
// # Lines
//
// Each entry becomes one line: its text the line (NUL bytes removed,
// invalid UTF-8 replaced, flagged as the tailer does), its timestamp the
// line's time, its stream labels and structured metadata its fields
// (names as they are; a stream label wins over metadata of the same
// name), a detected_level also as level when there is no level (the
// index takes Fields["level"] as the line's level over one read in the
// text). The line's host is its `host` label, else its `hostname`
// label, else the acceptor's host; its source is always "loki" (Source).
// The index parses the line as it parses a tailed one (JSON, logfmt).
//
// # When a push is acknowledged
//
// One push is one ingest.Acceptor.Accept call: the handler answers 204
// only once every entry of the push is durable (written and fsynced in
// the index, or acknowledged by Kafka on an agent; see pipeline.Batch).
// A push that is not answered 204 may still have been written, in part
// or whole; the client sends it again, as every Loki client does on a
// 429, a 5xx or a broken connection.
//
// # How a retry is recognised
//
// Loki entries have no id: an entry is identified by its stream (the
// canonical label string: sorted, as Prometheus writes it, however the
// client spelt or ordered it), host, timestamp, line and fields
// (structured metadata included). A resent push whose entries the
// acceptor remembers (ingest.Config.Window, 15 minutes by default, across
// restarts) is indexed once however often it came; the k-th of identical
// entries within one push is its own line, so a push that carries an
// entry twice is indexed with it twice, also when resent. An entry
// identical to one of an earlier push (same stream, timestamp, line and
// metadata) within the window is taken as that one's retry and not
// indexed again: Loki itself drops such duplicates.
//
// # Answers
//
// 204 success; 400 with a text message for a body that does not decode,
// bad labels or an entry without a timestamp (nothing of the push is
// taken; clients do not retry it); 413 for a body over MaxBody; 415 for
// an unknown Content-Type or Content-Encoding; 429 with Retry-After when
// too many lines are in flight or too many pushes are being read at once
// (Config.MaxBody), 503 with Retry-After when logbox is stopping or
// could not write the lines (ingest.Status). Refused pushes, 429s for
// reading included, count as the acceptor's Rejected, with the reason in
// its LastError. GET /ready answers "ready" as Loki does, for clients
// that check it.
package loki

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/logbox/logbox/appliance/ingest"
)

// PushPath is the route the input serves.
const PushPath = "/loki/api/v1/push"

// DefaultMaxBody is Config.MaxBody's default: 16 MiB.
const DefaultMaxBody = 16 << 20

// Config configures the input.
type Config struct {
	// MaxBody bounds a push's body in bytes, as sent and decompressed
	// (default DefaultMaxBody); larger pushes are answered 413. Pushes
	// being read and decoded at once hold at most 8 × MaxBody bytes
	// (a gzip or deflate push counts MaxBody for its decompressed body
	// until it is decompressed); one more is answered 429 with
	// Retry-After, so many clients at once make memory wait, not grow.
	MaxBody int64
}

// Handler serves Loki pushes into one Acceptor; safe for concurrent use.
// It starts nothing and holds nothing to close; whoever opened the
// Acceptor closes it (after the HTTP server stops).
type Handler struct {
	acc *ingest.Acceptor
	cfg Config
	mem *memBudget
	log *slog.Logger
}

// New returns the input's handler over acc (named "loki" by the caller:
// the name is the records' source name and the id log's).
func New(acc *ingest.Acceptor, cfg Config, log *slog.Logger) *Handler {
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = DefaultMaxBody
	}
	return &Handler{acc: acc, cfg: cfg, mem: &memBudget{limit: 8 * cfg.MaxBody},
		log: log.With("component", "input", "input", "loki")}
}

// Mount adds POST /loki/api/v1/push and GET /ready to r.
func (h *Handler) Mount(r chi.Router) {
	r.Post(PushPath, h.push)
	r.Get("/ready", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ready\n"))
	})
}

func (h *Handler) push(w http.ResponseWriter, r *http.Request) {
	if h.acc.Busy() {
		// Refused before the body is read: overload costs no memory.
		w.Header().Set("Retry-After", "1")
		http.Error(w, ingest.ErrOverloaded.Error(), http.StatusTooManyRequests)
		return
	}
	lines, err := decodeRequest(r, h.cfg.MaxBody, h.mem)
	if err != nil {
		code := http.StatusBadRequest
		var re *requestError
		if errors.As(err, &re) {
			code = re.code
		}
		h.acc.Reject(1, err.Error())
		if code == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "1")
		}
		h.log.Debug("push refused", "status", code, "err", err, "user_agent", r.UserAgent())
		http.Error(w, err.Error(), code)
		return
	}
	if _, err := h.acc.Accept(r.Context(), lines); err != nil {
		code, retry := ingest.Status(err)
		if retry != "" {
			w.Header().Set("Retry-After", retry)
		}
		h.log.Debug("push not taken", "status", code, "lines", len(lines), "err", err)
		http.Error(w, err.Error(), code)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
