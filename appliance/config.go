package appliance

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/logbox/logbox/appliance/auth"
	"github.com/logbox/logbox/appliance/httpapi"
	"github.com/logbox/logbox/appliance/index"
	"github.com/logbox/logbox/appliance/kafkain"
	"github.com/logbox/logbox/appliance/kafkaout"
)

// Roles a process can take.
const (
	RoleAll     = "all"     // tail, ship (or index directly), consume, index, serve
	RoleAgent   = "agent"   // tail and ship to Kafka only
	RoleIndexer = "indexer" // consume from Kafka, index, serve
	RoleQuery   = "query"   // answer for the fleet's indexers, index nothing
)

// Config is everything main.go reads from flags, env and the config file.
// Packages below appliance never read flags or env themselves.
type Config struct {
	DataDir  string
	HTTPAddr string
	Role     string
	// Host is stamped on every collected line.
	Host string
	// Zone is the IANA name of this box's time zone (main.go finds it
	// from $TZ or /etc/localtime), stamped on collected lines whose
	// source names no timezone; empty: the UTC offset of time.Local.
	Zone string
	// Collect globs get a source each at start, if no source has them yet.
	Collect []string
	// AllowPaths are the roots sources may read below. The directories of
	// Collect globs are added to them.
	AllowPaths []string

	EtcdEndpoints []string
	EtcdListen    string
	// EtcdCredentialsFile holds "user:password" for etcd. Empty: for the
	// embedded etcd <data>/etcd-credentials (created at first start); for
	// EtcdEndpoints no credentials.
	EtcdCredentialsFile string

	Kafka            []string // empty: direct mode
	Topic            string
	KafkaAcks        string
	KafkaCompression string
	KafkaPartitions  int
	KafkaGroup       string
	// KafkaInstanceID is the indexer's static group membership id; empty
	// derives one from Host and the data directory (kafkain.InstanceID).
	KafkaInstanceID string
	// KafkaIndexTopics are consumed in addition to Topic.
	KafkaIndexTopics []string
	// KafkaPartitioner is hash (by host + path), random or roundrobin.
	KafkaPartitioner     string
	KafkaMaxMessageBytes int
	KafkaTLSCA           string
	KafkaTLSCert         string
	KafkaTLSKey          string
	KafkaTLSInsecure     bool
	KafkaSASLMechanism   string
	KafkaSASLUser        string
	KafkaSASLPassword    string

	// AuthTokenFile and AuthHtpasswd turn authentication on.
	AuthTokenFile string
	AuthHtpasswd  string
	// InsecureNoAuth allows serving without auth on a non-loopback address.
	InsecureNoAuth bool
	// HTTPTimeouts bound slow clients of the HTTP server (zero fields:
	// httpapi's defaults).
	HTTPTimeouts httpapi.ServerTimeouts
	// LedgerGrace is how long, in Kafka mode, acked bytes missing from the
	// index count as in flight before the ledger calls them a gap (0: a
	// minute). No flag sets it; tests do.
	LedgerGrace time.Duration

	// Index layout and retention (see index.Config).
	ShardSpan        time.Duration
	Retention        time.Duration // negative keeps shards forever
	RetentionBytes   int64
	MaxFieldsPerLine int
	MaxFieldNames    int

	// ExternalURL is the page's address as people reach it (links in
	// alert notifications); empty: http://<the HTTP listen address>.
	ExternalURL string
	// AdvertiseURL is how the fleet's other processes reach this one's
	// API (an indexer registers it); empty: http://<the HTTP address>.
	AdvertiseURL string
	// KafkaNoFillGaps turns off reading from Kafka the older offsets of a
	// partition an indexer takes over without holding them.
	KafkaNoFillGaps bool
	// HostnetInterval samples /proc/net into records this often; 0 = off.
	HostnetInterval time.Duration

	// Push inputs (each off when empty or false); they run on processes
	// that tail (roles all and agent) and hand their lines to the same
	// writer as the tailer. See appliance/ingest and appliance/inputs.
	//
	// SyslogTCP, SyslogUDP and SyslogTLS are listen addresses; SyslogTLS
	// needs SyslogTLSCert and SyslogTLSKey, and with SyslogTLSClientCA
	// asks clients for a certificate signed by it.
	SyslogTCP, SyslogUDP, SyslogTLS                string
	SyslogTLSCert, SyslogTLSKey, SyslogTLSClientCA string
	// OTLP serves POST /v1/logs, LokiPush POST /loki/api/v1/push and
	// ESBulk the Elasticsearch bulk API (/_bulk, and all of it under
	// /es/) on the HTTP port, behind its auth.
	OTLP, LokiPush, ESBulk bool
	// Journald follows a journal: "local" (the system journal), a
	// directory or a journal file.
	Journald string
	// InputMaxBody caps a push request's body, compressed and
	// decompressed (default 16 MiB); InputMaxInFlight caps the lines one
	// input holds accepted and not yet durable (default 200000): past
	// it, clients are answered 429.
	InputMaxBody     int64
	InputMaxInFlight int
	// InputRetryIDs caps the identities each push input remembers for
	// recognising a client's retry (default 2000000, about 50 B each);
	// they are kept 15 minutes at most.
	InputRetryIDs int

	// ScanInterval is how often source globs are re-expanded.
	ScanInterval time.Duration
	// RotateWait is how long a rotated or deleted file is still read after
	// its last write.
	RotateWait time.Duration
	// PartialLineIdle ships a last line without newline after this long;
	// 0 waits for the newline.
	PartialLineIdle time.Duration
	// CloseInactive closes a followed file after this long without new
	// data; it is opened again when it changes.
	CloseInactive time.Duration
	// MaxOpenFiles caps the files the tailer keeps open; 0 derives it from
	// RLIMIT_NOFILE (tailer.FileDescriptorBudget).
	MaxOpenFiles int
	// ShutdownTimeout bounds each stage of shutdown.
	ShutdownTimeout time.Duration

	// MinFreeDisk is the free-space floor of the data dir's disk, in
	// bytes: below it indexing pauses (nothing is lost) and /readyz
	// answers 503; a start below it fails. 0 turns the floor off.
	MinFreeDisk int64
}

