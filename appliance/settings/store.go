package settings

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/logbox/logbox/appliance/pipeline"
)

// SourcesPrefix is where sources are kept, one key each.
const SourcesPrefix = "/logbox/sources/"

// Errors of the store are pipeline's, so the API can tell them apart
// without importing this package.
var (
	ErrNotFound = pipeline.ErrSourceNotFound
	ErrExists   = pipeline.ErrSourceExists
)

// Store reads and writes sources in etcd.
type Store struct {
	cli       *clientv3.Client
	allowPath func(glob string) error
	log       *slog.Logger
}

// NewStore returns a store over cli. allowPath is the allowed-roots policy
// every path glob must pass.
func NewStore(cli *clientv3.Client, allowPath func(string) error, log *slog.Logger) *Store {
	return &Store{cli: cli, allowPath: allowPath, log: log.With("component", "settings")}
}

// Decode parses and validates a source as the API and etcd hold it: one
// JSON object of at most pipeline.MaxSourceBytes, each key once, no
// unknown fields (a typo is an error, not silently ignored), nothing after
// it.
func (s *Store) Decode(b []byte) (pipeline.Source, error) {
	return s.decode(b, true)
}

// decode parses b; checkPaths applies the allowed-roots policy too, which
// only the host that collects a source can judge.
func (s *Store) decode(b []byte, checkPaths bool) (pipeline.Source, error) {
	var src pipeline.Source
	if err := checkJSON(b); err != nil {
		return src, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&src); err != nil {
		return src, &pipeline.FieldError{Field: "body", Msg: "invalid source JSON: " + err.Error()}
	}
	var err error
	if checkPaths {
		err = s.Validate(&src)
	} else {
		err = src.Validate(nil)
	}
	// After Validate, which names the field that is too big; this catches
	// the rest (whitespace, say).
	if err == nil && len(b) > pipeline.MaxSourceBytes {
		err = &pipeline.FieldError{Field: "body", Msg: fmt.Sprintf("the source is %d bytes; at most %d are allowed", len(b), pipeline.MaxSourceBytes)}
	}
	return src, err
}

// Validate checks src against its shape and the allowed roots.
func (s *Store) Validate(src *pipeline.Source) error {
	return src.Validate(s.allowPath)
}

// List returns every valid source, sorted by name.
func (s *Store) List(ctx context.Context) ([]pipeline.Source, error) {
	st, _, err := s.load(ctx)
	if err != nil {
		return nil, err
	}
	return st.Sources, nil
}

// Get returns one source.
func (s *Store) Get(ctx context.Context, name string) (pipeline.Source, error) {
	resp, err := s.cli.Get(ctx, SourcesPrefix+name)
	if err != nil {
		return pipeline.Source{}, fmt.Errorf("get source %q: %w", name, err)
	}
	if len(resp.Kvs) == 0 {
		return pipeline.Source{}, ErrNotFound
	}
	return s.Decode(resp.Kvs[0].Value)
}

// Create stores a new source; it fails with ErrExists if the name is taken.
func (s *Store) Create(ctx context.Context, src pipeline.Source) error {
	return s.write(ctx, src, ErrExists, clientv3.Compare(clientv3.CreateRevision(SourcesPrefix+src.Name), "=", 0))
}

// Put creates or replaces a source.
func (s *Store) Put(ctx context.Context, src pipeline.Source) error {
	return s.write(ctx, src, nil)
}

// Update replaces an existing source; it fails with ErrNotFound if absent.
func (s *Store) Update(ctx context.Context, src pipeline.Source) error {
	return s.write(ctx, src, ErrNotFound, clientv3.Compare(clientv3.CreateRevision(SourcesPrefix+src.Name), ">", 0))
}

func (s *Store) write(ctx context.Context, src pipeline.Source, failed error, conds ...clientv3.Cmp) error {
	if err := s.Validate(&src); err != nil {
		return err
	}
	b, err := json.Marshal(src)
	if err != nil {
		return fmt.Errorf("encode source %q: %w", src.Name, err)
	}
	key := SourcesPrefix + src.Name
	if len(conds) == 0 {
		if _, err := s.cli.Put(ctx, key, string(b)); err != nil {
			return fmt.Errorf("put source %q: %w", src.Name, err)
		}
		return nil
	}
	resp, err := s.cli.Txn(ctx).If(conds...).Then(clientv3.OpPut(key, string(b))).Commit()
	if err != nil {
		return fmt.Errorf("write source %q: %w", src.Name, err)
	}
	if !resp.Succeeded {
		return failed
	}
	return nil
}

// Delete removes a source.
func (s *Store) Delete(ctx context.Context, name string) error {
	resp, err := s.cli.Delete(ctx, SourcesPrefix+name)
	if err != nil {
		return fmt.Errorf("delete source %q: %w", name, err)
	}
	if resp.Deleted == 0 {
		return ErrNotFound
	}
	return nil
}

// State is the set of sources in effect and the entries that were refused.
type State struct {
	Sources []pipeline.Source
	// Invalid maps a key's source name to why its entry was refused. A
	// refused entry changes nothing: the name's last valid version, if any,
	// stays in Sources.
	Invalid map[string]string
}

