package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/logbox/logbox/appliance/kafkatest"
)

// rotatingWriter appends uniquely numbered lines to dir/app.log at a steady
// rate and rotates it every rotateEvery lines, alternately by rename
// (app.log → app.log.N) and by copytruncate (copy to app.log.N, truncate).
type rotatingWriter struct {
	dir         string
	rotateEvery int
	mu          sync.Mutex
	written     int
	stop        chan struct{}
	done        chan struct{}
}

func (w *rotatingWriter) run(t *testing.T) {
	defer close(w.done)
	path := filepath.Join(w.dir, "app.log")
	gen := 0
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Error(err)
		return
	}
	defer func() { f.Close() }()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-tick.C:
		}
		w.mu.Lock()
		var b []byte
		for i := 0; i < 20; i++ {
			b = fmt.Appendf(b, "2026-11-25T10:00:00Z INFO crashline tok%07d user=%d path=/api/v1/orders/%d\n", w.written, w.written%97, w.written)
			w.written++
		}
		if _, err := f.Write(b); err != nil {
			t.Error(err)
		}
		rotate := w.written%w.rotateEvery == 0
		w.mu.Unlock()
		if rotate {
			gen++
			rotated := fmt.Sprintf("%s.%d", path, gen)
			if gen%2 == 0 {
				// logrotate copytruncate: copy aside, truncate in place; the
				// writer (O_APPEND) carries on at the new end. Done under the
				// writer's lock, so no line falls between copy and truncate
				// (with logrotate such lines are lost for every reader).
				w.mu.Lock()
				b, err := os.ReadFile(path)
				if err == nil {
					err = os.WriteFile(rotated, b, 0o644)
				}
				if err == nil {
					err = os.Truncate(path, 0)
				}
				w.mu.Unlock()
				if err != nil {
					t.Error(err)
					return
				}
				continue
			}
			if err := os.Rename(path, rotated); err != nil {
				t.Error(err)
				return
			}
			// Like a real writer, a few lines still go to the old file.
			w.mu.Lock()
			var tail []byte
			for i := 0; i < 5; i++ {
				tail = fmt.Appendf(tail, "2026-11-25T10:00:00Z INFO crashline tok%07d late write after rotation\n", w.written)
				w.written++
			}
			_, _ = f.Write(tail)
			w.mu.Unlock()
			f.Close()
			if f, err = os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644); err != nil {
				t.Error(err)
				return
			}
		}
	}
}

// crashWorkdir makes a work dir with a logs dir in it and a random source
// (seed logged, stream for tests that want their own sequence).
func crashWorkdir(t *testing.T, stream uint64) (work, logs string, rng *rand.Rand) {
	t.Helper()
	work = t.TempDir()
	logs = filepath.Join(work, "logs")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		t.Fatal(err)
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	return work, logs, rand.New(rand.NewPCG(seed, stream))
}

// countTokens counts the tokens 0 … written-1 missing from seen and those
// seen more than once, and reports the first few of each.
func countTokens(t *testing.T, seen map[int]int, written int) (missing, doubled int) {
	t.Helper()
	for i := 0; i < written; i++ {
		switch n := seen[i]; {
		case n == 0:
			missing++
			if missing <= 5 {
				t.Errorf("token %d missing", i)
			}
		case n > 1:
			doubled++
			if doubled <= 5 {
				t.Errorf("token %d found %d times", i, n)
			}
		}
	}
	return missing, doubled
}

var crashTok = regexp.MustCompile(`tok(\d{7})`)

// tokenPage is a page of /api/search as the token counters read it.
type tokenPage struct {
	Total  uint64 `json:"total"`
	Cursor string `json:"cursor"`
	Hits   []struct {
		ID   string    `json:"id"`
		TS   time.Time `json:"ts"`
		Line string    `json:"line"`
	} `json:"hits"`
}

