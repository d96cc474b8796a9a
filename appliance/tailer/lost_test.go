package tailer_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/logbox/logbox/appliance/checkpoint"
	"github.com/logbox/logbox/appliance/index"
	"github.com/logbox/logbox/appliance/indexwriter"
	"github.com/logbox/logbox/appliance/pipeline"
	"github.com/logbox/logbox/appliance/tailer"
)

// realRig is the tailer against the real index and the real checkpoint
// store, restartable like the process: stop flushes the checkpoints, and
// start opens them again from disk.
type realRig struct {
	t      *testing.T
	dir    string
	log    *slog.Logger
	ix     *index.Index
	w      *indexwriter.Writer // the tailer's sink, in front of ix
	cfg    tailer.Config
	src    pipeline.Source
	m      *tailer.Manager
	stopFn func()
}

func newRealRig(t *testing.T, src pipeline.Source, cfg tailer.Config) *realRig {
	t.Helper()
	dir := t.TempDir()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if os.Getenv("TAILER_DEBUG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	ix, err := index.Open(index.Config{Dir: filepath.Join(dir, "idx")}, log)
	if err != nil {
		t.Fatal(err)
	}
	w := indexwriter.New(indexwriter.Config{}, ix, log)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = w.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		ix.Close()
	})
	return &realRig{t: t, dir: dir, log: log, ix: ix, w: w, cfg: cfg, src: src}
}

func (g *realRig) start() {
	g.t.Helper()
	cps, err := checkpoint.Open(filepath.Join(g.dir, "checkpoints.json"), 20*time.Millisecond, g.log)
	if err != nil {
		g.t.Fatal(err)
	}
	g.m = tailer.New(g.cfg, g.w, cps, g.log)
	g.m.Apply([]pipeline.Source{g.src})
	ctx, cancel := context.WithCancel(context.Background())
	tdone, cdone := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(tdone)
		_ = g.m.Run(ctx)
	}()
	go func() {
		defer close(cdone)
		_ = cps.Run(ctx)
	}()
	g.stopFn = func() {
		cancel()
		<-tdone
		<-cdone // flushed
	}
	g.t.Cleanup(func() {
		if g.stopFn != nil {
			g.stopFn()
		}
	})
}

func (g *realRig) stop() {
	g.stopFn()
	g.stopFn = nil
}

var tokRE = regexp.MustCompile(`tok(\d+)`)

// tokens pages through every line matching q and counts each token.
func (g *realRig) tokens(q string) map[int]int {
	g.t.Helper()
	seen := map[int]int{}
	cursor := ""
	for page := 0; page < 1000; page++ {
		res, err := g.ix.Search(context.Background(), pipeline.SearchRequest{Query: q, Limit: 1000, Cursor: cursor, NoHighlights: true, ExactTotal: true})
		if err != nil {
			g.t.Fatal(err)
		}
		for _, h := range res.Hits {
			m := tokRE.FindStringSubmatch(h.Line)
			if m == nil {
				g.t.Fatalf("line without token: %q", h.Line)
			}
			n, _ := strconv.Atoi(m[1])
			seen[n]++
		}
		if res.Cursor == "" || len(res.Hits) == 0 {
			break
		}
		cursor = res.Cursor
	}
	return seen
}

// waitDocs waits until the index holds n lines (or the deadline passes).
func (g *realRig) waitDocs(n uint64, within time.Duration) uint64 {
	deadline := time.Now().Add(within)
	for {
		got := g.ix.Stats().Docs
		if got >= n || time.Now().After(deadline) {
			return got
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkOnce fails unless tokens 0..written-1 are each in the index once.
func (g *realRig) checkOnce(q string, written int) {
	g.t.Helper()
	seen := g.tokens(q)
	missing, doubled := 0, 0
	for i := 0; i < written; i++ {
		switch seen[i] {
		case 0:
			missing++
		case 1:
		default:
			doubled++
		}
	}
	if docs := g.ix.Stats().Docs; missing > 0 || doubled > 0 || docs != uint64(written) {
		g.t.Fatalf("%d lines written, %d in the index: %d missing, %d doubled", written, docs, missing, doubled)
	}
}

type lineWriter struct {
	t    *testing.T
	next int
}

func (w *lineWriter) write(path string, n int) {
	w.t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		w.t.Fatal(err)
	}
	defer f.Close()
	var b []byte
	for i := 0; i < n; i++ {
		b = fmt.Appendf(b, "2026-11-25T10:00:00Z INFO rotline tok%07d some payload\n", w.next)
		w.next++
	}
	if _, err := f.Write(b); err != nil {
		w.t.Fatal(err)
	}
}

// TestRotationWhileDownLosesNothing: the glob matches only the live name
// (logs/*.log); while logbox is down, lines are appended to app.log and it
// is rotated away — by rename (app.log → app.log.N) or by copytruncate
// (copied to app.log.N, truncated) — and a new app.log is written. Five
// restarts, each with a rotation while down: every line is in the index
// exactly once. (Before, the tail written while down was lost each time.)
func TestRotationWhileDownLosesNothing(t *testing.T) {
	logs := filepath.Join(t.TempDir(), "logs")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		t.Fatal(err)
	}
	src := pipeline.Source{Name: "app", Paths: []string{filepath.Join(logs, "*.log")}}
	g := newRealRig(t, src, tailer.Config{Host: "h", ScanInterval: 50 * time.Millisecond, RotateWait: 200 * time.Millisecond})
	app := filepath.Join(logs, "app.log")
	w := &lineWriter{t: t}
	w.write(app, 500)
	for cycle := 1; cycle <= 5; cycle++ {
		g.start()
		w.write(app, 300)
		if got := g.waitDocs(uint64(w.next), 10*time.Second); got != uint64(w.next) {
			t.Errorf("cycle %d: %d of %d lines indexed while running", cycle, got, w.next)
		}
		g.stop()

		// Down: more lines to the old file, then it is rotated away.
		w.write(app, 400)
		rotated := fmt.Sprintf("%s.%d", app, cycle)
		if cycle%2 == 1 {
			if err := os.Rename(app, rotated); err != nil {
				t.Fatal(err)
			}
		} else {
			b, err := os.ReadFile(app)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(rotated, b, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(app, 0); err != nil {
				t.Fatal(err)
			}
		}
		w.write(app, 200)
	}
	g.start()
	got := g.waitDocs(uint64(w.next), 30*time.Second)
	time.Sleep(500 * time.Millisecond) // nothing more may come
	t.Logf("%d lines written, %d indexed", w.next, got)
	g.checkOnce("rotline", w.next)
}
