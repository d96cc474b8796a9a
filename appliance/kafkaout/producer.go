// Package kafkaout ships pipeline batches to Kafka with a sarama
// AsyncProducer. It implements pipeline.Sink: a batch is acked once Kafka
// has acknowledged every one of its records with the configured acks.
// Failed messages are re-sent until they succeed or the producer stops;
// nothing is acked on failure. One kind of record is dropped on purpose:
// one Kafka refuses as too large even with its line cut to nothing (see
// shrink); it is logged, counted (ProducerStats.Dropped) and acked, so
// that it does not hold its file up forever.
package kafkaout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/semaphore"

	"github.com/logbox/logbox/appliance/kafkaconn"
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
	// Truncated counts records whose line was cut to fit MaxMessageBytes
	// or, after the broker answered MESSAGE_TOO_LARGE, the broker's limit.
	Truncated uint64
	// TooLarge counts messages rejected as too large (by the broker or by
	// sarama) and re-sent smaller.
	TooLarge uint64
	// Dropped counts records that could not be made small enough even
	// with an empty line (their other fields are too big); they are acked
	// without being delivered, so they do not block their file.
	Dropped uint64
}

// Producer is a pipeline.Sink that writes to Kafka. Create it with New,
// start it with Run; Publish may be called before Run connects and waits.
type Producer struct {
	cfg Config
	log *slog.Logger

	// sem holds one unit per published, unacked record: it is what makes
	// Publish block at MaxInFlight.
	sem *semaphore.Weighted
	// in carries encoded messages from Publish to the pump goroutine, a
	// chunk of a batch at a time.
	in chan []sarama.ProducerMessage

	retryMu   sync.Mutex
	retry     []*sarama.ProducerMessage
	retryWake chan struct{}
	errStreak atomic.Int64 // failed messages since the last success
	rounds    atomic.Int64 // re-send rounds since the last success

	sent, acked, errs, retries   atomic.Uint64
	truncated, tooLarge, dropped atomic.Uint64
	inFlight                     atomic.Int64
	// latency is from Publish to the ack of a batch's last message.
	latency prometheus.Histogram

	// live holds the batches published and not yet acked: Run nacks
	// them when it returns. stopped is closed then, so a late Publish
	// does not wait for a pump that is gone.
	live     sync.Map // *tracker → struct{}
	stopped  chan struct{}
	stopOnce sync.Once
}

// Collectors are the producer's Prometheus metrics beyond Stats.
func (p *Producer) Collectors() []prometheus.Collector {
	return []prometheus.Collector{p.latency}
}

// messageOverhead is what a one-message record batch adds to the key and
// value on the wire (61-byte batch header, at most 36 bytes of record
// framing), rounded up: a value within MaxMessageBytes-len(key)-100 fits
// a broker whose message.max.bytes is MaxMessageBytes.
const messageOverhead = 100

// msgMeta follows one record through Kafka as its message's Metadata.
// Only one goroutine holds a message at a time (pump, then sarama, then
// onSuccess or onError, then the retry list under retryMu), so the fields
// need no lock.
type msgMeta struct {
	t   *tracker
	rec *pipeline.Record
	// truncated is set once the record is counted in Truncated.
	truncated bool
	// solo messages go through the one-message-per-request producer:
	// they were rejected as too large, perhaps only because of the batch
	// they were in.
	solo bool
}

// tracker follows one batch through Kafka; every message of the batch
// carries it in its msgMeta.
type tracker struct {
	batch     *pipeline.Batch
	remaining atomic.Int64
	aborted   atomic.Bool
	published time.Time
	latency   prometheus.Histogram
	live      *sync.Map // the producer's live batches
}

// done records one acked message and acks the batch with its last one.
func (t *tracker) done() {
	if t.remaining.Add(-1) == 0 && !t.aborted.Load() {
		t.latency.Observe(time.Since(t.published).Seconds())
		t.batch.Ack()
		if t.live != nil {
			t.live.Delete(t)
		}
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
		in:        make(chan []sarama.ProducerMessage, 64),
		retryWake: make(chan struct{}, 1),
		stopped:   make(chan struct{}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "logbox_kafka_produce_batch_latency_seconds",
			Help:    "Time from handing a batch to the producer until Kafka acked all of it.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12),
		}),
	}
}

