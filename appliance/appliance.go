// Package appliance wires logbox's roles together and runs them. It holds
// no logic of its own beyond wiring and shutdown order.
package appliance

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"golang.org/x/sync/errgroup"

	"github.com/logbox/logbox/appliance/alerting"
	"github.com/logbox/logbox/appliance/auth"
	"github.com/logbox/logbox/appliance/checkpoint"
	"github.com/logbox/logbox/appliance/diskspace"
	"github.com/logbox/logbox/appliance/fleet"
	"github.com/logbox/logbox/appliance/hostnet"
	"github.com/logbox/logbox/appliance/httpapi"
	"github.com/logbox/logbox/appliance/index"
	"github.com/logbox/logbox/appliance/indexwriter"
	"github.com/logbox/logbox/appliance/kafkaauth"
	"github.com/logbox/logbox/appliance/kafkain"
	"github.com/logbox/logbox/appliance/kafkaout"
	"github.com/logbox/logbox/appliance/ledger"
	"github.com/logbox/logbox/appliance/pathpolicy"
	"github.com/logbox/logbox/appliance/patterns"
	"github.com/logbox/logbox/appliance/pipeline"
	"github.com/logbox/logbox/appliance/settings"
	"github.com/logbox/logbox/appliance/tailer"
	"github.com/logbox/logbox/ui"
)

// Appliance is one logbox process.
type Appliance struct {
	cfg Config
	log *slog.Logger

	guard    *auth.Guard
	store    *settings.Store
	searches *settings.SearchStore
	alerts   *settings.AlertStore
	alerting *alerting.Evaluator // on processes that index
	ready    chan struct{}
	addr     string // bound HTTP address, set before ready closes
	mu       sync.Mutex
	invalid  map[string]string // source name → why its etcd entry was refused
	etcdCli  *clientv3.Client
	idx      *index.Index
	writer   *indexwriter.Writer // direct mode: the tailers' and inputs' sink
	// consumerWriter is the Kafka consumer's sink on processes that
	// index from Kafka.
	consumerWriter *indexwriter.Writer
	tail           *tailer.Manager
	cps            *checkpoint.Store // nil on processes that do not tail
	producer       *kafkaout.Producer
	consumer       *kafkain.Consumer
	// fleetDir and router: the fleet's live indexers and the answers for
	// all of them (Kafka mode, on indexers and --role query).
	fleetDir *fleet.Directory
	router   *fleet.Router
	// localMiner mines the local index's patterns; fleetMiner every
	// indexer's lines through the router.
	localMiner, fleetMiner *patterns.Miner
	started                time.Time
	disk                   *diskspace.Guard
	inputs                 *inputs // push inputs and journald; none when off
	// comps is the process's component list, set before ready closes.
	comps []*component
	// live is cfg with what SIGHUP applied since (guarded by mu).
	live Config
}

// New checks cfg and returns an appliance; it starts nothing.
func New(cfg Config, log *slog.Logger) (*Appliance, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid config: %w", err)
	}
	guard, err := auth.New(cfg.authConfig())
	if err != nil {
		return nil, err
	}
	return &Appliance{cfg: cfg, live: cfg, log: log, guard: guard, ready: make(chan struct{}), invalid: map[string]string{}}, nil
}

// Ready is closed once the HTTP server is listening and every part is open.
func (a *Appliance) Ready() <-chan struct{} { return a.ready }

// Addr is the HTTP address actually bound; valid after Ready.
func (a *Appliance) Addr() string { return a.addr }

func (a *Appliance) tails() bool   { return a.cfg.Role == RoleAll || a.cfg.Role == RoleAgent }
func (a *Appliance) indexes() bool { return a.cfg.Role == RoleAll || a.cfg.Role == RoleIndexer }
func (a *Appliance) direct() bool  { return len(a.cfg.Kafka) == 0 }

// indexWriter returns the Kafka consumer's index writer, made on first
// use.
func (a *Appliance) indexWriter() *indexwriter.Writer {
	if a.consumerWriter == nil {
		a.consumerWriter = indexwriter.New(indexwriter.Config{Guard: a.disk}, a.idx, a.log)
	}
	return a.consumerWriter
}

