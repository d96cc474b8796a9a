package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/logbox/logbox/appliance/kafkatest"
)

// journalWriter appends entries to a journal file with
// systemd-journal-remote, a batch at a time, until stop: MESSAGE
// "jbinline tok<n>", the usual journal fields, times that grow.
type journalWriter struct {
	remote, path string
	stop, done   chan struct{}

	mu      sync.Mutex
	written int
	mono    int64
}

func (w *journalWriter) write(t *testing.T, n int) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	var b bytes.Buffer
	for i := w.written; i < w.written+n; i++ {
		w.mono += 1000
		fmt.Fprintf(&b, "__REALTIME_TIMESTAMP=%d\n__MONOTONIC_TIMESTAMP=%d\n_BOOT_ID=0123456789abcdef0123456789abcdef\n"+
			"MESSAGE=jbinline tok%07d from the journal\nPRIORITY=%d\n_HOSTNAME=journalbox\n_SYSTEMD_UNIT=jbin.service\n"+
			"SYSLOG_IDENTIFIER=jbin\n_PID=%d\n_TRANSPORT=journal\n\n",
			time.Now().UnixMicro(), w.mono, i, i%8, 100+i%5)
	}
	cmd := exec.Command(w.remote, "--output="+w.path, "-")
	cmd.Stdin = &b
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("systemd-journal-remote: %v: %s", err, out)
		return
	}
	w.written += n
}

func (w *journalWriter) run(t *testing.T) {
	defer close(w.done)
	for {
		select {
		case <-w.stop:
			return
		case <-time.After(20 * time.Millisecond):
		}
		w.write(t, 150)
	}
}

