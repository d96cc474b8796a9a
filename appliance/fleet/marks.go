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
		out, err := offsetsByLeader(client, topics)
		if err != nil {
			return nil, err
		}
		last, at = out, time.Now()
		return out, nil
	}
}

// offsetsByLeader asks each partition leader once for the earliest
// offsets and once for the high-water marks of all its partitions.
func offsetsByLeader(client sarama.Client, topics []string) (map[string]pipeline.OffsetRange, error) {
	type tp struct {
		topic string
		part  int32
	}
	byLeader := map[*sarama.Broker][]tp{}
	for _, t := range topics {
		ps, err := client.Partitions(t)
		if err != nil {
			return nil, fmt.Errorf("fleet: partitions of %s: %w", t, err)
		}
		for _, p := range ps {
			b, err := client.Leader(t, p)
			if err != nil {
				return nil, fmt.Errorf("fleet: leader of %s/%d: %w", t, p, err)
			}
			byLeader[b] = append(byLeader[b], tp{t, p})
		}
	}
	out := map[string]pipeline.OffsetRange{}
	for b, tps := range byLeader {
		for k, when := range []int64{sarama.OffsetOldest, sarama.OffsetNewest} {
			req := &sarama.OffsetRequest{Version: 1}
			for _, x := range tps {
				req.AddBlock(x.topic, x.part, when, 1)
			}
			resp, err := b.GetAvailableOffsets(req)
			if err != nil {
				return nil, fmt.Errorf("fleet: offsets from broker %s: %w", b.Addr(), err)
			}
			for _, x := range tps {
				blk := resp.GetBlock(x.topic, x.part)
				if blk == nil || blk.Err != sarama.ErrNoError {
					e := fmt.Errorf("no answer")
					if blk != nil {
						e = blk.Err
					}
					return nil, fmt.Errorf("fleet: offsets of %s/%d: %w", x.topic, x.part, e)
				}
				name := pipeline.PartName(x.topic, x.part)
				r := out[name]
				r[k] = blk.Offset
				out[name] = r
			}
		}
	}
	return out, nil
}
