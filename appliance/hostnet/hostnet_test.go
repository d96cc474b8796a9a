package hostnet

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/logbox/logbox/appliance/pipeline"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// procCopy copies testdata/proc into a temp dir the test may rewrite.
func procCopy(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "net"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"dev", "tcp", "tcp6"} {
		b, err := os.ReadFile(filepath.Join("testdata", "proc", "net", name))
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(root, "net", name), string(b))
	}
	return root
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func byFileID(recs []pipeline.Record) map[string]pipeline.Record {
	m := map[string]pipeline.Record{}
	for _, r := range recs {
		m[r.FileID] = r
	}
	return m
}

var fieldName = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]{0,63}$`)

func TestParseNetDev(t *testing.T) {
	f, err := os.Open("testdata/proc/net/dev")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := ParseNetDev(f)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].Name != "lo" || got[1].Name != "eth0" || got[2].Name != "docker0" {
		t.Fatalf("interfaces: %+v", got)
	}
	eth := got[1]
	want := IfaceStats{Name: "eth0", RxBytes: 9871234567, RxPackets: 8123456, RxErrs: 12, RxDrop: 37, RxFifo: 2, RxFrame: 1, RxMulticast: 4521,
		TxBytes: 1234567890, TxPackets: 3456789, TxDrop: 5}
	if eth != want {
		t.Fatalf("eth0:\n got %+v\nwant %+v", eth, want)
	}
	if got[2].TxBytes != 1296 || got[2].TxPackets != 16 {
		t.Fatalf("docker0: %+v", got[2])
	}
}

func TestParseTCP(t *testing.T) {
	counts := TCPCounts{}
	for _, name := range []string{"tcp", "tcp6"} {
		f, err := os.Open("testdata/proc/net/" + name)
		if err != nil {
			t.Fatal(err)
		}
		err = ParseTCP(f, counts)
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	want := TCPCounts{"LISTEN": 3, "ESTABLISHED": 3, "TIME_WAIT": 3, "SYN_SENT": 1, "CLOSE_WAIT": 1, "FIN_WAIT1": 1, "CLOSING": 1}
	if len(counts) != len(want) {
		t.Fatalf("counts %v, want %v", counts, want)
	}
	for k, v := range want {
		if counts[k] != v {
			t.Fatalf("counts %v, want %v", counts, want)
		}
	}
}

func TestMalformed(t *testing.T) {
	devHeader := "Inter-|   Receive |  Transmit\n face |bytes packets|bytes packets\n"
	tcpHeader := "  sl  local_address rem_address   st tx_queue rx_queue\n"
	f := func(name, kind, content string) {
		t.Helper()
		var err error
		func() {
			defer func() {
				if p := recover(); p != nil {
					t.Fatalf("%s: panic %v", name, p)
				}
			}()
			if kind == "dev" {
				_, err = ParseNetDev(strings.NewReader(content))
			} else {
				err = ParseTCP(strings.NewReader(content), TCPCounts{})
			}
		}()
		if err == nil {
			t.Fatalf("%s: no error for %q", name, content)
		}
	}
	f("dev empty", "dev", "")
	f("dev no header", "dev", "  eth0: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n")
	f("dev short", "dev", devHeader+"  eth0: 1 2 3\n")
	f("dev no colon", "dev", devHeader+"  eth0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n")
	f("dev not a number", "dev", devHeader+"  eth0: 1 2 x 4 5 6 7 8 9 10 11 12 13 14 15 16\n")
	f("dev negative", "dev", devHeader+"  eth0: 1 2 -3 4 5 6 7 8 9 10 11 12 13 14 15 16\n")
	f("dev empty name", "dev", devHeader+"  : 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n")
	f("tcp empty", "tcp", "")
	f("tcp no header", "tcp", "   0: 0100007F:0CEA 00000000:0000 0A 00000000:00000000\n")
	f("tcp short", "tcp", tcpHeader+"   0: 0100007F:0CEA\n")
	f("tcp bad state", "tcp", tcpHeader+"   0: 0100007F:0CEA 00000000:0000 ZZ 00000000:00000000\n")
	f("tcp state too big", "tcp", tcpHeader+"   0: 0100007F:0CEA 00000000:0000 1FF 00000000:00000000\n")
	f("tcp garbage", "tcp", tcpHeader+"hello world this is not proc\n")

	// Through Sample: the error names the file; the readable file's records
	// are still returned.
	root := procCopy(t)
	writeFile(t, filepath.Join(root, "net", "dev"), "garbage\n")
	recs, err := New(Config{Host: "h", ProcRoot: root}, nil, quiet()).Sample(time.Now())
	if err == nil || !strings.Contains(err.Error(), filepath.Join(root, "net", "dev")) {
		t.Fatalf("Sample error %v, want one naming net/dev", err)
	}
	if len(recs) != 1 || recs[0].Source != SourceTCP {
		t.Fatalf("records %+v, want only the tcp one", recs)
	}
	// A missing tcp6 (IPv6 off) is fine; a missing tcp is not.
	root = procCopy(t)
	os.Remove(filepath.Join(root, "net", "tcp6"))
	if _, err := New(Config{Host: "h", ProcRoot: root}, nil, quiet()).Sample(time.Now()); err != nil {
		t.Fatalf("without tcp6: %v", err)
	}
	os.Remove(filepath.Join(root, "net", "tcp"))
	if _, err := New(Config{Host: "h", ProcRoot: root}, nil, quiet()).Sample(time.Now()); err == nil {
		t.Fatal("without tcp: no error")
	}
}

func TestSampleRecordsAndDeltas(t *testing.T) {
	root := procCopy(t)
	s := New(Config{Host: "web1", ProcRoot: root, Topic: "net"}, nil, quiet())
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	recs, err := s.Sample(t0)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 4 {
		t.Fatalf("%d records, want 3 interfaces + tcp", len(recs))
	}
	for _, r := range recs {
		if !r.TS.Equal(t0) || r.Host != "web1" || r.SourceName != "hostnet" || r.Offset != t0.UnixMicro() || r.Topic != "net" {
			t.Fatalf("record stamps: %+v", r)
		}
		for k := range r.Fields {
			if !fieldName.MatchString(k) {
				t.Fatalf("field name %q does not match %s", k, fieldName)
			}
		}
	}
	m := byFileID(recs)
	eth, ok := m["hostnet-dev-eth0"]
	if !ok || eth.Source != SourceDev {
		t.Fatalf("no eth0 record: %v", m)
	}
	if eth.Fields["iface"] != "eth0" || eth.Fields["rx_drop"] != "37" || eth.Fields["tx_drop"] != "5" || eth.Fields["rx_bytes"] != "9871234567" {
		t.Fatalf("eth0 fields: %v", eth.Fields)
	}
	if _, ok := eth.Fields["delta_rx_drop"]; ok || strings.Contains(eth.Line, "delta_") {
		t.Fatalf("first sample has deltas: %q", eth.Line)
	}
	if !strings.HasPrefix(eth.Line, "iface=eth0 rx_bytes=9871234567 rx_packets=8123456 rx_errs=12 rx_drop=37 rx_fifo=2 ") {
		t.Fatalf("eth0 line: %q", eth.Line)
	}
	tcp := m["hostnet-tcp-all"]
	if tcp.Source != SourceTCP {
		t.Fatalf("no tcp record: %v", m)
	}
	wantTCP := map[string]string{"tcp_total": "13", "tcp_established": "3", "tcp_listen": "3", "tcp_time_wait": "3", "tcp_syn_sent": "1",
		"tcp_syn_recv": "0", "tcp_fin_wait1": "1", "tcp_fin_wait2": "0", "tcp_close": "0", "tcp_close_wait": "1", "tcp_last_ack": "0", "tcp_closing": "1"}
	for k, v := range wantTCP {
		if tcp.Fields[k] != v {
			t.Fatalf("tcp field %s = %q, want %q (all: %v)", k, tcp.Fields[k], v, tcp.Fields)
		}
	}
	if len(tcp.Fields) != len(wantTCP) || !strings.Contains(tcp.Line, "tcp_time_wait=3") {
		t.Fatalf("tcp record: %q %v", tcp.Line, tcp.Fields)
	}

	// Second sample: eth0 dropped 3 more packets and saw 1 more error; lo
	// was re-created (its counters went back); docker0 is gone.
	writeFile(t, filepath.Join(root, "net", "dev"), `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     100       1    0    0    0     0          0         0      100       1    0    0    0     0       0          0
  eth0: 9871244567 8123556   13   40    2     1          0      4521 1234568890 3456799    0    5    0     0       0          0
