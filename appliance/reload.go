package appliance

import (
	"context"
	"fmt"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/logbox/logbox/appliance/diskspace"
)

// runSetting is one field of Config: the flag that sets it, and what
// SIGHUP does when it changed. Every field of Config has exactly one
// entry (TestRunSettingsCoverConfig), so a new setting cannot be
// forgotten by Reload or by the settings status shows.
type runSetting struct {
	field string // Config field name
	// flag is the flag name, as in --help; empty for a field that no
	// flag sets (set by tests and embedders only, never by SIGHUP).
	flag string
	// apply applies the setting of cfg at once (SIGHUP); nil: the
	// setting is named as needing a restart.
	apply func(a *Appliance, ctx context.Context, cfg Config) error
	// secret settings are shown only as set or not.
	secret bool
}

// runSettings lists every Config field, in the order of --help.
var runSettings = []runSetting{
	{field: "DataDir", flag: "data"},
	{field: "HTTPAddr", flag: "http"},
	{field: "Kafka", flag: "kafka"},
	{field: "Topic", flag: "topic"},
	{field: "Collect", flag: "collect", apply: (*Appliance).applyCollect},
	{field: "Role", flag: "role"},
	{field: "EtcdEndpoints", flag: "etcd-endpoints"},
	{field: "EtcdListen", flag: "etcd-listen"},
	{field: "Host", flag: "host"},
	{field: "AllowPaths", flag: "allow-paths"},
	{field: "KafkaAcks", flag: "kafka-acks"},
	{field: "KafkaCompression", flag: "kafka-compression"},
	{field: "KafkaPartitions", flag: "kafka-partitions"},
	{field: "KafkaGroup", flag: "kafka-group"},
	{field: "KafkaIndexTopics", flag: "kafka-index-topics"},
	{field: "KafkaPartitioner", flag: "kafka-partitioner"},
	{field: "KafkaMaxMessageBytes", flag: "kafka-max-message-bytes"},
	{field: "KafkaTLSCA", flag: "kafka-tls-ca"},
	{field: "KafkaTLSCert", flag: "kafka-tls-cert"},
	{field: "KafkaTLSKey", flag: "kafka-tls-key"},
	{field: "KafkaTLSInsecure", flag: "kafka-tls-insecure"},
	{field: "KafkaSASLMechanism", flag: "kafka-sasl-mechanism"},
	{field: "KafkaSASLUser", flag: "kafka-sasl-user"},
	{field: "KafkaSASLPassword", flag: "kafka-sasl-password-file", secret: true},
	{field: "ScanInterval", flag: "scan-interval"},
	{field: "RotateWait", flag: "rotate-wait"},
	{field: "PartialLineIdle", flag: "partial-line-idle"},
	{field: "ShardSpan", flag: "shard-span"},
	{field: "Retention", flag: "retention", apply: (*Appliance).applyRetention},
	{field: "RetentionBytes", flag: "retention-bytes", apply: (*Appliance).applyRetention},
	{field: "MaxFieldsPerLine", flag: "max-fields-per-line"},
	{field: "MaxFieldNames", flag: "max-field-names"},
	{field: "HostnetInterval", flag: "hostnet-interval"},
	{field: "ExternalURL", flag: "external-url"},
	{field: "AdvertiseURL", flag: "advertise-url"},
	{field: "KafkaNoFillGaps", flag: "kafka-fill-gaps"},
	{field: "SyslogTCP", flag: "syslog-tcp"},
	{field: "SyslogUDP", flag: "syslog-udp"},
	{field: "SyslogTLS", flag: "syslog-tls"},
	{field: "SyslogTLSCert", flag: "syslog-tls-cert"},
	{field: "SyslogTLSKey", flag: "syslog-tls-key"},
	{field: "SyslogTLSClientCA", flag: "syslog-tls-client-ca"},
	{field: "OTLP", flag: "otlp"},
	{field: "LokiPush", flag: "loki-push"},
	{field: "ESBulk", flag: "elasticsearch-bulk"},
	{field: "Journald", flag: "journald"},
	{field: "InputMaxBody", flag: "input-max-body"},
	{field: "InputMaxInFlight", flag: "input-max-in-flight"},
	{field: "InputRetryIDs", flag: "input-retry-ids"},
	{field: "ShutdownTimeout", flag: "shutdown-timeout"},
	// The credential files are re-read on every SIGHUP; another path
	// needs a restart.
	{field: "AuthTokenFile", flag: "auth-token-file"},
	{field: "AuthHtpasswd", flag: "auth-htpasswd"},
	{field: "InsecureNoAuth", flag: "insecure-no-auth"},
	{field: "MinFreeDisk", flag: "min-free-disk", apply: (*Appliance).applyMinFreeDisk},
	{field: "EtcdCredentialsFile", flag: "etcd-credentials-file"},
	{field: "KafkaInstanceID", flag: "kafka-instance-id"},
	{field: "CloseInactive", flag: "close-inactive"},
	{field: "MaxOpenFiles", flag: "max-open-files"},
	{field: "HTTPTimeouts"},
	{field: "LedgerGrace"},
	{field: "Zone"}, // the box's zone, found at start ($TZ, /etc/localtime)
}

