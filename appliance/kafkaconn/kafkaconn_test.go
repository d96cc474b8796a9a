package kafkaconn_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/logbox/logbox/appliance/kafkaconn"
	"github.com/logbox/logbox/appliance/kafkatest"
)

func config() *sarama.Config {
	sc := sarama.NewConfig()
	sc.Version = sarama.V2_8_0_0
	sc.Metadata.Retry.Max = 1
	sc.Metadata.Retry.Backoff = 10 * time.Millisecond
	return sc
}

func partitions(t *testing.T, client sarama.Client, topic string) int {
	t.Helper()
	if err := client.RefreshMetadata(topic); err != nil {
		t.Fatalf("metadata of %q: %v", topic, err)
	}
	ps, err := client.Partitions(topic)
	if err != nil {
		t.Fatalf("partitions of %q: %v", topic, err)
	}
	return len(ps)
}

// TestEnsureTopics: missing topics are created with the partition count
// given; an existing one is left as it is; asking again is no error.
func TestEnsureTopics(t *testing.T) {
	cluster := kafkatest.Start(t)
	client, err := sarama.NewClient(cluster.Brokers, config())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	a, b, old := kafkatest.UniqueName(t, "a"), kafkatest.UniqueName(t, "b"), kafkatest.UniqueName(t, "old")
	if err := kafkaconn.EnsureTopics(client, []string{old}, 2); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := kafkaconn.EnsureTopics(client, []string{a, old, b}, 4); err != nil {
			t.Fatal(err)
		}
	}
	for topic, want := range map[string]int{a: 4, b: 4, old: 2} {
		if got := partitions(t, client, topic); got != want {
			t.Errorf("%s: %d partitions, want %d", topic, got, want)
		}
	}
}

// TestDial: Dial waits for a broker that is down, runs setup on the
// client it gets, retries when setup fails, and gives up when its
// context ends.
func TestDial(t *testing.T) {
	cluster := kafkatest.Start(t)
	cluster.Stop()
	log := slog.New(slog.DiscardHandler)

	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if _, err := kafkaconn.Dial(ctx, cluster.Brokers, config(), log, "test", nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Dial to a stopped broker: %v, want the context's error", err)
	}

	go func() {
		time.Sleep(300 * time.Millisecond)
		cluster.Restart()
	}()
	setups := 0
	ctx, cancel = context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client, err := kafkaconn.Dial(ctx, cluster.Brokers, config(), log, "test", func(c sarama.Client) error {
		if setups++; setups == 1 {
			return errors.New("first setup fails")
		}
		_, err := c.Topics()
		return err
	})
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer client.Close()
	if setups != 2 || client.Closed() {
		t.Errorf("setup ran %d times (want 2: one failure, one success); client closed %v", setups, client.Closed())
	}
}
