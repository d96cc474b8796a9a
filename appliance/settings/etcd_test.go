package settings

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3client"
	"go.uber.org/zap"

	"github.com/logbox/logbox/appliance/pipeline"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// plainClient is what any local account can run against the client port:
// a stock etcd client (etcdctl), with the user and password given, if any.
func plainClient(t *testing.T, endpoint, user, password string) (*clientv3.Client, error) {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{
		Endpoints: []string{endpoint}, Username: user, Password: password,
		DialTimeout: 10 * time.Second, Logger: zap.NewNop(),
	})
	if err == nil {
		t.Cleanup(func() { cli.Close() })
	}
	return cli, err
}

// refused checks that every operation a local account could use against
// logbox's settings is refused by etcd for cli.
func refused(t *testing.T, cli *clientv3.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	denied := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, rpctypes.ErrUserEmpty) && !errors.Is(err, rpctypes.ErrPermissionDenied) {
			t.Errorf("%s without credentials: %v, want refused", what, err)
		}
	}
	_, err := cli.Get(ctx, SourcesPrefix, clientv3.WithPrefix())
	denied("read sources", err)
	_, err = cli.Put(ctx, SourcesPrefix+"evil", `{"name":"evil","paths":["/etc/*"]}`)
	denied("write a source", err)
	_, err = cli.Delete(ctx, SourcesPrefix, clientv3.WithPrefix())
	denied("delete sources", err)
	_, err = cli.UserAdd(ctx, "mallory", "pw")
	denied("add a user", err)
	_, err = cli.AuthDisable(ctx)
	denied("turn auth off", err)
	snap, err := cli.Snapshot(ctx)
	if err == nil {
		_, err = io.Copy(io.Discard, snap)
		snap.Close()
	}
	denied("snapshot", err)
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	wr := <-cli.Watch(wctx, SourcesPrefix, clientv3.WithPrefix())
	if wr.Err() == nil || (!strings.Contains(wr.Err().Error(), "permission denied") && !strings.Contains(wr.Err().Error(), "user name is empty")) {
		t.Errorf("watch without credentials: %v, want refused", wr.Err())
	}
}