// TestJournaldKill9 runs the real binary with --journald following a
// journal directory that grows all along (a journal made with
// systemd-journal-remote), kills it with SIGKILL at random moments,
// restarts it, and finds every entry in the index exactly once, with its
// journal fields. In direct mode and through Kafka (kfake).
func TestJournaldKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("kills the binary several times")
	}
	if _, err := exec.LookPath("journalctl"); err != nil {
		t.Skip("journalctl not found (Debian package systemd): no journal can be read here")
	}
	remote := ""
	for _, p := range []string{"/lib/systemd/systemd-journal-remote", "/usr/lib/systemd/systemd-journal-remote"} {
		if _, err := os.Stat(p); err == nil {
			remote = p
		}
	}
	if remote == "" {
		t.Skip("systemd-journal-remote not found (Debian package systemd-journal-remote): no journal can be made here")
	}
	bin := buildBinary(t)
	for _, kafka := range []bool{false, true} {
		name := "direct"
		if kafka {
			name = "kafka"
		}
		t.Run(name, func(t *testing.T) {
			work, _, rng := crashWorkdir(t, 3)
			jdir := filepath.Join(work, "journal")
			if err := os.Mkdir(jdir, 0o755); err != nil {
				t.Fatal(err)
			}
			w := &journalWriter{remote: remote, path: filepath.Join(jdir, "app.journal"), stop: make(chan struct{}), done: make(chan struct{})}
			w.write(t, 300) // the journal exists before logbox starts
			go w.run(t)
			args := []string{"--data", "data", "--http", "127.0.0.1:0", "--etcd-listen", "127.0.0.1:0", "--host", "crashbox", "--journald=journal"}
			if kafka {
				k := kafkatest.Start(t)
				args = append(args, "--kafka", strings.Join(k.Brokers, ","),
					"--topic", kafkatest.UniqueName(t, "jcrash"), "--kafka-group", kafkatest.UniqueName(t, "jcrash"))
			}
			const kills = 6
			for i := 0; i < kills; i++ {
				p := launchBinary(t, bin, work, args...)
				if i == 0 {
					// The first life lasts until the entries written
					// before it are acked: they are behind its cursor.
					waitRunning(t, p)
					deadline := time.Now().Add(60 * time.Second)
					for js := journaldStatus(t, p.url); js.EntriesAcked < 300 || js.Cursor == ""; js = journaldStatus(t, p.url) {
						if time.Now().After(deadline) {
							t.Fatalf("the first 300 entries not acked after 60s: %+v", js)
						}
						time.Sleep(50 * time.Millisecond)
					}
				}
				time.Sleep(time.Duration(500+rng.IntN(2500)) * time.Millisecond)
				if err := p.cmd.Process.Kill(); err != nil {
					exit := <-p.done
					p.dumpLog(t, fmt.Sprintf("logbox exited by itself (%v) before it was killed", exit))
					t.Fatalf("logbox exited by itself before kill %d: %v", i+1, exit)
				}
				<-p.done
			}
			close(w.stop)
			<-w.done
			w.mu.Lock()
			written := w.written
			w.mu.Unlock()

			p := startBinary(t, bin, work, args...)
			deadline := time.Now().Add(90 * time.Second)
			var total uint64
			for time.Now().Before(deadline) {
				if total = exactTotal(t, p.url, "jbinline"); total >= uint64(written) {
					break
				}
				time.Sleep(200 * time.Millisecond)
			}
			time.Sleep(500 * time.Millisecond) // a late double would show now
			seen, total := allTokens(t, p.url, "jbinline")
			missing, doubled := countTokens(t, seen, written)
			t.Logf("%d kills, %d entries written: %d indexed, %d missing, %d doubled", kills, written, total, missing, doubled)
			if missing > 0 || doubled > 0 || total != uint64(written) {
				p.dumpLog(t, "entries lost or doubled")
				// Whether a missing entry is in the journal at all, and how
				// far the pipeline got: tells journalctl's side from logbox's.
				for i := 0; i < written; i++ {
					if seen[i] != 0 {
						continue
					}
					out, err := exec.Command("journalctl", "--directory="+jdir, "--no-pager", "-o", "export",
						"--grep", fmt.Sprintf("tok%07d", i)).CombinedOutput()
					t.Logf("token %d in the journal (journalctl --grep): %v\n%s", i, err, out)
					break
				}
				resp, err := http.Get(p.url + "/api/status")
				if err == nil {
					body, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					var st map[string]json.RawMessage
					if json.Unmarshal(body, &st) == nil {
						t.Logf("status: inputs %s\nkafka_producer %s\nkafka_consumer %s\nindex %s", st["inputs"], st["kafka_producer"], st["kafka_consumer"], st["index"])
					}
				}
				t.Fatalf("%d written, %d indexed: %d missing, %d doubled", written, total, missing, doubled)
			}
			// The restart read on from a saved cursor, not from the
			// journal's head (the index would hide a re-read: it skips
			// what it holds).
			js := journaldStatus(t, p.url)
			t.Logf("the last restart read %d entries", js.EntriesRead)
			if !strings.HasPrefix(js.Cursor, "s=") || js.EntriesRead > uint64(written-300) {
				t.Errorf("/api/status after the restart: journald %+v", js)
			}
			// One journalctl follows the journal: those of the killed
			// processes died with them.
			if n := journalctls(t, jdir); n != 1 {
				t.Errorf("%d journalctl processes follow the journal, want 1", n)
			}
			// The journal's fields and host came along.
			for q, want := range map[string]uint64{
				"_SYSTEMD_UNIT:jbin.service":                  uint64(written),
				"+source:journald +host:journalbox +_PID:102": uint64((written + 2) / 5),
			} {
				if n := exactTotal(t, p.url, q); n != want {
					t.Errorf("%s: %d hits, want %d", q, n, want)
				}
			}
		})
	}
}

// journalctls counts the running journalctl processes whose command line
// names dir.
func journalctls(t *testing.T, dir string) int {
	t.Helper()
	procs, err := filepath.Glob("/proc/[0-9]*/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue // gone meanwhile
		}
		args := strings.Split(string(b), "\x00")
		if strings.HasSuffix(args[0], "journalctl") && strings.Contains(string(b), dir) {
			n++
		}
	}
	return n
}

// jstatus is journald's part of /api/status.
type jstatus struct {
	Cursor       string `json:"cursor"`
	EntriesRead  uint64 `json:"entries_read"`
	EntriesAcked uint64 `json:"entries_acked"`
}

func journaldStatus(t *testing.T, base string) jstatus {
	t.Helper()
	resp, err := http.Get(base + "/api/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var status struct {
		Inputs map[string]struct {
			Detail jstatus `json:"detail"`
		} `json:"inputs"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&status); err != nil {
		t.Fatal(err)
	}
	return status.Inputs["journald"].Detail
}
