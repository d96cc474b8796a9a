// Package kafkaout ships pipeline batches to Kafka with a sarama
// AsyncProducer. It implements pipeline.Sink: a batch is acked once Kafka
// has acknowledged every one of its records with the configured acks.
// Failed messages are re-sent until they succeed or the producer stops;
// nothing is dropped and nothing is acked on failure.
package kafkaout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"golang.org/x/sync/semaphore"

	"github.com/logbox/logbox/appliance/pipeline"
)

// ProducerStats are cumulative counters for a status page.
type ProducerStats struct {
	// Sent counts messages handed to sarama, re-sends included.
	Sent uint64
	// Acked counts messages Kafka acknowledged.
	Acked uint64
	// Errors counts messages that failed after sarama's own retries.
	Errors uint64
	// Retries counts re-sends of failed messages.
	Retries uint64
	// InFlight is how many published records are not acked yet.
	InFlight int64
}

// Producer is a pipeline.Sink that writes to Kafka. Create it with New,
// start it with Run; Publish may be called before Run connects and waits.
type Producer struct {
	cfg Config
	log *slog.Logger

	// sem holds one unit per published, unacked record: it is what makes
	// Publish block at MaxInFlight.
	sem *semaphore.Weighted
	// in carries encoded messages from Publish to the pump goroutine.
	in chan *sarama.ProducerMessage

	retryMu   sync.Mutex
	retry     []*sarama.ProducerMessage
	retryWake chan struct{}
	errStreak atomic.Int64 // failed messages since the last success
	rounds    atomic.Int64 // re-send rounds since the last success

	sent, acked, errs, retries atomic.Uint64
	inFlight                   atomic.Int64
}

// tracker follows one batch through Kafka; every message of the batch
// carries it as Metadata.
type tracker struct {
	batch     *pipeline.Batch
	remaining atomic.Int64
	aborted   atomic.Bool
}

// done records one acked message and acks the batch with its last one.
func (t *tracker) done() {
	if t.remaining.Add(-1) == 0 && !t.aborted.Load() {
		t.batch.Ack()
	}
}

// abort gives up on the n messages that Publish did not hand over: the
// batch will never be acked. aborted is set before remaining drops, so
// whoever brings remaining to zero sees it.
func (t *tracker) abort(n int64) {
	t.aborted.Store(true)
	t.remaining.Add(-n)
}

// New returns a Producer for cfg (defaults applied; call cfg.Validate
// first). It starts nothing. log may be nil.
func New(cfg Config, log *slog.Logger) *Producer {
	cfg = cfg.withDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Producer{
		cfg:       cfg,
		log:       log.With("component", "kafkaout"),
		sem:       semaphore.NewWeighted(int64(cfg.MaxInFlight)),
		in:        make(chan *sarama.ProducerMessage, 4096),
		retryWake: make(chan struct{}, 1),
	}
}

// Stats returns the current counters.
func (p *Producer) Stats() ProducerStats {
	return ProducerStats{
		Sent:     p.sent.Load(),
		Acked:    p.acked.Load(),
		Errors:   p.errs.Load(),
		Retries:  p.retries.Load(),
		InFlight: p.inFlight.Load(),
	}
}

// Publish queues every record of b for Kafka and returns; b.Ack is called
// once, later, when Kafka has acked all of them. Publish blocks while
// MaxInFlight records are unacked (also before Run has connected) and
// returns only ctx's error; a batch Publish gave up on is never acked.
func (p *Producer) Publish(ctx context.Context, b *pipeline.Batch) error {
	n := len(b.Records)
	if n == 0 {
		b.Ack()
		return nil
	}
	t := &tracker{batch: b}
	t.remaining.Store(int64(n))
	for start := 0; start < n; start += p.cfg.MaxInFlight {
		chunk := b.Records[start:min(start+p.cfg.MaxInFlight, n)]
		if err := p.sem.Acquire(ctx, int64(len(chunk))); err != nil {
			t.abort(int64(n - start))
			return err
		}
		p.inFlight.Add(int64(len(chunk)))
		for i := range chunk {
			msg := p.message(&chunk[i], t)
			select {
			case p.in <- msg:
			case <-ctx.Done():
				unsent := len(chunk) - i
				p.inFlight.Add(-int64(unsent))
				p.sem.Release(int64(unsent))
				t.abort(int64(n - start - i))
				return ctx.Err()
			}
		}
	}
	return nil
}

