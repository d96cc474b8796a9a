// Package kafkain consumes logbox events from Kafka with a sarama consumer
// group. It is an input like the tailer: it emits each partition's
// messages as pipeline.Batch values to the index writer, and the batch's
// ack is what marks its offsets for commit (the delivery contract is on
// pipeline.Batch). Anything consumed but not yet acked is consumed again
// after a restart or a rebalance, and the index skips what it holds (see
// pipeline.Record.ID).
//
// For the fleet (several indexers answering together), every record
// carries its partition as Record.Part, the consumer keeps the Kafka
// offsets its index holds as a pipeline.Coverage (coverage.go), and it can
// read from Kafka what a partition moved to it lacks below where the
// group's claim starts (gap fill, fill.go).
package kafkain

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"

	"github.com/logbox/logbox/appliance/kafkaauth"
	"github.com/logbox/logbox/appliance/kafkaconn"
	"github.com/logbox/logbox/appliance/pipeline"
)

// Config configures the Consumer. Zero values mean the documented default.
type Config struct {
	// Brokers are the bootstrap brokers, host:port.
	Brokers []string
	// Topics are consumed; missing ones are created with Partitions
	// partitions.
	Topics []string
	// Partitions is the partition count of topics the consumer creates
	// (default 3, as the producer's).
	Partitions int32
	// Group is the consumer group (default "logbox-indexer").
	Group string
	// InstanceID, when set, makes the consumer a static member of the
	// group (KIP-345, Kafka 2.3 and later): a consumer that restarts with
	// the same InstanceID within the session timeout gets its partitions
	// back without a rebalance and without waiting for its dead former
	// self to expire. It must be unique in the group and stable across
	// restarts (see InstanceID); a second consumer with the same one
	// fences the first. Empty: a dynamic member, which leaves the group
	// when Run returns.
	InstanceID string
	// BatchSize is the most records handed to Index at once (default
	// 20000, as the direct-mode writer: see indexwriter.Config.BatchSize).
	BatchSize int
	// FlushInterval is the longest a consumed record waits for its batch
	// to fill before it is indexed anyway (default 200ms).
	FlushInterval time.Duration
	// ClientID is the Kafka client id (default "logbox").
	ClientID string
	// HandoverWait is how long a batch handed to the writer is still
	// waited for once its partition is revoked or the consumer stops,
	// so that it is committed if written (default 5s).
	HandoverWait time.Duration
	// TLS, when set, is used for every broker connection; nil is
	// plaintext.
	TLS *tls.Config
	// SASLMechanism is "" (no SASL), "PLAIN", "SCRAM-SHA-256" or
	// "SCRAM-SHA-512"; SASLUser and SASLPassword are its credentials.
	SASLMechanism string
	SASLUser      string
	SASLPassword  string
	// CoverageFile, when set, keeps Coverage across restarts: loaded
	// when Run starts, rewritten atomically at most about once a second
	// while it changes, and once when Run ends. Empty: coverage starts
	// empty at every start.
	CoverageFile string
	// FillGaps turns on gap fill: when a claim of a partition starts
	// above offsets of it that Kafka still holds and Coverage lacks, they
	// are read from Kafka and indexed (see fill.go). The zero value is
	// off; the appliance turns it on unless told not to. Use it with a
	// CoverageFile, or every start reads the claimed partitions again
	// from their earliest offsets (nothing is indexed twice, but it takes
	// time).
	FillGaps bool
}

func (c Config) withDefaults() Config {
	if c.Group == "" {
		c.Group = "logbox-indexer"
	}
	if c.BatchSize == 0 {
		c.BatchSize = 20000
	}
	if c.FlushInterval == 0 {
		c.FlushInterval = 200 * time.Millisecond
	}
	if c.ClientID == "" {
		c.ClientID = "logbox"
	}
	if c.HandoverWait <= 0 {
		c.HandoverWait = 5 * time.Second
	}
	if c.Partitions == 0 {
		c.Partitions = kafkaconn.DefaultPartitions
	}
	return c
}

