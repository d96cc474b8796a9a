package appliance

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/logbox/logbox/appliance/ledger"
	"github.com/logbox/logbox/appliance/tailer"
)

// metrics exposes the components' counters in Prometheus form. Values are
// read from each component's Stats when scraped, so the hot paths keep
// their plain atomics.
type metrics struct {
	a    *Appliance
	reg  *prometheus.Registry
	http *prometheus.HistogramVec

	linesRead, linesAcked, bytesRead, undelivered, lagBytes, openFiles          *prometheus.Desc
	prodSent, prodAcked, prodErrors, prodRetries, prodInFlight, prodTrunc       *prometheus.Desc
	consConsumed, consIndexed, consCommits, consLag                             *prometheus.Desc
	fleetIndexers, fleetMissing, fleetRequests                                  *prometheus.Desc
	idxDocs, idxWritten, idxBatches, idxQueued                                  *prometheus.Desc
	idxShards, idxBytes, idxDropped                                             *prometheus.Desc
	etcdUp                                                                      *prometheus.Desc
	diskFree, diskMinFree, diskLow, idxPaused                                   *prometheus.Desc
	ledgerFiles, ledgerGap, inputLines, inputRejected, inputInFlight, inputBusy *prometheus.Desc
	alertLeader, alertRules, alertEvals, alertEvalFails, alertEvalSecs          *prometheus.Desc
	alertNotes, alertOutbox, alertInstances, alertTargetsFailing                *prometheus.Desc
}

func newMetrics(a *Appliance) *metrics {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("logbox_"+name, help, labels, nil)
	}
	m := &metrics{
		a:   a,
		reg: prometheus.NewRegistry(),
		http: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "logbox_http_request_duration_seconds",
			Help:    "HTTP request latency by route group and status code.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 3, 12),
		}, []string{"route", "code"}),
		linesRead:           d("source_lines_read_total", "Lines (or multiline events) read, per source.", "source"),
		linesAcked:          d("source_lines_acked_total", "Lines acked downstream (Kafka or index), per source.", "source"),
		bytesRead:           d("source_bytes_read_total", "Bytes read from files, per source.", "source"),
		undelivered:         d("source_lines_undelivered_total", "Lines not delivered exactly as written, per source and reason.", "source", "reason"),
		lagBytes:            d("source_lag_bytes", "Bytes written to files but not yet acked, per source.", "source"),
		openFiles:           d("source_open_files", "Files being followed, per source.", "source"),
		prodSent:            d("kafka_produce_sent_total", "Messages handed to the Kafka producer, re-sends included."),
		prodAcked:           d("kafka_produce_acked_total", "Messages acknowledged by Kafka."),
		prodErrors:          d("kafka_produce_errors_total", "Messages that failed after the client's own retries."),
		prodRetries:         d("kafka_produce_retries_total", "Re-sends of failed messages."),
		prodInFlight:        d("kafka_produce_in_flight", "Records published but not yet acked."),
		prodTrunc:           d("kafka_produce_truncated_total", "Events whose line was cut to fit the message size limit."),
		consConsumed:        d("kafka_consume_messages_total", "Messages consumed."),
		consIndexed:         d("kafka_consume_indexed_total", "Consumed records written to the index."),
		consCommits:         d("kafka_consume_commits_total", "Offset commits of durable batches."),
		fleetIndexers:       d("fleet_indexers", "Live indexers registered in etcd."),
		fleetMissing:        d("fleet_partitions_missing", "Kafka partition ranges no live indexer holds (answers are partial)."),
		fleetRequests:       d("fleet_fanout_requests_total", "Requests this process made to indexers for fleet answers, by result.", "result"),
		consLag:             d("kafka_consumer_lag", "Messages behind the high-water mark, per claimed partition.", "topic", "partition"),
		idxDocs:             d("index_documents", "Distinct lines held by the index."),
		idxWritten:          d("index_documents_written_total", "Documents written (replays included)."),
		idxBatches:          d("index_batches_total", "Index batches written."),
		idxQueued:           d("index_queued_batches", "Batches waiting for the index writer."),
		idxShards:           d("index_shards", "Time shards of the index."),
		idxBytes:            d("index_bytes", "Size of the index on disk."),
		idxDropped:          d("index_shards_dropped_total", "Shards dropped by retention."),
		etcdUp:              d("etcd_up", "1 if the settings store answered the last scrape."),
		diskFree:            d("disk_free_bytes", "Free bytes on the data dir's disk at the last check."),
		diskMinFree:         d("disk_min_free_bytes", "The free-space floor (--min-free-disk); 0 is off."),
		diskLow:             d("disk_low", "1 while the data dir's disk is below the free-space floor."),
		idxPaused:           d("index_paused", "1 while indexing waits for free disk space."),
		ledgerFiles:         d("ledger_files", "Collected files by completeness state (complete, catching_up, gap, unknown, shipped), per source.", "source", "state"),
		alertLeader:         d("alert_leader", "1 on the process that evaluates the alert rules (won the etcd election)."),
		alertRules:          d("alert_rules", "Alert rules the evaluating process runs."),
		alertEvals:          d("alert_evaluations_total", "Alert rule evaluations."),
		alertEvalFails:      d("alert_evaluation_failures_total", "Alert rule evaluations whose query failed or whose state could not be written."),
		alertEvalSecs:       d("alert_evaluation_duration_seconds", "Time one alert rule evaluation took."),
		alertNotes:          d("alert_notifications_total", "Alert notification deliveries by target kind and result (sent, failed, retried, dropped).", "kind", "result"),
		alertOutbox:         d("alert_outbox", "Alert notifications waiting in etcd to be delivered."),
		alertInstances:      d("alerts", "Alert instances by state (pending, firing).", "state"),
		alertTargetsFailing: d("alert_targets_failing", "Notification targets whose last delivery failed."),
		inputLines:          d("input_lines_total", "Lines of a push input or journald by result: acked (durable), retried (a resend recognised, among acked), failed, overloaded (answered 429), unacked (UDP), dropped.", "input", "result"),
		inputRejected:       d("input_rejected_total", "Requests or frames a push input refused as malformed or too large.", "input"),
		inputBusy:           d("input_requests_busy_total", "Push requests answered 429 before they were read: the input held --input-max-in-flight lines.", "input"),
		inputInFlight:       d("input_in_flight", "Lines a push input accepted that are not yet durable.", "input"),
		ledgerGap:           d("ledger_gap_bytes", "Bytes acked downstream but missing from the index (or deleted before read), per source; 0 on a healthy box.", "source"),
	}
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), m.http, m)
	return m
}

