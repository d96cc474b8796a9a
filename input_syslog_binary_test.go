package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	crand "crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/logbox/logbox/appliance/kafkatest"
)

// TestSyslogKill9 runs the real binary with --syslog-tcp behind rsyslog
// (omfwd, octet-counted RFC 5424, a queue that resends what it could
// not send), feeds rsyslog a steady stream with util-linux logger, kills
// logbox with SIGKILL three times mid-stream and restarts it on the same
// port. What the README promises is checked: every line searchable
// before a kill (so acked by a durable batch) is there exactly once at
// the end; no line is doubled, rsyslog's resends included (they carry
// the header time with its microseconds, so logbox recognises them);
// every line sent after the last restart arrives. Lines in flight at a
// kill (read and not yet acked, or in the kernel's socket buffers) may
// be lost: they are counted and logged, not failed on. Direct mode and
// Kafka mode (a kfake broker in this process, outliving the kills).
func TestSyslogKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("kills the binary several times")
	}
	for _, b := range []string{"rsyslogd", "logger"} {
		if _, err := exec.LookPath(b); err != nil {
			t.Skipf("%s is not installed (Debian: rsyslog, bsdutils); skipping the syslog crash test", b)
		}
	}
	bin := buildBinary(t)
	for _, kafka := range []bool{false, true} {
		name := map[bool]string{false: "direct", true: "kafka"}[kafka]
		t.Run(name, func(t *testing.T) {
			var k *kafkatest.Cluster
			if kafka {
				k = kafkatest.Start(t)
			}
			syslogKill9(t, bin, k)
		})
	}
}

// freeTCPPort is a port nothing listens on now, where logbox comes back
// after each kill (rsyslog and the client send there). It is taken below
// Linux's ephemeral range (32768-60999 by default), so that while logbox
// is down no outgoing connection of another process, nor a client's own
// reconnect (TCP's self-connect), takes it as its local port.
func freeTCPPort(t *testing.T) int {
	t.Helper()
	for range 100 {
		port := 20000 + rand.IntN(12000)
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			ln.Close()
			return port
		}
	}
	t.Fatal("no free TCP port in 20000-32000")
	return 0
}

