package appliance

import (
	"context"
	"crypto/tls"
	"net/http"
	"path/filepath"
	"slices"
	"time"

	"github.com/IBM/sarama"
	"github.com/logbox/logbox/appliance/fleet"
	"github.com/logbox/logbox/appliance/index"
	"github.com/logbox/logbox/appliance/kafkaauth"
	"github.com/logbox/logbox/appliance/patterns"
	"github.com/logbox/logbox/appliance/pipeline"
)

// fleetOn says whether this process takes part in the fleet: Kafka mode,
// on a process that indexes or answers queries.
func (a *Appliance) fleetOn() bool {
	return !a.direct() && (a.indexes() || a.cfg.Role == RoleQuery)
}

// memberID names this indexer in the fleet: the consumer's instance id
// (host and data dir), unique per indexer.
func (a *Appliance) memberID() string { return a.cfg.kafkaInstanceID() }

// advertised is the base URL other processes reach this one's API at.
func (a *Appliance) advertised() string {
	if a.cfg.AdvertiseURL != "" {
		return a.cfg.AdvertiseURL
	}
	return "http://" + a.addr
}

// setupFleet makes the directory and the router (the API's answers for
// the whole fleet), once the HTTP address is known.
func (a *Appliance) setupFleet(kafkaTLS *tls.Config) error {
	if !a.fleetOn() {
		return nil
	}
	a.fleetDir = fleet.NewDirectory(a.etcdCli, a.log)
	sc := sarama.NewConfig()
	if err := kafkaauth.Apply(sc, kafkaTLS, a.cfg.KafkaSASLMechanism, a.cfg.KafkaSASLUser, a.cfg.KafkaSASLPassword); err != nil {
		return err
	}
	sc.Version = sarama.V2_8_0_0
	sc.Net.DialTimeout, sc.Net.ReadTimeout, sc.Net.WriteTimeout = 3*time.Second, 5*time.Second, 5*time.Second
	sc.Metadata.Retry.Max = 1
	topics := append([]string{a.cfg.Topic}, a.cfg.KafkaIndexTopics...)
	r := &fleet.Router{
		Dir:         a.fleetDir,
		Marks:       fleet.KafkaMarks(a.cfg.Kafka, sc, topics),
		CompareSort: index.CompareSort,
		MergeStats: func(q string, states [][]byte) (pipeline.StatsResult, error) {
			sts := make([]index.StatsState, len(states))
			for i, b := range states {
				st, err := index.DecodeStatsState(b)
				if err != nil {
					return pipeline.StatsResult{}, err
				}
				sts[i] = st
			}
			return index.MergeStats(q, sts)
		},
		Client: &http.Client{Timeout: 60 * time.Second},
		Log:    a.log,
	}
	if a.idx != nil {
		r.Self, r.Local = a.memberID(), a.idx
		r.StatsState = a.localStatsState
	}
	r.Credential = func() string {
		if tok := a.guard.Token(); tok != "" {
			return "Bearer " + tok
		}
		return ""
	}
	a.router = r
	a.fleetMiner = patterns.New(r)
	return nil
}

// localStatsState is this index's stats state, encoded for the fleet.
func (a *Appliance) localStatsState(ctx context.Context, req pipeline.StatsRequest) ([]byte, error) {
	st, err := a.idx.StatsState(ctx, req)
	if err != nil {
		return nil, err
	}
	return index.EncodeStatsState(st)
}

// self is this indexer's entry in the fleet directory.
func (a *Appliance) self() fleet.Member {
	m := fleet.Member{ID: a.memberID(), Addr: a.advertised(), Role: a.cfg.Role, Group: a.cfg.KafkaGroup, Host: a.cfg.Host, Started: a.started}
	if a.consumer != nil {
		m.Assigned = a.consumer.Assigned()
		m.Coverage = a.consumer.Coverage()
		m.Filling = a.consumer.Filling()
		st := a.consumer.Stats()
		m.Lag = map[string]int64{}
		for _, l := range st.Lag {
			if slices.Contains(m.Assigned, pipeline.PartName(l.Topic, l.Partition)) {
				m.Lag[pipeline.PartName(l.Topic, l.Partition)] = l.Lag
			}
		}
	}
	return m
}

// fleetComponents are the directory's watch and, on an indexer, its
// registration.
func (a *Appliance) fleetComponents() []*component {
	if a.fleetDir == nil {
		return nil
	}
	comps := []*component{{name: "fleet directory", step: 6, run: a.fleetDir.Run,
		status: func(st *Status) {
			v := a.router.View(context.Background())
			st.Fleet = &v
		},
		collect: a.fleetMetrics}}
	if a.idx != nil {
		reg := &fleet.Registrar{Client: a.etcdCli, Self: a.self, Log: a.log}
		// Registered until the consumer stopped: gone from the
		// directory before the index closes.
		comps = append(comps, &component{name: "fleet registration", step: 5, run: reg.Run})
	}
	return comps
}

func (a *Appliance) coverageFile() string { return filepath.Join(a.cfg.DataDir, "kafka-coverage.json") }

func (a *Appliance) fleetMetrics(m *metrics, e emitter) {
	e.gauge(m.fleetIndexers, float64(len(a.fleetDir.Members())))
	v := a.router.View(context.Background())
	e.gauge(m.fleetMissing, float64(len(v.Missing)))
	req, fail := a.router.Stats()
	e.counter(m.fleetRequests, req-fail, "ok")
	e.counter(m.fleetRequests, fail, "failed")
}

// miner is the patterns miner for a question asked now, and what of the
// fleet no live indexer holds: the local index's miner (its precomputed
// keys) while it answers for the whole fleet (or outside one), else one
// that mines every indexer's lines through the router.
func (a *Appliance) miner(ctx context.Context) (*patterns.Miner, []pipeline.MissingRange) {
	if a.router == nil {
		return a.localMiner, nil
	}
	whole, missing := a.router.Whole(ctx)
	if whole && a.localMiner != nil {
		return a.localMiner, missing
	}
	return a.fleetMiner, missing
}

// fleetPatterns answers /api/patterns for the fleet (see miner); partial
// as the router sees the fleet.
type fleetPatterns struct{ a *Appliance }

func (p *fleetPatterns) Patterns(ctx context.Context, req pipeline.PatternsRequest) (pipeline.PatternsResult, error) {
	m, missing := p.a.miner(ctx)
	res, err := m.Patterns(ctx, req)
	if err == nil && len(missing) > 0 {
		res.Partial, res.Missing = true, missing
	}
	return res, err
}
