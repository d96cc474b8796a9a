// Package journald follows a systemd journal and hands its entries to the
// pipeline, with the journal's cursor as the checkpoint: an entry read
// before a restart is not lost, and one indexed before it is not doubled.
//
// # The guarantee
//
// The reader runs journalctl as a subprocess (no cgo) and sends its
// entries to a pipeline.Sink in batches (see pipeline.Batch for the
// delivery contract). The checkpoint, the file journald.cursor in
// Config.StateDir, holds the cursor of the last entry of the newest batch
// that was acked with every batch before it: acks that come out of order
// move it only over a contiguous acked prefix, and a nacked batch (or one
// the sink would not take) leaves it where it was. The file is replaced
// atomically and fsynced, a moment after the ack (writes are coalesced),
// so it may lag behind what was acked, never run ahead of it.
//
// After a restart, reading resumes after the saved cursor; after a nack,
// the reader waits for the batches still in flight, then reads again
// after the cursor. What is read twice that way (entries acked after the
// saved cursor, or after a nacked batch) is not indexed twice: every
// record is identified by its journal position (see Identity: FileID
// "journal:<seqnum id>", Offset the entry's sequence number), and the
// index skips an entry it holds. So every entry of the journal is
// indexed once, across kills of logbox and of journalctl.
//
// What journalctl does not give is not recovered: an entry the journal
// dropped (vacuumed, rotated away before it was read: journalctl goes on
// from the closest later entry), or an entry a journal file receives
// behind the position journalctl follows from (journalctl reads a
// directory's files merged in time order; only entries merged from
// another machine with a skewed clock arrive that way). Name a
// directory, not a file, to follow a journal that journald rotates: a
// file is read as it is, and its archived successor is another file.
//
// # Where reading starts
//
// With a saved cursor: after it (journalctl --after-cursor; if journalctl
// rejects the cursor, a warning, and the reader starts as without one:
// nothing is doubled, see above). Without one, Config.Start says: "head"
// (the default) reads everything the journal holds, as Filebeat's journald
// input does by default (seek: head) — nothing written before logbox was
// turned on is missed; "boot" reads the current boot's entries
// (journalctl --boot, as Vector's current_boot_only); "tail" reads only
// entries written from now on: the cursor of the journal's last entry is
// saved at once, so a crash before the first ack does not skip entries.
//
// # Records
//
// Line is MESSAGE (binary values too: NUL bytes removed, invalid UTF-8
// replaced, longer than MaxMessageBytes cut; each flagged and counted;
// empty for an entry without one, which is still indexed with its fields);
// TS is __REALTIME_TIMESTAMP; Host is _HOSTNAME, else Config.Host; Source
// and SourceName are "journald". Every other field of the entry becomes a
// field under its journal name (_SYSTEMD_UNIT, SYSLOG_IDENTIFIER, _PID,
// _COMM, PRIORITY, _TRANSPORT, _BOOT_ID, …), a field given several values
// has them joined by "\n", and "level" is PRIORITY's syslog(3) name
// (emerg, alert, crit, err, warning, notice, info, debug). Left out: the
// address fields (__CURSOR, __MONOTONIC_TIMESTAMP, …), a few bookkeeping
// fields (_CAP_EFFECTIVE, _SOURCE_MONOTONIC_TIMESTAMP, _STREAM_ID,
// SYSLOG_RAW), and a field longer than MaxFieldBytes (the record is
// flagged fields_dropped), as journalctl's JSON output leaves such fields
// out.
//
// # Why journalctl -o export
//
// journalctl writes the export format (one field a line, binary values
// length-prefixed) rather than JSON: binary and repeated fields come as
// they are instead of as arrays of numbers or strings, a field longer than
// 4096 bytes is written in full (JSON writes null unless --all), and a
// huge field can be cut while it streams by without losing its entry's
// cursor. journalctl is always given --no-tail: with --follow it would
// otherwise start 10 entries before the end, even after --after-cursor.
package journald

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/logbox/logbox/appliance/atomicfile"
	"github.com/logbox/logbox/appliance/pipeline"
)

// Local is the Source that names the system journal.
const Local = "local"

// Starts for a reader without a saved cursor (see the package doc).
const (
	StartHead = "head"
	StartBoot = "boot"
	StartTail = "tail"
)

// StateFile is the checkpoint's file name in Config.StateDir: the cursor
// and a newline.
const StateFile = "journald.cursor"

