// Package esbulk is the Elasticsearch bulk input: it answers the bulk API
// and the handful of requests Elasticsearch clients make at start-up, so
// that the Elasticsearch outputs of Filebeat, Fluent Bit, Vector and
// Logstash and the official clients send to logbox unchanged.
//
// # Routes
//
// Mount registers the Elasticsearch-compatible API under /es (the URL a
// user gives a client is http://host:port/es, logbox's own page being at
// /): POST or PUT /es/_bulk and /es/{index}/_bulk; GET and HEAD /es/
// (version, what clients check first); GET /es/_license (basic, active),
// /es/_xpack, /es/_cluster/health, /es/_nodes; and harmless success for
// the set-up calls Beats and Logstash make (index and component templates,
// legacy templates, ILM policies, ingest pipelines, data streams, aliases,
// index creation, refresh): HEAD and GET answer that the object exists,
// PUT that it was stored; logbox keeps none of them. It also registers
// POST and PUT /_bulk and /{index}/_bulk at the root, for clients that
// cannot take a path. Every answer carries X-Elastic-Product:
// Elasticsearch (the official clients refuse an answer without it).
//
// # Bulk requests
//
// The body is NDJSON, optionally gzip or deflate (Content-Encoding), at
// most Config.MaxBody bytes on the wire and after decompression (else
// 413). index and create actions are taken, with _index (the URL's index
// is the default) and _id. update and delete are answered per item with
// 400 illegal_argument_exception (logbox keeps logs append-only), a
// document that is not a JSON object with 400 mapper_parsing_exception, an
// item without an index with 400 action_request_validation_exception; the
// other items proceed. A malformed action line fails the whole request
// with 400, as Elasticsearch does, since the document lines can no longer
// be paired with their actions.
//
// A document becomes one line: its objects are flattened to dotted keys;
// @timestamp (a date in Elasticsearch's default format, or epoch
// milliseconds; else "timestamp", Vector's name) is the line's time; the
// text is message, else log (Fluent Bit, Docker), else msg, else the
// whole document as compact JSON; host.name (else host when it is a
// string, else hostname) is the line's host; the source is the input's
// name ("bulk", as for every pushed line, so that a sender's lines stay
// in one stream and, through Kafka, one partition), the shipper's file
// staying the field log.file.path; log.level (or level) becomes the
// field level (the line's level), the index name the field index, and every other key a field
// (numbers and booleans as their JSON text, arrays as compact JSON).
//
// # When an item is acknowledged
//
// The good items of a request go to the Acceptor in one call, and the
// answer is written once they are durable (indexed, or acked by Kafka):
// a 200 answer's "created" item is durable. A request that finds too many
// lines in flight is answered 429 with Retry-After, one the writer could
// not take 503; nothing of it is acknowledged, and the client sends it
// again (Filebeat, Fluent Bit, Logstash and Vector retry both; the Go
// client's transport retries 503, and 429 when told to).
//
// # Resends are idempotent
//
// An item with an _id is identified by index and _id; one without by its
// index, host and source, its time, text and fields. A request sent
// again (a lost answer, a timeout, a SIGKILL of logbox before it
// answered) is therefore indexed once: the Acceptor recognises what it
// has seen (see package ingest for the window). A resent item is answered
// as it was the first time ("created", 201), not 409 as Elasticsearch
// answers a create of a held _id: the client is told what it missed, and
// no client counts a retry of its own as a failure (Filebeat and Fluent
// Bit would drop a 409 as a duplicate, but the Go client's bulk indexer,
// Logstash and Vector report it as an error). The same _id twice in one
// request is kept once and the later items answered 409.
//
// # Not supported
//
// Updates, deletes, a second document under a held _id (it is taken for a
// resend and dropped, where Elasticsearch would replace the first or
// answer 409), ingest pipelines (the pipeline parameter is ignored), the
// single-document APIs (/_doc, /_create), search and every other read
// API, and filter_path (answers are complete; clients read the keys they
// need). A document with neither _id nor @timestamp gets the time it was
// received, so a resend of it after a lost answer may be indexed twice.
package esbulk

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zlib"

	"github.com/logbox/logbox/appliance/ingest"
)

// Defaults of Config.
const (
	DefaultMaxBody = 16 << 20
	DefaultVersion = "8.11.0"
)

// Config configures the input.
type Config struct {
	// MaxBody bounds a bulk request's body, on the wire and after
	// decompression (default DefaultMaxBody); a larger one is answered
	// 413, which Beats answer by splitting the batch.
	MaxBody int64
	// Version is the Elasticsearch version logbox answers to (default
	// DefaultVersion). Beats refuse an Elasticsearch older than
	// themselves unless allow_older_versions is set: give the version
	// of the newest Beat that sends here, or a later one.
	Version string
}

var versionRE = regexp.MustCompile(`^([0-9]+)\.[0-9]+\.[0-9]+$`)