// TestEmbeddedEtcdRequiresAuth: at first start logbox writes
// <data>/etcd-credentials (0600, user:password) and turns etcd auth on.
// A stock client without it can neither read nor write nor take over
// etcd's auth; with it (etcdctl --user "$(cat FILE)") it can, and what it
// writes is what logbox's own client sees. A restart keeps it so.
func TestEmbeddedEtcdRequiresAuth(t *testing.T) {
	data := t.TempDir()
	e, err := StartEmbedded(filepath.Join(data, "etcd"), "127.0.0.1:0", quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { e.Close() }()
	file := filepath.Join(data, "etcd-credentials")
	if e.CredentialsFile() != file {
		t.Fatalf("credentials at %q, want %q", e.CredentialsFile(), file)
	}
	fi, err := os.Stat(file)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("credentials file: %v %v, want mode 0600", fi, err)
	}
	b, _ := os.ReadFile(file)
	user, pass, ok := strings.Cut(strings.TrimSpace(string(b)), ":")
	if !ok || user != "root" || len(pass) < 32 || strings.Count(string(b), "\n") != 1 {
		t.Fatalf("credentials file holds %q, want one line root:<long random password>", b)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// logbox's own client works.
	store := NewStore(e.Client(), nil, quiet)
	if err := store.Put(ctx, validSource("app")); err != nil {
		t.Fatalf("logbox's client: %v", err)
	}

	anon, err := plainClient(t, e.Endpoint(), "", "")
	if err != nil {
		t.Fatal(err)
	}
	refused(t, anon)
	if _, err := plainClient(t, e.Endpoint(), "root", "guess"); !errors.Is(err, rpctypes.ErrAuthFailed) {
		t.Fatalf("wrong password: %v, want authentication failed", err)
	}

	// With the credential, a stock client reads and writes sources, and
	// logbox's watch sees the write (README: "etcdctl put has the same
	// effect").
	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	states := make(chan State, 16)
	go func() { _ = store.Watch(wctx, "", func(st State) { states <- st }) }()
	<-states
	admin, err := plainClient(t, e.Endpoint(), user, pass)
	if err != nil {
		t.Fatalf("with the credential: %v", err)
	}
	if resp, err := admin.Get(ctx, SourcesPrefix+"app"); err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("read with the credential: %v %v", resp, err)
	}
	if _, err := admin.Put(ctx, SourcesPrefix+"etcdctl", `{"name":"etcdctl","paths":["/var/log/x.log"]}`); err != nil {
		t.Fatalf("write with the credential: %v", err)
	}
	select {
	case st := <-states:
		if len(st.Sources) != 2 || st.Sources[1].Name != "etcdctl" {
			t.Fatalf("watch after etcdctl put: %+v", st)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("logbox's watch did not see the write made with the credential")
	}
	wcancel()

	// A restart keeps the credential and auth.
	e.Close()
	e, err = StartEmbedded(filepath.Join(data, "etcd"), "127.0.0.1:0", quiet)
	if err != nil {
		t.Fatal(err)
	}
	if b2, _ := os.ReadFile(file); string(b2) != string(b) {
		t.Fatal("credentials file changed at restart")
	}
	if _, err := NewStore(e.Client(), nil, quiet).Get(ctx, "etcdctl"); err != nil {
		t.Fatalf("after restart: %v", err)
	}
	anon2, err := plainClient(t, e.Endpoint(), "", "")
	if err != nil {
		t.Fatal(err)
	}
	refused(t, anon2)
}

func validSource(name string) pipeline.Source {
	return pipeline.Source{Name: name, Paths: []string{"/var/log/" + name + ".log"}}
}

// TestEmbeddedEtcdUpgradesOldDataDir: a data directory of an older logbox
// (auth off, no credentials file) is secured at start, its settings kept;
// a user and role that a local account created while auth was off are
// removed, so they are no back door.
func TestEmbeddedEtcdUpgradesOldDataDir(t *testing.T) {
	data := t.TempDir()
	cfg := EmbeddedConfig{Dir: filepath.Join(data, "etcd"), ClientAddr: "127.0.0.1:0"}
	// What older releases did: etcd without auth.
	old, level, err := startServer(cfg, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	oc := v3client.New(old.Server)
	if _, err := oc.Put(ctx, SourcesPrefix+"kept", `{"name":"kept","paths":["/var/log/kept.log"]}`); err != nil {
		t.Fatal(err)
	}
	for _, step := range []func() error{
		func() error { _, err := oc.UserAdd(ctx, "mallory", "mallory-pw"); return err },
		func() error { _, err := oc.RoleAdd(ctx, "backdoor"); return err },
		func() error {
			_, err := oc.RoleGrantPermission(ctx, "backdoor", "/", "\x00", clientv3.PermissionType(clientv3.PermReadWrite))
			return err
		},
		func() error { _, err := oc.UserGrantRole(ctx, "mallory", "backdoor"); return err },
		func() error { _, err := oc.UserAdd(ctx, "root", "mallory-knows-this"); return err },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	oc.Close()
	level.SetLevel(zap.FatalLevel)
	old.Close()

	e, err := StartEmbedded(cfg.Dir, "127.0.0.1:0", quiet)
	if err != nil {
		t.Fatalf("upgrade start: %v", err)
	}
	defer e.Close()
	if _, err := NewStore(e.Client(), nil, quiet).Get(ctx, "kept"); err != nil {
		t.Fatalf("source of the old release after the upgrade: %v", err)
	}
	if _, err := ReadCredentials(filepath.Join(data, "etcd-credentials")); err != nil {
		t.Fatalf("credentials after the upgrade: %v", err)
	}
	anon, err := plainClient(t, e.Endpoint(), "", "")
	if err != nil {
		t.Fatal(err)
	}
	refused(t, anon)
	for user, pw := range map[string]string{"mallory": "mallory-pw", "root": "mallory-knows-this"} {
		if _, err := plainClient(t, e.Endpoint(), user, pw); !errors.Is(err, rpctypes.ErrAuthFailed) {
			t.Errorf("%s with the password set while auth was off: %v, want authentication failed", user, err)
		}
	}
}

// TestEtcdCredentialsRefused: a credentials file other accounts can read is
// refused (embedded and remote alike); a lost one is a clear error, not a
// new credential etcd does not know; an etcd with auth on refuses a client
// without --etcd-credentials-file with a message naming the flag.
func TestEtcdCredentialsRefused(t *testing.T) {
	data := t.TempDir()
	dir := filepath.Join(data, "etcd")
	file := filepath.Join(data, "etcd-credentials")
	e, err := StartEmbedded(dir, "127.0.0.1:0", quiet)
	if err != nil {
		t.Fatal(err)
	}
	endpoint := e.Endpoint()
	// Remote clients: without the file, with it, with a wrong one.
	if _, err := Dial([]string{endpoint}, ""); err == nil || !strings.Contains(err.Error(), "--etcd-credentials-file") {
		t.Errorf("dial without credentials: %v, want an error naming --etcd-credentials-file", err)
	}
	cli, err := Dial([]string{endpoint}, file)
	if err != nil {
		t.Fatalf("dial with credentials: %v", err)
	}
	cli.Close()
	wrong := filepath.Join(t.TempDir(), "wrong")
	if err := os.WriteFile(wrong, []byte("root:nope\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Dial([]string{endpoint}, wrong); err == nil || !strings.Contains(err.Error(), "refuses") {
		t.Errorf("dial with a wrong password: %v", err)
	}
	if err := os.Chmod(file, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Dial([]string{endpoint}, file); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("dial with a world-readable file: %v, want refused", err)
	}
	e.Close()

	if _, err := StartEmbedded(dir, "127.0.0.1:0", quiet); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("start with a world-readable file: %v, want refused", err)
	}
	if err := os.Chmod(file, 0o600); err != nil {
		t.Fatal(err)
	}
	// Lost: a new random credential would not open the existing etcd.
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	if _, err := StartEmbedded(dir, "127.0.0.1:0", quiet); err == nil || !strings.Contains(err.Error(), "Lost etcd credentials") {
		t.Fatalf("start without the credential of an etcd with auth on: %v", err)
	}
	if _, err := os.Stat(file); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a failed start left a credentials file behind: %v", err)
	}
}

// TestEtcdTokenExpiry: auth tokens expire when unused; clients get a new
// one by themselves, and logbox's open watch keeps delivering.
func TestEtcdTokenExpiry(t *testing.T) {
	e, err := Start(EmbeddedConfig{Dir: filepath.Join(t.TempDir(), "etcd"), ClientAddr: "127.0.0.1:0", TokenTTL: time.Second}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	creds, err := ReadCredentials(e.CredentialsFile())
	if err != nil {
		t.Fatal(err)
	}
	other, err := plainClient(t, e.Endpoint(), creds.User, creds.Password)
	if err != nil {
		t.Fatal(err)
	}
	store := NewStore(e.Client(), nil, quiet)
	states := make(chan State, 16)
	go func() { _ = store.Watch(ctx, "", func(st State) { states <- st }) }()
	<-states
	time.Sleep(2500 * time.Millisecond) // both tokens expire (TTL 1s, checked each second)
	if _, err := other.Put(ctx, SourcesPrefix+"late", `{"name":"late","paths":["/var/log/late.log"]}`); err != nil {
		t.Fatalf("put after token expiry: %v", err)
	}
	select {
	case st := <-states:
		if len(st.Sources) != 1 {
			t.Fatalf("watch after token expiry: %+v", st)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("watch silent after token expiry")
	}
	if _, err := store.Get(ctx, "late"); err != nil {
		t.Fatalf("get after token expiry: %v", err)
	}
}
