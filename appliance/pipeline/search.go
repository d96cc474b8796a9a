package pipeline

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"
)

// SearchRequest is a query against the index. The zero From/To leave that
// end of the time range open.
type SearchRequest struct {
	// Query is in Bleve query-string syntax over the line and fields;
	// empty matches everything.
	Query string
	From  time.Time
	To    time.Time
	Limit int
	// Cursor continues a previous search after its last hit.
	Cursor string
	// NoHighlights skips Hit.Highlights (export does not need them).
	NoHighlights bool
	// ExactTotal counts every matching line. Without it, a query that
	// must read lines to check them is counted up to TotalBound lines
	// (then SearchResult.TotalRelation is "gte"), so the newest page of a
	// common term does not wait for a count of all its lines.
	ExactTotal bool
	// WithSort fills each hit's Sort: the fleet merges answers of several
	// indexers by it and passes the last one on as the cursor.
	WithSort bool
}

// TotalBound is how far a search counts without ExactTotal.
const TotalBound = 10000

// Hit is one matching line.
type Hit struct {
	ID     string            `json:"id"`
	TS     time.Time         `json:"ts"`
	Host   string            `json:"host"`
	Source string            `json:"source"`
	FileID string            `json:"file_id,omitempty"`
	Offset int64             `json:"offset"`
	Line   string            `json:"line"`
	Level  string            `json:"level,omitempty"`
	Fields map[string]string `json:"fields,omitempty"`
	Flags  []string          `json:"flags,omitempty"`
	// Anchor marks the hit a context request was made for.
	Anchor bool `json:"anchor,omitempty"`
	// Sort is the hit's place in the order of every index (a cursor that
	// fetches what comes after it), when SearchRequest.WithSort asked.
	Sort string `json:"sort,omitempty"`
	// Ingested is when the line was read (TS is the time parsed from the
	// line when it has one, else the same).
	Ingested time.Time `json:"ingested,omitzero"`
	// Highlights are the places in Line where terms of the query occur,
	// in order, not overlapping; empty when the query has no term on line.
	Highlights []Range `json:"highlights,omitempty"`
}

// Range is the byte range [Start, End) of Field's text (only "line" so far).
type Range struct {
	Field string `json:"field"`
	Start int    `json:"start"`
	End   int    `json:"end"`
}

// SearchResult holds hits newest first.
type SearchResult struct {
	Total uint64 `json:"total"`
	// TotalRelation is "gte" when Total is a lower bound (see
	// SearchRequest.ExactTotal), empty when it is exact.
	TotalRelation string `json:"total_relation,omitempty"`
	Hits          []Hit  `json:"hits"`
	// Cursor, when not empty, fetches the page after the last hit.
	Cursor string `json:"cursor,omitempty"`
	// Partial, with Missing, says the answer lacks the lines of Kafka
	// partition ranges no live indexer holds (the fleet; see Coverage).
	Partial bool           `json:"partial,omitempty"`
	Missing []MissingRange `json:"missing,omitempty"`
}

// QueryError is a problem with the caller's query (syntax, cursor), not with
// the index: the API answers it with 400. Pos, when not 0, is where in the
// query the problem is: 1 + the byte offset (so 1 is the first byte); the
// message then says "at position Pos" too, and the API adds "position".
type QueryError struct {
	Msg string
	Pos int
}

func (e *QueryError) Error() string {
	if e.Pos > 0 {
		return fmt.Sprintf("query: %s at position %d", e.Msg, e.Pos)
	}
	return "query: " + e.Msg
}

// ErrHitNotFound: no line has the requested ID. The API answers it with 404.
var ErrHitNotFound = errors.New("no line with this id")

// HistogramRequest counts matching lines per time bucket. A zero From or To
// takes that end from the matching lines' oldest or newest ts.
type HistogramRequest struct {
	Query string
	From  time.Time
	To    time.Time
	// Buckets is about how many buckets cover the range (default 60,
	// at most 500); the bucket size is the nice interval that gives at
	// most that many.
	Buckets int
}

// HistogramBucket counts the lines with From <= ts < From+interval.
type HistogramBucket struct {
	TS    time.Time `json:"ts"`
	Count uint64    `json:"count"`
}

// HistogramResult holds every bucket of the range in time order, empty
// ones included.
type HistogramResult struct {
	Buckets []HistogramBucket `json:"buckets"`
	// Interval is the bucket size, e.g. "1m", "3h", "1d"; empty when
	// there is no range (open ends and no matching line).
	Interval string `json:"interval"`
	// IntervalSeconds is Interval in seconds.
	IntervalSeconds int64 `json:"interval_seconds"`
	// Total is the number of matching lines in the range.
	Total uint64 `json:"total"`
	// First and Last are the oldest and newest matching line's ts when
	// an end of the range was open (the range came from them).
	First *time.Time `json:"first,omitempty"`
	Last  *time.Time `json:"last,omitempty"`
	// Partial, with Missing, says the answer lacks the lines of Kafka
	// partition ranges no live indexer holds (the fleet; see Coverage).
	Partial bool           `json:"partial,omitempty"`
	Missing []MissingRange `json:"missing,omitempty"`
}

// FacetsRequest asks for the most frequent values of Field among matching lines.
type FacetsRequest struct {
	Query string
	From  time.Time
	To    time.Time
	// Field is host, source, source_name, level, flags or fields.NAME.
	Field string
	// Size is how many values to return (default 10, at most 1000).
	Size int
	// All returns every value, Size ignored: the fleet sums the counts
	// of several indexers, exact only with all of each one's values.
	All bool
}

