package journald

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/logbox/logbox/appliance/pipeline"
)

// item is an entry mapped to its record, with its cursor.
type item struct {
	rec    pipeline.Record
	cursor string
}

// follow runs journalctl once, from the read position, and sends what it
// writes to the sink in batches until journalctl exits (an error saying
// how), a batch is nacked or refused (errRetry), or ctx is done. It
// returns how many entries it read. journalctl is killed and waited for
// before follow returns.
func (r *Reader) follow(ctx context.Context) (int, error) {
	r.mu.Lock()
	failed, pos := r.failed, r.readCursor
	r.mu.Unlock()
	if failed {
		return 0, errRetry
	}
	if pos == "" && r.cfg.Start == StartTail {
		c, err := r.lastCursor(ctx)
		if err != nil {
			return 0, err
		}
		if c != "" {
			// Saved at once: after a crash, reading goes on from here
			// rather than from a later end.
			if err := r.setCommitted(c); err != nil {
				return 0, err
			}
			pos = c
		}
	}
	args := append([]string{"--output=export", "--follow", "--no-tail", "--no-pager"}, r.srcArgs...)
	switch {
	case pos != "":
		args = append(args, "--after-cursor="+pos)
	case r.cfg.Start == StartBoot:
		args = append(args, "--boot")
	}
	cmd := exec.Command(r.cfg.Journalctl, args...)
	cmd.SysProcAttr = procAttr()
	// What journalctl says while it runs is said to the operator (a
	// hint that the user logbox runs as sees only its own journal, a
	// file it cannot read); a few lines a run, not a flood.
	stderr := &tailBuffer{max: 4096, lines: 10, line: func(l string) {
		if strings.Contains(l, "not seeing") || strings.Contains(l, "ermission") {
			r.log.Warn("journalctl: " + l + " — entries logbox may not read are not collected; to collect the whole system journal, add the user logbox runs as to group systemd-journal (or adm)")
			return
		}
		r.log.Warn("journalctl: " + l)
	}}
	cmd.Stderr = stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return 0, fmt.Errorf("journalctl stdout: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("start journalctl: %w", err)
	}
	r.mu.Lock()
	r.pid = cmd.Process.Pid
	r.mu.Unlock()
	r.log.Debug("journalctl started", "pid", cmd.Process.Pid, "args", strings.Join(args, " "))

	items := make(chan []item, 4)
	stop := make(chan struct{})
	parseErr := make(chan error, 1)
	go func() {
		defer close(items)
		parseErr <- r.parse(stdout, items, stop)
	}()

	n, err := r.batch(ctx, items)

	// Stop journalctl (by its PID, the process this run started), let
	// the parser see the end of its output, then reap it.
	close(stop)
	_ = cmd.Process.Kill()
	for range items {
	}
	perr := <-parseErr
	werr := cmd.Wait()
	r.mu.Lock()
	r.pid = 0
	r.mu.Unlock()
	if err != nil {
		return n, err
	}
	// journalctl ended by itself.
	msg := strings.TrimSpace(stderr.String())
	if n == 0 && pos != "" && strings.Contains(msg, "cursor") {
		r.log.Warn("journalctl rejects the saved cursor; reading as if there were none (entries already indexed are not indexed twice)", "cursor", pos, "start", r.cfg.Start, "stderr", msg)
		r.mu.Lock()
		if r.readCursor == pos {
			r.readCursor = ""
		}
		r.mu.Unlock()
	}
	switch {
	case perr != nil && !errors.Is(perr, io.EOF):
		err = fmt.Errorf("journalctl output: %w", perr)
	case werr != nil:
		err = fmt.Errorf("journalctl: %w", werr)
	default:
		err = errors.New("journalctl exited")
	}
	if msg != "" {
		err = fmt.Errorf("%w: %s", err, msg)
	}
	return n, err
}

// parse reads entries from journalctl's output and sends them in chunks:
// a chunk goes as soon as no more output is buffered, so an entry does
// not wait for the next one. It returns the reason its input ended.
func (r *Reader) parse(out io.Reader, items chan<- []item, stop <-chan struct{}) error {
	x := newExportReader(out, r.cfg.MaxMessageBytes, r.cfg.MaxFieldBytes)
	var chunk []item
	var e entry
	for {
		err := x.next(&e)
		if err == nil {
			rec, c := record(&e, r.cfg.Host, time.Now())
			if c.truncated {
				r.truncated.Add(1)
			}
			if c.sanitized {
				r.sanitized.Add(1)
			}
			if c.fieldsDropped {
				r.fieldsOut.Add(1)
			}
			if e.cursor == "" {
				r.log.Debug("journal entry without a cursor; it cannot be a checkpoint", "file_id", rec.FileID, "offset", rec.Offset)
			}
			chunk = append(chunk, item{rec: rec, cursor: e.cursor})
		}
		if len(chunk) > 0 && (err != nil || len(chunk) >= 256 || !x.buffered()) {
			select {
			case items <- chunk:
				chunk = nil
			case <-stop:
				return nil
			}
		}
		if err != nil {
			return err
		}
	}
}

