package kafkain_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/logbox/logbox/appliance/kafkain"
	"github.com/logbox/logbox/appliance/kafkatest"
	"github.com/logbox/logbox/appliance/pipeline"
)

// countIndex is an in-memory Indexer that keeps each record by ID and
// counts how often each was handed to it, to tell "held once" from
// "written twice and deduplicated".
type countIndex struct {
	mu    sync.Mutex
	recs  map[string]pipeline.Record
	times map[string]int
}

func newCountIndex() *countIndex {
	return &countIndex{recs: map[string]pipeline.Record{}, times: map[string]int{}}
}

func (x *countIndex) Index(ctx context.Context, recs []pipeline.Record) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, r := range recs {
		x.recs[r.ID()] = r
		x.times[r.ID()]++
	}
	return nil
}

func (x *countIndex) snapshot() (map[string]pipeline.Record, map[string]int) {
	x.mu.Lock()
	defer x.mu.Unlock()
	recs, times := make(map[string]pipeline.Record, len(x.recs)), make(map[string]int, len(x.times))
	for k, v := range x.recs {
		recs[k] = v
	}
	for k, v := range x.times {
		times[k] = v
	}
	return recs, times
}

// waitLen waits until the index holds n distinct records.
func (x *countIndex) waitLen(t *testing.T, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		recs, _ := x.snapshot()
		if len(recs) >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("index holds %d records after %v, want %d", len(recs), timeout, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// sent is a record produced to a known partition.
type sent struct {
	rec  pipeline.Record
	part string
}

// produceSpread writes events run/from.. to topic, record i to partition
// i % partitions, and returns them with their partitions.
func produceSpread(t *testing.T, brokers []string, topic string, partitions int32, run string, from, n int) []sent {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatalf("kgo client: %v", err)
	}
	defer cl.Close()
	recs, _, vals := events(run, from, n)
	out := make([]sent, n)
	krecs := make([]*kgo.Record, n)
	for i := range n {
		p := int32(i+from) % partitions
		krecs[i] = &kgo.Record{Value: vals[i], Partition: p}
		out[i] = sent{recs[i], pipeline.PartName(topic, p)}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, krecs...).FirstErr(); err != nil {
		t.Fatalf("produce to %q: %v", topic, err)
	}
	return out
}

// fullCoverage is [0, high-water mark) of every non-empty partition.
func fullCoverage(topic string, hwm map[int32]int64) pipeline.Coverage {
	want := pipeline.Coverage{}
	for p, h := range hwm {
		want.Add(pipeline.PartName(topic, p), 0, h)
	}
	return want
}

// waitCoverage waits until c's coverage is want.
func waitCoverage(t *testing.T, c *kafkain.Consumer, want pipeline.Coverage, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := c.Coverage()
		if reflect.DeepEqual(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("coverage %v after %v, want %v", got, timeout, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// readCoverageFile parses the consumer's coverage file as the fleet
// would read a member's coverage.
func readCoverageFile(t *testing.T, path string) pipeline.Coverage {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read coverage file: %v", err)
	}
	var f struct {
		Version  int               `json:"version"`
		Coverage pipeline.Coverage `json:"coverage"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatalf("coverage file %s: %v", b, err)
	}
	if f.Version != 1 {
		t.Errorf("coverage file version %d", f.Version)
	}
	return f.Coverage
}

// checkHeldOnce checks that idx holds exactly want, each record handed to
// it once, with the partition it was produced to as its Part.
func checkHeldOnce(t *testing.T, idx *countIndex, want []sent) {
	t.Helper()
	recs, times := idx.snapshot()
	if len(recs) != len(want) {
		t.Errorf("index holds %d records, want %d", len(recs), len(want))
	}
	for _, w := range want {
		id := w.rec.ID()
		r, ok := recs[id]
		switch {
		case !ok:
			t.Errorf("record %q not indexed", w.rec.Line)
		case times[id] != 1:
			t.Errorf("record %q handed to the index %d times, want once", w.rec.Line, times[id])
		case r.Part != w.part || r.Line != w.rec.Line:
			t.Errorf("record %q: Part %q, line %q; want Part %q", w.rec.Line, r.Part, r.Line, w.part)
		}
	}
}

// TestPartAndCoverage: every record read carries its partition as Part;
// the coverage of a consumer that read a 2-partition topic is [0, high-
// water mark) of each, it is written to the coverage file while the
// consumer runs, and Assigned names both partitions while it runs and
// none once it stopped. A new group starts at the beginning: no gap, no
// fill.
func TestPartAndCoverage(t *testing.T) {
	cluster := kafkatest.Start(t)
	topic := kafkatest.UniqueName(t, "logs")
	group := kafkatest.UniqueName(t, "group")
	createTopic(t, cluster.Brokers, topic, 2)
	const n = 500
	want := produceSpread(t, cluster.Brokers, topic, 2, "pc", 0, n)

	file := filepath.Join(t.TempDir(), "coverage.json")
	cfg := kafkain.Config{Brokers: cluster.Brokers, Topics: []string{topic}, Group: group, BatchSize: 40,
		FlushInterval: 20 * time.Millisecond, CoverageFile: file, FillGaps: true}
	idx := newCountIndex()
	c := kafkain.New(cfg, writerFor(t, idx), testLogger(t))
	stop := runConsumer(t, c)
	idx.waitLen(t, n, 30*time.Second)
	waitCommitted(t, cluster.Brokers, group, topic, 10*time.Second)
	_, hwm := offsets(t, cluster.Brokers, group, topic)
	if hwm[0]+hwm[1] != n || hwm[0] == 0 || hwm[1] == 0 {
		t.Fatalf("high-water marks %v for %d records on 2 partitions", hwm, n)
	}
	full := fullCoverage(topic, hwm)
	waitCoverage(t, c, full, 5*time.Second)
	checkHeldOnce(t, idx, want)
	if got, wantParts := c.Assigned(), []string{topic + "/0", topic + "/1"}; !slices.Equal(got, wantParts) {
		t.Errorf("assigned %v, want %v", got, wantParts)
	}

	// Written while running (about once a second), not only at stop.
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := os.Stat(file); err == nil {
			if got := readCoverageFile(t, file); reflect.DeepEqual(got, full) {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("coverage file not written with %v within 5s", full)
		}
		time.Sleep(50 * time.Millisecond)
	}
	st := c.Stats()
	if st.FilledLines != 0 || len(st.Filling) != 0 {
		t.Errorf("a new group filled: %+v", st)
	}
	stop()
	if a := c.Assigned(); len(a) != 0 {
		t.Errorf("assigned %v after stop", a)
	}
}

// TestCoverageSurvivesRestart: a consumer restarted with its coverage
// file knows what it read before the restart: its coverage is loaded,
// the new lines extend it, and the gap filler (on) reads nothing again.
// A corrupt coverage file is reported and coverage starts empty.
func TestCoverageSurvivesRestart(t *testing.T) {
	cluster := kafkatest.Start(t)
	topic := kafkatest.UniqueName(t, "logs")
	group := kafkatest.UniqueName(t, "group")
	createTopic(t, cluster.Brokers, topic, 2)
	const n, m = 300, 60
	produceSpread(t, cluster.Brokers, topic, 2, "rs", 0, n)

	file := filepath.Join(t.TempDir(), "coverage.json")
	cfg := kafkain.Config{Brokers: cluster.Brokers, Topics: []string{topic}, Group: group, BatchSize: 40,
		FlushInterval: 20 * time.Millisecond, CoverageFile: file, FillGaps: true}
	c1 := kafkain.New(cfg, writerFor(t, newCountIndex()), testLogger(t))
	stop1 := runConsumer(t, c1)
	waitCommitted(t, cluster.Brokers, group, topic, 30*time.Second)
	_, hwm := offsets(t, cluster.Brokers, group, topic)
	waitCoverage(t, c1, fullCoverage(topic, hwm), 5*time.Second)
	stop1()
	if got := readCoverageFile(t, file); !reflect.DeepEqual(got, fullCoverage(topic, hwm)) {
		t.Fatalf("coverage file after stop %v, want %v", got, fullCoverage(topic, hwm))
	}

	// The same index (it holds the first n), restarted.
	idx := newCountIndex()
	c2 := kafkain.New(cfg, writerFor(t, idx), testLogger(t))
	stop2 := runConsumer(t, c2)
	waitCoverage(t, c2, fullCoverage(topic, hwm), 5*time.Second)
	more := produceSpread(t, cluster.Brokers, topic, 2, "rs", n, m)
	idx.waitLen(t, m, 30*time.Second)
	waitCommitted(t, cluster.Brokers, group, topic, 10*time.Second)
	_, hwm2 := offsets(t, cluster.Brokers, group, topic)
	waitCoverage(t, c2, fullCoverage(topic, hwm2), 5*time.Second)
	// Nothing from before the restart was read again.
	time.Sleep(500 * time.Millisecond)
	checkHeldOnce(t, idx, more)
	if st := c2.Stats(); st.FilledLines != 0 {
		t.Errorf("the restarted consumer filled %d lines it held", st.FilledLines)
	}
	stop2()
	if got := readCoverageFile(t, file); !reflect.DeepEqual(got, fullCoverage(topic, hwm2)) {
		t.Errorf("coverage file after the second stop %v, want %v", got, fullCoverage(topic, hwm2))
	}

	// A corrupt file: a warning, and coverage starts empty (the filler
	// is off: only what is read now is covered).
	if err := os.WriteFile(file, []byte(`{"version":1,"coverage":{"x/0":[[5,`), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	cfg.FillGaps = false
	c3 := kafkain.New(cfg, writerFor(t, newCountIndex()), log)
	stop3 := runConsumer(t, c3)
	produceSpread(t, cluster.Brokers, topic, 2, "rs", n+m, 2)
	_, hwm3 := offsets(t, cluster.Brokers, group, topic)
	want := pipeline.Coverage{}
	for p := range hwm3 {
		want.Add(pipeline.PartName(topic, p), hwm2[p], hwm3[p])
	}
	waitCoverage(t, c3, want, 30*time.Second)
	stop3()
	if !strings.Contains(logs.String(), "kafka coverage file unreadable") {
		t.Errorf("no warning about the corrupt coverage file in:\n%s", logs.String())
	}
	if got := readCoverageFile(t, file); !reflect.DeepEqual(got, want) {
		t.Errorf("coverage file rewritten as %v, want %v", got, want)
	}
}

// syncBuffer is a bytes.Buffer safe for the logger's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// gapSetup produces n lines to a topic of the given partitions and has
// consumer 1 of a new group index and commit them all, then stop; it
// returns the topic, the group, what was produced and the high-water
// marks.
func gapSetup(t *testing.T, brokers []string, partitions int32, n int) (topic, group string, produced []sent, hwm map[int32]int64) {
	t.Helper()
	topic = kafkatest.UniqueName(t, "logs")
	group = kafkatest.UniqueName(t, "group")
	createTopic(t, brokers, topic, partitions)
	produced = produceSpread(t, brokers, topic, partitions, "gap", 0, n)
	cfg := kafkain.Config{Brokers: brokers, Topics: []string{topic}, Group: group, BatchSize: 50,
		FlushInterval: 20 * time.Millisecond, CoverageFile: filepath.Join(t.TempDir(), "coverage-1.json"), FillGaps: true}
	idx1 := newCountIndex()
	c1 := kafkain.New(cfg, writerFor(t, idx1), testLogger(t))
	stop1 := runConsumer(t, c1)
	idx1.waitLen(t, n, 30*time.Second)
	waitCommitted(t, brokers, group, topic, 10*time.Second)
	stop1()
	committed, hwm := offsets(t, brokers, group, topic)
	for p := range hwm {
		if committed[p] != hwm[p] || hwm[p] == 0 {
			t.Fatalf("after consumer 1: committed %v, high-water marks %v", committed, hwm)
		}
	}
	return topic, group, produced, hwm
}

// TestGapFill: consumer 2 of a group, with a fresh index and a fresh
// coverage file, takes over partitions that consumer 1 read and
// committed. Its claims start at the committed offsets; the gap fillers
// read [0, committed) of each partition from Kafka, and the fresh index
// ends holding every line (those produced before and after the takeover)
// exactly once, each with its Part; coverage is [0, high-water mark) of
// each partition, and Stats tell what was filled. Three partitions and
// two filler slots: one partition waits for a slot.
func TestGapFill(t *testing.T) {
	cluster := kafkatest.Start(t)
	const partitions, n, m = 3, 900, 30
	topic, group, produced, hwm := gapSetup(t, cluster.Brokers, partitions, n)

	file := filepath.Join(t.TempDir(), "coverage-2.json")
	cfg := kafkain.Config{Brokers: cluster.Brokers, Topics: []string{topic}, Group: group, BatchSize: 50,
		FlushInterval: 20 * time.Millisecond, CoverageFile: file, FillGaps: true}
	idx := newCountIndex()
	c := kafkain.New(cfg, writerFor(t, idx), testLogger(t))
	stop := runConsumer(t, c)
	// Seen filling at some point (the parts it fills, at most all).
	var sawFilling []string
	more := produceSpread(t, cluster.Brokers, topic, partitions, "gap", n, m)
	deadline := time.Now().Add(60 * time.Second)
	for {
		if f := c.Filling(); len(f) > len(sawFilling) {
			sawFilling = f
		}
		recs, _ := idx.snapshot()
		if len(recs) >= n+m {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("index holds %d records after 60s, want %d; stats %+v", len(recs), n+m, c.Stats())
		}
		time.Sleep(5 * time.Millisecond)
	}
	waitCommitted(t, cluster.Brokers, group, topic, 10*time.Second)
	_, hwm2 := offsets(t, cluster.Brokers, group, topic)
	waitCoverage(t, c, fullCoverage(topic, hwm2), 10*time.Second)
	checkHeldOnce(t, idx, append(slices.Clone(produced), more...))

	st := c.Stats()
	if st.FilledLines != n {
		t.Errorf("filled %d lines, want %d (everything consumer 1 committed)", st.FilledLines, n)
	}
	if len(sawFilling) == 0 {
		t.Errorf("Filling never named a partition")
	}
	for _, p := range sawFilling {
		if !strings.HasPrefix(p, topic+"/") {
			t.Errorf("filling %q", p)
		}
	}
	// Fillers end with their ranges.
	for deadline := time.Now().Add(5 * time.Second); len(c.Filling()) > 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("still filling %v with coverage complete", c.Filling())
		}
	}
	if st := c.Stats(); len(st.Filling) != 0 {
		t.Errorf("stats: filling %v", st.Filling)
	}
	stop()
	if got := readCoverageFile(t, file); !reflect.DeepEqual(got, fullCoverage(topic, hwm2)) {
		t.Errorf("coverage file %v, want %v", got, fullCoverage(topic, hwm2))
	}
	t.Logf("high-water marks before %v, after %v; seen filling %v", hwm, hwm2, sawFilling)
}

// TestNoGapFill: the same takeover with FillGaps off: the fresh index
// holds only the lines produced after it, and the coverage says so.
func TestNoGapFill(t *testing.T) {
	cluster := kafkatest.Start(t)
	const partitions, n, m = 2, 400, 40
	topic, group, _, hwm := gapSetup(t, cluster.Brokers, partitions, n)

	cfg := kafkain.Config{Brokers: cluster.Brokers, Topics: []string{topic}, Group: group, BatchSize: 50,
		FlushInterval: 20 * time.Millisecond, CoverageFile: filepath.Join(t.TempDir(), "coverage-2.json")}
	idx := newCountIndex()
	c := kafkain.New(cfg, writerFor(t, idx), testLogger(t))
	runConsumer(t, c)
	more := produceSpread(t, cluster.Brokers, topic, partitions, "gap", n, m)
	idx.waitLen(t, m, 30*time.Second)
	waitCommitted(t, cluster.Brokers, group, topic, 10*time.Second)
	_, hwm2 := offsets(t, cluster.Brokers, group, topic)
	want := pipeline.Coverage{}
	for p := range hwm2 {
		want.Add(pipeline.PartName(topic, p), hwm[p], hwm2[p])
	}
	waitCoverage(t, c, want, 10*time.Second)
	// Give a filler, were one wrongly started, time to show.
	time.Sleep(time.Second)
	checkHeldOnce(t, idx, more)
	if st := c.Stats(); st.FilledLines != 0 || len(st.Filling) != 0 {
		t.Errorf("filled with FillGaps off: %+v", st)
	}
	if got := c.Coverage(); !reflect.DeepEqual(got, want) {
		t.Errorf("coverage %v, want %v", got, want)
	}
}
