package syslog

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/logbox/logbox/appliance/ingest"
	"github.com/logbox/logbox/appliance/ingest/ingesttest"
	"github.com/logbox/logbox/appliance/pipeline"
)

// rig is a syslog server in front of a real pipeline.
type rig struct {
	p             *ingesttest.Pipe
	acc           *ingest.Acceptor
	srv           *Server
	tcp, udp, tls net.Addr
}

// startRig starts a pipeline of mode and a server of cfg on it (empty
// addresses in cfg: TCP and UDP on 127.0.0.1:0).
func startRig(t *testing.T, mode ingesttest.Mode, cfg Config) *rig {
	t.Helper()
	p := ingesttest.Start(t, mode)
	return startServer(t, p, p.Acceptor(Name, ""), cfg)
}

func startServer(t testing.TB, p *ingesttest.Pipe, acc *ingest.Acceptor, cfg Config) *rig {
	t.Helper()
	if cfg.TCP == "" && cfg.UDP == "" && cfg.TLS == "" {
		cfg.TCP, cfg.UDP = "127.0.0.1:0", "127.0.0.1:0"
	}
	srv := New(cfg, acc, ingesttest.Quiet)
	if err := srv.Listen(); err != nil {
		t.Fatalf("listen: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Errorf("Serve did not return after its context ended")
		}
	})
	r := &rig{p: p, acc: acc, srv: srv}
	r.tcp, r.udp, r.tls = srv.Addrs()
	return r
}

// runID is a word no other test line holds.
func runID(t *testing.T) string {
	t.Helper()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return "run" + hex.EncodeToString(b)
}

var seqRE = regexp.MustCompile(`\bn(\d{5})\b`)

// checkOnce checks that the lines holding id are exactly lines n00000 to
// n<want-1>, each once, and returns them.
func (r *rig) checkOnce(t *testing.T, id string, want int) []pipeline.Hit {
	t.Helper()
	if n := r.p.WaitCount(id, want, 30*time.Second); n != want {
		t.Fatalf("%d lines hold %s, want %d (acceptor %+v, server %+v)", n, id, want, r.acc.Stats(), r.srv.Stats())
	}
	time.Sleep(200 * time.Millisecond) // a late double would show now
	hits := r.p.Hits(id, want+100)
	seen := map[string]int{}
	for _, h := range hits {
		m := seqRE.FindStringSubmatch(h.Line)
		if m == nil {
			t.Fatalf("line without a sequence number: %q", h.Line)
		}
		seen[m[1]]++
	}
	for i := range want {
		if k := fmt.Sprintf("%05d", i); seen[k] != 1 {
			t.Errorf("line n%s indexed %d times, want once", k, seen[k])
		}
	}
	if len(hits) != want {
		t.Fatalf("%d hits, want %d", len(hits), want)
	}
	return hits
}

func need(t *testing.T, bin string) string {
	t.Helper()
	p, err := exec.LookPath(bin)
	if err != nil {
		t.Skipf("%s is not installed (Debian: %s); skipping the test with the real client", bin, map[string]string{"logger": "bsdutils", "rsyslogd": "rsyslog"}[bin])
	}
	return p
}

// logger sends lines (one message each, read from stdin) with util-linux
// logger to port.
func logger(t *testing.T, port int, lines []string, args ...string) {
	t.Helper()
	bin := need(t, "logger")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"-n", "127.0.0.1", "-P", fmt.Sprint(port)}, args...)...)
	cmd.Stdin = strings.NewReader(strings.Join(lines, "\n") + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("logger %v: %v: %s", args, err, out)
	}
}

func portOf(a net.Addr) int {
	switch a := a.(type) {
	case *net.TCPAddr:
		return a.Port
	case *net.UDPAddr:
		return a.Port
	}
	panic("no port")
}

func numbered(id string, n int, extra string) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s n%05d %s", id, i, extra)
	}
	return out
}

func hostnames(t *testing.T) []string {
	h, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	short, _, _ := strings.Cut(h, ".")
	return []string{h, short}
}

