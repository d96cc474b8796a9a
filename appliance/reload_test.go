package appliance

import (
	"context"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestRunSettingsCoverConfig: every Config field has exactly one entry in
// runSettings (so SIGHUP applies it or names it, and status shows it),
// each with a distinct flag.
func TestRunSettingsCoverConfig(t *testing.T) {
	typ := reflect.TypeFor[Config]()
	entries := map[string]int{}
	flags := map[string]bool{}
	for _, s := range runSettings {
		entries[s.field]++
		if _, ok := typ.FieldByName(s.field); !ok {
			t.Errorf("runSettings names %q, which is not a field of Config", s.field)
		}
		if s.flag != "" && flags[s.flag] { // "": set by no flag
			t.Errorf("flag %q appears twice in runSettings", s.flag)
		}
		flags[s.flag] = true
	}
	for i := range typ.NumField() {
		f := typ.Field(i)
		switch entries[f.Name] {
		case 1:
		case 0:
			t.Errorf("Config.%s has no entry in runSettings: add one (with its flag, and apply if SIGHUP can apply it)", f.Name)
		default:
			t.Errorf("Config.%s has %d entries in runSettings", f.Name, entries[f.Name])
		}
	}
}

// TestReloadAppliesOrNames changes each setting alone and sends it to
// Reload (what SIGHUP does): a setting that applies at once must show its
// effect, every other one must be named as needing a restart. Changing it
// back must leave nothing to name.
func TestReloadAppliesOrNames(t *testing.T) {
	logs := t.TempDir()
	base := testConfig(t, filepath.Join(t.TempDir(), "data"), logs)
	a, _ := startApp(t, base)
	ctx := context.Background()

	newGlob := filepath.Join(logs, "new-*.log")
	// change makes one setting differ from base, validly. Settings not
	// named get a change by their kind.
	change := map[string]func(c *Config){
		// The syslog TLS flags only go together.
		"SyslogTLS":     func(c *Config) { c.SyslogTLS, c.SyslogTLSCert, c.SyslogTLSKey = "127.0.0.1:0", "c.pem", "k.pem" },
		"SyslogTLSCert": func(c *Config) { c.SyslogTLS, c.SyslogTLSCert, c.SyslogTLSKey = "127.0.0.1:0", "c.pem", "k.pem" },
		"SyslogTLSKey":  func(c *Config) { c.SyslogTLS, c.SyslogTLSCert, c.SyslogTLSKey = "127.0.0.1:0", "c.pem", "k.pem" },
		"SyslogTLSClientCA": func(c *Config) {
			c.SyslogTLS, c.SyslogTLSCert, c.SyslogTLSKey, c.SyslogTLSClientCA = "127.0.0.1:0", "c.pem", "k.pem", "ca.pem"
		},
		"HTTPAddr":      func(c *Config) { c.HTTPAddr = "127.0.0.1:1" },
		"Role":          func(c *Config) { c.Role, c.Kafka = RoleIndexer, []string{"127.0.0.1:1"} },
		"Kafka":         func(c *Config) { c.Kafka = []string{"127.0.0.1:1"} },
		"AllowPaths":    func(c *Config) { c.AllowPaths = append(slices.Clone(c.AllowPaths), "/srv/logs") },
		"Collect":       func(c *Config) { c.Collect = []string{newGlob} },
		"EtcdEndpoints": func(c *Config) { c.EtcdEndpoints = []string{"http://127.0.0.1:1"} },
		"ShardSpan":     func(c *Config) { c.ShardSpan = 2 * time.Hour },
		"ExternalURL":   func(c *Config) { c.ExternalURL = "https://logs.example.com" },
		"AdvertiseURL":  func(c *Config) { c.AdvertiseURL = "http://10.0.0.5:7070" },
		"Retention":     func(c *Config) { c.Retention = 3 * 24 * time.Hour },
		"MinFreeDisk":   func(c *Config) { c.MinFreeDisk = 7 << 20 },
	}
	// applied checks that a setting SIGHUP applies took effect.
	applied := map[string]func(t *testing.T){
		"Collect": func(t *testing.T) {
			srcs, err := a.store.List(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range srcs {
				if slices.Contains(s.Paths, newGlob) {
					return
				}
			}
			t.Errorf("no source collects the new --collect glob %s", newGlob)
		},
		"Retention": func(t *testing.T) {
			if age, _ := a.idx.Retention(); age != 3*24*time.Hour {
				t.Errorf("retention in force %v, want 72h", age)
			}
		},
		"RetentionBytes": func(t *testing.T) {
			if _, n := a.idx.Retention(); n != base.RetentionBytes+1 {
				t.Errorf("retention bytes in force %d, want %d", n, base.RetentionBytes+1)
			}
		},
		"MinFreeDisk": func(t *testing.T) {
			if n := a.disk.Status().MinFreeBytes; n != 7<<20 {
				t.Errorf("free-space floor in force %d, want %d", n, 7<<20)
			}
		},
	}
	for _, s := range runSettings {
		if s.flag == "" {
			continue // no flag sets it: SIGHUP cannot change it
		}
		t.Run(s.flag, func(t *testing.T) {
			cfg := base
			if fn := change[s.field]; fn != nil {
				fn(&cfg)
			} else {
				changeByKind(t, reflect.ValueOf(&cfg).Elem().FieldByName(s.field))
			}
			restart, err := a.Reload(ctx, cfg)
			if err != nil {
				t.Fatalf("Reload with %s changed: %v (give it a valid change in the test)", s.flag, err)
			}
			if s.apply != nil {
				check := applied[s.field]
				if check == nil {
					t.Fatalf("--%s applies on SIGHUP but the test does not check its effect", s.flag)
				}
				check(t)
				if slices.Contains(restart, s.flag) {
					t.Errorf("--%s applied and still named as needing a restart: %v", s.flag, restart)
				}
			} else if !slices.Contains(restart, s.flag) {
				t.Errorf("--%s changed: neither applied nor named as needing a restart (named: %v)", s.flag, restart)
			}
			if restart, err := a.Reload(ctx, base); err != nil || len(restart) > 0 {
				t.Errorf("Reload back to the running settings: %v, %v; want nothing to restart", restart, err)
			}
		})
	}

	bad := base
	bad.ScanInterval = -time.Second
	bad.Retention = time.Hour
	if _, err := a.Reload(ctx, bad); err == nil {
		t.Error("Reload of an invalid config succeeded")
	}
	if age, _ := a.idx.Retention(); age != 7*24*time.Hour {
		t.Errorf("an invalid reload changed retention to %v", age)
	}
}

// changeByKind gives v another valid value of its kind.
func changeByKind(t *testing.T, v reflect.Value) {
	t.Helper()
	switch {
	case v.Type() == reflect.TypeFor[time.Duration]():
		v.SetInt(v.Int() + int64(time.Second))
	case v.Kind() == reflect.String:
		v.SetString(v.String() + "x")
	case v.Kind() == reflect.Bool:
		v.SetBool(!v.Bool())
	case v.Kind() == reflect.Int, v.Kind() == reflect.Int64:
		v.SetInt(v.Int() + 1)
	case v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.String:
		v.Set(reflect.Append(reflect.AppendSlice(reflect.New(v.Type()).Elem(), v), reflect.ValueOf("x")))
	default:
		t.Fatalf("no change for a setting of type %v: add one to the test", v.Type())
	}
}

// TestStatusShowsEffectiveSettings: a default install reports the
// retention, shard span and limits that apply (not the zero of an unset
// flag), the disk's free space against the floor, and after a SIGHUP the
// values it applied.
func TestStatusShowsEffectiveSettings(t *testing.T) {
	cfg := testConfig(t, filepath.Join(t.TempDir(), "data"))
	if cfg.Retention != 0 || cfg.ShardSpan != 0 || cfg.MaxFieldsPerLine != 0 {
		t.Fatal("test expects the defaults unset in Config")
	}
	a, r := startApp(t, cfg)
	var st struct {
		Retention struct {
			MaxAge           string `json:"max_age"`
			ShardSpan        string `json:"shard_span"`
			MaxAgeSeconds    int64  `json:"max_age_seconds"`
			ShardSpanSeconds int64  `json:"shard_span_seconds"`
		} `json:"retention"`
		Settings map[string]string `json:"settings"`
		Tailing  struct {
			FileBudget int `json:"file_budget"`
		} `json:"tailing"`
		Disk struct {
			FreeBytes    int64 `json:"free_bytes"`
			MinFreeBytes int64 `json:"min_free_bytes"`
			Low          bool  `json:"low"`
			Paused       bool  `json:"paused"`
		} `json:"disk"`
	}
	r.call("GET", "/api/status", nil, &st)
	if st.Tailing.FileBudget <= 0 {
		t.Errorf("tailing.file_budget %d: want the budget derived from the descriptor limit", st.Tailing.FileBudget)
	}
	checks := []struct{ name, got, want string }{
		{"retention max_age", st.Retention.MaxAge, "7d"},
		{"retention shard_span", st.Retention.ShardSpan, "24h"},
		{"settings retention", st.Settings["retention"], "7d"},
		{"settings shard-span", st.Settings["shard-span"], "24h"},
		{"settings max-fields-per-line", st.Settings["max-fields-per-line"], "64"},
		{"settings max-field-names", st.Settings["max-field-names"], "1000"},
		{"settings min-free-disk", st.Settings["min-free-disk"], "1GiB"},
		{"settings data", st.Settings["data"], cfg.DataDir},
		{"settings max-open-files (the derived budget, not 0)", st.Settings["max-open-files"], strconv.Itoa(st.Tailing.FileBudget)},
		{"settings kafka-sasl-password-file", st.Settings["kafka-sasl-password-file"], ""},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: %q, want %q", c.name, c.got, c.want)
		}
	}
	if st.Retention.MaxAgeSeconds != 7*86400 || st.Retention.ShardSpanSeconds != 86400 {
		t.Errorf("retention seconds %d / %d, want %d / %d", st.Retention.MaxAgeSeconds, st.Retention.ShardSpanSeconds, 7*86400, 86400)
	}
	for _, s := range runSettings {
		if _, ok := st.Settings[s.flag]; !ok && s.flag != "" {
			t.Errorf("status settings lack %q", s.flag)
		}
	}
	if st.Disk.FreeBytes <= 0 || st.Disk.MinFreeBytes != DefaultMinFreeDisk || st.Disk.Low || st.Disk.Paused {
		t.Errorf("disk status %+v: want free space measured, the default floor, not low", st.Disk)
	}

	next := cfg
	next.Retention = -1
	next.MinFreeDisk = 512 << 20
	if _, err := a.Reload(context.Background(), next); err != nil {
		t.Fatal(err)
	}
	r.call("GET", "/api/status", nil, &st)
	if st.Retention.MaxAge != "forever" || st.Retention.MaxAgeSeconds != -1 || st.Settings["retention"] != "forever" ||
		st.Settings["min-free-disk"] != "512MiB" || st.Disk.MinFreeBytes != 512<<20 {
		t.Errorf("after SIGHUP: retention %+v, settings retention %q min-free-disk %q, disk floor %d",
			st.Retention, st.Settings["retention"], st.Settings["min-free-disk"], st.Disk.MinFreeBytes)
	}
}

// TestExternalURLValidated: links in notifications are built on
// --external-url, so anything but an http(s) URL is refused at start.
func TestExternalURLValidated(t *testing.T) {
	for v, ok := range map[string]bool{"": true, "https://logs.example.com": true, "http://10.0.0.5:8080/logbox": true,
		"x": false, "ftp://logs.example.com": false, "https://": false} {
		c := DefaultConfig()
		c.ExternalURL = v
		err := c.Validate()
		if got := err == nil || !strings.Contains(err.Error(), "--external-url"); got != ok {
			t.Errorf("--external-url %q: %v", v, err)
		}
	}
}