// DefaultMinFreeDisk is the default --min-free-disk: room for the work
// that cannot be paused halfway. Bleve merges a shard's segments by
// writing the merged segment before deleting its parts, so it needs about
// as much free space as the segments it merges (a few hundred MiB for a
// day of a busy box); etcd preallocates each 64 MiB WAL segment and grows
// its database; and in-flight batches and checkpoints finish. 1 GiB covers
// these with margin; VictoriaLogs' -storage.minFreeDiskSpaceBytes (10 MB)
// is lower because its merges are checked against free space themselves.
const DefaultMinFreeDisk = 1 << 30

// etcdWALRoom is what the embedded etcd needs free to start: it
// preallocates its first write-ahead log segment (64 MB) and panics when
// it cannot, and at once preallocates the next one (another 64 MB; when
// that fails, it exits at the first segment cut).
const etcdWALRoom = 128 << 20

// DefaultConfig is the embedded, single-box default: direct mode, embedded
// etcd, everything under ./logbox-data.
func DefaultConfig() Config {
	host, _ := os.Hostname()
	return Config{
		DataDir:              "./logbox-data",
		HTTPAddr:             "127.0.0.1:7070",
		Role:                 RoleAll,
		Host:                 host,
		AllowPaths:           []string{"/var/log"},
		EtcdListen:           "127.0.0.1:2379",
		Topic:                "logbox",
		KafkaAcks:            "all",
		KafkaCompression:     "none",
		KafkaPartitions:      3,
		KafkaGroup:           "logbox-indexer",
		KafkaPartitioner:     "hash",
		KafkaMaxMessageBytes: 1000000,
		ScanInterval:         time.Second,
		RotateWait:           2 * time.Second,
		CloseInactive:        5 * time.Minute,
		ShutdownTimeout:      5 * time.Second,
		MinFreeDisk:          DefaultMinFreeDisk,
	}
}

// Validate reports every problem at once, naming the flag.
func (c *Config) Validate() error {
	var errs []error
	if c.DataDir == "" {
		errs = append(errs, errors.New("--data: must not be empty"))
	}
	if c.HTTPAddr == "" {
		errs = append(errs, errors.New("--http: must not be empty"))
	} else if err := auth.CheckBind(c.HTTPAddr, c.authConfig()); err != nil {
		errs = append(errs, err)
	}
	switch c.Role {
	case RoleAll:
	case RoleAgent, RoleIndexer, RoleQuery:
		if c.Role == RoleQuery && len(c.Collect) > 0 {
			errs = append(errs, errors.New("--collect: a --role query process collects nothing; give it to an agent"))
		}
		if len(c.Kafka) == 0 {
			errs = append(errs, fmt.Errorf("--role %s needs --kafka: agents, indexers and query processes meet only through Kafka", c.Role))
		}
	default:
		errs = append(errs, fmt.Errorf("--role: %q is not one of all, agent, indexer, query", c.Role))
	}
	if strings.TrimSpace(c.Host) == "" {
		errs = append(errs, errors.New("--host: must not be empty"))
	}
	if len(c.EtcdEndpoints) == 0 && c.EtcdListen == "" {
		errs = append(errs, errors.New("--etcd-listen: must not be empty when --etcd-endpoints is not given"))
	}
	for _, p := range c.AllowPaths {
		if !filepath.IsAbs(p) {
			errs = append(errs, fmt.Errorf("--allow-paths: %q must be an absolute path", p))
		}
	}
	for _, g := range c.Collect {
		if _, err := filepath.Match(g, ""); err != nil {
			errs = append(errs, fmt.Errorf("--collect: %q is not a valid glob: %v", g, err))
		}
	}
	if len(c.Kafka) > 0 && c.Topic == "" {
		errs = append(errs, errors.New("--topic: must not be empty"))
	}
	if len(c.Kafka) > 0 {
		kc := c.producerConfig(nil)
		if err := kc.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	if c.KafkaInstanceID != "" {
		if err := kafkain.ValidInstanceID(c.KafkaInstanceID); err != nil {
			errs = append(errs, fmt.Errorf("--kafka-instance-id: %w", err))
		}
	}
	if c.ScanInterval <= 0 {
		errs = append(errs, errors.New("--scan-interval: must be positive"))
	}
	if c.RotateWait <= 0 {
		errs = append(errs, errors.New("--rotate-wait: must be positive"))
	}
	if err := c.indexConfig().Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.AdvertiseURL != "" {
		if u, err := url.Parse(c.AdvertiseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("--advertise-url: %q is not an http(s) URL", c.AdvertiseURL))
		}
	}
	if c.ExternalURL != "" {
		if u, err := url.Parse(c.ExternalURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("--external-url: %q is not an http(s) URL", c.ExternalURL))
		}
	}
	errs = append(errs, c.validateInputs()...)
	if c.HostnetInterval < 0 {
		errs = append(errs, errors.New("--hostnet-interval: must not be negative (0 turns it off)"))
	}
	if c.PartialLineIdle < 0 {
		errs = append(errs, errors.New("--partial-line-idle: must not be negative"))
	}
	if c.MinFreeDisk < 0 {
		errs = append(errs, errors.New("--min-free-disk: must not be negative (0 turns the floor off)"))
	}
	if c.CloseInactive <= 0 {
		errs = append(errs, errors.New("--close-inactive: must be positive"))
	}
	if c.MaxOpenFiles < 0 {
		errs = append(errs, errors.New("--max-open-files: must not be negative (0 derives it from the descriptor limit)"))
	}
	return errors.Join(errs...)
}