// pageTokens pages through every hit of q at base (exact totals, 10 000
// a page), fetching each page's body with get, and calls each with the
// page's body and decoded page; it returns the total and how many times
// each token was found.
func pageTokens(t *testing.T, base, q string, get func(u string) []byte, each func(body []byte, p *tokenPage)) (map[int]int, uint64) {
	t.Helper()
	seen := map[int]int{}
	var total uint64
	cursor := ""
	for page := 0; page < 1000; page++ {
		u := base + "/api/search?limit=10000&track_total=true&q=" + url.QueryEscape(q)
		if cursor != "" {
			u += "&cursor=" + url.QueryEscape(cursor)
		}
		b := get(u)
		var res tokenPage
		if err := json.Unmarshal(b, &res); err != nil {
			t.Fatalf("GET %s: %v in %.300s", u, err, b)
		}
		if page == 0 {
			total = res.Total
		}
		for _, h := range res.Hits {
			m := crashTok.FindStringSubmatch(h.Line)
			if m == nil {
				t.Fatalf("line without token: %q", h.Line)
			}
			n, _ := strconv.Atoi(m[1])
			seen[n]++
		}
		if each != nil {
			each(b, &res)
		}
		if res.Cursor == "" {
			break
		}
		cursor = res.Cursor
	}
	return seen, total
}

// allTokens pages through every hit of q and counts each token.
func allTokens(t *testing.T, base, q string) (map[int]int, uint64) {
	t.Helper()
	return pageTokens(t, base, q, func(u string) []byte {
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}, nil)
}

// TestCrashKill9 runs the real binary under sustained writes with rotation
// (rename and copytruncate), kills it with SIGKILL at random moments
// (during start-up too) a dozen times, restarts it each time, and then
// finds every written line in the index exactly once. It does so in each
// mode: direct; Kafka with one process of role all; and Kafka with an
// agent (never killed) and an indexer (the one killed), two processes.
// The Kafka broker is kfake, in this test process, and outlives the
// kills. After the last kill a line appended at the restart is
// searchable within 15 s: a restarted indexer takes its partitions back
// at once (static group membership) instead of waiting for its dead self.
func TestCrashKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("kills the binary many times")
	}
	bin := buildBinary(t)
	for _, mode := range []struct {
		name  string
		kafka bool
		split bool // --role agent and --role indexer; the indexer is killed
	}{
		{name: "direct"},
		{name: "kafka", kafka: true},
		{name: "kafka-agent-indexer", kafka: true, split: true},
	} {
		t.Run(mode.name, func(t *testing.T) {
			var k *kafkatest.Cluster
			if mode.kafka {
				k = kafkatest.Start(t)
			}
			crashKill9(t, bin, k, mode.split)
		})
	}
}

