package syslog

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/logbox/logbox/appliance/ingest"
	"github.com/logbox/logbox/appliance/pipeline"
)

const (
	// handshakeTimeout bounds a TLS handshake.
	handshakeTimeout = 10 * time.Second
	// drainQuiet ends the drain of a connection at shutdown: a read that
	// waits this long without bytes means the kernel holds no more.
	drainQuiet = 20 * time.Millisecond
	// drainReads bounds the drain of a connection whose sender keeps
	// sending at shutdown.
	drainReads = time.Second
)

// conn is one TCP or TLS connection being read.
type conn struct {
	s     *Server
	c     net.Conn
	peer  string
	f     *framer
	batch []ingest.Line
	size  int
	due   time.Time // when the batch is handed on at the latest

	// slots holds one token per batch handed on and not yet acked (at
	// most Window); sent waits for them; stopped is set when one could
	// not be handed on (shutdown), which ends the reading.
	slots   chan struct{}
	sent    sync.WaitGroup
	stopped atomic.Bool
}

// serveConn reads c until the sender closes it, it idles past
// IdleTimeout, its framing breaks or ctx ends; hard bounds the hand-over
// of its last batches (see Serve). Frames are read in batches; while
// Window batches of the connection wait for their ack (or the server's
// MaxBuffer bytes are in flight) nothing more is read from it, so
// backpressure reaches the sender through TCP. It returns once every
// batch it handed on was acked or given up. The caller closes c.
func (s *Server) serveConn(ctx, hard context.Context, c net.Conn, isTLS bool) {
	cn := &conn{s: s, c: c, peer: peerIP(c.RemoteAddr()), f: newFramer(s.cfg.MaxFrame), slots: make(chan struct{}, s.cfg.Window)}
	defer cn.sent.Wait()
	log := s.log.With("peer", cn.peer)
	if isTLS {
		hctx, cancel := context.WithTimeout(ctx, handshakeTimeout)
		err := c.(*tls.Conn).HandshakeContext(hctx)
		cancel()
		if err != nil {
			s.tlsFailed.Add(1)
			log.Debug("TLS handshake failed", "err", err)
			return
		}
	}
	var (
		readErr  error
		drainEnd time.Time // set once ctx ended
	)
	for {
		// Every whole frame read so far goes into batches first.
		for {
			frame, kind, why, err := cn.f.next()
			if err != nil {
				s.broken.Add(1)
				s.drops.Add(1)
				s.acc.Reject(1, "syslog from "+cn.peer+": "+err.Error()+"; connection closed")
				log.Debug("closing a connection whose framing broke", "err", err)
				cn.flush(hard)
				return
			}
			if kind == needMore {
				break
			}
			if kind == dropped {
				s.drops.Add(1)
				s.acc.Reject(1, "syslog from "+cn.peer+": "+why)
				continue
			}
			if !cn.add(frame, nil) && !cn.flush(hard) {
				return
			}
		}
		if readErr != nil {
			break
		}
		now := time.Now()
		var deadline time.Time
		switch {
		case !drainEnd.IsZero():
			if now.After(drainEnd) {
				readErr = io.EOF
				continue
			}
			deadline = now.Add(drainQuiet)
		case len(cn.batch) > 0:
			if !now.Before(cn.due) {
				if !cn.flush(hard) {
					return
				}
				continue
			}
			deadline = cn.due
		default:
			deadline = now.Add(s.cfg.IdleTimeout)
		}
		_ = c.SetReadDeadline(deadline)
		if drainEnd.IsZero() && ctx.Err() != nil {
			// Shutting down (Serve's deadline may have come before ours):
			// take what the kernel still holds, then stop.
			drainEnd = now.Add(drainReads)
			continue
		}
		n, err := cn.f.fill(c)
		s.bytes.Add(uint64(n))
		if err == nil {
			continue
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			switch {
			case !drainEnd.IsZero():
				readErr = io.EOF // drained
			case ctx.Err() != nil:
				// Woken by Serve: drain on the next turn.
			case len(cn.batch) > 0:
				if !cn.flush(hard) {
					return
				}
			default:
				log.Debug("closing an idle connection", "idle", s.cfg.IdleTimeout)
				readErr = err
			}
			continue
		}
		readErr = err
	}
	// The stream ended: what is left of it, then the last batch.
	switch frame, octet := cn.f.rest(); {
	case octet:
		s.drops.Add(1)
		s.acc.Reject(1, "syslog from "+cn.peer+": octet-counted frame cut short by the end of the connection")
	case frame != nil:
		cn.add(frame, []string{pipeline.FlagPartial})
	}
	cn.flush(hard)
}

