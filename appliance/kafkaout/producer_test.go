package kafkaout_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/logbox/logbox/appliance/kafkaout"
	"github.com/logbox/logbox/appliance/kafkatest"
	"github.com/logbox/logbox/appliance/pipeline"
)

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// runProducer runs p until the test ends; cleanup waits for Run to return.
func runProducer(t *testing.T, p *kafkaout.Producer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
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

// ackCounter makes batches and counts how often each is acked.
type ackCounter struct {
	mu    sync.Mutex
	count []int
}

func (a *ackCounter) batch(recs []pipeline.Record) *pipeline.Batch {
	a.mu.Lock()
	i := len(a.count)
	a.count = append(a.count, 0)
	a.mu.Unlock()
	return pipeline.NewBatch(recs, func() {
		a.mu.Lock()
		a.count[i]++
		a.mu.Unlock()
	})
}

func (a *ackCounter) acked() (acked, total int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, c := range a.count {
		if c > 0 {
			acked++
		}
	}
	return acked, len(a.count)
}

// waitAcked waits until every batch made so far is acked, then checks
// each was acked exactly once.
func (a *ackCounter) waitAcked(t *testing.T, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		acked, total := a.acked()
		if acked == total {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d batches acked after %v", acked, total, timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for i, c := range a.count {
		if c != 1 {
			t.Errorf("batch %d acked %d times", i, c)
		}
	}
}

func makeRecords(run string, batch, n int, topic string) []pipeline.Record {
	recs := make([]pipeline.Record, n)
	src := fmt.Sprintf("/var/log/app-%d.log", batch%3)
	for i := range recs {
		recs[i] = pipeline.Record{
			TS:         time.Date(2026, 1, 2, 3, 4, 5, i*1000, time.UTC),
			Host:       "box-1",
			Source:     src,
			SourceName: "app",
			FileID:     "dev1-ino42-" + src,
			Offset:     int64(batch*100000 + i*100),
			Line:       fmt.Sprintf("token-%s-%d-%d level=info", run, batch, i),
			Fields:     map[string]string{"env": "test"},
			Topic:      topic,
		}
	}
	return recs
}

type readRecord struct {
	rec       pipeline.Record
	key       string
	partition int32
	offset    int64
}

// readTopic reads topic from the start until want records arrived, then
// checks the high-water marks hold exactly what was read.
func readTopic(t *testing.T, brokers []string, topic string, want int) []readRecord {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatalf("kgo client: %v", err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out []readRecord
	for len(out) < want {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %q: got %d of %d records: %v", topic, len(out), want, ctx.Err())
		}
		fs.EachError(func(topic string, p int32, err error) { t.Logf("fetch %s/%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			var rec pipeline.Record
			if err := json.Unmarshal(r.Value, &rec); err != nil {
				t.Errorf("record %s/%d@%d is not JSON: %v: %q", r.Topic, r.Partition, r.Offset, err, r.Value)
			}
			out = append(out, readRecord{rec: rec, key: string(r.Key), partition: r.Partition, offset: r.Offset})
		})
	}
	return out
}

// hwmTotal sums the high-water marks of topic's partitions.
func hwmTotal(t *testing.T, brokers []string, topic string) (total int64, partitions int) {
	t.Helper()
	client, err := sarama.NewClient(brokers, sarama.NewConfig())
	if err != nil {
		t.Fatalf("sarama client: %v", err)
	}
	defer client.Close()
	parts, err := client.Partitions(topic)
	if err != nil {
		t.Fatalf("partitions of %q: %v", topic, err)
	}
	for _, p := range parts {
		off, err := client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			t.Fatalf("offset of %s/%d: %v", topic, p, err)
		}
		total += off
	}
	return total, len(parts)
}

// checkRecords checks every sent record is in got exactly once, with the
// right key and value, and that each file's lines are in one partition in
// file order. It returns how many duplicates there were.
func checkRecords(t *testing.T, sent []pipeline.Record, got []readRecord, allowDup bool) int {
	t.Helper()
	byLine := map[string]pipeline.Record{}
	for _, r := range sent {
		byLine[r.Line] = r
	}
	seen := map[string]int{}
	type pos struct {
		partition int32
		kafkaOff  int64
		fileOff   int64
	}
	last := map[string]pos{}
	dups := 0
	for _, g := range got {
		want, ok := byLine[g.rec.Line]
		if !ok {
			t.Errorf("unexpected record %+v", g.rec)
			continue
		}
		seen[g.rec.Line]++
		if seen[g.rec.Line] > 1 {
			dups++
			if !allowDup {
				t.Errorf("record %q read %d times", g.rec.Line, seen[g.rec.Line])
			}
			continue
		}
		if wantKey := want.Host + "|" + want.Source; g.key != wantKey {
			t.Errorf("record %q: key %q, want %q", g.rec.Line, g.key, wantKey)
		}
		w := want
		w.Topic = ""
		if !g.rec.TS.Equal(w.TS) || g.rec.Host != w.Host || g.rec.Source != w.Source ||
			g.rec.SourceName != w.SourceName || g.rec.FileID != w.FileID || g.rec.Offset != w.Offset ||
			g.rec.Fields["env"] != "test" || len(g.rec.Fields) != 1 {
			t.Errorf("record %q: got %+v, want %+v", g.rec.Line, g.rec, w)
		}
		if p, ok := last[g.key]; ok && !allowDup {
			if p.partition != g.partition {
				t.Errorf("key %q in partitions %d and %d", g.key, p.partition, g.partition)
			} else if (g.offset > p.kafkaOff) != (g.rec.Offset > p.fileOff) {
				t.Errorf("key %q: file offsets %d, %d out of order in partition %d", g.key, p.fileOff, g.rec.Offset, g.partition)
			}
		}
		last[g.key] = pos{g.partition, g.offset, g.rec.Offset}
	}
	for line := range byLine {
		if seen[line] == 0 {
			t.Errorf("record %q lost", line)
		}
	}
	return dups
}

func TestProduceAcks(t *testing.T) {
	cluster := kafkatest.Start(t)
	for _, tc := range []struct{ acks, compression string }{
		{"0", "none"},
		{"1", "snappy"},
		{"all", "zstd"},
	} {
		t.Run("acks="+tc.acks, func(t *testing.T) {
			topic := kafkatest.UniqueName(t, "logs")
			perSource := kafkatest.UniqueName(t, "per-source")
			p := kafkaout.New(kafkaout.Config{
				Brokers: cluster.Brokers, Topic: topic, Acks: tc.acks, Compression: tc.compression,
				Partitions: 3,
			}, testLogger(t))

			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var acks ackCounter
			var sent, sentPerSource []pipeline.Record
			// The first batch is published before Run: it waits, it does not fail.
			for b := range 6 {
				dest := ""
				if b == 4 {
					dest = perSource
				}
				recs := makeRecords(tc.acks, b, 300, dest)
				if dest == "" {
					sent = append(sent, recs...)
				} else {
					sentPerSource = append(sentPerSource, recs...)
				}
				if err := p.Publish(ctx, acks.batch(recs)); err != nil {
					t.Fatalf("Publish: %v", err)
				}
				if b == 0 {
					if n, _ := acks.acked(); n != 0 {
						t.Fatalf("batch acked before Run")
					}
					runProducer(t, p)
				}
			}
			acks.waitAcked(t, 20*time.Second)

			st := p.Stats()
			if st.Acked != uint64(len(sent)+len(sentPerSource)) || st.InFlight != 0 || st.Errors != 0 {
				t.Errorf("stats %+v, want %d acked, none in flight, no errors", st, len(sent)+len(sentPerSource))
			}

			got := readTopic(t, cluster.Brokers, topic, len(sent))
			checkRecords(t, sent, got, false)
			if n, parts := hwmTotal(t, cluster.Brokers, topic); n != int64(len(sent)) || parts != 3 {
				t.Errorf("topic %q holds %d records in %d partitions, want %d in 3", topic, n, parts, len(sent))
			}
			got = readTopic(t, cluster.Brokers, perSource, len(sentPerSource))
			checkRecords(t, sentPerSource, got, false)
			if n, parts := hwmTotal(t, cluster.Brokers, perSource); n != int64(len(sentPerSource)) || parts != 3 {
				t.Errorf("topic %q holds %d records in %d partitions, want %d in 3", perSource, n, parts, len(sentPerSource))
			}
		})
	}
}

// TestProducerOutage stops the broker while batches are published, checks
// that they are not acked and that Publish blocks at MaxInFlight, then
// restarts the broker on the same port from the same data and checks every
// record arrives.
//
// A short outage is bridged by sarama's own retries; a longer one makes
// sarama give up on the messages (after about 2s here), and the Producer
// re-sends them. If sarama's per-partition circuit breaker trips (three
// failed leader look-ups), that partition waits 10s more after the broker
// is back: the test then takes longer but must still pass.
func TestProducerOutage(t *testing.T) {
	for _, outage := range []time.Duration{500 * time.Millisecond, 3 * time.Second} {
		t.Run(outage.String(), func(t *testing.T) { testOutage(t, outage) })
	}
}

func testOutage(t *testing.T, outage time.Duration) {
	cluster := kafkatest.Start(t)
	topic := kafkatest.UniqueName(t, "outage")
	const maxInFlight = 200
	p := kafkaout.New(kafkaout.Config{
		Brokers: cluster.Brokers, Topic: topic, Acks: "all", MaxInFlight: maxInFlight,
	}, testLogger(t))
	runProducer(t, p)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	var acks ackCounter
	var sent []pipeline.Record
	publish := func(b int) error {
		recs := makeRecords("outage", b, 50, "")
		sent = append(sent, recs...)
		return p.Publish(ctx, acks.batch(recs))
	}
	for b := range 2 {
		if err := publish(b); err != nil {
			t.Fatalf("Publish: %v", err)
		}
	}
	acks.waitAcked(t, 10*time.Second)

	cluster.Stop()
	// 6 batches of 50 with room for 200: the fifth Publish blocks.
	var published atomic.Int32
	pubDone := make(chan error, 1)
	go func() {
		for b := 2; b < 8; b++ {
			if err := publish(b); err != nil {
				pubDone <- err
				return
			}
			published.Add(1)
		}
		pubDone <- nil
	}()
	deadline := time.Now().Add(5 * time.Second)
	for published.Load() < 4 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(outage)
	if n := published.Load(); n != 4 {
		t.Fatalf("%d batches published during the outage, want 4 (MaxInFlight %d)", n, maxInFlight)
	}
	if acked, _ := acks.acked(); acked != 2 {
		t.Fatalf("%d batches acked during the outage, want 2", acked)
	}
	if st := p.Stats(); st.InFlight != maxInFlight {
		t.Fatalf("stats %+v: want %d in flight", st, maxInFlight)
	}

	cluster.Restart()
	if err := <-pubDone; err != nil {
		t.Fatalf("Publish after restart: %v", err)
	}
	acks.waitAcked(t, 45*time.Second)
	st := p.Stats()
	t.Logf("stats after outage: %+v", st)

	got := readTopic(t, cluster.Brokers, topic, len(sent))
	dups := checkRecords(t, sent, got, true)
	total, _ := hwmTotal(t, cluster.Brokers, topic)
	t.Logf("%d records sent, %d in the topic, %d duplicates", len(sent), total, dups)
	if outage >= 3*time.Second && st.Retries == 0 {
		t.Errorf("no re-sends after a %v outage: stats %+v", outage, st)
	}
	if int(total) != len(sent)+dups {
		t.Errorf("topic holds %d records, read %d", total, len(sent)+dups)
	}
}

func TestConfigValidate(t *testing.T) {
	ok := kafkaout.Config{Brokers: []string{"127.0.0.1:9092"}, Topic: "logbox"}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	f := func(name string, mutate func(*kafkaout.Config)) {
		t.Helper()
		c := ok
		mutate(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	f("no brokers", func(c *kafkaout.Config) { c.Brokers = nil })
	f("bad topic", func(c *kafkaout.Config) { c.Topic = "a b" })
	f("no topic", func(c *kafkaout.Config) { c.Topic = "" })
	f("bad acks", func(c *kafkaout.Config) { c.Acks = "2" })
	f("bad compression", func(c *kafkaout.Config) { c.Compression = "brotli" })
	f("negative in-flight", func(c *kafkaout.Config) { c.MaxInFlight = -1 })
}

// TestProducerBrokerLate: Run starts while the broker is down; it keeps
// trying, and a batch published meanwhile is acked once the broker is up.
func TestProducerBrokerLate(t *testing.T) {
	cluster := kafkatest.Start(t)
	topic := kafkatest.UniqueName(t, "late")
	cluster.Stop()
	p := kafkaout.New(kafkaout.Config{Brokers: cluster.Brokers, Topic: topic}, testLogger(t))
	runProducer(t, p)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var acks ackCounter
	recs := makeRecords("late", 0, 20, "")
	if err := p.Publish(ctx, acks.batch(recs)); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	time.Sleep(300 * time.Millisecond)
	if n, _ := acks.acked(); n != 0 {
		t.Fatalf("batch acked while the broker is down")
	}
	cluster.Restart()
	acks.waitAcked(t, 20*time.Second)
	checkRecords(t, recs, readTopic(t, cluster.Brokers, topic, len(recs)), false)
}

// TestShutdownWhileDown: with the broker down, Run returns within its
// bounded drain, the pending batch is not acked, and a blocked Publish
// returns its context's error.
func TestShutdownWhileDown(t *testing.T) {
	cluster := kafkatest.Start(t)
	topic := kafkatest.UniqueName(t, "down")
	p := kafkaout.New(kafkaout.Config{Brokers: cluster.Brokers, Topic: topic, MaxInFlight: 10,
		DrainTimeout: 500 * time.Millisecond}, testLogger(t))
	runCtx, stopRun := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(runCtx) }()
	defer stopRun()

	var acks ackCounter
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := p.Publish(ctx, acks.batch(makeRecords("down", 0, 5, ""))); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	acks.waitAcked(t, 10*time.Second)
	cluster.Stop()
	// The batch in flight at shutdown is nacked, not left hanging.
	nacked := make(chan error, 1)
	if err := p.Publish(ctx, pipeline.NewBatchFunc(makeRecords("down", 1, 10, ""), func(err error) { nacked <- err })); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	pubCtx, pubCancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer pubCancel()
	if err := p.Publish(pubCtx, acks.batch(makeRecords("down", 2, 1, ""))); err != context.DeadlineExceeded {
		t.Fatalf("Publish over MaxInFlight: %v, want %v", err, context.DeadlineExceeded)
	}

	start := time.Now()
	stopRun()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("Run did not return")
	}
	t.Logf("Run returned %v after cancel", time.Since(start))
	if n, total := acks.acked(); n != 1 {
		t.Fatalf("%d of %d batches acked, want only the first", n, total)
	}
	select {
	case err := <-nacked:
		if !errors.Is(err, pipeline.ErrStopping) {
			t.Fatalf("in-flight batch ended with %v, want a nack with ErrStopping", err)
		}
	default:
		t.Fatal("the batch in flight at shutdown was neither acked nor nacked")
	}
	if err := p.Publish(ctx, acks.batch(makeRecords("down", 3, 1, ""))); !errors.Is(err, pipeline.ErrStopping) {
		t.Fatalf("Publish after Run returned: %v, want ErrStopping", err)
	}
}
