package syslog

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/logbox/logbox/appliance/ingest"
	"github.com/logbox/logbox/appliance/ingest/ingesttest"
)

func dial(t *testing.T, a net.Addr) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", a.String(), 5*time.Second)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func write(t *testing.T, c net.Conn, s string) {
	t.Helper()
	_ = c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, s); err != nil {
		t.Fatalf("write: %v", err)
	}
}

// msg is an RFC 5424 message without a time, numbered i.
func msg(id string, i int) string {
	return fmt.Sprintf("<14>1 - hostile probe - - - %s n%05d", id, i)
}

func octet(m string) string { return fmt.Sprintf("%d %s", len(m), m) }

// closedByServer waits until the server closes c (a read sees EOF or a
// reset).
func closedByServer(t *testing.T, c net.Conn, within time.Duration) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(within))
	_, err := c.Read(make([]byte, 1))
	var ne net.Error
	if err == nil || errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the server did not close the connection within %v: %v", within, err)
	}
}

func stillOpen(t *testing.T, c net.Conn) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	_, err := c.Read(make([]byte, 1))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("the server closed the connection: %v", err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Over-long frames, empty ones and stray bytes are dropped and counted
// without closing the connection; a length prefix over 16 MiB closes it;
// frames are handed on by time while the connection stays open.
func TestHostileFrames(t *testing.T) {
	for _, mode := range ingesttest.Modes {
		t.Run(string(mode), func(t *testing.T) {
			r := startRig(t, mode, Config{MaxFrame: 1000})
			id := runID(t)
			c := dial(t, r.tcp)
			write(t, c, octet(msg(id, 0)))
			write(t, c, octet(msg(id, 99)+strings.Repeat("x", 2000)))
			write(t, c, msg(id, 1)+"\n")
			write(t, c, msg(id, 98)+strings.Repeat("y", 3000)+"\n")
			write(t, c, "0 ")
			write(t, c, octet(msg(id, 2))+"\n\x00\x00\r\n")
			write(t, c, "\r\n"+octet(msg(id, 3)))
			write(t, c, octet(msg(id, 4)))
			// Handed on after BatchWait, the connection still open.
			if n := r.p.WaitCount(id, 5, 20*time.Second); n != 5 {
				t.Fatalf("%d lines arrived, want 5", n)
			}
			stillOpen(t, c)
			if st := r.acc.Stats(); st.Rejected != 3 {
				t.Errorf("rejected %d, want 3 (%+v)", st.Rejected, st)
			}
			write(t, c, octet(msg(id, 5))+"99999999 "+octet(msg(id, 97)))
			closedByServer(t, c, 5*time.Second)
			r.checkOnce(t, id, 6)
			st := r.srv.Stats()
			if st.ConnsBroken != 1 || st.FramesDropped != 4 || st.Frames != 6 {
				t.Errorf("stats %+v", st)
			}
			waitFor(t, "the connection to be let go", func() bool { return r.srv.Stats().ConnsOpen == 0 })
		})
	}
}

// A sender that leaves mid-frame: a cut octet-counted frame is dropped
// and counted, an LF-framed line without its LF is delivered flagged
// partial.
func TestDisconnectMidFrame(t *testing.T) {
	for _, mode := range ingesttest.Modes {
		t.Run(string(mode), func(t *testing.T) {
			r := startRig(t, mode, Config{})
			id := runID(t)
			a := dial(t, r.tcp)
			write(t, a, octet(msg(id, 0))+"120 "+msg(id, 96)+" and then the sender died")
			_ = a.Close()
			b := dial(t, r.tcp)
			write(t, b, octet(msg(id, 1))+msg(id, 2))
			_ = b.Close()
			c := dial(t, r.tcp)
			write(t, c, msg(id, 3)+"\n15")
			_ = c.Close()
			hits := r.checkOnce(t, id, 4)
			for _, h := range hits {
				partial := slices.Contains(h.Flags, "partial")
				if partial != strings.HasSuffix(h.Line, "n00002") {
					t.Errorf("line %q flags %v", h.Line, h.Flags)
				}
			}
			waitFor(t, "two cut frames counted", func() bool { return r.acc.Stats().Rejected == 2 })
		})
	}
}

// Connections over MaxConns are closed at once and counted; one idle
// past IdleTimeout is closed; a closed one frees its place.
func TestConnectionBounds(t *testing.T) {
	for _, mode := range ingesttest.Modes {
		t.Run(string(mode), func(t *testing.T) {
			r := startRig(t, mode, Config{MaxConns: 2, IdleTimeout: 2 * time.Second})
			id := runID(t)
			c1, c2 := dial(t, r.tcp), dial(t, r.tcp)
			write(t, c1, octet(msg(id, 0)))
			write(t, c2, octet(msg(id, 1)))
			if n := r.p.WaitCount(id, 2, 20*time.Second); n != 2 {
				t.Fatalf("%d lines, want 2", n)
			}
			c3 := dial(t, r.tcp)
			closedByServer(t, c3, 5*time.Second)
			if st := r.srv.Stats(); st.ConnsRefused != 1 || st.ConnsOpen != 2 {
				t.Fatalf("stats %+v", st)
			}
			_ = c1.Close()
			waitFor(t, "a place to free", func() bool { return r.srv.Stats().ConnsOpen == 1 })
			c4 := dial(t, r.tcp)
			write(t, c4, octet(msg(id, 2)))
			// c2 and c4 send nothing more: both are closed for idling.
			start := time.Now()
			closedByServer(t, c4, 10*time.Second)
			closedByServer(t, c2, 10*time.Second)
			if el := time.Since(start); el < time.Second {
				t.Errorf("closed after %v, before the idle timeout", el)
			}
			r.checkOnce(t, id, 3)
			waitFor(t, "every connection closed", func() bool { return r.srv.Stats().ConnsOpen == 0 })
		})
	}
}

// UDP: an empty datagram and one over MaxFrame are dropped and counted;
// a datagram is one message, whatever LFs it holds.
func TestUDPDatagrams(t *testing.T) {
	for _, mode := range ingesttest.Modes {
		t.Run(string(mode), func(t *testing.T) {
			r := startRig(t, mode, Config{MaxFrame: 1000})
			id := runID(t)
			c, err := net.Dial("udp", r.udp.String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			for _, d := range []string{"\n", msg(id, 99) + strings.Repeat("z", 1200), msg(id, 0) + "\n", msg(id, 1) + "\nsecond line\x00", msg(id, 2)} {
				if _, err := c.Write([]byte(d)); err != nil {
					t.Fatal(err)
				}
			}
			hits := r.checkOnce(t, id, 3)
			for _, h := range hits {
				if strings.HasSuffix(h.Line, "\n") || strings.Contains(h.Line, "n00001") && !strings.HasSuffix(h.Line, "\nsecond line") {
					t.Errorf("datagram not kept whole or not trimmed: %q", h.Line)
				}
			}
			waitFor(t, "two drops", func() bool { return r.acc.Stats().Rejected == 2 && r.srv.Stats().FramesDropped == 2 })
			if st := r.acc.Stats(); st.Unacked != 3 {
				t.Errorf("unacked %d, want 3", st.Unacked)
			}
		})
	}
}

// A client faster than the pipeline: with a tiny in-flight bound the
// batches wait and are offered again; every line arrives once.
func TestOverloadWaits(t *testing.T) {
	for _, mode := range ingesttest.Modes {
		t.Run(string(mode), func(t *testing.T) {
			p := ingesttest.Start(t, mode)
			acc, err := ingest.New(ingest.Config{Name: Name, Host: "logbox-test", Dir: t.TempDir(), Sink: p.Sink, MaxInFlight: 10}, ingesttest.Quiet)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = acc.Close() })
			r := startServer(t, p, acc, Config{BatchLines: 50})
			id := runID(t)
			const conns, per = 4, 500
			var wg sync.WaitGroup
			for k := range conns {
				c := dial(t, r.tcp)
				wg.Go(func() {
					var b strings.Builder
					for i := range per {
						b.WriteString(octet(msg(id, k*per+i)))
					}
					_, _ = io.WriteString(c, b.String())
					_ = c.Close()
				})
			}
			wg.Wait()
			r.checkOnce(t, id, conns*per)
			t.Logf("server %+v; acceptor %+v", r.srv.Stats(), acc.Stats())
			if st := acc.Stats(); st.Overloaded == 0 || r.srv.Stats().OverloadWaits == 0 {
				t.Errorf("no batch was refused for overload with a bound of 10 lines: %+v", st)
			}
		})
	}
}

