// Package ledger puts side by side, per collected file, what logbox holds
// of it at each step — bytes in the file, read, acked downstream, held by
// the index — and names every byte range that was acked but is not in the
// index, with its reason. It answers "were lines lost?" without the user
// having to compare counters (the question Loki and Filebeat users ask).
//
// It is pure bookkeeping over what the tailer, the checkpoints and the
// index already know; it reads nothing itself. The appliance fills Input
// and calls Build.
package ledger

import (
	"sort"
	"time"
)

// Span is a byte range [From, To) of a file.
type Span struct {
	From int64 `json:"from"`
	To   int64 `json:"to"`
}

// File is what the collecting side knows of one file.
type File struct {
	Source string
	Path   string
	FileID string
	// Size is the file's size now (0 when it is no longer open: rotated
	// away and let go, or not followed right now).
	Size int64
	// Read is the offset up to which lines were read; Acked the offset up
	// to which every line was acked downstream (the checkpoint).
	Read, Acked int64
	// LinesRead and LinesAcked count lines since this process started
	// following the file.
	LinesRead, LinesAcked uint64
	// AckedAt is when Acked last moved.
	AckedAt time.Time
	// Followed tells whether the file is being read now.
	Followed bool
	// Deleted: the file was deleted from disk (Size is its last size). A
	// deleted file that is no longer followed and was not acked to its end
	// lost its unread bytes.
	Deleted bool
}

// Coverage is what the index holds of one file.
type Coverage struct {
	Lines        int64
	UnknownLines int64
	Held         []Span
	// RetentionDroppedTo is the end of the ranges retention dropped.
	RetentionDroppedTo int64
}

// Input is everything Build needs.
type Input struct {
	Files []File
	// Indexes tells whether this process holds the index; without it the
	// ledger stops at "acked" (an agent: the indexers hold the rest).
	Indexes bool
	// Coverage returns what the index holds of a file; ok false when it
	// holds none of it.
	Coverage func(fileID string) (Coverage, bool)
	// Pending tells whether acked lines may still be on their way to the
	// index (Kafka consumer lag above zero).
	Pending bool
	// Grace is how long acked bytes that are not in the index count as in
	// flight rather than as a gap (the way through Kafka takes time).
	Grace time.Duration
	Now   time.Time
}

// States of a file or source.
const (
	StateComplete   = "complete"    // every acked byte is in the index (or was dropped by retention)
	StateCatchingUp = "catching_up" // bytes still being read, acked or indexed; nothing missing
	StateGap        = "gap"         // acked bytes are not in the index
	StateUnknown    = "unknown"     // the index holds lines of unknown byte range (older agents)
	StateShipped    = "shipped"     // an agent: acked by Kafka, indexed elsewhere
)

// Reasons a range is in Gaps.
const (
	ReasonNotIndexed = "acked but not in the index" // lost on the way (Kafka retention, acks=0, a deleted record)
	ReasonRetention  = "dropped by retention"       // deliberate; does not make a file incomplete
	// ReasonDeletedUnread: the file was deleted before logbox read it to
	// its end (logbox was down, or the file was closed as inactive and
	// then written to and deleted before it was opened again).
	ReasonDeletedUnread = "deleted before it was read to its end"
)

// Gap is a byte range of a file that was acked but is not in the index.
type Gap struct {
	Span
	Bytes  int64  `json:"bytes"`
	Reason string `json:"reason"`
}

// FileLedger is one file's line of the ledger.
type FileLedger struct {
	Source string `json:"source"`
	Path   string `json:"path"`
	FileID string `json:"file_id"`
	State  string `json:"state"`
	// Bytes in the file, read, acked downstream, held by the index (of
	// the acked range), and in flight (read but not acked, plus acked and
	// on its way to the index).
	SizeBytes     int64 `json:"size_bytes"`
	ReadBytes     int64 `json:"read_bytes"`
	AckedBytes    int64 `json:"acked_bytes"`
	IndexedBytes  int64 `json:"indexed_bytes"`
	InFlightBytes int64 `json:"in_flight_bytes"`
	GapBytes      int64 `json:"gap_bytes"`
	// Lines read and acked since this process started following the
	// file; lines the index holds of it (all time, within retention).
	LinesRead    uint64 `json:"lines_read"`
	LinesAcked   uint64 `json:"lines_acked"`
	LinesIndexed int64  `json:"lines_indexed"`
	Followed     bool   `json:"followed"`
	Gaps         []Gap  `json:"gaps,omitempty"`
	Note         string `json:"note,omitempty"`
}

// SourceLedger sums a source's files.
type SourceLedger struct {
	Source     string `json:"source"`
	State      string `json:"state"`
	Files      int    `json:"files"`
	Complete   int    `json:"complete"`
	CatchingUp int    `json:"catching_up"`
	WithGaps   int    `json:"with_gaps"`
	Unknown    int    `json:"unknown"`
	Shipped    int    `json:"shipped"`
	GapBytes   int64  `json:"gap_bytes"`
	// Bytes acked downstream and held by the index, over its files.
	AckedBytes   int64 `json:"acked_bytes"`
	IndexedBytes int64 `json:"indexed_bytes"`
}

