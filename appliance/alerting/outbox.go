package alerting

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/logbox/logbox/appliance/pipeline"
)

// outbox delivers one term's notifications. Each target has a queue in
// outbox order (the etcd key's sequence number); only its head is in
// flight, so a target receives its notifications in the order they were
// made, and one slow or failing target does not hold up another.
//
// An item with a key is kept in etcd: it is deleted (leader-guarded)
// only after the target answered 2xx, or when it is given up (older than
// Config.MaxAge, or refused for good). Re-sends of firing alerts to an
// Alertmanager have no key: they are not kept, not retried (the next
// re-send comes anyway), and only queued behind what the target has not
// yet received.
type outbox struct {
	l      *leader
	mu     sync.Mutex
	queues map[string]*queue
	wake   chan struct{}
	wg     sync.WaitGroup
}

type queue struct {
	target pipeline.AlertTarget
	items  []*item // by seq
	busy   bool
	fails  int
	next   time.Time // no attempt before
}

type item struct {
	key      string // etcd key; "" for an Alertmanager re-send
	seq      uint64
	n        *notification
	attempts int
	sent     bool // delivered: what is left is deleting the key
}

func newOutbox(l *leader) *outbox {
	return &outbox{l: l, queues: map[string]*queue{}, wake: make(chan struct{}, 1)}
}

func (o *outbox) signal() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// add queues items (made by a committed change, or loaded at the start
// of the term).
func (o *outbox) add(items ...*item) {
	if len(items) == 0 {
		return
	}
	kept := 0
	o.mu.Lock()
	for _, it := range items {
		k := targetKey(it.n.Target)
		q := o.queues[k]
		if q == nil {
			q = &queue{target: it.n.Target}
			o.queues[k] = q
		}
		var head *item
		if q.busy && len(q.items) > 0 {
			head = q.items[0]
		}
		if it.key == "" {
			// A newer re-send of the same rule replaces one not yet made.
			q.items = slices.DeleteFunc(q.items, func(x *item) bool {
				return x.key == "" && x.n.Rule == it.n.Rule && x != head
			})
		} else {
			kept++
		}
		i, _ := slices.BinarySearchFunc(q.items, it.seq, func(x *item, s uint64) int {
			switch {
			case x.seq < s:
				return -1
			case x.seq > s:
				return 1
			}
			return 0
		})
		if i == 0 && head != nil {
			i = 1 // the head is in flight
		}
		q.items = slices.Insert(q.items, i, it)
	}
	o.mu.Unlock()
	o.l.e.stats.addOutbox(kept)
	o.signal()
}

// queued counts items kept in etcd per target key.
func (o *outbox) queued() map[string]int {
	o.mu.Lock()
	defer o.mu.Unlock()
	m := make(map[string]int, len(o.queues))
	for k, q := range o.queues {
		for _, it := range q.items {
			if it.key != "" {
				m[k]++
			}
		}
	}
	return m
}

// run delivers until ctx ends, then waits for deliveries in flight.
func (o *outbox) run(ctx context.Context) error {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		o.mu.Lock()
		now := time.Now()
		wait := time.Hour
		for k, q := range o.queues {
			switch {
			case q.busy:
			case len(q.items) == 0:
				delete(o.queues, k)
			case q.next.After(now):
				wait = min(wait, q.next.Sub(now))
			default:
				q.busy = true
				it := q.items[0]
				o.wg.Add(1)
				go func() {
					defer o.wg.Done()
					o.deliver(ctx, q, it)
				}()
			}
		}
		o.mu.Unlock()
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			o.wg.Wait()
			return nil
		case <-o.wake:
		case <-timer.C:
		}
	}
}

// deliver makes one attempt at q's head it: send, then delete its key.
func (o *outbox) deliver(ctx context.Context, q *queue, it *item) {
	e := o.l.e
	kind := it.n.Target.Kind()
	log := e.log.With("rule", it.n.Rule, "target", redact(it.n.Target.URL()), "kind", kind)
	done, retryIn := false, time.Duration(0)
	defer func() {
		o.mu.Lock()
		q.busy = false
		if done {
			q.items = slices.DeleteFunc(q.items, func(x *item) bool { return x == it })
		}
		if retryIn > 0 {
			q.next = time.Now().Add(retryIn)
		}
		o.mu.Unlock()
		if done && it.key != "" {
			e.stats.addOutbox(-1)
		}
		o.signal()
	}()

	if !it.sent && it.key != "" && e.cfg.Now().Sub(it.n.Created) > e.cfg.MaxAge {
		if err := o.l.deleteKey(ctx, it.key); err != nil {
			retryIn = e.cfg.RetryMin
			return
		}
		e.stats.note(kind, func(c *NotificationCounts) { c.Dropped++ })
		log.Warn("notification dropped: not delivered within the outbox's age limit; check the target (see targets in /api/status)",
			"status", it.n.Status, "created", it.n.Created, "attempts", it.attempts)
		done = true
		return
	}
	if !it.sent {
		if it.attempts > 0 {
			e.stats.note(kind, func(c *NotificationCounts) { c.Retried++ })
		}
		it.attempts++
		// A delivery in flight when the term ends (a shutdown) is finished,
		// bounded by SendTimeout, and its entry deleted: else the next
		// leader would send it again.
		err := e.send(context.WithoutCancel(ctx), it.n)
		if err != nil && ctx.Err() != nil {
			return // the term is over; the next leader delivers it
		}
		e.stats.delivery(it.n.Target, err, e.cfg.Now())
		if err != nil {
			e.stats.note(kind, func(c *NotificationCounts) { c.Failed++ })
			var perm *permanentError
			switch {
			case errors.As(err, &perm):
				log.Error("notification refused by its target and dropped; fix the target's URL or the receiver", "status", it.n.Status, "err", err)
				e.stats.note(kind, func(c *NotificationCounts) { c.Dropped++ })
				if it.key == "" || o.l.deleteKey(ctx, it.key) == nil {
					done = true
				}
			case it.key == "":
				done = true // a re-send: the next one comes
			default:
				o.mu.Lock()
				q.fails++
				n := q.fails
				o.mu.Unlock()
				retryIn = backoff(e.cfg.RetryMin, e.cfg.RetryMax, n)
				lvl := slog.LevelInfo
				if n >= 3 {
					lvl = slog.LevelWarn
				}
				log.Log(ctx, lvl, "notification not delivered; retrying", "status", it.n.Status, "attempt", it.attempts, "retry_in", retryIn, "err", err)
			}
			return
		}
		e.stats.note(kind, func(c *NotificationCounts) { c.Sent++ })
		it.sent = true
		o.mu.Lock()
		q.fails = 0
		o.mu.Unlock()
	}
	if it.key != "" {
		if err := o.l.deleteKey(ctx, it.key); err != nil {
			// Delivered; only the delete is retried, never the send.
			if ctx.Err() == nil {
				log.Warn("delivered notification not yet removed from the outbox; retrying", "key", it.key, "err", err)
			}
			retryIn = e.cfg.RetryMin
			return
		}
	}
	done = true
}

// backoff is the wait before attempt n+1 after n failures in a row:
// lo doubling up to hi, with ±20% jitter so targets that failed together
// are not retried together.
func backoff(lo, hi time.Duration, n int) time.Duration {
	d := lo
	for i := 1; i < n && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}
