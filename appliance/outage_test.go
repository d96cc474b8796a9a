package appliance

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/logbox/logbox/appliance/kafkatest"
)

// steadyWriter appends numbered lines to path at about rate lines/s.
type steadyWriter struct {
	mu      sync.Mutex
	written int
	want    map[string]bool
	stop    chan struct{}
	done    chan struct{}
}

func startWriter(t *testing.T, path string, rate int) *steadyWriter {
	t.Helper()
	w := &steadyWriter{want: map[string]bool{}, stop: make(chan struct{}), done: make(chan struct{})}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(w.done)
		defer f.Close()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		per := max(rate/50, 1)
		for {
			select {
			case <-w.stop:
				return
			case <-tick.C:
			}
			w.mu.Lock()
			var b []byte
			for i := 0; i < per; i++ {
				tok := fmt.Sprintf("tokw%07d", w.written)
				b = fmt.Appendf(b, "2026-11-25 INFO e2e %s GET /api/v1/orders status=200 latency_ms=%d\n", tok, w.written%500)
				w.want[tok] = true
				w.written++
			}
			w.mu.Unlock()
			if _, err := f.Write(b); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	return w
}

func (w *steadyWriter) finish() map[string]bool {
	close(w.stop)
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.want
}

// TestBrokerOutage takes the Kafka broker away for a minute (LOGBOX_OUTAGE
// overrides, e.g. 5s for a quick run) while a file keeps growing: the
// tailer pauses after a bounded number of unacked lines instead of
// buffering the file, heap stays under the stated bound, and when a broker
// is back on the same port with the same data, delivery resumes by itself
// and every line is indexed exactly once.
func TestBrokerOutage(t *testing.T) {
	outage := 60 * time.Second
	if v := os.Getenv("LOGBOX_OUTAGE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatal(err)
		}
		outage = d
	}
	k := kafkatest.Start(t)
	if k.External() {
		t.Skip("cannot stop an external Kafka")
	}
	root := t.TempDir()
	logs := filepath.Join(root, "logs")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, filepath.Join(root, "data"), root)
	cfg.Collect = []string{filepath.Join(logs, "*.log")}
	cfg.Kafka = k.Brokers
	cfg.Topic = kafkatest.UniqueName(t, "outage")
	cfg.KafkaGroup = kafkatest.UniqueName(t, "indexers")
	app := start(t, cfg)

	path := filepath.Join(logs, "app.log")
	w := startWriter(t, path, 1500)
	app.waitAtLeast("e2e", 1000)

	k.Stop()
	t.Logf("broker down for %v", outage)
	var maxHeap uint64
	var maxUnacked int64
	var readMid, readEnd int64
	deadline := time.Now().Add(outage)
	for time.Now().Before(deadline) {
		time.Sleep(500 * time.Millisecond)
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		maxHeap = max(maxHeap, ms.HeapInuse)
		var st Status
		app.call("GET", "/api/status", nil, &st)
		for _, f := range st.Files {
			if f.Path == path {
				maxUnacked = max(maxUnacked, f.ReadOffset-f.Offset)
				if time.Until(deadline) > outage/2 {
					readMid = f.ReadOffset
				}
				readEnd = f.ReadOffset
			}
		}
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("during the outage: file %d bytes, read to %d, at most %d bytes read but unacked, heap in use at most %d MiB",
		fi.Size(), readEnd, maxUnacked, maxHeap>>20)
	if readEnd != readMid && outage >= 10*time.Second {
		t.Errorf("tailer kept reading during the outage (read offset %d at mid-outage, %d at end)", readMid, readEnd)
	}
	if readEnd >= fi.Size() {
		t.Errorf("tailer did not pause: read %d of %d bytes with the broker down", readEnd, fi.Size())
	}
	const heapBound = 256 << 20
	if maxHeap > heapBound {
		t.Errorf("heap in use reached %d MiB during the outage; the stated bound is %d MiB", maxHeap>>20, heapBound>>20)
	}

	k.Restart()
	time.Sleep(2 * time.Second)
	want := w.finish()
	t.Logf("%d lines written", len(want))
	app.waitTotalWithin("e2e", len(want), 3*time.Minute)
	app.checkExactlyOnce("e2e", want)
}
