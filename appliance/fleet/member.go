// Package fleet makes many indexers answer as one. Every indexer
// registers itself in etcd (Registrar) with the Kafka partitions it holds;
// a Router asks, per partition, one live holder and merges the answers,
// saying "partial" when a partition range is held by no live indexer.
package fleet

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/logbox/logbox/appliance/pipeline"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Prefix is where live indexers register, one key each, with a lease.
const Prefix = "/logbox/indexers/"

// Member is what an indexer says of itself at Prefix+ID.
type Member struct {
	ID    string `json:"id"`
	Addr  string `json:"addr"` // base URL of its API
	Role  string `json:"role"`
	Group string `json:"group"`
	Host  string `json:"host"`
	// Assigned are the partitions its consumer claims now; Coverage the
	// offsets it holds of every partition it has read; Lag the messages
	// behind per assigned partition; Filling the partitions whose older
	// offsets it is reading from Kafka (gap fill).
	Assigned []string          `json:"assigned"`
	Coverage pipeline.Coverage `json:"coverage"`
	Lag      map[string]int64  `json:"lag,omitempty"`
	Filling  []string          `json:"filling,omitempty"`
	Started  time.Time         `json:"started"`
	Updated  time.Time         `json:"updated"`
}

// Registrar keeps this indexer's Member in etcd under a lease while it
// runs: rewritten every Every, and within a quarter second when the
// partitions it consumes or fills change (a rebalance), gone when the
// process stops (revoked) or dies (the lease lapses after TTL).
type Registrar struct {
	Client *clientv3.Client
	// Self returns the current Member (ID and Addr set).
	Self  func() Member
	TTL   time.Duration // default 10s
	Every time.Duration // default 2s
	Log   *slog.Logger
}

// Run registers until ctx ends, then removes the key.
func (r *Registrar) Run(ctx context.Context) error {
	ttl, every := r.TTL, r.Every
	if ttl <= 0 {
		ttl = 10 * time.Second
	}
	if every <= 0 {
		every = 2 * time.Second
	}
	var lease clientv3.LeaseID
	t := time.NewTicker(min(every, 250*time.Millisecond))
	defer t.Stop()
	var lastPut time.Time
	var last Member
	for {
		if lease == 0 {
			gctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			g, err := r.Client.Grant(gctx, int64(ttl/time.Second))
			cancel()
			if err == nil {
				lease = g.ID
				ka, err := r.Client.KeepAlive(ctx, lease)
				if err == nil {
					go func() {
						for range ka {
						}
					}()
				}
			} else if ctx.Err() == nil {
				r.Log.Warn("fleet: cannot take a lease in etcd; retrying", "err", err)
			}
		}
		m := r.Self()
		changed := !slices.Equal(m.Assigned, last.Assigned) || !slices.Equal(m.Filling, last.Filling)
		if lease != 0 && (changed || time.Since(lastPut) >= every) {
			m.Updated = time.Now().UTC()
			b, err := json.Marshal(m)
			if err != nil {
				return fmt.Errorf("fleet: encode member: %w", err)
			}
			pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			_, err = r.Client.Put(pctx, Prefix+m.ID, string(b), clientv3.WithLease(lease))
			cancel()
			if err != nil && ctx.Err() == nil {
				r.Log.Warn("fleet: cannot register in etcd; retrying", "err", err)
				lease = 0 // the lease may have lapsed: take a new one
			} else if err == nil {
				lastPut, last = time.Now(), m
			}
		}
		select {
		case <-ctx.Done():
			if lease != 0 {
				rctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				_, _ = r.Client.Revoke(rctx, lease)
				cancel()
			}
			return nil
		case <-t.C:
		}
	}
}

// Directory is the live members, kept from a watch of Prefix.
type Directory struct {
	client *clientv3.Client
	log    *slog.Logger
	mu     sync.RWMutex
	m      map[string]Member
	synced bool
}

// NewDirectory returns a Directory; Run keeps it current.
func NewDirectory(cli *clientv3.Client, log *slog.Logger) *Directory {
	return &Directory{client: cli, log: log, m: map[string]Member{}}
}

// Run lists and watches Prefix until ctx ends.
func (d *Directory) Run(ctx context.Context) error {
	for ctx.Err() == nil {
		rev, err := d.load(ctx)
		if err != nil {
			if ctx.Err() == nil {
				d.log.Warn("fleet: cannot list indexers in etcd; retrying", "err", err)
			}
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
			continue
		}
		wch := d.client.Watch(clientv3.WithRequireLeader(ctx), Prefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1))
		for resp := range wch {
			if resp.Err() != nil {
				break
			}
			d.mu.Lock()
			for _, ev := range resp.Events {
				id := strings.TrimPrefix(string(ev.Kv.Key), Prefix)
				if ev.Type == clientv3.EventTypeDelete {
					delete(d.m, id)
					continue
				}
				var m Member
				if err := json.Unmarshal(ev.Kv.Value, &m); err != nil {
					d.log.Warn("fleet: an indexer entry is not valid JSON; ignored", "key", string(ev.Kv.Key), "err", err)
					continue
				}
				d.m[id] = m
			}
			d.mu.Unlock()
		}
	}
	return nil
}

func (d *Directory) load(ctx context.Context) (int64, error) {
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := d.client.Get(lctx, Prefix, clientv3.WithPrefix())
	if err != nil {
		return 0, fmt.Errorf("list %s: %w", Prefix, err)
	}
	m := map[string]Member{}
	for _, kv := range resp.Kvs {
		var mb Member
		if err := json.Unmarshal(kv.Value, &mb); err != nil {
			continue
		}
		m[strings.TrimPrefix(string(kv.Key), Prefix)] = mb
	}
	d.mu.Lock()
	d.m, d.synced = m, true
	d.mu.Unlock()
	return resp.Header.Revision, nil
}

// Members returns the live members, by ID.
func (d *Directory) Members() []Member {
	d.mu.RLock()
	defer d.mu.RUnlock()
	out := make([]Member, 0, len(d.m))
	for _, m := range d.m {
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b Member) int { return strings.Compare(a.ID, b.ID) })
	return out
}