// message encodes r. The key is host|path, so with the hash partitioner
// one file's lines stay in one partition, in order.
func (p *Producer) message(r *pipeline.Record, t *tracker) *sarama.ProducerMessage {
	topic := r.Topic
	if topic == "" {
		topic = p.cfg.Topic
	}
	val, err := json.Marshal(r)
	if err != nil {
		// Only a timestamp outside years 0..9999 fails to encode; keep
		// the line and stamp it with the time it was shipped.
		c := *r
		c.TS = time.Now().UTC()
		val, err = json.Marshal(&c)
		if err != nil {
			panic(fmt.Sprintf("kafkaout: encode record: %v", err))
		}
	}
	return &sarama.ProducerMessage{
		Topic:    topic,
		Key:      sarama.StringEncoder(r.Host + "|" + r.Source),
		Value:    sarama.ByteEncoder(val),
		Metadata: t,
	}
}

// Run connects to Kafka (retrying while it is unreachable), makes sure the
// default topic exists and ships published records until ctx is done.
// Then it keeps shipping what was already published for at most
// DrainTimeout, closes the producer and returns. Run returns only fatal
// errors (a config sarama rejects); it returns nil when ctx ends.
func (p *Producer) Run(ctx context.Context) error {
	sc, err := p.cfg.saramaConfig()
	if err != nil {
		return err
	}
	client, admin, ap, err := p.connect(ctx, sc)
	if err != nil {
		return nil // ctx ended before Kafka was reachable
	}
	defer client.Close()

	topics := newTopicCache(client, admin, p.cfg.Partitions, p.log)
	topics.ensure(p.cfg.Topic)

	var wg sync.WaitGroup
	wg.Go(func() {
		for msg := range ap.Successes() {
			p.onSuccess(msg)
		}
	})
	wg.Go(func() {
		for perr := range ap.Errors() {
			p.onError(perr)
		}
	})
	p.log.Info("kafka producer running", "brokers", p.cfg.Brokers, "topic", p.cfg.Topic, "acks", p.cfg.Acks)

	p.pump(ctx, ap, topics, false)

	// Drain: keep sending what Publish already accepted, and re-sending
	// failures, until everything is acked or the bounded wait is over.
	drainCtx, cancel := context.WithTimeout(context.Background(), p.cfg.DrainTimeout)
	defer cancel()
	p.pump(drainCtx, ap, topics, true)
	if n := p.inFlight.Load(); n > 0 {
		p.log.Warn("kafka drain timed out; unacked lines are read again from their files after restart",
			"in_flight", n, "drain_timeout", p.cfg.DrainTimeout)
	}

	ap.AsyncClose()
	closed := make(chan struct{})
	go func() { wg.Wait(); close(closed) }()
	select {
	case <-closed:
		return nil
	case <-drainCtx.Done():
	case <-time.After(time.Second):
	}
	// sarama is still retrying messages against an unreachable broker;
	// closing the client makes those attempts fail at once.
	client.Close()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		p.log.Error("kafka producer did not shut down; abandoning it")
	}
	return nil
}

// connect retries until it has a client, an admin and a producer, or ctx
// ends (then it returns ctx's error).
func (p *Producer) connect(ctx context.Context, sc *sarama.Config) (sarama.Client, sarama.ClusterAdmin, sarama.AsyncProducer, error) {
	delay := 250 * time.Millisecond
	for attempt := 1; ; attempt++ {
		client, err := sarama.NewClient(p.cfg.Brokers, sc)
		if err == nil {
			var admin sarama.ClusterAdmin
			// The admin shares the client; closing the client is enough.
			admin, err = sarama.NewClusterAdminFromClient(client)
			if err == nil {
				var ap sarama.AsyncProducer
				ap, err = sarama.NewAsyncProducerFromClient(client)
				if err == nil {
					if attempt > 1 {
						p.log.Info("kafka reachable again", "brokers", p.cfg.Brokers, "attempts", attempt)
					}
					return client, admin, ap, nil
				}
			}
			client.Close()
		}
		lvl := slog.LevelDebug
		if attempt == 1 || attempt%20 == 0 {
			lvl = slog.LevelWarn
		}
		p.log.Log(ctx, lvl, "cannot connect to kafka; lines are not shipped and tailers pause once max in-flight is reached; check that --kafka names reachable brokers",
			"brokers", p.cfg.Brokers, "attempt", attempt, "err", err)
		select {
		case <-ctx.Done():
			return nil, nil, nil, ctx.Err()
		case <-time.After(delay):
		}
		delay = min(delay*2, 10*time.Second)
	}
}

