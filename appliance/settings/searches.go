package settings

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/logbox/logbox/appliance/pipeline"
)

// SearchesPrefix is where saved searches are kept, one key each.
const SearchesPrefix = "/logbox/searches/"

// savedSearchKeys are the keys a saved search's JSON may have, exactly as
// written: a key in another case is refused as unknown, not matched the
// way encoding/json matches struct fields.
var savedSearchKeys = []string{"name", "query", "from", "to", "view", "chart", "columns", "description", "created", "updated"}

// maxWriteAttempts bounds the read-compare-write loops below when other
// clients keep changing the same key.
const maxWriteAttempts = 16

// SearchStore reads and writes saved searches in etcd. It keeps no copy:
// every call reads etcd, so an entry written there by any client (etcdctl
// put) is what the next call sees, and nothing watches the prefix (nothing
// runs from a saved search yet).
type SearchStore struct {
	cli *clientv3.Client
	now func() time.Time
}

// NewSearchStore returns a store over cli.
func NewSearchStore(cli *clientv3.Client) *SearchStore {
	return &SearchStore{cli: cli, now: time.Now}
}

// Decode parses and validates a saved search as the API and etcd hold it:
// one JSON object of at most pipeline.MaxSavedSearchBytes, each key once
// and one of savedSearchKeys, nothing after it. An empty view is filled in
// as discover.
func (s *SearchStore) Decode(b []byte) (pipeline.SavedSearch, error) {
	var ss pipeline.SavedSearch
	if err := checkJSONObject(b, "saved search", ""); err != nil {
		return ss, err
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(b, &keys); err != nil {
		return ss, &pipeline.FieldError{Field: "body", Msg: "invalid saved search JSON: " + err.Error()}
	}
	for _, k := range slices.Sorted(maps.Keys(keys)) {
		if !slices.Contains(savedSearchKeys, k) {
			return ss, &pipeline.FieldError{Field: k, Msg: "unknown key; a saved search has " + strings.Join(savedSearchKeys, ", ")}
		}
	}
	// The times are read here, not by encoding/json, so a bad one is
	// named like any other field.
	var in struct {
		pipeline.SavedSearch
		Created json.RawMessage `json:"created"`
		Updated json.RawMessage `json:"updated"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			// The struct embeds SavedSearch, whose name starts the path.
			return ss, &pipeline.FieldError{Field: strings.TrimPrefix(te.Field, "SavedSearch."), Msg: fmt.Sprintf("a JSON %s where %s is wanted", te.Value, jsonKind(te.Type.Kind().String()))}
		}
		return ss, &pipeline.FieldError{Field: "body", Msg: "invalid saved search JSON: " + err.Error()}
	}
	ss = in.SavedSearch
	for _, t := range []struct {
		name string
		raw  json.RawMessage
		dst  *time.Time
	}{{"created", in.Created, &ss.Created}, {"updated", in.Updated, &ss.Updated}} {
		if len(t.raw) == 0 || string(t.raw) == "null" {
			continue
		}
		var v string
		if json.Unmarshal(t.raw, &v) != nil {
			return ss, &pipeline.FieldError{Field: t.name, Msg: "must be an RFC 3339 time in a JSON string"}
		}
		tm, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return ss, &pipeline.FieldError{Field: t.name, Msg: fmt.Sprintf("%q is not an RFC 3339 time", v)}
		}
		*t.dst = tm
	}
	ss.Normalize()
	if err := ss.Validate(s.now()); err != nil {
		return ss, err
	}
	if len(b) > pipeline.MaxSavedSearchBytes {
		return ss, &pipeline.FieldError{Field: "body", Msg: fmt.Sprintf("the saved search is %d bytes; at most %d are allowed", len(b), pipeline.MaxSavedSearchBytes)}
	}
	return ss, nil
}

// jsonKind names a Go kind as JSON calls it.
func jsonKind(k string) string {
	switch k {
	case "string":
		return "a string"
	case "slice", "array":
		return "an array"
	case "struct", "map":
		return "an object"
	case "bool":
		return "true or false"
	default:
		return "a number"
	}
}

// decodeEntry decodes a stored entry and checks that its name is its key's.
func (s *SearchStore) decodeEntry(key string, b []byte) (pipeline.SavedSearch, error) {
	ss, err := s.Decode(b)
	if err == nil && SearchesPrefix+ss.Name != key {
		err = &pipeline.FieldError{Field: "name", Msg: fmt.Sprintf("%q does not match its key %q", ss.Name, key)}
	}
	return ss, err
}

// List returns the valid saved searches sorted by name, and why each
// invalid entry under SearchesPrefix was refused, by the name in its key.
func (s *SearchStore) List(ctx context.Context) (pipeline.SavedSearchList, error) {
	resp, err := s.cli.Get(ctx, SearchesPrefix, clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend))
	if err != nil {
		return pipeline.SavedSearchList{}, fmt.Errorf("list saved searches: %w", err)
	}
	out := pipeline.SavedSearchList{Searches: []pipeline.SavedSearch{}, Invalid: map[string]string{}}
	for _, kv := range resp.Kvs {
		ss, err := s.decodeEntry(string(kv.Key), kv.Value)
		if err != nil {
			out.Invalid[strings.TrimPrefix(string(kv.Key), SearchesPrefix)] = err.Error()
			continue
		}
		out.Searches = append(out.Searches, ss)
	}
	return out, nil
}

// Invalid reports the refused entries, by name (see List).
func (s *SearchStore) Invalid(ctx context.Context) (map[string]string, error) {
	l, err := s.List(ctx)
	return l.Invalid, err
}

// Get returns one saved search: ErrSearchNotFound if there is none, an
// *InvalidEntryError if its entry does not pass validation.
func (s *SearchStore) Get(ctx context.Context, name string) (pipeline.SavedSearch, error) {
	ss, _, err := s.get(ctx, name)
	return ss, err
}

// get returns the entry and its mod revision.
func (s *SearchStore) get(ctx context.Context, name string) (pipeline.SavedSearch, int64, error) {
	key := SearchesPrefix + name
	resp, err := s.cli.Get(ctx, key)
	if err != nil {
		return pipeline.SavedSearch{}, 0, fmt.Errorf("get saved search %q: %w", name, err)
	}
	if len(resp.Kvs) == 0 {
		return pipeline.SavedSearch{}, 0, pipeline.ErrSearchNotFound
	}
	kv := resp.Kvs[0]
	ss, err := s.decodeEntry(key, kv.Value)
	if err != nil {
		return ss, kv.ModRevision, &pipeline.InvalidEntryError{Key: key, Err: err}
	}
	return ss, kv.ModRevision, nil
}

// encode validates ss and returns the entry to store.
func (s *SearchStore) encode(ss *pipeline.SavedSearch) (string, error) {
	ss.Normalize()
	if err := ss.Validate(s.now()); err != nil {
		return "", err
	}
	b, err := json.Marshal(ss)
	if err != nil {
		return "", fmt.Errorf("encode saved search %q: %w", ss.Name, err)
	}
	if len(b) > pipeline.MaxSavedSearchBytes {
		return "", &pipeline.FieldError{Field: "body", Msg: fmt.Sprintf("the saved search is %d bytes as JSON; at most %d are allowed", len(b), pipeline.MaxSavedSearchBytes)}
	}
	return string(b), nil
}

// Create stores a new saved search, created and updated now; it fails
// with ErrSearchExists if the name is taken. It returns what it stored.
func (s *SearchStore) Create(ctx context.Context, ss pipeline.SavedSearch) (pipeline.SavedSearch, error) {
	now := s.now().UTC()
	ss.Created, ss.Updated = now, now
	v, err := s.encode(&ss)
	if err != nil {
		return ss, err
	}
	key := SearchesPrefix + ss.Name
	resp, err := s.cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).Then(clientv3.OpPut(key, v)).Commit()
	if err != nil {
		return ss, fmt.Errorf("create saved search %q: %w", ss.Name, err)
	}
	if !resp.Succeeded {
		return ss, pipeline.ErrSearchExists
	}
	return ss, nil
}

// Put creates or replaces a saved search. Updated is now; Created is
// kept from the entry it replaces (now if there was none, and whatever a
// valid entry had, even none, if it was written to etcd directly). It
// returns what it stored and whether it created the entry.
func (s *SearchStore) Put(ctx context.Context, ss pipeline.SavedSearch) (pipeline.SavedSearch, bool, error) {
	key := SearchesPrefix + ss.Name
	for range maxWriteAttempts {
		old, rev, err := s.get(ctx, ss.Name)
		now := s.now().UTC()
		var ie *pipeline.InvalidEntryError
		switch {
		case err == nil:
			ss.Created = old.Created
		case errors.Is(err, pipeline.ErrSearchNotFound), errors.As(err, &ie):
			// A new entry, or one that replaces an unreadable one.
			ss.Created = now
		default:
			return ss, false, err
		}
		ss.Updated = now
		v, err := s.encode(&ss)
		if err != nil {
			return ss, false, err
		}
		// rev is 0 when the key is absent: then it must still be.
		resp, err := s.cli.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", rev)).Then(clientv3.OpPut(key, v)).Commit()
		if err != nil {
			return ss, false, fmt.Errorf("put saved search %q: %w", ss.Name, err)
		}
		if resp.Succeeded {
			return ss, rev == 0, nil
		}
	}
	return ss, false, fmt.Errorf("put saved search %q: the entry changed under %d attempts in a row; try again", ss.Name, maxWriteAttempts)
}

// Delete removes a saved search, valid or not.
func (s *SearchStore) Delete(ctx context.Context, name string) error {
	resp, err := s.cli.Delete(ctx, SearchesPrefix+name)
	if err != nil {
		return fmt.Errorf("delete saved search %q: %w", name, err)
	}
	if resp.Deleted == 0 {
		return pipeline.ErrSearchNotFound
	}
	return nil
}

// Rename moves the saved search old to the name to in one etcd
// transaction: to is created and old deleted together, or nothing
// changes. It fails with ErrSearchNotFound if old is absent,
// ErrSearchExists if to is taken, and an *InvalidEntryError if old's entry
// is invalid. Created is kept; Updated is now. Renaming to the same name
// changes nothing.
func (s *SearchStore) Rename(ctx context.Context, old, to string) (pipeline.SavedSearch, error) {
	if err := pipeline.CheckName(to); err != nil {
		return pipeline.SavedSearch{}, err
	}
	oldKey, newKey := SearchesPrefix+old, SearchesPrefix+to
	for range maxWriteAttempts {
		ss, rev, err := s.get(ctx, old)
		if err != nil || old == to {
			return ss, err
		}
		ss.Name, ss.Updated = to, s.now().UTC()
		v, err := s.encode(&ss)
		if err != nil {
			return ss, err
		}
		resp, err := s.cli.Txn(ctx).
			If(clientv3.Compare(clientv3.ModRevision(oldKey), "=", rev), clientv3.Compare(clientv3.CreateRevision(newKey), "=", 0)).
			Then(clientv3.OpPut(newKey, v), clientv3.OpDelete(oldKey)).
			Else(clientv3.OpGet(newKey, clientv3.WithCountOnly())).
			Commit()
		if err != nil {
			return ss, fmt.Errorf("rename saved search %q to %q: %w", old, to, err)
		}
		if resp.Succeeded {
			return ss, nil
		}
		if resp.Responses[0].GetResponseRange().Count > 0 {
			return ss, pipeline.ErrSearchExists
		}
		// old changed (or went) since it was read: read it again.
	}
	return pipeline.SavedSearch{}, fmt.Errorf("rename saved search %q: the entry changed under %d attempts in a row; try again", old, maxWriteAttempts)
}
