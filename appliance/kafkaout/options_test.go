package kafkaout_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/logbox/logbox/appliance/kafkaauth"
	"github.com/logbox/logbox/appliance/kafkaout"
	"github.com/logbox/logbox/appliance/kafkatest"
	"github.com/logbox/logbox/appliance/pipeline"
)

// TestPartitioner: hash keeps one file in one partition, in file order;
// roundrobin and random spread it.
func TestPartitioner(t *testing.T) {
	cluster := kafkatest.Start(t)
	const parts, n = 4, 200
	f := func(partitioner string, check func(t *testing.T, byPartition map[int32]int)) {
		t.Run(partitioner, func(t *testing.T) {
			topic := kafkatest.UniqueName(t, "part")
			p := kafkaout.New(kafkaout.Config{Brokers: cluster.Brokers, Topic: topic, Partitions: parts,
				Partitioner: partitioner}, testLogger(t))
			runProducer(t, p)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			var acks ackCounter
			var sent []pipeline.Record
			// batch 0 of makeRecords: one file, one key.
			all := makeRecords(partitioner, 0, n, "")
			for i := 0; i < n; i += 20 {
				sent = append(sent, all[i:i+20]...)
				if err := p.Publish(ctx, acks.batch(all[i:i+20])); err != nil {
					t.Fatalf("Publish: %v", err)
				}
			}
			acks.waitAcked(t, 15*time.Second)
			got := readTopic(t, cluster.Brokers, topic, n)
			byPartition := map[int32]int{}
			for _, g := range got {
				byPartition[g.partition]++
			}
			t.Logf("records per partition: %v", byPartition)
			check(t, byPartition)
			if partitioner == "hash" {
				checkRecords(t, sent, got, false) // also checks order within the partition
			}
		})
	}
	f("hash", func(t *testing.T, byPartition map[int32]int) {
		if len(byPartition) != 1 {
			t.Errorf("one key in %d partitions, want 1", len(byPartition))
		}
	})
	f("roundrobin", func(t *testing.T, byPartition map[int32]int) {
		if len(byPartition) != parts {
			t.Errorf("one key in %d partitions, want all %d", len(byPartition), parts)
		}
		for p, c := range byPartition {
			if c < n/parts-1 || c > n/parts+1 {
				t.Errorf("partition %d holds %d records, want about %d", p, c, n/parts)
			}
		}
	})
	f("random", func(t *testing.T, byPartition map[int32]int) {
		if len(byPartition) < 2 {
			t.Errorf("one key in %d partitions, want more than 1", len(byPartition))
		}
	})
}

// readRaw reads n message values of topic from the start.
func readRaw(t *testing.T, brokers []string, topic string, n int) [][]byte {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatalf("kgo client: %v", err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out [][]byte
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %q: got %d of %d records", topic, len(out), n)
		}
		fs.EachRecord(func(r *kgo.Record) { out = append(out, r.Value) })
	}
	return out
}

type event struct {
	pipeline.Record
}

func (e *event) truncated() bool { return slices.Contains(e.Flags, pipeline.FlagTruncated) }

