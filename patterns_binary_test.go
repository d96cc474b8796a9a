package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"
)

// TestBinaryPatterns: the real binary serves /api/patterns and the
// _pattern filter, and `logbox search 'Q | patterns'` prints the table.
func TestBinaryPatterns(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildBinary(t)
	work := t.TempDir()
	if err := os.MkdirAll(filepath.Join(work, "logs"), 0o755); err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(work, "logs", "app.log")
	writeLines(t, log, 0, 40) // binline tok%06d INFO something happened
	f, err := os.OpenFile(log, os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 25 {
		fmt.Fprintf(f, "binline user u%d logged in from 10.0.0.%d\n", i%3, i)
	}
	f.Close()
	p := startBinary(t, bin, work, "--collect", "logs/*.log", "--http", "127.0.0.1:0", "--etcd-listen", "127.0.0.1:0", "--host", "pattest")
	p.waitTotal(t, "binline", 65)

	out, err := exec.Command(bin, "search", "binline | patterns", "--server", p.url).Output()
	if err != nil || !regexp.MustCompile(`(?m)^count\s+pattern\s+example\n40\s+binline <\*> INFO something happened\s+binline tok\d+ INFO something happened\n25\s+binline user <\*> logged in from <\*>\s+binline user u\d logged in from 10\.0\.0\.\d+$`).Match(out) {
		t.Fatalf("search with patterns: %v\n%s", err, out)
	}

	var res struct {
		Total    int `json:"total"`
		Patterns []struct {
			Pattern string `json:"pattern"`
			Count   int    `json:"count"`
			Query   string `json:"query"`
		} `json:"patterns"`
	}
	from := url.QueryEscape(time.Now().Add(-time.Hour).UTC().Format(time.RFC3339))
	resp, err := http.Get(p.url + "/api/patterns?q=binline&compare=1&from=" + from)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil || resp.StatusCode != 200 {
		t.Fatalf("/api/patterns: %d %v", resp.StatusCode, err)
	}
	if res.Total != 65 || len(res.Patterns) != 2 {
		t.Fatalf("/api/patterns: %+v", res)
	}
	for _, pt := range res.Patterns {
		p.waitTotal(t, pt.Query, pt.Count)
	}
}