// forwarder runs rsyslogd forwarding what it receives on its own TCP
// port (returned) to 127.0.0.1:to, octet-counted RFC 5424, with a queue
// that retries every second for ever.
func forwarder(t *testing.T, to int) int {
	t.Helper()
	dir := t.TempDir()
	conf := fmt.Sprintf(`
global(workDirectory=%q)
module(load="imtcp")
input(type="imtcp" port="0" listenPortFileName=%q)
action(type="omfwd" target="127.0.0.1" port="%d" protocol="tcp" TCP_Framing="octet-counted"
       template="RSYSLOG_SyslogProtocol23Format"
       queue.type="LinkedList" queue.size="1000000"
       action.resumeRetryCount="-1" action.resumeInterval="1")
`, dir, filepath.Join(dir, "port"), to)
	if err := os.WriteFile(filepath.Join(dir, "rsyslog.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd := exec.Command("rsyslogd", "-n", "-f", filepath.Join(dir, "rsyslog.conf"), "-i", filepath.Join(dir, "pid"))
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
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
		var port int
		if b, err := os.ReadFile(filepath.Join(dir, "port")); err == nil {
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
			t.Fatalf("rsyslogd did not listen: %s", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// syslogFeeder writes numbered lines to one long-running logger (RFC
// 5424 over TCP, octet-counted) at a steady rate until stopped.
type syslogFeeder struct {
	mu      sync.Mutex
	written int
	stop    chan struct{}
	done    chan struct{}
}

func startFeeder(t *testing.T, port int) *syslogFeeder {
	t.Helper()
	cmd := exec.Command("logger", "-n", "127.0.0.1", "-P", fmt.Sprint(port), "-T", "--octet-count", "--rfc5424",
		"-t", "syskill", "--id=4711", "-p", "local0.info", "--sd-id", "crash@32473", "--sd-param", `run="1"`)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	f := &syslogFeeder{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(f.done)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-f.stop:
				_ = stdin.Close()
				if err := cmd.Wait(); err != nil {
					t.Errorf("logger: %v: %s", err, out.String())
				}
				return
			case <-tick.C:
			}
			f.mu.Lock()
			var b strings.Builder
			for range 20 { // 2000 lines/s
				fmt.Fprintf(&b, "syskill tok%07d INFO a syslog line to survive kill -9\n", f.written)
				f.written++
			}
			f.mu.Unlock()
			if _, err := io.WriteString(stdin, b.String()); err != nil {
				t.Errorf("write to logger: %v: %s", err, out.String())
				return
			}
		}
	}()
	return f
}

func (f *syslogFeeder) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.written
}

func syslogKill9(t *testing.T, bin string, k *kafkatest.Cluster) {
	work := t.TempDir()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 7))
	port := freeTCPPort(t)
	args := []string{"--data", "data", "--http", "127.0.0.1:0", "--etcd-listen", "127.0.0.1:0", "--host", "syslogbox",
		"--syslog-tcp", fmt.Sprintf("127.0.0.1:%d", port)}
	if k != nil {
		args = append(args, "--kafka", strings.Join(k.Brokers, ","),
			"--topic", kafkatest.UniqueName(t, "syslog"), "--kafka-group", kafkatest.UniqueName(t, "syslog"))
	}
	p := startBinary(t, bin, work, args...)
	feed := startFeeder(t, forwarder(t, port))
	defer func() {
		select {
		case <-feed.stop:
		default:
			close(feed.stop)
		}
		<-feed.done
	}()

	const kills = 3
	confirmed := map[int]bool{} // searchable before a kill
	for i := range kills {
		time.Sleep(time.Duration(800+rng.IntN(1500)) * time.Millisecond)
		seen, _ := allTokens(t, p.url, "syskill")
		for tok := range seen {
			confirmed[tok] = true
		}
		if err := p.cmd.Process.Kill(); err != nil {
			exit := <-p.done
			p.dumpLog(t, fmt.Sprintf("logbox exited by itself (%v)", exit))
			t.Fatalf("logbox exited by itself before kill %d: %v", i+1, exit)
		}
		<-p.done
		t.Logf("kill %d: %d lines fed, %d searchable before it", i+1, feed.count(), len(seen))
		time.Sleep(time.Duration(rng.IntN(1000)) * time.Millisecond)
		p = startBinary(t, bin, work, args...)
	}
	// Fed after the last restart was up: every one of these must arrive.
	afterRestart := feed.count()
	time.Sleep(1500 * time.Millisecond)
	close(feed.stop)
	<-feed.done
	written := feed.count()

	// Wait for rsyslog's queue to drain: the count stops moving.
	var seen map[int]int
	var total uint64
	last, stableSince := uint64(0), time.Now()
	for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline); time.Sleep(300 * time.Millisecond) {
		if total = searchTotal(t, p.url, "syskill"); total != last {
			last, stableSince = total, time.Now()
		}
		if total >= uint64(written) || time.Since(stableSince) > 5*time.Second {
			break
		}
	}
	seen, total = allTokens(t, p.url, "syskill")
	var lost []int
	doubled, confirmedMissing, lateMissing := 0, 0, 0
	for tok := range written {
		switch n := seen[tok]; {
		case n > 1:
			doubled++
			if doubled <= 5 {
				t.Errorf("line tok%07d indexed %d times", tok, n)
			}
		case n == 0:
			lost = append(lost, tok)
			if confirmed[tok] {
				confirmedMissing++
				if confirmedMissing <= 5 {
					t.Errorf("line tok%07d was searchable before a kill and is gone", tok)
				}
			}
			if tok >= afterRestart {
				lateMissing++
				if lateMissing <= 5 {
					t.Errorf("line tok%07d, sent after the last restart, never arrived", tok)
				}
			}
		}
	}
	sort.Ints(lost)
	t.Logf("%d kills; %d lines fed, %d searchable before a kill, %d indexed; lost in flight at the kills: %d %s; doubled: %d",
		kills, written, len(confirmed), total, len(lost), spans(lost), doubled)
	if doubled > 0 || confirmedMissing > 0 || lateMissing > 0 || total != uint64(written-len(lost)) {
		p.dumpLog(t, "syslog lines lost or doubled")
		t.Fatalf("%d fed, %d indexed: %d doubled, %d searchable before a kill and lost, %d sent after the last restart and lost",
			written, total, doubled, confirmedMissing, lateMissing)
	}
	if resp, err := http.Get(p.url + "/api/status"); err == nil {
		var st map[string]json.RawMessage
		if json.NewDecoder(resp.Body).Decode(&st) == nil {
			t.Logf("inputs in /api/status (this run only): %s", st["inputs"])
		}
		resp.Body.Close()
	}
}

// spans writes sorted tokens as ranges ("[100-140 900-903]").
func spans(toks []int) string {
	var b strings.Builder
	b.WriteString("[")
	for i := 0; i < len(toks); {
		j := i
		for j+1 < len(toks) && toks[j+1] == toks[j]+1 {
			j++
		}
		if i > 0 {
			b.WriteString(" ")
		}
		if j > i {
			fmt.Fprintf(&b, "%d-%d", toks[i], toks[j])
		} else {
			fmt.Fprintf(&b, "%d", toks[i])
		}
		i = j + 1
	}
	b.WriteString("]")
	return b.String()
}