// Stats returns the current counters.
func (p *Producer) Stats() ProducerStats {
	return ProducerStats{
		Sent:      p.sent.Load(),
		Acked:     p.acked.Load(),
		Errors:    p.errs.Load(),
		Retries:   p.retries.Load(),
		InFlight:  p.inFlight.Load(),
		Truncated: p.truncated.Load(),
		TooLarge:  p.tooLarge.Load(),
		Dropped:   p.dropped.Load(),
	}
}

// Publish queues every record of b for Kafka and returns; b.Ack is called
// once, later, when Kafka has acked all of them, and b.Nack if Run
// returns first (see pipeline.Batch). Publish blocks while MaxInFlight
// records are unacked (also before Run has connected) and returns ctx's
// error, or pipeline.ErrStopping once Run has returned; a batch Publish
// gave up on is never acked.
func (p *Producer) Publish(ctx context.Context, b *pipeline.Batch) error {
	n := len(b.Records)
	if n == 0 {
		b.Ack()
		return nil
	}
	t := &tracker{batch: b, published: time.Now(), latency: p.latency, live: &p.live}
	t.remaining.Store(int64(n))
	// Stopping ends a wait for room as ctx does.
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() {
		select {
		case <-p.stopped:
			cancel(pipeline.ErrStopping)
		case <-ctx.Done():
		}
	}()
	var enc eventEncoder
	p.live.Store(t, struct{}{})
	for start := 0; start < n; start += p.cfg.MaxInFlight {
		chunk := b.Records[start:min(start+p.cfg.MaxInFlight, n)]
		if err := p.sem.Acquire(ctx, int64(len(chunk))); err != nil {
			t.abort(int64(n - start))
			p.live.Delete(t)
			return context.Cause(ctx)
		}
		p.inFlight.Add(int64(len(chunk)))
		select {
		case p.in <- p.messages(chunk, t, &enc):
		case <-ctx.Done():
			p.inFlight.Add(-int64(len(chunk)))
			p.sem.Release(int64(len(chunk)))
			t.abort(int64(n - start))
			p.live.Delete(t)
			return context.Cause(ctx)
		}
	}
	return nil
}

// nackLive nacks every batch published and not acked: Run is returning.
func (p *Producer) nackLive() {
	p.stopOnce.Do(func() { close(p.stopped) })
	p.live.Range(func(k, _ any) bool {
		t := k.(*tracker)
		t.aborted.Store(true)
		t.batch.Nack(pipeline.ErrStopping)
		p.live.Delete(k)
		return true
	})
}

// messages encodes recs, records of the batch t follows. The key is
// host|path, so with the hash partitioner one file's lines stay in one
// partition, in order. An event too big for MaxMessageBytes has its line
// cut (see encode).
//
// The messages, their metadata and their values are allocated together,
// a few allocations for the whole chunk rather than several per record:
// they live as long as the batch anyway. A key is shared by the records
// of one file; sarama only reads keys and values.
func (p *Producer) messages(recs []pipeline.Record, t *tracker, enc *eventEncoder) []sarama.ProducerMessage {
	msgs := make([]sarama.ProducerMessage, len(recs))
	metas := make([]msgMeta, len(recs))
	vals := make([]sarama.ByteEncoder, len(recs))
	// Room for the events, estimated from the lines and the first
	// record's other fields; if escapes need more, append grows it (the
	// values already cut from it keep the old array).
	size := 0
	for i := range recs {
		size += len(recs[i].Line)
	}
	r0 := &recs[0]
	perRecord := 128 + len(r0.Host) + len(r0.Source) + len(r0.SourceName) + len(r0.FileID) + len(r0.Parser) + len(r0.TZ)
	for k, v := range r0.Fields {
		perRecord += len(k) + len(v) + 6
	}
	buf := make([]byte, 0, size+size/8+perRecord*len(recs))

	var key sarama.Encoder
	var keyHost, keySource string
	for i := range recs {
		r := &recs[i]
		if key == nil || r.Host != keyHost || r.Source != keySource {
			key = sarama.ByteEncoder(r.Host + "|" + r.Source)
			keyHost, keySource = r.Host, r.Source
		}
		topic := r.Topic
		if topic == "" {
			topic = p.cfg.Topic
		}
		limit := p.cfg.MaxMessageBytes - key.Length() - messageOverhead
		meta := &metas[i]
		*meta = msgMeta{t: t, rec: r}
		at := len(buf)
		var err error
		buf, err = enc.append(buf, r)
		if err == nil && (len(buf)-at <= limit || r.Line == "") {
			vals[i] = buf[at:len(buf):len(buf)]
		} else {
			// Too big, or a time that cannot be written: the slow path.
			buf = buf[:at]
			val, cut := encode(r, limit)
			if cut {
				meta.truncated = true
				p.truncated.Add(1)
			}
			vals[i] = val
		}
		msgs[i] = sarama.ProducerMessage{
			Topic:     topic,
			Key:       key,
			Value:     &vals[i],
			Metadata:  meta,
			Timestamp: t.published,
		}
	}
	return msgs
}

