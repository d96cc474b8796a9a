// Package checkpoint keeps, per file identity, the byte offset up to which
// every line has been acknowledged downstream.
//
// The tailer calls Set only with offsets whose lines were acked, so what is
// on disk never runs ahead of delivery: after a crash, reading resumes at or
// before the first unacked line. Entries are written to one JSON file with
// write-to-temp, fsync and rename, so a crash leaves the old or the new
// file, never a torn one.
//
// Keys are "source/file-identity" (the tailer's). Entries are pruned, so
// the file does not grow forever:
//   - a file that is gone from disk and whose every line was acked
//     (Finish, then offset >= size): after GoneGrace, in case a copy of it
//     (a move across file systems) shows up and must not be read again;
//   - content that left its file with lines maybe unread (Retire: the file
//     was truncated, or vanished while logbox was down): after RetiredTTL
//     without a copy carrying it on;
//   - every entry of a source that no longer exists (KeepSources; a paused
//     source exists): once the source has been absent for SourceGrace, so
//     a source removed by mistake and added back, or renamed back, picks up
//     where it was. The absence is kept in the file, so restarts do not
//     extend it.
package checkpoint

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/logbox/logbox/appliance/atomicfile"
)

// Entry is the committed position of one file.
type Entry struct {
	Path   string `json:"path"`
	Offset int64  `json:"offset"`
	// Tail is a hash of the bytes just before Offset; a copy of the file
	// (copytruncate, a move across file systems) is recognised by it.
	Tail uint64 `json:"tail,omitempty"`
	// Retired entries belong to content that left its file (truncated,
	// rewritten or deleted); they are kept so that a copy of it can carry
	// on from Offset, and pruned after retiredTTL.
	Retired bool `json:"retired,omitempty"`
	// Gone entries belong to a file deleted from disk that was Size bytes
	// long; they are pruned once Offset reaches Size and GoneGrace passed.
	Gone bool  `json:"gone,omitempty"`
	Size int64 `json:"size,omitempty"`
	// Orphaned is when the entry's source was first seen absent.
	Orphaned time.Time `json:"orphaned,omitzero"`
	Updated  time.Time `json:"updated"`
}

// Pruning rules (see the package doc).
const (
	// RetiredTTL is how long a retired entry waits for a copy to show up.
	RetiredTTL = 7 * 24 * time.Hour
	// GoneGrace is how long the entry of a deleted, fully read file is kept.
	GoneGrace = 15 * time.Minute
	// SourceGrace is how long the entries of a source absent from the
	// settings are kept.
	SourceGrace = 24 * time.Hour
)

// Store holds entries in memory and persists them every Interval and on Flush.
type Store struct {
	path     string
	interval time.Duration
	log      *slog.Logger

	mu      sync.Mutex
	entries map[string]Entry
	dirty   bool
	now     func() time.Time // the clock (tests move it)
	added   chan struct{}    // a new entry waits to be written
}

// Open loads the store kept at path (a missing file is an empty store).
func Open(path string, interval time.Duration, log *slog.Logger) (*Store, error) {
	if interval <= 0 {
		interval = time.Second
	}
	s := &Store{path: path, interval: interval, log: log.With("component", "checkpoint"), entries: map[string]Entry{}, now: time.Now, added: make(chan struct{}, 1)}
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("read checkpoints %q: %w", path, err)
	default:
		if err := json.Unmarshal(b, &s.entries); err != nil {
			return nil, fmt.Errorf("parse checkpoints %q: %w", path, err)
		}
	}
	return s, nil
}

// Get returns the committed offset of fileID.
func (s *Store) Get(fileID string) (Entry, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.entries[fileID]
	return e, ok
}

// Offset returns the committed offset of fileID, if there is one.
func (s *Store) Offset(fileID string) (int64, bool) {
	e, ok := s.Get(fileID)
	return e.Offset, ok
}

// Set records that every line of key's file before offset is acked; tail
// is the hash of the bytes before offset. A retired entry stays retired.
func (s *Store) Set(key, path string, offset int64, tail uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, existed := s.entries[key]
	if !existed {
		select {
		case s.added <- struct{}{}:
		default:
		}
	}
	s.entries[key] = Entry{Path: path, Offset: offset, Tail: tail, Retired: old.Retired, Gone: old.Gone, Size: old.Size, Orphaned: old.Orphaned, Updated: s.now().UTC()}
	s.dirty = true
}

// Finish marks key's file as deleted from disk at size bytes (and so
// retired: a copy may still carry it on). The entry is pruned once its
// offset reaches size and GoneGrace passed.
func (s *Store) Finish(key string, size int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.entries[key]; ok {
		e.Retired, e.Gone, e.Size, e.Updated = true, true, size, s.now().UTC()
		s.entries[key] = e
		s.dirty = true
	}
}

