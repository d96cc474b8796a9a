package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/elastic/go-elasticsearch/v8"
	"github.com/elastic/go-elasticsearch/v8/esutil"

	"github.com/logbox/logbox/appliance/kafkatest"
)

// esbinDoc is document tok in Filebeat's shape; odd tokens are sent
// with an _id, even ones without (identified by their content).
func esbinDoc(base time.Time, tok int) []byte {
	b, _ := json.Marshal(map[string]any{
		"@timestamp": base.Add(time.Duration(tok) * time.Millisecond).Format(time.RFC3339Nano),
		"message":    fmt.Sprintf("esbin tok%07d GET /cart 200", tok),
		"host":       map[string]any{"name": "shipper-1"},
		"log":        map[string]any{"file": map[string]any{"path": "/var/log/shop.log"}, "offset": tok * 40, "level": "info"},
		"seq":        tok,
		"withid":     tok%2 == 1,
	})
	return b
}

func esbinID(tok int) string {
	if tok%2 == 1 {
		return fmt.Sprintf("doc-%d", tok)
	}
	return ""
}

// countingTransport counts the requests that got no answer, or 429 or
// 5xx: those the client's transport sends again.
type countingTransport struct {
	base   http.RoundTripper
	failed atomic.Int64
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	res, err := c.base.RoundTrip(r)
	if err != nil || res.StatusCode == 429 || res.StatusCode >= 500 {
		c.failed.Add(1)
	}
	return res, err
}

// TestESBulkBinaryKill9 runs the real binary with --elasticsearch-bulk,
// streams Filebeat-shaped documents to it with the official Go client's
// bulk indexer (half with an _id, half without), kills logbox with
// SIGKILL mid-stream a few times and restarts it on the same data
// directory and port. The client's transport sends a request again when
// it got no answer; the items the indexer still reports failed are sent
// again by the test, as a shipper would. Then a request answered 200 is
// sent again after a kill, as a client whose answer was lost does. Every
// document is searchable exactly once, with its fields. Direct mode, and
// through Kafka (kfake, outliving the kills).
func TestESBulkBinaryKill9(t *testing.T) {
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
					"--topic", kafkatest.UniqueName(t, "es"), "--kafka-group", kafkatest.UniqueName(t, "es")}
			}
			esBulkKill9(t, bin, extra)
		})
	}
}

