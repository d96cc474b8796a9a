package pipeline

import "time"

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
}

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
}

// SearchResult holds hits newest first.
type SearchResult struct {
	Total uint64 `json:"total"`
	Hits  []Hit  `json:"hits"`
	// Cursor, when not empty, fetches the page after the last hit.
	Cursor string `json:"cursor,omitempty"`
}

// QueryError is a problem with the caller's query (syntax, cursor), not with
// the index: the API answers it with 400.
type QueryError struct{ Msg string }

func (e *QueryError) Error() string { return "query: " + e.Msg }
