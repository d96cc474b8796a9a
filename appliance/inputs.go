package appliance

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"

	"github.com/go-chi/chi/v5"

	"github.com/logbox/logbox/appliance/ingest"
	"github.com/logbox/logbox/appliance/inputs/esbulk"
	"github.com/logbox/logbox/appliance/inputs/journald"
	"github.com/logbox/logbox/appliance/inputs/loki"
	"github.com/logbox/logbox/appliance/inputs/otlp"
	"github.com/logbox/logbox/appliance/inputs/syslog"
	"github.com/logbox/logbox/appliance/pipeline"
)

// inputs are the push inputs and journald this process runs: one
// ingest.Acceptor per push input (its id log under <data>/inputs/<name>),
// the routes the HTTP ones mount, and the components the listening ones
// run.
type inputs struct {
	acceptors []*ingest.Acceptor
	mounts    []func(chi.Router)
	comps     []*component
	// stats are the inputs' counters beyond their acceptors' (journald,
	// the syslog listeners), by input name.
	stats map[string]func() any
	// counts are the acceptor-like counters of inputs without an
	// acceptor (journald), by name.
	counts map[string]func() ingest.Stats
	// unserved release what was opened for components that will not
	// run (the syslog listeners), when the start fails after opening.
	unserved []func() error
}

const (
	defaultInputMaxBody     = 16 << 20
	defaultInputMaxInFlight = 200000
)

// openInputs opens the inputs cfg turns on, feeding sink.
func (a *Appliance) openInputs(sink pipeline.Sink) (*inputs, error) {
	ins := &inputs{stats: map[string]func() any{}, counts: map[string]func() ingest.Stats{}}
	if sink == nil || !a.cfg.pushInputs() {
		return ins, nil
	}
	if err := a.addInputs(ins, sink); err != nil {
		ins.abandon()
		return nil, err
	}
	return ins, nil
}

// acceptor opens the door of push input name into sink.
func (a *Appliance) acceptor(ins *inputs, name string, sink pipeline.Sink) (*ingest.Acceptor, error) {
	acc, err := ingest.New(ingest.Config{
		Name: name, Host: a.cfg.Host, Dir: filepath.Join(a.cfg.DataDir, "inputs", name), Sink: sink,
		MaxInFlight: a.inputMaxInFlight(), MaxIDs: a.cfg.InputRetryIDs,
	}, a.log)
	if err != nil {
		return nil, err
	}
	ins.acceptors = append(ins.acceptors, acc)
	return acc, nil
}

func (a *Appliance) inputMaxBody() int64 {
	if a.cfg.InputMaxBody > 0 {
		return a.cfg.InputMaxBody
	}
	return defaultInputMaxBody
}

func (a *Appliance) inputMaxInFlight() int {
	if a.cfg.InputMaxInFlight > 0 {
		return a.cfg.InputMaxInFlight
	}
	return defaultInputMaxInFlight
}

func (ins *inputs) components() []*component {
	if ins == nil {
		return nil
	}
	return ins.comps
}

// abandon releases everything the inputs opened, for a start that fails
// before their components run.
func (ins *inputs) abandon() {
	if ins == nil {
		return
	}
	for _, f := range ins.unserved {
		_ = f()
	}
	ins.close()
}

// close closes the acceptors: calls still waiting for an ack get it or
// the writer's nack.
func (ins *inputs) close() {
	if ins == nil {
		return
	}
	for _, acc := range ins.acceptors {
		_ = acc.Close()
	}
}

// InputStatus is one input's part of /api/status.
type InputStatus struct {
	ingest.Stats
	// Detail is what the input reports beyond the acceptor's counters
	// (connections for syslog, the cursor for journald).
	Detail any `json:"detail,omitempty"`
}