// add puts a frame in the batch; false when the batch is full.
func (cn *conn) add(frame []byte, flags []string) bool {
	if len(cn.batch) == 0 {
		cn.due = time.Now().Add(cn.s.cfg.BatchWait)
	}
	cn.batch = append(cn.batch, message(frame, cn.peer, flags))
	cn.size += len(frame)
	cn.s.frames.Add(1)
	return len(cn.batch) < cn.s.cfg.BatchLines && cn.size < cn.s.cfg.BatchBytes
}

// flush hands the batch on, waiting first for one of the connection's
// Window slots and for room in the server's MaxBuffer; its ack is waited
// for in the background. False when the connection should close (ctx
// ended, the acceptor is closed).
func (cn *conn) flush(ctx context.Context) bool {
	if len(cn.batch) == 0 {
		return !cn.stopped.Load()
	}
	batch, size := cn.batch, cn.size
	cn.batch, cn.size = nil, 0
	select {
	case cn.slots <- struct{}{}:
	case <-ctx.Done():
		return false
	}
	w := int64(min(size, cn.s.cfg.MaxBuffer))
	if err := cn.s.budget.Acquire(ctx, w); err != nil {
		<-cn.slots
		return false
	}
	cn.sent.Go(func() {
		defer func() {
			cn.s.budget.Release(w)
			<-cn.slots
		}()
		if !cn.s.offer(ctx, batch) {
			cn.stopped.Store(true)
		}
	})
	return !cn.stopped.Load()
}

// offer hands batch to the acceptor and waits for its ack, offering it
// again while the pipeline is overloaded (TCP has no 429: the sender
// waits with it). False: ctx ended or the acceptor is closed (the batch
// may still become durable; the sender is not told). A batch the writer
// refused for good is counted lost and logged.
func (s *Server) offer(ctx context.Context, batch []ingest.Line) bool {
	wait := 10 * time.Millisecond
	for {
		_, err := s.acc.Accept(ctx, batch)
		switch {
		case err == nil:
			return true
		case errors.Is(err, ingest.ErrOverloaded):
			s.overloadWaits.Add(1)
			// Jittered, so batches refused together do not come back
			// together (and are refused together again).
			select {
			case <-time.After(wait/2 + rand.N(wait)):
			case <-ctx.Done():
				return false
			}
			wait = min(2*wait, time.Second)
		case ctx.Err() != nil || errors.Is(err, ingest.ErrClosed):
			return false
		default:
			s.linesFailed.Add(uint64(len(batch)))
			now := uint64(time.Now().UnixNano())
			if last := s.lastFailLog.Load(); now-last > uint64(10*time.Second) && s.lastFailLog.CompareAndSwap(last, now) {
				s.log.Warn("syslog lines lost: the pipeline refused a batch; see the index or Kafka errors for the cause", "lines", len(batch), "err", err)
			}
			return true
		}
	}
}

// peerIP is the address of a connection's or datagram's sender, without
// its port.
func peerIP(a net.Addr) string {
	switch a := a.(type) {
	case *net.TCPAddr:
		return a.AddrPort().Addr().Unmap().String()
	case *net.UDPAddr:
		return a.AddrPort().Addr().Unmap().String()
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}