// queuedBatches counts the batches waiting for the index writers.
func (a *Appliance) queuedBatches() int {
	n := 0
	for _, w := range []*indexwriter.Writer{a.writer, a.consumerWriter} {
		if w != nil {
			n += w.Queued()
		}
	}
	return n
}

// component is one part of the process in the list Run builds: its name,
// how it runs, the shutdown step it stops at (see Run), and what it adds
// to /api/status and /metrics (status and collect may be nil).
type component struct {
	name    string
	step    int
	run     func(context.Context) error
	status  func(*Status)
	collect func(*metrics, emitter)
	st      *stage
}

// stage is one component with its own context, so shutdown can stop
// components one at a time in a fixed order.
type stage struct {
	cancel context.CancelFunc
	done   chan struct{}
}

func (a *Appliance) start(g *errgroup.Group, name string, fn func(context.Context) error) *stage {
	ctx, cancel := context.WithCancel(context.Background())
	s := &stage{cancel: cancel, done: make(chan struct{})}
	g.Go(func() error {
		defer close(s.done)
		if err := fn(ctx); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		return nil
	})
	return s
}

// stop cancels the stage and waits for it, at most timeout.
func (s *stage) stop(timeout time.Duration) bool {
	if s == nil {
		return true
	}
	s.cancel()
	select {
	case <-s.done:
		return true
	case <-time.After(timeout):
		return false
	}
}

