package index

import (
	"testing"
	"time"
)

// A level given apart from the line (Record.Fields["level"], as the push
// inputs set it from an OTLP severity or a journal PRIORITY) wins over
// one read in the line; an unknown one leaves the line's.
func TestStaticLevelWins(t *testing.T) {
	now := time.Now()
	for _, c := range []struct {
		line, static, want string
	}{
		{"ERROR disk full", "warn", "WARN"},
		{"all fine", "error", "ERROR"},
		{"INFO started", "", "INFO"},
		{"INFO started", "loud", "INFO"},
		{`{"level":"debug","msg":"x"}`, "fatal", "ERROR"},
	} {
		static := map[string]string{}
		if c.static != "" {
			static["level"] = c.static
		}
		ex := parseRecord(c.line, now, static, now, 100, autoParser, time.UTC)
		if ex.level != c.want {
			t.Errorf("line %q with level %q: got %q, want %q", c.line, c.static, ex.level, c.want)
		}
	}
}
