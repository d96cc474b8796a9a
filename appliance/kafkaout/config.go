package kafkaout

import (
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/IBM/sarama"

	"github.com/logbox/logbox/appliance/kafkaauth"
	"github.com/logbox/logbox/appliance/kafkaconn"
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
	// before Publish blocks (default 10000).
	MaxInFlight int
	// Partitioner picks a record's partition: "hash" (default) hashes the
	// key (host|path), so one file's lines stay in one partition, in
	// order; "random" and "roundrobin" spread them, giving up that order.
	Partitioner string
	// TLS, when set, is used for every broker connection; nil is
	// plaintext. See TLSConfig.
	TLS *tls.Config
	// SASLMechanism is "" (no SASL), "PLAIN", "SCRAM-SHA-256" or
	// "SCRAM-SHA-512"; SASLUser and SASLPassword are its credentials.
	// PLAIN sends the password as is: use it only with TLS.
	SASLMechanism string
	SASLUser      string
	SASLPassword  string
	// MaxMessageBytes is the most bytes one message may take (default
	// 1000000, Kafka's message.max.bytes; keep it at or below the
	// broker's and the topic's limit). An event that would not fit has its
	// line cut and the "truncated" flag set, and is counted in
	// ProducerStats.Truncated.
	MaxMessageBytes int
}

const (
	defaultClientID     = "logbox"
	defaultDrainTimeout = 5 * time.Second
	// defaultMaxInFlight keeps an agent's heap well under its 64 MiB soft
	// memory limit: a record in flight holds about 1.5 KiB (the record,
	// its event, sarama's copy in a request), and at 50000 the heap sat at
	// the limit, the GC running and returning memory to the OS all the
	// time (a quarter of the agent's CPU). 10000 is several requests' worth
	// per broker, enough to keep acks=all pipelined.
	defaultMaxInFlight = 10000
	// DefaultMaxMessageBytes is Kafka's default message.max.bytes.
	DefaultMaxMessageBytes = 1000000
	// minMaxMessageBytes leaves room for an event's metadata.
	minMaxMessageBytes = 1024
)

func (c Config) withDefaults() Config {
	if c.Acks == "" {
		c.Acks = "all"
	}
	if c.Compression == "" {
		c.Compression = "none"
	}
	if c.Partitions == 0 {
		c.Partitions = kafkaconn.DefaultPartitions
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
	if c.Partitioner == "" {
		c.Partitioner = "hash"
	}
	if c.MaxMessageBytes == 0 {
		c.MaxMessageBytes = DefaultMaxMessageBytes
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
	if _, err := partitioner(c.withDefaults().Partitioner); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, kafkaauth.Validate(c.SASLMechanism, c.SASLUser, c.SASLPassword)...)
	if m := c.MaxMessageBytes; m != 0 && (m < minMaxMessageBytes || m >= int(sarama.MaxRequestSize)) {
		errs = append(errs, fmt.Errorf("kafka max message bytes: %d is not between %d and %d", m, minMaxMessageBytes, sarama.MaxRequestSize-1))
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

func partitioner(name string) (sarama.PartitionerConstructor, error) {
	switch strings.ToLower(name) {
	case "hash":
		return sarama.NewHashPartitioner, nil
	case "random":
		return sarama.NewRandomPartitioner, nil
	case "roundrobin":
		return sarama.NewRoundRobinPartitioner, nil
	}
	return nil, fmt.Errorf("kafka partitioner: %q is not one of hash, random, roundrobin", name)
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
	part, err := partitioner(c.Partitioner)
	if err != nil {
		return nil, err
	}
	sc := sarama.NewConfig()
	if err := kafkaauth.Apply(sc, c.TLS, c.SASLMechanism, c.SASLUser, c.SASLPassword); err != nil {
		return nil, err
	}
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
	p.Partitioner = part
	// Also caps a partition's batch, so a batch fits a broker whose
	// message.max.bytes is at least this.
	p.MaxMessageBytes = c.MaxMessageBytes
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
