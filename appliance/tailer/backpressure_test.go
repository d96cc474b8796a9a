package tailer_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/logbox/logbox/appliance/checkpoint"
	"github.com/logbox/logbox/appliance/index"
	"github.com/logbox/logbox/appliance/indexwriter"
	"github.com/logbox/logbox/appliance/pipeline"
	"github.com/logbox/logbox/appliance/tailer"
)

// TestSlowIndexPausesTailer: in direct mode the index writer is the sink. While
// its writer is stalled (not running), the tailer reads only a bounded
// amount ahead and stops; when the writer runs again, every line arrives,
// once, and the checkpoint reaches the end of the file.
func TestSlowIndexPausesTailer(t *testing.T) {
	dir := t.TempDir()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ix, err := index.Open(index.Config{Dir: filepath.Join(dir, "idx")}, log)
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	w := indexwriter.New(indexwriter.Config{QueueBatches: 1}, ix, log)
	cps, err := checkpoint.Open(filepath.Join(dir, "cp.json"), time.Second, log)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "app.log")
	var b strings.Builder
	const lines = 15000
	for i := 0; i < lines; i++ {
		fmt.Fprintf(&b, "slowidx line %07d some payload to make it longer\n", i)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	m := tailer.New(tailer.Config{Host: "h", ScanInterval: 50 * time.Millisecond, MaxPending: 2, BatchLines: 500}, w, cps, log)
	m.Apply([]pipeline.Source{{Name: "s", Paths: []string{path}}})
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	go m.Run(ctx)

	// The index writer is not running: reading must stop early.
	var read1, read2 int64
	time.Sleep(500 * time.Millisecond)
	if st := m.Status(); len(st) == 1 {
		read1 = st[0].ReadOffset
	}
	time.Sleep(500 * time.Millisecond)
	st := m.Status()
	if len(st) != 1 {
		t.Fatalf("status: %+v", st)
	}
	read2 = st[0].ReadOffset
	t.Logf("with the index stalled: read %d of %d bytes, then %d", read1, st[0].Size, read2)
	if read2 != read1 || read2 >= st[0].Size || st[0].Offset != 0 {
		t.Fatalf("tailer did not pause: read %d then %d of %d, committed %d", read1, read2, st[0].Size, st[0].Offset)
	}

	go w.Run(ctx)
	for ix.Stats().Docs < lines {
		if ctx.Err() != nil {
			t.Fatalf("only %d of %d lines indexed", ix.Stats().Docs, lines)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for {
		if st := m.Status(); len(st) == 1 && st[0].Offset == st[0].Size {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("checkpoint did not reach the end of the file")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := ix.Stats().Docs; n != lines {
		t.Fatalf("%d docs, want %d", n, lines)
	}
}