func (s *Store) load(ctx context.Context) (State, int64, error) {
	resp, err := s.cli.Get(ctx, SourcesPrefix, clientv3.WithPrefix())
	if err != nil {
		return State{}, 0, fmt.Errorf("list sources: %w", err)
	}
	set := newSourceSet(s, "")
	set.reload(resp)
	return set.state(), resp.Header.Revision, nil
}

// sourceSet is a watch's view of the entries under SourcesPrefix. An entry
// is decoded and validated once, when it changes, and the names in effect
// are kept sorted, so a change costs a decode of what changed (before, every
// change decoded and validated every source: 1 000 → 2 000 sources one
// write at a time took 33 s of CPU) plus one copy of the list for the
// caller, and State lists the sources in the same order every time.
type sourceSet struct {
	s    *Store
	host string
	// valid is the source in effect per name: its entry's, or while the
	// entry is invalid the last valid version (if any); names are its keys,
	// sorted.
	valid   map[string]pipeline.Source
	names   []string
	invalid map[string]string
}

func newSourceSet(s *Store, host string) *sourceSet {
	return &sourceSet{s: s, host: host, valid: map[string]pipeline.Source{}, invalid: map[string]string{}}
}

// check decodes one entry as a watch on host judges it. Paths are checked
// against the allowed roots only for sources that run on host (none when
// host is empty): another box judges its own paths.
func (set *sourceSet) check(name string, b []byte) (pipeline.Source, error) {
	src, err := set.s.decode(b, false)
	if err == nil && set.host != "" && src.RunsOn(set.host) {
		err = set.s.Validate(&src)
	}
	if err == nil && src.Name != name {
		err = &pipeline.FieldError{Field: "name", Msg: fmt.Sprintf("%q does not match its key %q", src.Name, SourcesPrefix+name)}
	}
	return src, err
}

// put applies a written entry. A refused entry changes nothing but its
// report: the name's last valid version, if any, stays in effect.
func (set *sourceSet) put(name string, b []byte) {
	src, err := set.check(name, b)
	if err != nil {
		set.invalid[name] = err.Error()
		return
	}
	delete(set.invalid, name)
	if _, ok := set.valid[name]; !ok {
		i, _ := slices.BinarySearch(set.names, name)
		set.names = slices.Insert(set.names, i, name)
	}
	set.valid[name] = src
}

// remove applies a deleted entry.
func (set *sourceSet) remove(name string) {
	delete(set.invalid, name)
	if _, ok := set.valid[name]; ok {
		delete(set.valid, name)
		if i, found := slices.BinarySearch(set.names, name); found {
			set.names = slices.Delete(set.names, i, i+1)
		}
	}
}

// reload applies a full listing (a watch's start, or its restart after it
// was lost): every entry is checked again, and names no longer listed go.
func (set *sourceSet) reload(resp *clientv3.GetResponse) {
	listed := make(map[string]bool, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		name := strings.TrimPrefix(string(kv.Key), SourcesPrefix)
		listed[name] = true
		set.put(name, kv.Value)
	}
	for name := range set.valid {
		if !listed[name] {
			set.remove(name)
		}
	}
	maps.DeleteFunc(set.invalid, func(name, _ string) bool { return !listed[name] })
}

// state is a copy of the set for a caller to keep.
func (set *sourceSet) state() State {
	st := State{Sources: make([]pipeline.Source, len(set.names)), Invalid: maps.Clone(set.invalid)}
	for i, name := range set.names {
		st.Sources[i] = set.valid[name]
	}
	return st
}

// Watch calls fn with the full state now and after every change under
// SourcesPrefix, until ctx is done. Paths are checked against the allowed
// roots for the sources that run on host. fn runs on Watch's goroutine. Lost
// watches (etcd restarted, history compacted) are re-established with a
// fresh read, with backoff. A change decodes only the entries it touched.
func (s *Store) Watch(ctx context.Context, host string, fn func(State)) error {
	backoff := 100 * time.Millisecond
	set := newSourceSet(s, host)
	for ctx.Err() == nil {
		err := s.watchOnce(ctx, set, fn)
		if ctx.Err() != nil {
			break
		}
		s.log.Warn("settings watch interrupted; source changes apply once etcd is reachable again", "err", err)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
		}
		backoff = min(backoff*2, 10*time.Second)
	}
	return nil
}

func (s *Store) watchOnce(ctx context.Context, set *sourceSet, fn func(State)) error {
	resp, err := s.cli.Get(ctx, SourcesPrefix, clientv3.WithPrefix())
	if err != nil {
		return fmt.Errorf("list sources: %w", err)
	}
	set.reload(resp)
	fn(set.state())
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	wch := s.cli.Watch(wctx, SourcesPrefix, clientv3.WithPrefix(), clientv3.WithRev(resp.Header.Revision+1))
	for wr := range wch {
		if err := wr.Err(); err != nil {
			return fmt.Errorf("watch sources: %w", err)
		}
		for _, ev := range wr.Events {
			name := strings.TrimPrefix(string(ev.Kv.Key), SourcesPrefix)
			if ev.Type == clientv3.EventTypeDelete {
				set.remove(name)
			} else {
				set.put(name, ev.Kv.Value)
			}
		}
		fn(set.state())
	}
	return errors.New("watch channel closed")
}
