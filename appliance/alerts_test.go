package appliance

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/logbox/logbox/appliance/pipeline"
)

// Alert rules are wired into the running appliance: behind the same auth
// as every /api route, checked with the index's parser, and an invalid
// entry written to etcd directly is reported in /api/status.
func TestAlertRulesInAppliance(t *testing.T) {
	root := t.TempDir()
	cfg := testConfig(t, filepath.Join(root, "data"), root)
	const token = "alert-rules-test-token-0123456789"
	cfg.AuthTokenFile = filepath.Join(root, "tokens")
	if err := os.WriteFile(cfg.AuthTokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a, app := startApp(t, cfg)
	call := func(method, path, tok, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, app.url+path, strings.NewReader(body))
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, c := range []struct{ method, path, body string }{
		{"GET", "/api/alerts", ""},
		{"POST", "/api/alerts", `{"name":"x","query":"q"}`},
		{"GET", "/api/alerts/x", ""},
		{"GET", "/api/alerts/x/history", ""},
		{"PUT", "/api/alerts/x", `{"query":"q"}`},
		{"DELETE", "/api/alerts/x", ""},
	} {
		if code, _ := call(c.method, c.path, "", c.body); code != http.StatusUnauthorized {
			t.Errorf("%s %s without a token: %d, want 401", c.method, c.path, code)
		}
	}
	if code, body := call("POST", "/api/alerts", token, `{"name":"x","query":"level:error | stats count() as n by (host)","column":"n"}`); code != http.StatusCreated {
		t.Fatalf("POST with the token: %d %s, want 201", code, body)
	}
	// The appliance checks a rule's query with the index's parser, and
	// tells its pipes.
	if code, body := call("POST", "/api/alerts", token, `{"name":"bad","query":"a | stats cnt()"}`); code != http.StatusBadRequest || !strings.Contains(body, `"position":11`) {
		t.Fatalf("POST of a query with a broken pipe: %d %s, want 400 with the position", code, body)
	}
	if code, body := call("POST", "/api/alerts", token, `{"name":"bad","query":"a | stats count()","new_patterns":true}`); code != http.StatusBadRequest || !strings.Contains(body, `"field":"query"`) {
		t.Fatalf("POST of a new_patterns rule with a pipe: %d %s, want 400", code, body)
	}
	// A column must be one of the stats pipe's function columns.
	if code, body := call("POST", "/api/alerts", token, `{"name":"badcol","query":"level:error | stats count() as n, avg(ms) by (host)","column":"host"}`); code != http.StatusBadRequest || !strings.Contains(body, `"field":"column"`) || !strings.Contains(body, "n, avg(ms)") {
		t.Fatalf("POST with a by column as the value: %d %s, want 400 naming column and the function columns", code, body)
	}
	if code, body := call("POST", "/api/alerts", token, `{"name":"goodcol","query":"level:error | stats count() as n, avg(ms) by (host)","column":"avg(ms)"}`); code != http.StatusCreated {
		t.Fatalf("POST with a function column: %d %s, want 201", code, body)
	}
	// Unknown until the evaluator (wired, on its schedule) has run it.
	if code, body := call("GET", "/api/alerts/x", token, ""); code != http.StatusOK || !(strings.Contains(body, `"state":"unknown"`) || strings.Contains(body, `"state":"ok"`)) {
		t.Fatalf("GET: %d %s", code, body)
	}

	if _, err := a.etcdCli.Put(context.Background(), pipeline.AlertsPrefix+"broken", `{"name":"broken","query":"q","every":"soon"}`); err != nil {
		t.Fatal(err)
	}
	code, body := call("GET", "/api/status", token, "")
	var st Status
	if err := json.Unmarshal([]byte(body), &st); err != nil || code != 200 {
		t.Fatalf("status: %d %v", code, err)
	}
	if why := st.InvalidAlerts["broken"]; !strings.HasPrefix(why, "every:") || len(st.InvalidAlerts) != 1 {
		t.Fatalf("invalid_alerts = %v, want broken's reason only", st.InvalidAlerts)
	}
}
