// Package kafkatest starts a Kafka-protocol broker for tests: an in-process
// kfake cluster listening on 127.0.0.1 with OS-chosen ports, or, when the
// environment variable LOGBOX_TEST_KAFKA names brokers (comma-separated), that
// real cluster instead.
//
// Against a real cluster topics and groups outlive the test, so tests must
// name them with UniqueName.
package kafkatest

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// EnvBrokers is the environment variable that points tests at a real Kafka.
const EnvBrokers = "LOGBOX_TEST_KAFKA"

// Cluster is a broker started for one test. Its methods are safe for
// concurrent use.
type Cluster struct {
	// Brokers are the addresses clients connect to; they stay the same
	// across Stop and Restart.
	Brokers []string

	t     testing.TB
	opts  []kfake.Opt
	ports []int

	mu sync.Mutex
	c  *kfake.Cluster // nil while stopped or when external
}

// Start starts a one-broker kfake cluster (opts may override that, e.g.
// kfake.NumBrokers(3)) that persists its data in a t.TempDir, so Restart
// brings back every acknowledged record. t.Cleanup closes it.
//
// If LOGBOX_TEST_KAFKA is set, Start starts nothing and returns a Cluster
// whose Brokers are those; Stop and Restart then skip the test.
func Start(t testing.TB, opts ...kfake.Opt) *Cluster {
	t.Helper()
	if env := os.Getenv(EnvBrokers); env != "" {
		var brokers []string
		for b := range strings.SplitSeq(env, ",") {
			if b = strings.TrimSpace(b); b != "" {
				brokers = append(brokers, b)
			}
		}
		return &Cluster{Brokers: brokers, t: t}
	}
	all := append([]kfake.Opt{kfake.NumBrokers(1), kfake.DataDir(t.TempDir())}, opts...)
	kc, err := kfake.NewCluster(all...)
	if err != nil {
		t.Fatalf("start kfake: %v", err)
	}
	c := &Cluster{t: t, opts: all, c: kc, Brokers: kc.ListenAddrs()}
	for _, a := range c.Brokers {
		_, p, err := net.SplitHostPort(a)
		if err != nil {
			t.Fatalf("kfake address %q: %v", a, err)
		}
		port, err := strconv.Atoi(p)
		if err != nil {
			t.Fatalf("kfake port %q: %v", a, err)
		}
		c.ports = append(c.ports, port)
	}
	t.Cleanup(c.Stop)
	return c
}

// External reports whether the cluster is a real one named by LOGBOX_TEST_KAFKA.
func (c *Cluster) External() bool { return c.ports == nil }

// Stop closes the brokers, as in an outage: clients get connection refused.
// Data written so far is kept for Restart. Stopping twice does nothing.
func (c *Cluster) Stop() {
	if c.External() {
		c.t.Skip("outage tests need the in-process kfake cluster; unset " + EnvBrokers)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.c != nil {
		c.c.Close()
		c.c = nil
	}
}

// Restart stops the cluster if it runs and starts a new one on the same
// ports from the same data directory. It retries for a few seconds while a
// port is still held by the old listener.
func (c *Cluster) Restart() {
	c.t.Helper()
	c.Stop()
	c.mu.Lock()
	defer c.mu.Unlock()
	opts := append(append([]kfake.Opt(nil), c.opts...), kfake.Ports(c.ports...))
	deadline := time.Now().Add(5 * time.Second)
	for {
		kc, err := kfake.NewCluster(opts...)
		if err == nil {
			c.c = kc
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("restart kfake on ports %v: %v", c.ports, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Kfake returns the running in-process cluster, or nil when stopped or
// external.
func (c *Cluster) Kfake() *kfake.Cluster {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.c
}

// UniqueName returns a topic or group name that starts with prefix and is
// unique per test and call, even across runs against the same real cluster.
func UniqueName(t testing.TB, prefix string) string {
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-' {
			return r
		}
		return '-'
	}, t.Name())
	if len(name) > 100 {
		name = name[:100]
	}
	return fmt.Sprintf("%s-%s-%d-%d", prefix, name, time.Now().UnixNano(), rand.Uint32())
}