// Run starts every part the role needs and blocks until ctx is done or a
// part fails fatally; then it shuts down in order and returns once every
// goroutine it started has exited.
//
// Shutdown order (each step bounded by ShutdownTimeout):
//  1. stop HTTP (no new requests, no new sources; push requests in
//     flight are answered once their lines are durable)
//  2. stop alerting (a delivery in flight ends; its election lease is
//     revoked, so another indexer takes over at once), the syslog
//     listeners and journald, then the settings watch and the tailers
//     (no new lines read); then the push inputs' doors close
//  3. drain in-flight lines to Kafka, or into the index in direct mode
//  4. flush checkpoints (only acked offsets were ever set)
//  5. stop the Kafka consumer (its offsets are committed after each
//     durable index batch, so nothing is pending)
//  6. stop retention and the free-space check, close Bleve
//  7. close etcd
func (a *Appliance) Run(ctx context.Context) (err error) {
	log := a.log.With("component", "appliance")
	cfg := a.cfg

	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return fmt.Errorf("create data dir %q: %w", cfg.DataDir, err)
	}
	if err := a.checkStartSpace(); err != nil {
		return err
	}
	a.disk = diskspace.New(diskspace.Config{Dir: cfg.DataDir, MinFree: cfg.MinFreeDisk, Effect: a.lowDiskEffect()}, a.log)

	// Settings: embedded etcd or an existing cluster.
	var closeEtcd func()
	if len(cfg.EtcdEndpoints) > 0 {
		cli, derr := settings.Dial(cfg.EtcdEndpoints, cfg.EtcdCredentialsFile)
		if derr != nil {
			return derr
		}
		a.etcdCli, closeEtcd = cli, func() { _ = cli.Close() }
	} else {
		e, serr := settings.Start(settings.EmbeddedConfig{
			Dir: filepath.Join(cfg.DataDir, "etcd"), ClientAddr: cfg.EtcdListen, CredentialsFile: cfg.EtcdCredentialsFile,
		}, a.log)
		if serr != nil {
			return serr
		}
		a.etcdCli, closeEtcd = e.Client(), e.Close
	}
	defer closeEtcd() // 7

	roots := append([]string(nil), cfg.AllowPaths...)
	collect := make([]string, 0, len(cfg.Collect))
	for _, g := range cfg.Collect {
		abs, aerr := filepath.Abs(g)
		if aerr != nil {
			return fmt.Errorf("--collect %q: %w", g, aerr)
		}
		collect = append(collect, abs)
		// Whoever starts logbox may collect what they name on its command
		// line; the API stays limited to the allowed roots plus these.
		roots = append(roots, pathpolicy.StaticDir(abs))
	}
	policy, err := pathpolicy.New(roots)
	if err != nil {
		return fmt.Errorf("--allow-paths: %w", err)
	}
	store := settings.NewStore(a.etcdCli, policy.CheckGlob, a.log)
	a.store = store
	a.searches = settings.NewSearchStore(a.etcdCli)
	a.alerts = settings.NewAlertStore(a.etcdCli)

	if a.indexes() {
		icfg := cfg.indexConfig()
		// Below the free-space floor the index writer waits: in direct
		// mode the tailers wait behind it, in Kafka mode the consumer
		// retries without committing.
		icfg.Guard = a.disk
		icfg.Templates = patterns.Fitter{} // the _pattern:"…" filter
		icfg.Masker = patterns.Fitter{}    // each line's key, for patterns, masked as it is written
		a.idx, err = index.Open(icfg, a.log)
		if err != nil {
			return err
		}
		a.localMiner = patterns.New(a.idx)
		defer func() { // 6
			if cerr := a.idx.Close(); cerr != nil && err == nil {
				err = cerr
			}
		}()
	}

	var cps *checkpoint.Store
	if a.tails() {
		cps, err = checkpoint.Open(filepath.Join(cfg.DataDir, "checkpoints.json"), time.Second, a.log)
		if err != nil {
			return err
		}
		a.cps = cps
		if err := a.ensureCollectSources(ctx, store, collect); err != nil {
			return err
		}
	}

	var kafkaTLS *tls.Config
	if !a.direct() {
		if kafkaTLS, err = kafkaauth.TLSConfig(cfg.KafkaTLSCA, cfg.KafkaTLSCert, cfg.KafkaTLSKey, cfg.KafkaTLSInsecure); err != nil {
			return fmt.Errorf("kafka TLS: %w", err)
		}
	}

	// The writer toward durable storage: the tailers', the push inputs'
	// and journald's sink (see pipeline.Batch for the contract).
	var sink pipeline.Sink
	if a.tails() {
		if a.direct() {
			a.writer = indexwriter.New(indexwriter.Config{Guard: a.disk}, a.idx, a.log)
			sink = a.writer
		} else {
			a.producer = kafkaout.New(cfg.producerConfig(kafkaTLS), a.log)
			sink = a.producer
		}
	}
	ins, err := a.openInputs(sink)
	if err != nil {
		return err
	}
	a.inputs = ins

	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		ins.abandon()
		return fmt.Errorf("listen on --http %s: %w", cfg.HTTPAddr, err)
	}
	a.addr = ln.Addr().String()
	a.started = time.Now().UTC()
	if err := a.setupFleet(kafkaTLS); err != nil {
		ins.abandon()
		ln.Close()
		return fmt.Errorf("fleet: %w", err)
	}
	met := newMetrics(a)
	// Shutdown does not end streams (live tail); closing stop does.
	stop := make(chan struct{})
	deps := a.httpDeps(store)
	deps.Stop = stop
	deps.Inputs = ins.mounts
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", met.handler())
	mux.Handle("/", httpapi.New(deps, a.log))
	// Header, read, write and idle timeouts: a slow or stalled client
	// cannot hold a connection for good (streams use per-write deadlines).
	srv := httpapi.NewServer(met.instrument(a.guard.Middleware(mux)), cfg.HTTPTimeouts)
	srv.RegisterOnShutdown(func() { close(stop) })

	g := &errgroup.Group{}
	failed := make(chan struct{})
	var failOnce sync.Once
	// Any component returning an error starts the shutdown.
	watch := func(name string, fn func(context.Context) error) func(context.Context) error {
		return func(ctx context.Context) error {
			err := fn(ctx)
			if err != nil {
				log.Error("component failed; shutting down", "stage", name, "err", err)
				failOnce.Do(func() { close(failed) })
			}
			return err
		}
	}

	// The process is this one list: each component with its name, how it
	// runs, and its place in the shutdown order (step numbers as in Run's
	// doc comment; equal steps stop in list order).
	var comps []*component
	if a.indexes() {
		comps = append(comps, &component{name: "index retention", step: 6, run: a.idx.RunRetention,
			status: a.indexStatus, collect: a.indexMetrics})
		// Every process that indexes stands for election; the one
		// elected evaluates the rules (see package alerting).
		ext := cfg.ExternalURL
		if ext == "" {
			ext = "http://" + a.addr
		}
		// In a fleet, rules read the whole fleet's lines (the router).
		var querier alerting.Querier = a.idx
		if a.router != nil {
			querier = a.router
		}
		a.alerting = alerting.New(alerting.Config{
			Etcd: a.etcdCli, Querier: querier, Decode: a.alerts.Decode, ExternalURL: ext,
			ID: cfg.Host + "/" + a.addr, Logger: a.log,
			NewPatterns: func(ctx context.Context, q string, from, to, cmpFrom, cmpTo time.Time) ([]string, error) {
				m, _ := a.miner(ctx)
				ps, err := m.NewPatterns(ctx, q, from, to, cmpFrom, cmpTo)
				out := make([]string, len(ps))
				for i, p := range ps {
					out[i] = p.Pattern
				}
				return out, err
			},
		})
		comps = append(comps, &component{name: "alerting", step: 2, run: a.alerting.Run,
			status:  func(st *Status) { as := a.alerting.Stats(); st.Alerts = &as },
			collect: a.alertMetrics})
	}
	if a.indexes() && !a.direct() {
		topics := append([]string{cfg.Topic}, cfg.KafkaIndexTopics...)
		a.consumer = kafkain.New(kafkain.Config{
			Brokers: cfg.Kafka, Topics: topics, Group: cfg.KafkaGroup, TLS: kafkaTLS,
			SASLMechanism: cfg.KafkaSASLMechanism, SASLUser: cfg.KafkaSASLUser, SASLPassword: cfg.KafkaSASLPassword,
			Partitions: int32(cfg.KafkaPartitions), InstanceID: cfg.kafkaInstanceID(),
			CoverageFile: a.coverageFile(), FillGaps: !cfg.KafkaNoFillGaps,
		}, a.indexWriter(), a.log)
		comps = append(comps, &component{name: "kafka consumer", step: 5, run: a.consumer.Run,
			status:  func(st *Status) { cs := a.consumer.Stats(); st.Consumer = &cs },
			collect: a.consumerMetrics},
			// The consumer's writer stops after it: a batch in flight
			// is written or given back before the index closes.
			&component{name: "index writer (kafka)", step: 5, run: a.consumerWriter.Run})
	}
	if a.tails() {
		if a.writer != nil {
			comps = append(comps, &component{name: "index writer", step: 3, run: a.writer.Run})
		} else {
			comps = append(comps, &component{name: "kafka producer", step: 3, run: a.producer.Run,
				status:  func(st *Status) { ps := a.producer.Stats(); st.Producer = &ps },
				collect: a.producerMetrics})
		}
		comps = append(comps, &component{name: "checkpoints", step: 4, run: cps.Run})
		comps = append(comps, ins.components()...)
		// The push inputs' doors close once their listeners stopped (the
		// HTTP server first, syslog and journald just before), before the
		// writer: a call still waiting gets its ack or the writer's nack.
		comps = append(comps, &component{name: "inputs", step: 2, run: func(ctx context.Context) error {
			<-ctx.Done()
			ins.close()
			return nil
		}, status: func(st *Status) {
			if a.cfg.pushInputs() {
				st.Inputs = ins.status()
			}
		}, collect: a.inputMetrics})
		a.tail = tailer.New(tailer.Config{
			Host: cfg.Host, Zone: cfg.Zone, ScanInterval: cfg.ScanInterval, RotateWait: cfg.RotateWait,
			PartialLineIdle: cfg.PartialLineIdle, Allowed: policy.CheckReal,
			CloseInactive: cfg.CloseInactive, MaxOpenFiles: cfg.MaxOpenFiles,
		}, sink, cps, a.log)
		comps = append(comps, &component{name: "tailer", step: 2, status: a.tailStatus, collect: a.tailMetrics, run: func(ctx context.Context) error {
			tg, tctx := errgroup.WithContext(ctx)
			tg.Go(func() error { return a.tail.Run(tctx) })
			if cfg.HostnetInterval > 0 {
				hn := hostnet.New(hostnet.Config{Host: cfg.Host, Interval: cfg.HostnetInterval}, sink, a.log)
				tg.Go(func() error { return hn.Run(tctx) })
			}
			tg.Go(func() error {
				return store.Watch(tctx, cfg.Host, func(st settings.State) {
					a.setInvalid(st.Invalid, log)
					a.tail.Apply(st.Sources)
				})
			})
			return tg.Wait()
		}})
	} else {
		// Indexers still report refused entries in status.
		comps = append(comps, &component{name: "settings watch", step: 2, run: func(ctx context.Context) error {
			return store.Watch(ctx, "", func(st settings.State) {
				a.setInvalid(st.Invalid, log)
			})
		}})
	}
	comps = append(comps, a.fleetComponents()...)
	comps = append(comps, &component{name: "disk space", step: 6, run: a.disk.Run, status: a.diskStatus, collect: a.diskMetrics})
	a.comps = comps
	for _, c := range comps {
		c.st = a.start(g, c.name, watch(c.name, c.run))
	}

	httpDone := make(chan error, 1)
	go func() {
		if serr := srv.Serve(ln); !errors.Is(serr, http.ErrServerClosed) {
			httpDone <- fmt.Errorf("http: %w", serr)
			failOnce.Do(func() { close(failed) })
			return
		}
		httpDone <- nil
	}()
	close(a.ready)
	log.Info("logbox running", "role", cfg.Role, "http", "http://"+a.addr, "mode", map[bool]string{true: "direct", false: "kafka"}[a.direct()], "data", cfg.DataDir, "host", cfg.Host)

	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case <-failed:
	}

	to := cfg.ShutdownTimeout
	sctx, cancel := context.WithTimeout(context.Background(), to)
	_ = srv.Shutdown(sctx) // 1
	cancel()
	// 2–6, in step order.
	for _, c := range slices.SortedStableFunc(slices.Values(comps), func(x, y *component) int { return x.step - y.step }) {
		if !c.st.stop(to + time.Second) {
			log.Warn("component did not stop in time; continuing shutdown", "stage", c.name)
		}
	}
	err = errors.Join(g.Wait(), <-httpDone)
	return err
}

