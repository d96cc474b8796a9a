package kafkain_test

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/logbox/logbox/appliance/kafkain"
	"github.com/logbox/logbox/appliance/kafkatest"
)

// TestRestartAfterKill: an indexer's consumer is killed again and again,
// at random moments and also while its JoinGroup waits at the coordinator
// (killed during start-up), while records keep coming. The consumer
// started after the last kill, with the same instance id, consumes every
// partition within 15 s of its start, and no record is lost.
//
// This is issue 11's stall: with dynamic membership and sarama's default
// timeouts, the new member waited for its dead former selves, gave up its
// JoinGroup after the 30 s read timeout, rejoined, and waited again.
func TestRestartAfterKill(t *testing.T) {
	cluster := kafkatest.Start(t)
	if cluster.External() {
		t.Skip("watches JoinGroup requests inside the in-process kfake broker")
	}
	topic := kafkatest.UniqueName(t, "logs")
	group := kafkatest.UniqueName(t, "group")
	const partitions = 3
	createTopic(t, cluster.Brokers, topic, partitions)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 2))

	// joins signals every JoinGroup that carries a member id: the one
	// that waits at the coordinator until the group rebalances.
	joins := make(chan struct{}, 100)
	cluster.Kfake().ControlKey(int16(kmsg.JoinGroup), func(r kmsg.Request) (kmsg.Response, error, bool) {
		cluster.Kfake().KeepControl()
		if r.(*kmsg.JoinGroupRequest).MemberID != "" || r.(*kmsg.JoinGroupRequest).InstanceID != nil {
			select {
			case joins <- struct{}{}:
			default:
			}
		}
		return nil, nil, false
	})

	cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.Brokers...), kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatalf("kgo client: %v", err)
	}
	defer cl.Close()
	produced := 0
	// produceRound writes n records to every partition.
	produceRound := func(n int) {
		t.Helper()
		var recs []*kgo.Record
		for p := int32(0); p < partitions; p++ {
			_, _, vals := events("kill", produced, n)
			produced += n
			for _, v := range vals {
				recs = append(recs, &kgo.Record{Value: v, Partition: p})
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
	}

	idx := newMemIndex(true)
	cfg := kafkain.Config{Brokers: cluster.Brokers, Topics: []string{topic}, Group: group,
		InstanceID: kafkain.InstanceID("killbox", t.TempDir()), BatchSize: 20, FlushInterval: 20 * time.Millisecond}
	run := func() (c *kafkain.Consumer, cancel func(), done chan error) {
		c = kafkain.New(cfg, writerFor(t, idx), testLogger(t))
		ctx, cancel := context.WithCancel(context.Background())
		done = make(chan error, 1)
		go func() { done <- c.Run(ctx) }()
		return c, cancel, done
	}

	const kills = 8
	for i := range kills {
		produceRound(10)
		// Drop the signals of earlier incarnations.
		for len(joins) > 0 {
			<-joins
		}
		c, cancel, done := run()
		if i%2 == 1 {
			// While its JoinGroup is with the coordinator.
			select {
			case <-joins:
			case <-time.After(10 * time.Second):
				t.Logf("kill %d: no JoinGroup within 10s; killed anyway", i)
			}
		} else {
			time.Sleep(time.Duration(rng.IntN(1500)) * time.Millisecond)
		}
		kafkain.Kill(c)
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("Run after kill %d: %v", i, err)
			}
		case <-time.After(60 * time.Second):
			t.Fatalf("Run did not return after kill %d", i)
		}
	}

	start := time.Now()
	_, cancel, done := run()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	// A record on every partition, produced after the restart, is
	// indexed within 15 s of it: every partition is consumed again.
	produceRound(1)
	idx.waitLen(t, produced, 15*time.Second)
	t.Logf("%d kills; indexing every partition %v after the restart", kills, time.Since(start).Round(time.Millisecond))

	want, _, _ := events("kill", 0, produced)
	got := idx.snapshot()
	for _, r := range want {
		if _, ok := got[r.ID()]; !ok {
			t.Errorf("record %q lost", r.Line)
		}
	}
	if len(got) != produced {
		t.Errorf("%d distinct records indexed, want %d", len(got), produced)
	}
}

// TestStopWhileJoinWaits: a consumer whose JoinGroup waits at the
// coordinator (for a dead member of a dynamic group to expire) still
// stops within seconds when its context ends.
func TestStopWhileJoinWaits(t *testing.T) {
	cluster := kafkatest.Start(t)
	if cluster.External() {
		t.Skip("watches JoinGroup requests inside the in-process kfake broker")
	}
	topic := kafkatest.UniqueName(t, "logs")
	createTopic(t, cluster.Brokers, topic, 2)
	joins := make(chan struct{}, 100)
	cluster.Kfake().ControlKey(int16(kmsg.JoinGroup), func(r kmsg.Request) (kmsg.Response, error, bool) {
		cluster.Kfake().KeepControl()
		if r.(*kmsg.JoinGroupRequest).MemberID != "" {
			select {
			case joins <- struct{}{}:
			default:
			}
		}
		return nil, nil, false
	})
	// Dynamic members: a dead one is waited for until its session ends.
	cfg := kafkain.Config{Brokers: cluster.Brokers, Topics: []string{topic}, Group: kafkatest.UniqueName(t, "group"),
		BatchSize: 20, FlushInterval: 20 * time.Millisecond}
	idx := newMemIndex(true)
	_, _, vals := events("stop", 0, 10)
	produce(t, cluster.Brokers, topic, vals, vals)

	a := kafkain.New(cfg, writerFor(t, idx), testLogger(t))
	actx, acancel := context.WithCancel(context.Background())
	adone := make(chan error, 1)
	go func() { adone <- a.Run(actx) }()
	idx.waitLen(t, 10, 20*time.Second)
	kafkain.Kill(a)
	acancel()
	if err := <-adone; err != nil {
		t.Fatal(err)
	}
	for len(joins) > 0 {
		<-joins
	}

	b := kafkain.New(cfg, writerFor(t, idx), testLogger(t))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	select {
	case <-joins:
	case <-time.After(20 * time.Second):
		t.Fatal("no JoinGroup")
	}
	time.Sleep(200 * time.Millisecond)
	stopAt := time.Now()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("stopped %v after its context ended", time.Since(stopAt).Round(time.Millisecond))
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return within 10s of its context ending while its JoinGroup waited")
	}
}
