package kafkain_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/logbox/logbox/appliance/indexwriter"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/logbox/logbox/appliance/kafkain"
	"github.com/logbox/logbox/appliance/kafkatest"
	"github.com/logbox/logbox/appliance/pipeline"
)

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// memIndex is an in-memory Indexer keyed by record ID. Until healthy is
// set, every Index call fails.
type memIndex struct {
	healthy atomic.Bool
	mu      sync.Mutex
	recs    map[string]pipeline.Record
	calls   int
	failed  int
}

func newMemIndex(healthy bool) *memIndex {
	m := &memIndex{recs: map[string]pipeline.Record{}}
	m.healthy.Store(healthy)
	return m
}

func (m *memIndex) Index(ctx context.Context, recs []pipeline.Record) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls++
	if !m.healthy.Load() {
		m.failed++
		return errors.New("index unavailable")
	}
	for _, r := range recs {
		m.recs[r.ID()] = r
	}
	return nil
}

func (m *memIndex) failedCalls() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.failed
}

func (m *memIndex) snapshot() map[string]pipeline.Record {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]pipeline.Record, len(m.recs))
	for k, v := range m.recs {
		out[k] = v
	}
	return out
}

func (m *memIndex) waitLen(t *testing.T, n int, timeout time.Duration) map[string]pipeline.Record {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		s := m.snapshot()
		if len(s) >= n {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("index holds %d records after %v, want %d", len(s), timeout, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// runConsumer runs c; the returned stop cancels it and waits for Run.
func runConsumer(t *testing.T, c *kafkain.Consumer) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Errorf("Run did not return")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func createTopic(t *testing.T, brokers []string, topic string, partitions int32) {
	t.Helper()
	sc := sarama.NewConfig()
	sc.Version = sarama.V2_8_0_0
	admin, err := sarama.NewClusterAdmin(brokers, sc)
	if err != nil {
		t.Fatalf("admin: %v", err)
	}
	defer admin.Close()
	if err := admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: partitions, ReplicationFactor: 1}, false); err != nil {
		t.Fatalf("create topic %q: %v", topic, err)
	}
}

// produce writes values to topic with the given keys and returns them.
func produce(t *testing.T, brokers []string, topic string, keys, values [][]byte) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatalf("kgo client: %v", err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	recs := make([]*kgo.Record, len(values))
	for i := range values {
		recs[i] = &kgo.Record{Key: keys[i], Value: values[i]}
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce to %q: %v", topic, err)
	}
}

func events(run string, from, n int) ([]pipeline.Record, [][]byte, [][]byte) {
	var recs []pipeline.Record
	var keys, vals [][]byte
	for i := from; i < from+n; i++ {
		src := fmt.Sprintf("/var/log/%d.log", i%4)
		r := pipeline.Record{
			TS:     time.Date(2026, 3, 4, 5, 6, 7, i, time.UTC),
			Host:   "box-2",
			Source: src,
			FileID: "fid-" + src,
			Offset: int64(i * 64),
			Line:   fmt.Sprintf("token-%s-%d", run, i),
			Fields: map[string]string{"app": "x"},
		}
		v, err := json.Marshal(r)
		if err != nil {
			panic(err)
		}
		recs = append(recs, r)
		keys = append(keys, []byte(r.Host+"|"+r.Source))
		vals = append(vals, v)
	}
	return recs, keys, vals
}

// offsets returns the committed offset (-1 if none) and the high-water
// mark of each partition of topic.
func offsets(t *testing.T, brokers []string, group, topic string) (committed, hwm map[int32]int64) {
	t.Helper()
	sc := sarama.NewConfig()
	sc.Version = sarama.V2_8_0_0
	client, err := sarama.NewClient(brokers, sc)
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	defer client.Close()
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		t.Fatalf("admin: %v", err)
	}
	parts, err := client.Partitions(topic)
	if err != nil {
		t.Fatalf("partitions of %q: %v", topic, err)
	}
	resp, err := admin.ListConsumerGroupOffsets(group, map[string][]int32{topic: parts})
	if err != nil {
		t.Fatalf("list offsets of group %q: %v", group, err)
	}
	committed, hwm = map[int32]int64{}, map[int32]int64{}
	for _, p := range parts {
		committed[p] = -1
		if b := resp.GetBlock(topic, p); b != nil {
			committed[p] = b.Offset
		}
		hwm[p], err = client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			t.Fatalf("offset of %s/%d: %v", topic, p, err)
		}
	}
	return committed, hwm
}