// crashKill9 is one mode of TestCrashKill9: direct mode when k is nil.
func crashKill9(t *testing.T, bin string, k *kafkatest.Cluster, split bool) {
	work, logs, rng := crashWorkdir(t, 1)
	w := &rotatingWriter{dir: logs, rotateEvery: 1500, stop: make(chan struct{}), done: make(chan struct{})}
	go w.run(t)
	common := []string{"--http", "127.0.0.1:0", "--etcd-listen", "127.0.0.1:0", "--host", "crashbox"}
	if k != nil {
		// Named per test, so a real cluster (LOGBOX_TEST_KAFKA) works too.
		common = append(common, "--kafka", strings.Join(k.Brokers, ","),
			"--topic", kafkatest.UniqueName(t, "crash"), "--kafka-group", kafkatest.UniqueName(t, "crash"))
	}
	collect := []string{"--collect", "logs/app.log*", "--rotate-wait", "300ms", "--scan-interval", "200ms"}
	// args are those of the process that is killed and restarted.
	args := append(append([]string{"--data", "data"}, common...), collect...)
	if split {
		agent := startBinary(t, bin, work, append(append([]string{"--data", "agent", "--role", "agent"}, common...), collect...)...)
		defer func() {
			_ = agent.cmd.Process.Signal(syscall.SIGTERM)
			<-agent.done
		}()
		args = append([]string{"--data", "indexer", "--role", "indexer"}, common...)
	}

	const kills = 12
	beforeRunning := 0
	for i := 0; i < kills; i++ {
		p := launchBinary(t, bin, work, args...)
		// Every third kill comes early, in the middle of start-up.
		wait := 300 + rng.IntN(2200)
		if i%3 == 0 {
			wait = 50 + rng.IntN(450)
		}
		time.Sleep(time.Duration(wait) * time.Millisecond)
		if err := p.cmd.Process.Kill(); err != nil {
			// It ended by itself: that is a bug to explain, not a kill.
			exit := <-p.done
			p.dumpLog(t, fmt.Sprintf("logbox exited by itself (%v) before it was killed", exit))
			t.Fatalf("logbox exited by itself before kill %d: %v", i+1, exit)
		}
		<-p.done
		select {
		case <-p.running:
		default:
			beforeRunning++
		}
	}
	close(w.stop)
	<-w.done
	w.mu.Lock()
	written := w.written
	w.mu.Unlock()

	// The restart after the last kill, and a line appended right after it.
	restart := time.Now()
	p := launchBinary(t, bin, work, args...)
	f, err := os.OpenFile(filepath.Join(logs, "app.log"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	marker := written
	written++
	if _, err := fmt.Fprintf(f, "2026-11-25T10:00:00Z INFO crashline tok%07d appended at the restart\n", marker); err != nil {
		t.Fatal(err)
	}
	f.Close()
	waitRunning(t, p)
	var resumed time.Duration
	for {
		if searchTotal(t, p.url, fmt.Sprintf("tok%07d", marker)) > 0 {
			resumed = time.Since(restart)
			break
		}
		if time.Since(restart) > 90*time.Second {
			t.Fatalf("the line appended at the restart is not searchable after 90s")
		}
		time.Sleep(100 * time.Millisecond)
	}

	deadline := time.Now().Add(90 * time.Second)
	var total uint64
	for time.Now().Before(deadline) {
		if total = searchTotal(t, p.url, "crashline"); total >= uint64(written) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	seen, total := allTokens(t, p.url, "crashline")
	missing, doubled := countTokens(t, seen, written)
	t.Logf("%d kills (%d during start-up), %d lines written across %d rotations: %d indexed, %d missing, %d doubled; the line appended at the restart searchable after %v",
		kills, beforeRunning, written, written/w.rotateEvery, total, missing, doubled, resumed.Round(time.Millisecond))
	if doubled > 0 {
		for tok, n := range seen {
			if n > 1 {
				resp, err := http.Get(p.url + "/api/search?limit=3&q=" + url.QueryEscape(fmt.Sprintf("tok%07d", tok)))
				if err == nil {
					var b strings.Builder
					_, _ = io.Copy(&b, resp.Body)
					resp.Body.Close()
					t.Logf("a doubled token: %s", b.String())
				}
				break
			}
		}
	}
	if missing > 0 || doubled > 0 || total != uint64(written) {
		t.Fatalf("%d written, %d indexed: %d missing, %d doubled", written, total, missing, doubled)
	}
	if resumed > 15*time.Second {
		t.Errorf("indexing again %v after the restart, want within 15s", resumed)
	}
}

// searchTotal is how many lines the search for q counts (estimated past
// 10 000 for text queries); exactTotal counts them exactly.
func searchTotal(t *testing.T, base, q string) uint64 {
	return total(t, base+"/api/search?limit=1&q="+url.QueryEscape(q))
}

func exactTotal(t *testing.T, base, q string) uint64 {
	return total(t, base+"/api/search?limit=1&track_total=true&q="+url.QueryEscape(q))
}

func total(t *testing.T, u string) uint64 {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var res struct {
		Total uint64 `json:"total"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil {
		t.Fatal(err)
	}
	return res.Total
}