// util-linux logger over TCP (octet counting and LF framing) and UDP, in
// both RFCs: every line searchable once, with the header's fields.
func TestLogger(t *testing.T) {
	need(t, "logger")
	hosts := hostnames(t)
	for _, mode := range ingesttest.Modes {
		t.Run(string(mode), func(t *testing.T) {
			r := startRig(t, mode, Config{})
			cases := []struct {
				name  string
				rfc   string
				udp   bool
				octet bool
			}{
				{"tcp-octet-5424", "--rfc5424", false, true},
				{"tcp-lf-5424", "--rfc5424", false, false},
				{"tcp-octet-3164", "--rfc3164", false, true},
				{"tcp-lf-3164", "--rfc3164", false, false},
				{"udp-5424", "--rfc5424", true, false},
				{"udp-3164", "--rfc3164", true, false},
			}
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					id := runID(t)
					const n = 300
					args := []string{c.rfc, "-t", "app" + id, "--id=4242", "-p", "local3.warning"}
					port := portOf(r.tcp)
					if c.udp {
						args = append(args, "-d")
						port = portOf(r.udp)
					} else {
						args = append(args, "-T")
					}
					if c.octet {
						args = append(args, "--octet-count")
					}
					if c.rfc == "--rfc5424" {
						args = append(args, "--msgid", "MID7", "--sd-id", "ex@32473", "--sd-param", `k="v 1"`, "--sd-param", `q="a\"b"`)
					}
					logger(t, port, numbered(id, n, "user=alice latency=12"), args...)
					hits := r.checkOnce(t, id, n)
					h := hits[0]
					want := map[string]string{
						"facility": "local3", "severity": "warning", "app_name": "app" + id, "procid": "4242",
						"peer": "127.0.0.1", "user": "alice", "latency": "12",
					}
					if c.rfc == "--rfc5424" {
						want["msgid"] = "MID7"
						want["ex@32473.k"] = "v 1"
						want["ex@32473.q"] = `a"b`
					}
					for k, v := range want {
						if h.Fields[k] != v {
							t.Errorf("field %s = %q, want %q (line %q, fields %v)", k, h.Fields[k], v, h.Line, h.Fields)
						}
					}
					if h.Fields["hostname"] != hosts[0] && h.Fields["hostname"] != hosts[1] {
						t.Errorf("hostname %q, want one of %q", h.Fields["hostname"], hosts)
					}
					if h.Host != h.Fields["hostname"] {
						t.Errorf("host %q, want the header's %q", h.Host, h.Fields["hostname"])
					}
					if h.Level != "WARN" || h.Source != Name {
						t.Errorf("level %q source %q", h.Level, h.Source)
					}
					if !strings.HasPrefix(h.Line, "<156>") || strings.HasSuffix(h.Line, "\n") {
						t.Errorf("line not as sent: %q", h.Line)
					}
					if since := time.Since(h.TS); since < 0 || since > 10*time.Minute {
						t.Errorf("time %v is not the header's (now %v)", h.TS, time.Now())
					}
					// The fields answer queries.
					if got := r.p.Count(id + " AND app_name:app" + id + " AND severity:warning"); got != n {
						t.Errorf("query by fields: %d, want %d", got, n)
					}
				})
			}
			st := r.srv.Stats()
			if st.Frames < 4*300 || st.Datagrams < 2*300 || st.ConnsTotal < 4 || st.FramesDropped != 0 {
				t.Errorf("stats %+v", st)
			}
			if ast := r.acc.Stats(); ast.Unacked < 2*300 || ast.Rejected != 0 {
				t.Errorf("acceptor stats %+v", ast)
			}
		})
	}
}

// rsyslogd starts rsyslog with conf (where PORTFILE and WORKDIR are
// replaced) and returns the TCP port its imtcp input listens on.
func rsyslogd(t *testing.T, conf string) int {
	t.Helper()
	bin := need(t, "rsyslogd")
	dir := t.TempDir()
	portFile := dir + "/port"
	conf = strings.NewReplacer("PORTFILE", portFile, "WORKDIR", dir).Replace(conf)
	if err := os.WriteFile(dir+"/rsyslog.conf", []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd := exec.Command(bin, "-n", "-f", dir+"/rsyslog.conf", "-i", dir+"/rsyslogd.pid")
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start rsyslogd: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("rsyslogd output:\n%s", out.String())
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		b, err := os.ReadFile(portFile)
		if err == nil && len(bytes.TrimSpace(b)) > 0 {
			var port int
			if _, err := fmt.Sscan(string(b), &port); err == nil && port > 0 {
				return port
			}
		}
		select {
		case <-exited:
			t.Fatalf("rsyslogd exited: %s", out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("rsyslogd wrote no port file: %s", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// rsyslog's omfwd forwarding to logbox over TCP, octet-counted (RFC 5424
// template) and LF-framed (its default, the traditional format): lines
// sent to rsyslog with logger all arrive once.
func TestRsyslogForward(t *testing.T) {
	need(t, "rsyslogd")
	need(t, "logger")
	for _, mode := range ingesttest.Modes {
		t.Run(string(mode), func(t *testing.T) {
			r := startRig(t, mode, Config{})
			for _, c := range []struct{ name, action string }{
				{"octet-5424", `TCP_Framing="octet-counted" template="RSYSLOG_SyslogProtocol23Format"`},
				{"lf-traditional", ``},
			} {
				t.Run(c.name, func(t *testing.T) {
					port := rsyslogd(t, fmt.Sprintf(`
global(workDirectory="WORKDIR")
module(load="imtcp")
input(type="imtcp" port="0" listenPortFileName="PORTFILE")
action(type="omfwd" target="127.0.0.1" port="%d" protocol="tcp" %s
       queue.type="LinkedList" action.resumeRetryCount="-1" action.resumeInterval="1")
`, portOf(r.tcp), c.action))
					id := runID(t)
					const n = 1000
					t0 := time.Now()
					logger(t, port, numbered(id, n, "from rsyslog"), "-T", "--octet-count", "--rfc3164", "-t", "fw"+id, "--id=77", "-p", "user.err")
					t.Logf("logger done after %v", time.Since(t0))
					hits := r.checkOnce(t, id, n)
					t.Logf("all arrived after %v", time.Since(t0))
					h := hits[len(hits)/2]
					if h.Fields["app_name"] != "fw"+id || h.Fields["procid"] != "77" || h.Fields["severity"] != "err" || h.Level != "ERROR" || h.Fields["peer"] != "127.0.0.1" {
						t.Errorf("fields %v level %q of %q", h.Fields, h.Level, h.Line)
					}
				})
			}
		})
	}
}
