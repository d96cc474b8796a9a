package pipeline

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// SavedSearch is a query kept under a name, with its time range and the
// view the page reopens it in. It is stored as JSON at
// /logbox/searches/<name> in etcd and is the object the HTTP API takes
// and answers.
//
// Validate checks the query for size only, not its syntax: the API parses
// it with the index's own checker (httpapi.Deps.CheckQuery) before it
// stores it, and an entry written to etcd directly is parsed when it runs
// (a parser here would drift from the index's).
type SavedSearch struct {
	Name  string `json:"name"`
	Query string `json:"query"`
	// From and To are as the search API takes them: RFC 3339 or relative
	// to the time the search runs (now-15m, now); empty is an open end.
	From string `json:"from"`
	To   string `json:"to"`
	// View is ViewDiscover (the default) or ViewVisualize.
	View string `json:"view"`
	// Chart is how Visualize draws the answer: ChartBar, ChartLine or
	// ChartTable; empty lets the page choose.
	Chart string `json:"chart,omitempty"`
	// Columns are the fields Discover shows as columns, in order.
	Columns     []string `json:"columns,omitempty"`
	Description string   `json:"description,omitempty"`
	// Created and Updated are set by the server on every write through
	// the API (what a client sends is ignored); an entry written to etcd
	// directly has what it was written with.
	Created time.Time `json:"created,omitzero"`
	Updated time.Time `json:"updated,omitzero"`
}

// Views and charts a saved search may name.
const (
	ViewDiscover  = "discover"
	ViewVisualize = "visualize"
	ChartBar      = "bar"
	ChartLine     = "line"
	ChartTable    = "table"
)

// Caps on one saved search. MaxSavedQueryBytes is the index's
// MaxQueryBytes (a test keeps them equal; pipeline cannot import index).
const (
	MaxSavedQueryBytes       = 4 << 10
	MaxSavedDescriptionBytes = 1 << 10
	MaxSavedColumns          = 64
	MaxSavedColumnBytes      = 200 // the index's longest field path
	MaxSavedSearchBytes      = 32 << 10
)

var (
	// ErrSearchNotFound is returned for a saved search that does not exist.
	ErrSearchNotFound = errors.New("saved search not found")
	// ErrSearchExists is returned when a saved search's name is taken.
	ErrSearchExists = errors.New("saved search already exists")
)

// InvalidEntryError is a stored entry (written to etcd by another client)
// that does not pass validation: it is reported, never served as valid.
// The API answers it with 409: the request was fine, what is stored is not.
type InvalidEntryError struct {
	Key string
	Err error
}

func (e *InvalidEntryError) Error() string {
	return fmt.Sprintf("the entry at %s is invalid (%v); replace it with PUT or delete it", e.Key, e.Err)
}

func (e *InvalidEntryError) Unwrap() error { return e.Err }

// SavedSearchList is every saved search: the valid ones sorted by name,
// and, by the name in its key, why each invalid entry was refused.
type SavedSearchList struct {
	Searches []SavedSearch     `json:"searches"`
	Invalid  map[string]string `json:"invalid"`
}

// CheckName checks a name under the rules a source's name follows.
func CheckName(name string) error {
	if !nameRE.MatchString(name) {
		return &FieldError{"name", "must be 1-63 characters of a-z, 0-9, '.', '_' or '-', starting with a letter or digit"}
	}
	return nil
}

// Normalize fills in defaults (an empty view is ViewDiscover).
func (s *SavedSearch) Normalize() {
	if s.View == "" {
		s.View = ViewDiscover
	}
}

// Validate checks the saved search's shape; now is the time relative
// from/to are read at (only their bounds depend on it). It does not
// fill in defaults: call Normalize first.
func (s *SavedSearch) Validate(now time.Time) error {
	if err := CheckName(s.Name); err != nil {
		return err
	}
	if strings.TrimSpace(s.Query) == "" {
		return &FieldError{"query", "must not be empty (* matches every line)"}
	}
	if len(s.Query) > MaxSavedQueryBytes {
		return &FieldError{"query", fmt.Sprintf("%d bytes; at most %d are allowed", len(s.Query), MaxSavedQueryBytes)}
	}
	if !utf8.ValidString(s.Query) {
		return &FieldError{"query", "must be valid UTF-8"}
	}
	if err := checkSavedRange(s.From, s.To, now); err != nil {
		return err
	}
	switch s.View {
	case ViewDiscover, ViewVisualize:
	default:
		return &FieldError{"view", fmt.Sprintf("%q is not one of discover, visualize", s.View)}
	}
	switch s.Chart {
	case "", ChartBar, ChartLine, ChartTable:
	default:
		return &FieldError{"chart", fmt.Sprintf("%q is not one of bar, line, table", s.Chart)}
	}
	if len(s.Columns) > MaxSavedColumns {
		return &FieldError{"columns", fmt.Sprintf("%d columns; at most %d are allowed", len(s.Columns), MaxSavedColumns)}
	}
	seen := make(map[string]bool, len(s.Columns))
	for i, c := range s.Columns {
		f := fmt.Sprintf("columns[%d]", i)
		switch {
		case c == "":
			return &FieldError{f, "must not be empty"}
		case len(c) > MaxSavedColumnBytes:
			return &FieldError{f, fmt.Sprintf("%d bytes; at most %d are allowed", len(c), MaxSavedColumnBytes)}
		case !utf8.ValidString(c) || strings.ContainsFunc(c, func(r rune) bool { return unicode.IsControl(r) || unicode.IsSpace(r) }):
			return &FieldError{f, fmt.Sprintf("%q: a field name has no blanks or control characters", c)}
		case seen[c]:
			return &FieldError{f, fmt.Sprintf("%q is listed twice", c)}
		}
		seen[c] = true
	}
	if len(s.Description) > MaxSavedDescriptionBytes {
		return &FieldError{"description", fmt.Sprintf("%d bytes; at most %d are allowed", len(s.Description), MaxSavedDescriptionBytes)}
	}
	if !utf8.ValidString(s.Description) {
		return &FieldError{"description", "must be valid UTF-8"}
	}
	return nil
}

// checkSavedRange reads from and to as the search API does and refuses
// what it would refuse. To before from is refused only when both are
// relative or both absolute: a mixed pair's order changes with the clock,
// and a stored entry must not turn invalid as time passes.
func checkSavedRange(from, to string, now time.Time) error {
	f, err := ParseTime(from, now)
	if err != nil {
		return &FieldError{"from", err.Error()}
	}
	t, err := ParseTime(to, now)
	if err != nil {
		return &FieldError{"to", err.Error()}
	}
	if isRelative(from) != isRelative(to) {
		if err := CheckTimeRange(f, time.Time{}); err != nil {
			return err
		}
		return CheckTimeRange(time.Time{}, t)
	}
	return CheckTimeRange(f, t)
}

func isRelative(v string) bool { return strings.HasPrefix(strings.TrimSpace(v), "now") }
