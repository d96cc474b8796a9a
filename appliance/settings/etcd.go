// Package settings keeps logbox's collection settings in etcd: an embedded
// single-member etcd by default, or an existing cluster.
//
// Sources live at /logbox/sources/<name> as JSON (pipeline.Source). Every
// writer — the HTTP API, `logbox sources`, or etcdctl — has the same effect,
// because logbox acts only on what Watch reports.
//
// The embedded etcd requires authentication (credentials.go): every local
// account can reach its client port, so without it any of them could read
// and rewrite what logbox collects.
package settings

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"

	"github.com/logbox/logbox/appliance/atomicfile"
)

// Embedded is an etcd server running inside this process.
type Embedded struct {
	etcd      *embed.Etcd
	cli       *clientv3.Client
	level     zap.AtomicLevel
	credsFile string
}

// EmbeddedConfig configures Start.
type EmbeddedConfig struct {
	// Dir holds etcd's data.
	Dir string
	// ClientAddr is host:port of the client listener; port 0 picks a free one.
	ClientAddr string
	// CredentialsFile holds the "user:password" every client must present
	// (the form etcdctl --user takes). If it does not exist, Start creates
	// it (mode 0600) with user root and a random password. Empty means
	// "etcd-credentials" next to Dir (<data>/etcd-credentials for logbox).
	CredentialsFile string
	// TokenTTL is how long an auth token lives unused (default 5m, etcd's
	// own); clients get a new one by themselves. Tests shorten it.
	TokenTTL time.Duration
}

// StartEmbedded is Start with the credentials file next to dir.
func StartEmbedded(dir, clientAddr string, log *slog.Logger) (*Embedded, error) {
	return Start(EmbeddedConfig{Dir: dir, ClientAddr: clientAddr}, log)
}

// Start starts a single-member etcd with its data in cfg.Dir, serving
// clients on cfg.ClientAddr, with authentication on. Its peer listener is
// bound to a free loopback port: a single member has no peers, and a fixed
// port would keep two logbox processes off one box. The caller closes it
// with Close.
//
// Authentication is turned on before the client address is served: at
// first start, and when a data directory of an older logbox (no auth yet)
// is upgraded, etcd first runs with its client listener on a random
// loopback port (not the one clients know) while the credential's user
// gets the root role and auth is enabled; then it restarts on
// cfg.ClientAddr. Users and roles that anyone could have created while
// auth was off are removed then.
func Start(cfg EmbeddedConfig, log *slog.Logger) (*Embedded, error) {
	log = log.With("component", "settings")
	if cfg.CredentialsFile == "" {
		cfg.CredentialsFile = filepath.Join(filepath.Dir(cfg.Dir), "etcd-credentials")
	}
	creds, created, err := loadOrCreateCredentials(cfg.CredentialsFile)
	if err != nil {
		return nil, err
	}
	// A data directory without the credential file (first start, or an
	// older logbox) has no auth yet; turn it on unseen.
	_, statErr := os.Stat(filepath.Join(cfg.Dir, "member"))
	fresh := errors.Is(statErr, os.ErrNotExist)
	if created || fresh {
		bootstrap := bootstrapAuth
		if fresh {
			bootstrap = bootstrapFresh
		}
		if err := bootstrap(cfg, creds, log); err != nil {
			if created {
				_ = os.Remove(cfg.CredentialsFile) // a later start must not take it for the real one
			}
			return nil, err
		}
		if created {
			log.Info("etcd credentials created; etcdctl needs them: ETCDCTL_USER=\"$(cat FILE)\" etcdctl ...", "file", cfg.CredentialsFile)
		}
	}
	e, level, err := startServer(cfg, cfg.ClientAddr)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*Embedded, error) {
		level.SetLevel(zap.FatalLevel)
		e.Close()
		return nil, err
	}
	if !e.Server.AuthStore().IsAuthEnabled() {
		// Only a data directory copied in beside an existing credential
		// file gets here; the window is short, but say so.
		log.Warn("embedded etcd had authentication off although its credentials file exists; turning it on now", "dir", cfg.Dir, "file", cfg.CredentialsFile)
		if err := enableAuth(e, creds, log); err != nil {
			return fail(err)
		}
	}
	cli, err := dialEmbedded(e, creds, cfg.CredentialsFile)
	if err != nil {
		return fail(err)
	}
	log.Info("embedded etcd ready", "endpoints", e.Clients[0].Addr().String(), "dir", cfg.Dir, "auth", "on")
	return &Embedded{etcd: e, cli: cli, level: level, credsFile: cfg.CredentialsFile}, nil
}

