package journald_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/logbox/logbox/appliance/ingest/ingesttest"
	"github.com/logbox/logbox/appliance/inputs/journald"
	"github.com/logbox/logbox/appliance/pipeline"
)

// field is one field of a journal entry, in the order it is written.
type field struct{ name, value string }

// export encodes entries in the journal export format: a value that is
// not printable text on one line is written in the binary form.
func export(entries [][]field) []byte {
	var b bytes.Buffer
	for _, e := range entries {
		for _, f := range e {
			if printable(f.value) {
				fmt.Fprintf(&b, "%s=%s\n", f.name, f.value)
				continue
			}
			b.WriteString(f.name + "\n")
			var n [8]byte
			binary.LittleEndian.PutUint64(n[:], uint64(len(f.value)))
			b.Write(n[:])
			b.WriteString(f.value + "\n")
		}
		b.WriteString("\n")
	}
	return b.Bytes()
}

func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return false
		}
	}
	return true
}

// tools are the systemd programs the tests make and read journals with.
type tools struct {
	remote     string // systemd-journal-remote
	journalctl string
}

// needTools finds them or skips the test.
func needTools(t testing.TB) tools {
	t.Helper()
	jc, err := exec.LookPath("journalctl")
	if err != nil {
		t.Skip("journalctl not found (Debian package systemd): no journal can be read here")
	}
	for _, p := range []string{"/lib/systemd/systemd-journal-remote", "/usr/lib/systemd/systemd-journal-remote"} {
		if _, err := os.Stat(p); err == nil {
			return tools{remote: p, journalctl: jc}
		}
	}
	t.Skip("systemd-journal-remote not found (Debian package systemd-journal-remote): no journal can be made here")
	return tools{}
}

// write appends entries to the journal file path (created if missing;
// its name must end in .journal), as systemd-journal-remote converts an
// export stream.
func (tl tools) write(t testing.TB, path string, entries [][]field) {
	t.Helper()
	cmd := exec.Command(tl.remote, "--output="+path, "-")
	cmd.Stdin = bytes.NewReader(export(entries))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("systemd-journal-remote: %v: %s", err, out)
	}
}

// cursors returns the cursors of every entry of the journal at src (a
// file or directory), in journalctl's order.
func (tl tools) cursors(t testing.TB, src string) []string {
	t.Helper()
	arg := "--file=" + src
	if st, err := os.Stat(src); err == nil && st.IsDir() {
		arg = "--directory=" + src
	}
	out, err := exec.Command(tl.journalctl, arg, "--no-pager", "--output=export", "--output-fields=MESSAGE").Output()
	if err != nil {
		t.Fatalf("journalctl: %v", err)
	}
	var cs []string
	for _, l := range strings.Split(string(out), "\n") {
		if c, ok := strings.CutPrefix(l, "__CURSOR="); ok {
			cs = append(cs, c)
		}
	}
	return cs
}

const bootID = "0123456789abcdef0123456789abcdef"

// clock gives entries times that grow across calls, as a journal's do:
// journalctl follows a journal's files in time order, and does not go
// back for an entry older than where it is.
// Monotonic times grow with them (one boot): entries of two files with
// one boot id are ordered by those.
var clock atomic.Int64

var clockStart = time.Now().Add(-time.Hour).UnixMicro()

func init() { clock.Store(clockStart) }

// entries returns n entries of run, numbered from `from`: MESSAGE
// "jentry <run> n<number>", the usual journal fields, PRIORITY cycling
// through 0-7.
func entries(run string, from, n int) [][]field {
	out := make([][]field, n)
	for k := range out {
		i := from + k
		us := clock.Add(1000)
		out[k] = []field{
			{"__REALTIME_TIMESTAMP", strconv.FormatInt(us, 10)},
			{"__MONOTONIC_TIMESTAMP", strconv.FormatInt(us-clockStart+1000000, 10)},
			{"_BOOT_ID", bootID},
			{"MESSAGE", fmt.Sprintf("jentry %s n%05d", run, i)},
			{"PRIORITY", strconv.Itoa(i % 8)},
			{"_HOSTNAME", "jhost"},
			{"_SYSTEMD_UNIT", run + ".service"},
			{"SYSLOG_IDENTIFIER", run},
			{"_PID", strconv.Itoa(4000 + i%7)},
			{"_COMM", run},
			{"_TRANSPORT", "journal"},
		}
	}
	return out
}

