package appliance

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/logbox/logbox/appliance/kafkatest"
	"github.com/logbox/logbox/appliance/ledger"
)

// ledgerOf polls /api/status until ok accepts the ledger, or fails after d.
func (r *running) ledgerOf(d time.Duration, ok func(l *ledger.Ledger) bool) *ledger.Ledger {
	r.t.Helper()
	var st struct {
		Ledger *ledger.Ledger `json:"ledger"`
	}
	for deadline := time.Now().Add(d); ; time.Sleep(100 * time.Millisecond) {
		if code := r.call("GET", "/api/status", nil, &st); code != 200 {
			r.t.Fatalf("status: %d", code)
		}
		if st.Ledger != nil && ok(st.Ledger) {
			return st.Ledger
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("ledger not as wanted after %v: %+v", d, st.Ledger)
		}
	}
}

func (r *running) metricsText() string {
	r.t.Helper()
	resp, err := http.Get(r.url + "/metrics")
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// ledgerLines writes n lines of exactly lineLen bytes (newline included)
// from line from on, some with CRLF, invalid UTF-8 or a NUL, which logbox
// changes on the way: the ledger counts the bytes of the file, not of
// what is indexed.
const lineLen = 64

func ledgerLines(t *testing.T, path string, from, n int) {
	t.Helper()
	var b strings.Builder
	for i := from; i < from+n; i++ {
		var l string
		switch i % 10 {
		case 3:
			l = fmt.Sprintf("2026-12-01T10:00:00Z INFO ledger tok%06d crlf line\r", i)
		case 5:
			l = fmt.Sprintf("2026-12-01T10:00:00Z WARN ledger tok%06d bad \xff utf8", i)
		case 7:
			l = fmt.Sprintf("2026-12-01T10:00:00Z INFO ledger tok%06d nul \x00 here", i)
		default:
			l = fmt.Sprintf("2026-12-01T10:00:00Z INFO ledger tok%06d plain line", i)
		}
		l += strings.Repeat(".", lineLen-1-len(l)) + "\n"
		b.WriteString(l)
	}
	appendFile(t, path, b.String())
}

// A healthy box shows "complete" for every file it collects, in both
// modes: every byte acked is held by the index, nothing is in flight.
func TestLedgerComplete(t *testing.T) {
	for _, m := range modes() {
		t.Run(m.name, func(t *testing.T) {
			root := t.TempDir()
			logs := filepath.Join(root, "logs")
			if err := os.MkdirAll(logs, 0o755); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(logs, "app.log")
			ledgerLines(t, path, 0, 300)
			cfg := testConfig(t, filepath.Join(root, "data"), root)
			cfg.Collect = []string{filepath.Join(logs, "*.log")}
			m.kafka(t, &cfg)
			app := start(t, cfg)
			app.waitTotal("ledger", 300)
			ledgerLines(t, path, 300, 200)
			app.waitTotal("ledger", 500)
			size := int64(500 * lineLen)
			l := app.ledgerOf(30*time.Second, func(l *ledger.Ledger) bool {
				return len(l.Files) == 1 && l.Files[0].State == ledger.StateComplete
			})
			f := l.Files[0]
			if f.Path != path || f.SizeBytes != size || f.ReadBytes != size || f.AckedBytes != size || f.IndexedBytes != size ||
				f.InFlightBytes != 0 || f.GapBytes != 0 || len(f.Gaps) != 0 || f.LinesIndexed != 500 || f.LinesAcked != 500 {
				t.Errorf("file ledger %+v, want %d bytes read, acked and indexed, 500 lines", f, size)
			}
			if len(l.Sources) != 1 || l.Sources[0].State != ledger.StateComplete || l.Sources[0].Complete != 1 || l.Sources[0].GapBytes != 0 {
				t.Errorf("source ledger %+v", l.Sources)
			}
			text := app.metricsText()
			for _, re := range []string{
				`logbox_ledger_files\{source="[^"]+",state="complete"\} 1`,
				`logbox_ledger_files\{source="[^"]+",state="gap"\} 0`,
				`logbox_ledger_gap_bytes\{source="[^"]+"\} 0`,
			} {
				if !regexp.MustCompile(`(?m)^` + re + `$`).MatchString(text) {
					t.Errorf("/metrics has no line matching %s", re)
				}
			}
			// A removed source is no longer collected, so no longer
			// accounted for (its checkpoints wait for pruning).
			if code := app.call("DELETE", "/api/sources/"+f.Source, nil, nil); code != http.StatusNoContent && code != http.StatusOK {
				t.Fatalf("delete source: %d", code)
			}
			app.ledgerOf(10*time.Second, func(l *ledger.Ledger) bool { return len(l.Files) == 0 && len(l.Sources) == 0 })
		})
	}
}

// Lines acked by Kafka that never reach the index — here the topic lost
// them (retention, a DeleteRecords) while no indexer read it — show as a
// gap with its byte range and reason, in status and metrics; never silent.
func TestLedgerShowsKafkaGap(t *testing.T) {
	k := kafkatest.Start(t)
	if k.External() {
		t.Skip("deletes records of its topic; runs against the in-process broker only")
	}
	root := t.TempDir()
	logs := filepath.Join(root, "logs")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(logs, "app.log")
	const n = 400
	ledgerLines(t, path, 0, n)
	cfg := testConfig(t, filepath.Join(root, "data"), root)
	cfg.Collect = []string{filepath.Join(logs, "*.log")}
	cfg.Kafka = k.Brokers
	cfg.Topic = kafkatest.UniqueName(t, "ledger")
	cfg.KafkaGroup = kafkatest.UniqueName(t, "ledger")
	cfg.KafkaPartitions = 1
	cfg.LedgerGrace = time.Second

	// An agent ships every line: Kafka acked them all.
	agentCfg := cfg
	agentCfg.Role = RoleAgent
	agent := start(t, agentCfg)
	l := agent.ledgerOf(30*time.Second, func(l *ledger.Ledger) bool {
		return len(l.Files) == 1 && l.Files[0].State == ledger.StateShipped && l.Files[0].AckedBytes == n*lineLen
	})
	if l.Sources[0].State != ledger.StateShipped {
		t.Fatalf("agent's source ledger %+v", l.Sources)
	}
	agent.stop()

	// The first half leaves the topic before any indexer read it.
	sc := sarama.NewConfig()
	sc.Version = sarama.V2_8_0_0
	admin, err := sarama.NewClusterAdmin(k.Brokers, sc)
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.DeleteRecords(cfg.Topic, map[int32]int64{0: n / 2}); err != nil {
		t.Fatalf("delete records: %v", err)
	}
	admin.Close()

	// The same box, now indexing too, reads what is left.
	app := start(t, cfg)
	app.waitTotal("ledger", n/2)
	l = app.ledgerOf(30*time.Second, func(l *ledger.Ledger) bool {
		return len(l.Files) == 1 && l.Files[0].State == ledger.StateGap
	})
	f := l.Files[0]
	want := []ledger.Gap{{Span: ledger.Span{From: 0, To: n / 2 * lineLen}, Bytes: n / 2 * lineLen, Reason: ledger.ReasonNotIndexed}}
	if f.AckedBytes != n*lineLen || f.IndexedBytes != n/2*lineLen || f.GapBytes != n/2*lineLen || fmt.Sprint(f.Gaps) != fmt.Sprint(want) || f.LinesIndexed != n/2 {
		t.Errorf("file ledger %+v, want gap %+v", f, want)
	}
	if s := l.Sources[0]; s.State != ledger.StateGap || s.WithGaps != 1 || s.GapBytes != n/2*lineLen {
		t.Errorf("source ledger %+v", s)
	}
	if re := fmt.Sprintf(`(?m)^logbox_ledger_gap_bytes\{source="[^"]+"\} %d$`, n/2*lineLen); !regexp.MustCompile(re).MatchString(app.metricsText()) {
		t.Errorf("/metrics has no line matching %s", re)
	}
}