// setInvalid records the source entries etcd holds that were refused, and
// warns once per entry and reason: a change to another source does not
// repeat the warnings of entries that stayed as they were.
func (a *Appliance) setInvalid(invalid map[string]string, log *slog.Logger) {
	a.mu.Lock()
	prev := a.invalid
	a.invalid = invalid
	a.mu.Unlock()
	for name, why := range invalid {
		if prev[name] != why {
			log.Warn("source entry in etcd refused; the source keeps its last valid settings; fix the entry", "source", name, "err", why)
		}
	}
}

// Reload applies a changed configuration (SIGHUP): it checks cfg whole
// first (an invalid one changes nothing), re-reads the credential files,
// applies at once the settings that can change while running (--collect
// globs get their sources, --retention, --retention-bytes,
// --min-free-disk; see runSettings) and returns the flags of the other
// changed settings, which need a restart.
func (a *Appliance) Reload(ctx context.Context, cfg Config) (needRestart []string, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid config: %w", err)
	}
	select {
	case <-a.ready:
	default:
		return nil, errors.New("not running yet")
	}
	if err := a.guard.Reload(); err != nil {
		return nil, err
	}
	return a.reload(ctx, cfg)
}

var nameUnsafe = regexp.MustCompile(`[^a-z0-9]+`)

