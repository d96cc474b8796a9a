package bench

import (
	"bytes"
	"crypto/sha256"
	"strings"
	"testing"
	"time"
)

// TestGenerator checks the mix is deterministic, close to 195 B a line and
// made of what the benchmark promises. It is cheap: 20k lines in memory.
func TestGenerator(t *testing.T) {
	const n = 20000
	gen := func() ([]byte, Stats) {
		var buf bytes.Buffer
		g := NewGenerator(1, n, time.Date(2026, 3, 14, 8, 0, 0, 0, time.UTC))
		if err := g.Write(&buf, n); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes(), g.Stats
	}
	a, st := gen()
	b, _ := gen()
	if sha256.Sum256(a) != sha256.Sum256(b) {
		t.Fatal("same seed, different output")
	}
	if got := bytes.Count(a, []byte("\n")); got != n || st.Lines != n || int64(len(a)) != st.Bytes {
		t.Fatalf("lines %d (stats %d), bytes %d (stats %d)", got, st.Lines, len(a), st.Bytes)
	}
	avg := float64(st.Bytes) / n
	if avg < 185 || avg > 205 {
		t.Errorf("average line %.1f B, want ~195", avg)
	}
	events := 0
	for _, e := range st.Events {
		events += e
	}
	frac := func(k Kind) float64 { return float64(st.Events[k]) / float64(events) }
	checks := []struct {
		k      Kind
		lo, hi float64
	}{{Nginx, 0.50, 0.60}, {App, 0.23, 0.31}, {JSON, 0.10, 0.16}, {Trace, 0.035, 0.065}}
	for _, c := range checks {
		if f := frac(c.k); f < c.lo || f > c.hi {
			t.Errorf("%s: %.3f of events, want %.2f–%.2f", c.k, f, c.lo, c.hi)
		}
	}
	for _, lvl := range []string{"INFO", "WARN", "ERROR", "DEBUG"} {
		if st.Levels[lvl] == 0 {
			t.Errorf("no %s app lines", lvl)
		}
	}
	text := string(a)
	if c := strings.Count(text, RareToken); c != 1 {
		t.Errorf("rare token %d times, want 1", c)
	}
	if !strings.Contains(text, Phrase) || !strings.Contains(text, "\n\tat ") || !strings.Contains(text, `" 200 `) || !strings.Contains(text, `{"ts":"`) {
		t.Error("a kind of line is missing")
	}
	t.Logf("avg %.1f B/line; events %v; lines per kind %v; levels %v", avg, st.Events, st.LinesK, st.Levels)
}