// Validate reports every problem of the config at once.
func (c Config) Validate() error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("kafka brokers: none given"))
	}
	if len(c.Topics) == 0 {
		errs = append(errs, errors.New("kafka topics: none given"))
	}
	for _, t := range c.Topics {
		if t == "" || strings.ContainsAny(t, " \t\n/,") {
			errs = append(errs, fmt.Errorf("kafka topic %q: not a valid topic name", t))
		}
	}
	if c.BatchSize < 0 {
		errs = append(errs, fmt.Errorf("kafka batch size: %d is negative", c.BatchSize))
	}
	if c.FlushInterval < 0 {
		errs = append(errs, fmt.Errorf("kafka flush interval: %v is negative", c.FlushInterval))
	}
	if c.Partitions < 0 {
		errs = append(errs, fmt.Errorf("kafka partitions: %d is negative", c.Partitions))
	}
	if c.InstanceID != "" {
		if err := ValidInstanceID(c.InstanceID); err != nil {
			errs = append(errs, fmt.Errorf("kafka instance id: %w", err))
		}
	}
	errs = append(errs, kafkaauth.Validate(c.SASLMechanism, c.SASLUser, c.SASLPassword)...)
	return errors.Join(errs...)
}

// maxInstanceIDLen is Kafka's limit on a group.instance.id.
const maxInstanceIDLen = 249

// ValidInstanceID returns why id is not a group instance id Kafka
// accepts, or nil. Kafka accepts 1 to 249 of letters, digits, '.', '_'
// and '-', but not "." or ".." (sarama's config check, which logbox's
// settings check cannot call, says the same).
func ValidInstanceID(id string) error {
	switch {
	case id == "":
		return errors.New("empty")
	case id == "." || id == "..":
		return fmt.Errorf("%q is not allowed", id)
	case len(id) > maxInstanceIDLen:
		return fmt.Errorf("%q is longer than %d characters", id, maxInstanceIDLen)
	}
	for _, r := range id {
		if !instanceIDRune(r) {
			return fmt.Errorf("%q has %q; use only letters, digits, '.', '_' and '-'", id, r)
		}
	}
	return nil
}

func instanceIDRune(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-'
}

// InstanceID derives a static group instance id for the consumer of the
// logbox process on host whose data directory is dataDir (pass it
// absolute, symlinks resolved): "logbox-<host>-<8 hex digits of a hash of
// dataDir>". It is the same each time that process starts, and differs
// for two processes on one host (they cannot share a data directory) and
// for two hosts, so long as host names differ. Characters Kafka does not
// allow in the host become '-'.
func InstanceID(host, dataDir string) string {
	// Every rune left is ASCII: cutting bytes cuts runes.
	h := strings.Map(func(r rune) rune {
		if instanceIDRune(r) {
			return r
		}
		return '-'
	}, host)
	sum := sha256.Sum256([]byte(dataDir))
	return "logbox-" + h[:min(len(h), 200)] + "-" + hex.EncodeToString(sum[:4])
}

// PartitionLag is how far the consumer is behind one partition.
type PartitionLag struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	// Lag is the high-water mark minus the next offset to consume.
	Lag int64 `json:"lag"`
}

// ConsumerStats are counters for a status page.
type ConsumerStats struct {
	// InstanceID is the static group membership id ("" for a dynamic
	// member).
	InstanceID string
	// Sessions counts group sessions begun: the first join, and one per
	// rebalance after it.
	Sessions uint64
	// Consumed counts messages read from Kafka (replays and gap fill
	// included).
	Consumed uint64
	// Indexed counts records Index accepted.
	Indexed uint64
	// Commits counts offset commits of durable batches (coalesced).
	Commits uint64
	// DecodeFallbacks counts messages that were not logbox events and were
	// indexed as raw lines.
	DecodeFallbacks uint64
	// ECSEvents counts messages decoded as Filebeat / ECS-style events
	// (a "message" and no "line").
	ECSEvents uint64
	// IndexErrors counts batches the writer gave back unwritten (a
	// nack: it was stopping); their offsets stay uncommitted. Passing
	// failures are retried by the writer and not counted here.
	IndexErrors uint64
	// Lag is per partition claimed in the current (or, between sessions,
	// the last) session, sorted.
	Lag []PartitionLag
	// Filling are the partitions (PartName) a gap filler is filling or
	// waiting to fill (see Filling).
	Filling []string
	// FilledLines counts records gap fillers read and the writer acked
	// (also counted in Consumed and Indexed).
	FilledLines uint64
}