// ensureCollectSources creates a source for each --collect glob that no
// source collecting on this host has yet. An agent's sources are scoped to
// its host (other boxes have other files); a single box's are not, so a
// renamed host keeps collecting. Names are readable and stable.
func (a *Appliance) ensureCollectSources(ctx context.Context, store *settings.Store, globs []string) error {
	if len(globs) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	existing, err := store.List(ctx)
	if err != nil {
		return fmt.Errorf("--collect: %w", err)
	}
	have := map[string]bool{}
	for _, s := range existing {
		if s.RunsOn(a.cfg.Host) {
			for _, p := range s.Paths {
				have[p] = true
			}
		}
	}
	for _, g := range globs {
		if have[g] {
			continue
		}
		src := pipeline.Source{Paths: []string{g}}
		key := g
		if a.cfg.Role == RoleAgent {
			src.Hosts = []string{a.cfg.Host}
			key = a.cfg.Host + "\x00" + g
		}
		sum := sha256.Sum256([]byte(key))
		base := strings.Trim(nameUnsafe.ReplaceAllString(strings.ToLower(filepath.Base(pathpolicy.StaticDir(g))+"-"+filepath.Base(g)), "-"), "-")
		if len(base) > 40 {
			base = base[:40]
		}
		src.Name = strings.Trim(base+"-"+hex.EncodeToString(sum[:3]), "-")
		if err := store.Create(ctx, src); err != nil && !errors.Is(err, settings.ErrExists) {
			return fmt.Errorf("--collect %q: %w", g, err)
		}
		a.log.Info("source created for --collect", "component", "appliance", "source", src.Name, "path", g)
	}
	return nil
}