// batch gathers items into batches of up to MaxBatch entries, sent when
// full or FlushInterval after their first entry, until items closes, a
// batch fails (errRetry) or ctx is done (ctx's error).
func (r *Reader) batch(ctx context.Context, items <-chan []item) (int, error) {
	var (
		recs   []pipeline.Record
		cursor string
		total  int
	)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	send := func() error {
		if len(recs) == 0 {
			return nil
		}
		// A batch whose entries have no cursor cannot move the
		// checkpoint: it carries the last cursor read.
		if cursor == "" {
			r.mu.Lock()
			cursor = r.readCursor
			r.mu.Unlock()
		}
		err := r.publish(ctx, recs, cursor)
		total += len(recs)
		recs, cursor = nil, ""
		timer.Stop()
		return err
	}
	for {
		select {
		case chunk, ok := <-items:
			if !ok {
				return total, send()
			}
			for _, it := range chunk {
				if recs == nil {
					recs = make([]pipeline.Record, 0, min(r.cfg.MaxBatch, 1024))
					timer.Reset(r.cfg.FlushInterval)
				}
				recs = append(recs, it.rec)
				if it.cursor != "" {
					cursor = it.cursor
				}
				if len(recs) >= r.cfg.MaxBatch {
					if err := send(); err != nil {
						return total, err
					}
				}
			}
		case <-timer.C:
			if err := send(); err != nil {
				return total, err
			}
		case <-r.wake:
			if r.isFailed() {
				return total, errRetry
			}
		case <-ctx.Done():
			return total, ctx.Err()
		}
	}
}

func (r *Reader) isFailed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.failed
}

// publish sends recs as one batch once the in-flight bound has room.
func (r *Reader) publish(ctx context.Context, recs []pipeline.Record, cursor string) error {
	for {
		r.mu.Lock()
		room := r.inflight == 0 || r.inflight+len(recs) <= r.cfg.MaxInFlight
		failed := r.failed
		r.mu.Unlock()
		if failed {
			return errRetry
		}
		if room {
			break
		}
		select {
		case <-r.wake:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	p := r.track(cursor, len(recs))
	b := pipeline.NewBatchFunc(recs, func(err error) { r.done(p, err) })
	if err := r.cfg.Sink.Publish(ctx, b); err != nil {
		if ctx.Err() != nil {
			// Stopping: the batch was not taken, and is read again at
			// the next start.
			r.forget(p)
			return ctx.Err()
		}
		// Not taken: as a nack.
		r.done(p, fmt.Errorf("sink refused the batch: %w", err))
		return errRetry
	}
	return nil
}

// lastCursor returns the cursor of the journal's last entry ("" for an
// empty journal).
func (r *Reader) lastCursor(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	args := append([]string{"--output=export", "--lines=1", "--no-pager"}, r.srcArgs...)
	cmd := exec.CommandContext(ctx, r.cfg.Journalctl, args...)
	cmd.SysProcAttr = procAttr()
	stderr := &tailBuffer{max: 4096}
	cmd.Stderr = stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("journalctl --lines=1: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	x := newExportReader(bytes.NewReader(out), 1, 1)
	var e, last entry
	for x.next(&e) == nil {
		last = e
	}
	return last.cursor, nil
}

// tailBuffer keeps the last max bytes written to it, and calls line (if
// set) with each of the first lines complete lines.
type tailBuffer struct {
	mu    sync.Mutex
	max   int
	b     []byte
	lines int
	line  func(string)
	part  []byte // an incomplete line, for line
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	if t.line != nil && t.lines > 0 {
		t.part = append(t.part, p...)
		for t.lines > 0 {
			i := bytes.IndexByte(t.part, '\n')
			if i < 0 {
				break
			}
			if l := strings.TrimSpace(string(t.part[:i])); l != "" {
				t.line(l)
				t.lines--
			}
			t.part = t.part[i+1:]
		}
		if len(t.part) > 4096 || t.lines == 0 { // a runaway line is not a message
			t.part = nil
		}
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}
