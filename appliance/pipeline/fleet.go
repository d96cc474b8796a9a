package pipeline

import (
	"cmp"
	"context"
	"slices"
)

// OffsetRange is the Kafka offsets [From, To) of one partition; JSON as
// [from, to].
type OffsetRange [2]int64

// Coverage is what an indexer holds of each Kafka partition it has read
// (key: PartName): sorted, disjoint, non-adjacent offset ranges.
type Coverage map[string][]OffsetRange

// Add records [from, to) of part as held, merging it with what touches it.
func (c Coverage) Add(part string, from, to int64) {
	if to <= from {
		return
	}
	rs := append(c[part], OffsetRange{from, to})
	slices.SortFunc(rs, func(a, b OffsetRange) int { return cmp.Compare(a[0], b[0]) })
	out := rs[:1]
	for _, r := range rs[1:] {
		last := &out[len(out)-1]
		if r[0] <= last[1] {
			last[1] = max(last[1], r[1])
			continue
		}
		out = append(out, r)
	}
	c[part] = out
}

// Missing returns the parts of [from, to) of part that c does not hold.
func (c Coverage) Missing(part string, from, to int64) []OffsetRange {
	var out []OffsetRange
	at := from
	for _, r := range c[part] {
		if r[1] <= at {
			continue
		}
		if r[0] >= to {
			break
		}
		if r[0] > at {
			out = append(out, OffsetRange{at, r[0]})
		}
		at = r[1]
		if at >= to {
			break
		}
	}
	if at < to {
		out = append(out, OffsetRange{at, to})
	}
	return out
}

// Clone returns a deep copy of c.
func (c Coverage) Clone() Coverage {
	out := make(Coverage, len(c))
	for k, v := range c {
		out[k] = slices.Clone(v)
	}
	return out
}

// MissingRange is a part of a Kafka partition that no live indexer asked
// for an answer holds: the answer lacks its lines.
type MissingRange struct {
	Partition string `json:"partition"`
	From      int64  `json:"from"`
	To        int64  `json:"to"`
}

type partsKey struct{}

// WithParts scopes the queries made with the returned context to the
// lines read from the given Kafka partitions (PartName): the fleet asks
// each indexer for the partitions it answers for. nil parts means no
// scope; an empty non-nil set matches nothing.
func WithParts(ctx context.Context, parts []string) context.Context {
	set := make(map[string]bool, len(parts))
	for _, p := range parts {
		set[p] = true
	}
	return context.WithValue(ctx, partsKey{}, set)
}

// PartsOf returns the scope WithParts set, and whether there is one.
func PartsOf(ctx context.Context) (map[string]bool, bool) {
	set, ok := ctx.Value(partsKey{}).(map[string]bool)
	return set, ok
}

type authKey struct{}

// WithAuth carries the caller's Authorization header, so the fleet asks
// other indexers with the same credentials.
func WithAuth(ctx context.Context, header string) context.Context {
	if header == "" {
		return ctx
	}
	return context.WithValue(ctx, authKey{}, header)
}

// AuthOf returns the header WithAuth set.
func AuthOf(ctx context.Context) string {
	s, _ := ctx.Value(authKey{}).(string)
	return s
}
