package appliance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/logbox/logbox/appliance/httpapi"
	"github.com/logbox/logbox/appliance/settings"
)

// TestClosedToOtherLocalUsers runs the appliance as installed (no auth,
// embedded etcd) and checks what another local account or a web page can
// reach: the API answers only Host values of loopback or localhost (a
// DNS-rebinding page sends its own name), a slowloris client is cut off by
// the server's timeouts, and the embedded etcd refuses a client without
// the credential in <data>/etcd-credentials, while one with it (as
// etcdctl --user "$(cat …)") changes sources with the same effect as the
// API.
func TestClosedToOtherLocalUsers(t *testing.T) {
	root := t.TempDir()
	data := filepath.Join(root, "data")
	cfg := testConfig(t, data, root)
	cfg.EtcdListen = freeAddr(t)
	cfg.HTTPTimeouts = httpapi.ServerTimeouts{ReadHeader: 500 * time.Millisecond}
	app := start(t, cfg)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(app.url, "http://"))

	get := func(host, path string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", app.url+path, nil)
		req.Host = host
		resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, c := range []struct {
		host, path string
		want       int
	}{
		{"127.0.0.1:" + port, "/api/sources", 200},
		{"localhost:" + port, "/api/status", 200},
		{"[::1]:" + port, "/", 200},
		{"evil.example:" + port, "/api/sources", 403},
		{"evil.example:" + port, "/api/status", 403},
		{"evil.example:" + port, "/", 403},
		{"evil.example:" + port, "/metrics", 403},
		{"evil.example:" + port, "/healthz", 200},
	} {
		code, body := get(c.host, c.path)
		if code != c.want {
			t.Errorf("Host %s %s: %d, want %d (%s)", c.host, c.path, code, c.want, body)
		}
		var e struct{ Error string }
		if code == 403 && (json.Unmarshal([]byte(body), &e) != nil || !strings.Contains(e.Error, "DNS rebinding")) {
			t.Errorf("Host %s %s: 403 body %q, want a JSON error", c.host, c.path, body)
		}
	}

	// Slowloris: headers byte by byte are cut off by the header timeout.
	conn, err := net.Dial("tcp", strings.TrimPrefix(app.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprint(conn, "GET /api/status HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
	closed := make(chan struct{})
	go func() {
		_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		_, _ = io.Copy(io.Discard, conn)
		close(closed)
	}()
	began := time.Now()
slow:
	for {
		select {
		case <-closed:
			break slow
		case <-time.After(50 * time.Millisecond):
			if time.Since(began) > 5*time.Second {
				t.Fatal("a client sending its headers byte by byte still holds its connection after 5s")
			}
			_, _ = conn.Write([]byte("a"))
		}
	}

	// The embedded etcd: closed without the credential.
	credFile := filepath.Join(data, "etcd-credentials")
	if fi, err := os.Stat(credFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("%s: %v %v, want mode 0600", credFile, fi, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	stock := func(user, pass string) *clientv3.Client {
		cli, err := clientv3.New(clientv3.Config{Endpoints: []string{"http://" + cfg.EtcdListen}, Username: user, Password: pass,
			DialTimeout: 10 * time.Second, Logger: zap.NewNop()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cli.Close() })
		return cli
	}
	anon := stock("", "")
	if _, err := anon.Get(ctx, settings.SourcesPrefix, clientv3.WithPrefix()); !errors.Is(err, rpctypes.ErrUserEmpty) {
		t.Fatalf("read sources without the credential: %v, want refused", err)
	}
	if _, err := anon.Put(ctx, settings.SourcesPrefix+"evil", `{"name":"evil","paths":["`+root+`/*.log"]}`); !errors.Is(err, rpctypes.ErrUserEmpty) {
		t.Fatalf("write a source without the credential: %v, want refused", err)
	}
	if _, err := anon.AuthEnable(ctx); err == nil {
		t.Fatal("turning etcd auth on again without the credential was accepted")
	}
	creds, err := settings.ReadCredentials(credFile)
	if err != nil {
		t.Fatal(err)
	}
	logs := filepath.Join(root, "logs")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	appendLines(t, filepath.Join(logs, "a.log"), "s", 0, 20, want)
	admin := stock(creds.User, creds.Password)
	if _, err := admin.Put(ctx, settings.SourcesPrefix+"viaetcd", `{"name":"viaetcd","paths":["`+logs+`/*.log"]}`); err != nil {
		t.Fatalf("write a source with the credential: %v", err)
	}
	app.waitTotal("e2e", 20)
	app.checkExactlyOnce("e2e", want)
}

// freeAddr is a free loopback address for a listener the test must know.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
