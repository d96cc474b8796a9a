package settings

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/logbox/logbox/appliance/pipeline"
)

// maxWriteAttempts bounds the read-compare-write loops below when other
// clients keep changing the same key.
const maxWriteAttempts = 16

// entries is what SearchStore and AlertStore share (each embeds one, so
// Get, Invalid and Put are theirs): one kind of JSON entry kept in etcd,
// one key per name under prefix, validated on every read and write. It
// keeps no copy; every call reads etcd. Errors name the kind ("get saved
// search %q: …").
type entries[T any] struct {
	cli    *clientv3.Client
	prefix string
	kind   string // one entry in errors: "saved search"
	kinds  string // several: "saved searches"
	// maxBytes bounds an entry's JSON, as read and as written.
	maxBytes int
	// notFound and exists are what get, delete and create answer for a
	// missing name and a taken one.
	notFound, exists error
	// decode parses and validates an entry (the store's Decode).
	decode func(b []byte) (T, error)
	// check normalizes and validates an entry before it is stored.
	check func(v *T) error
	// fields points at an entry's name and server times.
	fields func(v *T) (name *string, created, updated *time.Time)
	// clock is the store's clock.
	clock func() time.Time
}

// decodeTimes reads the created and updated keys of an entry, each an
// RFC 3339 time in a JSON string, absent or null (which leaves the time
// zero), into c and u.
func decodeTimes(created, updated json.RawMessage, c, u *time.Time) error {
	for _, t := range []struct {
		name string
		raw  json.RawMessage
		dst  *time.Time
	}{{"created", created, c}, {"updated", updated, u}} {
		if isNull(t.raw) {
			continue
		}
		var v string
		if json.Unmarshal(t.raw, &v) != nil {
			return &pipeline.FieldError{Field: t.name, Msg: "must be an RFC 3339 time in a JSON string"}
		}
		tm, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return &pipeline.FieldError{Field: t.name, Msg: fmt.Sprintf("%q is not an RFC 3339 time", v)}
		}
		*t.dst = tm
	}
	return nil
}

// isNull says whether a key's raw value is absent or null (which leaves
// the field at its zero value, as encoding/json does).
func isNull(raw json.RawMessage) bool {
	return len(raw) == 0 || string(raw) == "null"
}

// finishDecode is the end of a store's Decode: v, read from size bytes of
// JSON, is normalized and validated (check), and refused if size is over
// maxBytes.
func (e *entries[T]) finishDecode(v *T, size int) error {
	if err := e.check(v); err != nil {
		return err
	}
	if size > e.maxBytes {
		return &pipeline.FieldError{Field: "body", Msg: fmt.Sprintf("the %s is %d bytes; at most %d are allowed", e.kind, size, e.maxBytes)}
	}
	return nil
}

// decodeEntry decodes an entry stored at key and checks that its name is
// its key's.
func (e *entries[T]) decodeEntry(key string, b []byte) (T, error) {
	v, err := e.decode(b)
	if name, _, _ := e.fields(&v); err == nil && e.prefix+*name != key {
		err = &pipeline.FieldError{Field: "name", Msg: fmt.Sprintf("%q does not match its key %q", *name, key)}
	}
	return v, err
}

// list returns the valid entries sorted by name (never nil), and why each
// invalid entry under prefix was refused, by the name in its key.
func (e *entries[T]) list(ctx context.Context) ([]T, map[string]string, error) {
	resp, err := e.cli.Get(ctx, e.prefix, clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend))
	if err != nil {
		return nil, nil, fmt.Errorf("list %s: %w", e.kinds, err)
	}
	valid, invalid := []T{}, map[string]string{}
	for _, kv := range resp.Kvs {
		v, err := e.decodeEntry(string(kv.Key), kv.Value)
		if err != nil {
			invalid[strings.TrimPrefix(string(kv.Key), e.prefix)] = err.Error()
			continue
		}
		valid = append(valid, v)
	}
	return valid, invalid, nil
}

// Invalid reports the refused entries, by the name in their key (see
// list).
func (e *entries[T]) Invalid(ctx context.Context) (map[string]string, error) {
	_, invalid, err := e.list(ctx)
	return invalid, err
}

// Get returns one entry: the store's not-found error (ErrSearchNotFound,
// ErrAlertNotFound) if there is none, an *InvalidEntryError if its entry
// does not pass validation.
func (e *entries[T]) Get(ctx context.Context, name string) (T, error) {
	v, _, err := e.get(ctx, name)
	return v, err
}

