package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/grafana/loki/pkg/push"

	"github.com/logbox/logbox/appliance/kafkatest"
)

// lokiShipper pushes batches to a Loki push URL as Promtail does: each
// batch a snappy-compressed PushRequest (Content-Type
// application/x-protobuf, Promtail's User-Agent), retried with the same
// body and backoff on a connection error, a 429 or a 5xx, until
// answered 204; another answer is a test failure. It stops after the
// batch it is sending when stop is closed.
type lokiShipper struct {
	url        string
	batch      int       // lines per batch
	base       time.Time // the first line's time
	stop, done chan struct{}

	mu              sync.Mutex
	written         int // lines of batches answered 204
	batches, errors int // batches sent; attempts that failed and were retried
	err             error
}

func (s *lokiShipper) run() {
	defer close(s.done)
	hc := &http.Client{Timeout: 10 * time.Second}
	for n := 0; ; n++ {
		select {
		case <-s.stop:
			return
		default:
		}
		body, err := s.build(n)
		if err != nil {
			s.fail(err)
			return
		}
		wait := 20 * time.Millisecond
		for attempt := 0; ; attempt++ {
			code, msg, err := s.send(hc, body)
			if err == nil && code == http.StatusNoContent {
				break
			}
			if err == nil && code != http.StatusTooManyRequests && code/100 != 5 {
				s.fail(fmt.Errorf("batch %d answered %d: %s", n, code, msg))
				return
			}
			if attempt > 600 {
				s.fail(fmt.Errorf("batch %d not taken after %d attempts: %d %v", n, attempt, code, err))
				return
			}
			s.mu.Lock()
			s.errors++
			s.mu.Unlock()
			time.Sleep(wait)
			wait = min(2*wait, 500*time.Millisecond)
		}
		s.mu.Lock()
		s.written += s.batch
		s.batches++
		s.mu.Unlock()
	}
}

// build is batch n: lines n*batch … (n+1)*batch-1 in two streams,
// entries out of order within each, some with structured metadata.
func (s *lokiShipper) build(n int) ([]byte, error) {
	req := push.PushRequest{Streams: []push.Stream{
		{Labels: `{job="lokibin", host="pushbox1", env="test"}`},
		{Labels: `{job="lokibin", host="pushbox2", env="test"}`},
	}}
	for i := range s.batch {
		tok := n*s.batch + i
		e := push.Entry{
			Timestamp: s.base.Add(time.Duration(tok) * time.Millisecond),
			Line:      fmt.Sprintf("level=info msg=\"lokibin tok%07d\" batch=%d", tok, n),
		}
		if i%3 == 0 {
			e.StructuredMetadata = push.LabelsAdapter{{Name: "trace_id", Value: fmt.Sprintf("t%d", tok)}}
		}
		st := &req.Streams[i%2]
		if i%5 == 4 && len(st.Entries) > 0 { // out of order
			st.Entries = append(st.Entries[:len(st.Entries)-1], e, st.Entries[len(st.Entries)-1])
		} else {
			st.Entries = append(st.Entries, e)
		}
	}
	raw, err := req.Marshal()
	if err != nil {
		return nil, err
	}
	return snappy.Encode(nil, raw), nil
}

func (s *lokiShipper) send(hc *http.Client, body []byte) (int, string, error) {
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, s.url+"/loki/api/v1/push", bytes.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("User-Agent", "promtail/3.5.1")
	resp, err := hc.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	return resp.StatusCode, string(msg), nil
}

func (s *lokiShipper) fail(err error) {
	s.mu.Lock()
	s.err = err
	s.mu.Unlock()
}

// TestLokiPushBinary runs the real binary with --loki-push, pushes
// batches to it as Promtail does while it is killed with SIGKILL at
// random moments and restarted on the same data directory and port, and
// then finds every pushed line in the index exactly once, with its
// labels as fields: a batch is answered only once durable, and the batch
// the client sends again after a kill is not indexed twice. Direct mode,
// and through Kafka (kfake, outliving the kills).
func TestLokiPushBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the binary")
	}
	bin := buildBinary(t)
	for _, mode := range []string{"direct", "kafka"} {
		t.Run(mode, func(t *testing.T) {
			var extra []string
			if mode == "kafka" {
				k := kafkatest.Start(t)
				extra = []string{"--kafka", strings.Join(k.Brokers, ","),
					"--topic", kafkatest.UniqueName(t, "loki"), "--kafka-group", kafkatest.UniqueName(t, "loki")}
			}
			lokiPushKill9(t, bin, extra)
		})
	}
}

