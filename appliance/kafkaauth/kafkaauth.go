// Package kafkaauth holds the connection security that the Kafka producer
// and consumer share: TLS from PEM files, and SASL PLAIN or SCRAM applied to
// a sarama config. It is the one place both Kafka roles import, so their
// settings cannot drift apart.
package kafkaauth

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/IBM/sarama"
)

// TLSConfig builds the client TLS config for Kafka: caFile is a PEM bundle
// of the CAs that sign the brokers' certificates (empty: the system's
// roots), certFile and keyFile a PEM client certificate and its key for
// brokers that require one (both or neither). insecureSkipVerify turns
// off checking the brokers' certificates (tests only). With every argument
// empty or false it returns nil, nil: plaintext.
func TLSConfig(caFile, certFile, keyFile string, insecureSkipVerify bool) (*tls.Config, error) {
	if caFile == "" && certFile == "" && keyFile == "" && !insecureSkipVerify {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: insecureSkipVerify} //nolint:gosec // opt-in
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("kafka tls ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("kafka tls ca: %q holds no PEM certificate", caFile)
		}
		tc.RootCAs = pool
	}
	switch {
	case certFile != "" && keyFile != "":
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("kafka tls client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	case certFile != "":
		return nil, errors.New("kafka tls client certificate: a cert file needs its key file too")
	case keyFile != "":
		return nil, errors.New("kafka tls client certificate: a key file needs its cert file too")
	}
	return tc, nil
}

// saslMechanism maps a configured mechanism name to sarama's; "" is none.
func saslMechanism(name string) (sarama.SASLMechanism, error) {
	switch strings.ToUpper(name) {
	case "":
		return "", nil
	case "PLAIN":
		return sarama.SASLTypePlaintext, nil
	case "SCRAM-SHA-256":
		return sarama.SASLTypeSCRAMSHA256, nil
	case "SCRAM-SHA-512":
		return sarama.SASLTypeSCRAMSHA512, nil
	}
	return "", fmt.Errorf("kafka sasl mechanism: %q is not one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512", name)
}

// Validate checks the SASL settings together.
func Validate(mechanism, user, password string) []error {
	var errs []error
	m, err := saslMechanism(mechanism)
	if err != nil {
		errs = append(errs, err)
	}
	switch {
	case m != "" && user == "":
		errs = append(errs, fmt.Errorf("kafka sasl user: none given for sasl mechanism %s", m))
	case m != "" && password == "":
		errs = append(errs, fmt.Errorf("kafka sasl password: none given for sasl user %q", user))
	case mechanism == "" && (user != "" || password != ""):
		errs = append(errs, errors.New("kafka sasl mechanism: none given, but a sasl user or password is set; set PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"))
	}
	return errs
}

// Apply sets sc's TLS and SASL settings.
func Apply(sc *sarama.Config, tc *tls.Config, mechanism, user, password string) error {
	if tc != nil {
		sc.Net.TLS.Enable = true
		sc.Net.TLS.Config = tc
	}
	m, err := saslMechanism(mechanism)
	if err != nil || m == "" {
		return err
	}
	sc.Net.SASL.Enable = true
	sc.Net.SASL.Mechanism = m
	// v1 frames SASL in SaslAuthenticate requests (Kafka ≥ 1.0).
	sc.Net.SASL.Version = sarama.SASLHandshakeV1
	sc.Net.SASL.Handshake = true
	sc.Net.SASL.User = user
	sc.Net.SASL.Password = password
	sc.Net.SASL.SCRAMClientGeneratorFunc = scramGenerator(m)
	return nil
}