// Consumer reads topics as a member of a consumer group and indexes what
// it reads. Create it with New, start it with Run.
type Consumer struct {
	cfg  Config
	sink pipeline.Sink
	log  *slog.Logger

	consumed, indexed, commits, fallbacks, ecs, indexErrs, sessions, filled atomic.Uint64

	lagMu sync.Mutex
	lag   map[topicPartition]int64

	// conns opens every broker connection, so Run can cut a request that
	// waits at the coordinator when it must stop.
	conns *conns

	// covMu guards the coverage and the claims.
	covMu      sync.Mutex
	cov        pipeline.Coverage
	covVersion uint64         // bumped by every change of cov
	covSaved   uint64         // the covVersion last written to CoverageFile
	assigned   map[string]int // PartName → claims under way
	// saveMu serializes coverage file writes; covFailing is under it.
	saveMu     sync.Mutex
	covFailing bool

	// fillers are Run's gap fillers; nil before Run.
	fillers atomic.Pointer[fillers]
}

type topicPartition struct {
	topic     string
	partition int32
}

// New returns a Consumer for cfg (defaults applied; call cfg.Validate
// first) that hands its batches to sink (the index writer). It starts
// nothing. log may be nil.
func New(cfg Config, sink pipeline.Sink, log *slog.Logger) *Consumer {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Consumer{
		cfg:      cfg.withDefaults(),
		sink:     sink,
		log:      log.With("component", "kafkain"),
		lag:      map[topicPartition]int64{},
		cov:      pipeline.Coverage{},
		assigned: map[string]int{},
		// Dials as sarama would with Net.DialTimeout 10s.
		conns: newConns(10 * time.Second),
	}
}

// Stats returns the current counters.
func (c *Consumer) Stats() ConsumerStats {
	s := ConsumerStats{
		InstanceID:      c.cfg.InstanceID,
		Sessions:        c.sessions.Load(),
		Consumed:        c.consumed.Load(),
		Indexed:         c.indexed.Load(),
		Commits:         c.commits.Load(),
		DecodeFallbacks: c.fallbacks.Load(),
		ECSEvents:       c.ecs.Load(),
		IndexErrors:     c.indexErrs.Load(),
		Filling:         c.Filling(),
		FilledLines:     c.filled.Load(),
	}
	c.lagMu.Lock()
	for tp, l := range c.lag {
		s.Lag = append(s.Lag, PartitionLag{Topic: tp.topic, Partition: tp.partition, Lag: l})
	}
	c.lagMu.Unlock()
	sort.Slice(s.Lag, func(i, j int) bool {
		if s.Lag[i].Topic != s.Lag[j].Topic {
			return s.Lag[i].Topic < s.Lag[j].Topic
		}
		return s.Lag[i].Partition < s.Lag[j].Partition
	})
	return s
}

// Group membership timeouts. They must hang together:
//
//   - A JoinGroup is answered only once every member of the group has
//     rejoined or the group's rebalance timeout has passed (on an empty
//     group Kafka first waits group.initial.rebalance.delay.ms, 3 s by
//     default); a SyncGroup waits for the leader's, bounded by the same
//     timeout. netReadTimeout must outlast that wait: a client that gives
//     up on its JoinGroup rejoins, and a coordinator that starts its wait
//     over on each rejoin (kfake does) then never answers. That was the
//     stall after a kill -9 with sarama's defaults, 30 s read timeout
//     against a 60 s rebalance timeout: the new member waited for the
//     dead one, gave up after 30 s and asked again, forever.
//   - rebalanceTimeout is also how long a member has to finish its claims
//     (ConsumeClaim returns as soon as its context ends; an Index call
//     under way finishes first) and rejoin. 30 s is ample, and bounds how
//     long a dead member that joined but never synced (killed during
//     start-up) holds up a group of dynamic members.
//   - sessionTimeout is how long a member that went silent (killed, cut
//     off) keeps its partitions before they go to the others. With static
//     membership it is also how long a restarting process may take and
//     still take its partitions back without a rebalance; 30 s covers a
//     restart (etcd and index open in a few seconds) and lies between
//     Kafka's group.min (6 s) and group.max (30 min) session timeouts.
//   - heartbeatInterval is a tenth of the session (Kafka asks for at most
//     a third), so a few lost heartbeats do not end a session.
//
// A group whose other members declare a longer rebalance timeout than
// netReadTimeout (other software sharing the group) can still outlast it;
// logbox's indexers all use these values.
const (
	sessionTimeout    = 30 * time.Second
	heartbeatInterval = 3 * time.Second
	rebalanceTimeout  = 30 * time.Second
	netReadTimeout    = rebalanceTimeout + 15*time.Second
	// abortGrace is how long Run waits, once its context ends, for the
	// group to close by itself (ending claims, committing what the index
	// holds) before it cuts a request still waiting at the coordinator.
	abortGrace = 3 * time.Second
)