// bootstrapFresh makes a new etcd data directory at cfg.Dir, with auth on,
// so that no kill can leave a half-made one: etcd killed between creating
// its write-ahead log and saving its first raft entries (the member's own
// configuration) never elects itself leader when it starts again, and
// waits forever. The directory is made beside cfg.Dir, closed cleanly and
// renamed into place; what an earlier, killed first start left there is
// removed first.
func bootstrapFresh(cfg EmbeddedConfig, creds Credentials, log *slog.Logger) error {
	tmp := cfg.Dir + ".new"
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("remove the etcd data of an interrupted first start %q: %w", tmp, err)
	}
	// cfg.Dir has no member directory: it is empty, or what a logbox
	// killed in its first start before this way of starting left.
	if err := os.RemoveAll(cfg.Dir); err != nil {
		return fmt.Errorf("remove incomplete etcd data %q: %w", cfg.Dir, err)
	}
	next := cfg
	next.Dir = tmp
	if err := bootstrapAuth(next, creds, log); err != nil {
		return err
	}
	if err := os.Rename(tmp, cfg.Dir); err != nil {
		return fmt.Errorf("move new etcd data into place: %w", err)
	}
	return atomicfile.SyncDir(filepath.Dir(cfg.Dir))
}

// bootstrapAuth runs etcd on a private client port and turns auth on.
func bootstrapAuth(cfg EmbeddedConfig, creds Credentials, log *slog.Logger) error {
	e, level, err := startServer(cfg, "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer func() {
		level.SetLevel(zap.FatalLevel)
		e.Close()
	}()
	if e.Server.AuthStore().IsAuthEnabled() {
		// Auth is on, so the credential must already be known to etcd.
		if _, err := dialEmbedded(e, creds, cfg.CredentialsFile); err != nil {
			return err
		}
		return nil
	}
	return enableAuth(e, creds, log)
}

// startServer starts etcd with its client listener on clientAddr.
func startServer(c EmbeddedConfig, clientAddr string) (*embed.Etcd, zap.AtomicLevel, error) {
	cfg := embed.NewConfig()
	cfg.Name = "logbox"
	cfg.Dir = c.Dir
	// Alert states and saved searches are rewritten as they change; etcd
	// keeps every revision until compacted, so keep an hour of them.
	cfg.AutoCompactionMode = "periodic"
	cfg.AutoCompactionRetention = "1h"
	if c.TokenTTL > 0 {
		cfg.AuthTokenTTL = uint(max(1, c.TokenTTL/time.Second))
	}
	// etcd logs through zap. Its errors go to stderr as JSON; the level is
	// raised before Close, because closing logs "server closed" as errors.
	level := zap.NewAtomicLevelAt(zap.ErrorLevel)
	zl := zap.New(zapcore.NewCore(
		zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()),
		zapcore.Lock(os.Stderr), level)).With(zap.String("component", "etcd"))
	cfg.Logger = "zap"
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zl)
	cu, err := url.Parse("http://" + clientAddr)
	if err != nil {
		return nil, level, fmt.Errorf("etcd listen address %q: %w", clientAddr, err)
	}
	peer, err := freeLoopbackPort()
	if err != nil {
		return nil, level, err
	}
	pu, _ := url.Parse("http://" + peer)
	cfg.ListenClientUrls = []url.URL{*cu}
	cfg.AdvertiseClientUrls = []url.URL{*cu}
	cfg.ListenPeerUrls = []url.URL{*pu}
	cfg.AdvertisePeerUrls = []url.URL{*pu}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	// Metrics are served by logbox itself, not by a listener of etcd's.
	cfg.ListenMetricsUrls = nil
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, level, fmt.Errorf("start embedded etcd in %q: %w", c.Dir, err)
	}
	select {
	case <-e.Server.ReadyNotify():
		return e, level, nil
	case err := <-e.Err():
		level.SetLevel(zap.FatalLevel)
		e.Close()
		return nil, level, fmt.Errorf("embedded etcd: %w", err)
	case <-time.After(60 * time.Second):
		level.SetLevel(zap.FatalLevel)
		e.Close()
		return nil, level, fmt.Errorf("embedded etcd in %q not ready after 60s", c.Dir)
	}
}

