package main

import (
	"io"
	"testing"
)

// --journald alone follows the local journal (as the contract lists it),
// --journald=PATH a journal directory or file; the push inputs' flags
// land in the config.
func TestInputFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, ""},
		{[]string{"--journald"}, "local"},
		{[]string{"--journald=/var/log/journal"}, "/var/log/journal"},
		{[]string{"--journald=false"}, ""},
	} {
		rc, err := loadRunConfig(c.args, io.Discard)
		if err != nil {
			t.Fatalf("%v: %v", c.args, err)
		}
		if rc.Journald != c.want {
			t.Errorf("%v: journald %q, want %q", c.args, rc.Journald, c.want)
		}
	}
	rc, err := loadRunConfig([]string{"--syslog-tcp", ":5514", "--syslog-udp", ":5514", "--otlp", "--loki-push", "--elasticsearch-bulk",
		"--input-max-body", "1MiB", "--input-max-in-flight", "5000", "--input-retry-ids", "7000000"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if rc.SyslogTCP != ":5514" || rc.SyslogUDP != ":5514" || !rc.OTLP || !rc.LokiPush || !rc.ESBulk || rc.InputMaxBody != 1<<20 || rc.InputMaxInFlight != 5000 || rc.InputRetryIDs != 7000000 {
		t.Errorf("config %+v", rc.Config)
	}
	for _, bad := range [][]string{
		{"--role", "indexer", "--kafka", "127.0.0.1:9092", "--otlp"}, // inputs run where lines are collected
		{"--syslog-tls", ":6514"},                                    // no certificate
		{"--syslog-tls-cert", "c.pem"},                               // no listener
	} {
		rc, err := loadRunConfig(bad, io.Discard)
		if err == nil {
			err = rc.Validate()
		}
		if err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}