func (c *Consumer) saramaConfig() (*sarama.Config, error) {
	sc := sarama.NewConfig()
	if err := kafkaauth.Apply(sc, c.cfg.TLS, c.cfg.SASLMechanism, c.cfg.SASLUser, c.cfg.SASLPassword); err != nil {
		return nil, err
	}
	// 2.8 as the producer; static membership needs 2.3 (JoinGroup v5).
	sc.Version = sarama.V2_8_0_0
	sc.ClientID = c.cfg.ClientID
	sc.ChannelBufferSize = 4096
	sc.Net.ReadTimeout = netReadTimeout
	sc.Consumer.Return.Errors = true
	sc.Consumer.Offsets.Initial = sarama.OffsetOldest
	// Offsets are committed by hand, after the index holds the batch.
	sc.Consumer.Offsets.AutoCommit.Enable = false
	sc.Consumer.Fetch.Default = 4 << 20
	// A commit waits behind a long-polling fetch on the coordinator's
	// connection; a shorter poll keeps commits close behind the index.
	sc.Consumer.MaxWaitTime = 250 * time.Millisecond
	sc.Consumer.Group.Session.Timeout = sessionTimeout
	sc.Consumer.Group.Heartbeat.Interval = heartbeatInterval
	sc.Consumer.Group.Rebalance.Timeout = rebalanceTimeout
	sc.Consumer.Group.InstanceId = c.cfg.InstanceID
	// Sticky first: when a member leaves, the others keep what they had
	// and only its partitions move (each moved partition is read again
	// from Kafka by its new owner, see gap fill). Range stays offered, so
	// a group of older members keeps working while they are upgraded.
	sc.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategySticky(), sarama.NewBalanceStrategyRange()}
	sc.Net.Proxy.Enable = true
	sc.Net.Proxy.Dialer = c.conns
	if err := sc.Validate(); err != nil {
		return nil, fmt.Errorf("kafka consumer config: %w", err)
	}
	return sc, nil
}

// Run consumes until ctx is done. It retries with backoff while Kafka is
// unreachable or a session fails, and returns only fatal errors (a config
// sarama rejects); it returns nil when ctx ends, within seconds even if a
// request was waiting at the group coordinator. Records consumed but not
// yet indexed when ctx ends are not committed. Run may be called once.
// It loads the coverage from Config.CoverageFile first and writes it a
// last time before it returns, once every claim and gap filler ended.
func (c *Consumer) Run(ctx context.Context) error {
	sc, err := c.saramaConfig()
	if err != nil {
		return err
	}
	c.loadCoverage()
	defer c.saveCoverage()
	client, group, err := c.connect(ctx, sc)
	if err != nil {
		return nil // ctx ended before Kafka was reachable
	}
	defer client.Close()
	// Fillers use the client: they end before it closes, and after the
	// group (whose claims start them).
	fills := newFillers(ctx, client, func() (sarama.Client, error) { return sarama.NewClient(c.cfg.Brokers, sc) })
	c.fillers.Store(fills)
	defer fills.close()

	var wg sync.WaitGroup
	defer wg.Wait()
	closed := make(chan struct{})
	defer close(closed)
	defer group.Close() // before wg.Wait: closing ends the Errors channel
	wg.Go(func() {
		// A JoinGroup or SyncGroup can wait at the coordinator for up to
		// netReadTimeout, and Consume does not watch ctx meanwhile (nor
		// does closing the sarama client end it). If the group is not
		// closed soon after ctx ends, cutting the connections ends the
		// wait. (What was indexed but not committed then is consumed again
		// after a restart; the index is idempotent.)
		select {
		case <-closed:
			return
		case <-ctx.Done():
		}
		select {
		case <-closed:
		case <-time.After(abortGrace):
			c.log.Info("kafka consumer still waiting on the group coordinator at shutdown; disconnecting")
			c.conns.cutAll()
		}
	})
	if c.cfg.CoverageFile != "" {
		// Run returns only once ctx ended, and saves once more then.
		wg.Go(func() { c.persistCoverage(ctx) })
	}
	wg.Go(func() {
		for err := range group.Errors() {
			c.log.Warn("kafka consumer error; indexing of the affected partitions is delayed until it clears; check broker health",
				"err", err)
		}
	})

	c.log.Info("kafka consumer running", "brokers", c.cfg.Brokers, "topics", c.cfg.Topics, "group", c.cfg.Group, "instance_id", c.cfg.InstanceID)
	h := &handler{c: c}
	delay := 250 * time.Millisecond
	for ctx.Err() == nil {
		err := group.Consume(ctx, c.cfg.Topics, h)
		if ctx.Err() != nil {
			break
		}
		if err == nil {
			delay = 250 * time.Millisecond
			continue // a rebalance: join again
		}
		switch {
		case errors.Is(err, sarama.ErrFencedInstancedId):
			c.log.Warn("kafka consumer fenced: another consumer joined the group with the same instance id; the two take turns and each indexes less; give each indexer its own kafka instance id",
				"group", c.cfg.Group, "instance_id", c.cfg.InstanceID, "err", err)
		default:
			c.log.Warn("kafka consume failed; indexing waits and retries; check that brokers are up and the topics exist",
				"topics", c.cfg.Topics, "group", c.cfg.Group, "err", err)
		}
		if errors.Is(err, sarama.ErrUnknownTopicOrPartition) {
			c.ensureTopics(client)
		}
		select {
		case <-ctx.Done():
		case <-time.After(delay):
		}
		delay = min(delay*2, 10*time.Second)
	}
	return nil
}