// SettingFlags returns the flag of every Config field (main's tests check
// that every flag it defines is one of them).
func SettingFlags() []string {
	out := make([]string, 0, len(runSettings))
	for _, s := range runSettings {
		if s.flag != "" {
			out = append(out, s.flag)
		}
	}
	return out
}

// reload compares cfg with the running settings field by field, applies
// the changes that can apply at once and returns the flags of the
// changed settings that need a restart. cfg is valid.
func (a *Appliance) reload(ctx context.Context, cfg Config) (needRestart []string, err error) {
	a.mu.Lock()
	old := a.live
	a.mu.Unlock()
	ov, nv := reflect.ValueOf(old), reflect.ValueOf(cfg)
	for _, s := range runSettings {
		changed := !reflect.DeepEqual(ov.FieldByName(s.field).Interface(), nv.FieldByName(s.field).Interface())
		if s.field == "Collect" {
			// Every SIGHUP makes sure each --collect glob has its source
			// (one may have been deleted meanwhile).
			changed = true
		}
		if !changed || s.flag == "" {
			continue
		}
		if s.apply == nil {
			needRestart = append(needRestart, s.flag)
			continue
		}
		if err := s.apply(a, ctx, cfg); err != nil {
			return nil, err
		}
	}
	a.mu.Lock()
	for _, s := range runSettings {
		if s.apply != nil {
			reflect.ValueOf(&a.live).Elem().FieldByName(s.field).Set(nv.FieldByName(s.field))
		}
	}
	a.mu.Unlock()
	return needRestart, nil
}

func (a *Appliance) applyCollect(ctx context.Context, cfg Config) error {
	if !a.tails() {
		return nil
	}
	var collect []string
	for _, g := range cfg.Collect {
		abs, err := filepath.Abs(g)
		if err != nil {
			return fmt.Errorf("--collect %q: %w", g, err)
		}
		collect = append(collect, abs)
	}
	return a.ensureCollectSources(ctx, a.store, collect)
}

func (a *Appliance) applyRetention(_ context.Context, cfg Config) error {
	if a.idx == nil {
		return nil
	}
	if err := a.idx.SetRetention(cfg.Retention, cfg.RetentionBytes); err != nil {
		return fmt.Errorf("--retention, --retention-bytes: %w", err)
	}
	return nil
}

func (a *Appliance) applyMinFreeDisk(_ context.Context, cfg Config) error {
	if a.disk != nil {
		a.disk.SetMinFree(cfg.MinFreeDisk)
	}
	return nil
}

// effective returns the settings in force: those of the start with what
// SIGHUP applied since, and the defaults of unset ones filled in (the
// index's shard span, retention and field limits).
func (a *Appliance) effective() Config {
	a.mu.Lock()
	c := a.live
	a.mu.Unlock()
	ic := c.indexConfig().Effective()
	c.ShardSpan, c.Retention = ic.ShardSpan, ic.Retention
	c.MaxFieldsPerLine, c.MaxFieldNames = ic.MaxFieldsPerLine, ic.MaxFieldNames
	if a.idx != nil {
		c.Retention, c.RetentionBytes = a.idx.Retention()
	}
	if a.tail != nil && c.MaxOpenFiles == 0 {
		// 0 derives the budget from the descriptor limit: show what it is.
		c.MaxOpenFiles = a.tail.Summary().FileBudget
	}
	return c
}

// settingsStatus shows the effective settings by flag, as values the
// flags take again (secrets only as set or not; a retention that keeps
// shards forever as "forever").
func settingsStatus(c Config) map[string]string {
	v := reflect.ValueOf(c)
	out := make(map[string]string, len(runSettings))
	for _, s := range runSettings {
		if s.flag == "" {
			continue
		}
		f := v.FieldByName(s.field)
		switch {
		case s.secret:
			out[s.flag] = map[bool]string{true: "(set)", false: ""}[!f.IsZero()]
		case s.field == "MinFreeDisk":
			out[s.flag] = diskspace.FormatSize(f.Int())
		case s.field == "Retention":
			out[s.flag] = retentionString(time.Duration(f.Int()))
		case f.Type() == reflect.TypeFor[time.Duration]():
			out[s.flag] = durationString(time.Duration(f.Int()))
		case f.Kind() == reflect.Slice:
			out[s.flag] = strings.Join(f.Interface().([]string), ",")
		case s.field == "KafkaNoFillGaps":
			out[s.flag] = strconv.FormatBool(!f.Bool()) // the flag is its negation
		case f.Kind() == reflect.Bool:
			out[s.flag] = strconv.FormatBool(f.Bool())
		default:
			out[s.flag] = fmt.Sprint(f.Interface())
		}
	}
	return out
}

// durationString is d as --shard-span and the other duration flags take
// it, without zero units: "24h", "1m30s", "0s".
func durationString(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// retentionString is d as --retention takes it: whole days as "7d",
// negative as "forever".
func retentionString(d time.Duration) string {
	switch {
	case d < 0:
		return "forever"
	case d > 0 && d%(24*time.Hour) == 0:
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	}
	return durationString(d)
}
