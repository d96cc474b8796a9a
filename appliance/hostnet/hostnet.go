// Package hostnet is an optional built-in source that samples the host's
// network health (/proc/net/dev and /proc/net/tcp, /proc/net/tcp6) every
// interval and turns each sample into records, so packet loss and socket
// pile-ups can be searched next to the logs.
//
// Each sample yields one record per interface (Source
// "hostnet:/proc/net/dev") and one record with the count of TCP sockets per
// state (Source "hostnet:/proc/net/tcp"), published together as one
// pipeline.Batch. A record's Offset is the sample time in unix microseconds,
// strictly increasing per Sampler, so every sample has its own IDs and a
// replay of the same sample overwrites itself. (Microseconds, not
// nanoseconds: offsets travel as JSON numbers and are stored by Bleve as
// float64, exact only up to 2^53; today's unix nanoseconds are above that
// and would come back rounded.)
package hostnet

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/logbox/logbox/appliance/pipeline"
)

// Sources and the name stamped on hostnet records.
const (
	SourceName = "hostnet"
	SourceDev  = "hostnet:/proc/net/dev"
	SourceTCP  = "hostnet:/proc/net/tcp"
)

// DefaultInterval is used when Config.Interval is not positive.
const DefaultInterval = 10 * time.Second

// Config says what to sample and how to stamp it.
type Config struct {
	// Host is stamped on every record (the process's --host).
	Host string
	// Interval between samples; DefaultInterval when not positive.
	Interval time.Duration
	// ProcRoot is where proc is mounted; "/proc" when empty. Tests point it
	// at a fixture tree holding net/dev, net/tcp and net/tcp6.
	ProcRoot string
	// Topic is the Kafka topic of the records; empty means the default.
	Topic string
}

// Sampler turns /proc/net counters into records. Its methods are not safe
// for concurrent use, except Stats.
type Sampler struct {
	cfg  Config
	sink pipeline.Sink
	log  *slog.Logger

	prev       map[string]IfaceStats // last sample per interface, for deltas
	prevTS     time.Time
	lastOffset int64

	samples atomic.Uint64
	acked   atomic.Uint64
	errs    atomic.Uint64
}

// Stats counts what a Sampler did.
type Stats struct {
	Samples uint64 `json:"samples"` // batches published
	Acked   uint64 `json:"acked"`   // batches acked downstream
	Errors  uint64 `json:"errors"`  // samples that could not be read (in full)
}

// New returns a sampler that publishes to sink. It starts nothing.
func New(cfg Config, sink pipeline.Sink, log *slog.Logger) *Sampler {
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.ProcRoot == "" {
		cfg.ProcRoot = "/proc"
	}
	return &Sampler{cfg: cfg, sink: sink, log: log.With("component", "hostnet")}
}

// Stats returns counters; safe to call at any time.
func (s *Sampler) Stats() Stats {
	return Stats{Samples: s.samples.Load(), Acked: s.acked.Load(), Errors: s.errs.Load()}
}