// connect retries until it has a client and a consumer group on it and
// the topics exist (or could not be created), or ctx ends.
func (c *Consumer) connect(ctx context.Context, sc *sarama.Config) (sarama.Client, sarama.ConsumerGroup, error) {
	var group sarama.ConsumerGroup
	client, err := kafkaconn.Dial(ctx, c.cfg.Brokers, sc, c.log, "nothing is indexed from it until it is reachable",
		func(client sarama.Client) (err error) {
			c.ensureTopics(client)
			group, err = sarama.NewConsumerGroupFromClient(c.cfg.Group, client)
			return err
		})
	if err != nil {
		return nil, nil, err
	}
	return client, group, nil
}

// ensureTopics creates the topics that do not exist yet. A failure is
// logged: Consume then fails and is retried.
func (c *Consumer) ensureTopics(client sarama.Client) {
	if err := kafkaconn.EnsureTopics(client, c.cfg.Topics, c.cfg.Partitions); err != nil {
		c.log.Warn("cannot create kafka topics; consuming waits until they exist; create them", "topics", c.cfg.Topics, "err", err)
	}
}

// handler is the sarama.ConsumerGroupHandler. Sessions follow each
// other; within one, ConsumeClaim runs once per claimed partition,
// concurrently.
type handler struct {
	c *Consumer
	// Per session, set in Setup before any ConsumeClaim starts.
	commitWake chan struct{}
	stop       context.CancelFunc
	done       chan struct{}
}

// Setup starts the session's committer. Commits run apart from
// ConsumeClaim because a commit waits behind the long-polling fetch on the
// same broker connection; indexing must not wait for it.
func (h *handler) Setup(sess sarama.ConsumerGroupSession) error {
	h.c.sessions.Add(1)
	h.c.log.Info("kafka consumer group session begins", "group", h.c.cfg.Group, "member_id", sess.MemberID(),
		"generation", sess.GenerationID(), "claims", sess.Claims())
	// Lag is shown for the partitions claimed now, not for ones an
	// earlier session had.
	h.c.lagMu.Lock()
	for tp := range h.c.lag {
		if !slices.Contains(sess.Claims()[tp.topic], tp.partition) {
			delete(h.c.lag, tp)
		}
	}
	h.c.lagMu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	h.commitWake, h.stop, h.done = make(chan struct{}, 1), cancel, make(chan struct{})
	wake, done := h.commitWake, h.done
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case <-wake:
				sess.Commit()
				h.c.commits.Add(1)
			}
		}
	}()
	return nil
}

// Cleanup stops the committer and commits what was marked last.
func (h *handler) Cleanup(sess sarama.ConsumerGroupSession) error {
	h.stop()
	<-h.done
	sess.Commit()
	return nil
}