// Validate reports a negative MaxBody or a Version that is not
// MAJOR.MINOR.PATCH. New takes such values as their defaults.
func (c Config) Validate() error {
	var errs []error
	if c.MaxBody < 0 {
		errs = append(errs, fmt.Errorf("elasticsearch bulk: the body limit %d is negative", c.MaxBody))
	}
	if c.Version != "" && !versionRE.MatchString(c.Version) {
		errs = append(errs, fmt.Errorf("elasticsearch bulk: version %q is not MAJOR.MINOR.PATCH", c.Version))
	}
	return errors.Join(errs...)
}

func (c Config) withDefaults() Config {
	if c.MaxBody <= 0 {
		c.MaxBody = DefaultMaxBody
	}
	if !versionRE.MatchString(c.Version) {
		c.Version = DefaultVersion
	}
	return c
}

// Handler answers the Elasticsearch API; safe for concurrent use.
type Handler struct {
	acc *ingest.Acceptor
	cfg Config
	log *slog.Logger

	idPrefix [8]byte
	ids      atomic.Uint64 // the _ids given to documents that came without
	seqNo    atomic.Int64
}

// New returns the input; it sends every bulk request's good items through
// acc. Nothing starts: the routes run on the caller's server (Mount).
func New(acc *ingest.Acceptor, cfg Config, log *slog.Logger) *Handler {
	h := &Handler{acc: acc, cfg: cfg.withDefaults(), log: log.With("component", "esbulk")}
	_, _ = rand.Read(h.idPrefix[:])
	return h
}

// productHeader marks every answer as Elasticsearch's.
func productHeader(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Elastic-Product", "Elasticsearch")
		next.ServeHTTP(w, r)
	})
}

// Mount registers the routes (see the package doc) on r: the whole API
// under /es, and the bulk routes at the root. It adds no other root
// route, so /api and the page stay where they are.
func (h *Handler) Mount(r chi.Router) {
	bulk := http.HandlerFunc(h.bulk)
	root := r.With(productHeader)
	for _, p := range []string{"/_bulk", "/{index}/_bulk"} {
		root.Post(p, bulk)
		root.Put(p, bulk)
	}
	r.Route("/es", func(r chi.Router) {
		r.Use(productHeader)
		r.Get("/", h.info)
		r.Head("/", h.info)
		for _, p := range []string{"/_bulk", "/{index}/_bulk"} {
			r.Post(p, bulk)
			r.Put(p, bulk)
		}
		r.Get("/_license", h.license)
		r.Get("/_xpack", h.xpack)
		r.Get("/_cluster/health", h.health)
		r.Get("/_cluster/health/*", h.health)
		r.Get("/_nodes", h.nodes)
		r.Get("/_nodes/*", h.nodes)
		// Set-up calls: exists, and stored.
		for _, kind := range []string{"_index_template", "_component_template", "_template", "_ilm/policy", "_ingest/pipeline", "_data_stream", "_alias"} {
			p := "/" + kind + "/{name}"
			get := h.setupGet(kind)
			r.Head(p, exists)
			r.Get(p, get)
			r.Put(p, acknowledged)
			r.Post(p, acknowledged)
		}
		r.Put("/{index}/_alias/{name}", acknowledged)
		r.Post("/_aliases", acknowledged)
		r.Head("/{index}", exists)
		r.Put("/{index}", h.createIndex)
		for _, p := range []string{"/_refresh", "/{index}/_refresh"} {
			r.Get(p, h.refresh)
			r.Post(p, h.refresh)
		}
		r.NotFound(unsupported)
		r.MethodNotAllowed(unsupported)
	})
}

// bulk answers a bulk request (see the package doc).
func (h *Handler) bulk(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	if h.acc.Busy() {
		// Refused before the body is read: overload costs no memory.
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusTooManyRequests, "es_rejected_execution_exception", ingest.ErrOverloaded.Error())
		return
	}
	body, rerr := h.readBody(w, r)
	if rerr != nil {
		h.acc.Reject(1, rerr.reason)
		writeError(w, rerr.status, rerr.typ, rerr.reason)
		return
	}
	index := ""
	if p := chi.URLParam(r, "index"); p != "" {
		index = p
		if u, err := url.PathUnescape(p); err == nil {
			index = u
		}
	}
	items, lines, err := parseBulk(body, index)
	var re *requestError
	if errors.As(err, &re) {
		h.acc.Reject(1, re.reason)
		writeError(w, re.status, re.typ, re.reason)
		return
	}
	if len(items) == 0 {
		h.acc.Reject(1, "bulk request without actions")
		writeError(w, http.StatusBadRequest, typeValidation, "Validation Failed: 1: no requests added;")
		return
	}
	if bad := len(items) - len(lines); bad > 0 {
		h.acc.Reject(bad, "bulk items refused (malformed, update, delete or a repeated _id)")
	}
	if _, err := h.acc.Accept(r.Context(), lines); err != nil {
		if r.Context().Err() != nil {
			// The client is gone; a resend is recognised.
			h.log.Debug("bulk client left before its lines were durable", "err", err)
			return
		}
		code, retryAfter := ingest.Status(err)
		typ := "unavailable_shards_exception"
		if code == http.StatusTooManyRequests {
			typ = "es_rejected_execution_exception"
		}
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		h.log.Debug("bulk request not taken", "err", err, "status", code)
		writeError(w, code, typ, err.Error())
		return
	}
	h.answer(w, items, start)
}

