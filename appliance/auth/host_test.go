package auth

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// TestHostCheckWithoutAuth: with auth off, only requests to localhost or a
// loopback address are answered (a DNS-rebinding page sends its own name
// as Host); --insecure-no-auth also lets IP addresses through, never other
// names; with auth on there is no Host check; /healthz is always open.
func TestHostCheckWithoutAuth(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	withAuth := Config{HtpasswdFile: writeFile(t, "htpasswd", "alice:"+string(hash)+"\n")}
	cases := []struct {
		name string
		cfg  Config
		host string
		path string
		want int
	}{
		{"loopback v4", Config{}, "127.0.0.1:7070", "/api/search", 204},
		{"loopback v4 no port", Config{}, "127.0.0.1", "/", 204},
		{"other loopback v4", Config{}, "127.1.2.3:7070", "/api/search", 204},
		{"loopback v6", Config{}, "[::1]:7070", "/api/sources", 204},
		{"loopback v6 no port", Config{}, "[::1]", "/api/sources", 204},
		{"v4-mapped loopback", Config{}, "[::ffff:127.0.0.1]:7070", "/", 204},
		{"localhost", Config{}, "localhost:7070", "/api/status", 204},
		{"localhost any case", Config{}, "LocalHost", "/metrics", 204},
		{"rebinding name", Config{}, "evil.example:7070", "/api/search", 403},
		{"rebinding name on the page", Config{}, "evil.example", "/", 403},
		{"rebinding name on metrics", Config{}, "evil.example:7070", "/metrics", 403},
		{"sub-domain of localhost", Config{}, "localhost.evil.example:7070", "/api/sources", 403},
		{"name resolving to loopback", Config{}, "127.0.0.1.nip.io:7070", "/api/sources", 403},
		{"lan address", Config{}, "192.168.1.5:7070", "/api/search", 403},
		{"healthz stays open", Config{}, "evil.example:7070", "/healthz", 204},
		{"insecure: lan address", Config{InsecureNoAuth: true}, "192.168.1.5:7070", "/api/search", 204},
		{"insecure: v6 address", Config{InsecureNoAuth: true}, "[fd00::5]:7070", "/api/search", 204},
		{"insecure: still no names", Config{InsecureNoAuth: true}, "evil.example:7070", "/api/search", 403},
		{"auth on: any name", withAuth, "logs.example.internal:7070", "/api/search", 204},
	}
	for _, c := range cases {
		g, err := New(c.cfg)
		if err != nil {
			t.Fatal(err)
		}
		h := g.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }))
		req := httptest.NewRequest("GET", "http://127.0.0.1:7070"+c.path, nil)
		req.Host = c.host
		if c.cfg.Enabled() {
			req.SetBasicAuth("alice", "s3cret")
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != c.want {
			t.Errorf("%s (Host %q %s): %d, want %d", c.name, c.host, c.path, rec.Code, c.want)
			continue
		}
		if rec.Code == 403 {
			var e struct{ Error string }
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || !strings.Contains(e.Error, "DNS rebinding") || rec.Header().Get("Content-Type") != "application/json" {
				t.Errorf("%s: 403 body %q (%v), want a JSON error naming DNS rebinding", c.name, rec.Body, err)
			}
		}
	}
}

// TestDummyHashCost: the unknown-user hash costs what most users' hashes cost.
func TestDummyHashCost(t *testing.T) {
	var lines []string
	for i, cost := range []int{4, 6, 6, 5} {
		h, err := bcrypt.GenerateFromPassword([]byte("pw"), cost)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, string(rune('a'+i))+":"+string(h))
	}
	g, err := New(Config{HtpasswdFile: writeFile(t, "htpasswd", strings.Join(lines, "\n"))})
	if err != nil {
		t.Fatal(err)
	}
	if c, err := bcrypt.Cost(g.creds.Load().dummy); err != nil || c != 6 {
		t.Fatalf("dummy hash cost %d (%v), want 6", c, err)
	}
}
