// Package auth guards logbox's HTTP surface: bearer tokens and/or basic
// auth against a bcrypt htpasswd file, cross-origin protection for writes,
// and, while auth is off, a Host check against DNS rebinding. Credentials
// are re-read by Reload (SIGHUP) without a restart.
package auth

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"sync/atomic"

	"golang.org/x/crypto/bcrypt"
)

// Config names the credential files; both empty means no auth.
type Config struct {
	TokenFile    string // bearer tokens, one per line ('#' comments)
	HtpasswdFile string // user:bcrypt-hash lines (htpasswd -B)
	// InsecureNoAuth is --insecure-no-auth: the API is served without auth
	// on a non-loopback address on purpose. The Host check then also lets
	// through any IP address (which no rebinding name can be), but still
	// no name other than localhost.
	InsecureNoAuth bool
}

// Enabled reports whether any credential source is configured.
func (c Config) Enabled() bool { return c.TokenFile != "" || c.HtpasswdFile != "" }

type creds struct {
	tokens [][32]byte        // SHA-256 of each token, compared in constant time
	first  string            // the file's first token (Token)
	users  map[string][]byte // user → bcrypt hash
	// dummy is checked for unknown users: a bcrypt hash at the cost most
	// users have, so an unknown user takes as long as a known one.
	dummy []byte
}

// Guard checks requests against the loaded credentials.
type Guard struct {
	cfg   Config
	creds atomic.Pointer[creds]
}

// New loads the credential files. With cfg empty the guard lets every
// request through.
func New(cfg Config) (*Guard, error) {
	g := &Guard{cfg: cfg}
	if err := g.Reload(); err != nil {
		return nil, err
	}
	return g, nil
}

// Reload re-reads the credential files; on error the old ones stay.
func (g *Guard) Reload() error {
	c := &creds{users: map[string][]byte{}}
	if g.cfg.TokenFile != "" {
		lines, err := readLines(g.cfg.TokenFile)
		if err != nil {
			return fmt.Errorf("--auth-token-file: %w", err)
		}
		for _, l := range lines {
			if len(l) < 16 {
				return fmt.Errorf("--auth-token-file %q: a token is shorter than 16 characters; use long random tokens (e.g. openssl rand -hex 32)", g.cfg.TokenFile)
			}
			c.tokens = append(c.tokens, sha256.Sum256([]byte(l)))
		}
		if len(lines) > 0 {
			c.first = lines[0]
		}
		if len(c.tokens) == 0 {
			return fmt.Errorf("--auth-token-file %q: no tokens in it", g.cfg.TokenFile)
		}
	}
	if g.cfg.HtpasswdFile != "" {
		lines, err := readLines(g.cfg.HtpasswdFile)
		if err != nil {
			return fmt.Errorf("--auth-htpasswd: %w", err)
		}
		for i, l := range lines {
			user, hash, ok := strings.Cut(l, ":")
			if !ok || user == "" {
				return fmt.Errorf("--auth-htpasswd %q line %d: want user:hash", g.cfg.HtpasswdFile, i+1)
			}
			if _, err := bcrypt.Cost([]byte(hash)); err != nil {
				return fmt.Errorf("--auth-htpasswd %q line %d (user %q): only bcrypt hashes are accepted (htpasswd -B): %v", g.cfg.HtpasswdFile, i+1, user, err)
			}
			c.users[user] = []byte(hash)
		}
		if len(c.users) == 0 {
			return fmt.Errorf("--auth-htpasswd %q: no users in it", g.cfg.HtpasswdFile)
		}
		dummy, err := bcrypt.GenerateFromPassword([]byte("logbox-dummy"), commonCost(c.users))
		if err != nil {
			return fmt.Errorf("--auth-htpasswd %q: %w", g.cfg.HtpasswdFile, err)
		}
		c.dummy = dummy
	}
	g.creds.Store(c)
	return nil
}

func readLines(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out, sc.Err()
}

// ok reports whether r carries valid credentials.
func (g *Guard) ok(r *http.Request) bool {
	c := g.creds.Load()
	h := r.Header.Get("Authorization")
	if tok, found := strings.CutPrefix(h, "Bearer "); found && len(c.tokens) > 0 {
		sum := sha256.Sum256([]byte(strings.TrimSpace(tok)))
		match := 0
		for _, t := range c.tokens {
			match |= subtle.ConstantTimeCompare(sum[:], t[:])
		}
		return match == 1
	}
	if user, pass, found := r.BasicAuth(); found && len(c.users) > 0 {
		hash, known := c.users[user]
		if !known {
			// Same work for unknown users, so timing does not tell them apart.
			_ = bcrypt.CompareHashAndPassword(c.dummy, []byte(pass))
			return false
		}
		return bcrypt.CompareHashAndPassword(hash, []byte(pass)) == nil
	}
	return false
}