// pump moves messages from Publish and the retry list into sarama until
// ctx ends, or, when drain is set, until nothing is in flight.
func (p *Producer) pump(ctx context.Context, ap sarama.AsyncProducer, topics *topicCache, drain bool) {
	var tick <-chan time.Time
	if drain {
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		tick = t.C
	}
	var retryC <-chan time.Time
	p.retryMu.Lock()
	if len(p.retry) > 0 {
		retryC = time.After(p.retryDelay())
	}
	p.retryMu.Unlock()
	for {
		if drain && p.inFlight.Load() == 0 {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-tick:
		case msg := <-p.in:
			topics.ensure(msg.Topic)
			p.send(ctx, ap, msg)
		case <-p.retryWake:
			if retryC == nil {
				retryC = time.After(p.retryDelay())
			}
		case <-retryC:
			retryC = nil
			p.rounds.Add(1)
			p.retryMu.Lock()
			msgs := p.retry
			p.retry = nil
			p.retryMu.Unlock()
			for _, m := range msgs {
				p.retries.Add(1)
				p.send(ctx, ap, m)
			}
		}
	}
}

// send hands msg to sarama; if ctx ends first, msg goes to the retry list
// so that the drain phase still sends it.
func (p *Producer) send(ctx context.Context, ap sarama.AsyncProducer, msg *sarama.ProducerMessage) {
	select {
	case ap.Input() <- msg:
		p.sent.Add(1)
	case <-ctx.Done():
		p.retryMu.Lock()
		p.retry = append(p.retry, msg)
		p.retryMu.Unlock()
	}
}

// retryDelay grows with the re-send rounds since the last success.
func (p *Producer) retryDelay() time.Duration {
	n := min(p.rounds.Load(), 6)
	return min(100*time.Millisecond<<n, 5*time.Second)
}

func (p *Producer) onSuccess(msg *sarama.ProducerMessage) {
	p.acked.Add(1)
	if p.errStreak.Load() > 0 && p.errStreak.Swap(0) > 0 {
		p.rounds.Store(0)
		p.log.Info("kafka produce recovered")
	}
	p.inFlight.Add(-1)
	p.sem.Release(1)
	if t, ok := msg.Metadata.(*tracker); ok {
		t.done()
	}
}

func (p *Producer) onError(perr *sarama.ProducerError) {
	p.errs.Add(1)
	if perr.Msg == nil {
		return
	}
	if p.errStreak.Add(1) == 1 {
		p.log.Warn("kafka produce failing; lines are kept and re-sent, tailers pause once max in-flight is reached; check broker health and topic permissions",
			"topic", perr.Msg.Topic, "err", perr.Err)
	}
	// A fresh message: sarama keeps retry and sequence state in the old one.
	m := &sarama.ProducerMessage{
		Topic:    perr.Msg.Topic,
		Key:      perr.Msg.Key,
		Value:    perr.Msg.Value,
		Metadata: perr.Msg.Metadata,
	}
	p.retryMu.Lock()
	p.retry = append(p.retry, m)
	p.retryMu.Unlock()
	select {
	case p.retryWake <- struct{}{}:
	default:
	}
}

// topicCache creates topics on first use and remembers which exist. It is
// used only by the pump goroutine.
type topicCache struct {
	client     sarama.Client
	admin      sarama.ClusterAdmin
	partitions int32
	log        *slog.Logger
	known      map[string]bool
	failedAt   map[string]time.Time
}

func newTopicCache(client sarama.Client, admin sarama.ClusterAdmin, partitions int32, log *slog.Logger) *topicCache {
	return &topicCache{
		client: client, admin: admin, partitions: partitions, log: log,
		known: map[string]bool{}, failedAt: map[string]time.Time{},
	}
}

// ensure creates topic unless it is known to exist. A failure is logged
// and tried again after a while; messages for the topic are sent anyway
// (the broker may auto-create it) and retried until it exists.
func (c *topicCache) ensure(topic string) {
	if c.known[topic] {
		return
	}
	if at, ok := c.failedAt[topic]; ok && time.Since(at) < 30*time.Second {
		return
	}
	err := createTopic(c.admin, topic, c.partitions)
	if err != nil {
		// Perhaps not allowed to create, but it is there already.
		if ts, terr := c.client.Topics(); terr == nil {
			for _, t := range ts {
				if t == topic {
					err = nil
				}
			}
		}
	}
	if err != nil {
		c.failedAt[topic] = time.Now()
		c.log.Warn("cannot create kafka topic; its lines are retried until it exists; create it or allow the producer to",
			"topic", topic, "err", err)
		return
	}
	delete(c.failedAt, topic)
	c.known[topic] = true
}

// createTopic creates topic with the broker's default replication factor
// (falling back to 1 for brokers that refuse -1). An existing topic is fine.
func createTopic(admin sarama.ClusterAdmin, topic string, partitions int32) error {
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
