// Package pathpolicy decides which files logbox may read: only files below
// the allowed roots (--allow-paths), checked when a source is written and
// again for every file opened, by the real path of the opened file
// (CheckReal: the tailer opens first and asks about what its descriptor
// resolves to, so a symlink swapped after a check cannot redirect a read).
package pathpolicy

import (
	"fmt"
	"path/filepath"
	"strings"
)

// DefaultRoots are the roots allowed when --allow-paths is not given.
// Globs passed with --collect add their own directory on top.
var DefaultRoots = []string{"/var/log"}

// Policy holds the allowed roots, absolute and with symlinks resolved.
type Policy struct {
	roots []string
}

// New builds a policy. Each root must be absolute; roots that exist are
// resolved through symlinks so later checks compare real paths.
func New(roots []string) (*Policy, error) {
	p := &Policy{}
	for _, r := range roots {
		if !filepath.IsAbs(r) {
			return nil, fmt.Errorf("allowed root %q must be an absolute path", r)
		}
		r = filepath.Clean(r)
		p.roots = append(p.roots, r)
		if real, err := filepath.EvalSymlinks(r); err == nil && real != r {
			p.roots = append(p.roots, real)
		}
	}
	return p, nil
}

// Roots returns the allowed roots.
func (p *Policy) Roots() []string { return append([]string(nil), p.roots...) }

func (p *Policy) under(path string) bool {
	for _, r := range p.roots {
		if path == r || strings.HasPrefix(path, r+string(filepath.Separator)) || r == "/" {
			return true
		}
	}
	return false
}

// CheckGlob refuses a glob whose fixed leading directory is not below an
// allowed root, or resolves (through symlinks) to a place that is not.
func (p *Policy) CheckGlob(glob string) error {
	if !filepath.IsAbs(glob) {
		return fmt.Errorf("%q must be an absolute path", glob)
	}
	if strings.Contains(glob, "%2f") || strings.Contains(glob, "%2F") || strings.Contains(glob, "\\") {
		return fmt.Errorf("%q contains an encoded or escaped separator", glob)
	}
	clean := filepath.Clean(glob)
	if clean != strings.TrimSuffix(glob, "/") {
		return fmt.Errorf("%q is not a clean path (use %q)", glob, clean)
	}
	for _, el := range strings.Split(clean, "/") {
		// As the tailer expands it: ** is any depth below StaticDir,
		// which is where the roots are checked.
		if strings.Contains(el, "**") && el != "**" {
			return fmt.Errorf("%q: ** must be a whole path element (like /var/log/**/*.log)", glob)
		}
	}
	dir := StaticDir(clean)
	if !p.under(dir) && !p.under(clean) {
		return fmt.Errorf("%q is outside the allowed roots %v (see --allow-paths)", glob, p.roots)
	}
	if real, err := filepath.EvalSymlinks(dir); err == nil && !p.under(real) {
		return fmt.Errorf("%q leads through a symlink to %q, outside the allowed roots %v", glob, real, p.roots)
	}
	return nil
}

// CheckReal refuses a file whose real path — as the open descriptor
// resolves it (/proc/self/fd), symlinks already followed — is not below an
// allowed root. It does not touch the file system, so what it judges is
// the file that was opened.
func (p *Policy) CheckReal(real string) error {
	clean := filepath.Clean(strings.TrimSuffix(real, " (deleted)"))
	if !filepath.IsAbs(clean) {
		return fmt.Errorf("%q is not an absolute path", real)
	}
	if !p.under(clean) {
		return fmt.Errorf("%q is outside the allowed roots %v (see --allow-paths)", clean, p.roots)
	}
	return nil
}

// CheckFile refuses a file whose real path (symlinks resolved by name) is
// not below an allowed root. Resolving by name races with a symlink swap;
// to judge a file that is open, use CheckReal on its descriptor's path.
func (p *Policy) CheckFile(path string) error {
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return fmt.Errorf("resolve %q: %w", path, err)
	}
	if !p.under(real) {
		return fmt.Errorf("%q resolves to %q, outside the allowed roots %v", path, real, p.roots)
	}
	return nil
}

// StaticDir is the longest leading directory of glob that has no glob
// characters in it (for /var/log/**/*.log, /var/log: ** spans directories
// below it only).
func StaticDir(glob string) string {
	i := strings.IndexAny(glob, "*?[")
	if i < 0 {
		return filepath.Dir(glob)
	}
	return filepath.Dir(glob[:i+1])
}
