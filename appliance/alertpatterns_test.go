package appliance

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// A new-patterns rule fires, through the wired evaluator and the real
// miner, on a template of the window that the hour before did not have,
// and not on one it had; the webhook gets the template as a label, and
// /metrics counts the evaluation and the delivery.
func TestNewPatternRuleInAppliance(t *testing.T) {
	var mu sync.Mutex
	var got []map[string]string
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m struct {
			Alerts []struct {
				Status string            `json:"status"`
				Labels map[string]string `json:"labels"`
			} `json:"alerts"`
		}
		if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		mu.Lock()
		for _, a := range m.Alerts {
			l := a.Labels
			l["status"] = a.Status
			got = append(got, l)
		}
		mu.Unlock()
	}))
	defer recv.Close()

	root := t.TempDir()
	logs := filepath.Join(root, "logs")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	old := time.Now().Add(-30 * time.Minute).UTC()
	for i := range 20 {
		fmt.Fprintf(&b, "%s INFO user u%d logged in from 10.0.0.%d\n", old.Add(time.Duration(i)*time.Second).Format(time.RFC3339), i, i)
	}
	now := time.Now().UTC()
	for i := range 5 {
		fmt.Fprintf(&b, "%s INFO user u%d logged in from 10.0.1.%d\n", now.Format(time.RFC3339), i, i)
		fmt.Fprintf(&b, "%s ERROR disk /dev/sda%d failed after %d retries\n", now.Format(time.RFC3339), i, i+3)
	}
	if err := os.WriteFile(filepath.Join(logs, "app.log"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, filepath.Join(root, "data"), root)
	cfg.Collect = []string{filepath.Join(logs, "*.log")}
	app := start(t, cfg)
	app.waitTotal("*", 30)

	rule := map[string]any{"name": "newtpl", "query": "*", "new_patterns": true, "every": "1s", "window": "10m", "compare": "1h",
		"notify": []map[string]string{{"webhook": recv.URL}}}
	if code := app.call("POST", "/api/alerts", rule, nil); code != http.StatusCreated {
		t.Fatalf("create: %d", code)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no notification for the new template in 30s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(2 * time.Second) // more evaluations: nothing else may come
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 || got[0]["status"] != "firing" || got[0]["alertname"] != "newtpl" ||
		!strings.Contains(got[0]["pattern"], "disk") || strings.Contains(got[0]["pattern"], "logged") {
		t.Fatalf("notifications %v, want one firing for the disk template only", got)
	}
	m := app.metricsText()
	for _, want := range []string{"logbox_alert_leader 1", `logbox_alert_notifications_total{kind="webhook",result="sent"} 1`, `logbox_alerts{state="firing"} 1`} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if !strings.Contains(m, "logbox_alert_evaluations_total") {
		t.Error("/metrics lacks logbox_alert_evaluations_total")
	}
}
