// Package ingest is the door every push input (syslog, OTLP, Loki push,
// Elasticsearch bulk) goes through: an Acceptor turns the lines a client
// sent into one pipeline.Batch, hands it to the process's writer (the
// index writer in direct mode, the Kafka producer on an agent) and waits
// for the batch's ack before the input answers the client. The delivery
// contract itself is written once, on pipeline.Batch; this package adds
// what a pushed line needs that a tailed one gets from its file: an
// identity.
//
// # Identity, so a retry is not doubled
//
// A tailed line is identified by host, file and byte offset. A pushed
// line is identified by the client's id where the protocol has one
// (Line.ID: Elasticsearch's _id), else by its stream (Line.Stream: the
// labels, the resource, the sender), its time and a hash of its text and
// fields. The k-th line of one Accept call with the same identity as an
// earlier line of that call is a different line (a client that sends a
// line twice in one request sends it twice again on a retry).
//
// The Acceptor gives every new identity an offset in its own sequence
// (FileID "push:<input>:<source>", offsets that only grow) and writes the pair to
// an id log under Dir, fsynced before the batch is handed on. A retry of
// a line it has seen, within Window and MaxIDs, gets the same offset back,
// so the index (or, through Kafka, the indexer) skips what it holds and
// takes what it lacks: after a client's retry, after a timeout, after a
// SIGKILL of logbox between the write and the answer, every line is
// indexed once. A retry later than Window (or past MaxIDs newer lines) is
// indexed again.
//
// # Overload
//
// Lines accepted and not yet acked are bounded by MaxInFlight: past it
// Accept returns ErrOverloaded at once, which the inputs answer 429 with
// Retry-After (what OTLP, Loki and Elasticsearch clients retry on), so a
// client faster than the index makes memory wait, not grow.
package ingest

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/logbox/logbox/appliance/pipeline"
)

// Errors Accept returns besides ctx's.
var (
	// ErrOverloaded: more lines are in flight than MaxInFlight; nothing
	// of the call was taken. Answer 429 with Retry-After.
	ErrOverloaded = errors.New("ingest: too many lines in flight; retry later")
	// ErrClosed: the process is shutting down; nothing was taken.
	ErrClosed = errors.New("ingest: shutting down")
)