// producerConfig is the Kafka producer's part of the config.
func (c *Config) producerConfig(tlsCfg *tls.Config) kafkaout.Config {
	return kafkaout.Config{
		Brokers: c.Kafka, Topic: c.Topic, Acks: c.KafkaAcks,
		Compression: c.KafkaCompression, Partitions: int32(c.KafkaPartitions),
		DrainTimeout: c.ShutdownTimeout, Partitioner: c.KafkaPartitioner,
		MaxMessageBytes: c.KafkaMaxMessageBytes, TLS: tlsCfg,
		SASLMechanism: c.KafkaSASLMechanism, SASLUser: c.KafkaSASLUser, SASLPassword: c.KafkaSASLPassword,
	}
}

// kafkaInstanceID is --kafka-instance-id, or else the one derived from
// --host and the data directory: stable across restarts of this process,
// so a restarted indexer takes its partitions back without a rebalance.
func (c *Config) kafkaInstanceID() string {
	if c.KafkaInstanceID != "" {
		return c.KafkaInstanceID
	}
	dir, err := filepath.Abs(c.DataDir)
	if err == nil {
		// The same directory reached through a symlink is the same process.
		if real, rerr := filepath.EvalSymlinks(dir); rerr == nil {
			dir = real
		}
	}
	return kafkain.InstanceID(c.Host, dir)
}

func (c *Config) authConfig() auth.Config {
	return auth.Config{TokenFile: c.AuthTokenFile, HtpasswdFile: c.AuthHtpasswd, InsecureNoAuth: c.InsecureNoAuth}
}

// indexConfig is the index's part of the config.
func (c *Config) indexConfig() index.Config {
	return index.Config{
		Dir:       filepath.Join(c.DataDir, "index"),
		ShardSpan: c.ShardSpan, Retention: c.Retention, RetentionBytes: c.RetentionBytes,
		MaxFieldsPerLine: c.MaxFieldsPerLine, MaxFieldNames: c.MaxFieldNames,
	}
}

// pushInputs tells whether any push or journal input is on.
func (c Config) pushInputs() bool {
	return c.SyslogTCP != "" || c.SyslogUDP != "" || c.SyslogTLS != "" || c.OTLP || c.LokiPush || c.ESBulk || c.Journald != ""
}

func (c Config) validateInputs() []error {
	var errs []error
	if c.pushInputs() && (c.Role == RoleIndexer || c.Role == RoleQuery) {
		errs = append(errs, fmt.Errorf("--syslog-*, --otlp, --loki-push, --elasticsearch-bulk, --journald: inputs run where lines are collected (--role all or agent), not on --role %s", c.Role))
	}
	if c.SyslogTLS != "" && (c.SyslogTLSCert == "" || c.SyslogTLSKey == "") {
		errs = append(errs, errors.New("--syslog-tls needs --syslog-tls-cert and --syslog-tls-key"))
	}
	if c.SyslogTLS == "" && (c.SyslogTLSCert != "" || c.SyslogTLSKey != "" || c.SyslogTLSClientCA != "") {
		errs = append(errs, errors.New("--syslog-tls-cert, --syslog-tls-key, --syslog-tls-client-ca: set --syslog-tls too"))
	}
	if c.InputMaxBody < 0 {
		errs = append(errs, errors.New("--input-max-body: must not be negative"))
	}
	if c.InputRetryIDs < 0 {
		errs = append(errs, errors.New("--input-retry-ids: must not be negative"))
	}
	if c.InputMaxInFlight < 0 {
		errs = append(errs, errors.New("--input-max-in-flight: must not be negative"))
	}
	return errs
}
