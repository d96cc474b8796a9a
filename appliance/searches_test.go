package appliance

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/logbox/logbox/appliance/settings"
)

// Saved searches are wired into the running appliance: behind the same
// auth as every /api route, and an invalid entry written to etcd directly
// is reported in /api/status.
func TestSavedSearchesInAppliance(t *testing.T) {
	root := t.TempDir()
	cfg := testConfig(t, filepath.Join(root, "data"), root)
	const token = "saved-search-test-token-0123456789"
	cfg.AuthTokenFile = filepath.Join(root, "tokens")
	if err := os.WriteFile(cfg.AuthTokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a, app := startApp(t, cfg)
	call := func(method, path, tok, body string) int {
		t.Helper()
		req, _ := http.NewRequest(method, app.url+path, strings.NewReader(body))
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, c := range []struct{ method, path, body string }{
		{"GET", "/api/searches", ""},
		{"POST", "/api/searches", `{"name":"x","query":"q"}`},
		{"GET", "/api/searches/x", ""},
		{"POST", "/api/searches/x/rename", `{"name":"y"}`},
		{"DELETE", "/api/searches/x", ""},
	} {
		if code := call(c.method, c.path, "", c.body); code != http.StatusUnauthorized {
			t.Errorf("%s %s without a token: %d, want 401", c.method, c.path, code)
		}
	}
	if code := call("POST", "/api/searches", token, `{"name":"x","query":"q"}`); code != http.StatusCreated {
		t.Fatalf("POST with the token: %d, want 201", code)
	}

	if _, err := a.etcdCli.Put(context.Background(), settings.SearchesPrefix+"broken", `{"name":"broken","query":"q","view":"dashboard"}`); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", app.url+"/api/status", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	var st Status
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	if why := st.InvalidSearches["broken"]; !strings.HasPrefix(why, "view:") || len(st.InvalidSearches) != 1 {
		t.Fatalf("invalid_searches = %v, want broken's reason only", st.InvalidSearches)
	}
}
