package httpapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/logbox/logbox/appliance/httpapi"
	"github.com/logbox/logbox/appliance/index"
	"github.com/logbox/logbox/appliance/pipeline"
)

// smallBuffers makes the server's sockets hold little, so a response of
// about a megabyte fills them when the client does not read.
type smallBuffers struct{ net.Listener }

func (l smallBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(8 << 10)
		_ = tc.SetReadBuffer(8 << 10)
	}
	return c, err
}

// dialSmall connects with a small receive buffer (set before connect, so
// the window stays small).
func dialSmall(t *testing.T, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: 10 * time.Second, Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 8<<10) }); err != nil {
			return err
		}
		return serr
	}}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// limitedServer serves the API over a real etcd and index with the server
// timeouts of to, as the appliance builds it (httpapi.NewServer). Each
// handler's path is sent on the returned channel when the handler returns.
func limitedServer(t *testing.T, to httpapi.ServerTimeouts, mod func(*httpapi.Deps)) (addr string, ix *index.Index, done <-chan string) {
	t.Helper()
	d, ix, _ := apiDeps(t, index.Config{})
	if mod != nil {
		mod(&d)
	}
	api := httpapi.New(d, quiet)
	ch := make(chan string, 100)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() { ch <- r.URL.Path }()
		api.ServeHTTP(w, r)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := httpapi.NewServer(h, to)
	go func() { _ = srv.Serve(smallBuffers{ln}) }()
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String(), ix, ch
}

// closedWithin reads from conn until the server closes it (or answers
// and closes) and fails unless that happens within bound while feed keeps
// the client busy sending.
func closedWithin(t *testing.T, what string, conn net.Conn, bound time.Duration, feed func() error) {
	t.Helper()
	began := time.Now()
	closed := make(chan error, 1)
	go func() {
		_ = conn.SetReadDeadline(time.Now().Add(bound + 10*time.Second))
		_, err := io.Copy(io.Discard, conn)
		closed <- err
	}()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-closed:
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatalf("%s: the server kept the connection for %v", what, time.Since(began))
			}
			if d := time.Since(began); d > bound {
				t.Fatalf("%s: disconnected only after %v, bound %v", what, d, bound)
			}
			t.Logf("%s: disconnected after %v", what, time.Since(began).Round(time.Millisecond))
			return
		case <-tick.C:
			if time.Since(began) > bound {
				t.Fatalf("%s: still connected after %v", what, bound)
			}
			if feed != nil {
				_ = feed() // fails once the server has closed; the reader sees it
			}
		}
	}
}

// TestSlowClientsAreCut: the HTTP server cuts a client that sends its
// headers byte by byte (slowloris), one that sends its body byte by byte,
// an idle keep-alive connection, and a client that never reads its
// response: none holds a connection or a handler for longer than the
// timeouts.
func TestSlowClientsAreCut(t *testing.T) {
	to := httpapi.ServerTimeouts{ReadHeader: 500 * time.Millisecond, Read: time.Second, Write: time.Second, Idle: time.Second}
	addr, ix, done := limitedServer(t, to, func(d *httpapi.Deps) { d.ExportWriteTimeout = time.Second })
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	indexBigLines(t, ctx, ix)

	t.Run("slowloris headers", func(t *testing.T) {
		conn := dialSmall(t, addr)
		fmt.Fprint(conn, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
		closedWithin(t, "headers byte by byte", conn, 5*time.Second, func() error {
			_, err := conn.Write([]byte("a"))
			return err
		})
	})
	t.Run("slow body", func(t *testing.T) {
		conn := dialSmall(t, addr)
		fmt.Fprint(conn, "POST /api/sources HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 10000\r\n\r\n{")
		closedWithin(t, "body byte by byte", conn, 6*time.Second, func() error {
			_, err := conn.Write([]byte(" "))
			return err
		})
	})
	t.Run("idle keep-alive", func(t *testing.T) {
		conn := dialSmall(t, addr)
		fmt.Fprint(conn, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("healthz: %v %v", resp, err)
		}
		resp.Body.Close()
		closedWithin(t, "idle connection", conn, 6*time.Second, nil)
	})
	for _, path := range []string{"/api/search?q=big&limit=10000", "/api/export?q=big"} {
		t.Run("never reads "+path, func(t *testing.T) {
			drain(done)
			conn := dialSmall(t, addr)
			fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", path)
			// The client never reads; its handler must still end.
			deadline := time.After(15 * time.Second)
			for {
				select {
				case p := <-done:
					if p == path[:strings.IndexByte(path, '?')] {
						return
					}
				case <-deadline:
					t.Fatalf("%s: the handler for a client that never reads still runs after 15s", path)
				}
			}
		})
	}
}

func drain(ch <-chan string) {
	for {
		select {
		case <-ch:
		default:
			return
		}
	}
}

// TestStreamsOutliveWriteTimeout: the server's write timeout does not cut
// a live tail or an export whose client keeps reading, however long they
// last.
func TestStreamsOutliveWriteTimeout(t *testing.T) {
	to := httpapi.ServerTimeouts{Write: 500 * time.Millisecond}
	addr, ix, _ := limitedServer(t, to, func(d *httpapi.Deps) {
		d.TailHeartbeat = 200 * time.Millisecond
		d.TailWriteTimeout = 2 * time.Second
		d.ExportWriteTimeout = 2 * time.Second
	})
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	indexBigLines(t, ctx, ix)
	events, _, closeTail := openTail(t, ctx, "http://"+addr+"/api/tail?q=late", "")
	defer closeTail()

	// A slow reader: the export takes about 2 s, four times the write timeout.
	conn := dialSmall(t, addr)
	fmt.Fprint(conn, "GET /api/export?q=big HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("export: %v %v", resp, err)
	}
	n, buf := 0, make([]byte, 16<<10)
	for {
		k, err := resp.Body.Read(buf)
		n += strings.Count(string(buf[:k]), "\n")
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("slow export cut after %d lines: %v", n, err)
		}
		time.Sleep(15 * time.Millisecond)
	}
	if n != bigLines {
		t.Fatalf("slow export: %d lines, want %d", n, bigLines)
	}
	// The tail, open all that while, still delivers.
	if err := ix.Index(ctx, []pipeline.Record{{TS: base, Host: "h", FileID: "g", Offset: 0, Line: "late line"}}); err != nil {
		t.Fatal(err)
	}
	if _, h := next(t, ctx, events); h.Line != "late line" {
		t.Fatalf("tail after the write timeout: %q", h.Line)
	}
}

