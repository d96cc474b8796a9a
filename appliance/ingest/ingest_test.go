package ingest_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/logbox/logbox/appliance/index"
	"github.com/logbox/logbox/appliance/indexwriter"
	"github.com/logbox/logbox/appliance/ingest"
	"github.com/logbox/logbox/appliance/ingest/ingesttest"
	"github.com/logbox/logbox/appliance/pipeline"
)

func lines(base time.Time, from, n int, stream string) []ingest.Line {
	out := make([]ingest.Line, n)
	for i := range out {
		out[i] = ingest.Line{Stream: stream, Record: pipeline.Record{
			TS:   base.Add(time.Duration(from+i) * time.Millisecond),
			Line: fmt.Sprintf("pushed line n%06d of %s", from+i, stream),
		}}
	}
	return out
}

// A client's retry of lines already written, a retry after a restart of
// the acceptor (the id log read back), and identical lines within one
// call: each line is indexed exactly once, in both modes.
func TestRetriesIndexedOnce(t *testing.T) {
	for _, mode := range ingesttest.Modes {
		t.Run(string(mode), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			p := ingesttest.Start(t, mode)
			dir := t.TempDir()
			a := p.Acceptor("test", dir)
			base := time.Now().Add(-time.Hour).Truncate(time.Second)
			first := lines(base, 0, 500, "s1")
			if res, err := a.Accept(ctx, first); err != nil || res.Retried != 0 {
				t.Fatalf("accept: %+v %v", res, err)
			}
			// The same lines again (a retry after a timeout), with 100 new.
			again := lines(base, 0, 600, "s1")
			res, err := a.Accept(ctx, again)
			if err != nil || res.Retried != 500 {
				t.Fatalf("retry: %+v %v", res, err)
			}
			// Two identical lines in one call are two lines.
			twins := []ingest.Line{lines(base, 1000, 1, "s1")[0], lines(base, 1000, 1, "s1")[0]}
			if _, err := a.Accept(ctx, twins); err != nil {
				t.Fatal(err)
			}
			// Restart: a new acceptor on the same id log recognises them.
			_ = a.Close()
			b, err := ingest.New(ingest.Config{Name: "test", Host: "logbox-test", Dir: dir, Sink: p.Sink}, ingesttest.Quiet)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			res, err = b.Accept(ctx, append(lines(base, 0, 600, "s1"), twins...))
			if err != nil || res.Retried != 602 {
				t.Fatalf("retry after restart: %+v %v", res, err)
			}
			// Another stream with the same text and times is other lines.
			if _, err := b.Accept(ctx, lines(base, 0, 10, "s2")); err != nil {
				t.Fatal(err)
			}
			if n := p.WaitCount("pushed", 612, 20*time.Second); n != 612 {
				t.Fatalf("indexed %d lines, want 612", n)
			}
			if n := p.Count(`"n001000"`); n != 2 {
				t.Fatalf("twins indexed %d times, want 2", n)
			}
			time.Sleep(300 * time.Millisecond) // a late double would show now
			if n := p.Count("pushed"); n != 612 {
				t.Fatalf("indexed %d lines, want 612", n)
			}
			st := b.Stats()
			if st.Acked != 612 || st.Retried != 602 || st.InFlight != 0 {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

// blockSink takes batches and never acks them: the in-flight bound
// makes further calls fail at once with ErrOverloaded.
type blockSink struct{ got chan *pipeline.Batch }

func (s blockSink) Publish(ctx context.Context, b *pipeline.Batch) error {
	select {
	case s.got <- b:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func TestOverloadAndNack(t *testing.T) {
	sink := blockSink{got: make(chan *pipeline.Batch, 10)}
	a, err := ingest.New(ingest.Config{Name: "t", Host: "h", Sink: sink, MaxInFlight: 100}, ingesttest.Quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ctx := context.Background()
	errc := make(chan error, 1)
	go func() {
		_, err := a.Accept(ctx, lines(time.Now(), 0, 80, "s"))
		errc <- err
	}()
	b := <-sink.got
	if _, err := a.Accept(ctx, lines(time.Now(), 100, 30, "s")); !errors.Is(err, ingest.ErrOverloaded) {
		t.Fatalf("over the bound: %v, want ErrOverloaded", err)
	}
	if code, ra := ingest.Status(ingest.ErrOverloaded); code != 429 || ra == "" {
		t.Fatalf("status %d %q", code, ra)
	}
	b.Nack(errors.New("disk gone"))
	if err := <-errc; err == nil {
		t.Fatal("a nacked batch answered without error")
	}
	st := a.Stats()
	if st.Failed != 80 || st.Overloaded != 30 || st.InFlight != 0 {
		t.Fatalf("stats %+v", st)
	}
	// With the budget back, a call goes through.
	go func() { b := <-sink.got; b.Ack() }()
	if _, err := a.Accept(ctx, lines(time.Now(), 200, 30, "s")); err != nil {
		t.Fatal(err)
	}
}

// The identity does not depend on the order of fields, and tells apart
// lines that differ in any part of it.
func TestKeyParts(t *testing.T) {
	base := time.Unix(1700000000, 123)
	mk := func(stream, host, line string, ts time.Time, fields map[string]string) ingest.Line {
		return ingest.Line{Stream: stream, Record: pipeline.Record{TS: ts, Host: host, Line: line, Fields: fields}}
	}
	a := mk("s", "h", "l", base, map[string]string{"a": "1", "b": "2"})
	same := mk("s", "h", "l", base, map[string]string{"b": "2", "a": "1"})
	if ingest.Key(&a, 0) != ingest.Key(&same, 0) {
		t.Fatal("field order changed the identity")
	}
	for name, o := range map[string]ingest.Line{
		"stream": mk("t", "h", "l", base, a.Record.Fields),
		"host":   mk("s", "g", "l", base, a.Record.Fields),
		"line":   mk("s", "h", "m", base, a.Record.Fields),
		"time":   mk("s", "h", "l", base.Add(1), a.Record.Fields),
		"field":  mk("s", "h", "l", base, map[string]string{"a": "1", "b": "3"}),
		"swap":   mk("s", "h", "l", base, map[string]string{"a": "2", "b": "1"}),
		"split":  mk("s", "h", "l", base, map[string]string{"a": "1\x00b", "": "2"}),
	} {
		if ingest.Key(&a, 0) == ingest.Key(&o, 0) {
			t.Errorf("a different %s gives the same identity", name)
		}
	}
	if ingest.Key(&a, 0) == ingest.Key(&a, 1) {
		t.Error("the second occurrence has the first one's identity")
	}
	withID := ingest.Line{ID: "idx/1", Record: a.Record}
	other := ingest.Line{ID: "idx/1", Record: mk("z", "z", "z", base, nil).Record}
	if ingest.Key(&withID, 0) != ingest.Key(&other, 0) {
		t.Error("a client id does not decide the identity alone")
	}
}

// MaxIDs bounds what is remembered: an old line is forgotten (its resend
// indexed again), a recent one still recognised, and the count of
// identities stays near the bound.
func TestMaxIDs(t *testing.T) {
	p := ingesttest.Start(t, ingesttest.Direct)
	a, err := ingest.New(ingest.Config{Name: "t", Host: "h", Dir: t.TempDir(), Sink: p.Sink, MaxIDs: 8}, ingesttest.Quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ctx := context.Background()
	base := time.Now().Add(-time.Minute)
	all := lines(base, 0, 40, "s")
	for i := range all {
		if _, err := a.Accept(ctx, all[i:i+1]); err != nil {
			t.Fatal(err)
		}
	}
	if n := a.Stats().IDs; n > 12 {
		t.Fatalf("%d identities remembered with MaxIDs 8", n)
	}
	if res, err := a.Accept(ctx, lines(base, 39, 1, "s")); err != nil || res.Retried != 1 {
		t.Fatalf("the newest line's resend: %+v %v, want recognised", res, err)
	}
	if res, err := a.Accept(ctx, lines(base, 0, 1, "s")); err != nil || res.Retried != 0 {
		t.Fatalf("the oldest line's resend: %+v %v, want forgotten", res, err)
	}
}

// TestWaitedUnlessPipelined: a pushed batch is written by the index
// writer as soon as nothing more is queued (its client waits on it), even
// with an hour's flush interval; an input that keeps many in flight
// (SetPipelined, syslog) leaves its batches to fill bigger writes.
func TestWaitedUnlessPipelined(t *testing.T) {
	ix, err := index.Open(index.Config{Dir: filepath.Join(t.TempDir(), "idx")}, ingesttest.Quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	w := indexwriter.New(indexwriter.Config{FlushInterval: time.Hour}, ix, ingesttest.Quiet)
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	defer func() { stop(); <-done }()
	line := func(s string) []ingest.Line {
		return []ingest.Line{{Record: pipeline.Record{Line: s, Source: "test"}}}
	}
	acc, err := ingest.New(ingest.Config{Name: "waited", Host: "h", Sink: w}, ingesttest.Quiet)
	if err != nil {
		t.Fatal(err)
	}
	actx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := acc.Accept(actx, line("waited line")); err != nil {
		t.Fatalf("a waited batch was not written well before the hour: %v", err)
	}
	piped, err := ingest.New(ingest.Config{Name: "piped", Host: "h", Sink: w}, ingesttest.Quiet)
	if err != nil {
		t.Fatal(err)
	}
	piped.SetPipelined()
	pctx, pcancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer pcancel()
	if _, err := piped.Accept(pctx, line("pipelined line")); err == nil {
		t.Fatal("a pipelined input's batch was written at once; it should wait the flush interval for company")
	}
}