func checkIndexed(t *testing.T, want []pipeline.Record, got map[string]pipeline.Record) {
	t.Helper()
	for _, w := range want {
		g, ok := got[w.ID()]
		if !ok {
			t.Errorf("record %q not indexed", w.Line)
			continue
		}
		if g.Line != w.Line || !g.TS.Equal(w.TS) || g.Host != w.Host || g.Source != w.Source ||
			g.Offset != w.Offset || g.FileID != w.FileID || g.Fields["app"] != "x" {
			t.Errorf("indexed %+v, want %+v", g, w)
		}
	}
}

func TestConsumeIndexCommit(t *testing.T) {
	cluster := kafkatest.Start(t)
	topic := kafkatest.UniqueName(t, "logs")
	group := kafkatest.UniqueName(t, "group")
	createTopic(t, cluster.Brokers, topic, 3)

	const n = 1000
	want, keys, vals := events("a", 0, n)
	// Not logbox events: plain text, JSON without "line", a JSON string.
	raws := []string{"plain text, not JSON", `{"msg":"no line field"}`, `"just a string"`}
	for _, r := range raws {
		keys = append(keys, []byte("other-producer"))
		vals = append(vals, []byte(r))
	}
	produce(t, cluster.Brokers, topic, keys, vals)

	cfg := kafkain.Config{Brokers: cluster.Brokers, Topics: []string{topic}, Group: group, BatchSize: 100, FlushInterval: 20 * time.Millisecond}
	idx := newMemIndex(true)
	c := kafkain.New(cfg, writerFor(t, idx), testLogger(t))
	stop := runConsumer(t, c)
	got := idx.waitLen(t, n+len(raws), 30*time.Second)
	checkIndexed(t, want, got)

	// Raw lines: identified by their Kafka position.
	rawSeen := map[string]bool{}
	for _, r := range got {
		if r.Host != "" {
			continue
		}
		rawSeen[r.Line] = true
		wantFileID := fmt.Sprintf("kafka:%s:", topic)
		if r.Source != "kafka:"+topic || len(r.FileID) <= len(wantFileID) || r.FileID[:len(wantFileID)] != wantFileID || r.TS.IsZero() {
			t.Errorf("raw record %+v", r)
		}
	}
	for _, r := range raws {
		if !rawSeen[r] {
			t.Errorf("raw line %q not indexed as a raw line", r)
		}
	}

	// Commits follow the index: every partition committed to its end.
	waitCommitted(t, cluster.Brokers, group, topic, 10*time.Second)
	st := c.Stats()
	if st.Indexed < n+uint64(len(raws)) || st.DecodeFallbacks < uint64(len(raws)) || st.Commits == 0 {
		t.Errorf("stats %+v", st)
	}
	for _, l := range st.Lag {
		if l.Lag != 0 {
			t.Errorf("lag %+v, want 0", l)
		}
	}
	stop()

	// A second consumer in the group starts at the commits: it gets only
	// what is new.
	idx2 := newMemIndex(true)
	c2 := kafkain.New(cfg, writerFor(t, idx2), testLogger(t))
	more, keys, vals := events("b", n, 5)
	produce(t, cluster.Brokers, topic, keys, vals)
	runConsumer(t, c2)
	got = idx2.waitLen(t, len(more), 30*time.Second)
	waitCommitted(t, cluster.Brokers, group, topic, 10*time.Second)
	got = idx2.snapshot()
	if len(got) != len(more) {
		t.Errorf("second consumer indexed %d records, want only the %d new ones", len(got), len(more))
	}
	checkIndexed(t, more, got)
}