func esBulkKill9(t *testing.T, bin string, extra []string) {
	began := time.Now()
	work, _, rng := crashWorkdir(t, 21)
	args := func(addr string) []string {
		return append([]string{"--data", "data", "--http", addr, "--etcd-listen", "127.0.0.1:0", "--host", "esbox", "--elasticsearch-bulk"}, extra...)
	}
	p := startBinary(t, bin, work, args("127.0.0.1:0")...)
	addr := strings.TrimPrefix(p.url, "http://")

	tr := &countingTransport{base: http.DefaultTransport.(*http.Transport).Clone()}
	es, err := elasticsearch.NewClient(elasticsearch.Config{
		Addresses: []string{p.url + "/es"},
		Transport: tr,
		// Through a kill and a restart: a refused connection, a reset one,
		// a 503 while logbox starts are retried with the same body.
		RetryOnStatus: []int{429, 502, 503, 504},
		MaxRetries:    40,
		RetryBackoff:  func(i int) time.Duration { return min(time.Duration(i)*50*time.Millisecond, 500*time.Millisecond) },
	})
	if err != nil {
		t.Fatal(err)
	}
	res, err := es.Info()
	if err != nil {
		t.Fatalf("GET /es/ (is --elasticsearch-bulk wired?): %v", err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("GET /es/: %d", res.StatusCode)
	}

	base := time.Now().Add(-10 * time.Minute)
	const n = 20000
	var (
		mu      sync.Mutex
		failed  []int // tokens the indexer reported failed, to send again
		created atomic.Int64
	)
	index := func(toks []int, pace bool) error {
		ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
		defer cancel()
		bi, err := esutil.NewBulkIndexer(esutil.BulkIndexerConfig{Client: es, Index: "esbinidx", NumWorkers: 2,
			FlushBytes: 64 << 10, FlushInterval: 50 * time.Millisecond})
		if err != nil {
			return err
		}
		for k, tok := range toks {
			it := esutil.BulkIndexerItem{Action: "create", DocumentID: esbinID(tok), Body: bytes.NewReader(esbinDoc(base, tok)),
				OnSuccess: func(context.Context, esutil.BulkIndexerItem, esutil.BulkIndexerResponseItem) { created.Add(1) },
				OnFailure: func(_ context.Context, _ esutil.BulkIndexerItem, res esutil.BulkIndexerResponseItem, err error) {
					if err == nil && res.Status != 429 && res.Status < 500 {
						t.Errorf("tok %d refused: %d %s %s", tok, res.Status, res.Error.Type, res.Error.Reason)
					}
					mu.Lock()
					failed = append(failed, tok)
					mu.Unlock()
				}}
			if err := bi.Add(ctx, it); err != nil {
				return err
			}
			if pace && k%100 == 99 {
				time.Sleep(20 * time.Millisecond)
			}
		}
		return bi.Close(ctx)
	}

	streamDone := make(chan error, 1)
	go func() {
		toks := make([]int, n)
		for i := range toks {
			toks[i] = i
		}
		streamDone <- index(toks, true)
	}()
	const kills = 4
	for k := range kills {
		time.Sleep(time.Duration(400+rng.IntN(1200)) * time.Millisecond)
		if err := p.cmd.Process.Kill(); err != nil {
			exit := <-p.done
			p.dumpLog(t, fmt.Sprintf("logbox exited by itself (%v)", exit))
			t.Fatalf("logbox exited by itself before kill %d", k+1)
		}
		<-p.done
		t.Logf("%v: kill %d after %d documents created", time.Since(began).Round(time.Millisecond), k+1, created.Load())
		time.Sleep(time.Duration(50+rng.IntN(300)) * time.Millisecond)
		p = startBinary(t, bin, work, args(addr)...)
		if p.url != "http://"+addr {
			t.Fatalf("restarted on %s, want %s", p.url, addr)
		}
	}
	select {
	case err := <-streamDone:
		if err != nil {
			t.Fatalf("stream: %v", err)
		}
	case <-time.After(4 * time.Minute):
		t.Fatal("the stream did not end")
	}
	// What the indexer gave up on, sent again until taken.
	resent := 0
	for round := 0; ; round++ {
		mu.Lock()
		again := failed
		failed = nil
		mu.Unlock()
		if len(again) == 0 {
			break
		}
		if round > 10 {
			t.Fatalf("%d documents still refused after %d rounds", len(again), round)
		}
		resent += len(again)
		if err := index(again, false); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%v: stream done, %d created answers, %d requests unanswered or refused and retried, %d documents resent",
		time.Since(began).Round(time.Millisecond), created.Load(), tr.failed.Load(), resent)
	if tr.failed.Load() == 0 {
		t.Error("no request met a kill")
	}

	// A request answered 200 whose answer the client did not get, then a
	// SIGKILL: sent again to the restarted logbox, indexed once.
	var body bytes.Buffer
	for tok := n; tok < n+300; tok++ {
		meta := `{"create":{"_index":"esbinidx"}}`
		if id := esbinID(tok); id != "" {
			meta = fmt.Sprintf(`{"create":{"_index":"esbinidx","_id":%q}}`, id)
		}
		body.WriteString(meta + "\n")
		body.Write(esbinDoc(base, tok))
		body.WriteString("\n")
	}
	for i := range 2 {
		res, err := es.Bulk(bytes.NewReader(body.Bytes()))
		if err != nil {
			t.Fatalf("last request, send %d: %v", i+1, err)
		}
		var out struct {
			Errors bool             `json:"errors"`
			Items  []map[string]any `json:"items"`
		}
		err = json.NewDecoder(res.Body).Decode(&out)
		res.Body.Close()
		if err != nil || res.StatusCode != 200 || out.Errors || len(out.Items) != 300 {
			t.Fatalf("last request, send %d: %d %v errors=%v items=%d", i+1, res.StatusCode, err, out.Errors, len(out.Items))
		}
		if i == 0 {
			_ = p.cmd.Process.Kill()
			<-p.done
			p = startBinary(t, bin, work, args(addr)...)
		}
	}
	const total = n + 300

	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) && exactTotal(t, p.url, "esbin") < total {
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // a late double would show now
	seen, got := allTokens(t, p.url, "esbin")
	missing, doubled := countTokens(t, seen, total)
	t.Logf("%v: %d kills; %d documents: %d indexed, %d missing, %d doubled", time.Since(began).Round(time.Millisecond), kills+1, total, got, missing, doubled)
	if missing > 0 || doubled > 0 || got != total {
		p.dumpLog(t, "documents lost or doubled")
		t.Fatalf("%d documents, %d indexed: %d missing, %d doubled", total, got, missing, doubled)
	}

	// A document as searched: the sender's host and file, its fields.
	resp, err := http.Get(p.url + "/api/search?limit=1&q=" + url.QueryEscape("tok0012345"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out struct {
		Hits []struct {
			TS                 time.Time
			Host, Source, Line string
			Fields             map[string]string
		} `json:"hits"`
	}
	if err := json.Unmarshal(raw, &out); err != nil || len(out.Hits) != 1 {
		t.Fatalf("search: %v %s", err, raw)
	}
	h := out.Hits[0]
	if h.Host != "shipper-1" || h.Source != "bulk" || h.Fields["log.file.path"] != "/var/log/shop.log" || h.Line != "esbin tok0012345 GET /cart 200" ||
		h.Fields["index"] != "esbinidx" || h.Fields["seq"] != "12345" || h.Fields["level"] != "info" || h.Fields["withid"] != "true" ||
		!h.TS.Equal(base.Add(12345*time.Millisecond)) {
		t.Fatalf("hit %+v", h)
	}
	for q, want := range map[string]uint64{`+withid:true +esbin`: total / 2, `+index:esbinidx +esbin`: total, `+host:shipper-1 +esbin`: total} {
		if got := exactTotal(t, p.url, q); got != want {
			t.Errorf("%s: %d lines, want %d", q, got, want)
		}
	}
}