// Config configures a Reader.
type Config struct {
	// Source is the journal to follow: "local" (or empty) for the
	// system's journal, a directory of journal files (journalctl
	// --directory), or one journal file (--file).
	Source string
	// StateDir holds the checkpoint (StateFile); created if missing.
	StateDir string
	// Host stamps entries without _HOSTNAME (default: os.Hostname).
	Host string
	// Journalctl is the journalctl binary (default "journalctl", looked
	// up in PATH).
	Journalctl string
	// Sink takes the batches: the index writer or the Kafka producer.
	Sink pipeline.Sink
	// Start is where to begin without a saved cursor: StartHead (the
	// default), StartBoot or StartTail.
	Start string

	// MaxBatch is the most entries a batch holds (default 1000);
	// FlushInterval how long a batch waits for more (default 100ms).
	MaxBatch      int
	FlushInterval time.Duration
	// MaxInFlight bounds the entries sent and not yet acked (default
	// 20000): past it reading waits, and so does journalctl.
	MaxInFlight int
	// MaxMessageBytes cuts a longer MESSAGE (default
	// pipeline.DefaultMaxLineBytes); MaxFieldBytes drops a longer value
	// of another field (default 4096).
	MaxMessageBytes int
	MaxFieldBytes   int
	// RestartBackoff is the first wait before journalctl is started
	// again after it exited or a batch was nacked (default 500ms); it
	// doubles up to 30s while nothing is read.
	RestartBackoff time.Duration
	// DrainTimeout bounds how long Run waits, once its context is done,
	// for the batches in flight to be acked (default 10s).
	DrainTimeout time.Duration
}

func (c Config) withDefaults() Config {
	if c.Source == "" {
		c.Source = Local
	}
	if c.Journalctl == "" {
		c.Journalctl = "journalctl"
	}
	if c.Start == "" {
		c.Start = StartHead
	}
	if c.MaxBatch <= 0 {
		c.MaxBatch = 1000
	}
	if c.FlushInterval <= 0 {
		c.FlushInterval = 100 * time.Millisecond
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = 20000
	}
	if c.MaxMessageBytes <= 0 {
		c.MaxMessageBytes = pipeline.DefaultMaxLineBytes
	}
	if c.MaxFieldBytes <= 0 {
		c.MaxFieldBytes = 4096
	}
	if c.RestartBackoff <= 0 {
		c.RestartBackoff = 500 * time.Millisecond
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = 10 * time.Second
	}
	return c
}

// Stats are the reader's counters since New.
type Stats struct {
	// Source is Config.Source.
	Source string `json:"source"`
	// EntriesRead were handed to the sink; EntriesAcked were acked,
	// EntriesNacked nacked or refused by it (read again); InFlight are
	// sent and not yet answered.
	EntriesRead   uint64 `json:"entries_read"`
	EntriesAcked  uint64 `json:"entries_acked"`
	EntriesNacked uint64 `json:"entries_nacked"`
	InFlight      int    `json:"in_flight"`
	// Entries not delivered as written: MESSAGE cut (Truncated), NUL
	// bytes or invalid UTF-8 in it (Sanitized), a field left out for its
	// size (FieldsDropped).
	Truncated     uint64 `json:"truncated"`
	Sanitized     uint64 `json:"sanitized"`
	FieldsDropped uint64 `json:"fields_dropped"`
	// Cursor is the checkpoint: the cursor after which every entry was
	// acked ("" before the first ack). Saved to the state file a moment
	// after it moves.
	Cursor string `json:"cursor"`
	// Restarts counts journalctl starts after the first; PID is the
	// running journalctl's (0 when none runs).
	Restarts uint64 `json:"journalctl_restarts"`
	PID      int    `json:"journalctl_pid,omitempty"`
	// LastError is the last failure (journalctl's exit and what it
	// wrote on stderr, a nack, a failed checkpoint write).
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
}

// Reader follows one journal. Run it once.
type Reader struct {
	cfg       Config
	log       *slog.Logger
	statePath string
	// srcArgs select the journal: none, --directory or --file.
	srcArgs []string

	mu         sync.Mutex
	committed  string      // cursor of the acked prefix's last entry
	readCursor string      // cursor of the last entry sent; "" = Start
	pending    []*inflight // sent batches, in order, until acked in a prefix
	inflight   int         // entries of unanswered batches
	failed     bool        // a batch was nacked or refused: read again
	pid        int
	lastErr    string
	lastErrAt  time.Time
	restarts   uint64
	saverOn    bool // Run's saver writes the state file

	saveMu sync.Mutex // one state file write at a time
	saved  string     // what the state file holds

	wake chan struct{} // an ack or a nack came (cap 1)
	save chan struct{} // the cursor moved (cap 1)

	read, acked, nacked             atomic.Uint64
	truncated, sanitized, fieldsOut atomic.Uint64
}

