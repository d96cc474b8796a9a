package pipeline

import (
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
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
	for i, p := range s.Paths {
		f := fmt.Sprintf("paths[%d]", i)
		if !filepath.IsAbs(p) {
			return &FieldError{f, fmt.Sprintf("%q must be an absolute path", p)}
		}
		for _, el := range strings.Split(p, "/") {
			if el == ".." {
				return &FieldError{f, fmt.Sprintf("%q must not contain '..'", p)}
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
	for k := range s.Fields {
		if !fieldRE.MatchString(k) {
			return &FieldError{"fields." + k, "field names must be 1-64 characters of letters, digits and '_', not starting with a digit"}
		}
	}
	for i, h := range s.Hosts {
		if strings.TrimSpace(h) == "" {
			return &FieldError{fmt.Sprintf("hosts[%d]", i), "must not be empty"}
		}
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