// ConsumeClaim batches the partition's messages, indexes each batch and
// marks its last offset for commit only once the writer acked it. It
// reads and decodes the next batch while the one before is indexed.
// Acked batches extend the coverage: within the claim they are taken as
// contiguous, from its first message on.
func (h *handler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	c := h.c
	ctx := sess.Context()
	tp := topicPartition{claim.Topic(), claim.Partition()}
	part := pipeline.PartName(tp.topic, tp.partition)
	c.claimed(part, 1)
	defer c.claimed(part, -1)
	c.claimStarts(tp, claim.InitialOffset())
	// Lag is known from the claim on, not only once a message arrives: an
	// idle partition shows 0, one with a backlog its size.
	// (A new group starts at a sentinel: at most everything is behind.)
	c.setLag(tp, claim.HighWaterMarkOffset()-max(claim.InitialOffset(), 0))
	batch := make([]pipeline.Record, 0, c.cfg.BatchSize)
	var last *sarama.ConsumerMessage
	var first int64 // the offset of batch[0]
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()

	// One batch is indexed (by the goroutine below, in order) while the
	// next is read and decoded here; a batch's last offset is marked once
	// the writer acked it, and ConsumeClaim returns only after the
	// batch in hand is indexed or given up.
	type job struct {
		batch []pipeline.Record
		first int64 // the offset of batch[0]
		last  *sarama.ConsumerMessage
	}
	jobs := make(chan job)
	failed := make(chan struct{})
	indexed := make(chan struct{})
	go func() {
		defer close(indexed)
		covered := int64(-1) // the end of what this claim covered
		for j := range jobs {
			if !c.index(ctx, tp, j.batch) {
				close(failed)
				for range jobs {
				}
				return
			}
			if covered < 0 {
				covered = j.first
			}
			c.addCoverage(part, covered, j.last.Offset+1)
			covered = j.last.Offset + 1
			c.log.Debug("indexed batch", "topic", tp.topic, "partition", tp.partition, "records", len(j.batch), "offset", j.last.Offset)
			// Marked only now that the index holds the batch; the
			// committer sends it to Kafka.
			sess.MarkMessage(j.last, "")
			select {
			case h.commitWake <- struct{}{}:
			default:
			}
		}
	}()
	defer func() {
		close(jobs)
		<-indexed
	}()
	flush := func() bool {
		if last == nil {
			return true
		}
		select {
		case jobs <- job{batch, first, last}:
		case <-failed:
			return false
		case <-ctx.Done():
			return false
		}
		// A new slice: the indexer owns the old one.
		batch, last = make([]pipeline.Record, 0, c.cfg.BatchSize), nil
		return true
	}
	for {
		select {
		case msg, ok := <-claim.Messages():
			if !ok {
				flush()
				return nil
			}
			c.consumed.Add(1)
			if len(batch) == 0 {
				timer.Reset(c.cfg.FlushInterval)
				first = msg.Offset
			}
			batch = append(batch, c.decode(msg, part))
			last = msg
			c.setLag(tp, claim.HighWaterMarkOffset()-msg.Offset-1)
			if len(batch) >= c.cfg.BatchSize {
				timer.Stop()
				if !flush() {
					return nil
				}
			}
		case <-timer.C:
			if !flush() {
				return nil
			}
		case <-ctx.Done():
			// Rebalance or shutdown: what is not indexed yet is not
			// committed, and the next owner reads it again.
			return nil
		}
	}
}

// index hands recs to the writer as one batch and waits for its ack
// (true) or nack (false). When ctx ends (a rebalance or shutdown) it waits
// at most HandoverWait more; a batch written after that is read again by
// the partition's next owner and skipped by the index. The writer retries
// passing failures itself.
func (c *Consumer) index(ctx context.Context, tp topicPartition, recs []pipeline.Record) bool {
	// On a rebalance or shutdown publishWait waits HandoverWait for the
	// batch in the writer, so a batch written anyway is also committed
	// and not read again by the partition's next owner.
	err := c.publishWait(ctx, recs)
	if err == nil {
		c.indexed.Add(uint64(len(recs)))
		return true
	}
	if ctx.Err() == nil {
		c.indexErrs.Add(1)
		c.log.Warn("the index writer gave a batch back; its kafka offsets stay uncommitted and are read again",
			"topic", tp.topic, "partition", tp.partition, "records", len(recs), "err", err)
	}
	return false
}

// errNotAcked is publishWait's answer when ctx ended before the ack.
var errNotAcked = errors.New("not acked before shutdown")