// Config configures one input's Acceptor.
type Config struct {
	// Name is the input's name ("syslog", "otlp", "loki", "elasticsearch"):
	// the records' SourceName and FileID "push:<Name>" unless the input
	// sets them.
	Name string
	// Host stamps records whose input names no sender host.
	Host string
	// Dir holds the id log (created if missing). Empty keeps ids in
	// memory only: retries are recognised until the process ends.
	Dir string
	// Sink takes the batches (the index writer or the Kafka producer).
	Sink pipeline.Sink
	// MaxInFlight bounds the lines accepted and not yet acked (default
	// 200000).
	MaxInFlight int
	// Window is how long a line's identity is remembered (default 15m);
	// MaxIDs caps how many are (default 2000000).
	Window time.Duration
	MaxIDs int
	// Now is the clock (default time.Now).
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = 200000
	}
	if c.Window <= 0 {
		c.Window = 15 * time.Minute
	}
	if c.MaxIDs <= 0 {
		c.MaxIDs = 2000000
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Line is one line a client pushed.
type Line struct {
	// Record is the line: TS (the client's time; zero: now), Line,
	// Fields, and as the input knows them Host (the sender; empty: the
	// Acceptor's Host), Source (the stream, e.g. "syslog://10.0.0.7"),
	// Parser and TZ. FileID, Offset and End are set by Accept.
	Record pipeline.Record
	// ID is the client's id for the line, when the protocol has one
	// (scoped by the input, e.g. "<index>/<_id>"); empty identifies the
	// line by Stream, time, text and fields.
	ID string
	// Stream names the sender stream (labels, resource, peer); part of
	// the identity when ID is empty.
	Stream string
}

// Result says what became of an accepted call's lines.
type Result struct {
	// Lines is how many lines the call carried; Retried how many of them
	// had been seen before (a client's retry).
	Lines, Retried int
}

// Stats are an input's counters since the process started.
type Stats struct {
	Name string `json:"name"`
	// Lines accepted and acked (durable); Retried of those were a
	// retry of a line seen before.
	Acked   uint64 `json:"lines_acked"`
	Retried uint64 `json:"lines_retried"`
	// Failed: lines of calls answered with an error after they were
	// taken (the writer nacked them, or the client went away first).
	Failed uint64 `json:"lines_failed"`
	// Overloaded: lines refused with ErrOverloaded (429);
	// RequestsBusy: requests answered 429 before they were read (Busy).
	Overloaded   uint64 `json:"lines_overloaded"`
	RequestsBusy uint64 `json:"requests_busy"`
	// Unacked: lines taken without an ack to wait for (UDP syslog);
	// Dropped: such lines refused because too many were in flight.
	Unacked uint64 `json:"lines_unacked,omitempty"`
	Dropped uint64 `json:"lines_dropped,omitempty"`
	// Rejected counts requests or frames the input refused as malformed
	// or too large (counted by the input through Reject).
	Rejected uint64 `json:"rejected"`
	// InFlight is the lines accepted and not yet acked now; IDs the
	// identities remembered for retries.
	InFlight int64 `json:"in_flight"`
	IDs      int   `json:"ids"`
	// LastError is the last reason a call failed, with its time.
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
}

// Acceptor is one input's door into the pipeline; safe for concurrent
// use.
type Acceptor struct {
	cfg    Config
	log    *slog.Logger
	fileID string
	// pipelined: the input keeps many batches in flight (SetPipelined).
	pipelined atomic.Bool

	inflight atomic.Int64
	// stop ends Send's hand-over when the acceptor closes.
	stop   context.Context
	cancel context.CancelFunc

	mu      sync.Mutex // guards the fields below and the id log's writes
	closed  bool
	last    int64 // the last offset given
	ids     *idLog
	ticket  uint64 // next ticket to hand out
	turnMu  sync.Mutex
	turn    uint64 // ticket whose batch is handed on next
	turnCnd *sync.Cond

	acked, retried, failed, overloaded, unacked, dropped, rejected, busy atomic.Uint64

	errMu   sync.Mutex
	lastErr string
	errAt   time.Time
}

// New opens the input's id log (reading back the identities of the last
// Window) and returns its Acceptor.
func New(cfg Config, log *slog.Logger) (*Acceptor, error) {
	cfg = cfg.withDefaults()
	if cfg.Name == "" || cfg.Sink == nil {
		return nil, errors.New("ingest: an acceptor needs a name and a sink")
	}
	ids, err := openIDLog(cfg.Dir, cfg.Window, cfg.MaxIDs, cfg.Now())
	if err != nil {
		return nil, fmt.Errorf("input %s: %w", cfg.Name, err)
	}
	a := &Acceptor{cfg: cfg, log: log.With("component", "input", "input", cfg.Name), fileID: "push:" + cfg.Name, ids: ids, last: ids.maxOffset}
	a.stop, a.cancel = context.WithCancel(context.Background())
	a.turnCnd = sync.NewCond(&a.turnMu)
	return a, nil
}

// Name is the input's name.
func (a *Acceptor) Name() string { return a.cfg.Name }

// Close refuses new calls and closes the id log. Calls waiting for an ack
// return when the writer acks or nacks their batch (the writer nacks what
// it cannot write before it stops).
func (a *Acceptor) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return nil
	}
	a.closed = true
	a.cancel()
	return a.ids.close()
}

// Busy reports whether the lines in flight have reached MaxInFlight, and
// counts the call when they have: an HTTP input then answers 429 with
// Retry-After before it reads and decodes the body, so a client faster
// than the index costs neither memory nor the CPU of decoding what would
// be refused anyway.
func (a *Acceptor) Busy() bool {
	if a.inflight.Load() < int64(a.cfg.MaxInFlight) {
		return false
	}
	a.busy.Add(1)
	return true
}

// Reject counts n requests or frames the input refused as malformed or
// too large.
func (a *Acceptor) Reject(n int, why string) {
	a.rejected.Add(uint64(n))
	a.noteErr(why)
}

func (a *Acceptor) noteErr(why string) {
	a.errMu.Lock()
	a.lastErr, a.errAt = why, a.cfg.Now()
	a.errMu.Unlock()
}

// Stats returns the input's counters.
func (a *Acceptor) Stats() Stats {
	a.mu.Lock()
	n := a.ids.len()
	a.mu.Unlock()
	a.errMu.Lock()
	le, at := a.lastErr, a.errAt
	a.errMu.Unlock()
	return Stats{
		Name: a.cfg.Name, Acked: a.acked.Load(), Retried: a.retried.Load(), Failed: a.failed.Load(),
		Overloaded: a.overloaded.Load(), RequestsBusy: a.busy.Load(), Unacked: a.unacked.Load(), Dropped: a.dropped.Load(), Rejected: a.rejected.Load(),
		InFlight: a.inflight.Load(), IDs: n, LastError: le, LastErrorAt: at,
	}
}