// Describe is part of prometheus.Collector.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	prometheus.DescribeByCollect(m, ch)
}

// emitter sends const metrics to a Collect channel.
type emitter struct{ ch chan<- prometheus.Metric }

func (e emitter) counter(d *prometheus.Desc, v uint64, labels ...string) {
	e.ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
}

func (e emitter) gauge(d *prometheus.Desc, v float64, labels ...string) {
	e.ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}

// Collect is part of prometheus.Collector: every component's metrics
// (component.collect), then the process's own (ledger, etcd).
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	e := emitter{ch}
	a := m.a
	for _, c := range a.comps {
		if c.collect != nil {
			c.collect(m, e)
		}
	}
	var files []tailer.FileStatus
	if a.tail != nil {
		files = a.tail.Status()
	}
	if l := a.ledger(files); l != nil {
		for _, s := range l.Sources {
			e.gauge(m.ledgerGap, float64(s.GapBytes), s.Source)
			for state, n := range map[string]int{
				ledger.StateComplete: s.Complete, ledger.StateCatchingUp: s.CatchingUp,
				ledger.StateGap: s.WithGaps, ledger.StateUnknown: s.Unknown, ledger.StateShipped: s.Shipped,
			} {
				e.gauge(m.ledgerFiles, float64(n), s.Source, state)
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	up := 0.0
	if a.etcdHealth(ctx) == nil {
		up = 1
	}
	e.gauge(m.etcdUp, up)
}

// tailMetrics are the tailer's: lines and bytes per source, lag, open
// files.
func (a *Appliance) tailMetrics(m *metrics, e emitter) {
	for src, t := range a.tail.Totals() {
		e.counter(m.linesRead, t.LinesRead, src)
		e.counter(m.linesAcked, t.LinesAcked, src)
		e.counter(m.bytesRead, t.BytesRead, src)
	}
	for src, reasons := range a.tail.Undelivered() {
		for reason, n := range reasons {
			e.counter(m.undelivered, n, src, reason)
		}
	}
	lag, open := map[string]float64{}, map[string]float64{}
	for _, f := range a.tail.Status() {
		if f.FileID == "" {
			continue // refused, not open
		}
		lag[f.Source] += float64(f.LagBytes)
		open[f.Source]++
	}
	for src, v := range lag {
		e.gauge(m.lagBytes, v, src)
		e.gauge(m.openFiles, open[src], src)
	}
}

func (a *Appliance) producerMetrics(m *metrics, e emitter) {
	s := a.producer.Stats()
	e.counter(m.prodSent, s.Sent)
	e.counter(m.prodAcked, s.Acked)
	e.counter(m.prodErrors, s.Errors)
	e.counter(m.prodRetries, s.Retries)
	e.gauge(m.prodInFlight, float64(s.InFlight))
	e.counter(m.prodTrunc, s.Truncated)
	for _, c := range a.producer.Collectors() {
		c.Collect(e.ch)
	}
}

func (a *Appliance) consumerMetrics(m *metrics, e emitter) {
	s := a.consumer.Stats()
	e.counter(m.consConsumed, s.Consumed)
	e.counter(m.consIndexed, s.Indexed)
	e.counter(m.consCommits, s.Commits)
	for _, l := range s.Lag {
		e.gauge(m.consLag, float64(l.Lag), l.Topic, strconv.Itoa(int(l.Partition)))
	}
}

func (a *Appliance) indexMetrics(m *metrics, e emitter) {
	s := a.idx.Stats()
	e.gauge(m.idxDocs, float64(s.Docs))
	e.counter(m.idxWritten, s.DocsWritten)
	e.counter(m.idxBatches, s.BatchesWritten)
	e.gauge(m.idxQueued, float64(a.queuedBatches()))
	e.gauge(m.idxShards, float64(s.Shards))
	e.gauge(m.idxBytes, float64(s.Bytes))
	e.counter(m.idxDropped, s.ShardsDropped)
	for _, c := range a.idx.Collectors() {
		c.Collect(e.ch)
	}
}

func (a *Appliance) diskMetrics(m *metrics, e emitter) {
	s := a.disk.Status()
	b := map[bool]float64{true: 1}
	e.gauge(m.diskFree, float64(s.FreeBytes))
	e.gauge(m.diskMinFree, float64(s.MinFreeBytes))
	e.gauge(m.diskLow, b[s.Low])
	e.gauge(m.idxPaused, b[a.indexPaused(s)])
}

func (a *Appliance) alertMetrics(m *metrics, e emitter) {
	s := a.alerting.Stats()
	e.gauge(m.alertLeader, map[bool]float64{true: 1}[s.Leader])
	e.gauge(m.alertRules, float64(s.Rules))
	e.counter(m.alertEvals, s.Evaluations)
	e.counter(m.alertEvalFails, s.EvaluationFailures)
	buckets := make(map[float64]uint64, len(s.EvaluationSeconds.Bounds))
	for i, b := range s.EvaluationSeconds.Bounds {
		buckets[b] = s.EvaluationSeconds.Counts[i]
	}
	e.ch <- prometheus.MustNewConstHistogram(m.alertEvalSecs, s.EvaluationSeconds.Count, s.EvaluationSeconds.Sum, buckets)
	for kind, n := range s.Notifications {
		e.counter(m.alertNotes, n.Sent, kind, "sent")
		e.counter(m.alertNotes, n.Failed, kind, "failed")
		e.counter(m.alertNotes, n.Retried, kind, "retried")
		e.counter(m.alertNotes, n.Dropped, kind, "dropped")
	}
	e.gauge(m.alertOutbox, float64(s.Outbox))
	e.gauge(m.alertInstances, float64(s.Pending), "pending")
	e.gauge(m.alertInstances, float64(s.Firing), "firing")
	e.gauge(m.alertTargetsFailing, float64(len(s.TargetsInTrouble)))
}

func (a *Appliance) inputMetrics(m *metrics, e emitter) {
	if a.inputs == nil {
		return
	}
	for name, st := range a.inputs.status() {
		for result, n := range map[string]uint64{"acked": st.Acked, "retried": st.Retried, "failed": st.Failed,
			"overloaded": st.Overloaded, "unacked": st.Unacked, "dropped": st.Dropped} {
			e.counter(m.inputLines, n, name, result)
		}
		e.counter(m.inputRejected, st.Rejected, name)
		e.counter(m.inputBusy, st.RequestsBusy, name)
		e.gauge(m.inputInFlight, float64(st.InFlight), name)
	}
}

// handler serves /metrics.
func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// instrument records the latency of every request, by route group (the
// first two path segments, so the label set stays small) and status code.
func (m *metrics) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(sw, r)
		m.http.WithLabelValues(routeGroup(r.URL.Path), strconv.Itoa(sw.code)).Observe(time.Since(start).Seconds())
	})
}

func routeGroup(path string) string {
	parts := strings.SplitN(strings.TrimPrefix(path, "/"), "/", 3)
	switch {
	case len(parts) >= 2 && parts[0] == "api":
		return "/api/" + parts[1]
	case parts[0] == "healthz", parts[0] == "readyz", parts[0] == "metrics":
		return "/" + parts[0]
	default:
		return "/ui"
	}
}

// statusWriter remembers the status code; it passes Flush through so
// Server-Sent Events keep streaming.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the real writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