// inflight is a batch sent to the sink.
type inflight struct {
	cursor   string // of its last entry
	n        int
	acked    bool
	resolved bool
}

// New checks cfg and reads the saved cursor; it starts nothing.
func New(cfg Config, log *slog.Logger) (*Reader, error) {
	cfg = cfg.withDefaults()
	if cfg.Sink == nil {
		return nil, errors.New("journald: no sink")
	}
	if cfg.StateDir == "" {
		return nil, errors.New("journald: no state directory")
	}
	switch cfg.Start {
	case StartHead, StartBoot, StartTail:
	default:
		return nil, fmt.Errorf("journald: start %q: want %q, %q or %q", cfg.Start, StartHead, StartBoot, StartTail)
	}
	if cfg.Host == "" {
		h, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("journald: host name: %w", err)
		}
		cfg.Host = h
	}
	bin, err := exec.LookPath(cfg.Journalctl)
	if err != nil {
		return nil, fmt.Errorf("journald: %q not found (Debian package systemd): %w", cfg.Journalctl, err)
	}
	cfg.Journalctl = bin
	r := &Reader{cfg: cfg, log: log.With("component", "journald", "source", cfg.Source),
		statePath: filepath.Join(cfg.StateDir, StateFile),
		wake:      make(chan struct{}, 1), save: make(chan struct{}, 1)}
	if cfg.Source != Local {
		abs, err := filepath.Abs(cfg.Source)
		if err != nil {
			return nil, fmt.Errorf("journald: source %q: %w", cfg.Source, err)
		}
		// journalctl --follow fails on a relative --file ("Failed to get
		// journal fd"): always give it an absolute path.
		st, err := os.Stat(abs)
		switch {
		case err != nil:
			return nil, fmt.Errorf("journald: source %q: %w (want %q, a journal directory or a journal file)", cfg.Source, err, Local)
		case st.IsDir():
			r.srcArgs = []string{"--directory=" + abs}
		default:
			r.srcArgs = []string{"--file=" + abs}
		}
	}
	if err := os.MkdirAll(cfg.StateDir, 0o755); err != nil {
		return nil, fmt.Errorf("journald: state directory: %w", err)
	}
	b, err := os.ReadFile(r.statePath)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("journald: read the checkpoint: %w", err)
	default:
		r.committed = strings.TrimSpace(string(b))
		r.saved = r.committed
	}
	r.readCursor = r.committed
	return r, nil
}

// Stats returns the reader's counters.
func (r *Reader) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return Stats{
		Source:        r.cfg.Source,
		EntriesRead:   r.read.Load(),
		EntriesAcked:  r.acked.Load(),
		EntriesNacked: r.nacked.Load(),
		InFlight:      r.inflight,
		Truncated:     r.truncated.Load(),
		Sanitized:     r.sanitized.Load(),
		FieldsDropped: r.fieldsOut.Load(),
		Cursor:        r.committed,
		Restarts:      r.restarts,
		PID:           r.pid,
		LastError:     r.lastErr,
		LastErrorAt:   r.lastErrAt,
	}
}

// errRetry ends one journalctl run because a batch was nacked or refused.
var errRetry = errors.New("a batch was not written; reading again after the checkpoint")