func (a *Appliance) httpDeps(store *settings.Store) httpapi.Deps {
	d := httpapi.Deps{
		Sources: store,
		Status:  a.status,
		Ready:   a.readiness,
		Page:    ui.Handler(),
	}
	d.Searches = a.searches
	d.Alerts = a.alerts
	d.CheckQuery = index.CheckQuery
	d.HasPipe = index.HasPipe
	d.StatsColumns = index.StatsFuncColumns
	if a.idx != nil {
		d.Search = a.idx
		d.Patterns, d.PatternsPipe = a.localMiner, index.PatternsPipe
	}
	if a.router != nil {
		// Answers for the whole fleet; another indexer's own requests
		// (local=1) are answered by this index alone.
		d.Search, d.Explore = a.router, a.router
		d.Patterns, d.PatternsPipe = &fleetPatterns{a: a}, index.PatternsPipe
		if a.idx != nil {
			d.Local, d.LocalFind, d.LocalStats = a.idx, a.idx, a.localStatsState
		}
	}
	return d
}

func (a *Appliance) readiness(ctx context.Context) error {
	if err := a.diskReadiness(); err != nil {
		return err
	}
	return a.etcdHealth(ctx)
}

func (a *Appliance) etcdHealth(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := a.etcdCli.Get(ctx, "/logbox/readyz"); err != nil {
		return fmt.Errorf("etcd not reachable: %w", err)
	}
	return nil
}

// diskReadiness fails while the data dir's disk is below --min-free-disk.
func (a *Appliance) diskReadiness() error {
	if a.disk == nil {
		return nil
	}
	st := a.disk.Status()
	if !st.Low {
		return nil
	}
	return fmt.Errorf("disk low: %s free on the data dir %s, below --min-free-disk %s since %s; %s; free space there, shorten --retention or lower --min-free-disk",
		diskspace.FormatSize(st.FreeBytes), st.Dir, diskspace.FormatSize(st.MinFreeBytes), st.Since.UTC().Format(time.RFC3339), a.lowDiskEffect())
}

// indexPaused tells whether the disk state ds pauses this process's
// indexing (an agent indexes nothing; it ships on).
func (a *Appliance) indexPaused(ds diskspace.Status) bool { return ds.Low && a.indexes() }

// lowDiskEffect says what this process does below --min-free-disk.
func (a *Appliance) lowDiskEffect() string {
	if !a.indexes() {
		return "this agent keeps shipping (its data dir holds only checkpoints and etcd, which need room)"
	}
	return "indexing is paused (nothing is lost: lines wait in their files or in Kafka)"
}

