package appliance

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// A refused etcd entry is warned about once, not again at every change of
// another source (with many sources that flooded the log).
func TestInvalidEntryWarnedOnce(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	a := &Appliance{}
	warnings := func() int { return strings.Count(buf.String(), "source entry in etcd refused") }
	a.setInvalid(map[string]string{"bad": "paths: must not be empty"}, log)
	a.setInvalid(map[string]string{"bad": "paths: must not be empty"}, log)
	a.setInvalid(map[string]string{"bad": "paths: must not be empty"}, log)
	if n := warnings(); n != 1 {
		t.Fatalf("%d warnings for one refused entry over three changes, want 1", n)
	}
	a.setInvalid(map[string]string{"bad": "name: does not match its key", "worse": "body: data after the source object"}, log)
	if n := warnings(); n != 3 {
		t.Fatalf("%d warnings after a new reason and a new entry, want 3", n)
	}
	a.setInvalid(map[string]string{}, log)
	a.setInvalid(map[string]string{"bad": "name: does not match its key"}, log)
	if n := warnings(); n != 4 {
		t.Fatalf("%d warnings after an entry was fixed and broken again, want 4", n)
	}
}
