package fleet_test

import (
	"context"
	"reflect"
	"testing"

	"github.com/IBM/sarama"
	"github.com/logbox/logbox/appliance/fleet"
	"github.com/logbox/logbox/appliance/kafkatest"
	"github.com/logbox/logbox/appliance/pipeline"
	"github.com/twmb/franz-go/pkg/kfake"
)

// TestKafkaMarks: the earliest offset and high-water mark of every
// partition, from a real Kafka-protocol broker (two brokers: partitions
// have different leaders).
func TestKafkaMarks(t *testing.T) {
	k := kafkatest.Start(t, kfake.NumBrokers(2))
	topic := kafkatest.UniqueName(t, "marks")
	sc := sarama.NewConfig()
	sc.Version = sarama.V2_8_0_0
	sc.Producer.Return.Successes = true
	sc.Producer.Partitioner = sarama.NewManualPartitioner
	admin, err := sarama.NewClusterAdmin(k.Brokers, sc)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if err := admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 3, ReplicationFactor: 1}, false); err != nil {
		t.Fatal(err)
	}
	prod, err := sarama.NewSyncProducer(k.Brokers, sc)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	counts := []int{5, 0, 12}
	for p, n := range counts {
		for range n {
			if _, _, err := prod.SendMessage(&sarama.ProducerMessage{Topic: topic, Partition: int32(p), Value: sarama.StringEncoder("x")}); err != nil {
				t.Fatal(err)
			}
		}
	}
	marks := fleet.KafkaMarks(k.Brokers, sc, []string{topic})
	got, err := marks(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]pipeline.OffsetRange{}
	for p, n := range counts {
		want[pipeline.PartName(topic, int32(p))] = pipeline.OffsetRange{0, int64(n)}
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("marks %v, want %v", got, want)
	}
}