// When Serve's context ends, what was sent before is read from the kernel
// and handed on before Serve returns.
func TestShutdownDrains(t *testing.T) {
	for _, mode := range ingesttest.Modes {
		t.Run(string(mode), func(t *testing.T) {
			p := ingesttest.Start(t, mode)
			acc := p.Acceptor(Name, "")
			srv := New(Config{TCP: "127.0.0.1:0", BatchWait: time.Hour}, acc, ingesttest.Quiet)
			if err := srv.Listen(); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- srv.Serve(ctx) }()
			defer cancel()
			tcp, _, _ := srv.Addrs()
			id := runID(t)
			c := dial(t, tcp)
			write(t, c, octet(msg(id, 0)))
			waitFor(t, "the connection to be served", func() bool { return srv.Stats().Frames == 1 })
			var b strings.Builder
			for i := 1; i < 500; i++ {
				b.WriteString(octet(msg(id, i)))
			}
			write(t, c, b.String())
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(20 * time.Second):
				t.Fatal("Serve did not return")
			}
			if st := acc.Stats(); st.Acked != 500 {
				t.Fatalf("acked %d lines by the time Serve returned, want 500 (%+v)", st.Acked, srv.Stats())
			}
			r := &rig{p: p, acc: acc, srv: srv}
			r.checkOnce(t, id, 500)
		})
	}
}

