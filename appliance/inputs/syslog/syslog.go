// Package syslog is logbox's syslog input: RFC 5424 and RFC 3164
// messages over TCP (RFC 6587: octet counting and LF framing, told apart
// per frame), over TLS (RFC 5425: the same framing inside TLS) and over
// UDP (one datagram, one message). Each message is one line, handed to
// the pipeline through an ingest.Acceptor (the delivery contract is on
// pipeline.Batch) with the index's syslog parser named, which makes the
// fields: facility, severity, hostname, app_name, procid, msgid and one
// field per structured-data parameter (<SD-ID>.<PARAM-NAME>), plus the
// time and level.
//
// # Files
//
//   - syslog.go: Config, Server (listeners, connection bound, lifecycle), Stats.
//   - conn.go:   one TCP or TLS connection: frames → batches → Accept.
//   - udp.go:    the UDP socket: datagrams → batches → Send.
//   - frame.go:  the RFC 6587 framer (bounded buffer, resumable).
//   - message.go: a frame → an ingest.Line (sender host, stream, identity time).
//
// # What is acknowledged, and what can be lost
//
// Syslog has no application-level acknowledgement: a TCP sender counts a
// message sent once its kernel accepted the bytes. logbox reads a
// connection in batches (up to BatchLines frames, BatchBytes bytes or
// BatchWait after the batch's first frame) and hands each on to the
// pipeline, where it is acked once durable (indexed, or acked by Kafka on
// an agent). Up to Window batches per connection, and MaxBuffer bytes
// over all connections, wait for their ack at once; past that the
// connection is not read until one is acked, and a batch refused because
// too many lines are in flight waits and is offered again. So a slow
// index slows the sender down through TCP's own flow control, and memory
// stays bounded: MaxBuffer, plus MaxConns × (MaxFrame + BatchBytes) for
// the batches being filled, plus the Acceptor's in-flight bound. Lines of
// one connection get their offsets in the order read, except that the
// batches in flight at once may interleave.
//
// What a SIGKILL (or a crash, or a power cut) of logbox loses: the lines
// read and not yet acked (at most Window+1 batches per connection) and
// the bytes in the kernel's socket buffers. The sender cannot tell which
// those were. rsyslog's omfwd with a queue
// (action.resumeRetryCount="-1", a disk-assisted queue) resends what it
// could not send once logbox listens again, but not what the kernel had
// taken. RELP, the protocol that closes this gap, is not supported. A
// line in a batch that was acked before the kill is durable and, when a
// sender resends it, indexed once (see Identity).
//
// UDP cannot be acknowledged at all: datagrams are handed on without
// waiting (Acceptor.Send, counted as unacked), dropped and counted when
// too many lines are in flight, and dropped uncounted by the kernel when
// its socket buffer overflows. Use TCP for lines that must arrive.
//
// # Identity
//
// A message is identified by its stream (peer address, HOSTNAME, APP-NAME
// or tag), its header time and its text. Only a header time with a
// fraction of a second (RFC 5424 as logger and rsyslog write it, rsyslog's
// RSYSLOG_ForwardFormat) is used: then a message resent within the
// Acceptor's window is recognised and indexed once. A time to the second
// (RFC 3164) or none cannot tell two identical messages of one second
// apart from a resend, so such a message is identified by the moment it
// was read: never merged with another, and indexed twice if resent.
//
// # Deviations
//
// A frame longer than MaxFrame is dropped whole (not cut) and counted
// (Acceptor.Reject); an octet-counted frame whose length prefix exceeds
// 16 MiB closes the connection (the stream has lost its framing). An
// LF-framed line left without its LF when the sender closes is delivered,
// flagged "partial"; an octet-counted frame cut short is dropped and
// counted. The sender's timezone is not known: an RFC 3164 time (which
// has none) is read in the indexer's zone.
package syslog

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/semaphore"

	"github.com/logbox/logbox/appliance/ingest"
)

// Name is the input's name: its Acceptor's name and the records' Source.
const Name = "syslog"

