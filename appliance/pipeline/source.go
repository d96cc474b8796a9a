package pipeline

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Source is one collection setting: which files to tail and how to label
// their lines. It is stored as JSON at /logbox/sources/<name> in etcd and
// is the object the HTTP API takes.
type Source struct {
	Name   string            `json:"name"`
	Paths  []string          `json:"paths"`
	Topic  string            `json:"topic,omitempty"`
	Fields map[string]string `json:"fields,omitempty"`
	// Hosts limits the source to the named boxes; empty means every box.
	Hosts  []string `json:"hosts,omitempty"`
	Paused bool     `json:"paused"`
	// MaxLineBytes caps one line (or joined multiline event); longer ones
	// are truncated and flagged. 0 means DefaultMaxLineBytes.
	MaxLineBytes int `json:"max_line_bytes,omitempty"`
	// Multiline joins lines into one event, e.g. a Java stack trace.
	Multiline *Multiline `json:"multiline,omitempty"`
	// Parser says how the index turns the source's lines into fields;
	// the zero value is auto.
	Parser Parser `json:"parser,omitzero"`
	// Timezone is the IANA zone (Asia/Shanghai, UTC, Local) a time
	// written without a zone is read in; empty means the zone of the box
	// that collects the line.
	Timezone string `json:"timezone,omitempty"`
}

// DefaultMaxLineBytes is the line size cap of a source that sets none.
const DefaultMaxLineBytes = 1 << 20

// MaxLine is the source's line size cap.
func (s *Source) MaxLine() int {
	if s.MaxLineBytes > 0 {
		return s.MaxLineBytes
	}
	return DefaultMaxLineBytes
}

// Multiline match modes.
const (
	// MultilineContinuation: a line matching Pattern continues the event
	// before it (e.g. `^\s+at ` for Java stack frames).
	MultilineContinuation = "continuation"
	// MultilineStart: a line matching Pattern starts a new event; the
	// others continue the one before (e.g. `^\d{4}-\d{2}-\d{2}`).
	MultilineStart = "start"
)

// Multiline says how lines are joined into events.
type Multiline struct {
	Pattern string `json:"pattern"`
	// Match is MultilineContinuation (default) or MultilineStart.
	Match string `json:"match,omitempty"`
	// MaxLines caps the lines of one event (default 500); the next line
	// starts a new event, so nothing is dropped.
	MaxLines int `json:"max_lines,omitempty"`
	// Timeout ships a pending event when no line came for this long
	// (Go duration, default "1s").
	Timeout string `json:"timeout,omitempty"`
}

// MaxLinesOrDefault is MaxLines or its default.
func (m *Multiline) MaxLinesOrDefault() int {
	if m.MaxLines > 0 {
		return m.MaxLines
	}
	return 500
}

// TimeoutOrDefault is Timeout parsed, or its default.
func (m *Multiline) TimeoutOrDefault() time.Duration {
	if d, err := time.ParseDuration(m.Timeout); err == nil && d > 0 {
		return d
	}
	return time.Second
}

func (m *Multiline) validate() error {
	if m.Pattern == "" {
		return &FieldError{"multiline.pattern", "must not be empty"}
	}
	if _, err := regexp.Compile(m.Pattern); err != nil {
		return &FieldError{"multiline.pattern", "invalid regular expression: " + err.Error()}
	}
	switch m.Match {
	case "", MultilineContinuation, MultilineStart:
	default:
		return &FieldError{"multiline.match", fmt.Sprintf("%q is not one of continuation, start", m.Match)}
	}
	if m.MaxLines < 0 || m.MaxLines > 100000 {
		return &FieldError{"multiline.max_lines", "must be between 0 (default 500) and 100000"}
	}
	if m.Timeout != "" {
		d, err := time.ParseDuration(m.Timeout)
		if err != nil || d <= 0 || d > time.Minute {
			return &FieldError{"multiline.timeout", "must be a duration like 500ms or 2s, at most 1m"}
		}
	}
	return nil
}

var (
	// ErrSourceNotFound is returned for a source that does not exist.
	ErrSourceNotFound = errors.New("source not found")
	// ErrSourceExists is returned when creating a source whose name is taken.
	ErrSourceExists = errors.New("source already exists")
)

// FieldError is a validation error that names the offending field, so the
// API can answer 400 with a message a user can act on.
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

// Caps on one source: settings are read by every box on every change, so
// one entry may not be made arbitrarily large.
const (
	MaxSourceBytes     = 64 << 10 // the source as JSON, in etcd or a request body
	MaxSourcePaths     = 256
	MaxPathBytes       = 4096 // PATH_MAX
	MaxSourceFields    = 64
	MaxFieldValueBytes = 1 << 10
	MaxSourceHosts     = 256
	MaxHostBytes       = 253 // the longest DNS name
	MaxZoneBytes       = 64
)