// A sender's resend of RFC 5424 messages (a time with a fraction of a
// second) is indexed once; identical RFC 3164 messages (a time to the
// second) in separate batches are all kept.
func TestResendIdentity(t *testing.T) {
	for _, mode := range ingesttest.Modes {
		t.Run(string(mode), func(t *testing.T) {
			r := startRig(t, mode, Config{})
			id := runID(t)
			ts := time.Now().UTC()
			var b strings.Builder
			for i := range 200 {
				b.WriteString(octet(fmt.Sprintf("<14>1 %s box app 7 - - %s n%05d", ts.Add(time.Duration(i)*time.Microsecond).Format("2006-01-02T15:04:05.000000Z07:00"), id, i)))
			}
			for range 2 {
				c := dial(t, r.tcp)
				write(t, c, b.String())
				_ = c.Close()
				if n := r.p.WaitCount(id, 200, 20*time.Second); n != 200 {
					t.Fatalf("%d lines, want 200", n)
				}
			}
			r.checkOnce(t, id, 200)
			if st := r.acc.Stats(); st.Retried != 200 {
				t.Errorf("retried %d, want 200", st.Retried)
			}

			bsd := runID(t)
			line := fmt.Sprintf("<14>%s box app[7]: %s the same words", time.Now().Format(time.Stamp), bsd)
			for range 3 {
				c := dial(t, r.tcp)
				write(t, c, line+"\n")
				_ = c.Close()
				time.Sleep(100 * time.Millisecond)
			}
			if n := r.p.WaitCount(bsd, 3, 20*time.Second); n != 3 {
				t.Fatalf("identical RFC 3164 lines: %d kept, want 3", n)
			}
		})
	}
}

// selfSigned makes a certificate for 127.0.0.1 and the pool that trusts it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "logbox-test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// RFC 5425: octet-counted frames inside TLS from a Go TLS client; a
// client that does not speak TLS is counted and let go.
func TestTLS(t *testing.T) {
	cert, pool := selfSigned(t)
	for _, mode := range ingesttest.Modes {
		t.Run(string(mode), func(t *testing.T) {
			p := ingesttest.Start(t, mode)
			r := startServer(t, p, p.Acceptor(Name, ""), Config{TLS: "127.0.0.1:0", TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}})
			if r.tcp != nil || r.udp != nil || r.tls == nil {
				t.Fatalf("addrs %v %v %v", r.tcp, r.udp, r.tls)
			}
			id := runID(t)
			const conns, per = 2, 500
			var wg sync.WaitGroup
			errs := make(chan error, conns)
			for k := range conns {
				wg.Go(func() {
					c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", r.tls.String(), &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
					if err != nil {
						errs <- err
						return
					}
					defer c.Close()
					for i := range per {
						if _, err := io.WriteString(c, octet(msg(id, k*per+i))); err != nil {
							errs <- err
							return
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatalf("TLS client: %v", err)
			}
			hits := r.checkOnce(t, id, conns*per)
			if h := hits[0]; h.Fields["app_name"] != "probe" || h.Host != "hostile" || h.Fields["peer"] != "127.0.0.1" {
				t.Errorf("hit %+v", h)
			}
			plain := dial(t, r.tls)
			write(t, plain, octet(msg(id, 9999))+"\n\n\n\n\n\n")
			closedByServer(t, plain, 15*time.Second)
			waitFor(t, "a failed handshake counted", func() bool { return r.srv.Stats().TLSHandshakeFailures == 1 })
		})
	}
}

// Listen's errors name the flag to fix.
func TestListenErrors(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	takenUDP, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer takenUDP.Close()
	p := ingesttest.Start(t, ingesttest.Direct)
	acc := p.Acceptor(Name, "")
	for _, c := range []struct {
		cfg  Config
		flag string
	}{
		{Config{TCP: taken.Addr().String()}, "--syslog-tcp"},
		{Config{TCP: "127.0.0.1:0", UDP: takenUDP.LocalAddr().String()}, "--syslog-udp"},
		{Config{TLS: taken.Addr().String(), TLSConfig: &tls.Config{Certificates: []tls.Certificate{{}}}}, "--syslog-tls"},
		{Config{TLS: "127.0.0.1:0"}, "--syslog-tls"},
	} {
		s := New(c.cfg, acc, ingesttest.Quiet)
		err := s.Listen()
		if err == nil || !strings.HasPrefix(err.Error(), c.flag) {
			t.Errorf("%+v: error %v, want one naming %s", c.cfg, err, c.flag)
		}
		if tcp, udp, tlsAddr := s.Addrs(); tcp != nil || udp != nil || tlsAddr != nil {
			t.Errorf("%+v: a failed Listen kept %v %v %v", c.cfg, tcp, udp, tlsAddr)
		}
	}
}