// reserve takes n lines of the in-flight budget, or reports false.
func (a *Acceptor) reserve(n int) bool {
	if a.inflight.Add(int64(n)) > int64(a.cfg.MaxInFlight) && a.inflight.Load() != int64(n) {
		// Over the bound (one call larger than the bound alone still
		// goes, else it could never).
		a.inflight.Add(-int64(n))
		return false
	}
	return true
}

// key is the line's identity hash; occurrence tells the k-th identical
// line of one call apart from the first. The fields are combined by a
// sum of their hashes, so their order does not matter and nothing is
// sorted or allocated.
func key(l *Line, occurrence int) uint64 {
	var d xxhash.Digest
	d.Reset()
	var num [8]byte
	if l.ID != "" {
		_, _ = d.WriteString("id\x00")
		_, _ = d.WriteString(l.ID)
	} else {
		r := &l.Record
		_, _ = d.WriteString("s\x00")
		_, _ = d.WriteString(l.Stream)
		binary.LittleEndian.PutUint64(num[:], uint64(r.TS.UnixNano()))
		_, _ = d.Write(num[:])
		_, _ = d.WriteString(r.Host)
		_, _ = d.WriteString("\x00")
		_, _ = d.WriteString(r.Line)
		var fields uint64
		var fd xxhash.Digest
		for k, v := range r.Fields {
			fd.Reset()
			_, _ = fd.WriteString(k)
			_, _ = fd.WriteString("\x00")
			_, _ = fd.WriteString(v)
			fields += fd.Sum64()
		}
		binary.LittleEndian.PutUint64(num[:], fields)
		_, _ = d.Write(num[:])
	}
	if occurrence > 0 {
		binary.LittleEndian.PutUint64(num[:], uint64(occurrence))
		_, _ = d.WriteString("\x00#")
		_, _ = d.Write(num[:])
	}
	return d.Sum64()
}

// fill completes a pushed record with the input's defaults.
func (a *Acceptor) fill(r *pipeline.Record, now time.Time) {
	if r.Host == "" {
		r.Host = a.cfg.Host
	}
	if r.SourceName == "" {
		r.SourceName = a.cfg.Name
	}
	if r.Source == "" {
		r.Source = a.cfg.Name
	}
	if r.TS.IsZero() {
		r.TS = now
	}
	// One offset sequence per input, seen by the index per host and
	// source: a Kafka partition takes a host and source's lines in order.
	r.FileID = a.fileID + ":" + r.Source
	r.End = 0
}

// nextOffset is the next offset of the input's sequence: it only grows,
// and starts from the clock (Unix nanoseconds), so it keeps growing
// across restarts even when the id log is gone. Called with mu held.
func (a *Acceptor) nextOffset(now time.Time) int64 {
	a.last = max(a.last+1, now.UnixNano())
	return a.last
}

