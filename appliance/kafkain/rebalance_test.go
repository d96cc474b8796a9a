package kafkain_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/logbox/logbox/appliance/kafkain"
	"github.com/logbox/logbox/appliance/kafkatest"
	"github.com/logbox/logbox/appliance/pipeline"
)

// groupIndex is the index shared by the consumers of a group: it dedups
// by record ID, as the real one does, and remembers who indexed what when.
type groupIndex struct {
	mu    sync.Mutex
	times map[string][]indexing // record ID → every time it was indexed
	per   map[string]int        // consumer → records indexed
}

type indexing struct {
	by string
	at time.Time
}

// member is one consumer's view of the groupIndex.
type member struct {
	g    *groupIndex
	name string
}

func (m member) Index(ctx context.Context, recs []pipeline.Record) error {
	now := time.Now()
	m.g.mu.Lock()
	defer m.g.mu.Unlock()
	for i := range recs {
		id := recs[i].ID()
		m.g.times[id] = append(m.g.times[id], indexing{m.name, now})
	}
	m.g.per[m.name] += len(recs)
	return nil
}

func (g *groupIndex) counts() (distinct int, per map[string]int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	per = map[string]int{}
	for k, v := range g.per {
		per[k] = v
	}
	return len(g.times), per
}

// TestRebalance: two consumers of one group share a 4-partition topic;
// when one stops while production goes on, the other takes over its
// partitions. No record is lost, and a record is indexed twice only if
// the stopped consumer indexed it but its commit did not land before the
// handover, so the survivor re-indexes it after the stop.
func TestRebalance(t *testing.T) {
	start := time.Now()
	cluster := kafkatest.Start(t)
	topic := kafkatest.UniqueName(t, "logs")
	group := kafkatest.UniqueName(t, "group")
	createTopic(t, cluster.Brokers, topic, 4)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()

	// The producer spreads records over every partition, batch after batch,
	// until stopProducing is called.
	cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.Brokers...), kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	if err != nil {
		t.Fatalf("kgo client: %v", err)
	}
	defer cl.Close()
	var (
		prodMu   sync.Mutex
		produced int
	)
	prodCtx, stopProducing := context.WithCancel(ctx)
	prodDone := make(chan error, 1)
	go func() {
		for i := 0; prodCtx.Err() == nil; i++ {
			_, _, vals := events("rb", i*50, 50)
			recs := make([]*kgo.Record, len(vals))
			for j, v := range vals {
				recs[j] = &kgo.Record{Value: v}
			}
			if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
				prodDone <- fmt.Errorf("produce: %w", err)
				return
			}
			prodMu.Lock()
			produced += len(recs)
			prodMu.Unlock()
			time.Sleep(20 * time.Millisecond)
		}
		prodDone <- nil
	}()

	const batchSize = 50
	g := &groupIndex{times: map[string][]indexing{}, per: map[string]int{}}
	cfg := kafkain.Config{Brokers: cluster.Brokers, Topics: []string{topic}, Group: group,
		BatchSize: batchSize, FlushInterval: 20 * time.Millisecond}
	stopA := runConsumer(t, kafkain.New(cfg, writerFor(t, member{g, "a"}), testLogger(t)))
	runConsumer(t, kafkain.New(cfg, writerFor(t, member{g, "b"}), testLogger(t)))

	// Both get partitions.
	for {
		_, per := g.counts()
		if per["a"] > 0 && per["b"] > 0 {
			t.Logf("both consumers indexing after %v: %v", time.Since(start), per)
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("consumers did not both get partitions: indexed %v", per)
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)

	stopAt := time.Now()
	stopA()
	_, per := g.counts()
	t.Logf("consumer a stopped after %v: indexed %v", time.Since(stopAt), per)
	bBefore := per["b"]
	time.Sleep(time.Second)
	stopProducing()
	if err := <-prodDone; err != nil {
		t.Fatal(err)
	}
	prodMu.Lock()
	n := produced
	prodMu.Unlock()

	// b takes over and indexes everything.
	for {
		distinct, per := g.counts()
		if distinct >= n {
			t.Logf("all %d records indexed %v after the stop: %v", n, time.Since(stopAt), per)
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("%d of %d records indexed: %v", distinct, n, per)
		}
		time.Sleep(20 * time.Millisecond)
	}

	want, _, _ := events("rb", 0, n)
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, r := range want {
		if len(g.times[r.ID()]) == 0 {
			t.Errorf("record %q lost", r.Line)
		}
	}
	if len(g.times) != n {
		t.Errorf("%d distinct records indexed, want %d", len(g.times), n)
	}
	if g.per["b"] <= bBefore {
		t.Errorf("consumer b indexed nothing after a stopped")
	}
	dups := 0
	for id, ts := range g.times {
		if len(ts) < 2 {
			continue
		}
		dups++
		// The first indexing before the stop, every later one by b after it.
		for _, x := range ts[1:] {
			if x.by != "b" || x.at.Before(stopAt) {
				t.Errorf("record %s indexed again by %s %v before the stop; only a handover may repeat a record", id, x.by, stopAt.Sub(x.at))
			}
		}
	}
	t.Logf("%d records produced, %d indexed twice at the handover, test took %v", n, dups, time.Since(start))
	// a held two partitions; at most one uncommitted batch each.
	if dups > 2*batchSize {
		t.Errorf("%d records indexed twice, want at most %d", dups, 2*batchSize)
	}
}