// publishWait publishes recs as one batch and waits for the writer's
// answer: nil on ack, the nack's error, or, when ctx ends, what comes
// within HandoverWait (else errNotAcked, or Publish's ctx error).
func (c *Consumer) publishWait(ctx context.Context, recs []pipeline.Record) error {
	done := make(chan error, 1)
	if err := c.sink.Publish(ctx, pipeline.NewBatchFunc(recs, func(err error) { done <- err })); err != nil {
		return err
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		t := time.NewTimer(c.cfg.HandoverWait)
		defer t.Stop()
		select {
		case err := <-done:
			return err
		case <-t.C:
			return errNotAcked
		}
	}
}

func (c *Consumer) setLag(tp topicPartition, lag int64) {
	c.lagMu.Lock()
	c.lag[tp] = max(lag, 0)
	c.lagMu.Unlock()
}

// event decodes a logbox event; Line is a pointer to tell a missing
// "line" from an empty one. It shadows Record.Line.
type event struct {
	pipeline.Record
	Line *string `json:"line"`
}

// decoded says which kind of message decode found.
type decoded int

const (
	decodedLogbox decoded = iota // a logbox event (has "line")
	decodedECS                   // a Filebeat / ECS-style event (has "message")
	decodedRaw                   // anything else, indexed as a raw line
)

// decode turns a message into a Record: a logbox event as it was produced,
// anything else as a raw line identified by its Kafka position. part is
// the message's partition (pipeline.PartName, named once per claim or
// fill, not per message). The group path and the gap fillers both decode
// with it.
func (c *Consumer) decode(msg *sarama.ConsumerMessage, part string) pipeline.Record {
	r, kind := decodeValue(msg.Value, msg.Topic, msg.Partition, msg.Offset, msgTime(msg))
	r.Part = part
	switch kind {
	case decodedECS:
		c.ecs.Add(1)
	case decodedRaw:
		c.fallbacks.Add(1)
	}
	return r
}

// decodeValue decodes one message value (see decode); msgTS is the
// message's time, used when the value has none.
//
//   - A JSON object with "line" is a logbox event.
//   - A JSON object with a string "message" (and no "line") is an event of
//     Filebeat or another ECS-style shipper (see ecsRecord).
//   - Anything else (other JSON included) is a raw line: Source
//     "kafka:<topic>", identified by its Kafka position. The index
//     flattens JSON lines into fields.
func decodeValue(value []byte, topic string, partition int32, offset int64, msgTS time.Time) (pipeline.Record, decoded) {
	if v := bytes.TrimLeft(value, " \t\r\n"); len(v) > 0 && v[0] == '{' {
		var ev event
		r, line, fast := fastEvent(value)
		if fast {
			ev.Record, ev.Line = r, &line
		} else if err := json.Unmarshal(value, &ev); err != nil {
			ev.Line = nil
		}
		if ev.Line != nil {
			r := ev.Record
			r.Line = *ev.Line
			r.Topic = topic
			if r.FileID == "" {
				// Not from a logbox tailer: its Kafka position is its identity.
				r.FileID = kafkaFileID(topic, partition)
				r.Offset = offset
			}
			if r.TS.IsZero() {
				r.TS = msgTS
			}
			return r, decodedLogbox
		}
		if r, ok := ecsRecord(value, topic, partition, offset, msgTS); ok {
			return r, decodedECS
		}
	}
	return pipeline.Record{
		TS:     msgTS,
		Source: "kafka:" + topic,
		FileID: kafkaFileID(topic, partition),
		Offset: offset,
		Line:   string(value),
		Topic:  topic,
	}, decodedRaw
}

func kafkaFileID(topic string, partition int32) string {
	return fmt.Sprintf("kafka:%s:%d", topic, partition)
}

// maxECSFields bounds the fields taken from one event.
const maxECSFields = 32

// ecsKeys are the ECS keys copied into Record.Fields when present.
var ecsKeys = []string{
	"log.level", "event.dataset", "service.name", "input.type", "container.name",
	"kubernetes.namespace", "kubernetes.pod.name", "kubernetes.container.name",
}

