// Package pipeline holds the types every stage of logbox shares: the Record
// that travels from a tailed file to the index, the Batch that carries
// records together with their acknowledgement, and the Sink contract.
//
// It has no dependencies on other logbox packages, so every role (tailer,
// kafkaout, kafkain, indexwriter, index) can import it without importing each other.
package pipeline

import (
	"context"
	"errors"
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
	// Part is the Kafka partition an indexer read the record from, as
	// "topic/partition" (PartName); empty for a line that did not come
	// through Kafka. The index keeps it with the line's block, so the
	// fleet can ask each indexer for the partitions it answers for.
	Part string `json:"-"`
}

// PartName names a Kafka partition as Record.Part and the fleet do.
func PartName(topic string, partition int32) string {
	return topic + "/" + strconv.Itoa(int(partition))
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

// Batch is a group of records on their way to durable storage, with the
// function that tells their input how that went. It is the one place the
// delivery contract is written; every other package points here.
//
// # The delivery contract
//
// Inputs emit batches: the tailer (a file's lines, acked into its
// checkpoint), the Kafka consumer (a partition's messages, acked into the
// group's committed offsets), the push inputs (appliance/ingest: acked
// into the client's answer) and journald (acked into its cursor). A
// batch goes to one Sink, the writer toward durable storage: the index
// writer (appliance/indexwriter) in direct mode and on indexers, the Kafka
// producer (appliance/kafkaout) on agents.
//
//   - A sink calls Ack once every record of the batch is durable: fsynced
//     in the index (its block file and Bleve segment), or acknowledged by
//     Kafka with the configured acks. Never before, and never for a batch
//     that is not.
//   - A sink retries passing failures itself (backoff, a full disk,
//     a broker outage); the input does not resend meanwhile.
//   - A sink calls Nack when it gives the batch up for good: the process
//     is stopping with the batch still queued, or its records cannot be
//     written at all. An input then leaves its position where it was (a
//     tailer's checkpoint, a consumer's offset, a journal cursor), so the
//     lines are read again after a restart, or answers its client with an
//     error to retry on.
//   - Every record carries an identity (Record.ID: host, file, offset). The
//     index skips a line it holds already, so a batch delivered twice — a
//     replay after a crash, a Kafka redelivery, a client's retry — is
//     indexed once. Inputs without byte offsets give their records one
//     (appliance/ingest for pushed lines, the journal's sequence number).
//   - Only the first of Ack and Nack counts; later calls do nothing.
//
// Together: a line an input acknowledged to its source is durable, and a
// line is indexed once whatever was retried.
type Batch struct {
	Records []Record
	// Waited says a client waits on this batch's ack (a push request):
	// a writer that batches for size writes it as soon as nothing more is
	// queued, instead of waiting its flush interval for more (group
	// commit: what arrives meanwhile goes in the next write).
	Waited bool
	done   func(error)
	once   sync.Once
}

// NewBatch returns a batch whose Ack runs ack once; a Nack runs nothing
// (the input reads the lines again after a restart). ack may be nil.
func NewBatch(records []Record, ack func()) *Batch {
	if ack == nil {
		return &Batch{Records: records}
	}
	return &Batch{Records: records, done: func(err error) {
		if err == nil {
			ack()
		}
	}}
}

// NewBatchFunc returns a batch whose Ack runs done(nil) and whose Nack
// runs done(err), once. done may be nil.
func NewBatchFunc(records []Record, done func(err error)) *Batch {
	return &Batch{Records: records, done: done}
}

// Ack reports that every record of the batch is durable downstream (see
// the contract above). It must be called only then; extra calls do
// nothing.
func (b *Batch) Ack() { b.finish(nil) }

// Nack reports that the sink gives the batch up: err says why (nil is
// taken as ErrNotWritten).
func (b *Batch) Nack(err error) {
	if err == nil {
		err = ErrNotWritten
	}
	b.finish(err)
}

func (b *Batch) finish(err error) {
	b.once.Do(func() {
		if b.done != nil {
			b.done(err)
		}
	})
}

// ErrNotWritten is a Nack's reason when its sink gives none; ErrStopping
// is a sink's reason for the batches it still holds when it stops.
var (
	ErrNotWritten = errors.New("batch not written")
	ErrStopping   = errors.New("the writer is stopping; batch not written")
)

// Sink is the writer toward durable storage (see Batch for the contract):
// the Kafka producer (appliance/kafkaout), or the index writer
// (appliance/indexwriter).
//
// Publish may block to apply backpressure; it returns early only with
// ctx's error (the batch is then not taken: the caller still owns it).
// A taken batch is acked or nacked exactly once.
type Sink interface {
	Publish(ctx context.Context, b *Batch) error
}