// Accept hands lines to the pipeline as one batch and returns once the
// batch is durable (acked), or with the reason it is not: ErrOverloaded
// (nothing taken; answer 429), ErrClosed (answer 503), ctx's error (the
// client left; the lines may still become durable, and a retry is
// recognised), or the writer's nack. Accept may change lines' records.
func (a *Acceptor) Accept(ctx context.Context, lines []Line) (Result, error) {
	res := Result{Lines: len(lines)}
	if len(lines) == 0 {
		return res, nil
	}
	if !a.reserve(len(lines)) {
		a.overloaded.Add(uint64(len(lines)))
		return res, ErrOverloaded
	}
	released := false
	release := func() {
		if !released {
			released = true
			a.inflight.Add(-int64(len(lines)))
		}
	}
	now := a.cfg.Now()
	recs := make([]pipeline.Record, len(lines))
	keys := make([]uint64, len(lines))
	seen := make(map[uint64]int, len(lines))
	for i := range lines {
		a.fill(&lines[i].Record, now)
		k := key(&lines[i], 0)
		if n := seen[k]; n > 0 {
			seen[k] = n + 1
			k = key(&lines[i], n)
		} else {
			seen[k] = 1
		}
		keys[i] = k
	}

	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		release()
		return res, ErrClosed
	}
	fresh := make([]idEntry, 0, len(lines))
	for i := range lines {
		r := lines[i].Record
		if off, ok := a.ids.get(keys[i]); ok {
			r.Offset = off
			res.Retried++
		} else {
			r.Offset = a.nextOffset(now)
			fresh = append(fresh, idEntry{key: keys[i], off: r.Offset})
		}
		recs[i] = r
	}
	werr := a.ids.append(fresh, now)
	ticket := a.ticket
	a.ticket++
	a.mu.Unlock()

	// Durable before handed on: a retry after a crash gets these offsets.
	if werr == nil {
		werr = a.ids.sync()
	}
	done := make(chan error, 1)
	b := pipeline.NewBatchFunc(recs, func(err error) {
		if err == nil {
			a.acked.Add(uint64(len(recs)))
			a.retried.Add(uint64(res.Retried))
		} else {
			a.failed.Add(uint64(len(recs)))
		}
		release()
		done <- err
	})
	// The client's request waits on it: the writer need not hold it for
	// company, unless the input keeps many in flight anyway.
	b.Waited = !a.pipelined.Load()
	// Batches are handed on in ticket order, so the index sees each
	// input's offsets in order.
	perr := werr
	a.inTurn(ticket, func() {
		if perr == nil {
			perr = a.cfg.Sink.Publish(ctx, b)
		}
	})
	if perr != nil {
		b.Nack(perr)
		err := <-done
		a.noteErr(err.Error())
		return res, fmt.Errorf("input %s: %w", a.cfg.Name, err)
	}
	select {
	case err := <-done:
		if err != nil {
			a.noteErr(err.Error())
			return res, fmt.Errorf("input %s: lines not written: %w", a.cfg.Name, err)
		}
		return res, nil
	case <-ctx.Done():
		return res, ctx.Err()
	}
}

// Send hands lines on without waiting for their ack and without
// remembering their identity: for UDP syslog, which no client retries.
// Lines over the in-flight bound are dropped and counted.
func (a *Acceptor) Send(lines []Line) {
	if len(lines) == 0 {
		return
	}
	if !a.reserve(len(lines)) {
		a.dropped.Add(uint64(len(lines)))
		return
	}
	now := a.cfg.Now()
	recs := make([]pipeline.Record, len(lines))
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		a.inflight.Add(-int64(len(lines)))
		a.dropped.Add(uint64(len(lines)))
		return
	}
	for i := range lines {
		a.fill(&lines[i].Record, now)
		recs[i] = lines[i].Record
		recs[i].Offset = a.nextOffset(now)
	}
	ticket := a.ticket
	a.ticket++
	a.mu.Unlock()
	b := pipeline.NewBatchFunc(recs, func(err error) {
		a.inflight.Add(-int64(len(recs)))
		if err != nil {
			a.failed.Add(uint64(len(recs)))
			a.noteErr(err.Error())
		}
	})
	a.unacked.Add(uint64(len(recs)))
	a.inTurn(ticket, func() {
		if err := a.cfg.Sink.Publish(a.stop, b); err != nil {
			b.Nack(err)
		}
	})
}

// inTurn runs fn once every earlier ticket's fn has run.
func (a *Acceptor) inTurn(ticket uint64, fn func()) {
	a.turnMu.Lock()
	for a.turn != ticket {
		a.turnCnd.Wait()
	}
	a.turnMu.Unlock()
	fn()
	a.turnMu.Lock()
	a.turn++
	a.turnCnd.Broadcast()
	a.turnMu.Unlock()
}

// Status maps an Accept error to the HTTP status the push protocols
// retry on: 429 with a Retry-After for overload, 503 while shutting down
// or when the writer could not write, 499-like client cancellations as
// 503 too (the client is gone). Inputs with their own error bodies use it
// for the code.
func Status(err error) (code int, retryAfter string) {
	switch {
	case err == nil:
		return http.StatusOK, ""
	case errors.Is(err, ErrOverloaded):
		return http.StatusTooManyRequests, "1"
	default:
		return http.StatusServiceUnavailable, "5"
	}
}

// SetPipelined says the input keeps many batches in flight at once
// (syslog, up to 32 a connection): its batches are not marked
// pipeline.Batch.Waited, so a writer that batches for size fills bigger
// writes with them instead of writing each as soon as the queue is empty.
func (a *Acceptor) SetPipelined() { a.pipelined.Store(true) }
