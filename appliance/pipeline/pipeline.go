// Package pipeline holds the types every stage of logbox shares: the Record
// that travels from a tailed file to the index, the Batch that carries
// records together with their acknowledgement, and the Sink contract.
//
// It has no dependencies on other logbox packages, so every role (tailer,
// kafkaout, kafkain, indexwriter, index) can import it without importing each other.
package pipeline

import (
	"context"
	"strconv"
	"sync"
	"time"
)

// Record is one log line and where it came from. It is also the JSON event
// logbox produces to Kafka (see CONTRACT.md, "Kafka messages").
type Record struct {
	// TS is the event time; until a parser finds one in the line it is the
	// time the line was read.
	TS time.Time `json:"ts"`
	// Host is the box the line was collected on.
	Host string `json:"host"`
	// Source is the path of the file the line was read from.
	Source string `json:"source"`
	// SourceName is the logbox source (settings entry) that collected the line.
	SourceName string `json:"source_name,omitempty"`
	// FileID identifies the file independently of its path (device, inode
	// and a fingerprint of its first line). Together with Host and Offset it
	// makes the record's ID; the index keeps per file the lines it holds and
	// skips a replayed one, so a replay never doubles a line.
	FileID string `json:"file_id"`
	// Offset is the byte offset of the line's first byte in the file.
	Offset int64 `json:"offset"`
	// End is the byte offset just past the line and its newline: the
	// next line starts there. Offset to End is the byte range the line
	// accounts for, bytes dropped on purpose (a truncated line's rest)
	// included, so the index can tell which ranges of a file it holds
	// (the completeness ledger). 0 means unknown (events from other
	// shippers, older logbox agents).
	End int64 `json:"end,omitempty"`
	// Line is the text of the line without its trailing newline.
	Line string `json:"line"`
	// Fields are the static fields the source adds.
	Fields map[string]string `json:"fields,omitempty"`
	// Flags say how the line differs from what was written, e.g.
	// "truncated" or "invalid_utf8" (see the Flag constants). Empty for a
	// line delivered exactly as written.
	Flags []string `json:"flags,omitempty"`
	// Parser is the source's parser as Parser.Spec writes it: empty for
	// auto (the default, and what events of other producers mean).
	Parser string `json:"parser,omitempty"`
	// TZ is the zone a time written without one is read in: an IANA name
	// (the source's timezone, else the collecting box's zone) or, when
	// the box's zone has no known name, its UTC offset then ("+08:00").
	// Empty means the indexer's own zone.
	TZ string `json:"tz,omitempty"`
	// Topic is the Kafka topic the record goes to; empty means the default.
	// It is routing information, not part of the event.
	Topic string `json:"-"`
}

// Flags a record can carry; each is also a reason counted by the stage that
// set it.
const (
	FlagTruncated   = "truncated"    // longer than the max line size; the rest was dropped
	FlagInvalidUTF8 = "invalid_utf8" // invalid UTF-8 replaced by U+FFFD
	FlagNUL         = "nul_removed"  // NUL bytes removed
	FlagPartial     = "partial"      // shipped without its newline after the idle time
	FlagMultiSplit  = "multiline_split"
	// FlagFieldsDropped: some fields parsed from the line (JSON) were not
	// indexed, because the line has more than the per-line bound or the
	// index already holds the most distinct field names it takes. The line
	// itself is indexed in full.
	FlagFieldsDropped = "fields_dropped"
	// FlagUnparsed: the source names a parser (not auto) that did not fit
	// the line; it is indexed as text without parsed fields (its time and
	// level are still found).
	FlagUnparsed = "unparsed"
)

// ID is the record's stable identity: the same line of the same file always
// gets the same ID, whichever path, process or replay delivered it.
func (r *Record) ID() string {
	return RecordID(r.Host, r.FileID, r.Offset)
}

// RecordID builds the ID of the line at offset in file fileID on host.
func RecordID(host, fileID string, offset int64) string {
	return host + "|" + fileID + "|" + strconv.FormatInt(offset, 10)
}

// Batch is a group of records handed to a Sink together with the function
// that acknowledges them.
type Batch struct {
	Records []Record
	ack     func()
	once    sync.Once
}

// NewBatch returns a batch whose Ack runs ack once. ack may be nil.
func NewBatch(records []Record, ack func()) *Batch {
	return &Batch{Records: records, ack: ack}
}

// Ack reports that every record of the batch is durable downstream (acked by
// Kafka with the configured acks, or written to the index). It must be
// called only then; extra calls do nothing.
func (b *Batch) Ack() {
	b.once.Do(func() {
		if b.ack != nil {
			b.ack()
		}
	})
}

// Sink takes batches from the tailer: the Kafka producer
// (appliance/kafkaout), or in direct mode the index writer
// (appliance/indexwriter).
//
// Publish may block to apply backpressure; it returns early only with
// ctx's error. A sink retries passing failures itself: it calls b.Ack once
// every record is durable, and never for a batch that is not. A batch that
// is still in flight when the sink shuts down is simply never acked, so its
// lines are read again after a restart.
type Sink interface {
	Publish(ctx context.Context, b *Batch) error
}
