package main

import (
	"io"
	"strings"
	"testing"
)

// TestFleetFlags: --role query, --advertise-url and --kafka-fill-gaps
// are read and checked.
func TestFleetFlags(t *testing.T) {
	rc, err := loadRunConfig([]string{"--role", "query", "--kafka", "127.0.0.1:9092", "--advertise-url", "http://10.0.0.5:7070"}, io.Discard)
	if err == nil {
		err = rc.Validate()
	}
	if err != nil || rc.Role != "query" || rc.AdvertiseURL != "http://10.0.0.5:7070" || rc.KafkaNoFillGaps {
		t.Fatalf("config %+v, %v", rc.Config, err)
	}
	for _, c := range []struct {
		args []string
		off  bool
	}{{nil, false}, {[]string{"--kafka-fill-gaps"}, false}, {[]string{"--kafka-fill-gaps=false"}, true}, {[]string{"--kafka-fill-gaps=true"}, false}} {
		rc, err := loadRunConfig(c.args, io.Discard)
		if err != nil || rc.KafkaNoFillGaps != c.off {
			t.Errorf("%v: fill gaps off %v (%v), want %v", c.args, rc.KafkaNoFillGaps, err, c.off)
		}
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--role", "query"}, "--kafka"},
		{[]string{"--role", "query", "--kafka", "127.0.0.1:9092", "--collect", "/var/log/*.log"}, "--collect"},
		{[]string{"--role", "query", "--kafka", "127.0.0.1:9092", "--otlp"}, "--role query"},
		{[]string{"--advertise-url", "10.0.0.5:7070"}, "--advertise-url"},
		{[]string{"--role", "boss"}, "all, agent, indexer, query"},
	} {
		rc, err := loadRunConfig(c.args, io.Discard)
		if err == nil {
			err = rc.Validate()
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want an error naming %s", c.args, err, c.want)
		}
	}
}