// Run samples once right away and then every Interval until ctx is done,
// publishing each sample as one batch. It waits for no ack: a sample that
// is lost in a crash is simply not there (the next one is). A sample that
// cannot be read is logged (once per distinct error) and skipped; Run
// returns nil when ctx ends and never returns another error. A Publish
// that blocks (backpressure) delays the next sample; missed ticks are
// dropped, not queued.
func (s *Sampler) Run(ctx context.Context) error {
	tick := time.NewTicker(s.cfg.Interval)
	defer tick.Stop()
	lastErr := ""
	for {
		recs, err := s.Sample(time.Now())
		if err != nil {
			s.errs.Add(1)
			if err.Error() != lastErr {
				s.log.Warn("network sample incomplete; hostnet records miss these counters until it reads again; check that proc is mounted and readable", "path", s.cfg.ProcRoot, "err", err)
			}
			lastErr = err.Error()
		} else {
			lastErr = ""
		}
		if len(recs) > 0 {
			b := pipeline.NewBatch(recs, func() { s.acked.Add(1) })
			if perr := s.sink.Publish(ctx, b); perr != nil {
				return nil // only ctx's error: we are stopping
			}
			s.samples.Add(1)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// Sample reads the counters once and returns their records stamped with
// now. Deltas are taken against the previous successful Sample. When a
// file cannot be read or parsed, the records of the other file are still
// returned, together with the error.
func (s *Sampler) Sample(now time.Time) ([]pipeline.Record, error) {
	off := now.UnixMicro()
	if off <= s.lastOffset { // clock stepped back, or two samples in one µs
		off = s.lastOffset + 1
	}
	s.lastOffset = off

	var recs []pipeline.Record
	var errs []error

	ifaces, err := readNetDev(filepath.Join(s.cfg.ProcRoot, "net", "dev"))
	if err != nil {
		errs = append(errs, err)
	} else {
		var elapsed time.Duration
		if s.prev != nil {
			elapsed = now.Sub(s.prevTS)
		}
		cur := make(map[string]IfaceStats, len(ifaces))
		for _, st := range ifaces {
			cur[st.Name] = st
			var prev *IfaceStats
			if p, ok := s.prev[st.Name]; ok {
				prev = &p
			}
			recs = append(recs, s.record(now, off, "dev", st.Name, SourceDev, devPairs(st, prev, elapsed)))
		}
		s.prev, s.prevTS = cur, now
	}

	tcp, err := readTCP(s.cfg.ProcRoot)
	if err != nil {
		errs = append(errs, err)
	} else {
		recs = append(recs, s.record(now, off, "tcp", "all", SourceTCP, tcpPairs(tcp)))
	}
	return recs, errors.Join(errs...)
}

// pair is one key=value of a record, kept in order for the line.
type pair struct {
	k, v string
}

func (s *Sampler) record(now time.Time, off int64, kind, name, source string, kv []pair) pipeline.Record {
	fields := make(map[string]string, len(kv))
	var b strings.Builder
	// A sample with new drops or errors says WARN up front, so the index
	// gives it level WARN and it shows up with the logs' warnings.
	for _, p := range kv {
		if p.k == "alert" {
			b.WriteString("WARN ")
			break
		}
	}
	first := true
	for _, p := range kv {
		if p.k == "alert" {
			continue
		}
		fields[p.k] = p.v
		if !first {
			b.WriteByte(' ')
		}
		first = false
		b.WriteString(p.k)
		b.WriteByte('=')
		b.WriteString(p.v)
	}
	return pipeline.Record{
		TS:         now,
		Host:       s.cfg.Host,
		Source:     source,
		SourceName: SourceName,
		FileID:     "hostnet-" + kind + "-" + name,
		Offset:     off,
		Line:       b.String(),
		Fields:     fields,
		Topic:      s.cfg.Topic,
	}
}

// IfaceStats are one interface's counters from /proc/net/dev.
type IfaceStats struct {
	Name string
	// Receive side; RxFifo counts FIFO overruns.
	RxBytes, RxPackets, RxErrs, RxDrop, RxFifo, RxFrame, RxCompressed, RxMulticast uint64
	// Transmit side.
	TxBytes, TxPackets, TxErrs, TxDrop, TxFifo, TxColls, TxCarrier, TxCompressed uint64
}

// counters lists the counters that go into records, in line order, with
// their field names.
func (st *IfaceStats) counters() []struct {
	name string
	v    uint64
} {
	return []struct {
		name string
		v    uint64
	}{
		{"rx_bytes", st.RxBytes}, {"rx_packets", st.RxPackets}, {"rx_errs", st.RxErrs},
		{"rx_drop", st.RxDrop}, {"rx_fifo", st.RxFifo}, {"rx_frame", st.RxFrame},
		{"tx_bytes", st.TxBytes}, {"tx_packets", st.TxPackets}, {"tx_errs", st.TxErrs},
		{"tx_drop", st.TxDrop}, {"tx_fifo", st.TxFifo}, {"tx_colls", st.TxColls},
		{"tx_carrier", st.TxCarrier},
	}
}

// devPairs renders an interface's counters and, when prev is known and no
// counter went backwards (a reset: the interface was re-created), the
// deltas since prev.
func devPairs(st IfaceStats, prev *IfaceStats, elapsed time.Duration) []pair {
	kv := []pair{{"iface", st.Name}}
	cur := st.counters()
	for _, c := range cur {
		kv = append(kv, pair{c.name, strconv.FormatUint(c.v, 10)})
	}
	if prev == nil {
		return kv
	}
	old := prev.counters()
	for i := range cur {
		if cur[i].v < old[i].v {
			return append(kv, pair{"counters_reset", "true"})
		}
	}
	kv = append(kv, pair{"delta_ms", strconv.FormatInt(elapsed.Milliseconds(), 10)})
	alert := false
	for i, c := range cur {
		d := c.v - old[i].v
		kv = append(kv, pair{"delta_" + c.name, strconv.FormatUint(d, 10)})
		switch c.name {
		case "rx_errs", "rx_drop", "rx_fifo", "tx_errs", "tx_drop", "tx_fifo":
			alert = alert || d > 0
		}
	}
	if alert {
		kv = append(kv, pair{"alert", ""})
	}
	return kv
}

func readNetDev(path string) ([]IfaceStats, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open %q: %w", path, err)
	}
	defer f.Close()
	st, err := ParseNetDev(f)
	if err != nil {
		return nil, fmt.Errorf("parse %q: %w", path, err)
	}
	return st, nil
}

// ParseNetDev parses the format of /proc/net/dev: two header lines, then
// one line per interface, "name: " and 16 counters (8 receive, 8 transmit).
func ParseNetDev(r io.Reader) ([]IfaceStats, error) {
	sc := bufio.NewScanner(r)
	var out []IfaceStats
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if n <= 2 {
			if !strings.Contains(line, "|") {
				return nil, fmt.Errorf("line %d: not a /proc/net/dev header: %q", n, line)
			}
			continue
		}
		if strings.TrimSpace(line) == "" {
			continue
		}
		// Numbers never hold ':', so the last one ends the name (which may
		// touch the first number on old kernels: "eth0:1234").
		i := strings.LastIndexByte(line, ':')
		if i < 0 {
			return nil, fmt.Errorf("line %d: no interface name: %q", n, line)
		}
		name := strings.TrimSpace(line[:i])
		nums := strings.Fields(line[i+1:])
		if name == "" || len(nums) < 16 {
			return nil, fmt.Errorf("line %d: want a name and 16 counters: %q", n, line)
		}
		var v [16]uint64
		for j := range v {
			var err error
			if v[j], err = strconv.ParseUint(nums[j], 10, 64); err != nil {
				return nil, fmt.Errorf("line %d, counter %d: %w", n, j+1, err)
			}
		}
		out = append(out, IfaceStats{
			Name:    name,
			RxBytes: v[0], RxPackets: v[1], RxErrs: v[2], RxDrop: v[3], RxFifo: v[4], RxFrame: v[5], RxCompressed: v[6], RxMulticast: v[7],
			TxBytes: v[8], TxPackets: v[9], TxErrs: v[10], TxDrop: v[11], TxFifo: v[12], TxColls: v[13], TxCarrier: v[14], TxCompressed: v[15],
		})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if n < 2 {
		return nil, errors.New("missing /proc/net/dev header")
	}
	return out, nil
}

// TCPStates is the kernel's TCP state names by their /proc/net/tcp number.
var TCPStates = map[uint64]string{
	0x01: "ESTABLISHED", 0x02: "SYN_SENT", 0x03: "SYN_RECV", 0x04: "FIN_WAIT1",
	0x05: "FIN_WAIT2", 0x06: "TIME_WAIT", 0x07: "CLOSE", 0x08: "CLOSE_WAIT",
	0x09: "LAST_ACK", 0x0A: "LISTEN", 0x0B: "CLOSING",
}

// TCPCounts maps a state name (see TCPStates; "OTHER" for a number it does
// not name) to how many sockets are in it.
type TCPCounts map[string]uint64

// ParseTCP adds the sockets listed in r, in the format of /proc/net/tcp
// or /proc/net/tcp6, to counts.
func ParseTCP(r io.Reader, counts TCPCounts) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		f := strings.Fields(sc.Text())
		if n == 1 {
			if len(f) < 4 || f[0] != "sl" || f[3] != "st" {
				return fmt.Errorf("line 1: not a /proc/net/tcp header: %q", sc.Text())
			}
			continue
		}
		if len(f) == 0 {
			continue
		}
		if len(f) < 4 || !strings.HasSuffix(f[0], ":") || !strings.Contains(f[1], ":") || !strings.Contains(f[2], ":") {
			return fmt.Errorf("line %d: not a socket entry: %q", n, sc.Text())
		}
		st, err := strconv.ParseUint(f[3], 16, 8)
		if err != nil {
			return fmt.Errorf("line %d: state %q: %w", n, f[3], err)
		}
		name, ok := TCPStates[st]
		if !ok {
			name = "OTHER"
		}
		counts[name]++
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if n == 0 {
		return errors.New("empty file: missing header")
	}
	return nil
}

// readTCP counts sockets of tcp and tcp6; tcp6 may be missing (IPv6 off).
func readTCP(root string) (TCPCounts, error) {
	counts := TCPCounts{}
	for _, name := range []string{"tcp", "tcp6"} {
		path := filepath.Join(root, "net", name)
		f, err := os.Open(path)
		if err != nil {
			if name == "tcp6" && errors.Is(err, os.ErrNotExist) {
				continue
			}
			return nil, fmt.Errorf("open %q: %w", path, err)
		}
		err = ParseTCP(f, counts)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("parse %q: %w", path, err)
		}
	}
	return counts, nil
}

// tcpPairs renders every state, zeros included, so a query like
// fields.tcp_syn_recv:0 works, then OTHER if any.
func tcpPairs(c TCPCounts) []pair {
	nums := make([]uint64, 0, len(TCPStates))
	for k := range TCPStates {
		nums = append(nums, k)
	}
	sort.Slice(nums, func(i, j int) bool { return nums[i] < nums[j] })
	var total uint64
	kv := make([]pair, 0, len(nums)+2)
	for _, k := range nums {
		name := TCPStates[k]
		total += c[name]
		kv = append(kv, pair{"tcp_" + strings.ToLower(name), strconv.FormatUint(c[name], 10)})
	}
	if c["OTHER"] > 0 {
		total += c["OTHER"]
		kv = append(kv, pair{"tcp_other", strconv.FormatUint(c["OTHER"], 10)})
	}
	return append([]pair{{"tcp_total", strconv.FormatUint(total, 10)}}, kv...)
}
