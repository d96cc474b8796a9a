package kafkain_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/logbox/logbox/appliance/kafkaauth"
	"github.com/logbox/logbox/appliance/kafkain"
	"github.com/logbox/logbox/appliance/kafkaout"
	"github.com/logbox/logbox/appliance/kafkatest"
	"github.com/logbox/logbox/appliance/pipeline"
)

// These tests produce with kafkaout and consume with kafkain over the same
// secured connection settings. Only the test imports both packages.

// secure is the connection settings both sides get.
type secure struct {
	tls                  *tls.Config
	mech, user, password string
}

// shipBatch publishes one batch through a kafkaout producer with s and
// returns the records and a channel closed when the batch is acked.
func shipBatch(t *testing.T, brokers []string, topic string, s secure, run string) ([]pipeline.Record, <-chan struct{}) {
	t.Helper()
	p := kafkaout.New(kafkaout.Config{Brokers: brokers, Topic: topic, TLS: s.tls,
		SASLMechanism: s.mech, SASLUser: s.user, SASLPassword: s.password, DrainTimeout: 100 * time.Millisecond}, testLogger(t))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Errorf("producer Run did not return")
		}
	})
	recs, _, _ := events(run, 0, 50)
	acked := make(chan struct{})
	if err := p.Publish(ctx, pipeline.NewBatch(recs, func() { close(acked) })); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	return recs, acked
}

func consumeWith(t *testing.T, brokers []string, topic string, s secure) *memIndex {
	t.Helper()
	idx := newMemIndex(true)
	c := kafkain.New(kafkain.Config{Brokers: brokers, Topics: []string{topic}, Group: kafkatest.UniqueName(t, "g"),
		FlushInterval: 10 * time.Millisecond, TLS: s.tls,
		SASLMechanism: s.mech, SASLUser: s.user, SASLPassword: s.password}, writerFor(t, idx), testLogger(t))
	runConsumer(t, c)
	return idx
}

// roundTrip checks that what good produces is consumed with good, and that
// with bad neither side gets anywhere within a short bound.
func roundTrip(t *testing.T, brokers []string, good, bad secure) {
	t.Helper()
	topic := kafkatest.UniqueName(t, "sec")
	recs, acked := shipBatch(t, brokers, topic, good, "ok")
	select {
	case <-acked:
	case <-time.After(15 * time.Second):
		t.Fatalf("batch not acked with the right settings")
	}
	checkIndexed(t, recs, consumeWith(t, brokers, topic, good).waitLen(t, len(recs), 15*time.Second))

	_, badAcked := shipBatch(t, brokers, topic, bad, "bad")
	badIdx := consumeWith(t, brokers, topic, bad)
	select {
	case <-badAcked:
		t.Errorf("batch acked with wrong settings")
	case <-time.After(time.Second):
	}
	if n := len(badIdx.snapshot()); n != 0 {
		t.Errorf("consumer with wrong settings indexed %d records", n)
	}
}

func TestSASL(t *testing.T) {
	for _, mech := range []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"} {
		t.Run(mech, func(t *testing.T) {
			cluster := kafkatest.Start(t, kfake.EnableSASL(), kfake.Superuser(mech, "logbox", "s3cret"))
			if cluster.External() {
				t.Skip("needs the in-process kfake cluster with SASL")
			}
			good := secure{mech: mech, user: "logbox", password: "s3cret"}
			bad := good
			bad.password = "wrong"
			roundTrip(t, cluster.Brokers, good, bad)
		})
	}
}

// TestTLS: a broker that requires a client certificate, reached with
// kafkaout.TLSConfig from PEM files; a plaintext client gets nowhere.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	ca, caKey := newCert(t, nil, nil, "logbox test CA", dir, "ca")
	newCert(t, ca, caKey, "127.0.0.1", dir, "server")
	serverCert, err := tls.LoadX509KeyPair(filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	newCert(t, ca, caKey, "logbox client", dir, "client")

	pool := x509.NewCertPool()
	pool.AddCert(ca)
	cluster := kafkatest.Start(t, kfake.TLS(&tls.Config{
		Certificates: []tls.Certificate{serverCert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
		MinVersion:   tls.VersionTLS12,
	}))
	if cluster.External() {
		t.Skip("needs the in-process kfake cluster with TLS")
	}
	tc, err := kafkaauth.TLSConfig(filepath.Join(dir, "ca.pem"), filepath.Join(dir, "client.pem"), filepath.Join(dir, "client-key.pem"), false)
	if err != nil {
		t.Fatalf("TLSConfig: %v", err)
	}
	roundTrip(t, cluster.Brokers, secure{tls: tc}, secure{})
}

// newCert makes a certificate for name (an IP address gets an IP SAN),
// signed by parent (self-signed CA when nil), writes it and its key as
// PEM to dir/base.pem and dir/base-key.pem, and returns it.
func newCert(t *testing.T, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, name, dir, base string) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	if ip := net.ParseIP(name); ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
		tmpl.DNSNames = []string{"localhost"}
	}
	if parent == nil {
		tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
		tmpl.KeyUsage |= x509.KeyUsageCertSign
		tmpl.ExtKeyUsage = nil
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	write := func(file, typ string, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, file), pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(base+".pem", "CERTIFICATE", der)
	write(base+"-key.pem", "EC PRIVATE KEY", keyDER)
	return cert, key
}

func TestValidateSASL(t *testing.T) {
	ok := kafkain.Config{Brokers: []string{"127.0.0.1:9092"}, Topics: []string{"logbox"}}
	for _, tc := range []struct{ mech, user, pass, want string }{
		{"SCRAM-SHA-256", "u", "p", ""},
		{"MD5", "u", "p", `kafka sasl mechanism: "MD5" is not one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512`},
		{"PLAIN", "", "", "kafka sasl user: none given"},
		{"", "u", "p", "kafka sasl mechanism: none given"},
	} {
		c := ok
		c.SASLMechanism, c.SASLUser, c.SASLPassword = tc.mech, tc.user, tc.pass
		err := c.Validate()
		if (tc.want == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate(%q, %q, %q) = %v, want %q", tc.mech, tc.user, tc.pass, err, tc.want)
		}
	}
}