// status returns every input's counters, by name.
func (ins *inputs) status() map[string]InputStatus {
	out := map[string]InputStatus{}
	if ins == nil {
		return out
	}
	for _, acc := range ins.acceptors {
		st := InputStatus{Stats: acc.Stats()}
		if f := ins.stats[acc.Name()]; f != nil {
			st.Detail = f()
		}
		out[acc.Name()] = st
	}
	for name, f := range ins.stats {
		if _, ok := out[name]; !ok {
			st := ingest.Stats{Name: name}
			if c := ins.counts[name]; c != nil {
				st = c()
			}
			out[name] = InputStatus{Stats: st, Detail: f()}
		}
	}
	return out
}

// addInputs opens each input cfg names. The syslog listeners bind here,
// so a taken port stops the start with the flag named.
func (a *Appliance) addInputs(ins *inputs, sink pipeline.Sink) error {
	cfg := a.cfg
	body := a.inputMaxBody()
	if cfg.OTLP {
		acc, err := a.acceptor(ins, "otlp", sink)
		if err != nil {
			return err
		}
		ins.mounts = append(ins.mounts, otlp.New(acc, otlp.Config{MaxBody: body}, a.log).Mount)
	}
	if cfg.LokiPush {
		acc, err := a.acceptor(ins, "loki", sink)
		if err != nil {
			return err
		}
		ins.mounts = append(ins.mounts, loki.New(acc, loki.Config{MaxBody: body}, a.log).Mount)
	}
	if cfg.ESBulk {
		acc, err := a.acceptor(ins, "bulk", sink)
		if err != nil {
			return err
		}
		ins.mounts = append(ins.mounts, esbulk.New(acc, esbulk.Config{MaxBody: body}, a.log).Mount)
	}
	if cfg.SyslogTCP != "" || cfg.SyslogUDP != "" || cfg.SyslogTLS != "" {
		acc, err := a.acceptor(ins, "syslog", sink)
		if err != nil {
			return err
		}
		scfg := syslog.Config{TCP: cfg.SyslogTCP, UDP: cfg.SyslogUDP, TLS: cfg.SyslogTLS}
		if cfg.SyslogTLS != "" {
			if scfg.TLSConfig, err = syslogTLS(cfg.SyslogTLSCert, cfg.SyslogTLSKey, cfg.SyslogTLSClientCA); err != nil {
				return err
			}
		}
		srv := syslog.New(scfg, acc, a.log)
		if err := srv.Listen(); err != nil {
			return err
		}
		ins.unserved = append(ins.unserved, srv.Close)
		ins.stats["syslog"] = func() any { return srv.Stats() }
		ins.comps = append(ins.comps, &component{name: "syslog", step: 2, run: srv.Serve})
	}
	if cfg.Journald != "" {
		r, err := journald.New(journald.Config{
			Source: cfg.Journald, StateDir: filepath.Join(cfg.DataDir, "inputs", "journald"), Host: cfg.Host, Sink: sink,
		}, a.log)
		if err != nil {
			return fmt.Errorf("--journald: %w", err)
		}
		ins.stats["journald"] = func() any { return r.Stats() }
		ins.counts["journald"] = func() ingest.Stats {
			js := r.Stats()
			return ingest.Stats{Name: "journald", Acked: js.EntriesAcked, Failed: js.EntriesNacked, InFlight: int64(js.InFlight), LastError: js.LastError}
		}
		ins.comps = append(ins.comps, &component{name: "journald", step: 2, run: r.Run})
	}
	return nil
}

// syslogTLS is the syslog TLS listener's configuration: its certificate,
// and with a client CA, clients must present a certificate it signed.
func syslogTLS(certFile, keyFile, clientCA string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("--syslog-tls-cert/--syslog-tls-key: %w", err)
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if clientCA != "" {
		pem, err := os.ReadFile(clientCA)
		if err != nil {
			return nil, fmt.Errorf("--syslog-tls-client-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--syslog-tls-client-ca: no PEM certificate in %s", clientCA)
		}
		tc.ClientCAs, tc.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return tc, nil
}
