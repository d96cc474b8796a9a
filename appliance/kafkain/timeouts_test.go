package kafkain

import (
	"testing"
	"time"

	"github.com/IBM/sarama"
)

// TestGroupTimeoutsConsistent: the timeouts of group membership hang
// together (see sessionTimeout): a JoinGroup or SyncGroup that waits at
// the coordinator for the whole rebalance timeout (plus Kafka's initial
// rebalance delay) is not abandoned by the client; heartbeats come often
// enough for the session; the session lies within Kafka's default broker
// bounds; the static instance id reaches sarama with a protocol version
// that carries it.
func TestGroupTimeoutsConsistent(t *testing.T) {
	c := New(Config{Brokers: []string{"127.0.0.1:9092"}, Topics: []string{"logbox"}, InstanceID: "logbox-box1-0a1b2c3d"}, nil, nil)
	sc, err := c.saramaConfig()
	if err != nil {
		t.Fatal(err)
	}
	g := sc.Consumer.Group
	const initialRebalanceDelay = 3 * time.Second // Kafka's group.initial.rebalance.delay.ms
	if sc.Net.ReadTimeout <= g.Rebalance.Timeout+initialRebalanceDelay {
		t.Errorf("Net.ReadTimeout %v is not longer than the rebalance timeout %v plus %v: a JoinGroup that waits for a dead member is abandoned and retried",
			sc.Net.ReadTimeout, g.Rebalance.Timeout, initialRebalanceDelay)
	}
	if g.Heartbeat.Interval*3 > g.Session.Timeout {
		t.Errorf("heartbeat interval %v is more than a third of the session timeout %v", g.Heartbeat.Interval, g.Session.Timeout)
	}
	if g.Session.Timeout < 6*time.Second || g.Session.Timeout > 30*time.Minute {
		t.Errorf("session timeout %v is outside Kafka's default group.min/max.session.timeout.ms (6s, 30m)", g.Session.Timeout)
	}
	if g.InstanceId != "logbox-box1-0a1b2c3d" || !sc.Version.IsAtLeast(sarama.V2_3_0_0) {
		t.Errorf("instance id %q with protocol version %v: static membership needs the id and Kafka 2.3", g.InstanceId, sc.Version)
	}
}
