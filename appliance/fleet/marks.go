package fleet

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/logbox/logbox/appliance/pipeline"
)

// KafkaMarks returns a Router.Marks that reads each partition's earliest
// offset and high-water mark of topics from Kafka, at most once a second
// (the client is made on first use and kept).
func KafkaMarks(brokers []string, sc *sarama.Config, topics []string) func(ctx context.Context) (map[string]pipeline.OffsetRange, error) {
	var mu sync.Mutex
	var client sarama.Client
	var last map[string]pipeline.OffsetRange
	var at time.Time
	return func(ctx context.Context) (map[string]pipeline.OffsetRange, error) {
		mu.Lock()
		defer mu.Unlock()
		if last != nil && time.Since(at) < time.Second {
			return last, nil
		}
		if client == nil {
			c, err := sarama.NewClient(brokers, sc)
			if err != nil {
				return nil, fmt.Errorf("fleet: kafka client: %w", err)
			}
			client = c
		}
		if err := client.RefreshMetadata(topics...); err != nil {
			return nil, fmt.Errorf("fleet: kafka metadata: %w", err)
		}
		out := map[string]pipeline.OffsetRange{}
		for _, t := range topics {
			ps, err := client.Partitions(t)
			if err != nil {
				return nil, fmt.Errorf("fleet: partitions of %s: %w", t, err)
			}
			for _, p := range ps {
				lo, err := client.GetOffset(t, p, sarama.OffsetOldest)
				if err != nil {
					return nil, fmt.Errorf("fleet: earliest offset of %s/%d: %w", t, p, err)
				}
				hi, err := client.GetOffset(t, p, sarama.OffsetNewest)
				if err != nil {
					return nil, fmt.Errorf("fleet: high-water mark of %s/%d: %w", t, p, err)
				}
				out[pipeline.PartName(t, p)] = pipeline.OffsetRange{lo, hi}
			}
		}
		last, at = out, time.Now()
		return out, nil
	}
}