// Config configures the syslog input. An empty address turns that
// listener off; zero limits take the defaults.
type Config struct {
	// TCP, UDP and TLS are listen addresses ("0.0.0.0:514", ":6514",
	// "127.0.0.1:0").
	TCP, UDP, TLS string
	// TLSConfig is the server's TLS configuration (certificates, client
	// authentication); required when TLS is set.
	TLSConfig *tls.Config
	// MaxFrame bounds one message in bytes (default 64 KiB); longer ones
	// are dropped and counted.
	MaxFrame int
	// MaxConns bounds the TCP and TLS connections open at once (default
	// 1024); a connection over it is closed at once and counted.
	MaxConns int
	// IdleTimeout closes a connection that sent nothing for this long
	// (default 5m).
	IdleTimeout time.Duration
	// BatchLines, BatchBytes and BatchWait end a batch: this many
	// messages (default 1000), this many bytes (default 1 MiB), or this
	// long after its first message (default 50ms).
	BatchLines int
	BatchBytes int
	BatchWait  time.Duration
	// Window bounds the batches of one connection handed on and not yet
	// acked (default 32): the connection is read on meanwhile, so reading
	// and indexing overlap and one sender is not held to one batch per
	// index flush. MaxBuffer bounds their bytes over all connections
	// (default 256 MiB). Past either, the connection is not read until a
	// batch is acked. Window 1 hands on one batch at a time.
	Window    int
	MaxBuffer int
	// ShutdownTimeout bounds, once Serve's context ends, the wait for the
	// acks of the lines read before (default 5s).
	ShutdownTimeout time.Duration
	// UDPReadBuffer asks the kernel for this socket receive buffer
	// (default 4 MiB; the kernel may cap it at net.core.rmem_max).
	UDPReadBuffer int
}

func (c Config) withDefaults() Config {
	if c.MaxFrame <= 0 {
		c.MaxFrame = 64 << 10
	}
	if c.MaxConns <= 0 {
		c.MaxConns = 1024
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 5 * time.Minute
	}
	if c.BatchLines <= 0 {
		c.BatchLines = 1000
	}
	if c.BatchBytes <= 0 {
		c.BatchBytes = 1 << 20
	}
	if c.BatchWait <= 0 {
		c.BatchWait = 50 * time.Millisecond
	}
	if c.Window <= 0 {
		c.Window = 32
	}
	if c.MaxBuffer <= 0 {
		c.MaxBuffer = 256 << 20
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = 5 * time.Second
	}
	if c.UDPReadBuffer <= 0 {
		c.UDPReadBuffer = 4 << 20
	}
	return c
}

// Stats are the input's counters since the process started (the
// Acceptor has the lines' fate: acked, unacked, dropped, rejected).
type Stats struct {
	// ConnsOpen are the TCP and TLS connections open now; ConnsTotal
	// those accepted since start; ConnsRefused those closed at once
	// because MaxConns were open; ConnsBroken those closed for a
	// length prefix over 16 MiB; TLSHandshakeFailures those whose TLS
	// handshake failed.
	ConnsOpen            int64  `json:"connections_open"`
	ConnsTotal           uint64 `json:"connections_total"`
	ConnsRefused         uint64 `json:"connections_refused"`
	ConnsBroken          uint64 `json:"connections_broken"`
	TLSHandshakeFailures uint64 `json:"tls_handshake_failures"`
	// Frames and Bytes read over TCP and TLS (bytes as received, framing
	// included); Datagrams and DatagramBytes over UDP.
	Frames        uint64 `json:"frames"`
	Bytes         uint64 `json:"bytes"`
	Datagrams     uint64 `json:"datagrams"`
	DatagramBytes uint64 `json:"datagram_bytes"`
	// FramesDropped: frames and datagrams refused (over MaxFrame, empty,
	// cut short by the sender); also counted by Acceptor.Reject.
	FramesDropped uint64 `json:"frames_dropped"`
	// OverloadWaits counts batches that waited and were offered again
	// because too many lines were in flight.
	OverloadWaits uint64 `json:"overload_waits"`
	// LinesLost are TCP and TLS lines the pipeline refused for good
	// (the writer's nack, not shutdown): the sender cannot be told.
	LinesLost uint64 `json:"lines_lost"`
}