// TestTailLimits: live tails are capped per client address and in all;
// one more gets 429 with Retry-After and a JSON error; a closed tail
// frees its slot.
func TestTailLimits(t *testing.T) {
	srv, _, _ := newServerWith(t, index.Config{}, func(d *httpapi.Deps) {
		d.MaxTailsPerClient = 2
		d.MaxTails = 3
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// Two client addresses on loopback: 127.0.0.1 and 127.0.0.2.
	clientFrom := func(ip string) *http.Client {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 10 * time.Second}
		return &http.Client{Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
	}
	one, two := clientFrom("127.0.0.1"), clientFrom("127.0.0.2")
	tail := func(c *http.Client) (*http.Response, context.CancelFunc) {
		t.Helper()
		tctx, tcancel := context.WithCancel(ctx)
		req, _ := http.NewRequestWithContext(tctx, "GET", srv.URL+"/api/tail", nil)
		resp, err := c.Do(req)
		if err != nil {
			tcancel()
			t.Fatal(err)
		}
		t.Cleanup(func() { tcancel(); resp.Body.Close() })
		return resp, tcancel
	}
	want := func(resp *http.Response, code int, errHas string) {
		t.Helper()
		if resp.StatusCode != code {
			t.Fatalf("tail: %d, want %d", resp.StatusCode, code)
		}
		if code != 429 {
			return
		}
		var e struct{ Error string }
		if err := json.NewDecoder(resp.Body).Decode(&e); err != nil || !strings.Contains(e.Error, errHas) {
			t.Fatalf("429 body: %q %v, want it to say %q", e.Error, err, errHas)
		}
		if resp.Header.Get("Retry-After") == "" {
			t.Fatal("429 without Retry-After")
		}
	}
	r1, close1 := tail(one)
	want(r1, 200, "")
	r2, _ := tail(one)
	want(r2, 200, "")
	r3, _ := tail(one) // a third from the same client
	want(r3, 429, "limit per client is 2")
	r4, _ := tail(two) // another client still gets one
	want(r4, 200, "")
	r5, _ := tail(two) // but the total is reached
	want(r5, 429, "the limit is 3")

	// Closing a tail frees its slot (once the server has seen it go).
	close1()
	for deadline := time.Now().Add(20 * time.Second); ; {
		r, _ := tail(one)
		if r.StatusCode == 200 {
			break
		}
		want(r, 429, "too many live tails")
		if time.Now().After(deadline) {
			t.Fatal("a closed tail's slot was not freed")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// bigLines lines of about 500 bytes make a response of over a megabyte.
const bigLines = 2500

// indexBigLines indexes bigLines such lines.
func indexBigLines(t *testing.T, ctx context.Context, ix *index.Index) {
	t.Helper()
	pad := strings.Repeat("p", 500)
	var rs []pipeline.Record
	for i := range bigLines {
		rs = append(rs, pipeline.Record{TS: base.Add(time.Duration(i) * time.Millisecond), Host: "h", Source: "/s", FileID: "f",
			Offset: int64(i * 600), Line: fmt.Sprintf("big line %d %s", i, pad)})
	}
	if err := ix.Index(ctx, rs); err != nil {
		t.Fatal(err)
	}
}