// FacetValue is one value and the number of matching lines having it.
type FacetValue struct {
	Value string `json:"value"`
	Count int    `json:"count"`
}

// FacetsResult holds the top values, most frequent first.
type FacetsResult struct {
	Field string `json:"field"`
	// Total is the number of matching lines.
	Total  uint64       `json:"total"`
	Values []FacetValue `json:"values"`
	// Other counts the values of matching lines that are not listed
	// (a line with several flags counts once per flag).
	Other int `json:"other"`
	// Missing counts matching lines without the field.
	Missing int `json:"missing"`
	// Partial, with MissingRanges, says the answer lacks the lines of
	// Kafka partition ranges no live indexer holds (the fleet).
	Partial       bool           `json:"partial,omitempty"`
	MissingRanges []MissingRange `json:"missing_ranges,omitempty"`
}

// StatsRequest is a query with a stats pipe (QUERY | stats … by (…) |
// sort by (…) | limit N) over [From, To); a zero end is open.
type StatsRequest struct {
	Query string
	From  time.Time
	To    time.Time
}

// StatsResult is a stats pipe's answer: one row per group, the by values
// (strings; _time as the RFC 3339 start of its bucket) then the
// functions' values (numbers; null when a group has no value of the
// field), in Columns' order.
//
// A pipe without by answers one row even when no line matches (counts
// 0, other functions null), as an SQL aggregate without GROUP BY does.
type StatsResult struct {
	Columns []string `json:"columns"`
	// By is how many of the leading columns are by values; the rest are
	// the functions'.
	By   int     `json:"by"`
	Rows [][]any `json:"rows"`
	// Total is the number of matching lines in the range.
	Total uint64 `json:"total"`
	// GroupsCapped says there were more groups than an answer keeps
	// (10 000): lines of the groups past that are not counted.
	GroupsCapped bool `json:"groups_capped"`
	// Partial, with Missing, says the answer lacks the lines of Kafka
	// partition ranges no live indexer holds (the fleet; see Coverage).
	Partial bool           `json:"partial,omitempty"`
	Missing []MissingRange `json:"missing,omitempty"`
}

// ContextRequest asks for the lines around the line with ID, from the same
// file: Before and After lines (each at most 500; the API defaults them to 10).
type ContextRequest struct {
	ID     string
	Before int
	After  int
}

// ContextResult holds the lines in file order (by offset); the requested
// line is Hits[AnchorIndex] and has Anchor set.
type ContextResult struct {
	Hits        []Hit `json:"hits"`
	AnchorIndex int   `json:"anchor_index"`
}

// TailRequest opens a live tail of the lines matching Query. When
// LastEventID is a hit ID, the lines after that hit (by ts) come first.
type TailRequest struct {
	Query       string
	LastEventID string
}

// TailChunk is what one TailStream.Next call returns.
type TailChunk struct {
	Hits []Hit
	// Gap, when not empty, says that lines were skipped and why (a resume
	// longer than the server keeps); the stream goes on after it.
	Gap string
}

// TailStream delivers newly indexed matching lines. It never blocks the
// indexer: a stream that falls too far behind ends with ErrTailOverflow.
// The caller must Close it.
type TailStream interface {
	// Next returns the lines available now, oldest first, without
	// waiting; an empty chunk means "wait on Ready". ctx bounds the
	// searches Next runs.
	Next(ctx context.Context) (TailChunk, error)
	// Ready is signalled when Next may have more lines.
	Ready() <-chan struct{}
	Close()
}

// ErrTailOverflow ends a tail whose reader fell too far behind the indexer.
var ErrTailOverflow = errors.New("tail fell too far behind the indexer and was dropped; reconnect with Last-Event-ID to resume")

// ErrTailClosed ends a tail because the index is closing.
var ErrTailClosed = errors.New("index closed")

// The times a search may name: the index keeps a line's time as int64
// nanoseconds since 1970 (UTC), and a range within these bounds also fits a
// time.Duration, which histogram buckets are computed in. Lines are never
// stamped earlier than 1970 (see the index's event time parsing).
var (
	MinTime = time.Unix(0, 0).UTC()
	MaxTime = time.Unix(0, math.MaxInt64).UTC()
)

// CheckTimeRange refuses a from or to (zero = open) outside [MinTime,
// MaxTime], and a to before from, with a FieldError naming the parameter.
func CheckTimeRange(from, to time.Time) error {
	for _, b := range []struct {
		name string
		t    time.Time
	}{{"from", from}, {"to", to}} {
		if !b.t.IsZero() && (b.t.Before(MinTime) || b.t.After(MaxTime)) {
			return &FieldError{Field: b.name, Msg: fmt.Sprintf("%s is outside the times the index can hold (%s to %s)",
				b.t.UTC().Format(time.RFC3339Nano), MinTime.Format(time.RFC3339), MaxTime.Format(time.RFC3339Nano))}
		}
	}
	if !from.IsZero() && !to.IsZero() && to.Before(from) {
		return &FieldError{Field: "to", Msg: fmt.Sprintf("%s is before from (%s)", to.UTC().Format(time.RFC3339Nano), from.UTC().Format(time.RFC3339Nano))}
	}
	return nil
}