// Server is the syslog input: New, Listen, then Serve.
type Server struct {
	cfg Config
	acc *ingest.Acceptor
	log *slog.Logger

	tcp, tls net.Listener
	udp      *net.UDPConn
	// budget holds the bytes of batches handed on and not yet acked
	// (MaxBuffer).
	budget *semaphore.Weighted

	mu       sync.Mutex
	conns    map[net.Conn]struct{}
	closing  bool
	handlers sync.WaitGroup // connection handlers

	open                                        atomic.Int64
	total, refused, broken, tlsFailed           atomic.Uint64
	frames, bytes, datagrams, dgramBytes, drops atomic.Uint64
	overloadWaits, linesLost, lastFailLog       atomic.Uint64
}

// New returns a server that hands its lines to acc (whose Name should be
// Name). It binds nothing yet.
func New(cfg Config, acc *ingest.Acceptor, log *slog.Logger) *Server {
	cfg = cfg.withDefaults()
	// A connection keeps up to Window batches in flight: they are
	// written in big writes, not each at once (ingest.Acceptor.SetPipelined).
	acc.SetPipelined()
	return &Server{cfg: cfg, acc: acc, log: log.With("component", "syslog"), conns: map[net.Conn]struct{}{}, budget: semaphore.NewWeighted(int64(cfg.MaxBuffer))}
}

// Listen binds the configured listeners; on an error (which names the
// flag: --syslog-tcp, --syslog-udp, --syslog-tls) it binds none.
func (s *Server) Listen() error {
	if s.cfg.TLS != "" && (s.cfg.TLSConfig == nil || (len(s.cfg.TLSConfig.Certificates) == 0 && s.cfg.TLSConfig.GetCertificate == nil && s.cfg.TLSConfig.GetConfigForClient == nil)) {
		return errors.New("--syslog-tls: a certificate and key are needed (--syslog-tls-cert, --syslog-tls-key)")
	}
	var lc net.ListenConfig
	ctx := context.Background()
	if s.cfg.TCP != "" {
		ln, err := lc.Listen(ctx, "tcp", s.cfg.TCP)
		if err != nil {
			return fmt.Errorf("--syslog-tcp %s: %w", s.cfg.TCP, err)
		}
		s.tcp = ln
	}
	if s.cfg.TLS != "" {
		ln, err := lc.Listen(ctx, "tcp", s.cfg.TLS)
		if err != nil {
			s.closeListeners()
			return fmt.Errorf("--syslog-tls %s: %w", s.cfg.TLS, err)
		}
		s.tls = tls.NewListener(ln, s.cfg.TLSConfig)
	}
	if s.cfg.UDP != "" {
		pc, err := lc.ListenPacket(ctx, "udp", s.cfg.UDP)
		if err != nil {
			s.closeListeners()
			return fmt.Errorf("--syslog-udp %s: %w", s.cfg.UDP, err)
		}
		s.udp = pc.(*net.UDPConn)
		if err := s.udp.SetReadBuffer(s.cfg.UDPReadBuffer); err != nil {
			s.log.Warn("could not set the UDP receive buffer; bursts may be dropped by the kernel", "err", err)
		}
	}
	return nil
}

// Close closes the listeners of a server that will not Serve (its
// start-up failed after Listen); Serve closes its own.
func (s *Server) Close() error {
	s.closeListeners()
	return nil
}

// closeListeners undoes a Listen that failed half-way.
func (s *Server) closeListeners() {
	if s.tcp != nil {
		_ = s.tcp.Close()
	}
	if s.tls != nil {
		_ = s.tls.Close()
	}
	if s.udp != nil {
		_ = s.udp.Close()
	}
	s.tcp, s.tls, s.udp = nil, nil, nil
}

// Addrs returns the bound addresses (nil for a listener that is off or
// not bound yet).
func (s *Server) Addrs() (tcp, udp, tlsAddr net.Addr) {
	if s.tcp != nil {
		tcp = s.tcp.Addr()
	}
	if s.udp != nil {
		udp = s.udp.LocalAddr()
	}
	if s.tls != nil {
		tlsAddr = s.tls.Addr()
	}
	return tcp, udp, tlsAddr
}