// running is a Reader running in the background.
type running struct {
	r      *journald.Reader
	cancel context.CancelFunc
	done   chan error
}

func start(t testing.TB, cfg journald.Config) *running {
	t.Helper()
	r, err := journald.New(cfg, ingesttest.Quiet)
	if err != nil {
		t.Fatalf("journald.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rr := &running{r: r, cancel: cancel, done: make(chan error, 1)}
	go func() { rr.done <- r.Run(ctx) }()
	t.Cleanup(func() { rr.stop(t) })
	return rr
}

// stop stops the reader and waits for Run (once).
func (rr *running) stop(t testing.TB) {
	t.Helper()
	if rr.done == nil {
		return
	}
	rr.cancel()
	select {
	case err := <-rr.done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	rr.done = nil
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// exactlyOnce checks that the lines matching query are exactly want,
// each once.
func exactlyOnce(t *testing.T, p *ingesttest.Pipe, query string, want []string) []pipeline.Hit {
	t.Helper()
	if n := p.WaitCount(query, len(want), 30*time.Second); n != len(want) {
		t.Fatalf("%q: %d lines indexed, want %d", query, n, len(want))
	}
	time.Sleep(300 * time.Millisecond) // a late double would show now
	hits := p.Hits(query, 2*len(want)+10)
	seen := map[string]int{}
	for _, h := range hits {
		seen[h.Line]++
	}
	for _, w := range want {
		if seen[w] != 1 {
			t.Errorf("%q indexed %d times, want once", w, seen[w])
		}
		delete(seen, w)
	}
	for l, n := range seen {
		t.Errorf("unexpected line %q (%d times)", l, n)
	}
	if len(hits) != len(want) {
		t.Fatalf("%q: %d hits, want %d", query, len(hits), len(want))
	}
	return hits
}

func messages(es [][]field) []string {
	var out []string
	for _, e := range es {
		for _, f := range e {
			if f.name == "MESSAGE" {
				out = append(out, f.value)
			}
		}
	}
	return out
}

// gateSink stands between the reader and the real pipeline: while nack
// is set it nacks every batch (a writer that gives batches up); while
// hold is set it keeps the first batch it sees and forwards the others
// (a sink that acks out of order) until release.
type gateSink struct {
	next pipeline.Sink

	mu     sync.Mutex
	nack   bool
	hold   bool
	held   *pipeline.Batch
	nacked int
}

func (g *gateSink) Publish(ctx context.Context, b *pipeline.Batch) error {
	g.mu.Lock()
	switch {
	case g.nack:
		g.nacked++
		g.mu.Unlock()
		b.Nack(fmt.Errorf("test: batch given up"))
		return nil
	case g.hold && g.held == nil:
		g.held = b
		g.mu.Unlock()
		return nil
	}
	g.mu.Unlock()
	return g.next.Publish(ctx, b)
}

func (g *gateSink) set(nack, hold bool) {
	g.mu.Lock()
	g.nack, g.hold = nack, hold
	g.mu.Unlock()
}

// release forwards the held batch.
func (g *gateSink) release(ctx context.Context) error {
	g.mu.Lock()
	b := g.held
	g.held, g.hold = nil, false
	g.mu.Unlock()
	if b == nil {
		return fmt.Errorf("no batch held")
	}
	return g.next.Publish(ctx, b)
}

func readState(t testing.TB, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, journald.StateFile))
	if os.IsNotExist(err) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSuffix(string(b), "\n")
}