// KeepSources names the sources that exist (paused ones included). An
// entry of any other source is marked orphaned the first time, and pruned
// once it has been orphaned for SourceGrace; a source that comes back
// clears the mark.
func (s *Store) KeepSources(names []string) {
	present := make(map[string]bool, len(names))
	for _, n := range names {
		present[n] = true
	}
	now := s.now().UTC()
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, e := range s.entries {
		src, _, _ := strings.Cut(k, "/")
		switch {
		case present[src] && !e.Orphaned.IsZero():
			e.Orphaned = time.Time{}
		case !present[src] && e.Orphaned.IsZero():
			e.Orphaned = now
		default:
			continue
		}
		s.entries[k] = e
		s.dirty = true
	}
}

// Retire marks key's content as gone from its file (see Entry.Retired).
func (s *Store) Retire(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.entries[key]; ok && !e.Retired {
		e.Retired, e.Updated = true, s.now().UTC()
		s.entries[key] = e
		s.dirty = true
	}
}

// Adopt makes a retired entry live again: a file carries on from it.
func (s *Store) Adopt(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.entries[key]; ok && (e.Retired || e.Gone) {
		e.Retired, e.Gone, e.Size = false, false, 0
		s.entries[key] = e
		s.dirty = true
	}
}

// Candidates calls fn for each entry whose key has the prefix and suffix,
// until fn returns true; it returns that entry's key.
func (s *Store) Candidates(prefix, suffix string, fn func(key, path string, offset int64, tail uint64, retired bool) bool) (string, bool) {
	s.mu.Lock()
	type cand struct {
		key string
		e   Entry
	}
	var cs []cand
	for k, e := range s.entries {
		if strings.HasPrefix(k, prefix) && strings.HasSuffix(k, suffix) {
			cs = append(cs, cand{k, e})
		}
	}
	s.mu.Unlock()
	for _, c := range cs {
		if fn(c.key, c.e.Path, c.e.Offset, c.e.Tail, c.e.Retired) {
			return c.key, true
		}
	}
	return "", false
}

// Delete drops the entry of key.
func (s *Store) Delete(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.entries[key]; ok {
		delete(s.entries, key)
		s.dirty = true
	}
}

// All returns a copy of every entry, keyed by file identity.
func (s *Store) All() map[string]Entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]Entry, len(s.entries))
	for k, v := range s.entries {
		out[k] = v
	}
	return out
}

// Run persists changes every interval until ctx is done, then flushes once
// more. Errors are retried at the next tick; the last one is returned if
// the final flush fails too.
//
// A new entry (a file seen for the first time) is written within
// NewEntryDelay rather than at the next interval: after a crash, a file is
// found by its identity only if its entry was on disk, and a file first
// seen just before the crash may be rotated away while logbox is down.
func (s *Store) Run(ctx context.Context) error {
	t := time.NewTicker(s.interval)
	defer t.Stop()
	var soon <-chan time.Time
	var took time.Duration // the last flush: new entries wait at least 4× that
	flush := func() {
		start := time.Now()
		defer func() { took = time.Since(start) }()
		if err := s.Flush(); err != nil {
			s.log.Warn("checkpoint write failed; after a crash more lines would be re-read (never lost); check the data dir", "path", s.path, "err", err)
		}
	}
	for {
		select {
		case <-ctx.Done():
			return s.Flush()
		case <-t.C:
			flush()
		case <-s.added:
			if soon == nil {
				soon = time.After(max(NewEntryDelay, 4*took))
			}
		case <-soon:
			soon = nil
			flush()
		}
	}
}

// NewEntryDelay bounds how long a new entry waits to be written (new
// entries arriving meanwhile are written together).
const NewEntryDelay = 20 * time.Millisecond

// prunable reports whether e may be dropped now (see the package doc).
func prunable(e Entry, now time.Time) bool {
	switch {
	case !e.Orphaned.IsZero() && now.Sub(e.Orphaned) > SourceGrace:
		return true
	case e.Gone && e.Offset >= e.Size && now.Sub(e.Updated) > GoneGrace:
		return true
	case e.Retired && now.Sub(e.Updated) > RetiredTTL:
		return true
	}
	return false
}

// Flush prunes what may go and writes the entries to disk if they changed.
func (s *Store) Flush() error {
	s.mu.Lock()
	now := s.now()
	for k, e := range s.entries {
		if prunable(e, now) {
			delete(s.entries, k)
			s.dirty = true
		}
	}
	if !s.dirty {
		s.mu.Unlock()
		return nil
	}
	b, err := json.Marshal(s.entries)
	s.dirty = false
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("encode checkpoints: %w", err)
	}
	if err := atomicfile.Write(s.path, b); err != nil {
		s.mu.Lock()
		s.dirty = true
		s.mu.Unlock()
		return err
	}
	return nil
}
