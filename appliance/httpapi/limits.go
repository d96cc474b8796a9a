package httpapi

import (
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// ServerTimeouts bound how long one client may hold a connection and a
// goroutine of the HTTP server. Zero fields take the defaults below.
type ServerTimeouts struct {
	// ReadHeader bounds reading a request's line and headers, so a client
	// that sends them byte by byte (slowloris) is cut off. Default 10s.
	ReadHeader time.Duration
	// Read bounds reading a whole request, body included. Default 60s.
	Read time.Duration
	// Write bounds a response, from the end of the request's headers to
	// its last byte, so a client that never reads does not hold the
	// handler. Default 60s; it must exceed Deps.QueryTimeout. Streaming
	// responses (/api/tail, /api/export) replace it with a deadline per
	// write (Deps.TailWriteTimeout, Deps.ExportWriteTimeout): they last
	// as long as the client keeps taking bytes.
	Write time.Duration
	// Idle bounds a keep-alive connection waiting for its next request.
	// Default 120s.
	Idle time.Duration
}

// Default server timeouts.
const (
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultReadTimeout       = 60 * time.Second
	DefaultWriteTimeout      = 60 * time.Second
	DefaultIdleTimeout       = 120 * time.Second
)

func (t ServerTimeouts) withDefaults() ServerTimeouts {
	set := func(d *time.Duration, def time.Duration) {
		if *d <= 0 {
			*d = def
		}
	}
	set(&t.ReadHeader, DefaultReadHeaderTimeout)
	set(&t.Read, DefaultReadTimeout)
	set(&t.Write, DefaultWriteTimeout)
	set(&t.Idle, DefaultIdleTimeout)
	return t
}

// NewServer returns an HTTP server for h with the timeouts of t.
func NewServer(h http.Handler, t ServerTimeouts) *http.Server {
	t = t.withDefaults()
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: t.ReadHeader,
		ReadTimeout:       t.Read,
		WriteTimeout:      t.Write,
		IdleTimeout:       t.Idle,
	}
}

// Default live-tail limits (Deps.MaxTailsPerClient, Deps.MaxTails).
const (
	DefaultMaxTailsPerClient = 8
	DefaultMaxTails          = 64
	// tailRetryAfter is the Retry-After of a refused tail, in seconds.
	tailRetryAfter = 5
)

// tailLimiter counts the open live tails per client address and in all.
type tailLimiter struct {
	perClient, total int // limits; < 0 is none
	mu               sync.Mutex
	open             map[string]int
	n                int
}

func newTailLimiter(perClient, total int) *tailLimiter {
	return &tailLimiter{perClient: perClient, total: total, open: map[string]int{}}
}

// acquire takes a slot for client, or says why there is none. release
// gives the slot back; it is nil when refused.
func (l *tailLimiter) acquire(client string) (release func(), refused string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.perClient >= 0 && l.open[client] >= l.perClient:
		return nil, fmt.Sprintf("too many live tails from %s: %d are open, the limit per client is %d; close one (every open live view counts) or retry later", client, l.open[client], l.perClient)
	case l.total >= 0 && l.n >= l.total:
		return nil, fmt.Sprintf("too many live tails: %d are open, the limit is %d; retry later", l.n, l.total)
	}
	l.open[client]++
	l.n++
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			l.n--
			if l.open[client]--; l.open[client] <= 0 {
				delete(l.open, client)
			}
		})
	}, ""
}

// clientAddr is the address a request came from. Behind a reverse proxy
// every client shares the proxy's; forwarded headers are not trusted,
// since any client can set them.
func clientAddr(r *http.Request) string {
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}

// tooMany answers 429 with Retry-After.
func tooMany(w http.ResponseWriter, msg string, retryAfter int) {
	w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
	writeError(w, http.StatusTooManyRequests, msg)
}

// deadlineWriter moves the connection's write deadline forward before
// writes, so a streamed response lasts while the client takes bytes and
// ends once it stops taking them for d.
type deadlineWriter struct {
	w    http.ResponseWriter
	rc   *http.ResponseController
	d    time.Duration
	last time.Time
}

func (dw *deadlineWriter) extend() {
	// Moving the deadline costs a timer update; once a second is enough.
	if now := time.Now(); now.Sub(dw.last) >= time.Second || dw.d <= 2*time.Second {
		dw.last = now
		_ = dw.rc.SetWriteDeadline(now.Add(dw.d))
	}
}

func (dw *deadlineWriter) Write(p []byte) (int, error) {
	dw.extend()
	return dw.w.Write(p)
}

// Flush sends what is buffered, under a fresh deadline.
func (dw *deadlineWriter) Flush() error {
	dw.extend()
	return dw.rc.Flush()
}