// Ledger is the whole ledger.
type Ledger struct {
	Sources []SourceLedger `json:"sources"`
	Files   []FileLedger   `json:"files"`
}

// maxGaps bounds the gaps listed per file; GapBytes counts them all.
const maxGaps = 16

// Build computes the ledger.
func Build(in Input) Ledger {
	out := Ledger{Sources: []SourceLedger{}, Files: make([]FileLedger, 0, len(in.Files))}
	bySource := map[string]*SourceLedger{}
	for _, f := range in.Files {
		fl := file(in, f)
		out.Files = append(out.Files, fl)
		s := bySource[f.Source]
		if s == nil {
			s = &SourceLedger{Source: f.Source}
			bySource[f.Source] = s
		}
		s.Files++
		s.GapBytes += fl.GapBytes
		s.AckedBytes += fl.AckedBytes
		s.IndexedBytes += fl.IndexedBytes
		switch fl.State {
		case StateComplete:
			s.Complete++
		case StateShipped:
			s.Shipped++
		case StateCatchingUp:
			s.CatchingUp++
		case StateGap:
			s.WithGaps++
		default:
			s.Unknown++
		}
	}
	for _, s := range bySource {
		switch {
		case s.WithGaps > 0:
			s.State = StateGap
		case s.Unknown > 0:
			s.State = StateUnknown
		case s.CatchingUp > 0:
			s.State = StateCatchingUp
		case !in.Indexes:
			s.State = StateShipped
		default:
			s.State = StateComplete
		}
		out.Sources = append(out.Sources, *s)
	}
	sort.Slice(out.Sources, func(i, j int) bool { return out.Sources[i].Source < out.Sources[j].Source })
	sort.Slice(out.Files, func(i, j int) bool {
		a, b := out.Files[i], out.Files[j]
		if a.Source != b.Source {
			return a.Source < b.Source
		}
		if a.Path != b.Path {
			return a.Path < b.Path
		}
		return a.FileID < b.FileID
	})
	return out
}

func file(in Input, f File) FileLedger {
	fl := FileLedger{Source: f.Source, Path: f.Path, FileID: f.FileID, SizeBytes: f.Size, ReadBytes: f.Read,
		AckedBytes: f.Acked, LinesRead: f.LinesRead, LinesAcked: f.LinesAcked, Followed: f.Followed}
	unread := max(f.Read-f.Acked, 0)
	if f.Followed {
		unread = max(f.Size-f.Acked, unread)
	}
	fl.InFlightBytes = max(f.Read-f.Acked, 0)
	if !in.Indexes {
		deletedUnread(&fl, f)
		switch {
		case fl.GapBytes > 0:
			fl.State = StateGap
		case unread > 0:
			fl.State = StateCatchingUp
		default:
			fl.State = StateShipped
		}
		return fl
	}
	cov, _ := in.Coverage(f.FileID)
	fl.LinesIndexed = cov.Lines
	if cov.UnknownLines > 0 {
		fl.State = StateUnknown
		fl.Note = "the index holds lines of this file without byte ranges (sent by an older agent); completeness cannot be told"
		return fl
	}
	// Walk [0, Acked): held ranges count as indexed, the holes between
	// them are gaps, in flight, or dropped by retention.
	pending := in.Pending || in.Now.Sub(f.AckedAt) < in.Grace
	pos := int64(0)
	var holes []Span
	for _, h := range cov.Held {
		if h.From >= f.Acked {
			break
		}
		if h.From > pos {
			holes = append(holes, Span{pos, h.From})
		}
		to := min(h.To, f.Acked)
		if to > pos {
			fl.IndexedBytes += to - max(h.From, pos)
			pos = to
		}
	}
	if pos < f.Acked {
		holes = append(holes, Span{pos, f.Acked})
	}
	for _, h := range holes {
		if h.To <= cov.RetentionDroppedTo {
			addGap(&fl, h, ReasonRetention)
			continue
		}
		if h.From < cov.RetentionDroppedTo {
			addGap(&fl, Span{h.From, cov.RetentionDroppedTo}, ReasonRetention)
			h.From = cov.RetentionDroppedTo
		}
		if pending {
			fl.InFlightBytes += h.To - h.From
			continue
		}
		addGap(&fl, h, ReasonNotIndexed)
		fl.GapBytes += h.To - h.From
	}
	deletedUnread(&fl, f)
	switch {
	case fl.GapBytes > 0:
		fl.State = StateGap
	case fl.InFlightBytes > 0 || unread > 0:
		fl.State = StateCatchingUp
	default:
		fl.State = StateComplete
	}
	return fl
}

// deletedUnread adds the bytes a deleted file lost before they were read.
func deletedUnread(fl *FileLedger, f File) {
	if f.Deleted && !f.Followed && f.Size > f.Acked {
		addGap(fl, Span{f.Acked, f.Size}, ReasonDeletedUnread)
		fl.GapBytes += f.Size - f.Acked
	}
}

func addGap(fl *FileLedger, s Span, reason string) {
	if len(fl.Gaps) < maxGaps {
		fl.Gaps = append(fl.Gaps, Gap{Span: s, Bytes: s.To - s.From, Reason: reason})
	}
}