// marshal encodes r as a logbox event; a cut line gets the "truncated" flag.
func marshal(r *pipeline.Record, cut bool) []byte {
	if cut && !slices.Contains(r.Flags, pipeline.FlagTruncated) {
		c := *r
		c.Flags = append(slices.Clip(r.Flags), pipeline.FlagTruncated)
		r = &c
	}
	val, err := appendEvent(make([]byte, 0, 160+len(r.Line)+len(r.Source)), r)
	if err != nil {
		// Only a timestamp outside years 0..9999 fails to encode; keep
		// the line and stamp it with the time it was shipped.
		c := *r
		c.TS = time.Now().UTC()
		val, err = appendEvent(val[:0], &c)
		if err != nil {
			panic(fmt.Sprintf("kafkaout: encode record: %v", err))
		}
	}
	return val
}

// encode returns r's event, at most limit bytes long if cutting the line
// (on a UTF-8 boundary) can make it so, and whether the line was cut. If
// even an empty line does not fit, it returns the event with an empty line.
func encode(r *pipeline.Record, limit int) (val []byte, cut bool) {
	val = marshal(r, false)
	if len(val) <= limit || r.Line == "" {
		return val, false
	}
	cutAt := func(n int) []byte {
		for n > 0 && n < len(r.Line) && !utf8.RuneStart(r.Line[n]) {
			n--
		}
		c := *r
		c.Line = r.Line[:n]
		return marshal(&c, true)
	}
	// The longest prefix that fits, by bisection: every byte of the line
	// takes at least one byte encoded (escapes take more), so no prefix
	// longer than limit fits.
	lo, hi := 0, min(len(r.Line), limit)
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if len(cutAt(mid)) <= limit {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return cutAt(lo), true
}

// Run connects to Kafka (retrying while it is unreachable), makes sure the
// default topic exists and ships published records until ctx is done.
// Then it keeps shipping what was already published for at most
// DrainTimeout, closes the producer and returns. Run returns only fatal
// errors (a config sarama rejects); it returns nil when ctx ends.
func (p *Producer) Run(ctx context.Context) error {
	defer p.nackLive()
	sc, err := p.cfg.saramaConfig()
	if err != nil {
		return err
	}
	client, ap, err := p.connect(ctx, sc)
	if err != nil {
		return nil // ctx ended before Kafka was reachable
	}
	defer client.Close()

	topics := newTopicCache(client, p.cfg.Partitions, p.log)
	topics.ensure(p.cfg.Topic)

	var wg sync.WaitGroup
	p.watch(&wg, ap)
	s := &sendState{ap: ap, topics: topics, wg: &wg}
	defer func() {
		if s.soloClient != nil {
			s.soloClient.Close()
		}
	}()
	p.log.Info("kafka producer running", "brokers", p.cfg.Brokers, "topic", p.cfg.Topic, "acks", p.cfg.Acks)

	p.pump(ctx, s, false)

	// Drain: keep sending what Publish already accepted, and re-sending
	// failures, until everything is acked or the bounded wait is over.
	drainCtx, cancel := context.WithTimeout(context.Background(), p.cfg.DrainTimeout)
	defer cancel()
	p.pump(drainCtx, s, true)
	if n := p.inFlight.Load(); n > 0 {
		p.log.Warn("kafka drain timed out; unacked lines are read again from their files after restart",
			"in_flight", n, "drain_timeout", p.cfg.DrainTimeout)
	}

	ap.AsyncClose()
	if s.solo != nil {
		s.solo.AsyncClose()
	}
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
	if s.soloClient != nil {
		s.soloClient.Close()
	}
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		p.log.Error("kafka producer did not shut down; abandoning it")
	}
	return nil
}