`)
	t1 := t0.Add(10 * time.Second)
	recs, err = s.Sample(t1)
	if err != nil {
		t.Fatal(err)
	}
	m = byFileID(recs)
	if len(recs) != 3 {
		t.Fatalf("second sample: %d records: %v", len(recs), m)
	}
	eth = m["hostnet-dev-eth0"]
	wantDelta := map[string]string{"delta_ms": "10000", "delta_rx_drop": "3", "delta_rx_errs": "1", "delta_rx_bytes": "10000",
		"delta_rx_packets": "100", "delta_tx_bytes": "1000", "delta_tx_packets": "10", "delta_tx_drop": "0", "delta_rx_fifo": "0"}
	for k, v := range wantDelta {
		if eth.Fields[k] != v {
			t.Fatalf("eth0 %s = %q, want %q (all: %v)", k, eth.Fields[k], v, eth.Fields)
		}
		if !strings.Contains(eth.Line, " "+k+"="+v) {
			t.Fatalf("eth0 line lacks %s=%s: %q", k, v, eth.Line)
		}
	}
	if !strings.HasPrefix(eth.Line, "WARN iface=eth0 ") {
		t.Fatalf("new drops should make the line a warning: %q", eth.Line)
	}
	if _, ok := eth.Fields["alert"]; ok {
		t.Fatal("alert marker leaked into fields")
	}
	if eth.Offset != t1.UnixMicro() {
		t.Fatalf("offset %d, want %d", eth.Offset, t1.UnixMicro())
	}
	lo := m["hostnet-dev-lo"]
	if lo.Fields["counters_reset"] != "true" || lo.Fields["delta_rx_bytes"] != "" || strings.HasPrefix(lo.Line, "WARN") {
		t.Fatalf("lo after reset: %q", lo.Line)
	}

	// Third sample, no change: deltas are zero, no warning.
	recs, _ = s.Sample(t1.Add(10 * time.Second))
	eth = byFileID(recs)["hostnet-dev-eth0"]
	if eth.Fields["delta_rx_drop"] != "0" || strings.HasPrefix(eth.Line, "WARN") {
		t.Fatalf("unchanged sample: %q", eth.Line)
	}
	// A clock stepped back still gives new, increasing offsets.
	before := eth.Offset
	recs, _ = s.Sample(t0)
	if recs[0].Offset <= before {
		t.Fatalf("offset went back: %d after %d", recs[0].Offset, before)
	}
}

// collect is a slice-backed pipeline.Sink that acks what it gets.
type collect struct {
	mu      sync.Mutex
	batches []*pipeline.Batch
	got     chan struct{}
}

func (c *collect) Publish(ctx context.Context, b *pipeline.Batch) error {
	c.mu.Lock()
	c.batches = append(c.batches, b)
	c.mu.Unlock()
	b.Ack()
	select {
	case c.got <- struct{}{}:
	default:
	}
	return nil
}

func (c *collect) n() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.batches)
}

func TestRun(t *testing.T) {
	root := procCopy(t)
	sink := &collect{got: make(chan struct{}, 1)}
	s := New(Config{Host: "h", ProcRoot: root, Interval: 50 * time.Millisecond}, sink, quiet())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- s.Run(ctx) }()
	deadline := time.After(10 * time.Second)
	for sink.n() < 4 {
		select {
		case <-sink.got:
		case <-deadline:
			t.Fatalf("%d batches after 10s", sink.n())
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not stop on ctx")
	}
	elapsed := time.Since(start)
	n := sink.n()
	// One batch right away, then one per interval: never more.
	if limit := int(elapsed/(50*time.Millisecond)) + 1; n > limit {
		t.Fatalf("%d batches in %v at 50ms, want at most %d", n, elapsed, limit)
	}
	time.Sleep(120 * time.Millisecond)
	if sink.n() != n {
		t.Fatal("published after Run returned")
	}
	seen := map[string]bool{}
	sink.mu.Lock()
	for _, b := range sink.batches {
		if len(b.Records) != 4 {
			t.Errorf("batch of %d records, want 4", len(b.Records))
		}
		for _, r := range b.Records {
			if seen[r.ID()] {
				t.Errorf("duplicate id %s", r.ID())
			}
			seen[r.ID()] = true
		}
	}
	sink.mu.Unlock()
	if st := s.Stats(); st.Samples != uint64(n) || st.Acked != uint64(n) || st.Errors != 0 {
		t.Fatalf("stats %+v, want %d samples and acks", st, n)
	}
}

// TestRunKeepsGoingOnBadFile: an unreadable sample is counted and skipped;
// sampling goes on and recovers when the file is good again.
func TestRunKeepsGoingOnBadFile(t *testing.T) {
	root := procCopy(t)
	good, _ := os.ReadFile(filepath.Join(root, "net", "tcp"))
	writeFile(t, filepath.Join(root, "net", "tcp"), "nonsense\n")
	sink := &collect{got: make(chan struct{}, 1)}
	s := New(Config{Host: "h", ProcRoot: root, Interval: 20 * time.Millisecond}, sink, quiet())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	for s.Stats().Errors < 2 && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
	writeFile(t, filepath.Join(root, "net", "tcp"), string(good))
	for {
		sink.mu.Lock()
		last := sink.batches[len(sink.batches)-1]
		sink.mu.Unlock()
		if len(last.Records) == 4 {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("never recovered")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestRealProc reads this machine's /proc.
func TestRealProc(t *testing.T) {
	if _, err := os.Stat("/proc/net/dev"); err != nil {
		t.Skip("no /proc/net/dev here")
	}
	recs, err := New(Config{Host: "me"}, nil, quiet()).Sample(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	m := byFileID(recs)
	if lo, ok := m["hostnet-dev-lo"]; !ok || lo.Fields["iface"] != "lo" {
		t.Fatalf("no lo record among %d", len(recs))
	}
	if _, ok := m["hostnet-tcp-all"]; !ok {
		t.Fatal("no tcp record")
	}
}