// answer writes the per-item answer of a taken request.
func (h *Handler) answer(w http.ResponseWriter, items []item, start time.Time) {
	b := h.answerBody(items, start)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

// answerBody is the answer to a taken request, item by item as
// Elasticsearch writes it.
func (h *Handler) answerBody(items []item, start time.Time) []byte {
	b := make([]byte, 0, len(items)*200)
	failed := false
	for i := range items {
		it := &items[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"`...)
		b = append(b, it.action...)
		b = append(b, `":{"_index":`...)
		b = appendString(b, it.index)
		if it.line < 0 {
			failed = true
			if it.id != "" {
				b = append(b, `,"_id":`...)
				b = appendString(b, it.id)
			}
			b = append(b, `,"status":`...)
			b = strconv.AppendInt(b, int64(it.status), 10)
			b = append(b, `,"error":{"type":`...)
			b = appendString(b, it.errType)
			b = append(b, `,"reason":`...)
			b = appendString(b, it.reason)
			b = append(b, `,"index":`...)
			b = appendString(b, it.index)
			b = append(b, `}}}`...)
			continue
		}
		id := it.id
		if id == "" {
			id = h.newID()
		}
		b = append(b, `,"_id":`...)
		b = appendString(b, id)
		b = append(b, `,"_version":1,"result":"created","_shards":{"total":1,"successful":1,"failed":0},"_seq_no":`...)
		b = strconv.AppendInt(b, h.seqNo.Add(1)-1, 10)
		b = append(b, `,"_primary_term":1,"status":201}}`...)
	}
	// took is known only now.
	out := make([]byte, 0, len(b)+64)
	out = fmt.Appendf(out, `{"took":%d,"errors":%t,"items":[`, time.Since(start).Milliseconds(), failed)
	out = append(out, b...)
	return append(out, "]}"...)
}

// newID is an _id for a document that came without one: 22 characters
// of URL-safe base64, unique in this process and, by a random prefix,
// across processes.
func (h *Handler) newID() string {
	var raw [16]byte
	copy(raw[:8], h.idPrefix[:])
	binary.BigEndian.PutUint64(raw[8:], h.ids.Add(1))
	return base64.RawURLEncoding.EncodeToString(raw[:])
}

// readBody reads a bulk body within MaxBody, decompressing it as
// Content-Encoding says.
func (h *Handler) readBody(w http.ResponseWriter, r *http.Request) ([]byte, *requestError) {
	max := h.cfg.MaxBody
	tooLarge := &requestError{status: http.StatusRequestEntityTooLarge, typ: "content_too_long_exception",
		reason: fmt.Sprintf("the bulk request is larger than %d bytes; send smaller batches", max)}
	if r.ContentLength > max {
		return nil, tooLarge
	}
	var src io.Reader = http.MaxBytesReader(w, r.Body, max)
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(src)
		if err != nil {
			return nil, bodyError(err, tooLarge)
		}
		defer zr.Close()
		src = zr
	case "deflate":
		zr, err := zlib.NewReader(src)
		if err != nil {
			return nil, bodyError(err, tooLarge)
		}
		defer zr.Close()
		src = zr
	default:
		return nil, &requestError{status: http.StatusUnsupportedMediaType, typ: typeIllegalArgument,
			reason: fmt.Sprintf("unsupported Content-Encoding %q; send gzip, deflate or none", enc)}
	}
	size := int64(64 << 10)
	if r.ContentLength > 0 {
		size = r.ContentLength + 512
	}
	buf := bytes.NewBuffer(make([]byte, 0, min(size, max+1)))
	if _, err := buf.ReadFrom(io.LimitReader(src, max+1)); err != nil {
		return nil, bodyError(err, tooLarge)
	}
	if int64(buf.Len()) > max {
		return nil, tooLarge
	}
	return buf.Bytes(), nil
}

// bodyError maps a failure reading the body: over the wire limit is 413,
// anything else (bad compression, a client gone) 400.
func bodyError(err error, tooLarge *requestError) *requestError {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return tooLarge
	}
	return &requestError{status: http.StatusBadRequest, typ: "parse_exception", reason: "cannot read the request body: " + err.Error()}
}

// writeError writes an error as Elasticsearch does.
func writeError(w http.ResponseWriter, status int, typ, reason string) {
	cause := map[string]string{"type": typ, "reason": reason}
	writeJSON(w, status, map[string]any{
		"error":  map[string]any{"root_cause": []any{cause}, "type": typ, "reason": reason},
		"status": status,
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		// Only maps of strings and numbers are written here.
		panic(fmt.Sprintf("esbulk: encode answer: %v", err))
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
