package appliance

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The HTTP inputs sit behind the same auth as the API, answer once the
// lines are searchable, and show in /api/status and /metrics under their
// names; an input that is off is not mounted.
func TestPushInputsBehindAuth(t *testing.T) {
	root := t.TempDir()
	cfg := testConfig(t, filepath.Join(root, "data"), root)
	cfg.OTLP, cfg.LokiPush, cfg.ESBulk = true, true, true
	const token = "push-input-test-token-0123456789"
	cfg.AuthTokenFile = filepath.Join(root, "tokens")
	if err := os.WriteFile(cfg.AuthTokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, app := startApp(t, cfg)
	now := time.Now().UnixNano()
	pushes := []struct{ path, ctype, body string }{
		{"/v1/logs", "application/json", `{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"timeUnixNano":"` + itoa(now) + `","body":{"stringValue":"authpush otlp line"}}]}]}]}`},
		{"/loki/api/v1/push", "application/json", `{"streams":[{"stream":{"job":"t"},"values":[["` + itoa(now) + `","authpush loki line"]]}]}`},
		{"/_bulk", "application/x-ndjson", `{"index":{"_index":"t"}}` + "\n" + `{"message":"authpush bulk line"}` + "\n"},
		{"/es/_bulk", "application/x-ndjson", `{"index":{"_index":"t","_id":"1"}}` + "\n" + `{"message":"authpush es line"}` + "\n"},
	}
	call := func(method, path, ctype, tok, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, app.url+path, strings.NewReader(body))
		req.Header.Set("Content-Type", ctype)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b strings.Builder
		buf := make([]byte, 4096)
		for {
			n, err := resp.Body.Read(buf)
			b.Write(buf[:n])
			if err != nil {
				break
			}
		}
		return resp.StatusCode, b.String()
	}
	for _, p := range pushes {
		if code, _ := call("POST", p.path, p.ctype, "", p.body); code != http.StatusUnauthorized {
			t.Errorf("POST %s without a token: %d, want 401", p.path, code)
		}
		if code, body := call("POST", p.path, p.ctype, token, p.body); code/100 != 2 {
			t.Errorf("POST %s with the token: %d %s", p.path, code, body)
		}
	}
	// Answered means durable: searchable at once.
	code, body := call("GET", "/api/search?q=authpush&track_total=true", "", token, "")
	var res struct {
		Total uint64 `json:"total"`
		Hits  []struct {
			Source string `json:"source"`
		} `json:"hits"`
	}
	if code != 200 || json.Unmarshal([]byte(body), &res) != nil || res.Total != 4 {
		t.Fatalf("search after the pushes: %d %s, want 4 lines", code, body)
	}
	sources := map[string]int{}
	for _, h := range res.Hits {
		sources[h.Source]++
	}
	if sources["otlp"] != 1 || sources["loki"] != 1 || sources["bulk"] != 2 {
		t.Errorf("sources %v, want otlp, loki and bulk (twice)", sources)
	}
	_, body = call("GET", "/api/status", "", token, "")
	var st struct {
		Inputs map[string]struct {
			Acked uint64 `json:"lines_acked"`
		} `json:"inputs"`
	}
	if err := json.Unmarshal([]byte(body), &st); err != nil || st.Inputs["otlp"].Acked != 1 || st.Inputs["loki"].Acked != 1 || st.Inputs["bulk"].Acked != 2 {
		t.Errorf("status inputs %+v (%v)", st.Inputs, err)
	}
	_, body = call("GET", "/metrics", "", token, "")
	if !strings.Contains(body, `logbox_input_lines_total{input="bulk",result="acked"} 2`) {
		t.Errorf("metrics lack the bulk input's acked lines")
	}
}

// An input that is off is not mounted: its path is the page's, not an
// input's answer.
func TestPushInputsOff(t *testing.T) {
	root := t.TempDir()
	_, app := startApp(t, testConfig(t, filepath.Join(root, "data"), root))
	resp, err := http.Post(app.url+"/loki/api/v1/push", "application/json", strings.NewReader(`{"streams":[]}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 == 2 {
		t.Fatalf("POST /loki/api/v1/push without --loki-push: %d", resp.StatusCode)
	}
}

func itoa(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}