// get returns the entry name and its mod revision: notFound if there is
// none, an *InvalidEntryError if it does not pass validation.
func (e *entries[T]) get(ctx context.Context, name string) (T, int64, error) {
	var zero T
	key := e.prefix + name
	resp, err := e.cli.Get(ctx, key)
	if err != nil {
		return zero, 0, fmt.Errorf("get %s %q: %w", e.kind, name, err)
	}
	if len(resp.Kvs) == 0 {
		return zero, 0, e.notFound
	}
	kv := resp.Kvs[0]
	v, err := e.decodeEntry(key, kv.Value)
	if err != nil {
		return v, kv.ModRevision, &pipeline.InvalidEntryError{Key: key, Err: err}
	}
	return v, kv.ModRevision, nil
}

// encode validates v and returns the entry to store.
func (e *entries[T]) encode(v *T) (string, error) {
	if err := e.check(v); err != nil {
		return "", err
	}
	b, err := json.Marshal(v)
	if err != nil {
		name, _, _ := e.fields(v)
		return "", fmt.Errorf("encode %s %q: %w", e.kind, *name, err)
	}
	if len(b) > e.maxBytes {
		return "", &pipeline.FieldError{Field: "body", Msg: fmt.Sprintf("the %s is %d bytes as JSON; at most %d are allowed", e.kind, len(b), e.maxBytes)}
	}
	return string(b), nil
}

// create stores a new entry, created and updated now, with the operations
// also in the same transaction; it fails with exists if the name is taken.
// It returns what it stored.
func (e *entries[T]) create(ctx context.Context, v T, also ...clientv3.Op) (T, error) {
	name, created, updated := e.fields(&v)
	now := e.clock().UTC()
	*created, *updated = now, now
	s, err := e.encode(&v)
	if err != nil {
		return v, err
	}
	key := e.prefix + *name
	resp, err := e.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(append([]clientv3.Op{clientv3.OpPut(key, s)}, also...)...).
		Commit()
	if err != nil {
		return v, fmt.Errorf("create %s %q: %w", e.kind, *name, err)
	}
	if !resp.Succeeded {
		return v, e.exists
	}
	return v, nil
}

// Put creates or replaces an entry. Updated is now; Created is kept from
// the entry it replaces (now if there was none or it was invalid, and
// whatever a valid entry written to etcd directly had, even none). It
// returns what it stored and whether it created the entry. It writes the
// entry's key only (an alert rule's state is left as it is: the evaluator
// sees the change).
func (e *entries[T]) Put(ctx context.Context, v T) (T, bool, error) {
	name, created, updated := e.fields(&v)
	key := e.prefix + *name
	for range maxWriteAttempts {
		old, rev, err := e.get(ctx, *name)
		now := e.clock().UTC()
		var ie *pipeline.InvalidEntryError
		switch {
		case err == nil:
			_, oldCreated, _ := e.fields(&old)
			*created = *oldCreated
		case errors.Is(err, e.notFound), errors.As(err, &ie):
			// A new entry, or one that replaces an unreadable one.
			*created = now
		default:
			return v, false, err
		}
		*updated = now
		s, err := e.encode(&v)
		if err != nil {
			return v, false, err
		}
		// rev is 0 when the key is absent: then it must still be.
		resp, err := e.cli.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", rev)).Then(clientv3.OpPut(key, s)).Commit()
		if err != nil {
			return v, false, fmt.Errorf("put %s %q: %w", e.kind, *name, err)
		}
		if resp.Succeeded {
			return v, rev == 0, nil
		}
	}
	return v, false, fmt.Errorf("put %s %q: the entry changed under %d attempts in a row; try again", e.kind, *name, maxWriteAttempts)
}

// delete removes the entry name, valid or not, with the operations also,
// in one transaction; it fails with notFound (and removes nothing) if
// there is no entry of that name.
func (e *entries[T]) delete(ctx context.Context, name string, also ...clientv3.Op) error {
	key := e.prefix + name
	resp, err := e.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), ">", 0)).
		Then(append([]clientv3.Op{clientv3.OpDelete(key)}, also...)...).
		Commit()
	if err != nil {
		return fmt.Errorf("delete %s %q: %w", e.kind, name, err)
	}
	if !resp.Succeeded {
		return e.notFound
	}
	return nil
}
