package appliance

import (
	"context"
	"path/filepath"

	"github.com/go-chi/chi/v5"

	"github.com/logbox/logbox/appliance/ingest"
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
}

const (
	defaultInputMaxBody     = 16 << 20
	defaultInputMaxInFlight = 200000
)

// openInputs opens the inputs cfg turns on, feeding sink.
func (a *Appliance) openInputs(sink pipeline.Sink) (*inputs, error) {
	ins := &inputs{stats: map[string]func() any{}}
	if sink == nil || !a.cfg.pushInputs() {
		return ins, nil
	}
	if err := a.addInputs(ins, sink); err != nil {
		ins.close()
		return nil, err
	}
	return ins, nil
}

// acceptor opens the door of push input name into sink.
func (a *Appliance) acceptor(ins *inputs, name string, sink pipeline.Sink) (*ingest.Acceptor, error) {
	acc, err := ingest.New(ingest.Config{
		Name: name, Host: a.cfg.Host, Dir: filepath.Join(a.cfg.DataDir, "inputs", name), Sink: sink,
		MaxInFlight: a.inputMaxInFlight(),
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
			out[name] = InputStatus{Stats: ingest.Stats{Name: name}, Detail: f()}
		}
	}
	return out
}

// addInputs opens each input cfg names (filled in as the inputs land).
func (a *Appliance) addInputs(ins *inputs, sink pipeline.Sink) error {
	_ = context.Background
	return nil
}
