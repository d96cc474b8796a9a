package tailer

import (
	"container/list"
	"sync"
	"syscall"
)

// pool runs the readers of every source on a fixed set of worker
// goroutines and hands out the descriptor budget.
//
// A reader has no goroutine of its own: wake puts it on the run queue (once,
// however often it is woken), a worker runs one step of it (read what is
// there, publish, decide when to look again) and the reader waits again,
// holding no goroutine, for an inotify event, a timer, an ack or a
// descriptor. At most one worker runs a given reader at a time; a wake that
// arrives while it runs makes it run again right after.
//
// Descriptors: at most limit files are open at once (a worker that opens a
// file holds a second, short-lived handle on it while it checks it). A
// reader that needs one when none is free is queued in arrival order, and
// the reader idle the longest is woken to close its file; a descriptor
// that is released goes straight to the first reader waiting.
type pool struct {
	mu      sync.Mutex
	work    *sync.Cond // a reader was queued, or the pool closed
	idle    *sync.Cond // a reader stopped running
	runq    []*reader
	closed  bool
	workers sync.WaitGroup

	limit   int       // descriptors for files
	open    int       // held or granted
	fdq     []*reader // waiting for a descriptor, in order
	waiting int       // readers in fdq that still wait
	// idleOpen are readers that hold a descriptor while idle and could
	// give it back, oldest first: when a reader has to wait for a
	// descriptor, the oldest of them is woken to close its file.
	idleOpen list.List
}

// schedState is a reader's place in the pool, guarded by pool.mu.
type schedState struct {
	queued  bool // on the run queue
	running bool // a worker runs it
	again   bool // woken while running
	stopped bool // never runs again
	fdWait  bool // in fdq
	fdGrant bool // a released descriptor was handed to it
	idle    *list.Element
}

func newPool(workers, fdLimit int, bufSize int) *pool {
	p := &pool{limit: fdLimit}
	p.work = sync.NewCond(&p.mu)
	p.idle = sync.NewCond(&p.mu)
	for i := 0; i < workers; i++ {
		p.workers.Add(1)
		go func() {
			defer p.workers.Done()
			buf := make([]byte, bufSize) // shared by every file this worker reads
			for {
				r := p.next()
				if r == nil {
					return
				}
				more := r.step(buf)
				p.finished(r, more)
			}
		}()
	}
	return p
}

// close ends the workers once the run queue is empty of runnable readers;
// readers must have been stopped before.
func (p *pool) close() {
	p.mu.Lock()
	p.closed = true
	p.work.Broadcast()
	p.mu.Unlock()
	p.workers.Wait()
}

func (p *pool) next() *reader {
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		for len(p.runq) > 0 {
			r := p.runq[0]
			p.runq[0] = nil
			p.runq = p.runq[1:]
			r.sched.queued = false
			if r.sched.stopped {
				continue
			}
			p.notIdle(r)
			r.sched.running = true
			return r
		}
		if p.closed {
			return nil
		}
		p.work.Wait()
	}
}

func (p *pool) finished(r *reader, more bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	r.sched.running = false
	if r.sched.stopped {
		p.idle.Broadcast()
		return
	}
	if more || r.sched.again {
		r.sched.again = false
		p.enqueue(r)
	}
}

// wake makes r run soon. It never blocks, so it can be called from acks,
// timers and the watcher.
func (p *pool) wake(r *reader) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case r.sched.stopped:
	case r.sched.running:
		r.sched.again = true
	case !r.sched.queued:
		p.enqueue(r)
	}
}

func (p *pool) enqueue(r *reader) {
	r.sched.queued = true
	p.runq = append(p.runq, r)
	p.work.Signal()
}

// stop makes sure r never runs again and waits until no worker runs it.
// It reports whether r was running or queued (not already stopped).
func (p *pool) stop(r *reader) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if r.sched.stopped {
		for r.sched.running {
			p.idle.Wait()
		}
		return false
	}
	r.sched.stopped = true
	p.notIdle(r)
	if r.sched.fdWait {
		r.sched.fdWait = false
		p.waiting--
	}
	for r.sched.running {
		p.idle.Wait()
	}
	return true
}

