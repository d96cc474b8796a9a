package pipeline

import "time"

// PatternsRequest asks for the lines matching Query in [From, To) grouped
// into log templates (appliance/patterns; GET /api/patterns). A zero end
// of the range is open.
type PatternsRequest struct {
	// Query selects the lines, as Search takes it (no pipe).
	Query string
	From  time.Time
	To    time.Time
	// CompareFrom and CompareTo, both set, name the comparison range: a
	// template is New when no line of Query in [CompareFrom, CompareTo)
	// fits it. Zero: no comparison.
	CompareFrom time.Time
	CompareTo   time.Time
	// Buckets is the number of sparkline buckets per template over
	// [From, To) (0: none; a range with an open end has none).
	Buckets int
	// Limit is the most templates listed, the most frequent first
	// (0: 100).
	Limit int
	// NewOnly lists only the templates that are new against the
	// comparison range (the "new templates of a query" question).
	NewOnly bool
}

// Compare reports whether the request names a comparison range.
func (r PatternsRequest) Compare() bool { return !r.CompareFrom.IsZero() && !r.CompareTo.IsZero() }

// PatternsResult is the answer to a PatternsRequest. Every matching line
// in the range belongs to exactly one template: the counts of all
// templates add up to Total, and the counts listed plus Rest do too.
type PatternsResult struct {
	// Total is the number of matching lines in the range.
	Total uint64 `json:"total"`
	// Patterns are the templates listed: by count, most first, then by
	// text; the overflow template (Other), if any, last.
	Patterns []Pattern `json:"patterns"`
	// Templates is the number of templates the lines form, listed or not.
	Templates int `json:"templates"`
	// Rest is the number of lines of the templates not listed (Limit,
	// NewOnly): Total minus the counts listed.
	Rest uint64 `json:"rest"`
	// New is the number of templates that are new against the
	// comparison range (listed or not); 0 without a comparison.
	New int `json:"new"`
	// Compared says a comparison range was checked; CompareFrom and
	// CompareTo echo it.
	Compared    bool      `json:"compared"`
	CompareFrom time.Time `json:"compare_from,omitzero"`
	CompareTo   time.Time `json:"compare_to,omitzero"`
	// BucketStart is the start of the first sparkline bucket and
	// BucketMS the length of each in milliseconds: bucket k of a
	// template counts its lines in [BucketStart + k·BucketMS,
	// BucketStart + (k+1)·BucketMS). Zero without buckets.
	BucketStart time.Time `json:"bucket_start,omitzero"`
	BucketMS    int64     `json:"bucket_ms,omitempty"`
	// Overflow says the lines formed more distinct masked forms than an
	// answer keeps: the lines past that cap are counted in the template
	// marked Other, so the counts still add up to Total.
	Overflow bool `json:"overflow,omitempty"`
	// Partial, with Missing, says the answer lacks the lines of Kafka
	// partition ranges no live indexer holds (the fleet; see Coverage).
	Partial bool           `json:"partial,omitempty"`
	Missing []MissingRange `json:"missing,omitempty"`
}

// Pattern is one log template.
type Pattern struct {
	// Pattern is the template: the words of its lines separated by single
	// spaces, "<*>" where they vary, "KEY=<*>" where the value of a
	// key=value word varies.
	Pattern string `json:"pattern"`
	// Count is the exact number of lines of the range in this template.
	Count uint64 `json:"count"`
	// Example is one line of the template: the newest (the smallest text
	// among equally new ones), cut to 2000 bytes.
	Example string `json:"example"`
	// New says no line of the comparison range fits the template.
	New bool `json:"new,omitempty"`
	// Buckets are the template's counts per sparkline bucket (see
	// PatternsResult.BucketStart); empty without buckets.
	Buckets []uint64 `json:"buckets"`
	// Query is a query that selects the lines of the request's query
	// that fit the template: the request's query AND _pattern:"…". Its
	// count over the range equals Count unless Overlap is set. Empty for
	// the Other template.
	Query string `json:"query"`
	// Overlap says lines of other templates fit this template too: its
	// Query then selects more lines than Count.
	Overlap bool `json:"overlap,omitempty"`
	// Other marks the overflow template (see PatternsResult.Overflow).
	Other bool `json:"other,omitempty"`
}

// KeyBlock is what a key scan (index.Index.ScanKeys) hands the patterns
// miner for one block of lines: the masked forms (keys) of the block's
// matching lines, counted without the text. It is valid only during the
// call that receives it.
//
// Either Counts is set (every line of the block matched and all lie in
// one sparkline bucket; TS is a time of the block) or Lines and LineTS
// list the matching lines, each as its key's index in Keys and its time.
type KeyBlock struct {
	// Keys are the block's distinct keys; some may have no matching line.
	Keys []string
	// Counts, when set, is the number of matching lines of each key.
	Counts []uint32
	TS     int64
	// Lines and LineTS: per matching line, its key (an index into Keys)
	// and its time (Unix ns).
	Lines  []uint32
	LineTS []int64
	// ExTS and Ex are each key's example among the matching lines: the
	// newest, of the newest the smallest text (cut to at most
	// MaxKeyExample bytes at a character boundary). ExTS is
	// math.MinInt64 for a key without matching lines. When Ex is nil,
	// ExOf(k) returns key k's (read when first asked: ask only for the
	// examples that win).
	ExTS []int64
	Ex   []string
	ExOf func(k int) string
}

// Example returns key k's example.
func (kb *KeyBlock) Example(k int) string {
	if kb.Ex == nil {
		return kb.ExOf(k)
	}
	return kb.Ex[k]
}

// MaxKeyExample is the most bytes of a line kept as a key's example.
const MaxKeyExample = 2000