func lokiPushKill9(t *testing.T, bin string, extra []string) {
	work, _, rng := crashWorkdir(t, 15)
	args := func(http string) []string {
		return append([]string{"--data", "data", "--http", http, "--etcd-listen", "127.0.0.1:0", "--host", "lokibox", "--loki-push"}, extra...)
	}
	p := startBinary(t, bin, work, args("127.0.0.1:0")...)
	u, err := url.Parse(p.url)
	if err != nil {
		t.Fatal(err)
	}
	addr := u.Host // the same port after every restart: the client keeps its URL

	s := &lokiShipper{url: p.url, batch: 200, base: time.Now().Add(-10 * time.Minute),
		stop: make(chan struct{}), done: make(chan struct{})}
	go s.run()

	const kills = 5
	for i := 0; i < kills; i++ {
		time.Sleep(time.Duration(400+rng.IntN(1600)) * time.Millisecond)
		if err := p.cmd.Process.Kill(); err != nil {
			exit := <-p.done
			p.dumpLog(t, fmt.Sprintf("logbox exited by itself (%v)", exit))
			t.Fatalf("logbox exited by itself before kill %d: %v", i+1, exit)
		}
		<-p.done
		p = startBinary(t, bin, work, args(addr)...)
		if p.url != "http://"+addr {
			t.Fatalf("restarted on %s, want %s", p.url, addr)
		}
	}
	time.Sleep(time.Second) // a last stretch of pushes to the last process
	close(s.stop)
	select {
	case <-s.done:
	case <-time.After(2 * time.Minute):
		t.Fatal("the client did not finish its last batch")
	}
	s.mu.Lock()
	written, batches, retries, serr := s.written, s.batches, s.errors, s.err
	s.mu.Unlock()
	if serr != nil {
		p.dumpLog(t, "the client failed")
		t.Fatal(serr)
	}
	if batches < kills {
		t.Fatalf("only %d batches answered across %d kills", batches, kills)
	}

	// A batch answered 204 whose answer the client did not get, then a
	// SIGKILL: the client sends it again to the restarted logbox (the
	// same body; logbox cannot tell it from a batch whose answer was
	// lost), and it is indexed once.
	last, err := s.build(batches)
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Timeout: 30 * time.Second}
	for i := range 2 {
		code, msg, err := s.send(hc, last)
		if err != nil || code != http.StatusNoContent {
			t.Fatalf("the last batch, push %d: %d %q %v", i+1, code, msg, err)
		}
		if i == 0 {
			_ = p.cmd.Process.Kill()
			<-p.done
			p = startBinary(t, bin, work, args(addr)...)
		}
	}
	written += s.batch
	batches++

	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) && exactTotal(t, p.url, "lokibin") < uint64(written) {
		time.Sleep(200 * time.Millisecond)
	}
	seen, total := allTokens(t, p.url, "lokibin")
	missing, doubled := countTokens(t, seen, written)
	t.Logf("%d kills; %d batches (%d lines) answered 204, %d attempts retried: %d indexed, %d missing, %d doubled",
		kills, batches, written, retries, total, missing, doubled)
	if missing > 0 || doubled > 0 || total != uint64(written) {
		t.Fatalf("%d pushed, %d indexed: %d missing, %d doubled", written, total, missing, doubled)
	}
	// Labels and metadata are fields; the host label is the line's host.
	for _, q := range []struct {
		q    string
		want int
	}{
		{`+job:lokibin +env:test`, written},
		{`+host:pushbox1 +lokibin`, written / 2},
		{`+source:loki +lokibin`, written},
		{`trace_id:t0`, 1},
	} {
		if n := exactTotal(t, p.url, q.q); n != uint64(q.want) {
			t.Errorf("%s: %d lines, want %d", q.q, n, q.want)
		}
	}
}