// Serve accepts connections and datagrams until ctx ends (Listen is
// called first if it was not). It returns once the listeners and every
// connection are closed and every handler has returned: nil after ctx
// ended, or the error that stopped a listener (the others are stopped
// then too).
//
// When ctx ends each connection (and the UDP socket) is read for what
// its kernel buffer still holds (up to a second), and the last batches
// are handed on and waited for up to ShutdownTimeout: the writer must
// still run then (stop inputs before the writer). A batch not acked by
// then stays in the pipeline (acked or nacked there); the senders are
// not told either way.
func (s *Server) Serve(ctx context.Context) error {
	if s.tcp == nil && s.tls == nil && s.udp == nil {
		if err := s.Listen(); err != nil {
			return err
		}
	}
	// hard bounds the hand-over of the batches read before the end: it
	// ends ShutdownTimeout after ctx (or a listener's failure).
	hard, hardCancel := context.WithCancel(context.WithoutCancel(ctx))
	defer hardCancel()
	g, gctx := errgroup.WithContext(ctx)
	stop := context.AfterFunc(gctx, func() { time.AfterFunc(s.cfg.ShutdownTimeout, hardCancel) })
	defer stop()
	if s.tcp != nil {
		g.Go(func() error { return s.acceptLoop(gctx, hard, s.tcp, "--syslog-tcp", false) })
	}
	if s.tls != nil {
		g.Go(func() error { return s.acceptLoop(gctx, hard, s.tls, "--syslog-tls", true) })
	}
	if s.udp != nil {
		g.Go(func() error { s.serveUDP(gctx, s.udp); return nil })
	}
	g.Go(func() error {
		<-gctx.Done()
		// Stop taking connections; wake every reader, which takes what
		// its kernel buffer still holds, hands it on and closes.
		if s.tcp != nil {
			_ = s.tcp.Close()
		}
		if s.tls != nil {
			_ = s.tls.Close()
		}
		if s.udp != nil {
			_ = s.udp.SetReadDeadline(time.Now())
		}
		s.mu.Lock()
		s.closing = true
		for c := range s.conns {
			_ = c.SetReadDeadline(time.Now())
		}
		s.mu.Unlock()
		return nil
	})
	err := g.Wait()
	s.handlers.Wait()
	return err
}

// Stats returns the input's counters.
func (s *Server) Stats() Stats {
	return Stats{
		ConnsOpen: s.open.Load(), ConnsTotal: s.total.Load(), ConnsRefused: s.refused.Load(),
		ConnsBroken: s.broken.Load(), TLSHandshakeFailures: s.tlsFailed.Load(),
		Frames: s.frames.Load(), Bytes: s.bytes.Load(), Datagrams: s.datagrams.Load(), DatagramBytes: s.dgramBytes.Load(),
		FramesDropped: s.drops.Load(), OverloadWaits: s.overloadWaits.Load(), LinesLost: s.linesLost.Load(),
	}
}

// acceptLoop accepts connections on ln until it is closed (nil once ctx
// ended; a listener's failure otherwise, named by flag).
func (s *Server) acceptLoop(ctx, hard context.Context, ln net.Listener, flag string, isTLS bool) error {
	backoff := 5 * time.Millisecond
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) || errors.Is(err, syscall.ECONNABORTED) {
				// Out of file descriptors or a connection that left
				// before it was taken: wait, as net/http does.
				s.log.Warn("accepting a connection failed; retrying", "listener", flag, "err", err)
				select {
				case <-time.After(backoff):
				case <-ctx.Done():
					return nil
				}
				backoff = min(2*backoff, time.Second)
				continue
			}
			return fmt.Errorf("%s: accept: %w", flag, err)
		}
		backoff = 5 * time.Millisecond
		if s.open.Load() >= int64(s.cfg.MaxConns) {
			s.refused.Add(1)
			_ = c.Close()
			continue
		}
		s.mu.Lock()
		if s.closing {
			s.mu.Unlock()
			_ = c.Close()
			return nil
		}
		s.conns[c] = struct{}{}
		s.open.Add(1)
		s.total.Add(1)
		s.handlers.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.handlers.Done()
			defer func() {
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
				s.open.Add(-1)
				_ = c.Close()
			}()
			s.serveConn(ctx, hard, c, isTLS)
		}()
	}
}