// connect retries until it has a client and a producer on it, or ctx
// ends (then it returns ctx's error).
func (p *Producer) connect(ctx context.Context, sc *sarama.Config) (sarama.Client, sarama.AsyncProducer, error) {
	var ap sarama.AsyncProducer
	client, err := kafkaconn.Dial(ctx, p.cfg.Brokers, sc, p.log,
		"lines are not shipped and tailers pause once max in-flight is reached",
		func(client sarama.Client) (err error) {
			ap, err = sarama.NewAsyncProducerFromClient(client)
			return err
		})
	if err != nil {
		return nil, nil, err
	}
	return client, ap, nil
}

// watch hands ap's results to onSuccess and onError until ap is closed.
func (p *Producer) watch(wg *sync.WaitGroup, ap sarama.AsyncProducer) {
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
}

// sendState is what the pump goroutine sends with. Only that goroutine
// uses it, and Run after the pump returned.
type sendState struct {
	ap     sarama.AsyncProducer
	topics *topicCache
	wg     *sync.WaitGroup
	// solo sends one message per request, for messages the broker
	// rejected as too large; it and its own client are made on first use.
	solo       sarama.AsyncProducer
	soloClient sarama.Client
	soloFailed time.Time
}

// pump moves messages from Publish and the retry list into sarama until
// ctx ends, or, when drain is set, until nothing is in flight.
func (p *Producer) pump(ctx context.Context, s *sendState, drain bool) {
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
		case msgs := <-p.in:
			topic := ""
			for i := range msgs {
				msg := &msgs[i]
				if msg.Topic != topic {
					topic = msg.Topic
					s.topics.ensure(topic)
				}
				p.send(ctx, s, msg)
			}
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
				p.send(ctx, s, m)
			}
		}
	}
}

// send hands msg to sarama; if ctx ends first, or the solo producer
// cannot be made, msg goes to the retry list, so it is sent later (the
// drain phase included).
func (p *Producer) send(ctx context.Context, s *sendState, msg *sarama.ProducerMessage) {
	ap := s.ap
	if meta, ok := msg.Metadata.(*msgMeta); ok && meta.solo {
		ap = p.soloProducer(s)
	}
	if ap != nil {
		select {
		case ap.Input() <- msg:
			p.sent.Add(1)
			return
		case <-ctx.Done():
		}
	}
	p.retryMu.Lock()
	p.retry = append(p.retry, msg)
	p.retryMu.Unlock()
	if ap == nil {
		select {
		case p.retryWake <- struct{}{}:
		default:
		}
	}
}

// soloProducer returns the one-message-per-request producer, making it
// (and its client) on first use; nil if that fails (tried again after a
// second).
func (p *Producer) soloProducer(s *sendState) sarama.AsyncProducer {
	if s.solo != nil || time.Since(s.soloFailed) < time.Second {
		return s.solo
	}
	sc, err := p.cfg.saramaConfig()
	if err == nil {
		sc.Producer.Flush.MaxMessages = 1
		sc.ClientID = p.cfg.ClientID
		var client sarama.Client
		client, err = sarama.NewClient(p.cfg.Brokers, sc)
		if err == nil {
			var ap sarama.AsyncProducer
			ap, err = sarama.NewAsyncProducerFromClient(client)
			if err == nil {
				s.solo, s.soloClient = ap, client
				p.watch(s.wg, ap)
				return ap
			}
			client.Close()
		}
	}
	s.soloFailed = time.Now()
	p.log.Warn("cannot connect the kafka producer for oversized messages; they wait and are retried",
		"brokers", p.cfg.Brokers, "err", err)
	return nil
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
	p.finish(msg)
}