// checkStartSpace refuses to start a process that indexes on a disk
// below the floor, and any process with less room than the embedded etcd
// needs for its write-ahead log (it panics when it cannot preallocate
// it), in one line that says what to do. An agent below the floor starts
// and ships (see diskReadiness).
func (a *Appliance) checkStartSpace() error {
	free, err := diskspace.Free(a.cfg.DataDir)
	if err != nil {
		return nil // the components say what is wrong with the dir
	}
	if a.indexes() && free < a.cfg.MinFreeDisk {
		return fmt.Errorf("not enough free disk space to start: the data dir %s has %s free, less than --min-free-disk %s; free space on that disk or lower --min-free-disk",
			a.cfg.DataDir, diskspace.FormatSize(free), diskspace.FormatSize(a.cfg.MinFreeDisk))
	}
	if len(a.cfg.EtcdEndpoints) == 0 && free < etcdWALRoom {
		return fmt.Errorf("not enough free disk space to start: the data dir %s has %s free, less than the %s the embedded etcd needs for its write-ahead log (--min-free-disk is %s); free space on that disk",
			a.cfg.DataDir, diskspace.FormatSize(free), diskspace.FormatSize(etcdWALRoom), diskspace.FormatSize(a.cfg.MinFreeDisk))
	}
	return nil
}

// Status is what /api/status serves.
type Status struct {
	Role  string              `json:"role"`
	Host  string              `json:"host"`
	Mode  string              `json:"mode"`
	Files []tailer.FileStatus `json:"files"`
	// Sources are the running sources: their globs, what each matches
	// (no_match: nothing), files followed, open and queued.
	Sources []tailer.SourceStatus `json:"sources"`
	// Tailing is the tailer as a whole: files open against the descriptor
	// budget, files queued for one, how changes are noticed.
	Tailing *tailer.Summary `json:"tailing,omitempty"`
	// Undelivered counts, per source and reason, lines not delivered
	// exactly as written (truncated, bytes replaced, ...).
	Undelivered    map[string]map[string]uint64 `json:"undelivered"`
	InvalidSources map[string]string            `json:"invalid_sources"`
	Producer       *kafkaout.ProducerStats      `json:"kafka_producer,omitempty"`
	Consumer       *kafkain.ConsumerStats       `json:"kafka_consumer,omitempty"`
	Index          *IndexStatus                 `json:"index,omitempty"`
	// Fleet is the fleet's indexers and partitions as this process sees
	// them (Kafka mode, on indexers and --role query).
	Fleet     *fleet.View      `json:"fleet,omitempty"`
	Retention *RetentionStatus `json:"retention,omitempty"`
	Etcd      EtcdStatus       `json:"etcd"`
	// Disk is the free space of the data dir's disk against
	// --min-free-disk.
	Disk *DiskStatus `json:"disk,omitempty"`
	// Settings are the settings in force, by flag, defaults filled in
	// and what SIGHUP applied included.
	Settings map[string]string `json:"settings"`
	// Ledger puts, per collected file and source, bytes read, acked and
	// held by the index side by side, and names acked ranges the index
	// lacks (see package ledger); absent on a process that collects
	// nothing.
	Ledger *ledger.Ledger `json:"ledger,omitempty"`

	// InvalidSearches are the saved-search entries in etcd that are
	// refused, by name, read when status is asked for (see
	// settings.SearchStore).
	InvalidSearches map[string]string `json:"invalid_searches"`
	// InvalidAlerts are the alert-rule entries in etcd that are refused,
	// by name, read likewise (see settings.AlertStore).
	InvalidAlerts map[string]string `json:"invalid_alerts"`
	// Alerts is the rule evaluator's state on a process that indexes:
	// whether it is the one evaluating (leader), its counters, and the
	// rules and notification targets in trouble.
	Alerts *alerting.Stats `json:"alerts,omitempty"`
	// Inputs are the push inputs and journald, by name: lines acked,
	// retried (a client's resend recognised), failed, refused for
	// overload, in flight, and the last error.
	Inputs map[string]InputStatus `json:"inputs,omitempty"`
}

