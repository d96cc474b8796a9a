// Package kafkaconn is how logbox's Kafka producer and consumer reach the
// brokers: a client dialled with backoff until it connects or its context
// ends, and topics created with one partition default. Both roles use it,
// so a topic is created the same way whichever role comes first. Security
// settings (TLS, SASL) are package kafkaauth's.
package kafkaconn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/IBM/sarama"
)

// DefaultPartitions is the partition count of topics logbox creates
// when the configuration names none.
const DefaultPartitions = 3

// Backoff between connection attempts: it starts at firstDelay and
// doubles up to maxDelay.
const (
	firstDelay = 250 * time.Millisecond
	maxDelay   = 10 * time.Second
)

// Dial returns a client for brokers once one connects and setup(client)
// succeeds, retrying with backoff until then or until ctx ends (it then
// returns ctx's error). setup builds what the caller needs on the client
// (an admin, a producer, a consumer group); when it fails the client is
// closed and the attempt counts as failed. setup may be nil. The caller
// closes the client.
//
// A failed attempt is logged at Warn on the first and every 20th attempt
// (Debug otherwise); impact says what waits meanwhile, e.g. "nothing is
// indexed from it".
func Dial(ctx context.Context, brokers []string, sc *sarama.Config, log *slog.Logger, impact string, setup func(sarama.Client) error) (sarama.Client, error) {
	delay := firstDelay
	for attempt := 1; ; attempt++ {
		client, err := sarama.NewClient(brokers, sc)
		if err == nil && setup != nil {
			if err = setup(client); err != nil {
				client.Close()
			}
		}
		if err == nil {
			if attempt > 1 {
				log.Info("kafka reachable again", "brokers", brokers, "attempts", attempt)
			}
			return client, nil
		}
		lvl := slog.LevelDebug
		if attempt == 1 || attempt%20 == 0 {
			lvl = slog.LevelWarn
		}
		log.Log(ctx, lvl, "cannot connect to kafka; "+impact+"; check that the kafka brokers setting names reachable brokers and that the kafka TLS and SASL settings match theirs",
			"brokers", brokers, "attempt", attempt, "err", err)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(delay):
		}
		delay = min(delay*2, maxDelay)
	}
}

// CreateTopic creates topic with partitions partitions and the broker's
// default replication factor, falling back to 1 for brokers that refuse
// -1. A topic that exists already is no error.
func CreateTopic(admin sarama.ClusterAdmin, topic string, partitions int32) error {
	err := admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: partitions, ReplicationFactor: -1}, false)
	if errors.Is(err, sarama.ErrInvalidReplicationFactor) || errors.Is(err, sarama.ErrInvalidRequest) ||
		errors.Is(err, sarama.ErrUnsupportedVersion) {
		err = admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: partitions, ReplicationFactor: 1}, false)
	}
	if err == nil || errors.Is(err, sarama.ErrTopicAlreadyExists) {
		return nil
	}
	return fmt.Errorf("create topic %q: %w", topic, err)
}

// EnsureTopics creates, with partitions partitions, those of topics the
// cluster does not have yet. It returns the failures, joined; a topic that
// could not be created but exists all the same (someone else created it,
// or the client may read but not create) is no failure.
func EnsureTopics(client sarama.Client, topics []string, partitions int32) error {
	// A stale cache would make us create topics that exist, which a client
	// without create rights may not do.
	_ = client.RefreshMetadata()
	have, err := client.Topics()
	if err != nil {
		return fmt.Errorf("list topics: %w", err)
	}
	var admin sarama.ClusterAdmin
	var errs []error
	for _, t := range topics {
		if slices.Contains(have, t) {
			continue
		}
		if admin == nil {
			// It shares client: closing the client is enough.
			if admin, err = sarama.NewClusterAdminFromClient(client); err != nil {
				return fmt.Errorf("create topics: %w", err)
			}
		}
		if err := CreateTopic(admin, t, partitions); err != nil {
			if _, perr := client.Partitions(t); perr == nil {
				continue
			}
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