// TestOversized: a line too long for MaxMessageBytes is cut on a UTF-8
// boundary and marked; with a broker limit below MaxMessageBytes, a batch
// the broker rejects is re-sent message by message, the long line is cut
// further, and an event that cannot fit even without its line is dropped
// (counted) rather than retried forever. Every batch is acked.
func TestOversized(t *testing.T) {
	// 10 KB of multi-byte runes and characters JSON escapes.
	long := strings.Repeat("ab€<\"é", 10*1024/9)
	f := func(name string, brokerMax string, wantMax int, extra []pipeline.Record, wantTruncated, wantDropped uint64) {
		t.Run(name, func(t *testing.T) {
			var opts []kfake.Opt
			if brokerMax != "" {
				opts = append(opts, kfake.BrokerConfigs(map[string]string{"message.max.bytes": brokerMax}))
			}
			cluster := kafkatest.Start(t, opts...)
			topic := kafkatest.UniqueName(t, "big")
			p := kafkaout.New(kafkaout.Config{Brokers: cluster.Brokers, Topic: topic, MaxMessageBytes: 2000},
				testLogger(t))
			runProducer(t, p)
			recs := makeRecords("big", 0, 20, "")
			recs[7].Line = long
			recs = append(recs, extra...)
			var acks ackCounter
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			start := time.Now()
			if err := p.Publish(ctx, acks.batch(recs)); err != nil {
				t.Fatalf("Publish: %v", err)
			}
			acks.waitAcked(t, 15*time.Second)
			st := p.Stats()
			t.Logf("acked after %v; stats %+v", time.Since(start), st)
			if st.Truncated != wantTruncated || st.Dropped != wantDropped {
				t.Errorf("stats %+v: want Truncated %d, Dropped %d", st, wantTruncated, wantDropped)
			}
			if brokerMax != "" && st.TooLarge == 0 {
				t.Errorf("stats %+v: want broker rejections counted in TooLarge", st)
			}

			vals := readRaw(t, cluster.Brokers, topic, 20)
			for _, v := range vals {
				if len(v) > wantMax {
					t.Errorf("message of %d bytes, want at most %d", len(v), wantMax)
				}
				var ev event
				if err := json.Unmarshal(v, &ev); err != nil {
					t.Fatalf("not an event: %v: %q", err, v)
				}
				if ev.Offset != recs[7].Offset {
					if ev.truncated() || ev.Line != recs[ev.Offset/100].Line {
						t.Errorf("short line changed: %s", v)
					}
					continue
				}
				if !ev.truncated() {
					t.Errorf("long line without the truncated flag: %.200s", v)
				}
				if !strings.HasPrefix(long, ev.Line) || !utf8.ValidString(ev.Line) || len(ev.Line) < 100 {
					t.Errorf("long line cut to %d bytes %q, want a valid UTF-8 prefix of a sensible length", len(ev.Line), ev.Line)
				}
				t.Logf("long line: %d bytes, cut to %d, message %d bytes", len(long), len(ev.Line), len(v))
			}
		})
	}
	f("producer limit", "", 2000, nil, 1, 0)
	// The broker's limit applies to a whole record batch (header included).
	// The event with a huge field cannot fit 1000 bytes even without its
	// line: its line is cut (counted) and then it is dropped (counted).
	huge := makeRecords("huge", 1, 1, "")
	huge[0].Fields = map[string]string{"env": "test", "blob": strings.Repeat("x", 1500)}
	f("broker limit", "1000", 1000-70, huge, 2, 1)
}

// TestValidateOptions checks the messages name the setting.
func TestValidateOptions(t *testing.T) {
	ok := kafkaout.Config{Brokers: []string{"127.0.0.1:9092"}, Topic: "logbox"}
	f := func(mutate func(*kafkaout.Config), want string) {
		t.Helper()
		c := ok
		mutate(&c)
		err := c.Validate()
		switch {
		case want == "" && err != nil:
			t.Errorf("want no error, got %v", err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("error %v, want one containing %q", err, want)
		}
	}
	f(func(c *kafkaout.Config) { c.Partitioner = "roundrobin" }, "")
	f(func(c *kafkaout.Config) { c.Partitioner = "x" }, `kafka partitioner: "x" is not one of hash, random, roundrobin`)
	f(func(c *kafkaout.Config) { c.SASLMechanism = "GSSAPI"; c.SASLUser = "u"; c.SASLPassword = "p" },
		`kafka sasl mechanism: "GSSAPI" is not one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512`)
	f(func(c *kafkaout.Config) { c.SASLMechanism = "SCRAM-SHA-512"; c.SASLUser = "u"; c.SASLPassword = "p" }, "")
	f(func(c *kafkaout.Config) { c.SASLMechanism = "PLAIN" }, "kafka sasl user: none given")
	f(func(c *kafkaout.Config) { c.SASLMechanism = "PLAIN"; c.SASLUser = "u" }, "kafka sasl password: none given")
	f(func(c *kafkaout.Config) { c.SASLUser = "u" }, "kafka sasl mechanism: none given")
	f(func(c *kafkaout.Config) { c.MaxMessageBytes = 10 }, "kafka max message bytes: 10 is not between")
	f(func(c *kafkaout.Config) { c.MaxMessageBytes = 200 << 20 }, "kafka max message bytes")
}

func TestTLSConfigFiles(t *testing.T) {
	tc, err := kafkaauth.TLSConfig("", "", "", false)
	if tc != nil || err != nil {
		t.Errorf("TLSConfig of nothing = %v, %v; want nil, nil", tc, err)
	}
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ ca, cert, key, want string }{
		{filepath.Join(dir, "missing.pem"), "", "", "kafka tls ca"},
		{notPEM, "", "", "holds no PEM certificate"},
		{"", notPEM, "", "needs its key file"},
		{"", "", notPEM, "needs its cert file"},
		{"", notPEM, notPEM, "kafka tls client certificate"},
	} {
		if _, err := kafkaauth.TLSConfig(tc.ca, tc.cert, tc.key, false); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("TLSConfig(%q, %q, %q): %v, want an error containing %q", tc.ca, tc.cert, tc.key, err, tc.want)
		}
	}
	if tc, err := kafkaauth.TLSConfig("", "", "", true); err != nil || tc == nil || !tc.InsecureSkipVerify {
		t.Errorf("TLSConfig(insecure) = %v, %v", tc, err)
	}
}
