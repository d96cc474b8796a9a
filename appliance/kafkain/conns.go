package kafkain

import (
	"errors"
	"net"
	"sync"
	"time"
)

// errConnsCut is what dialling returns once the connections were cut.
var errConnsCut = errors.New("kafka consumer connections cut at shutdown")

// conns opens the consumer's broker connections and can cut them all at
// once. sarama holds a broker's lock while a request waits for its answer,
// so closing the sarama client does not end a JoinGroup that waits at the
// coordinator; closing its socket does. It is sarama's Net.Proxy.Dialer,
// so TLS and SASL still run over these connections.
type conns struct {
	dialer net.Dialer
	mu     sync.Mutex
	open   map[*conn]struct{}
	cut    bool
}

func newConns(dialTimeout time.Duration) *conns {
	return &conns{dialer: net.Dialer{Timeout: dialTimeout}, open: map[*conn]struct{}{}}
}

// Dial opens a connection, unless cutAll was called.
func (cs *conns) Dial(network, addr string) (net.Conn, error) {
	cs.mu.Lock()
	cut := cs.cut
	cs.mu.Unlock()
	if cut {
		return nil, errConnsCut
	}
	nc, err := cs.dialer.Dial(network, addr)
	if err != nil {
		return nil, err
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.cut {
		nc.Close()
		return nil, errConnsCut
	}
	c := &conn{Conn: nc, set: cs}
	cs.open[c] = struct{}{}
	return c, nil
}

// cutAll closes every open connection and refuses new ones: requests
// under way fail at once.
func (cs *conns) cutAll() {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cs.cut = true
	for c := range cs.open {
		c.Conn.Close()
	}
	clear(cs.open)
}

// conn is a connection that leaves its set when closed.
type conn struct {
	net.Conn
	set *conns
}

func (c *conn) Close() error {
	c.set.mu.Lock()
	delete(c.set.open, c)
	c.set.mu.Unlock()
	return c.Conn.Close()
}