// ecsRecord reads a Filebeat (8.x) or other ECS-style event; Vector's
// file source ("file", "timestamp", "host" as a string) fits too. Line is
// its message, TS its @timestamp (when Filebeat read the line; the index
// still parses the event time from the line), Host host.name (or
// host.hostname, host as a string, agent.hostname), Source log.file.path
// (or file). Its identity: when the event has log.file.path and
// log.offset, FileID is "filebeat:<path>" (plus "@fp:<fingerprint>" or
// "@<device>:<inode>" when the event has them, so a new file at the same
// path after rotation does not overwrite the old one's lines) and Offset
// is log.offset: a line Filebeat sends twice (it is at-least-once) is
// indexed once. Without them, FileID is "filebeat:kafka:<topic>:<partition>"
// and Offset the Kafka offset. Custom "fields" (Filebeat's fields option,
// flattened with dots), tags and a few ECS keys (ecsKeys) become
// Record.Fields; event.timezone (Filebeat's add_locale) is Record.TZ.
// Wrongly typed parts are ignored, not fatal.
func ecsRecord(value []byte, topic string, partition int32, offset int64, msgTS time.Time) (pipeline.Record, bool) {
	dec := json.NewDecoder(bytes.NewReader(value))
	dec.UseNumber()
	var ev map[string]any
	if err := dec.Decode(&ev); err != nil {
		return pipeline.Record{}, false
	}
	msg, ok := ev["message"].(string)
	if !ok {
		return pipeline.Record{}, false
	}
	str := func(key string) string {
		s, _ := lookup(ev, key).(string)
		return s
	}
	r := pipeline.Record{Line: msg, Topic: topic, TS: msgTS}
	for _, k := range []string{"@timestamp", "timestamp"} {
		if t, err := time.Parse(time.RFC3339Nano, str(k)); err == nil {
			r.TS = t.UTC()
			break
		}
	}
	r.Host = cmp.Or(str("host.name"), str("host.hostname"), str("host"), str("agent.hostname"))
	// Filebeat's add_locale: the sender's zone ("+08:00", or a name),
	// for times its lines write without one.
	if tz := str("event.timezone"); len(tz) <= pipeline.MaxZoneBytes {
		r.TZ = tz
	}
	path := str("log.file.path")
	r.Source = cmp.Or(path, str("file"), "kafka:"+topic)
	logOffset, hasOffset := lookup(ev, "log.offset").(json.Number)
	off, err := logOffset.Int64()
	if path != "" && hasOffset && err == nil && off >= 0 {
		r.FileID = "filebeat:" + path
		ino, dev := scalar(lookup(ev, "log.file.inode")), scalar(lookup(ev, "log.file.device_id"))
		switch fp := str("log.file.fingerprint"); {
		case fp != "":
			r.FileID += "@fp:" + fp
		case ino != "":
			r.FileID += "@" + dev + ":" + ino
		}
		r.Offset = off
	} else {
		r.FileID = "filebeat:" + kafkaFileID(topic, partition)
		r.Offset = offset
	}
	fields := map[string]string{}
	add := func(k, v string) {
		if v != "" && len(fields) < maxECSFields {
			fields[k] = v
		}
	}
	var flatten func(prefix string, m map[string]any)
	flatten = func(prefix string, m map[string]any) {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if sub, ok := m[k].(map[string]any); ok {
				flatten(prefix+k+".", sub)
			} else {
				add(prefix+k, scalar(m[k]))
			}
		}
	}
	if custom, ok := ev["fields"].(map[string]any); ok {
		flatten("", custom)
	}
	if tags, ok := ev["tags"].([]any); ok {
		parts := make([]string, 0, len(tags))
		for _, t := range tags {
			parts = append(parts, scalar(t))
		}
		add("tags", strings.Join(parts, ","))
	}
	for _, k := range ecsKeys {
		add(k, str(k))
	}
	if len(fields) > 0 {
		r.Fields = fields
	}
	return r, true
}

// lookup returns the value at a dotted key: m["a.b"], or m["a"]["b"].
func lookup(m map[string]any, key string) any {
	if v, ok := m[key]; ok {
		return v
	}
	for i := 0; i < len(key); i++ {
		if key[i] != '.' {
			continue
		}
		if sub, ok := m[key[:i]].(map[string]any); ok {
			if v := lookup(sub, key[i+1:]); v != nil {
				return v
			}
		}
	}
	return nil
}

// scalar returns a JSON string's, number's or bool's text ("" otherwise).
func scalar(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case json.Number:
		return v.String()
	case bool:
		return strconv.FormatBool(v)
	}
	return ""
}

func msgTime(msg *sarama.ConsumerMessage) time.Time {
	if msg.Timestamp.IsZero() || msg.Timestamp.Unix() <= 0 {
		return time.Now().UTC()
	}
	return msg.Timestamp.UTC()
}
