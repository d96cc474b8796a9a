package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/logbox/logbox/appliance"
	"github.com/logbox/logbox/appliance/diskspace"
)

// listFlag is a repeatable flag; each use may also hold a comma-separated list.
type listFlag struct{ vals *[]string }

func (l listFlag) String() string {
	if l.vals == nil {
		return ""
	}
	return strings.Join(*l.vals, ",")
}

func (l listFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l.vals = append(*l.vals, s)
		}
	}
	return nil
}

// dayDuration is a duration flag that also takes days ("7d", "1d12h").
type dayDuration struct{ d *time.Duration }

func (f dayDuration) String() string {
	if f.d == nil {
		return ""
	}
	if *f.d%(24*time.Hour) == 0 && *f.d != 0 {
		return fmt.Sprintf("%dd", *f.d/(24*time.Hour))
	}
	return f.d.String()
}

func (f dayDuration) Set(v string) error {
	days := time.Duration(0)
	if i := strings.Index(v, "d"); i > 0 {
		n, err := strconv.Atoi(strings.TrimPrefix(v[:i], "-"))
		if err != nil {
			return fmt.Errorf("%q: want a duration like 7d, 36h or 1d12h", v)
		}
		days = time.Duration(n) * 24 * time.Hour
		if strings.HasPrefix(v, "-") {
			days = -days
		}
		v = v[i+1:]
		if v == "" {
			*f.d = days
			return nil
		}
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return fmt.Errorf("%q: want a duration like 7d, 36h or 1d12h", v)
	}
	if days < 0 {
		d = -d
	}
	*f.d = days + d
	return nil
}

// sizeFlag is a byte size flag that also takes units ("512MiB", "2GiB").
// negBool is a boolean flag, default true, stored as its negation (so
// the zero Config keeps the default): --kafka-fill-gaps=false sets *off.
type negBool struct{ off *bool }

func (f negBool) IsBoolFlag() bool { return true }

func (f negBool) String() string {
	if f.off == nil || !*f.off {
		return "true"
	}
	return "false"
}

func (f negBool) Set(v string) error {
	b, err := strconv.ParseBool(v)
	if err != nil {
		return fmt.Errorf("%q: want true or false", v)
	}
	*f.off = !b
	return nil
}

// journaldFlag is --journald: alone it follows the local journal
// ("local"), --journald=PATH a journal directory or file.
type journaldFlag struct{ s *string }

func (f journaldFlag) IsBoolFlag() bool { return true }

func (f journaldFlag) String() string {
	if f.s == nil {
		return ""
	}
	return *f.s
}

func (f journaldFlag) Set(v string) error {
	switch v {
	case "true":
		*f.s = "local"
	case "false", "":
		*f.s = ""
	default:
		*f.s = v
	}
	return nil
}

type sizeFlag struct{ n *int64 }

func (f sizeFlag) String() string {
	if f.n == nil {
		return ""
	}
	return diskspace.FormatSize(*f.n)
}

func (f sizeFlag) Set(v string) error {
	n, err := diskspace.ParseSize(v)
	if err != nil {
		return err
	}
	*f.n = n
	return nil
}

type runConfig struct {
	appliance.Config
	logLevel slog.Level
}

var newAppliance = appliance.New