// TestSyslogKill9Resend is the careful sender's side of the promise: a
// client (Go, octet-counted RFC 5424 with microsecond header times, as
// rsyslog writes them) streams to the real binary, which is killed with
// SIGKILL mid-stream and restarted; after each restart the client
// resends, byte for byte, every line it was not sure of (not seen in a
// search before the kill), the ones logbox had acked meanwhile included.
// Every line is then indexed exactly once: nothing lost, the resent lines
// logbox already held recognised (lines_retried) and not doubled.
func TestSyslogKill9Resend(t *testing.T) {
	if testing.Short() {
		t.Skip("kills the binary several times")
	}
	bin := buildBinary(t)
	for _, kafka := range []bool{false, true} {
		name := map[bool]string{false: "direct", true: "kafka"}[kafka]
		t.Run(name, func(t *testing.T) {
			var k *kafkatest.Cluster
			if kafka {
				k = kafkatest.Start(t)
			}
			syslogKill9Resend(t, bin, k)
		})
	}
}

// carefulLine is line tok of the careful sender: the same bytes every
// time it is sent.
func carefulLine(base time.Time, tok int) string {
	ts := base.Add(time.Duration(tok) * time.Microsecond).Format("2006-01-02T15:04:05.000000Z07:00")
	m := fmt.Sprintf(`<134>1 %s senderbox careful 99 - [crash@32473 run="2"] carefulkill tok%07d resent when unsure`, ts, tok)
	return fmt.Sprintf("%d %s", len(m), m)
}

// streamer sends lines from next on, 2000 a second, until stopped; it
// stops early when a write fails (logbox is gone).
type streamer struct {
	next int
	stop chan struct{}
	done chan struct{}
}

func stream(t *testing.T, addr string, base time.Time, from int) *streamer {
	s := &streamer{next: from, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Errorf("dial syslog: %v", err)
			return
		}
		defer c.Close()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-tick.C:
			}
			var b strings.Builder
			for i := range 20 {
				b.WriteString(carefulLine(base, s.next+i))
			}
			_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.WriteString(c, b.String()); err != nil {
				return // not sure of these either: they are resent
			}
			s.next += 20
		}
	}()
	return s
}

func (s *streamer) end() int {
	close(s.stop)
	<-s.done
	return s.next
}

// send writes lines tok of toks on one connection.
func sendLines(t *testing.T, addr string, base time.Time, toks []int) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial syslog: %v", err)
	}
	defer c.Close()
	var b strings.Builder
	for _, tok := range toks {
		b.WriteString(carefulLine(base, tok))
	}
	_ = c.SetWriteDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(c, b.String()); err != nil {
		t.Fatalf("resend: %v", err)
	}
}

func syslogKill9Resend(t *testing.T, bin string, k *kafkatest.Cluster) {
	work := t.TempDir()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 8))
	addr := fmt.Sprintf("127.0.0.1:%d", freeTCPPort(t))
	args := []string{"--data", "data", "--http", "127.0.0.1:0", "--etcd-listen", "127.0.0.1:0", "--host", "syslogbox", "--syslog-tcp", addr}
	if k != nil {
		args = append(args, "--kafka", strings.Join(k.Brokers, ","),
			"--topic", kafkatest.UniqueName(t, "syslog"), "--kafka-group", kafkatest.UniqueName(t, "syslog"))
	}
	base := time.Now().UTC().Add(-time.Minute).Truncate(time.Second)
	p := startBinary(t, bin, work, args...)
	next, resent := 0, 0
	const kills = 3
	for i := range kills {
		s := stream(t, addr, base, next)
		time.Sleep(time.Duration(800+rng.IntN(1500)) * time.Millisecond)
		seen, _ := allTokens(t, p.url, "carefulkill")
		if err := p.cmd.Process.Kill(); err != nil {
			exit := <-p.done
			p.dumpLog(t, fmt.Sprintf("logbox exited by itself (%v)", exit))
			t.Fatalf("logbox exited by itself before kill %d: %v", i+1, exit)
		}
		<-p.done
		next = s.end()
		p = startBinary(t, bin, work, args...)
		var unsure []int
		for tok := range next {
			if seen[tok] == 0 {
				unsure = append(unsure, tok)
			}
		}
		t.Logf("kill %d: %d lines sent, %d seen before it, %d resent", i+1, next, len(seen), len(unsure))
		sendLines(t, addr, base, unsure)
		resent += len(unsure)
	}
	s := stream(t, addr, base, next)
	time.Sleep(time.Second)
	written := s.end()

	var total uint64
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if total = searchTotal(t, p.url, "carefulkill"); total >= uint64(written) {
			break
		}
	}
	seen, total := allTokens(t, p.url, "carefulkill")
	missing, doubled := countTokens(t, seen, written)
	var retried uint64
	if resp, err := http.Get(p.url + "/api/status"); err == nil {
		var st struct {
			Inputs map[string]struct {
				Retried uint64 `json:"lines_retried"`
			} `json:"inputs"`
		}
		if json.NewDecoder(resp.Body).Decode(&st) == nil {
			retried = st.Inputs["syslog"].Retried
		}
		resp.Body.Close()
	}
	t.Logf("%d kills; %d lines, %d resent, %d of the last resend recognised as held already; %d indexed, %d missing, %d doubled",
		kills, written, resent, retried, total, missing, doubled)
	if missing > 0 || doubled > 0 || total != uint64(written) {
		p.dumpLog(t, "syslog lines lost or doubled")
		t.Fatalf("%d sent, %d indexed: %d missing, %d doubled", written, total, missing, doubled)
	}
	if retried == 0 {
		t.Errorf("no resent line was recognised as held already; the test did not exercise the resend")
	}
}