// IndexStatus is the index's counts, with the batches waiting for the
// index writer in direct mode.
type IndexStatus struct {
	index.Stats
	Queued int `json:"queued_batches"`
}

// DiskStatus is the free-space floor's state. Paused is true while
// indexing waits for room (only on processes that index).
type DiskStatus struct {
	diskspace.Status
	Paused bool `json:"paused"`
}

// RetentionStatus is the index's retention policy.
type RetentionStatus struct {
	MaxAge    string `json:"max_age"` // "forever" when shards are kept
	MaxBytes  int64  `json:"max_bytes"`
	ShardSpan string `json:"shard_span"`
	// MaxAgeSeconds and ShardSpanSeconds are the same as numbers
	// (MaxAgeSeconds is -1 when shards are kept forever).
	MaxAgeSeconds    int64 `json:"max_age_seconds"`
	ShardSpanSeconds int64 `json:"shard_span_seconds"`
}

// EtcdStatus tells whether the settings store answers.
type EtcdStatus struct {
	Healthy bool   `json:"healthy"`
	Error   string `json:"error,omitempty"`
}

func (a *Appliance) status(ctx context.Context) any {
	st := Status{Role: a.cfg.Role, Host: a.cfg.Host, Mode: "kafka", Files: []tailer.FileStatus{}, Sources: []tailer.SourceStatus{}}
	if a.direct() {
		st.Mode = "direct"
	}
	a.mu.Lock()
	st.InvalidSources = make(map[string]string, len(a.invalid))
	for k, v := range a.invalid {
		st.InvalidSources[k] = v
	}
	a.mu.Unlock()
	st.InvalidSearches = map[string]string{}
	if a.searches != nil {
		if inv, err := a.searches.Invalid(ctx); err == nil {
			st.InvalidSearches = inv
		}
	}
	st.InvalidAlerts = map[string]string{}
	if a.alerts != nil {
		if inv, err := a.alerts.Invalid(ctx); err == nil {
			st.InvalidAlerts = inv
		}
	}
	st.Undelivered = map[string]map[string]uint64{}
	st.Settings = settingsStatus(a.effective())
	for _, c := range a.comps {
		if c.status != nil {
			c.status(&st)
		}
	}
	st.Ledger = a.ledger(st.Files)
	if err := a.etcdHealth(ctx); err != nil {
		st.Etcd.Error = err.Error()
	} else {
		st.Etcd.Healthy = true
	}
	return st
}

// tailStatus is the tailer's part of /api/status.
func (a *Appliance) tailStatus(st *Status) {
	if files := a.tail.Status(); files != nil {
		st.Files = files
	}
	if srcs := a.tail.Sources(); srcs != nil {
		st.Sources = srcs
	}
	sum := a.tail.Summary()
	st.Tailing = &sum
	st.Undelivered = a.tail.Undelivered()
}

// indexStatus is the index's part of /api/status: its counts, the
// batches waiting for its writers, and the retention in force.
func (a *Appliance) indexStatus(st *Status) {
	eff := a.effective()
	st.Index = &IndexStatus{Stats: a.idx.Stats(), Queued: a.queuedBatches()}
	st.Retention = &RetentionStatus{
		MaxAge: retentionString(eff.Retention), MaxBytes: eff.RetentionBytes, ShardSpan: durationString(eff.ShardSpan),
		MaxAgeSeconds: int64(eff.Retention / time.Second), ShardSpanSeconds: int64(eff.ShardSpan / time.Second),
	}
	if eff.Retention < 0 {
		st.Retention.MaxAgeSeconds = -1
	}
}

// diskStatus is the free-space floor's part of /api/status.
func (a *Appliance) diskStatus(st *Status) {
	ds := a.disk.Status()
	st.Disk = &DiskStatus{Status: ds, Paused: a.indexPaused(ds)}
}
