package kafkain

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/logbox/logbox/appliance/pipeline"
)

// TestCoverageFile: what saveCoverage writes, readCoverage reads back;
// overlapping ranges in a file are merged; a file with a bad range, a
// wrong version or torn JSON is refused (Run then starts empty).
func TestCoverageFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "coverage.json")
	c := New(Config{CoverageFile: path}, nil, nil)
	c.addCoverage("logs/0", 0, 100)
	c.addCoverage("logs/0", 100, 150)
	c.addCoverage("logs/0", 200, 300)
	c.addCoverage("logs/1", 7, 8)
	c.saveCoverage()
	got, err := readCoverage(path)
	if err != nil {
		t.Fatal(err)
	}
	want := pipeline.Coverage{"logs/0": {{0, 150}, {200, 300}}, "logs/1": {{7, 8}}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("read back %v, want %v", got, want)
	}
	// Unchanged: not written again.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	c.saveCoverage()
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("written again without a change: %v", err)
	}
	// A new process loads it.
	c.addCoverage("logs/1", 8, 9)
	c.saveCoverage()
	c2 := New(Config{CoverageFile: path}, nil, nil)
	c2.loadCoverage()
	if got, want := c2.Coverage(), (pipeline.Coverage{"logs/0": {{0, 150}, {200, 300}}, "logs/1": {{7, 9}}}); !reflect.DeepEqual(got, want) {
		t.Errorf("loaded %v, want %v", got, want)
	}

	for name, tc := range map[string]struct{ body, err string }{
		"merged":      {`{"version":1,"coverage":{"a/0":[[5,10],[0,6]]}}`, ""},
		"empty range": {`{"version":1,"coverage":{"a/0":[[5,5]]}}`, "bad range"},
		"negative":    {`{"version":1,"coverage":{"a/0":[[-1,5]]}}`, "bad range"},
		"version":     {`{"version":2,"coverage":{}}`, "version 2"},
		"torn":        {`{"version":1,"coverage":{"a/0":[[0,`, "parse"},
	} {
		p := filepath.Join(dir, name+".json")
		if err := os.WriteFile(p, []byte(tc.body), 0o600); err != nil {
			t.Fatal(err)
		}
		cov, err := readCoverage(p)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%s: %v", name, err)
		case tc.err == "" && !reflect.DeepEqual(cov, pipeline.Coverage{"a/0": {{0, 10}}}):
			t.Errorf("%s: %v", name, cov)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s: error %v, want one with %q", name, err, tc.err)
		}
	}
}
