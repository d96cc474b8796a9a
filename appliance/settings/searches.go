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

// SearchStore reads and writes saved searches in etcd. It keeps no copy:
// every call reads etcd, so an entry written there by any client (etcdctl
// put) is what the next call sees, and nothing watches the prefix (nothing
// runs from a saved search yet). Get, Invalid and Put are its entries'
// (ErrSearchNotFound for a missing name).
type SearchStore struct {
	entries[pipeline.SavedSearch]
	now func() time.Time
}

// NewSearchStore returns a store over cli.
func NewSearchStore(cli *clientv3.Client) *SearchStore {
	s := &SearchStore{now: time.Now}
	s.entries = entries[pipeline.SavedSearch]{
		cli: cli, prefix: SearchesPrefix, kind: "saved search", kinds: "saved searches",
		maxBytes: pipeline.MaxSavedSearchBytes, notFound: pipeline.ErrSearchNotFound, exists: pipeline.ErrSearchExists,
		decode: s.Decode,
		check: func(ss *pipeline.SavedSearch) error {
			ss.Normalize()
			return ss.Validate(s.now())
		},
		fields: func(ss *pipeline.SavedSearch) (*string, *time.Time, *time.Time) {
			return &ss.Name, &ss.Created, &ss.Updated
		},
		clock: func() time.Time { return s.now() },
	}
	return s
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
	if err := decodeTimes(in.Created, in.Updated, &ss.Created, &ss.Updated); err != nil {
		return ss, err
	}
	return ss, s.finishDecode(&ss, len(b))
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

// List returns the valid saved searches sorted by name, and why each
// invalid entry under SearchesPrefix was refused, by the name in its key.
func (s *SearchStore) List(ctx context.Context) (pipeline.SavedSearchList, error) {
	valid, invalid, err := s.list(ctx)
	if err != nil {
		return pipeline.SavedSearchList{}, err
	}
	return pipeline.SavedSearchList{Searches: valid, Invalid: invalid}, nil
}

// Create stores a new saved search, created and updated now; it fails
// with ErrSearchExists if the name is taken. It returns what it stored.
func (s *SearchStore) Create(ctx context.Context, ss pipeline.SavedSearch) (pipeline.SavedSearch, error) {
	return s.create(ctx, ss)
}

// Delete removes a saved search, valid or not.
func (s *SearchStore) Delete(ctx context.Context, name string) error {
	return s.delete(ctx, name)
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
