package tailer

import (
	"testing"
	"time"
)

// TestRecordZone: a record's zone is the source's, else the box's name,
// else time.Local's offset when the line is read.
func TestRecordZone(t *testing.T) {
	ts := time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC)
	if got := recordZone("Asia/Shanghai", "Europe/Berlin", ts); got != "Asia/Shanghai" {
		t.Errorf("source zone: %q", got)
	}
	if got := recordZone("", "Europe/Berlin", ts); got != "Europe/Berlin" {
		t.Errorf("box zone: %q", got)
	}
	if got, want := recordZone("", "", ts), ts.In(time.Local).Format("-07:00"); got != want {
		t.Errorf("no name: %q, want %q", got, want)
	}
}