// TestSyslogBinaryTLSAndUDP: the real binary with --syslog-tls (a
// certificate made here, in PEM files) and --syslog-udp: a Go TLS client's
// octet-counted frames and logger's UDP datagrams are searchable once,
// with the header's fields, and /api/status shows the listener's counters.
func TestSyslogBinaryTLSAndUDP(t *testing.T) {
	if _, err := exec.LookPath("logger"); err != nil {
		t.Skip("logger is not installed (Debian: bsdutils); skipping the syslog binary test")
	}
	bin := buildBinary(t)
	work := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), crand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "logbox-syslog-test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(crand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(work, "cert.pem"), filepath.Join(work, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	tlsAddr := fmt.Sprintf("127.0.0.1:%d", freeTCPPort(t))
	udpConn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	udpAddr := udpConn.LocalAddr().String()
	udpConn.Close()
	p := startBinary(t, bin, work, "--data", "data", "--http", "127.0.0.1:0", "--etcd-listen", "127.0.0.1:0",
		"--syslog-tls", tlsAddr, "--syslog-tls-cert", certFile, "--syslog-tls-key", keyFile, "--syslog-udp", udpAddr)

	leaf, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", tlsAddr, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatalf("TLS dial: %v", err)
	}
	base := time.Now().UTC().Truncate(time.Second)
	var b strings.Builder
	for i := range 300 {
		m := fmt.Sprintf(`<165>1 %s tlsbox tlsapp 7 M1 [ex@32473 k="v"] overtls tok%07d`, base.Add(time.Duration(i)*time.Microsecond).Format("2006-01-02T15:04:05.000000Z07:00"), i)
		fmt.Fprintf(&b, "%d %s", len(m), m)
	}
	if _, err := io.WriteString(c, b.String()); err != nil {
		t.Fatal(err)
	}
	_ = c.Close()
	_, udpPort, _ := net.SplitHostPort(udpAddr)
	lines := make([]string, 100)
	for i := range lines {
		lines[i] = fmt.Sprintf("overudp tok%07d", i)
	}
	cmd := exec.Command("logger", "-n", "127.0.0.1", "-P", udpPort, "-d", "--rfc5424", "-t", "udpapp")
	cmd.Stdin = strings.NewReader(strings.Join(lines, "\n") + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("logger: %v: %s", err, out)
	}
	p.waitTotal(t, "overtls", 300)
	p.waitTotal(t, "overudp", 100)
	for q, want := range map[string]int{"overtls AND app_name:tlsapp AND hostname:tlsbox AND severity:notice AND facility:local4": 300, "overudp AND app_name:udpapp": 100} {
		if got := p.total(t, q); got != want {
			t.Errorf("%s: %d, want %d", q, got, want)
		}
	}
	resp, err := http.Get(p.url + "/api/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st struct {
		Inputs map[string]struct {
			Acked   uint64 `json:"lines_acked"`
			Unacked uint64 `json:"lines_unacked"`
			Detail  struct {
				Conns     uint64 `json:"connections_total"`
				Datagrams uint64 `json:"datagrams"`
			} `json:"detail"`
		} `json:"inputs"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	if s := st.Inputs["syslog"]; s.Acked != 300 || s.Unacked != 100 || s.Detail.Conns != 1 || s.Detail.Datagrams != 100 {
		t.Errorf("syslog status %+v", s)
	}
}