var (
	nameRE  = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)
	topicRE = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,249}$`)
	fieldRE = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]{0,63}$`)
)

// Validate checks the source's own shape. allowPath, if not nil, is asked
// about every path glob (the allowed-roots policy); its error is reported
// against that path.
func (s *Source) Validate(allowPath func(glob string) error) error {
	if !nameRE.MatchString(s.Name) {
		return &FieldError{"name", "must be 1-63 characters of a-z, 0-9, '.', '_' or '-', starting with a letter or digit"}
	}
	if len(s.Paths) == 0 {
		return &FieldError{"paths", "must not be empty"}
	}
	// Counts first, so an oversized source costs nothing more to refuse.
	if len(s.Paths) > MaxSourcePaths {
		return &FieldError{"paths", fmt.Sprintf("%d globs; at most %d are allowed", len(s.Paths), MaxSourcePaths)}
	}
	if len(s.Fields) > MaxSourceFields {
		return &FieldError{"fields", fmt.Sprintf("%d fields; at most %d are allowed", len(s.Fields), MaxSourceFields)}
	}
	if len(s.Hosts) > MaxSourceHosts {
		return &FieldError{"hosts", fmt.Sprintf("%d hosts; at most %d are allowed", len(s.Hosts), MaxSourceHosts)}
	}
	for i, p := range s.Paths {
		f := fmt.Sprintf("paths[%d]", i)
		if len(p) > MaxPathBytes {
			return &FieldError{f, fmt.Sprintf("%d bytes; at most %d are allowed", len(p), MaxPathBytes)}
		}
		if !filepath.IsAbs(p) {
			return &FieldError{f, fmt.Sprintf("%q must be an absolute path", p)}
		}
		for _, el := range strings.Split(p, "/") {
			if el == ".." {
				return &FieldError{f, fmt.Sprintf("%q must not contain '..'", p)}
			}
			if strings.Contains(el, "**") && el != "**" {
				return &FieldError{f, fmt.Sprintf("%q: ** matches directories at any depth and must be a whole path element (like /var/log/**/*.log)", p)}
			}
		}
		if _, err := filepath.Match(p, ""); err != nil {
			return &FieldError{f, fmt.Sprintf("%q is not a valid glob: %v", p, err)}
		}
		if allowPath != nil {
			if err := allowPath(p); err != nil {
				return &FieldError{f, err.Error()}
			}
		}
	}
	if s.Topic != "" && !topicRE.MatchString(s.Topic) {
		return &FieldError{"topic", "must be 1-249 characters of a-z, A-Z, 0-9, '.', '_' or '-'"}
	}
	for _, k := range slices.Sorted(maps.Keys(s.Fields)) {
		if !fieldRE.MatchString(k) {
			return &FieldError{"fields." + k, "field names must be 1-64 characters of letters, digits and '_', not starting with a digit"}
		}
		if v := s.Fields[k]; len(v) > MaxFieldValueBytes {
			return &FieldError{"fields." + k, fmt.Sprintf("value is %d bytes; at most %d are allowed", len(v), MaxFieldValueBytes)}
		}
	}
	if s.MaxLineBytes < 0 || s.MaxLineBytes > 64<<20 {
		return &FieldError{"max_line_bytes", "must be between 0 (default 1 MiB) and 64 MiB"}
	}
	if s.Multiline != nil {
		if err := s.Multiline.validate(); err != nil {
			return err
		}
	}
	if err := s.Parser.validate(); err != nil {
		return err
	}
	if s.Timezone != "" {
		if _, err := time.LoadLocation(s.Timezone); err != nil || len(s.Timezone) > MaxZoneBytes {
			return &FieldError{"timezone", fmt.Sprintf("%q is not a time zone: use an IANA name like Asia/Shanghai or Europe/Berlin, or UTC or Local", s.Timezone)}
		}
	}
	for i, h := range s.Hosts {
		if strings.TrimSpace(h) == "" {
			return &FieldError{fmt.Sprintf("hosts[%d]", i), "must not be empty"}
		}
		if len(h) > MaxHostBytes {
			return &FieldError{fmt.Sprintf("hosts[%d]", i), fmt.Sprintf("%d bytes; at most %d are allowed", len(h), MaxHostBytes)}
		}
	}
	// The parts are capped; the whole is too (256 paths of 4 KiB fit the
	// counts but not one entry).
	if b, err := json.Marshal(s); err == nil && len(b) > MaxSourceBytes {
		return &FieldError{"body", fmt.Sprintf("the source is %d bytes as JSON; at most %d are allowed", len(b), MaxSourceBytes)}
	}
	return nil
}

// RunsOn reports whether the source collects on the named host.
func (s *Source) RunsOn(host string) bool {
	if len(s.Hosts) == 0 {
		return true
	}
	for _, h := range s.Hosts {
		if h == host {
			return true
		}
	}
	return false
}
