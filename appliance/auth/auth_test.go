package auth

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func writeFile(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const token = "0123456789abcdef0123456789abcdef"

func TestMiddleware(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		TokenFile:    writeFile(t, "tokens", "# ops\n"+token+"\n"),
		HtpasswdFile: writeFile(t, "htpasswd", "alice:"+string(hash)+"\n"),
	}
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(g.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTeapot)
	})))
	defer srv.Close()

	cases := []struct {
		name, method, path string
		set                func(*http.Request)
		want               int
	}{
		{"no credentials", "GET", "/api/search", nil, 401},
		{"healthz open", "GET", "/healthz", nil, 418},
		{"page needs auth too", "GET", "/", nil, 401},
		{"good token", "GET", "/api/search", func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+token) }, 418},
		{"bad token", "GET", "/api/search", func(r *http.Request) { r.Header.Set("Authorization", "Bearer nope-nope-nope-nope") }, 401},
		{"good basic", "GET", "/metrics", func(r *http.Request) { r.SetBasicAuth("alice", "s3cret") }, 418},
		{"bad password", "GET", "/metrics", func(r *http.Request) { r.SetBasicAuth("alice", "wrong") }, 401},
		{"unknown user", "GET", "/metrics", func(r *http.Request) { r.SetBasicAuth("mallory", "s3cret") }, 401},
		{"write with token", "POST", "/api/sources", func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+token) }, 418},
		{"cross-origin write refused", "POST", "/api/sources", func(r *http.Request) {
			r.Header.Set("Authorization", "Bearer "+token)
			r.Header.Set("Sec-Fetch-Site", "cross-site")
		}, 403},
	}
	for _, c := range cases {
		req, _ := http.NewRequest(c.method, srv.URL+c.path, strings.NewReader("{}"))
		if c.set != nil {
			c.set(req)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("%s: %d, want %d", c.name, resp.StatusCode, c.want)
		}
		if resp.StatusCode == 401 && resp.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: 401 without WWW-Authenticate", c.name)
		}
	}

	// Reload picks up a rotated token; the old one stops working.
	newTok := strings.Repeat("z", 40)
	if err := os.WriteFile(cfg.TokenFile, []byte(newTok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := g.Reload(); err != nil {
		t.Fatal(err)
	}
	for tok, want := range map[string]int{token: 401, newTok: 418} {
		req, _ := http.NewRequest("GET", srv.URL+"/api/search", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("after reload, token %.4s…: %d, want %d", tok, resp.StatusCode, want)
		}
	}
}

func TestNoAuthStillBlocksCrossOriginWrites(t *testing.T) {
	g, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	h := g.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }))
	for _, c := range []struct {
		method, site string
		want         int
	}{{"GET", "cross-site", 204}, {"POST", "same-origin", 204}, {"POST", "cross-site", 403}, {"DELETE", "cross-site", 403}} {
		req := httptest.NewRequest(c.method, "http://127.0.0.1:7070/api/sources/x", nil)
		req.Header.Set("Sec-Fetch-Site", c.site)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != c.want {
			t.Errorf("%s %s: %d, want %d", c.method, c.site, rec.Code, c.want)
		}
	}
}

func TestBadCredentialFiles(t *testing.T) {
	for name, cfg := range map[string]Config{
		"short token":   {TokenFile: writeFile(t, "t", "short\n")},
		"empty tokens":  {TokenFile: writeFile(t, "t", "# nothing\n")},
		"missing file":  {TokenFile: "/nonexistent/tokens"},
		"md5 htpasswd":  {HtpasswdFile: writeFile(t, "h", "bob:$apr1$abc$def\n")},
		"no colon":      {HtpasswdFile: writeFile(t, "h", "bob\n")},
		"empty htpassw": {HtpasswdFile: writeFile(t, "h", "\n")},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: loaded without error", name)
		}
	}
}

func TestCheckBind(t *testing.T) {
	on := Config{TokenFile: "x"}
	cases := []struct {
		addr   string
		cfg    Config
		unsafe bool
		ok     bool
	}{
		{"127.0.0.1:7070", Config{}, false, true},
		{"[::1]:7070", Config{}, false, true},
		{"localhost:7070", Config{}, false, true},
		{"0.0.0.0:7070", Config{}, false, false},
		{":7070", Config{}, false, false},
		{"10.1.2.3:7070", Config{}, false, false},
		{"0.0.0.0:7070", on, false, true},
		{"0.0.0.0:7070", Config{}, true, true},
	}
	for _, c := range cases {
		cfg := c.cfg
		cfg.InsecureNoAuth = c.unsafe
		err := CheckBind(c.addr, cfg)
		if (err == nil) != c.ok || (err != nil && !errors.Is(err, ErrUnsafeBind)) {
			t.Errorf("CheckBind(%q, auth=%v, unsafe=%v) = %v", c.addr, c.cfg.Enabled(), c.unsafe, err)
		}
	}
}

// TestToken: the process's own credential is the token file's first
// token, as loaded now.
func TestToken(t *testing.T) {
	tf := writeFile(t, "tokens", "# fleet\nfirst-token-0123456789\nsecond-token-0123456789\n")
	g, err := New(Config{TokenFile: tf})
	if err != nil {
		t.Fatal(err)
	}
	if got := g.Token(); got != "first-token-0123456789" {
		t.Fatalf("Token %q", got)
	}
	if err := os.WriteFile(tf, []byte("rotated-token-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := g.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := g.Token(); got != "rotated-token-0123456789" {
		t.Fatalf("Token after a reload %q", got)
	}
	none, err := New(Config{})
	if err != nil || none.Token() != "" {
		t.Fatalf("without a token file: %q %v", none.Token(), err)
	}
}
