package kafkain_test

import (
	"slices"
	"testing"
	"time"

	"github.com/logbox/logbox/appliance/kafkain"
	"github.com/logbox/logbox/appliance/kafkatest"
	"github.com/logbox/logbox/appliance/pipeline"
)

// TestStickyAssignment: when one of three consumers leaves, the other two
// keep the partitions they had and only the leaver's move (a moved
// partition is read again from Kafka by its new owner); each survivor's
// lag lists only what it claims now.
func TestStickyAssignment(t *testing.T) {
	cluster := kafkatest.Start(t)
	topic := kafkatest.UniqueName(t, "logs")
	group := kafkatest.UniqueName(t, "group")
	createTopic(t, cluster.Brokers, topic, 6)
	produceSpread(t, cluster.Brokers, topic, 6, "st", 0, 60)
	cfg := kafkain.Config{Brokers: cluster.Brokers, Topics: []string{topic}, Group: group, BatchSize: 20, FlushInterval: 20 * time.Millisecond}
	var cs []*kafkain.Consumer
	var stops []func()
	// Dynamic members: one that stops leaves the group at once (a
	// static one is waited for until its session times out).
	for i := range 3 {
		cs = append(cs, kafkain.New(cfg, writerFor(t, newCountIndex()), testLogger(t)))
		stops = append(stops, runConsumer(t, cs[i]))
	}
	// Wait for a settled assignment: the three hold the 6 between them.
	settled := func(members []*kafkain.Consumer) ([][]string, bool) {
		var as [][]string
		var all []string
		for _, c := range members {
			a := c.Assigned()
			as = append(as, a)
			all = append(all, a...)
		}
		slices.Sort(all)
		return as, len(all) == 6 && len(slices.Compact(all)) == 6
	}
	var before [][]string
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		as, ok := settled(cs)
		if ok && len(as[0]) > 0 && len(as[1]) > 0 && len(as[2]) > 0 {
			before = as
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no settled assignment of 6 partitions to 3 consumers: %v", as)
		}
	}
	// The one holding partition 0 leaves: with the range assignor, the
	// first member's, whose leaving shifts every range.
	leave := slices.IndexFunc(before, func(a []string) bool { return slices.Contains(a, pipeline.PartName(topic, 0)) })
	t.Logf("assigned %v; consumer %d leaves", before, leave)
	stops[leave]()
	var rest []*kafkain.Consumer
	var restBefore [][]string
	for i := range cs {
		if i != leave {
			rest = append(rest, cs[i])
			restBefore = append(restBefore, before[i])
		}
	}
	var after [][]string
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		as, ok := settled(rest)
		if ok {
			after = as
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the two left do not hold the 6: %v", as)
		}
	}
	for i := range rest {
		for _, p := range restBefore[i] {
			if !slices.Contains(after[i], p) {
				t.Errorf("survivor %d had %v and now %v: it lost %s, a partition that did not need to move", i, restBefore[i], after[i], p)
			}
		}
		for _, l := range rest[i].Stats().Lag {
			if p := pipeline.PartName(l.Topic, l.Partition); !slices.Contains(after[i], p) {
				t.Errorf("survivor %d shows lag for %s, which it does not claim (%v)", i, p, after[i])
			}
		}
	}
	t.Logf("after: %v", after)
}
