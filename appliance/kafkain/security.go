package kafkain

// The TLS and SASL settings mirror kafkaout's (leaf packages do not import
// each other); build the *tls.Config with kafkaout.TLSConfig.

import (
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"

	"github.com/IBM/sarama"
	"github.com/xdg-go/scram"
)

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

// validateSASL checks the SASL settings together.
func validateSASL(mechanism, user, password string) []error {
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

// applySecurity sets sc's TLS and SASL settings.
func applySecurity(sc *sarama.Config, tc *tls.Config, mechanism, user, password string) error {
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
	switch m {
	case sarama.SASLTypeSCRAMSHA256:
		sc.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &scramClient{hash: sha256.New} }
	case sarama.SASLTypeSCRAMSHA512:
		sc.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &scramClient{hash: sha512.New} }
	}
	return nil
}

// scramClient is the sarama.SCRAMClient for SCRAM-SHA-256/512, after
// sarama's own example.
type scramClient struct {
	hash scram.HashGeneratorFcn
	conv *scram.ClientConversation
}

func (s *scramClient) Begin(user, password, authzID string) error {
	c, err := s.hash.NewClient(user, password, authzID)
	if err != nil {
		return err
	}
	s.conv = c.NewConversation()
	return nil
}

func (s *scramClient) Step(challenge string) (string, error) { return s.conv.Step(challenge) }

func (s *scramClient) Done() bool { return s.conv.Done() }
