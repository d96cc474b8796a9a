package kafkaout

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/IBM/sarama"
)

// Config configures the Producer. Zero values mean the documented default.
type Config struct {
	// Brokers are the bootstrap brokers, host:port.
	Brokers []string
	// Topic is the default topic, used for records whose Topic is empty.
	Topic string
	// Acks is "0", "1" or "all" (default). "all" also turns on the
	// idempotent producer, so sarama's own retries never duplicate a message.
	Acks string
	// Compression is none (default), gzip, snappy, lz4 or zstd.
	Compression string
	// Partitions is the partition count of topics the producer creates
	// (default 3).
	Partitions int32
	// ClientID is the Kafka client id (default "logbox").
	ClientID string
	// DrainTimeout bounds how long Run waits at shutdown for in-flight
	// messages to be acked (default 5s).
	DrainTimeout time.Duration
	// MaxInFlight is how many records may be published but not yet acked
	// before Publish blocks (default 50000).
	MaxInFlight int
}

const (
	defaultPartitions   = 3
	defaultClientID     = "logbox"
	defaultDrainTimeout = 5 * time.Second
	defaultMaxInFlight  = 50000
)

func (c Config) withDefaults() Config {
	if c.Acks == "" {
		c.Acks = "all"
	}
	if c.Compression == "" {
		c.Compression = "none"
	}
	if c.Partitions == 0 {
		c.Partitions = defaultPartitions
	}
	if c.ClientID == "" {
		c.ClientID = defaultClientID
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = defaultDrainTimeout
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = defaultMaxInFlight
	}
	return c
}

// Validate reports every problem of the config at once.
func (c Config) Validate() error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("kafka brokers: none given"))
	}
	for _, b := range c.Brokers {
		if strings.TrimSpace(b) == "" {
			errs = append(errs, errors.New("kafka brokers: empty address"))
		}
	}
	if err := ValidTopic(c.Topic); err != nil {
		errs = append(errs, fmt.Errorf("kafka topic: %w", err))
	}
	if _, err := requiredAcks(c.withDefaults().Acks); err != nil {
		errs = append(errs, err)
	}
	if _, err := compressionCodec(c.withDefaults().Compression); err != nil {
		errs = append(errs, err)
	}
	if c.Partitions < 0 {
		errs = append(errs, fmt.Errorf("kafka partitions: %d is negative", c.Partitions))
	}
	if c.DrainTimeout < 0 {
		errs = append(errs, fmt.Errorf("kafka drain timeout: %v is negative", c.DrainTimeout))
	}
	if c.MaxInFlight < 0 {
		errs = append(errs, fmt.Errorf("kafka max in-flight: %d is negative", c.MaxInFlight))
	}
	return errors.Join(errs...)
}

// ValidTopic reports whether name is a legal Kafka topic name.
func ValidTopic(name string) error {
	switch {
	case name == "":
		return errors.New("empty name")
	case name == "." || name == "..":
		return fmt.Errorf("%q is not allowed", name)
	case len(name) > 249:
		return fmt.Errorf("%q is longer than 249 characters", name)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("%q has %q; use only letters, digits, '.', '_' and '-'", name, r)
		}
	}
	return nil
}

func requiredAcks(acks string) (sarama.RequiredAcks, error) {
	switch acks {
	case "all", "-1":
		return sarama.WaitForAll, nil
	case "1":
		return sarama.WaitForLocal, nil
	case "0":
		return sarama.NoResponse, nil
	}
	return 0, fmt.Errorf("kafka acks: %q is not one of 0, 1, all", acks)
}

func compressionCodec(name string) (sarama.CompressionCodec, error) {
	switch strings.ToLower(name) {
	case "none", "":
		return sarama.CompressionNone, nil
	case "gzip":
		return sarama.CompressionGZIP, nil
	case "snappy":
		return sarama.CompressionSnappy, nil
	case "lz4":
		return sarama.CompressionLZ4, nil
	case "zstd":
		return sarama.CompressionZSTD, nil
	}
	return 0, fmt.Errorf("kafka compression: %q is not one of none, gzip, snappy, lz4, zstd", name)
}

// saramaConfig builds the sarama config for c (defaults applied).
func (c Config) saramaConfig() (*sarama.Config, error) {
	acks, err := requiredAcks(c.Acks)
	if err != nil {
		return nil, err
	}
	codec, err := compressionCodec(c.Compression)
	if err != nil {
		return nil, err
	}
	sc := sarama.NewConfig()
	// 2.8 is sarama's fully covered protocol level; every broker from 2.8
	// to 4.x speaks it, and it allows zstd and CreateTopics with the
	// broker's default replication factor.
	sc.Version = sarama.V2_8_0_0
	sc.ClientID = c.ClientID
	sc.ChannelBufferSize = 16384
	sc.Net.DialTimeout = 10 * time.Second
	sc.Metadata.Retry.Max = 3
	sc.Metadata.Retry.Backoff = 250 * time.Millisecond

	p := &sc.Producer
	p.RequiredAcks = acks
	p.Compression = codec
	p.Partitioner = sarama.NewHashPartitioner
	p.Return.Successes = true
	p.Return.Errors = true
	p.Flush.Bytes = 1 << 20
	p.Flush.Frequency = 5 * time.Millisecond
	// sarama retries a few times itself; after that the message comes back
	// as an error and the Producer re-sends it with its own backoff, forever.
	p.Retry.Max = 10
	p.Retry.Backoff = 250 * time.Millisecond
	if acks == sarama.WaitForAll {
		p.Idempotent = true
		sc.Net.MaxOpenRequests = 1
	}
	if err := sc.Validate(); err != nil {
		return nil, fmt.Errorf("kafka producer config: %w", err)
	}
	return sc, nil
}
