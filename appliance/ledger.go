package appliance

import (
	"strings"
	"time"

	"github.com/logbox/logbox/appliance/ledger"
	"github.com/logbox/logbox/appliance/tailer"
)

// defaultLedgerGrace is how long, in Kafka mode, acked bytes that the index
// does not hold yet count as on their way rather than as a gap (the consumer
// indexes within seconds when it keeps up; its lag covers the rest).
const defaultLedgerGrace = time.Minute

// ledger builds the completeness ledger of the files this process collects:
// the checkpoints (every file with acked lines, those rotated away and let
// go included), the tailer's live view of the files it follows (followed,
// what a.tail.Status returned), and what the index holds of each. Nil when
// this process collects nothing.
func (a *Appliance) ledger(followed []tailer.FileStatus) *ledger.Ledger {
	if a.tail == nil || a.cps == nil {
		return nil
	}
	// Acked offsets are read before the index's coverage: in direct mode a
	// line is acked only once indexed, so what is read after it covers it.
	type key struct{ source, fileID string }
	files := map[key]*ledger.File{}
	present := map[string]bool{}
	for _, name := range a.tail.Present() {
		present[name] = true
	}
	for k, e := range a.cps.All() {
		source, fileID, ok := strings.Cut(k, "/")
		if !ok || !present[source] {
			// A removed source's entries wait for pruning; it is no
			// longer collected, so it is no longer accounted for.
			continue
		}
		files[key{source, fileID}] = &ledger.File{Source: source, Path: e.Path, FileID: fileID, Read: e.Offset, Acked: e.Offset, AckedAt: e.Updated, Size: e.Size, Deleted: e.Gone}
	}
	for _, fs := range followed {
		if fs.FileID == "" {
			continue // a refused path: in Files with its error
		}
		k := key{fs.Source, fs.FileID}
		f := files[k]
		if f == nil {
			f = &ledger.File{Source: fs.Source, FileID: fs.FileID, AckedAt: fs.Started}
			files[k] = f
		}
		f.Path, f.Size, f.Read, f.Followed = fs.Path, fs.Size, fs.ReadOffset, true
		f.Acked = max(f.Acked, fs.Offset)
		f.LinesRead, f.LinesAcked = fs.LinesRead, fs.LinesAcked
	}
	in := ledger.Input{Indexes: a.idx != nil, Now: time.Now()}
	for _, f := range files {
		in.Files = append(in.Files, *f)
	}
	if a.idx != nil {
		host := a.cfg.Host
		in.Coverage = func(fileID string) (ledger.Coverage, bool) {
			fc, ok := a.idx.FileCoverage(host, fileID)
			c := ledger.Coverage{Lines: fc.Lines, UnknownLines: fc.UnknownLines, RetentionDroppedTo: fc.RetentionDroppedTo}
			for _, h := range fc.Held {
				c.Held = append(c.Held, ledger.Span(h))
			}
			return c, ok
		}
	}
	if a.consumer != nil {
		// Through Kafka the index trails the acks: what the consumer has
		// not read yet is on its way (no partition claimed yet: unknown,
		// so on its way too).
		in.Grace = a.cfg.LedgerGrace
		if in.Grace <= 0 {
			in.Grace = defaultLedgerGrace
		}
		cs := a.consumer.Stats()
		in.Pending = len(cs.Lag) == 0
		for _, l := range cs.Lag {
			if l.Lag > 0 {
				in.Pending = true
			}
		}
	}
	l := ledger.Build(in)
	return &l
}