// dialEmbedded connects to e's client listener as creds' user. logbox
// talks to its own etcd like any other client: etcd's in-process client
// (v3client) carries no auth token, so with auth on it is refused too.
func dialEmbedded(e *embed.Etcd, creds Credentials, file string) (*clientv3.Client, error) {
	addr := e.Clients[0].Addr().(*net.TCPAddr)
	ip := addr.IP
	if ip.IsUnspecified() { // listening on every address: dial it on loopback
		ip = net.IPv4(127, 0, 0, 1)
		if addr.IP.To4() == nil {
			ip = net.IPv6loopback
		}
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{"http://" + net.JoinHostPort(ip.String(), fmt.Sprint(addr.Port))},
		Username:    creds.User,
		Password:    creds.Password,
		DialTimeout: 10 * time.Second,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		if isAuthErr(err) {
			return nil, fmt.Errorf("embedded etcd in %q has authentication on and refuses the credential in %q (%v): restore the file logbox wrote at its first start; see docs/deploy.md, \"Lost etcd credentials\"", e.Config().Dir, file, err)
		}
		return nil, fmt.Errorf("connect to the embedded etcd: %w", err)
	}
	return cli, nil
}

func freeLoopbackPort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port for the etcd peer listener: %w", err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		return "", fmt.Errorf("release probe port: %w", err)
	}
	return addr, nil
}

// Client is an authenticated client of the embedded server. It is closed
// by Close.
func (e *Embedded) Client() *clientv3.Client { return e.cli }

// Endpoint is the client address other boxes use as --etcd-endpoints.
func (e *Embedded) Endpoint() string { return "http://" + e.etcd.Clients[0].Addr().String() }

// CredentialsFile is the file holding the credential clients must present
// (what other processes pass as --etcd-credentials-file).
func (e *Embedded) CredentialsFile() string { return e.credsFile }

// Err reports a fatal server error.
func (e *Embedded) Err() <-chan error { return e.etcd.Err() }

// Close stops the server.
func (e *Embedded) Close() {
	_ = e.cli.Close()
	e.level.SetLevel(zap.FatalLevel)
	e.etcd.Close()
}

// Dial connects to an existing etcd cluster, as the user in
// credentialsFile ("user:password") when it is not empty. An etcd that
// refuses the credential, or wants one and got none, is an error naming
// the flag. An etcd that does not answer within 5s is an error too when a
// credential is given (the client logs in before it returns); without one
// the client is returned and keeps trying by itself.
func Dial(endpoints []string, credentialsFile string) (*clientv3.Client, error) {
	// Errors are returned and logged by the caller; the client's own zap
	// logger would repeat them as JSON on stderr.
	cfg := clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()}
	if credentialsFile != "" {
		creds, err := ReadCredentials(credentialsFile)
		if err != nil {
			return nil, err
		}
		cfg.Username, cfg.Password = creds.User, creds.Password
	}
	cli, err := clientv3.New(cfg)
	if err != nil {
		if isAuthErr(err) {
			return nil, fmt.Errorf("etcd %v refuses the credential in --etcd-credentials-file %q: %w", endpoints, credentialsFile, err)
		}
		return nil, fmt.Errorf("connect to etcd %v: %w", endpoints, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := cli.Get(ctx, SourcesPrefix, clientv3.WithPrefix(), clientv3.WithCountOnly()); isAuthErr(err) {
		_ = cli.Close()
		if credentialsFile == "" {
			return nil, fmt.Errorf("etcd %v requires authentication (%w): pass --etcd-credentials-file, e.g. a copy of the etcd-credentials file in the data directory of the logbox whose embedded etcd this is", endpoints, err)
		}
		return nil, fmt.Errorf("etcd %v refuses the user in --etcd-credentials-file %q: %w", endpoints, credentialsFile, err)
	}
	return cli, nil
}

// isAuthErr tells etcd's "who are you" and "not allowed" answers apart
// from an etcd that cannot be reached.
func isAuthErr(err error) bool {
	for _, e := range []error{rpctypes.ErrUserEmpty, rpctypes.ErrAuthFailed, rpctypes.ErrPermissionDenied,
		rpctypes.ErrInvalidAuthToken, rpctypes.ErrInvalidAuthMgmt, rpctypes.ErrAuthOldRevision} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