// Run follows the journal until ctx is done: it runs journalctl, restarts
// it (with backoff) when it exits, and reads again after the checkpoint
// when a batch is nacked. Once ctx is done it stops journalctl (killed
// and waited for), waits up to DrainTimeout for the batches in flight,
// and saves the checkpoint. It returns nil then; passing failures are
// retried, logged and shown in Stats, never returned.
func (r *Reader) Run(ctx context.Context) error {
	saverCtx, stopSaver := context.WithCancel(context.Background())
	saverDone := make(chan struct{})
	r.mu.Lock()
	r.saverOn = true
	r.mu.Unlock()
	go func() {
		defer close(saverDone)
		r.saver(saverCtx)
	}()
	defer func() {
		r.drain()
		stopSaver()
		<-saverDone
		r.mu.Lock()
		r.saverOn = false
		r.mu.Unlock()
		if err := r.saveState(); err != nil {
			r.setErr(err)
			r.log.Warn("saving the journal cursor failed; entries after the last saved cursor will be read again (not indexed twice)", "err", err)
		}
	}()

	backoff := r.cfg.RestartBackoff
	for first := true; ; first = false {
		if !first {
			r.mu.Lock()
			r.restarts++
			r.mu.Unlock()
		}
		n, err := r.follow(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, errRetry) {
			// The nack's reason is the last error already.
			if !r.resetAfterFailure(ctx) {
				return nil
			}
		} else {
			r.setErr(err)
		}
		if n > 0 {
			backoff = r.cfg.RestartBackoff
		}
		r.log.Warn("journalctl stopped; starting it again: journal entries wait meanwhile (none is lost)", "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

// resetAfterFailure waits until every batch in flight is answered, then
// forgets them and makes reading resume after the checkpoint; false when
// ctx ended first.
func (r *Reader) resetAfterFailure(ctx context.Context) bool {
	for {
		r.mu.Lock()
		if r.inflight == 0 {
			r.pending = nil
			r.failed = false
			r.readCursor = r.committed
			r.mu.Unlock()
			return true
		}
		r.mu.Unlock()
		select {
		case <-ctx.Done():
			return false
		case <-r.wake:
		}
	}
}

// drain waits up to DrainTimeout for the batches in flight.
func (r *Reader) drain() {
	deadline := time.NewTimer(r.cfg.DrainTimeout)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		n := r.inflight
		r.mu.Unlock()
		if n == 0 {
			return
		}
		select {
		case <-deadline.C:
			r.log.Warn("stopping with journal entries not yet acked; they are read again at the next start (not indexed twice)", "entries", n)
			return
		case <-r.wake:
		}
	}
}

// track records a batch about to be sent; done answers it.
func (r *Reader) track(cursor string, n int) *inflight {
	p := &inflight{cursor: cursor, n: n}
	r.mu.Lock()
	r.pending = append(r.pending, p)
	r.inflight += n
	r.readCursor = cursor
	r.mu.Unlock()
	r.read.Add(uint64(n))
	return p
}

// forget undoes track for a batch the sink did not take because the
// reader is stopping: it stays in pending, unacked, so the checkpoint
// does not pass it.
func (r *Reader) forget(p *inflight) {
	r.mu.Lock()
	if !p.resolved {
		p.resolved = true
		r.inflight -= p.n
		r.read.Add(^uint64(p.n - 1))
	}
	r.mu.Unlock()
	notify(r.wake)
}

// done answers p: acked (err nil) or not. The checkpoint moves over the
// acked prefix of the batches sent.
func (r *Reader) done(p *inflight, err error) {
	r.mu.Lock()
	if p.resolved {
		r.mu.Unlock()
		return
	}
	p.resolved = true
	r.inflight -= p.n
	moved := false
	if err == nil {
		p.acked = true
		r.acked.Add(uint64(p.n))
		for len(r.pending) > 0 && r.pending[0].acked {
			r.committed = r.pending[0].cursor
			r.pending[0] = nil
			r.pending = r.pending[1:]
			moved = true
		}
	} else {
		r.nacked.Add(uint64(p.n))
		r.failed = true
		r.lastErr, r.lastErrAt = "batch not written: "+err.Error(), time.Now()
	}
	saverOn := r.saverOn
	r.mu.Unlock()
	if err != nil {
		r.log.Warn("a batch of journal entries was not written; reading them again after the checkpoint", "entries", p.n, "err", err)
	}
	notify(r.wake)
	if moved {
		if saverOn {
			notify(r.save)
		} else if err := r.saveState(); err != nil {
			r.setErr(err)
		}
	}
}

func notify(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// saver writes the checkpoint when it moves, coalescing moves that come
// while a write is under way; it retries a failed write every second.
func (r *Reader) saver(ctx context.Context) {
	retry := time.NewTicker(time.Second)
	defer retry.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.save:
		case <-retry.C:
			if !failing {
				continue
			}
		}
		err := r.saveState()
		if err != nil && !failing {
			r.log.Warn("saving the journal cursor failed; retrying; if logbox stops meanwhile, entries after the saved cursor are read again (not indexed twice)", "path", r.statePath, "err", err)
		}
		if err != nil {
			r.setErr(err)
		}
		failing = err != nil
	}
}

// saveState writes the committed cursor to the state file if it moved.
func (r *Reader) saveState() error {
	r.saveMu.Lock()
	defer r.saveMu.Unlock()
	r.mu.Lock()
	c := r.committed
	r.mu.Unlock()
	if c == r.saved {
		return nil
	}
	if err := atomicfile.Write(r.statePath, []byte(c+"\n")); err != nil {
		return fmt.Errorf("save the journal cursor: %w", err)
	}
	r.saved = c
	return nil
}

// setCommitted sets the checkpoint outside an ack (the tail start).
func (r *Reader) setCommitted(c string) error {
	r.mu.Lock()
	r.committed, r.readCursor = c, c
	r.mu.Unlock()
	return r.saveState()
}

func (r *Reader) setErr(err error) {
	if err == nil {
		return
	}
	r.mu.Lock()
	r.lastErr, r.lastErrAt = err.Error(), time.Now()
	r.mu.Unlock()
}