// idleWithFD records that r, which holds a descriptor, is idle and could
// close its file if another file needs the descriptor.
func (p *pool) idleWithFD(r *reader) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if r.sched.idle == nil && !r.sched.stopped {
		r.sched.idle = p.idleOpen.PushBack(r)
	}
	if p.waiting > 0 {
		p.evictLocked() // someone waits already
	}
}

func (p *pool) notIdle(r *reader) {
	if r.sched.idle != nil {
		p.idleOpen.Remove(r.sched.idle)
		r.sched.idle = nil
	}
}

// evictLocked wakes the reader idle the longest, so it gives its
// descriptor back.
func (p *pool) evictLocked() {
	e := p.idleOpen.Front()
	if e == nil {
		return
	}
	r := e.Value.(*reader)
	p.notIdle(r)
	switch {
	case r.sched.running:
		r.sched.again = true
	case !r.sched.queued:
		p.enqueue(r)
	}
}

// markStopped is stop for the reader's own worker (it must not wait for
// itself).
func (p *pool) markStopped(r *reader) {
	p.mu.Lock()
	defer p.mu.Unlock()
	r.sched.stopped = true
	p.notIdle(r)
	if r.sched.fdWait {
		r.sched.fdWait = false
		p.waiting--
	}
}

// acquireFD takes a descriptor for r, or queues r for one and returns
// false; r is woken when one is handed to it.
func (p *pool) acquireFD(r *reader) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if r.sched.fdGrant {
		r.sched.fdGrant = false
		return true
	}
	if p.open < p.limit && p.waiting == 0 {
		p.open++
		return true
	}
	if !r.sched.fdWait && !r.sched.stopped {
		r.sched.fdWait = true
		p.waiting++
		p.fdq = append(p.fdq, r)
		p.evictLocked()
	}
	return false
}

// releaseFD gives a descriptor back: to the first reader waiting, if any.
func (p *pool) releaseFD() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.releaseLocked()
}

func (p *pool) releaseLocked() {
	for len(p.fdq) > 0 {
		r := p.fdq[0]
		p.fdq[0] = nil
		p.fdq = p.fdq[1:]
		if !r.sched.fdWait {
			continue // stopped while waiting
		}
		r.sched.fdWait = false
		p.waiting--
		r.sched.fdGrant = true
		switch {
		case r.sched.running:
			r.sched.again = true
		case !r.sched.queued:
			p.enqueue(r)
		}
		return
	}
	p.open--
}

// dropGrant returns a descriptor handed to r that r will not use.
func (p *pool) dropGrant(r *reader) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if r.sched.fdGrant {
		r.sched.fdGrant = false
		p.releaseLocked()
	}
}

// pressure reports whether readers wait for a descriptor.
func (p *pool) pressure() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.waiting > 0
}

// fdStats returns descriptors in use, the limit and the readers waiting.
func (p *pool) fdStats() (open, limit, waiting int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.open, p.limit, p.waiting
}

// FileDescriptorBudget is how many files the tailer keeps open at most when
// Config.MaxOpenFiles is 0: the process's descriptor limit (RLIMIT_NOFILE)
// minus a reserve for everything else — the index (each shard's segment
// and block files), the embedded etcd (WAL, snapshot, database), HTTP and
// Kafka connections and the runtime. The reserve is a quarter of the limit,
// at least 128 (but at most half of it): under `ulimit -n 1024` files get
// 768 descriptors.
func FileDescriptorBudget() (budget, limit int) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur == 0 {
		return 768, 1024
	}
	limit = int(min(rl.Cur, 1<<22))
	reserve := min(max(128, limit/4), limit/2)
	return max(limit-reserve, 8), limit
}