// waitCommitted waits until the group's committed offset of every
// partition of topic is its high-water mark.
func waitCommitted(t *testing.T, brokers []string, group, topic string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		committed, hwm := offsets(t, brokers, group, topic)
		ok := true
		for p := range hwm {
			// An empty partition has nothing to commit.
			if committed[p] != hwm[p] && !(hwm[p] == 0 && committed[p] == -1) {
				ok = false
			}
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("committed %v, high-water marks %v", committed, hwm)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestIndexFailureNoCommit: while Index fails nothing is committed; once it
// works everything is indexed and committed.
func TestIndexFailureNoCommit(t *testing.T) {
	cluster := kafkatest.Start(t)
	topic := kafkatest.UniqueName(t, "logs")
	group := kafkatest.UniqueName(t, "group")
	createTopic(t, cluster.Brokers, topic, 2)
	const n = 300
	want, keys, vals := events("f", 0, n)
	produce(t, cluster.Brokers, topic, keys, vals)

	idx := newMemIndex(false)
	c := kafkain.New(kafkain.Config{Brokers: cluster.Brokers, Topics: []string{topic}, Group: group,
		BatchSize: 50, FlushInterval: 10 * time.Millisecond}, writerFor(t, idx), testLogger(t))
	runConsumer(t, c)

	deadline := time.Now().Add(20 * time.Second)
	// The writer retries the failing index; the consumer waits.
	for idx.failedCalls() < 4 {
		if time.Now().After(deadline) {
			t.Fatalf("Index not called: stats %+v", c.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
	committed, _ := offsets(t, cluster.Brokers, group, topic)
	for p, off := range committed {
		if off != -1 {
			t.Errorf("partition %d committed at %d while the index fails", p, off)
		}
	}
	if st := c.Stats(); st.Commits != 0 || st.Indexed != 0 {
		t.Errorf("stats while failing %+v", st)
	}

	idx.healthy.Store(true)
	got := idx.waitLen(t, n, 30*time.Second)
	checkIndexed(t, want, got)
	waitCommitted(t, cluster.Brokers, group, topic, 10*time.Second)
	t.Logf("stats %+v", c.Stats())
}

// TestBrokerLateTopicMissing: the consumer starts while the broker is
// down and its topic does not exist; it waits, then creates the topic
// with the configured partition count, as the producer does (not the
// broker's default).
func TestBrokerLateTopicMissing(t *testing.T) {
	cluster := kafkatest.Start(t)
	topic := kafkatest.UniqueName(t, "fresh")
	idx := newMemIndex(true)
	c := kafkain.New(kafkain.Config{Brokers: cluster.Brokers, Topics: []string{topic}, Partitions: 5,
		Group: kafkatest.UniqueName(t, "group"), FlushInterval: 10 * time.Millisecond}, writerFor(t, idx), testLogger(t))
	cluster.Stop()
	runConsumer(t, c)
	time.Sleep(300 * time.Millisecond)
	cluster.Restart()

	// The consumer creates the topic; then what is produced is indexed.
	deadline := time.Now().Add(10 * time.Second)
	for {
		cl, err := sarama.NewClient(cluster.Brokers, sarama.NewConfig())
		if err != nil {
			t.Fatalf("client: %v", err)
		}
		topics, err := cl.Topics()
		cl.Close()
		if err != nil {
			t.Fatalf("topics: %v", err)
		}
		found := false
		for _, tp := range topics {
			found = found || tp == topic
		}
		if found {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("topic %q not created", topic)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cl, err := sarama.NewClient(cluster.Brokers, sarama.NewConfig())
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	if parts, err := cl.Partitions(topic); err != nil || len(parts) != 5 {
		t.Errorf("topic created with partitions %v (%v), want 5", parts, err)
	}
	cl.Close()
	want, keys, vals := events("m", 0, 10)
	produce(t, cluster.Brokers, topic, keys, vals)
	checkIndexed(t, want, idx.waitLen(t, len(want), 30*time.Second))
}

func TestConfigValidate(t *testing.T) {
	ok := kafkain.Config{Brokers: []string{"127.0.0.1:9092"}, Topics: []string{"logbox"}}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	bad := ok
	bad.Topics = nil
	if bad.Validate() == nil {
		t.Errorf("no topics: no error")
	}
	bad = ok
	bad.Brokers = nil
	if bad.Validate() == nil {
		t.Errorf("no brokers: no error")
	}
}

// TestConsumeFilebeatEvents: Filebeat 8.x events on an index topic become
// records with Filebeat's line, host, path and offset; a resent event
// (at-least-once) is the same record.
func TestConsumeFilebeatEvents(t *testing.T) {
	cluster := kafkatest.Start(t)
	topic := kafkatest.UniqueName(t, "filebeat")
	createTopic(t, cluster.Brokers, topic, 2)
	var keys, vals [][]byte
	const n = 20
	for i := range n {
		ev := map[string]any{
			"@timestamp": fmt.Sprintf("2026-11-25T10:00:%02d.000Z", i),
			"@metadata":  map[string]any{"beat": "filebeat", "type": "_doc", "version": "8.15.3"},
			"log":        map[string]any{"offset": i * 120, "file": map[string]any{"path": "/var/log/app.log", "inode": "77", "device_id": "66305"}},
			"message":    fmt.Sprintf("2026-11-25T10:00:%02d.000Z INFO request %d", i, i),
			"input":      map[string]any{"type": "filestream"},
			"ecs":        map[string]any{"version": "8.0.0"},
			"host":       map[string]any{"name": "web1", "os": map[string]any{"platform": "ubuntu"}},
			"agent":      map[string]any{"type": "filebeat", "version": "8.15.3"},
		}
		b, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, nil)
		vals = append(vals, b)
		if i == 3 {
			keys = append(keys, nil) // Filebeat resends after a restart
			vals = append(vals, b)
		}
	}
	produce(t, cluster.Brokers, topic, keys, vals)
	cfg := kafkain.Config{Brokers: cluster.Brokers, Topics: []string{topic}, Group: kafkatest.UniqueName(t, "g"), BatchSize: 8, FlushInterval: 20 * time.Millisecond}
	idx := newMemIndex(true)
	c := kafkain.New(cfg, writerFor(t, idx), testLogger(t))
	runConsumer(t, c)
	got := idx.waitLen(t, n, 30*time.Second)
	waitCommitted(t, cluster.Brokers, cfg.Group, topic, 10*time.Second)
	if len(idx.snapshot()) != n {
		t.Fatalf("indexed %d records, want %d (the resent one once)", len(idx.snapshot()), n)
	}
	for i := range n {
		id := pipeline.RecordID("web1", "filebeat:/var/log/app.log@66305:77", int64(i*120))
		r, ok := got[id]
		if !ok || r.Source != "/var/log/app.log" || r.Line != fmt.Sprintf("2026-11-25T10:00:%02d.000Z INFO request %d", i, i) ||
			!r.TS.Equal(time.Date(2026, 11, 25, 10, 0, i, 0, time.UTC)) || r.Fields["input.type"] != "filestream" {
			t.Errorf("record %s: %+v (found %v)", id, r, ok)
		}
	}
	if st := c.Stats(); st.ECSEvents != n+1 || st.DecodeFallbacks != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestInstanceID(t *testing.T) {
	a := kafkain.InstanceID("web-1.example.com", "/var/lib/logbox")
	if a != kafkain.InstanceID("web-1.example.com", "/var/lib/logbox") {
		t.Error("not stable")
	}
	if !strings.HasPrefix(a, "logbox-web-1.example.com-") {
		t.Errorf("%q does not name its host", a)
	}
	for _, other := range []string{
		kafkain.InstanceID("web-1.example.com", "/var/lib/logbox2"),
		kafkain.InstanceID("web-2.example.com", "/var/lib/logbox"),
	} {
		if other == a {
			t.Errorf("%q for another data dir or host", other)
		}
	}
	for _, host := range []string{"web 1", "höst", "a/b:c", strings.Repeat("x", 400), ""} {
		id := kafkain.InstanceID(host, "/data")
		if err := kafkain.ValidInstanceID(id); err != nil {
			t.Errorf("host %q: %v", host, err)
		}
		cfg := kafkain.Config{Brokers: []string{"127.0.0.1:9092"}, Topics: []string{"logbox"}, InstanceID: id}
		if err := cfg.Validate(); err != nil {
			t.Errorf("host %q: %v", host, err)
		}
	}
	for _, bad := range []string{".", "..", "a b", "a/b", strings.Repeat("x", 250)} {
		if kafkain.ValidInstanceID(bad) == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// writerFor runs the index writer in front of idx, as the process does:
// the consumer hands it batches and commits on their acks. It stops at
// the test's end, after the consumers (cleanups run last first).
func writerFor(t testing.TB, idx indexwriter.Indexer) pipeline.Sink {
	t.Helper()
	w := indexwriter.New(indexwriter.Config{FlushInterval: 10 * time.Millisecond}, idx, testLogger(t))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = w.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return w
}