// commonCost is the bcrypt cost most users' hashes have (the highest on a
// tie): the dummy hash costs what a typical known user costs. Users whose
// hash has another cost still answer at their own speed; re-hash them at
// one cost (htpasswd -B -C N) to make every name look alike.
func commonCost(users map[string][]byte) int {
	n := map[int]int{}
	best := bcrypt.DefaultCost
	for _, h := range users {
		c, _ := bcrypt.Cost(h) // checked by Reload
		n[c]++
		if n[c] > n[best] || (n[c] == n[best] && c > best) {
			best = c
		}
	}
	return best
}

// Middleware requires credentials on every request when auth is enabled
// (only /healthz stays open, for liveness probes), and refuses cross-origin
// writes always (browser CSRF), whether auth is on or not. With auth off it
// answers only requests whose Host is localhost or a loopback address (see
// HostAllowed): a page whose name an attacker rebinds to 127.0.0.1 is
// same-origin with itself, not with logbox, and its Host shows it.
func (g *Guard) Middleware(next http.Handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	guarded := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !g.cfg.Enabled() && r.URL.Path != "/healthz" && !HostAllowed(r.Host, g.cfg.InsecureNoAuth) {
			refuse(w, http.StatusForbidden, fmt.Sprintf(
				"Host %q refused: without authentication logbox answers only requests to localhost or a loopback address (DNS rebinding protection); open it as http://127.0.0.1:PORT or http://localhost:PORT, or turn on auth (--auth-token-file, --auth-htpasswd) to serve it by name", r.Host))
			return
		}
		if g.cfg.Enabled() && r.URL.Path != "/healthz" && !g.ok(r) {
			if g.creds.Load() != nil && len(g.creds.Load().users) > 0 {
				w.Header().Set("WWW-Authenticate", `Basic realm="logbox", charset="UTF-8"`)
			} else {
				w.Header().Set("WWW-Authenticate", `Bearer realm="logbox"`)
			}
			refuse(w, http.StatusUnauthorized, "authentication required: send a bearer token or basic auth credentials")
			return
		}
		next.ServeHTTP(w, r)
	})
	return cop.Handler(guarded)
}

// refuse answers code with the API's error body, {"error": msg}.
func refuse(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	b, _ := json.Marshal(map[string]string{"error": msg})
	_, _ = w.Write(append(b, '\n'))
}

// HostAllowed reports whether a request's Host header (with or without a
// port) may be answered while auth is off: localhost, a loopback address
// (127.0.0.0/8, ::1, also IPv4-mapped), and, with anyIP, any IP address.
// An empty Host (HTTP/1.0) is allowed: no browser sends one.
func HostAllowed(host string, anyIP bool) bool {
	if host == "" {
		return true
	}
	h := host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		h = hh
	} else {
		h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	}
	if anyIP {
		if _, err := netip.ParseAddr(h); err == nil {
			return true
		}
	}
	return loopbackHost(h)
}

// loopbackHost reports whether h, a host without port, names this machine
// only: localhost or a loopback address (127.0.0.0/8, ::1, also
// IPv4-mapped).
func loopbackHost(h string) bool {
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(h)
	return err == nil && ip.Unmap().IsLoopback()
}

// ErrUnsafeBind is returned by CheckBind for a non-loopback address
// without auth.
var ErrUnsafeBind = errors.New("refusing to serve without authentication on a non-loopback address")

// CheckBind refuses to expose an unauthenticated API beyond this machine.
// cfg.InsecureNoAuth is the explicit override.
func CheckBind(addr string, cfg Config) error {
	if cfg.Enabled() || cfg.InsecureNoAuth {
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--http %q: %w", addr, err)
	}
	if loopbackHost(host) {
		return nil
	}
	return fmt.Errorf("--http %s: %w; set --auth-token-file and/or --auth-htpasswd, or bind to 127.0.0.1 (the override --insecure-no-auth exposes every log line and lets anyone change what is collected)", addr, ErrUnsafeBind)
}

// Token returns the first token of the token file as loaded now (a
// reload changes it), "" without one: the process's own credential when
// it asks other logbox processes that take the same file (the fleet).
func (g *Guard) Token() string {
	if c := g.creds.Load(); c != nil {
		return c.first
	}
	return ""
}