// finish releases msg's in-flight slot and counts it done in its batch.
func (p *Producer) finish(msg *sarama.ProducerMessage) {
	p.inFlight.Add(-1)
	p.sem.Release(1)
	if meta, ok := msg.Metadata.(*msgMeta); ok {
		meta.t.done()
	}
}

func (p *Producer) onError(perr *sarama.ProducerError) {
	p.errs.Add(1)
	if perr.Msg == nil {
		return
	}
	// A fresh message: sarama keeps retry and sequence state in the old one.
	m := &sarama.ProducerMessage{
		Topic:    perr.Msg.Topic,
		Key:      perr.Msg.Key,
		Value:    perr.Msg.Value,
		Metadata: perr.Msg.Metadata,
	}
	if meta, ok := m.Metadata.(*msgMeta); ok && tooLarge(perr.Err) {
		if !p.shrink(m, meta, perr.Err) {
			return
		}
	} else if p.errStreak.Add(1) == 1 {
		p.log.Warn("kafka produce failing; lines are kept and re-sent, tailers pause once max in-flight is reached; check broker health and topic permissions",
			"topic", perr.Msg.Topic, "err", perr.Err)
	}
	p.retryMu.Lock()
	p.retry = append(p.retry, m)
	p.retryMu.Unlock()
	select {
	case p.retryWake <- struct{}{}:
	default:
	}
}

// tooLarge reports whether err rejects a message for its size: the
// broker's MESSAGE_TOO_LARGE, or sarama's check against MaxMessageBytes.
func tooLarge(err error) bool {
	var ce sarama.ConfigurationError
	return errors.Is(err, sarama.ErrMessageSizeTooLarge) ||
		errors.As(err, &ce) && strings.Contains(string(ce), "MaxMessageBytes")
}

// shrink prepares m, rejected as too large, for its re-send and reports
// whether to re-send it. The first rejection only moves it to the solo
// producer: it may have been rejected for the batch it was in. Each later
// one halves its event by cutting the line. A record that cannot shrink
// (its line is already empty) is dropped: counted, and acked so that it
// does not hold up its file forever.
func (p *Producer) shrink(m *sarama.ProducerMessage, meta *msgMeta, err error) bool {
	if n := p.tooLarge.Add(1); n == 1 || n%1000 == 0 {
		p.log.Warn("kafka rejects messages as too large; they are re-sent alone and cut until they fit; set the kafka max message bytes setting at or below the broker's message.max.bytes and the topic's max.message.bytes",
			"topic", m.Topic, "max_message_bytes", p.cfg.MaxMessageBytes, "rejected", n, "err", err)
	}
	if !meta.solo {
		meta.solo = true
		return true
	}
	old := m.Value.Length()
	val, cut := encode(meta.rec, old/2)
	if !cut || len(val) >= old {
		p.dropped.Add(1)
		p.log.Warn("kafka rejects an event as too large even with its line removed; it is dropped; raise the broker's message.max.bytes or trim the source's fields",
			"topic", m.Topic, "file_id", meta.rec.FileID, "offset", meta.rec.Offset, "bytes", old)
		p.finish(m)
		return false
	}
	if !meta.truncated {
		meta.truncated = true
		p.truncated.Add(1)
	}
	m.Value = sarama.ByteEncoder(val)
	return true
}

// topicCache creates topics on first use and remembers which exist. It is
// used only by the pump goroutine.
type topicCache struct {
	client     sarama.Client
	partitions int32
	log        *slog.Logger
	known      map[string]bool
	failedAt   map[string]time.Time
}

func newTopicCache(client sarama.Client, partitions int32, log *slog.Logger) *topicCache {
	return &topicCache{
		client: client, partitions: partitions, log: log,
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
	if err := kafkaconn.EnsureTopics(c.client, []string{topic}, c.partitions); err != nil {
		c.failedAt[topic] = time.Now()
		c.log.Warn("cannot create kafka topic; its lines are retried until it exists; create it or allow the producer to",
			"topic", topic, "err", err)
		return
	}
	delete(c.failedAt, topic)
	c.known[topic] = true
}
