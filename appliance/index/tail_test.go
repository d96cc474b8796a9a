package index

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/logbox/logbox/appliance/pipeline"
)

// drain calls Next until it returns nothing, failing after the deadline.
func drain(t *testing.T, ctx context.Context, s pipeline.TailStream) ([]pipeline.Hit, string) {
	t.Helper()
	var hits []pipeline.Hit
	gap := ""
	for {
		c, err := s.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		hits = append(hits, c.Hits...)
		if c.Gap != "" {
			gap = c.Gap
		}
		if len(c.Hits) == 0 && c.Gap == "" {
			select {
			case <-s.Ready():
				continue
			case <-time.After(50 * time.Millisecond):
				return hits, gap
			}
		}
	}
}

func lines(hs []pipeline.Hit) []string {
	var out []string
	for _, h := range hs {
		out = append(out, h.Line)
	}
	return out
}

func TestTailMatchesNewLines(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ix := openTest(t, filepath.Join(t.TempDir(), "idx"))
	defer ix.Close()
	now := time.Now().UTC()
	if err := ix.Index(ctx, []pipeline.Record{{TS: now, Host: "h", FileID: "f", Offset: 0, Line: "old error"}}); err != nil {
		t.Fatal(err)
	}
	errs, err := ix.Tail(ctx, pipeline.TailRequest{Query: "error"})
	if err != nil {
		t.Fatal(err)
	}
	defer errs.Close()
	all, err := ix.Tail(ctx, pipeline.TailRequest{})
	if err != nil {
		t.Fatal(err)
	}
	defer all.Close()
	rs := []pipeline.Record{
		{TS: now.Add(2 * time.Second), Host: "h", FileID: "f", Offset: 10, Line: "new error b"},
		{TS: now.Add(time.Second), Host: "h", FileID: "f", Offset: 20, Line: "new error a"},
		{TS: now, Host: "h", FileID: "f", Offset: 30, Line: "fine"},
	}
	if err := ix.Index(ctx, rs); err != nil {
		t.Fatal(err)
	}
	select {
	case <-errs.Ready():
	case <-ctx.Done():
		t.Fatal("no signal")
	}
	got, _ := drain(t, ctx, errs)
	if l := lines(got); len(l) != 2 || l[0] != "new error a" || l[1] != "new error b" {
		t.Fatalf("error tail got %q", l)
	}
	if got, _ := drain(t, ctx, all); len(got) != 3 {
		t.Fatalf("match-all tail got %q", lines(got))
	}
	errs.Close()
	if n := ix.subscribers.Load(); n != 1 {
		t.Fatalf("%d subscribers after one Close", n)
	}
}

func TestTailResume(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ix := openTest(t, filepath.Join(t.TempDir(), "idx"))
	defer ix.Close()
	base := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	r := recs(base, 9, "f1") // INFO, ERROR, WARN, ...
	if err := ix.Index(ctx, r); err != nil {
		t.Fatal(err)
	}
	// The client saw line 1; lines 2..8 follow, matching ones only.
	s, err := ix.Tail(ctx, pipeline.TailRequest{Query: "level:error OR level:warn", LastEventID: r[1].ID()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// A line indexed while resuming (and found by the resume too) comes once.
	late := recs(base.Add(time.Hour), 3, "f2")
	if err := ix.Index(ctx, late); err != nil {
		t.Fatal(err)
	}
	got, gap := drain(t, ctx, s)
	want := []string{r[2].Line, r[4].Line, r[5].Line, r[7].Line, r[8].Line, late[1].Line, late[2].Line}
	if gap != "" || len(got) != len(want) {
		t.Fatalf("got %q gap %q, want %q", lines(got), gap, want)
	}
	for i := range want {
		if got[i].Line != want[i] {
			t.Fatalf("got %q, want %q", lines(got), want)
		}
	}

	// Unknown Last-Event-ID: live only.
	s2, err := ix.Tail(ctx, pipeline.TailRequest{LastEventID: "gone|x|1"})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if got, _ := drain(t, ctx, s2); len(got) != 0 {
		t.Fatalf("unknown id resumed %q", lines(got))
	}
}

func TestTailResumeCapAndOverflow(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ix, err := Open(Config{Dir: filepath.Join(t.TempDir(), "idx"), TailBuffer: 10, TailResumeMax: 4}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			ix.Close()
		}
	}()
	base := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	r := recs(base, 10, "f1")
	if err := ix.Index(ctx, r); err != nil {
		t.Fatal(err)
	}
	s, err := ix.Tail(ctx, pipeline.TailRequest{LastEventID: r[0].ID()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, gap := drain(t, ctx, s)
	if len(got) != 4 || got[0].Line != r[1].Line || gap == "" {
		t.Fatalf("capped resume: %q gap %q", lines(got), gap)
	}

	// A reader that never calls Next does not slow Index down; once
	// more than TailBuffer lines wait, it is dropped.
	slow, err := ix.Tail(ctx, pipeline.TailRequest{})
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	start := time.Now()
	for i := 0; i < 5; i++ {
		if err := ix.Index(ctx, recs(base.Add(time.Duration(i)*time.Hour), 5, fmt.Sprintf("g%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("Index took %v with a stalled tail", d)
	}
	if _, err := slow.Next(ctx); !errors.Is(err, pipeline.ErrTailOverflow) {
		t.Fatalf("stalled tail: %v, want overflow", err)
	}
	closed = true
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Next(ctx); !errors.Is(err, pipeline.ErrTailClosed) {
		t.Fatalf("after index Close: %v", err)
	}
}