// loadRunConfig fills the config from, in order of precedence: flags, env
// LOGBOX_<NAME>, the YAML file of --config, and the defaults.
func loadRunConfig(args []string, stderr io.Writer) (runConfig, error) {
	rc := runConfig{Config: appliance.DefaultConfig()}
	c := &rc.Config
	fs := flag.NewFlagSet("logbox run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var configFile, logLevel string
	fs.StringVar(&configFile, "config", "", "YAML file with any of these settings (keys are the flag names)")
	fs.StringVar(&c.DataDir, "data", c.DataDir, "directory for all state: etcd, checkpoints, index")
	fs.StringVar(&c.HTTPAddr, "http", c.HTTPAddr, "address of the search page and API")
	fs.Var(listFlag{&c.Kafka}, "kafka", "comma-separated Kafka brokers; empty = direct mode (no Kafka)")
	fs.StringVar(&c.Topic, "topic", c.Topic, "default topic for sources that name none")
	fs.Var(listFlag{&c.Collect}, "collect", "glob to collect; creates a source for it at start if absent (repeatable)")
	fs.StringVar(&c.Role, "role", c.Role, "all | agent (tail+ship) | indexer (consume+index+serve) | query (answer for the fleet, index nothing)")
	fs.Var(listFlag{&c.EtcdEndpoints}, "etcd-endpoints", "use this etcd cluster instead of the embedded one")
	fs.StringVar(&c.EtcdListen, "etcd-listen", c.EtcdListen, "client address of the embedded etcd")
	fs.StringVar(&c.EtcdCredentialsFile, "etcd-credentials-file", "", "etcd user:password file (what etcdctl --user takes); default <data>/etcd-credentials for the embedded etcd, created at first start; with --etcd-endpoints, the file of that etcd")
	fs.StringVar(&c.Host, "host", c.Host, "host name stamped on every collected line")
	allow := listFlag{&c.AllowPaths}
	fs.Var(allow, "allow-paths", "roots sources may read below (default /var/log; --collect dirs are added)")
	fs.StringVar(&c.KafkaAcks, "kafka-acks", c.KafkaAcks, "producer acks: 0 (none), 1 (leader), all (every in-sync replica, idempotent)")
	fs.StringVar(&c.KafkaCompression, "kafka-compression", c.KafkaCompression, "none | gzip | snappy | lz4 | zstd")
	fs.IntVar(&c.KafkaPartitions, "kafka-partitions", c.KafkaPartitions, "partitions of topics logbox creates")
	fs.StringVar(&c.KafkaGroup, "kafka-group", c.KafkaGroup, "consumer group of the indexers")
	fs.StringVar(&c.KafkaInstanceID, "kafka-instance-id", "", "static consumer group membership id of this indexer, unique in the group (default: logbox-<host>-<hash of the absolute --data dir>)")
	fs.Var(listFlag{&c.KafkaIndexTopics}, "kafka-index-topics", "extra topics to consume and index")
	fs.StringVar(&c.KafkaPartitioner, "kafka-partitioner", c.KafkaPartitioner, "hash (one file stays in order in one partition) | random | roundrobin")
	fs.IntVar(&c.KafkaMaxMessageBytes, "kafka-max-message-bytes", c.KafkaMaxMessageBytes, "largest event sent; longer lines are cut and flagged (match the broker's message.max.bytes)")
	fs.StringVar(&c.KafkaTLSCA, "kafka-tls-ca", "", "PEM CA bundle to verify the brokers (turns TLS on)")
	fs.StringVar(&c.KafkaTLSCert, "kafka-tls-cert", "", "PEM client certificate (with --kafka-tls-key)")
	fs.StringVar(&c.KafkaTLSKey, "kafka-tls-key", "", "PEM client key")
	fs.BoolVar(&c.KafkaTLSInsecure, "kafka-tls-insecure", false, "UNSAFE: use TLS without verifying the brokers' certificates")
	fs.StringVar(&c.KafkaSASLMechanism, "kafka-sasl-mechanism", "", "PLAIN | SCRAM-SHA-256 | SCRAM-SHA-512 (empty: no SASL)")
	fs.StringVar(&c.KafkaSASLUser, "kafka-sasl-user", "", "SASL user")
	var saslPasswordFile string
	fs.StringVar(&saslPasswordFile, "kafka-sasl-password-file", "", "file holding the SASL password (or set env LOGBOX_KAFKA_SASL_PASSWORD)")
	fs.DurationVar(&c.ScanInterval, "scan-interval", c.ScanInterval, "how often source globs are checked for new files")
	fs.DurationVar(&c.RotateWait, "rotate-wait", c.RotateWait, "how long a rotated or deleted file is still read after its last write")
	fs.DurationVar(&c.PartialLineIdle, "partial-line-idle", c.PartialLineIdle, "ship a last line without newline after this idle time (0: wait for the newline)")
	fs.DurationVar(&c.CloseInactive, "close-inactive", c.CloseInactive, "close a followed file after this long without new data; it is opened again, at its place, when it changes")
	fs.IntVar(&c.MaxOpenFiles, "max-open-files", c.MaxOpenFiles, "most files the tailer keeps open at once; more wait their turn (0: the descriptor limit minus a reserve for the index, etcd and HTTP)")
	fs.DurationVar(&c.ShardSpan, "shard-span", c.ShardSpan, "event time one index shard holds (whole minutes)")
	fs.Var(dayDuration{&c.Retention}, "retention", "drop index shards older than this (e.g. 7d, 36h; negative keeps forever)")
	fs.Int64Var(&c.RetentionBytes, "retention-bytes", 0, "drop the oldest index shards while all take more bytes than this (0: no size limit)")
	fs.Var(sizeFlag{&c.MinFreeDisk}, "min-free-disk", "free-space floor of the data dir's disk, a `SIZE` in bytes or with a unit (512MiB, 2GiB): below it indexing pauses (nothing lost) and /readyz answers 503; 0 turns it off")
	fs.IntVar(&c.MaxFieldsPerLine, "max-fields-per-line", c.MaxFieldsPerLine, "parsed JSON/logfmt fields indexed per line; the rest are dropped and flagged")
	fs.IntVar(&c.MaxFieldNames, "max-field-names", c.MaxFieldNames, "distinct field names one index shard takes (no mapping explosion)")
	fs.StringVar(&c.AdvertiseURL, "advertise-url", "", "how the fleet's other processes reach this one's API, e.g. http://10.0.0.5:7070 (default: http://<--http address>); an indexer registers it in etcd")
	fs.Var(negBool{&c.KafkaNoFillGaps}, "kafka-fill-gaps", "an indexer that takes over a partition reads its older offsets it lacks from Kafka (default true)")
	fs.StringVar(&c.ExternalURL, "external-url", "", "the page's address as people reach it, for links in alert notifications (default: http://<--http address>)")
	fs.StringVar(&c.SyslogTCP, "syslog-tcp", "", "receive syslog (RFC 5424/3164, octet-counted or LF-framed) over TCP on this `ADDR`, e.g. :5514")
	fs.StringVar(&c.SyslogUDP, "syslog-udp", "", "receive syslog over UDP on this `ADDR` (UDP cannot be acknowledged: lost datagrams are lost)")
	fs.StringVar(&c.SyslogTLS, "syslog-tls", "", "receive syslog over TLS (RFC 5425) on this `ADDR`; needs --syslog-tls-cert and --syslog-tls-key")
	fs.StringVar(&c.SyslogTLSCert, "syslog-tls-cert", "", "PEM certificate of the syslog TLS listener")
	fs.StringVar(&c.SyslogTLSKey, "syslog-tls-key", "", "PEM key of the syslog TLS listener")
	fs.StringVar(&c.SyslogTLSClientCA, "syslog-tls-client-ca", "", "PEM CA bundle: syslog TLS clients must present a certificate signed by it")
	fs.BoolVar(&c.OTLP, "otlp", false, "accept OTLP/HTTP logs on POST /v1/logs of the --http port (protobuf or JSON, gzip)")
	fs.BoolVar(&c.LokiPush, "loki-push", false, "accept Loki pushes on POST /loki/api/v1/push of the --http port (snappy protobuf or JSON)")
	fs.BoolVar(&c.ESBulk, "elasticsearch-bulk", false, "accept Elasticsearch bulk requests on the --http port: POST /_bulk, /{index}/_bulk, and the API clients need under /es/")
	fs.Var(journaldFlag{&c.Journald}, "journald", "follow the local systemd journal; --journald=DIR or =FILE follows that journal directory or file instead; its cursor is the checkpoint")
	fs.Var(sizeFlag{&c.InputMaxBody}, "input-max-body", "largest push request body, compressed and decompressed (`SIZE`, default 16MiB)")
	fs.IntVar(&c.InputRetryIDs, "input-retry-ids", 0, "identities each push input remembers to recognise a client's retry, for 15 minutes at most (default 2000000, about 50 B each)")
	fs.IntVar(&c.InputMaxInFlight, "input-max-in-flight", 0, "lines one push input holds before they are durable; past it clients get 429 (default 200000)")
	fs.DurationVar(&c.HostnetInterval, "hostnet-interval", 0, "sample host network health (/proc/net/dev drops and errors, TCP states) into searchable records this often; 0 = off")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", c.ShutdownTimeout, "bound for each shutdown step")
	fs.StringVar(&logLevel, "log-level", "info", "debug | info | warn | error")
	fs.StringVar(&c.AuthTokenFile, "auth-token-file", "", "file of bearer tokens, one per line; turns authentication on")
	fs.StringVar(&c.AuthHtpasswd, "auth-htpasswd", "", "bcrypt htpasswd file (htpasswd -B) for basic auth; turns authentication on")
	fs.BoolVar(&c.InsecureNoAuth, "insecure-no-auth", false, "UNSAFE: serve a non-loopback --http address without authentication")
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: logbox [run] [flags]\n\nEvery flag can also be set as env LOGBOX_<NAME> (e.g. LOGBOX_KAFKA_ACKS)\nor as a key in the --config YAML file; flag > env > file > default.\n\n")
		fs.PrintDefaults()
	}
	// The default list is replaced, not appended to, when set.
	defaultAllow := c.AllowPaths
	c.AllowPaths = nil
	if err := fs.Parse(args); err != nil {
		return rc, err
	}
	if fs.NArg() > 0 {
		return rc, fmt.Errorf("unexpected arguments %q (see --help)", fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if !set["config"] {
		configFile = os.Getenv("LOGBOX_CONFIG")
	}
	var file map[string]any
	if configFile != "" {
		b, err := os.ReadFile(configFile)
		if err != nil {
			return rc, fmt.Errorf("--config: %w", err)
		}
		if err := yaml.Unmarshal(b, &file); err != nil {
			return rc, fmt.Errorf("--config %q: %w", configFile, err)
		}
		var unknown []string
		for k := range file {
			if fs.Lookup(k) == nil || k == "config" {
				unknown = append(unknown, k)
			}
		}
		if len(unknown) > 0 {
			sort.Strings(unknown)
			return rc, fmt.Errorf("--config %q: unknown keys %v", configFile, unknown)
		}
	}
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || f.Name == "config" {
			return
		}
		env := "LOGBOX_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(env); ok {
			if err := f.Value.Set(v); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", env, err))
			}
			return
		}
		v, ok := file[f.Name]
		if !ok {
			return
		}
		vals := []any{v}
		if l, isList := v.([]any); isList {
			vals = l
		}
		for _, one := range vals {
			if err := f.Value.Set(fmt.Sprint(one)); err != nil {
				errs = append(errs, fmt.Errorf("%s in %s: %w", f.Name, configFile, err))
			}
		}
	})
	if err := errors.Join(errs...); err != nil {
		return rc, err
	}
	if len(c.AllowPaths) == 0 {
		c.AllowPaths = defaultAllow
	}
	// The password is never a flag, so it does not show in ps.
	c.KafkaSASLPassword = os.Getenv("LOGBOX_KAFKA_SASL_PASSWORD")
	tz, hasTZ := os.LookupEnv("TZ")
	c.Zone = localZoneName(tz, hasTZ, "/etc/localtime")
	if saslPasswordFile != "" {
		b, err := os.ReadFile(saslPasswordFile)
		if err != nil {
			return rc, fmt.Errorf("--kafka-sasl-password-file: %w", err)
		}
		c.KafkaSASLPassword = strings.TrimSpace(string(b))
	}
	if err := rc.logLevel.UnmarshalText([]byte(logLevel)); err != nil {
		return rc, fmt.Errorf("--log-level: %w", err)
	}
	return rc, nil
}
