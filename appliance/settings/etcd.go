// Package settings keeps logbox's collection settings in etcd: an embedded
// single-member etcd by default, or an existing cluster.
//
// Sources live at /logbox/sources/<name> as JSON (pipeline.Source). Every
// writer — the HTTP API, `logbox sources`, or etcdctl — has the same effect,
// because logbox acts only on what Watch reports.
package settings

import (
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3client"
)

// Embedded is an etcd server running inside this process.
type Embedded struct {
	etcd  *embed.Etcd
	cli   *clientv3.Client
	level zap.AtomicLevel
}

// StartEmbedded starts a single-member etcd with its data in dir, serving
// clients on clientAddr (host:port; port 0 picks a free one). Its peer
// listener is bound to a free loopback port: a single member has no peers,
// and a fixed port would keep two logbox processes off one box. The caller
// closes it with Close.
func StartEmbedded(dir, clientAddr string, log *slog.Logger) (*Embedded, error) {
	cfg := embed.NewConfig()
	cfg.Name = "logbox"
	cfg.Dir = dir
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
		return nil, fmt.Errorf("etcd listen address %q: %w", clientAddr, err)
	}
	peer, err := freeLoopbackPort()
	if err != nil {
		return nil, err
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
		return nil, fmt.Errorf("start embedded etcd in %q: %w", dir, err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		level.SetLevel(zap.FatalLevel)
		e.Close()
		return nil, fmt.Errorf("embedded etcd: %w", err)
	case <-time.After(60 * time.Second):
		level.SetLevel(zap.FatalLevel)
		e.Close()
		return nil, fmt.Errorf("embedded etcd in %q not ready after 60s", dir)
	}
	log.With("component", "settings").Info("embedded etcd ready", "endpoints", e.Clients[0].Addr().String(), "dir", dir)
	return &Embedded{etcd: e, cli: v3client.New(e.Server), level: level}, nil
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

// Client is an in-process client of the embedded server. It is closed by Close.
func (e *Embedded) Client() *clientv3.Client { return e.cli }

// Endpoint is the client address other boxes use as --etcd-endpoints.
func (e *Embedded) Endpoint() string { return "http://" + e.etcd.Clients[0].Addr().String() }

// Err reports a fatal server error.
func (e *Embedded) Err() <-chan error { return e.etcd.Err() }

// Close stops the server.
func (e *Embedded) Close() {
	_ = e.cli.Close()
	e.level.SetLevel(zap.FatalLevel)
	e.etcd.Close()
}

// Dial connects to an existing etcd cluster.
func Dial(endpoints []string) (*clientv3.Client, error) {
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("connect to etcd %v: %w", endpoints, err)
	}
	return cli, nil
}
